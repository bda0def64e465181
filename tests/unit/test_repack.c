// test_repack.c — the Q4_0 8-row repacked layout (kern/repack.h) and its kernels.
//
// * round trip: repack then unpack gives the stored bytes back, for several shapes; ineligible
//   tensors (row count not a multiple of 8, another type) are errors naming the tensor;
// * the scalar reference of the repacked layout against the scalar reference of the STORED layout
//   (the traits' Q4_0 × Q8_0 vec_dot, an independent implementation): |Δ| ≤ 1e-5·Σ|w·y| for odd
//   shapes (n_in 32..4096, rows 8..264, tokens 1..13) — the two differ only in float order;
// * the reference against a hand computation of llama.cpp's order on a 2-block row where the
//   order matters;
// * the AVX2 kernel (when the CPU has it) bit-identical with the repacked reference, directly and
//   through the compute-op table's matmul / matmul_multi (with a 2-thread pool and without);
// * the Q8_0 x8 layout (LM head): round trip and a hand-placed element; its scalar reference
//   against the traits' stored Q8_0 × Q8_0 vec_dot (|Δ| ≤ 1e-5·Σ|w·y|, weights including −128) for
//   odd shapes and tokens 1..13; the AVX2 kernel and the table's matmul bit-identical with it;
// * every tile width of the AVX2 kernels (tiles of up to 8 tokens, remainders 1..7, several tiles
//   and row blocks, a sub-range of row groups, activations packed or read in place): both layouts
//   bit-identical with their references for 1..19 tokens on three shapes, the rows outside the
//   sub-range left untouched;
// * model load (shared rand-phi3-Q4_0: fused qkv and gate_up; skipped when absent): on AVX2 every
//   Q4_0 matmul weight is repacked (its bytes unpack to the file's), token_embd is not, and
//   CHINGU_REPACK=0 keeps everything stored; the two loads' logits agree within 2 % of the range.
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>
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

static void fill_plain(float *row, int64_t n) {
    for (int64_t i = 0; i < n; i++) row[i] = rt_frand();
}

// A random Q4_0 matrix (n_out rows of n_in) and its view.
static unsigned char *make_q4_0(int64_t n_in, int64_t n_out, cg_tensor *W) {
    return rt_matrix(CG_QTYPE_Q4_0, n_in, n_out, "blk.0.ffn_gate.weight", fill_plain, W);
}

static void test_round_trip(void **state) {
    (void)state;
    static const rt_layout L = {CG_LAYOUT_Q4_0_X8, cg_repack_q4_0_eligible, cg_repack_q4_0_size, cg_repack_q4_0,
                                cg_unpack_q4_0x8};
    static const int64_t SHAPES[][2] = {{32, 8}, {64, 16}, {96, 24}, {4096, 8}, {160, 264}};
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
        cg_tensor W;
        unsigned char *w = make_q4_0(SHAPES[s][0], SHAPES[s][1], &W), *r = rt_check(&L, &W, w);
        // Spot-check the layout by hand: row 5, block 1, element 16+4·2+3 = 27 is the high nibble of
        // stored byte qs[11], and sits in the high nibble of qs[32·2 + 4·5 + 3] of block 1 of group 0.
        if (W.ne[0] >= 64) {
            const cg_block_q4_0 *st = (const cg_block_q4_0 *)(w + 5 * W.row_bytes) + 1;
            const cg_block_q4_0x8 *x8 = (const cg_block_q4_0x8 *)r + 1;
            assert_int_equal(st->qs[11] >> 4, x8->qs[32 * 2 + 4 * 5 + 3] >> 4);
            assert_int_equal(st->d, x8->d[5]);
        }
        free(w), free(r);
    }
    print_message("repack/unpack round trip identical for 5 shapes (n_in 32..4096, rows 8..264)\n");

    // Ineligible tensors and short buffers are errors that name the tensor, not crashes.
    cg_tensor W;
    unsigned char *w = make_q4_0(64, 16, &W);
    rt_check_errors(&L, &W, 12, CG_QTYPE_Q8_0, 48, 16);
    free(w);
}

// One 2-block row, all 8 rows equal, computed by hand in llama.cpp's order: block 0 gives an exact
// acc0; block 1's scale d_w·d_a is rounded to float first, then fused: acc = fma(3, scale, acc0).
static void test_order_by_hand(void **state) {
    (void)state;
    cg_block_q4_0 wb[8][2];
    cg_block_q8_0 ab[2];
    memset(wb, 0, sizeof wb);
    memset(ab, 0, sizeof ab);
    // Weights: all nibbles 9 (value +1); activations: block 0 all 127, block 1 one quant of 3.
    const float c = 0.0999755859375f;   // exact in f16
    for (int j = 0; j < 8; j++)
        for (int b = 0; b < 2; b++) {
            memset(wb[j][b].qs, 0x99, 16);
            wb[j][b].d = cg_f32_to_f16(b == 0 ? 0x1p-10f : c);
        }
    for (int i = 0; i < 32; i++) ab[0].qs[i] = 127;
    ab[1].qs[0] = 3;
    ab[0].d = cg_f32_to_f16(1.0f);
    ab[1].d = cg_f32_to_f16(c);
    cg_tensor W = {.name = "w", .type = CG_QTYPE_Q4_0, .ne = {64, 8, 1, 1}, .row_bytes = 36, .data = wb};
    cg_block_q4_0x8 r[2];
    cg_tensor R;
    cg_err err = {0};
    CG_ASSERT_OK(cg_repack_q4_0(&W, r, sizeof r, &R, &err), &err);
    float y[8];
    cg_repack_q4_0x8_matmul_ref(r, 64, ab, sizeof ab, 1, y, 8, 0, 8);
    // acc0 = 32·127 / 1024 = 3.96875 exactly; scale = float(c·c); 3·scale + acc0 is exact in double,
    // so rounding it once to float is the fused result.
    const float scale = c * c;
    const float want = (float)(3.96875 + 3.0 * (double)scale);
    for (int j = 0; j < 8; j++) assert_true(y[j] == want);
    if (cg_cpu_isa_available(CG_ISA_AVX2)) {
        cg_q8_0_aux aux[2];
        cg_repack_q8_0_aux(ab, 64, aux);
        assert_int_equal(aux[0].bias, -8 * 32 * 127);
        float yk[8];
        cg_qops_for(CG_ISA_AVX2)->q4_0x8_matmul(r, 64, ab, sizeof ab, aux, NULL, 1, yk, 8, 0, 8);
        for (int j = 0; j < 8; j++) assert_true(yk[j] == want);
    }
}

static void stored_ref(const cg_tensor *W, const void *xq, size_t xq_row, int64_t n_tok, float *Y) {
    const cg_qtype_traits *tr = cg_qtype_get(CG_QTYPE_Q4_0);
    for (int64_t k = 0; k < n_tok; k++)
        for (int64_t r = 0; r < W->ne[1]; r++)
            tr->vec_dot(W->ne[0], &Y[k * W->ne[1] + r], (const unsigned char *)W->data + (size_t)r * W->row_bytes,
                        (const unsigned char *)xq + (size_t)k * xq_row);
}

static void test_kernels(void **state) {
    (void)state;
    static const int64_t N_IN[] = {32, 96, 160, 1024, 4096};
    static const int64_t ROWS[] = {8, 24, 40, 264};
    static const int64_t TOK[] = {1, 2, 3, 4, 5, 8, 13};
    const cg_qtype_traits *tr = cg_qtype_get(CG_QTYPE_Q4_0), *q8 = cg_qtype_get(CG_QTYPE_Q8_0);
    const bool avx2 = cg_cpu_isa_available(CG_ISA_AVX2);
    const cg_qops *ops = cg_qops_for(CG_ISA_AVX2);
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
            unsigned char *w = make_q4_0(n_in, n_out, &W);
            const size_t n = W.row_bytes * (size_t)n_out, xq_row = (size_t)(n_in / 32) * sizeof(cg_block_q8_0);
            unsigned char *r = aligned_alloc(64, (n + 63) & ~(size_t)63);
            CG_ASSERT_OK(cg_repack_q4_0(&W, r, n, &R, &err), &err);
            float *X = malloc((size_t)(n_in * max_tok) * sizeof *X), *wd = malloc((size_t)(n_in * n_out) * sizeof *wd);
            unsigned char *xq = malloc(xq_row * (size_t)max_tok);
            cg_q8_0_aux *aux = malloc((size_t)(n_in / 32 * max_tok) * sizeof *aux);
            float *Ys = malloc((size_t)(n_out * max_tok) * sizeof(float)), *Yr = malloc((size_t)(n_out * max_tok) * sizeof(float));
            float *Yk = malloc((size_t)(n_out * max_tok) * sizeof(float)), *Ym = malloc((size_t)(n_out * max_tok) * sizeof(float));
            for (int64_t i = 0; i < n_in * max_tok; i++) X[i] = rt_frand() * 3.0f;
            for (int64_t k = 0; k < max_tok; k++) {
                q8->from_f32_act(X + k * n_in, xq + (size_t)k * xq_row, n_in);
                cg_repack_q8_0_aux(xq + (size_t)k * xq_row, n_in, aux + k * (n_in / 32));
            }
            tr->to_f32(w, wd, n_in * n_out);
            for (size_t t = 0; t < sizeof TOK / sizeof TOK[0]; t++) {
                const int64_t n_tok = TOK[t];
                stored_ref(&W, xq, xq_row, n_tok, Ys);
                cg_repack_q4_0x8_matmul_ref(r, n_in, xq, xq_row, n_tok, Yr, n_out, 0, n_out);
                for (int64_t k = 0; k < n_tok; k++)
                    for (int64_t o = 0; o < n_out; o++) {
                        // Σ|w·y| over the dequantized weights and activations (both exact in the
                        // integer products; 1e-5 covers the different float order only).
                        const cg_block_q8_0 *ab = (const cg_block_q8_0 *)(xq + (size_t)k * xq_row);
                        double terms = 0.0;
                        for (int64_t i = 0; i < n_in; i++)
                            terms += fabs((double)wd[o * n_in + i] * ab[i / 32].qs[i % 32] * cg_f16_to_f32(ab[i / 32].d));
                        const double d = fabs((double)Yr[k * n_out + o] - Ys[k * n_out + o]);
                        if (d > 1e-5 * terms + 1e-30)
                            fail_msg("n_in %lld rows %lld tokens %lld: Y[%lld,%lld] repacked ref %.9g vs stored ref %.9g",
                                     (long long)n_in, (long long)n_out, (long long)n_tok, (long long)k, (long long)o,
                                     Yr[k * n_out + o], Ys[k * n_out + o]);
                        if (terms > 0 && d / terms > worst) worst = d / terms;
                    }
                if (avx2) {
                    // The kernel directly, over a sub-range of row groups too.
                    memset(Yk, 0, (size_t)(n_out * n_tok) * sizeof(float));
                    ops->q4_0x8_matmul(r, n_in, xq, xq_row, aux, NULL, n_tok, Yk, n_out, 0, n_out);
                    assert_memory_equal(Yk, Yr, (size_t)(n_out * n_tok) * sizeof(float));
                }
                // Through the compute-op table (quantization, side data, pool split): equal to the
                // reference bit for bit, whether or not the table is AVX2; matmul_multi too.
                for (int p = 0; p < 2; p++) {
                    cg_arena_reset(&arena);
                    CG_ASSERT_OK(K->matmul(&R, X, n_tok, Yk, &arena, p ? pool : NULL, &err), &err);
                    assert_memory_equal(Yk, Yr, (size_t)(n_out * n_tok) * sizeof(float));
                    const cg_tensor *Ws[2] = {&R, &W};
                    float *Ys2[2] = {Ym, Ys};
                    CG_ASSERT_OK(K->matmul_multi(Ws, 2, X, n_tok, Ys2, &arena, p ? pool : NULL, &err), &err);
                    assert_memory_equal(Ym, Yr, (size_t)(n_out * n_tok) * sizeof(float));
                }
                n_cases++;
            }
            free(w), free(r), free(X), free(wd), free(xq), free(aux), free(Ys), free(Yr), free(Yk), free(Ym);
        }
    print_message("%d cases (n_in 32..4096, rows 8..264, tokens 1..13): repacked reference vs stored reference "
                  "max |Δ|/Σ|w·y| = %.2e (bound 1e-5); AVX2 kernel %s; table '%s' matmul/matmul_multi "
                  "bit-identical with the repacked reference\n",
                  n_cases, worst, avx2 ? "bit-identical with it" : "not run (no AVX2)", K->name);
    cg_arena_free(&arena);
    cg_pool_free(pool);
}

// A random Q8_0 matrix, with some quants forced to −128 (the extreme the kernel's |w| must hold).
static unsigned char *make_q8_0(int64_t n_in, int64_t n_out, cg_tensor *W) {
    unsigned char *w = rt_matrix(CG_QTYPE_Q8_0, n_in, n_out, "output.weight", fill_plain, W);
    for (int64_t o = 0; o < n_out; o++) ((cg_block_q8_0 *)(w + W->row_bytes * (size_t)o))[0].qs[o % 32] = -128;
    return w;
}

static void test_q8_0x8(void **state) {
    (void)state;
    static const int64_t N_IN[] = {32, 96, 160, 896, 4096};
    static const int64_t ROWS[] = {8, 13, 24, 40, 263};   // 13, 263: a tail of stored rows
    static const int64_t TOK[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 13};
    const cg_qtype_traits *q8 = cg_qtype_get(CG_QTYPE_Q8_0);
    const bool avx2 = cg_cpu_isa_available(CG_ISA_AVX2);
    const cg_qops *ops = cg_qops_for(CG_ISA_AVX2);
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
            const int64_t n_in = N_IN[a], n_out = ROWS[b], max_tok = 13, nb = n_in / 32;
            cg_tensor W, R;
            unsigned char *w = make_q8_0(n_in, n_out, &W);
            assert_true(cg_repack_q8_0_eligible(&W));
            size_t n;
            CG_ASSERT_OK(cg_repack_q8_0_size(&W, &n, &err), &err);
            assert_int_equal(n, W.row_bytes * (size_t)n_out);
            unsigned char *r = aligned_alloc(64, (n + 63) & ~(size_t)63), *back = malloc(n);
            CG_ASSERT_OK(cg_repack_q8_0(&W, r, n, &R, &err), &err);
            assert_int_equal(R.layout, CG_LAYOUT_Q8_0_X8);
            cg_unpack_q8_0x8(r, n_in, n_out, back);
            assert_memory_equal(back, w, n);
            // By hand: row 5 of group 0, block nb−1, element 4·6+2 = 26 sits at qs[32·6 + 4·5 + 2].
            const cg_block_q8_0 *st = (const cg_block_q8_0 *)(w + 5 * W.row_bytes) + (nb - 1);
            const cg_block_q8_0x8 *x8 = (const cg_block_q8_0x8 *)r + (nb - 1);
            assert_int_equal(st->qs[26], x8->qs[32 * 6 + 4 * 5 + 2]);
            assert_int_equal(st->d, x8->d[5]);
            const size_t xq_row = (size_t)nb * sizeof(cg_block_q8_0);
            float *X = malloc((size_t)(n_in * max_tok) * sizeof *X);
            unsigned char *xq = malloc(xq_row * (size_t)max_tok);
            cg_q8_0_aux *aux = malloc((size_t)(nb * max_tok) * sizeof *aux);
            const size_t ny = (size_t)(n_out * max_tok) * sizeof(float);
            float *Ys = malloc(ny), *Yr = malloc(ny), *Yk = malloc(ny), *Ym = malloc(ny), *Y2 = malloc(ny);
            for (int64_t i = 0; i < n_in * max_tok; i++) X[i] = rt_frand() * 3.0f;
            for (int64_t k = 0; k < max_tok; k++) {
                q8->from_f32_act(X + k * n_in, xq + (size_t)k * xq_row, n_in);
                cg_repack_q8_0_aux(xq + (size_t)k * xq_row, n_in, aux + k * nb);
            }
            for (size_t t = 0; t < sizeof TOK / sizeof TOK[0]; t++) {
                const int64_t n_tok = TOK[t];
                for (int64_t k = 0; k < n_tok; k++)
                    for (int64_t o = 0; o < n_out; o++)
                        q8->vec_dot(n_in, &Ys[k * n_out + o], w + (size_t)o * W.row_bytes, xq + (size_t)k * xq_row);
                // The reference: groups through the repacked reference, the tail as stored.
                const int64_t n8 = n_out / 8 * 8;
                cg_repack_q8_0x8_matmul_ref(r, n_in, xq, xq_row, n_tok, Yr, n_out, 0, n8);
                for (int64_t k = 0; k < n_tok; k++)
                    for (int64_t o = n8; o < n_out; o++) Yr[k * n_out + o] = Ys[k * n_out + o];
                for (int64_t k = 0; k < n_tok; k++)
                    for (int64_t o = 0; o < n_out; o++) {
                        const cg_block_q8_0 *wb = (const cg_block_q8_0 *)(w + (size_t)o * W.row_bytes);
                        const cg_block_q8_0 *ab = (const cg_block_q8_0 *)(xq + (size_t)k * xq_row);
                        double terms = 0.0;
                        for (int64_t i = 0; i < n_in; i++)
                            terms += fabs((double)wb[i / 32].qs[i % 32] * cg_f16_to_f32(wb[i / 32].d) *
                                          ab[i / 32].qs[i % 32] * cg_f16_to_f32(ab[i / 32].d));
                        const double d = fabs((double)Yr[k * n_out + o] - Ys[k * n_out + o]);
                        if (d > 1e-5 * terms + 1e-30)
                            fail_msg("q8_0x8 n_in %lld rows %lld tokens %lld: Y[%lld,%lld] repacked ref %.9g vs "
                                     "stored ref %.9g",
                                     (long long)n_in, (long long)n_out, (long long)n_tok, (long long)k, (long long)o,
                                     Yr[k * n_out + o], Ys[k * n_out + o]);
                        if (terms > 0 && d / terms > worst) worst = d / terms;
                    }
                if (avx2) {
                    // The stored layout's AVX2 dot (llama.cpp's lane order): the repacked
                    // reference equals it bit for bit.
                    const cg_vec_dot_fn dot = cg_qops_vec_dot(ops, CG_QTYPE_Q8_0);
                    for (int64_t k = 0; k < n_tok; k++)
                        for (int64_t o = 0; o < n8; o++) {
                            float v;
                            dot(n_in, &v, w + (size_t)o * W.row_bytes, xq + (size_t)k * xq_row);
                            if (memcmp(&v, &Yr[k * n_out + o], sizeof v))
                                fail_msg("q8_0x8 n_in %lld rows %lld: Y[%lld,%lld] repacked ref %.9g vs stored AVX2 "
                                         "dot %.9g (not bit-identical)",
                                         (long long)n_in, (long long)n_out, (long long)k, (long long)o,
                                         Yr[k * n_out + o], v);
                        }
                    memset(Yk, 0, ny);
                    ops->q8_0x8_matmul(r, n_in, xq, xq_row, aux, NULL, n_tok, Yk, n_out, 0, n8);
                    for (int64_t k = 0; k < n_tok; k++)
                        assert_memory_equal(Yk + k * n_out, Yr + k * n_out, (size_t)n8 * sizeof(float));
                    if (n8 > 8) {   // a sub-range of row groups: only those rows written
                        memset(Yk, 0, ny);
                        ops->q8_0x8_matmul(r, n_in, xq, xq_row, aux, NULL, n_tok, Yk, n_out, 8, n8);
                        for (int64_t k = 0; k < n_tok; k++) {
                            for (int64_t o = 0; o < 8; o++) assert_true(Yk[k * n_out + o] == 0.0f);
                            assert_memory_equal(Yk + k * n_out + 8, Yr + k * n_out + 8,
                                                (size_t)(n8 - 8) * sizeof(float));
                        }
                    }
                }
                // Through the table: the groups equal the repacked reference, the tail rows equal
                // the table's own stored-layout matmul of W (its Q8_0 kernels, their float order).
                for (int p = 0; p < 2; p++) {
                    cg_arena_reset(&arena);
                    const cg_tensor *Ws[2] = {&R, &W};
                    float *Yo[2] = {Ym, Y2};
                    CG_ASSERT_OK(K->matmul_multi(Ws, 2, X, n_tok, Yo, &arena, p ? pool : NULL, &err), &err);
                    for (int64_t k = 0; k < n_tok; k++)
                        for (int64_t o = n8; o < n_out; o++) Yr[k * n_out + o] = Y2[k * n_out + o];
                    assert_memory_equal(Ym, Yr, (size_t)(n_out * n_tok) * sizeof(float));
                    CG_ASSERT_OK(K->matmul(&R, X, n_tok, Yk, &arena, p ? pool : NULL, &err), &err);
                    assert_memory_equal(Yk, Yr, (size_t)(n_out * n_tok) * sizeof(float));
                }
                n_cases++;
            }
            free(w), free(r), free(back), free(X), free(xq), free(aux), free(Ys), free(Yr), free(Yk), free(Ym),
                free(Y2);
        }
    // Ineligible tensors and short buffers are errors that name the tensor (Q8_0 takes any count of
    // at least 8 rows: 7 is the bad one).
    static const rt_layout L8 = {CG_LAYOUT_Q8_0_X8, cg_repack_q8_0_eligible, cg_repack_q8_0_size, cg_repack_q8_0,
                                 cg_unpack_q8_0x8};
    cg_tensor W;
    unsigned char *w = make_q8_0(64, 16, &W);
    rt_check_errors(&L8, &W, 7, CG_QTYPE_Q4_0, 48, 16);
    free(w);
    print_message("q8_0x8: %d cases (n_in 32..4096, rows 8..263, tokens 1..13): round trip identical; repacked "
                  "reference vs stored Q8_0 reference max |Δ|/Σ|w·y| = %.2e (bound 1e-5), bit-identical with the stored AVX2 "
                  "dot; AVX2 kernel %s; table "
                  "'%s' matmul/matmul_multi bit-identical with the reference\n",
                  n_cases, worst, avx2 ? "bit-identical with it" : "not run (no AVX2)", K->name);
    cg_arena_free(&arena);
    cg_pool_free(pool);
}

#include "repack_model_check.h"

static void test_model_load(void **state) {
    (void)state;
    cg_model *stored = NULL, *rep = NULL;
    if (!rmc_load_pair("rand-phi3-Q4_0.gguf", &stored, &rep)) {
        skip();
        return;
    }
    const bool avx2 = cg_cpu_isa() == CG_ISA_AVX2;
    if (avx2) assert_true(cg_model_repacked_bytes(rep) > 0);
    const int64_t n_layer = cg_model_hparams(rep)->n_layer;
    const int n_rep = rmc_check_layers(stored, rep, CG_QTYPE_Q4_0, CG_LAYOUT_Q4_0_X8, cg_repack_q4_0_eligible,
                                       cg_unpack_q4_0x8, RMC_ALL_OF_TYPE, NULL);
    if (avx2) assert_true(n_rep >= 3 * n_layer);   // wqkv, wo, ffn_up, ffn_down are Q4_0 here
    float *a = rmc_logits_of(stored, 1), *b = rmc_logits_of(rep, 1);
    const int64_t nv = cg_model_hparams(rep)->n_vocab;
    float lo = a[0], hi = a[0], md_abs = 0.0f;
    for (int64_t i = 0; i < nv; i++) {
        lo = fminf(lo, a[i]), hi = fmaxf(hi, a[i]);
        md_abs = fmaxf(md_abs, fabsf(a[i] - b[i]));
    }
    assert_true(md_abs <= 0.02f * (hi - lo));
    print_message("rand-phi3-Q4_0: %d weights repacked (%.1f KiB), round trip equal to the file's bytes; logits "
                  "repacked vs stored max |Δ| %.3g (range %.3g)\n",
                  n_rep, (double)cg_model_repacked_bytes(rep) / 1024.0, md_abs, hi - lo);
    free(a), free(b);
    cg_model_free(stored);
    cg_model_free(rep);
}

// Every token count 1..19 (tile widths 1..8, one to three 8-token tiles plus a remainder) on a
// wide shape (n_in 4096: 18 KiB per Q4_0 row group, several ~128 KiB row blocks in 264 rows), a
// narrow one (n_in 96) and one past the kernels' own packed-activation limit (n_in 10240), over all
// row groups and over the sub-range [16, 8·⌊rows/8⌋ − 8), with the rows only and with the caller's
// chunk-packed copy (cg_q8_0_pack, packed in two token ranges that split a chunk): the AVX2 kernels
// bit-identical with the scalar references; outputs outside the sub-range untouched.
static void test_tile_widths(void **state) {
    (void)state;
    if (!cg_cpu_isa_available(CG_ISA_AVX2)) skip();
    // 10240: activations too wide for the kernels' packed copy (96 KiB), so their direct path.
    static const int64_t N_IN[] = {96, 4096, 10240};
    enum { MAX_TOK = 19, N_OUT = 264 };
    const cg_qtype_traits *q8 = cg_qtype_get(CG_QTYPE_Q8_0);
    const cg_qops *ops = cg_qops_for(CG_ISA_AVX2);
    cg_err err = {0};
    int n_cases = 0;
    for (size_t a = 0; a < sizeof N_IN / sizeof N_IN[0]; a++)
        for (int layout = 0; layout < 2; layout++) {
            const int64_t n_in = N_IN[a], nb = n_in / 32, n_out = layout ? N_OUT - 1 : N_OUT, n8 = n_out / 8 * 8;
            cg_tensor W, R;
            unsigned char *w = layout ? make_q8_0(n_in, n_out, &W) : make_q4_0(n_in, n_out, &W);
            const size_t n = W.row_bytes * (size_t)n_out, xq_row = (size_t)nb * sizeof(cg_block_q8_0);
            unsigned char *r = aligned_alloc(64, (n + 63) & ~(size_t)63);
            if (layout) CG_ASSERT_OK(cg_repack_q8_0(&W, r, n, &R, &err), &err);
            else CG_ASSERT_OK(cg_repack_q4_0(&W, r, n, &R, &err), &err);
            float *X = malloc((size_t)(n_in * MAX_TOK) * sizeof *X);
            unsigned char *xq = malloc(xq_row * MAX_TOK);
            cg_q8_0_aux *aux = malloc((size_t)(nb * MAX_TOK) * sizeof *aux);
            const size_t ny = (size_t)(n_out * MAX_TOK) * sizeof(float);
            float *Yr = malloc(ny), *Yk = malloc(ny);
            for (int64_t i = 0; i < n_in * MAX_TOK; i++) X[i] = rt_frand() * 3.0f;
            for (int64_t k = 0; k < MAX_TOK; k++) {
                q8->from_f32_act(X + k * n_in, xq + (size_t)k * xq_row, n_in);
                cg_repack_q8_0_aux(xq + (size_t)k * xq_row, n_in, aux + k * nb);
            }
            size_t n_packed;
            assert_true(cg_q8_0_pack_size(n_in, MAX_TOK, &n_packed));
            assert_int_equal(n_packed, (size_t)(3 * nb * CG_PACK_BLK));
            unsigned char *packed = malloc(n_packed);
            assert_non_null(packed);
            memset(packed, 0xA5, n_packed);   // slots past the last token: never read
            cg_q8_0_pack(xq, xq_row, aux, n_in, 0, 5, packed);
            cg_q8_0_pack(xq, xq_row, aux, n_in, 5, MAX_TOK, packed);
            const cg_q4_0x8_matmul_fn kern = layout ? ops->q8_0x8_matmul : ops->q4_0x8_matmul;
            for (int64_t n_tok = 1; n_tok <= MAX_TOK; n_tok++)
                for (int sub = 0; sub < 4; sub++) {
                    const int64_t r0 = sub & 1 ? 16 : 0, r1 = sub & 1 ? n8 - 8 : n8;
                    for (int64_t i = 0; i < n_out * MAX_TOK; i++) Yr[i] = Yk[i] = -1.0f;
                    if (layout) cg_repack_q8_0x8_matmul_ref(r, n_in, xq, xq_row, n_tok, Yr, n_out, r0, r1);
                    else cg_repack_q4_0x8_matmul_ref(r, n_in, xq, xq_row, n_tok, Yr, n_out, r0, r1);
                    kern(r, n_in, xq, xq_row, aux, sub & 2 ? packed : NULL, n_tok, Yk, n_out, r0, r1);
                    for (int64_t k = 0; k < MAX_TOK; k++)
                        for (int64_t o = 0; o < n_out; o++) {
                            const float want = k < n_tok && o >= r0 && o < r1 ? Yr[k * n_out + o] : -1.0f;
                            if (memcmp(&Yk[k * n_out + o], &want, sizeof want))
                                fail_msg("%s n_in %lld tokens %lld rows [%lld, %lld)%s: Y[%lld,%lld] = %.9g, want %.9g",
                                         layout ? "q8_0x8" : "q4_0x8", (long long)n_in, (long long)n_tok,
                                         (long long)r0, (long long)r1, sub & 2 ? " packed" : "",
                                         (long long)k, (long long)o,
                                         Yk[k * n_out + o], want);
                        }
                    n_cases++;
                }
            free(w), free(r), free(X), free(xq), free(aux), free(Yr), free(Yk), free(packed);
        }
    print_message("tile widths: %d cases (q4_0x8 and q8_0x8, n_in 96, 4096, 10240, tokens 1..%d, all row groups "
                  "and a sub-range, rows and packed): AVX2 kernels bit-identical with the references, other "
                  "outputs untouched\n",
                  n_cases, (int)MAX_TOK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_order_by_hand),
        cmocka_unit_test(test_kernels),
        cmocka_unit_test(test_q8_0x8),
        cmocka_unit_test(test_tile_widths),
        cmocka_unit_test(test_model_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
