// forward.c — the generic transformer block over a batch, reading the arch row's flags.
//
// One step: embed every batch entry, then per layer: (pre-)norm → q,k,v (fused or not, biases,
// per-head q/k norm, rope) → write k,v into the paged cache at each entry's (seq, pos) → attention
// of each entry over its own sequence through the block table → output projection (post-norm,
// residual scale) → residual; the same for the gated FFN. Finally the rows that want output go
// through the output norm and then either the output matrix (soft-capping, logit scale) or, in the
// hidden-state mode used for embeddings, straight to the caller. All per-step buffers come from
// the context's arena, reset at the start of each step. Compute goes through the kern table.
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/num.h"
#include "model/model_impl.h"
#include "quant/f16.h"
#include "quant/quant.h"

struct cg_model_ctx {
    const cg_model *m;
    const cg_kern *k;
    cg_pool *pool;
    cg_arena arena;
};

cg_status cg_model_ctx_new(const cg_model *m, int n_threads, cg_model_ctx **out, cg_err *err) {
    *out = NULL;
    cg_model_ctx *c = calloc(1, sizeof *c);
    if (!c) return cg_err_set(err, CG_ERR_NOMEM, "model: out of memory for a context");
    c->m = m;
    c->k = cg_kern_get();
    cg_arena_init(&c->arena, (size_t)1 << 20);
    cg_status st = cg_pool_new(n_threads, &c->pool, err);
    if (st) {
        cg_model_ctx_free(c);
        return st;
    }
    *out = c;
    return CG_OK;
}

void cg_model_ctx_free(cg_model_ctx *c) {
    if (!c) return;
    cg_pool_free(c->pool);
    cg_arena_free(&c->arena);
    free(c);
}

const cg_model *cg_model_ctx_model(const cg_model_ctx *c) { return c->m; }

cg_pool *cg_model_ctx_pool(cg_model_ctx *c) { return c->pool; }

const cg_kern *cg_model_ctx_kern(const cg_model_ctx *c) { return c->k; }

void cg_model_ctx_set_kern(cg_model_ctx *c, const cg_kern *k) { c->k = k; }

static float *falloc(cg_arena *a, int64_t n) {
    size_t bytes;
    if (n < 1) n = 1;
    if (!cg_mul_size((size_t)n, sizeof(float), &bytes)) return NULL;
    return cg_arena_alloc(a, bytes, 64);
}

// Row t of the token embedding matrix as F32 (any type: to_f32 was checked at load).
static void embed_row(const cg_tensor *E, int32_t tok, float *out) {
    const unsigned char *row = (const unsigned char *)E->data + (uint64_t)tok * E->row_bytes;
    cg_qtype_get(E->type)->to_f32(row, out, E->ne[0]);
}

static void store_row(cg_kv_dtype t, void *dst, const float *src, int64_t n) {
    if (t == CG_KV_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
    } else {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = cg_f32_to_f16(src[i]);
    }
}

// ---- attention over the batch, split by tiles across threads -----------------------------------
//
// Adjacent batch entries of one sequence at consecutive positions form runs; runs are cut into
// tiles of at most ATTN_TILE queries, each handed whole to attention_multi (K/V read once per
// tile); a tile of one entry (decode: one entry per sequence) takes the single-query kernel.
// Threads take tiles from a shared counter, last tile (the longest prefix) first, so a causal
// prompt's uneven tiles spread over the threads. When every tile is one query (decode) and there
// are fewer tiles than threads, each tile's query heads are cut into n_split ranges along kv-head
// groups (cg_attn_args.head_lo/hi), so one sequence's decode attention uses every thread; only
// from ATTN_SPLIT_MIN_POS on, below which the hand-off costs more than the work. Outputs do not
// depend on the assignment (a head's result is the same whichever range computes it).

#define ATTN_TILE 8
#define ATTN_SPLIT_MIN_POS 32
_Static_assert(ATTN_TILE <= CG_ATTN_MAX_Q, "a tile must fit attention_multi");

typedef struct attn_job {
    const cg_kern *k;
    const cg_model *m;
    const cg_layer *L;
    const cg_batch *b;
    const float *q;           // (n, q_dim)
    float *out;               // (n, n_head * head_dim_v)
    float *scratch;           // (n_thread, scratch_stride)
    int64_t scratch_stride;
    const void ***kb, ***vb;  // per batch entry: its sequence's block pointers
    const int32_t *tile;      // n_tile + 1 entry indices: tile t is entries tile[t] .. tile[t+1]-1
    int32_t n_tile;
    int n_split;              // head ranges per tile (1: whole tiles; > 1 only for one-query tiles)
    atomic_int next;          // work units (tile, head range) taken so far
    cg_kv_dtype kv_type;
    int block_size;
} attn_job;

// Cuts the batch into tiles (see above); writes n_tile + 1 bounds into tile, returns n_tile.
static int32_t attn_tiles(const cg_batch *b, int32_t *tile) {
    int32_t n_tile = 0;
    for (int32_t i = 0; i < b->n;) {
        int32_t j = i + 1;
        while (j < b->n && j - i < ATTN_TILE && b->seq[j] == b->seq[i] && b->pos[j] == b->pos[j - 1] + 1) j++;
        tile[n_tile++] = i;
        i = j;
    }
    tile[n_tile] = b->n;
    return n_tile;
}

static void attn_worker(void *ctx, int i_thread, int n_thread) {
    attn_job *j = ctx;
    const cg_hparams *h = &j->m->hp;
    (void)n_thread;
    for (;;) {
        const int32_t taken = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (taken >= j->n_tile * j->n_split) break;
        const int32_t t = j->n_tile - 1 - taken / j->n_split, part = taken % j->n_split;
        const int64_t i = j->tile[t], n_q = j->tile[t + 1] - j->tile[t], last = i + n_q - 1;
        cg_attn_args a = {
            .q = j->q + i * h->n_head * h->head_dim,
            .out = j->out + i * h->n_head * h->head_dim_v,
            .n_head = (int)h->n_head,
            .n_head_kv = (int)h->n_head_kv,
            .head_dim = (int)h->head_dim,
            .head_dim_v = (int)h->head_dim_v,
            .pos = j->b->pos[i],
            .n_swa = j->L->is_swa ? h->n_swa : 0,
            .scale = h->attn_scale,
            .softcap = h->attn_softcap,
            .kv_type = j->kv_type,
            .f32_acc = j->b->n >= 64,
            .pv_gemm = j->b->n >= 2,
            .block_size = j->block_size,
            .k_blocks = j->kb[last],   // the last entry's table covers the whole tile
            .v_blocks = j->vb[last],
            .scratch = j->scratch + (int64_t)i_thread * j->scratch_stride,
        };
        if (j->n_split > 1) {   // kv-head groups [g0, g1) of this part, as query heads
            const int64_t n_grp = h->n_head_kv, per = h->n_head / h->n_head_kv;
            const int64_t g0 = n_grp * part / j->n_split, g1 = n_grp * (part + 1) / j->n_split;
            if (g0 == g1) continue;
            a.head_lo = (int)(g0 * per);
            a.head_hi = (int)(g1 * per);
        }
        if (n_q == 1) j->k->attention(&a);
        else j->k->attention_multi(&a, (int)n_q);
    }
}

// ---- validation ---------------------------------------------------------------------------------

typedef struct seq_span {
    int32_t first, next;   // first position in the batch, next expected position; first < 0: unused
} seq_span;

static cg_status check_batch(const cg_model *m, cg_kv *kv, const cg_batch *b, seq_span *span, cg_err *err) {
    const cg_kv_params *kp = cg_kv_get_params(kv);
    for (int s = 0; s < kp->max_seqs; s++) span[s].first = -1;
    for (int32_t i = 0; i < b->n; i++) {
        int32_t t = b->token[i], p = b->pos[i], s = b->seq[i];
        if (t < 0 || t >= m->hp.n_vocab)
            return cg_err_set(err, CG_ERR_INVALID, "decode: batch entry %d: token id %d out of range 0..%lld", i, t,
                              (long long)m->hp.n_vocab - 1);
        if (s < 0 || s >= kp->max_seqs)
            return cg_err_set(err, CG_ERR_INVALID, "decode: batch entry %d: sequence id %d out of range 0..%d", i, s,
                              kp->max_seqs - 1);
        if (p < 0) return cg_err_set(err, CG_ERR_INVALID, "decode: batch entry %d: negative position %d", i, p);
        if (span[s].first < 0) {
            int32_t len = cg_kv_seq_len(kv, s);
            if (p > len)
                return cg_err_set(err, CG_ERR_INVALID,
                                  "decode: batch entry %d: position %d of sequence %d leaves a gap (it holds %d)", i, p,
                                  s, len);
            span[s].first = p;
        } else if (p != span[s].next) {
            return cg_err_set(err, CG_ERR_INVALID,
                              "decode: batch entry %d: sequence %d position %d, expected %d (positions must be "
                              "consecutive in batch order)",
                              i, s, p, span[s].next);
        }
        if (p == INT32_MAX) return cg_err_set(err, CG_ERR_INVALID, "decode: batch entry %d: position overflow", i);
        span[s].next = p + 1;
    }
    return CG_OK;
}

// ---- the step -----------------------------------------------------------------------------------

#define TRY(x)                    \
    do {                          \
        if ((st = (x))) goto out; \
    } while (0)
#define ALLOC(p, n)                                                                        \
    do {                                                                                   \
        if (!((p) = falloc(&c->arena, (n)))) {                                             \
            st = cg_err_set(err, CG_ERR_NOMEM, "decode: out of memory for scratch");      \
            goto out;                                                                      \
        }                                                                                  \
    } while (0)

// Whether two layers' rope parameters give the same tables (then the batch's tables are reused).
static bool rope_same(const cg_rope_params *a, const cg_rope_params *b) {
    return a->kind == b->kind && a->n_rot == b->n_rot && a->freq_base == b->freq_base &&
           a->freq_scale == b->freq_scale && a->ext_factor == b->ext_factor && a->attn_factor == b->attn_factor &&
           a->corr_dims[0] == b->corr_dims[0] && a->corr_dims[1] == b->corr_dims[1] &&
           a->freq_factors == b->freq_factors;
}

static void add_bias(float *x, const float *bias, int64_t n_rows, int64_t n) {
    if (!bias) return;
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t i = 0; i < n; i++) x[r * n + i] += bias[i];
}

// The step; `hidden_only`: the selected rows leave after the output norm into `out` (n_embd floats
// each) and the LM head is skipped; otherwise `out` receives logits.
static cg_status forward(cg_model_ctx *c, cg_kv *kv, const cg_batch *b, bool hidden_only, float *out_rows,
                         cg_err *err) {
    cg_status st = CG_OK;
    const cg_model *m = c->m;
    const cg_hparams *h = &m->hp;
    const cg_kern *K = c->k;
    const cg_kv_params *kp = cg_kv_get_params(kv);
    cg_arena_reset(&c->arena);
    if (b->n <= 0) return cg_err_set(err, CG_ERR_INVALID, "decode: empty batch");
    if (kp->n_layer != h->n_layer || kp->n_embd_k != h->n_head_kv * h->head_dim ||
        kp->n_embd_v != h->n_head_kv * h->head_dim_v)
        return cg_err_set(err, CG_ERR_INVALID, "decode: the KV cache was made for another model shape");

    const int64_t n = b->n, E = h->n_embd;
    const int64_t q_dim = h->n_head * h->head_dim, k_dim = h->n_head_kv * h->head_dim,
                  v_dim = h->n_head_kv * h->head_dim_v, o_dim = h->n_head * h->head_dim_v;
    seq_span *span = cg_arena_alloc(&c->arena, (size_t)kp->max_seqs * sizeof *span, 8);
    if (!span) return cg_err_set(err, CG_ERR_NOMEM, "decode: out of memory");
    TRY(check_batch(m, kv, b, span, err));
    for (int s = 0; s < kp->max_seqs; s++)
        if (span[s].first >= 0) TRY(cg_kv_seq_prepare(kv, s, span[s].first, span[s].next, err));

    float *x, *cur, *q, *k, *v, *att, *tmp, *gate, *up, *scratch;
    ALLOC(x, n * E);
    ALLOC(cur, n * E);
    ALLOC(q, n * q_dim);
    ALLOC(k, n * k_dim);
    ALLOC(v, n * v_dim);
    ALLOC(att, n * o_dim);
    ALLOC(tmp, n * (q_dim + k_dim + v_dim > E ? q_dim + k_dim + v_dim : E));
    ALLOC(gate, n * 2 * h->n_ff);
    ALLOC(up, n * h->n_ff);
    int32_t max_pos = 0;
    for (int64_t i = 0; i < n; i++)
        if (b->pos[i] > max_pos) max_pos = b->pos[i];
    // attention_multi's scratch for up to ATTN_TILE queries ending at max_pos (a single query needs less).
    const int64_t scratch_stride = CG_ATTN_SLABS * (h->head_dim + h->head_dim_v + max_pos + 1) + 16;
    ALLOC(scratch, (int64_t)cg_pool_size(c->pool) * scratch_stride);
    // Rope tables, one per batch entry (2·n_rot floats at most, kern.h), made for the first layer and
    // again only where a layer's parameters differ from the last ones used, instead of twice per
    // layer and token.
    int rope_rot = 0;
    for (int il = 0; il < h->n_layer; il++)
        if (cg_rope_rot(&m->layers[il].rope) > rope_rot) rope_rot = cg_rope_rot(&m->layers[il].rope);
    const int64_t rope_stride = 2 * (int64_t)rope_rot;
    float *rope_cs;
    ALLOC(rope_cs, n * rope_stride);
    const cg_rope_params *rope_made = NULL;   // the parameters rope_cs holds tables for
    const void ***kb = cg_arena_calloc(&c->arena, (size_t)n, sizeof *kb, 8);
    const void ***vb = cg_arena_calloc(&c->arena, (size_t)n, sizeof *vb, 8);
    if (!kb || !vb) {
        st = cg_err_set(err, CG_ERR_NOMEM, "decode: out of memory");
        goto out;
    }

    for (int64_t i = 0; i < n; i++) {
        embed_row(&m->tok_embd, b->token[i], x + i * E);
        if (h->embd_scale != 1.0f)
            for (int64_t d = 0; d < E; d++) x[i * E + d] *= h->embd_scale;
    }

    for (int il = 0; il < h->n_layer; il++) {
        const cg_layer *L = &m->layers[il];
        // ---- attention ----
        for (int64_t i = 0; i < n; i++) {
            if (L->attn_norm)
                K->rmsnorm(x + i * E, L->attn_norm, E, h->norm_eps, cur + i * E);
            else
                memcpy(cur + i * E, x + i * E, (size_t)E * sizeof(float));
        }
        if (L->wqkv.data) {
            int64_t w = q_dim + k_dim + v_dim;
            TRY(K->matmul(&L->wqkv, cur, n, tmp, &c->arena, c->pool, err));
            for (int64_t i = 0; i < n; i++) {
                memcpy(q + i * q_dim, tmp + i * w, (size_t)q_dim * sizeof(float));
                memcpy(k + i * k_dim, tmp + i * w + q_dim, (size_t)k_dim * sizeof(float));
                memcpy(v + i * v_dim, tmp + i * w + q_dim + k_dim, (size_t)v_dim * sizeof(float));
            }
        } else {
            // One input for three products: converted once, one hand-off to the pool.
            const cg_tensor *Wqkv[3] = {&L->wq, &L->wk, &L->wv};
            float *Yqkv[3] = {q, k, v};
            TRY(K->matmul_multi(Wqkv, 3, cur, n, Yqkv, &c->arena, c->pool, err));
        }
        add_bias(q, L->bq, n, q_dim);
        add_bias(k, L->bk, n, k_dim);
        add_bias(v, L->bv, n, v_dim);
        if (!rope_made || !rope_same(rope_made, &L->rope)) {
            for (int64_t i = 0; i < n; i++) K->rope_table(b->pos[i], &L->rope, rope_cs + i * rope_stride);
            rope_made = &L->rope;
        }
        for (int64_t i = 0; i < n; i++) {
            if (L->q_norm)
                for (int64_t hh = 0; hh < h->n_head; hh++) {
                    float *p = q + i * q_dim + hh * h->head_dim;
                    K->rmsnorm(p, L->q_norm, h->head_dim, h->norm_eps, p);
                }
            if (L->k_norm)
                for (int64_t hh = 0; hh < h->n_head_kv; hh++) {
                    float *p = k + i * k_dim + hh * h->head_dim;
                    K->rmsnorm(p, L->k_norm, h->head_dim, h->norm_eps, p);
                }
            K->rope_apply(q + i * q_dim, (int)h->n_head, (int)h->head_dim, &L->rope, rope_cs + i * rope_stride);
            K->rope_apply(k + i * k_dim, (int)h->n_head_kv, (int)h->head_dim, &L->rope, rope_cs + i * rope_stride);
            store_row(kp->type, cg_kv_k_row(kv, il, b->seq[i], b->pos[i]), k + i * k_dim, k_dim);
            store_row(kp->type, cg_kv_v_row(kv, il, b->seq[i], b->pos[i]), v + i * v_dim, v_dim);
        }
        for (int64_t i = 0; i < n; i++) {
            int n_tab = (b->pos[i] / kp->block_size) + 1;
            kb[i] = cg_arena_alloc(&c->arena, (size_t)n_tab * sizeof(void *), 8);
            vb[i] = cg_arena_alloc(&c->arena, (size_t)n_tab * sizeof(void *), 8);
            if (!kb[i] || !vb[i]) {
                st = cg_err_set(err, CG_ERR_NOMEM, "decode: out of memory for block tables");
                goto out;
            }
            if (cg_kv_seq_blocks(kv, il, b->seq[i], kb[i], vb[i], n_tab) != n_tab) {
                st = cg_err_set(err, CG_ERR_INTERNAL, "decode: sequence %d lacks blocks for position %d", b->seq[i],
                                b->pos[i]);
                goto out;
            }
        }
        int32_t *tiles = cg_arena_alloc(&c->arena, (size_t)(n + 1) * sizeof *tiles, 8);
        if (!tiles) {
            st = cg_err_set(err, CG_ERR_NOMEM, "decode: out of memory for attention tiles");
            goto out;
        }
        attn_job aj = {.k = K, .m = m, .L = L, .b = b, .q = q, .out = att, .scratch = scratch,
                       .scratch_stride = scratch_stride, .kb = kb, .vb = vb, .tile = tiles,
                       .n_tile = attn_tiles(b, tiles), .kv_type = kp->type, .block_size = kp->block_size};
        atomic_init(&aj.next, 0);
        aj.n_split = 1;
        if (aj.n_tile == n && aj.n_tile < cg_pool_size(c->pool) && max_pos >= ATTN_SPLIT_MIN_POS) {
            aj.n_split = cg_pool_size(c->pool);   // every tile one query: split heads
            if (aj.n_split > h->n_head_kv) aj.n_split = (int)h->n_head_kv;
        }
        if ((aj.n_tile > 1 || aj.n_split > 1) && cg_pool_size(c->pool) > 1)
            cg_pool_run(c->pool, attn_worker, &aj);
        else
            attn_worker(&aj, 0, 1);
        TRY(K->matmul(&L->wo, att, n, tmp, &c->arena, c->pool, err));
        add_bias(tmp, L->bo, n, E);
        for (int64_t i = 0; i < n; i++) {
            float *o = tmp + i * E;
            if (L->attn_post_norm) K->rmsnorm(o, L->attn_post_norm, E, h->norm_eps, o);
            for (int64_t d = 0; d < E; d++) x[i * E + d] += h->residual_scale == 1.0f ? o[d] : o[d] * h->residual_scale;
        }

        // ---- feed-forward ----
        for (int64_t i = 0; i < n; i++) {
            if (L->ffn_norm)
                K->rmsnorm(x + i * E, L->ffn_norm, E, h->norm_eps, cur + i * E);
            else
                memcpy(cur + i * E, x + i * E, (size_t)E * sizeof(float));
        }
        const int64_t F = h->n_ff;
        if (L->ffn_gate.data) {
            const cg_tensor *Wgu[2] = {&L->ffn_gate, &L->ffn_up};
            float *Ygu[2] = {gate, up};
            TRY(K->matmul_multi(Wgu, 2, cur, n, Ygu, &c->arena, c->pool, err));
            for (int64_t i = 0; i < n; i++) K->glu(m->arch->ffn, gate + i * F, up + i * F, gate + i * F, F);
        } else {
            // Fused: each row holds gate (F) then up (F); the result is packed into the first n*F floats.
            TRY(K->matmul(&L->ffn_up, cur, n, gate, &c->arena, c->pool, err));
            for (int64_t i = 0; i < n; i++) {
                memcpy(up, gate + i * 2 * F + F, (size_t)F * sizeof(float));
                K->glu(m->arch->ffn, gate + i * 2 * F, up, gate + i * F, F);
            }
        }
        TRY(K->matmul(&L->ffn_down, gate, n, tmp, &c->arena, c->pool, err));
        for (int64_t i = 0; i < n; i++) {
            float *o = tmp + i * E;
            if (L->ffn_post_norm) K->rmsnorm(o, L->ffn_post_norm, E, h->norm_eps, o);
            for (int64_t d = 0; d < E; d++) x[i * E + d] += h->residual_scale == 1.0f ? o[d] : o[d] * h->residual_scale;
        }
    }

    // ---- output ----
    int64_t n_out = 0;
    for (int64_t i = 0; i < n; i++)
        if (b->logits ? b->logits[i] : i == n - 1) n_out++;
    if (n_out == 0) goto out;
    if (!out_rows) {
        st = cg_err_set(err, CG_ERR_INVALID, "decode: %lld entries want %s but no buffer was given", (long long)n_out,
                        hidden_only ? "hidden states" : "logits");
        goto out;
    }
    // Hidden states go straight to the caller's rows; logits need them as the LM head's input.
    float *normed = hidden_only ? out_rows : cur;
    n_out = 0;
    for (int64_t i = 0; i < n; i++) {
        bool want = b->logits ? b->logits[i] : i == n - 1;
        if (!want) continue;
        K->rmsnorm(x + i * E, m->out_norm, E, h->norm_eps, normed + n_out * E);
        n_out++;
    }
    if (hidden_only) goto out;
    float *logits = out_rows;
    TRY(K->matmul(&m->output, cur, n_out, logits, &c->arena, c->pool, err));
    // Soft-capping and the logit scale, when the arch has either (an identity loop over the
    // vocabulary otherwise: ~60 % of this function's own time per decoded token, measured).
    if (h->final_softcap == 0.0f && h->logit_scale == 1.0f) goto out;
    for (int64_t i = 0; i < n_out * h->n_vocab; i++) {
        float l = logits[i];
        if (h->final_softcap != 0.0f) l = tanhf(l / h->final_softcap) * h->final_softcap;
        if (h->logit_scale != 1.0f) l /= h->logit_scale;
        logits[i] = l;
    }
out:
    return st;
}

cg_status cg_model_decode(cg_model_ctx *c, cg_kv *kv, const cg_batch *b, float *logits, cg_err *err) {
    return forward(c, kv, b, false, logits, err);
}

cg_status cg_model_decode_hidden(cg_model_ctx *c, cg_kv *kv, const cg_batch *b, float *hidden, cg_err *err) {
    return forward(c, kv, b, true, hidden, err);
}
