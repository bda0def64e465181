// test_model.c — the forward pass against llama.cpp's reference outputs, and batch consistency.
//
// For every model directory in testdata/gen (91 models × 3 prompts): the prompt's reference tokens
// are decoded in one batch with an F32 KV cache; the last position's logits must be within 1e-3
// (F32 files) or 2 % of the reference logit range (other files) of llama.cpp's; where
// all_logits_p<k>.f32 exists every prompt position is compared too. Then 32 greedy tokens must equal
// the reference's up to the first step whose reference top-2 margin is a near-tie: below 0.01 for
// every file (quantized ones included: activations are quantized to the weight type's partner and
// summed in ggml's float orders — matmuls, softmax, attention value sums — so logits agree to
// ~1e-6 on most files and a 1-ulp difference rarely flips an activation's rounding). The same runs
// with an F16 cache against testdata/gen_kvf16_fa. Batch
// consistency (one batch vs chunks vs token by token; two sequences in one batch vs alone) is
// checked on stories260K. Skipped, visibly, when the shared data is absent.
#include "testutil.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "engine/kv.h"
#include "gguf/gguf.h"
#include "model/model.h"

#define N_GEN 32
#define MARGIN_NEAR_TIE 0.01f   // the near-tie margin, for every file type

typedef struct ref_case {
    int32_t *prompt;
    int n_prompt;
    int32_t gen[N_GEN];
    float margin[N_GEN];
} ref_case;

static int32_t argmax(const float *x, int64_t n) {
    int32_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = (int32_t)i;
    return best;
}

static float *read_f32(const char *path, size_t *n) {
    size_t size;
    unsigned char *d = cg_test_read_path(path, &size);
    *n = size / sizeof(float);
    return (float *)d;
}

static void parse_case(json_t *p, ref_case *c) {
    json_t *pt = json_object_get(p, "prompt_tokens");
    c->n_prompt = (int)json_array_size(pt);
    c->prompt = malloc(sizeof(int32_t) * (size_t)(c->n_prompt ? c->n_prompt : 1));
    for (int i = 0; i < c->n_prompt; i++) c->prompt[i] = (int32_t)json_integer_value(json_array_get(pt, (size_t)i));
    json_t *g = json_object_get(p, "generated"), *t2 = json_object_get(p, "gen_top2");
    for (int i = 0; i < N_GEN; i++) {
        c->gen[i] = (int32_t)json_integer_value(json_array_get(g, (size_t)i));
        json_t *row = json_array_get(t2, (size_t)i);
        c->margin[i] = (float)(json_number_value(json_array_get(row, 1)) - json_number_value(json_array_get(row, 3)));
    }
}

// Decodes tokens[0..n) of sequence `seq` from position pos0 in chunks of `chunk`, logits for all
// positions into out (n × n_vocab) when all_logits, else only the last into out.
static void decode_chunks(cg_model_ctx *ctx, cg_kv *kv, const int32_t *tokens, int n, int32_t pos0, int seq,
                          int chunk, bool all_logits, float *out, int64_t n_vocab) {
    cg_err err = {0};
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)n), *sq = malloc(sizeof(int32_t) * (size_t)n);
    bool *want = malloc(sizeof(bool) * (size_t)n);
    for (int i = 0; i < n; i++) {
        pos[i] = pos0 + i;
        sq[i] = seq;
        want[i] = all_logits || i == n - 1;
    }
    int64_t row = 0;
    for (int i = 0; i < n; i += chunk) {
        int m = n - i < chunk ? n - i : chunk;
        cg_batch b = {.n = m, .token = tokens + i, .pos = pos + i, .seq = sq + i, .logits = want + i};
        int n_want = 0;
        for (int j = 0; j < m; j++) n_want += want[i + j];
        CG_ASSERT_OK(cg_model_decode(ctx, kv, &b, out + row * n_vocab, &err), &err);
        row += n_want;
    }
    free(pos);
    free(sq);
    free(want);
}

typedef struct run_stats {
    int n_models, n_bad_logits, n_bad_tokens;
    double worst_rel;   // max over models of max|Δ| / tolerance
} run_stats;

static bool is_f32_model(const char *name) {
    size_t n = strlen(name);
    return !strcmp(name, "stories260K") || (n > 4 && !strcmp(name + n - 4, "-F32"));
}

// One model directory of `set` (gen or gen_kvf16_fa): loads, runs the 3 prompts, prints a row.
static void run_model(const char *set, const char *name, cg_kv_dtype kvt, run_stats *rs) {
    const char *td = cg_test_testdata_dir();
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s/ref.json", td, set, name);
    json_error_t jerr;
    json_t *ref = json_load_file(path, 0, &jerr);
    if (!ref) fail_msg("%s: %s", path, jerr.text);
    snprintf(path, sizeof path, "%s/../%s", td, json_string_value(json_object_get(ref, "model_path")));
    cg_err err = {0};
    cg_model *m = NULL;
    CG_ASSERT_OK(cg_model_load(path, &m, &err), &err);
    const cg_hparams *h = cg_model_hparams(m);
    int64_t nv = h->n_vocab;
    assert_int_equal(nv, json_integer_value(json_object_get(ref, "n_vocab")));
    cg_model_ctx *ctx = NULL;
    CG_ASSERT_OK(cg_model_ctx_new(m, 2, &ctx, &err), &err);
    snprintf(path, sizeof path, "%s/%s/%s/last_logits.f32", td, set, name);
    size_t n_last;
    float *last = read_f32(path, &n_last);
    assert_int_equal(n_last, 3 * (size_t)nv);

    double max_d = 0.0, max_rel = 0.0;
    int matched = 0, compared = 0;
    bool f32 = is_f32_model(name);
    const bool repacked = cg_model_repacked_bytes(m) > 0;   // Q4_0 on AVX2 (kern/repack.h)
    json_t *prompts = json_object_get(ref, "prompts");
    for (size_t k = 0; k < json_array_size(prompts); k++) {
        json_t *p = json_array_get(prompts, k);
        ref_case c;
        parse_case(p, &c);
        cg_kv *kv = NULL;
        cg_kv_params kp = cg_model_kv_params(m, kvt, 16, (c.n_prompt + N_GEN + 15) / 16 + 1, 1);
        CG_ASSERT_OK(cg_kv_new(&kp, &kv, &err), &err);
        const char *all_file = json_string_value(json_object_get(p, "all_logits_file"));
        float *lg = malloc(sizeof(float) * (size_t)(nv * c.n_prompt));
        decode_chunks(ctx, kv, c.prompt, c.n_prompt, 0, 0, c.n_prompt, all_file != NULL, lg, nv);
        const float *ref_last = last + k * (size_t)nv;
        float lo = ref_last[0], hi = ref_last[0];
        for (int64_t i = 0; i < nv; i++) {
            lo = fminf(lo, ref_last[i]);
            hi = fmaxf(hi, ref_last[i]);
        }
        double tol = f32 ? 1e-3 : 0.02 * (hi - lo);
        const float near_tie = MARGIN_NEAR_TIE;
        const float *got_last = all_file ? lg + (size_t)(c.n_prompt - 1) * (size_t)nv : lg;
        for (int64_t i = 0; i < nv; i++) {
            double d = fabs((double)got_last[i] - ref_last[i]);
            if (d > max_d) max_d = d;
            if (d / tol > max_rel) max_rel = d / tol;
        }
        if (all_file) {
            snprintf(path, sizeof path, "%s/%s/%s/%s", td, set, name, all_file);
            size_t n_all;
            float *all = read_f32(path, &n_all);
            assert_int_equal(n_all, (size_t)c.n_prompt * (size_t)nv);
            for (size_t i = 0; i < n_all; i++) {
                double d = fabs((double)lg[i] - all[i]);
                if (d > max_d) max_d = d;
                if (d / tol > max_rel) max_rel = d / tol;
            }
            free(all);
        }
        if (getenv("CHINGU_TEST_VERBOSE")) {   // per-prompt detail while debugging
            double md = 0;
            for (int64_t i = 0; i < nv; i++) md = fmax(md, fabs((double)got_last[i] - ref_last[i]));
            printf("    prompt %zu n=%d last max %.3g\n", k, c.n_prompt, md);
        }
        // Greedy generation, compared up to the first near-tie of the reference.
        float *step = malloc(sizeof(float) * (size_t)nv);
        int32_t tok = argmax(got_last, nv);
        bool diverged = false;
        for (int g = 0; g < N_GEN; g++) {
            if (!diverged && c.margin[g] >= near_tie) {
                compared++;
                if (tok == c.gen[g]) matched++;
                else {
                    diverged = true;
                    if (getenv("CHINGU_TEST_VERBOSE"))
                        printf("    prompt %zu step %d: got %d want %d (ref margin %.4f)\n", k, g, tok, c.gen[g], c.margin[g]);
                }
            } else {
                diverged = true;   // stop comparing at the first near-tie
            }
            if (diverged || g == N_GEN - 1) break;
            // Feed the reference token (equal to ours here) one at a time.
            decode_chunks(ctx, kv, &tok, 1, c.n_prompt + g, 0, 1, false, step, nv);
            tok = argmax(step, nv);
        }
        free(step);
        free(lg);
        free(c.prompt);
        cg_kv_free(kv);
    }
    bool ok_logits = max_rel <= 1.0, ok_tokens = matched == compared;
    printf("  %-24s %-12s max|d| %-10.3g (%.2f of tol)  tokens %3d/%-3d%s %s\n", name, set, max_d, max_rel, matched,
           compared, repacked ? " (repacked)" : "", ok_logits && ok_tokens ? "ok" : "FAIL");
    rs->n_models++;
    rs->n_bad_logits += !ok_logits;
    rs->n_bad_tokens += !ok_tokens;
    if (max_rel > rs->worst_rel) rs->worst_rel = max_rel;
    free(last);
    cg_model_ctx_free(ctx);
    cg_model_free(m);
    json_decref(ref);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void run_set(const char *set, cg_kv_dtype kvt) {
    const char *td = cg_test_testdata_dir();
    if (!td || !cg_test_models_dir()) {
        skip();
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", td, set);
    DIR *d = opendir(path);
    if (!d) {
        skip();
        return;
    }
    char *names[256];
    int n = 0;
    // CHINGU_TEST_MODEL=<dir> runs one model (debugging); CHINGU_TEST_VERBOSE=1 prints per prompt.
    const char *only = getenv("CHINGU_TEST_MODEL");
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        if (e->d_name[0] == '.' || strstr(e->d_name, "prompts")) continue;
        if (only && strcmp(only, e->d_name)) continue;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n == 0) {
        skip();
        return;
    }
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    run_stats rs = {0};
    for (int i = 0; i < n; i++) {
        run_model(set, names[i], kvt, &rs);
        free(names[i]);
    }
    printf("%s: %d models, %d with logits out of tolerance, %d with token mismatches, worst %.2f of tolerance\n", set,
           rs.n_models, rs.n_bad_logits, rs.n_bad_tokens, rs.worst_rel);
    assert_int_equal(rs.n_bad_logits, 0);
    assert_int_equal(rs.n_bad_tokens, 0);
}

static void test_gen_f32_kv(void **state) {
    (void)state;
    run_set("gen", CG_KV_F32);
}

static void test_gen_f16_kv(void **state) {
    (void)state;
    run_set("gen_kvf16_fa", CG_KV_F16);
}

// ---- batch consistency (stories260K: a real model with 5 layers and GQA) -------------------------

typedef struct small_model {
    cg_model *m;
    cg_model_ctx *ctx;
    int64_t nv;
    ref_case c[3];
} small_model;

static bool small_open(const char *name, small_model *sm) {
    const char *td = cg_test_testdata_dir();
    if (!td || !cg_test_models_dir()) return false;
    char path[4096];
    snprintf(path, sizeof path, "%s/gen/%s/ref.json", td, name);
    json_error_t jerr;
    json_t *ref = json_load_file(path, 0, &jerr);
    if (!ref) return false;
    snprintf(path, sizeof path, "%s/../%s", td, json_string_value(json_object_get(ref, "model_path")));
    cg_err err = {0};
    CG_ASSERT_OK(cg_model_load(path, &sm->m, &err), &err);
    CG_ASSERT_OK(cg_model_ctx_new(sm->m, 2, &sm->ctx, &err), &err);
    sm->nv = cg_model_hparams(sm->m)->n_vocab;
    for (int k = 0; k < 3; k++) parse_case(json_array_get(json_object_get(ref, "prompts"), (size_t)k), &sm->c[k]);
    json_decref(ref);
    return true;
}

static void small_close(small_model *sm) {
    for (int k = 0; k < 3; k++) free(sm->c[k].prompt);
    cg_model_ctx_free(sm->ctx);
    cg_model_free(sm->m);
}

static cg_kv *new_kv(const small_model *sm, cg_kv_dtype t, int n_blocks, int max_seqs) {
    cg_err err = {0};
    cg_kv *kv = NULL;
    cg_kv_params kp = cg_model_kv_params(sm->m, t, 16, n_blocks, max_seqs);
    CG_ASSERT_OK(cg_kv_new(&kp, &kv, &err), &err);
    return kv;
}

// max |a - b| / max(1, max |a|) over n values.
static double rel_diff(const float *a, const float *b, size_t n) {
    double d = 0, mx = 1;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        mx = fmax(mx, fabs((double)a[i]));
    }
    return d / mx;
}

static void check_chunking(const char *name) {
    small_model sm;
    if (!small_open(name, &sm)) {
        skip();
        return;
    }
    const ref_case *c = &sm.c[2];
    size_t n_all = (size_t)c->n_prompt * (size_t)sm.nv;
    float *one = malloc(n_all * sizeof(float)), *chunks = malloc(n_all * sizeof(float)),
          *single = malloc(n_all * sizeof(float));
    cg_kv *kv = new_kv(&sm, CG_KV_F32, 8, 1);
    decode_chunks(sm.ctx, kv, c->prompt, c->n_prompt, 0, 0, c->n_prompt, true, one, sm.nv);
    decode_chunks(sm.ctx, kv, c->prompt, c->n_prompt, 0, 0, 5, true, chunks, sm.nv);   // rewrites from 0
    decode_chunks(sm.ctx, kv, c->prompt, c->n_prompt, 0, 0, 1, true, single, sm.nv);
    double d1 = rel_diff(one, chunks, n_all), d2 = rel_diff(one, single, n_all);
    printf("  %s, %d tokens: one batch vs chunks of 5: rel %.3g, vs token by token: rel %.3g\n", name, c->n_prompt, d1,
           d2);
    assert_true(d1 <= 1e-4);
    assert_true(d2 <= 1e-4);
    cg_kv_free(kv);
    free(one);
    free(chunks);
    free(single);
    small_close(&sm);
}

static void test_batch_chunking_f32(void **state) {
    (void)state;
    check_chunking("stories260K");
}

static void test_batch_chunking_q8_0(void **state) {
    (void)state;
    check_chunking("stories260K-Q8_0");
}

// A context switched to the scalar reference table (cg_model_ctx_set_kern) gives the same logits, bit
// for bit, as one on the default (SIMD) table: a whole prompt in one batch (the tiled matmuls and
// multi-query attention) and then one token at a time (matvecs, single-query attention), on an F16
// cache; for repacked Q4_0 (x8), the Q4_K/Q6_K x8 layouts and Q8_0 x8.
static void check_ctx_kern(const char *name) {
    small_model sm;
    if (!small_open(name, &sm)) {
        skip();
        return;
    }
    const cg_kern *simd = cg_model_ctx_kern(sm.ctx);
    assert_ptr_equal(simd, cg_kern_get());
    const ref_case *c = &sm.c[2];
    const int n_batch = c->n_prompt - 4;
    assert_true(n_batch > 8);   // the batch takes the tiled (x8) matmul kernels
    size_t n_all = (size_t)c->n_prompt * (size_t)sm.nv;
    float *out[2];
    for (int t = 0; t < 2; t++) {
        cg_model_ctx_set_kern(sm.ctx, t ? cg_kern_generic() : simd);
        assert_ptr_equal(cg_model_ctx_kern(sm.ctx), t ? cg_kern_generic() : simd);
        out[t] = malloc(n_all * sizeof(float));
        cg_kv *kv = new_kv(&sm, CG_KV_F16, 8, 1);
        decode_chunks(sm.ctx, kv, c->prompt, n_batch, 0, 0, n_batch, true, out[t], sm.nv);
        decode_chunks(sm.ctx, kv, c->prompt + n_batch, c->n_prompt - n_batch, n_batch, 0, 1, true,
                      out[t] + (size_t)n_batch * (size_t)sm.nv, sm.nv);
        cg_kv_free(kv);
    }
    printf("  %s (%s vs %s), %d tokens (%d in one batch, then one by one): rel %.3g\n", name, simd->name,
           cg_kern_generic()->name, c->n_prompt, n_batch, rel_diff(out[0], out[1], n_all));
    assert_memory_equal(out[0], out[1], n_all * sizeof(float));
    free(out[0]);
    free(out[1]);
    small_close(&sm);
}

static void test_ctx_kern_q4_0(void **state) {
    (void)state;
    check_ctx_kern("rand-llama-spm-Q4_0");
}

static void test_ctx_kern_q4_k_m(void **state) {
    (void)state;
    check_ctx_kern("rand-llama-spm-Q4_K_M");
}

static void test_ctx_kern_q8_0(void **state) {
    (void)state;
    check_ctx_kern("rand-gemma3-Q8_0");
}

// Two sequences decoded in the same batches give the same logits and greedy tokens as each alone.
static void test_two_sequences_in_one_batch(void **state) {
    (void)state;
    small_model sm;
    if (!small_open("stories260K", &sm)) {
        skip();
        return;
    }
    enum { N = 12 };
    const ref_case *a = &sm.c[0], *b = &sm.c[2];
    int64_t nv = sm.nv;
    cg_err err = {0};
    // Alone: each sequence in its own cache.
    int32_t alone[2][N];
    float *last_alone[2];
    for (int s = 0; s < 2; s++) {
        const ref_case *c = s ? b : a;
        cg_kv *kv = new_kv(&sm, CG_KV_F32, 8, 1);
        float *lg = malloc((size_t)nv * sizeof(float));
        decode_chunks(sm.ctx, kv, c->prompt, c->n_prompt, 0, 0, c->n_prompt, false, lg, nv);
        last_alone[s] = malloc((size_t)nv * sizeof(float));
        memcpy(last_alone[s], lg, (size_t)nv * sizeof(float));
        for (int g = 0; g < N; g++) {
            alone[s][g] = argmax(lg, nv);
            if (g < N - 1) decode_chunks(sm.ctx, kv, &alone[s][g], 1, c->n_prompt + g, 0, 1, false, lg, nv);
        }
        free(lg);
        cg_kv_free(kv);
    }
    // Together: both prompts in one batch (sequence ids 1 and 0, interleaved order), then one batch
    // of two entries per step.
    cg_kv *kv = new_kv(&sm, CG_KV_F32, 8, 2);
    int n = a->n_prompt + b->n_prompt;
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)n), *pos = malloc(sizeof(int32_t) * (size_t)n),
            *seq = malloc(sizeof(int32_t) * (size_t)n);
    bool *want = calloc((size_t)n, sizeof(bool));
    int ia = 0, ib = 0, i = 0;
    while (ia < a->n_prompt || ib < b->n_prompt) {
        if (ib < b->n_prompt) { tok[i] = b->prompt[ib]; pos[i] = ib; seq[i] = 0; want[i] = ib == b->n_prompt - 1; ib++; i++; }
        if (ia < a->n_prompt) { tok[i] = a->prompt[ia]; pos[i] = ia; seq[i] = 1; want[i] = ia == a->n_prompt - 1; ia++; i++; }
    }
    float *lg = malloc(2 * (size_t)nv * sizeof(float));
    cg_batch bt = {.n = n, .token = tok, .pos = pos, .seq = seq, .logits = want};
    CG_ASSERT_OK(cg_model_decode(sm.ctx, kv, &bt, lg, &err), &err);
    // Output rows come in batch order: a's last token was placed after b's last one (a is shorter).
    int a_row = 0;
    for (int j = 0, r = 0; j < n; j++)
        if (want[j]) {
            if (seq[j] == 1) a_row = r;
            r++;
        }
    double d = fmax(rel_diff(last_alone[0], lg + (size_t)a_row * (size_t)nv, (size_t)nv),
                    rel_diff(last_alone[1], lg + (size_t)(1 - a_row) * (size_t)nv, (size_t)nv));
    int32_t together[2][N];
    for (int g = 0; g < N; g++) {
        together[0][g] = argmax(lg + (size_t)a_row * (size_t)nv, nv);
        together[1][g] = argmax(lg + (size_t)(1 - a_row) * (size_t)nv, nv);
        if (g == N - 1) break;
        int32_t t2[2] = {together[0][g], together[1][g]}, p2[2] = {a->n_prompt + g, b->n_prompt + g}, s2[2] = {1, 0};
        bool w2[2] = {true, true};
        cg_batch st = {.n = 2, .token = t2, .pos = p2, .seq = s2, .logits = w2};
        CG_ASSERT_OK(cg_model_decode(sm.ctx, kv, &st, lg, &err), &err);
        a_row = 0;
    }
    int same = 0;
    for (int s = 0; s < 2; s++)
        for (int g = 0; g < N; g++) same += alone[s][g] == together[s][g];
    printf("  two sequences in one batch: prompt logits rel %.3g, greedy tokens identical %d/%d\n", d, same, 2 * N);
    assert_true(d <= 1e-4);
    assert_int_equal(same, 2 * N);
    free(tok);
    free(pos);
    free(seq);
    free(want);
    free(lg);
    free(last_alone[0]);
    free(last_alone[1]);
    cg_kv_free(kv);
    small_close(&sm);
}

// A forked sequence shares the prefix blocks; writing to it copies the shared block, so the
// original sequence's continuation is unaffected and the fork matches an unshared computation.
static void test_fork_shares_prefix(void **state) {
    (void)state;
    small_model sm;
    if (!small_open("stories260K", &sm)) {
        skip();
        return;
    }
    const ref_case *c = &sm.c[2];   // 21 tokens: the prefix ends inside the second block
    int64_t nv = sm.nv;
    cg_err err = {0};
    int32_t next[2] = {100, 200};
    float *want = malloc(2 * (size_t)nv * sizeof(float)), *got = malloc((size_t)nv * sizeof(float));
    for (int s = 0; s < 2; s++) {   // reference: prompt + next[s], no sharing
        cg_kv *kv = new_kv(&sm, CG_KV_F32, 8, 1);
        decode_chunks(sm.ctx, kv, c->prompt, c->n_prompt, 0, 0, c->n_prompt, false, got, nv);
        decode_chunks(sm.ctx, kv, &next[s], 1, c->n_prompt, 0, 1, false, want + (size_t)s * (size_t)nv, nv);
        cg_kv_free(kv);
    }
    cg_kv *kv = new_kv(&sm, CG_KV_F32, 8, 2);
    decode_chunks(sm.ctx, kv, c->prompt, c->n_prompt, 0, 0, c->n_prompt, false, got, nv);
    int free_before = cg_kv_n_free_blocks(kv);
    CG_ASSERT_OK(cg_kv_seq_fork(kv, 0, 1, &err), &err);
    assert_int_equal(cg_kv_n_free_blocks(kv), free_before);   // sharing allocates nothing
    decode_chunks(sm.ctx, kv, &next[1], 1, c->n_prompt, 1, 1, false, got, nv);
    assert_int_equal(cg_kv_n_free_blocks(kv), free_before - 1);   // the partly filled block was copied
    double d1 = rel_diff(want + nv, got, (size_t)nv);
    decode_chunks(sm.ctx, kv, &next[0], 1, c->n_prompt, 0, 1, false, got, nv);
    double d0 = rel_diff(want, got, (size_t)nv);
    printf("  fork: shared-prefix continuation rel %.3g (fork) and %.3g (original)\n", d1, d0);
    assert_true(d1 <= 1e-6);
    assert_true(d0 <= 1e-6);
    cg_kv_free(kv);
    free(want);
    free(got);
    small_close(&sm);
}

// Errors that input can reach: bad token ids, gaps, a full cache, an unsupported architecture.
static void test_decode_errors(void **state) {
    (void)state;
    small_model sm;
    if (!small_open("stories260K", &sm)) {
        skip();
        return;
    }
    cg_err err = {0};
    float *lg = malloc((size_t)sm.nv * 4 * sizeof(float));
    cg_kv *kv = new_kv(&sm, CG_KV_F16, 1, 2);   // one block of 16 tokens
    int32_t tok[20], pos[20], seq[20];
    for (int i = 0; i < 20; i++) {
        tok[i] = 5;
        pos[i] = i;
        seq[i] = 0;
    }
    tok[0] = 512;
    cg_batch b = {.n = 1, .token = tok, .pos = pos, .seq = seq};
    assert_int_equal(cg_model_decode(sm.ctx, kv, &b, lg, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "token id 512"));
    tok[0] = 5;
    pos[0] = 3;   // gap: the sequence is empty
    assert_int_equal(cg_model_decode(sm.ctx, kv, &b, lg, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "gap"));
    pos[0] = 0;
    b.n = 20;   // 20 tokens need 2 blocks; the pool has 1
    assert_int_equal(cg_model_decode(sm.ctx, kv, &b, lg, &err), CG_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "cache full"));
    printf("  full cache: %s\n", err.msg);
    seq[1] = 7;
    b.n = 2;
    assert_int_equal(cg_model_decode(sm.ctx, kv, &b, lg, &err), CG_ERR_INVALID);
    b.n = 16;
    seq[1] = 0;
    CG_ASSERT_OK(cg_model_decode(sm.ctx, kv, &b, lg, &err), &err);   // exactly fits
    cg_kv_free(kv);
    free(lg);
    small_close(&sm);

    // A GGUF whose architecture is not in the table.
    cg_gguf_writer *w = NULL;
    CG_ASSERT_OK(cg_gguf_writer_new(&w, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_str(w, "general.architecture", "mamba", &err), &err);
    cg_buf buf = {0};
    CG_ASSERT_OK(cg_gguf_writer_write_mem(w, &buf, &err), &err);
    char *path = cg_test_tmpfile(buf.data, buf.len);
    cg_model *m = NULL;
    assert_int_equal(cg_model_load(path, &m, &err), CG_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "'mamba'"));
    // A llama model missing a tensor.
    CG_ASSERT_OK(cg_gguf_writer_set_str(w, "general.architecture", "llama", &err), &err);
    const char *keys[] = {"llama.block_count", "llama.embedding_length", "llama.feed_forward_length",
                          "llama.attention.head_count"};
    for (int i = 0; i < 4; i++) CG_ASSERT_OK(cg_gguf_writer_set_u32(w, keys[i], i == 0 ? 1 : i == 3 ? 4 : 32, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &err), &err);
    float emb[32 * 4] = {0};
    CG_ASSERT_OK(cg_gguf_writer_add_tensor(w, "token_embd.weight", 0, 2, (const int64_t[]){32, 4}, emb, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_add_tensor(w, "output_norm.weight", 0, 1, (const int64_t[]){32}, emb, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_add_tensor(w, "blk.0.attn_norm.weight", 0, 1, (const int64_t[]){16}, emb, &err), &err);
    buf.len = 0;
    CG_ASSERT_OK(cg_gguf_writer_write_mem(w, &buf, &err), &err);
    unlink(path);
    free(path);
    path = cg_test_tmpfile(buf.data, buf.len);
    cg_status st = cg_model_load(path, &m, &err);
    printf("  mis-shaped tensor: %s\n", err.msg);
    fflush(stdout);
    assert_int_equal(st, CG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "blk.0.attn_norm.weight"));
    unlink(path);
    free(path);
    cg_buf_free(&buf);
    cg_gguf_writer_free(w);
}

// ---- architecture rows without reference files ------------------------------------------------

// Copies a model file with `<from>.*` keys renamed to `<arch>.*` (plus up to two extra f32 keys,
// NULL for none) into a temporary file; returns its path (malloc'ed).
static char *relabel2(const char *src, const char *from, const char *arch, const char *k1, float v1, const char *k2,
                      float v2) {
    size_t nf = strlen(from);
    cg_err err = {0};
    cg_gguf *g = NULL;
    CG_ASSERT_OK(cg_gguf_open(src, &g, &err), &err);
    cg_gguf_writer *w = NULL;
    CG_ASSERT_OK(cg_gguf_writer_new(&w, &err), &err);
    for (size_t i = 0; i < cg_gguf_n_kv(g); i++) {
        const cg_gguf_kv *kv = cg_gguf_kv_at(g, i);
        if (!strcmp(kv->key, "general.architecture")) {
            CG_ASSERT_OK(cg_gguf_writer_set_str(w, kv->key, arch, &err), &err);
        } else if (!strncmp(kv->key, from, nf) && kv->key[nf] == '.') {
            char key[256];
            snprintf(key, sizeof key, "%s.%s", arch, kv->key + nf + 1);
            cg_gguf_scalar v = cg_gguf_kv_scalar(kv);
            if (kv->type == CG_GGUF_TYPE_UINT32) CG_ASSERT_OK(cg_gguf_writer_set_u32(w, key, v.u32, &err), &err);
            else if (kv->type == CG_GGUF_TYPE_FLOAT32) CG_ASSERT_OK(cg_gguf_writer_set_f32(w, key, v.f32, &err), &err);
            else fail_msg("unexpected type of %s", kv->key);
        } else {
            CG_ASSERT_OK(cg_gguf_writer_copy_kv(w, kv, &err), &err);
        }
    }
    if (k1) CG_ASSERT_OK(cg_gguf_writer_set_f32(w, k1, v1, &err), &err);
    if (k2) CG_ASSERT_OK(cg_gguf_writer_set_f32(w, k2, v2, &err), &err);
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

static char *relabel(const char *src, const char *arch, const char *extra_key, float extra_val) {
    return relabel2(src, "llama", arch, extra_key, extra_val, NULL, 0);
}

static float *prompt_logits(const char *path, const int32_t *tok, int n, int64_t *nv) {
    cg_err err = {0};
    cg_model *m = NULL;
    CG_ASSERT_OK(cg_model_load(path, &m, &err), &err);
    cg_model_ctx *ctx = NULL;
    CG_ASSERT_OK(cg_model_ctx_new(m, 2, &ctx, &err), &err);
    *nv = cg_model_hparams(m)->n_vocab;
    cg_kv *kv = NULL;
    cg_kv_params kp = cg_model_kv_params(m, CG_KV_F32, 16, 4, 1);
    CG_ASSERT_OK(cg_kv_new(&kp, &kv, &err), &err);
    float *lg = malloc((size_t)*nv * sizeof(float));
    decode_chunks(ctx, kv, tok, n, 0, 0, n, false, lg, *nv);
    cg_kv_free(kv);
    cg_model_ctx_free(ctx);
    cg_model_free(m);
    return lg;
}

// mistral and exaone are Llama blocks under another name; granite with unit multipliers too, and
// its logit_scale divides the logits.
static void test_llama_like_rows(void **state) {
    (void)state;
    const char *md = cg_test_models_dir();
    if (!md) {
        skip();
        return;
    }
    char src[4096];
    snprintf(src, sizeof src, "%s/random/rand-llama-spm-F32.gguf", md);
    const int32_t tok[] = {1, 403, 407, 261, 378};
    int64_t nv, nv2;
    float *base = prompt_logits(src, tok, 5, &nv);
    struct { const char *arch, *key; float val, expect_ratio; } rows[] = {
        {"mistral", NULL, 0, 1.0f},
        {"exaone", NULL, 0, 1.0f},
        {"granite", NULL, 0, 1.0f},
        {"granite", "granite.logit_scale", 2.0f, 0.5f},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        char *path = relabel(src, rows[r].arch, rows[r].key, rows[r].val);
        float *lg = prompt_logits(path, tok, 5, &nv2);
        assert_int_equal(nv, nv2);
        double d = 0;
        for (int64_t i = 0; i < nv; i++) d = fmax(d, fabs((double)lg[i] - (double)base[i] * rows[r].expect_ratio));
        printf("  %-8s %-20s max|d| vs llama %.3g\n", rows[r].arch, rows[r].key ? rows[r].key : "", d);
        assert_true(d <= 1e-6);
        unlink(path);
        free(path);
        free(lg);
    }
    free(base);
}

// gemma2's final soft-cap: the gemma3 test weights relabeled as gemma2 (whose block has no q/k
// norms) give logits l with the cap off, and c·tanh(l/c) with a cap c = 0.5 (the logits of these
// random weights stay within ±0.5, so the default cap of 30 would barely bend them).
static void test_gemma2_final_softcap(void **state) {
    (void)state;
    const char *md = cg_test_models_dir();
    if (!md) {
        skip();
        return;
    }
    char src[4096];
    snprintf(src, sizeof src, "%s/random/rand-gemma3-F32.gguf", md);
    const int32_t tok[] = {1, 403, 407, 261, 378, 300, 301, 302, 303, 304, 305};   // > the window of 8
    int64_t nv, nv2;
    char *off = relabel2(src, "gemma3", "gemma2", "gemma2.final_logit_softcapping", 0.0f,
                         "gemma2.attn_logit_softcapping", 0.0f);
    char *on = relabel2(src, "gemma3", "gemma2", "gemma2.final_logit_softcapping", 0.5f,
                        "gemma2.attn_logit_softcapping", 0.0f);
    float *l_off = prompt_logits(off, tok, 11, &nv), *l_on = prompt_logits(on, tok, 11, &nv2);
    assert_int_equal(nv, nv2);
    double d = 0, mx = 0;
    for (int64_t i = 0; i < nv; i++) {
        d = fmax(d, fabs((double)l_on[i] - 0.5 * tanh(l_off[i] / 0.5)));
        mx = fmax(mx, fabs((double)l_off[i]));
    }
    printf("  gemma2 final soft-cap 0.5: max|d| %.3g (uncapped max |logit| %.3g)\n", d, mx);
    assert_true(d <= 1e-5);
    unlink(off);
    unlink(on);
    free(off);
    free(on);
    free(l_off);
    free(l_on);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_chunking_f32),
        cmocka_unit_test(test_batch_chunking_q8_0),
        cmocka_unit_test(test_ctx_kern_q4_0),
        cmocka_unit_test(test_ctx_kern_q4_k_m),
        cmocka_unit_test(test_ctx_kern_q8_0),
        cmocka_unit_test(test_two_sequences_in_one_batch),
        cmocka_unit_test(test_fork_shares_prefix),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_llama_like_rows),
        cmocka_unit_test(test_gemma2_final_softcap),
        cmocka_unit_test(test_gen_f32_kv),
        cmocka_unit_test(test_gen_f16_kv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
