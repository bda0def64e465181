// legacy.c — the 32-element formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, IQ4_NL.
//
// Dequantization is float32 with every operation rounded separately (this file is compiled with
// -ffp-contract=off), in ggml's evaluation order, so it is bit-exact with ggml's to_float.
// Quantizers reproduce ggml's reference quantizers byte for byte: per block, scan in element order
// with strict comparisons (the first extreme wins), store f16(d) but quantize with the unrounded d.
// Dot products sum integer products per block, then apply the two block scales in float.
// All functions are pure (no state), see ref.h for the preconditions.
#include <float.h>
#include <math.h>
#include <string.h>

#include "quant/qmath.h"
#include "quant/ref.h"

// ---- Q4_0: value = (q - 8) · d ----------------------------------------------------------------

void cg_q4_0_to_f32(const void *src, float *dst, int64_t n) {
    const cg_block_q4_0 *b = src;
    for (int64_t i = 0; i < n / CG_QK4_0; i++, dst += CG_QK4_0) {
        const float d = cg_f16_to_f32(b[i].d);
        for (int j = 0; j < 16; j++) {
            const int lo = (b[i].qs[j] & 0x0F) - 8, hi = (b[i].qs[j] >> 4) - 8;
            dst[j] = lo * d;
            dst[j + 16] = hi * d;
        }
    }
}

void cg_q4_0_from_f32(const float *src, void *dst, int64_t n) {
    cg_block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / CG_QK4_0; i++, src += CG_QK4_0) {
        float amax = 0.0f, m = 0.0f;  // m: the signed element of largest magnitude
        for (int j = 0; j < CG_QK4_0; j++)
            if (amax < fabsf(src[j])) {
                amax = fabsf(src[j]);
                m = src[j];
            }
        const float d = m / -8;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = cg_f32_to_f16(d);
        for (int j = 0; j < 16; j++) {
            const int lo = q_clamp(q_trunc(src[j] * id + 8.5f), -128, 15);
            const int hi = q_clamp(q_trunc(src[j + 16] * id + 8.5f), -128, 15);
            b[i].qs[j] = (uint8_t)((lo & 0x0F) | (hi & 0x0F) << 4);
        }
    }
}

void cg_q4_0_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q4_0 *a = x;
    const cg_block_q8_0 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / CG_QK4_0; i++) {
        int32_t isum = 0;
        for (int j = 0; j < 16; j++)
            isum += ((a[i].qs[j] & 0x0F) - 8) * b[i].qs[j] + ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + 16];
        sum += (float)isum * (cg_f16_to_f32(a[i].d) * cg_f16_to_f32(b[i].d));
    }
    *s = sum;
}

// ---- Q4_1: value = q · d + m ------------------------------------------------------------------

void cg_q4_1_to_f32(const void *src, float *dst, int64_t n) {
    const cg_block_q4_1 *b = src;
    for (int64_t i = 0; i < n / CG_QK4_1; i++, dst += CG_QK4_1) {
        const float d = cg_f16_to_f32(b[i].d), m = cg_f16_to_f32(b[i].m);
        for (int j = 0; j < 16; j++) {
            dst[j] = (b[i].qs[j] & 0x0F) * d + m;
            dst[j + 16] = (b[i].qs[j] >> 4) * d + m;
        }
    }
}

// Min and max of a block, scanning in order with strict comparisons (so the first -0.0 or 0.0
// found is the one kept: the stored min keeps its sign).
static void block_min_max(const float *x, int n, float *mn, float *mx) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

void cg_q4_1_from_f32(const float *src, void *dst, int64_t n) {
    cg_block_q4_1 *b = dst;
    for (int64_t i = 0; i < n / CG_QK4_1; i++, src += CG_QK4_1) {
        float mn, mx;
        block_min_max(src, CG_QK4_1, &mn, &mx);
        const float d = (mx - mn) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = cg_f32_to_f16(d);
        b[i].m = cg_f32_to_f16(mn);
        for (int j = 0; j < 16; j++) {
            const int lo = q_clamp(q_trunc((src[j] - mn) * id + 0.5f), -128, 15);
            const int hi = q_clamp(q_trunc((src[j + 16] - mn) * id + 0.5f), -128, 15);
            b[i].qs[j] = (uint8_t)((lo & 0x0F) | (hi & 0x0F) << 4);
        }
    }
}

void cg_q4_1_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q4_1 *a = x;
    const cg_block_q8_1 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / CG_QK4_1; i++) {
        int32_t isum = 0;
        for (int j = 0; j < 16; j++) isum += (a[i].qs[j] & 0x0F) * b[i].qs[j] + (a[i].qs[j] >> 4) * b[i].qs[j + 16];
        // Σ (q·d + m)·(d8·q8) = d·d8·Σ q·q8 + m·(d8·Σ q8), and d8·Σ q8 is the stored s.
        sum += (cg_f16_to_f32(a[i].d) * cg_f16_to_f32(b[i].d)) * (float)isum +
               cg_f16_to_f32(a[i].m) * cg_f16_to_f32(b[i].s);
    }
    *s = sum;
}

// ---- Q5_0 / Q5_1: 4 low bits in qs, the 5th bit of element j at bit j of qh -------------------

static inline uint32_t load_qh(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

static inline void store_qh(uint8_t qh[4], uint32_t v) {
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(v >> (8 * k));
}

// The 32 five-bit quants of a Q5 block, in element order.
static void unpack_q5(const uint8_t qs[16], const uint8_t qh[4], int q[32]) {
    const uint32_t h = load_qh(qh);
    for (int j = 0; j < 16; j++) {
        q[j] = (qs[j] & 0x0F) | (int)((h >> j) & 1u) << 4;
        q[j + 16] = (qs[j] >> 4) | (int)((h >> (j + 16)) & 1u) << 4;
    }
}

// Packs 32 quants (0..31) into qs/qh.
static void pack_q5(const int q[32], uint8_t qs[16], uint8_t qh[4]) {
    uint32_t h = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 0x0F) | (q[j + 16] & 0x0F) << 4);
        h |= (uint32_t)((q[j] >> 4) & 1) << j;
        h |= (uint32_t)((q[j + 16] >> 4) & 1) << (j + 16);
    }
    store_qh(qh, h);
}

void cg_q5_0_to_f32(const void *src, float *dst, int64_t n) {
    const cg_block_q5_0 *b = src;
    int q[32];
    for (int64_t i = 0; i < n / CG_QK5_0; i++, dst += CG_QK5_0) {
        const float d = cg_f16_to_f32(b[i].d);
        unpack_q5(b[i].qs, b[i].qh, q);
        for (int j = 0; j < 32; j++) dst[j] = (q[j] - 16) * d;
    }
}

void cg_q5_0_from_f32(const float *src, void *dst, int64_t n) {
    cg_block_q5_0 *b = dst;
    int q[32];
    for (int64_t i = 0; i < n / CG_QK5_0; i++, src += CG_QK5_0) {
        float amax = 0.0f, m = 0.0f;
        for (int j = 0; j < CG_QK5_0; j++)
            if (amax < fabsf(src[j])) {
                amax = fabsf(src[j]);
                m = src[j];
            }
        const float d = m / -16;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = cg_f32_to_f16(d);
        for (int j = 0; j < 32; j++) q[j] = q_clamp(q_trunc(src[j] * id + 16.5f), -128, 31);
        pack_q5(q, b[i].qs, b[i].qh);
    }
}

void cg_q5_0_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q5_0 *a = x;
    const cg_block_q8_0 *b = y;
    int q[32];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / CG_QK5_0; i++) {
        unpack_q5(a[i].qs, a[i].qh, q);
        int32_t isum = 0;
        for (int j = 0; j < 32; j++) isum += (q[j] - 16) * b[i].qs[j];
        sum += (float)isum * (cg_f16_to_f32(a[i].d) * cg_f16_to_f32(b[i].d));
    }
    *s = sum;
}

void cg_q5_1_to_f32(const void *src, float *dst, int64_t n) {
    const cg_block_q5_1 *b = src;
    int q[32];
    for (int64_t i = 0; i < n / CG_QK5_1; i++, dst += CG_QK5_1) {
        const float d = cg_f16_to_f32(b[i].d), m = cg_f16_to_f32(b[i].m);
        unpack_q5(b[i].qs, b[i].qh, q);
        for (int j = 0; j < 32; j++) dst[j] = q[j] * d + m;
    }
}

void cg_q5_1_from_f32(const float *src, void *dst, int64_t n) {
    cg_block_q5_1 *b = dst;
    int q[32];
    for (int64_t i = 0; i < n / CG_QK5_1; i++, src += CG_QK5_1) {
        float mn, mx;
        block_min_max(src, CG_QK5_1, &mn, &mx);
        const float d = (mx - mn) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = cg_f32_to_f16(d);
        b[i].m = cg_f32_to_f16(mn);
        // ggml does not clamp here: (x - min)·id + 0.5 stays within [0.5, 31.5] for finite input.
        for (int j = 0; j < 32; j++) q[j] = (uint8_t)q_trunc((src[j] - mn) * id + 0.5f);
        pack_q5(q, b[i].qs, b[i].qh);
    }
}

void cg_q5_1_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q5_1 *a = x;
    const cg_block_q8_1 *b = y;
    int q[32];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / CG_QK5_1; i++) {
        unpack_q5(a[i].qs, a[i].qh, q);
        int32_t isum = 0;
        for (int j = 0; j < 32; j++) isum += q[j] * b[i].qs[j];
        sum += (cg_f16_to_f32(a[i].d) * cg_f16_to_f32(b[i].d)) * (float)isum +
               cg_f16_to_f32(a[i].m) * cg_f16_to_f32(b[i].s);
    }
    *s = sum;
}

// ---- Q8_0 / Q8_1: value = q · d ---------------------------------------------------------------

static float block_amax(const float *x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; j++) amax = fmaxf(amax, fabsf(x[j]));
    return amax;
}

void cg_q8_0_to_f32(const void *src, float *dst, int64_t n) {
    const cg_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / CG_QK8_0; i++, dst += CG_QK8_0) {
        const float d = cg_f16_to_f32(b[i].d);
        for (int j = 0; j < 32; j++) dst[j] = b[i].qs[j] * d;
    }
}

// Weight path (ggml's reference): q = roundf(x · (1/d)), half away from zero.
void cg_q8_0_from_f32(const float *src, void *dst, int64_t n) {
    cg_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / CG_QK8_0; i++, src += CG_QK8_0) {
        const float d = block_amax(src, CG_QK8_0) / 127;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = cg_f32_to_f16(d);
        for (int j = 0; j < 32; j++) b[i].qs[j] = q_round_away_i8(src[j] * id);
    }
}

// Activation path (ggml's AVX2 quantize_row_q8_0): q = rint(x · (127/amax)), half to even.
void cg_q8_0_from_f32_act(const float *src, void *dst, int64_t n) {
    cg_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / CG_QK8_0; i++, src += CG_QK8_0) {
        const float amax = block_amax(src, CG_QK8_0);
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        b[i].d = cg_f32_to_f16(amax / 127.0f);
        for (int j = 0; j < 32; j++) b[i].qs[j] = q_round_even_i8(src[j] * id);
    }
}

void cg_q8_0_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q8_0 *a = x, *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / CG_QK8_0; i++) {
        int32_t isum = 0;
        for (int j = 0; j < 32; j++) isum += a[i].qs[j] * b[i].qs[j];
        sum += (float)isum * (cg_f16_to_f32(a[i].d) * cg_f16_to_f32(b[i].d));
    }
    *s = sum;
}

void cg_q8_1_to_f32(const void *src, float *dst, int64_t n) {
    const cg_block_q8_1 *b = src;
    for (int64_t i = 0; i < n / CG_QK8_1; i++, dst += CG_QK8_1) {
        const float d = cg_f16_to_f32(b[i].d);
        for (int j = 0; j < 32; j++) dst[j] = b[i].qs[j] * d;
    }
}

void cg_q8_1_from_f32(const float *src, void *dst, int64_t n) {
    cg_block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / CG_QK8_1; i++, src += CG_QK8_1) {
        const float d = block_amax(src, CG_QK8_1) / 127;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = cg_f32_to_f16(d);
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            b[i].qs[j] = q_round_away_i8(src[j] * id);
            sum += b[i].qs[j];
        }
        b[i].s = cg_f32_to_f16((float)sum * d);
    }
}

void cg_q8_1_from_f32_act(const float *src, void *dst, int64_t n) {
    cg_block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / CG_QK8_1; i++, src += CG_QK8_1) {
        const float amax = block_amax(src, CG_QK8_1);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        b[i].d = cg_f32_to_f16(d);
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            b[i].qs[j] = q_round_even_i8(src[j] * id);
            sum += b[i].qs[j];
        }
        b[i].s = cg_f32_to_f16(d * (float)sum);
    }
}

// ---- IQ4_NL: value = d · table[q] ---------------------------------------------------------------

void cg_iq4_nl_to_f32(const void *src, float *dst, int64_t n) {
    const cg_block_iq4_nl *b = src;
    for (int64_t i = 0; i < n / CG_QK4_NL; i++, dst += CG_QK4_NL) {
        const float d = cg_f16_to_f32(b[i].d);
        for (int j = 0; j < 16; j++) {
            dst[j] = d * Q_IQ4NL_VALUES[b[i].qs[j] & 0x0F];
            dst[j + 16] = d * Q_IQ4NL_VALUES[b[i].qs[j] >> 4];
        }
    }
}

void cg_iq4_nl_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_iq4_nl *a = x;
    const cg_block_q8_0 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / CG_QK4_NL; i++) {
        int32_t isum = 0;
        for (int j = 0; j < 16; j++)
            isum += Q_IQ4NL_VALUES[a[i].qs[j] & 0x0F] * b[i].qs[j] + Q_IQ4NL_VALUES[a[i].qs[j] >> 4] * b[i].qs[j + 16];
        sum += (cg_f16_to_f32(a[i].d) * cg_f16_to_f32(b[i].d)) * (float)isum;
    }
    *s = sum;
}
