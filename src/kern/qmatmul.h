// qmatmul.h — kern.h's matmul over any cg_qops kernel set (used by the AVX2 and NEON tables).
//
// Same contract as cg_kern.matmul: Y (n_tok, n_out) = X (n_tok, n_in) @ W^T with activations
// first converted to W's vec_dot type (scratch from `arena`), rows split across `pool` (may be
// NULL). Errors: CG_ERR_UNSUPPORTED (no dot product for W's type; the message names the tensor),
// CG_ERR_FORMAT (row length not a multiple of the partner's block), CG_ERR_LIMIT, CG_ERR_NOMEM.
// Pointers are borrowed for the call; the pool is driven by the calling thread only.
#ifndef CG_KERN_QMATMUL_H
#define CG_KERN_QMATMUL_H

#include "kern/kern.h"
#include "kern/qops.h"

cg_status cg_kern_qops_matmul(const cg_qops *ops, const cg_tensor *W, const float *X, int64_t n_tok, float *Y,
                              cg_arena *arena, cg_pool *pool, cg_err *err);

// kern.h's matmul_multi over the same kernel set (one activation conversion per vec_dot type, one
// pool hand-off for all the weights' rows).
cg_status cg_kern_qops_matmul_multi(const cg_qops *ops, const cg_tensor *const *W, int n_w, const float *X,
                                    int64_t n_tok, float *const *Y, cg_arena *arena, cg_pool *pool, cg_err *err);

#endif
