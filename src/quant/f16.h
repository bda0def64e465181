// f16.h — scalar IEEE binary16 and bfloat16 conversions (the reference; no F16C intrinsics).
//
// cg_f16_to_f32 / cg_bf16_to_f32 are exact. cg_f32_to_f16 rounds to nearest, ties to even: values
// at or above 65520 in magnitude become ±Inf, values below 2^-14 become subnormals (or ±0), and any
// NaN becomes the quiet NaN 0x7E00 with the input's sign (what ggml's portable converter stores).
// cg_f32_to_bf16 is ggml's rule: NaN keeps sign, exponent and the top 7 mantissa bits with the quiet
// bit forced on; everything else rounds to nearest even (subnormals are not flushed; overflow gives
// ±Inf). Header-only pure functions plus row converters in f16.c; all thread-safe.
#ifndef CG_QUANT_F16_H
#define CG_QUANT_F16_H

#include <stdint.h>
#include <string.h>

typedef uint16_t cg_f16;   // raw binary16 bits, as GGUF stores them (little-endian)
typedef uint16_t cg_bf16;  // raw bfloat16 bits = the upper half of a float32

static inline uint32_t cg_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float cg_f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float cg_f16_to_f32(cg_f16 h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu;
    const uint32_t man = h & 0x3FFu;
    if (exp == 0x1F) return cg_f32_from_bits(sign | 0x7F800000u | (man << 13));  // Inf / NaN
    if (exp != 0) return cg_f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
    // Zero or subnormal: man · 2^-24, exact in float.
    return cg_f32_from_bits(sign | cg_f32_bits((float)man * 0x1p-24f));
}

static inline cg_f16 cg_f32_to_f16(float f) {
    const uint32_t u = cg_f32_bits(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return sign | 0x7E00u;        // NaN
    if (a >= 0x477FF000u) return sign | 0x7C00u;       // >= 65520 rounds to Inf (and Inf itself)
    if (a >= 0x38800000u) {                            // a normal half: >= 2^-14
        uint32_t h = ((a >> 23) - 112u) << 10 | ((a >> 13) & 0x3FFu);
        const uint32_t rest = a & 0x1FFFu;
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;  // a carry into the exponent is right
        return (cg_f16)(sign | h);
    }
    // Subnormal half (units of 2^-24) or zero. value = m · 2^(e-150); in units: m · 2^(e-126).
    const uint32_t e = a >> 23;
    if (e < 102) return sign;                          // below 2^-25 (incl. float subnormals): ±0
    const uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126u - e;                   // 14..24
    uint32_t q = m >> shift;
    const uint32_t rest = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rest > half || (rest == half && (q & 1u))) q++;
    return (cg_f16)(sign | q);
}

static inline float cg_bf16_to_f32(cg_bf16 h) { return cg_f32_from_bits((uint32_t)h << 16); }

static inline cg_bf16 cg_f32_to_bf16(float f) {
    const uint32_t u = cg_f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (cg_bf16)((u >> 16) | 0x40u);  // quiet the NaN
    return (cg_bf16)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// Row converters: n elements, src and dst do not overlap. The void pointers hold cg_f16 / cg_bf16
// arrays (2-byte aligned), so these also serve as the traits' to_f32 / from_f32.
void cg_f16_row_to_f32(const void *src, float *dst, int64_t n);
void cg_f32_row_to_f16(const float *src, void *dst, int64_t n);
void cg_bf16_row_to_f32(const void *src, float *dst, int64_t n);
void cg_f32_row_to_bf16(const float *src, void *dst, int64_t n);

#endif
