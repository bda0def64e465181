// test_repack_q5_0.c — the Q5_0 8-row repacked layout (kern/repack.h) and its kernels.
//
// * round trip: repack then unpack gives the stored bytes back for several shapes; a by-hand block
//   (one element's nibble and fifth bit set) lands exactly where the layout says and nowhere else;
//   ineligible tensors (row count not a multiple of 8, another type, rows not whole blocks, already
//   repacked) and a short buffer are errors naming the tensor;
// * a hand-computed product (exact values) through the reference and the AVX2 kernel;
// * kernels for n_in 32..4096 (1, 3, 5, 28 and 128 blocks), rows 8..264, tokens 1..13: the repacked
//   scalar reference, the AVX2 kernel (also over a sub-range of row groups) and the compute-op
//   table's matmul / matmul_multi (with a 2-thread pool and without) are all bit-identical, per row,
//   with the stored-layout AVX2 Q5_0 dot (cg_avx2_vec_dot_q5_0 and its row-pair twin) — the kernel
//   the stored layout runs — when the CPU has AVX2; and the reference agrees with the traits' scalar
//   Q5_0 × Q8_0 vec_dot (an independent implementation, another float order) within 1e-5·Σ|w·y|;
//   and for long rows (n_in 24576, 65568: the kernel's short token spans and its fallback without
//   the side-data buffer) the AVX2 kernel against the stored dot, bit for bit;
// * model load (shared rand-qwen2-Q5_0, every layer matrix Q5_0; skipped when absent): on AVX2 every
//   Q5_0 layer matrix is repacked and unpacks to the file's bytes, CHINGU_REPACK=0 keeps all stored,
//   and the two loads' logits are bit-identical.
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/thread.h"
#include "kern/cpu.h"
#include "kern/kern.h"
#include "kern/qops.h"
#include "kern/repack.h"
#include "model/model.h"
#include "quant/blocks.h"
#include "quant/quant.h"
#include "repack_round_trip.h"

// A random Q5_0 matrix (n_out rows of n_in) and its view.
static unsigned char *make_q5_0(int64_t n_in, int64_t n_out, cg_tensor *W) {
    return rt_matrix(CG_QTYPE_Q5_0, n_in, n_out, "blk.0.attn_q.weight", rt_fill_scaled, W);
}

static void test_round_trip(void **state) {
    (void)state;
    static const rt_layout L = {CG_LAYOUT_Q5_0_X8, cg_repack_q5_0_eligible, cg_repack_q5_0_size, cg_repack_q5_0,
                                cg_unpack_q5_0x8};
    static const int64_t SHAPES[][2] = {{32, 8}, {96, 16}, {160, 24}, {896, 8}, {4096, 264}};
    cg_err err = {0};
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
        cg_tensor W;
        unsigned char *w = make_q5_0(SHAPES[s][0], SHAPES[s][1], &W), *r = rt_check(&L, &W, w);
        free(w), free(r);
    }

    // By hand: 8 rows of 2 blocks, all zero except row 5's block 1: d = 0x3C00, element 22 = 26
    // (fifth bit set: qh bit 22; low nibble 0xA in the high nibble of qs[6]) and element 3 = 17
    // (qh bit 3, low nibble 1 in qs[3]). Element 22 is register 5 (22 = 4·5 + 2), element 3
    // register 0 (e = 3): repacked block 1 of group 0 has qs[32·1 + 4·5 + 2] = 0xA0,
    // qs[32·0 + 4·5 + 3] = 0x01, qh[4·5 + 2] = 1 << 5, qh[4·5 + 3] = 1 << 0, d[5] = 0x3C00 and
    // nothing else.
    cg_block_q5_0 st[8][2];
    memset(st, 0, sizeof st);
    st[5][1].d = 0x3C00;
    const uint32_t qh = (1u << 22) | (1u << 3);
    memcpy(st[5][1].qh, &qh, 4);
    st[5][1].qs[6] = 0xA0;
    st[5][1].qs[3] = 0x01;
    cg_tensor H = {.name = "hand", .type = CG_QTYPE_Q5_0, .ne = {64, 8, 1, 1}, .row_bytes = 44, .data = st}, HR;
    cg_block_q5_0x8 x8[2], want[2];
    CG_ASSERT_OK(cg_repack_q5_0(&H, x8, sizeof x8, &HR, &err), &err);
    memset(want, 0, sizeof want);
    want[1].d[5] = 0x3C00;
    want[1].qs[32 + 22] = 0xA0;
    want[1].qs[23] = 0x01;
    want[1].qh[22] = 1 << 5;
    want[1].qh[23] = 1 << 0;
    assert_memory_equal(x8, want, sizeof want);
    print_message("q5_0x8 repack/unpack round trip identical for 5 shapes (n_in 32..4096, rows 8..264); a hand-placed "
                  "nibble, fifth bit and d land where the layout says\n");

    cg_tensor W;
    unsigned char *w = make_q5_0(512, 16, &W);
    rt_check_errors(&L, &W, 12, CG_QTYPE_Q4_0, 496, sizeof(cg_block_q5_0x8));
    free(w);
}

// By hand, exact in every order: 8 rows of one block, row j's quants all 16 + j (value j), d_w = 0.5;
// activation quants a_i = i − 16 (i < 32), d_a = 0.25. Σ a_i = −16, so y_j = 0.5·0.25·j·(−16) = −2j.
static void test_by_hand(void **state) {
    (void)state;
    cg_block_q5_0 wb[8];
    cg_block_q8_0 ab;
    for (int j = 0; j < 8; j++) {
        const int q = 16 + j;   // fifth bit set for every element, low nibble j
        wb[j].d = cg_f32_to_f16(0.5f);
        memset(wb[j].qh, 0xFF, 4);
        memset(wb[j].qs, (q & 15) | (q & 15) << 4, 16);
    }
    for (int i = 0; i < 32; i++) ab.qs[i] = (int8_t)(i - 16);
    ab.d = cg_f32_to_f16(0.25f);
    cg_tensor W = {.name = "w", .type = CG_QTYPE_Q5_0, .ne = {32, 8, 1, 1}, .row_bytes = 22, .data = wb}, R;
    cg_block_q5_0x8 r;
    cg_err err = {0};
    CG_ASSERT_OK(cg_repack_q5_0(&W, &r, sizeof r, &R, &err), &err);
    float y[8];
    cg_repack_q5_0x8_matmul_ref(&r, 32, &ab, sizeof ab, 1, y, 8, 0, 8);
    for (int j = 0; j < 8; j++) assert_true(y[j] == -2.0f * (float)j);
    if (cg_cpu_isa_available(CG_ISA_AVX2)) {
        float yk[8];
        cg_qops_for(CG_ISA_AVX2)->q5_0x8_matmul(&r, 32, &ab, sizeof ab, 1, yk, 8, 0, 8);
        for (int j = 0; j < 8; j++) assert_true(yk[j] == -2.0f * (float)j);
    }
    print_message("by hand: y_j = -2j for 8 rows, repacked reference%s exact\n",
                  cg_cpu_isa_available(CG_ISA_AVX2) ? " and AVX2" : "");
}

static void test_kernels(void **state) {
    (void)state;
    static const int64_t N_IN[] = {32, 96, 160, 896, 4096};
    static const int64_t ROWS[] = {8, 24, 40, 264};
    static const int64_t TOK[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 13};
    const cg_qtype_traits *tr = cg_qtype_get(CG_QTYPE_Q5_0), *q8 = cg_qtype_get(CG_QTYPE_Q8_0);
    const bool avx2 = cg_cpu_isa_available(CG_ISA_AVX2);
    const cg_qops *ops = avx2 ? cg_qops_for(CG_ISA_AVX2) : NULL;
    const cg_kern *K = cg_kern_get();
    cg_err err = {0};
    cg_pool *pool = NULL;
    CG_ASSERT_OK(cg_pool_new(2, &pool, &err), &err);
    cg_arena arena;
    cg_arena_init(&arena, 1 << 20);
    double worst = 0.0;
    int n_cases = 0;
    long n_out_total = 0, n_differ_traits = 0;
    for (size_t ia = 0; ia < sizeof N_IN / sizeof N_IN[0]; ia++)
        for (size_t ib = 0; ib < sizeof ROWS / sizeof ROWS[0]; ib++) {
            const int64_t n_in = N_IN[ia], n_out = ROWS[ib], max_tok = 13;
            cg_tensor W, R;
            unsigned char *w = make_q5_0(n_in, n_out, &W);
            const size_t n = W.row_bytes * (size_t)n_out, xq_row = (size_t)(n_in / 32) * sizeof(cg_block_q8_0);
            unsigned char *r = aligned_alloc(64, (n + 63) & ~(size_t)63);
            CG_ASSERT_OK(cg_repack_q5_0(&W, r, n, &R, &err), &err);
            const size_t ny = (size_t)(n_out * max_tok) * sizeof(float);
            float *X = malloc((size_t)(n_in * max_tok) * sizeof *X), *wd = malloc((size_t)(n_in * n_out) * sizeof *wd);
            float *xd = malloc((size_t)(n_in * max_tok) * sizeof *xd);
            unsigned char *xq = malloc(xq_row * (size_t)max_tok);
            float *Ys = malloc(ny), *Yt = malloc(ny), *Yr = malloc(ny), *Yk = malloc(ny), *Ym = malloc(ny),
                  *Y2 = malloc(ny);
            for (int64_t i = 0; i < n_in * max_tok; i++) X[i] = rt_frand() * 3.0f;
            for (int64_t k = 0; k < max_tok; k++) q8->from_f32_act(X + k * n_in, xq + (size_t)k * xq_row, n_in);
            q8->to_f32(xq, xd, n_in * max_tok);
            tr->to_f32(w, wd, n_in * n_out);
            for (size_t it = 0; it < sizeof TOK / sizeof TOK[0]; it++) {
                const int64_t n_tok = TOK[it];
                const size_t nyt = (size_t)(n_out * n_tok) * sizeof(float);
                // The stored layout's results: the AVX2 kernel (rows in pairs through the x2 twin,
                // which must agree with the single-row kernel), else the repacked reference itself.
                cg_repack_q5_0x8_matmul_ref(r, n_in, xq, xq_row, n_tok, Yr, n_out, 0, n_out);
                for (int64_t k = 0; k < n_tok; k++) {
                    const unsigned char *xk = xq + (size_t)k * xq_row;
                    for (int64_t o = 0; o < n_out; o++) {
                        tr->vec_dot(n_in, &Yt[k * n_out + o], w + (size_t)o * W.row_bytes, xk);
                        if (avx2) ops->vec_dot[CG_QTYPE_Q5_0](n_in, &Ys[k * n_out + o], w + (size_t)o * W.row_bytes, xk);
                        else Ys[k * n_out + o] = Yr[k * n_out + o];
                    }
                    if (avx2)
                        for (int64_t o = 0; o + 1 < n_out; o += 2) {
                            float s2[2];
                            ops->vec_dot_x2[CG_QTYPE_Q5_0](n_in, s2, w + (size_t)o * W.row_bytes,
                                                           w + (size_t)(o + 1) * W.row_bytes, xk);
                            assert_true(s2[0] == Ys[k * n_out + o] && s2[1] == Ys[k * n_out + o + 1]);
                        }
                }
                assert_memory_equal(Yr, Ys, nyt);
                for (int64_t k = 0; k < n_tok; k++)
                    for (int64_t o = 0; o < n_out; o++) {
                        double terms = 0.0;
                        for (int64_t i = 0; i < n_in; i++) terms += fabs((double)wd[o * n_in + i] * xd[k * n_in + i]);
                        const double d = fabs((double)Yr[k * n_out + o] - Yt[k * n_out + o]);
                        if (d > 1e-5 * terms + 1e-30)
                            fail_msg("n_in %lld rows %lld tokens %lld: Y[%lld,%lld] repacked ref %.9g vs traits ref %.9g",
                                     (long long)n_in, (long long)n_out, (long long)n_tok, (long long)k, (long long)o,
                                     (double)Yr[k * n_out + o], (double)Yt[k * n_out + o]);
                        if (terms > 0 && d / terms > worst) worst = d / terms;
                        n_differ_traits += Yr[k * n_out + o] != Yt[k * n_out + o];
                        n_out_total++;
                    }
                if (avx2) {
                    memset(Yk, 0, ny);
                    ops->q5_0x8_matmul(r, n_in, xq, xq_row, n_tok, Yk, n_out, 0, n_out);
                    assert_memory_equal(Yk, Ys, nyt);
                    if (n_out > 8) {   // a sub-range of row groups: only those rows written
                        memset(Yk, 0, ny);
                        ops->q5_0x8_matmul(r, n_in, xq, xq_row, n_tok, Yk, n_out, 8, n_out);
                        for (int64_t k = 0; k < n_tok; k++) {
                            for (int64_t o = 0; o < 8; o++) assert_true(Yk[k * n_out + o] == 0.0f);
                            assert_memory_equal(Yk + k * n_out + 8, Ys + k * n_out + 8,
                                                (size_t)(n_out - 8) * sizeof(float));
                        }
                    }
                }
                // Through the compute-op table (quantization, pool split): the repacked weight and the
                // stored one give the stored results bit for bit, alone and in one matmul_multi.
                for (int p = 0; p < 2; p++) {
                    cg_arena_reset(&arena);
                    CG_ASSERT_OK(K->matmul(&R, X, n_tok, Yk, &arena, p ? pool : NULL, &err), &err);
                    assert_memory_equal(Yk, Ys, nyt);
                    const cg_tensor *Ws[2] = {&R, &W};
                    float *Yo[2] = {Ym, Y2};
                    CG_ASSERT_OK(K->matmul_multi(Ws, 2, X, n_tok, Yo, &arena, p ? pool : NULL, &err), &err);
                    assert_memory_equal(Ym, Ys, nyt);
                    // The stored weight through the same table: its own kernels (AVX2: the stored dot).
                    assert_memory_equal(Y2, strcmp(K->name, "avx2") ? Yt : Ys, nyt);
                }
                n_cases++;
            }
            free(w), free(r), free(X), free(wd), free(xd), free(xq), free(Ys), free(Yt), free(Yr), free(Yk), free(Ym),
                free(Y2);
        }
    print_message("Q5_0x8: %d cases (n_in 32..4096, rows 8..264, tokens 1..13): repacked reference%s bit-identical "
                  "with the stored AVX2 Q5_0 dot per row%s; table '%s' matmul/matmul_multi (pool and none) too; "
                  "vs the traits' scalar Q5_0 dot (another order): %ld of %ld outputs differ, max |Δ|/Σ|w·y| = %.2e "
                  "(bound 1e-5)\n",
                  n_cases, avx2 ? ", AVX2 kernel" : "", avx2 ? "" : " (no AVX2 here: checked against the reference)",
                  K->name, n_differ_traits, n_out_total, worst);
    cg_arena_free(&arena);
    cg_pool_free(pool);
}

// Long rows: the AVX2 kernel's token spans shorter than a tile (n_in 24576: side data of 2 tokens
// per span) and its per-block side data (n_in 65568 = 2049 blocks: more than its buffer holds) give
// the stored dot's results bit for bit too.
static void test_long_rows(void **state) {
    (void)state;
    if (!cg_cpu_isa_available(CG_ISA_AVX2)) {
        skip();
        return;
    }
    static const int64_t N_IN[] = {24576, 65568};
    const cg_qops *ops = cg_qops_for(CG_ISA_AVX2);
    const cg_qtype_traits *q8 = cg_qtype_get(CG_QTYPE_Q8_0);
    cg_err err = {0};
    for (size_t ia = 0; ia < 2; ia++) {
        const int64_t n_in = N_IN[ia], n_out = 16, n_tok = 5;
        cg_tensor W, R;
        unsigned char *w = make_q5_0(n_in, n_out, &W);
        const size_t n = W.row_bytes * (size_t)n_out, xq_row = (size_t)(n_in / 32) * sizeof(cg_block_q8_0);
        unsigned char *r = aligned_alloc(64, (n + 63) & ~(size_t)63), *xq = malloc(xq_row * (size_t)n_tok);
        float *X = malloc((size_t)n_in * sizeof *X), Ys[16 * 5], Yk[16 * 5];
        CG_ASSERT_OK(cg_repack_q5_0(&W, r, n, &R, &err), &err);
        for (int64_t k = 0; k < n_tok; k++) {
            for (int64_t i = 0; i < n_in; i++) X[i] = rt_frand() * 3.0f;
            q8->from_f32_act(X, xq + (size_t)k * xq_row, n_in);
            for (int64_t o = 0; o < n_out; o++)
                ops->vec_dot[CG_QTYPE_Q5_0](n_in, &Ys[k * n_out + o], w + (size_t)o * W.row_bytes, xq + (size_t)k * xq_row);
        }
        for (int64_t nt = 1; nt <= n_tok; nt += 2) {
            memset(Yk, 0, sizeof Yk);
            ops->q5_0x8_matmul(r, n_in, xq, xq_row, nt, Yk, n_out, 0, n_out);
            assert_memory_equal(Yk, Ys, (size_t)(nt * n_out) * sizeof(float));
        }
        free(w), free(r), free(xq), free(X);
    }
    print_message("long rows (n_in 24576 and 65568, 16 rows, 1/3/5 tokens): AVX2 kernel bit-identical with the stored "
                  "dot\n");
}

#include "repack_model_check.h"

static void test_model_load(void **state) {
    (void)state;
    cg_model *stored = NULL, *rep = NULL;
    if (!rmc_load_pair("rand-qwen2-Q5_0.gguf", &stored, &rep)) {
        skip();
        return;
    }
    const int n_rep = rmc_check_layers(stored, rep, CG_QTYPE_Q5_0, CG_LAYOUT_Q5_0_X8, cg_repack_q5_0_eligible,
                                       cg_unpack_q5_0x8, RMC_ALL_OF_TYPE | RMC_ALL_ELIGIBLE, NULL);
    if (cg_cpu_isa() == CG_ISA_AVX2) assert_int_equal(n_rep, 7 * cg_model_hparams(rep)->n_layer);   // q k v o gate up down
    float *a = rmc_logits_of(stored, 1000), *b = rmc_logits_of(rep, 1000);
    const int64_t nv = cg_model_hparams(rep)->n_vocab;
    float md_abs = 0.0f;
    for (int64_t i = 0; i < nv; i++) md_abs = fmaxf(md_abs, fabsf(a[i] - b[i]));
    assert_memory_equal(a, b, (size_t)nv * sizeof *a);
    print_message("rand-qwen2-Q5_0: %d Q5_0 layer weights repacked (%.1f KiB), round trip equal to the file's bytes; "
                  "logits repacked vs stored bit-identical (max |Δ| %g over %lld)\n",
                  n_rep, (double)cg_model_repacked_bytes(rep) / 1024.0, (double)md_abs, (long long)nv);
    free(a), free(b);
    cg_model_free(stored);
    cg_model_free(rep);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_by_hand),
        cmocka_unit_test(test_kernels),
        cmocka_unit_test(test_long_rows),
        cmocka_unit_test(test_model_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
