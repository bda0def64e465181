// testutil.h — shared helpers for the cmocka unit tests.
//
// Reference data lives outside the repo: $CHINGU_TESTDATA (default ../shared/testdata, set by CTest)
// and its sibling models directory. A test that needs it and cannot find it calls skip(), which
// cmocka reports as SKIPPED — never as passed.
#ifndef CG_TESTUTIL_H
#define CG_TESTUTIL_H

// cmocka needs these before its header.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>

#include "chingu.h"

// Directory of the reference data, or NULL when absent. Borrowed static string.
const char *cg_test_testdata_dir(void);
// Directory of the shared model files (../models next to the testdata dir), or NULL when absent.
const char *cg_test_models_dir(void);

// Reads $CHINGU_TESTDATA/<rel> into a malloc'ed buffer (caller frees); NULL when missing.
unsigned char *cg_test_read(const char *rel, size_t *size);
// Reads any path into a malloc'ed buffer; fails the test when missing.
unsigned char *cg_test_read_path(const char *path, size_t *size);

// Writes bytes to a fresh temporary file and returns its path (malloc'ed; unlink + free it).
char *cg_test_tmpfile(const void *data, size_t n);
// A fresh temporary directory (malloc'ed path).
char *cg_test_tmpdir(void);

// Asserts st == CG_OK, printing err->msg otherwise.
#define CG_ASSERT_OK(st, err)                                                         \
    do {                                                                              \
        cg_status st_ = (st);                                                         \
        if (st_ != CG_OK) fail_msg("status %d: %s", (int)st_, (err)->msg);            \
    } while (0)

#endif
