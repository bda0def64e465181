// qmatmul.c — the matmul of the SIMD compute-op tables, written once over a cg_qops kernel set:
// activations quantized once per call into each distinct vec_dot type of the weights (split by
// tokens across the pool for batches), then the rows of all the weights split across the pool in
// one hand-off, in whole 16-row tiles taken as pieces of the summed row bytes from a shared counter
// (large pieces first, then smaller ones: see mm_worker): one token runs cg_qops_matvec
// (prefetching rows), several run cg_qops_matmul (row tiles × groups of four tokens through
// vec_dot_n). Each output element goes through the same kernel whichever thread or call computes
// it, so matmul_multi equals separate matmuls bit for bit. Weights repacked at load
// (CG_LAYOUT_Q4_0_X8, CG_LAYOUT_Q5_0_X8, CG_LAYOUT_Q4_K_X8, CG_LAYOUT_Q6_K_X8, CG_LAYOUT_Q8_0_X8; kern/repack.h)
// take the table's q4_0x8 / q5_0x8 / q4_Kx8 / q6_Kx8 / q8_0x8 kernel (or the scalar reference) over
// the same row tiles (16 rows: whole 8-row groups); their Q8_0 activations get per-block side data
// (cg_q8_0_aux) computed with the quantization. Tensor views and buffers are borrowed; no state.
#include "kern/qmatmul.h"

#include <stdatomic.h>
#include <stdint.h>

#include "base/num.h"
#include "quant/quant.h"

enum { TILE = 16 };   // rows per unit of work (cg_qops_matmul's tile)

// Smallest piece of work (in bytes of weight rows) a thread takes from the shared counter: ~7 µs of
// one thread's decode stream, so the threads finish a matmul within about that of each other. (The
// cost used to count one row per 16-row tile, which made this 1 MiB of weights: every decode matmul
// below ~1 MiB — qwen2.5-0.5b's q, k, v and output projections — ran on one thread, and the last
// piece of the others could keep one thread waiting ~100 µs.)
enum { MIN_PIECE = 64 * 1024 };

typedef struct mm_job {
    const cg_qops *ops;
    int n_w;
    const cg_tensor *W[CG_KERN_MAX_MULTI];
    float *Y[CG_KERN_MAX_MULTI];
    int xq_of[CG_KERN_MAX_MULTI];              // which converted activation set weight w reads
    uint64_t cost0[CG_KERN_MAX_MULTI + 1];     // prefix sums of tiles × TILE × row bytes
    int n_xq;                                  // distinct vec_dot types
    cg_from_f32_fn quant[CG_KERN_MAX_MULTI];
    unsigned char *xq[CG_KERN_MAX_MULTI];
    size_t xq_row[CG_KERN_MAX_MULTI];
    cg_q8_0_aux *aux[CG_KERN_MAX_MULTI];       // NULL unless a repacked weight reads set q
    unsigned char *packed[CG_KERN_MAX_MULTI];  // set q chunk-packed (kern/repack.h) for a prefill, or NULL
    cg_q4_0x8_matmul_fn q4_0x8;                // the table's, or ref_q4_0x8
    cg_q4_0x8_matmul_fn q8_0x8;                // the table's, or ref_q8_0x8 (CG_LAYOUT_Q8_0_X8)
    cg_q4_Kx8_matmul_fn q4_Kx8;                // the table's, or the reference (CG_LAYOUT_Q4_K_X8)
    cg_q4_Kx8_matmul_fn q6_Kx8;                // the table's, or the reference (CG_LAYOUT_Q6_K_X8)
    cg_q4_Kx8_matmul_fn q5_0x8;                // the table's, or the reference (CG_LAYOUT_Q5_0_X8)
    const float *X;
    int64_t n_in, n_tok;
    atomic_uint_fast64_t next;                 // cost offset of the first piece not yet taken
} mm_job;

static void quant_worker(void *ctx, int i_thread, int n_thread) {
    const mm_job *j = ctx;
    int64_t b, e;
    cg_pool_split(j->n_tok, i_thread, n_thread, &b, &e);
    for (int q = 0; q < j->n_xq; q++) {
        if (j->quant[q])
            for (int64_t k = b; k < e; k++) j->quant[q](j->X + k * j->n_in, j->xq[q] + (size_t)k * j->xq_row[q], j->n_in);
        if (j->aux[q])
            for (int64_t k = b; k < e; k++)
                cg_repack_q8_0_aux(j->xq[q] + (size_t)k * j->xq_row[q], j->n_in, j->aux[q] + k * (j->n_in / 32));
        if (j->packed[q]) cg_q8_0_pack(j->xq[q], j->xq_row[q], j->aux[q], j->n_in, b, e, j->packed[q]);
    }
}

// The scalar reference in the kernel signature (it needs no side data).
static void ref_q4_0x8(const void *W, int64_t n_in, const void *xq, size_t xq_row, const cg_q8_0_aux *aux,
                       const void *packed, int64_t n_tok, float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    (void)aux;
    (void)packed;
    cg_repack_q4_0x8_matmul_ref(W, n_in, xq, xq_row, n_tok, Y, ldy, r0, r1);
}

static void ref_q8_0x8(const void *W, int64_t n_in, const void *xq, size_t xq_row, const cg_q8_0_aux *aux,
                       const void *packed, int64_t n_tok, float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    (void)aux;
    (void)packed;
    cg_repack_q8_0x8_matmul_ref(W, n_in, xq, xq_row, n_tok, Y, ldy, r0, r1);
}

// First tile of weight w whose cost offset reaches `at` (tile t starts at cost0[w] + t·TILE·row_bytes).
static int64_t tile_at(const mm_job *j, int w, uint64_t at) {
    const uint64_t c0 = j->cost0[w], rb = j->W[w]->row_bytes ? (uint64_t)TILE * j->W[w]->row_bytes : 1;
    const int64_t n_tiles = (j->W[w]->ne[1] + TILE - 1) / TILE;
    if (at <= c0) return 0;
    const uint64_t t = (at - c0 + rb - 1) / rb;
    return t < (uint64_t)n_tiles ? (int64_t)t : n_tiles;
}

// The tiles that start in [lo, hi) of the summed cost, for every weight they fall in.
static void mm_range(const mm_job *j, uint64_t lo, uint64_t hi) {
    for (int w = 0; w < j->n_w; w++) {
        if (j->cost0[w + 1] <= lo || j->cost0[w] >= hi) continue;
        const cg_tensor *W = j->W[w];
        int64_t b = tile_at(j, w, lo) * TILE, e = tile_at(j, w, hi) * TILE;
        if (e > W->ne[1]) e = W->ne[1];
        if (b >= e) continue;
        const int q = j->xq_of[w];
        if (W->layout == CG_LAYOUT_Q4_K_X8)   // Q8_K activations carry their bsums: no side data
            j->q4_Kx8(W->data, j->n_in, j->xq[q], j->xq_row[q], j->n_tok, j->Y[w], W->ne[1], b, e);
        else if (W->layout == CG_LAYOUT_Q6_K_X8)   // the same for Q6_K (kern/repack.h)
            j->q6_Kx8(W->data, j->n_in, j->xq[q], j->xq_row[q], j->n_tok, j->Y[w], W->ne[1], b, e);
        else if (W->layout == CG_LAYOUT_Q5_0_X8)   // Q8_0 activations; the kernel needs no side data
            j->q5_0x8(W->data, j->n_in, j->xq[q], j->xq_row[q], j->n_tok, j->Y[w], W->ne[1], b, e);
        else if (W->layout == CG_LAYOUT_Q4_0_X8)
            j->q4_0x8(W->data, j->n_in, j->xq[q], j->xq_row[q], j->aux[q], j->packed[q], j->n_tok, j->Y[w], W->ne[1], b, e);
        else if (W->layout == CG_LAYOUT_Q8_0_X8) {
            // Whole groups through the repacked kernel; the tail rows (stored, kern/repack.h) below.
            const int64_t n8 = W->ne[1] / 8 * 8, e8 = e < n8 ? e : n8;
            if (b < e8)
                j->q8_0x8(W->data, j->n_in, j->xq[q], j->xq_row[q], j->aux[q], j->packed[q], j->n_tok, j->Y[w], W->ne[1], b, e8);
            if (e <= n8) continue;
            if (b < n8) b = n8;
            if (j->n_tok == 1)
                cg_qops_matvec(j->ops, W->type, W->data, W->row_bytes, j->n_in, j->xq[q], j->Y[w] + b, b, e);
            else
                cg_qops_matmul(j->ops, W->type, W->data, W->row_bytes, j->n_in, j->xq[q], j->xq_row[q], j->n_tok,
                               j->Y[w], W->ne[1], b, e);
        } else if (j->n_tok == 1)
            cg_qops_matvec(j->ops, W->type, W->data, W->row_bytes, j->n_in, j->xq[q], j->Y[w] + b, b, e);
        else
            cg_qops_matmul(j->ops, W->type, W->data, W->row_bytes, j->n_in, j->xq[q], j->xq_row[q], j->n_tok, j->Y[w],
                           W->ne[1], b, e);
    }
}

// Threads take pieces until none is left, so a thread that started late or was preempted (a shared
// machine) leaves its share to the others instead of holding up the join; the first pieces are
// large and contiguous (a long prefetched stream each), the last ones small.
static void mm_worker(void *ctx, int i_thread, int n_thread) {
    mm_job *j = ctx;
    (void)i_thread;
    uint64_t lo, hi;
    while (cg_pool_take(&j->next, j->cost0[j->n_w], n_thread, MIN_PIECE, &lo, &hi)) mm_range(j, lo, hi);
}

cg_status cg_kern_qops_matmul_multi(const cg_qops *ops, const cg_tensor *const *W, int n_w, const float *X,
                                    int64_t n_tok, float *const *Y, cg_arena *arena, cg_pool *pool, cg_err *err) {
    if (n_w < 1 || n_w > CG_KERN_MAX_MULTI)
        return cg_err_set(err, CG_ERR_INVALID, "matmul: %d weights in one call (1..%d)", n_w, CG_KERN_MAX_MULTI);
    mm_job j = {.ops = ops, .n_w = n_w, .X = X, .n_in = W[0]->ne[0], .n_tok = n_tok,
                .q4_0x8 = ops->q4_0x8_matmul ? ops->q4_0x8_matmul : ref_q4_0x8,
                .q8_0x8 = ops->q8_0x8_matmul ? ops->q8_0x8_matmul : ref_q8_0x8,
                .q4_Kx8 = ops->q4_Kx8_matmul ? ops->q4_Kx8_matmul : cg_repack_q4_Kx8_matmul_ref,
                .q6_Kx8 = ops->q6_Kx8_matmul ? ops->q6_Kx8_matmul : cg_repack_q6_Kx8_matmul_ref,
                .q5_0x8 = ops->q5_0x8_matmul ? ops->q5_0x8_matmul : cg_repack_q5_0x8_matmul_ref};
    bool need_aux[CG_KERN_MAX_MULTI] = {false};
    uint32_t xq_type[CG_KERN_MAX_MULTI] = {0};
    uint64_t work = 0;
    for (int w = 0; w < n_w; w++) {
        const cg_tensor *T = W[w];
        const cg_qtype_traits *tr = cg_qtype_get(T->type);
        if (!tr) return cg_err_set(err, CG_ERR_UNSUPPORTED, "matmul: tensor '%s' has unknown type %u", T->name, T->type);
        const cg_qtype_traits *vt = cg_qtype_get(tr->vec_dot_type);
        const cg_from_f32_fn quant = vt ? cg_qops_quant_act(ops, tr->vec_dot_type) : NULL;
        if (!cg_qops_vec_dot(ops, T->type) || !quant)
            return cg_err_set(err, CG_ERR_UNSUPPORTED, "matmul: no dot product for tensor '%s' of type %s", T->name,
                              tr->name);
        if (T->ne[0] != j.n_in)
            return cg_err_set(err, CG_ERR_INVALID, "matmul: tensor '%s' has rows of %lld, '%s' of %lld (one input)",
                              T->name, (long long)T->ne[0], W[0]->name, (long long)j.n_in);
        if (j.n_in % vt->blck_size || j.n_in % tr->blck_size)
            return cg_err_set(err, CG_ERR_FORMAT, "matmul: '%s' row of %lld is not a multiple of %s blocks", T->name,
                              (long long)j.n_in, vt->name);
        if (T->layout != CG_LAYOUT_STORED &&
            !(T->layout == CG_LAYOUT_Q4_0_X8 && T->type == CG_QTYPE_Q4_0 && T->ne[1] % 8 == 0) &&
            !(T->layout == CG_LAYOUT_Q8_0_X8 && T->type == CG_QTYPE_Q8_0 && T->ne[1] >= 8) &&
            !(T->layout == CG_LAYOUT_Q4_K_X8 && T->type == CG_QTYPE_Q4_K && T->ne[1] % 8 == 0) &&
            !(T->layout == CG_LAYOUT_Q6_K_X8 && T->type == CG_QTYPE_Q6_K && T->ne[1] % 8 == 0) &&
            !(T->layout == CG_LAYOUT_Q5_0_X8 && T->type == CG_QTYPE_Q5_0 && T->ne[1] % 8 == 0))
            return cg_err_set(err, CG_ERR_UNSUPPORTED, "matmul: tensor '%s' has layout %u for type %s and %lld rows",
                              T->name, T->layout, tr->name, (long long)T->ne[1]);
        int q = 0;
        while (q < j.n_xq && xq_type[q] != tr->vec_dot_type) q++;
        if (q == j.n_xq) {
            xq_type[q] = tr->vec_dot_type;
            j.xq_row[q] = (size_t)(j.n_in / vt->blck_size) * vt->type_size;
            // The F32 partner is the input itself: nothing to convert (read-only below).
            j.quant[q] = tr->vec_dot_type == CG_QTYPE_F32 ? NULL : quant;
            j.n_xq++;
        }
        j.xq_of[w] = q;
        if (T->layout == CG_LAYOUT_Q4_0_X8 || T->layout == CG_LAYOUT_Q8_0_X8) need_aux[q] = true;   // Q8_0 side data
        j.W[w] = T;
        j.Y[w] = Y[w];
        const uint64_t tiles = (uint64_t)(T->ne[1] + TILE - 1) / TILE;
        j.cost0[w + 1] = j.cost0[w] + tiles * TILE * T->row_bytes;
        work += (uint64_t)T->ne[1];
    }
    if (n_tok <= 0) return CG_OK;
    const bool threaded = pool && cg_pool_size(pool) > 1 && work * (uint64_t)n_tok * (uint64_t)j.n_in >= 4096;
    bool any_quant = false;
    for (int q = 0; q < j.n_xq; q++) {
        if (!j.quant[q]) {
            j.xq[q] = (unsigned char *)(uintptr_t)X;
            continue;
        }
        size_t n_bytes;
        if (!cg_mul_size(j.xq_row[q], (size_t)n_tok, &n_bytes))
            return cg_err_set(err, CG_ERR_LIMIT, "matmul: '%s' activation size overflows", W[0]->name);
        j.xq[q] = cg_arena_alloc(arena, n_bytes, 64);
        if (!j.xq[q]) return cg_err_set(err, CG_ERR_NOMEM, "matmul: out of memory for '%s' activations", W[0]->name);
        any_quant = true;
        if (need_aux[q]) {   // Q8_0 set (checked above): n_in/32 entries per token
            if (!cg_mul_size((size_t)(j.n_in / 32) * sizeof(cg_q8_0_aux), (size_t)n_tok, &n_bytes))
                return cg_err_set(err, CG_ERR_LIMIT, "matmul: '%s' activation size overflows", W[0]->name);
            j.aux[q] = cg_arena_alloc(arena, n_bytes, 64);
            if (!j.aux[q])
                return cg_err_set(err, CG_ERR_NOMEM, "matmul: out of memory for '%s' activations", W[0]->name);
            // A prefill through the table's x8 kernels: the activations chunk-packed once here, not
            // by every row block of every thread (the reference kernels read the rows).
            if (n_tok > CG_PACK_TOK && (ops->q4_0x8_matmul || ops->q8_0x8_matmul)) {
                if (!cg_q8_0_pack_size(j.n_in, n_tok, &n_bytes))
                    return cg_err_set(err, CG_ERR_LIMIT, "matmul: '%s' activation size overflows", W[0]->name);
                j.packed[q] = cg_arena_alloc(arena, n_bytes, 64);
                if (!j.packed[q])
                    return cg_err_set(err, CG_ERR_NOMEM, "matmul: out of memory for '%s' activations", W[0]->name);
            }
        }
    }
    if (any_quant) {
        if (threaded && n_tok >= 4)
            cg_pool_run(pool, quant_worker, &j);
        else
            quant_worker(&j, 0, 1);
    }
    atomic_init(&j.next, 0);
    if (threaded)
        cg_pool_run(pool, mm_worker, &j);
    else
        mm_worker(&j, 0, 1);
    return CG_OK;
}

cg_status cg_kern_qops_matmul(const cg_qops *ops, const cg_tensor *W, const float *X, int64_t n_tok, float *Y,
                              cg_arena *arena, cg_pool *pool, cg_err *err) {
    return cg_kern_qops_matmul_multi(ops, &W, 1, X, n_tok, &Y, arena, pool, err);
}
