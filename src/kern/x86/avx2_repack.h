// avx2_repack.h — AVX2 kernels over the repacked Q4_0 and Q8_0 layouts (kern/repack.h), compiled with
// -mavx2 -mfma -mf16c. Call only when cg_cpu_isa_available(CG_ISA_AVX2) is true.
//
// Same contract and shapes as the scalar reference cg_repack_q4_0x8_matmul_ref, and bit-identical
// with it (llama.cpp's per-element order: acc = fma((float)isum_b, d_w·d_a, acc) over blocks b).
// Tokens go in tiles of up to 8 (8 activation rows × 8 weight rows, each weight block unpacked once
// for the tile; one token: the "gemv"); the result of an element does not depend on the tile it
// was computed in. Pure, thread-safe; every
// pointer is borrowed for the call.
#ifndef CG_KERN_X86_AVX2_REPACK_H
#define CG_KERN_X86_AVX2_REPACK_H

#include <stddef.h>
#include <stdint.h>

#include "kern/repack.h"

// Y[k·ldy + r] = W row r · X_k for r in [r0, r1) (multiples of 8) and k < n_tok, with X_k the Q8_0
// row xq + k·xq_row and aux + k·(n_in/32) its side data (cg_repack_q8_0_aux); packed: NULL or the same
// activations chunk-packed (cg_q8_0_pack), which a call of more than 8 tokens reads instead.
// Y (n_tok, ldy)[:, r0:r1] = X (n_tok, n_in) @ W[r0:r1]^T
void cg_avx2_q4_0x8_matmul(const void *W, int64_t n_in, const void *xq, size_t xq_row, const cg_q8_0_aux *aux,
                           const void *packed, int64_t n_tok, float *Y, int64_t ldy, int64_t r0, int64_t r1);

// The same over the Q8_0 x8 layout, bit-identical with cg_repack_q8_0x8_matmul_ref;
// aux supplies only the activation scales (aux.d). The activation quants must lie in −127..127
// (what every Q8_0 quantizer here writes).
void cg_avx2_q8_0x8_matmul(const void *W, int64_t n_in, const void *xq, size_t xq_row, const cg_q8_0_aux *aux,
                           const void *packed, int64_t n_tok, float *Y, int64_t ldy, int64_t r0, int64_t r1);

#endif
