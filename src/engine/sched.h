// sched.h — the engine thread: continuous batching of many token sequences over one model and one
// paged KV cache, with a prefix cache (engine/prefix.h) and KV-block admission control.
//
// A request is a prompt (token ids) and n_choices continuations. The scheduler owns the model
// forward pass and the cache; what token comes next is the caller's decision, made in a callback
// (ops->next) that receives the logits row of a choice. That keeps sampling, stop strings, grammars
// and detokenization out of this module (they live in server/backend_engine.c), and lets tests
// drive the scheduler with plain argmax.
//
// Each loop iteration of the engine thread: (1) cancels, deadlines; (2) admits waiting requests in
// FIFO order while their worst-case KV blocks fit the pool (evicting prefix-cache leaves, least
// recently used first); (3) builds ONE batch: the last token of every decoding choice plus up to
// `chunk` prompt tokens of prefilling requests (oldest first), so running streams keep flowing
// while long prompts prefill; (4) one cg_model_decode; (5) calls ops->next for every choice that got
// logits. A request that finished prefill forks its sequence into n_choices sequences (sharing the
// prompt's blocks). A finished, cancelled or failed request frees its sequences; the blocks of a
// finished one are offered to the prefix cache first.
//
// Admission reserves, per request, blocks(prompt) + n_choices * (blocks(limit) + 1) where limit is
// the number of tokens it may generate, so a running request never runs out of KV blocks. A request
// that could never fit (prompt + max_new above n_ctx, or a reservation above the whole pool) is
// refused by cg_sched_submit with CG_ERR_LIMIT (both numbers in the message); a request that merely
// has to wait waits in a bounded queue (CG_ERR_STATE when that queue is full).
//
// Ownership: the model is borrowed and must outlive the scheduler; the scheduler owns its KV cache,
// forward context and thread. Callbacks are called on the engine thread, never with an internal
// lock held (a callback may call cg_sched_cancel or cg_sched_submit).
// Thread-safety: cg_sched_submit, cg_sched_cancel and cg_sched_stats may be called from any thread
// concurrently; cg_sched_free from one thread once.
#ifndef CG_ENGINE_SCHED_H
#define CG_ENGINE_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "model/model.h"

typedef struct cg_sched cg_sched;

typedef struct cg_sched_params {
    int n_ctx;           // tokens per sequence (≤ 0: the model's training context capped at 4096)
    int block_size;      // KV tokens per block (≤ 0: 16)
    int n_blocks;        // KV pool (≤ 0: n_parallel * n_ctx / block_size)
    int n_parallel;      // sequences decoding at once (≤ 0: 4)
    int max_queue;       // requests waiting for admission (≤ 0: 64)
    int chunk;           // prompt tokens per step over all prefilling requests (≤ 0: 256)
    int n_cache;         // prefix-cache capacity in KV blocks (< 0: no cache; 0 or above n_blocks: n_blocks)
    int n_threads;       // forward-pass threads (≤ 0: one per CPU)
    cg_kv_dtype kv_type; // CG_KV_F16 (default) or CG_KV_F32
} cg_sched_params;

typedef enum cg_sched_end {
    CG_SCHED_END_OK = 0,     // every choice finished
    CG_SCHED_END_CANCELLED,  // cg_sched_cancel
    CG_SCHED_END_TIMEOUT,    // the deadline passed
    CG_SCHED_END_ERROR,      // the forward pass failed (status and message given)
} cg_sched_end;

typedef struct cg_sched_ops {
    // Logits (n_vocab floats, borrowed for the call) after the prompt (i_step 0) or after the
    // choice's previous token. Returns the choice's next token, or a negative value to finish the
    // choice. is_last: the token returned now is the last one the choice may have (max_new or the
    // context is reached) — the choice finishes after it, and the callee should report "length".
    int32_t (*next)(void *user, uint32_t i_choice, uint32_t i_step, const float *logits, int64_t n_vocab,
                    bool is_last);
    // Terminal, exactly once per accepted request; nothing is called for the request afterwards.
    // n_cached: prompt tokens taken from the prefix cache. message: NULL unless END_ERROR.
    void (*done)(void *user, cg_sched_end end, uint32_t n_prompt, uint32_t n_cached, cg_status st,
                 const char *message);
} cg_sched_ops;

typedef struct cg_sched_req {
    const int32_t *prompt; size_t n_prompt;   // borrowed for the call (copied); n_prompt ≥ 1
    uint32_t n_choices;                       // ≥ 1
    int64_t max_new;                          // tokens per choice; < 0: until the context is full
    uint64_t deadline_ns;                     // cg_time_ns() deadline; 0: none
    bool no_cache;                            // neither read nor feed the prefix cache
} cg_sched_req;

typedef struct cg_sched_stats {
    uint64_t kv_blocks_used, kv_blocks_free, kv_blocks_total;
    uint64_t queue_depth, running;
    uint64_t prefix_hit_tokens, prefix_lookup_tokens;
    uint64_t cancelled_total, steps_total;
    // Engine-thread wall time, ns: in forward passes (cg_model_decode), in ops->next callbacks
    // (sampling, detokenizing, streaming), and in the rest of step() (batch building, KV and
    // prefix-cache bookkeeping, finishing requests); rows_total: tokens fed to forward passes.
    uint64_t forward_ns, callback_ns, step_other_ns, rows_total;
    uint64_t cache_entries;   // distinct cached prefixes (leaves of the prefix tree)
    uint64_t cache_blocks;    // KV blocks the prefix cache references (shared ancestors once)
} cg_sched_stats;

// Creates the KV pool and the forward context and starts the engine thread.
// Errors: CG_ERR_INVALID (a parameter out of range, named), those of cg_kv_new / cg_model_ctx_new,
// CG_ERR_IO (thread creation).
cg_status cg_sched_new(const cg_model *m, const cg_sched_params *p, cg_sched **out, cg_err *err);
// Cancels every request (each still gets done()), stops and joins the thread. Accepts NULL.
void cg_sched_free(cg_sched *s);

int cg_sched_n_ctx(const cg_sched *s);

// Queues a request; ops and user must stay valid until ops->done ran (which may happen on the
// engine thread before this returns). Errors: CG_ERR_INVALID (empty prompt, n_choices 0 or above
// n_parallel, a token id out of range), CG_ERR_LIMIT (prompt + max_new above the context, or the
// reservation above the pool: the message states the numbers), CG_ERR_STATE (queue full, or the
// scheduler is stopping), CG_ERR_NOMEM.
cg_status cg_sched_submit(cg_sched *s, const cg_sched_req *r, const cg_sched_ops *ops, void *user, uint64_t *id,
                          cg_err *err);
// Marks the request cancelled; acted on at the next step. Unknown or finished ids: no effect.
void cg_sched_cancel(cg_sched *s, uint64_t id);
void cg_sched_stats_get(cg_sched *s, cg_sched_stats *out);

// Embeds tokens[0..n) (cg_model_embed with `pooling` and `normalize`) on the engine thread, between
// two decode steps, through a scratch sequence that no request uses and that is freed before the
// next step: running sequences' KV is never touched. Blocks the caller until done; `tokens` and
// `out` (n_embd floats; n * n_embd for CG_POOLING_NONE) are borrowed until it returns. The whole
// input runs before the next step, so a long input delays running streams by its prefill time.
// Errors: CG_ERR_INVALID (empty, a token id out of range), CG_ERR_LIMIT (more tokens than n_ctx, or
// than the KV pool holds), CG_ERR_STATE (not enough free KV blocks right now even after evicting
// the prefix cache, the embedding queue (max_queue) is full, or the scheduler is stopping), those of
// cg_model_embed. No deadline: an embedding waits for the queue ahead of it. cg_sched_free fails
// queued embeddings with CG_ERR_STATE, but must not run while a cg_sched_embed call may still be
// returning (stop the callers first, as the server does before freeing its backend).
cg_status cg_sched_embed(cg_sched *s, const int32_t *tokens, size_t n, cg_pooling pooling, bool normalize, float *out,
                         cg_err *err);

#endif
