// err.h — status codes and error messages (see include/chingu.h for cg_status and cg_err).
//
// cg_err_set formats a message into *err (which may be NULL: then only the code is returned).
// Thread-safety: functions touch only the cg_err passed to them.
#ifndef CG_BASE_ERR_H
#define CG_BASE_ERR_H

#include "chingu.h"

#if defined(__GNUC__)
#define CG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CG_PRINTF(a, b)
#endif

// Sets err->code = st and err->msg to the formatted text (truncated to fit). Returns st, so a
// caller can write `return cg_err_set(err, CG_ERR_FORMAT, "…", …);`. err may be NULL.
cg_status cg_err_set(cg_err *err, cg_status st, const char *fmt, ...) CG_PRINTF(3, 4);

// Prepends "prefix: " to an existing message (for adding context on the way up). Returns err->code.
cg_status cg_err_wrap(cg_err *err, const char *fmt, ...) CG_PRINTF(2, 3);

// Resets err to CG_OK with an empty message. err may be NULL.
void cg_err_clear(cg_err *err);

#endif
