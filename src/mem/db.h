// db.h — internal: the small SQL driver the store's common code runs on (SQLite or libpq).
//
// SQL is written once with `?` placeholders (the PostgreSQL driver rewrites them to $1, $2 …;
// no statement may contain a literal '?'). Values cross the boundary as db_val: rows are handed
// to a callback whose db_val pointers are borrowed until the callback returns. Each driver also
// owns the full-text index (FTS5 table or term table), because that is where the backends differ.
// Not thread-safe (one connection); see store.h.
#ifndef CG_MEM_DB_H
#define CG_MEM_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "mem/store.h"

typedef enum db_type { DB_NULL = 0, DB_INT, DB_REAL, DB_TEXT, DB_BLOB } db_type;

typedef struct db_val {
    db_type t;
    int64_t i;
    double r;
    const void *p;  // TEXT/BLOB bytes (TEXT not NUL-terminated necessarily), borrowed
    size_t n;
} db_val;

static inline db_val db_int(int64_t v) { return (db_val){.t = DB_INT, .i = v}; }
static inline db_val db_real(double v) { return (db_val){.t = DB_REAL, .r = v}; }
static inline db_val db_null(void) { return (db_val){.t = DB_NULL}; }
static inline db_val db_blob(const void *p, size_t n) { return (db_val){.t = DB_BLOB, .p = p, .n = n}; }
db_val db_text(const char *s);  // NULL -> DB_NULL

// Called once per result row; a non-OK return stops the query and is returned by exec.
typedef cg_status (*db_row_fn)(void *user, const db_val *cols, int n_cols, cg_err *err);

// One BM25 hit from the text index.
typedef struct db_hit { int64_t id; double bm25; } db_hit;  // bm25: higher is better

// BM25 ranks at most max_candidates of a query's matches for one user: the newest ones (highest
// memory ids), so a common word costs bounded time. Both drivers apply the same cut.

typedef struct db_ops {
    const char *name;
    // The user-id operand for lookups by a list of memory ids scoped to one user
    // ("… WHERE <user_col> = ? AND id IN (…)"): SQLite "+user_id", which keeps its planner on
    // rowid lookups instead of the user's whole index range; PostgreSQL "user_id", so the
    // covering index (user_id, id) answers without reading the table.
    const char *user_col;
    cg_status (*exec)(void *conn, const char *sql, const db_val *params, int n_params,
                      db_row_fn fn, void *user, cg_err *err);
    // Creates or migrates the schema from version `from` to `to` (the driver's DDL).
    cg_status (*migrate)(void *conn, int from, int to, cg_err *err);
    // Text index of memories: terms is the space-separated term list of the text (fts_cjk).
    cg_status (*index_put)(void *conn, int64_t mem_id, int64_t user_id, const char *text,
                           const char *terms, cg_err *err);
    cg_status (*index_del)(void *conn, int64_t mem_id, cg_err *err);
    // Up to `limit` hits for the user's memories matching ANY of the n_terms terms, best first,
    // ranked among the max_candidates newest matches (current or not).
    cg_status (*index_search)(void *conn, int64_t user_id, const char *const *terms, size_t n_terms,
                              bool current_only, int limit, int max_candidates, db_hit **out,
                              size_t *n_out, cg_err *err);
    // After a user's data was deleted and committed: make deleted text unrecoverable from the
    // index and the file (SQLite: FTS5 'optimize' drops tombstoned terms, then a WAL checkpoint;
    // PostgreSQL: nothing here — autovacuum, see docs/memory.md).
    cg_status (*purge)(void *conn, cg_err *err);
    // Optional (NULL: the driver's statements work at every version): told the schema version
    // after opening, so the text index reads and writes the layout of that version (a store
    // opened with cg_store_opts.target_version below the newest).
    void (*set_version)(void *conn, int version);
    void (*close)(void *conn);
} db_ops;

// Driver constructors. `index_raw_text`: SQLite indexes the text itself through the FTS5
// tokenizer (false when the store encrypts text: then only the term list is indexed).
cg_status db_sqlite_open(const char *path, const cg_store_opts *o, bool index_raw_text,
                         void **conn, const db_ops **ops, cg_err *err);
cg_status db_pg_open(const char *conninfo, const cg_store_opts *o, void **conn,
                     const db_ops **ops, cg_err *err);

#endif
