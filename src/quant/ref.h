// ref.h — the scalar reference kernels of every implemented format (the oracle ISA kernels must
// match), one set per format, with the signatures of the traits table (quant.h):
//
//   cg_<fmt>_to_f32(src, dst, n)       src: n/blck blocks of <fmt>          -> dst: n floats
//   cg_<fmt>_from_f32(src, dst, n)     src: n floats -> dst: n/blck blocks (the weight quantizer,
//                                      byte-identical with ggml's reference quantizer)
//   cg_<fmt>_vec_dot(n, s, x, y)       *s = x (n elems of <fmt>) · y (n elems of its vec_dot type)
//
// Preconditions (not checked here; cg_quant_row & co. in quant.h check them): n >= 0 and a multiple
// of the block size, buffers large enough, no aliasing between src and dst, pointers aligned for
// the block struct (blocks.h). Any float input, including NaN and Inf, is defined behaviour (the
// output is then unspecified but no trap or UB happens). All functions are pure and thread-safe.
#ifndef CG_QUANT_REF_H
#define CG_QUANT_REF_H

#include <stdint.h>

#include "quant/blocks.h"

#define CG_DECL_TO(f) void cg_##f##_to_f32(const void *src, float *dst, int64_t n);
#define CG_DECL_FROM(f) void cg_##f##_from_f32(const float *src, void *dst, int64_t n);
#define CG_DECL_DOT(f) void cg_##f##_vec_dot(int64_t n, float *s, const void *x, const void *y);

// Plain types (f16.c). F32 "conversion" is a copy.
void cg_f32_copy_to_f32(const void *src, float *dst, int64_t n);
void cg_f32_copy_from_f32(const float *src, void *dst, int64_t n);
CG_DECL_DOT(f32)
CG_DECL_DOT(f16)   // y: F16
CG_DECL_DOT(bf16)  // y: BF16

// Legacy 32-element blocks (legacy.c).
CG_DECL_TO(q4_0) CG_DECL_FROM(q4_0) CG_DECL_DOT(q4_0)  // y: Q8_0
CG_DECL_TO(q4_1) CG_DECL_FROM(q4_1) CG_DECL_DOT(q4_1)  // y: Q8_1
CG_DECL_TO(q5_0) CG_DECL_FROM(q5_0) CG_DECL_DOT(q5_0)  // y: Q8_0
CG_DECL_TO(q5_1) CG_DECL_FROM(q5_1) CG_DECL_DOT(q5_1)  // y: Q8_1
CG_DECL_TO(q8_0) CG_DECL_FROM(q8_0) CG_DECL_DOT(q8_0)  // y: Q8_0
CG_DECL_TO(q8_1) CG_DECL_FROM(q8_1)
CG_DECL_TO(iq4_nl) CG_DECL_DOT(iq4_nl)                 // y: Q8_0

// Activation quantizers: what ggml's CPU backend (AVX2 path) applies to an activation row before a
// dot product. Q8_0/Q8_1 scale by 127/amax and round half to even (the weight quantizers above use
// 1/d and round half away from zero); results differ from the weight path only on rare ties.
void cg_q8_0_from_f32_act(const float *src, void *dst, int64_t n);
void cg_q8_1_from_f32_act(const float *src, void *dst, int64_t n);

// K-quants, 256-element super-blocks (kquants.c: dequantize, dot; kquant_ref.c: quantizers).
CG_DECL_TO(q2_K) CG_DECL_FROM(q2_K) CG_DECL_DOT(q2_K)  // y: Q8_K
CG_DECL_TO(q3_K) CG_DECL_FROM(q3_K) CG_DECL_DOT(q3_K)  // y: Q8_K
CG_DECL_TO(q4_K) CG_DECL_FROM(q4_K) CG_DECL_DOT(q4_K)  // y: Q8_K
CG_DECL_TO(q5_K) CG_DECL_FROM(q5_K) CG_DECL_DOT(q5_K)  // y: Q8_K
CG_DECL_TO(q6_K) CG_DECL_FROM(q6_K) CG_DECL_DOT(q6_K)  // y: Q8_K
CG_DECL_TO(q8_K) CG_DECL_FROM(q8_K)                    // Q8_K: activations only (also the act path)
CG_DECL_TO(iq4_xs) CG_DECL_DOT(iq4_xs)                 // y: Q8_K

#undef CG_DECL_TO
#undef CG_DECL_FROM
#undef CG_DECL_DOT

#endif
