// qmatmul.c — the matmul of the SIMD compute-op tables, written once over a cg_qops kernel set:
// activations quantized once per call into the weight type's vec_dot type (split by tokens across
// the pool for batches), then weight rows split across the pool in whole 16-row tiles: one token
// runs cg_qops_matvec (prefetching rows), several run cg_qops_matmul (row tiles × groups of four
// tokens through vec_dot_n). Tensor views and buffers are borrowed; no state.
#include "kern/qmatmul.h"

#include <stdint.h>

#include "base/num.h"
#include "quant/quant.h"


typedef struct mm_job {
    const cg_tensor *W;
    uint32_t t;
    const cg_qops *ops;
    cg_from_f32_fn quant;
    const float *X;
    unsigned char *xq;
    size_t xq_row;
    int64_t n_tok;
    float *Y;
} mm_job;

static void quant_worker(void *ctx, int i_thread, int n_thread) {
    const mm_job *j = ctx;
    int64_t b, e;
    cg_pool_split(j->n_tok, i_thread, n_thread, &b, &e);
    for (int64_t k = b; k < e; k++) j->quant(j->X + k * j->W->ne[0], j->xq + (size_t)k * j->xq_row, j->W->ne[0]);
}

static void mm_worker(void *ctx, int i_thread, int n_thread) {
    const mm_job *j = ctx;
    const cg_tensor *W = j->W;
    // Split rows in multiples of 16 so each thread's tiles stay whole.
    int64_t b, e, n_tiles = (W->ne[1] + 15) / 16;
    cg_pool_split(n_tiles, i_thread, n_thread, &b, &e);
    b *= 16;
    e = e * 16 < W->ne[1] ? e * 16 : W->ne[1];
    if (b >= e) return;
    if (j->n_tok == 1)
        cg_qops_matvec(j->ops, j->t, W->data, W->row_bytes, W->ne[0], j->xq, j->Y + b, b, e);
    else
        cg_qops_matmul(j->ops, j->t, W->data, W->row_bytes, W->ne[0], j->xq, j->xq_row, j->n_tok, j->Y, W->ne[1], b, e);
}

cg_status cg_kern_qops_matmul(const cg_qops *ops, const cg_tensor *W, const float *X, int64_t n_tok, float *Y,
                              cg_arena *arena, cg_pool *pool, cg_err *err) {
    const cg_qtype_traits *tr = cg_qtype_get(W->type);
    if (!tr) return cg_err_set(err, CG_ERR_UNSUPPORTED, "matmul: tensor '%s' has unknown type %u", W->name, W->type);
    const cg_qtype_traits *vt = cg_qtype_get(tr->vec_dot_type);
    mm_job j = {.W = W, .t = W->type, .ops = ops, .X = X, .n_tok = n_tok, .Y = Y};
    j.quant = vt ? cg_qops_quant_act(ops, tr->vec_dot_type) : NULL;
    if (!cg_qops_vec_dot(ops, W->type) || !j.quant)
        return cg_err_set(err, CG_ERR_UNSUPPORTED, "matmul: no dot product for tensor '%s' of type %s", W->name,
                          tr->name);
    const int64_t n_in = W->ne[0];
    if (n_in % vt->blck_size || n_in % tr->blck_size)
        return cg_err_set(err, CG_ERR_FORMAT, "matmul: '%s' row of %lld is not a multiple of %s blocks", W->name,
                          (long long)n_in, vt->name);
    if (n_tok <= 0) return CG_OK;
    j.xq_row = (size_t)(n_in / vt->blck_size) * vt->type_size;
    const bool threaded = pool && cg_pool_size(pool) > 1 && W->ne[1] * n_tok * n_in >= 4096;
    if (tr->vec_dot_type == CG_QTYPE_F32) {
        j.xq = (unsigned char *)(uintptr_t)X;   // already the partner type; read-only below
    } else {
        size_t n_bytes;
        if (!cg_mul_size(j.xq_row, (size_t)n_tok, &n_bytes))
            return cg_err_set(err, CG_ERR_LIMIT, "matmul: '%s' activation size overflows", W->name);
        j.xq = cg_arena_alloc(arena, n_bytes, 64);
        if (!j.xq) return cg_err_set(err, CG_ERR_NOMEM, "matmul: out of memory for '%s' activations", W->name);
        if (threaded && n_tok >= 4)
            cg_pool_run(pool, quant_worker, &j);
        else
            quant_worker(&j, 0, 1);
    }
    if (threaded)
        cg_pool_run(pool, mm_worker, &j);
    else
        mm_worker(&j, 0, 1);
    return CG_OK;
}

