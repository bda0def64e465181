// crypt.c — per-user XChaCha20-Poly1305 sealing of stored text (see crypt.h).
//
// The master key lives in sodium_malloc'ed memory (guard pages, wiped on free). Subkeys are
// derived per call on the stack and wiped before returning.
#include "mem/crypt.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "base/mmap.h"

struct cg_crypt {
    unsigned char *master;  // crypto_kdf_KEYBYTES, sodium_malloc'ed
};

#define SEAL_VERSION 1
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES

cg_status cg_crypt_open(const char *key_path, cg_crypt **out, cg_err *err) {
    cg_status st = CG_OK;
    unsigned char *data = NULL;
    size_t n = 0;
    cg_crypt *c = NULL;
    if (sodium_init() < 0) return cg_err_set(err, CG_ERR_INTERNAL, "crypt: sodium_init failed");
    if ((st = cg_file_read_all(key_path, &data, &n, err))) {
        cg_err_wrap(err, "crypt: master key file");
        goto fail;
    }
    c = calloc(1, sizeof *c);
    if (!c || !(c->master = sodium_malloc(crypto_kdf_KEYBYTES))) {
        st = cg_err_set(err, CG_ERR_NOMEM, "crypt: out of memory");
        goto fail;
    }
    const char *p = (const char *)data;
    size_t hn = n;
    while (hn > 0 && (p[hn - 1] == '\n' || p[hn - 1] == '\r')) hn--;
    if (n == crypto_kdf_KEYBYTES) {
        memcpy(c->master, data, n);
    } else if (hn == 2 * crypto_kdf_KEYBYTES) {
        size_t got = 0;
        if (sodium_hex2bin(c->master, crypto_kdf_KEYBYTES, p, hn, NULL, &got, NULL) != 0 ||
            got != crypto_kdf_KEYBYTES) {
            st = cg_err_set(err, CG_ERR_FORMAT, "crypt: master key file '%s' is not 64 hex digits",
                            key_path);
            goto fail;
        }
    } else {
        st = cg_err_set(err, CG_ERR_FORMAT,
                        "crypt: master key file '%s' has %zu bytes (want 32 raw or 64 hex)",
                        key_path, n);
        goto fail;
    }
    sodium_memzero(data, n);
    free(data);
    *out = c;
    return CG_OK;
fail:
    if (data) sodium_memzero(data, n);
    free(data);
    cg_crypt_close(c);
    return st;
}

void cg_crypt_close(cg_crypt *c) {
    if (!c) return;
    sodium_free(c->master);
    free(c);
}

static void derive(const cg_crypt *c, int64_t user_id, unsigned char key[32]) {
    crypto_kdf_derive_from_key(key, 32, (uint64_t)user_id, "cgmemtxt", c->master);
}

static size_t make_ad(char *ad, size_t cap, const char *table, int64_t user_id) {
    int k = snprintf(ad, cap, "chingu:%s:%lld", table, (long long)user_id);
    return k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap - 1;
}

cg_status cg_crypt_seal(const cg_crypt *c, int64_t user_id, const char *table, const void *pt,
                        size_t n, cg_buf *out, cg_err *err) {
    if (n > SIZE_MAX - 1 - NONCE_LEN - TAG_LEN)
        return cg_err_set(err, CG_ERR_LIMIT, "crypt: text of %zu bytes too large", n);
    size_t total = 1 + NONCE_LEN + n + TAG_LEN;
    if (!cg_buf_reserve(out, total)) return cg_err_set(err, CG_ERR_NOMEM, "crypt: out of memory");
    unsigned char *dst = (unsigned char *)out->data + out->len;
    unsigned char key[32];
    char ad[96];
    size_t n_ad = make_ad(ad, sizeof ad, table, user_id);
    derive(c, user_id, key);
    dst[0] = SEAL_VERSION;
    randombytes_buf(dst + 1, NONCE_LEN);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(dst + 1 + NONCE_LEN, &clen, pt, n,
                                               (const unsigned char *)ad, n_ad, NULL, dst + 1, key);
    sodium_memzero(key, sizeof key);
    out->len += 1 + NONCE_LEN + (size_t)clen;
    out->data[out->len] = '\0';
    return CG_OK;
}

cg_status cg_crypt_unseal(const cg_crypt *c, int64_t user_id, const char *table, int64_t row_id,
                          const char *column, const void *ct, size_t n, cg_buf *out, cg_err *err) {
    const unsigned char *src = ct;
    if (n < 1 + NONCE_LEN + TAG_LEN || src[0] != SEAL_VERSION)
        return cg_err_set(err, CG_ERR_FORMAT,
                          "%s id=%lld column %s: sealed text is malformed (%zu bytes, version %d)",
                          table, (long long)row_id, column, n, n ? src[0] : -1);
    size_t plen = n - 1 - NONCE_LEN - TAG_LEN;
    if (!cg_buf_reserve(out, plen + 1)) return cg_err_set(err, CG_ERR_NOMEM, "crypt: out of memory");
    unsigned char key[32];
    char ad[96];
    size_t n_ad = make_ad(ad, sizeof ad, table, user_id);
    derive(c, user_id, key);
    unsigned long long got = 0;
    int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
        (unsigned char *)out->data + out->len, &got, NULL, src + 1 + NONCE_LEN, n - 1 - NONCE_LEN,
        (const unsigned char *)ad, n_ad, src + 1, key);
    sodium_memzero(key, sizeof key);
    if (rc != 0)
        return cg_err_set(err, CG_ERR_FORMAT,
                          "%s id=%lld column %s: decryption failed (wrong key or tampered row)",
                          table, (long long)row_id, column);
    out->len += (size_t)got;
    out->data[out->len] = '\0';
    return CG_OK;
}
