// store.c — opening the store (backend choice, migrations, key-hash key), shared helpers, and
// users, API keys, conversations, messages and documents. Memories live in memory.c.
//
// Invariants: every statement touching user data carries `user_id = ?`, so another user's id
// behaves as a missing one; every multi-statement change runs in one transaction that is rolled
// back on any error; stored text is always validated UTF-8 (and sealed when a master key is set).
#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/time.h"
#include "base/utf8.h"
#include "mem/store_int.h"

// ---- helpers ---------------------------------------------------------------------------------

cg_status st_exec(cg_store *s, const char *sql, const db_val *p, int n, cg_err *err) {
    return s->ops->exec(s->conn, sql, p, n, NULL, NULL, err);
}

typedef struct int_ctx { int64_t v; bool found; } int_ctx;

static cg_status int_row(void *user, const db_val *cols, int n_cols, cg_err *err) {
    int_ctx *c = user;
    if (c->found) return CG_OK;
    if (n_cols < 1 || (cols[0].t != DB_INT && cols[0].t != DB_NULL))
        return cg_err_set(err, CG_ERR_TYPE, "store: query result is not an integer");
    c->v = cols[0].t == DB_INT ? cols[0].i : 0;
    c->found = true;
    return CG_OK;
}

cg_status st_int(cg_store *s, const char *sql, const db_val *p, int n, int64_t *out, bool *found,
                 cg_err *err) {
    int_ctx c = {0, false};
    cg_status st = s->ops->exec(s->conn, sql, p, n, int_row, &c, err);
    if (st) return st;
    if (out) *out = c.v;
    if (found) *found = c.found;
    return CG_OK;
}

cg_status st_need(cg_store *s, const char *sql, const db_val *p, int n, int64_t *out, cg_err *err,
                  const char *what, ...) {
    bool found = false;
    cg_status st = st_int(s, sql, p, n, out, &found, err);
    if (st || found) return st;
    char msg[256];
    va_list ap;
    va_start(ap, what);
    vsnprintf(msg, sizeof msg, what, ap);
    va_end(ap);
    return cg_err_set(err, CG_ERR_NOT_FOUND, "store: no %s", msg);
}

cg_status st_need_user(cg_store *s, int64_t user_id, cg_err *err) {
    db_val p[1] = {db_int(user_id)};
    return st_need(s, "SELECT id FROM users WHERE id = ?", p, 1, NULL, err, "user id=%lld",
                   (long long)user_id);
}

cg_status st_begin(cg_store *s, cg_err *err) {
    // IMMEDIATE takes SQLite's write lock up front, so the busy timeout applies instead of a
    // deadlock-prone lock upgrade later.
    return st_exec(s, strcmp(s->ops->name, "sqlite") == 0 ? "BEGIN IMMEDIATE" : "BEGIN", NULL, 0,
                   err);
}
cg_status st_commit(cg_store *s, cg_err *err) { return st_exec(s, "COMMIT", NULL, 0, err); }
void st_rollback(cg_store *s) {
    cg_err ignored = {0};
    st_exec(s, "ROLLBACK", NULL, 0, &ignored);
}

cg_status st_check_text(const char *what, const char *text, size_t max, bool allow_empty,
                        cg_err *err) {
    if (!text) return cg_err_set(err, CG_ERR_INVALID, "store: %s is missing", what);
    size_t n = strlen(text), bad = 0;
    if (n == 0 && !allow_empty) return cg_err_set(err, CG_ERR_INVALID, "store: %s is empty", what);
    if (n > max)
        return cg_err_set(err, CG_ERR_LIMIT, "store: %s has %zu bytes (max %zu)", what, n, max);
    if (!cg_utf8_valid(text, n, &bad))
        return cg_err_set(err, CG_ERR_INVALID, "store: %s is not valid UTF-8 at byte %zu", what,
                          bad);
    return CG_OK;
}

cg_status st_seal(cg_store *s, int64_t user_id, const char *table, const char *text, cg_buf *out,
                  int64_t *enc, cg_err *err) {
    size_t n = strlen(text);
    if (s->crypt) {
        *enc = 1;
        return cg_crypt_seal(s->crypt, user_id, table, text, n, out, err);
    }
    *enc = 0;
    cg_buf_append(out, text, n);
    if (!cg_buf_ok(out)) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
    return CG_OK;
}

static const char *type_name(db_type t) {
    switch (t) {
    case DB_NULL: return "NULL";
    case DB_INT: return "integer";
    case DB_REAL: return "real";
    case DB_TEXT: return "text";
    case DB_BLOB: return "blob";
    }
    return "?";
}

cg_status st_open_text(cg_store *s, int64_t user_id, const char *table, int64_t row_id,
                       const char *column, int64_t enc, const db_val *v, char **out, cg_err *err) {
    cg_status st = CG_OK;
    cg_buf b;
    cg_buf_init(&b);
    *out = NULL;
    if (v->t != DB_BLOB && v->t != DB_TEXT) {
        st = cg_err_set(err, CG_ERR_FORMAT, "%s id=%lld column %s: expected text, found %s", table,
                        (long long)row_id, column, type_name(v->t));
        goto done;
    }
    if (enc == 0) {
        cg_buf_append(&b, v->p, v->n);
        cg_buf_append(&b, "", 0);
    } else if (enc == 1) {
        if (!s->crypt) {
            st = cg_err_set(err, CG_ERR_STATE,
                            "%s id=%lld column %s: text is encrypted but no master key is set",
                            table, (long long)row_id, column);
            goto done;
        }
        if ((st = cg_crypt_unseal(s->crypt, user_id, table, row_id, column, v->p, v->n, &b, err)))
            goto done;
    } else {
        st = cg_err_set(err, CG_ERR_FORMAT, "%s id=%lld column enc: unknown encoding %lld", table,
                        (long long)row_id, (long long)enc);
        goto done;
    }
    if (!cg_buf_ok(&b)) {
        st = cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        goto done;
    }
    size_t bad = 0;
    if (!cg_utf8_valid(b.data, b.len, &bad) || memchr(b.data, 0, b.len)) {
        st = cg_err_set(err, CG_ERR_FORMAT, "%s id=%lld column %s: invalid UTF-8 at byte %zu",
                        table, (long long)row_id, column, bad);
        goto done;
    }
    *out = b.data;
    b.data = NULL;
done:
    cg_buf_free(&b);
    return st;
}

cg_status col_int(const char *table, int64_t id, const char *col, const db_val *v, bool nullable,
                  int64_t *out, cg_err *err) {
    if (v->t == DB_NULL && nullable) {
        *out = 0;
        return CG_OK;
    }
    if (v->t != DB_INT)
        return cg_err_set(err, CG_ERR_FORMAT, "%s id=%lld column %s: expected integer, found %s",
                          table, (long long)id, col, type_name(v->t));
    *out = v->i;
    return CG_OK;
}

cg_status col_real(const char *table, int64_t id, const char *col, const db_val *v, double *out,
                   cg_err *err) {
    if (v->t == DB_REAL) *out = v->r;
    else if (v->t == DB_INT) *out = (double)v->i;
    else
        return cg_err_set(err, CG_ERR_FORMAT, "%s id=%lld column %s: expected number, found %s",
                          table, (long long)id, col, type_name(v->t));
    return CG_OK;
}

cg_status col_str(const char *table, int64_t id, const char *col, const db_val *v, bool nullable,
                  char **out, cg_err *err) {
    *out = NULL;
    if (v->t == DB_NULL && nullable) return CG_OK;
    if (v->t != DB_TEXT && v->t != DB_BLOB)
        return cg_err_set(err, CG_ERR_FORMAT, "%s id=%lld column %s: expected text, found %s",
                          table, (long long)id, col, type_name(v->t));
    size_t bad = 0;
    if (!cg_utf8_valid(v->p, v->n, &bad) || memchr(v->p, 0, v->n))
        return cg_err_set(err, CG_ERR_FORMAT, "%s id=%lld column %s: invalid UTF-8 at byte %zu",
                          table, (long long)id, col, bad);
    char *d = malloc(v->n + 1);
    if (!d) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
    if (v->n) memcpy(d, v->p, v->n);
    d[v->n] = '\0';
    *out = d;
    return CG_OK;
}

void st_json_str(cg_buf *out, const char *s) {
    cg_buf_putc(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; s && *p; p++) {
        switch (*p) {
        case '"': cg_buf_puts(out, "\\\""); break;
        case '\\': cg_buf_puts(out, "\\\\"); break;
        case '\n': cg_buf_puts(out, "\\n"); break;
        case '\r': cg_buf_puts(out, "\\r"); break;
        case '\t': cg_buf_puts(out, "\\t"); break;
        default:
            if (*p < 0x20) cg_buf_printf(out, "\\u%04x", *p);
            else cg_buf_putc(out, (char)*p);
        }
    }
    cg_buf_putc(out, '"');
}

// ---- open / close / migrations ---------------------------------------------------------------

static bool is_pg_target(const char *u) {
    return strncmp(u, "postgres://", 11) == 0 || strncmp(u, "postgresql://", 13) == 0 ||
           strstr(u, "host=") || strstr(u, "dbname=") || strstr(u, "port=");
}

static cg_status migrate_locked(cg_store *s, const cg_store_opts *o, cg_err *err) {
    cg_status st;
    int target = o->target_version ? o->target_version : CG_STORE_SCHEMA_VERSION;
    if (target < 1 || target > CG_STORE_SCHEMA_VERSION)
        return cg_err_set(err, CG_ERR_INVALID, "store: target_version %d (1..%d)", target,
                          CG_STORE_SCHEMA_VERSION);
    int64_t cur = 0;
    bool found = false;
    if (!o->read_only &&
        (st = st_exec(s, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)",
                      NULL, 0, err)))
        return st;
    if ((st = st_int(s, "SELECT max(version) FROM schema_version", NULL, 0, &cur, &found, err)))
        return st;
    if (cur > CG_STORE_SCHEMA_VERSION)
        return cg_err_set(err, CG_ERR_UNSUPPORTED,
                          "store: database schema version %lld is newer than this build (%d)",
                          (long long)cur, CG_STORE_SCHEMA_VERSION);
    if (cur < target && o->read_only)
        return cg_err_set(err, CG_ERR_STATE,
                          "store: database schema version %lld needs migrating to %d, but the "
                          "store is read-only", (long long)cur, target);
    for (int v = (int)cur + 1; v <= target; v++) {
        if ((st = st_begin(s, err))) return st;
        // Another connection may have migrated since we looked: re-read inside the transaction.
        int64_t now_v = 0;
        if ((st = st_int(s, "SELECT max(version) FROM schema_version", NULL, 0, &now_v, NULL, err))) {
            st_rollback(s);
            return st;
        }
        if (now_v >= v) {
            st_rollback(s);
            cur = now_v;
            continue;
        }
        db_val p[1] = {db_int(v)};
        if ((st = s->ops->migrate(s->conn, v - 1, v, err)) ||
            (v == CG_STORE_VPACK_VERSION && (st = st_vp_rebuild(s, 0, err))) ||
            (st = st_exec(s, "DELETE FROM schema_version", NULL, 0, err)) ||
            (st = st_exec(s, "INSERT INTO schema_version(version) VALUES (?)", p, 1, err)) ||
            (st = st_commit(s, err))) {
            st_rollback(s);
            return st;
        }
    }
    s->version = (int)(cur > target ? cur : target);
    return CG_OK;
}

// Two processes opening one fresh PostgreSQL database at once must not both migrate it: a
// session-level advisory lock serialises them (SQLite's BEGIN IMMEDIATE already does).
static cg_status migrate(cg_store *s, const cg_store_opts *o, cg_err *err) {
    bool pg = strcmp(s->ops->name, "postgres") == 0 && !o->read_only;
    cg_status st;
    if (pg && (st = st_exec(s, "SELECT pg_advisory_lock(7305993411)", NULL, 0, err))) return st;
    st = migrate_locked(s, o, err);
    if (!st && s->ops->set_version) s->ops->set_version(s->conn, s->version);
    if (pg) {
        cg_err ignored = {0};
        st_exec(s, "SELECT pg_advisory_unlock(7305993411)", NULL, 0, &ignored);
    }
    return st;
}

typedef struct blob_ctx { unsigned char *dst; size_t want; bool found, bad; } blob_ctx;

static cg_status blob_row(void *user, const db_val *cols, int n_cols, cg_err *err) {
    blob_ctx *c = user;
    c->found = true;
    if (cols[0].t != DB_BLOB || cols[0].n != c->want) c->bad = true;
    else memcpy(c->dst, cols[0].p, c->want);
    return CG_OK;
}

static cg_status load_key_hash_key(cg_store *s, const cg_store_opts *o, cg_err *err) {
    if (o->key_hash_key) {
        memcpy(s->key_hash_key, o->key_hash_key, sizeof s->key_hash_key);
        return CG_OK;
    }
    blob_ctx c = {s->key_hash_key, sizeof s->key_hash_key, false, false};
    db_val p[1] = {db_text("key_hash_key")};
    cg_status st = s->ops->exec(s->conn, "SELECT v FROM meta WHERE k = ?", p, 1, blob_row, &c, err);
    if (st) return st;
    if (c.bad)
        return cg_err_set(err, CG_ERR_FORMAT, "meta k=key_hash_key column v: not a %zu-byte blob",
                          sizeof s->key_hash_key);
    if (c.found || o->read_only) return CG_OK;
    randombytes_buf(s->key_hash_key, sizeof s->key_hash_key);
    db_val q[2] = {db_text("key_hash_key"), db_blob(s->key_hash_key, sizeof s->key_hash_key)};
    return st_exec(s, "INSERT INTO meta(k, v) VALUES (?, ?)", q, 2, err);
}

cg_status cg_store_open(const char *url_or_path, const cg_store_opts *opts, cg_store **out,
                        cg_err *err) {
    cg_status st;
    cg_store_opts o = opts ? *opts : (cg_store_opts){0};
    if (!url_or_path || !*url_or_path)
        return cg_err_set(err, CG_ERR_INVALID, "store: no database path or URL given");
    if (o.embed && (o.n_embd < 1 || o.n_embd > 4096))
        return cg_err_set(err, CG_ERR_INVALID, "store: n_embd %d (1..4096)", o.n_embd);
    if (sodium_init() < 0) return cg_err_set(err, CG_ERR_INTERNAL, "store: sodium_init failed");
    cg_store *s = calloc(1, sizeof *s);
    if (!s) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
    s->embed = o.embed;
    s->embed_user = o.embed_user;
    s->n_embd = o.n_embd;
    if (o.master_key_path && (st = cg_crypt_open(o.master_key_path, &s->crypt, err))) goto fail;
    if (is_pg_target(url_or_path))
        st = db_pg_open(url_or_path, &o, &s->conn, &s->ops, err);
    else
        st = db_sqlite_open(url_or_path, &o, s->crypt == NULL, &s->conn, &s->ops, err);
    if (st) goto fail;
    if ((st = migrate(s, &o, err))) goto fail;
    if (o.vec_cache_bytes >= 0 &&
        (st = st_vp_cache_new(o.vec_cache_bytes ? (size_t)o.vec_cache_bytes
                                                : (size_t)CG_STORE_VEC_CACHE_DEFAULT,
                              &s->vcache, err)))
        goto fail;
    if ((st = load_key_hash_key(s, &o, err))) goto fail;
    *out = s;
    return CG_OK;
fail:
    cg_store_close(s);
    return st;
}

void cg_store_close(cg_store *s) {
    if (!s) return;
    if (s->ops) s->ops->close(s->conn);
    cg_crypt_close(s->crypt);
    st_vp_cache_free(s->vcache);
    sodium_memzero(s->key_hash_key, sizeof s->key_hash_key);
    free(s);
}

const char *cg_store_backend(const cg_store *s) { return s->ops->name; }
int cg_store_schema_version(const cg_store *s) { return s->version; }

cg_status cg_store_default_dir(const char *data_dir, char **out, cg_err *err) {
    const char *base = data_dir && *data_dir ? data_dir : getenv("CHINGU_HOME");
    const char *home = getenv("HOME");
    size_t n;
    char *p;
    if (base && *base) {
        n = strlen(base) + 1;
        if (!(p = malloc(n))) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        memcpy(p, base, n);
    } else {
        if (!home || !*home)
            return cg_err_set(err, CG_ERR_INVALID,
                              "store: no data directory: pass --data-dir, or set CHINGU_HOME or HOME");
        n = strlen(home) + sizeof "/.local/share/chingu";
        if (!(p = malloc(n))) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        snprintf(p, n, "%s/.local/share/chingu", home);
    }
    *out = p;
    return CG_OK;
}

// mkdir -p with mode 0700 for the directories it creates.
static cg_status mkdirs(char *path, cg_err *err) {
    for (char *q = path + 1;; q++) {
        if (*q == '/' || *q == '\0') {
            char c = *q;
            *q = '\0';
            int rc = mkdir(path, 0700);
            int e = errno;
            *q = c;
            if (rc != 0 && e != EEXIST)
                return cg_err_set(err, CG_ERR_IO, "store: cannot create directory '%s': %s", path,
                                  strerror(e));
            if (c == '\0') break;
        }
    }
    return CG_OK;
}

cg_status cg_store_default_path(const char *data_dir, char **out, cg_err *err) {
    char *dir = NULL;
    cg_status st = cg_store_default_dir(data_dir, &dir, err);
    if (st) return st;
    if ((st = mkdirs(dir, err))) goto done;
    size_t n = strlen(dir) + sizeof "/chingu.db";
    char *p = malloc(n);
    if (!p) {
        st = cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        goto done;
    }
    snprintf(p, n, "%s/chingu.db", dir);
    *out = p;
done:
    free(dir);
    return st;
}

// ---- users -----------------------------------------------------------------------------------

cg_status cg_store_user_add(cg_store *s, const char *name, int64_t *out_id, cg_err *err) {
    cg_status st = st_check_text("user name", name, 128, false, err);
    if (st) return st;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return cg_err_set(err, CG_ERR_INVALID, "store: user name has a control character");
    bool found = false;
    db_val p[2] = {db_text(name), db_int(cg_time_unix_ms())};
    if ((st = st_int(s, "SELECT id FROM users WHERE name = ?", p, 1, NULL, &found, err))) return st;
    if (found) return cg_err_set(err, CG_ERR_INVALID, "store: user '%s' already exists", name);
    return st_int(s, "INSERT INTO users(name, created_ms) VALUES (?, ?) RETURNING id", p, 2,
                  out_id, NULL, err);
}

cg_status cg_store_user_find(cg_store *s, const char *name, int64_t *out_id, cg_err *err) {
    db_val p[1] = {db_text(name)};
    return st_need(s, "SELECT id FROM users WHERE name = ?", p, 1, out_id, err, "user '%s'",
                   name ? name : "");
}

typedef struct id_vec { int64_t *v; size_t n, cap; } id_vec;

static cg_status id_row(void *user, const db_val *cols, int n_cols, cg_err *err) {
    id_vec *iv = user;
    if (cols[0].t != DB_INT) return cg_err_set(err, CG_ERR_TYPE, "store: id is not an integer");
    if (iv->n == iv->cap) {
        size_t cap = iv->cap ? iv->cap * 2 : 64;
        int64_t *v = realloc(iv->v, cap * sizeof *v);
        if (!v) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        iv->v = v;
        iv->cap = cap;
    }
    iv->v[iv->n++] = cols[0].i;
    return CG_OK;
}

cg_status st_unindex_user(cg_store *s, int64_t user_id, cg_err *err) {
    id_vec ids = {0};
    db_val p[1] = {db_int(user_id)};
    cg_status st = s->ops->exec(s->conn, "SELECT id FROM memories WHERE user_id = ?", p, 1, id_row,
                                &ids, err);
    for (size_t i = 0; !st && i < ids.n; i++) st = s->ops->index_del(s->conn, ids.v[i], err);
    free(ids.v);
    return st;
}

cg_status cg_store_user_delete(cg_store *s, int64_t user_id, cg_err *err) {
    cg_status st;
    db_val p[1] = {db_int(user_id)};
    if ((st = st_begin(s, err))) return st;
    if ((st = st_need_user(s, user_id, err))) goto fail;
    // Foreign keys cascade through every table; the SQLite FTS index is not a real table with
    // a foreign key, so its rows go first.
    if ((st = st_unindex_user(s, user_id, err))) goto fail;
    if (s->version >= CG_STORE_VPACK_VERSION && (st = st_vp_drop_user(s, user_id, err))) goto fail;
    // The page generations of the user (mem_vgen has no foreign key: its counter row is user 0).
    if (s->version >= CG_STORE_VGEN_VERSION &&
        (st = st_exec(s, "DELETE FROM mem_vgen WHERE user_id = ?", p, 1, err)))
        goto fail;
    if ((st = st_exec(s, "UPDATE memories SET superseded_by = NULL WHERE user_id = ?", p, 1, err)))
        goto fail;
    if ((st = st_exec(s, "DELETE FROM users WHERE id = ?", p, 1, err))) goto fail;
    if ((st = st_commit(s, err))) goto fail;
    return s->ops->purge(s->conn, err);
fail:
    st_rollback(s);
    return st;
}

typedef struct user_vec { cg_user *v; size_t n, cap; } user_vec;

static cg_status user_row(void *user, const db_val *cols, int n_cols, cg_err *err) {
    user_vec *uv = user;
    if (uv->n == uv->cap) {
        size_t cap = uv->cap ? uv->cap * 2 : 16;
        cg_user *v = realloc(uv->v, cap * sizeof *v);
        if (!v) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        uv->v = v;
        uv->cap = cap;
    }
    cg_user *u = &uv->v[uv->n];
    *u = (cg_user){0};
    cg_status st;
    if ((st = col_int("users", 0, "id", &cols[0], false, &u->id, err))) return st;
    if ((st = col_str("users", u->id, "name", &cols[1], false, &u->name, err))) return st;
    uv->n++;
    if ((st = col_int("users", u->id, "created_ms", &cols[2], false, &u->created_ms, err)))
        return st;
    return CG_OK;
}

cg_status cg_store_user_list(cg_store *s, cg_user **out, size_t *n_out, cg_err *err) {
    user_vec uv = {0};
    cg_status st = s->ops->exec(s->conn, "SELECT id, name, created_ms FROM users ORDER BY id",
                                NULL, 0, user_row, &uv, err);
    if (st) {
        cg_user_list_free(uv.v, uv.n);
        return st;
    }
    *out = uv.v;
    *n_out = uv.n;
    return CG_OK;
}

void cg_user_list_free(cg_user *u, size_t n) {
    for (size_t i = 0; u && i < n; i++) free(u[i].name);
    free(u);
}

// ---- API keys --------------------------------------------------------------------------------

static void key_hash(const cg_store *s, const char *key, unsigned char h[32]) {
    crypto_generichash(h, 32, (const unsigned char *)key, strlen(key), s->key_hash_key,
                       sizeof s->key_hash_key);
}

cg_status cg_store_key_create(cg_store *s, int64_t user_id, cg_key_scope scope,
                              char out_key[CG_KEY_STR_LEN], int64_t *out_key_id, cg_err *err) {
    if (scope != CG_KEY_USER && scope != CG_KEY_ADMIN)
        return cg_err_set(err, CG_ERR_INVALID, "store: key scope %d (0 user, 1 admin)", (int)scope);
    cg_status st = st_need_user(s, user_id, err);
    if (st) return st;
    unsigned char raw[32], h[32];
    randombytes_buf(raw, sizeof raw);
    memcpy(out_key, "cg-", 3);
    sodium_bin2base64(out_key + 3, CG_KEY_STR_LEN - 3, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    key_hash(s, out_key, h);
    db_val p[4] = {db_int(user_id), db_int(scope), db_blob(h, sizeof h), db_int(cg_time_unix_ms())};
    st = st_int(s, "INSERT INTO api_keys(user_id, scope, hash, created_ms) VALUES (?, ?, ?, ?)"
                   " RETURNING id", p, 4, out_key_id, NULL, err);
    if (st) sodium_memzero(out_key, CG_KEY_STR_LEN);
    return st;
}

typedef struct key_ctx { bool found; int64_t id, user_id, scope; } key_ctx;

static cg_status key_row(void *user, const db_val *cols, int n_cols, cg_err *err) {
    key_ctx *k = user;
    cg_status st;
    if ((st = col_int("api_keys", 0, "id", &cols[0], false, &k->id, err))) return st;
    if ((st = col_int("api_keys", k->id, "user_id", &cols[1], false, &k->user_id, err))) return st;
    if ((st = col_int("api_keys", k->id, "scope", &cols[2], false, &k->scope, err))) return st;
    if (k->scope != CG_KEY_USER && k->scope != CG_KEY_ADMIN)
        return cg_err_set(err, CG_ERR_FORMAT, "api_keys id=%lld column scope: unknown scope %lld",
                          (long long)k->id, (long long)k->scope);
    k->found = true;
    return CG_OK;
}

cg_status cg_store_key_verify(cg_store *s, const char *key, int64_t *out_user_id,
                              cg_key_scope *out_scope, cg_err *err) {
    if (!key || strlen(key) != CG_KEY_STR_LEN - 1 || strncmp(key, "cg-", 3) != 0)
        return cg_err_set(err, CG_ERR_NOT_FOUND, "store: API key is not a chingu key");
    unsigned char h[32];
    key_hash(s, key, h);
    key_ctx k = {0};
    db_val p[1] = {db_blob(h, sizeof h)};
    cg_status st = s->ops->exec(s->conn,
                                "SELECT id, user_id, scope FROM api_keys"
                                " WHERE hash = ? AND revoked_ms IS NULL",
                                p, 1, key_row, &k, err);
    if (st) return st;
    if (!k.found) return cg_err_set(err, CG_ERR_NOT_FOUND, "store: unknown or revoked API key");
    db_val q[2] = {db_int(cg_time_unix_ms()), db_int(k.id)};
    if ((st = st_exec(s, "UPDATE api_keys SET last_used_ms = ? WHERE id = ?", q, 2, err))) return st;
    *out_user_id = k.user_id;
    *out_scope = (cg_key_scope)k.scope;
    return CG_OK;
}

cg_status cg_store_key_revoke(cg_store *s, int64_t user_id, int64_t key_id, cg_err *err) {
    db_val p[3] = {db_int(cg_time_unix_ms()), db_int(key_id), db_int(user_id)};
    return st_need(s,
                   "UPDATE api_keys SET revoked_ms = ? WHERE id = ? AND user_id = ?"
                   " AND revoked_ms IS NULL RETURNING id",
                   p, 3, NULL, err, "active key id=%lld for user %lld", (long long)key_id,
                   (long long)user_id);
}

// ---- conversations and messages ---------------------------------------------------------------

cg_status cg_store_conv_add(cg_store *s, int64_t user_id, const char *title, bool temporary,
                            int64_t *out_id, cg_err *err) {
    cg_status st;
    if (title && (st = st_check_text("conversation title", title, 1024, true, err))) return st;
    if ((st = st_need_user(s, user_id, err))) return st;
    db_val p[4] = {db_int(user_id), db_text(title), db_int(temporary ? 1 : 0),
                   db_int(cg_time_unix_ms())};
    return st_int(s,
                  "INSERT INTO conversations(user_id, title, temporary, created_ms)"
                  " VALUES (?, ?, ?, ?) RETURNING id",
                  p, 4, out_id, NULL, err);
}

cg_status cg_store_conv_delete(cg_store *s, int64_t user_id, int64_t conv_id, cg_err *err) {
    db_val p[2] = {db_int(conv_id), db_int(user_id)};
    return st_need(s, "DELETE FROM conversations WHERE id = ? AND user_id = ? RETURNING id", p, 2,
                   NULL, err, "conversation id=%lld", (long long)conv_id);
}

cg_status cg_store_msg_add(cg_store *s, int64_t user_id, int64_t conv_id, const char *role,
                           const char *text, int n_tokens, int64_t *out_id, cg_err *err) {
    cg_status st;
    if (!role || (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") &&
                  strcmp(role, "tool")))
        return cg_err_set(err, CG_ERR_INVALID, "store: message role '%s' (system, user, assistant, tool)",
                          role ? role : "(null)");
    if (n_tokens < 0)
        return cg_err_set(err, CG_ERR_INVALID, "store: message n_tokens %d < 0", n_tokens);
    if ((st = st_check_text("message text", text, 16u << 20, true, err))) return st;
    db_val pc[2] = {db_int(conv_id), db_int(user_id)};
    if ((st = st_need(s, "SELECT id FROM conversations WHERE id = ? AND user_id = ?", pc, 2, NULL,
                      err, "conversation id=%lld", (long long)conv_id)))
        return st;
    cg_buf body;
    cg_buf_init(&body);
    int64_t enc = 0;
    if ((st = st_seal(s, user_id, "messages", text, &body, &enc, err))) goto done;
    db_val p[7] = {db_int(user_id), db_int(conv_id), db_text(role), db_int(enc),
                   db_blob(body.data, body.len), db_int(n_tokens), db_int(cg_time_unix_ms())};
    st = st_int(s,
                "INSERT INTO messages(user_id, conv_id, role, enc, body, n_tokens, created_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                p, 7, out_id, NULL, err);
done:
    cg_buf_free(&body);
    return st;
}

typedef struct msg_vec { cg_store *s; int64_t user_id; cg_message *v; size_t n, cap; } msg_vec;

static cg_status msg_row(void *user, const db_val *cols, int n_cols, cg_err *err) {
    msg_vec *mv = user;
    if (mv->n == mv->cap) {
        size_t cap = mv->cap ? mv->cap * 2 : 16;
        cg_message *v = realloc(mv->v, cap * sizeof *v);
        if (!v) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        mv->v = v;
        mv->cap = cap;
    }
    cg_message *m = &mv->v[mv->n];
    *m = (cg_message){0};
    int64_t enc = 0, ntok = 0;
    cg_status st;
    if ((st = col_int("messages", 0, "id", &cols[0], false, &m->id, err))) return st;
    mv->n++;  // from here on the record's strings are freed by the list
    if ((st = col_int("messages", m->id, "conv_id", &cols[1], false, &m->conv_id, err)) ||
        (st = col_str("messages", m->id, "role", &cols[2], false, &m->role, err)) ||
        (st = col_int("messages", m->id, "enc", &cols[3], false, &enc, err)) ||
        (st = st_open_text(mv->s, mv->user_id, "messages", m->id, "body", enc, &cols[4], &m->text,
                           err)) ||
        (st = col_int("messages", m->id, "n_tokens", &cols[5], false, &ntok, err)) ||
        (st = col_int("messages", m->id, "created_ms", &cols[6], false, &m->created_ms, err)))
        return st;
    if (ntok < 0 || ntok > INT32_MAX)
        return cg_err_set(err, CG_ERR_FORMAT, "messages id=%lld column n_tokens: %lld out of range",
                          (long long)m->id, (long long)ntok);
    m->n_tokens = (int)ntok;
    return CG_OK;
}

cg_status cg_store_msg_list(cg_store *s, int64_t user_id, int64_t conv_id, cg_message **out,
                            size_t *n_out, cg_err *err) {
    db_val p[2] = {db_int(conv_id), db_int(user_id)};
    cg_status st = st_need(s, "SELECT id FROM conversations WHERE id = ? AND user_id = ?", p, 2,
                           NULL, err, "conversation id=%lld", (long long)conv_id);
    if (st) return st;
    msg_vec mv = {s, user_id, NULL, 0, 0};
    st = s->ops->exec(s->conn,
                      "SELECT id, conv_id, role, enc, body, n_tokens, created_ms FROM messages"
                      " WHERE conv_id = ? AND user_id = ? ORDER BY id",
                      p, 2, msg_row, &mv, err);
    if (st) {
        cg_message_list_free(mv.v, mv.n);
        return st;
    }
    *out = mv.v;
    *n_out = mv.n;
    return CG_OK;
}

void cg_message_list_free(cg_message *m, size_t n) {
    for (size_t i = 0; m && i < n; i++) {
        free(m[i].role);
        free(m[i].text);
    }
    free(m);
}

// ---- documents -------------------------------------------------------------------------------

// Length of the next chunk of text[0..n): at most max bytes, never splitting a code point,
// cut after the last whitespace in the second half of the window when there is one.
static size_t next_chunk(const char *t, size_t n, size_t max) {
    if (n <= max) return n;
    size_t k = max;
    while (k > 0 && ((unsigned char)t[k] & 0xC0) == 0x80) k--;
    for (size_t j = k; j > max / 2; j--)
        if (isspace((unsigned char)t[j - 1])) return j;
    return k ? k : 1;
}

cg_status cg_store_doc_add(cg_store *s, int64_t user_id, const char *title, const char *text,
                           size_t chunk_bytes, int64_t *out_id, int64_t *out_n_chunks,
                           cg_err *err) {
    cg_status st;
    if (chunk_bytes == 0) chunk_bytes = 2000;
    if (chunk_bytes < 16)
        return cg_err_set(err, CG_ERR_INVALID, "store: chunk_bytes %zu (min 16)", chunk_bytes);
    if (title && (st = st_check_text("document title", title, 1024, true, err))) return st;
    if ((st = st_check_text("document text", text, 256u << 20, true, err))) return st;
    if ((st = st_need_user(s, user_id, err))) return st;
    cg_buf body, piece;
    cg_buf_init(&body);
    cg_buf_init(&piece);
    int64_t doc_id = 0, seq = 0;
    if ((st = st_begin(s, err))) goto done;
    db_val p[3] = {db_int(user_id), db_text(title), db_int(cg_time_unix_ms())};
    if ((st = st_int(s, "INSERT INTO documents(user_id, title, created_ms) VALUES (?, ?, ?)"
                        " RETURNING id", p, 3, &doc_id, NULL, err)))
        goto fail;
    for (size_t off = 0, n = strlen(text); off < n; seq++) {
        size_t len = next_chunk(text + off, n - off, chunk_bytes);
        cg_buf_reset(&piece);
        cg_buf_reset(&body);
        cg_buf_append(&piece, text + off, len);
        cg_buf_append(&piece, "", 0);
        if (!cg_buf_ok(&piece)) {
            st = cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
            goto fail;
        }
        int64_t enc = 0;
        if ((st = st_seal(s, user_id, "chunks", piece.data, &body, &enc, err))) goto fail;
        db_val q[5] = {db_int(user_id), db_int(doc_id), db_int(seq), db_int(enc),
                       db_blob(body.data, body.len)};
        if ((st = st_exec(s, "INSERT INTO chunks(user_id, doc_id, seq, enc, body)"
                             " VALUES (?, ?, ?, ?, ?)", q, 5, err)))
            goto fail;
        off += len;
    }
    if ((st = st_commit(s, err))) goto fail;
    *out_id = doc_id;
    if (out_n_chunks) *out_n_chunks = seq;
    goto done;
fail:
    st_rollback(s);
done:
    cg_buf_free(&body);
    cg_buf_free(&piece);
    return st;
}

// ---- raw access for tests --------------------------------------------------------------------

cg_status cg_store_exec_raw(cg_store *s, const char *sql, cg_err *err) {
    return st_exec(s, sql, NULL, 0, err);
}

cg_status cg_store_query_int(cg_store *s, const char *sql, int64_t *out, cg_err *err) {
    return st_need(s, sql, NULL, 0, out, err, "row from the query");
}
