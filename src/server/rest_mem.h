// rest_mem.h — the personal layer over HTTP: /v1/users, /v1/keys, /v1/conversations, /v1/memories.
//
// Pure request → (status, JSON body) handling with no HTTP library in sight: http.c hands over
// method, path, Authorization header, body and a query-argument lookup, and sends back what this
// returns. Authentication is by the store's own API keys ("Authorization: Bearer cg-…"):
//   admin scope — manages users and keys (any user's), and has its own memories like any user;
//   user scope  — sees and changes only its own conversations, memories and keys.
// Every id in a path is scoped by the caller's user: another user's id answers 404 exactly like a
// missing one. Errors are OpenAI-shaped: {"error":{"message","type","param","code"}}.
// The endpoint list with bodies is in docs/memory.md ("REST API").
//
// Ownership: the store passed to cg_rest_mem_new is borrowed and must outlive the cg_rest_mem.
// Thread-safety: cg_rest_mem_handle may be called from any number of threads; store access is
// serialised by an internal mutex (a cg_store is one connection).
#ifndef CG_SERVER_REST_MEM_H
#define CG_SERVER_REST_MEM_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"
#include "mem/store.h"

typedef struct cg_rest_mem cg_rest_mem;

// Query-string lookup: the decoded value of `name`, or NULL when absent. Borrowed.
typedef const char *(*cg_rest_arg_fn)(void *ctx, const char *name);

typedef struct cg_rest_req {
    const char *method;         // "GET", "POST", "PATCH", "DELETE", …
    const char *path;           // without the query string
    const char *authorization;  // raw header value, NULL when absent
    const char *body;           // may be NULL when n_body == 0
    size_t n_body;
    cg_rest_arg_fn arg;         // may be NULL (no query arguments)
    void *arg_ctx;
} cg_rest_req;

// True when `path` belongs to this module (/v1/users, /v1/keys, /v1/conversations, /v1/memories
// and anything below them).
bool cg_rest_mem_path(const char *path);

// `store` is borrowed until cg_rest_mem_free. Errors: CG_ERR_NOMEM.
cg_status cg_rest_mem_new(cg_store *store, cg_rest_mem **out, cg_err *err);
void cg_rest_mem_free(cg_rest_mem *rm);  // accepts NULL

// Authenticates a request to the OpenAI endpoints with a store key: `authorization` is the raw
// header value ("Bearer cg-…", may be NULL). Returns 0 and sets *user_id (and records the key's
// last use) for a live key; 401 for a missing, unknown or revoked key (or rm NULL); 500 when the
// store fails. Thread-safe like cg_rest_mem_handle.
int cg_rest_mem_authorize(cg_rest_mem *rm, const char *authorization, int64_t *user_id);

// Handles one request; appends the JSON body to `out` and returns the HTTP status. rm may be
// NULL (no store configured): every request then answers 501 with a message saying how to
// configure one. *allow is set to the allowed methods for a 405 (static string), else NULL.
int cg_rest_mem_handle(cg_rest_mem *rm, const cg_rest_req *rq, cg_buf *out, const char **allow);

#endif
