// avx2.h — the AVX2/FMA/F16C kernels (src/kern/x86, compiled with -mavx2 -mfma -mf16c).
//
// Call these only when cg_cpu_isa_available(CG_ISA_AVX2) is true; otherwise they fault. Signatures
// and contracts are those of the traits (quant.h: cg_vec_dot_fn, cg_from_f32_fn) and of
// cg_vec_dot_n_fn (qops.h); the scalar twins are in quant/ref.h. Pure functions, thread-safe.
#ifndef CG_KERN_X86_AVX2_H
#define CG_KERN_X86_AVX2_H

#include <stddef.h>
#include <stdint.h>

#include "kern/kern.h"
#include "kern/qops.h"

#define CG_AVX2_DOT(f) void cg_avx2_vec_dot_##f(int64_t n, float *s, const void *x, const void *y);
CG_AVX2_DOT(q4_0) CG_AVX2_DOT(q5_0) CG_AVX2_DOT(q8_0)   // y: Q8_0
CG_AVX2_DOT(q4_1) CG_AVX2_DOT(q5_1)                     // y: Q8_1
CG_AVX2_DOT(q2_K) CG_AVX2_DOT(q3_K) CG_AVX2_DOT(q4_K) CG_AVX2_DOT(q5_K) CG_AVX2_DOT(q6_K)  // y: Q8_K
CG_AVX2_DOT(f32) CG_AVX2_DOT(f16) CG_AVX2_DOT(bf16)     // y: same type
#undef CG_AVX2_DOT

// One weight row against n_y ≤ CG_QOPS_MAX_NY activation rows (see cg_vec_dot_n_fn).
void cg_avx2_vec_dot_n_q4_0(int64_t n, float *s, const void *x, const void *y, size_t y_stride, int n_y);
void cg_avx2_vec_dot_n_q8_0(int64_t n, float *s, const void *x, const void *y, size_t y_stride, int n_y);
void cg_avx2_vec_dot_n_q4_K(int64_t n, float *s, const void *x, const void *y, size_t y_stride, int n_y);
void cg_avx2_vec_dot_n_q6_K(int64_t n, float *s, const void *x, const void *y, size_t y_stride, int n_y);
// Two weight rows against n_y ≤ CG_QOPS_MAX_NY activation rows (see cg_vec_dot_2n_fn).
void cg_avx2_vec_dot_2n_q4_0(int64_t n, float *s, const void *x0, const void *x1, const void *y, size_t y_stride,
                             int n_y);
void cg_avx2_vec_dot_2n_q8_0(int64_t n, float *s, const void *x0, const void *x1, const void *y, size_t y_stride,
                             int n_y);
// Two weight rows against one activation row, bit-identical with vec_dot (see cg_vec_dot_x2_fn).
void cg_avx2_vec_dot_x2_q5_0(int64_t n, float s[2], const void *x0, const void *x1, const void *y);

// y[i] = cg_expf(x[i]) (kern/expf.h: glibc's expf), eight at a time in double lanes, bit-identical;
// the decode attention's softmax runs the same lanes inline.
void cg_avx2_expf(const float *x, float *y, int64_t n);

// Activation quantizers, byte-identical with the traits' from_f32_act of Q8_0, Q8_1, Q8_K, F16.
void cg_avx2_quant_q8_0(const float *src, void *dst, int64_t n);
void cg_avx2_quant_q8_1(const float *src, void *dst, int64_t n);
void cg_avx2_quant_q8_K(const float *src, void *dst, int64_t n);
void cg_avx2_quant_f16(const float *src, void *dst, int64_t n);

// The AVX2 cg_qops table. Borrowed static data.
const cg_qops *cg_qops_avx2(void);

// The AVX2 compute-op table (kern_avx2.c). Borrowed static data.
const cg_kern *cg_kern_avx2(void);

#endif
