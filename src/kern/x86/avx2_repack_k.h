// avx2_repack_k.h — AVX2 kernels over the repacked K-quant layouts (kern/repack.h: Q4_K x8, Q6_K x8),
// compiled with -mavx2 -mfma -mf16c. Call only when cg_cpu_isa_available(CG_ISA_AVX2) is true.
//
// Same contract and shapes as the scalar reference cg_repack_q4_Kx8_matmul_ref, and bit-identical
// with it (llama.cpp's q4_K_8x8 order per element: acc = fma((float)isum_b, d_w·d_a, acc) and
// accm = fma((float)imin_b, dmin_w·d_a, accm) over super-blocks b, then acc − accm). Tokens go in
// tiles of 4 (each weight block unpacked once for the 4 activation rows: the "gemm"), the rest in
// one tile of 1..3 (one token: the "gemv"); an element's value does not depend on its tile. Pure,
// thread-safe; every pointer is borrowed for the call.
#ifndef CG_KERN_X86_AVX2_REPACK_K_H
#define CG_KERN_X86_AVX2_REPACK_K_H

#include <stddef.h>
#include <stdint.h>

#include "kern/repack.h"

// Y[k·ldy + r] = W row r · X_k for r in [r0, r1) (multiples of 8) and k < n_tok, with X_k the Q8_K
// row xq + k·xq_row (its bsums give the min terms). n_in a multiple of 256.
// Y (n_tok, ldy)[:, r0:r1] = X (n_tok, n_in) @ W[r0:r1]^T
void cg_avx2_q4_Kx8_matmul(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                           int64_t ldy, int64_t r0, int64_t r1);

// The same over the Q6_K x8 layout (avx2_repack_q6k.c), bit-identical with
// cg_repack_q6_Kx8_matmul_ref (per element acc = fma((float)isum_b, d_w·d_a, acc) over b).
// Y (n_tok, ldy)[:, r0:r1] = X (n_tok, n_in) @ W[r0:r1]^T
void cg_avx2_q6_Kx8_matmul(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                           int64_t ldy, int64_t r0, int64_t r1);

#endif
