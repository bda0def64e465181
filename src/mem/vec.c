// vec.c — cosine similarity and the hashed-token stand-in embedding (see vec.h).
//
// The cosine loop is written so the compiler vectorises it (four independent accumulators);
// the scalar order of summation is fixed, so results are deterministic on one build.
#include "mem/vec.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "mem/fts_cjk.h"

float cg_vec_cosine(const float *a, const float *b, size_t n) {
    float d[4] = {0}, na[4] = {0}, nb[4] = {0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) {
            d[k] += a[i + k] * b[i + k];
            na[k] += a[i + k] * a[i + k];
            nb[k] += b[i + k] * b[i + k];
        }
    for (; i < n; i++) {
        d[0] += a[i] * b[i];
        na[0] += a[i] * a[i];
        nb[0] += b[i] * b[i];
    }
    float dot = d[0] + d[1] + d[2] + d[3];
    float den = sqrtf((na[0] + na[1] + na[2] + na[3]) * (nb[0] + nb[1] + nb[2] + nb[3]));
    return den > 0.0f ? dot / den : 0.0f;
}

typedef struct hash_ctx { float *out; int n_embd; } hash_ctx;

static int hash_token(void *user, const char *tok, size_t n, size_t start, size_t end) {
    hash_ctx *c = user;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)tok[i];
        h *= 1099511628211ull;
    }
    c->out[(h >> 1) % (uint64_t)c->n_embd] += (h & 1) ? 1.0f : -1.0f;
    return 0;
}

cg_status cg_vec_embed_hashed(void *user, const char *text, size_t n, float *out, int n_embd,
                              cg_err *err) {
    if (n_embd <= 0) return cg_err_set(err, CG_ERR_INVALID, "vec: n_embd %d must be > 0", n_embd);
    memset(out, 0, (size_t)n_embd * sizeof *out);
    hash_ctx c = {out, n_embd};
    if (cg_cjk_tokenize(text, n, hash_token, &c) != 0)
        return cg_err_set(err, CG_ERR_NOMEM, "vec: out of memory tokenizing");
    float s = 0.0f;
    for (int i = 0; i < n_embd; i++) s += out[i] * out[i];
    if (s > 0.0f) {
        float inv = 1.0f / sqrtf(s);
        for (int i = 0; i < n_embd; i++) out[i] *= inv;
    }
    return CG_OK;
}
