// vec.h — embedding vectors: cosine similarity, blob encoding, half-precision packing with an
// AVX2 dot product (runtime-detected, scalar reference twin), and a deterministic stand-in
// embedding for tests.
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
// True when cg_vec_dot_f16 uses the AVX2 kernel.
bool cg_vec_simd(void);

// NOT a language model: the documented test stand-in. Hashes the text's search tokens
// (fts_cjk: CJK bigrams and folded words) with FNV-1a into n_embd signed buckets and L2-normalises,
// so texts sharing words/bigrams have positive cosine. Signature matches cg_embed_fn; `user` unused.
cg_status cg_vec_embed_hashed(void *user, const char *text, size_t n, float *out, int n_embd,
                              cg_err *err);

#endif
