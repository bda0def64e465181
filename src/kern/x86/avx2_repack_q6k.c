// avx2_repack_q6k.c — AVX2 matmul over the repacked Q6_K layout (kern/repack.h, avx2_repack_k.h).
//
// Per super-block column of a row group (8 rows × 256 elements, 1680 bytes), for each half h and
// k < 8: one 32-byte qh load and two ql loads give, with a shift and two masks each, the six-bit
// quants of elements 128h + 32c + 4k..+3 (c < 4) of the 8 rows, one row per 32-bit lane. maddubs
// multiplies them (u8 ≤ 63) with the token's four broadcast Q8_K quants (pairs into int16:
// |·| ≤ 2·63·128 = 16128); the products of k = 2u and 2u + 1 are added in int16 (≤ 32256: no
// overflow) and madd with the lane's sub-block scale (in both int16 halves) gives sc · (q · a) over
// 8 elements exactly in int32; over the 16 sub-blocks that is Σ sc·(Σ q·a). The −32 offset: madd of
// the lanes' scale pairs (sc_2t, sc_2t+1) with the token's bsums pairs gives Σ sc·bsum, and
// isum = Σ sc·(Σ q·a) − 32·Σ sc·bsum, the exact integer of the reference. Then, per super-block in
// order, acc = fma((float)isum, d_w·d_a, acc) — the reference's float order, so results are
// bit-identical with cg_repack_q6_Kx8_matmul_ref.
// Loop nest as in avx2_repack_k.c: row groups in blocks of ~128 KiB of weights, tokens in chunks of
// 8, tiles of 4 tokens and one tile of 1..3; prefetching only when the weights stream once (decode).
// No state.
#include <immintrin.h>
#include <string.h>

#include "kern/x86/avx2_inline.h"
#include "kern/x86/avx2_repack_k.h"
#include "quant/blocks.h"

enum { QKK = 256, ROWS = 8, TILE_TOK = 4, CHUNK_TOK = 8, BLOCK_BYTES = 128 * 1024, PF_AHEAD = 2048 };

// Software prefetch of the weight stream (decode only): a ramp of PF_AHEAD bytes where a row block
// starts, then at each of a super-block's 16 steps k the two lines at PF_AHEAD + 105·k bytes past
// the block's start (16 · 105 ≥ 1680: every line of the next PF_AHEAD bytes is requested), fixed
// displacements from one pointer. The former per-block loop (cg_avx2_pf_upto: ~26 requests in a
// burst, a bound check and a branch each) streamed this layout ~10 % slower than Q4_0 x8 per byte.
enum { PF_STEP = 105 };

// Lane j = (sc_j,2t, sc_j,2t+1) as int16 for t < 8 (16 scale bytes widened).
static inline __m256i scale_pairs(const cg_block_q6_Kx8 *blk, int t) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk->scales + 16 * t)));
}

// Y[t·ldy + 0..7] (t < NT) for one row group w (nb super-blocks) against NT Q8_K activation rows.
static inline __attribute__((always_inline)) void tile(const cg_block_q6_Kx8 *w, int64_t nb, const unsigned char *xq,
                                                        size_t xq_row, float *Y, int64_t ldy, const cg_avx2_pf *pf, const int NT) {
    const size_t w_off = (size_t)((const unsigned char *)w - pf->base);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    _Static_assert(16 * PF_STEP >= sizeof(cg_block_q6_Kx8) && (int)PF_STEP <= 2 * (int)CG_AVX2_PF_LINE,
                   "two lines per step cover a block");
    __m256 acc[TILE_TOK];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        // This block's prefetches, spread over its 16 steps k (see PF_STEP), while the last stays
        // inside the caller's rows.
        const size_t pf_off = w_off + (size_t)b * sizeof *w + PF_AHEAD;
        const bool pf_on = pf_off + 15 * PF_STEP + CG_AVX2_PF_LINE < pf->end;
        const char *pf_p = (const char *)pf->base + pf_off;
        const cg_block_q6_Kx8 *blk = &w[b];
        __m256i dot[TILE_TOK], bias[TILE_TOK];
        for (int t = 0; t < NT; t++) dot[t] = bias[t] = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            // scale pairs of sub-blocks 8h + 2c, 8h + 2c + 1 (t = 4h + c), and each duplicated per half.
            __m256i sp[4], se[4], so[4];
            for (int c = 0; c < 4; c++) {
                sp[c] = scale_pairs(blk, 4 * h + c);
                se[c] = _mm256_shufflehi_epi16(_mm256_shufflelo_epi16(sp[c], 0xA0), 0xA0);
                so[c] = _mm256_shufflehi_epi16(_mm256_shufflelo_epi16(sp[c], 0xF5), 0xF5);
            }
            for (int t = 0; t < NT; t++) {
                const cg_block_q8_K *a = (const cg_block_q8_K *)(xq + (size_t)t * xq_row) + b;
                for (int c = 0; c < 4; c++) {
                    int32_t pair;
                    memcpy(&pair, &a->bsums[2 * (4 * h + c)], 4);
                    bias[t] = _mm256_add_epi32(bias[t], _mm256_madd_epi16(sp[c], _mm256_set1_epi32(pair)));
                }
            }
            for (int u = 0; u < 4; u++) {   // k = 2u, 2u + 1: sub-blocks 8h + 2c + u/2
                __m256i q[2][4];
                for (int kk = 0; kk < 2; kk++) {
                    const int k = 2 * u + kk;
                    if (pf_on) {
                        _mm_prefetch(pf_p + (8 * h + k) * PF_STEP, _MM_HINT_T0);
                        _mm_prefetch(pf_p + (8 * h + k) * PF_STEP + CG_AVX2_PF_LINE, _MM_HINT_T0);
                    }
                    const __m256i qh = _mm256_loadu_si256((const __m256i *)(blk->qh + 32 * (8 * h + k)));
                    const __m256i la = _mm256_loadu_si256((const __m256i *)(blk->ql + 32 * (16 * h + k)));
                    const __m256i lb = _mm256_loadu_si256((const __m256i *)(blk->ql + 32 * (16 * h + 8 + k)));
                    q[kk][0] = _mm256_or_si256(_mm256_and_si256(la, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
                    q[kk][1] = _mm256_or_si256(_mm256_and_si256(lb, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
                    q[kk][2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(la, 4), m4), _mm256_and_si256(qh, m30));
                    q[kk][3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lb, 4), m4),
                                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
                }
                for (int t = 0; t < NT; t++) {
                    const cg_block_q8_K *a = (const cg_block_q8_K *)(xq + (size_t)t * xq_row) + b;
                    const int8_t *ab = a->qs + 128 * h + 8 * u;
                    for (int c = 0; c < 4; c++) {
                        const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(q[0][c], cg_avx2_bcast4(ab + 32 * c)),
                                                           _mm256_maddubs_epi16(q[1][c], cg_avx2_bcast4(ab + 32 * c + 4)));
                        dot[t] = _mm256_add_epi32(dot[t], _mm256_madd_epi16(p, u < 2 ? se[c] : so[c]));
                    }
                }
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk->d));
        for (int t = 0; t < NT; t++) {
            const cg_block_q8_K *a = (const cg_block_q8_K *)(xq + (size_t)t * xq_row) + b;
            const __m256i isum = _mm256_sub_epi32(dot[t], _mm256_slli_epi32(bias[t], 5));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, _mm256_set1_ps(a->d)), acc[t]);
        }
    }
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(Y + t * ldy, acc[t]);
}

void cg_avx2_q6_Kx8_matmul(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                           int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = n_in / QKK, g_end = r1 / ROWS;
    const size_t row_group = (size_t)nb * sizeof(cg_block_q6_Kx8);
    const int64_t g_blk = (int64_t)row_group < BLOCK_BYTES ? BLOCK_BYTES / (int64_t)row_group : 1;
    const cg_block_q6_Kx8 *w = W;
    const unsigned char *x = xq;
    const size_t pf_end = n_tok <= CHUNK_TOK ? (size_t)g_end * row_group : 0;
    for (int64_t gb = r0 / ROWS; gb < g_end; gb += g_blk) {
        const int64_t ge = gb + g_blk < g_end ? gb + g_blk : g_end;
        for (int64_t c0 = 0; c0 < n_tok; c0 += CHUNK_TOK) {
            const int64_t c1 = c0 + CHUNK_TOK < n_tok ? c0 + CHUNK_TOK : n_tok;
            cg_avx2_pf pf = {(const unsigned char *)W, (size_t)gb * row_group, pf_end};
            cg_avx2_pf_upto(&pf, (size_t)gb * row_group + PF_AHEAD);   // the ramp; the tiles keep ahead
            for (int64_t g = gb; g < ge; g++) {
                const cg_block_q6_Kx8 *wg = w + g * nb;
                int64_t k = c0;
                for (; k + TILE_TOK <= c1; k += TILE_TOK)
                    tile(wg, nb, x + (size_t)k * xq_row, xq_row, Y + k * ldy + g * ROWS, ldy, &pf, TILE_TOK);
                const unsigned char *xk = x + (size_t)k * xq_row;
                float *yk = Y + k * ldy + g * ROWS;
                switch (c1 - k) {
                case 1: tile(wg, nb, xk, xq_row, yk, ldy, &pf, 1); break;
                case 2: tile(wg, nb, xk, xq_row, yk, ldy, &pf, 2); break;
                case 3: tile(wg, nb, xk, xq_row, yk, ldy, &pf, 3); break;
                default: break;
                }
            }
        }
    }
}
