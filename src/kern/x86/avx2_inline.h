// avx2_inline.h — small always-inline helpers shared by the repacked AVX2 kernels (avx2_repack.c,
// avx2_repack_k.c, avx2_repack_q5_0.c, avx2_repack_q6k.c). Include only from files compiled with -mavx2 (src/kern/x86/*.c). No state.
//
// cg_avx2_pf: software prefetch of a weight stream — the lines of base[next, end) not yet requested
// (offsets, so no out-of-range pointer is ever formed); cg_avx2_pf_upto requests every line below
// `upto` (capped at end), cg_avx2_pf_block the lines of one block a fixed distance ahead.
// cg_avx2_bcast4: four int8 values broadcast to all eight 32-bit lanes.
// cg_avx2_lane_hsum8: the per-row sums of eight lane accumulators.
#ifndef CG_KERN_X86_AVX2_INLINE_H
#define CG_KERN_X86_AVX2_INLINE_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { CG_AVX2_PF_LINE = 64 };

typedef struct cg_avx2_pf {
    const unsigned char *base;
    size_t next, end;
} cg_avx2_pf;

static inline void cg_avx2_pf_upto(cg_avx2_pf *pf, size_t upto) {
    if (upto > pf->end) upto = pf->end;
    for (; pf->next < upto; pf->next += CG_AVX2_PF_LINE) _mm_prefetch((const char *)pf->base + pf->next, _MM_HINT_T0);
}

// Eight accumulators of one row group, register i holding lane i of every row (row j in 32-bit lane
// j): per row the horizontal sum of its eight lanes in hsum_ps's / ggml's hsum_float_8 order,
// ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7)), as vertical adds (the stored-order x8 kernels).
static inline __m256 cg_avx2_lane_hsum8(const __m256 v[8]) {
    return _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(v[0], v[4]), _mm256_add_ps(v[2], v[6])),
                         _mm256_add_ps(_mm256_add_ps(v[1], v[5]), _mm256_add_ps(v[3], v[7])));
}

// Software prefetch of a weight stream, one call per block of `len` bytes at offset `off`: the
// lines holding bytes off + ahead + {0, 64, 128, ...} (len/64 + 1 addresses, fixed displacements
// from one pointer, no loop after inlining with constant len). Consecutive blocks give addresses at
// most 64 bytes apart, so every line of the stream is requested once its block is `ahead` bytes
// ahead. Only while the last address lies below pf->end (the caller's range: no pointer out of it is
// formed); the last few lines of a range go without (the demand loads fetch them). The former
// line-by-line loop (cg_avx2_pf_upto: a bounds check and a branch per line) took ~15 of the ~67
// instructions executed per 1-token Q4_0 x8 block (8 rows × 32 weights); this takes ~7, so the block
// costs ~59 (Q8_0 x8: ~80 → 66), counted in the release build's disassembly.
static inline __attribute__((always_inline)) void cg_avx2_pf_block(const cg_avx2_pf *pf, size_t off,
                                                                   const size_t len, const size_t ahead) {
    const size_t n = len / CG_AVX2_PF_LINE + 1, last = off + ahead + (n - 1) * CG_AVX2_PF_LINE;
    if (last >= pf->end) return;
    const char *p = (const char *)pf->base + off + ahead;
    for (size_t i = 0; i < n; i++) _mm_prefetch(p + i * CG_AVX2_PF_LINE, _MM_HINT_T0);
}

static inline __m256i cg_avx2_bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

#endif
