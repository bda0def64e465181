// err.c — status names and message formatting for cg_err.
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const STATUS_NAMES[CG_ERR_COUNT_] = {
    [CG_OK] = "ok",
    [CG_ERR_INVALID] = "invalid argument",
    [CG_ERR_IO] = "i/o error",
    [CG_ERR_FORMAT] = "format error",
    [CG_ERR_LIMIT] = "limit exceeded",
    [CG_ERR_NOMEM] = "out of memory",
    [CG_ERR_UNSUPPORTED] = "unsupported",
    [CG_ERR_NOT_FOUND] = "not found",
    [CG_ERR_TYPE] = "wrong type",
    [CG_ERR_STATE] = "invalid state",
    [CG_ERR_INTERNAL] = "internal error",
};

const char *cg_status_name(cg_status st) {
    if ((unsigned)st >= CG_ERR_COUNT_) return "unknown status";
    return STATUS_NAMES[st];
}

const char *cg_version(void) { return CG_VERSION_STRING; }

cg_status cg_err_set(cg_err *err, cg_status st, const char *fmt, ...) {
    if (!err) return st;
    err->code = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return st;
}

cg_status cg_err_wrap(cg_err *err, const char *fmt, ...) {
    if (!err) return CG_ERR_INTERNAL;
    char prefix[CG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n < 0) return err->code;
    char old[CG_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    size_t np = strlen(prefix);
    if (np > sizeof err->msg - 3) np = sizeof err->msg - 3;
    memcpy(err->msg, prefix, np);
    memcpy(err->msg + np, ": ", 2);
    size_t room = sizeof err->msg - np - 3, no = strlen(old);
    if (no > room) no = room;
    memcpy(err->msg + np + 2, old, no);
    err->msg[np + 2 + no] = '\0';
    return err->code;
}

void cg_err_clear(cg_err *err) {
    if (!err) return;
    err->code = CG_OK;
    err->msg[0] = '\0';
}
