// session.c — a single-sequence generation session over the batched engine (see session.h).
//
// Invariant: kv holds exactly n_past positions of sequence 0; logits holds the last fed token's
// n_vocab logits. All memory is owned here.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/session.h"

struct cg_session {
    cg_model *model;
    cg_vocab *vocab;
    cg_model_ctx *ctx;
    cg_kv *kv;
    int n_ctx, n_batch, n_past;
    float *logits;     // n_vocab
    int32_t *pos, *seq;
};

void cg_session_free(cg_session *s) {
    if (!s) return;
    free(s->logits);
    free(s->pos);
    free(s->seq);
    cg_kv_free(s->kv);
    cg_model_ctx_free(s->ctx);
    cg_vocab_free(s->vocab);
    cg_model_free(s->model);
    free(s);
}

cg_status cg_session_open(const char *path, const cg_session_params *p, cg_session **out, cg_err *err) {
    cg_status st;
    *out = NULL;
    cg_session *s = calloc(1, sizeof *s);
    if (!s) return cg_err_set(err, CG_ERR_NOMEM, "session: out of memory");
    if ((st = cg_model_load(path, &s->model, err))) goto fail;
    if ((st = cg_vocab_load(cg_model_gguf(s->model), &s->vocab, err))) {
        cg_err_wrap(err, "%s", path);
        goto fail;
    }
    const cg_hparams *h = cg_model_hparams(s->model);
    if (cg_vocab_n_tokens(s->vocab) > (uint32_t)h->n_vocab) {
        st = cg_err_set(err, CG_ERR_FORMAT, "%s: the vocabulary has %u tokens but the model only %lld outputs", path,
                        cg_vocab_n_tokens(s->vocab), (long long)h->n_vocab);
        goto fail;
    }
    s->n_ctx = p->n_ctx > 0 ? p->n_ctx : (int)(h->n_ctx_train < 4096 ? h->n_ctx_train : 4096);
    if (s->n_ctx > (1 << 20)) {
        st = cg_err_set(err, CG_ERR_INVALID, "session: context of %d tokens is above the limit of %d", s->n_ctx, 1 << 20);
        goto fail;
    }
    s->n_batch = p->n_batch > 0 ? p->n_batch : 512;
    if ((st = cg_model_ctx_new(s->model, p->n_threads, &s->ctx, err))) goto fail;
    enum { BLOCK = 16 };
    cg_kv_params kp = cg_model_kv_params(s->model, p->kv_type, BLOCK, (s->n_ctx + BLOCK - 1) / BLOCK, 1);
    if ((st = cg_kv_new(&kp, &s->kv, err))) goto fail;
    s->logits = malloc((size_t)h->n_vocab * sizeof(float));
    s->pos = malloc((size_t)s->n_batch * sizeof(int32_t));
    s->seq = calloc((size_t)s->n_batch, sizeof(int32_t));
    if (!s->logits || !s->pos || !s->seq) {
        st = cg_err_set(err, CG_ERR_NOMEM, "session: out of memory");
        goto fail;
    }
    *out = s;
    return CG_OK;
fail:
    cg_session_free(s);
    return st;
}

const cg_model *cg_session_model(const cg_session *s) { return s->model; }
const cg_vocab *cg_session_vocab(const cg_session *s) { return s->vocab; }
int cg_session_n_ctx(const cg_session *s) { return s->n_ctx; }
int cg_session_n_past(const cg_session *s) { return s->n_past; }

cg_status cg_session_feed(cg_session *s, const int32_t *tokens, size_t n, const float **logits, cg_err *err) {
    if (n == 0) return cg_err_set(err, CG_ERR_INVALID, "session: nothing to evaluate (0 tokens)");
    if (n > (size_t)(s->n_ctx - s->n_past)) {
        if (s->n_past == 0)
            return cg_err_set(err, CG_ERR_LIMIT, "the prompt has %zu tokens but the context holds only %d", n, s->n_ctx);
        return cg_err_set(err, CG_ERR_LIMIT,
                          "%zu more tokens do not fit the context of %d tokens (%d already used, %d left)", n, s->n_ctx,
                          s->n_past, s->n_ctx - s->n_past);
    }
    int start = s->n_past;
    for (size_t i = 0; i < n; i += (size_t)s->n_batch) {
        int m = (int)(n - i < (size_t)s->n_batch ? n - i : (size_t)s->n_batch);
        for (int j = 0; j < m; j++) s->pos[j] = s->n_past + j;
        cg_batch b = {.n = m, .token = tokens + i, .pos = s->pos, .seq = s->seq, .logits = NULL};
        cg_status st = cg_model_decode(s->ctx, s->kv, &b, s->logits, err);
        if (st) {
            cg_kv_seq_truncate(s->kv, 0, start);
            s->n_past = start;
            return st;
        }
        s->n_past += m;
    }
    *logits = s->logits;
    return CG_OK;
}

void cg_session_rewind(cg_session *s, int n_keep) {
    if (n_keep < 0) n_keep = 0;
    if (n_keep >= s->n_past) return;
    cg_kv_seq_truncate(s->kv, 0, n_keep);
    s->n_past = n_keep;
}

// splitmix64: small, good enough for sampling, state supplied by the caller.
static uint64_t next_u64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int32_t cg_sample_token(const float *logits, int64_t n_vocab, float temp, uint64_t *rng) {
    int32_t best = 0;
    for (int64_t i = 1; i < n_vocab; i++)
        if (logits[i] > logits[best]) best = (int32_t)i;
    if (!(temp > 0.0f)) return best;
    double sum = 0.0;
    for (int64_t i = 0; i < n_vocab; i++) sum += exp((double)(logits[i] - logits[best]) / temp);
    double r = (double)(next_u64(rng) >> 11) * 0x1p-53 * sum;
    for (int64_t i = 0; i < n_vocab; i++) {
        r -= exp((double)(logits[i] - logits[best]) / temp);
        if (r < 0.0) return (int32_t)i;
    }
    return best;   // rounding left a sliver: the most likely token
}
