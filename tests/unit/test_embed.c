// test_embed.c — the hidden-state output mode and cg_model_embed.
//
// Checks against computations that do not share the code under test:
//   - hidden state × the output matrix (dequantized here, dot products in double) = the logits of
//     cg_model_decode for the same tokens (so the hidden mode stops exactly before the LM head);
//   - mean pooling = the mean of per-token hidden states obtained one token per step;
//   - CLS / LAST pooling = the first / last of those per-token states;
//   - chunked (3 tokens per step) and whole-batch embedding agree; a normalised embedding has norm
//     1 and exactly n_embd values (a sentinel after it is untouched);
//   - embedding through a scratch sequence leaves a running sequence's KV and the free-block count
//     as they were (the next logits of the running sequence are bit-identical);
//   - `{arch}.pooling_type` from metadata (default mean; a bad value is a load error naming the key).
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/buf.h"
#include "engine/kv.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "quant/quant.h"

static const int32_t TOK[] = {1, 403, 407, 261, 378, 300, 301, 302, 303, 304, 305};
#define N_TOK ((int32_t)(sizeof TOK / sizeof TOK[0]))

typedef struct fixture {
    cg_model *m;
    cg_model_ctx *ctx;
    cg_kv *kv;
    int64_t E, nv;
} fixture;

static bool fixture_open(fixture *f, const char *rel) {
    const char *md = cg_test_models_dir();
    if (!md) return false;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", md, rel);
    if (access(path, R_OK)) return false;
    cg_err err = {0};
    CG_ASSERT_OK(cg_model_load(path, &f->m, &err), &err);
    CG_ASSERT_OK(cg_model_ctx_new(f->m, 2, &f->ctx, &err), &err);
    cg_kv_params kp = cg_model_kv_params(f->m, CG_KV_F32, 16, 16, 4);
    CG_ASSERT_OK(cg_kv_new(&kp, &f->kv, &err), &err);
    f->E = cg_model_hparams(f->m)->n_embd;
    f->nv = cg_model_hparams(f->m)->n_vocab;
    return true;
}

static void fixture_close(fixture *f) {
    cg_kv_free(f->kv);
    cg_model_ctx_free(f->ctx);
    cg_model_free(f->m);
}

// Per-token hidden states (N_TOK × E) of TOK on `seq`, one token per forward step.
static float *hidden_one_by_one(fixture *f, int seq) {
    cg_err err = {0};
    float *h = malloc((size_t)(N_TOK * f->E) * sizeof *h);
    cg_kv_seq_clear(f->kv, seq);
    for (int32_t i = 0; i < N_TOK; i++) {
        cg_batch b = {.n = 1, .token = &TOK[i], .pos = &i, .seq = &seq};
        CG_ASSERT_OK(cg_model_decode_hidden(f->ctx, f->kv, &b, h + i * f->E, &err), &err);
    }
    cg_kv_seq_clear(f->kv, seq);
    return h;
}

static double max_abs_diff(const float *a, const float *b, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

// The hidden mode stops right before the LM head: hidden · output rows = logits.
static void test_hidden_times_head_is_logits(void **state) {
    (void)state;
    fixture f = {0};
    if (!fixture_open(&f, "random/rand-llama-spm-F32.gguf")) { skip(); return; }
    cg_err err = {0};
    int32_t pos[N_TOK], seq[N_TOK];
    for (int32_t i = 0; i < N_TOK; i++) pos[i] = i, seq[i] = 0;
    cg_batch b = {.n = N_TOK, .token = TOK, .pos = pos, .seq = seq};   // last entry only
    float *hid = malloc((size_t)f.E * sizeof *hid), *lg = malloc((size_t)f.nv * sizeof *lg);
    CG_ASSERT_OK(cg_model_decode_hidden(f.ctx, f.kv, &b, hid, &err), &err);
    CG_ASSERT_OK(cg_model_decode(f.ctx, f.kv, &b, lg, &err), &err);
    const cg_gguf *g = cg_model_gguf(f.m);
    const cg_gguf_tensor *W = cg_gguf_find_tensor(g, "output.weight");
    if (!W) W = cg_gguf_find_tensor(g, "token_embd.weight");   // tied embeddings
    assert_non_null(W);
    assert_int_equal(W->ne[0], f.E);
    const cg_qtype_traits *tr = cg_qtype_get(W->type);
    size_t row_bytes = (size_t)(W->n_bytes / (uint64_t)W->ne[1]);
    float *row = malloc((size_t)f.E * sizeof *row);
    double max_d = 0, max_l = 0;
    for (int64_t v = 0; v < f.nv; v++) {
        tr->to_f32((const unsigned char *)W->data + (size_t)v * row_bytes, row, f.E);
        double dot = 0;
        for (int64_t d = 0; d < f.E; d++) dot += (double)row[d] * hid[d];
        max_d = fmax(max_d, fabs(dot - lg[v]));
        max_l = fmax(max_l, fabs(lg[v]));
    }
    printf("  hidden x output vs logits over %lld rows: max|d| %.3g (max|logit| %.3g)\n", (long long)f.nv, max_d, max_l);
    assert_true(max_d <= 1e-4 * fmax(1.0, max_l));
    free(row);
    free(hid);
    free(lg);
    fixture_close(&f);
}

// Mean / CLS / LAST pooling against per-token states computed one token per step; chunking.
static void test_pooling_matches_token_by_token(void **state) {
    (void)state;
    fixture f = {0};
    if (!fixture_open(&f, "random/rand-llama-spm-F32.gguf")) { skip(); return; }
    assert_int_equal(cg_model_hparams(f.m)->pooling, CG_POOLING_MEAN);   // no key: mean
    cg_err err = {0};
    const int64_t E = f.E;
    float *per = hidden_one_by_one(&f, 1);
    float *mean = calloc((size_t)E, sizeof *mean), *got = malloc((size_t)(E + 1) * sizeof *got);
    for (int64_t d = 0; d < E; d++) {
        double s = 0;
        for (int32_t i = 0; i < N_TOK; i++) s += per[i * E + d];
        mean[d] = (float)(s / N_TOK);
    }
    CG_ASSERT_OK(cg_model_embed(f.ctx, f.kv, 2, TOK, N_TOK, 0, CG_POOLING_MEAN, false, got, &err), &err);
    double d_mean = max_abs_diff(got, mean, E);
    float *chunked = malloc((size_t)E * sizeof *chunked);
    CG_ASSERT_OK(cg_model_embed(f.ctx, f.kv, 2, TOK, N_TOK, 3, CG_POOLING_MEAN, false, chunked, &err), &err);
    double d_chunk = max_abs_diff(got, chunked, E);
    CG_ASSERT_OK(cg_model_embed(f.ctx, f.kv, 3, TOK, N_TOK, 4, CG_POOLING_CLS, false, got, &err), &err);
    double d_cls = max_abs_diff(got, per, E);
    CG_ASSERT_OK(cg_model_embed(f.ctx, f.kv, 3, TOK, N_TOK, 4, CG_POOLING_LAST, false, got, &err), &err);
    double d_last = max_abs_diff(got, per + (N_TOK - 1) * E, E);
    float *all = malloc((size_t)(N_TOK * E) * sizeof *all);
    CG_ASSERT_OK(cg_model_embed(f.ctx, f.kv, 0, TOK, N_TOK, 5, CG_POOLING_NONE, false, all, &err), &err);
    double d_none = max_abs_diff(all, per, N_TOK * E);
    printf("  %d tokens, n_embd %lld: max|d| mean %.3g, chunked(3) vs batch %.3g, cls %.3g, last %.3g, none %.3g\n",
           N_TOK, (long long)E, d_mean, d_chunk, d_cls, d_last, d_none);
    // F32 cache: batching changes only the matmul's summation order.
    assert_true(d_mean <= 1e-5 && d_chunk <= 1e-5 && d_cls <= 1e-5 && d_last <= 1e-5 && d_none <= 1e-5);
    // Distinct inputs give distinct vectors.
    CG_ASSERT_OK(cg_model_embed(f.ctx, f.kv, 0, TOK + 1, N_TOK - 1, 0, CG_POOLING_MEAN, false, got, &err), &err);
    assert_true(max_abs_diff(got, mean, E) > 1e-3);
    free(all);
    free(chunked);
    free(per);
    free(mean);
    free(got);
    fixture_close(&f);
}

// Normalised output: unit norm, n_embd values, same direction as the raw mean.
static void test_normalized(void **state) {
    (void)state;
    fixture f = {0};
    if (!fixture_open(&f, "random/rand-qwen2-F32.gguf")) { skip(); return; }
    cg_err err = {0};
    const int64_t E = f.E;
    float *raw = malloc((size_t)E * sizeof *raw), *nrm = malloc((size_t)(E + 1) * sizeof *nrm);
    nrm[E] = 12345.0f;
    CG_ASSERT_OK(cg_model_embed(f.ctx, f.kv, 0, TOK, N_TOK, 0, CG_POOLING_MEAN, false, raw, &err), &err);
    CG_ASSERT_OK(cg_model_embed(f.ctx, f.kv, 0, TOK, N_TOK, 0, CG_POOLING_MEAN, true, nrm, &err), &err);
    double ss = 0, rs = 0, dot = 0;
    for (int64_t d = 0; d < E; d++) ss += (double)nrm[d] * nrm[d], rs += (double)raw[d] * raw[d], dot += (double)raw[d] * nrm[d];
    double cosv = dot / sqrt(rs * ss);
    printf("  qwen2 n_embd %lld: |v| = %.9f, cos(raw, normalised) = %.9f\n", (long long)E, sqrt(ss), cosv);
    assert_true(fabs(sqrt(ss) - 1.0) < 1e-6);
    assert_true(fabs(cosv - 1.0) < 1e-6);
    assert_true(nrm[E] == 12345.0f);
    free(raw);
    free(nrm);
    fixture_close(&f);
}

// A scratch sequence leaves the others alone and gives its blocks back.
static void test_scratch_sequence_isolated(void **state) {
    (void)state;
    fixture f = {0};
    if (!fixture_open(&f, "random/rand-llama-spm-F32.gguf")) { skip(); return; }
    cg_err err = {0};
    int32_t pos[N_TOK], seq[N_TOK];
    for (int32_t i = 0; i < N_TOK; i++) pos[i] = i, seq[i] = 0;
    // Sequence 0 holds the first N_TOK-1 tokens; the last one is decoded with and without an
    // embedding run in between.
    cg_batch pre = {.n = N_TOK - 1, .token = TOK, .pos = pos, .seq = seq};
    float *a = malloc((size_t)f.nv * sizeof *a), *b2 = malloc((size_t)f.nv * sizeof *b2);
    float *emb = malloc((size_t)f.E * sizeof *emb);
    CG_ASSERT_OK(cg_model_decode(f.ctx, f.kv, &pre, a, &err), &err);
    cg_batch last = {.n = 1, .token = &TOK[N_TOK - 1], .pos = &pos[N_TOK - 1], .seq = seq};
    CG_ASSERT_OK(cg_model_decode(f.ctx, f.kv, &last, a, &err), &err);
    cg_kv_seq_truncate(f.kv, 0, N_TOK - 1);
    int free_before = cg_kv_n_free_blocks(f.kv);
    static const int32_t other[] = {1, 490, 491, 492, 493, 494, 495, 496, 497, 498, 499, 500, 501, 502, 503, 504, 505, 506, 507};
    CG_ASSERT_OK(cg_model_embed(f.ctx, f.kv, 3, other, 19, 7, CG_POOLING_MEAN, true, emb, &err), &err);
    assert_int_equal(cg_kv_n_free_blocks(f.kv), free_before);
    assert_int_equal(cg_kv_seq_len(f.kv, 3), 0);
    assert_int_equal(cg_kv_seq_len(f.kv, 0), N_TOK - 1);
    CG_ASSERT_OK(cg_model_decode(f.ctx, f.kv, &last, b2, &err), &err);
    assert_memory_equal(a, b2, (size_t)f.nv * sizeof *a);
    printf("  sequence 0 logits identical after a 19-token embedding on sequence 3; free blocks %d\n", free_before);
    free(a);
    free(b2);
    free(emb);
    fixture_close(&f);
}

static void test_embed_errors(void **state) {
    (void)state;
    fixture f = {0};
    if (!fixture_open(&f, "random/rand-llama-spm-F32.gguf")) { skip(); return; }
    cg_err err = {0};
    float *out = malloc((size_t)f.E * sizeof *out);
    assert_int_equal(cg_model_embed(f.ctx, f.kv, 0, TOK, 0, 0, CG_POOLING_MEAN, true, out, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "0 tokens"));
    assert_int_equal(cg_model_embed(f.ctx, f.kv, 9, TOK, 2, 0, CG_POOLING_MEAN, true, out, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "sequence id 9"));
    assert_int_equal(cg_model_embed(f.ctx, f.kv, 0, TOK, 2, 0, CG_POOLING_RANK, true, out, &err), CG_ERR_UNSUPPORTED);
    int32_t bad[] = {1, (int32_t)f.nv};
    assert_int_equal(cg_model_embed(f.ctx, f.kv, 0, bad, 2, 0, CG_POOLING_MEAN, true, out, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "token id"));
    assert_int_equal(cg_kv_seq_len(f.kv, 0), 0);   // cleared on the failure path too
    // 16 blocks of 16 tokens: 300 tokens do not fit.
    int32_t *many = calloc(300, sizeof *many);
    assert_int_equal(cg_model_embed(f.ctx, f.kv, 0, many, 300, 0, CG_POOLING_MEAN, true, out, &err), CG_ERR_LIMIT);
    assert_int_equal(cg_kv_n_free_blocks(f.kv), 16);
    free(many);
    free(out);
    fixture_close(&f);
}

// A copy of `src` with `<arch>.pooling_type` = value (u32); returns the temp path.
static char *with_pooling(const char *src, const char *arch, uint32_t value) {
    cg_err err = {0};
    cg_gguf *g = NULL;
    CG_ASSERT_OK(cg_gguf_open(src, &g, &err), &err);
    cg_gguf_writer *w = NULL;
    CG_ASSERT_OK(cg_gguf_writer_new(&w, &err), &err);
    for (size_t i = 0; i < cg_gguf_n_kv(g); i++) CG_ASSERT_OK(cg_gguf_writer_copy_kv(w, cg_gguf_kv_at(g, i), &err), &err);
    char key[64];
    snprintf(key, sizeof key, "%s.pooling_type", arch);
    CG_ASSERT_OK(cg_gguf_writer_set_u32(w, key, value, &err), &err);
    for (size_t i = 0; i < cg_gguf_n_tensors(g); i++) {
        const cg_gguf_tensor *t = cg_gguf_tensor_at(g, i);
        CG_ASSERT_OK(cg_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err), &err);
    }
    cg_buf buf = {0};
    CG_ASSERT_OK(cg_gguf_writer_write_mem(w, &buf, &err), &err);
    char *path = cg_test_tmpfile(buf.data, buf.len);
    cg_buf_free(&buf);
    cg_gguf_writer_free(w);
    cg_gguf_close(g);
    return path;
}

static void test_pooling_metadata(void **state) {
    (void)state;
    const char *md = cg_test_models_dir();
    char src[4096];
    if (!md) { skip(); return; }
    snprintf(src, sizeof src, "%s/random/rand-llama-spm-F32.gguf", md);
    if (access(src, R_OK)) { skip(); return; }
    cg_err err = {0};
    char *p = with_pooling(src, "llama", CG_POOLING_CLS);
    cg_model *m = NULL;
    CG_ASSERT_OK(cg_model_load(p, &m, &err), &err);
    assert_int_equal(cg_model_hparams(m)->pooling, CG_POOLING_CLS);
    cg_model_free(m);
    unlink(p);
    free(p);
    p = with_pooling(src, "llama", 7);
    assert_int_equal(cg_model_load(p, &m, &err), CG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "llama.pooling_type"));
    printf("  pooling_type 7: %s\n", err.msg);
    unlink(p);
    free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hidden_times_head_is_logits),
        cmocka_unit_test(test_pooling_matches_token_by_token),
        cmocka_unit_test(test_normalized),
        cmocka_unit_test(test_scratch_sequence_isolated),
        cmocka_unit_test(test_embed_errors),
        cmocka_unit_test(test_pooling_metadata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
