// arena.h — bump allocator for per-step scratch and parse-time tables.
//
// Memory comes from a chain of chunks owned by the arena; cg_arena_reset keeps the first chunk
// and frees the rest, cg_arena_free releases everything. Pointers returned are valid until the next
// reset/free. Not thread-safe: one arena per thread or per owner.
#ifndef CG_BASE_ARENA_H
#define CG_BASE_ARENA_H

#include <stddef.h>

typedef struct cg_arena_chunk cg_arena_chunk;

typedef struct cg_arena {
    cg_arena_chunk *head;   // owned chain, newest first
    size_t chunk_size;      // default size of a new chunk
    size_t n_used_total;    // bytes handed out since the last reset (statistics)
} cg_arena;

// Initialises an empty arena; no memory is allocated until the first cg_arena_alloc.
void cg_arena_init(cg_arena *a, size_t chunk_size);

// Returns `size` bytes aligned to `align` (a power of two ≤ 64), or NULL when out of memory.
void *cg_arena_alloc(cg_arena *a, size_t size, size_t align);
// As cg_arena_alloc, zero-filled; n*size overflow returns NULL.
void *cg_arena_calloc(cg_arena *a, size_t n, size_t size, size_t align);
// Copies a string of n bytes plus a NUL terminator into the arena.
char *cg_arena_strndup(cg_arena *a, const char *s, size_t n);

void cg_arena_reset(cg_arena *a);
void cg_arena_free(cg_arena *a);   // accepts a zeroed arena

#endif
