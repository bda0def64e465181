// neon.c — AArch64 NEON kernels (baseline ARMv8.0 Advanced SIMD, no dot-product extension):
// dot products of Q4_0, Q8_0 (× Q8_0), Q4_K, Q6_K (× Q8_K), F32 and F16, and the Q8_0 / Q8_K
// activation quantizers; every other format falls back to the scalar reference (qops.h).
//
// Invariants as on x86 (x86/avx2_dot.c): integer products of a (sub-)block are summed exactly
// (vmull_s8 into int16, pairwise-added into int32), the block scales are applied in float as the
// reference does, so results differ from quant/ref.h only in the order of the float sums. The
// quantizers round with vcvtnq (to nearest, ties to even) after the same single multiply as the
// reference, so their bytes are identical. Built only for aarch64 (CMake globs src/kern/arm there);
// tests/integ/kern_neon.sh cross-compiles and runs the comparison under qemu. Pure functions.
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "kern/arm/neon.h"
#include "quant/blocks.h"
#include "quant/f16.h"

// Σ a·b over 16 signed bytes, as four int32 lanes.
static inline int32x4_t dot16(int8x16_t a, int8x16_t b) {
    const int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    const int16x8_t hi = vmull_s8(vget_high_s8(a), vget_high_s8(b));
    return vpadalq_s16(vpaddlq_s16(lo), hi);
}

static inline float f16(cg_f16 h) { return cg_f16_to_f32(h); }

void cg_neon_vec_dot_q4_0(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q4_0 *a = x;
    const cg_block_q8_0 *b = y;
    float32x4_t acc = vdupq_n_f32(0.0f);
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    const int8x16_t eight = vdupq_n_s8(8);
    for (int64_t i = 0; i < n / 32; i++) {
        const uint8x16_t v = vld1q_u8(a[i].qs);
        const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, m4)), eight);
        const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);
        const int32x4_t p = vaddq_s32(dot16(lo, vld1q_s8(b[i].qs)), dot16(hi, vld1q_s8(b[i].qs + 16)));
        acc = vmlaq_n_f32(acc, vcvtq_f32_s32(p), f16(a[i].d) * f16(b[i].d));
    }
    *s = vaddvq_f32(acc);
}

void cg_neon_vec_dot_q8_0(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q8_0 *a = x, *b = y;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < n / 32; i++) {
        const int32x4_t p = vaddq_s32(dot16(vld1q_s8(a[i].qs), vld1q_s8(b[i].qs)),
                                      dot16(vld1q_s8(a[i].qs + 16), vld1q_s8(b[i].qs + 16)));
        acc = vmlaq_n_f32(acc, vcvtq_f32_s32(p), f16(a[i].d) * f16(b[i].d));
    }
    *s = vaddvq_f32(acc);
}

static inline void k4_scale_min(const uint8_t *sc, int j, int *d, int *m) {
    if (j < 4) {
        *d = sc[j] & 63;
        *m = sc[j + 4] & 63;
    } else {
        *d = (sc[j + 4] & 0x0F) | (sc[j - 4] >> 6) << 4;
        *m = (sc[j + 4] >> 4) | (sc[j] >> 6) << 4;
    }
}

void cg_neon_vec_dot_q4_K(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q4_K *a = x;
    const cg_block_q8_K *b = y;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 256; i++) {
        int32_t isum = 0, msum = 0;
        for (int c = 0; c < 4; c++) {
            int sl, ml, sh, mh;
            k4_scale_min(a[i].scales, 2 * c, &sl, &ml);
            k4_scale_min(a[i].scales, 2 * c + 1, &sh, &mh);
            const uint8x16_t v0 = vld1q_u8(a[i].qs + 32 * c), v1 = vld1q_u8(a[i].qs + 32 * c + 16);
            const int8_t *q8 = b[i].qs + 64 * c;
            const int32x4_t pl = vaddq_s32(dot16(vreinterpretq_s8_u8(vandq_u8(v0, m4)), vld1q_s8(q8)),
                                           dot16(vreinterpretq_s8_u8(vandq_u8(v1, m4)), vld1q_s8(q8 + 16)));
            const int32x4_t ph = vaddq_s32(dot16(vreinterpretq_s8_u8(vshrq_n_u8(v0, 4)), vld1q_s8(q8 + 32)),
                                           dot16(vreinterpretq_s8_u8(vshrq_n_u8(v1, 4)), vld1q_s8(q8 + 48)));
            isum += sl * vaddvq_s32(pl) + sh * vaddvq_s32(ph);
            msum += ml * (b[i].bsums[4 * c] + b[i].bsums[4 * c + 1]) + mh * (b[i].bsums[4 * c + 2] + b[i].bsums[4 * c + 3]);
        }
        sum += (f16(a[i].d) * b[i].d) * (float)isum - (f16(a[i].dmin) * b[i].d) * (float)msum;
    }
    *s = sum;
}

void cg_neon_vec_dot_q6_K(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q6_K *a = x;
    const cg_block_q8_K *b = y;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(3);
    const int8x16_t k32 = vdupq_n_s8(32);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 256; i++) {
        int32_t isum = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = a[i].ql + 64 * h, *qh = a[i].qh + 32 * h;
            const int8_t *q8 = b[i].qs + 128 * h, *sc = a[i].scales + 8 * h;
            for (int half = 0; half < 2; half++) {   // l in [16·half, 16·half + 16)
                const int o = 16 * half;
                const uint8x16_t l0 = vld1q_u8(ql + o), l1 = vld1q_u8(ql + 32 + o), hh = vld1q_u8(qh + o);
                const uint8x16_t u1 = vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(hh, m3), 4));
                const uint8x16_t u2 = vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hh, 2), m3), 4));
                const uint8x16_t u3 = vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hh, 4), m3), 4));
                const uint8x16_t u4 = vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(hh, 6), 4));
                // Sub-block k of 16: element l + 32·j uses scale sc[k + 2j] with k = half.
                isum += sc[half] * vaddvq_s32(dot16(vsubq_s8(vreinterpretq_s8_u8(u1), k32), vld1q_s8(q8 + o)));
                isum += sc[half + 2] * vaddvq_s32(dot16(vsubq_s8(vreinterpretq_s8_u8(u2), k32), vld1q_s8(q8 + 32 + o)));
                isum += sc[half + 4] * vaddvq_s32(dot16(vsubq_s8(vreinterpretq_s8_u8(u3), k32), vld1q_s8(q8 + 64 + o)));
                isum += sc[half + 6] * vaddvq_s32(dot16(vsubq_s8(vreinterpretq_s8_u8(u4), k32), vld1q_s8(q8 + 96 + o)));
            }
        }
        sum += (f16(a[i].d) * b[i].d) * (float)isum;
    }
    *s = sum;
}

void cg_neon_vec_dot_f32(int64_t n, float *s, const void *x, const void *y) {
    const float *a = x, *b = y;
    float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 4; k++) acc[k] = vfmaq_f32(acc[k], vld1q_f32(a + i + 4 * k), vld1q_f32(b + i + 4 * k));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
    for (; i < n; i++) sum += a[i] * b[i];
    *s = sum;
}

void cg_neon_vec_dot_f16(int64_t n, float *s, const void *x, const void *y) {
    const cg_f16 *a = x, *b = y;
    float32x4_t acc[2] = {vdupq_n_f32(0), vdupq_n_f32(0)};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float16x8_t va = vreinterpretq_f16_u16(vld1q_u16(a + i)), vb = vreinterpretq_f16_u16(vld1q_u16(b + i));
        acc[0] = vfmaq_f32(acc[0], vcvt_f32_f16(vget_low_f16(va)), vcvt_f32_f16(vget_low_f16(vb)));
        acc[1] = vfmaq_f32(acc[1], vcvt_f32_f16(vget_high_f16(va)), vcvt_f32_f16(vget_high_f16(vb)));
    }
    float sum = vaddvq_f32(vaddq_f32(acc[0], acc[1]));
    for (; i < n; i++) sum += f16(a[i]) * f16(b[i]);
    *s = sum;
}

// ---- activation quantizers --------------------------------------------------------------------------

// n floats · scale, rounded half to even, saturated to int8.
static inline void round_store(const float *x, float scale, int8_t *q, int n) {
    for (int k = 0; k < n; k += 8) {
        const int32x4_t a = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + k), scale));
        const int32x4_t b = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + k + 4), scale));
        vst1_s8(q + k, vqmovn_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b))));
    }
}

static inline float amax_n(const float *x, int n) {
    float32x4_t m = vabsq_f32(vld1q_f32(x));
    for (int k = 4; k < n; k += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + k)));
    return vmaxvq_f32(m);
}

void cg_neon_quant_q8_0(const float *src, void *dst, int64_t n) {
    cg_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / 32; i++, src += 32) {
        const float amax = amax_n(src, 32);
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        b[i].d = cg_f32_to_f16(amax / 127.0f);
        round_store(src, id, b[i].qs, 32);
    }
}

void cg_neon_quant_q8_K(const float *src, void *dst, int64_t n) {
    cg_block_q8_K *b = dst;
    for (int64_t i = 0; i < n / 256; i++, src += 256) {
        const float amax = amax_n(src, 256);
        memset(&b[i], 0, sizeof b[i]);
        if (!(amax > 0.0f)) continue;
        float mx = 0.0f;
        for (int e = 0; e < 256; e++)
            if (fabsf(src[e]) == amax) {
                mx = src[e];
                break;
            }
        const float iscale = -127.0f / mx;
        round_store(src, iscale, b[i].qs, 256);
        for (int g = 0; g < 16; g++) {
            int8x16_t q = vld1q_s8(b[i].qs + 16 * g);
            q = vminq_s8(q, vdupq_n_s8(127));
            vst1q_s8(b[i].qs + 16 * g, q);
            b[i].bsums[g] = (int16_t)vaddlvq_s8(q);
        }
        b[i].d = 1 / iscale;
    }
}

static const cg_qops NEON = {
    .name = "neon",
    .vec_dot =
        {
            [CG_QTYPE_F32] = cg_neon_vec_dot_f32,   [CG_QTYPE_F16] = cg_neon_vec_dot_f16,
            [CG_QTYPE_Q4_0] = cg_neon_vec_dot_q4_0, [CG_QTYPE_Q8_0] = cg_neon_vec_dot_q8_0,
            [CG_QTYPE_Q4_K] = cg_neon_vec_dot_q4_K, [CG_QTYPE_Q6_K] = cg_neon_vec_dot_q6_K,
        },
    .quant_act = {[CG_QTYPE_Q8_0] = cg_neon_quant_q8_0, [CG_QTYPE_Q8_K] = cg_neon_quant_q8_K},
};

const cg_qops *cg_qops_neon(void) { return &NEON; }
