// db_sqlite.c — the SQLite driver of the memory store (see db.h).
//
// Opens the file with WAL, foreign keys and a busy timeout, registers our FTS5 tokenizer
// ("cg_cjk", fts_cjk.c) on the connection, and owns the FTS5 table mem_fts whose rowid is the
// memory id. Statements are prepared per call (kept simple; SQLite's prepare is microseconds).
// Errors: SQLITE_CONSTRAINT maps to CG_ERR_INVALID, everything else to CG_ERR_IO with
// sqlite3_errmsg. The connection is owned by the driver and closed in close().
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mem/db.h"
#include "mem/fts_cjk.h"

#define MAX_COLS 32

#define N_CACHED 48

// A small cache of prepared statements keyed by SQL text (the store's SQL is a fixed set of
// strings plus a few IN-lists), evicted round-robin. An entry in use (a row callback running
// a nested statement with the same text) is bypassed, never shared.
typedef struct sq_cached { char *sql; sqlite3_stmt *st; bool busy; } sq_cached;

typedef struct sq_conn {
    sqlite3 *db;
    bool index_raw_text;
    sq_cached cache[N_CACHED];
    unsigned next_evict;
} sq_conn;

// Returns a ready statement for sql; *slot is the cache entry or NULL for an uncached one.
static int sq_prepare(sq_conn *c, const char *sql, sqlite3_stmt **st, sq_cached **slot) {
    *slot = NULL;
    for (int i = 0; i < N_CACHED; i++)
        if (c->cache[i].sql && !c->cache[i].busy && strcmp(c->cache[i].sql, sql) == 0) {
            *st = c->cache[i].st;
            *slot = &c->cache[i];
            (*slot)->busy = true;
            return SQLITE_OK;
        }
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc != SQLITE_OK) return rc;
    size_t n = strlen(sql) + 1;
    char *copy = malloc(n);
    if (!copy) return SQLITE_OK;  // uncached is fine
    memcpy(copy, sql, n);
    sq_cached *e = &c->cache[c->next_evict++ % N_CACHED];
    if (e->busy) {  // never evict a running statement: leave this one uncached
        free(copy);
        return SQLITE_OK;
    }
    sqlite3_finalize(e->st);
    free(e->sql);
    *e = (sq_cached){copy, *st, true};
    *slot = e;
    return SQLITE_OK;
}

static void sq_release(sqlite3_stmt *st, sq_cached *slot) {
    if (!slot) {
        sqlite3_finalize(st);
        return;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    slot->busy = false;
}

static void sq_cache_clear(sq_conn *c) {
    for (int i = 0; i < N_CACHED; i++) {
        sqlite3_finalize(c->cache[i].st);
        free(c->cache[i].sql);
        c->cache[i] = (sq_cached){0};
    }
}

db_val db_text(const char *s) {
    if (!s) return db_null();
    return (db_val){.t = DB_TEXT, .p = s, .n = strlen(s)};
}

static cg_status sq_fail(sqlite3 *db, int rc, const char *what, cg_err *err) {
    int base = rc & 0xff;
    cg_status st = base == SQLITE_CONSTRAINT ? CG_ERR_INVALID : CG_ERR_IO;
    return cg_err_set(err, st, "sqlite: %s: %s (code %d)", what, sqlite3_errmsg(db), rc);
}

// ---- FTS5 tokenizer glue --------------------------------------------------------------------

typedef struct tok_glue {
    void *ctx;
    int (*x_token)(void *, int, const char *, int, int, int);
} tok_glue;

static int glue_cb(void *user, const char *tok, size_t n, size_t start, size_t end) {
    tok_glue *g = user;
    if (n > INT_MAX || end > INT_MAX) return SQLITE_TOOBIG;
    return g->x_token(g->ctx, 0, tok, (int)n, (int)start, (int)end);
}

static int tok_create(void *ctx, const char **argv, int argc, Fts5Tokenizer **out) {
    *out = (Fts5Tokenizer *)ctx;  // stateless: any non-NULL handle
    return SQLITE_OK;
}
static void tok_delete(Fts5Tokenizer *t) {}

static int tok_tokenize(Fts5Tokenizer *t, void *ctx, int flags, const char *text, int n,
                        int (*x_token)(void *, int, const char *, int, int, int)) {
    tok_glue g = {ctx, x_token};
    if (n < 0) return SQLITE_MISUSE;
    int rc = cg_cjk_tokenize(text, (size_t)n, glue_cb, &g);
    return rc == -1 ? SQLITE_NOMEM : rc;
}

static cg_status register_tokenizer(sqlite3 *db, cg_err *err) {
    fts5_api *api = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL);
    if (rc != SQLITE_OK) return sq_fail(db, rc, "FTS5 is not available", err);
    sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
    sqlite3_step(st);
    sqlite3_finalize(st);
    if (!api || api->iVersion < 2)
        return cg_err_set(err, CG_ERR_UNSUPPORTED, "sqlite: FTS5 API v2 not available");
    static fts5_tokenizer tk = {tok_create, tok_delete, tok_tokenize};
    rc = api->xCreateTokenizer(api, "cg_cjk", (void *)api, &tk, NULL);
    if (rc != SQLITE_OK) return sq_fail(db, rc, "registering tokenizer cg_cjk", err);
    return CG_OK;
}

// ---- exec ------------------------------------------------------------------------------------

static cg_status sq_exec(void *conn, const char *sql, const db_val *params, int n_params,
                         db_row_fn fn, void *user, cg_err *err) {
    sq_conn *c = conn;
    sqlite3_stmt *st = NULL;
    sq_cached *slot = NULL;
    cg_status s = CG_OK;
    int rc = sq_prepare(c, sql, &st, &slot);
    if (rc != SQLITE_OK) return sq_fail(c->db, rc, "prepare", err);
    for (int i = 0; i < n_params; i++) {
        const db_val *v = &params[i];
        switch (v->t) {
        case DB_NULL: rc = sqlite3_bind_null(st, i + 1); break;
        case DB_INT: rc = sqlite3_bind_int64(st, i + 1, v->i); break;
        case DB_REAL: rc = sqlite3_bind_double(st, i + 1, v->r); break;
        case DB_TEXT: rc = sqlite3_bind_text64(st, i + 1, v->p, v->n, SQLITE_STATIC, SQLITE_UTF8); break;
        case DB_BLOB: rc = sqlite3_bind_blob64(st, i + 1, v->n ? v->p : "", v->n, SQLITE_STATIC); break;
        }
        if (rc != SQLITE_OK) {
            s = sq_fail(c->db, rc, "bind", err);
            goto done;
        }
    }
    for (;;) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) {
            s = sq_fail(c->db, rc, "step", err);
            goto done;
        }
        if (!fn) continue;
        int n = sqlite3_column_count(st);
        if (n > MAX_COLS) {
            s = cg_err_set(err, CG_ERR_INTERNAL, "sqlite: %d columns (max %d)", n, MAX_COLS);
            goto done;
        }
        db_val cols[MAX_COLS];
        for (int k = 0; k < n; k++) {
            switch (sqlite3_column_type(st, k)) {
            case SQLITE_INTEGER: cols[k] = db_int(sqlite3_column_int64(st, k)); break;
            case SQLITE_FLOAT: cols[k] = db_real(sqlite3_column_double(st, k)); break;
            case SQLITE_TEXT:
                cols[k] = (db_val){.t = DB_TEXT, .p = sqlite3_column_text(st, k),
                                   .n = (size_t)sqlite3_column_bytes(st, k)};
                break;
            case SQLITE_BLOB:
                cols[k] = (db_val){.t = DB_BLOB, .p = sqlite3_column_blob(st, k),
                                   .n = (size_t)sqlite3_column_bytes(st, k)};
                break;
            default: cols[k] = db_null(); break;
            }
        }
        if ((s = fn(user, cols, n, err))) goto done;
    }
done:
    sq_release(st, slot);
    return s;
}

// ---- schema ----------------------------------------------------------------------------------

static const char *const MIGRATIONS[] = {
    // v1: the initial schema.
    "CREATE TABLE meta(k TEXT PRIMARY KEY, v BLOB NOT NULL);"
    "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE api_keys(id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " scope INTEGER NOT NULL, hash BLOB NOT NULL UNIQUE, created_ms INTEGER NOT NULL,"
    " last_used_ms INTEGER, revoked_ms INTEGER);"
    "CREATE INDEX api_keys_user ON api_keys(user_id);"
    "CREATE TABLE conversations(id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " title TEXT, temporary INTEGER NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE INDEX conversations_user ON conversations(user_id);"
    "CREATE TABLE messages(id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " conv_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    " role TEXT NOT NULL, enc INTEGER NOT NULL, body BLOB NOT NULL,"
    " n_tokens INTEGER NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE INDEX messages_conv ON messages(conv_id, id);"
    "CREATE INDEX messages_user ON messages(user_id);"
    "CREATE TABLE memories(id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " kind INTEGER NOT NULL, source INTEGER NOT NULL, enc INTEGER NOT NULL, body BLOB NOT NULL,"
    " importance REAL NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " valid_from_ms INTEGER NOT NULL, valid_to_ms INTEGER,"
    " superseded_by INTEGER REFERENCES memories(id) ON DELETE SET NULL,"
    " due_ms INTEGER, conv_id INTEGER REFERENCES conversations(id) ON DELETE SET NULL,"
    " embedding BLOB);"
    "CREATE INDEX memories_user ON memories(user_id, created_ms);"
    "CREATE INDEX memories_superseded ON memories(superseded_by);"
    "CREATE INDEX memories_conv ON memories(conv_id);"
    "CREATE TABLE documents(id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " title TEXT, created_ms INTEGER NOT NULL);"
    "CREATE INDEX documents_user ON documents(user_id);"
    "CREATE TABLE chunks(id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL, enc INTEGER NOT NULL, body BLOB NOT NULL);"
    "CREATE INDEX chunks_doc ON chunks(doc_id, seq);"
    "CREATE INDEX chunks_user ON chunks(user_id);"
    "CREATE TABLE audit(id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " memory_id INTEGER, action TEXT NOT NULL, at_ms INTEGER NOT NULL);"
    "CREATE INDEX audit_user ON audit(user_id);"
    "CREATE VIRTUAL TABLE mem_fts USING fts5(body, tokenize='cg_cjk');",
    // v2: client-supplied ids for import.
    ("ALTER TABLE memories ADD COLUMN client_id TEXT;"
     "CREATE UNIQUE INDEX memories_client ON memories(user_id, client_id);"),
    // v3: a PostgreSQL-only change of the text index's layout (db_pg.c); nothing here.
    "SELECT 1;",
    // v4 (CG_STORE_VPACK_VERSION): packed per-user vectors (vpack.c); store.c fills them from
    // the embedding blobs in the same transaction.
    ("ALTER TABLE memories ADD COLUMN vpage INTEGER;"
     "CREATE TABLE mem_vpack(user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     " page INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (user_id, page));"),
    // v5 (CG_STORE_VGEN_VERSION): generation numbers of the packed pages, which validate the
    // in-process page cache (vpack.c). Triggers keep them, so every writer of mem_vpack (this
    // build, raw SQL, a bulk loader) bumps them in its own transaction: row (u, p) is the
    // generation of page p of user u, row (u, -1) the newest generation of any change to u's
    // pages; row (0, -1) is the counter they are drawn from (writers are serialised, so one
    // counter row costs no concurrency; it only grows, so a deleted and re-created user id
    // never sees a generation again). Rows of a user go with cg_store_user_delete.
    ("CREATE TABLE mem_vgen(user_id INTEGER NOT NULL, page INTEGER NOT NULL,"
     " gen INTEGER NOT NULL, PRIMARY KEY (user_id, page)) WITHOUT ROWID;"
     "INSERT INTO mem_vgen(user_id, page, gen) VALUES (0, -1, 1);"
     "INSERT INTO mem_vgen(user_id, page, gen) SELECT user_id, page, 1 FROM mem_vpack WHERE true;"
     "INSERT INTO mem_vgen(user_id, page, gen) SELECT DISTINCT user_id, -1, 1 FROM mem_vpack"
     " WHERE true;"
     "CREATE TRIGGER mem_vpack_vgen_ins AFTER INSERT ON mem_vpack BEGIN"
     " UPDATE mem_vgen SET gen = gen + 1 WHERE user_id = 0 AND page = -1;"
     " INSERT INTO mem_vgen(user_id, page, gen) SELECT NEW.user_id, p, g.gen FROM"
     " (SELECT NEW.page AS p UNION ALL SELECT -1) JOIN mem_vgen g ON g.user_id = 0 AND g.page = -1"
     " WHERE true ON CONFLICT(user_id, page) DO UPDATE SET gen = excluded.gen;"
     " END;"
     "CREATE TRIGGER mem_vpack_vgen_upd AFTER UPDATE ON mem_vpack BEGIN"
     " UPDATE mem_vgen SET gen = gen + 1 WHERE user_id = 0 AND page = -1;"
     " DELETE FROM mem_vgen WHERE user_id = OLD.user_id AND page = OLD.page;"
     " INSERT INTO mem_vgen(user_id, page, gen) SELECT u, p, g.gen FROM"
     " (SELECT NEW.user_id AS u, NEW.page AS p UNION ALL SELECT NEW.user_id, -1"
     "  UNION ALL SELECT OLD.user_id, -1) JOIN mem_vgen g ON g.user_id = 0 AND g.page = -1"
     " WHERE true ON CONFLICT(user_id, page) DO UPDATE SET gen = excluded.gen;"
     " END;"
     "CREATE TRIGGER mem_vpack_vgen_del AFTER DELETE ON mem_vpack BEGIN"
     " UPDATE mem_vgen SET gen = gen + 1 WHERE user_id = 0 AND page = -1;"
     " DELETE FROM mem_vgen WHERE user_id = OLD.user_id AND page = OLD.page;"
     " INSERT INTO mem_vgen(user_id, page, gen) SELECT OLD.user_id, -1, g.gen FROM mem_vgen g"
     " WHERE g.user_id = 0 AND g.page = -1 AND EXISTS (SELECT 1 FROM users WHERE id = OLD.user_id)"
     " ON CONFLICT(user_id, page) DO UPDATE SET gen = excluded.gen;"
     " END;"),
    // v6: PostgreSQL's clustering marks (db_pg.c); nothing here.
    "SELECT 1;",
};

static cg_status sq_migrate(void *conn, int from, int to, cg_err *err) {
    sq_conn *c = conn;
    if (to < 1 || to > (int)(sizeof MIGRATIONS / sizeof *MIGRATIONS) || from != to - 1)
        return cg_err_set(err, CG_ERR_INTERNAL, "sqlite: no migration %d -> %d", from, to);
    char *msg = NULL;
    int rc = sqlite3_exec(c->db, MIGRATIONS[to - 1], NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        cg_status st = cg_err_set(err, CG_ERR_IO, "sqlite: migration to version %d: %s", to,
                                  msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return st;
    }
    return CG_OK;
}

// ---- text index ------------------------------------------------------------------------------

static cg_status sq_index_put(void *conn, int64_t mem_id, int64_t user_id, const char *text,
                              const char *terms, cg_err *err) {
    sq_conn *c = conn;
    db_val p[2] = {db_int(mem_id), db_text(c->index_raw_text ? text : terms)};
    return sq_exec(conn, "INSERT INTO mem_fts(rowid, body) VALUES (?, ?)", p, 2, NULL, NULL, err);
}

static cg_status sq_index_del(void *conn, int64_t mem_id, cg_err *err) {
    db_val p[1] = {db_int(mem_id)};
    return sq_exec(conn, "DELETE FROM mem_fts WHERE rowid = ?", p, 1, NULL, NULL, err);
}

typedef struct hits_ctx { db_hit *v; size_t n, cap; bool *cur; } hits_ctx;

static cg_status hit_row(void *user, const db_val *cols, int n_cols, cg_err *err) {
    hits_ctx *h = user;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 32;
        db_hit *v = realloc(h->v, cap * sizeof *v);
        if (!v) return cg_err_set(err, CG_ERR_NOMEM, "sqlite: out of memory");
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n++] = (db_hit){cols[0].i, cols[1].t == DB_REAL ? cols[1].r : (double)cols[1].i};
    return CG_OK;
}

// hit_row plus column 2: whether the memory is current (kept in h->cur, parallel to h->v).
static cg_status cur_hit_row(void *user, const db_val *cols, int n_cols, cg_err *err) {
    hits_ctx *h = user;
    size_t cap = h->cap;
    cg_status st = hit_row(user, cols, n_cols, err);
    if (st) return st;
    if (h->cap != cap || !h->cur) {
        bool *c = realloc(h->cur, h->cap * sizeof *c);
        if (!c) return cg_err_set(err, CG_ERR_NOMEM, "sqlite: out of memory");
        h->cur = c;
    }
    h->cur[h->n - 1] = cols[2].t == DB_INT && cols[2].i != 0;
    return CG_OK;
}

// Best BM25 first, then lower id (the SQL order "ORDER BY 2 DESC, m.id").
static int cmp_hit(const void *a, const void *b) {
    const db_hit *x = a, *y = b;
    if (x->bm25 != y->bm25) return x->bm25 > y->bm25 ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static cg_status sq_index_search(void *conn, int64_t user_id, const char *const *terms,
                                 size_t n_terms, bool current_only, int limit,
                                 int max_candidates, db_hit **out, size_t *n_out, cg_err *err) {
    cg_buf q;
    cg_buf_init(&q);
    hits_ctx h = {0};
    cg_status st = CG_OK;
    *out = NULL;
    *n_out = 0;
    if (n_terms == 0 || max_candidates < 1) goto done;
    // Every term is quoted, so FTS5 query syntax in user input has no effect.
    for (size_t i = 0; i < n_terms; i++) {
        if (i) cg_buf_puts(&q, " OR ");
        cg_buf_putc(&q, '"');
        for (const char *p = terms[i]; *p; p++) {
            if (*p == '"') cg_buf_putc(&q, '"');
            cg_buf_putc(&q, *p);
        }
        cg_buf_putc(&q, '"');
    }
    if (!cg_buf_ok(&q)) {
        st = cg_err_set(err, CG_ERR_NOMEM, "sqlite: out of memory");
        goto done;
    }
    // Only the user's max_candidates newest matches are ranked (see db.h): one walk of the
    // matches newest first (FTS5 serves rowid order; CROSS JOIN keeps it the outer loop) that
    // scores each with bm25 and notes whether it is current; the cut to current ones, the order
    // (score, then id) and the limit are applied here. bm25 of a row does not depend on the
    // statement, so this equals ranking "rowid >= the max_candidates-th newest" in SQL (the
    // earlier two-pass form, which walked the newest matches twice).
    db_val p[3] = {db_text(q.data), db_int(user_id), db_int(max_candidates)};
    if ((st = sq_exec(conn,
                      "SELECT m.id, -bm25(mem_fts), m.superseded_by IS NULL AND m.valid_to_ms IS NULL"
                      " FROM mem_fts CROSS JOIN memories m ON m.id = mem_fts.rowid"
                      " WHERE mem_fts MATCH ? AND m.user_id = ?"
                      " ORDER BY mem_fts.rowid DESC LIMIT ?",
                      p, 3, cur_hit_row, &h, err)))
        goto done;
    size_t k = 0;
    for (size_t i = 0; i < h.n; i++)
        if (!current_only || h.cur[i]) h.v[k++] = h.v[i];
    h.n = k;
    if (h.n > 1) qsort(h.v, h.n, sizeof *h.v, cmp_hit);
    if (h.n > (size_t)limit) h.n = (size_t)(limit > 0 ? limit : 0);
    *out = h.v;
    *n_out = h.n;
    h.v = NULL;
done:
    free(h.v);
    free(h.cur);
    cg_buf_free(&q);
    return st;
}

static cg_status sq_purge(void *conn, cg_err *err) {
    cg_status st = sq_exec(conn, "INSERT INTO mem_fts(mem_fts) VALUES ('optimize')", NULL, 0, NULL,
                           NULL, err);
    if (st) return st;
    return sq_exec(conn, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, 0, NULL, NULL, err);
}

static void sq_close(void *conn) {
    sq_conn *c = conn;
    if (!c) return;
    sq_cache_clear(c);
    sqlite3_close_v2(c->db);
    free(c);
}

static const db_ops SQ_OPS = {
    .name = "sqlite",
    .user_col = "+user_id",
    .exec = sq_exec,
    .migrate = sq_migrate,
    .index_put = sq_index_put,
    .index_del = sq_index_del,
    .index_search = sq_index_search,
    .purge = sq_purge,
    .close = sq_close,
};

cg_status db_sqlite_open(const char *path, const cg_store_opts *o, bool index_raw_text,
                         void **conn, const db_ops **ops, cg_err *err) {
    cg_status st = CG_OK;
    sq_conn *c = calloc(1, sizeof *c);
    if (!c) return cg_err_set(err, CG_ERR_NOMEM, "sqlite: out of memory");
    c->index_raw_text = index_raw_text;
    int flags = o->read_only ? SQLITE_OPEN_READONLY
                             : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path, &c->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        st = cg_err_set(err, CG_ERR_IO, "sqlite: cannot open '%s': %s", path,
                        c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, o->busy_timeout_ms > 0 ? o->busy_timeout_ms : 5000);
    const char *pragmas = o->read_only ? "PRAGMA foreign_keys=ON;"
                          : o->relaxed_durability
                              ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                                " PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;"
                                " PRAGMA cache_size=-32768; PRAGMA mmap_size=268435456;"
                              : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                " PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;"
                                " PRAGMA cache_size=-32768; PRAGMA mmap_size=268435456;";
    char *msg = NULL;
    rc = sqlite3_exec(c->db, pragmas, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        st = cg_err_set(err, CG_ERR_IO, "sqlite: '%s': %s", path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        goto fail;
    }
    if ((st = register_tokenizer(c->db, err))) goto fail;
    *conn = c;
    *ops = &SQ_OPS;
    return CG_OK;
fail:
    sq_close(c);
    return st;
}
