// auth.h — API keys for `chingu serve --api-key-file`.
//
// Keys are never kept in memory in clear: each is stored as a keyed BLAKE2b-256 hash (libsodium
// crypto_generichash) under a random per-process hashing key, and a presented key is hashed the
// same way and compared with every stored hash in constant time (sodium_memcmp, no early exit).
// A cg_srv_auth is immutable after loading and safe to share between threads.
#ifndef CG_SERVER_AUTH_H
#define CG_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

typedef struct cg_srv_auth cg_srv_auth;

// Parses keys, one per line; surrounding blanks are trimmed, empty lines and lines starting with
// '#' are skipped. Errors: CG_ERR_FORMAT (no key, a key shorter than 8 bytes or containing a blank
// or control character: the message names the line), CG_ERR_NOMEM, CG_ERR_INTERNAL (libsodium).
cg_status cg_srv_auth_parse(const char *text, size_t n, cg_srv_auth **out, cg_err *err);
// Reads and parses a key file (the buffer holding it is wiped afterwards). Adds CG_ERR_IO.
cg_status cg_srv_auth_load(const char *path, cg_srv_auth **out, cg_err *err);
void cg_srv_auth_free(cg_srv_auth *a);   // accepts NULL
size_t cg_srv_auth_count(const cg_srv_auth *a);

// True when `authorization` (the raw header value, may be NULL) is "Bearer <key>" with a known key.
bool cg_srv_auth_check(const cg_srv_auth *a, const char *authorization);

#endif
