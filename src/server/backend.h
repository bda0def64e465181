// backend.h — the seam between the HTTP/OpenAI layer and whatever generates tokens.
//
// The server never calls the model directly. It parses and validates a request into a
// cg_srv_request (plain C, no JSON), hands it to a cg_srv_backend with submit(), and receives the
// result as a stream of cg_srv_event values through a callback. The real implementation is the
// engine thread (continuous batching over the paged KV cache); src/server/backend_fake.c is a
// deterministic stand-in used as test equipment only.
//
// Contract every backend keeps:
//   - submit() copies what it needs from the request: `req` is borrowed for the call only.
//   - after submit() returned CG_OK, the callback receives, in order, for each choice any number of
//     TOKEN / TOOL_CALL events and then one CHOICE_END, and finally exactly one terminal event
//     (DONE or ERROR) for the whole request. After the terminal event the callback is never called
//     again for that id, so the receiver may free its state there. Events for one request are
//     never delivered concurrently; they may arrive on another thread than submit() ran on, and
//     may arrive before submit() returns.
//   - cancel(id) is safe at any time, also for an id that already finished (then it does nothing).
//     A cancelled request still gets its terminal event (ERROR with CG_SRV_FINISH_CANCELLED).
//   - a request past its deadline (timeout_ms after submit) ends with ERROR/CG_SRV_FINISH_TIMEOUT.
//   - text in TOKEN events is valid UTF-8 (incomplete sequences are held back by the backend) and
//     never contains a stop string; the backend stops before it.
//   - submit() errors: CG_ERR_INVALID / CG_ERR_LIMIT = the request itself cannot be served (context
//     too long, unknown tool …; HTTP 400), CG_ERR_STATE = busy (queue full or still loading; HTTP
//     503 with Retry-After), anything else = HTTP 500.
// Thread-safety: every function pointer may be called from any thread concurrently.
#ifndef CG_SERVER_BACKEND_H
#define CG_SERVER_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef enum cg_srv_kind { CG_SRV_KIND_CHAT = 0, CG_SRV_KIND_COMPLETION } cg_srv_kind;

typedef enum cg_srv_role {
    CG_SRV_ROLE_SYSTEM = 0,
    CG_SRV_ROLE_DEVELOPER,
    CG_SRV_ROLE_USER,
    CG_SRV_ROLE_ASSISTANT,
    CG_SRV_ROLE_TOOL,
} cg_srv_role;

typedef struct cg_srv_message {
    cg_srv_role role;
    const char *content;          // text (text parts joined with "\n"); "" when absent
    const char *name;             // NULL when absent
    const char *tool_call_id;     // role tool: the call answered; else NULL
    const char *tool_calls_json;  // role assistant: its tool_calls array as JSON text, or NULL
} cg_srv_message;

typedef struct cg_srv_prompt {    // one prompt of /v1/completions: text or token ids
    const char *text;             // NULL when the prompt is token ids
    const int32_t *tokens;
    size_t n_tokens;
} cg_srv_prompt;

typedef struct cg_srv_tool {
    const char *name;
    const char *description;      // NULL when absent
    const char *parameters_json;  // JSON Schema as JSON text; "{}" when absent
} cg_srv_tool;

typedef struct cg_srv_bias { int32_t token; float bias; } cg_srv_bias;

typedef enum cg_srv_format { CG_SRV_FORMAT_TEXT = 0, CG_SRV_FORMAT_JSON_OBJECT, CG_SRV_FORMAT_JSON_SCHEMA } cg_srv_format;
typedef enum cg_srv_tool_choice {
    CG_SRV_TOOL_CHOICE_AUTO = 0, CG_SRV_TOOL_CHOICE_NONE, CG_SRV_TOOL_CHOICE_REQUIRED, CG_SRV_TOOL_CHOICE_NAMED,
} cg_srv_tool_choice;

// A validated request. All pointers are borrowed (the server owns them in an arena) and valid only
// during submit().
typedef struct cg_srv_request {
    cg_srv_kind kind;
    const cg_srv_message *messages; size_t n_messages;   // CHAT
    const cg_srv_prompt *prompts; size_t n_prompts;      // COMPLETION: choices are i_prompt*n + k
    bool echo;                                           // COMPLETION: the backend emits the prompt first
    uint32_t n;                                          // choices per prompt, ≥ 1
    int64_t max_tokens;                                  // -1: until the context is full
    double temperature, top_p, presence_penalty, frequency_penalty;
    bool has_seed; uint64_t seed;
    const char *const *stop; size_t n_stop;
    const cg_srv_bias *logit_bias; size_t n_logit_bias;
    bool logprobs; uint32_t top_logprobs;                // top_logprobs ≤ 20
    cg_srv_format format; const char *schema_json;       // schema_json for JSON_SCHEMA
    const cg_srv_tool *tools; size_t n_tools;
    cg_srv_tool_choice tool_choice; const char *tool_choice_name;   // name for NAMED
    bool parallel_tool_calls;
    const char *user;                                    // NULL when absent
    int64_t key_user;                                    // store user whose API key authenticated the
                                                         // request; 0: none (--api-key-file key, no auth)
    uint32_t timeout_ms;                                 // 0: none
} cg_srv_request;

typedef enum cg_srv_finish {
    CG_SRV_FINISH_STOP = 0,      // end of generation or a stop string
    CG_SRV_FINISH_LENGTH,        // max_tokens or the context is full
    CG_SRV_FINISH_TOOL_CALLS,
    CG_SRV_FINISH_CANCELLED,     // cancel() — only in ERROR events
    CG_SRV_FINISH_TIMEOUT,       // deadline — only in ERROR events
} cg_srv_finish;

typedef enum cg_srv_event_kind {
    CG_SRV_EV_TOKEN = 0,   // one generated token: text delta and, if asked, its logprobs
    CG_SRV_EV_TOOL_CALL,   // a tool-call delta
    CG_SRV_EV_CHOICE_END,  // one choice finished (finish)
    CG_SRV_EV_DONE,        // terminal: all choices finished (usage)
    CG_SRV_EV_ERROR,       // terminal: the request failed (status, finish, message)
} cg_srv_event_kind;

typedef struct cg_srv_logprob {
    const char *token; size_t n_token;   // the token's bytes (may be part of a UTF-8 sequence)
    float logprob;
} cg_srv_logprob;

typedef struct cg_srv_usage {
    uint64_t prompt_tokens, completion_tokens, cached_tokens;
} cg_srv_usage;

// One event. Every pointer is borrowed for the duration of the callback only.
typedef struct cg_srv_event {
    cg_srv_event_kind kind;
    uint32_t i_choice;
    // TOKEN
    const char *text; size_t n_text;     // content delta, may be empty
    bool has_logprob;
    cg_srv_logprob tok;                  // the sampled token
    const cg_srv_logprob *top; size_t n_top;
    bool is_echo;                        // the echoed prompt (COMPLETION with echo); no logprob
    // TOOL_CALL: the first delta of call i_tool carries id and name; later ones only arguments
    uint32_t i_tool;
    const char *tool_id, *tool_name;     // NULL after the first delta
    const char *args; size_t n_args;
    // CHOICE_END / ERROR
    cg_srv_finish finish;
    // DONE
    cg_srv_usage usage;
    // ERROR
    cg_status status;
    const char *message;
} cg_srv_event;

typedef void (*cg_srv_event_fn)(void *user, const cg_srv_event *ev);

typedef struct cg_srv_model_info {
    const char *id;          // borrowed from the backend, valid until free()
    const char *owned_by;
    int64_t created;         // Unix seconds
    uint32_t n_ctx;
    uint32_t n_embd;         // embedding width; 0 when the model cannot embed
} cg_srv_model_info;

// Gauges and counters the backend owns; the server renders them in /metrics.
typedef struct cg_srv_gauges {
    bool loading;
    uint64_t kv_blocks_used, kv_blocks_free;
    uint64_t queue_depth, running;
    uint64_t prefix_hit_tokens, prefix_lookup_tokens;   // hit ratio = hit / lookup
    uint64_t cancelled_total;
    // Engine time split (seconds of the engine thread's wall time) and forward-pass work.
    double engine_forward_s, engine_callback_s, engine_other_s;
    uint64_t engine_steps, engine_rows;
} cg_srv_gauges;

typedef struct cg_srv_backend {
    void *state;   // owned by the backend; released by free()
    void (*info)(void *state, cg_srv_model_info *out);
    cg_status (*submit)(void *state, const cg_srv_request *req, cg_srv_event_fn fn, void *user,
                        uint64_t *id, cg_err *err);
    void (*cancel)(void *state, uint64_t id);
    // Embeds one input (text, or token ids when in->text is NULL) into out[0..n_dim) (n_dim =
    // info.n_embd), L2-normalised. Blocking; *n_tokens = tokens read. Errors as submit()'s.
    cg_status (*embed)(void *state, const cg_srv_prompt *in, float *out, size_t n_dim, uint32_t *n_tokens,
                       cg_err *err);
    void (*gauges)(void *state, cg_srv_gauges *out);
    // Cancels everything, waits until every terminal event was delivered, releases state.
    void (*free)(void *state);
} cg_srv_backend;

#endif
