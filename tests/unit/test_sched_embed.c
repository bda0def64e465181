// test_sched_embed.c — embeddings through the engine thread (cg_sched_embed):
//   - the vector equals cg_model_embed run directly on a private cache (F32 caches: identical);
//   - embeddings requested from another thread while two greedy generations run do not change a
//     single generated token (compared with the same generations served alone), and every KV block
//     is free again at the end;
//   - errors: empty input, a token id out of range, an input longer than the context.
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/sched.h"
#include "model/model.h"
#include "testutil.h"

#define MAX_GEN 40

typedef struct gen {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int32_t toks[MAX_GEN];
    uint32_t n;
    bool done;
    cg_sched_end end;
} gen;

static int32_t g_next(void *user, uint32_t i_choice, uint32_t i_step, const float *logits, int64_t n_vocab,
                      bool is_last) {
    gen *g = user;
    (void)i_choice, (void)i_step, (void)is_last;
    int32_t best = 0;
    for (int64_t i = 1; i < n_vocab; i++)
        if (logits[i] > logits[best]) best = (int32_t)i;
    pthread_mutex_lock(&g->mu);
    if (g->n < MAX_GEN) g->toks[g->n++] = best;
    pthread_mutex_unlock(&g->mu);
    usleep(2000);   // keep the generation running while embeddings arrive
    return best;
}

static void g_done(void *user, cg_sched_end end, uint32_t n_prompt, uint32_t n_cached, cg_status st, const char *msg) {
    gen *g = user;
    (void)n_prompt, (void)n_cached, (void)st, (void)msg;
    pthread_mutex_lock(&g->mu);
    g->done = true;
    g->end = end;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static const cg_sched_ops OPS = {.next = g_next, .done = g_done};

static void g_init(gen *g) {
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
}

static void g_wait(gen *g) {
    pthread_mutex_lock(&g->mu);
    while (!g->done) pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void g_destroy(gen *g) {
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

static const int32_t P1[] = {1, 403, 407, 261, 378, 300, 301};
static const int32_t P2[] = {1, 290, 291, 292, 293, 294, 295, 296, 297, 298, 299, 310, 311};
static const int32_t E1[] = {1, 450, 451, 452, 453, 454, 455, 456, 457, 458, 459, 460, 461, 462, 463, 464, 465, 466};

static cg_model *load(void) {
    const char *md = cg_test_models_dir();
    if (!md) return NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/random/rand-llama-spm-F32.gguf", md);
    if (access(path, R_OK)) return NULL;
    cg_err err = {0};
    cg_model *m = NULL;
    CG_ASSERT_OK(cg_model_load(path, &m, &err), &err);
    return m;
}

static cg_sched *start(const cg_model *m) {
    cg_err err = {0};
    cg_sched *s = NULL;
    cg_sched_params p = {.n_ctx = 128, .n_parallel = 2, .chunk = 5, .n_threads = 2, .kv_type = CG_KV_F32};
    CG_ASSERT_OK(cg_sched_new(m, &p, &s, &err), &err);
    return s;
}

// Runs P1 and P2 greedily (20 tokens each); with `embed_too`, embeds E1 repeatedly meanwhile.
static void run_pair(const cg_model *m, bool embed_too, gen *g1, gen *g2, float *emb, int *n_embeds) {
    cg_err err = {0};
    cg_sched *s = start(m);
    g_init(g1);
    g_init(g2);
    uint64_t id;
    cg_sched_req r1 = {.prompt = P1, .n_prompt = sizeof P1 / sizeof P1[0], .n_choices = 1, .max_new = 20};
    cg_sched_req r2 = {.prompt = P2, .n_prompt = sizeof P2 / sizeof P2[0], .n_choices = 1, .max_new = 20};
    CG_ASSERT_OK(cg_sched_submit(s, &r1, &OPS, g1, &id, &err), &err);
    CG_ASSERT_OK(cg_sched_submit(s, &r2, &OPS, g2, &id, &err), &err);
    *n_embeds = 0;
    if (embed_too) {
        for (;;) {
            pthread_mutex_lock(&g1->mu);
            bool d = g1->done;
            pthread_mutex_unlock(&g1->mu);
            if (d && *n_embeds > 0) break;
            CG_ASSERT_OK(cg_sched_embed(s, E1, sizeof E1 / sizeof E1[0], CG_POOLING_MEAN, true, emb, &err), &err);
            (*n_embeds)++;
        }
    }
    g_wait(g1);
    g_wait(g2);
    cg_sched_stats st;
    cg_sched_stats_get(s, &st);
    // Finished requests' blocks may sit in the prefix cache; everything else is free.
    printf("  %s: blocks used %llu (prefix cache entries %llu)\n", embed_too ? "with embeddings" : "alone",
           (unsigned long long)st.kv_blocks_used, (unsigned long long)st.cache_entries);
    cg_sched_free(s);
}

static void test_embed_during_generation(void **state) {
    (void)state;
    cg_model *m = load();
    if (!m) { skip(); return; }
    const int64_t E = cg_model_hparams(m)->n_embd;
    float *emb = malloc((size_t)E * sizeof *emb), *ref = malloc((size_t)E * sizeof *ref);
    gen a1, a2, b1, b2;
    int n_embeds = 0;
    run_pair(m, false, &a1, &a2, emb, &n_embeds);
    run_pair(m, true, &b1, &b2, emb, &n_embeds);
    assert_int_equal(a1.end, CG_SCHED_END_OK);
    assert_int_equal(b1.end, CG_SCHED_END_OK);
    assert_int_equal(a1.n, 20);
    assert_int_equal(b1.n, 20);
    assert_int_equal(a2.n, b2.n);
    assert_memory_equal(a1.toks, b1.toks, sizeof a1.toks[0] * a1.n);
    assert_memory_equal(a2.toks, b2.toks, sizeof a2.toks[0] * a2.n);
    // The reference: cg_model_embed on a private cache.
    cg_err err = {0};
    cg_model_ctx *ctx = NULL;
    cg_kv *kv = NULL;
    CG_ASSERT_OK(cg_model_ctx_new(m, 1, &ctx, &err), &err);
    cg_kv_params kp = cg_model_kv_params(m, CG_KV_F32, 16, 4, 1);
    CG_ASSERT_OK(cg_kv_new(&kp, &kv, &err), &err);
    CG_ASSERT_OK(cg_model_embed(ctx, kv, 0, E1, sizeof E1 / sizeof E1[0], 0, CG_POOLING_MEAN, true, ref, &err), &err);
    double d = 0;
    for (int64_t i = 0; i < E; i++) d = fmax(d, fabs((double)emb[i] - ref[i]));
    printf("  %d embeddings during 2 generations: generated tokens identical; max|d| vs direct %.3g\n", n_embeds, d);
    assert_true(n_embeds >= 1);
    assert_true(d <= 1e-5);
    cg_kv_free(kv);
    cg_model_ctx_free(ctx);
    g_destroy(&a1), g_destroy(&a2), g_destroy(&b1), g_destroy(&b2);
    free(emb);
    free(ref);
    cg_model_free(m);
}

static void test_embed_errors(void **state) {
    (void)state;
    cg_model *m = load();
    if (!m) { skip(); return; }
    cg_sched *s = start(m);
    cg_err err = {0};
    float *out = malloc((size_t)cg_model_hparams(m)->n_embd * sizeof *out);
    assert_int_equal(cg_sched_embed(s, E1, 0, CG_POOLING_MEAN, true, out, &err), CG_ERR_INVALID);
    int32_t bad[] = {1, 1 << 20};
    assert_int_equal(cg_sched_embed(s, bad, 2, CG_POOLING_MEAN, true, out, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "input token 1 is 1048576"));
    int32_t *many = calloc(129, sizeof *many);
    assert_int_equal(cg_sched_embed(s, many, 129, CG_POOLING_MEAN, true, out, &err), CG_ERR_LIMIT);
    printf("  %s\n", err.msg);
    assert_non_null(strstr(err.msg, "129 tokens"));
    CG_ASSERT_OK(cg_sched_embed(s, many, 128, CG_POOLING_MEAN, true, out, &err), &err);   // exactly n_ctx fits
    cg_sched_stats st;
    cg_sched_stats_get(s, &st);
    assert_int_equal(st.kv_blocks_used, 0);
    free(many);
    free(out);
    cg_sched_free(s);
    cg_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embed_during_generation),
        cmocka_unit_test(test_embed_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
