// avx2_repack.c — AVX2 matmuls over the repacked Q4_0 and Q8_0 layouts (kern/repack.h,
// avx2_repack.h).
//
// One weight block column of a row group (8 rows × 32 elements, 144 bytes) is unpacked once into
// eight registers of unsigned nibbles, register i holding in 32-bit lane j row j's elements
// 4i..4i+3. For each activation row of the tile, the four Q8_0 quants of those elements are
// broadcast to all lanes, multiplied with maddubs (u8 nibble × s8 quant, pairs added into int16),
// and the eight products summed in int16 (|sum| ≤ 8 · 2 · 15 · 128 = 30720: no overflow), then into
// int32 per lane with madd — lane j = Σ nibble·quant over row j's block. Adding aux.bias = −8·Σ quant
// gives the exact integer block dot product isum; then acc = fma((float)isum, d_w·d_a, acc) per
// block in order — the reference's (and llama.cpp's) float order, so results are bit-identical.
// Loop nest (cache blocking), one driver for both layouts: row groups in blocks of ~128 KiB of
// weights (kept in L2 while every token passes over them), tokens in chunks of TILE_TOK (their
// activations stay in L1 while the block's groups pass), each chunk one tile: a weight block is
// unpacked once for up to TILE_TOK = 8 tokens (a remainder of 1..7 tokens gets its own tile
// width), and 25 % faster than chunks of 32 without row blocks. Calls of ≥ 5 tokens first copy
// each chunk's activation quants and side data into a packed stack buffer (block after block, the
// chunk's tokens side by side, at most 96 KiB: wider rows read in place), so a tile addresses all
// its tokens from one pointer with constant offsets instead of one register per token. Measured
// against the 4-token tiles without packing (one thread, qwen2.5-0.5b shapes, weights streamed,
// min per call): 5..8 tokens +7..14 % for the Q4_0 layers and +8..17 % for the Q8_0 head, 64
// tokens +25 %; 1..4 tokens within ±3 % (packing gains nothing there, so they read in place). A
// prefill (> 8 tokens) takes its chunks already packed by the caller (cg_q8_0_pack, made once per
// matmul, any width) when given them: packing here is per row block, so every thread re-read and
// re-packed all of the activations once per 128 KiB of its weights — for qwen2.5-0.5b's down
// projection (n_in 4864, 3.1 MB of packed activations at 512 tokens) that cost 10..18 % of the call
// (one thread, best of 10, interleaved: 118..128 GOP/s in place, 135..143 prepacked). The
// kernel is compute-bound from ~4 tokens on (same time with the weights in L3 as from DRAM). The
// loop order and the packing change which tile computes an element and from where it reads the
// same bytes, never its value. Software prefetch: a ramp of
// PF_AHEAD bytes at the start of each row block, then per weight block the lines PF_AHEAD bytes
// past it with fixed displacements (cg_avx2_pf_block, avx2_inline.h; never past the end of the
// caller's row range), as
// cg_qops_matvec does for the stored layout — decode streams the
// weights once, and the hardware prefetcher alone leaves the bandwidth under-used. PF_AHEAD is
// 1024: decode with 2 threads, blocks of 8 tokens alternating in one process, 2048 → 1024 took
// 4–7 % less time per token on qwen2.5-0.5b Q4_0 (5 pairs) and Q8_0, 3–6 % on llama-3.2-1b Q4_0 and
// Q8_0; 768 cost 1–2 % more than 1024, 1280 the same, 512 2–3 % more than 2048, 0 (no lead) 8–10 % more.
// (The K-quant kernels keep 2048: 1024 cost them 5–8 %, 3072 0–3 %.) 
// The Q8_0 x8 kernel has the same loop nest and tiles; per block column and k < 8 it loads the 32
// int8 weights holding in lane j row j's elements 4k..4k+3, and per token multiplies |w| (unsigned,
// ≤ 128) by the broadcast activation quants with w's sign moved onto them (sign_epi8; exact because
// Q8_0 activations from the quantizer lie in −127..127) — maddubs pairs reach at most 2·128·127 =
// 32512, so no int16 saturation — then madd into int32 lanes: lane j = row j's exact integer sum
// over the four elements, the stored kernel's SIMD lane k. Each is converted and accumulated on its
// own (acc[t][k] = fma(d_w·d_a, lanes, acc[t][k])) and the eight summed in hsum's tree at the end:
// the stored Q8_0 order, bit-identical (kern/repack.h). Tiles of more than one token keep their
// 8·NT accumulators partly on the stack. No state.
#include "kern/x86/avx2_repack.h"

#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "kern/x86/avx2_inline.h"
#include "quant/blocks.h"

enum { QK = 32, ROWS = 8, TILE_TOK = 8, BLOCK_BYTES = 128 * 1024, PF_AHEAD = 1024 };

// Where a tile finds token t's block b: quants at qs + t·t_qs + b·b_qs (32 bytes), side data at
// aux + t·t_aux + b·b_aux. Either the caller's rows (runtime strides) or the packed copy (constant
// strides after inlining: one pointer per block, no per-token address registers).
typedef struct act_view {
    const int8_t *qs;
    size_t t_qs, b_qs;
    const cg_q8_0_aux *aux;
    size_t t_aux, b_aux;
} act_view;

// Y[t·ldy + 0..7] (t < NT) for one row group w (nb blocks) against NT activation rows.
static inline __attribute__((always_inline)) void tile(const cg_block_q4_0x8 *w, int64_t nb, const act_view av,
                                                        float *Y, int64_t ldy, const cg_avx2_pf *pf, const int NT) {
    const size_t w_off = (size_t)((const unsigned char *)w - pf->base);
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256 acc[TILE_TOK];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        cg_avx2_pf_block(pf, w_off + (size_t)b * sizeof *w, sizeof *w, PF_AHEAD);
        __m256i q[8];
        for (int k = 0; k < 4; k++) {
            const __m256i r = _mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * k));
            q[k] = _mm256_and_si256(r, m4);
            q[k + 4] = _mm256_and_si256(_mm256_srli_epi16(r, 4), m4);
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w[b].d));
        for (int t = 0; t < NT; t++) {
            const int8_t *a = av.qs + (size_t)t * av.t_qs + (size_t)b * av.b_qs;
            const cg_q8_0_aux *x = av.aux + (size_t)t * av.t_aux + (size_t)b * av.b_aux;
            // Two partial sums (shorter dependency chains); int16 addition is exact here (bound above).
            __m256i s0 = _mm256_maddubs_epi16(q[0], cg_avx2_bcast4(a));
            __m256i s1 = _mm256_maddubs_epi16(q[1], cg_avx2_bcast4(a + 4));
            for (int i = 2; i < 8; i += 2) {
                s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(q[i], cg_avx2_bcast4(a + 4 * i)));
                s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(q[i + 1], cg_avx2_bcast4(a + 4 * i + 4)));
            }
            const __m256i s = _mm256_add_epi16(s0, s1);
            const __m256i isum = _mm256_add_epi32(_mm256_madd_epi16(s, ones), _mm256_set1_epi32(x->bias));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, _mm256_set1_ps(x->d)), acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(Y + t * ldy, acc[t]);
}

// Y[t·ldy + 0..7] (t < NT) for one Q8_0 x8 row group w (nb blocks) against NT activation rows, in
// the stored Q8_0 kernels' order (kern/repack.h): eight accumulators per token, register k's int32
// lane j (row j's elements 4k..4k+3) into acc[t][k] with one FMA per block, the hsum tree at the end.
static inline __attribute__((always_inline)) void tile8(const cg_block_q8_0x8 *w, int64_t nb, const act_view av,
                                                         float *Y, int64_t ldy, const cg_avx2_pf *pf, const int NT) {
    const size_t w_off = (size_t)((const unsigned char *)w - pf->base);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[TILE_TOK][8];
    for (int t = 0; t < NT; t++)
        for (int k = 0; k < 8; k++) acc[t][k] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        cg_avx2_pf_block(pf, w_off + (size_t)b * sizeof *w, sizeof *w, PF_AHEAD);
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w[b].d));
        __m256 sc[TILE_TOK];
        for (int t = 0; t < NT; t++) {
            const cg_q8_0_aux *x = av.aux + (size_t)t * av.t_aux + (size_t)b * av.b_aux;
            sc[t] = _mm256_mul_ps(dw, _mm256_set1_ps(x->d));   // d_w·d_a per row, one rounded product
        }
        for (int k = 0; k < 8; k++) {
            const __m256i wk = _mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * k));
            const __m256i aw = _mm256_abs_epi8(wk);
            for (int t = 0; t < NT; t++) {
                const int8_t *a = av.qs + (size_t)t * av.t_qs + (size_t)b * av.b_qs;
                const __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(cg_avx2_bcast4(a + 4 * k), wk));
                acc[t][k] = _mm256_fmadd_ps(sc[t], _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones)), acc[t][k]);
            }
        }
    }
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(Y + t * ldy, cg_avx2_lane_hsum8(acc[t]));
}

enum { KIND_Q4_0 = 0, KIND_Q8_0 = 1 };

// One tile of either layout; `kind` and `NT` are constants after inlining.
static inline __attribute__((always_inline)) void tile_any(const int kind, const void *wg, int64_t nb, const act_view av,
                                                            float *Y, int64_t ldy, const cg_avx2_pf *pf, const int NT) {
    if (kind == KIND_Q4_0) tile(wg, nb, av, Y, ldy, pf, NT);
    else tile8(wg, nb, av, Y, ldy, pf, NT);
}

// Packed activations of one chunk (≤ TILE_TOK tokens), block after block: the chunk's quants of
// block b (32 bytes per token), then their side data — PACK_BLK bytes per block.
// Calls of fewer than PACK_MIN_TOK tokens read the rows in place (measured: no gain from packing
// there, the copy only costs).
enum { PACK_QS = TILE_TOK * QK, PACK_BLK = PACK_QS + TILE_TOK * (int)sizeof(cg_q8_0_aux), PACK_MAX = 96 * 1024,
       PACK_MIN_TOK = 5 };

static void pack_chunk(const unsigned char *xq, size_t xq_row, const cg_q8_0_aux *aux, int64_t nb, int64_t nt,
                       unsigned char *dst) {
    for (int64_t t = 0; t < nt; t++) {
        const cg_block_q8_0 *a = (const cg_block_q8_0 *)(xq + (size_t)t * xq_row);
        for (int64_t b = 0; b < nb; b++) {
            memcpy(dst + (size_t)b * PACK_BLK + (size_t)t * QK, a[b].qs, QK);
            memcpy(dst + (size_t)b * PACK_BLK + PACK_QS + (size_t)t * sizeof(cg_q8_0_aux), &aux[t * nb + b],
                   sizeof(cg_q8_0_aux));
        }
    }
}

// The view of one packed chunk at c (pack_chunk's / cg_q8_0_pack's layout).
static inline act_view packed_view(const unsigned char *c) {
    return (act_view){(const int8_t *)c, QK, PACK_BLK, (const cg_q8_0_aux *)(c + PACK_QS), 1,
                      PACK_BLK / sizeof(cg_q8_0_aux)};
}

// The row groups [gb, ge) of one chunk of nt tokens (NT = nt, or the general case).
static inline __attribute__((always_inline)) void run_groups(const int kind, const unsigned char *w, size_t row_group,
                                                              int64_t nb, const act_view av, float *Y, int64_t ldy,
                                                              int64_t gb, int64_t ge, const cg_avx2_pf *pf, int64_t nt) {
    for (int64_t g = gb; g < ge; g++) {
        const void *wg = w + (size_t)g * row_group;
        float *yg = Y + g * ROWS;
        switch (nt) {
        case 1: tile_any(kind, wg, nb, av, yg, ldy, pf, 1); break;
        case 2: tile_any(kind, wg, nb, av, yg, ldy, pf, 2); break;
        case 3: tile_any(kind, wg, nb, av, yg, ldy, pf, 3); break;
        case 4: tile_any(kind, wg, nb, av, yg, ldy, pf, 4); break;
        case 5: tile_any(kind, wg, nb, av, yg, ldy, pf, 5); break;
        case 6: tile_any(kind, wg, nb, av, yg, ldy, pf, 6); break;
        case 7: tile_any(kind, wg, nb, av, yg, ldy, pf, 7); break;
        default: tile_any(kind, wg, nb, av, yg, ldy, pf, TILE_TOK); break;
        }
    }
}

// The loop nest of both kernels (see the top); blk_bytes = sizeof one 8-row block of the layout.
static inline __attribute__((always_inline)) void drive(const int kind, size_t blk_bytes, const void *W,
                                                         int64_t n_in, const void *xq, size_t xq_row,
                                                         const cg_q8_0_aux *aux, const void *pre, int64_t n_tok,
                                                         float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = n_in / QK, g_end = r1 / ROWS;
    const size_t row_group = (size_t)nb * blk_bytes;
    const int64_t g_blk = row_group < BLOCK_BYTES ? (int64_t)(BLOCK_BYTES / row_group) : 1;
    const unsigned char *w = W, *x = xq;
    // Prefetch only when the weights stream through once (n_tok ≤ one tile: decode, small batches);
    // a prefill reuses each row block from L2, where the requests would only cost instructions.
    const size_t pf_end = n_tok <= TILE_TOK ? (size_t)g_end * row_group : 0;
    // A prefill's chunks come packed by the caller (pre: read in place); else a call of ≥ PACK_MIN_TOK
    // tokens packs each chunk here, on the stack, when it fits.
    const bool prepacked = pre && n_tok > TILE_TOK;
    _Alignas(64) unsigned char pack[PACK_MAX];
    const bool packed = prepacked || (n_tok >= PACK_MIN_TOK && (size_t)nb * PACK_BLK <= sizeof pack);
    _Static_assert(PACK_QS % _Alignof(cg_q8_0_aux) == 0 && PACK_BLK % sizeof(cg_q8_0_aux) == 0, "pack layout");
    if (packed && !prepacked && n_tok <= TILE_TOK) pack_chunk(x, xq_row, aux, nb, n_tok, pack);
    for (int64_t gb = r0 / ROWS; gb < g_end; gb += g_blk) {
        const int64_t ge = gb + g_blk < g_end ? gb + g_blk : g_end;
        for (int64_t k = 0; k < n_tok; k += TILE_TOK) {
            const int64_t nt = n_tok - k < TILE_TOK ? n_tok - k : TILE_TOK;
            cg_avx2_pf pf = {w, (size_t)gb * row_group, pf_end};
            cg_avx2_pf_upto(&pf, (size_t)gb * row_group + PF_AHEAD);   // the ramp; the tiles keep ahead
            if (prepacked) {
                const unsigned char *c = (const unsigned char *)pre + (size_t)(k / TILE_TOK) * (size_t)nb * PACK_BLK;
                run_groups(kind, w, row_group, nb, packed_view(c), Y + k * ldy, ldy, gb, ge, &pf, nt);
            } else if (packed) {
                if (n_tok > TILE_TOK) pack_chunk(x + (size_t)k * xq_row, xq_row, aux + k * nb, nb, nt, pack);
                run_groups(kind, w, row_group, nb, packed_view(pack), Y + k * ldy, ldy, gb, ge, &pf, nt);
            } else {
                const act_view vd = {(const int8_t *)(x + (size_t)k * xq_row) + offsetof(cg_block_q8_0, qs), xq_row,
                                     sizeof(cg_block_q8_0), aux + k * nb, (size_t)nb, 1};
                run_groups(kind, w, row_group, nb, vd, Y + k * ldy, ldy, gb, ge, &pf, nt);
            }
        }
    }
}

_Static_assert(TILE_TOK == 8, "run_groups' switch covers tile widths 1..8");
_Static_assert((int)TILE_TOK == (int)CG_PACK_TOK && (int)PACK_BLK == (int)CG_PACK_BLK, "pack_chunk writes the layout of cg_q8_0_pack");

void cg_avx2_q8_0x8_matmul(const void *W, int64_t n_in, const void *xq, size_t xq_row, const cg_q8_0_aux *aux,
                           const void *packed, int64_t n_tok, float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    drive(KIND_Q8_0, sizeof(cg_block_q8_0x8), W, n_in, xq, xq_row, aux, packed, n_tok, Y, ldy, r0, r1);
}

void cg_avx2_q4_0x8_matmul(const void *W, int64_t n_in, const void *xq, size_t xq_row, const cg_q8_0_aux *aux,
                           const void *packed, int64_t n_tok, float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    drive(KIND_Q4_0, sizeof(cg_block_q4_0x8), W, n_in, xq, xq_row, aux, packed, n_tok, Y, ldy, r0, r1);
}
