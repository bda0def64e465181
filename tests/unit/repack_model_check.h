// repack_model_check.h — the model-load half shared by the repacked-layout tests (test_repack.c,
// test_repack_k.c, test_repack_q5_0.c, test_repack_q6k.c): a models/random file loaded twice, with
// CHINGU_REPACK=0 (stored layout) and without (repacked where the machine has AVX2), and the
// last-position logits of a fixed token sequence for comparing the two. Include after testutil.h, model/model.h,
// engine/kv.h (through model.h) and <unistd.h>.
#ifndef CG_TEST_REPACK_MODEL_CHECK_H
#define CG_TEST_REPACK_MODEL_CHECK_H

// Last-position logits (caller frees) of an 11-token sequence starting with `first` (the others are
// small ids every test vocabulary has), 2 threads, F32 cache.
static float *rmc_logits_of(const cg_model *m, int32_t first) {
    const int32_t TOK[] = {first, 15, 200, 7, 99, 300, 42, 5, 64, 128, 17};
    enum { N = sizeof TOK / sizeof TOK[0] };
    cg_err err = {0};
    cg_model_ctx *ctx = NULL;
    cg_kv *kv = NULL;
    CG_ASSERT_OK(cg_model_ctx_new(m, 2, &ctx, &err), &err);
    cg_kv_params kp = cg_model_kv_params(m, CG_KV_F32, 16, 4, 1);
    CG_ASSERT_OK(cg_kv_new(&kp, &kv, &err), &err);
    int32_t pos[N], seq[N] = {0};
    for (int i = 0; i < N; i++) pos[i] = i;
    const cg_batch b = {.n = N, .token = TOK, .pos = pos, .seq = seq, .logits = NULL};
    float *lg = malloc((size_t)cg_model_hparams(m)->n_vocab * sizeof *lg);
    CG_ASSERT_OK(cg_model_decode(ctx, kv, &b, lg, &err), &err);
    cg_kv_free(kv);
    cg_model_ctx_free(ctx);
    return lg;
}

// Loads models/random/<file> as *stored (CHINGU_REPACK=0: nothing repacked, checked) and as *rep
// (the default). False when the file is absent (the caller skips).
static bool rmc_load_pair(const char *file, cg_model **stored, cg_model **rep) {
    const char *md = cg_test_models_dir();
    char path[4096];
    snprintf(path, sizeof path, "%s/random/%s", md ? md : ".", file);
    if (!md || access(path, R_OK)) return false;
    cg_err err = {0};
    setenv("CHINGU_REPACK", "0", 1);
    CG_ASSERT_OK(cg_model_load(path, stored, &err), &err);
    unsetenv("CHINGU_REPACK");
    CG_ASSERT_OK(cg_model_load(path, rep, &err), &err);
    assert_int_equal(cg_model_repacked_bytes(*stored), 0);
    return true;
}

#endif
