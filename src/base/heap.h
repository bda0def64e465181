// heap.h — a binary heap of fixed-size elements in a growable array (the tokenizers' merge queues).
//
// `before(a, b)` is a strict order: true when a must come out before b. cg_heap_pop removes an
// element that no other element is before; among equals the order is whatever the sifting gives,
// so callers that need a total order put the tie-break into `before` (both tokenizers do: leftmost
// first). Pass the same `before` to every call on one heap; being a constant argument of an inline
// function, it is inlined.
//
// Ownership: the heap owns `v` (malloc'ed; cg_heap_free releases it). A zeroed cg_heap with `elem`
// set is empty and valid: `cg_heap h = {.elem = sizeof(T)}`. Not thread-safe. Header-only.
#ifndef CG_BASE_HEAP_H
#define CG_BASE_HEAP_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/grow.h"

typedef bool (*cg_heap_before_fn)(const void *a, const void *b);

typedef struct cg_heap {
    unsigned char *v;   // owned: cap elements of `elem` bytes, the first n in heap order
    size_t n, cap;
    size_t elem;        // element size in bytes (> 0), set by the caller
} cg_heap;

#define CG_HEAP_AT(h, i) ((h)->v + (i) * (h)->elem)

// Adds a copy of *x (which must not point into the heap). Returns false when memory runs out; the
// heap is then unchanged.
static inline bool cg_heap_push(cg_heap *h, const void *x, cg_heap_before_fn before) {
    if (!cg_grow((void **)&h->v, &h->cap, h->n + 1, h->elem)) return false;
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(x, CG_HEAP_AT(h, parent))) break;
        memcpy(CG_HEAP_AT(h, i), CG_HEAP_AT(h, parent), h->elem);
        i = parent;
    }
    memcpy(CG_HEAP_AT(h, i), x, h->elem);
    return true;
}

// Moves the first element into *out. Requires h->n > 0.
static inline void cg_heap_pop(cg_heap *h, void *out, cg_heap_before_fn before) {
    memcpy(out, h->v, h->elem);
    size_t n = --h->n;
    const unsigned char *last = CG_HEAP_AT(h, n);   // stays in place (index n) while sifting below n
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const unsigned char *best = last;
        if (l < n && before(CG_HEAP_AT(h, l), best)) {
            m = l;
            best = CG_HEAP_AT(h, l);
        }
        if (r < n && before(CG_HEAP_AT(h, r), best)) m = r;
        if (m == i) break;
        memcpy(CG_HEAP_AT(h, i), CG_HEAP_AT(h, m), h->elem);
        i = m;
    }
    if (n) memcpy(CG_HEAP_AT(h, i), last, h->elem);
}

static inline void cg_heap_free(cg_heap *h) {
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

#endif
