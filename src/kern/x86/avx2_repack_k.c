// avx2_repack_k.c — AVX2 matmul over the repacked Q4_K layout (kern/repack.h, avx2_repack_k.h).
//
// Per super-block column of a row group (8 rows × 256 elements, 1152 bytes): the 96 bytes of
// transposed six-bit scales and mins are unpacked with a few byte ops into v[0..127] (four
// registers). For sub-block s (32 elements), the eight 32-byte loads qs[256·(s/2) + 32k] (k < 8)
// hold in 32-bit lane j row j's elements 4k..4k+3 of the sub-block (low nibbles for even s, high
// for odd s); each is multiplied with the token's four broadcast Q8_K quants by maddubs (u8 nibble
// ≤ 15 × s8 quant, pairs into int16: ≤ 2·15·128 = 3840) and the eight products are added in int16
// (≤ 30720: no overflow); madd with the lane's scale duplicated into both int16 halves gives
// sc_j,s · (q · a over the sub-block) exactly in int32 lane j, summed over s into isum. The mins:
// madd of (mn_j,2p, mn_j,2p+1) with the token's sub-block sums (bsums added in pairs) for p < 4
// gives imin exactly. Then, per super-block in order, acc = fma((float)isum, d_w·d_a, acc) and
// accm = fma((float)imin, dmin_w·d_a, accm); y = acc − accm — the reference's (and llama.cpp's)
// float order, so results are bit-identical with cg_repack_q4_Kx8_matmul_ref.
// Loop nest as in avx2_repack.c: row groups in blocks of ~128 KiB of weights (kept in L2 while the
// tokens pass), tokens in chunks of 8, tiles of 4 tokens and one tile of 1..3; prefetching
// (PF_AHEAD bytes ahead, never past the caller's rows) only when the weights stream once
// (n_tok ≤ one chunk: decode). The loop order changes which tile computes an element, never its
// value. No state.
#include "kern/x86/avx2_repack_k.h"

#include <immintrin.h>
#include <string.h>

#include "kern/x86/avx2_inline.h"
#include "quant/blocks.h"

enum { QKK = 256, ROWS = 8, TILE_TOK = 4, CHUNK_TOK = 8, BLOCK_BYTES = 128 * 1024, PF_AHEAD = 2048 };

// Prefetch per super-block: at each of its 8 sub-block steps s the three lines at PF_AHEAD + 144·s
// bytes past the block's start (8 · 144 = 1152, the block), fixed displacements from one pointer,
// after a ramp of PF_AHEAD bytes where a row block starts — as avx2_repack_q6k.c does (there the
// bounds-checked per-block burst streamed ~10 % slower per byte than Q4_0 x8).
enum { PF_STEP = 144 };

// The 8 row scales of sub-block s (bytes 8s..8s+7 of v[0..63], given as the two 128-bit halves of
// the register holding v[32·(s/4)..]) as int32 lanes with the scale in both int16 halves.
static inline __m256i scale_lanes(__m128i half, int odd) {
    const __m256i s32 = _mm256_cvtepu8_epi32(odd ? _mm_srli_si128(half, 8) : half);
    return _mm256_or_si256(s32, _mm256_slli_epi32(s32, 16));
}

// Y[t·ldy + 0..7] (t < NT) for one row group w (nb super-blocks) against NT Q8_K activation rows.
static inline __attribute__((always_inline)) void tile(const cg_block_q4_Kx8 *w, int64_t nb, const unsigned char *xq,
                                                        size_t xq_row, float *Y, int64_t ldy, const cg_avx2_pf *pf, const int NT) {
    const size_t w_off = (size_t)((const unsigned char *)w - pf->base);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    _Static_assert(8 * PF_STEP >= sizeof(cg_block_q4_Kx8) && (int)PF_STEP <= 3 * (int)CG_AVX2_PF_LINE,
                   "three lines per step cover a block");
    __m256 acc[TILE_TOK], accm[TILE_TOK];
    for (int t = 0; t < NT; t++) acc[t] = accm[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        // This block's prefetches, spread over its 8 sub-blocks s (see PF_STEP), while the last
        // stays inside the caller's rows.
        const size_t pf_off = w_off + (size_t)b * sizeof *w + PF_AHEAD;
        const bool pf_on = pf_off + 7 * PF_STEP + 2 * CG_AVX2_PF_LINE < pf->end;
        const char *pf_p = (const char *)pf->base + pf_off;
        const cg_block_q4_Kx8 *blk = &w[b];
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)blk->scales);
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(blk->scales + 32));
        const __m256i h = _mm256_loadu_si256((const __m256i *)(blk->scales + 64));
        // v[0..31] (scales of sub-blocks 0..3), v[32..63] (4..7), v[64..95] (min pairs 0, 1), v[96..127] (2, 3).
        const __m256i v0 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
        const __m256i v1 = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3), 4));
        const __m256i v2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4));
        const __m256i v3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3), 4));
        __m256i isum[TILE_TOK], imin[TILE_TOK];
        for (int t = 0; t < NT; t++) {
            const cg_block_q8_K *a = (const cg_block_q8_K *)(xq + (size_t)t * xq_row) + b;
            const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)a->bsums),
                                              _mm_loadu_si128((const __m128i *)(a->bsums + 8)));
            const __m256i b2 = _mm256_broadcastsi128_si256(bs);   // 32-bit element p = sums of sub-blocks 2p, 2p+1
            __m256i m = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(v2)), _mm256_shuffle_epi32(b2, 0x00));
            m = _mm256_add_epi32(m, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_extracti128_si256(v2, 1)),
                                                      _mm256_shuffle_epi32(b2, 0x55)));
            m = _mm256_add_epi32(m, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(v3)),
                                                      _mm256_shuffle_epi32(b2, 0xAA)));
            imin[t] = _mm256_add_epi32(m, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_extracti128_si256(v3, 1)),
                                                             _mm256_shuffle_epi32(b2, 0xFF)));
            isum[t] = _mm256_setzero_si256();
        }
        for (int s = 0; s < 8; s++) {
            if (pf_on)
                for (int l = 0; l < 3; l++) _mm_prefetch(pf_p + s * PF_STEP + l * CG_AVX2_PF_LINE, _MM_HINT_T0);
            const __m256i vs = s < 4 ? v0 : v1;
            const __m128i half = (s & 2) ? _mm256_extracti128_si256(vs, 1) : _mm256_castsi256_si128(vs);
            const __m256i scv = scale_lanes(half, s & 1);
            const unsigned char *qs = blk->qs + 256 * (s / 2);
            __m256i s16[TILE_TOK];
            for (int t = 0; t < NT; t++) s16[t] = _mm256_setzero_si256();
            for (int k = 0; k < 8; k++) {
                const __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * k));
                const __m256i q = (s & 1) ? _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4) : _mm256_and_si256(raw, m4);
                for (int t = 0; t < NT; t++) {
                    const cg_block_q8_K *a = (const cg_block_q8_K *)(xq + (size_t)t * xq_row) + b;
                    s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(q, cg_avx2_bcast4(a->qs + 32 * s + 4 * k)));
                }
            }
            for (int t = 0; t < NT; t++) isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(s16[t], scv));
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk->d));
        const __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk->dmin));
        for (int t = 0; t < NT; t++) {
            const cg_block_q8_K *a = (const cg_block_q8_K *)(xq + (size_t)t * xq_row) + b;
            const __m256 da = _mm256_set1_ps(a->d);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(dw, da), acc[t]);
            accm[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(imin[t]), _mm256_mul_ps(dm, da), accm[t]);
        }
    }
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(Y + t * ldy, _mm256_sub_ps(acc[t], accm[t]));
}

void cg_avx2_q4_Kx8_matmul(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                           int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = n_in / QKK, g_end = r1 / ROWS;
    const size_t row_group = (size_t)nb * sizeof(cg_block_q4_Kx8);
    const int64_t g_blk = (int64_t)row_group < BLOCK_BYTES ? BLOCK_BYTES / (int64_t)row_group : 1;
    const cg_block_q4_Kx8 *w = W;
    const unsigned char *x = xq;
    const size_t pf_end = n_tok <= CHUNK_TOK ? (size_t)g_end * row_group : 0;
    for (int64_t gb = r0 / ROWS; gb < g_end; gb += g_blk) {
        const int64_t ge = gb + g_blk < g_end ? gb + g_blk : g_end;
        for (int64_t c0 = 0; c0 < n_tok; c0 += CHUNK_TOK) {
            const int64_t c1 = c0 + CHUNK_TOK < n_tok ? c0 + CHUNK_TOK : n_tok;
            cg_avx2_pf pf = {(const unsigned char *)W, (size_t)gb * row_group, pf_end};
            cg_avx2_pf_upto(&pf, (size_t)gb * row_group + PF_AHEAD);   // the ramp; the tiles keep ahead
            for (int64_t g = gb; g < ge; g++) {
                const cg_block_q4_Kx8 *wg = w + g * nb;
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
