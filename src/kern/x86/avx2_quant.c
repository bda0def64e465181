// avx2_quant.c — AVX2 activation quantizers: f32 rows to Q8_0, Q8_1, Q8_K and F16, byte-identical
// with the traits' from_f32_act (quant/legacy.c, quant/kquants.c, quant/f16.h) for finite input;
// and the AVX2 cg_qops table (dot products from avx2_dot.c, the repacked Q4_0 matmul from
// avx2_repack.c, the repacked Q4_K one from avx2_repack_k.c).
//
// Why identical: each quantized value is one float multiply (x · scale, the same single rounding as
// the reference) followed by round-half-to-even (_mm256_round_ps nearest == nearbyintf and ==
// q_nearest_int for |v| < 2^22), and the scales are computed with the same scalar expressions.
// Saturation at ±127/−128 matches the reference clamps; only NaN input differs (unspecified in both).
// Compiled with -mavx2 -mfma -mf16c; pure functions.
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kern/x86/avx2.h"
#include "kern/x86/avx2_repack.h"
#include "kern/x86/avx2_repack_k.h"
#include "kern/x86/avx2_repack_q5_0.h"
#include "quant/blocks.h"
#include "quant/f16.h"

static inline float hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

// 32 floats · id, rounded half to even, saturated into 32 int8 stored in element order.
static inline __m256i round_pack32(const float *x, __m256 id) {
    __m256i i32[4];
    for (int k = 0; k < 4; k++) {
        const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), id);
        i32[k] = _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    // packs work per 128-bit lane: the 4-byte groups come out as a0 b0 c0 d0 a1 b1 c1 d1.
    const __m256i ab = _mm256_packs_epi32(i32[0], i32[1]), cd = _mm256_packs_epi32(i32[2], i32[3]);
    const __m256i abcd = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline float amax32(const float *x) {
    __m256 m = abs_ps(_mm256_loadu_ps(x));
    for (int k = 1; k < 4; k++) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + 8 * k)));
    return hmax_ps(m);
}

// Σ of 32 int8.
static inline int sum_i8x32(__m256i q) {
    const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
    const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

void cg_avx2_quant_q8_0(const float *src, void *dst, int64_t n) {
    cg_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / 32; i++, src += 32) {
        const float amax = amax32(src);
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        b[i].d = cg_f32_to_f16(amax / 127.0f);
        _mm256_storeu_si256((__m256i *)b[i].qs, round_pack32(src, _mm256_set1_ps(id)));
    }
}

void cg_avx2_quant_q8_1(const float *src, void *dst, int64_t n) {
    cg_block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / 32; i++, src += 32) {
        const float amax = amax32(src);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        const __m256i q = round_pack32(src, _mm256_set1_ps(id));
        _mm256_storeu_si256((__m256i *)b[i].qs, q);
        b[i].d = cg_f32_to_f16(d);
        b[i].s = cg_f32_to_f16(d * (float)sum_i8x32(q));
    }
}

// Q8_K: the signed element of largest magnitude (first on ties) sets iscale = −127/max.
void cg_avx2_quant_q8_K(const float *src, void *dst, int64_t n) {
    cg_block_q8_K *b = dst;
    for (int64_t i = 0; i < n / 256; i++, src += 256) {
        __m256 m = abs_ps(_mm256_loadu_ps(src));
        for (int k = 1; k < 32; k++) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(src + 8 * k)));
        const float amax = hmax_ps(m);
        if (!(amax > 0.0f)) {
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        float mx = 0.0f;
        const __m256 va = _mm256_set1_ps(amax);
        for (int k = 0; k < 32; k++) {
            const int hit = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(src + 8 * k)), va, _CMP_EQ_OQ));
            if (hit) {
                mx = src[8 * k + __builtin_ctz((unsigned)hit)];
                break;
            }
        }
        const float iscale = -127.0f / mx;
        const __m256 vs = _mm256_set1_ps(iscale);
        for (int c = 0; c < 8; c++) {
            // The reference clamps only above (at 127); below, −127·(1+ε) still rounds to −127.
            const __m256i q = _mm256_min_epi8(round_pack32(src + 32 * c, vs), _mm256_set1_epi8(127));
            _mm256_storeu_si256((__m256i *)(b[i].qs + 32 * c), q);
            const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);   // pair sums
            // Σ of each 16-byte half = one bsum: horizontal sums of 8 int16 per 128-bit lane.
            const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
            __m256i t = _mm256_hadd_epi32(s32, s32);
            t = _mm256_hadd_epi32(t, t);
            b[i].bsums[2 * c] = (int16_t)_mm256_extract_epi32(t, 0);
            b[i].bsums[2 * c + 1] = (int16_t)_mm256_extract_epi32(t, 4);
        }
        b[i].d = 1 / iscale;
    }
}

void cg_avx2_quant_f16(const float *src, void *dst, int64_t n) {
    cg_f16 *d = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(d + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) d[i] = cg_f32_to_f16(src[i]);
}

// ---- the table ------------------------------------------------------------------------------------

static const cg_qops AVX2 = {
    .name = "avx2",
    .vec_dot =
        {
            [CG_QTYPE_F32] = cg_avx2_vec_dot_f32,   [CG_QTYPE_F16] = cg_avx2_vec_dot_f16,
            [CG_QTYPE_BF16] = cg_avx2_vec_dot_bf16, [CG_QTYPE_Q4_0] = cg_avx2_vec_dot_q4_0,
            [CG_QTYPE_Q4_1] = cg_avx2_vec_dot_q4_1, [CG_QTYPE_Q5_0] = cg_avx2_vec_dot_q5_0,
            [CG_QTYPE_Q5_1] = cg_avx2_vec_dot_q5_1, [CG_QTYPE_Q8_0] = cg_avx2_vec_dot_q8_0,
            [CG_QTYPE_Q2_K] = cg_avx2_vec_dot_q2_K, [CG_QTYPE_Q3_K] = cg_avx2_vec_dot_q3_K,
            [CG_QTYPE_Q4_K] = cg_avx2_vec_dot_q4_K, [CG_QTYPE_Q5_K] = cg_avx2_vec_dot_q5_K,
            [CG_QTYPE_Q6_K] = cg_avx2_vec_dot_q6_K,
        },
    .vec_dot_n =
        {
            [CG_QTYPE_Q4_0] = cg_avx2_vec_dot_n_q4_0,
            [CG_QTYPE_Q8_0] = cg_avx2_vec_dot_n_q8_0,
            [CG_QTYPE_Q4_K] = cg_avx2_vec_dot_n_q4_K,
            [CG_QTYPE_Q6_K] = cg_avx2_vec_dot_n_q6_K,
        },
    .vec_dot_2n =
        {
            [CG_QTYPE_Q4_0] = cg_avx2_vec_dot_2n_q4_0,
            [CG_QTYPE_Q8_0] = cg_avx2_vec_dot_2n_q8_0,
        },
    .vec_dot_x2 = {[CG_QTYPE_Q5_0] = cg_avx2_vec_dot_x2_q5_0},
    .quant_act =
        {
            [CG_QTYPE_F16] = cg_avx2_quant_f16,
            [CG_QTYPE_Q8_0] = cg_avx2_quant_q8_0,
            [CG_QTYPE_Q8_1] = cg_avx2_quant_q8_1,
            [CG_QTYPE_Q8_K] = cg_avx2_quant_q8_K,
        },
    .q4_0x8_matmul = cg_avx2_q4_0x8_matmul,
    .q8_0x8_matmul = cg_avx2_q8_0x8_matmul,
    .q4_Kx8_matmul = cg_avx2_q4_Kx8_matmul,
    .q6_Kx8_matmul = cg_avx2_q6_Kx8_matmul,
    .q5_0x8_matmul = cg_avx2_q5_0x8_matmul,
};

const cg_qops *cg_qops_avx2(void) { return &AVX2; }
