// test_repack_q6k.c — the Q6_K 8-row repacked layout (kern/repack.h) and its kernels.
//
// * round trip: repack then unpack gives the stored bytes back for several shapes, with a by-hand
//   check of where a low nibble, high bits, a scale and d land; ineligible tensors (row count not a
//   multiple of 8, another type, rows not whole super-blocks, already repacked) and a short buffer
//   are errors naming the tensor;
// * the reference against a hand computation of the per-row order acc = fma((float)isum_b,
//   d_w·d_a, acc) on a 2-super-block row where the order matters;
// * the reference against the traits' stored-layout Q6_K × Q8_K vec_dot (an independent
//   implementation): |Δ| ≤ 1e-5·Σ|w·y| for odd shapes (n_in 256..4096, rows 8..264, tokens 1..13);
// * the AVX2 kernel (when the CPU has it) bit-identical with the reference, directly (also over a
//   sub-range of row groups) and through the compute-op table's matmul / matmul_multi (with a
//   2-thread pool and without);
// * model load (shared rand-llama3-bpe-Q6_K, every matrix Q6_K, tied output; skipped when absent):
//   on AVX2 every Q6_K layer matrix is repacked and unpacks to the file's bytes (the output, 1029
//   rows, stays stored); CHINGU_REPACK=0 keeps all stored; the two loads' logits agree within 2 %
//   of the logit range.
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

// A random Q6_K matrix (n_out rows of n_in) and its view.
static unsigned char *make_q6_K(int64_t n_in, int64_t n_out, cg_tensor *W) {
    return rt_matrix(CG_QTYPE_Q6_K, n_in, n_out, "blk.1.ffn_down.weight", rt_fill_scaled, W);
}

// The six-bit quant of element i of a stored Q6_K block, written out from ggml's packing
// (dequantize_row_q6_K): half h = i/128, within it l < 32 and quarter c: low nibble of
// ql[64h + l] (c = 0), ql[64h + 32 + l] (c = 1), their high nibbles (c = 2, 3); bits 2c of qh[32h + l].
static int stored_q(const cg_block_q6_K *b, int i) {
    const int h = i / 128, c = (i % 128) / 32, l = i % 32;
    const uint8_t lq = b->ql[64 * h + 32 * (c & 1) + l];
    return ((c < 2 ? lq & 15 : lq >> 4) | ((b->qh[32 * h + l] >> (2 * c)) & 3) << 4);
}

static void test_round_trip(void **state) {
    (void)state;
    static const rt_layout L = {CG_LAYOUT_Q6_K_X8, cg_repack_q6_K_eligible, cg_repack_q6_K_size, cg_repack_q6_K,
                                cg_unpack_q6_Kx8};
    static const int64_t SHAPES[][2] = {{256, 8}, {512, 16}, {768, 24}, {4096, 8}, {1280, 264}};
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
        cg_tensor W;
        unsigned char *w = make_q6_K(SHAPES[s][0], SHAPES[s][1], &W), *r = rt_check(&L, &W, w);
        // By hand: row 6 of group 0, super-block 0, element 128 + 96 + 13 = 237 (h 1, c 3, l 13,
        // sub-block 14): the high nibble of stored ql[64 + 32 + 13] = ql[109], at repacked
        // ql[32·27 + 4·6 + 1] (109 = 4·27 + 1); bits 6..7 of stored qh[32 + 13] = qh[45], at repacked
        // qh[32·11 + 4·6 + 1]; its scale stored scales[14], repacked scales[16·7 + 2·6 + 0].
        const cg_block_q6_K *st = (const cg_block_q6_K *)(w + 6 * W.row_bytes);
        const cg_block_q6_Kx8 *x8 = (const cg_block_q6_Kx8 *)r;
        assert_int_equal(st->ql[109] >> 4, x8->ql[32 * 27 + 4 * 6 + 1] >> 4);
        assert_int_equal(st->qh[45] >> 6, x8->qh[32 * 11 + 4 * 6 + 1] >> 6);
        assert_int_equal(stored_q(st, 237), (x8->ql[32 * 27 + 25] >> 4) | (x8->qh[32 * 11 + 25] >> 6) << 4);
        assert_int_equal(st->scales[14], x8->scales[16 * 7 + 12]);
        assert_int_equal(st->d, x8->d[6]);
        free(w), free(r);
    }
    print_message("q6_Kx8 repack/unpack round trip identical for 5 shapes (n_in 256..4096, rows 8..264); "
                  "low nibble, high bits, scale and d of an element where the layout says\n");

    cg_tensor W;
    unsigned char *w = make_q6_K(512, 16, &W);
    rt_check_errors(&L, &W, 12, CG_QTYPE_Q4_K, 384, sizeof(cg_block_q6_Kx8));
    free(w);
}

// Two super-blocks (all 8 rows equal) by hand. Every quant 33 (value +1), every scale 1 except
// sub-block 15 of super-block 1 (scale −3). Super-block 0: d_w = 2^-10, activations all 127,
// d_a = 1: isum = 256·127, acc = 32512/1024 = 31.75 exactly. Super-block 1: d_w = c, one activation
// quant 5 in sub-block 15 (element 255), d_a = c: isum = −3·5 = −15, acc = fma(−15, float(c·c), 31.75).
static void test_order_by_hand(void **state) {
    (void)state;
    const float c = 0.0999755859375f;   // exact in f16
    cg_block_q6_K wb[8][2];
    cg_block_q8_K ab[2];
    memset(wb, 0, sizeof wb);
    memset(ab, 0, sizeof ab);
    for (int j = 0; j < 8; j++)
        for (int b = 0; b < 2; b++) {
            memset(wb[j][b].ql, 0x11, sizeof wb[j][b].ql);   // low nibbles 1
            memset(wb[j][b].qh, 0xAA, sizeof wb[j][b].qh);   // high bits 2 in every quarter: q = 33
            for (int s = 0; s < 16; s++) wb[j][b].scales[s] = 1;
            if (b == 1) wb[j][b].scales[15] = -3;
            wb[j][b].d = cg_f32_to_f16(b == 0 ? 0x1p-10f : c);
        }
    assert_int_equal(stored_q(&wb[0][0], 200), 33);
    for (int i = 0; i < 256; i++) ab[0].qs[i] = 127;
    for (int g = 0; g < 16; g++) ab[0].bsums[g] = 16 * 127;
    ab[0].d = 1.0f;
    ab[1].qs[255] = 5;
    ab[1].bsums[15] = 5;
    ab[1].d = c;
    cg_tensor W = {.name = "w", .type = CG_QTYPE_Q6_K, .ne = {512, 8, 1, 1}, .row_bytes = 420, .data = wb};
    float ys;
    cg_qtype_get(CG_QTYPE_Q6_K)->vec_dot(512, &ys, wb[0], ab);
    cg_block_q6_Kx8 r[2];
    cg_tensor R;
    cg_err err = {0};
    CG_ASSERT_OK(cg_repack_q6_K(&W, r, sizeof r, &R, &err), &err);
    float y[8];
    cg_repack_q6_Kx8_matmul_ref(r, 512, ab, sizeof ab, 1, y, 8, 0, 8);
    const float want = fmaf(-15.0f, c * c, 31.75f);
    for (int j = 0; j < 8; j++) assert_true(y[j] == want);
    assert_true(fabsf(ys - want) <= 1e-6f * 32.0f);
    if (cg_cpu_isa_available(CG_ISA_AVX2)) {
        float yk[8];
        cg_qops_for(CG_ISA_AVX2)->q6_Kx8_matmul(r, 512, ab, sizeof ab, 1, yk, 8, 0, 8);
        for (int j = 0; j < 8; j++) assert_true(yk[j] == want);
    }
    print_message("by hand: y = fma(-15, c*c, 31.75) = %.9g, repacked reference and AVX2 exact; stored vec_dot %.9g\n",
                  (double)want, (double)ys);
}

#include "repack_kx8_check.h"

static void test_kernels(void **state) {
    (void)state;
    const kx8_case c = {"Q6_K", CG_QTYPE_Q6_K, make_q6_K, cg_repack_q6_K, cg_repack_q6_Kx8_matmul_ref,
                        cg_cpu_isa_available(CG_ISA_AVX2) ? cg_qops_for(CG_ISA_AVX2)->q6_Kx8_matmul : NULL};
    kx8_check_kernels(&c);
}

#include "repack_model_check.h"

static void test_model_load(void **state) {
    (void)state;
    cg_model *stored = NULL, *rep = NULL;
    if (!rmc_load_pair("rand-llama3-bpe-Q6_K.gguf", &stored, &rep)) {
        skip();
        return;
    }
    const bool avx2 = cg_cpu_isa() == CG_ISA_AVX2;
    const int64_t n_layer = cg_model_hparams(rep)->n_layer;
    size_t rep_bytes;
    const int n_rep = rmc_check_layers(stored, rep, CG_QTYPE_Q6_K, CG_LAYOUT_Q6_K_X8, cg_repack_q6_K_eligible,
                                       cg_unpack_q6_Kx8, RMC_ALL_OF_TYPE, &rep_bytes);
    // Every layer matrix of this file is Q6_K; the tied output (1029 rows, not a multiple of 8)
    // stays stored, so the model's repacked bytes are exactly the layers' (each 64-byte aligned).
    if (avx2) {
        assert_int_equal(n_rep, 7 * n_layer);
        assert_int_equal(cg_model_repacked_bytes(rep), rep_bytes);
    }
    float *a = rmc_logits_of(stored, 1024), *b = rmc_logits_of(rep, 1024);
    const int64_t nv = cg_model_hparams(rep)->n_vocab;
    float lo = a[0], hi = a[0], md_abs = 0.0f;
    for (int64_t i = 0; i < nv; i++) {
        lo = fminf(lo, a[i]), hi = fmaxf(hi, a[i]);
        md_abs = fmaxf(md_abs, fabsf(a[i] - b[i]));
    }
    assert_true(md_abs <= 0.02f * (hi - lo));
    print_message("rand-llama3-bpe-Q6_K: %d Q6_K weights repacked (%.1f KiB in all), round trip equal to the "
                  "file's bytes; logits repacked vs stored max |Δ| %.3g (range %.3g)\n",
                  n_rep, (double)cg_model_repacked_bytes(rep) / 1024.0, md_abs, hi - lo);
    free(a), free(b);
    cg_model_free(stored);
    cg_model_free(rep);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_order_by_hand),
        cmocka_unit_test(test_kernels),
        cmocka_unit_test(test_model_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
