// expf.c — cg_expf (kern/expf.h): the special cases, then the formula with explicit fma() where
// glibc's FMA build fuses (fma() is exact on every platform, so the result does not depend on the
// compiler's contraction or the target's FMA unit).
#include "kern/expf.h"

#include <math.h>
#include <string.h>

const uint64_t CG_EXPF_TAB[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
    0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
    0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
    0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
    0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
    0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};

float cg_expf(float x) {
    uint32_t ix;
    memcpy(&ix, &x, sizeof ix);
    const uint32_t abstop = (ix >> 20) & 0x7ff;
    if (abstop > CG_EXPF_ABSTOP) {
        if (ix == 0xff800000u) return 0.0f;    // −inf
        if (abstop >= 0x7f8) return x + x;     // NaN, +inf
        if (x > 0x1.62e42ep6f) return HUGE_VALF;
        if (x < -0x1.9fe368p6f) return 0.0f;
        if (x < -0x1.9d1d9ep6f) return 0x1p-149f;
    }
    const double xd = x;
    const double kd0 = fma(CG_EXPF_INVLN2N, xd, CG_EXPF_SHIFT);
    uint64_t ki;
    memcpy(&ki, &kd0, sizeof ki);
    const double kd = kd0 - CG_EXPF_SHIFT;
    const double r = fma(CG_EXPF_INVLN2N, xd, -kd);
    const uint64_t t = CG_EXPF_TAB[ki % 32] + (ki << 47);
    double s;
    memcpy(&s, &t, sizeof s);
    const double z = fma(r, CG_EXPF_C0, CG_EXPF_C1);
    const double y = fma(z, r * r, fma(r, CG_EXPF_C2, 1.0));
    return (float)(y * s);
}
