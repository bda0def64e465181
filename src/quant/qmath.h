// qmath.h — small numeric helpers shared by the quantizer files (internal to src/quant).
//
// Every float -> integer conversion in the quantizers goes through these, so NaN, Inf and huge
// values never reach a C conversion whose result is undefined. For in-range inputs they are exactly
// the conversions ggml's reference code performs. Header-only, pure.
#ifndef CG_QUANT_QMATH_H
#define CG_QUANT_QMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

// Round to nearest, ties to even, by adding 1.5·2^23 and reading the mantissa — the exact trick
// ggml's K-quantizers use, including its (defined, meaningless) results for |v| > 2^22 and NaN.
static inline int q_nearest_int(float v) {
    const float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007FFFFF) - 0x00400000;
}

// C's truncating (int)v for v in int range; NaN -> 0 and saturation outside instead of UB.
static inline int q_trunc(float v) {
    if (!(v == v)) return 0;
    if (v >= 2147483520.0f) return INT32_MAX;
    if (v <= -2147483648.0f) return INT32_MIN;
    return (int)v;
}

// Saturating roundf (half away from zero) / rintf (half to even) into int8; NaN -> 0.
static inline int8_t q_round_away_i8(float v) {
    if (!(v == v)) return 0;
    const float r = roundf(v);
    return (int8_t)(r > 127.0f ? 127 : r < -128.0f ? -128 : (int)r);
}
static inline int8_t q_round_even_i8(float v) {
    if (!(v == v)) return 0;
    const float r = nearbyintf(v);  // default rounding mode: to nearest even
    return (int8_t)(r > 127.0f ? 127 : r < -128.0f ? -128 : (int)r);
}

// The 16 levels of the IQ4_NL / IQ4_XS non-linear 4-bit code.
static const int8_t Q_IQ4NL_VALUES[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static inline int q_clamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

#endif
