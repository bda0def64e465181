// neon.h — the AArch64 NEON kernels (src/kern/arm, built only for aarch64). Signatures and
// contracts are the traits' (quant.h) and qops.h's; the scalar twins are in quant/ref.h.
// Pure functions, thread-safe.
#ifndef CG_KERN_ARM_NEON_H
#define CG_KERN_ARM_NEON_H

#include <stdint.h>

#include "kern/kern.h"
#include "kern/qops.h"

void cg_neon_vec_dot_q4_0(int64_t n, float *s, const void *x, const void *y);  // y: Q8_0
void cg_neon_vec_dot_q8_0(int64_t n, float *s, const void *x, const void *y);  // y: Q8_0
void cg_neon_vec_dot_q4_K(int64_t n, float *s, const void *x, const void *y);  // y: Q8_K
void cg_neon_vec_dot_q6_K(int64_t n, float *s, const void *x, const void *y);  // y: Q8_K
void cg_neon_vec_dot_f32(int64_t n, float *s, const void *x, const void *y);
void cg_neon_vec_dot_f16(int64_t n, float *s, const void *x, const void *y);

// Byte-identical with the traits' from_f32_act of Q8_0 / Q8_K (finite input).
void cg_neon_quant_q8_0(const float *src, void *dst, int64_t n);
void cg_neon_quant_q8_K(const float *src, void *dst, int64_t n);

// The NEON cg_qops table (entries it lacks fall back to the reference). Borrowed static data.
const cg_qops *cg_qops_neon(void);

// The NEON compute-op table (kern_neon.c). Borrowed static data.
const cg_kern *cg_kern_neon(void);

#endif
