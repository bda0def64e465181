// server.h — the HTTP server behind `chingu serve`: OpenAI-compatible endpoints over a backend.
//
//   POST /v1/chat/completions  /v1/completions  /v1/embeddings
//   GET  /v1/models  /v1/models/{id}  /health  /metrics
//   /v1/users /v1/keys /v1/conversations /v1/memories (rest_mem.h; authenticated by store keys)
//
// cg_server_start binds (127.0.0.1 by default) and serves from libmicrohttpd's own threads until
// cg_server_stop. The backend, the auth table and every string in the config are borrowed and must
// outlive the server. Thread-safety: start/stop from one thread; port() from any.
#ifndef CG_SERVER_SERVER_H
#define CG_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/auth.h"
#include "server/backend.h"
#include "server/openai.h"
#include "server/rest_mem.h"

typedef struct cg_srv_config {
    const char *host;                 // numeric IPv4/IPv6 address; NULL → "127.0.0.1"
    uint16_t port;                    // 0 → an ephemeral port (see cg_server_port)
    uint32_t n_threads;               // I/O threads; 0 → 4
    size_t max_body;                  // bytes; 0 → 8 MiB
    cg_oai_limits limits;             // use cg_oai_limits_default() as the base
    const cg_srv_auth *auth;          // NULL → no authentication
    const char *const *cors_origins;  // NULL/empty → no CORS headers at all; "*" allows any origin
    size_t n_cors_origins;
    uint32_t shutdown_grace_ms;       // how long stop() lets in-flight requests finish; 0 → 5000
    bool log_requests;                // one INFO line per request
    cg_rest_mem *mem;                 // /v1/users|keys|conversations|memories; NULL → those answer 501
} cg_srv_config;

typedef struct cg_server cg_server;

// Errors: CG_ERR_INVALID (host is not a numeric address), CG_ERR_IO (cannot bind: the message
// names host and port), CG_ERR_NOMEM.
cg_status cg_server_start(const cg_srv_config *cfg, cg_srv_backend *backend, cg_server **out, cg_err *err);

// The bound port.
uint16_t cg_server_port(const cg_server *s);

// Graceful stop: stops accepting, lets in-flight requests finish for the grace period, cancels
// the rest, waits for their connections to end, then frees. Accepts NULL.
void cg_server_stop(cg_server *s);

#endif
