// prefix.c — the prefix cache's radix tree over KV blocks (see prefix.h).
//
// Nodes live in a fixed array of `cap` slots (free slots on a stack); node i's tokens are
// toks[i*bs .. (i+1)*bs). Invariants:
//   - a live node holds exactly one reference on its KV block (taken in insert, dropped in remove);
//   - (parent, tokens) is unique among live nodes, and every live node is in hash bucket
//     hash(parent, tokens) & mask exactly once;
//   - n_children counts live nodes naming the node as parent; n_leaves counts live nodes with none;
//   - on the recency list (head = most recent) every node is ahead of all its descendants, except
//     transiently inside cg_prefix_insert, where only pinned (on-path) nodes may be out of place —
//     so the tail, when not pinned, is a leaf.
#include "engine/prefix.h"

#include <stdlib.h>
#include <string.h>

#define ROOT (-1)
#define NONE (-1)

typedef struct node {
    int parent;     // node index, ROOT for a first block
    int block;      // KV block id
    int n_children;
    int hnext;      // next node in the same hash bucket
    int prev, next; // recency list: prev is more recent
    uint64_t hash;
    bool pinned;    // on the path cg_prefix_insert is extending
} node;

struct cg_prefix {
    cg_kv *kv;      // borrowed
    int bs, cap;
    node *nodes;    // [cap]
    int32_t *toks;  // [cap * bs]
    int *free_ids;  // [cap] stack of free slots
    int n_free;
    int *buckets;   // [mask + 1] first node of each bucket, NONE when empty
    uint64_t mask;
    int head, tail;
    int n_leaves;
    int *path;      // [cap] scratch: node ids along a walk
    int *blk;       // [cap] scratch: their KV blocks
};

static uint64_t block_hash(int parent, const int32_t *t, int bs) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)(uint32_t)(parent + 1);
    for (int i = 0; i < bs; i++) {
        h ^= (uint32_t)t[i];
        h *= 0x100000001B3ull;
        h ^= h >> 29;
    }
    return h;
}

cg_status cg_prefix_new(cg_kv *kv, int max_blocks, cg_prefix **out, cg_err *err) {
    *out = NULL;
    int bs = cg_kv_get_params(kv)->block_size;
    if (max_blocks < 1 || max_blocks > (1 << 24))
        return cg_err_set(err, CG_ERR_INVALID, "prefix: max_blocks %d out of range 1..16777216", max_blocks);
    cg_prefix *p = calloc(1, sizeof *p);
    if (!p) return cg_err_set(err, CG_ERR_NOMEM, "prefix: out of memory");
    p->kv = kv;
    p->bs = bs;
    p->cap = max_blocks;
    uint64_t nb = 16;
    while (nb < 2 * (uint64_t)max_blocks) nb *= 2;
    p->mask = nb - 1;
    p->nodes = calloc((size_t)max_blocks, sizeof *p->nodes);
    p->toks = calloc((size_t)max_blocks * (size_t)bs, sizeof *p->toks);   // ≤ 2^24 * 4096 * 4 bytes: fits size_t
    p->free_ids = malloc((size_t)max_blocks * sizeof *p->free_ids);
    p->buckets = malloc((size_t)nb * sizeof *p->buckets);
    p->path = malloc((size_t)max_blocks * sizeof *p->path);
    p->blk = malloc((size_t)max_blocks * sizeof *p->blk);
    if (!p->nodes || !p->toks || !p->free_ids || !p->buckets || !p->path || !p->blk) {
        cg_prefix_free(p);
        return cg_err_set(err, CG_ERR_NOMEM, "prefix: out of memory for %d blocks of %d tokens", max_blocks, bs);
    }
    for (int i = 0; i < max_blocks; i++) p->free_ids[i] = max_blocks - 1 - i;
    p->n_free = max_blocks;
    for (uint64_t i = 0; i < nb; i++) p->buckets[i] = NONE;
    p->head = p->tail = NONE;
    *out = p;
    return CG_OK;
}

void cg_prefix_free(cg_prefix *p) {
    if (!p) return;
    // Live nodes are exactly the ones on the recency list.
    for (int i = p->head; i != NONE; i = p->nodes[i].next) cg_kv_block_release(p->kv, p->nodes[i].block);
    free(p->nodes);
    free(p->toks);
    free(p->free_ids);
    free(p->buckets);
    free(p->path);
    free(p->blk);
    free(p);
}

// ---- recency list ----------------------------------------------------------------------------------

static void list_unlink(cg_prefix *p, int i) {
    node *n = &p->nodes[i];
    if (n->prev != NONE) p->nodes[n->prev].next = n->next; else p->head = n->next;
    if (n->next != NONE) p->nodes[n->next].prev = n->prev; else p->tail = n->prev;
    n->prev = n->next = NONE;
}

static void list_push_front(cg_prefix *p, int i) {
    node *n = &p->nodes[i];
    n->prev = NONE;
    n->next = p->head;
    if (p->head != NONE) p->nodes[p->head].prev = i; else p->tail = i;
    p->head = i;
}

// Marks path[0..depth) used: deepest first, so every ancestor ends up ahead of its descendants.
static void touch(cg_prefix *p, const int *path, int depth) {
    for (int k = depth - 1; k >= 0; k--) {
        list_unlink(p, path[k]);
        list_push_front(p, path[k]);
    }
}

// ---- tree ----------------------------------------------------------------------------------------

static int find_child(const cg_prefix *p, int parent, const int32_t *t) {
    uint64_t h = block_hash(parent, t, p->bs);
    for (int i = p->buckets[h & p->mask]; i != NONE; i = p->nodes[i].hnext) {
        const node *n = &p->nodes[i];
        if (n->hash == h && n->parent == parent && !memcmp(p->toks + (size_t)i * (size_t)p->bs, t, (size_t)p->bs * sizeof *t))
            return i;
    }
    return NONE;
}

// Follows tokens[0..nb blocks) from the root; fills p->path, returns the depth reached.
static int walk(cg_prefix *p, const int32_t *tokens, size_t nb) {
    int cur = ROOT, depth = 0;
    for (size_t k = 0; k < nb && depth < p->cap; k++) {
        int c = find_child(p, cur, tokens + k * (size_t)p->bs);
        if (c == NONE) break;
        p->path[depth++] = c;
        cur = c;
    }
    return depth;
}

// Removes leaf i: unhooks it from its bucket, the list and its parent, and drops its block reference.
static void remove_leaf(cg_prefix *p, int i) {
    node *n = &p->nodes[i];
    int *pp = &p->buckets[n->hash & p->mask];
    while (*pp != i) pp = &p->nodes[*pp].hnext;
    *pp = n->hnext;
    list_unlink(p, i);
    cg_kv_block_release(p->kv, n->block);
    if (n->parent != ROOT && --p->nodes[n->parent].n_children == 0) p->n_leaves++;
    p->n_leaves--;
    p->free_ids[p->n_free++] = i;
}

int32_t cg_prefix_match(cg_prefix *p, const int32_t *tokens, size_t n) {
    if (n < 2) return 0;
    int depth = walk(p, tokens, (n - 1) / (size_t)p->bs);
    touch(p, p->path, depth);
    return (int32_t)depth * p->bs;
}

int32_t cg_prefix_attach(cg_prefix *p, const int32_t *tokens, size_t n, int seq) {
    cg_kv_seq_clear(p->kv, seq);
    if (n < 2) return 0;
    int depth = walk(p, tokens, (n - 1) / (size_t)p->bs);
    if (depth == 0) return 0;
    for (int k = 0; k < depth; k++) p->blk[k] = p->nodes[p->path[k]].block;
    if (cg_kv_seq_assign(p->kv, seq, p->blk, depth, NULL) != CG_OK) {
        cg_kv_seq_clear(p->kv, seq);
        return 0;
    }
    touch(p, p->path, depth);
    return (int32_t)depth * p->bs;
}

int cg_prefix_insert(cg_prefix *p, int seq, const int32_t *tokens, size_t n) {
    int32_t len = cg_kv_seq_len(p->kv, seq);
    if (len <= 0) return 0;
    if ((size_t)len < n) n = (size_t)len;
    size_t nb = n / (size_t)p->bs;
    int cur = ROOT, depth = 0, added = 0;
    for (size_t k = 0; k < nb && depth < p->cap; k++) {
        const int32_t *t = tokens + k * (size_t)p->bs;
        int c = find_child(p, cur, t);
        if (c == NONE) {
            int b = cg_kv_seq_block(p->kv, seq, (int)k);
            if (b < 0) break;
            // A full cache gives up its least recently used leaf, never one on this path.
            if (p->n_free == 0 && (p->tail == NONE || p->nodes[p->tail].pinned)) break;
            if (p->n_free == 0) remove_leaf(p, p->tail);
            c = p->free_ids[--p->n_free];
            node *nn = &p->nodes[c];
            *nn = (node){.parent = cur, .block = b, .hash = block_hash(cur, t, p->bs), .prev = NONE, .next = NONE};
            memcpy(p->toks + (size_t)c * (size_t)p->bs, t, (size_t)p->bs * sizeof *t);
            nn->hnext = p->buckets[nn->hash & p->mask];
            p->buckets[nn->hash & p->mask] = c;
            list_push_front(p, c);
            cg_kv_block_retain(p->kv, b);
            if (cur != ROOT && p->nodes[cur].n_children++ == 0) p->n_leaves--;
            p->n_leaves++;
            added++;
        }
        p->nodes[c].pinned = true;
        p->path[depth++] = c;
        cur = c;
    }
    for (int k = 0; k < depth; k++) p->nodes[p->path[k]].pinned = false;
    touch(p, p->path, depth);
    return added;
}

bool cg_prefix_evict_leaf(cg_prefix *p) {
    if (p->tail == NONE) return false;
    remove_leaf(p, p->tail);
    return true;
}

int64_t cg_prefix_n_blocks(const cg_prefix *p) { return (int64_t)(p->cap - p->n_free); }
size_t cg_prefix_n_leaves(const cg_prefix *p) { return (size_t)p->n_leaves; }
