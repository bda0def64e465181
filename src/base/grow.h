// grow.h — growing a malloc'ed array in place, overflow-checked.
//
// cg_grow makes *p (an array of *cap elements of `elem` bytes) hold at least `need` elements,
// doubling from 64; *p and *cap change only on success. Returns false on overflow or when realloc
// fails (the old array is then untouched and still owned by the caller). Header-only.
#ifndef CG_BASE_GROW_H
#define CG_BASE_GROW_H

#include <stdbool.h>
#include <stdlib.h>

#include "base/num.h"

static inline bool cg_grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        if (!cg_mul_size(c, 2, &c)) return false;
    size_t bytes;
    if (!cg_mul_size(c, elem, &bytes)) return false;
    void *q = realloc(*p, bytes);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

#endif
