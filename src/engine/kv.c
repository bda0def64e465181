// kv.c — paged KV cache (see kv.h).
//
// Invariants: refcount[b] == number of sequence block-table entries that name block b plus the
// references taken with cg_kv_block_retain; a block with
// refcount 0 is on the free stack exactly once; a sequence of length len has exactly
// ceil(len / block_size) table entries. K data of layer l, block b starts at
// k[l] + b * block_size * n_embd_k * elem_size (likewise V). Memory is owned here and freed by
// cg_kv_free.
#include <stdlib.h>
#include <string.h>

#include "base/num.h"
#include "engine/kv.h"

typedef struct kv_seq {
    int *table;       // owned, cap entries
    int n_table;
    int cap;
    int32_t len;
} kv_seq;

struct cg_kv {
    cg_kv_params p;
    size_t elem;           // bytes per element
    size_t k_block_bytes;  // bytes of one block of K for one layer
    size_t v_block_bytes;
    unsigned char **k;     // [n_layer] owned
    unsigned char **v;
    int *refcount;         // [n_blocks]
    int *free_stack;       // [n_blocks]
    int n_free;
    kv_seq *seqs;          // [max_seqs]
};

void cg_kv_free(cg_kv *kv) {
    if (!kv) return;
    for (int l = 0; kv->k && l < kv->p.n_layer; l++) free(kv->k[l]);
    for (int l = 0; kv->v && l < kv->p.n_layer; l++) free(kv->v[l]);
    free(kv->k);
    free(kv->v);
    free(kv->refcount);
    free(kv->free_stack);
    for (int s = 0; kv->seqs && s < kv->p.max_seqs; s++) free(kv->seqs[s].table);
    free(kv->seqs);
    free(kv);
}

cg_status cg_kv_new(const cg_kv_params *p, cg_kv **out, cg_err *err) {
    cg_status st = CG_OK;
    *out = NULL;
    if (p->n_layer < 1 || p->n_layer > 4096)
        return cg_err_set(err, CG_ERR_INVALID, "kv: n_layer %d out of range 1..4096", p->n_layer);
    if (p->n_embd_k < 1 || p->n_embd_v < 1 || p->n_embd_k > (1 << 20) || p->n_embd_v > (1 << 20))
        return cg_err_set(err, CG_ERR_INVALID, "kv: n_embd_k %lld / n_embd_v %lld out of range 1..2^20",
                          (long long)p->n_embd_k, (long long)p->n_embd_v);
    if (p->block_size < 1 || p->block_size > 4096)
        return cg_err_set(err, CG_ERR_INVALID, "kv: block_size %d out of range 1..4096", p->block_size);
    if (p->n_blocks < 1)
        return cg_err_set(err, CG_ERR_INVALID, "kv: n_blocks %d must be at least 1", p->n_blocks);
    if (p->max_seqs < 1 || p->max_seqs > 65536)
        return cg_err_set(err, CG_ERR_INVALID, "kv: max_seqs %d out of range 1..65536", p->max_seqs);
    if (p->type != CG_KV_F16 && p->type != CG_KV_F32)
        return cg_err_set(err, CG_ERR_INVALID, "kv: unknown cache type %d", (int)p->type);
    cg_kv *kv = calloc(1, sizeof *kv);
    if (!kv) return cg_err_set(err, CG_ERR_NOMEM, "kv: out of memory");
    kv->p = *p;
    kv->elem = p->type == CG_KV_F16 ? 2 : 4;
    size_t k_layer, v_layer;
    if (!cg_mul_size((size_t)p->block_size * kv->elem, (size_t)p->n_embd_k, &kv->k_block_bytes) ||
        !cg_mul_size((size_t)p->block_size * kv->elem, (size_t)p->n_embd_v, &kv->v_block_bytes) ||
        !cg_mul_size(kv->k_block_bytes, (size_t)p->n_blocks, &k_layer) ||
        !cg_mul_size(kv->v_block_bytes, (size_t)p->n_blocks, &v_layer)) {
        st = cg_err_set(err, CG_ERR_LIMIT, "kv: %d blocks of %d tokens overflow the address space", p->n_blocks,
                        p->block_size);
        goto fail;
    }
    kv->k = calloc((size_t)p->n_layer, sizeof *kv->k);
    kv->v = calloc((size_t)p->n_layer, sizeof *kv->v);
    kv->refcount = calloc((size_t)p->n_blocks, sizeof *kv->refcount);
    kv->free_stack = calloc((size_t)p->n_blocks, sizeof *kv->free_stack);
    kv->seqs = calloc((size_t)p->max_seqs, sizeof *kv->seqs);
    if (!kv->k || !kv->v || !kv->refcount || !kv->free_stack || !kv->seqs) goto nomem;
    for (int l = 0; l < p->n_layer; l++) {
        // Zeroed so that no uninitialised value can ever reach a kernel.
        kv->k[l] = calloc(1, k_layer);
        kv->v[l] = calloc(1, v_layer);
        if (!kv->k[l] || !kv->v[l]) goto nomem;
    }
    // Stack top is the lowest id, so a fresh cache hands out blocks 0, 1, 2, … in order.
    for (int b = 0; b < p->n_blocks; b++) kv->free_stack[b] = p->n_blocks - 1 - b;
    kv->n_free = p->n_blocks;
    *out = kv;
    return CG_OK;
nomem:
    st = cg_err_set(err, CG_ERR_NOMEM, "kv: out of memory for %d layers x %d blocks of %d tokens", p->n_layer,
                    p->n_blocks, p->block_size);
fail:
    cg_kv_free(kv);
    return st;
}

void cg_kv_prefault(cg_kv *kv) {
    // calloc'ed pools are zero; rewriting the zeros faults each page in without changing any data.
    for (int l = 0; l < kv->p.n_layer; l++) {
        memset(kv->k[l], 0, kv->k_block_bytes * (size_t)kv->p.n_blocks);
        memset(kv->v[l], 0, kv->v_block_bytes * (size_t)kv->p.n_blocks);
    }
}

const cg_kv_params *cg_kv_get_params(const cg_kv *kv) { return &kv->p; }
int cg_kv_n_free_blocks(const cg_kv *kv) { return kv->n_free; }

int32_t cg_kv_seq_len(const cg_kv *kv, int seq) {
    if (seq < 0 || seq >= kv->p.max_seqs) return -1;
    return kv->seqs[seq].len;
}

int cg_kv_block_refcount(const cg_kv *kv, int block) {
    if (block < 0 || block >= kv->p.n_blocks) return -1;
    return kv->refcount[block];
}

static void block_release(cg_kv *kv, int b) {
    if (--kv->refcount[b] == 0) kv->free_stack[kv->n_free++] = b;
}

static int block_take(cg_kv *kv) {
    int b = kv->free_stack[--kv->n_free];
    kv->refcount[b] = 1;
    return b;
}

void cg_kv_seq_truncate(cg_kv *kv, int seq, int32_t n) {
    if (seq < 0 || seq >= kv->p.max_seqs || n < 0) return;
    kv_seq *s = &kv->seqs[seq];
    if (n >= s->len) return;
    int keep = (int)((n + kv->p.block_size - 1) / kv->p.block_size);
    for (int i = keep; i < s->n_table; i++) block_release(kv, s->table[i]);
    s->n_table = keep;
    s->len = n;
}

void cg_kv_seq_clear(cg_kv *kv, int seq) { cg_kv_seq_truncate(kv, seq, 0); }

static cg_status ensure_cap(kv_seq *s, int n, cg_err *err) {
    if (n <= s->cap) return CG_OK;
    int cap = s->cap ? s->cap : 8;
    while (cap < n) cap *= 2;
    int *t = realloc(s->table, (size_t)cap * sizeof *t);
    if (!t) return cg_err_set(err, CG_ERR_NOMEM, "kv: out of memory for a block table of %d entries", cap);
    s->table = t;
    s->cap = cap;
    return CG_OK;
}

static void block_copy(cg_kv *kv, int dst, int src) {
    for (int l = 0; l < kv->p.n_layer; l++) {
        memcpy(kv->k[l] + (size_t)dst * kv->k_block_bytes, kv->k[l] + (size_t)src * kv->k_block_bytes,
               kv->k_block_bytes);
        memcpy(kv->v[l] + (size_t)dst * kv->v_block_bytes, kv->v[l] + (size_t)src * kv->v_block_bytes,
               kv->v_block_bytes);
    }
}

cg_status cg_kv_seq_prepare(cg_kv *kv, int seq, int32_t pos_begin, int32_t pos_end, cg_err *err) {
    if (seq < 0 || seq >= kv->p.max_seqs)
        return cg_err_set(err, CG_ERR_INVALID, "kv: sequence id %d out of range 0..%d", seq, kv->p.max_seqs - 1);
    kv_seq *s = &kv->seqs[seq];
    if (pos_begin < 0 || pos_end <= pos_begin)
        return cg_err_set(err, CG_ERR_INVALID, "kv: empty or negative position range [%d, %d) for sequence %d",
                          pos_begin, pos_end, seq);
    if (pos_begin > s->len)
        return cg_err_set(err, CG_ERR_INVALID,
                          "kv: sequence %d holds %d positions; writing from position %d would leave a gap", seq,
                          s->len, pos_begin);
    cg_kv_seq_truncate(kv, seq, pos_begin);
    int bs = kv->p.block_size;
    int first = pos_begin / bs;
    int64_t n_need_table = ((int64_t)pos_end + bs - 1) / bs;
    // Blocks needed: new table entries plus shared blocks in the written range (copy-on-write).
    int64_t need = n_need_table - s->n_table;
    for (int i = first; i < s->n_table; i++)
        if (kv->refcount[s->table[i]] > 1) need++;
    if (need > kv->n_free)
        return cg_err_set(err, CG_ERR_LIMIT,
                          "kv: cache full: sequence %d needs %lld more blocks of %d tokens for positions up to %d, "
                          "%d free of %d",
                          seq, (long long)need, bs, pos_end, kv->n_free, kv->p.n_blocks);
    cg_status st = ensure_cap(s, (int)n_need_table, err);
    if (st) return st;
    for (int i = first; i < s->n_table; i++) {
        int b = s->table[i];
        if (kv->refcount[b] > 1) {
            int nb = block_take(kv);
            block_copy(kv, nb, b);
            block_release(kv, b);
            s->table[i] = nb;
        }
    }
    while (s->n_table < n_need_table) s->table[s->n_table++] = block_take(kv);
    if (pos_end > s->len) s->len = pos_end;
    return CG_OK;
}

cg_status cg_kv_seq_fork(cg_kv *kv, int src, int dst, cg_err *err) {
    if (src < 0 || src >= kv->p.max_seqs || dst < 0 || dst >= kv->p.max_seqs || src == dst)
        return cg_err_set(err, CG_ERR_INVALID, "kv: cannot fork sequence %d into %d (ids 0..%d, distinct)", src, dst,
                          kv->p.max_seqs - 1);
    kv_seq *s = &kv->seqs[src], *d = &kv->seqs[dst];
    cg_status st = ensure_cap(d, s->n_table, err);
    if (st) return st;
    cg_kv_seq_clear(kv, dst);
    for (int i = 0; i < s->n_table; i++) {
        d->table[i] = s->table[i];
        kv->refcount[s->table[i]]++;
    }
    d->n_table = s->n_table;
    d->len = s->len;
    return CG_OK;
}

int cg_kv_seq_block(const cg_kv *kv, int seq, int i) {
    if (seq < 0 || seq >= kv->p.max_seqs || i < 0 || i >= kv->seqs[seq].n_table) return -1;
    return kv->seqs[seq].table[i];
}

void cg_kv_block_retain(cg_kv *kv, int b) {
    if (b < 0 || b >= kv->p.n_blocks || kv->refcount[b] < 1) return;
    kv->refcount[b]++;
}

void cg_kv_block_release(cg_kv *kv, int b) {
    if (b < 0 || b >= kv->p.n_blocks || kv->refcount[b] < 1) return;
    block_release(kv, b);
}

cg_status cg_kv_seq_assign(cg_kv *kv, int seq, const int *blocks, int n, cg_err *err) {
    if (seq < 0 || seq >= kv->p.max_seqs)
        return cg_err_set(err, CG_ERR_INVALID, "kv: sequence id %d out of range 0..%d", seq, kv->p.max_seqs - 1);
    if (n < 0 || (int64_t)n * kv->p.block_size > INT32_MAX)
        return cg_err_set(err, CG_ERR_INVALID, "kv: %d blocks cannot form one sequence", n);
    for (int i = 0; i < n; i++)
        if (blocks[i] < 0 || blocks[i] >= kv->p.n_blocks || kv->refcount[blocks[i]] < 1)
            return cg_err_set(err, CG_ERR_INVALID, "kv: block %d (entry %d) is not a live block of the pool", blocks[i],
                              i);
    kv_seq *s = &kv->seqs[seq];
    cg_status st = ensure_cap(s, n, err);
    if (st) return st;
    // References first: a block the sequence already holds must not reach zero while it is cleared.
    for (int i = 0; i < n; i++) kv->refcount[blocks[i]]++;
    cg_kv_seq_clear(kv, seq);
    for (int i = 0; i < n; i++) s->table[i] = blocks[i];
    s->n_table = n;
    s->len = (int32_t)n * kv->p.block_size;
    return CG_OK;
}

static void *row_ptr(cg_kv *kv, unsigned char **base, size_t block_bytes, int64_t n_embd, int layer, int seq,
                     int32_t pos) {
    if (layer < 0 || layer >= kv->p.n_layer || seq < 0 || seq >= kv->p.max_seqs) return NULL;
    kv_seq *s = &kv->seqs[seq];
    if (pos < 0 || pos >= s->len) return NULL;
    int b = s->table[pos / kv->p.block_size];
    return base[layer] + (size_t)b * block_bytes + (size_t)(pos % kv->p.block_size) * (size_t)n_embd * kv->elem;
}

void *cg_kv_k_row(cg_kv *kv, int layer, int seq, int32_t pos) {
    return row_ptr(kv, kv->k, kv->k_block_bytes, kv->p.n_embd_k, layer, seq, pos);
}

void *cg_kv_v_row(cg_kv *kv, int layer, int seq, int32_t pos) {
    return row_ptr(kv, kv->v, kv->v_block_bytes, kv->p.n_embd_v, layer, seq, pos);
}

int cg_kv_seq_blocks(const cg_kv *kv, int layer, int seq, const void **k, const void **v, int n) {
    if (layer < 0 || layer >= kv->p.n_layer || seq < 0 || seq >= kv->p.max_seqs) return 0;
    const kv_seq *s = &kv->seqs[seq];
    if (n > s->n_table) n = s->n_table;
    for (int i = 0; i < n; i++) {
        k[i] = kv->k[layer] + (size_t)s->table[i] * kv->k_block_bytes;
        v[i] = kv->v[layer] + (size_t)s->table[i] * kv->v_block_bytes;
    }
    return n;
}
