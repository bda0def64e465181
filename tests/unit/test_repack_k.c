// test_repack_k.c — the Q4_K 8-row repacked layout (kern/repack.h) and its kernels.
//
// * round trip: repack then unpack gives the stored bytes back for several shapes, with a by-hand
//   check of where a nibble, a scale and a min land; ineligible tensors (row count not a multiple
//   of 8, another type, rows not whole super-blocks) and a short buffer are errors naming the tensor;
// * the reference of the repacked layout against a hand computation of llama.cpp's q4_K_8x8 order
//   (two fused accumulations, then their difference) on a 2-super-block row where the order matters;
// * the reference against the traits' stored-layout Q4_K × Q8_K vec_dot (an independent
//   implementation): |Δ| ≤ 1e-5·Σ|w·y| for odd shapes (n_in 256..4096, rows 8..264, tokens 1..13);
// * the AVX2 kernel (when the CPU has it) bit-identical with the reference, directly (also over a
//   sub-range of row groups) and through the compute-op table's matmul / matmul_multi (with a
//   2-thread pool and without);
// * model load (shared rand-llama3-bpe-Q4_K_M; skipped when absent): on AVX2 every eligible Q4_K
//   matmul weight is repacked and unpacks to the file's bytes; CHINGU_REPACK=0 keeps all stored;
//   the two loads' logits agree within 2 % of the logit range.
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

// A random Q4_K matrix (n_out rows of n_in; rows shifted so the mins are not all zero) and its view.
static void fill_shifted(float *row, int64_t n) {
    const float shift = 0.3f * rt_frand();
    for (int64_t i = 0; i < n; i++) row[i] = rt_frand() + shift;
}

static unsigned char *make_q4_K(int64_t n_in, int64_t n_out, cg_tensor *W) {
    return rt_matrix(CG_QTYPE_Q4_K, n_in, n_out, "blk.3.ffn_up.weight", fill_shifted, W);
}

// Sub-block s's six-bit scale and min of a stored Q4_K block, written out from ggml's packing.
static void stored_scale_min(const cg_block_q4_K *b, int s, int *sc, int *mn) {
    const uint8_t *q = b->scales;
    *sc = s < 4 ? q[s] & 63 : (q[s + 4] & 15) | (q[s - 4] >> 6) << 4;
    *mn = s < 4 ? q[s + 4] & 63 : (q[s + 4] >> 4) | (q[s] >> 6) << 4;
}

static void test_round_trip(void **state) {
    (void)state;
    static const rt_layout L = {CG_LAYOUT_Q4_K_X8, cg_repack_q4_K_eligible, cg_repack_q4_K_size, cg_repack_q4_K,
                                cg_unpack_q4_Kx8};
    static const int64_t SHAPES[][2] = {{256, 8}, {512, 16}, {768, 24}, {4096, 8}, {1280, 264}};
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
        cg_tensor W;
        unsigned char *w = make_q4_K(SHAPES[s][0], SHAPES[s][1], &W), *r = rt_check(&L, &W, w);
        // By hand: row 5 of group 0, super-block 0. Element 64·2 + 32 + 4·3 + 1 = 173 (sub-block 5)
        // is the high nibble of stored qs[32·2 + 4·3 + 1] = qs[77] and of repacked qs[32·19 + 4·5 + 1]
        // (m = 77/4 = 19); sub-block 5's scale is v[8·5 + 5], its min v[64 + 16·2 + 2·5 + 1].
        const cg_block_q4_K *st = (const cg_block_q4_K *)(w + 5 * W.row_bytes);
        const cg_block_q4_Kx8 *x8 = (const cg_block_q4_Kx8 *)r;
        assert_int_equal(st->qs[77] >> 4, x8->qs[32 * 19 + 4 * 5 + 1] >> 4);
        assert_int_equal(st->d, x8->d[5]);
        assert_int_equal(st->dmin, x8->dmin[5]);
        uint8_t v[128];
        cg_repack_q4_Kx8_scales(x8, v);
        for (int j = 0; j < 8; j++)
            for (int sb = 0; sb < 8; sb++) {
                int sc, mn;
                stored_scale_min((const cg_block_q4_K *)(w + (size_t)j * W.row_bytes), sb, &sc, &mn);
                assert_int_equal(v[8 * sb + j], sc);
                assert_int_equal(v[64 + 16 * (sb / 2) + 2 * j + sb % 2], mn);
            }
        free(w), free(r);
    }
    print_message("q4_Kx8 repack/unpack round trip identical for 5 shapes (n_in 256..4096, rows 8..264); "
                  "nibble, d, dmin and all 128 scales/mins of a block where the layout says\n");

    // Ineligible tensors and short buffers are errors that name the tensor, not crashes.
    cg_tensor W;
    unsigned char *w = make_q4_K(512, 16, &W);
    rt_check_errors(&L, &W, 12, CG_QTYPE_Q4_0, 384, sizeof(cg_block_q4_Kx8));
    free(w);
}

// One row of 2 super-blocks (all 8 rows equal), by hand in llama.cpp's order. Every nibble is 1
// and every scale 1. Super-block 0: d_w = 2^-10, dmin_w = 2^-4 with all mins 0; activations all
// 127, d_a = 1: acc = 256·127/1024 = 31.75 exactly, accm = 0. Super-block 1: d_w = c, mins 5 in
// sub-block 0 only; activations one quant 3 (element 0), d_a = c: isum = 3, imin = 5·3 = 15, so
// acc = fma(3, float(c·c), 31.75) and accm = fma(15, float(2^-4·c), 0) = 15·c/16, y = acc − accm.
static void test_order_by_hand(void **state) {
    (void)state;
    const float c = 0.0999755859375f;   // exact in f16
    cg_block_q4_K wb[8][2];
    cg_block_q8_K ab[2];
    memset(wb, 0, sizeof wb);
    memset(ab, 0, sizeof ab);
    for (int j = 0; j < 8; j++)
        for (int b = 0; b < 2; b++) {
            memset(wb[j][b].qs, 0x11, sizeof wb[j][b].qs);
            // scales 1 for all 8 sub-blocks; mins 0, except 5 for sub-block 0 of super-block 1.
            for (int s = 0; s < 4; s++) wb[j][b].scales[s] = 1, wb[j][b].scales[s + 8] = 1;
            if (b == 1) wb[j][b].scales[4] = 5;
            wb[j][b].d = cg_f32_to_f16(b == 0 ? 0x1p-10f : c);
            wb[j][b].dmin = cg_f32_to_f16(0x1p-4f);
        }
    for (int i = 0; i < 256; i++) ab[0].qs[i] = 127;
    for (int g = 0; g < 16; g++) ab[0].bsums[g] = 16 * 127;
    ab[0].d = 1.0f;
    ab[1].qs[0] = 3;
    ab[1].bsums[0] = 3;
    ab[1].d = c;
    cg_tensor W = {.name = "w", .type = CG_QTYPE_Q4_K, .ne = {512, 8, 1, 1}, .row_bytes = 288, .data = wb};
    // The stored-layout reference agrees on the value (different order, same here to rounding).
    float ys;
    cg_qtype_get(CG_QTYPE_Q4_K)->vec_dot(512, &ys, wb[0], ab);
    cg_block_q4_Kx8 r[2];
    cg_tensor R;
    cg_err err = {0};
    CG_ASSERT_OK(cg_repack_q4_K(&W, r, sizeof r, &R, &err), &err);
    float y[8];
    cg_repack_q4_Kx8_matmul_ref(r, 512, ab, sizeof ab, 1, y, 8, 0, 8);
    const float acc = fmaf(3.0f, c * c, 31.75f), accm = 15.0f * (c / 16.0f);
    const float want = acc - accm;
    for (int j = 0; j < 8; j++) assert_true(y[j] == want);
    assert_true(fabsf(ys - want) <= 1e-6f * 32.0f);
    if (cg_cpu_isa_available(CG_ISA_AVX2)) {
        float yk[8];
        cg_qops_for(CG_ISA_AVX2)->q4_Kx8_matmul(r, 512, ab, sizeof ab, 1, yk, 8, 0, 8);
        for (int j = 0; j < 8; j++) assert_true(yk[j] == want);
    }
}

#include "repack_kx8_check.h"

static void test_kernels(void **state) {
    (void)state;
    const kx8_case c = {"Q4_K", CG_QTYPE_Q4_K, make_q4_K, cg_repack_q4_K, cg_repack_q4_Kx8_matmul_ref,
                        cg_cpu_isa_available(CG_ISA_AVX2) ? cg_qops_for(CG_ISA_AVX2)->q4_Kx8_matmul : NULL};
    kx8_check_kernels(&c);
}

#include "repack_model_check.h"

static void test_model_load(void **state) {
    (void)state;
    cg_model *stored = NULL, *rep = NULL;
    if (!rmc_load_pair("rand-llama3-bpe-Q4_K_M.gguf", &stored, &rep)) {
        skip();
        return;
    }
    const bool avx2 = cg_cpu_isa() == CG_ISA_AVX2;
    const int64_t n_layer = cg_model_hparams(rep)->n_layer;
    const int n_rep = rmc_check_layers(stored, rep, CG_QTYPE_Q4_K, CG_LAYOUT_Q4_K_X8, cg_repack_q4_K_eligible,
                                       cg_unpack_q4_Kx8, 0, NULL);
    if (avx2) assert_true(n_rep >= 4 * n_layer);   // q, k, o, gate, up (and some v/down) are Q4_K here
    float *a = rmc_logits_of(stored, 1), *b = rmc_logits_of(rep, 1);
    const int64_t nv = cg_model_hparams(rep)->n_vocab;
    float lo = a[0], hi = a[0], md_abs = 0.0f;
    for (int64_t i = 0; i < nv; i++) {
        lo = fminf(lo, a[i]), hi = fmaxf(hi, a[i]);
        md_abs = fmaxf(md_abs, fabsf(a[i] - b[i]));
    }
    assert_true(md_abs <= 0.02f * (hi - lo));
    print_message("rand-llama3-bpe-Q4_K_M: %d Q4_K weights repacked (%.1f KiB in all), round trip equal to the "
                  "file's bytes; logits repacked vs stored max |Δ| %.3g (range %.3g)\n",
                  n_rep, (double)cg_model_repacked_bytes(rep) / 1024.0, md_abs, hi - lo);
    free(a), free(b);
    cg_model_free(stored);
    cg_model_free(rep);
}

int main(void) {
    rt_rng = 0x2545F4914F6CDD1DULL;   // this file's sequence (repack_round_trip.h)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_order_by_hand),
        cmocka_unit_test(test_kernels),
        cmocka_unit_test(test_model_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
