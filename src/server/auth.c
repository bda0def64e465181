// auth.c — API-key hashing and constant-time checks (see auth.h). Invariant: no clear key outlives
// the call that read it; only hashes are stored.
#include "server/auth.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/mmap.h"

#define HASH_BYTES 32

struct cg_srv_auth {
    unsigned char hkey[crypto_generichash_KEYBYTES];
    unsigned char (*hashes)[HASH_BYTES];
    size_t n;
};

static void hash_key(const cg_srv_auth *a, const char *k, size_t n, unsigned char out[HASH_BYTES]) {
    crypto_generichash(out, HASH_BYTES, (const unsigned char *)k, n, a->hkey, sizeof a->hkey);
}

cg_status cg_srv_auth_parse(const char *text, size_t n, cg_srv_auth **out, cg_err *err) {
    cg_status st = CG_OK;
    if (sodium_init() < 0) return cg_err_set(err, CG_ERR_INTERNAL, "auth: libsodium failed to initialise");
    cg_srv_auth *a = calloc(1, sizeof *a);
    if (!a) return cg_err_set(err, CG_ERR_NOMEM, "auth: out of memory");
    randombytes_buf(a->hkey, sizeof a->hkey);
    size_t cap = 0, line = 0;
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && text[e] != '\n') e++;
        line++;
        size_t b = i, f = e;
        while (b < f && (text[b] == ' ' || text[b] == '\t' || text[b] == '\r')) b++;
        while (f > b && (text[f - 1] == ' ' || text[f - 1] == '\t' || text[f - 1] == '\r')) f--;
        i = e + 1;
        if (b == f || text[b] == '#') continue;
        if (f - b < 8) { st = cg_err_set(err, CG_ERR_FORMAT, "auth: the key on line %zu is shorter than 8 bytes", line); goto fail; }
        for (size_t k = b; k < f; k++)
            if ((unsigned char)text[k] <= 0x20 || text[k] == 0x7f) {
                st = cg_err_set(err, CG_ERR_FORMAT, "auth: the key on line %zu contains a blank or control character", line);
                goto fail;
            }
        if (a->n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            void *p = realloc(a->hashes, nc * HASH_BYTES);
            if (!p) { st = cg_err_set(err, CG_ERR_NOMEM, "auth: out of memory"); goto fail; }
            a->hashes = p;
            cap = nc;
        }
        hash_key(a, text + b, f - b, a->hashes[a->n++]);
    }
    if (!a->n) { st = cg_err_set(err, CG_ERR_FORMAT, "auth: no API key found (one key per line)"); goto fail; }
    *out = a;
    return CG_OK;
fail:
    cg_srv_auth_free(a);
    return st;
}

cg_status cg_srv_auth_load(const char *path, cg_srv_auth **out, cg_err *err) {
    unsigned char *data = NULL;
    size_t n = 0;
    cg_status st = cg_file_read_all(path, &data, &n, err);
    if (st) return st;
    st = cg_srv_auth_parse((const char *)data, n, out, err);
    if (st) cg_err_wrap(err, "%s", path);
    sodium_memzero(data, n);
    free(data);
    return st;
}

void cg_srv_auth_free(cg_srv_auth *a) {
    if (!a) return;
    sodium_memzero(a->hkey, sizeof a->hkey);
    free(a->hashes);
    free(a);
}

size_t cg_srv_auth_count(const cg_srv_auth *a) { return a ? a->n : 0; }

bool cg_srv_auth_check(const cg_srv_auth *a, const char *h) {
    if (!a || !h) return false;
    if (strncmp(h, "Bearer ", 7)) return false;
    const char *k = h + 7;
    while (*k == ' ') k++;
    size_t n = strlen(k);
    while (n && (k[n - 1] == ' ' || k[n - 1] == '\t')) n--;
    if (!n) return false;
    unsigned char got[HASH_BYTES];
    hash_key(a, k, n, got);
    int match = 0;
    for (size_t i = 0; i < a->n; i++) match |= sodium_memcmp(got, a->hashes[i], HASH_BYTES) == 0;
    sodium_memzero(got, sizeof got);
    return match != 0;
}
