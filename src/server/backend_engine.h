// backend_engine.h — the real cg_srv_backend: a GGUF model served by the scheduler thread
// (engine/sched.h) with the model's chat template, tokenizer, per-request sampler chain, stop
// strings, grammars (response_format, forced tool calls), tool-call parsing and a streaming
// detokenizer.
//
// What it does per request: renders the chat template (the model's `tokenizer.chat_template`, or
// the built-in llama.cpp would pick when the file has none or it does not render), tokenizes it
// (parse_special = true; BOS added by the vocabulary's rule unless the rendered text already starts
// with it), submits one scheduler request per prompt with n choices, and turns each choice's logits
// into a token: grammar mask → sampler chain (temperature, top_p, seed, penalties, logit_bias) →
// logprobs from the raw logits → streaming detokenizer (never half a UTF-8 character) → stop
// strings → tool-call parser. finish_reason is stop (EOG, stop string, grammar complete),
// length (max_tokens or the context) or tool_calls.
//
// Embeddings: the input (text tokenized with the vocabulary's BOS/EOS rules and special tokens
// parsed, as llama-server does; or token ids as given) runs on the engine thread between decode
// steps (cg_sched_embed), pooled as `{arch}.pooling_type` says (mean when absent, like llama.cpp's
// --pooling mean) and L2-normalised (llama-server's and OpenAI's unit vectors). info().n_embd is
// the model's n_embd, or 0 when its pooling is none or rank (no single vector per input).
//
// Ownership: the backend owns the model, vocabulary and scheduler it creates; free() releases them
// after every request got its terminal event. Thread-safety: as every backend (backend.h).
#ifndef CG_SERVER_BACKEND_ENGINE_H
#define CG_SERVER_BACKEND_ENGINE_H

#include "engine/sched.h"
#include "server/backend.h"

// Load progress: called on the loading thread with bytes of tensor data read so far out of total,
// at least once with done == total. Called only when set.
typedef void (*cg_srv_load_progress_fn)(void *user, uint64_t done, uint64_t total);

typedef struct cg_srv_engine_params {
    const char *model_path;   // borrowed for the call
    cg_sched_params sched;    // n_ctx, n_parallel, threads … (see sched.h)
    // When set, the weights are read once (one byte per page of the mapping, in file order) during
    // the load, so a cold file comes from disk now rather than during the first requests, and the
    // callback reports the bytes read.
    cg_srv_load_progress_fn progress;
    void *progress_user;      // passed to progress
} cg_srv_engine_params;

// The token a temperature-0 sampler without penalties or grammar picks (the argmax of logits + bias,
// lowest id among equal maxima, never NaN or -inf, the first +inf if any), in one pass: what the
// backend uses for plain greedy requests instead of the sampler chain. bias_id[0..n_bias) must be
// ascending and distinct, within 0..n_vocab-1 (bias -INFINITY bans). -1 when nothing is allowed.
// Pure function; any thread.
int32_t cg_srv_greedy_pick(const float *logits, int64_t n_vocab, const int32_t *bias_id, const float *bias,
                           size_t n_bias);

// Loads the model and its vocabulary, prepares the template, starts the engine thread.
// Errors: those of cg_model_load, cg_vocab_load, cg_sched_new; CG_ERR_NOMEM.
cg_status cg_srv_engine_new(const cg_srv_engine_params *p, cg_srv_backend *out, cg_err *err);

#endif
