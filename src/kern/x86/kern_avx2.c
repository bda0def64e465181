// kern_avx2.c — the AVX2 compute-op table ("avx2"), selected by cg_kern_get() on CPUs with
// AVX2+FMA+F16C. Same contracts as the reference table (kern.h); only float summation order differs.
//
// * matmul, matmul_multi: kern/qmatmul.c over the AVX2 kernel set (activations quantized once per
//   call — once for all the weights of a matmul_multi — with the byte-identical AVX2 quantizers;
//   rows split across the pool in one hand-off; matvec for one token, 2-row × 4-token register
//   tiles for several).
// * attention: one query over the paged cache, vectorised over head_dim and bit-identical with the
//   reference's two modes (F16 online softmax with an F16 accumulator for small batches; two-pass
//   F32 softmax otherwise): the reference already follows ggml's AVX2 summation order, which maps
//   onto 8-lane registers one to one. F16C conversions round exactly like cg_f32_to_f16.
//   attention_multi: the (query position, head) pairs of one kv head go through the cache in groups
//   that share each key/value load (two-pass), or one by one through the single-query kernel
//   (online F16); per pair the single-query operations in the same order (bit-identical with
//   attention()).
// * SwiGLU: 8 lanes of the reference's ggml-style exp (bit-identical); rope: the reference's table
//   rearranged for 8-lane rotations (bit-identical); GeGLU, rmsnorm: the reference (negligible time
//   next to the matrix products).
// No state; the table is static and immutable.
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "base/num.h"
#include "kern/expf.h"
#include "kern/kern.h"
#include "kern/qmatmul.h"
#include "kern/x86/avx2.h"
#include "quant/f16.h"
#include "quant/quant.h"

// ---- matmul: the ISA-neutral driver over the AVX2 kernel set (kern/qmatmul.c) ---------------------

static cg_status avx2_matmul(const cg_tensor *W, const float *X, int64_t n_tok, float *Y, cg_arena *arena,
                             cg_pool *pool, cg_err *err) {
    return cg_kern_qops_matmul(cg_qops_avx2(), W, X, n_tok, Y, arena, pool, err);
}

static cg_status avx2_matmul_multi(const cg_tensor *const *W, int n_w, const float *X, int64_t n_tok, float *const *Y,
                                cg_arena *arena, cg_pool *pool, cg_err *err) {
    return cg_kern_qops_matmul_multi(cg_qops_avx2(), W, n_w, X, n_tok, Y, arena, pool, err);
}

// ---- exp, SiLU ----------------------------------------------------------------------------------------

// Eight lanes of the reference's v_expf (generic/ref.c, ggml's AVX2 ggml_v_expf): the same
// operations lane by lane (FMAs where it fuses, the same constants and the same |n| > 126 repair),
// so the results are bit-identical.
static inline __m256 v_expf8(__m256 x) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
    const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1.0f))));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_mul_ps(_mm256_set1_ps(0x1.ffffecp-1f), b));
    const __m256 an = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
    const __m256 big = _mm256_cmp_ps(an, _mm256_set1_ps(126.0f), _CMP_GT_OQ);
    const __m256 normal = _mm256_fmadd_ps(j, k, k);
    if (!_mm256_movemask_ps(big)) return normal;
    const __m256i g = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
                                       _mm256_set1_epi32((int)0x82000000u));
    const __m256 s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f000000)));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
    const __m256 huge = _mm256_cmp_ps(an, _mm256_set1_ps(192.0f), _CMP_GT_OQ);
    const __m256 r_big = _mm256_blendv_ps(_mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1), _mm256_mul_ps(s1, s1), huge);
    return _mm256_blendv_ps(normal, r_big, big);
}

// Eight lanes of cg_expf (kern/expf.h: glibc's expf, bit for bit): the formula in two halves of four
// double lanes with the same fused and unfused steps in the same order (the table entry by a
// gather); lanes with |x| ≥ 88, ±inf or NaN — none in a softmax over finite scores but the first
// key's e^−inf — are redone by cg_expf's special cases.
static inline __m128 expf4_glibc(__m128 x) {
    const __m256d xd = _mm256_cvtps_pd(x), invln2n = _mm256_set1_pd(CG_EXPF_INVLN2N);
    const __m256d kd0 = _mm256_fmadd_pd(invln2n, xd, _mm256_set1_pd(CG_EXPF_SHIFT));
    const __m256i ki = _mm256_castpd_si256(kd0);
    const __m256d r = _mm256_fmsub_pd(invln2n, xd, _mm256_sub_pd(kd0, _mm256_set1_pd(CG_EXPF_SHIFT)));
    const __m256i t = _mm256_i64gather_epi64((const long long *)CG_EXPF_TAB, _mm256_and_si256(ki, _mm256_set1_epi64x(31)), 8);
    const __m256d sc = _mm256_castsi256_pd(_mm256_add_epi64(t, _mm256_slli_epi64(ki, 47)));
    const __m256d z = _mm256_fmadd_pd(r, _mm256_set1_pd(CG_EXPF_C0), _mm256_set1_pd(CG_EXPF_C1));
    const __m256d y = _mm256_fmadd_pd(z, _mm256_mul_pd(r, r), _mm256_fmadd_pd(r, _mm256_set1_pd(CG_EXPF_C2), _mm256_set1_pd(1.0)));
    return _mm256_cvtpd_ps(_mm256_mul_pd(y, sc));
}

static inline __m256 expf8_glibc(__m256 x) {
    __m256 e = _mm256_set_m128(expf4_glibc(_mm256_extractf128_ps(x, 1)), expf4_glibc(_mm256_castps256_ps128(x)));
    const __m256i top = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(x), 20), _mm256_set1_epi32(0x7ff));
    const int special = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(top, _mm256_set1_epi32(CG_EXPF_ABSTOP))));
    if (special) {
        _Alignas(32) float xs[8], es[8];
        _mm256_store_ps(xs, x);
        _mm256_store_ps(es, e);
        for (int i = 0; i < 8; i++)
            if (special >> i & 1) es[i] = cg_expf(xs[i]);
        e = _mm256_load_ps(es);
    }
    return e;
}

void cg_avx2_expf(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, expf8_glibc(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = cg_expf(x[i]);
}

static void avx2_glu(cg_act_kind kind, const float *gate, const float *up, float *out, int64_t n) {
    if (kind != CG_ACT_SWIGLU) {
        cg_kern_generic()->glu(kind, gate, up, out, n);
        return;
    }
    // silu(g)·up = g / (1 + e^-g) · up, 8 lanes at a time; the tail goes to the reference, which
    // uses libm's expf there exactly like ggml.
    const int64_t n8 = n - n % 8;
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n8; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 a = _mm256_div_ps(g, _mm256_add_ps(one, v_expf8(_mm256_xor_ps(g, sign))));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(a, _mm256_loadu_ps(up + i)));
    }
    for (int64_t i = n8; i < n; i++) {
        const float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

// ---- attention --------------------------------------------------------------------------------------
//
// Bit-identical with the reference (generic/ref.c), only vectorised: q·k in ggml's order (four
// 8-lane FMA accumulators over 32-element steps, the same reduction tree, the tail in double); the
// F16 online path rounds its accumulator after every key with the same single-rounding FMA; the
// two-pass path with an F32 cache sums the softmax and weights·values in ggml's lane orders
// (pv_sum_f32), with an F16 cache (f32_acc) in double lanes in key order.

static inline __m256 load_kv(const void *base, int64_t off, bool f16) {
    if (f16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + off)));
    return _mm256_loadu_ps((const float *)base + off);
}

static inline float kv_elem(const void *base, int64_t off, bool f16) {
    return f16 ? _cvtsh_ss(((const uint16_t *)base)[off]) : ((const float *)base)[off];
}

static inline float dot_qk(const float *q, const void *kbase, int64_t off, int n, bool f16) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const int np = n & ~31;
    for (int i = 0; i < np; i += 32)
        for (int j = 0; j < 4; j++)
            acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8 * j), load_kv(kbase, off + i + 8 * j, f16), acc[j]);
    const __m256 x0 = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
    const __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(x0), _mm256_extractf128_ps(x0, 1));
    const __m128 h = _mm_hadd_ps(t0, t0);   // (t0+t1, t2+t3, …)
    const float tree = _mm_cvtss_f32(h) + _mm_cvtss_f32(_mm_shuffle_ps(h, h, 1));
    if (!f16) {   // ggml_vec_dot_f32's tail: float, one FMA per element
        float sumf = tree;
        for (int d = np; d < n; d++) sumf = fmaf(q[d], kv_elem(kbase, off + d, false), sumf);
        return sumf;
    }
    double sum = (double)tree;   // ggml_vec_dot_f16's tail: double
    for (int d = np; d < n; d++) sum += (double)(q[d] * kv_elem(kbase, off + d, f16));
    return (float)sum;
}

static inline float score(const cg_attn_args *a, float dot) {
    if (a->softcap == 0.0f) return dot * a->scale;
    return a->softcap * tanhf(dot * (a->scale / a->softcap));
}

// lo/hi += the eight floats of x as doubles (lanes 0..3 into lo, 4..7 into hi): the f32_acc path's
// key-order sums in double.
static inline void add_wide(__m256d *lo, __m256d *hi, __m256 x) {
    *lo = _mm256_add_pd(*lo, _mm256_cvtps_pd(_mm256_castps256_ps128(x)));
    *hi = _mm256_add_pd(*hi, _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)));
}

// p[t] = ggml's exp(p[t] − max) over [first, last] (the first two steps of softmax_scores).
static void softmax_exp(float *p, int32_t first, int32_t last) {
    // The max: per lane "p[t] > M ? p[t] : M" like the scalar loop (maxps returns its second operand
    // on a NaN), then over the lanes. Only a zero's sign can differ from the scalar loop's pick:
    // x − (±0) = x for every x ≠ 0, and a difference of zeros is a zero, whose exp is 1 either way.
    __m256 m8 = _mm256_set1_ps(-INFINITY);
    int32_t t = first;
    for (; t + 8 <= last + 1; t += 8) m8 = _mm256_max_ps(_mm256_loadu_ps(p + t), m8);
    float lanes[8], M = -INFINITY;
    _mm256_storeu_ps(lanes, m8);
    for (int i = 0; i < 8; i++)
        if (lanes[i] > M) M = lanes[i];
    for (; t <= last; t++)
        if (p[t] > M) M = p[t];
    t = first;
    for (; t + 8 <= last + 1; t += 8) {
        const __m256 e = v_expf8(_mm256_sub_ps(_mm256_loadu_ps(p + t), _mm256_set1_ps(M)));
        _mm256_storeu_ps(p + t, e);
    }
    for (; t <= last; t++) {
        // One lane of v_expf8 for the tail (bit-identical with the scalar v_expf).
        float tmp[8] = {p[t] - M};
        _mm256_storeu_ps(tmp, v_expf8(_mm256_loadu_ps(tmp)));
        p[t] = tmp[0];
    }
}

// Softmax of the scores p[first..last] in place (max, ggml's exp, the sum: ggml_mm (F32 cache) in
// ggml's chunked order, else in double in key order); returns 1/sum, by which the caller scales
// each weight.
static float softmax_scores(float *p, int32_t first, int32_t last, bool ggml_mm) {
    softmax_exp(p, first, last);
    int32_t t;
    double sum = 0.0;
    if (!ggml_mm) {
        for (t = first; t <= last; t++) sum += (double)p[t];
        return (float)(1.0 / sum);
    }
    // ggml_vec_soft_max_f32's order (see the reference's softmax_sum): 8-key chunks aligned on
    // position 0, a float tree per chunk, the chunk sums in double.
    for (int32_t c = first & ~7; c <= last; c += 8) {
        float l[8];
        for (int i = 0; i < 8; i++) l[i] = c + i >= first && c + i <= last ? p[c + i] : 0.0f;
        const float u0 = l[4] + l[0], u1 = l[5] + l[1], u2 = l[6] + l[2], u3 = l[7] + l[3];
        sum += (double)((u0 + u2) + (u1 + u3));
    }
    return (float)(1.0 / sum);
}

// F32 cache: out[d] = Σ w[t]·v[t][d] in ggml's mul_mat order (the reference's pv_sum): FMAs into
// float accumulators chosen by key position mod 8 (pv_gemm, llamafile's tinyBLAS) or mod 32
// (ggml_vec_dot_f32), then their fixed reduction trees; 8 values of d per register.
static void pv_sum_f32(const cg_attn_args *a, int kvh, const float *w, int32_t first, int32_t last, float *out) {
    const int hdv = a->head_dim_v;
    const int64_t kv_row_v = (int64_t)a->n_head_kv * hdv;
    const int32_t mask = a->pv_gemm ? 7 : 31;
    int d = 0;
    for (; d + 8 <= hdv; d += 8) {
        __m256 acc[32];
        for (int i = 0; i <= mask; i++) acc[i] = _mm256_setzero_ps();
        int b = first / a->block_size, r = first % a->block_size;
        for (int32_t t = first; t <= last; t++) {
            const __m256 v = _mm256_loadu_ps((const float *)a->v_blocks[b] + r * kv_row_v + (int64_t)kvh * hdv + d);
            acc[t & mask] = _mm256_fmadd_ps(v, _mm256_set1_ps(w[t]), acc[t & mask]);
            if (++r == a->block_size) r = 0, b++;
        }
        __m256 res;
        if (a->pv_gemm) {
            const __m256 u0 = _mm256_add_ps(acc[4], acc[0]), u1 = _mm256_add_ps(acc[5], acc[1]);
            const __m256 u2 = _mm256_add_ps(acc[6], acc[2]), u3 = _mm256_add_ps(acc[7], acc[3]);
            res = _mm256_add_ps(_mm256_add_ps(u0, u2), _mm256_add_ps(u1, u3));
        } else {
            __m256 x[8];
            for (int i = 0; i < 8; i++)
                x[i] = _mm256_add_ps(_mm256_add_ps(acc[i], acc[16 + i]), _mm256_add_ps(acc[8 + i], acc[24 + i]));
            const __m256 t0 = _mm256_add_ps(x[0], x[4]), t1 = _mm256_add_ps(x[1], x[5]);
            const __m256 t2 = _mm256_add_ps(x[2], x[6]), t3 = _mm256_add_ps(x[3], x[7]);
            res = _mm256_add_ps(_mm256_add_ps(t0, t1), _mm256_add_ps(t2, t3));
        }
        _mm256_storeu_ps(out + d, res);
    }
    for (; d < hdv; d++) {
        float acc[32] = {0};
        for (int32_t t = first; t <= last; t++) {
            const int b = t / a->block_size, r = t % a->block_size;
            const float v = ((const float *)a->v_blocks[b])[r * kv_row_v + (int64_t)kvh * hdv + d];
            acc[t & mask] = fmaf(v, w[t], acc[t & mask]);
        }
        if (a->pv_gemm) {
            const float u0 = acc[4] + acc[0], u1 = acc[5] + acc[1], u2 = acc[6] + acc[2], u3 = acc[7] + acc[3];
            out[d] = (u0 + u2) + (u1 + u3);
        } else {
            float x[8];
            for (int i = 0; i < 8; i++) x[i] = (acc[i] + acc[16 + i]) + (acc[8 + i] + acc[24 + i]);
            const float t0 = x[0] + x[4], t1 = x[1] + x[5], t2 = x[2] + x[6], t3 = x[3] + x[7];
            out[d] = (t0 + t1) + (t2 + t3);
        }
    }
}

enum { KEY_CHUNK = 32, CHUNK_MAX_HD = 128 };

// dot_qk's four lanes of one query (registers qr) against one key row k (F16 or F32), folded.
static inline __attribute__((always_inline)) __m256 qk_fold(const __m256 *qr, const void *k, bool f16, const int HD) {
    __m256 acc[4];
    for (int j = 0; j < 4; j++) {
        acc[j] = _mm256_fmadd_ps(qr[j], load_kv(k, 8 * j, f16), _mm256_setzero_ps());
        for (int i = 32; i < HD; i += 32) acc[j] = _mm256_fmadd_ps(qr[i / 8 + j], load_kv(k, i + 8 * j, f16), acc[j]);
    }
    return _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
}

// The dots of eight keys from their folded lanes x[0..7], in key order: per key t0 = lo + hi, then
// (t0[0] + t0[1]) + (t0[2] + t0[3]) — dot_qk's tree, additions with the same operands.
static inline __m256 fold8(const __m256 *x) {
    __m256 t[4];
    for (int i = 0; i < 4; i++)   // [t0 of key i | t0 of key i+4]
        t[i] = _mm256_add_ps(_mm256_permute2f128_ps(x[i], x[i + 4], 0x20), _mm256_permute2f128_ps(x[i], x[i + 4], 0x31));
    // hadd per 128-bit half: [a0+a1, a2+a3, b0+b1, b2+b3]; twice gives keys 0..3 | 4..7.
    return _mm256_hadd_ps(_mm256_hadd_ps(t[0], t[1]), _mm256_hadd_ps(t[2], t[3]));
}

// p[i] = score(dots[i]) for i < m (1..8): eight at once when there is no soft-cap.
static inline void store_scores8(const cg_attn_args *a, __m256 dots, float *p, int m) {
    if (a->softcap == 0.0f && m == 8) {
        _mm256_storeu_ps(p, _mm256_mul_ps(dots, _mm256_set1_ps(a->scale)));
        return;
    }
    float d8[8];
    _mm256_storeu_ps(d8, dots);
    for (int i = 0; i < m; i++) p[i] = score(a, d8[i]);
}

// Scores p[t] = score(dot_qk(q, key t)) of one query over keys [first, last] (head kvh), for HD
// (32, 64, 96 or 128, a constant after inlining): q in registers, eight keys' reductions at once
// (fold8), the keys read in place. Same values as the key-by-key loop.
static inline __attribute__((always_inline)) void scores_one_hd(const cg_attn_args *a, const float *q, int kvh,
                                                                 int32_t first, int32_t last, float *p, const int HD) {
    const int64_t kv_row = (int64_t)a->n_head_kv * HD;
    const bool f16 = a->kv_type == CG_KV_F16;
    const size_t esz = f16 ? 2 : 4;
    __m256 qr[CHUNK_MAX_HD / 8];
    for (int d = 0; d < HD; d += 8) qr[d / 8] = _mm256_loadu_ps(q + d);
    int b = first / a->block_size, r = first % a->block_size;
    for (int32_t t0 = first; t0 <= last; t0 += 8) {
        const int m = last - t0 + 1 < 8 ? last - t0 + 1 : 8;
        __m256 x[8];
        for (int i = 0; i < 8; i++) {
            if (i >= m) {
                x[i] = _mm256_setzero_ps();
                continue;
            }
            const unsigned char *k = (const unsigned char *)a->k_blocks[b] + (size_t)(r * kv_row + (int64_t)kvh * HD) * esz;
            x[i] = qk_fold(qr, k, f16, HD);
            if (++r == a->block_size) r = 0, b++;
        }
        store_scores8(a, fold8(x), p + t0, m);
    }
}

// The same for any head size: the chunked form for 32/64/96/128, else key by key.
static void scores_one(const cg_attn_args *a, const float *q, int kvh, int32_t first, int32_t last, float *p) {
    switch (a->head_dim) {
    case 32: scores_one_hd(a, q, kvh, first, last, p, 32); return;
    case 64: scores_one_hd(a, q, kvh, first, last, p, 64); return;
    case 96: scores_one_hd(a, q, kvh, first, last, p, 96); return;
    case 128: scores_one_hd(a, q, kvh, first, last, p, 128); return;
    default: break;
    }
    const int hd = a->head_dim;
    const int64_t kv_row = (int64_t)a->n_head_kv * hd;
    int b = first / a->block_size, r = first % a->block_size;
    for (int32_t t = first; t <= last; t++) {
        p[t] = score(a, dot_qk(q, a->k_blocks[b], r * kv_row + (int64_t)kvh * hd, hd, a->kv_type == CG_KV_F16));
        if (++r == a->block_size) r = 0, b++;
    }
}

// q rounded to F16 and back (the online path's query), head_dim floats.
static void round_q_f16(const float *q, float *qv, int hd) {
    int d = 0;
    for (; d + 8 <= hd; d += 8)
        _mm256_storeu_ps(qv + d, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(q + d), _MM_FROUND_TO_NEAREST_INT)));
    for (; d < hd; d++) qv[d] = cg_f16_to_f32(cg_f32_to_f16(q[d]));
}

static void attend_two_pass(const cg_attn_args *a, int h, int32_t first) {
    const int kvh = h / (a->n_head / a->n_head_kv), hd = a->head_dim, hdv = a->head_dim_v;
    const int64_t kv_row_v = (int64_t)a->n_head_kv * hdv;
    const bool f16 = a->kv_type == CG_KV_F16;
    const float *q = a->q + (int64_t)h * hd;
    float *p = a->scratch + hd + hdv;
    scores_one(a, q, kvh, first, a->pos, p);
    const float inv = softmax_scores(p, first, a->pos, !f16);
    float *out = a->out + (int64_t)h * hdv;
    if (!f16) {
        for (int32_t t = first; t <= a->pos; t++) p[t] *= inv;
        pv_sum_f32(a, kvh, p, first, a->pos, out);
        return;
    }
    int d = 0;
    int32_t t;
    for (; d + 8 <= hdv; d += 8) {
        __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
        for (t = first; t <= a->pos; t++) {
            const int b = t / a->block_size, r = t % a->block_size;
            const __m256 w = _mm256_mul_ps(_mm256_set1_ps(p[t] * inv),
                                           load_kv(a->v_blocks[b], r * kv_row_v + (int64_t)kvh * hdv + d, f16));
            add_wide(&lo, &hi, w);
        }
        _mm_storeu_ps(out + d, _mm256_cvtpd_ps(lo));
        _mm_storeu_ps(out + d + 4, _mm256_cvtpd_ps(hi));
    }
    for (; d < hdv; d++) {
        double acc = 0.0;
        for (t = first; t <= a->pos; t++) {
            const int b = t / a->block_size, r = t % a->block_size;
            acc += (double)(p[t] * inv * kv_elem(a->v_blocks[b], r * kv_row_v + (int64_t)kvh * hdv + d, f16));
        }
        out[d] = (float)acc;
    }
}

// The F16 online path in three passes over the visible keys, each key's operations exactly those of
// the one-pass form (ggml's flash-attention order: per key s = score(q·k); if s > M: ms = expf(M_old
// − s), M = s, the accumulator scaled by ms and rounded to F16; else vs = expf(s − M); then
// acc = round16(fma(v, vs, acc)) and S = S·ms + vs), so results are bit-identical — only the schedule
// changes: (1) every score (independent dot products, overlapping in the core), (2) the running max
// in key order, then the exps eight keys at a time (cg_expf's bits: kern/expf.h — glibc's expf,
// which ggml calls one key at a time; with libm's scalar calls the exps were ~20 % of the whole
// kernel), then S in key order, one weight per key kept in the score's slot — the factor ms with
// its sign bit set for a rescaling key (ms ≥ 0, so −0.0 still marks one), else vs; (3) the values, up to
// VACC_REGS registers of the accumulator held in registers as F32 values that are exact F16 numbers
// (rounded after every operation like the stored F16 accumulator) across all keys, instead of a
// store, reload and conversion per key. Measured back to back (1 thread, CPU time, 32 heads of 64,
// F16 cache): per head and key 43 → 27 ns at pos 16, 38 → 26 at pos 64, 48 → 30 at pos 512. Pass
// (1) then reduced every key's dot product on its own; scores_one folds eight keys at once: qwen2.5-
// 0.5b's 14/2 heads of 64, one thread, one layer: 4096 keys 1.89 → 1.43 ms, 1024 keys 0.43 → 0.33 ms.
enum { VACC_REGS = 8 };

static inline __m256 round16(__m256 x) { return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT)); }

// Pass (3) for the NR registers of values from element d: every visible key, weights from pass (2).
static inline __attribute__((always_inline)) void values_f16(const cg_attn_args *a, int kvh, const float *p,
                                                              int32_t first, int d, float inv, float *out,
                                                              const int NR) {
    const int64_t kv_row_v = (int64_t)a->n_head_kv * a->head_dim_v;
    __m256 acc[VACC_REGS];
    for (int i = 0; i < NR; i++) acc[i] = _mm256_setzero_ps();
    int b = first / a->block_size, r = first % a->block_size;
    for (int32_t t = first; t <= a->pos; t++) {
        const uint16_t *v = (const uint16_t *)a->v_blocks[b] + r * kv_row_v + (int64_t)kvh * a->head_dim_v + d;
        const float w = p[t];
        if (signbit(w)) {   // rescaling key: acc = round16(acc·ms), then + v (vs = 1)
            const __m256 ms = _mm256_set1_ps(-w);
            for (int i = 0; i < NR; i++)
                acc[i] = round16(_mm256_add_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + 8 * i))),
                                               round16(_mm256_mul_ps(acc[i], ms))));
        } else {
            const __m256 vs = _mm256_set1_ps(w);
            for (int i = 0; i < NR; i++)
                acc[i] = round16(_mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + 8 * i))), vs,
                                                 acc[i]));
        }
        if (++r == a->block_size) r = 0, b++;
    }
    for (int i = 0; i < NR; i++) _mm256_storeu_ps(out + d + 8 * i, _mm256_mul_ps(acc[i], _mm256_set1_ps(inv)));
}

// Passes (2) and (3) for head h, its scores p[first..pos] from pass (1).
static void online_rest(const cg_attn_args *a, int h, int32_t first, float *p) {
    const int kvh = h / (a->n_head / a->n_head_kv), hdv = a->head_dim_v;
    const int64_t kv_row_v = (int64_t)a->n_head_kv * hdv;
    // (2) weights and the sum, in three sweeps: (a) the running max in key order, leaving in each
    // slot the exp's argument — s − M for a key at or below the max, and for a key above it (a
    // rescaling key, ms = e^(M_old − s)) the positive s − M_old, the same number negated (exact);
    // (b) the exps, eight keys at a time (expf8_glibc: cg_expf's bits), slots of rescaling keys
    // negated (the sign marks them, as −ms); (c) S = S·ms + vs in key order.
    float M = -INFINITY, S = 0.0f;
    for (int32_t t = first; t <= a->pos; t++) {
        const float s = p[t];
        p[t] = s - M;   // against the max before this key, whichever side of it s lies
        if (s > M) M = s;
    }
    int32_t k = first;
    for (; k + 8 <= a->pos + 1; k += 8) {
        const __m256 x = _mm256_loadu_ps(p + k), sign = _mm256_set1_ps(-0.0f);
        const __m256 up = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ);   // rescaling keys
        const __m256 e = expf8_glibc(_mm256_blendv_ps(x, _mm256_xor_ps(x, sign), up));
        _mm256_storeu_ps(p + k, _mm256_blendv_ps(e, _mm256_xor_ps(e, sign), up));
    }
    for (; k <= a->pos; k++) p[k] = p[k] > 0.0f ? -cg_expf(-p[k]) : cg_expf(p[k]);
    for (k = first; k <= a->pos; k++) {
        const float w = p[k];
        if (signbit(w)) S = S * -w + 1.0f;
        else S = S * 1.0f + w;
    }
    const float inv = S == 0.0f ? 0.0f : 1.0f / S;
    float *out = a->out + (int64_t)h * hdv;
    int d = 0;
    while (d + 8 <= hdv) {   // (3) values, up to VACC_REGS registers at a time (unrolled per count)
        const int nr = (hdv - d) / 8 < VACC_REGS ? (hdv - d) / 8 : VACC_REGS;
        switch (nr) {
        case 8: values_f16(a, kvh, p, first, d, inv, out, 8); break;
        case 4: values_f16(a, kvh, p, first, d, inv, out, 4); break;
        case 2: values_f16(a, kvh, p, first, d, inv, out, 2); break;
        case 1: values_f16(a, kvh, p, first, d, inv, out, 1); break;
        case 3: values_f16(a, kvh, p, first, d, inv, out, 3); break;
        case 5: values_f16(a, kvh, p, first, d, inv, out, 5); break;
        case 6: values_f16(a, kvh, p, first, d, inv, out, 6); break;
        default: values_f16(a, kvh, p, first, d, inv, out, 7); break;
        }
        d += 8 * nr;
    }
    for (; d < hdv; d++) {   // the tail, one element through every key
        float x = 0.0f;
        int b = first / a->block_size, r = first % a->block_size;
        for (int32_t t = first; t <= a->pos; t++) {
            const float w = p[t];
            const uint16_t *v = (const uint16_t *)a->v_blocks[b] + r * kv_row_v + (int64_t)kvh * hdv;
            if (signbit(w)) x = cg_f16_to_f32(cg_f32_to_f16(x * -w));
            x = cg_f16_to_f32(cg_f32_to_f16(fmaf(cg_f16_to_f32(v[d]), signbit(w) ? 1.0f : w, x)));
            if (++r == a->block_size) r = 0, b++;
        }
        out[d] = x * inv;
    }
}

static void attend_online_f16(const cg_attn_args *a, int h, int32_t first) {
    const int kvh = h / (a->n_head / a->n_head_kv), hd = a->head_dim, hdv = a->head_dim_v;
    float *qv = a->scratch, *p = a->scratch + hd + hdv;
    round_q_f16(a->q + (int64_t)h * hd, qv, hd);
    scores_one(a, qv, kvh, first, a->pos, p);   // (1) scores
    online_rest(a, h, first, p);
}

// ---- multi-query attention --------------------------------------------------------------------------
//
// A "pair" is one (query position, query head) of the kv head at hand; up to CG_ATTN_SLABS pairs
// (one scratch slab each) go through the cache together. Two-pass (f32_acc, F32 cache): the scores
// over 32-key chunks converted once for all the pairs, eight keys' reductions at once
// (scores_chunked; head_dims other than 32/64/96/128 take two pairs per key load, dot_qk_n), the
// softmax sums of all the pairs interleaved, the value sums four pairs per value-chunk load with
// the accumulators in registers, block by block. Online F16 (small batches): each pair through
// the single-query kernel in its slab (online_pairs). Per pair every operation — the q·k lanes and
// reduction, the softmax, the value sums, the F16 accumulator roundings — is the single-query
// kernel's in the same order, so the results are bit-identical; only which rows stay in registers
// or L1 between pairs changes. On qwen2.5-0.5b's prefill shape (14/2 heads of 64, F16, f32_acc, 8-query tiles
// up to position 512, one thread, best of 10) the chunked scores and interleaved sums took a
// layer's attention from 39..40 ms to 26..28 ms.

typedef struct attn_pair {
    const float *q;        // the pair's q: head_dim floats
    float *out;            // head_dim_v floats
    float *slab;           // head_dim + head_dim_v + pos + n_q floats of scratch
    int32_t first, last;   // visible keys
    int head;              // the query head
} attn_pair;

// The keys of pairs P[0..n): [lo, hi] the union of their ranges, [c_lo, c_hi] the keys every pair
// sees (c_lo > c_hi when there are none).
typedef struct key_span {
    int32_t lo, hi, c_lo, c_hi;
} key_span;

static inline key_span pairs_span(const attn_pair *P, int n) {
    key_span s = {P[0].first, P[0].last, P[0].first, P[0].last};
    for (int k = 1; k < n; k++) {
        if (P[k].first < s.lo) s.lo = P[k].first;
        if (P[k].last > s.hi) s.hi = P[k].last;
        if (P[k].first > s.c_lo) s.c_lo = P[k].first;
        if (P[k].last < s.c_hi) s.c_hi = P[k].last;
    }
    return s;
}

// dot_qk for nq query rows against one key, the key chunk loaded once: per row the same FMA lanes,
// reduction tree and double tail.
static inline void dot_qk_n(const float *const *qs, int nq, const void *kbase, int64_t off, int n, bool f16,
                            float *dots) {
    __m256 acc[CG_ATTN_SLABS][4];
    for (int k = 0; k < nq; k++)
        for (int j = 0; j < 4; j++) acc[k][j] = _mm256_setzero_ps();
    const int np = n & ~31;
    for (int i = 0; i < np; i += 32) {
        __m256 kv[4];
        for (int j = 0; j < 4; j++) kv[j] = load_kv(kbase, off + i + 8 * j, f16);
        for (int k = 0; k < nq; k++)
            for (int j = 0; j < 4; j++)
                acc[k][j] = _mm256_fmadd_ps(_mm256_loadu_ps(qs[k] + i + 8 * j), kv[j], acc[k][j]);
    }
    for (int k = 0; k < nq; k++) {
        const __m256 x0 = _mm256_add_ps(_mm256_add_ps(acc[k][0], acc[k][2]), _mm256_add_ps(acc[k][1], acc[k][3]));
        const __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(x0), _mm256_extractf128_ps(x0, 1));
        const __m128 h = _mm_hadd_ps(t0, t0);
        const float tree = _mm_cvtss_f32(h) + _mm_cvtss_f32(_mm_shuffle_ps(h, h, 1));
        if (!f16) {
            float sumf = tree;
            for (int d = np; d < n; d++) sumf = fmaf(qs[k][d], kv_elem(kbase, off + d, false), sumf);
            dots[k] = sumf;
            continue;
        }
        double sum = (double)tree;
        for (int d = np; d < n; d++) sum += (double)(qs[k][d] * kv_elem(kbase, off + d, f16));
        dots[k] = (float)sum;
    }
}

// Scores of NP (1..2, a constant after inlining) pairs over their keys: dot_qk_n with the key
// loaded once for both, the block walked without divisions.
static inline __attribute__((always_inline)) void scores_group(const cg_attn_args *a, int kvh, const attn_pair *P,
                                                                float *const *p, const int NP) {
    const int hd = a->head_dim;
    const int64_t kv_row = (int64_t)a->n_head_kv * hd;
    const bool f16 = a->kv_type == CG_KV_F16;
    const key_span sp = pairs_span(P, NP);
    const int32_t lo = sp.lo, hi = sp.hi;
    int b = lo / a->block_size, r = lo % a->block_size;
    for (int32_t t = lo; t <= hi; t++) {
        const float *qs[2];
        int act[2], n = 0;
        for (int k = 0; k < NP; k++)
            if (P[k].first <= t && t <= P[k].last) {
                act[n] = k;
                qs[n++] = P[k].q;
            }
        float dots[2];
        const int64_t koff = r * kv_row + (int64_t)kvh * hd;
        if (n == NP && NP == 2) dot_qk_n(qs, 2, a->k_blocks[b], koff, hd, f16, dots);
        else
            for (int m = 0; m < n; m++) dots[m] = dot_qk(qs[m], a->k_blocks[b], koff, hd, f16);
        for (int m = 0; m < n; m++) p[act[m]][t] = score(a, dots[m]);
        if (++r == a->block_size) r = 0, b++;
    }
}

// ---- scores of a run of pairs, keys in chunks (head_dim a multiple of 32, at most 128) -----------
//
// Per pair and key the same operations as dot_qk, in the same order: four FMA lanes over the
// 32-element steps, folded (acc0+acc2)+(acc1+acc3), then lo+hi and the pairwise tree — but the
// fold of eight keys is done at once, across registers (fold8), and the keys of a chunk are
// converted from F16 once for all the pairs of the run (exact: F16 → F32 is). With no tail
// (head_dim % 32 == 0) dot_qk's double tail is the identity, so the result is the float tree.

static inline __attribute__((always_inline)) void scores_chunked(const cg_attn_args *a, int kvh, const attn_pair *P,
                                                                  float *const *p, int np, const int HD) {
    const int64_t kv_row = (int64_t)a->n_head_kv * HD;
    const bool f16 = a->kv_type == CG_KV_F16;
    const key_span sp = pairs_span(P, np);
    const int32_t lo = sp.lo, hi = sp.hi;
    _Alignas(32) float kf[KEY_CHUNK * CHUNK_MAX_HD];
    const float *row[KEY_CHUNK];
    for (int32_t c0 = lo; c0 <= hi; c0 += KEY_CHUNK) {
        const int n = hi - c0 + 1 < KEY_CHUNK ? hi - c0 + 1 : KEY_CHUNK;
        int b = c0 / a->block_size, r = c0 % a->block_size;
        for (int i = 0; i < n; i++) {   // the chunk's key rows of head kvh, as F32
            const int64_t off = r * kv_row + (int64_t)kvh * HD;
            if (f16) {
                for (int d = 0; d < HD; d += 8) _mm256_store_ps(kf + i * HD + d, load_kv(a->k_blocks[b], off + d, true));
                row[i] = kf + i * HD;
            } else {
                row[i] = (const float *)a->k_blocks[b] + off;
            }
            if (++r == a->block_size) r = 0, b++;
        }
        for (int k = 0; k < np; k++) {
            __m256 qr[CHUNK_MAX_HD / 8];
            for (int d = 0; d < HD; d += 8) qr[d / 8] = _mm256_loadu_ps(P[k].q + d);
            for (int g = 0; g < n; g += 8) {
                const int32_t t0 = c0 + g, m = n - g < 8 ? n - g : 8;
                if (t0 + m - 1 < P[k].first || t0 > P[k].last) continue;
                __m256 x[8];
                for (int i = 0; i < 8; i++) x[i] = i < m ? qk_fold(qr, row[g + i], false, HD) : _mm256_setzero_ps();
                store_scores8(a, fold8(x), p[k] + t0, m);
            }
        }
    }
}

// The head sizes scores_chunked takes (a multiple of 32, at most CHUNK_MAX_HD).
static inline bool chunked_hd(int hd) { return hd == 32 || hd == 64 || hd == 96 || hd == 128; }

// scores_chunked with a->head_dim (chunked_hd) as its constant.
static void scores_chunked_any(const cg_attn_args *a, int kvh, const attn_pair *P, float *const *p, int np) {
    switch (a->head_dim) {
    case 32: scores_chunked(a, kvh, P, p, np, 32); break;
    case 64: scores_chunked(a, kvh, P, p, np, 64); break;
    case 96: scores_chunked(a, kvh, P, p, np, 96); break;
    default: scores_chunked(a, kvh, P, p, np, 128); break;
    }
}

// F16 cache with f32_acc: Σ w·v of NP (1..4, a constant after inlining) pairs whose weights
// w[k][t] = p[t]·inv are final: per pair and 8-lane chunk the single-query kernel's double-lane
// sums in key order, the value chunk loaded once for all NP and the accumulators in registers.
// (An F32 cache takes pv_sum_f32 pair by pair.)
static inline __attribute__((always_inline)) void values_group(const cg_attn_args *a, int kvh, const attn_pair *P,
                                                                float *const *w, const int NP) {
    const int hdv = a->head_dim_v;
    const int64_t kv_row_v = (int64_t)a->n_head_kv * hdv;
    const bool f16 = a->kv_type == CG_KV_F16;
    const key_span sp = pairs_span(P, NP);
    const int32_t lo = sp.lo, hi = sp.hi, c_lo = sp.c_lo, c_hi = sp.c_hi;
    int d = 0;
    for (; d + 8 <= hdv; d += 8) {
        __m256d acc_lo[4], acc_hi[4];
        for (int k = 0; k < NP; k++) acc_lo[k] = acc_hi[k] = _mm256_setzero_pd();
        int b = lo / a->block_size, r = lo % a->block_size;
        for (int32_t t = lo; t <= hi;) {
            // The keys left in this cache block; where every pair sees all of them, a loop without checks.
            const int32_t n_blk = a->block_size - r < hi - t + 1 ? a->block_size - r : hi - t + 1;
            const unsigned char *vb = (const unsigned char *)a->v_blocks[b] +
                                      (size_t)(r * kv_row_v + (int64_t)kvh * hdv + d) * (f16 ? 2 : 4);
            const size_t v_step = (size_t)kv_row_v * (f16 ? 2 : 4);
            if (t >= c_lo && t + n_blk - 1 <= c_hi) {
                const float *wk[4];
                for (int k = 0; k < NP; k++) wk[k] = w[k] + t;
                for (int32_t i = 0; i < n_blk; i++, vb += v_step) {
                    const __m256 v = load_kv(vb, 0, f16);
                    for (int k = 0; k < NP; k++) {
                        add_wide(&acc_lo[k], &acc_hi[k], _mm256_mul_ps(_mm256_set1_ps(wk[k][i]), v));
                    }
                }
            } else {
                for (int32_t i = 0; i < n_blk; i++, vb += v_step) {
                    const __m256 v = load_kv(vb, 0, f16);
                    for (int k = 0; k < NP; k++) {
                        if (t + i < P[k].first || t + i > P[k].last) continue;
                        add_wide(&acc_lo[k], &acc_hi[k], _mm256_mul_ps(_mm256_set1_ps(w[k][t + i]), v));
                    }
                }
            }
            t += n_blk;
            r = 0, b++;
        }
        for (int k = 0; k < NP; k++) {
            _mm_storeu_ps(P[k].out + d, _mm256_cvtpd_ps(acc_lo[k]));
            _mm_storeu_ps(P[k].out + d + 4, _mm256_cvtpd_ps(acc_hi[k]));
        }
    }
    for (; d < hdv; d++)
        for (int k = 0; k < NP; k++) {
            double acc = 0.0;
            for (int32_t t = P[k].first; t <= P[k].last; t++) {
                const int b = t / a->block_size, r = t % a->block_size;
                acc += (double)(w[k][t] * kv_elem(a->v_blocks[b], r * kv_row_v + (int64_t)kvh * hdv + d, f16));
            }
            P[k].out[d] = (float)acc;
        }
}

// sum[k] = Σ (double)p[k][t] over pair k's keys in key order (softmax_scores' sum for an F16
// cache), for NP (1..CG_ATTN_SLABS, a constant after inlining) pairs at once: the NP chains of
// double additions interleave instead of each waiting on its own latency.
static inline __attribute__((always_inline)) void double_sums(const attn_pair *P, float *const *p, double *sum,
                                                               const int NP) {
    const key_span sp = pairs_span(P, NP);
    const int32_t lo = sp.lo, hi = sp.hi;
    int32_t c_lo = sp.c_lo, c_hi = sp.c_hi;
    double s[CG_ATTN_SLABS];
    for (int k = 0; k < NP; k++) s[k] = 0.0;
    if (c_lo > c_hi) c_lo = hi + 1, c_hi = hi;   // no key common to all: every key checked
    for (int32_t t = lo; t < c_lo; t++)
        for (int k = 0; k < NP; k++)
            if (t >= P[k].first && t <= P[k].last) s[k] += (double)p[k][t];
    for (int32_t t = c_lo; t <= c_hi; t++)
        for (int k = 0; k < NP; k++) s[k] += (double)p[k][t];
    for (int32_t t = c_hi + 1; t <= hi; t++)
        for (int k = 0; k < NP; k++)
            if (t >= P[k].first && t <= P[k].last) s[k] += (double)p[k][t];
    for (int k = 0; k < NP; k++) sum[k] = s[k];
}

static void two_pass_multi(const cg_attn_args *a, int kvh, attn_pair *P, int np) {
    const int hd = a->head_dim, hdv = a->head_dim_v;
    float *p[CG_ATTN_SLABS];
    for (int k = 0; k < np; k++) p[k] = P[k].slab + hd + hdv;
    int k = 0;
    if (chunked_hd(hd)) {
        scores_chunked_any(a, kvh, P, p, np);
    } else {
        for (; k + 2 <= np; k += 2) scores_group(a, kvh, P + k, p + k, 2);
        if (k < np) scores_group(a, kvh, P + k, p + k, 1);
    }
    if (a->kv_type == CG_KV_F32) {
        for (k = 0; k < np; k++) {
            const float inv = softmax_scores(p[k], P[k].first, P[k].last, true);
            for (int32_t t = P[k].first; t <= P[k].last; t++) p[k][t] *= inv;   // the single kernel's p[t] * inv
        }
    } else {   // softmax_scores(…, false) pair by pair, the sums interleaved
        double sum[CG_ATTN_SLABS];
        for (k = 0; k < np; k++) softmax_exp(p[k], P[k].first, P[k].last);
        switch (np) {
        case 8: double_sums(P, p, sum, 8); break;
        case 7: double_sums(P, p, sum, 7); break;
        case 6: double_sums(P, p, sum, 6); break;
        case 5: double_sums(P, p, sum, 5); break;
        case 4: double_sums(P, p, sum, 4); break;
        case 3: double_sums(P, p, sum, 3); break;
        case 2: double_sums(P, p, sum, 2); break;
        default: double_sums(P, p, sum, 1); break;
        }
        for (k = 0; k < np; k++) {
            const float inv = (float)(1.0 / sum[k]);
            for (int32_t t = P[k].first; t <= P[k].last; t++) p[k][t] *= inv;
        }
    }
    if (a->kv_type == CG_KV_F32) {   // the single kernel's value sums, pair by pair
        for (k = 0; k < np; k++) pv_sum_f32(a, kvh, p[k], P[k].first, P[k].last, P[k].out);
        return;
    }
    for (k = 0; k + 4 <= np; k += 4) values_group(a, kvh, P + k, p + k, 4);
    switch (np - k) {
    case 3: values_group(a, kvh, P + k, p + k, 3); break;
    case 2: values_group(a, kvh, P + k, p + k, 2); break;
    case 1: values_group(a, kvh, P + k, p + k, 1); break;
    default: break;
    }
}

// The online F16 path for the pairs of one kv head (small batches), each in its slab (which holds its
// q, accumulator and scores: hd + hdv + last + 1 floats): pass (1) of all the pairs through
// scores_chunked (each key chunk converted once for all of them: a batch's pairs from
// attention_multi, one query's heads from avx2_attention; head sizes other than 32/64/96/128 take
// the single-query kernel pair by pair), then passes (2) and (3) pair by pair — per pair the
// single-query kernel's operations, the same bits.
// (Sharing each value load too, one key at a time with per-pair branches, was slower than the single
// kernel's passes: qwen2.5-0.5b, 14/2 heads of 64, 32 queries in tiles of 8 after 512 (2048) keys,
// one thread, one layer: 8.1–8.4 (33.8) ms shared, 5.3–5.7 (24.0) ms per pair.)
static void online_pairs(const cg_attn_args *a, int kvh, const attn_pair *P, int np) {
    const int hd = a->head_dim, hdv = a->head_dim_v;
    const bool chunked = chunked_hd(hd);
    attn_pair R[CG_ATTN_SLABS] = {{0}};   // the pairs with their q rounded to F16 in their slabs
    float *p[CG_ATTN_SLABS] = {0};
    if (chunked) {
        for (int k = 0; k < np; k++) {
            R[k] = P[k];
            round_q_f16(P[k].q, P[k].slab, hd);
            R[k].q = P[k].slab;
            p[k] = P[k].slab + hd + hdv;
        }
        scores_chunked_any(a, kvh, R, p, np);
    }
    for (int k = 0; k < np; k++) {
        cg_attn_args one = *a;
        one.q = P[k].q - (int64_t)P[k].head * hd;   // the pair's query row
        one.out = P[k].out - (int64_t)P[k].head * hdv;
        one.pos = P[k].last;
        one.scratch = P[k].slab;
        if (chunked) online_rest(&one, P[k].head, P[k].first, p[k]);
        else attend_online_f16(&one, P[k].head, P[k].first);
    }
}

// One query (attention()). The online F16 path takes the query heads of one kv head as pairs, up to
// CG_ATTN_SLABS at a time (a scratch slab each), through online_pairs: for head_dim 32/64/96/128
// each chunk of keys is converted from F16 once for all of them instead of once per head; per head
// the same operations as attend_online_f16, so the same bits. The two-pass paths: head by head.
static void avx2_attention(const cg_attn_args *a) {
    int32_t first = 0;
    if (a->n_swa > 0 && a->pos - a->n_swa + 1 > 0) first = a->pos - a->n_swa + 1;
    const int hd = a->head_dim, hdv = a->head_dim_v, group = a->n_head / a->n_head_kv;
    const int h_end = a->head_hi > 0 ? a->head_hi : a->n_head;
    int h = a->head_hi > 0 ? a->head_lo : 0;
    if (a->kv_type != CG_KV_F16 || a->f32_acc) {
        for (; h < h_end; h++) attend_two_pass(a, h, first);
        return;
    }
    const int64_t slab = (int64_t)hd + hdv + a->pos + 1;
    while (h < h_end) {
        const int kvh = h / group;
        const int g_end = (kvh + 1) * group < h_end ? (kvh + 1) * group : h_end;
        const int np = g_end - h < CG_ATTN_SLABS ? g_end - h : CG_ATTN_SLABS;   // >= 1: h < g_end
        attn_pair P[CG_ATTN_SLABS];
        for (int k = 0; k < np; k++)
            P[k] = (attn_pair){.q = a->q + (int64_t)(h + k) * hd, .out = a->out + (int64_t)(h + k) * hdv,
                               .slab = a->scratch + k * slab, .first = first, .last = a->pos, .head = h + k};
        online_pairs(a, kvh, P, np);
        h += np;
    }
}

// One pass over the keys/values for the pairs gathered so far.
static void run_pairs(const cg_attn_args *a, int kvh, attn_pair *P, int np) {
    if (a->kv_type == CG_KV_F16 && !a->f32_acc) online_pairs(a, kvh, P, np);
    else two_pass_multi(a, kvh, P, np);
}

static void avx2_attention_multi(const cg_attn_args *a, int n_q) {
    if (n_q < 1 || n_q > CG_ATTN_MAX_Q) return;
    const int group = a->n_head / a->n_head_kv;
    const int64_t slab = (int64_t)a->head_dim + a->head_dim_v + a->pos + n_q;
    attn_pair P[CG_ATTN_SLABS];
    int np = 0;
    for (int kvh = 0; kvh < a->n_head_kv; kvh++) {
        for (int i = 0; i < n_q; i++)
            for (int g = 0; g < group; g++) {
                const int h = kvh * group + g;
                const int32_t pos = a->pos + i;
                int32_t first = 0;
                if (a->n_swa > 0 && pos - a->n_swa + 1 > 0) first = pos - a->n_swa + 1;
                P[np] = (attn_pair){
                    .q = a->q + (int64_t)i * a->n_head * a->head_dim + (int64_t)h * a->head_dim,
                    .out = a->out + (int64_t)i * a->n_head * a->head_dim_v + (int64_t)h * a->head_dim_v,
                    .slab = a->scratch + np * slab,
                    .first = first,
                    .last = pos,
                    .head = h,
                };
                if (++np == CG_ATTN_SLABS) {
                    run_pairs(a, kvh, P, np);
                    np = 0;
                }
            }
        if (np > 0) {
            run_pairs(a, kvh, P, np);
            np = 0;
        }
    }
}

// ---- the rest: the reference ---------------------------------------------------------------------

static void avx2_rmsnorm(const float *x, const float *w, int64_t n, float eps, float *y) {
    cg_kern_generic()->rmsnorm(x, w, n, eps, y);
}

// ---- rope -------------------------------------------------------------------------------------------
//
// The reference's table (cos_i, sin_i interleaved) rearranged for vector loads: NEOX pairs (i, i + n_rot/2)
// take cos_0.. then sin_0.. (n_rot floats); NORM pairs (2i, 2i+1) take the interleaved table and beside
// it (−sin_i, cos_i) (2·n_rot floats). The rotation is cg_rope_pair's per element — x0·c + (−(x1·s))
// and x0·s + (x1·c), one FMA each over the rounded product — so the results are bit-identical; for
// NORM the even lanes compute the first, the odd lanes the second (x0 duplicated by moveldup, x1 by
// movehdup, times the (−sin, cos) table). The generic rotation called libm's fmaf twice per pair:
// ~85 µs of a qwen2.5-0.5b token (24 layers × 16 heads × 32 pairs).

static void avx2_rope_table(int32_t pos, const cg_rope_params *rp, float *cs) {
    const int n_rot = cg_rope_rot(rp), half = n_rot / 2;
    if (!n_rot) return;
    float t[CG_ROPE_MAX_ROT];
    cg_kern_generic()->rope_table(pos, rp, t);
    if (rp->kind == CG_ROPE_NORM) {
        for (int i = 0; i < half; i++) {
            cs[2 * i] = t[2 * i];
            cs[2 * i + 1] = t[2 * i + 1];
            cs[n_rot + 2 * i] = -t[2 * i + 1];
            cs[n_rot + 2 * i + 1] = t[2 * i];
        }
    } else {
        for (int i = 0; i < half; i++) {
            cs[i] = t[2 * i];
            cs[half + i] = t[2 * i + 1];
        }
    }
}

static void avx2_rope_apply(float *x, int n_head, int head_dim, const cg_rope_params *rp, const float *cs) {
    const int n_rot = cg_rope_rot(rp), half = n_rot / 2;
    const __m256 neg = _mm256_set1_ps(-0.0f);
    for (int h = 0; h < n_head; h++) {
        float *v = x + (int64_t)h * head_dim;
        if (rp->kind == CG_ROPE_NORM) {
            const float *ns = cs + n_rot;
            int i0 = 0;
            for (; i0 + 8 <= n_rot; i0 += 8) {
                const __m256 a = _mm256_loadu_ps(v + i0);
                const __m256 p = _mm256_mul_ps(_mm256_movehdup_ps(a), _mm256_loadu_ps(ns + i0));
                _mm256_storeu_ps(v + i0, _mm256_fmadd_ps(_mm256_moveldup_ps(a), _mm256_loadu_ps(cs + i0), p));
            }
            for (; i0 < n_rot; i0 += 2) cg_rope_pair(&v[i0], &v[i0 + 1], cs[i0], cs[i0 + 1]);   // n_rot is even
        } else {
            const float *sn = cs + half;
            int i = 0;
            for (; i + 8 <= half; i += 8) {
                const __m256 x0 = _mm256_loadu_ps(v + i), x1 = _mm256_loadu_ps(v + half + i);
                const __m256 c = _mm256_loadu_ps(cs + i), s8 = _mm256_loadu_ps(sn + i);
                _mm256_storeu_ps(v + i, _mm256_fmadd_ps(x0, c, _mm256_xor_ps(_mm256_mul_ps(x1, s8), neg)));
                _mm256_storeu_ps(v + half + i, _mm256_fmadd_ps(x0, s8, _mm256_mul_ps(x1, c)));
            }
            for (; i < half; i++) cg_rope_pair(&v[i], &v[i + half], cs[i], sn[i]);
        }
    }
}

static const cg_kern AVX2 = {
    .name = "avx2",
    .matmul = avx2_matmul,
    .matmul_multi = avx2_matmul_multi,
    .rmsnorm = avx2_rmsnorm,
    .rope_table = avx2_rope_table,
    .rope_apply = avx2_rope_apply,
    .attention = avx2_attention,
    .attention_multi = avx2_attention_multi,
    .glu = avx2_glu,
};

const cg_kern *cg_kern_avx2(void) { return &AVX2; }
