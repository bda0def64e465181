// buf.h — growable byte buffer (output of writers, JSON, rendered text).
//
// A cg_buf owns its bytes; data is always NUL-terminated (not counted in len) once anything was
// appended. An allocation failure is sticky: later appends do nothing and cg_buf_ok() is false, so
// callers may append many times and check once. Not thread-safe.
#ifndef CG_BASE_BUF_H
#define CG_BASE_BUF_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

typedef struct cg_buf {
    char *data;   // owned
    size_t len, cap;
    bool failed;  // an allocation failed
} cg_buf;

void cg_buf_init(cg_buf *b);
void cg_buf_free(cg_buf *b);   // accepts a zeroed buffer
void cg_buf_reset(cg_buf *b);  // len = 0, keeps memory
bool cg_buf_reserve(cg_buf *b, size_t extra);
void cg_buf_append(cg_buf *b, const void *p, size_t n);
void cg_buf_puts(cg_buf *b, const char *s);
void cg_buf_putc(cg_buf *b, char c);
void cg_buf_printf(cg_buf *b, const char *fmt, ...) CG_PRINTF(2, 3);
static inline bool cg_buf_ok(const cg_buf *b) { return !b->failed; }

#endif
