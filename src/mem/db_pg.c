// db_pg.c — the PostgreSQL driver of the memory store (see db.h), over libpq.
//
// Statements go through PQexecParams with every parameter and result in binary format (exact
// integers and doubles, raw bytea); `?` placeholders are rewritten to $1, $2 …. The text index is
// a plain table of terms (mem_terms: one row per distinct term of a memory with its frequency
// and the memory's term count, mem_doclen: term count per memory, mem_stats: corpus totals,
// mem_df: documents per term) filled from the same fts_cjk
// tokenizer as SQLite's FTS5 table, and scored with the same BM25 formula FTS5's bm25() uses
// (k1 = 1.2, b = 0.75, idf = ln((N - n + 0.5) / (n + 0.5)) floored at 1e-6, corpus-wide
// statistics), so both backends rank alike. Layout for many users (schema v3): a search reads
// only index pages led by user_id — postings with tf and term count from mem_terms_pkey, the
// currency/importance/creation columns from memories_user_id — and then the k result rows, so
// its cost does not depend on how one user's rows are scattered over the heap. The vector half
// and the result rows do read heap and TOAST blocks; schema v6 marks the user-ordered index of
// each such table as its clustering index, so `CLUSTER` keeps a user's blocks together (the
// ~130 blocks of a cold search then come as runs, not one by one; docs/memory.md). SQLSTATE
// class 23 (constraint) maps to CG_ERR_INVALID, everything else to CG_ERR_IO.
#include <libpq-fe.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mem/db.h"

#define MAX_PARAMS 4096
#define MAX_COLS 32

// Type OIDs (pg_type.h is a server header; these values are fixed by PostgreSQL).
enum { OID_BOOL = 16, OID_BYTEA = 17, OID_NAME = 19, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23,
       OID_TEXT = 25, OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_VARCHAR = 1043 };

#define N_PREPARED 64

// Server-side prepared statements keyed by (rewritten) SQL text, so repeated statements skip
// parsing and planning. Parameter types come from the first call (NULL: inferred by the server,
// which for our SQL is always the column's type). Evicted round-robin with DEALLOCATE.
typedef struct pg_prep { char *sql; char name[24]; } pg_prep;

typedef struct pg_conn {
    PGconn *c;
    pg_prep prep[N_PREPARED];
    unsigned next_evict, serial;
    int version;  // schema version (set_version); below 3 mem_terms has no n_terms column
} pg_conn;

// The name of a prepared statement for sql, preparing it when new; NULL after an error.
static const char *prepared(pg_conn *pc, const char *sql, int n_params, const Oid *types,
                            cg_status *st, cg_err *err);

static uint64_t be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}
static void put_be64(unsigned char *p, uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (unsigned char)v;
}

static cg_status pg_fail(PGresult *r, PGconn *c, const char *what, cg_err *err) {
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
    char clean[300];
    snprintf(clean, sizeof clean, "%s", msg && *msg ? msg : PQerrorMessage(c));
    size_t n = strlen(clean);
    while (n && (clean[n - 1] == '\n' || clean[n - 1] == ' ')) clean[--n] = '\0';
    cg_status st = state && strncmp(state, "23", 2) == 0 ? CG_ERR_INVALID : CG_ERR_IO;
    return cg_err_set(err, st, "postgres: %s: %s (SQLSTATE %s)", what, clean, state ? state : "?");
}

static cg_status pg_exec(void *conn, const char *sql, const db_val *params, int n_params,
                         db_row_fn fn, void *user, cg_err *err) {
    pg_conn *pc = conn;
    cg_status st = CG_OK;
    PGresult *r = NULL;
    cg_buf q;
    cg_buf_init(&q);
    if (n_params > MAX_PARAMS)
        return cg_err_set(err, CG_ERR_LIMIT, "postgres: %d parameters (max %d)", n_params, MAX_PARAMS);
    Oid *types = calloc((size_t)n_params + 1, sizeof *types);
    const char **values = calloc((size_t)n_params + 1, sizeof *values);
    int *lengths = calloc((size_t)n_params + 1, sizeof *lengths);
    int *formats = calloc((size_t)n_params + 1, sizeof *formats);
    unsigned char(*nums)[8] = calloc((size_t)n_params + 1, sizeof *nums);
    if (!types || !values || !lengths || !formats || !nums) {
        st = cg_err_set(err, CG_ERR_NOMEM, "postgres: out of memory");
        goto done;
    }
    int k = 0;
    for (const char *p = sql; *p; p++) {
        if (*p == '?') cg_buf_printf(&q, "$%d", ++k);
        else cg_buf_putc(&q, *p);
    }
    if (!cg_buf_ok(&q) || k != n_params) {
        st = cg_err_set(err, k != n_params ? CG_ERR_INTERNAL : CG_ERR_NOMEM,
                        "postgres: statement has %d placeholders, %d parameters", k, n_params);
        goto done;
    }
    for (int i = 0; i < n_params; i++) {
        const db_val *v = &params[i];
        formats[i] = 1;
        switch (v->t) {
        case DB_NULL: break;
        case DB_INT:
            types[i] = OID_INT8;
            put_be64(nums[i], (uint64_t)v->i);
            values[i] = (const char *)nums[i];
            lengths[i] = 8;
            break;
        case DB_REAL: {
            uint64_t bits;
            memcpy(&bits, &v->r, 8);
            types[i] = OID_FLOAT8;
            put_be64(nums[i], bits);
            values[i] = (const char *)nums[i];
            lengths[i] = 8;
            break;
        }
        case DB_TEXT:
        case DB_BLOB:
            if (v->n > (size_t)INT32_MAX) {
                st = cg_err_set(err, CG_ERR_LIMIT, "postgres: parameter %d has %zu bytes", i + 1, v->n);
                goto done;
            }
            types[i] = v->t == DB_TEXT ? OID_TEXT : OID_BYTEA;
            values[i] = v->n ? v->p : "";
            lengths[i] = (int)v->n;
            break;
        }
    }
    const char *name = prepared(pc, q.data, n_params, types, &st, err);
    if (!name) goto done;
    r = PQexecPrepared(pc->c, name, n_params, values, lengths, formats, 1);
    ExecStatusType es = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK) {
        st = pg_fail(r, pc->c, "query", err);
        goto done;
    }
    if (!fn || es != PGRES_TUPLES_OK) goto done;
    int n_rows = PQntuples(r), n_cols = PQnfields(r);
    if (n_cols > MAX_COLS) {
        st = cg_err_set(err, CG_ERR_INTERNAL, "postgres: %d columns (max %d)", n_cols, MAX_COLS);
        goto done;
    }
    for (int row = 0; row < n_rows; row++) {
        db_val cols[MAX_COLS];
        for (int c = 0; c < n_cols; c++) {
            if (PQgetisnull(r, row, c)) {
                cols[c] = db_null();
                continue;
            }
            const unsigned char *b = (const unsigned char *)PQgetvalue(r, row, c);
            int len = PQgetlength(r, row, c);
            Oid t = PQftype(r, c);
            bool ok = true;
            switch (t) {
            case OID_INT8: ok = len == 8; if (ok) cols[c] = db_int((int64_t)be64(b)); break;
            case OID_INT4:
                ok = len == 4;
                if (ok) cols[c] = db_int((int32_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                                                   (uint32_t)b[2] << 8 | b[3]));
                break;
            case OID_INT2: ok = len == 2; if (ok) cols[c] = db_int((int16_t)(b[0] << 8 | b[1])); break;
            case OID_BOOL: ok = len == 1; if (ok) cols[c] = db_int(b[0] != 0); break;
            case OID_FLOAT8: {
                ok = len == 8;
                uint64_t bits = ok ? be64(b) : 0;
                double d;
                memcpy(&d, &bits, 8);
                cols[c] = db_real(d);
                break;
            }
            case OID_FLOAT4: {
                ok = len == 4;
                uint32_t bits = ok ? ((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                                      (uint32_t)b[2] << 8 | b[3]) : 0;
                float f;
                memcpy(&f, &bits, 4);
                cols[c] = db_real(f);
                break;
            }
            case OID_BYTEA: cols[c] = (db_val){.t = DB_BLOB, .p = b, .n = (size_t)len}; break;
            case OID_TEXT: case OID_VARCHAR: case OID_NAME:
                cols[c] = (db_val){.t = DB_TEXT, .p = b, .n = (size_t)len};
                break;
            default:
                st = cg_err_set(err, CG_ERR_INTERNAL, "postgres: column '%s' has unsupported type oid %u",
                                PQfname(r, c), (unsigned)t);
                goto done;
            }
            if (!ok) {
                st = cg_err_set(err, CG_ERR_FORMAT, "postgres: column '%s' has %d bytes for type oid %u",
                                PQfname(r, c), len, (unsigned)t);
                goto done;
            }
        }
        if ((st = fn(user, cols, n_cols, err))) goto done;
    }
done:
    PQclear(r);
    cg_buf_free(&q);
    free(types);
    free(values);
    free(lengths);
    free(formats);
    free(nums);
    return st;
}

static const char *prepared(pg_conn *pc, const char *sql, int n_params, const Oid *types,
                            cg_status *st, cg_err *err) {
    for (int i = 0; i < N_PREPARED; i++)
        if (pc->prep[i].sql && strcmp(pc->prep[i].sql, sql) == 0) return pc->prep[i].name;
    pg_prep *e = &pc->prep[pc->next_evict++ % N_PREPARED];
    if (e->sql) {
        char dealloc[48];
        snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", e->name);
        PQclear(PQexec(pc->c, dealloc));
        free(e->sql);
        e->sql = NULL;
    }
    size_t n = strlen(sql) + 1;
    char *copy = malloc(n);
    if (!copy) {
        *st = cg_err_set(err, CG_ERR_NOMEM, "postgres: out of memory");
        return NULL;
    }
    memcpy(copy, sql, n);
    snprintf(e->name, sizeof e->name, "cg%u", pc->serial++);
    PGresult *r = PQprepare(pc->c, e->name, sql, n_params, types);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        *st = pg_fail(r, pc->c, "prepare", err);
        PQclear(r);
        free(copy);
        return NULL;
    }
    PQclear(r);
    e->sql = copy;
    return e->name;
}

static const char *const MIGRATIONS[] = {
    // v1: the initial schema.
    "CREATE TABLE meta(k TEXT PRIMARY KEY, v BYTEA NOT NULL);"
    "CREATE TABLE users(id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " created_ms BIGINT NOT NULL);"
    "CREATE TABLE api_keys(id BIGSERIAL PRIMARY KEY,"
    " user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " scope BIGINT NOT NULL, hash BYTEA NOT NULL UNIQUE, created_ms BIGINT NOT NULL,"
    " last_used_ms BIGINT, revoked_ms BIGINT);"
    "CREATE INDEX api_keys_user ON api_keys(user_id);"
    "CREATE TABLE conversations(id BIGSERIAL PRIMARY KEY,"
    " user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " title TEXT, temporary BIGINT NOT NULL, created_ms BIGINT NOT NULL);"
    "CREATE INDEX conversations_user ON conversations(user_id);"
    "CREATE TABLE messages(id BIGSERIAL PRIMARY KEY,"
    " user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " conv_id BIGINT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    " role TEXT NOT NULL, enc BIGINT NOT NULL, body BYTEA NOT NULL,"
    " n_tokens BIGINT NOT NULL, created_ms BIGINT NOT NULL);"
    "CREATE INDEX messages_conv ON messages(conv_id, id);"
    "CREATE INDEX messages_user ON messages(user_id);"
    "CREATE TABLE memories(id BIGSERIAL PRIMARY KEY,"
    " user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " kind BIGINT NOT NULL, source BIGINT NOT NULL, enc BIGINT NOT NULL, body BYTEA NOT NULL,"
    " importance DOUBLE PRECISION NOT NULL, created_ms BIGINT NOT NULL,"
    " updated_ms BIGINT NOT NULL, valid_from_ms BIGINT NOT NULL, valid_to_ms BIGINT,"
    " superseded_by BIGINT REFERENCES memories(id) ON DELETE SET NULL,"
    " due_ms BIGINT, conv_id BIGINT REFERENCES conversations(id) ON DELETE SET NULL,"
    " embedding BYTEA);"
    "CREATE INDEX memories_user ON memories(user_id, created_ms);"
    "CREATE INDEX memories_superseded ON memories(superseded_by);"
    "CREATE INDEX memories_conv ON memories(conv_id);"
    "CREATE TABLE documents(id BIGSERIAL PRIMARY KEY,"
    " user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " title TEXT, created_ms BIGINT NOT NULL);"
    "CREATE INDEX documents_user ON documents(user_id);"
    "CREATE TABLE chunks(id BIGSERIAL PRIMARY KEY,"
    " user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " doc_id BIGINT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,"
    " seq BIGINT NOT NULL, enc BIGINT NOT NULL, body BYTEA NOT NULL);"
    "CREATE INDEX chunks_doc ON chunks(doc_id, seq);"
    "CREATE INDEX chunks_user ON chunks(user_id);"
    "CREATE TABLE audit(id BIGSERIAL PRIMARY KEY,"
    " user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " memory_id BIGINT, action TEXT NOT NULL, at_ms BIGINT NOT NULL);"
    "CREATE INDEX audit_user ON audit(user_id);"
    "CREATE TABLE mem_terms(memory_id BIGINT NOT NULL REFERENCES memories(id) ON DELETE CASCADE,"
    " user_id BIGINT NOT NULL, term TEXT NOT NULL, tf BIGINT NOT NULL,"
    " PRIMARY KEY (user_id, term, memory_id));"
    "CREATE INDEX mem_terms_term ON mem_terms(term);"
    "CREATE INDEX mem_terms_memory ON mem_terms(memory_id);"
    "CREATE TABLE mem_doclen(memory_id BIGINT PRIMARY KEY REFERENCES memories(id)"
    " ON DELETE CASCADE, n_terms BIGINT NOT NULL);"
    "CREATE TABLE mem_stats(id BIGINT PRIMARY KEY, n_docs BIGINT NOT NULL,"
    " n_terms BIGINT NOT NULL);"
    "INSERT INTO mem_stats VALUES (1, 0, 0);"
    "CREATE TABLE mem_df(term TEXT PRIMARY KEY, n BIGINT NOT NULL);",
    // v2: client-supplied ids for import.
    "ALTER TABLE memories ADD COLUMN client_id TEXT;"
    "CREATE UNIQUE INDEX memories_client ON memories(user_id, client_id);",
    // v3: one user's search reads contiguous index pages instead of scattered table rows. The
    // postings carry their memory's term count and the primary key covers tf and n_terms, so
    // BM25 is an index-only scan of the user's range; memories_user_id covers what filtering
    // and ranking read (currency, importance, creation time). mem_terms_term served no query.
    // The table is rewritten in key order (one sequential pass; an UPDATE of every posting would
    // touch every index once per row), which also leaves each user's postings together; postings
    // without a length row were invisible to search before and are dropped.
    "CREATE TABLE mem_terms_v3 AS SELECT t.memory_id, t.user_id, t.term, t.tf, d.n_terms"
    " FROM mem_terms t JOIN mem_doclen d ON d.memory_id = t.memory_id"
    " ORDER BY t.user_id, t.term, t.memory_id;"
    "DROP TABLE mem_terms;"
    "ALTER TABLE mem_terms_v3 RENAME TO mem_terms;"
    "ALTER TABLE mem_terms ALTER COLUMN memory_id SET NOT NULL, ALTER COLUMN user_id SET NOT NULL,"
    " ALTER COLUMN term SET NOT NULL, ALTER COLUMN tf SET NOT NULL,"
    " ALTER COLUMN n_terms SET NOT NULL;"
    "ALTER TABLE mem_terms ADD CONSTRAINT mem_terms_pkey"
    " PRIMARY KEY (user_id, term, memory_id) INCLUDE (tf, n_terms);"
    "ALTER TABLE mem_terms ADD CONSTRAINT mem_terms_memory_id_fkey FOREIGN KEY (memory_id)"
    " REFERENCES memories(id) ON DELETE CASCADE;"
    "CREATE INDEX mem_terms_memory ON mem_terms(memory_id);"
    "CREATE INDEX memories_user_id ON memories(user_id, id)"
    " INCLUDE (superseded_by, valid_to_ms, importance, created_ms);",
    // v4 (CG_STORE_VPACK_VERSION): packed per-user vectors (vpack.c); store.c fills them from
    // the embedding blobs in the same transaction. The pages are half-precision numbers that do
    // not compress: stored out of line without trying (EXTERNAL).
    "ALTER TABLE memories ADD COLUMN vpage BIGINT;"
    "CREATE TABLE mem_vpack(user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " page BIGINT NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (user_id, page));"
    "ALTER TABLE mem_vpack ALTER COLUMN data SET STORAGE EXTERNAL;",
    // v5 (CG_STORE_VGEN_VERSION): generation numbers of the packed pages, which validate the
    // in-process page cache (vpack.c; the SQLite twin in db_sqlite.c has the full comment). A
    // trigger keeps them, so every writer of mem_vpack (COPY included) bumps them in its own
    // transaction; the numbers come from a sequence (no shared row to lock, never reused).
    "CREATE SEQUENCE mem_vgen_seq;"
    "CREATE TABLE mem_vgen(user_id BIGINT NOT NULL, page BIGINT NOT NULL, gen BIGINT NOT NULL,"
    " PRIMARY KEY (user_id, page));"
    "INSERT INTO mem_vgen(user_id, page, gen) SELECT user_id, page, nextval('mem_vgen_seq')"
    " FROM mem_vpack;"
    "INSERT INTO mem_vgen(user_id, page, gen) SELECT user_id, -1, nextval('mem_vgen_seq')"
    " FROM (SELECT DISTINCT user_id FROM mem_vpack) u;"
    "CREATE FUNCTION mem_vgen_bump() RETURNS trigger LANGUAGE plpgsql AS $f$"
    " DECLARE g BIGINT := nextval('mem_vgen_seq');"
    " BEGIN"
    "  IF TG_OP <> 'INSERT' THEN"
    "   DELETE FROM mem_vgen WHERE user_id = OLD.user_id AND page = OLD.page;"
    "   INSERT INTO mem_vgen(user_id, page, gen) SELECT OLD.user_id, -1, g"
    "    WHERE EXISTS (SELECT 1 FROM users WHERE id = OLD.user_id)"
    "    ON CONFLICT (user_id, page) DO UPDATE SET gen = EXCLUDED.gen;"
    "  END IF;"
    "  IF TG_OP <> 'DELETE' THEN"
    "   INSERT INTO mem_vgen(user_id, page, gen) VALUES (NEW.user_id, NEW.page, g),"
    "    (NEW.user_id, -1, g) ON CONFLICT (user_id, page) DO UPDATE SET gen = EXCLUDED.gen;"
    "  END IF;"
    "  RETURN NULL;"
    " END $f$;"
    "CREATE TRIGGER mem_vpack_vgen AFTER INSERT OR UPDATE OR DELETE ON mem_vpack"
    " FOR EACH ROW EXECUTE FUNCTION mem_vgen_bump();",
    // v6: a search reads one user's rows from three tables — the packed pages (and their TOAST
    // chunks), the re-ranked candidates' embedding blobs and the k result rows in memories,
    // the postings — and a cold read costs ~0.2 ms a block wherever the rows lie. Rows are
    // appended in arrival order, which interleaves users, so each of those reads is a separate
    // random block. This step records the order that keeps a user's rows together as each
    // table's clustering index; a plain `CLUSTER` (no arguments: every marked table; run it
    // in a maintenance window) rewrites them in that order, TOAST chunks included, and
    // bench/mem_pg_bulk.c loads in that order. Catalog-only: instant on any size. (Marks are
    // per index: dropping and recreating an index loses its mark.)
    "ALTER TABLE memories CLUSTER ON memories_user_id;"
    "ALTER TABLE mem_vpack CLUSTER ON mem_vpack_pkey;"
    "ALTER TABLE mem_terms CLUSTER ON mem_terms_pkey;",
};

static cg_status pg_migrate(void *conn, int from, int to, cg_err *err) {
    pg_conn *pc = conn;
    if (to < 1 || to > (int)(sizeof MIGRATIONS / sizeof *MIGRATIONS) || from != to - 1)
        return cg_err_set(err, CG_ERR_INTERNAL, "postgres: no migration %d -> %d", from, to);
    PGresult *r = PQexec(pc->c, MIGRATIONS[to - 1]);  // several statements: simple protocol
    cg_status st = CG_OK;
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        st = pg_fail(r, pc->c, "migration", err);
        cg_err_wrap(err, "to version %d", to);
    }
    PQclear(r);
    return st;
}

// ---- text index ------------------------------------------------------------------------------

typedef struct term_tf { const char *t; size_t n; int64_t tf; } term_tf;

static int cmp_term(const void *a, const void *b) {
    const term_tf *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->t, y->t, n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

// Splits the space-separated term list into distinct terms with counts (pointers into terms).
static cg_status count_terms(const char *terms, term_tf **out, size_t *n_out, int64_t *total,
                             cg_err *err) {
    size_t cap = 1;
    for (const char *p = terms; *p; p++) cap += *p == ' ';
    term_tf *v = malloc(cap * sizeof *v);
    if (!v) return cg_err_set(err, CG_ERR_NOMEM, "postgres: out of memory");
    size_t n = 0;
    for (const char *p = terms; *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len) v[n++] = (term_tf){p, len, 1};
        p += len;
        if (*p == ' ') p++;
    }
    *total = (int64_t)n;
    if (n > 1) qsort(v, n, sizeof *v, cmp_term);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && cmp_term(&v[m - 1], &v[i]) == 0) v[m - 1].tf++;
        else v[m++] = v[i];
    }
    *out = v;
    *n_out = m;
    return CG_OK;
}

static cg_status pg_index_put(void *conn, int64_t mem_id, int64_t user_id, const char *text,
                              const char *terms, cg_err *err) {
    bool v3 = ((pg_conn *)conn)->version >= 3;
    term_tf *v = NULL;
    size_t n = 0;
    int64_t total = 0;
    cg_status st = count_terms(terms, &v, &n, &total, err);
    if (st) return st;
    enum { BATCH = 500 };
    db_val *p = malloc(5 * BATCH * sizeof *p);
    cg_buf q;
    cg_buf_init(&q);
    if (!p) {
        st = cg_err_set(err, CG_ERR_NOMEM, "postgres: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i += BATCH) {
        size_t m = n - i < BATCH ? n - i : BATCH;
        cg_buf_reset(&q);
        int w = v3 ? 5 : 4;  // values per posting
        cg_buf_puts(&q, v3 ? "INSERT INTO mem_terms(memory_id, user_id, term, tf, n_terms) VALUES "
                           : "INSERT INTO mem_terms(memory_id, user_id, term, tf) VALUES ");
        for (size_t j = 0; j < m; j++) {
            cg_buf_puts(&q, j ? "," : "");
            cg_buf_puts(&q, v3 ? "(?, ?, ?, ?, ?)" : "(?, ?, ?, ?)");
            db_val *r = &p[(size_t)w * j];
            r[0] = db_int(mem_id);
            r[1] = db_int(user_id);
            r[2] = (db_val){.t = DB_TEXT, .p = v[i + j].t, .n = v[i + j].n};
            r[3] = db_int(v[i + j].tf);
            if (v3) r[4] = db_int(total);
        }
        if (!cg_buf_ok(&q)) {
            st = cg_err_set(err, CG_ERR_NOMEM, "postgres: out of memory");
            goto done;
        }
        if ((st = pg_exec(conn, q.data, p, (int)((size_t)w * m), NULL, NULL, err))) goto done;
        // Document frequencies; terms are sorted, so concurrent writers lock rows in one order.
        cg_buf_reset(&q);
        cg_buf_puts(&q, "INSERT INTO mem_df(term, n) VALUES ");
        for (size_t j = 0; j < m; j++) {
            cg_buf_puts(&q, j ? ",(?, 1)" : "(?, 1)");
            p[j] = (db_val){.t = DB_TEXT, .p = v[i + j].t, .n = v[i + j].n};
        }
        cg_buf_puts(&q, " ON CONFLICT (term) DO UPDATE SET n = mem_df.n + 1");
        if (!cg_buf_ok(&q)) {
            st = cg_err_set(err, CG_ERR_NOMEM, "postgres: out of memory");
            goto done;
        }
        if ((st = pg_exec(conn, q.data, p, (int)m, NULL, NULL, err))) goto done;
    }
    db_val d[2] = {db_int(mem_id), db_int(total)};
    if ((st = pg_exec(conn, "INSERT INTO mem_doclen(memory_id, n_terms) VALUES (?, ?)", d, 2, NULL,
                      NULL, err)))
        goto done;
    db_val s[1] = {db_int(total)};
    st = pg_exec(conn, "UPDATE mem_stats SET n_docs = n_docs + 1, n_terms = n_terms + ? WHERE id = 1",
                 s, 1, NULL, NULL, err);
done:
    free(v);
    free(p);
    cg_buf_free(&q);
    return st;
}

static cg_status int_row(void *user, const db_val *cols, int n_cols, cg_err *err) {
    int64_t *out = user;
    *out = cols[0].t == DB_INT ? cols[0].i : 0;
    return CG_OK;
}

typedef struct zero_terms { cg_buf sql; db_val *p; size_t n, cap; char **keep; } zero_terms;

// Collects the terms whose document frequency dropped to zero (their text must not outlive the
// last memory that used it).
static cg_status zero_row(void *user, const db_val *cols, int n_cols, cg_err *err) {
    zero_terms *z = user;
    if (cols[1].t != DB_INT || cols[1].i > 0 || cols[0].t != DB_TEXT) return CG_OK;
    if (z->n == z->cap) {
        size_t cap = z->cap ? z->cap * 2 : 16;
        char **k = realloc(z->keep, cap * sizeof *k);
        if (!k) return cg_err_set(err, CG_ERR_NOMEM, "postgres: out of memory");
        z->keep = k;
        z->cap = cap;
    }
    char *t = malloc(cols[0].n + 1);
    if (!t) return cg_err_set(err, CG_ERR_NOMEM, "postgres: out of memory");
    memcpy(t, cols[0].p, cols[0].n);
    t[cols[0].n] = '\0';
    z->keep[z->n++] = t;
    return CG_OK;
}

static cg_status pg_index_del(void *conn, int64_t mem_id, cg_err *err) {
    int64_t len = -1;
    zero_terms z = {0};
    cg_buf_init(&z.sql);
    db_val p[1] = {db_int(mem_id)};
    cg_status st = pg_exec(conn, "DELETE FROM mem_doclen WHERE memory_id = ? RETURNING n_terms", p,
                           1, int_row, &len, err);
    if (st || len < 0) return st;  // not indexed (already gone): nothing to undo
    if ((st = pg_exec(conn,
                      "WITH gone AS (DELETE FROM mem_terms WHERE memory_id = ? RETURNING term)"
                      " UPDATE mem_df SET n = n - 1 WHERE term IN (SELECT term FROM gone)"
                      " RETURNING term, n",
                      p, 1, zero_row, &z, err)))
        goto done;
    for (size_t i = 0; i < z.n; i += 500) {
        size_t m = z.n - i < 500 ? z.n - i : 500;
        db_val tp[500];
        cg_buf_reset(&z.sql);
        cg_buf_puts(&z.sql, "DELETE FROM mem_df WHERE n <= 0 AND term IN (");
        for (size_t j = 0; j < m; j++) {
            cg_buf_puts(&z.sql, j ? ", ?" : "?");
            tp[j] = db_text(z.keep[i + j]);
        }
        cg_buf_putc(&z.sql, ')');
        if (!cg_buf_ok(&z.sql)) {
            st = cg_err_set(err, CG_ERR_NOMEM, "postgres: out of memory");
            goto done;
        }
        if ((st = pg_exec(conn, z.sql.data, tp, (int)m, NULL, NULL, err))) goto done;
    }
    db_val s[1] = {db_int(len)};
    st = pg_exec(conn, "UPDATE mem_stats SET n_docs = n_docs - 1, n_terms = n_terms - ? WHERE id = 1",
                 s, 1, NULL, NULL, err);
done:
    for (size_t i = 0; i < z.n; i++) free(z.keep[i]);
    free(z.keep);
    cg_buf_free(&z.sql);
    return st;
}

typedef struct stats_ctx { int64_t n_docs, n_terms; } stats_ctx;

static cg_status stats_row(void *user, const db_val *cols, int n_cols, cg_err *err) {
    stats_ctx *s = user;
    s->n_docs = cols[0].i;
    s->n_terms = cols[1].i;
    return CG_OK;
}

typedef struct term_idf { const char *term; double idf, df; } term_idf;

typedef struct score_acc {
    db_hit *v;
    size_t n, cap;
    term_idf *idf;
    size_t n_terms;
    double avgdl;
} score_acc;

static cg_status df_row(void *user, const db_val *cols, int n_cols, cg_err *err) {
    score_acc *a = user;
    // cols: term, n; idf was pre-filled with N; replace by the real idf.
    for (size_t i = 0; i < a->n_terms; i++)
        if (cols[0].t == DB_TEXT && strlen(a->idf[i].term) == cols[0].n &&
            memcmp(a->idf[i].term, cols[0].p, cols[0].n) == 0) {
            double n_docs = a->idf[i].idf, n_hit = (double)cols[1].i;
            a->idf[i].df = n_hit;
            double idf = log((n_docs - n_hit + 0.5) / (n_hit + 0.5));
            a->idf[i].idf = idf <= 0.0 ? 1e-6 : idf;
        }
    return CG_OK;
}

static int cmp_hit_id(const void *x, const void *y) {
    const db_hit *a = x, *b = y;
    return a->id < b->id ? -1 : a->id > b->id;
}

static cg_status score_row(void *user, const db_val *cols, int n_cols, cg_err *err) {
    score_acc *a = user;
    // cols: memory_id, term, tf, n_terms
    double idf = 0.0;
    for (size_t i = 0; i < a->n_terms; i++)
        if (cols[1].t == DB_TEXT && strlen(a->idf[i].term) == cols[1].n &&
            memcmp(a->idf[i].term, cols[1].p, cols[1].n) == 0)
            idf = a->idf[i].idf;
    double tf = (double)cols[2].i, dl = (double)cols[3].i;
    const double k1 = 1.2, b = 0.75;
    double add = idf * (tf * (k1 + 1.0)) / (tf + k1 * (1.0 - b + b * dl / a->avgdl));
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        db_hit *v = realloc(a->v, cap * sizeof *v);
        if (!v) return cg_err_set(err, CG_ERR_NOMEM, "postgres: out of memory");
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = (db_hit){cols[0].i, add};
    return CG_OK;
}

static int cmp_hit(const void *x, const void *y) {
    const db_hit *a = x, *b = y;
    if (a->bm25 != b->bm25) return a->bm25 > b->bm25 ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static cg_status pg_index_search(void *conn, int64_t user_id, const char *const *terms,
                                 size_t n_terms, bool current_only, int limit,
                                 int max_candidates, db_hit **out, size_t *n_out, cg_err *err) {
    stats_ctx sc = {0, 0};
    score_acc a = {0};
    cg_status st;
    cg_buf q;
    cg_buf_init(&q);
    db_val *p = NULL;
    *out = NULL;
    *n_out = 0;
    if (n_terms == 0) return CG_OK;
    if (n_terms > MAX_PARAMS - 2)
        return cg_err_set(err, CG_ERR_LIMIT, "postgres: %zu query terms (max %d)", n_terms,
                          MAX_PARAMS - 2);
    if ((st = pg_exec(conn, "SELECT n_docs, n_terms FROM mem_stats WHERE id = 1", NULL, 0,
                      stats_row, &sc, err)))
        return st;
    if (sc.n_docs <= 0) return CG_OK;
    a.avgdl = (double)sc.n_terms / (double)sc.n_docs;
    if (a.avgdl <= 0) a.avgdl = 1;
    a.idf = calloc(n_terms, sizeof *a.idf);
    p = calloc(n_terms + 2, sizeof *p);
    if (!a.idf || !p) {
        st = cg_err_set(err, CG_ERR_NOMEM, "postgres: out of memory");
        goto done;
    }
    a.n_terms = n_terms;
    cg_buf_puts(&q, "SELECT term, n FROM mem_df WHERE term IN (");
    for (size_t i = 0; i < n_terms; i++) {
        a.idf[i] = (term_idf){terms[i], 0.0, 0.0};
        cg_buf_puts(&q, i ? ", ?" : "?");
        p[i] = db_text(terms[i]);
    }
    cg_buf_putc(&q, ')');
    if (!cg_buf_ok(&q)) {
        st = cg_err_set(err, CG_ERR_NOMEM, "postgres: out of memory");
        goto done;
    }
    // df_row reads N from the idf slot of each term it sees.
    for (size_t i = 0; i < n_terms; i++) a.idf[i].idf = (double)sc.n_docs;
    if ((st = pg_exec(conn, q.data, p, (int)n_terms, df_row, &a, err))) goto done;
    // Only the max_candidates newest matching memories are ranked (see db.h).
    cg_buf_reset(&q);
    cg_buf_puts(&q, "SELECT memory_id FROM mem_terms WHERE user_id = ? AND term IN (");
    p[0] = db_int(user_id);
    for (size_t i = 0; i < n_terms; i++) {
        cg_buf_puts(&q, i ? ", ?" : "?");
        p[i + 1] = db_text(terms[i]);
    }
    cg_buf_printf(&q, ") GROUP BY memory_id ORDER BY memory_id DESC LIMIT 1 OFFSET %d",
                  max_candidates - 1);
    int64_t cutoff = 0;
    if (!cg_buf_ok(&q)) {
        st = cg_err_set(err, CG_ERR_NOMEM, "postgres: out of memory");
        goto done;
    }
    // The global document frequencies bound the user's matches: below the cap, no cut needed.
    double df_sum = 0;
    for (size_t i = 0; i < n_terms; i++) df_sum += a.idf[i].df;
    if (df_sum >= max_candidates &&
        (st = pg_exec(conn, q.data, p, (int)n_terms + 1, int_row, &cutoff, err)))
        goto done;
    cg_buf_reset(&q);
    // From v3 both halves are index-only scans of the user's contiguous ranges (mem_terms_pkey
    // and memories_user_id, see MIGRATIONS v3): no table row is read. Before, every posting
    // costs a length row and a memory row from anywhere in the tables.
    if (((pg_conn *)conn)->version >= 3)
        cg_buf_puts(&q, current_only
                            ? "SELECT t.memory_id, t.term, t.tf, t.n_terms FROM mem_terms t"
                              " JOIN memories m ON m.user_id = t.user_id AND m.id = t.memory_id"
                              " WHERE m.superseded_by IS NULL AND m.valid_to_ms IS NULL"
                              " AND t.memory_id >= ? AND t.user_id = ? AND t.term IN ("
                            : "SELECT t.memory_id, t.term, t.tf, t.n_terms FROM mem_terms t"
                              " WHERE t.memory_id >= ? AND t.user_id = ? AND t.term IN (");
    else
        cg_buf_puts(&q, current_only
                            ? "SELECT t.memory_id, t.term, t.tf, d.n_terms FROM mem_terms t"
                              " JOIN mem_doclen d ON d.memory_id = t.memory_id"
                              " JOIN memories m ON m.id = t.memory_id"
                              " WHERE m.superseded_by IS NULL AND m.valid_to_ms IS NULL"
                              " AND t.memory_id >= ? AND t.user_id = ? AND t.term IN ("
                            : "SELECT t.memory_id, t.term, t.tf, d.n_terms FROM mem_terms t"
                              " JOIN mem_doclen d ON d.memory_id = t.memory_id"
                              " WHERE t.memory_id >= ? AND t.user_id = ? AND t.term IN (");
    p[0] = db_int(cutoff);
    p[1] = db_int(user_id);
    for (size_t i = 0; i < n_terms; i++) {
        cg_buf_puts(&q, i ? ", ?" : "?");
        p[i + 2] = db_text(terms[i]);
    }
    cg_buf_putc(&q, ')');
    if (!cg_buf_ok(&q)) {
        st = cg_err_set(err, CG_ERR_NOMEM, "postgres: out of memory");
        goto done;
    }
    if ((st = pg_exec(conn, q.data, p, (int)n_terms + 2, score_row, &a, err))) goto done;
    // One row per (memory, term): sum per memory, then rank.
    if (a.n > 1) qsort(a.v, a.n, sizeof *a.v, cmp_hit_id);
    size_t m = 0;
    for (size_t i = 0; i < a.n; i++) {
        if (m && a.v[m - 1].id == a.v[i].id) a.v[m - 1].bm25 += a.v[i].bm25;
        else a.v[m++] = a.v[i];
    }
    a.n = m;
    if (a.n > 1) qsort(a.v, a.n, sizeof *a.v, cmp_hit);
    if (a.n > (size_t)limit) a.n = (size_t)limit;
    *out = a.v;
    *n_out = a.n;
    a.v = NULL;
done:
    free(a.v);
    free(a.idf);
    free(p);
    cg_buf_free(&q);
    return st;
}

static cg_status pg_purge(void *conn, cg_err *err) { return CG_OK; }

static void pg_set_version(void *conn, int version) { ((pg_conn *)conn)->version = version; }

static void pg_close(void *conn) {
    pg_conn *pc = conn;
    if (!pc) return;
    for (int i = 0; i < N_PREPARED; i++) free(pc->prep[i].sql);
    PQfinish(pc->c);
    free(pc);
}

static const db_ops PG_OPS = {
    .name = "postgres",
    .user_col = "user_id",
    .exec = pg_exec,
    .migrate = pg_migrate,
    .index_put = pg_index_put,
    .index_del = pg_index_del,
    .index_search = pg_index_search,
    .purge = pg_purge,
    .set_version = pg_set_version,
    .close = pg_close,
};

cg_status db_pg_open(const char *conninfo, const cg_store_opts *o, void **conn,
                     const db_ops **ops, cg_err *err) {
    cg_status st = CG_OK;
    pg_conn *pc = calloc(1, sizeof *pc);
    if (!pc) return cg_err_set(err, CG_ERR_NOMEM, "postgres: out of memory");
    pc->version = CG_STORE_SCHEMA_VERSION;
    pc->c = PQconnectdb(conninfo);
    if (!pc->c || PQstatus(pc->c) != CONNECTION_OK) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", pc->c ? PQerrorMessage(pc->c) : "out of memory");
        size_t n = strlen(msg);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = '\0';
        st = cg_err_set(err, CG_ERR_IO, "postgres: cannot connect: %s", msg);
        goto fail;
    }
    if (PQsetClientEncoding(pc->c, "UTF8") != 0) {
        st = cg_err_set(err, CG_ERR_IO, "postgres: cannot set client encoding UTF8");
        goto fail;
    }
    const char *setup = o->read_only
                            ? "SET client_min_messages = warning; SET default_transaction_read_only = on"
                            : "SET client_min_messages = warning";
    PGresult *r = PQexec(pc->c, setup);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        st = pg_fail(r, pc->c, "session setup", err);
        PQclear(r);
        goto fail;
    }
    PQclear(r);
    *conn = pc;
    *ops = &PG_OPS;
    return CG_OK;
fail:
    pg_close(pc);
    return st;
}
