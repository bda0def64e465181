// arena.c — chunked bump allocator. Invariant: head->used <= head->cap; chunk payload is 64-byte
// aligned so any align ≤ 64 is satisfied by rounding the offset.
#include "base/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"

struct cg_arena_chunk {
    cg_arena_chunk *next;
    size_t cap, used;
    _Alignas(64) unsigned char data[];
};

void cg_arena_init(cg_arena *a, size_t chunk_size) {
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 64 * 1024;
    a->n_used_total = 0;
}

void *cg_arena_alloc(cg_arena *a, size_t size, size_t align) {
    if (align == 0) align = 1;
    if (align > 64 || (align & (align - 1))) return NULL;
    cg_arena_chunk *c = a->head;
    if (c) {
        size_t off = (c->used + align - 1) & ~(align - 1);
        if (off <= c->cap && size <= c->cap - off) {
            c->used = off + size;
            a->n_used_total += size;
            return c->data + off;
        }
    }
    size_t cap = a->chunk_size > size ? a->chunk_size : size;
    size_t total;
    if (!cg_add_size(sizeof(cg_arena_chunk), cap, &total)) return NULL;
    c = aligned_alloc(64, (total + 63) & ~(size_t)63);
    if (!c) return NULL;
    c->next = a->head;
    c->cap = cap;
    c->used = size;
    a->head = c;
    a->n_used_total += size;
    return c->data;
}

void *cg_arena_calloc(cg_arena *a, size_t n, size_t size, size_t align) {
    size_t total;
    if (!cg_mul_size(n, size, &total)) return NULL;
    void *p = cg_arena_alloc(a, total, align);
    if (p) memset(p, 0, total);
    return p;
}

char *cg_arena_strndup(cg_arena *a, const char *s, size_t n) {
    if (n == SIZE_MAX) return NULL;
    char *p = cg_arena_alloc(a, n + 1, 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void cg_arena_reset(cg_arena *a) {
    if (!a->head) return;
    // Keep the oldest chunk (usually the right size), free the rest.
    cg_arena_chunk *c = a->head, *keep = NULL;
    while (c) {
        cg_arena_chunk *next = c->next;
        if (!next) keep = c;
        else free(c);
        c = next;
    }
    keep->used = 0;
    keep->next = NULL;
    a->head = keep;
    a->n_used_total = 0;
}

void cg_arena_free(cg_arena *a) {
    if (!a) return;
    cg_arena_chunk *c = a->head;
    while (c) {
        cg_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->n_used_total = 0;
}
