// num.h — overflow-checked integer arithmetic and small numeric helpers.
//
// Every size computed from untrusted input goes through these: they return false instead of
// wrapping. Header-only, pure functions.
#ifndef CG_BASE_NUM_H
#define CG_BASE_NUM_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static inline bool cg_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool cg_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
static inline bool cg_mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool cg_add_size(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

// Rounds x up to a multiple of `align` (a power of two or any non-zero value); false on overflow.
static inline bool cg_align_up_u64(uint64_t x, uint64_t align, uint64_t *out) {
    uint64_t r = x % align;
    if (r == 0) { *out = x; return true; }
    return cg_add_u64(x, align - r, out);
}

// Little-endian loads/stores from unaligned memory (GGUF and quant blocks are little-endian).
static inline uint16_t cg_le16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t cg_le32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t cg_le64(const void *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline float cg_lef32(const void *p) { float v; memcpy(&v, p, 4); return v; }
static inline double cg_lef64(const void *p) { double v; memcpy(&v, p, 8); return v; }

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "chingu assumes a little-endian host (GGUF is little-endian)"
#endif

#endif
