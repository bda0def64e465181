// vec.h — embedding vectors: cosine similarity, blob encoding, and a deterministic stand-in
// embedding for tests.
//
// Vectors are stored as little-endian float32 blobs (n_embd * 4 bytes). Pure functions,
// thread-safe.
#ifndef CG_MEM_VEC_H
#define CG_MEM_VEC_H

#include <stddef.h>

#include "base/err.h"

// cos(a, b) for two n-vectors; 0 when either has zero norm.  a (n,) . b (n,) / (|a| |b|)
float cg_vec_cosine(const float *a, const float *b, size_t n);

// NOT a language model: the documented test stand-in. Hashes the text's search tokens
// (fts_cjk: CJK bigrams and folded words) with FNV-1a into n_embd signed buckets and L2-normalises,
// so texts sharing words/bigrams have positive cosine. Signature matches cg_embed_fn; `user` unused.
cg_status cg_vec_embed_hashed(void *user, const char *text, size_t n, float *out, int n_embd,
                              cg_err *err);

#endif
