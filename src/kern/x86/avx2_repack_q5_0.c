// avx2_repack_q5_0.c — AVX2 matmul over the repacked Q5_0 layout (kern/repack.h: Q5_0 x8,
// avx2_repack_q5_0.h), bit-identical with the stored-layout cg_avx2_vec_dot_q5_0 per row.
//
// Per block column of a row group (8 rows × 32 elements, 176 bytes): four qs loads and one qh load
// give the eight "registers" u_i (i < 8) of unsigned five-bit quants 0..31, u_i holding in 32-bit
// lane j row j's elements 4i..4i+3 (low nibble: and / shift-and; fifth bit: the qh vector shifted so
// that bit i lands on bit 4, and-ed with 0x10, or-ed in). For each token of the tile and each i,
// maddubs(u_i, the token's four quants 4i..4i+3 broadcast) gives int16 pairs (|·| ≤ 2·31·128 =
// 7936: no saturation) and madd with ones their int32 sum Σ u·a over the four elements;
// subtracting 16·Σ a over the same four gives exactly isum_i = Σ (q − 16)·a — the stored kernel's
// int32 lane i (its dot_i8 over the signed quants sums the same four products). Then
// acc_i = fma((float)isum_i, d_w·d_a, acc_i) per block in order, d_w·d_a one float product (the
// row's f16 scale times the token's, both converted exactly) — the stored kernel's lane-wise FMA,
// for 8 rows at once (row j in lane j). At the end y = ((acc_0 + acc_4) + (acc_2 + acc_6)) +
// ((acc_1 + acc_5) + (acc_3 + acc_7)) lane-wise: hsum_ps's order, as vertical adds (no shuffles).
// The token side data — the eight 16·Σ a per block (maddubs of 16 with the quants, madd with ones;
// |·| ≤ 4·16·128) and the scale as a float — is computed once per call into a stack buffer and read
// back with broadcast loads (no ALU work per row group).
//
// Cost (release build, gcc, counted in the disassembly): the one-token loop takes 113 instructions
// per block column — 14 per 32 weights per row, against ~22 for the stored row-pair dot — with the
// eight accumulators in registers: per register ~4 to unpack (shared by the tile's tokens) and per
// token maddubs, madd, sub, cvt, fma plus two broadcast loads. That per-token part is what the
// stored order costs (eight lanes, each its own convert and FMA per block), so wider tiles gain
// little (measured: ~9.5 ns per block column and token at 1, 2, 4, 8 and 64 tokens on the dev
// machine, in L2).
//
// Loop nest (as in avx2_repack.c): tokens in spans whose side data fits the buffer; per span, row
// groups in blocks of ~128 KiB of weights (kept in L2 while every token passes over them), tokens in
// tiles of TILE_TOK (each weight block unpacked once per tile) and one tile of the remainder. While
// the call has at most PF_MAX_TOK tokens (decode: the weights stream once) the lines PF_AHEAD bytes
// ahead are prefetched with fixed displacements per block (cg_avx2_pf_block in avx2_inline.h, as
// avx2_repack.c does: never past the caller's row range). No state.
#include "kern/x86/avx2_repack_q5_0.h"

#include <immintrin.h>
#include <string.h>

#include "kern/x86/avx2_inline.h"
#include "quant/blocks.h"

enum { QK = 32, ROWS = 8, TILE_TOK = 4, PF_MAX_TOK = 8, BLOCK_BYTES = 128 * 1024, PF_AHEAD = 2048 };

// The f16 value at p, converted (exactly) to float.
static inline float f16_at(const cg_f16 *p) {
    cg_f16 h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

// Lane i: 16·Σ of the quants 4i..4i+3 of one Q8_0 block (exact: |·| ≤ 4·16·128).
static inline __m256i corr_of(const int8_t *qs) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(16), _mm256_loadu_si256((const __m256i *)qs)),
                             _mm256_set1_epi16(1));
}

// Where a tile finds token t's block b: the quants at xq + t·xq_row + b·34 + 2; with PRE the
// corrections (corr_of, eight int32) at corr + 8·(t·nb + b) and the scale (float) at da[t·nb + b],
// precomputed once per call and read back with broadcast loads; without, computed per block.
typedef struct act_view {
    const unsigned char *xq;
    size_t xq_row;
    const int32_t *corr;
    const float *da;
    int64_t nb;
} act_view;

// acc[t][i] (t < NT) += register i of one block column (u: its unsigned quants) against token t.
static inline __attribute__((always_inline)) void reg_step(__m256 acc[][8], int i, __m256i u, const int8_t *const qs[],
                                                            const int32_t *const corr[], const __m256 s[], const int NT) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int t = 0; t < NT; t++) {
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(u, cg_avx2_bcast4(qs[t] + 4 * i)), ones);
        const __m256i isum = _mm256_sub_epi32(p, _mm256_set1_epi32(corr[t][i]));
        acc[t][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), s[t], acc[t][i]);
    }
}

// Y[t·ldy + 0..7] (t < NT) for one row group w (nb blocks) against NT Q8_0 activation rows. Source
// order keeps one unpacked register live at a time (register i, then its use by every token), so the
// one-token gemv holds its eight accumulators in registers.
static inline __attribute__((always_inline)) void tile(const cg_block_q5_0x8 *w, int64_t nb, const act_view av, float *Y,
                                                        int64_t ldy, const cg_avx2_pf *pf, const int NT, const bool PRE) {
    const size_t w_off = (size_t)((const unsigned char *)w - pf->base);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m10 = _mm256_set1_epi8(0x10);
    __m256 acc[TILE_TOK][8];
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < 8; i++) acc[t][i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        cg_avx2_pf_block(pf, w_off + (size_t)b * sizeof *w, sizeof *w, PF_AHEAD);
        const cg_block_q5_0x8 *blk = &w[b];
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk->d));
        const int8_t *qs[TILE_TOK];
        const int32_t *corr[TILE_TOK];
        _Alignas(32) int32_t own[TILE_TOK][8];   // !PRE only
        __m256 s[TILE_TOK];
        for (int t = 0; t < NT; t++) {
            const cg_block_q8_0 *a = (const cg_block_q8_0 *)(av.xq + (size_t)t * av.xq_row) + b;
            qs[t] = a->qs;
            if (PRE) {
                corr[t] = av.corr + 8 * (t * av.nb + b);
                s[t] = _mm256_mul_ps(dw, _mm256_broadcast_ss(&av.da[t * av.nb + b]));   // d_w·d_a per row
            } else {
                _mm256_store_si256((__m256i *)own[t], corr_of(a->qs));
                corr[t] = own[t];
                s[t] = _mm256_mul_ps(dw, _mm256_set1_ps(f16_at(&a->d)));
            }
        }
        const __m256i h = _mm256_loadu_si256((const __m256i *)blk->qh);
        // Register k (low nibbles) and k + 4 (high nibbles) from qs[32k..]; the fifth bit of
        // register i is bit i of h, shifted to bit 4.
        __m256i r = _mm256_loadu_si256((const __m256i *)(blk->qs + 0));
        reg_step(acc, 0, _mm256_or_si256(_mm256_and_si256(r, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m10)), qs,
                 corr, s, NT);
        reg_step(acc, 4, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(r, 4), m4), _mm256_and_si256(h, m10)), qs,
                 corr, s, NT);
        r = _mm256_loadu_si256((const __m256i *)(blk->qs + 32));
        reg_step(acc, 1, _mm256_or_si256(_mm256_and_si256(r, m4), _mm256_and_si256(_mm256_slli_epi16(h, 3), m10)), qs,
                 corr, s, NT);
        reg_step(acc, 5,
                 _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(r, 4), m4),
                                 _mm256_and_si256(_mm256_srli_epi16(h, 1), m10)),
                 qs, corr, s, NT);
        r = _mm256_loadu_si256((const __m256i *)(blk->qs + 64));
        reg_step(acc, 2, _mm256_or_si256(_mm256_and_si256(r, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m10)), qs,
                 corr, s, NT);
        reg_step(acc, 6,
                 _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(r, 4), m4),
                                 _mm256_and_si256(_mm256_srli_epi16(h, 2), m10)),
                 qs, corr, s, NT);
        r = _mm256_loadu_si256((const __m256i *)(blk->qs + 96));
        reg_step(acc, 3, _mm256_or_si256(_mm256_and_si256(r, m4), _mm256_and_si256(_mm256_slli_epi16(h, 1), m10)), qs,
                 corr, s, NT);
        reg_step(acc, 7,
                 _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(r, 4), m4),
                                 _mm256_and_si256(_mm256_srli_epi16(h, 3), m10)),
                 qs, corr, s, NT);
    }
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(Y + t * ldy, cg_avx2_lane_hsum8(acc[t]));
}

_Static_assert(TILE_TOK == 4, "the tile switch below covers widths 1..4");

// Side data (corrections and scales) of up to SIDE_BLOCKS (token, block) pairs on the stack (72 KiB):
// the tokens of a call go in spans whose side data fits (n_in 896: 73 tokens, 4864: 13), each span
// computed once and then run through the loop nest; rows of more than SIDE_BLOCKS blocks (n_in >
// 65536) have the tiles compute it per block instead, one token at a time.
enum { SIDE_BLOCKS = 2048 };

void cg_avx2_q5_0x8_matmul(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                           int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = n_in / QK, g_end = r1 / ROWS;
    const size_t row_group = (size_t)nb * sizeof(cg_block_q5_0x8);
    const int64_t g_blk = row_group < BLOCK_BYTES ? (int64_t)(BLOCK_BYTES / row_group) : 1;
    const cg_block_q5_0x8 *w = W;
    const unsigned char *x = xq;
    // Prefetch only when the weights stream through once (decode, small batches); a prefill reuses
    // each row block from L2, where the requests would only cost instructions.
    const size_t pf_end = n_tok <= PF_MAX_TOK ? (size_t)g_end * row_group : 0;
    _Alignas(32) int32_t corr[SIDE_BLOCKS][8];
    float da[SIDE_BLOCKS];
    const int64_t fit = nb <= SIDE_BLOCKS ? SIDE_BLOCKS / nb : 0;   // tokens whose side data fits
    const bool pre = fit > 0;
    const int64_t span = fit >= TILE_TOK ? fit / TILE_TOK * TILE_TOK : pre ? fit : 1;
    const int64_t chunk = span < TILE_TOK ? span : TILE_TOK;        // tokens per tile
    for (int64_t k0 = 0; k0 < n_tok; k0 += span) {
        const int64_t k1 = k0 + span < n_tok ? k0 + span : n_tok;
        if (pre)
            for (int64_t t = 0; t < k1 - k0; t++)
                for (int64_t b = 0; b < nb; b++) {
                    const cg_block_q8_0 *a = (const cg_block_q8_0 *)(x + (size_t)(k0 + t) * xq_row) + b;
                    _mm256_store_si256((__m256i *)corr[t * nb + b], corr_of(a->qs));
                    da[t * nb + b] = f16_at(&a->d);
                }
        for (int64_t gb = r0 / ROWS; gb < g_end; gb += g_blk) {
            const int64_t ge = gb + g_blk < g_end ? gb + g_blk : g_end;
            for (int64_t k = k0; k < k1; k += chunk) {
                const int64_t nt = k1 - k < chunk ? k1 - k : chunk;
                const act_view av = {x + (size_t)k * xq_row, xq_row, &corr[(k - k0) * nb][0], &da[(k - k0) * nb], nb};
                cg_avx2_pf pf = {(const unsigned char *)W, (size_t)gb * row_group, pf_end};
                cg_avx2_pf_upto(&pf, (size_t)gb * row_group + PF_AHEAD);   // the ramp; the tiles keep ahead
                for (int64_t g = gb; g < ge; g++) {
                    const cg_block_q5_0x8 *wg = w + g * nb;
                    float *yg = Y + k * ldy + g * ROWS;
                    if (!pre) {   // nt = 1 (see SIDE_BLOCKS)
                        tile(wg, nb, av, yg, ldy, &pf, 1, false);
                        continue;
                    }
                    switch (nt) {
                    case 1: tile(wg, nb, av, yg, ldy, &pf, 1, true); break;
                    case 2: tile(wg, nb, av, yg, ldy, &pf, 2, true); break;
                    case 3: tile(wg, nb, av, yg, ldy, &pf, 3, true); break;
                    default: tile(wg, nb, av, yg, ldy, &pf, TILE_TOK, true); break;
                    }
                }
            }
        }
    }
}
