// embed.c — embeddings: a token sequence through the hidden-state output mode, pooled.
//
// cg_model_embed borrows one sequence id of the caller's KV cache as scratch: it clears it, feeds
// the tokens from position 0 in chunks (each chunk attends to the earlier ones through the cache,
// exactly as a prompt prefill does), pools the rows it asked for, and clears the sequence again on
// every path, so other sequences of the cache are never touched and no block stays taken.
// Only the rows the pooling needs are requested from the forward pass (MEAN/NONE: every token,
// CLS: the first, LAST: the last), and the LM head is never computed.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"
#include "model/model.h"

static void l2_normalize(float *v, int64_t n) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)v[i] * v[i];
    if (ss <= 0.0) return;   // a zero vector has no direction; it stays zero
    double inv = 1.0 / sqrt(ss);
    for (int64_t i = 0; i < n; i++) v[i] = (float)(v[i] * inv);
}

cg_status cg_model_embed(cg_model_ctx *c, cg_kv *kv, int seq, const int32_t *tokens, int32_t n, int32_t n_chunk,
                         cg_pooling pooling, bool normalize, float *out, cg_err *err) {
    const cg_hparams *h = cg_model_hparams(cg_model_ctx_model(c));
    const cg_kv_params *kp = cg_kv_get_params(kv);
    const int64_t E = h->n_embd;
    cg_status st = CG_OK;
    int32_t *pos = NULL, *seqs = NULL;
    bool *want = NULL;
    float *rows = NULL;
    double *acc = NULL;
    if (n < 1) return cg_err_set(err, CG_ERR_INVALID, "embed: %d tokens (at least 1 needed)", n);
    if (seq < 0 || seq >= kp->max_seqs)
        return cg_err_set(err, CG_ERR_INVALID, "embed: sequence id %d out of range 0..%d", seq, kp->max_seqs - 1);
    if (pooling != CG_POOLING_NONE && pooling != CG_POOLING_MEAN && pooling != CG_POOLING_CLS &&
        pooling != CG_POOLING_LAST)
        return cg_err_set(err, CG_ERR_UNSUPPORTED, "embed: pooling type %d is not supported (none, mean, cls, last are)",
                          (int)pooling);
    if (n_chunk <= 0) n_chunk = 512;
    if (n_chunk > n) n_chunk = n;
    size_t row_bytes;
    if (!cg_mul_size((size_t)n_chunk, (size_t)E * sizeof(float), &row_bytes))
        return cg_err_set(err, CG_ERR_LIMIT, "embed: %d x %lld hidden floats overflow", n_chunk, (long long)E);
    pos = malloc((size_t)n_chunk * sizeof *pos);
    seqs = malloc((size_t)n_chunk * sizeof *seqs);
    want = malloc((size_t)n_chunk * sizeof *want);
    rows = malloc(row_bytes);
    acc = calloc((size_t)E, sizeof *acc);
    if (!pos || !seqs || !want || !rows || !acc) {
        st = cg_err_set(err, CG_ERR_NOMEM, "embed: out of memory for %d tokens", n_chunk);
        goto out;
    }
    cg_kv_seq_clear(kv, seq);
    for (int32_t i0 = 0; i0 < n; i0 += n_chunk) {
        int32_t m = n - i0 < n_chunk ? n - i0 : n_chunk;
        int32_t n_rows = 0;
        for (int32_t j = 0; j < m; j++) {
            int32_t p = i0 + j;
            pos[j] = p;
            seqs[j] = seq;
            want[j] = pooling == CG_POOLING_MEAN || pooling == CG_POOLING_NONE ||
                      (pooling == CG_POOLING_CLS && p == 0) || (pooling == CG_POOLING_LAST && p == n - 1);
            n_rows += want[j];
        }
        if (n_rows == 0) want[m - 1] = true, n_rows = 1;   // the step still has to fill the cache; one row is cheap
        cg_batch b = {.n = m, .token = tokens + i0, .pos = pos, .seq = seqs, .logits = want};
        if ((st = cg_model_decode_hidden(c, kv, &b, rows, err))) goto out;
        int32_t r = 0;
        for (int32_t j = 0; j < m; j++) {
            if (!want[j]) continue;
            const float *row = rows + (int64_t)r++ * E;
            int32_t p = i0 + j;
            if (pooling == CG_POOLING_MEAN) {
                for (int64_t d = 0; d < E; d++) acc[d] += row[d];
            } else if (pooling == CG_POOLING_NONE) {
                memcpy(out + (int64_t)p * E, row, (size_t)E * sizeof(float));
            } else if ((pooling == CG_POOLING_CLS && p == 0) || (pooling == CG_POOLING_LAST && p == n - 1)) {
                memcpy(out, row, (size_t)E * sizeof(float));
            }
        }
    }
    if (pooling == CG_POOLING_MEAN)
        for (int64_t d = 0; d < E; d++) out[d] = (float)(acc[d] / n);
    if (normalize) {
        int32_t n_vec = pooling == CG_POOLING_NONE ? n : 1;
        for (int32_t i = 0; i < n_vec; i++) l2_normalize(out + (int64_t)i * E, E);
    }
out:
    cg_kv_seq_clear(kv, seq);
    free(pos);
    free(seqs);
    free(want);
    free(rows);
    free(acc);
    return st;
}
