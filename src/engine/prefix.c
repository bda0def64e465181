// prefix.c — prefix cache entries (see prefix.h).
//
// Invariants: every entry holds n_tokens > 0, a multiple of block_size; entries[0..n) are distinct
// sequence ids; `tick` grows on every use, an entry's `used` is the tick of its last use.
#include "engine/prefix.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    int seq;
    int32_t *tokens;
    size_t n_tokens;
    uint64_t used;
} entry;

struct cg_prefix {
    int block_size;
    int max_entries;
    int n;
    uint64_t tick;
    entry *e;
};

cg_status cg_prefix_new(int max_entries, int block_size, cg_prefix **out, cg_err *err) {
    if (max_entries < 1 || block_size < 1)
        return cg_err_set(err, CG_ERR_INVALID, "prefix: max_entries %d and block_size %d must be >= 1", max_entries,
                          block_size);
    cg_prefix *p = calloc(1, sizeof *p);
    if (!p || !(p->e = calloc((size_t)max_entries, sizeof *p->e))) {
        free(p);
        return cg_err_set(err, CG_ERR_NOMEM, "prefix: out of memory");
    }
    p->block_size = block_size;
    p->max_entries = max_entries;
    *out = p;
    return CG_OK;
}

void cg_prefix_free(cg_prefix *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) free(p->e[i].tokens);
    free(p->e);
    free(p);
}

static size_t common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

static void remove_at(cg_prefix *p, int i) {
    free(p->e[i].tokens);
    p->e[i] = p->e[p->n - 1];
    p->n--;
}

int32_t cg_prefix_lookup(cg_prefix *p, const int32_t *tokens, size_t n, int *seq) {
    *seq = -1;
    if (n < 2) return 0;
    size_t best = 0;
    int i_best = -1;
    for (int i = 0; i < p->n; i++) {
        size_t m = common_prefix(p->e[i].tokens, p->e[i].n_tokens, tokens, n - 1);
        m -= m % (size_t)p->block_size;
        if (m > best) best = m, i_best = i;
    }
    if (i_best < 0) return 0;
    p->e[i_best].used = ++p->tick;
    *seq = p->e[i_best].seq;
    return (int32_t)best;
}

bool cg_prefix_insert(cg_prefix *p, int seq, const int32_t *tokens, size_t n, int32_t *n_keep, int evicted[2],
                      int *n_evicted) {
    *n_evicted = 0;
    size_t keep = n - n % (size_t)p->block_size;
    *n_keep = (int32_t)keep;
    if (keep == 0) return false;
    for (int i = 0; i < p->n; i++) {
        size_t m = common_prefix(p->e[i].tokens, p->e[i].n_tokens, tokens, keep);
        if (m == keep) {   // already covered: refresh that entry instead
            p->e[i].used = ++p->tick;
            return false;
        }
    }
    int32_t *copy = malloc(keep * sizeof *copy);
    if (!copy) return false;
    memcpy(copy, tokens, keep * sizeof *copy);
    // An entry the new one covers (its tokens are a prefix of the new ones) is dropped; at most one
    // per insert, so the caller's room of two (covered + LRU) always suffices.
    for (int i = 0; i < p->n;) {
        if (common_prefix(p->e[i].tokens, p->e[i].n_tokens, copy, keep) == p->e[i].n_tokens && *n_evicted < 1) {
            evicted[(*n_evicted)++] = p->e[i].seq;
            remove_at(p, i);
        } else {
            i++;
        }
    }
    if (p->n == p->max_entries) evicted[(*n_evicted)++] = cg_prefix_evict_lru(p);
    p->e[p->n++] = (entry){.seq = seq, .tokens = copy, .n_tokens = keep, .used = ++p->tick};
    return true;
}

int cg_prefix_evict_lru(cg_prefix *p) {
    if (p->n == 0) return -1;
    int i_old = 0;
    for (int i = 1; i < p->n; i++)
        if (p->e[i].used < p->e[i_old].used) i_old = i;
    int seq = p->e[i_old].seq;
    remove_at(p, i_old);
    return seq;
}

size_t cg_prefix_n_entries(const cg_prefix *p) { return (size_t)p->n; }

int64_t cg_prefix_n_blocks(const cg_prefix *p) {
    int64_t b = 0;
    for (int i = 0; i < p->n; i++) b += (int64_t)(p->e[i].n_tokens / (size_t)p->block_size);
    return b;
}
