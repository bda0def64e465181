// repack.c — the Q4_0 and Q8_0 8-row interleaved layouts (repack.h): the repack at load, its
// inverse, the activation side data and the scalar references of the kernels.
//
// Invariants: a repacked matrix holds exactly the stored nibbles and scales, only moved (the round
// trip cg_unpack_q4_0x8 ∘ cg_repack_q4_0 is the identity); the reference computes every output
// element as acc = fmaf((float)isum_b, d_w·d_a, acc) over the blocks b in order, starting from 0 —
// llama.cpp's AVX2 q4_0_8x8 order, which the SIMD kernels reproduce bit for bit. No state.
#include "kern/repack.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "base/num.h"
#include "quant/blocks.h"
#include "quant/quant.h"

enum { QK = 32, ROWS = 8 };

// A stored 2-D matrix of `type` whose rows are whole blocks of `block_bytes` bytes (no padding).
static bool stored_matrix(const cg_tensor *W, uint32_t type, size_t block_bytes) {
    return W->type == type && W->layout == CG_LAYOUT_STORED && W->ne[0] > 0 && W->ne[0] % QK == 0 && W->ne[1] > 0 &&
           W->ne[2] == 1 && W->ne[3] == 1 && W->row_bytes == (uint64_t)(W->ne[0] / QK) * block_bytes;
}

// *out = the bytes of W's rows when `eligible`, else CG_ERR_INVALID naming W and what it should be.
static cg_status repack_size(const cg_tensor *W, bool eligible, const char *what, size_t *out, cg_err *err) {
    *out = 0;
    if (!eligible)
        return cg_err_set(err, CG_ERR_INVALID, "repack: tensor '%s' (type %u, layout %u, [%lld, %lld, %lld, %lld]) is not %s",
                          W->name ? W->name : "?", W->type, W->layout, (long long)W->ne[0], (long long)W->ne[1],
                          (long long)W->ne[2], (long long)W->ne[3], what);
    uint64_t n;
    if (!cg_mul_u64(W->row_bytes, (uint64_t)W->ne[1], &n) || n > SIZE_MAX)
        return cg_err_set(err, CG_ERR_LIMIT, "repack: tensor '%s' of %lld rows of %llu bytes overflows", W->name,
                          (long long)W->ne[1], (unsigned long long)W->row_bytes);
    *out = (size_t)n;
    return CG_OK;
}

// Writes rows 0..8·n_groups−1 of W (stored blocks: an f16 scale, then qs_bytes quant bytes) into
// dst as 8-row blocks — the 8 scales, then qs[32k + 4j + e] = row j's quant byte 4k + e — group
// after group (the layouts in repack.h; for Q4_0 the byte holds elements 4k+e and 16+4k+e, exactly
// the pair the layout wants in lane j). Fails when dst_size < need (the caller's repack size).
_Static_assert(offsetof(cg_block_q4_0, qs) == sizeof(cg_f16) && offsetof(cg_block_q8_0, qs) == sizeof(cg_f16) &&
                   offsetof(cg_block_q4_0x8, qs) == 8 * sizeof(cg_f16) && offsetof(cg_block_q8_0x8, qs) == 8 * sizeof(cg_f16),
               "interleave8 assumes scale(s) first, then the quants, without padding");
static cg_status interleave8(const cg_tensor *W, int64_t n_groups, size_t qs_bytes, void *dst, size_t dst_size,
                             size_t need, cg_err *err) {
    if (dst_size < need)
        return cg_err_set(err, CG_ERR_INVALID, "repack: tensor '%s' needs %zu bytes, the buffer has %zu", W->name,
                          need, dst_size);
    const size_t blk_in = sizeof(cg_f16) + qs_bytes, blk_out = ROWS * blk_in;
    const int64_t nb = W->ne[0] / QK;
    const unsigned char *src = W->data;
    unsigned char *o = dst;
    for (int64_t g = 0; g < n_groups; g++)
        for (int64_t b = 0; b < nb; b++, o += blk_out)
            for (int j = 0; j < ROWS; j++) {
                const unsigned char *x = src + (size_t)(g * ROWS + j) * W->row_bytes + (size_t)b * blk_in;
                memcpy(o + sizeof(cg_f16) * (size_t)j, x, sizeof(cg_f16));
                for (size_t k = 0; k < qs_bytes / 4; k++)
                    memcpy(o + ROWS * sizeof(cg_f16) + 32 * k + 4 * (size_t)j, x + sizeof(cg_f16) + 4 * k, 4);
            }
    return CG_OK;
}

bool cg_repack_q4_0_eligible(const cg_tensor *W) {
    return stored_matrix(W, CG_QTYPE_Q4_0, sizeof(cg_block_q4_0)) && W->ne[1] % ROWS == 0;
}

cg_status cg_repack_q4_0_size(const cg_tensor *W, size_t *out, cg_err *err) {
    return repack_size(W, cg_repack_q4_0_eligible(W), "a Q4_0 matrix with rows of a multiple of 32 and a multiple of 8 rows", out, err);
}

cg_status cg_repack_q4_0(const cg_tensor *W, void *dst, size_t dst_size, cg_tensor *out, cg_err *err) {
    size_t need;
    cg_status st = cg_repack_q4_0_size(W, &need, err);
    if (!st) st = interleave8(W, W->ne[1] / ROWS, sizeof(cg_block_q4_0) - sizeof(cg_f16), dst, dst_size, need, err);
    if (st) return st;
    *out = *W;
    out->data = dst;
    out->layout = CG_LAYOUT_Q4_0_X8;
    return CG_OK;
}

void cg_unpack_q4_0x8(const void *src, int64_t n_in, int64_t n_rows, void *dst) {
    const int64_t nb = n_in / QK;
    const cg_block_q4_0x8 *s = src;
    cg_block_q4_0 *d = dst;
    for (int64_t g = 0; g < n_rows / ROWS; g++)
        for (int64_t b = 0; b < nb; b++) {
            cg_block_q4_0x8 blk;
            memcpy(&blk, &s[g * nb + b], sizeof blk);
            for (int j = 0; j < ROWS; j++) {
                cg_block_q4_0 x;
                x.d = blk.d[j];
                for (int k = 0; k < 4; k++)
                    for (int e = 0; e < 4; e++) x.qs[4 * k + e] = blk.qs[32 * k + 4 * j + e];
                memcpy(&d[(g * ROWS + j) * nb + b], &x, sizeof x);
            }
        }
}

void cg_repack_q8_0_aux(const void *xq, int64_t n_in, cg_q8_0_aux *aux) {
    const cg_block_q8_0 *a = xq;
    for (int64_t b = 0; b < n_in / QK; b++) {
        int32_t s = 0;
        for (int i = 0; i < QK; i++) s += a[b].qs[i];
        aux[b].d = cg_f16_to_f32(a[b].d);
        aux[b].bias = -8 * s;
    }
}

void cg_repack_q4_0x8_matmul_ref(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                                 int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = n_in / QK;
    const cg_block_q4_0x8 *w = W;
    for (int64_t k = 0; k < n_tok; k++) {
        const cg_block_q8_0 *a = (const cg_block_q8_0 *)((const unsigned char *)xq + (size_t)k * xq_row);
        for (int64_t g = r0 / ROWS; g < r1 / ROWS; g++) {
            float acc[ROWS] = {0};
            for (int64_t b = 0; b < nb; b++) {
                const cg_block_q4_0x8 *blk = &w[g * nb + b];
                const float da = cg_f16_to_f32(a[b].d);
                for (int j = 0; j < ROWS; j++) {
                    int32_t isum = 0;
                    for (int k4 = 0; k4 < 4; k4++)
                        for (int e = 0; e < 4; e++) {
                            const uint8_t q = blk->qs[32 * k4 + 4 * j + e];
                            isum += ((q & 0x0F) - 8) * a[b].qs[4 * k4 + e] + ((q >> 4) - 8) * a[b].qs[16 + 4 * k4 + e];
                        }
                    const float scale = cg_f16_to_f32(blk->d[j]) * da;   // one rounded float product
                    acc[j] = fmaf((float)isum, scale, acc[j]);
                }
            }
            for (int j = 0; j < ROWS; j++) Y[k * ldy + g * ROWS + j] = acc[j];
        }
    }
}

// ---- Q8_0 x8 ------------------------------------------------------------------------------------

bool cg_repack_q8_0_eligible(const cg_tensor *W) {
    return stored_matrix(W, CG_QTYPE_Q8_0, sizeof(cg_block_q8_0)) && W->ne[1] >= ROWS;
}

cg_status cg_repack_q8_0_size(const cg_tensor *W, size_t *out, cg_err *err) {
    return repack_size(W, cg_repack_q8_0_eligible(W), "a Q8_0 matrix with rows of a multiple of 32 and at least 8 rows", out, err);
}

cg_status cg_repack_q8_0(const cg_tensor *W, void *dst, size_t dst_size, cg_tensor *out, cg_err *err) {
    size_t need;
    cg_status st = cg_repack_q8_0_size(W, &need, err);
    const int64_t n_groups = W->ne[1] / ROWS;
    if (!st) st = interleave8(W, n_groups, sizeof(cg_block_q8_0) - sizeof(cg_f16), dst, dst_size, need, err);
    if (st) return st;
    const unsigned char *src = W->data;
    const size_t n8 = (size_t)(n_groups * ROWS) * W->row_bytes;   // the tail rows, as stored
    memcpy((unsigned char *)dst + n8, src + n8, need - n8);
    *out = *W;
    out->data = dst;
    out->layout = CG_LAYOUT_Q8_0_X8;
    return CG_OK;
}

void cg_unpack_q8_0x8(const void *src, int64_t n_in, int64_t n_rows, void *dst) {
    const int64_t nb = n_in / QK;
    const cg_block_q8_0x8 *s = src;
    cg_block_q8_0 *d = dst;
    for (int64_t g = 0; g < n_rows / ROWS; g++)
        for (int64_t b = 0; b < nb; b++) {
            cg_block_q8_0x8 blk;
            memcpy(&blk, &s[g * nb + b], sizeof blk);
            for (int j = 0; j < ROWS; j++) {
                cg_block_q8_0 x;
                x.d = blk.d[j];
                for (int k = 0; k < 8; k++) memcpy(&x.qs[4 * k], &blk.qs[32 * k + 4 * j], 4);
                memcpy(&d[(g * ROWS + j) * nb + b], &x, sizeof x);
            }
        }
    const int64_t n8 = n_rows / ROWS * ROWS;
    memcpy(&d[n8 * nb], &s[n8 / ROWS * nb], (size_t)((n_rows - n8) * nb) * sizeof(cg_block_q8_0));
}

void cg_repack_q8_0x8_matmul_ref(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                                 int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = n_in / QK;
    const cg_block_q8_0x8 *w = W;
    for (int64_t k = 0; k < n_tok; k++) {
        const cg_block_q8_0 *a = (const cg_block_q8_0 *)((const unsigned char *)xq + (size_t)k * xq_row);
        for (int64_t g = r0 / ROWS; g < r1 / ROWS; g++) {
            float acc[ROWS] = {0};
            for (int64_t b = 0; b < nb; b++) {
                const cg_block_q8_0x8 *blk = &w[g * nb + b];
                const float da = cg_f16_to_f32(a[b].d);
                for (int j = 0; j < ROWS; j++) {
                    int32_t isum = 0;   // |isum| ≤ 32·127·128 < 2^24: exact as a float
                    for (int k8 = 0; k8 < 8; k8++)
                        for (int e = 0; e < 4; e++) isum += blk->qs[32 * k8 + 4 * j + e] * a[b].qs[4 * k8 + e];
                    const float scale = cg_f16_to_f32(blk->d[j]) * da;   // one rounded float product
                    acc[j] = fmaf((float)isum, scale, acc[j]);
                }
            }
            for (int j = 0; j < ROWS; j++) Y[k * ldy + g * ROWS + j] = acc[j];
        }
    }
}
