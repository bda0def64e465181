// sched.c — the engine thread: admission, chunked prefill interleaved with decode, prefix reuse.
//
// Invariants (engine thread unless noted):
//   - every sequence id is in exactly one place: the free list or a running request's choices (the
//     prefix cache holds KV blocks, not sequences);
//   - `reserved` is the sum of the running requests' block reservations; a request is admitted
//     only while reserved + its reservation + blocks the prefix cache spans ≤ the pool, so
//     cg_model_decode never meets a full pool for a running sequence;
//   - for a running request in DECODE, each live choice's KV holds prompt + gen[0..n_gen-1) and
//     `last` (= gen[n_gen-1]) is the token the next step feeds at position n_prompt + n_gen - 1;
//   - the waiting queue, the running list's membership, cancel flags and the stats are guarded by
//     `mu`; callbacks run with `mu` released.
#include "engine/sched.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/time.h"
#include "engine/prefix.h"

enum { PH_WAIT = 0, PH_PREFILL, PH_DECODE };

typedef struct choice {
    int seq;
    int32_t last;
    uint32_t n_gen;
    bool done;
} choice;

typedef struct embed_job {
    const int32_t *tokens;  // borrowed from the blocked caller
    int32_t n;
    cg_pooling pooling;
    bool normalize;
    float *out;
    bool done;              // guarded by mu
    cg_status st;
    cg_err err;
    struct embed_job *next;
} embed_job;

typedef struct req {
    uint64_t id;
    int32_t *prompt;
    size_t n_prompt;
    uint32_t n_choices;
    int64_t limit;          // tokens each choice may generate
    uint64_t deadline_ns;
    bool no_cache;
    int64_t reserve;        // KV blocks reserved while running
    const cg_sched_ops *ops;
    void *user;
    int phase;
    size_t n_done_prompt;   // prompt tokens already in the KV of choice 0
    uint32_t n_cached;
    bool cancelled;         // guarded by mu
    choice *ch;
    int32_t *gen0;          // choice 0's generated tokens (for the prefix cache)
    size_t n_gen0, cap_gen0;
    struct req *next;
} req;

struct cg_sched {
    const cg_model *m;
    cg_sched_params p;
    int64_t n_vocab;
    cg_kv *kv;
    cg_model_ctx *ctx;
    cg_prefix *prefix;
    int max_seqs;
    int *free_seqs;
    int n_free_seqs;
    int64_t reserved;
    // batch buffers
    int32_t *b_tok, *b_pos, *b_seq;
    bool *b_logits;
    req **b_req;            // per output row: the request
    int32_t *b_choice;      // per output row: choice index, -1: prefill end
    float *logits;
    int max_batch, max_out;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    uint64_t next_id;
    req *wait_head, *wait_tail;
    size_t n_wait;
    embed_job *emb_head, *emb_tail;   // guarded by mu
    size_t n_emb;
    pthread_cond_t emb_cv;  // signalled when an embedding job is done
    req **running;          // membership guarded by mu; contents engine-thread
    req **run_snap;         // [n_parallel] step()'s snapshot of `running` (no allocation per step)
    size_t n_running;
    int n_running_seqs;     // sequences of running requests (≤ n_parallel)
    cg_sched_stats stats;
};

static int64_t blocks_for(int64_t tokens, int bs) { return (tokens + bs - 1) / bs; }

static void req_free(req *r) {
    if (!r) return;
    free(r->prompt);
    free(r->ch);
    free(r->gen0);
    free(r);
}

int cg_sched_n_ctx(const cg_sched *s) { return s->p.n_ctx; }

// ---- sequence ids --------------------------------------------------------------------------------

static void seq_release(cg_sched *s, int seq) {
    cg_kv_seq_clear(s->kv, seq);
    s->free_seqs[s->n_free_seqs++] = seq;
}

static bool evict_one(cg_sched *s) { return cg_prefix_evict_leaf(s->prefix); }

// ---- finishing -------------------------------------------------------------------------------------

// Releases r's sequences (offering choice 0's KV to the prefix cache) and its reservation, removes
// it from the running list and calls done(). Engine thread, mu not held.
static void finish(cg_sched *s, req *r, cg_sched_end end, cg_status st, const char *msg) {
    if (r->phase != PH_WAIT) {
        for (uint32_t i = 0; i < r->n_choices; i++) {
            int seq = r->ch[i].seq;
            if (seq < 0) continue;
            r->ch[i].seq = -1;
            if (i == 0 && !r->no_cache && end != CG_SCHED_END_ERROR && s->prefix) {
                // KV holds the prompt part done so far and, while decoding, every token but the last.
                size_t n_kv = r->n_done_prompt;
                int32_t *toks = r->prompt;
                int32_t *joined = NULL;
                if (r->phase == PH_DECODE && r->n_gen0 > 1) {
                    size_t n_extra = r->n_gen0 - 1;
                    joined = malloc((r->n_prompt + n_extra) * sizeof *joined);
                    if (joined) {
                        memcpy(joined, r->prompt, r->n_prompt * sizeof *joined);
                        memcpy(joined + r->n_prompt, r->gen0, n_extra * sizeof *joined);
                        toks = joined;
                        n_kv = r->n_prompt + n_extra;
                    }
                }
                (void)cg_prefix_insert(s->prefix, seq, toks, n_kv);   // caps n_kv at the sequence's length
                free(joined);
            }
            seq_release(s, seq);
        }
        s->reserved -= r->reserve;
    }
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_running; i++)
        if (s->running[i] == r) {
            memmove(&s->running[i], &s->running[i + 1], (s->n_running - i - 1) * sizeof *s->running);
            s->n_running--;
            s->n_running_seqs -= (int)r->n_choices;
            break;
        }
    if (end == CG_SCHED_END_CANCELLED) s->stats.cancelled_total++;
    s->stats.running = s->n_running;
    s->stats.kv_blocks_free = (uint64_t)cg_kv_n_free_blocks(s->kv);
    s->stats.kv_blocks_used = s->stats.kv_blocks_total - s->stats.kv_blocks_free;
    s->stats.cache_entries = s->prefix ? cg_prefix_n_leaves(s->prefix) : 0;
    s->stats.cache_blocks = s->prefix ? (uint64_t)cg_prefix_n_blocks(s->prefix) : 0;
    pthread_mutex_unlock(&s->mu);
    r->ops->done(r->user, end, (uint32_t)r->n_prompt, r->n_cached, st, msg);
    req_free(r);
}

// ---- admission ---------------------------------------------------------------------------------------

// Starts the head of the queue if its sequences and blocks fit. mu held by the caller; returns the
// request it moved to running (PREFILL) or NULL.
static req *admit_one(cg_sched *s) {
    req *r = s->wait_head;
    if (!r) return NULL;
    int64_t pool = s->p.n_blocks;
    if (s->n_running_seqs + (int)r->n_choices > s->p.n_parallel) return NULL;
    if (s->prefix && !r->no_cache)   // touch the path this request would reuse: LRU evicts others first
        (void)cg_prefix_match(s->prefix, r->prompt, r->n_prompt);
    while ((int64_t)r->n_choices > s->n_free_seqs ||
           s->reserved + r->reserve + (s->prefix ? cg_prefix_n_blocks(s->prefix) : 0) > pool)
        if (!s->prefix || !evict_one(s)) return NULL;
    s->wait_head = r->next;
    if (!s->wait_head) s->wait_tail = NULL;
    s->n_wait--;
    r->next = NULL;
    s->reserved += r->reserve;
    for (uint32_t i = 0; i < r->n_choices; i++) r->ch[i].seq = s->free_seqs[--s->n_free_seqs];
    r->phase = PH_PREFILL;
    if (s->prefix && !r->no_cache) {
        int32_t hit = cg_prefix_attach(s->prefix, r->prompt, r->n_prompt, r->ch[0].seq);
        r->n_done_prompt = (size_t)hit;
        r->n_cached = (uint32_t)hit;
        s->stats.prefix_lookup_tokens += r->n_prompt;
        s->stats.prefix_hit_tokens += r->n_cached;
    }
    s->running[s->n_running++] = r;
    s->n_running_seqs += (int)r->n_choices;
    s->stats.running = s->n_running;
    s->stats.queue_depth = s->n_wait;
    return r;
}

// ---- one step ------------------------------------------------------------------------------------------

static void gen0_push(req *r, int32_t t) {
    if (r->n_gen0 == r->cap_gen0) {
        size_t cap = r->cap_gen0 ? r->cap_gen0 * 2 : 64;
        int32_t *g = realloc(r->gen0, cap * sizeof *g);
        if (!g) return;   // the prefix cache then keeps less; generation is unaffected
        r->gen0 = g;
        r->cap_gen0 = cap;
    }
    r->gen0[r->n_gen0++] = t;
}

// Hands logits to choice i of r and applies the token it returns. Returns true when r finished.
static bool feed_choice(cg_sched *s, req *r, uint32_t i, const float *logits) {
    choice *c = &r->ch[i];
    bool is_last = (int64_t)c->n_gen + 1 >= r->limit;
    int32_t t = r->ops->next(r->user, i, c->n_gen, logits, s->n_vocab, is_last);
    if (t < 0 || t >= s->n_vocab || is_last) {
        c->done = true;
    } else {
        c->last = t;
        c->n_gen++;
        if (i == 0) gen0_push(r, t);
    }
    if (c->done) {
        if (i == 0 && t >= 0 && t < s->n_vocab) gen0_push(r, t);
        if (c->seq >= 0 && i != 0) {   // a finished fork's blocks go back at once
            seq_release(s, c->seq);
            c->seq = -1;
        }
    }
    for (uint32_t k = 0; k < r->n_choices; k++)
        if (!r->ch[k].done) return false;
    return true;
}

static void step(cg_sched *s) {
    uint64_t t_begin = cg_time_ns(), t_fwd = 0, t_cb = 0;
    cg_err err = {0};
    int32_t n = 0, n_out = 0;
    int64_t budget = s->p.chunk;
    // Snapshot of running requests: only this thread adds or removes them.
    pthread_mutex_lock(&s->mu);
    size_t n_run = s->n_running;
    req **run = s->run_snap;
    memcpy(run, s->running, n_run * sizeof *run);
    pthread_mutex_unlock(&s->mu);
    for (size_t k = 0; k < n_run; k++) {
        req *r = run[k];
        if (r->phase == PH_DECODE) {
            for (uint32_t i = 0; i < r->n_choices; i++) {
                choice *c = &r->ch[i];
                if (c->done) continue;
                s->b_tok[n] = c->last;
                s->b_pos[n] = (int32_t)(r->n_prompt + c->n_gen - 1);
                s->b_seq[n] = c->seq;
                s->b_logits[n] = true;
                s->b_req[n_out] = r;
                s->b_choice[n_out] = (int32_t)i;
                n++, n_out++;
            }
        }
    }
    for (size_t k = 0; k < n_run && budget > 0; k++) {
        req *r = run[k];
        if (r->phase != PH_PREFILL) continue;
        size_t left = r->n_prompt - r->n_done_prompt;
        size_t take = left < (size_t)budget ? left : (size_t)budget;
        for (size_t j = 0; j < take; j++) {
            size_t pos = r->n_done_prompt + j;
            s->b_tok[n] = r->prompt[pos];
            s->b_pos[n] = (int32_t)pos;
            s->b_seq[n] = r->ch[0].seq;
            s->b_logits[n] = (pos + 1 == r->n_prompt);
            n++;
        }
        if (r->n_done_prompt + take == r->n_prompt) {
            s->b_req[n_out] = r;
            s->b_choice[n_out] = -1;
            n_out++;
        }
        budget -= (int64_t)take;
    }
    if (n == 0) goto done;
    cg_batch b = {.n = n, .token = s->b_tok, .pos = s->b_pos, .seq = s->b_seq, .logits = s->b_logits};
    uint64_t t0 = cg_time_ns();
    cg_status st = cg_model_decode(s->ctx, s->kv, &b, s->logits, &err);
    t_fwd = cg_time_ns() - t0;
    pthread_mutex_lock(&s->mu);
    s->stats.steps_total++;
    s->stats.rows_total += (uint64_t)n;
    pthread_mutex_unlock(&s->mu);
    if (st) {
        // A failed step leaves the batch's sequences in an unknown state: every running request fails.
        cg_log(CG_LOG_ERROR, "sched: forward step failed: %s", err.msg);
        for (size_t k = 0; k < n_run; k++) {
            req *r = run[k];
            if (r->phase == PH_DECODE || r->phase == PH_PREFILL) finish(s, r, CG_SCHED_END_ERROR, st, err.msg);
        }
        goto done;
    }
    // Advance prefill progress before handing out logits (a prefix end may be in this batch).
    budget = s->p.chunk;
    for (size_t k = 0; k < n_run && budget > 0; k++) {
        req *r = run[k];
        if (r->phase != PH_PREFILL) continue;
        size_t left = r->n_prompt - r->n_done_prompt;
        size_t take = left < (size_t)budget ? left : (size_t)budget;
        r->n_done_prompt += take;
        budget -= (int64_t)take;
    }
    for (int32_t o = 0; o < n_out; o++) {
        req *r = s->b_req[o];
        const float *row = s->logits + (size_t)o * (size_t)s->n_vocab;
        bool finished = false;
        uint64_t t_o = cg_time_ns();
        if (s->b_choice[o] < 0) {
            r->phase = PH_DECODE;
            for (uint32_t i = 1; i < r->n_choices; i++)
                if ((st = cg_kv_seq_fork(s->kv, r->ch[0].seq, r->ch[i].seq, &err))) break;
            if (st) {
                finish(s, r, CG_SCHED_END_ERROR, st, err.msg);
                continue;
            }
            for (uint32_t i = 0; i < r->n_choices; i++) finished = feed_choice(s, r, i, row);
        } else {
            finished = feed_choice(s, r, (uint32_t)s->b_choice[o], row);
        }
        t_cb += cg_time_ns() - t_o;
        if (finished) finish(s, r, CG_SCHED_END_OK, CG_OK, NULL);
    }
done:;
    uint64_t t_all = cg_time_ns() - t_begin;
    pthread_mutex_lock(&s->mu);
    s->stats.forward_ns += t_fwd;
    s->stats.callback_ns += t_cb;
    s->stats.step_other_ns += t_all > t_fwd + t_cb ? t_all - t_fwd - t_cb : 0;
    pthread_mutex_unlock(&s->mu);
}

// Acts on cancel flags and deadlines, admits what fits. Returns whether there is work.
static bool housekeeping(cg_sched *s, bool *stop) {
    uint64_t now = cg_time_ns();
    for (;;) {
        req *victim = NULL;
        cg_sched_end why = CG_SCHED_END_CANCELLED;
        pthread_mutex_lock(&s->mu);
        *stop = s->stopping;
        // waiting requests
        for (req **pp = &s->wait_head; *pp; pp = &(*pp)->next) {
            req *r = *pp;
            bool late = r->deadline_ns && now > r->deadline_ns;
            if (r->cancelled || late || s->stopping) {
                *pp = r->next;
                if (s->wait_tail == r) {
                    s->wait_tail = NULL;
                    for (req *q = s->wait_head; q; q = q->next) s->wait_tail = q;
                }
                s->n_wait--;
                s->stats.queue_depth = s->n_wait;
                if (r->cancelled || s->stopping) s->stats.cancelled_total++;
                why = (r->cancelled || s->stopping) ? CG_SCHED_END_CANCELLED : CG_SCHED_END_TIMEOUT;
                victim = r;
                break;
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (!victim) break;
        victim->ops->done(victim->user, why, (uint32_t)victim->n_prompt, 0, CG_OK, NULL);
        req_free(victim);
    }
    for (;;) {
        req *victim = NULL;
        cg_sched_end why = CG_SCHED_END_CANCELLED;
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->n_running; i++) {
            req *r = s->running[i];
            bool late = r->deadline_ns && now > r->deadline_ns;
            if (r->cancelled || late || s->stopping) {
                victim = r;
                why = (r->cancelled || s->stopping) ? CG_SCHED_END_CANCELLED : CG_SCHED_END_TIMEOUT;
                break;
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (!victim) break;
        finish(s, victim, why, CG_OK, NULL);
    }
    pthread_mutex_lock(&s->mu);
    if (!s->stopping)
        while (admit_one(s)) {}
    bool work = s->n_running > 0;
    s->stats.kv_blocks_free = (uint64_t)cg_kv_n_free_blocks(s->kv);
    s->stats.kv_blocks_used = s->stats.kv_blocks_total - s->stats.kv_blocks_free;
    s->stats.cache_entries = s->prefix ? cg_prefix_n_leaves(s->prefix) : 0;
    s->stats.cache_blocks = s->prefix ? (uint64_t)cg_prefix_n_blocks(s->prefix) : 0;
    pthread_mutex_unlock(&s->mu);
    return work;
}

// ---- embeddings ------------------------------------------------------------------------------------

static void embed_finish(cg_sched *s, embed_job *j) {
    pthread_mutex_lock(&s->mu);
    j->done = true;
    pthread_cond_broadcast(&s->emb_cv);
    pthread_mutex_unlock(&s->mu);
}

// Runs the oldest embedding job, if any, on the scratch sequence. Engine thread.
static void embed_one(cg_sched *s) {
    pthread_mutex_lock(&s->mu);
    embed_job *j = s->emb_head;
    if (j) {
        s->emb_head = j->next;
        if (!s->emb_head) s->emb_tail = NULL;
        s->n_emb--;
    }
    pthread_mutex_unlock(&s->mu);
    if (!j) return;
    int64_t need = blocks_for(j->n, s->p.block_size);
    while (cg_kv_n_free_blocks(s->kv) < need && s->prefix && evict_one(s)) {}
    int n_free = cg_kv_n_free_blocks(s->kv);
    if (n_free < need)
        j->st = cg_err_set(&j->err, CG_ERR_STATE,
                           "the server is busy: the input needs %lld KV blocks and %d are free now", (long long)need,
                           n_free);
    else
        j->st = cg_model_embed(s->ctx, s->kv, s->max_seqs, j->tokens, j->n, s->p.chunk, j->pooling, j->normalize,
                               j->out, &j->err);
    pthread_mutex_lock(&s->mu);
    s->stats.kv_blocks_free = (uint64_t)cg_kv_n_free_blocks(s->kv);
    s->stats.kv_blocks_used = s->stats.kv_blocks_total - s->stats.kv_blocks_free;
    pthread_mutex_unlock(&s->mu);
    embed_finish(s, j);
}

// Fails every queued embedding job (the scheduler stops). Any thread.
static void embed_fail_all(cg_sched *s) {
    for (;;) {
        pthread_mutex_lock(&s->mu);
        embed_job *j = s->emb_head;
        if (j) {
            s->emb_head = j->next;
            if (!s->emb_head) s->emb_tail = NULL;
            s->n_emb--;
        }
        pthread_mutex_unlock(&s->mu);
        if (!j) return;
        j->st = cg_err_set(&j->err, CG_ERR_STATE, "the server is shutting down");
        embed_finish(s, j);
    }
}

static void *engine_main(void *arg) {
    cg_sched *s = arg;
    for (;;) {
        bool stop = false;
        bool work = housekeeping(s, &stop);
        if (stop) break;
        embed_one(s);
        if (work) {
            step(s);
            continue;
        }
        pthread_mutex_lock(&s->mu);
        while (!s->stopping && !s->wait_head && s->n_running == 0 && !s->emb_head) pthread_cond_wait(&s->cv, &s->mu);
        // A queue head that cannot be admitted with nothing running would spin: it can only be
        // admitted once the cache is evicted, which admit_one does, so this cannot persist.
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

// ---- public ----------------------------------------------------------------------------------------------

cg_status cg_sched_new(const cg_model *m, const cg_sched_params *pin, cg_sched **out, cg_err *err) {
    cg_status st = CG_OK;
    const cg_hparams *h = cg_model_hparams(m);
    cg_sched_params p = *pin;
    if (p.n_ctx <= 0) p.n_ctx = h->n_ctx_train > 0 && h->n_ctx_train < 4096 ? (int)h->n_ctx_train : 4096;
    if (p.block_size <= 0) p.block_size = 16;
    if (p.n_parallel <= 0) p.n_parallel = 4;
    if (p.max_queue <= 0) p.max_queue = 64;
    if (p.chunk <= 0) p.chunk = 256;
    if (p.n_ctx > (1 << 20) || p.n_parallel > 1024 || p.block_size > 4096 || p.chunk > 65536 || p.n_cache > (1 << 24))
        return cg_err_set(err, CG_ERR_INVALID,
                          "sched: n_ctx %d (≤ 1048576), n_parallel %d (≤ 1024), block_size %d (≤ 4096), chunk %d "
                          "(≤ 65536) or n_cache %d (≤ 16777216) out of range",
                          p.n_ctx, p.n_parallel, p.block_size, p.chunk, p.n_cache);
    int64_t per_seq = blocks_for(p.n_ctx, p.block_size);
    if (p.n_blocks <= 0) p.n_blocks = (int)((p.n_parallel + 1) * per_seq + p.n_parallel);
    cg_sched *s = calloc(1, sizeof *s);
    if (!s) return cg_err_set(err, CG_ERR_NOMEM, "sched: out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->emb_cv, NULL);
    s->m = m;
    s->p = p;
    s->n_vocab = h->n_vocab;
    s->max_seqs = p.n_parallel;
    s->next_id = 1;
    // One more sequence id than requests and cache use: the embeddings' scratch sequence.
    cg_kv_params kp = cg_model_kv_params(m, p.kv_type, p.block_size, p.n_blocks, s->max_seqs + 1);
    if ((st = cg_kv_new(&kp, &s->kv, err))) goto fail;
    // The whole pool resident up front: a server's memory figure then does not creep up as
    // requests first touch blocks (the pool is sized for the worst case anyway).
    cg_kv_prefault(s->kv);
    if ((st = cg_model_ctx_new(m, p.n_threads, &s->ctx, err))) goto fail;
    if (p.n_cache >= 0 && (st = cg_prefix_new(s->kv, p.n_cache > 0 && p.n_cache < p.n_blocks ? p.n_cache : p.n_blocks,
                                               &s->prefix, err)))
        goto fail;
    s->max_batch = p.chunk + p.n_parallel;
    s->max_out = 2 * p.n_parallel;
    s->free_seqs = malloc((size_t)s->max_seqs * sizeof *s->free_seqs);
    s->b_tok = malloc((size_t)s->max_batch * sizeof *s->b_tok);
    s->b_pos = malloc((size_t)s->max_batch * sizeof *s->b_pos);
    s->b_seq = malloc((size_t)s->max_batch * sizeof *s->b_seq);
    s->b_logits = malloc((size_t)s->max_batch * sizeof *s->b_logits);
    s->b_req = malloc((size_t)s->max_out * sizeof *s->b_req);
    s->b_choice = malloc((size_t)s->max_out * sizeof *s->b_choice);
    s->running = malloc((size_t)p.n_parallel * sizeof *s->running);
    s->run_snap = malloc((size_t)p.n_parallel * sizeof *s->run_snap);
    s->logits = malloc((size_t)s->max_out * (size_t)s->n_vocab * sizeof *s->logits);
    if (!s->free_seqs || !s->b_tok || !s->b_pos || !s->b_seq || !s->b_logits || !s->b_req || !s->b_choice ||
        !s->running || !s->run_snap || !s->logits) {
        st = cg_err_set(err, CG_ERR_NOMEM, "sched: out of memory");
        goto fail;
    }
    for (int i = 0; i < s->max_seqs; i++) s->free_seqs[s->n_free_seqs++] = s->max_seqs - 1 - i;
    s->stats.kv_blocks_total = (uint64_t)p.n_blocks;
    s->stats.kv_blocks_free = (uint64_t)cg_kv_n_free_blocks(s->kv);
    if (pthread_create(&s->thread, NULL, engine_main, s)) {
        st = cg_err_set(err, CG_ERR_IO, "sched: cannot start the engine thread");
        goto fail;
    }
    s->thread_started = true;
    *out = s;
    return CG_OK;
fail:
    cg_sched_free(s);
    return st;
}

void cg_sched_free(cg_sched *s) {
    if (!s) return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        // The thread's last housekeeping cancelled everything it knew; requests still in the
        // running list (none normally) are finished here.
        bool stop;
        housekeeping(s, &stop);
    }
    embed_fail_all(s);
    cg_prefix_free(s->prefix);
    cg_kv_free(s->kv);
    cg_model_ctx_free(s->ctx);
    free(s->free_seqs);
    free(s->b_tok);
    free(s->b_pos);
    free(s->b_seq);
    free(s->b_logits);
    free(s->b_req);
    free(s->b_choice);
    free(s->running);
    free(s->run_snap);
    free(s->logits);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->emb_cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

cg_status cg_sched_submit(cg_sched *s, const cg_sched_req *in, const cg_sched_ops *ops, void *user, uint64_t *id,
                          cg_err *err) {
    const int n_ctx = s->p.n_ctx;
    if (in->n_prompt == 0) return cg_err_set(err, CG_ERR_INVALID, "sched: the prompt is empty");
    if (in->n_choices == 0 || in->n_choices > (uint32_t)s->p.n_parallel)
        return cg_err_set(err, CG_ERR_INVALID, "sched: n = %u choices; this server runs at most %d sequences at once",
                          in->n_choices, s->p.n_parallel);
    for (size_t i = 0; i < in->n_prompt; i++)
        if (in->prompt[i] < 0 || in->prompt[i] >= s->n_vocab)
            return cg_err_set(err, CG_ERR_INVALID, "sched: prompt token %zu is %d (vocabulary 0..%lld)", i,
                              in->prompt[i], (long long)s->n_vocab - 1);
    if (in->n_prompt >= (size_t)n_ctx)
        return cg_err_set(err, CG_ERR_LIMIT,
                          "the prompt has %zu tokens and the context holds %d (at least one token must be generated)",
                          in->n_prompt, n_ctx);
    int64_t room = (int64_t)n_ctx - (int64_t)in->n_prompt;
    if (in->max_new > room)
        return cg_err_set(err, CG_ERR_LIMIT,
                          "the prompt has %zu tokens and max_tokens is %lld: %lld in total, above the context of %d "
                          "tokens",
                          in->n_prompt, (long long)in->max_new, (long long)in->n_prompt + (long long)in->max_new, n_ctx);
    if (in->max_new == 0) return cg_err_set(err, CG_ERR_INVALID, "sched: max_new is 0");
    int64_t limit = in->max_new < 0 ? room : in->max_new;
    int bs = s->p.block_size;
    int64_t reserve = blocks_for((int64_t)in->n_prompt, bs) + (int64_t)in->n_choices * (blocks_for(limit, bs) + 1);
    if (reserve > s->p.n_blocks)
        return cg_err_set(err, CG_ERR_LIMIT,
                          "the request needs %lld KV blocks (%zu prompt tokens, %u choices of up to %lld tokens) and the "
                          "pool has %d",
                          (long long)reserve, in->n_prompt, in->n_choices, (long long)limit, s->p.n_blocks);
    req *r = calloc(1, sizeof *r);
    if (!r) return cg_err_set(err, CG_ERR_NOMEM, "sched: out of memory");
    r->prompt = malloc(in->n_prompt * sizeof *r->prompt);
    r->ch = calloc(in->n_choices, sizeof *r->ch);
    if (!r->prompt || !r->ch) {
        req_free(r);
        return cg_err_set(err, CG_ERR_NOMEM, "sched: out of memory");
    }
    memcpy(r->prompt, in->prompt, in->n_prompt * sizeof *r->prompt);
    for (uint32_t i = 0; i < in->n_choices; i++) r->ch[i].seq = -1;
    r->n_prompt = in->n_prompt;
    r->n_choices = in->n_choices;
    r->limit = limit;
    r->deadline_ns = in->deadline_ns;
    r->no_cache = in->no_cache;
    r->reserve = reserve;
    r->ops = ops;
    r->user = user;
    pthread_mutex_lock(&s->mu);
    if (s->stopping || s->n_wait >= (size_t)s->p.max_queue) {
        bool stopping = s->stopping;
        size_t n_wait = s->n_wait;
        pthread_mutex_unlock(&s->mu);
        req_free(r);
        return stopping ? cg_err_set(err, CG_ERR_STATE, "the server is shutting down")
                        : cg_err_set(err, CG_ERR_STATE, "the server is busy: %zu requests are already waiting", n_wait);
    }
    r->id = s->next_id++;
    *id = r->id;
    if (s->wait_tail) s->wait_tail->next = r;
    else s->wait_head = r;
    s->wait_tail = r;
    s->n_wait++;
    s->stats.queue_depth = s->n_wait;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return CG_OK;
}

void cg_sched_cancel(cg_sched *s, uint64_t id) {
    pthread_mutex_lock(&s->mu);
    for (req *r = s->wait_head; r; r = r->next)
        if (r->id == id) r->cancelled = true;
    for (size_t i = 0; i < s->n_running; i++)
        if (s->running[i]->id == id) s->running[i]->cancelled = true;
    pthread_mutex_unlock(&s->mu);
}

void cg_sched_stats_get(cg_sched *s, cg_sched_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}

cg_status cg_sched_embed(cg_sched *s, const int32_t *tokens, size_t n, cg_pooling pooling, bool normalize, float *out,
                         cg_err *err) {
    if (n == 0) return cg_err_set(err, CG_ERR_INVALID, "the input is empty");
    if (n > (size_t)s->p.n_ctx)
        return cg_err_set(err, CG_ERR_LIMIT, "the input has %zu tokens and the context holds %d", n, s->p.n_ctx);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= s->n_vocab)
            return cg_err_set(err, CG_ERR_INVALID, "input token %zu is %d (vocabulary 0..%lld)", i, tokens[i],
                              (long long)s->n_vocab - 1);
    if (blocks_for((int64_t)n, s->p.block_size) > s->p.n_blocks)
        return cg_err_set(err, CG_ERR_LIMIT, "the input needs %lld KV blocks and the pool has %d",
                          (long long)blocks_for((int64_t)n, s->p.block_size), s->p.n_blocks);
    embed_job j = {.tokens = tokens, .n = (int32_t)n, .pooling = pooling, .normalize = normalize, .out = out};
    pthread_mutex_lock(&s->mu);
    if (s->stopping || s->n_emb >= (size_t)s->p.max_queue) {
        bool stopping = s->stopping;
        size_t n_emb = s->n_emb;
        pthread_mutex_unlock(&s->mu);
        return stopping ? cg_err_set(err, CG_ERR_STATE, "the server is shutting down")
                        : cg_err_set(err, CG_ERR_STATE, "the server is busy: %zu embedding inputs are already waiting",
                                     n_emb);
    }
    if (s->emb_tail) s->emb_tail->next = &j;
    else s->emb_head = &j;
    s->emb_tail = &j;
    s->n_emb++;
    pthread_cond_signal(&s->cv);
    while (!j.done) pthread_cond_wait(&s->emb_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (j.st && err) *err = j.err;
    return j.st;
}
