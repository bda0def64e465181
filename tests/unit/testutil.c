// testutil.c — test data lookup and temp files for unit tests.
#define _GNU_SOURCE
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mmap.h"

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *cg_test_testdata_dir(void) {
    static char path[PATH_MAX];
    const char *e = getenv("CHINGU_TESTDATA");
    if (!e || !*e) e = "../shared/testdata";
    if (!is_dir(e)) return NULL;
    snprintf(path, sizeof path, "%s", e);
    return path;
}

const char *cg_test_models_dir(void) {
    static char path[PATH_MAX + 16];
    const char *td = cg_test_testdata_dir();
    if (!td) return NULL;
    snprintf(path, sizeof path, "%s/../models", td);
    return is_dir(path) ? path : NULL;
}

unsigned char *cg_test_read(const char *rel, size_t *size) {
    const char *td = cg_test_testdata_dir();
    if (!td) return NULL;
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", td, rel);
    unsigned char *data;
    cg_err err = {0};
    if (cg_file_read_all(path, &data, size, &err) != CG_OK) return NULL;
    return data;
}

unsigned char *cg_test_read_path(const char *path, size_t *size) {
    unsigned char *data;
    cg_err err = {0};
    if (cg_file_read_all(path, &data, size, &err) != CG_OK) fail_msg("%s", err.msg);
    return data;
}

char *cg_test_tmpfile(const void *data, size_t n) {
    char *path = strdup("/tmp/chingu-test-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) fail_msg("mkstemp failed");
    if (n && write(fd, data, n) != (ssize_t)n) fail_msg("write failed");
    close(fd);
    return path;
}

char *cg_test_tmpdir(void) {
    char *path = strdup("/tmp/chingu-test-dir-XXXXXX");
    if (!mkdtemp(path)) fail_msg("mkdtemp failed");
    return path;
}
