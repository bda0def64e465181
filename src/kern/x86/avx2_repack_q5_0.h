// avx2_repack_q5_0.h — the AVX2 kernel over the repacked Q5_0 layout (kern/repack.h: Q5_0 x8),
// compiled with -mavx2 -mfma -mf16c. Call only when cg_cpu_isa_available(CG_ISA_AVX2) is true.
//
// Same contract and shapes as the scalar reference cg_repack_q5_0x8_matmul_ref and bit-identical
// with it — and so, per row, with the stored-layout cg_avx2_vec_dot_q5_0 / _x2_q5_0 (their eight-lane
// float order, kern/repack.h). Tokens go in tiles of up to 4 (each weight block unpacked once for
// the tile's activation rows: the "gemm"), one token being the "gemv" (decode); an element's value
// does not depend on its tile. Pure, thread-safe; every pointer is borrowed for the call.
#ifndef CG_KERN_X86_AVX2_REPACK_Q5_0_H
#define CG_KERN_X86_AVX2_REPACK_Q5_0_H

#include <stddef.h>
#include <stdint.h>

#include "kern/repack.h"

// Y[k·ldy + r] = W row r · X_k for r in [r0, r1) (multiples of 8) and k < n_tok, with X_k the Q8_0
// row xq + k·xq_row (quants in −127..127, what every quantizer here writes). n_in a multiple of 32.
// Y (n_tok, ldy)[:, r0:r1] = X (n_tok, n_in) @ W[r0:r1]^T
void cg_avx2_q5_0x8_matmul(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                           int64_t ldy, int64_t r0, int64_t r1);

#endif
