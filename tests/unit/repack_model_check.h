// repack_model_check.h — the model-load half shared by the repacked-layout tests (test_repack.c,
// test_repack_k.c, test_repack_q5_0.c, test_repack_q6k.c): a models/random file loaded twice, with
// CHINGU_REPACK=0 (stored layout) and without (repacked where the machine has AVX2), and the
// last-position logits of a fixed token sequence for comparing the two, and the check of their layer
// matrices side by side. Include after testutil.h, model/model.h, engine/kv.h (through model.h),
// kern/cpu.h, kern/repack.h and <unistd.h>.
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

enum { RMC_ALL_OF_TYPE = 1, RMC_ALL_ELIGIBLE = 2 };   // rmc_check_layers' `must`

// The layer matrices (q, k, v, fused qkv, o, gate, up, down; absent ones skipped) of stored and rep
// side by side: every stored view is in the stored layout; one of `type` is in rep's `layout` exactly
// when the machine has AVX2 and `eligible` says so, and then unpacks to the file's bytes; others of
// another type are skipped. `must` adds: every present matrix is of `type` (RMC_ALL_OF_TYPE), and
// eligible (RMC_ALL_ELIGIBLE). Returns how many were repacked; *bytes (may be NULL) gets their
// sizes, each rounded up to 64 bytes as the model allocates them.
static int rmc_check_layers(const cg_model *stored, const cg_model *rep, uint32_t type, cg_layout layout,
                            bool (*eligible)(const cg_tensor *W),
                            void (*unpack)(const void *src, int64_t n_in, int64_t n_rows, void *dst), int must,
                            size_t *bytes) {
    const bool avx2 = cg_cpu_isa() == CG_ISA_AVX2;
    int n_rep = 0;
    size_t sum = 0;
    for (int il = 0; il < cg_model_hparams(rep)->n_layer; il++) {
        const cg_layer *Ls = cg_model_layer(stored, il), *Lr = cg_model_layer(rep, il);
        const cg_tensor *ts[] = {&Ls->wq, &Ls->wk, &Ls->wv, &Ls->wqkv, &Ls->wo, &Ls->ffn_gate, &Ls->ffn_up, &Ls->ffn_down};
        const cg_tensor *tr[] = {&Lr->wq, &Lr->wk, &Lr->wv, &Lr->wqkv, &Lr->wo, &Lr->ffn_gate, &Lr->ffn_up, &Lr->ffn_down};
        for (int k = 0; k < 8; k++) {
            assert_int_equal(ts[k]->layout, CG_LAYOUT_STORED);
            if (!ts[k]->data) continue;
            if (must & RMC_ALL_OF_TYPE) assert_int_equal(ts[k]->type, type);
            if (ts[k]->type != type) continue;
            if (must & RMC_ALL_ELIGIBLE) assert_true(eligible(ts[k]));
            const bool want = avx2 && eligible(ts[k]);
            assert_int_equal(tr[k]->layout, want ? layout : CG_LAYOUT_STORED);
            if (!want) continue;
            const size_t n = ts[k]->row_bytes * (size_t)ts[k]->ne[1];
            unsigned char *back = malloc(n);
            unpack(tr[k]->data, ts[k]->ne[0], ts[k]->ne[1], back);
            assert_memory_equal(back, ts[k]->data, n);
            free(back);
            sum += (n + 63) & ~(size_t)63;
            n_rep++;
        }
    }
    if (bytes) *bytes = sum;
    return n_rep;
}

#endif
