// session.h — one model, its vocabulary, a forward context and a KV cache for ONE sequence: what
// the command-line tools (generate, logits, run) need. The server's multi-sequence scheduler uses
// model.h and kv.h directly.
//
// Ownership: a cg_session owns everything it opens; pointers it returns are borrowed until the next
// call on the session or cg_session_free. Not thread-safe: one thread drives a session.
#ifndef CG_ENGINE_SESSION_H
#define CG_ENGINE_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "model/model.h"
#include "tok/tok.h"

typedef struct cg_session cg_session;

typedef struct cg_session_params {
    int n_ctx;            // context length in tokens; ≤ 0: the model's training context, capped at 4096
    cg_kv_dtype kv_type;  // CG_KV_F16 (default) or CG_KV_F32
    int n_threads;        // ≤ 0: one per CPU
    int n_batch;          // prompt tokens per forward step; ≤ 0: 512
} cg_session_params;

// Loads the model and its vocabulary. Errors: those of cg_model_load / cg_vocab_load (the message
// starts with the path), CG_ERR_INVALID (n_ctx above 1,048,576), CG_ERR_NOMEM.
cg_status cg_session_open(const char *path, const cg_session_params *p, cg_session **out, cg_err *err);
void cg_session_free(cg_session *s);   // accepts NULL

const cg_model *cg_session_model(const cg_session *s);
const cg_vocab *cg_session_vocab(const cg_session *s);
int cg_session_n_ctx(const cg_session *s);
int cg_session_n_past(const cg_session *s);   // tokens in the sequence so far

// Appends n tokens to the sequence and runs them through the model (in steps of n_batch). On
// success *logits (n_vocab floats, borrowed until the next call) holds the last token's logits.
// Errors: CG_ERR_LIMIT when the tokens do not fit the context (the message states both numbers);
// CG_ERR_INVALID (a token id out of range, n == 0); those of cg_model_decode. On error the
// sequence keeps the tokens it had before the call.
cg_status cg_session_feed(cg_session *s, const int32_t *tokens, size_t n, const float **logits, cg_err *err);

// Forgets everything after the first n_keep tokens (0: a fresh conversation).
void cg_session_rewind(cg_session *s, int n_keep);

// Picks the next token: argmax (ties → lowest id) when temp ≤ 0, else a draw from
// softmax(logits / temp) with the caller's generator state *rng (any value; advanced by the call).
int32_t cg_sample_token(const float *logits, int64_t n_vocab, float temp, uint64_t *rng);

#endif
