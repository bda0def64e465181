// repack_kx8_check.h — the kernel check shared by the 8-row repacked K-quant layouts (Q4_K x8 in
// test_repack_k.c, Q6_K x8 in test_repack_q6k.c): for n_in 256..4096, rows 8..264 and 1..13
// tokens, the repacked scalar reference agrees with the stored-layout vec_dot within
// 1e-5·Σ|w·y|, the AVX2 kernel (when the machine has it) is bit-identical with the reference (a
// sub-range of row groups writes only those rows), and the compute-op table's matmul and
// matmul_multi (with and without a 2-thread pool) are bit-identical with it too.
// Include after testutil.h, the kern/quant headers and repack_round_trip.h (rt_frand).
#ifndef CG_TEST_REPACK_KX8_CHECK_H
#define CG_TEST_REPACK_KX8_CHECK_H

typedef struct kx8_case {
    const char *name;     // "Q4_K", "Q6_K"
    cg_qtype type;        // the stored type
    unsigned char *(*make)(int64_t n_in, int64_t n_out, cg_tensor *W);   // random stored weights
    cg_status (*repack)(const cg_tensor *W, void *dst, size_t dst_size, cg_tensor *out, cg_err *err);
    cg_q4_Kx8_matmul_fn ref;    // the repacked scalar reference
    cg_q4_Kx8_matmul_fn kern;   // the AVX2 kernel, NULL where the machine lacks AVX2
} kx8_case;

static void kx8_check_kernels(const kx8_case *c) {
    static const int64_t N_IN[] = {256, 768, 1280, 4096};
    static const int64_t ROWS[] = {8, 24, 40, 264};
    static const int64_t TOK[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 13};
    const cg_qtype_traits *tr = cg_qtype_get(c->type), *q8 = cg_qtype_get(CG_QTYPE_Q8_K);
    const bool avx2 = c->kern != NULL;
    const cg_kern *K = cg_kern_get();
    cg_err err = {0};
    cg_pool *pool = NULL;
    CG_ASSERT_OK(cg_pool_new(2, &pool, &err), &err);
    cg_arena arena;
    cg_arena_init(&arena, 1 << 20);
    double worst = 0.0;
    int n_cases = 0;
    for (size_t a = 0; a < sizeof N_IN / sizeof N_IN[0]; a++)
        for (size_t b = 0; b < sizeof ROWS / sizeof ROWS[0]; b++) {
            const int64_t n_in = N_IN[a], n_out = ROWS[b], max_tok = 13;
            cg_tensor W, R;
            unsigned char *w = c->make(n_in, n_out, &W);
            const size_t n = W.row_bytes * (size_t)n_out, xq_row = (size_t)(n_in / 256) * sizeof(cg_block_q8_K);
            unsigned char *r = aligned_alloc(64, (n + 63) & ~(size_t)63);
            CG_ASSERT_OK(c->repack(&W, r, n, &R, &err), &err);
            const size_t ny = (size_t)(n_out * max_tok) * sizeof(float);
            float *X = malloc((size_t)(n_in * max_tok) * sizeof *X), *wd = malloc((size_t)(n_in * n_out) * sizeof *wd);
            float *xd = malloc((size_t)(n_in * max_tok) * sizeof *xd);
            unsigned char *xq = malloc(xq_row * (size_t)max_tok);
            float *Ys = malloc(ny), *Yr = malloc(ny), *Yk = malloc(ny), *Ym = malloc(ny), *Y2 = malloc(ny);
            for (int64_t i = 0; i < n_in * max_tok; i++) X[i] = rt_frand() * 3.0f;
            for (int64_t k = 0; k < max_tok; k++) q8->from_f32_act(X + k * n_in, xq + (size_t)k * xq_row, n_in);
            q8->to_f32(xq, xd, n_in * max_tok);
            tr->to_f32(w, wd, n_in * n_out);
            for (size_t t = 0; t < sizeof TOK / sizeof TOK[0]; t++) {
                const int64_t n_tok = TOK[t];
                for (int64_t k = 0; k < n_tok; k++)
                    for (int64_t o = 0; o < n_out; o++)
                        tr->vec_dot(n_in, &Ys[k * n_out + o], w + (size_t)o * W.row_bytes, xq + (size_t)k * xq_row);
                c->ref(r, n_in, xq, xq_row, n_tok, Yr, n_out, 0, n_out);
                for (int64_t k = 0; k < n_tok; k++)
                    for (int64_t o = 0; o < n_out; o++) {
                        double terms = 0.0;
                        for (int64_t i = 0; i < n_in; i++) terms += fabs((double)wd[o * n_in + i] * xd[k * n_in + i]);
                        const double d = fabs((double)Yr[k * n_out + o] - Ys[k * n_out + o]);
                        if (d > 1e-5 * terms + 1e-30)
                            fail_msg("n_in %lld rows %lld tokens %lld: Y[%lld,%lld] repacked ref %.9g vs stored ref %.9g",
                                     (long long)n_in, (long long)n_out, (long long)n_tok, (long long)k, (long long)o,
                                     Yr[k * n_out + o], Ys[k * n_out + o]);
                        if (terms > 0 && d / terms > worst) worst = d / terms;
                    }
                if (avx2) {
                    memset(Yk, 0, ny);
                    c->kern(r, n_in, xq, xq_row, n_tok, Yk, n_out, 0, n_out);
                    assert_memory_equal(Yk, Yr, (size_t)(n_out * n_tok) * sizeof(float));
                    if (n_out > 8) {   // a sub-range of row groups: only those rows written
                        memset(Yk, 0, ny);
                        c->kern(r, n_in, xq, xq_row, n_tok, Yk, n_out, 8, n_out);
                        for (int64_t k = 0; k < n_tok; k++) {
                            for (int64_t o = 0; o < 8; o++) assert_true(Yk[k * n_out + o] == 0.0f);
                            assert_memory_equal(Yk + k * n_out + 8, Yr + k * n_out + 8,
                                                (size_t)(n_out - 8) * sizeof(float));
                        }
                    }
                }
                // Through the compute-op table (quantization, pool split): equal to the reference
                // bit for bit, whether or not the table is AVX2; matmul_multi with a stored weight too.
                for (int p = 0; p < 2; p++) {
                    cg_arena_reset(&arena);
                    CG_ASSERT_OK(K->matmul(&R, X, n_tok, Yk, &arena, p ? pool : NULL, &err), &err);
                    assert_memory_equal(Yk, Yr, (size_t)(n_out * n_tok) * sizeof(float));
                    const cg_tensor *Ws[2] = {&R, &W};
                    float *Yo[2] = {Ym, Y2};
                    CG_ASSERT_OK(K->matmul_multi(Ws, 2, X, n_tok, Yo, &arena, p ? pool : NULL, &err), &err);
                    assert_memory_equal(Ym, Yr, (size_t)(n_out * n_tok) * sizeof(float));
                }
                n_cases++;
            }
            free(w), free(r), free(X), free(wd), free(xd), free(xq), free(Ys), free(Yr), free(Yk), free(Ym), free(Y2);
        }
    print_message("%sx8: %d cases (n_in 256..4096, rows 8..264, tokens 1..13): repacked reference vs stored "
                  "%s reference max |Δ|/Σ|w·y| = %.2e (bound 1e-5); AVX2 kernel %s; table '%s' "
                  "matmul/matmul_multi bit-identical with the repacked reference\n",
                  c->name, n_cases, c->name, worst, avx2 ? "bit-identical with it" : "not run (no AVX2)", K->name);
    cg_arena_free(&arena);
    cg_pool_free(pool);
}

#endif
