// qops.c — ISA selection for the quantized kernels and the ISA-independent loops over them
// (matrix-vector with prefetch, row-tiled matrix-matrix). The tables themselves live with their
// kernels (x86/avx2_quant.c, arm/neon.c); the generic table is empty, so every lookup falls back to
// the scalar reference in the traits. Nothing here has state.
#include "kern/qops.h"

#if defined(__x86_64__)
#include "kern/x86/avx2.h"
#endif
#if defined(__aarch64__)
#include "kern/arm/neon.h"
#endif

static const cg_qops GENERIC = {.name = "generic"};

const cg_qops *cg_qops_for(cg_isa isa) {
    if (!cg_cpu_isa_available(isa)) return &GENERIC;
#if defined(__x86_64__)
    if (isa == CG_ISA_AVX2) return cg_qops_avx2();
#endif
#if defined(__aarch64__)
    if (isa == CG_ISA_NEON) return cg_qops_neon();
#endif
    return &GENERIC;
}

const cg_qops *cg_qops_get(void) { return cg_qops_for(cg_cpu_isa()); }

cg_vec_dot_fn cg_qops_vec_dot(const cg_qops *ops, uint32_t t) {
    const cg_qtype_traits *tr = cg_qtype_get(t);
    if (!tr) return NULL;
    return ops->vec_dot[t] ? ops->vec_dot[t] : tr->vec_dot;
}

cg_from_f32_fn cg_qops_quant_act(const cg_qops *ops, uint32_t t) {
    const cg_qtype_traits *tr = cg_qtype_get(t);
    if (!tr) return NULL;
    return ops->quant_act[t] ? ops->quant_act[t] : tr->from_f32_act;
}

// Matvec streams its rows as one contiguous run of bytes. Before each row it prefetches (into all
// cache levels) every line up to PF_AHEAD bytes past the end of that row, so about PF_AHEAD bytes
// of loads are always in flight on top of what the hardware prefetcher fetches. Measured on the
// dev machine (AMD EPYC, CPU time, one thread, 256 MiB of rows): Q8_0 with 896-element rows went
// from 5.1 to 12.5 GB/s against the former "8 lines of the row two ahead, non-temporal" hint, which
// was slower than no hint at all; 2 KiB was the best of 0.5–8 KiB for Q8_0, Q4_K and Q6_K rows of
// 896 and 4864 elements. Lines are never prefetched past the end of the caller's range.
enum { PF_AHEAD = 2048, PF_LINE = 64 };

void cg_qops_matvec(const cg_qops *ops, uint32_t t, const void *W, size_t row_bytes, int64_t n_in, const void *xq,
                    float *y, int64_t r0, int64_t r1) {
    const cg_vec_dot_fn dot = cg_qops_vec_dot(ops, t);
    const unsigned char *w = (const unsigned char *)W;
    // Offsets rather than pointers: the prefetch position may run past the range (never dereferenced).
    const size_t end = (size_t)r1 * row_bytes;
    size_t pf = (size_t)r0 * row_bytes + PF_AHEAD;   // next line to prefetch
    const cg_vec_dot_x2_fn dot2 = t < CG_QTYPE_COUNT ? ops->vec_dot_x2[t] : NULL;
    const int step = dot2 ? 2 : 1;
    for (int64_t r = r0; r < r1; r += step) {
        const size_t row = (size_t)r * row_bytes;
        size_t lim = row + (size_t)step * row_bytes + PF_AHEAD;
        if (lim > end) lim = end;
        for (; pf < lim; pf += PF_LINE) __builtin_prefetch(w + pf, 0, 3);
        if (dot2 && r + 1 < r1)
            dot2(n_in, &y[r - r0], w + row, w + row + row_bytes, xq);
        else
            dot(n_in, &y[r - r0], w + row, xq);
    }
}

// Rows per tile: a tile of weights stays in L2 while every token passes over it.
enum { TILE_ROWS = 16 };

void cg_qops_matmul(const cg_qops *ops, uint32_t t, const void *W, size_t row_bytes, int64_t n_in, const void *xq,
                    size_t xq_row, int64_t n_tok, float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    const cg_vec_dot_fn dot = cg_qops_vec_dot(ops, t);
    const cg_vec_dot_n_fn dot_n = t < CG_QTYPE_COUNT ? ops->vec_dot_n[t] : NULL;
    const cg_vec_dot_2n_fn dot_2n = t < CG_QTYPE_COUNT ? ops->vec_dot_2n[t] : NULL;
    const unsigned char *w = (const unsigned char *)W, *x = (const unsigned char *)xq;
    for (int64_t rt = r0; rt < r1; rt += TILE_ROWS) {
        const int64_t re = rt + TILE_ROWS < r1 ? rt + TILE_ROWS : r1;
        for (int64_t k0 = 0; k0 < n_tok; k0 += CG_QOPS_MAX_NY) {
            const int n_y = (int)(n_tok - k0 < CG_QOPS_MAX_NY ? n_tok - k0 : CG_QOPS_MAX_NY);
            int64_t r = rt;
            if (dot_2n && n_y > 1)
                for (; r + 1 < re; r += 2) {
                    float s[2 * CG_QOPS_MAX_NY];
                    dot_2n(n_in, s, w + (size_t)r * row_bytes, w + (size_t)(r + 1) * row_bytes, x + (size_t)k0 * xq_row,
                           xq_row, n_y);
                    for (int k = 0; k < n_y; k++) {
                        Y[(k0 + k) * ldy + r] = s[k];
                        Y[(k0 + k) * ldy + r + 1] = s[CG_QOPS_MAX_NY + k];
                    }
                }
            for (; r < re; r++) {
                const void *wr = w + (size_t)r * row_bytes;
                if (dot_n && n_y > 1) {
                    float s[CG_QOPS_MAX_NY];
                    dot_n(n_in, s, wr, x + (size_t)k0 * xq_row, xq_row, n_y);
                    for (int k = 0; k < n_y; k++) Y[(k0 + k) * ldy + r] = s[k];
                } else {
                    for (int k = 0; k < n_y; k++) dot(n_in, &Y[(k0 + k) * ldy + r], wr, x + (size_t)(k0 + k) * xq_row);
                }
            }
        }
    }
}
