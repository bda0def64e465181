// vec.c — cosine similarity, binary16 conversion, the f32 x f16 dot product (scalar reference
// and an AVX2 twin) and the hashed-token stand-in embedding (see vec.h).
//
// The cosine loop is written so the compiler vectorises it (four independent accumulators);
// the scalar order of summation is fixed, so results are deterministic on one build.
// The AVX2 kernel is compiled with a function-level target attribute (no -m flags for the file,
// so the generic build stays generic) and chosen at run time from cpuid, once (pthread_once:
// the only process-wide state here, set once and read-only afterwards).
#include "mem/vec.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define VEC_X86 1
#endif

#include "mem/fts_cjk.h"

float cg_vec_cosine(const float *a, const float *b, size_t n) {
    float d[4] = {0}, na[4] = {0}, nb[4] = {0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) {
            d[k] += a[i + k] * b[i + k];
            na[k] += a[i + k] * a[i + k];
            nb[k] += b[i + k] * b[i + k];
        }
    for (; i < n; i++) {
        d[0] += a[i] * b[i];
        na[0] += a[i] * a[i];
        nb[0] += b[i] * b[i];
    }
    float dot = d[0] + d[1] + d[2] + d[3];
    float den = sqrtf((na[0] + na[1] + na[2] + na[3]) * (nb[0] + nb[1] + nb[2] + nb[3]));
    return den > 0.0f ? dot / den : 0.0f;
}

uint16_t cg_vec_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, e = (x >> 23) & 0xffu, m = x & 0x7fffffu;
    if (e == 0xff) return (uint16_t)(sign | 0x7c00u | (m ? 0x200u : 0));  // inf / NaN
    int32_t he = (int32_t)e - 127 + 15;
    if (he >= 31) return (uint16_t)(sign | 0x7c00u);                    // overflow -> inf
    if (he <= 0) {                                                      // subnormal or zero
        if (he < -10) return (uint16_t)sign;
        m |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - he);
        uint32_t hm = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (hm & 1))) hm++;
        return (uint16_t)(sign | hm);
    }
    uint32_t hm = m >> 13, rem = m & 0x1fffu;
    uint32_t h = sign | ((uint32_t)he << 10) | hm;
    if (rem > 0x1000u || (rem == 0x1000u && (hm & 1))) h++;  // may carry into the exponent: fine
    return (uint16_t)h;
}

float cg_vec_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
    if (e == 0) {
        if (m == 0) x = sign;
        else {  // subnormal: normalise
            e = 1;
            while (!(m & 0x400u)) {
                m <<= 1;
                e--;
            }
            m &= 0x3ffu;
            x = sign | ((e + 127 - 15) << 23) | (m << 13);
        }
    } else if (e == 31) x = sign | 0x7f800000u | (m << 13);
    else x = sign | ((e + 127 - 15) << 23) | (m << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

float cg_vec_dot_f16_ref(const float *q, const uint16_t *h, size_t n) {
    float acc[4] = {0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) {
            uint16_t v;
            memcpy(&v, (const unsigned char *)h + 2 * (i + (size_t)k), 2);
            acc[k] += q[i + (size_t)k] * cg_vec_f16_to_f32(v);
        }
    for (; i < n; i++) {
        uint16_t v;
        memcpy(&v, (const unsigned char *)h + 2 * i, 2);
        acc[0] += q[i] * cg_vec_f16_to_f32(v);
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// Shared by both twins: the grid step for max|y| = m (0 when m is 0).
static float q8_step(float m, float *inv) {
    float s8 = m / 127.0f;
    *inv = s8 > 0.0f ? 127.0f / m : 0.0f;
    return s8;
}

#ifdef VEC_X86
// q (n,) f32 . h (n,) f16: 16 lanes in two accumulators, F16C converts 8 halves at a time.
__attribute__((target("avx2,fma,f16c"))) static float dot_f16_avx2(const float *q,
                                                                   const uint16_t *h, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 h0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i)));
        __m256 h1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i + 8)));
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), h0, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), h1, a1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 h0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i)));
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), h0, a0);
    }
    __m256 a = _mm256_add_ps(a0, a1);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    float r = _mm_cvtss_f32(s);
    for (; i < n; i++) {
        uint16_t v;
        memcpy(&v, (const unsigned char *)h + 2 * i, 2);
        r += q[i] * cg_vec_f16_to_f32(v);
    }
    return r;
}

// q (n,) f32 . x (n,) int8: 16 lanes in two accumulators, 16 bytes widened to two 8 x f32.
__attribute__((target("avx2,fma"))) static float dot_i8_avx2(const float *q, const int8_t *x,
                                                              size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(x + i));
        __m256 x0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
        __m256 x1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b, 8)));
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), x0, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), x1, a1);
    }
    __m256 a = _mm256_add_ps(a0, a1);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    float r = _mm_cvtss_f32(s);
    for (; i < n; i++) r += q[i] * (float)x[i];
    return r;
}

// cg_vec_quant8 for n % 8 == 0: the same grid and the same rounding (round to nearest even,
// as nearbyintf in the default mode), the residual summed in double four lanes at a time.
__attribute__((target("avx2,fma,f16c"))) static float quant8_avx2(const uint16_t *h, float scale,
                                                                  size_t n, int8_t *x8,
                                                                  double *r2) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m128i expo = _mm_set1_epi16(0x7c00);
    __m256 m = _mm256_setzero_ps();
    __m128i bad = _mm_setzero_si128();
    for (size_t i = 0; i < n; i += 8) {
        __m128i hv = _mm_loadu_si128((const __m128i *)(h + i));
        bad = _mm_or_si128(bad, _mm_cmpeq_epi16(_mm_and_si128(hv, expo), expo));
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_cvtph_ps(hv)));
    }
    *r2 = 0.0;
    if (_mm_movemask_epi8(bad)) return NAN;
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    float inv, s8 = q8_step(_mm_cvtss_f32(m4) * scale, &inv);
    if (!isfinite(s8) || !isfinite(inv)) return NAN;
    const __m256 vs = _mm256_set1_ps(scale), vi = _mm256_set1_ps(inv);
    const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
    const __m256d ds = _mm256_set1_pd((double)scale), d8 = _mm256_set1_pd((double)s8);
    __m256d acc = _mm256_setzero_pd();
    for (size_t i = 0; i < n; i += 8) {
        __m256 y = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i)));
        __m256 t = _mm256_round_ps(_mm256_mul_ps(_mm256_mul_ps(vs, y), vi),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        t = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
        __m256i ti = _mm256_cvtps_epi32(t);
        __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(ti), _mm256_extracti128_si256(ti, 1));
        _mm_storel_epi64((__m128i *)(void *)(x8 + i), _mm_packs_epi16(w, w));
        for (int half = 0; half < 2; half++) {
            __m256d yd = _mm256_cvtps_pd(half ? _mm256_extractf128_ps(y, 1) : _mm256_castps256_ps128(y));
            __m256d td = _mm256_cvtps_pd(half ? _mm256_extractf128_ps(t, 1) : _mm256_castps256_ps128(t));
            __m256d e = _mm256_sub_pd(_mm256_mul_pd(ds, yd), _mm256_mul_pd(d8, td));
            acc = _mm256_add_pd(acc, _mm256_mul_pd(e, e));
        }
    }
    __m128d a2 = _mm_add_pd(_mm256_castpd256_pd128(acc), _mm256_extractf128_pd(acc, 1));
    *r2 = _mm_cvtsd_f64(_mm_add_sd(a2, _mm_unpackhi_pd(a2, a2)));
    return s8;
}

// Converts the first multiple of 8 of n halves; returns how many.
__attribute__((target("avx2,f16c"))) static size_t f16_to_f32_avx2(const uint16_t *h, float *out,
                                                                   size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    return i;
}
#endif

static bool g_simd;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void pick_isa(void) {
#ifdef VEC_X86
    __builtin_cpu_init();
    const char *env = getenv("CHINGU_ISA");
    // F16C from cpuid leaf 1 (ECX bit 29): clang's __builtin_cpu_supports does not know "f16c".
    unsigned a = 0, b = 0, c = 0, d = 0;
    const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && ((c >> 29) & 1);
    g_simd = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c &&
             !(env && strcmp(env, "generic") == 0);
#endif
}

bool cg_vec_simd(void) {
    pthread_once(&g_once, pick_isa);
    return g_simd;
}

float cg_vec_dot_f16(const float *q, const uint16_t *h, size_t n) {
#ifdef VEC_X86
    if (cg_vec_simd()) return dot_f16_avx2(q, h, n);
#endif
    return cg_vec_dot_f16_ref(q, h, n);
}

void cg_vec_f16_to_f32_n(const uint16_t *h, float *out, size_t n) {
    size_t i = 0;
#ifdef VEC_X86
    if (cg_vec_simd()) i = f16_to_f32_avx2(h, out, n);
#endif
    for (; i < n; i++) {
        uint16_t v;
        memcpy(&v, (const unsigned char *)h + 2 * i, 2);
        out[i] = cg_vec_f16_to_f32(v);
    }
}

float cg_vec_dot_i8_ref(const float *q, const int8_t *x, size_t n) {
    float acc[4] = {0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) acc[k] += q[i + (size_t)k] * (float)x[i + (size_t)k];
    for (; i < n; i++) acc[0] += q[i] * (float)x[i];
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

float cg_vec_dot_i8(const float *q, const int8_t *x, size_t n) {
#ifdef VEC_X86
    if (cg_vec_simd()) return dot_i8_avx2(q, x, n);
#endif
    return cg_vec_dot_i8_ref(q, x, n);
}

float cg_vec_quant8_ref(const uint16_t *h, float scale, size_t n, int8_t *x8, double *r2) {
    float m = 0.0f;
    *r2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        uint16_t v;
        memcpy(&v, (const unsigned char *)h + 2 * i, 2);
        if ((v & 0x7c00u) == 0x7c00u) return NAN;  // inf or NaN half
        float a = fabsf(cg_vec_f16_to_f32(v));
        m = a > m ? a : m;
    }
    float inv, s8 = q8_step(m * scale, &inv);
    if (!isfinite(s8) || !isfinite(inv)) return NAN;
    for (size_t i = 0; i < n; i++) {
        uint16_t v;
        memcpy(&v, (const unsigned char *)h + 2 * i, 2);
        float y = cg_vec_f16_to_f32(v), t = nearbyintf(scale * y * inv);
        t = t > 127.0f ? 127.0f : t < -127.0f ? -127.0f : t;
        x8[i] = (int8_t)t;
        double e = (double)scale * (double)y - (double)s8 * (double)t;
        *r2 += e * e;
    }
    return s8;
}

float cg_vec_quant8(const uint16_t *h, float scale, size_t n, int8_t *x8, double *r2) {
#ifdef VEC_X86
    if (cg_vec_simd() && n % 8 == 0) return quant8_avx2(h, scale, n, x8, r2);
#endif
    return cg_vec_quant8_ref(h, scale, n, x8, r2);
}

typedef struct hash_ctx { float *out; int n_embd; } hash_ctx;

static int hash_token(void *user, const char *tok, size_t n, size_t start, size_t end) {
    hash_ctx *c = user;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)tok[i];
        h *= 1099511628211ull;
    }
    c->out[(h >> 1) % (uint64_t)c->n_embd] += (h & 1) ? 1.0f : -1.0f;
    return 0;
}

cg_status cg_vec_embed_hashed(void *user, const char *text, size_t n, float *out, int n_embd,
                              cg_err *err) {
    if (n_embd <= 0) return cg_err_set(err, CG_ERR_INVALID, "vec: n_embd %d must be > 0", n_embd);
    memset(out, 0, (size_t)n_embd * sizeof *out);
    hash_ctx c = {out, n_embd};
    if (cg_cjk_tokenize(text, n, hash_token, &c) != 0)
        return cg_err_set(err, CG_ERR_NOMEM, "vec: out of memory tokenizing");
    float s = 0.0f;
    for (int i = 0; i < n_embd; i++) s += out[i] * out[i];
    if (s > 0.0f) {
        float inv = 1.0f / sqrtf(s);
        for (int i = 0; i < n_embd; i++) out[i] *= inv;
    }
    return CG_OK;
}
