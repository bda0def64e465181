// kern_neon.c — the NEON compute-op table ("neon"), selected by cg_kern_get() on aarch64: matmul
// through kern/qmatmul.c over the NEON kernel set (formats without NEON kernels use the reference
// dot products inside the same pooled driver); rmsnorm, rope, attention (single and multi-query) and glu
// are the reference's. Static and immutable.
#include "kern/arm/neon.h"
#include "kern/kern.h"
#include "kern/qmatmul.h"

static cg_status neon_matmul(const cg_tensor *W, const float *X, int64_t n_tok, float *Y, cg_arena *arena,
                             cg_pool *pool, cg_err *err) {
    return cg_kern_qops_matmul(cg_qops_neon(), W, X, n_tok, Y, arena, pool, err);
}

static cg_status neon_matmul_multi(const cg_tensor *const *W, int n_w, const float *X, int64_t n_tok, float *const *Y,
                                cg_arena *arena, cg_pool *pool, cg_err *err) {
    return cg_kern_qops_matmul_multi(cg_qops_neon(), W, n_w, X, n_tok, Y, arena, pool, err);
}

static void neon_rmsnorm(const float *x, const float *w, int64_t n, float eps, float *y) {
    cg_kern_generic()->rmsnorm(x, w, n, eps, y);
}

static void neon_rope_table(int32_t pos, const cg_rope_params *rp, float *cs) {
    cg_kern_generic()->rope_table(pos, rp, cs);
}

static void neon_rope_apply(float *x, int n_head, int head_dim, const cg_rope_params *rp, const float *cs) {
    cg_kern_generic()->rope_apply(x, n_head, head_dim, rp, cs);
}

static void neon_attention(const cg_attn_args *a) { cg_kern_generic()->attention(a); }

static void neon_attention_multi(const cg_attn_args *a, int n_q) { cg_kern_generic()->attention_multi(a, n_q); }

static void neon_glu(cg_act_kind kind, const float *gate, const float *up, float *out, int64_t n) {
    cg_kern_generic()->glu(kind, gate, up, out, n);
}

static const cg_kern NEON = {
    .name = "neon",
    .matmul = neon_matmul,
    .matmul_multi = neon_matmul_multi,
    .rmsnorm = neon_rmsnorm,
    .rope_table = neon_rope_table,
    .rope_apply = neon_rope_apply,
    .attention = neon_attention,
    .attention_multi = neon_attention_multi,
    .glu = neon_glu,
};

const cg_kern *cg_kern_neon(void) { return &NEON; }
