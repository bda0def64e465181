// repack.c — the Q4_0, Q5_0, Q8_0, Q4_K and Q6_K 8-row interleaved layouts (repack.h): the repack at load, its
// inverse, the activation side data and the scalar references of the kernels.
//
// Invariants: a repacked matrix holds exactly the stored nibbles and scales, only moved (the round
// trip cg_unpack_q4_0x8 ∘ cg_repack_q4_0 is the identity); the reference computes every output
// element as acc = fmaf((float)isum_b, d_w·d_a, acc) over the blocks b in order, starting from 0 —
// llama.cpp's AVX2 q4_0_8x8 order, which the SIMD kernels reproduce bit for bit. The Q4_K layout
// holds the same nibbles, scales and mins (its six-bit scales transposed, repack.h) and its
// reference follows llama.cpp's q4_K_8x8 order: two fused accumulations (scales, mins) per element
// over the super-blocks, then their difference. The Q6_K layout holds the same ql/qh bytes, scales
// and d, only moved (round trip cg_unpack_q6_Kx8 ∘ cg_repack_q6_K is the identity), and its
// reference is the per-row order acc = fmaf((float)isum_b, d_w·d_a, acc). The Q5_0 layout holds the
// same d, low nibbles and fifth bits, only moved (round trip identity), and its reference follows the
// stored AVX2 kernel's order (eight lanes of four elements per row, hsum_ps at the end). No state.
#include "kern/repack.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "base/num.h"
#include "quant/blocks.h"
#include "quant/quant.h"

enum { QK = 32, ROWS = 8 };

// A stored 2-D matrix of `type` whose rows are whole blocks of `qk` elements in `block_bytes`
// bytes (no padding).
static bool stored_matrix(const cg_tensor *W, uint32_t type, int64_t qk, size_t block_bytes) {
    return W->type == type && W->layout == CG_LAYOUT_STORED && W->ne[0] > 0 && W->ne[0] % qk == 0 && W->ne[1] > 0 &&
           W->ne[2] == 1 && W->ne[3] == 1 && W->row_bytes == (uint64_t)(W->ne[0] / qk) * block_bytes;
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

// CG_ERR_INVALID naming W when the caller's buffer (dst_size bytes) is shorter than its repack size.
static cg_status check_buffer(const cg_tensor *W, size_t need, size_t dst_size, cg_err *err) {
    if (dst_size < need)
        return cg_err_set(err, CG_ERR_INVALID, "repack: tensor '%s' needs %zu bytes, the buffer has %zu", W->name,
                          need, dst_size);
    return CG_OK;
}

// Formats whose interleaved block is filled row by row from the stored blocks (Q5_0, Q6_K): the
// format's move copies stored block x into row j of the interleaved block o, or back (to_x8 false),
// and repack_moved / unpack_moved walk the groups and blocks for it.
typedef union stored_block {
    cg_block_q5_0 q5_0;
    cg_block_q6_K q6_K;
} stored_block;
typedef union x8_block {
    cg_block_q5_0x8 q5_0;
    cg_block_q6_Kx8 q6_K;
} x8_block;
typedef void (*block_move)(stored_block *x, x8_block *o, int j, bool to_x8);

// W's rows (need bytes, the caller's repack size) into dst through `move`, group after group and
// block after block (x_bytes, o_bytes: the stored and the interleaved block); *out is the view of
// the copy, tagged `layout`.
static cg_status repack_moved(const cg_tensor *W, size_t need, void *dst, size_t dst_size, size_t x_bytes,
                              size_t o_bytes, block_move move, cg_layout layout, cg_tensor *out, cg_err *err) {
    cg_status st = check_buffer(W, need, dst_size, err);
    if (st) return st;
    const int64_t nb = (int64_t)(W->row_bytes / x_bytes);
    const unsigned char *src = W->data;
    unsigned char *o = dst;
    for (int64_t g = 0; g < W->ne[1] / ROWS; g++)
        for (int64_t b = 0; b < nb; b++, o += o_bytes) {
            x8_block blk;
            for (int j = 0; j < ROWS; j++) {
                stored_block x;
                memcpy(&x, src + (size_t)(g * ROWS + j) * W->row_bytes + (size_t)b * x_bytes, x_bytes);
                move(&x, &blk, j, true);
            }
            memcpy(o, &blk, o_bytes);
        }
    *out = *W;
    out->data = dst;
    out->layout = layout;
    return CG_OK;
}

// The inverse of repack_moved: n_groups groups of nb interleaved blocks at src back into rows of nb
// stored blocks at dst.
static void unpack_moved(const void *src, int64_t nb, int64_t n_groups, size_t x_bytes, size_t o_bytes,
                         block_move move, void *dst) {
    const unsigned char *s = src;
    unsigned char *d = dst;
    for (int64_t g = 0; g < n_groups; g++)
        for (int64_t b = 0; b < nb; b++, s += o_bytes) {
            x8_block blk;
            memcpy(&blk, s, o_bytes);
            for (int j = 0; j < ROWS; j++) {
                stored_block x;
                move(&x, &blk, j, false);
                memcpy(d + ((size_t)(g * ROWS + j) * (size_t)nb + (size_t)b) * x_bytes, &x, x_bytes);
            }
        }
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
    cg_status st = check_buffer(W, need, dst_size, err);
    if (st) return st;
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
    return stored_matrix(W, CG_QTYPE_Q4_0, QK, sizeof(cg_block_q4_0)) && W->ne[1] % ROWS == 0;
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

// The inverse of interleave8: n_groups 8-row groups of nb interleaved blocks at src back into rows
// of nb stored blocks (an f16 scale, then qs_bytes quant bytes) at dst.
static void deinterleave8(const void *src, int64_t nb, int64_t n_groups, size_t qs_bytes, void *dst) {
    const size_t blk_in = sizeof(cg_f16) + qs_bytes, blk_out = ROWS * blk_in;
    const unsigned char *s = src;
    unsigned char *d = dst;
    for (int64_t g = 0; g < n_groups; g++)
        for (int64_t b = 0; b < nb; b++, s += blk_out)
            for (int j = 0; j < ROWS; j++) {
                unsigned char *x = d + ((size_t)(g * ROWS + j) * (size_t)nb + (size_t)b) * blk_in;
                memcpy(x, s + sizeof(cg_f16) * (size_t)j, sizeof(cg_f16));
                for (size_t k = 0; k < qs_bytes / 4; k++)
                    memcpy(x + sizeof(cg_f16) + 4 * k, s + ROWS * sizeof(cg_f16) + 32 * k + 4 * (size_t)j, 4);
            }
}

void cg_unpack_q4_0x8(const void *src, int64_t n_in, int64_t n_rows, void *dst) {
    deinterleave8(src, n_in / QK, n_rows / ROWS, sizeof(cg_block_q4_0) - sizeof(cg_f16), dst);
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

bool cg_q8_0_pack_size(int64_t n_in, int64_t n_tok, size_t *out) {
    const size_t chunks = (size_t)((n_tok + CG_PACK_TOK - 1) / CG_PACK_TOK);
    size_t per_chunk;
    return cg_mul_size((size_t)(n_in / QK), CG_PACK_BLK, &per_chunk) && cg_mul_size(per_chunk, chunks, out);
}

void cg_q8_0_pack(const void *xq, size_t xq_row, const cg_q8_0_aux *aux, int64_t n_in, int64_t t0, int64_t t1,
                  void *packed) {
    const int64_t nb = n_in / QK;
    for (int64_t t = t0; t < t1; t++) {
        const cg_block_q8_0 *a = (const cg_block_q8_0 *)((const unsigned char *)xq + (size_t)t * xq_row);
        unsigned char *c = (unsigned char *)packed + (size_t)(t / CG_PACK_TOK) * (size_t)nb * CG_PACK_BLK;
        const size_t slot = (size_t)(t % CG_PACK_TOK);
        for (int64_t b = 0; b < nb; b++) {
            unsigned char *rec = c + (size_t)b * CG_PACK_BLK;
            memcpy(rec + slot * QK, a[b].qs, QK);
            memcpy(rec + CG_PACK_TOK * QK + slot * sizeof(cg_q8_0_aux), &aux[t * nb + b], sizeof(cg_q8_0_aux));
        }
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
    return stored_matrix(W, CG_QTYPE_Q8_0, QK, sizeof(cg_block_q8_0)) && W->ne[1] >= ROWS;
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
    const int64_t nb = n_in / QK, n8 = n_rows / ROWS * ROWS;
    deinterleave8(src, nb, n_rows / ROWS, sizeof(cg_block_q8_0) - sizeof(cg_f16), dst);
    const cg_block_q8_0x8 *s = src;   // the tail rows follow the groups, as stored
    memcpy((cg_block_q8_0 *)dst + n8 * nb, &s[n8 / ROWS * nb], (size_t)((n_rows - n8) * nb) * sizeof(cg_block_q8_0));
}

void cg_repack_q8_0x8_matmul_ref(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                                 int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = n_in / QK;
    const cg_block_q8_0x8 *w = W;
    for (int64_t k = 0; k < n_tok; k++) {
        const cg_block_q8_0 *a = (const cg_block_q8_0 *)((const unsigned char *)xq + (size_t)k * xq_row);
        for (int64_t g = r0 / ROWS; g < r1 / ROWS; g++) {
            float acc[ROWS][8] = {{0}};   // row j, lane l: elements 4l..4l+3 of every block
            for (int64_t b = 0; b < nb; b++) {
                const cg_block_q8_0x8 *blk = &w[g * nb + b];
                const float da = cg_f16_to_f32(a[b].d);
                for (int j = 0; j < ROWS; j++) {
                    const float scale = cg_f16_to_f32(blk->d[j]) * da;   // one rounded float product
                    for (int l = 0; l < 8; l++) {
                        int32_t isum = 0;   // |isum| ≤ 4·127·128: exact as a float
                        for (int e = 0; e < 4; e++) isum += blk->qs[32 * l + 4 * j + e] * a[b].qs[4 * l + e];
                        acc[j][l] = fmaf(scale, (float)isum, acc[j][l]);
                    }
                }
            }
            for (int j = 0; j < ROWS; j++) {
                const float *v = acc[j];
                Y[k * ldy + g * ROWS + j] = ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
            }
        }
    }
}

// ---- Q4_K x8 ------------------------------------------------------------------------------------

enum { QKK = 256 };

// Row j's six-bit scale and min of sub-block s from a stored 12-byte Q4_K scale field (ggml's
// packing: s < 4 in the low six bits of bytes s and s + 4; s ≥ 4 split between byte s + 4 and the
// top two bits of bytes s − 4 and s).
static void k4_get(const uint8_t q[12], int s, uint8_t *sc, uint8_t *mn) {
    if (s < 4) {
        *sc = q[s] & 63;
        *mn = q[s + 4] & 63;
    } else {
        *sc = (uint8_t)((q[s + 4] & 15) | (q[s - 4] >> 6) << 4);
        *mn = (uint8_t)((q[s + 4] >> 4) | (q[s] >> 6) << 4);
    }
}

// The inverse of k4_get over all 8 sub-blocks.
static void k4_put(const uint8_t sc[8], const uint8_t mn[8], uint8_t q[12]) {
    for (int s = 0; s < 4; s++) {
        q[s] = (uint8_t)(sc[s] | (sc[s + 4] >> 4) << 6);
        q[s + 4] = (uint8_t)(mn[s] | (mn[s + 4] >> 4) << 6);
        q[s + 8] = (uint8_t)((sc[s + 4] & 15) | (mn[s + 4] & 15) << 4);
    }
}

bool cg_repack_q4_K_eligible(const cg_tensor *W) {
    return stored_matrix(W, CG_QTYPE_Q4_K, QKK, sizeof(cg_block_q4_K)) && W->ne[1] % ROWS == 0;
}

cg_status cg_repack_q4_K_size(const cg_tensor *W, size_t *out, cg_err *err) {
    return repack_size(W, cg_repack_q4_K_eligible(W), "a Q4_K matrix with rows of a multiple of 256 and a multiple of 8 rows",
                       out, err);
}

void cg_repack_q4_Kx8_scales(const cg_block_q4_Kx8 *blk, uint8_t v[128]) {
    for (int i = 0; i < 64; i++) {
        const uint8_t lo = blk->scales[i], hi = blk->scales[64 + i % 32];
        const int sh = 2 * (i / 32);   // v[i]: bits 0..1 (i < 32) or 2..3; v[64 + i]: bits 4..5 or 6..7
        v[i] = (uint8_t)((lo & 15) | ((hi >> sh) & 3) << 4);
        v[64 + i] = (uint8_t)((lo >> 4) | ((hi >> (sh + 4)) & 3) << 4);
    }
}

cg_status cg_repack_q4_K(const cg_tensor *W, void *dst, size_t dst_size, cg_tensor *out, cg_err *err) {
    size_t need;
    cg_status st = cg_repack_q4_K_size(W, &need, err);
    if (!st) st = check_buffer(W, need, dst_size, err);
    if (st) return st;
    const int64_t nb = W->ne[0] / QKK;
    const unsigned char *src = W->data;
    cg_block_q4_Kx8 *o = dst;
    for (int64_t g = 0; g < W->ne[1] / ROWS; g++)
        for (int64_t b = 0; b < nb; b++) {
            cg_block_q4_Kx8 blk;
            uint8_t v[128];
            for (int j = 0; j < ROWS; j++) {
                cg_block_q4_K x;
                memcpy(&x, src + (size_t)(g * ROWS + j) * W->row_bytes + (size_t)b * sizeof x, sizeof x);
                blk.d[j] = x.d;
                blk.dmin[j] = x.dmin;
                for (int s = 0; s < 8; s++) k4_get(x.scales, s, &v[8 * s + j], &v[64 + 16 * (s / 2) + 2 * j + s % 2]);
                for (int m = 0; m < 32; m++) memcpy(&blk.qs[32 * m + 4 * j], &x.qs[4 * m], 4);
            }
            for (int i = 0; i < 64; i++) blk.scales[i] = (uint8_t)((v[i] & 15) | (v[64 + i] & 15) << 4);
            for (int i = 0; i < 32; i++)
                blk.scales[64 + i] = (uint8_t)(v[i] >> 4 | (v[32 + i] >> 4) << 2 | (v[64 + i] >> 4) << 4 | (v[96 + i] >> 4) << 6);
            memcpy(&o[g * nb + b], &blk, sizeof blk);
        }
    *out = *W;
    out->data = dst;
    out->layout = CG_LAYOUT_Q4_K_X8;
    return CG_OK;
}

void cg_unpack_q4_Kx8(const void *src, int64_t n_in, int64_t n_rows, void *dst) {
    const int64_t nb = n_in / QKK;
    const cg_block_q4_Kx8 *s = src;
    cg_block_q4_K *d = dst;
    for (int64_t g = 0; g < n_rows / ROWS; g++)
        for (int64_t b = 0; b < nb; b++) {
            cg_block_q4_Kx8 blk;
            memcpy(&blk, &s[g * nb + b], sizeof blk);
            uint8_t v[128];
            cg_repack_q4_Kx8_scales(&blk, v);
            for (int j = 0; j < ROWS; j++) {
                cg_block_q4_K x;
                uint8_t sc[8], mn[8];
                for (int k = 0; k < 8; k++) sc[k] = v[8 * k + j], mn[k] = v[64 + 16 * (k / 2) + 2 * j + k % 2];
                x.d = blk.d[j];
                x.dmin = blk.dmin[j];
                k4_put(sc, mn, x.scales);
                for (int m = 0; m < 32; m++) memcpy(&x.qs[4 * m], &blk.qs[32 * m + 4 * j], 4);
                memcpy(&d[(g * ROWS + j) * nb + b], &x, sizeof x);
            }
        }
}

void cg_repack_q4_Kx8_matmul_ref(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                                 int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = n_in / QKK;
    const cg_block_q4_Kx8 *w = W;
    for (int64_t k = 0; k < n_tok; k++) {
        const cg_block_q8_K *a = (const cg_block_q8_K *)((const unsigned char *)xq + (size_t)k * xq_row);
        for (int64_t g = r0 / ROWS; g < r1 / ROWS; g++) {
            float acc[ROWS] = {0}, accm[ROWS] = {0};
            for (int64_t b = 0; b < nb; b++) {
                const cg_block_q4_Kx8 *blk = &w[g * nb + b];
                uint8_t v[128];
                cg_repack_q4_Kx8_scales(blk, v);
                for (int j = 0; j < ROWS; j++) {
                    int32_t isum = 0, imin = 0;
                    for (int s = 0; s < 8; s++) {
                        int32_t dot = 0;   // sub-block s = elements 32s..32s+31: chunk c = s/2, nibble s%2
                        for (int i = 0; i < 32; i++) {
                            const int m = 8 * (s / 2) + i / 4, e = i % 4;
                            const uint8_t q = blk->qs[32 * m + 4 * j + e];
                            dot += ((s % 2) ? q >> 4 : q & 15) * a[b].qs[32 * s + i];
                        }
                        isum += v[8 * s + j] * dot;
                        imin += v[64 + 16 * (s / 2) + 2 * j + s % 2] * (a[b].bsums[2 * s] + a[b].bsums[2 * s + 1]);
                    }
                    // One rounded float product per scale, then fused (llama.cpp's q4_K_8x8 order).
                    acc[j] = fmaf((float)isum, cg_f16_to_f32(blk->d[j]) * a[b].d, acc[j]);
                    accm[j] = fmaf((float)imin, cg_f16_to_f32(blk->dmin[j]) * a[b].d, accm[j]);
                }
            }
            for (int j = 0; j < ROWS; j++) Y[k * ldy + g * ROWS + j] = acc[j] - accm[j];
        }
    }
}

// ---- Q6_K x8 ------------------------------------------------------------------------------------

bool cg_repack_q6_K_eligible(const cg_tensor *W) {
    return stored_matrix(W, CG_QTYPE_Q6_K, QKK, sizeof(cg_block_q6_K)) && W->ne[1] % ROWS == 0;
}

cg_status cg_repack_q6_K_size(const cg_tensor *W, size_t *out, cg_err *err) {
    return repack_size(W, cg_repack_q6_K_eligible(W), "a Q6_K matrix with rows of a multiple of 256 and a multiple of 8 rows",
                       out, err);
}

// One stored block x into row j of the interleaved block o (repack.h), or back (to_x8 false).
static void q6k_move(stored_block *xb, x8_block *ob, int j, bool to_x8) {
    cg_block_q6_K *x = &xb->q6_K;
    cg_block_q6_Kx8 *o = &ob->q6_K;
    for (int t = 0; t < 8; t++)
        for (int e = 0; e < 2; e++) {
            int8_t *a = &o->scales[16 * t + 2 * j + e], *b = &x->scales[2 * t + e];
            if (to_x8) *a = *b;
            else *b = *a;
        }
    for (int m = 0; m < 32; m++) {
        if (to_x8) memcpy(&o->ql[32 * m + 4 * j], &x->ql[4 * m], 4);
        else memcpy(&x->ql[4 * m], &o->ql[32 * m + 4 * j], 4);
    }
    for (int m = 0; m < 16; m++) {
        if (to_x8) memcpy(&o->qh[32 * m + 4 * j], &x->qh[4 * m], 4);
        else memcpy(&x->qh[4 * m], &o->qh[32 * m + 4 * j], 4);
    }
    if (to_x8) o->d[j] = x->d;
    else x->d = o->d[j];
}

cg_status cg_repack_q6_K(const cg_tensor *W, void *dst, size_t dst_size, cg_tensor *out, cg_err *err) {
    size_t need;
    cg_status st = cg_repack_q6_K_size(W, &need, err);
    if (st) return st;
    return repack_moved(W, need, dst, dst_size, sizeof(cg_block_q6_K), sizeof(cg_block_q6_Kx8), q6k_move,
                        CG_LAYOUT_Q6_K_X8, out, err);
}

void cg_unpack_q6_Kx8(const void *src, int64_t n_in, int64_t n_rows, void *dst) {
    unpack_moved(src, n_in / QKK, n_rows / ROWS, sizeof(cg_block_q6_K), sizeof(cg_block_q6_Kx8), q6k_move, dst);
}

// The six-bit quant (0..63) of element i (< 256) of row j in a repacked block (the stored packing,
// repack.h: element 128h + 32c + l takes nibble c>>1 of ql[64h + 32(c&1) + l] and bits 2c..2c+1
// of qh[32h + l]; stored byte p of row j sits at [32(p/4) + 4j + p%4]).
static int q6x8_quant(const cg_block_q6_Kx8 *blk, int j, int i) {
    const int h = i / 128, c = (i % 128) / 32, l = i % 32;
    const int pl = 64 * h + 32 * (c & 1) + l, ph = 32 * h + l;
    const int lo = (blk->ql[32 * (pl / 4) + 4 * j + pl % 4] >> (4 * (c >> 1))) & 15;
    const int hi = (blk->qh[32 * (ph / 4) + 4 * j + ph % 4] >> (2 * c)) & 3;
    return lo | hi << 4;
}

void cg_repack_q6_Kx8_matmul_ref(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                                 int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = n_in / QKK;
    const cg_block_q6_Kx8 *w = W;
    for (int64_t k = 0; k < n_tok; k++) {
        const cg_block_q8_K *a = (const cg_block_q8_K *)((const unsigned char *)xq + (size_t)k * xq_row);
        for (int64_t g = r0 / ROWS; g < r1 / ROWS; g++) {
            float acc[ROWS] = {0};
            for (int64_t b = 0; b < nb; b++) {
                const cg_block_q6_Kx8 *blk = &w[g * nb + b];
                for (int j = 0; j < ROWS; j++) {
                    int32_t isum = 0;   // |isum| ≤ 256·32·127·128 < 2^31
                    for (int s = 0; s < 16; s++) {
                        int32_t dot = 0;
                        for (int i = 16 * s; i < 16 * s + 16; i++) dot += (q6x8_quant(blk, j, i) - 32) * a[b].qs[i];
                        isum += blk->scales[16 * (s / 2) + 2 * j + s % 2] * dot;
                    }
                    // One rounded float product, then fused (the references' per-row order).
                    acc[j] = fmaf((float)isum, cg_f16_to_f32(blk->d[j]) * a[b].d, acc[j]);
                }
            }
            for (int j = 0; j < ROWS; j++) Y[k * ldy + g * ROWS + j] = acc[j];
        }
    }
}

// ---- Q5_0 x8 ------------------------------------------------------------------------------------

bool cg_repack_q5_0_eligible(const cg_tensor *W) {
    return stored_matrix(W, CG_QTYPE_Q5_0, QK, sizeof(cg_block_q5_0)) && W->ne[1] % ROWS == 0;
}

cg_status cg_repack_q5_0_size(const cg_tensor *W, size_t *out, cg_err *err) {
    return repack_size(W, cg_repack_q5_0_eligible(W), "a Q5_0 matrix with rows of a multiple of 32 and a multiple of 8 rows",
                       out, err);
}

// One stored block x into row j of the interleaved block o (repack.h), or back (to_x8 false; then
// row j's fifth bits are cleared from x->qh first and collected from o->qh).
static void q5_0_move(stored_block *xb, x8_block *ob, int j, bool to_x8) {
    cg_block_q5_0 *x = &xb->q5_0;
    cg_block_q5_0x8 *o = &ob->q5_0;
    uint32_t h = 0;
    if (to_x8) {
        memcpy(&h, x->qh, 4);
        o->d[j] = x->d;
        for (int k = 0; k < 4; k++) memcpy(&o->qs[32 * k + 4 * j], &x->qs[4 * k], 4);
        for (int e = 0; e < 4; e++) {
            uint8_t v = 0;   // bit i: element 4i + e
            for (int i = 0; i < 8; i++) v |= (uint8_t)(((h >> (4 * i + e)) & 1u) << i);
            o->qh[4 * j + e] = v;
        }
    } else {
        x->d = o->d[j];
        for (int k = 0; k < 4; k++) memcpy(&x->qs[4 * k], &o->qs[32 * k + 4 * j], 4);
        for (int e = 0; e < 4; e++)
            for (int i = 0; i < 8; i++) h |= (uint32_t)((o->qh[4 * j + e] >> i) & 1u) << (4 * i + e);
        memcpy(x->qh, &h, 4);
    }
}

cg_status cg_repack_q5_0(const cg_tensor *W, void *dst, size_t dst_size, cg_tensor *out, cg_err *err) {
    size_t need;
    cg_status st = cg_repack_q5_0_size(W, &need, err);
    if (st) return st;
    return repack_moved(W, need, dst, dst_size, sizeof(cg_block_q5_0), sizeof(cg_block_q5_0x8), q5_0_move,
                        CG_LAYOUT_Q5_0_X8, out, err);
}

void cg_unpack_q5_0x8(const void *src, int64_t n_in, int64_t n_rows, void *dst) {
    unpack_moved(src, n_in / QK, n_rows / ROWS, sizeof(cg_block_q5_0), sizeof(cg_block_q5_0x8), q5_0_move, dst);
}

// The five-bit quant (0..31) of element i (< 32) of row j in a repacked block (repack.h: register
// i/4, byte 4j + i%4 of qs[32·(i%16/4)..] and bit i/4 of qh[4j + i%4]).
static int q5x8_quant(const cg_block_q5_0x8 *blk, int j, int i) {
    const int e = i % 4, reg = i / 4;
    const uint8_t byte = blk->qs[32 * ((i % 16) / 4) + 4 * j + e];
    const int lo = i < 16 ? byte & 15 : byte >> 4;
    return lo | ((blk->qh[4 * j + e] >> reg) & 1) << 4;
}

void cg_repack_q5_0x8_matmul_ref(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                                 int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = n_in / QK;
    const cg_block_q5_0x8 *w = W;
    for (int64_t k = 0; k < n_tok; k++) {
        const cg_block_q8_0 *a = (const cg_block_q8_0 *)((const unsigned char *)xq + (size_t)k * xq_row);
        for (int64_t g = r0 / ROWS; g < r1 / ROWS; g++) {
            float acc[ROWS][8] = {{0}};   // [row][lane l: elements 4l..4l+3]
            for (int64_t b = 0; b < nb; b++) {
                const cg_block_q5_0x8 *blk = &w[g * nb + b];
                const float da = cg_f16_to_f32(a[b].d);
                for (int j = 0; j < ROWS; j++) {
                    const float scale = cg_f16_to_f32(blk->d[j]) * da;   // one rounded float product
                    for (int l = 0; l < 8; l++) {
                        int32_t isum = 0;   // |isum| ≤ 4·16·127: exact as a float
                        for (int e = 0; e < 4; e++) isum += (q5x8_quant(blk, j, 4 * l + e) - 16) * a[b].qs[4 * l + e];
                        acc[j][l] = fmaf((float)isum, scale, acc[j][l]);
                    }
                }
            }
            for (int j = 0; j < ROWS; j++) {   // the horizontal sum of the stored kernel (hsum_ps)
                const float *v = acc[j];
                Y[k * ldy + g * ROWS + j] = ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
            }
        }
    }
}
