// kquant_ref.c — the K-quant reference quantizers (Q2_K … Q6_K), without importance matrix.
//
// These reproduce, byte for byte, what ggml's reference quantizers write (and so what
// llama-quantize writes without an imatrix): per sub-block a deterministic search for the scale
// (and min) that minimises a weighted error, then the sub-block scales are themselves quantized
// against a super-block scale stored as f16, and finally every element is re-quantized with the
// rounded scales actually stored. Matching bytes requires the same float32 arithmetic in the same
// order, so expressions below are written in ggml's evaluation order (e.g. `(w·x)·l`, not `w·(x·l)`)
// and the file is compiled with -ffp-contract=off. Rounding uses q_nearest_int (qmath.h), the same
// add-magic-constant trick, so ties and out-of-range values behave identically.
// Pure functions over caller buffers; see ref.h.
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "quant/qmath.h"
#include "quant/ref.h"

#define QK CG_QK_K_
#define GROUP_MAX_EPS 1e-15f  // below this a group counts as all zero

// ---- scale searches -------------------------------------------------------------------------------

// Symmetric quants in [-nmax, nmax-1] minimising Σ x²·(x − s·l)² (ggml's make_qx_quants with
// rmse_type 1, no imatrix): start from s = max/−nmax, take the least-squares scale for those quants,
// then try 18 nudged starting scales and keep any that improves sumlx²/suml2. L gets l + nmax.
static float search_sym_weighted(int n, int nmax, const float *x, int8_t *L) {
    float mx = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            mx = x[i];
        }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = -nmax / mx;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = q_clamp(q_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / mx;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = q_clamp(q_nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + q_clamp(q_nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// Symmetric quants for Q3_K (ggml's make_q3_quants with do_rmse): start from s = max/−nmax, then up
// to 5 passes of coordinate descent, moving one quant at a time to its best level while that
// raises sumlx²/suml2 (weights x²). L gets l + nmax.
static float search_sym_descent(int n, int nmax, const float *x, int8_t *L) {
    float mx = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            mx = x[i];
        }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    const float iscale = -nmax / mx;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = q_clamp(q_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int pass = 0; pass < 5; pass++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                const int new_l = q_clamp(q_nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Affine quants l in [0, nmax] with x ≈ s·l − m, m >= 0 (ggml's make_qkx2_quants): start from the
// min/max fit, then for nstep+1 trial scales solve the weighted least-squares (s, m) for the
// rounded quants and keep the fit with the smallest weighted error (|·| if use_mad, else squared).
// Returns s; *neg_min gets m. The current best min feeds the next trial, as in ggml.
static float search_affine(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min,
                           float rmin, float rdelta, int nstep, bool use_mad) {
    uint8_t Laux[32];
    float mn = x[0], mx = x[0];
    float sum_w = w[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (mn > 0) mn = 0;
    if (mx == mn) {
        memset(L, 0, (size_t)n);
        *neg_min = -mn;
        return 0.0f;
    }
    float iscale = nmax / (mx - mn);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)q_clamp(q_nearest_int(iscale * (x[i] - mn)), 0, nmax);
        float diff = scale * L[i] + mn - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += w[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (mx - mn);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = q_clamp(q_nearest_int(iscale * (x[i] - mn)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += w[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                mn = this_min;
            }
        }
    }
    *neg_min = -mn;
    return scale;
}

// Packs 256 two-bit values: element 128h + 32k + l goes to bits 2k of qs[32h + l].
static void pack_2bit(const uint8_t L[QK], uint8_t qs[64]) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *p = L + 128 * h + l;
            qs[32 * h + l] = (uint8_t)(p[0] | p[32] << 2 | p[64] << 4 | p[96] << 6);
        }
}

// ---- Q2_K ---------------------------------------------------------------------------------------

void cg_q2_K_from_f32(const float *src, void *dst, int64_t n) {
    cg_block_q2_K *y = dst;
    uint8_t L[QK];
    float w[16], mins[16], scales[16];
    const float q4scale = 15.f;
    for (int64_t i = 0; i < n / QK; i++, src += QK) {
        const float *x = src;
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
            scales[j] = search_affine(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < 16; j++) y[i].scales[j] = (uint8_t)q_nearest_int(iscale * scales[j]);
            y[i].d = cg_f32_to_f16(max_scale / q4scale);
        } else {
            memset(y[i].scales, 0, sizeof y[i].scales);
            y[i].d = cg_f32_to_f16(0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < 16; j++) y[i].scales[j] |= (uint8_t)((unsigned)q_nearest_int(iscale * mins[j]) << 4);
            y[i].dmin = cg_f32_to_f16(max_min / q4scale);
        } else {
            y[i].dmin = cg_f32_to_f16(0.f);
        }
        // Re-quantize against the scales as stored; a sub-block whose scale rounds to 0 keeps the
        // quants of its search.
        for (int j = 0; j < 16; j++) {
            const float d = cg_f16_to_f32(y[i].d) * (y[i].scales[j] & 0xF);
            if (!d) continue;
            const float dm = cg_f16_to_f32(y[i].dmin) * (y[i].scales[j] >> 4);
            for (int k = 0; k < 16; k++)
                L[16 * j + k] = (uint8_t)q_clamp(q_nearest_int((x[16 * j + k] + dm) / d), 0, 3);
        }
        pack_2bit(L, y[i].qs);
    }
}

// ---- Q3_K ---------------------------------------------------------------------------------------

void cg_q3_K_from_f32(const float *src, void *dst, int64_t n) {
    cg_block_q3_K *y = dst;
    int8_t L[QK];
    float scales[16];
    for (int64_t i = 0; i < n / QK; i++, src += QK) {
        const float *x = src;
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = search_sym_descent(16, 4, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) {
                amax = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        memset(y[i].scales, 0, sizeof y[i].scales);
        if (max_scale) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; j++) {
                int l = (int8_t)q_nearest_int(iscale * scales[j]);
                l = q_clamp(l, -32, 31) + 32;
                if (j < 8)
                    y[i].scales[j] = (uint8_t)(l & 0xF);
                else
                    y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                y[i].scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            y[i].d = cg_f32_to_f16(1 / iscale);
        } else {
            y[i].d = cg_f32_to_f16(0.f);
        }
        for (int j = 0; j < 16; j++) {
            const int low4 = j < 8 ? y[i].scales[j] & 0xF : y[i].scales[j - 8] >> 4;
            const int sc = (low4 | ((y[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
            const float d = cg_f16_to_f32(y[i].d) * sc;
            if (!d) continue;
            for (int k = 0; k < 16; k++)
                L[16 * j + k] = (int8_t)(q_clamp(q_nearest_int(x[16 * j + k] / d), -4, 3) + 4);
        }
        // Bit 2 of quant e goes to hmask[e % 32], bit e / 32; the low two bits are packed as Q2_K.
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        uint8_t low[QK];
        for (int e = 0; e < QK; e++) {
            int l = L[e];
            if (l > 3) {
                y[i].hmask[e % 32] |= (uint8_t)(1u << (e / 32));
                l -= 4;
            }
            low[e] = (uint8_t)l;
        }
        pack_2bit(low, y[i].qs);
    }
}

// ---- Q4_K / Q5_K ----------------------------------------------------------------------------------

// Shared part of Q4_K and Q5_K: per sub-block of 32 an affine search with weights av_x + |x|, six-bit
// scales and mins against f16 super-block scales, then re-quantization into L (0..nmax).
static void k45_quantize(const float *x, int nmax, float rmin, float rdelta, int nstep, cg_f16 *d_out,
                         cg_f16 *dmin_out, uint8_t s[CG_K_SCALE_SIZE], uint8_t L[QK]) {
    float w[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = search_affine(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], rmin, rdelta, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)q_nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)q_nearest_int(inv_min * mins[j]);
        if (ls > 63) ls = 63;
        if (lm > 63) lm = 63;
        if (j < 4) {
            s[j] = ls;
            s[j + 4] = lm;
        } else {
            s[j + 4] = (uint8_t)((ls & 0xF) | (lm & 0xF) << 4);
            s[j - 4] |= (uint8_t)((ls >> 4) << 6);
            s[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d_out = cg_f32_to_f16(max_scale / 63.f);
    *dmin_out = cg_f32_to_f16(max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        if (j < 4) {
            sc = s[j] & 63;
            m = s[j + 4] & 63;
        } else {
            sc = (s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4;
            m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
        }
        const float d = cg_f16_to_f32(*d_out) * sc;
        if (!d) continue;
        const float dm = cg_f16_to_f32(*dmin_out) * m;
        for (int k = 0; k < 32; k++) L[32 * j + k] = (uint8_t)q_clamp(q_nearest_int((x[32 * j + k] + dm) / d), 0, nmax);
    }
}

void cg_q4_K_from_f32(const float *src, void *dst, int64_t n) {
    cg_block_q4_K *y = dst;
    uint8_t L[QK];
    for (int64_t i = 0; i < n / QK; i++, src += QK) {
        k45_quantize(src, 15, -1.f, 0.1f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) y[i].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
    }
}

void cg_q5_K_from_f32(const float *src, void *dst, int64_t n) {
    cg_block_q5_K *y = dst;
    uint8_t L[QK];
    for (int64_t i = 0; i < n / QK; i++, src += QK) {
        k45_quantize(src, 31, -0.5f, 0.1f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        memset(y[i].qh, 0, sizeof y[i].qh);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
                if (lo > 15) {
                    lo -= 16;
                    y[i].qh[l] |= (uint8_t)(1u << (2 * c));
                }
                if (hi > 15) {
                    hi -= 16;
                    y[i].qh[l] |= (uint8_t)(2u << (2 * c));
                }
                y[i].qs[32 * c + l] = (uint8_t)(lo | hi << 4);
            }
    }
}

// ---- Q6_K ---------------------------------------------------------------------------------------

void cg_q6_K_from_f32(const float *src, void *dst, int64_t n) {
    cg_block_q6_K *y = dst;
    int8_t L[QK];
    float scales[16];
    for (int64_t i = 0; i < n / QK; i++, src += QK) {
        const float *x = src;
        float max_scale = 0, max_abs_scale = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = search_sym_weighted(16, 32, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        memset(&y[i], 0, sizeof y[i]);
        if (max_abs_scale < GROUP_MAX_EPS) continue;  // all-zero block: d = 0, quants 0
        const float iscale = -128.f / max_scale;
        y[i].d = cg_f32_to_f16(1 / iscale);
        for (int j = 0; j < 16; j++) {
            const int v = q_nearest_int(iscale * scales[j]);
            y[i].scales[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < 16; j++) {
            const float d = cg_f16_to_f32(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int k = 0; k < 16; k++)
                L[16 * j + k] = (int8_t)(q_clamp(q_nearest_int(x[16 * j + k] / d), -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++) {
            const int8_t *p = L + 128 * h;
            uint8_t *ql = y[i].ql + 64 * h, *qh = y[i].qh + 32 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((p[l] & 0xF) | (p[l + 64] & 0xF) << 4);
                ql[l + 32] = (uint8_t)((p[l + 32] & 0xF) | (p[l + 96] & 0xF) << 4);
                qh[l] = (uint8_t)((p[l] >> 4) | (p[l + 32] >> 4) << 2 | (p[l + 64] >> 4) << 4 | (p[l + 96] >> 4) << 6);
            }
        }
    }
}
