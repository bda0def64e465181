// chingu.h — the public C API of libchingu.
//
// Every fallible function returns a cg_status and, when it fails, fills a caller-provided cg_err
// with the same code and a message that names what was wrong (file, field, value, byte offset).
// Handles are opaque; each module's header states ownership and thread-safety.
#ifndef CHINGU_H
#define CHINGU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CG_VERSION_MAJOR 0
#define CG_VERSION_MINOR 1
#define CG_VERSION_PATCH 0
#define CG_VERSION_STRING "0.1.0"

typedef enum cg_status {
    CG_OK = 0,
    CG_ERR_INVALID,     // a caller passed an invalid argument
    CG_ERR_IO,          // open/read/write/map failed (the message carries errno text)
    CG_ERR_FORMAT,      // input data is malformed (the message names the field and offset)
    CG_ERR_LIMIT,       // a count or size is above a cap
    CG_ERR_NOMEM,       // allocation failed
    CG_ERR_UNSUPPORTED, // valid input that this build cannot handle (unknown type, arch …)
    CG_ERR_NOT_FOUND,   // a looked-up key, tensor or record does not exist
    CG_ERR_TYPE,        // a value exists but has another type than asked for
    CG_ERR_STATE,       // the operation does not fit the object's current state
    CG_ERR_INTERNAL,    // a bug: an invariant did not hold
    CG_ERR_COUNT_
} cg_status;

#define CG_ERR_MSG_MAX 512

// An error value: the status and a human-readable message. Zero-initialise before use.
typedef struct cg_err {
    cg_status code;
    char msg[CG_ERR_MSG_MAX];
} cg_err;

// Short stable name of a status ("ok", "format", …). Never NULL.
const char *cg_status_name(cg_status st);

// The library version, e.g. "0.1.0".
const char *cg_version(void);

#ifdef __cplusplus
}
#endif
#endif
