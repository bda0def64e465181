// openai.h — the OpenAI API as data: request JSON → cg_srv_request, backend events → response JSON
// and SSE chunks, error bodies. No HTTP here (that is http.c); this module is pure and testable.
//
// Parsing is strict about what it understands and tolerant of what it does not: a known field
// with a wrong type or out-of-range value is a 400 naming the field (`param`), unknown fields are
// ignored as OpenAI does. Bodies are parsed by jansson with duplicate keys rejected, after a
// pre-scan that rejects nesting deeper than the configured cap (so the parser never recurses
// deeply). Thread-safety: functions touch only the objects passed to them.
#ifndef CG_SERVER_OPENAI_H
#define CG_SERVER_OPENAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "server/backend.h"

// An error in OpenAI's shape: {"error":{"message","type","param","code"}}.
typedef struct cg_oai_error {
    int http_status;        // 400, 401, 404, 405, 413, 500, 503 …
    const char *type;       // static string: "invalid_request_error", "server_error", …
    const char *code;       // static string or NULL
    char param[96];         // "" → null
    char message[512];
} cg_oai_error;

typedef struct cg_oai_limits {
    uint32_t max_depth;         // JSON nesting depth cap
    int64_t max_tokens_cap;     // max_tokens above this → 400
    uint32_t max_n;             // n above this → 400
    uint32_t max_messages;
    uint32_t max_prompts;       // completions prompts / embeddings inputs
    uint32_t timeout_ms;        // copied into every request
} cg_oai_limits;

// Defaults: depth 64, max_tokens 32768, n 16, 4096 messages, 256 prompts, timeout 600 s.
cg_oai_limits cg_oai_limits_default(void);

typedef enum cg_oai_endpoint { CG_OAI_CHAT = 0, CG_OAI_COMPLETIONS, CG_OAI_EMBEDDINGS } cg_oai_endpoint;

// A parsed request. Everything points into `arena` (owned); release with cg_oai_req_free.
typedef struct cg_oai_req {
    cg_arena arena;
    cg_oai_endpoint endpoint;
    const char *model;
    bool stream, include_usage;
    cg_srv_request req;                     // CHAT / COMPLETIONS
    const cg_srv_prompt *inputs; size_t n_inputs;   // EMBEDDINGS: text or token ids each
    bool base64;                            // EMBEDDINGS encoding_format
    uint32_t dimensions;                    // EMBEDDINGS: requested width, 0 when not given
} cg_oai_req;

// Parses and validates a body for `endpoint`. On failure fills *e (400 with param) and returns
// CG_ERR_INVALID; *out is then already released. Never crashes on any byte sequence.
cg_status cg_oai_parse(cg_oai_endpoint endpoint, const char *body, size_t n, const cg_oai_limits *lim,
                       cg_oai_req *out, cg_oai_error *e);
void cg_oai_req_free(cg_oai_req *r);   // accepts a zeroed struct

// Fills *e. param may be NULL (→ null); code may be NULL.
void cg_oai_error_set(cg_oai_error *e, int http_status, const char *type, const char *code, const char *param,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
// Appends {"error":{…}}.
void cg_oai_error_json(cg_buf *b, const cg_oai_error *e);

// ---- responses --------------------------------------------------------------------------------

// Accumulates one generation's events into a response. Not thread-safe (the caller serialises).
typedef struct cg_oai_acc cg_oai_acc;

typedef struct cg_oai_acc_params {
    cg_oai_endpoint endpoint;   // CHAT or COMPLETIONS
    const char *id;             // "chatcmpl-…" / "cmpl-…" (copied)
    const char *model;          // copied
    int64_t created;
    uint32_t n_choices;
    bool logprobs;              // CHAT: logprobs.content; COMPLETIONS: legacy logprobs
    bool stream, include_usage;
} cg_oai_acc_params;

cg_status cg_oai_acc_new(const cg_oai_acc_params *p, cg_oai_acc **out, cg_err *err);
void cg_oai_acc_free(cg_oai_acc *a);   // accepts NULL

// Feeds one event. When streaming, the SSE frames it produces are appended to `sse` (the terminal
// DONE event appends the finish/usage chunks and "data: [DONE]"; ERROR appends an error frame).
// Non-terminal events never fail; allocation failures are sticky in the buffers.
void cg_oai_acc_event(cg_oai_acc *a, const cg_srv_event *ev, cg_buf *sse);
// After DONE, non-streaming: appends the whole response body.
void cg_oai_acc_body(const cg_oai_acc *a, cg_buf *out);
// Usage so far (valid after DONE) and the number of generated tokens seen.
cg_srv_usage cg_oai_acc_usage(const cg_oai_acc *a);

// GET /v1/models and /v1/models/{id}.
void cg_oai_models_json(cg_buf *b, const cg_srv_model_info *m);
void cg_oai_model_json(cg_buf *b, const cg_srv_model_info *m);
// /v1/embeddings response; vecs holds n_inputs × n_dim floats.
void cg_oai_embeddings_json(cg_buf *b, const char *model, const float *vecs, size_t n_inputs, size_t n_dim,
                            bool base64, uint64_t prompt_tokens);

#endif
