// store_int.h — internal: the cg_store struct and helpers shared by store.c and memory.c.
//
// Row decoding helpers validate every column they read (type, NULL-ness, UTF-8, decryption) and
// name table, row id and column in the error. Not thread-safe (see store.h).
#ifndef CG_MEM_STORE_INT_H
#define CG_MEM_STORE_INT_H

#include "mem/crypt.h"
#include "mem/db.h"
#include "mem/store.h"

struct cg_store {
    void *conn;           // owned by the driver
    const db_ops *ops;
    cg_crypt *crypt;      // owned; NULL when text is stored in clear
    cg_embed_fn embed;
    void *embed_user;     // borrowed
    int n_embd;
    int version;
    unsigned char key_hash_key[32];
    struct vp_cache *vcache;  // owned (vpack.c); NULL: no page cache
};

#define MAX_TEXT_BYTES 65536

// Runs a statement without result rows.
cg_status st_exec(cg_store *s, const char *sql, const db_val *p, int n, cg_err *err);
// Runs a query; *found tells whether a row came; *out = first column (must be an integer).
cg_status st_int(cg_store *s, const char *sql, const db_val *p, int n, int64_t *out, bool *found,
                 cg_err *err);
// st_int for a row that must exist: no row gives CG_ERR_NOT_FOUND, "store: no " + the formatted
// `what` (e.g. "memory id=7"). out may be NULL.
cg_status st_need(cg_store *s, const char *sql, const db_val *p, int n, int64_t *out, cg_err *err,
                  const char *what, ...) CG_PRINTF(7, 8);
// The user must exist: CG_ERR_NOT_FOUND "store: no user id=N" otherwise.
cg_status st_need_user(cg_store *s, int64_t user_id, cg_err *err);
cg_status st_begin(cg_store *s, cg_err *err);
cg_status st_commit(cg_store *s, cg_err *err);
void st_rollback(cg_store *s);  // best effort, keeps the first error

// Validates caller text: non-empty (unless allow_empty), at most max bytes, valid UTF-8.
cg_status st_check_text(const char *what, const char *text, size_t max, bool allow_empty,
                        cg_err *err);
// Seals (or copies) text for storage into out; *enc = 1 when sealed, 0 in clear.
cg_status st_seal(cg_store *s, int64_t user_id, const char *table, const char *text, cg_buf *out,
                  int64_t *enc, cg_err *err);
// Decodes a stored body column to a malloc'ed NUL-terminated UTF-8 string.
cg_status st_open_text(cg_store *s, int64_t user_id, const char *table, int64_t row_id,
                       const char *column, int64_t enc, const db_val *v, char **out, cg_err *err);
// Column readers: type-checked, naming table/id/column on failure.
cg_status col_int(const char *table, int64_t id, const char *col, const db_val *v, bool nullable,
                  int64_t *out, cg_err *err);
cg_status col_real(const char *table, int64_t id, const char *col, const db_val *v, double *out,
                   cg_err *err);
cg_status col_str(const char *table, int64_t id, const char *col, const db_val *v, bool nullable,
                  char **out, cg_err *err);

// Removes the text-index entries of every memory of the user (call inside a transaction).
cg_status st_unindex_user(cg_store *s, int64_t user_id, cg_err *err);

// A growable list of ids; st_id_row is a row callback (db.h) appending column 0 (an integer, else
// CG_ERR_FORMAT) to the idlist passed as `user`. The caller frees v.
typedef struct idlist { int64_t *v; size_t n, cap; } idlist;
cg_status st_id_row(void *user, const db_val *c, int n, cg_err *err);

// ---- packed vectors (vpack.c; schema >= CG_STORE_VPACK_VERSION) ------------------------------
// The schema version that added mem_vpack and memories.vpage. Kept in one place (with the one
// migration step in each driver and its hook in store.c) so the step can be renumbered.
#define CG_STORE_VPACK_VERSION 4
// The schema version that added mem_vgen (the page generations the page cache validates with).
#define CG_STORE_VGEN_VERSION 5

// Each runs inside the caller's transaction and keeps vpack.c's invariant for one memory:
// add: the memory is current and x (n_embd,) its embedding; remove: it is no longer current or
// is being deleted (no-op when it is in no page); update: its embedding changed to x (NULL: none).
cg_status st_vp_add(cg_store *s, int64_t user_id, int64_t id, const float *x, int n_embd,
                    cg_err *err);
cg_status st_vp_remove(cg_store *s, int64_t user_id, int64_t id, cg_err *err);
cg_status st_vp_update(cg_store *s, int64_t user_id, int64_t id, const float *x, int n_embd,
                       cg_err *err);
cg_status st_vp_drop_user(cg_store *s, int64_t user_id, cg_err *err);
// Recomputes the pages of one user (0: every user) from the embedding blobs, no transaction.
cg_status st_vp_rebuild(cg_store *s, int64_t user_id, cg_err *err);
// Ids (malloc'ed, unordered) of every current memory of the user whose reference cosine with q
// (n_embd,) could be >= min_cos and among the `limit` best; a superset of the exact top `limit`.
// *n_scored (may be NULL): entries scored.
cg_status st_vp_candidates(cg_store *s, int64_t user_id, const float *q, float min_cos,
                           size_t limit, int64_t **out, size_t *n_out, size_t *n_scored,
                           cg_err *err);

// The in-process cache of decoded pages (vpack.c): limit_bytes > 0. Free with st_vp_cache_free
// (accepts NULL). Used only through st_vp_candidates.
cg_status st_vp_cache_new(size_t limit_bytes, struct vp_cache **out, cg_err *err);
void st_vp_cache_free(struct vp_cache *c);

// Bulk loaders (bench/mem_pg_bulk.c): the page capacity for n_embd, and one page blob of the
// vectors x (n, n_embd) of memories ids (n) appended to out — the bytes st_vp_add would write.
size_t st_vp_cap(int n_embd);
cg_status st_vp_page(const int64_t *ids, const float *x, size_t n, int n_embd, cg_buf *out,
                     cg_err *err);

// JSON string literal of s[0..n) (valid UTF-8) appended to out.
void st_json_str(cg_buf *out, const char *s);

#endif
