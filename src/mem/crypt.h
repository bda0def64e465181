// crypt.h — encryption at rest of message and memory text (libsodium).
//
// A master key file (32 raw bytes, or 64 hex digits with optional trailing newline) yields one
// key per user with crypto_kdf (subkey id = user id, context "cgmemtxt"). Text is sealed with
// XChaCha20-Poly1305-IETF under a random nonce; the additional data binds it to the table and the
// user, so a row moved to another table or user fails to open. Sealed format:
//   byte 0 = 1 (version) | 24-byte nonce | ciphertext | 16-byte tag.
// A cg_crypt is immutable after open and safe to share between threads.
#ifndef CG_MEM_CRYPT_H
#define CG_MEM_CRYPT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

typedef struct cg_crypt cg_crypt;

// Reads the master key file. Errors: CG_ERR_IO (unreadable), CG_ERR_FORMAT (wrong size/hex).
cg_status cg_crypt_open(const char *key_path, cg_crypt **out, cg_err *err);
void cg_crypt_close(cg_crypt *c);  // accepts NULL; wipes the key

// Appends the sealed form of pt[0..n) to out.
cg_status cg_crypt_seal(const cg_crypt *c, int64_t user_id, const char *table, const void *pt,
                        size_t n, cg_buf *out, cg_err *err);
// Appends the plaintext of a sealed blob to out. A wrong key or tampered bytes is CG_ERR_FORMAT
// naming table, row id and column.
cg_status cg_crypt_unseal(const cg_crypt *c, int64_t user_id, const char *table, int64_t row_id,
                          const char *column, const void *ct, size_t n, cg_buf *out, cg_err *err);

#endif
