// vec.h — embedding vectors: cosine similarity, blob encoding, half-precision packing with an
// AVX2 dot product (runtime-detected, scalar reference twin), and a deterministic stand-in
// embedding for tests; an f32 x int8 dot (the page cache's first pass, vpack.c).
//
// Vectors are stored as little-endian float32 blobs (n_embd * 4 bytes). Pure functions,
// thread-safe (the ISA choice is read once per process and immutable afterwards).
#ifndef CG_MEM_VEC_H
#define CG_MEM_VEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

// cos(a, b) for two n-vectors; 0 when either has zero norm.  a (n,) . b (n,) / (|a| |b|)
// The reference: search ranks by exactly this function's value.
float cg_vec_cosine(const float *a, const float *b, size_t n);

// IEEE binary16 <-> float32 (round to nearest even; overflow to inf, NaN kept NaN).
uint16_t cg_vec_f32_to_f16(float f);
float cg_vec_f16_to_f32(uint16_t h);

// q (n,) f32 . h (n,) f16 — scalar reference (fixed order, float accumulators).
float cg_vec_dot_f16_ref(const float *q, const uint16_t *h, size_t n);
// The same with AVX2/FMA/F16C when the CPU has them (and CHINGU_ISA is not "generic"), else the
// reference. Agrees with the reference to float rounding (|diff| <= n * 2^-23 * sum|q_i h_i|).
// h may be unaligned.
float cg_vec_dot_f16(const float *q, const uint16_t *h, size_t n);
// n halves to floats (exact: every binary16 value is a float), F16C when cg_vec_simd().
void cg_vec_f16_to_f32_n(const uint16_t *h, float *out, size_t n);
// q (n,) f32 . x (n,) int8 — scalar reference (fixed order, float accumulators) and the AVX2
// twin when cg_vec_simd(); both within n * 2^-23 * sum|q_i x_i| of the exact sum.
float cg_vec_dot_i8_ref(const float *q, const int8_t *x, size_t n);
float cg_vec_dot_i8(const float *q, const int8_t *x, size_t n);
// Requantises y = scale * h (n halves, scale >= 0) to int8: returns the step s8 = max|y|/127
// and writes x8 (n,) = round(y/s8) clamped to +-127, and *r2 = sum (y - s8*x8)^2 computed in
// double (each term exact; only the sum rounds, relatively ~n*2^-53). NaN (x8 unspecified)
// when a half is inf/NaN or the step is not finite. The twins write the same x8 and s8.
float cg_vec_quant8_ref(const uint16_t *h, float scale, size_t n, int8_t *x8, double *r2);
float cg_vec_quant8(const uint16_t *h, float scale, size_t n, int8_t *x8, double *r2);
// True when cg_vec_dot_f16 (and cg_vec_dot_i8) use the AVX2 kernels.
bool cg_vec_simd(void);

// NOT a language model: the documented test stand-in. Hashes the text's search tokens
// (fts_cjk: CJK bigrams and folded words) with FNV-1a into n_embd signed buckets and L2-normalises,
// so texts sharing words/bigrams have positive cosine. Signature matches cg_embed_fn; `user` unused.
cg_status cg_vec_embed_hashed(void *user, const char *text, size_t n, float *out, int n_embd,
                              cg_err *err);

#endif
