// expf.h — e^x for floats, bit-identical with glibc's expf (2.28 on; its FMA build, __expf_fma,
// which x86-64 machines with FMA run), on every platform, as a scalar function and as the pieces
// a SIMD version needs.
//
// Why our own: the F16 online attention path (ggml's flash-attention order) takes two exps per key
// and head, and ggml takes them with libm's expf — one call at a time, ~20 % of decode attention at
// any depth. With the algorithm written out here the AVX2 kernel evaluates them four at a time in
// double lanes with the same operations in the same order, so it stays bit-identical with the
// reference (which uses cg_expf) and, through it, with llama.cpp on glibc.
//
// The algorithm (glibc's e_expf.c, from ARM's optimized-routines): with N = 32,
//   z = x·N/ln2 in double; k = round(z) via the shift trick (kd = fma(N/ln2, x, SHIFT), whose low
//   bits hold k); r = fma(N/ln2, x, −(kd − SHIFT)) (|r| ≤ 1/2); s = 2^(k/N) from a 32-entry table
//   (CG_EXPF_TAB[k mod N] plus k << 47 in the exponent field); y = (fma(r, C0, C1)·r² +
//   fma(r, C2, 1))·s with the two outer steps fused as glibc's FMA build fuses them; (float) y.
// Inputs with |x| ≥ 88 (top 12 bits of the float above CG_EXPF_ABSTOP), ±inf and NaN take
// cg_expf's special cases, glibc's: −inf → 0, NaN/+inf → x + x, x > 88.72… → inf,
// x < −103.97… → 0, x < −103.28… → 2^−149, else the same formula.
// No state; the table is constant.
#ifndef CG_KERN_EXPF_H
#define CG_KERN_EXPF_H

#include <stdint.h>

#define CG_EXPF_INVLN2N 0x1.71547652b82fep+5   // N / ln 2
#define CG_EXPF_SHIFT 0x1.8p+52                // 1.5 · 2^52: rounds z to an integer in the low bits
#define CG_EXPF_C0 0x1.c6af84b912394p-20       // the polynomial for 2^(r/N) − 1, scaled by N
#define CG_EXPF_C1 0x1.ebfce50fac4f3p-13
#define CG_EXPF_C2 0x1.62e42ff0c52d6p-6
#define CG_EXPF_ABSTOP 0x42a                   // (bits >> 20) & 0x7ff above this: |x| ≥ 88 or not finite

// Bits of 2^(i/32) (the nearest double) minus i << 47, i = 0..31.
extern const uint64_t CG_EXPF_TAB[32];

float cg_expf(float x);

#endif
