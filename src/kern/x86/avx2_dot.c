// avx2_dot.c — AVX2/FMA/F16C dot products of every weight format with its activation partner:
// Q4_0, Q5_0, Q8_0 (× Q8_0), Q4_1, Q5_1 (× Q8_1), Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (× Q8_K), F16 (× F16),
// BF16 (× BF16), F32 (× F32); plus multi-token variants (one weight row against up to four
// activation rows) for the formats prefill uses most, and a two-row Q5_0 variant for matvec whose
// results are bit-identical with the single-row kernel. K-quant sub-block scales reach the madds
// through byte shuffles of one prepared vector per super-block, never per-scale scalar broadcasts.
//
// Invariant: per block (or sub-block) the integer products are summed exactly — maddubs pairs stay
// far below the int16 limit for every value the formats and the activation quantizers produce
// (|q8| ≤ 127) — and the scales are applied in float as the reference does; only the order in which
// the per-block float terms are accumulated (eight lanes, FMA) differs from quant/ref.h.
// A weight byte of −128 in a Q8_0 row multiplied by an activation of −128 could saturate maddubs;
// the activation quantizers never produce −128, so this cannot happen through cg_qops.
// Compiled with -mavx2 -mfma -mf16c; called only after cg_cpu_isa_available(CG_ISA_AVX2).
// Pure functions; see qops.h for the contract.
#include <immintrin.h>
#include <string.h>

#include "kern/x86/avx2.h"
#include "quant/blocks.h"
#include "quant/f16.h"

// ---- helpers ----------------------------------------------------------------------------------

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float f16(cg_f16 h) { return _cvtsh_ss(h); }

// 32 bytes: the low nibbles of qs[0..15] (elements 0..15), then the high nibbles (16..31).
static inline __m256i nibbles32(const uint8_t *qs) {
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

// Byte i = 0xFF when bit i of `bits` is set, else 0.
static inline __m256i bits32(uint32_t bits) {
    const __m256i shuf = _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202,
                                            0x0303030303030303);
    const __m256i mask = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), shuf);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, mask), mask);
}

// Eight int32 partial sums of Σ x·y over 32 signed bytes each.
static inline __m256i dot_i8(__m256i x, __m256i y) {
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

// Same for unsigned x (0..127 at most) and signed y.
static inline __m256i dot_u8i8(__m256i x, __m256i y) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
}

static inline __m256i load32(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

static inline uint32_t le32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

// The sixteen int16 sub-block scales of a K-quant super-block, prepared so that scale_pair() can
// hand out lanes 0..7 = sc[2j + 8h], lanes 8..15 = sc[2j + 8h + 1] with one byte shuffle instead of
// two scalar broadcasts: half[h] holds scales 8h..8h+7 in both 128-bit halves.
typedef struct k_scales16 {
    __m256i half[2];
} k_scales16;

static inline k_scales16 k_scales16_of(__m256i sc16) {
    return (k_scales16){{_mm256_permute4x64_epi64(sc16, 0x44), _mm256_permute4x64_epi64(sc16, 0xEE)}};
}

static inline __m256i scale_pair(const k_scales16 *k, int h, int j) {
    // Per 128-bit half: bytes 4j, 4j+1 (int16 number 2j) in the low half, 4j+2, 4j+3 in the high one.
    static const uint8_t MASK[4][32] = {
        {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3},
        {4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7},
        {8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11},
        {12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13,
         14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15},
    };
    return _mm256_shuffle_epi8(k->half[h], load32(MASK[j]));
}

// ---- legacy formats ----------------------------------------------------------------------------

static inline __m256i q4_0_q(const cg_block_q4_0 *b) { return _mm256_sub_epi8(nibbles32(b->qs), _mm256_set1_epi8(8)); }

static inline __m256i q5_0_q(const cg_block_q5_0 *b) {
    // q − 16 is the nibble when bit 4 is set, else the nibble with 0xF0 or'ed in (−16 + nibble).
    const __m256i hi = _mm256_andnot_si256(bits32(le32(b->qh)), _mm256_set1_epi8((char)0xF0));
    return _mm256_or_si256(nibbles32(b->qs), hi);
}

static inline __m256i q5_1_q(const cg_block_q5_1 *b) {
    const __m256i hi = _mm256_and_si256(bits32(le32(b->qh)), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles32(b->qs), hi);
}

void cg_avx2_vec_dot_q4_0(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q4_0 *a = x;
    const cg_block_q8_0 *b = y;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const int64_t nb = n / 32;
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        const __m256i p0 = dot_i8(q4_0_q(&a[i]), load32(b[i].qs));
        const __m256i p1 = dot_i8(q4_0_q(&a[i + 1]), load32(b[i + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(a[i].d) * f16(b[i].d)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16(a[i + 1].d) * f16(b[i + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++) {
        const __m256i p = dot_i8(q4_0_q(&a[i]), load32(b[i].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(a[i].d) * f16(b[i].d)), _mm256_cvtepi32_ps(p), acc0);
    }
    *s = hsum_ps(_mm256_add_ps(acc0, acc1));
}

void cg_avx2_vec_dot_q5_0(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q5_0 *a = x;
    const cg_block_q8_0 *b = y;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i p = dot_i8(q5_0_q(&a[i]), load32(b[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(a[i].d) * f16(b[i].d)), _mm256_cvtepi32_ps(p), acc);
    }
    *s = hsum_ps(acc);
}

// Q5_0 in ggml's order (ggml_vec_dot_q5_0_q8_0 and tinyBLAS at the reference commit): per block,
// eight int32 lanes of four products each become floats and are accumulated lane-wise with
// fma(d_w·d_a, lanes, acc); one horizontal sum at the end (hsum_ps adds the two 128-bit halves, then
// pairs, like ggml's hsum_float_8). Two rows at a time: the weights as unsigned 0..31 (u = q + 16)
// through maddubs, minus 16·(y_2j + y_2j+1) computed once per activation block; the int16 pair sums
// equal those of the signed form, so every lane — and the result — is bit-identical with
// cg_avx2_vec_dot_q5_0, while the two accumulator chains overlap.
//
// The loop is written for few instructions per byte (decode streams these rows, and at ~26
// instructions per 22-byte row block it was compute-bound below the memory rate on two threads):
// the 16 quant bytes are loaded once into both 128-bit halves and the upper half shifted by a
// per-lane count (nibbles32_bc: 3 instructions instead of 4), and every f16 scale is broadcast
// and converted in the vector unit (f16x8: 2 instructions, no scalar insert/convert/broadcast);
// the products d_w·d_a are the same single float multiplications, so the result is unchanged.
// nibbles32 with one 16-byte broadcast load: lanes 0..3 unshifted, lanes 4..7 shifted right by 4.
static inline __m256i nibbles32_bc(const uint8_t *qs, __m256i shift, __m256i m4) {
    const __m256i t = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    return _mm256_and_si256(_mm256_srlv_epi32(t, shift), m4);
}

// The f16 value at p in all eight float lanes.
static inline __m256 f16x8(const cg_f16 *p) {
    cg_f16 h;
    memcpy(&h, p, sizeof h);
    return _mm256_cvtph_ps(_mm_set1_epi16((short)h));
}

void cg_avx2_vec_dot_x2_q5_0(int64_t n, float s[2], const void *x0, const void *x1, const void *y) {
    const cg_block_q5_0 *a0 = x0, *a1 = x1;
    const cg_block_q8_0 *b = y;
    const __m256i ones = _mm256_set1_epi16(1), sixteen = _mm256_set1_epi8(16), bit4 = _mm256_set1_epi8(0x10);
    const __m256i m4 = _mm256_set1_epi8(0x0F), shift = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i yv = load32(b[i].qs);
        const __m256i corr = _mm256_maddubs_epi16(sixteen, yv);   // 16·(y_2j + y_2j+1), |.| ≤ 4064
        const __m256 db = f16x8(&b[i].d);
        const __m256i u0 = _mm256_or_si256(nibbles32_bc(a0[i].qs, shift, m4), _mm256_and_si256(bits32(le32(a0[i].qh)), bit4));
        const __m256i u1 = _mm256_or_si256(nibbles32_bc(a1[i].qs, shift, m4), _mm256_and_si256(bits32(le32(a1[i].qh)), bit4));
        const __m256i p0 = _mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(u0, yv), corr), ones);
        const __m256i p1 = _mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(u1, yv), corr), ones);
        acc0 = _mm256_fmadd_ps(_mm256_mul_ps(f16x8(&a0[i].d), db), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_mul_ps(f16x8(&a1[i].d), db), _mm256_cvtepi32_ps(p1), acc1);
    }
    s[0] = hsum_ps(acc0);
    s[1] = hsum_ps(acc1);
}

// Q8_0 in ggml's order (ggml_vec_dot_q8_0_q8_0 on AVX2 and tinyBLAS at the reference commit): one
// eight-lane accumulator, per block fma(d_w·d_a, lanes, acc), one horizontal sum — the order the
// repacked Q8_0 x8 kernels reproduce per row (kern/repack.h). (It used to alternate two
// accumulators between even and odd blocks: another rounding, ~1 ulp per dot.)
void cg_avx2_vec_dot_q8_0(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q8_0 *a = x, *b = y;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i p = dot_i8(load32(a[i].qs), load32(b[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(a[i].d) * f16(b[i].d)), _mm256_cvtepi32_ps(p), acc);
    }
    *s = hsum_ps(acc);
}

void cg_avx2_vec_dot_q4_1(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q4_1 *a = x;
    const cg_block_q8_1 *b = y;
    __m256 acc = _mm256_setzero_ps();
    float summs = 0.0f;
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i p = dot_u8i8(nibbles32(a[i].qs), load32(b[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(a[i].d) * f16(b[i].d)), _mm256_cvtepi32_ps(p), acc);
        summs += f16(a[i].m) * f16(b[i].s);
    }
    *s = hsum_ps(acc) + summs;
}

void cg_avx2_vec_dot_q5_1(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q5_1 *a = x;
    const cg_block_q8_1 *b = y;
    __m256 acc = _mm256_setzero_ps();
    float summs = 0.0f;
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i p = dot_u8i8(q5_1_q(&a[i]), load32(b[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(a[i].d) * f16(b[i].d)), _mm256_cvtepi32_ps(p), acc);
        summs += f16(a[i].m) * f16(b[i].s);
    }
    *s = hsum_ps(acc) + summs;
}

// One or two Q4_0 / Q8_0 weight rows against n_y ≤ 4 activation rows (a register tile of up to
// 2 × 4 accumulators): each weight block is unpacked once for every token, each activation block
// loaded and its scale converted once for both rows. The tile size is a compile-time constant in
// each instantiation, so the accumulators stay in registers.
#define TILE_BODY(QFN)                                                                                        \
    __m256 acc[2][CG_QOPS_MAX_NY];                                                                            \
    for (int r = 0; r < n_x; r++)                                                                             \
        for (int k = 0; k < n_y; k++) acc[r][k] = _mm256_setzero_ps();                                        \
    for (int64_t i = 0; i < n / 32; i++) {                                                                    \
        __m256i q[2], ax[2];                                                                                  \
        __m256 da[2];                                                                                         \
        for (int r = 0; r < n_x; r++) {                                                                       \
            q[r] = QFN(&a[r][i]);                                                                             \
            ax[r] = _mm256_sign_epi8(q[r], q[r]);                                                             \
            da[r] = _mm256_set1_ps(f16(a[r][i].d));                                                           \
        }                                                                                                     \
        for (int k = 0; k < n_y; k++) {                                                                       \
            const cg_block_q8_0 *b = (const cg_block_q8_0 *)((const char *)y + k * y_stride) + i;             \
            const __m256i yk = load32(b->qs);                                                                 \
            const __m256 db = _mm256_set1_ps(f16(b->d));                                                      \
            for (int r = 0; r < n_x; r++) {                                                                   \
                const __m256i p16 = _mm256_maddubs_epi16(ax[r], _mm256_sign_epi8(yk, q[r]));                  \
                const __m256i p = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));                               \
                acc[r][k] = _mm256_fmadd_ps(_mm256_mul_ps(da[r], db), _mm256_cvtepi32_ps(p), acc[r][k]);      \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
    for (int r = 0; r < n_x; r++)                                                                             \
        for (int k = 0; k < n_y; k++) s[r * CG_QOPS_MAX_NY + k] = hsum_ps(acc[r][k]);

static inline __m256i q8_0_q(const cg_block_q8_0 *b) { return load32(b->qs); }

static inline __attribute__((always_inline)) void tile_q4_0(int64_t n, float *s, const cg_block_q4_0 *const a[2],
                                                            int n_x, const void *y, size_t y_stride, int n_y) {
    TILE_BODY(q4_0_q)
}

static inline __attribute__((always_inline)) void tile_q8_0(int64_t n, float *s, const cg_block_q8_0 *const a[2],
                                                            int n_x, const void *y, size_t y_stride, int n_y) {
    TILE_BODY(q8_0_q)
}
#undef TILE_BODY

void cg_avx2_vec_dot_n_q4_0(int64_t n, float *s, const void *x, const void *y, size_t y_stride, int n_y) {
    const cg_block_q4_0 *const a[2] = {x, x};
    if (n_y == CG_QOPS_MAX_NY) tile_q4_0(n, s, a, 1, y, y_stride, CG_QOPS_MAX_NY);
    else tile_q4_0(n, s, a, 1, y, y_stride, n_y);
}

void cg_avx2_vec_dot_n_q8_0(int64_t n, float *s, const void *x, const void *y, size_t y_stride, int n_y) {
    const cg_block_q8_0 *const a[2] = {x, x};
    if (n_y == CG_QOPS_MAX_NY) tile_q8_0(n, s, a, 1, y, y_stride, CG_QOPS_MAX_NY);
    else tile_q8_0(n, s, a, 1, y, y_stride, n_y);
}

void cg_avx2_vec_dot_2n_q4_0(int64_t n, float *s, const void *x0, const void *x1, const void *y, size_t y_stride,
                             int n_y) {
    const cg_block_q4_0 *const a[2] = {x0, x1};
    if (n_y == CG_QOPS_MAX_NY) tile_q4_0(n, s, a, 2, y, y_stride, CG_QOPS_MAX_NY);
    else tile_q4_0(n, s, a, 2, y, y_stride, n_y);
}

void cg_avx2_vec_dot_2n_q8_0(int64_t n, float *s, const void *x0, const void *x1, const void *y, size_t y_stride,
                             int n_y) {
    const cg_block_q8_0 *const a[2] = {x0, x1};
    if (n_y == CG_QOPS_MAX_NY) tile_q8_0(n, s, a, 2, y, y_stride, CG_QOPS_MAX_NY);
    else tile_q8_0(n, s, a, 2, y, y_stride, n_y);
}

// ---- K-quants ----------------------------------------------------------------------------------

// The 8 six-bit scales (bytes 0..7 of out) and 8 mins (bytes 8..15) of a Q4_K/Q5_K block, all at
// once with 32-bit masks: the same bits k4_scale_min picks one by one.
static inline void k4_unpack(const uint8_t *s12, uint8_t out[16]) {
    uint32_t u[4];
    memcpy(u, s12, 12);
    const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
    u[3] = ((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4);   // mins 4..7
    const uint32_t mins03 = u[1] & m6;
    u[1] = (u[2] & m4) | (((u[0] >> 6) & m2) << 4);          // scales 4..7
    u[2] = mins03;
    u[0] &= m6;                                               // scales 0..3
    memcpy(out, u, 16);
}

// Σ_j mn[j]·(bsums[2j] + bsums[2j+1]) over the 8 sub-blocks of 32 (mins as bytes).
static inline int32_t k4_min_sum(const uint8_t mins[8], const int16_t *bsums) {
    const __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bsums),
                                         _mm_loadu_si128((const __m128i *)(bsums + 8)));
    const __m128i m = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mins));
    __m128i p = _mm_madd_epi16(m, pairs);
    p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0x4E));
    p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0xB1));
    return _mm_cvtsi128_si32(p);
}

// Σ_g w[g]·bsums[g] over the 16 sub-blocks of 16 (w as 16 int16 lanes), exact in int32.
static inline int32_t k_bsum_dot(__m256i w16, const int16_t *bsums) {
    const __m256i p = _mm256_madd_epi16(w16, _mm256_loadu_si256((const __m256i *)bsums));
    __m128i q = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
    q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0x4E));
    q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0xB1));
    return _mm_cvtsi128_si32(q);
}

// The eight unsigned scales sc[0..7] of a Q4_K/Q5_K super-block as int16 in both 128-bit halves;
// scale_all(v, m) broadcasts sc[m] to all sixteen lanes with one byte shuffle.
static inline __m256i k4_scales16(const uint8_t sc[8]) {
    return _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc)));
}

static inline __m256i scale_all(__m256i v, int m) {
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)(0x0100 * (2 * m + 1) + 2 * m)));
}

// The integer part Σ_j sc[j]·(q · q8 over sub-block j) of one Q4_K super-block, 8 int32 lanes.
static inline __m256i q4_K_isum(const cg_block_q4_K *a, const int8_t *q8, const uint8_t sc[8]) {
    __m256i sumi = _mm256_setzero_si256();
    const __m256i m4 = _mm256_set1_epi8(0x0F), sv = k4_scales16(sc);
    for (int c = 0; c < 4; c++) {
        const __m256i q4 = load32(a->qs + 32 * c);
        const __m256i lo = _mm256_and_si256(q4, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
        const __m256i pl = _mm256_madd_epi16(scale_all(sv, 2 * c), _mm256_maddubs_epi16(lo, load32(q8 + 64 * c)));
        const __m256i ph = _mm256_madd_epi16(scale_all(sv, 2 * c + 1),
                                             _mm256_maddubs_epi16(hi, load32(q8 + 64 * c + 32)));
        sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
    }
    return sumi;
}

void cg_avx2_vec_dot_q4_K(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q4_K *a = x;
    const cg_block_q8_K *b = y;
    __m256 acc = _mm256_setzero_ps();
    float accm = 0.0f;
    for (int64_t i = 0; i < n / 256; i++) {
        uint8_t sm[16];
        k4_unpack(a[i].scales, sm);
        const __m256i sumi = q4_K_isum(&a[i], b[i].qs, sm);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(a[i].d) * b[i].d), _mm256_cvtepi32_ps(sumi), acc);
        accm += (f16(a[i].dmin) * b[i].d) * (float)k4_min_sum(sm + 8, b[i].bsums);
    }
    *s = hsum_ps(acc) - accm;
}

static inline __attribute__((always_inline)) void dot_n_q4_K(int64_t n, float *s, const void *x, const void *y,
                                                               size_t y_stride, int n_y) {
    const cg_block_q4_K *a = x;
    __m256 acc[CG_QOPS_MAX_NY];
    float accm[CG_QOPS_MAX_NY] = {0};
    for (int k = 0; k < CG_QOPS_MAX_NY; k++) acc[k] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < n / 256; i++) {
        uint8_t sm[16];
        k4_unpack(a[i].scales, sm);
        const uint8_t *sc = sm, *mn = sm + 8;
        const float d = f16(a[i].d), dmin = f16(a[i].dmin);
        const __m256i sv = k4_scales16(sc);
        __m256i sumi[CG_QOPS_MAX_NY];
        for (int k = 0; k < CG_QOPS_MAX_NY; k++) sumi[k] = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i q4 = load32(a[i].qs + 32 * c);
            const __m256i lo = _mm256_and_si256(q4, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
            const __m256i sl = scale_all(sv, 2 * c), sh = scale_all(sv, 2 * c + 1);
            for (int k = 0; k < n_y; k++) {
                const cg_block_q8_K *b = (const cg_block_q8_K *)((const char *)y + k * y_stride) + i;
                const __m256i pl = _mm256_madd_epi16(sl, _mm256_maddubs_epi16(lo, load32(b->qs + 64 * c)));
                const __m256i ph = _mm256_madd_epi16(sh, _mm256_maddubs_epi16(hi, load32(b->qs + 64 * c + 32)));
                sumi[k] = _mm256_add_epi32(sumi[k], _mm256_add_epi32(pl, ph));
            }
        }
        for (int k = 0; k < n_y; k++) {
            const cg_block_q8_K *b = (const cg_block_q8_K *)((const char *)y + k * y_stride) + i;
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(d * b->d), _mm256_cvtepi32_ps(sumi[k]), acc[k]);
            accm[k] += (dmin * b->d) * (float)k4_min_sum(mn, b->bsums);
        }
    }
    for (int k = 0; k < n_y; k++) s[k] = hsum_ps(acc[k]) - accm[k];
}

// n_y as a constant in the common case, so the accumulators stay in registers.
void cg_avx2_vec_dot_n_q4_K(int64_t n, float *s, const void *x, const void *y, size_t y_stride, int n_y) {
    if (n_y == CG_QOPS_MAX_NY) dot_n_q4_K(n, s, x, y, y_stride, CG_QOPS_MAX_NY);
    else dot_n_q4_K(n, s, x, y, y_stride, n_y);
}

void cg_avx2_vec_dot_q5_K(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q5_K *a = x;
    const cg_block_q8_K *b = y;
    __m256 acc = _mm256_setzero_ps();
    float accm = 0.0f;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < n / 256; i++) {
        uint8_t sm[16];
        k4_unpack(a[i].scales, sm);
        const uint8_t *sc = sm, *mn = sm + 8;
        const __m256i hb = load32(a[i].qh), sv = k4_scales16(sc);
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i q = load32(a[i].qs + 32 * c);
            // Bit 2c / 2c+1 of qh[l] is the fifth bit; a 16-bit shift by ≤ 7 cannot carry a
            // neighbour byte's bit into bit 0, which is all the mask keeps.
            const __m128i cl = _mm_cvtsi32_si128(2 * c), ch = _mm_cvtsi32_si128(2 * c + 1);
            const __m256i bl = _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(hb, cl), one), 4);
            const __m256i bh = _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(hb, ch), one), 4);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), bl);
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), bh);
            const __m256i pl = _mm256_madd_epi16(scale_all(sv, 2 * c),
                                                 _mm256_maddubs_epi16(lo, load32(b[i].qs + 64 * c)));
            const __m256i ph = _mm256_madd_epi16(scale_all(sv, 2 * c + 1),
                                                 _mm256_maddubs_epi16(hi, load32(b[i].qs + 64 * c + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(a[i].d) * b[i].d), _mm256_cvtepi32_ps(sumi), acc);
        accm += (f16(a[i].dmin) * b[i].d) * (float)k4_min_sum(mn, b[i].bsums);
    }
    *s = hsum_ps(acc) - accm;
}

// Q6_K: q = 6-bit unsigned (0..63), value q − 32; the −32 is applied through the bsums.
void cg_avx2_vec_dot_q6_K(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q6_K *a = x;
    const cg_block_q8_K *b = y;
    __m256 acc = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < n / 256; i++) {
        const int8_t *sc = a[i].scales;
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        const k_scales16 ks = k_scales16_of(sc16);
        __m256i sumi = _mm256_setzero_si256();
        const int32_t corr = k_bsum_dot(sc16, b[i].bsums);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = a[i].ql + 64 * h, *qh = a[i].qh + 32 * h;
            const int8_t *q8 = b[i].qs + 128 * h;
            const __m256i l0 = load32(ql), l1 = load32(ql + 32), hh = load32(qh);
            const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hh, m3), 4));
            const __m256i q2 = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 2), m3), 4));
            const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 4), m3), 4));
            const __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 6), m3), 4));
            const __m256i p1 = _mm256_madd_epi16(scale_pair(&ks, h, 0), _mm256_maddubs_epi16(q1, load32(q8)));
            const __m256i p2 = _mm256_madd_epi16(scale_pair(&ks, h, 1), _mm256_maddubs_epi16(q2, load32(q8 + 32)));
            const __m256i p3 = _mm256_madd_epi16(scale_pair(&ks, h, 2), _mm256_maddubs_epi16(q3, load32(q8 + 64)));
            const __m256i p4 = _mm256_madd_epi16(scale_pair(&ks, h, 3), _mm256_maddubs_epi16(q4, load32(q8 + 96)));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(_mm256_add_epi32(p1, p2), _mm256_add_epi32(p3, p4)));
        }
        // Σ sc·(q−32)·q8 = Σ sc·q·q8 − 32·Σ sc·bsum, both exact in int32.
        sumi = _mm256_sub_epi32(sumi, _mm256_setr_epi32(32 * corr, 0, 0, 0, 0, 0, 0, 0));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(a[i].d) * b[i].d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

// One Q6_K weight row against n_y ≤ 4 activation rows: the 6-bit quants of a super-block are
// assembled once (eight 32-byte vectors) and reused for every token.
static inline __attribute__((always_inline)) void dot_n_q6_K(int64_t n, float *s, const void *x, const void *y,
                                                               size_t y_stride, int n_y) {
    const cg_block_q6_K *a = x;
    __m256 acc[CG_QOPS_MAX_NY];
    for (int k = 0; k < CG_QOPS_MAX_NY; k++) acc[k] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < n / 256; i++) {
        const int8_t *sc = a[i].scales;
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        const k_scales16 ks = k_scales16_of(sc16);
        __m256i q[8], scv[8];
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = a[i].ql + 64 * h, *qh = a[i].qh + 32 * h;
            const __m256i l0 = load32(ql), l1 = load32(ql + 32), hh = load32(qh);
            q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hh, m3), 4));
            q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 2), m3), 4));
            q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 4), m3), 4));
            q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 6), m3), 4));
            for (int j = 0; j < 4; j++) scv[4 * h + j] = scale_pair(&ks, h, j);
        }
        const float d = f16(a[i].d);
        for (int k = 0; k < n_y; k++) {
            const cg_block_q8_K *b = (const cg_block_q8_K *)((const char *)y + k * y_stride) + i;
            const int32_t corr = k_bsum_dot(sc16, b->bsums);
            __m256i sumi = _mm256_setr_epi32(-32 * corr, 0, 0, 0, 0, 0, 0, 0);
            for (int v = 0; v < 8; v++)
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scv[v], _mm256_maddubs_epi16(q[v], load32(b->qs + 32 * v))));
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(d * b->d), _mm256_cvtepi32_ps(sumi), acc[k]);
        }
    }
    for (int k = 0; k < n_y; k++) s[k] = hsum_ps(acc[k]);
}

// n_y as a constant in the common case, so the accumulators stay in registers.
void cg_avx2_vec_dot_n_q6_K(int64_t n, float *s, const void *x, const void *y, size_t y_stride, int n_y) {
    if (n_y == CG_QOPS_MAX_NY) dot_n_q6_K(n, s, x, y, y_stride, CG_QOPS_MAX_NY);
    else dot_n_q6_K(n, s, x, y, y_stride, n_y);
}

// Q2_K: q 0..3 per 16-element sub-block with scale sc & 0xF, min sc >> 4 (through the bsums).
void cg_avx2_vec_dot_q2_K(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q2_K *a = x;
    const cg_block_q8_K *b = y;
    __m256 acc = _mm256_setzero_ps();
    float accm = 0.0f;
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < n / 256; i++) {
        const uint8_t *sc = a[i].scales;
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)sc);
        const __m128i mins = _mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(0x0F));
        const k_scales16 ks = k_scales16_of(_mm256_cvtepu8_epi16(_mm_and_si128(sc8, _mm_set1_epi8(0x0F))));
        const int32_t msum = k_bsum_dot(_mm256_cvtepu8_epi16(mins), b[i].bsums);
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i bits = load32(a[i].qs + 32 * h);
            for (int k = 0; k < 4; k++) {
                const __m256i q = _mm256_and_si256(_mm256_srl_epi16(bits, _mm_cvtsi32_si128(2 * k)), m3);
                const __m256i p = _mm256_maddubs_epi16(q, load32(b[i].qs + 128 * h + 32 * k));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scale_pair(&ks, h, k), p));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(b[i].d * f16(a[i].d)), _mm256_cvtepi32_ps(sumi), acc);
        accm += (b[i].d * f16(a[i].dmin)) * (float)msum;
    }
    *s = hsum_ps(acc) - accm;
}

// Q3_K: q = (2 low bits) − (high bit clear ? 4 : 0), sixteen signed six-bit scales.
// The sixteen signed six-bit Q3_K scales as bytes −32..31: sc[g] = (low4 | high2 << 4) − 32 with
// low4 = g < 8 ? scales[g] & 0xF : scales[g−8] >> 4 and high2 = (scales[8 + g%4] >> 2·(g/4)) & 3.
// The dword shift by 2·(g/4) keeps each byte's wanted two bits in bits 0..1 of that byte.
static inline __m128i q3_scales(const uint8_t s12[12]) {
    const __m128i a = _mm_loadl_epi64((const __m128i *)s12), m4 = _mm_set1_epi8(0x0F);
    const __m128i low4 = _mm_unpacklo_epi64(_mm_and_si128(a, m4), _mm_and_si128(_mm_srli_epi16(a, 4), m4));
    const __m128i h = _mm_srlv_epi32(_mm_set1_epi32((int)le32(s12 + 8)), _mm_setr_epi32(0, 2, 4, 6));
    const __m128i high2 = _mm_slli_epi16(_mm_and_si128(h, _mm_set1_epi8(3)), 4);
    return _mm_sub_epi8(_mm_or_si128(low4, high2), _mm_set1_epi8(32));
}

void cg_avx2_vec_dot_q3_K(int64_t n, float *s, const void *x, const void *y) {
    const cg_block_q3_K *a = x;
    const cg_block_q8_K *b = y;
    __m256 acc = _mm256_setzero_ps();
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < n / 256; i++) {
        const k_scales16 ks = k_scales16_of(_mm256_cvtepi8_epi16(q3_scales(a[i].scales)));
        const __m256i hm = load32(a[i].hmask);
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i bits = load32(a[i].qs + 32 * h);
            for (int k = 0; k < 4; k++) {
                const __m256i q = _mm256_and_si256(_mm256_srl_epi16(bits, _mm_cvtsi32_si128(2 * k)), m3);
                const __m256i hb = _mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128(4 * h + k)), one);
                const __m256i sub4 = _mm256_slli_epi16(_mm256_xor_si256(hb, one), 2);  // 4 where the bit is clear
                const __m256i y8 = load32(b[i].qs + 128 * h + 32 * k);
                const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, y8), _mm256_maddubs_epi16(sub4, y8));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scale_pair(&ks, h, k), p));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(a[i].d) * b[i].d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

// ---- plain formats ------------------------------------------------------------------------------

void cg_avx2_vec_dot_f32(int64_t n, float *s, const void *x, const void *y) {
    const float *a = x, *b = y;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * k), _mm256_loadu_ps(b + i + 8 * k), acc[k]);
    for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc[0]);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum += a[i] * b[i];
    *s = sum;
}

static inline __m256 load_f16x8(const cg_f16 *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

static inline __m256 load_bf16x8(const cg_bf16 *p) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

void cg_avx2_vec_dot_f16(int64_t n, float *s, const void *x, const void *y) {
    const cg_f16 *a = x, *b = y;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(load_f16x8(a + i + 8 * k), load_f16x8(b + i + 8 * k), acc[k]);
    for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(load_f16x8(a + i), load_f16x8(b + i), acc[0]);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum += f16(a[i]) * f16(b[i]);
    *s = sum;
}

void cg_avx2_vec_dot_bf16(int64_t n, float *s, const void *x, const void *y) {
    const cg_bf16 *a = x, *b = y;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(load_bf16x8(a + i + 8 * k), load_bf16x8(b + i + 8 * k), acc[k]);
    for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(load_bf16x8(a + i), load_bf16x8(b + i), acc[0]);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum += cg_bf16_to_f32(a[i]) * cg_bf16_to_f32(b[i]);
    *s = sum;
}
