// kquants.c — K-quant super-blocks (256 elements): unpacking, dequantization and dot products for
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K against Q8_K, the Q8_K activation format itself, and IQ4_XS.
//
// Each format has one unpack function that turns a block into integer quants in element order plus
// its integer sub-block scales (and mins); dequantization and the dot product both read those, so
// the bit layout lives in one place. Dequantization is float32 with every operation rounded
// separately, in ggml's order (value = (d·sc)·q − dmin·m), which makes it bit-exact with ggml's
// to_float; the file is compiled with -ffp-contract=off. Dot products sum integer products per
// sub-block, weight them by the integer scales, and only then apply the float block scales.
// The quantizers (scale searches) are in kquant_ref.c. Pure functions; see ref.h.
#include <math.h>
#include <string.h>

#include "quant/qmath.h"
#include "quant/ref.h"

#define QK CG_QK_K_

// ---- unpacking ---------------------------------------------------------------------------------

// Q2_K: q 0..3; sub-block of 16 i has scale scales[i] & 0xF and min scales[i] >> 4.
static void q2k_unpack(const cg_block_q2_K *b, int8_t q[QK]) {
    // Element 128h + 32k + l (k = shift/2, l < 32) is bits 2k..2k+1 of qs[32h + l].
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) q[128 * h + 32 * k + l] = (int8_t)((b->qs[32 * h + l] >> (2 * k)) & 3);
}

// Q3_K: q -4..3; 16 signed six-bit scales.
static void q3k_unpack(const cg_block_q3_K *b, int8_t q[QK], int sc[16]) {
    for (int i = 0; i < 16; i++) {
        const int low4 = i < 8 ? b->scales[i] & 0x0F : b->scales[i - 8] >> 4;
        const int high2 = (b->scales[8 + i % 4] >> (2 * (i / 4))) & 3;
        sc[i] = (low4 | high2 << 4) - 32;
    }
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++) {
            const uint8_t m = (uint8_t)(1u << (4 * h + k));
            for (int l = 0; l < 32; l++) {
                const int e = 128 * h + 32 * k + l;
                // The high bit of element e sits in hmask[e % 32], bit e / 32.
                q[e] = (int8_t)(((b->qs[32 * h + l] >> (2 * k)) & 3) - ((b->hmask[l] & m) ? 0 : 4));
            }
        }
}

// Q4_K / Q5_K scale and min of sub-block j (0..7), six bits each.
static void k4_scale_min(const uint8_t s[CG_K_SCALE_SIZE], int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

// Q4_K: q 0..15; chunk c of 64 elements = low nibbles of qs[32c..] then high nibbles.
static void q4k_unpack(const cg_block_q4_K *b, int8_t q[QK], int sc[8], int mn[8]) {
    for (int j = 0; j < 8; j++) k4_scale_min(b->scales, j, &sc[j], &mn[j]);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            q[64 * c + l] = (int8_t)(b->qs[32 * c + l] & 0x0F);
            q[64 * c + 32 + l] = (int8_t)(b->qs[32 * c + l] >> 4);
        }
}

// Q5_K: as Q4_K plus a fifth bit: qh[l] bit 2c (low half of chunk c) / bit 2c+1 (high half).
static void q5k_unpack(const cg_block_q5_K *b, int8_t q[QK], int sc[8], int mn[8]) {
    for (int j = 0; j < 8; j++) k4_scale_min(b->scales, j, &sc[j], &mn[j]);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            q[64 * c + l] = (int8_t)((b->qs[32 * c + l] & 0x0F) + ((b->qh[l] >> (2 * c)) & 1) * 16);
            q[64 * c + 32 + l] = (int8_t)((b->qs[32 * c + l] >> 4) + ((b->qh[l] >> (2 * c + 1)) & 1) * 16);
        }
}

// Q6_K: q -32..31; sub-block of 16 i has scale scales[i].
static void q6k_unpack(const cg_block_q6_K *b, int8_t q[QK]) {
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        int8_t *o = q + 128 * h;
        for (int l = 0; l < 32; l++) {
            o[l] = (int8_t)(((ql[l] & 0x0F) | ((qh[l] >> 0) & 3) << 4) - 32);
            o[l + 32] = (int8_t)(((ql[l + 32] & 0x0F) | ((qh[l] >> 2) & 3) << 4) - 32);
            o[l + 64] = (int8_t)(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
            o[l + 96] = (int8_t)(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
        }
    }
}

// IQ4_XS: q = table index 0..15; eight six-bit scales (offset 32) per 32 elements.
static void iq4xs_unpack(const cg_block_iq4_xs *b, int8_t q[QK], int sc[8]) {
    for (int j = 0; j < 8; j++) {
        const int lo = (b->scales_l[j / 2] >> (4 * (j % 2))) & 0x0F;
        const int hi = (b->scales_h >> (2 * j)) & 3;
        sc[j] = (lo | hi << 4) - 32;
        for (int l = 0; l < 16; l++) {
            q[32 * j + l] = (int8_t)(b->qs[16 * j + l] & 0x0F);
            q[32 * j + 16 + l] = (int8_t)(b->qs[16 * j + l] >> 4);
        }
    }
}

// Σ a[k]·b[k] over a sub-block.
static inline int32_t idot(const int8_t *a, const int8_t *b, int n) {
    int32_t s = 0;
    for (int k = 0; k < n; k++) s += a[k] * b[k];
    return s;
}

// ---- Q2_K ---------------------------------------------------------------------------------------

void cg_q2_K_to_f32(const void *src, float *dst, int64_t n) {
    const cg_block_q2_K *b = src;
    int8_t q[QK];
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        const float d = cg_f16_to_f32(b[i].d), dmin = cg_f16_to_f32(b[i].dmin);
        q2k_unpack(&b[i], q);
        for (int s = 0; s < 16; s++) {
            const float dl = d * (b[i].scales[s] & 0x0F), ml = dmin * (b[i].scales[s] >> 4);
            for (int l = 0; l < 16; l++) dst[16 * s + l] = dl * q[16 * s + l] - ml;
        }
    }
}

void cg_q2_K_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q2_K *a = x;
    const cg_block_q8_K *b = y;
    int8_t q[QK];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        q2k_unpack(&a[i], q);
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < 16; j++) {
            isum += (a[i].scales[j] & 0x0F) * idot(q + 16 * j, b[i].qs + 16 * j, 16);
            msum += (a[i].scales[j] >> 4) * b[i].bsums[j];
        }
        const float dall = b[i].d * cg_f16_to_f32(a[i].d), dmin = b[i].d * cg_f16_to_f32(a[i].dmin);
        sum += dall * (float)isum - dmin * (float)msum;
    }
    *s = sum;
}

// ---- Q3_K ---------------------------------------------------------------------------------------

void cg_q3_K_to_f32(const void *src, float *dst, int64_t n) {
    const cg_block_q3_K *b = src;
    int8_t q[QK];
    int sc[16];
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        const float d = cg_f16_to_f32(b[i].d);
        q3k_unpack(&b[i], q, sc);
        for (int s = 0; s < 16; s++) {
            const float dl = d * sc[s];
            for (int l = 0; l < 16; l++) dst[16 * s + l] = dl * q[16 * s + l];
        }
    }
}

void cg_q3_K_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q3_K *a = x;
    const cg_block_q8_K *b = y;
    int8_t q[QK];
    int sc[16];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        q3k_unpack(&a[i], q, sc);
        int32_t isum = 0;
        for (int j = 0; j < 16; j++) isum += sc[j] * idot(q + 16 * j, b[i].qs + 16 * j, 16);
        sum += (cg_f16_to_f32(a[i].d) * b[i].d) * (float)isum;
    }
    *s = sum;
}

// ---- Q4_K / Q5_K ----------------------------------------------------------------------------------

static void k45_to_f32(const int8_t q[QK], const int sc[8], const int mn[8], float d, float dmin, float *dst) {
    for (int j = 0; j < 8; j++) {
        const float d1 = d * sc[j], m1 = dmin * mn[j];
        for (int l = 0; l < 32; l++) dst[32 * j + l] = d1 * q[32 * j + l] - m1;
    }
}

// One super-block's dot with Q8_K: d·d8·Σ sc·(q·q8) − dmin·d8·Σ m·(bsums of the sub-block).
static float k45_dot(const int8_t q[QK], const int sc[8], const int mn[8], float d, float dmin,
                     const cg_block_q8_K *b) {
    int32_t isum = 0, msum = 0;
    for (int j = 0; j < 8; j++) {
        isum += sc[j] * idot(q + 32 * j, b->qs + 32 * j, 32);
        msum += mn[j] * (b->bsums[2 * j] + b->bsums[2 * j + 1]);
    }
    return (d * b->d) * (float)isum - (dmin * b->d) * (float)msum;
}

void cg_q4_K_to_f32(const void *src, float *dst, int64_t n) {
    const cg_block_q4_K *b = src;
    int8_t q[QK];
    int sc[8], mn[8];
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        q4k_unpack(&b[i], q, sc, mn);
        k45_to_f32(q, sc, mn, cg_f16_to_f32(b[i].d), cg_f16_to_f32(b[i].dmin), dst);
    }
}

void cg_q4_K_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q4_K *a = x;
    const cg_block_q8_K *b = y;
    int8_t q[QK];
    int sc[8], mn[8];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        q4k_unpack(&a[i], q, sc, mn);
        sum += k45_dot(q, sc, mn, cg_f16_to_f32(a[i].d), cg_f16_to_f32(a[i].dmin), &b[i]);
    }
    *s = sum;
}

void cg_q5_K_to_f32(const void *src, float *dst, int64_t n) {
    const cg_block_q5_K *b = src;
    int8_t q[QK];
    int sc[8], mn[8];
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        q5k_unpack(&b[i], q, sc, mn);
        k45_to_f32(q, sc, mn, cg_f16_to_f32(b[i].d), cg_f16_to_f32(b[i].dmin), dst);
    }
}

void cg_q5_K_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q5_K *a = x;
    const cg_block_q8_K *b = y;
    int8_t q[QK];
    int sc[8], mn[8];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        q5k_unpack(&a[i], q, sc, mn);
        sum += k45_dot(q, sc, mn, cg_f16_to_f32(a[i].d), cg_f16_to_f32(a[i].dmin), &b[i]);
    }
    *s = sum;
}

// ---- Q6_K ---------------------------------------------------------------------------------------

void cg_q6_K_to_f32(const void *src, float *dst, int64_t n) {
    const cg_block_q6_K *b = src;
    int8_t q[QK];
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        const float d = cg_f16_to_f32(b[i].d);
        q6k_unpack(&b[i], q);
        for (int e = 0; e < QK; e++) dst[e] = d * b[i].scales[e / 16] * q[e];
    }
}

void cg_q6_K_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q6_K *a = x;
    const cg_block_q8_K *b = y;
    int8_t q[QK];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        q6k_unpack(&a[i], q);
        int32_t isum = 0;
        for (int j = 0; j < 16; j++) isum += a[i].scales[j] * idot(q + 16 * j, b[i].qs + 16 * j, 16);
        sum += (cg_f16_to_f32(a[i].d) * b[i].d) * (float)isum;
    }
    *s = sum;
}

// ---- Q8_K (activations for the K types) ------------------------------------------------------------

void cg_q8_K_to_f32(const void *src, float *dst, int64_t n) {
    const cg_block_q8_K *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK)
        for (int e = 0; e < QK; e++) dst[e] = b[i].d * b[i].qs[e];
}

// ggml's quantize_row_q8_K_ref (also what its CPU backend applies to activations): scale by
// −127/max where max is the signed element of largest magnitude (first one on ties), round half
// to even, clamp above at 127; d = 1/iscale. An all-zero block stores d = 0 and zero quants.
void cg_q8_K_from_f32(const float *src, void *dst, int64_t n) {
    cg_block_q8_K *b = dst;
    for (int64_t i = 0; i < n / QK; i++, src += QK) {
        float amax = 0.0f, mx = 0.0f;
        for (int e = 0; e < QK; e++)
            if (fabsf(src[e]) > amax) {
                amax = fabsf(src[e]);
                mx = src[e];
            }
        memset(&b[i], 0, sizeof b[i]);
        if (!amax) continue;  // (ggml leaves bsums untouched here; ours are zero, which they sum to)
        const float iscale = -127.0f / mx;
        for (int e = 0; e < QK; e++) {
            const int v = q_nearest_int(iscale * src[e]);
            b[i].qs[e] = (int8_t)(v < 127 ? v : 127);
        }
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int k = 0; k < 16; k++) sum += b[i].qs[16 * g + k];
            b[i].bsums[g] = (int16_t)sum;
        }
        b[i].d = 1 / iscale;
    }
}

// ---- IQ4_XS ---------------------------------------------------------------------------------------

void cg_iq4_xs_to_f32(const void *src, float *dst, int64_t n) {
    const cg_block_iq4_xs *b = src;
    int8_t q[QK];
    int sc[8];
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        const float d = cg_f16_to_f32(b[i].d);
        iq4xs_unpack(&b[i], q, sc);
        for (int j = 0; j < 8; j++) {
            const float dl = d * sc[j];
            for (int l = 0; l < 32; l++) dst[32 * j + l] = dl * Q_IQ4NL_VALUES[q[32 * j + l]];
        }
    }
}

void cg_iq4_xs_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_iq4_xs *a = x;
    const cg_block_q8_K *b = y;
    int8_t q[QK];
    int sc[8];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        iq4xs_unpack(&a[i], q, sc);
        int32_t isum = 0;
        for (int j = 0; j < 8; j++) {
            int32_t sub = 0;
            for (int l = 0; l < 32; l++) sub += Q_IQ4NL_VALUES[q[32 * j + l]] * b[i].qs[32 * j + l];
            isum += sc[j] * sub;
        }
        sum += (cg_f16_to_f32(a[i].d) * b[i].d) * (float)isum;
    }
    *s = sum;
}
