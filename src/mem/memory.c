// memory.c — memories: add (with bi-temporal supersession), get, edit, delete, forget-all, list,
// hybrid search (BM25 + cosine, reciprocal-rank fusion, importance and recency boosts), the audit
// log and the JSON export of everything a user has.
//
// Invariants: a memory is "current" when superseded_by IS NULL and valid_to_ms IS NULL; the text
// index holds exactly one entry per memory row (index_put/index_del run in the same transaction
// as the row change); every change to a memory writes one audit row.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"
#include "base/time.h"
#include "mem/fts_cjk.h"
#include "mem/store_int.h"
#include "mem/vec.h"

static const char *const KIND_NAMES[CG_MEM_KIND_COUNT_] = {
    "profile", "preference", "relationship", "event", "task", "note"};
static const char *const SOURCE_NAMES[CG_SRC_COUNT_] = {"manual", "message", "document"};

const char *cg_mem_kind_name(cg_mem_kind k) {
    return (unsigned)k < CG_MEM_KIND_COUNT_ ? KIND_NAMES[k] : "?";
}
const char *cg_mem_source_name(cg_mem_source s) {
    return (unsigned)s < CG_SRC_COUNT_ ? SOURCE_NAMES[s] : "?";
}

cg_status cg_mem_kind_parse(const char *name, cg_mem_kind *out, cg_err *err) {
    for (int k = 0; k < CG_MEM_KIND_COUNT_; k++)
        if (name && strcmp(name, KIND_NAMES[k]) == 0) {
            *out = (cg_mem_kind)k;
            return CG_OK;
        }
    if (name && strcmp(name, "reminder") == 0) {
        *out = CG_MEM_TASK;
        return CG_OK;
    }
    return cg_err_set(err, CG_ERR_INVALID,
                      "memory kind '%s' (profile, preference, relationship, event, task, note)",
                      name ? name : "(null)");
}

#define MEM_COLS                                                                               \
    "id, user_id, kind, source, enc, body, importance, created_ms, updated_ms, valid_from_ms, " \
    "valid_to_ms, superseded_by, due_ms, conv_id, client_id"

// Decodes one memories row (columns MEM_COLS) into *m; on error *m may hold partial strings.
static cg_status decode_mem(cg_store *s, const db_val *c, int n_cols, cg_memory *m, cg_err *err) {
    static const char T[] = "memories";
    cg_status st;
    int64_t kind = 0, source = 0, enc = 0;
    *m = (cg_memory){0};
    if (n_cols < 15) return cg_err_set(err, CG_ERR_INTERNAL, "memories: %d columns", n_cols);
    if ((st = col_int(T, 0, "id", &c[0], false, &m->id, err))) return st;
    int64_t id = m->id;
    if ((st = col_int(T, id, "user_id", &c[1], false, &m->user_id, err)) ||
        (st = col_int(T, id, "kind", &c[2], false, &kind, err)) ||
        (st = col_int(T, id, "source", &c[3], false, &source, err)) ||
        (st = col_int(T, id, "enc", &c[4], false, &enc, err)) ||
        (st = st_open_text(s, m->user_id, T, id, "body", enc, &c[5], &m->text, err)) ||
        (st = col_real(T, id, "importance", &c[6], &m->importance, err)) ||
        (st = col_int(T, id, "created_ms", &c[7], false, &m->created_ms, err)) ||
        (st = col_int(T, id, "updated_ms", &c[8], false, &m->updated_ms, err)) ||
        (st = col_int(T, id, "valid_from_ms", &c[9], false, &m->valid_from_ms, err)) ||
        (st = col_int(T, id, "valid_to_ms", &c[10], true, &m->valid_to_ms, err)) ||
        (st = col_int(T, id, "superseded_by", &c[11], true, &m->superseded_by, err)) ||
        (st = col_int(T, id, "due_ms", &c[12], true, &m->due_ms, err)) ||
        (st = col_int(T, id, "conv_id", &c[13], true, &m->conv_id, err)) ||
        (st = col_str(T, id, "client_id", &c[14], true, &m->client_id, err)))
        return st;
    if (kind < 0 || kind >= CG_MEM_KIND_COUNT_)
        return cg_err_set(err, CG_ERR_FORMAT, "memories id=%lld column kind: unknown kind %lld",
                          (long long)id, (long long)kind);
    if (source < 0 || source >= CG_SRC_COUNT_)
        return cg_err_set(err, CG_ERR_FORMAT, "memories id=%lld column source: unknown source %lld",
                          (long long)id, (long long)source);
    if (!(m->importance >= 0.0 && m->importance <= 1.0))
        return cg_err_set(err, CG_ERR_FORMAT, "memories id=%lld column importance: %g not in 0..1",
                          (long long)id, m->importance);
    m->kind = (cg_mem_kind)kind;
    m->source = (cg_mem_source)source;
    return CG_OK;
}

typedef struct mem_vec { cg_store *s; cg_memory *v; size_t n, cap; } mem_vec;

static cg_status mem_row(void *user, const db_val *cols, int n_cols, cg_err *err) {
    mem_vec *mv = user;
    if (mv->n == mv->cap) {
        size_t cap = mv->cap ? mv->cap * 2 : 16;
        cg_memory *v = realloc(mv->v, cap * sizeof *v);
        if (!v) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        mv->v = v;
        mv->cap = cap;
    }
    cg_status st = decode_mem(mv->s, cols, n_cols, &mv->v[mv->n], err);
    mv->n++;  // partial strings are freed with the list
    return st;
}

void cg_memory_clear(cg_memory *m) {
    if (!m) return;
    free(m->text);
    free(m->client_id);
    m->text = m->client_id = NULL;
}

void cg_memory_list_free(cg_memory *m, size_t n) {
    for (size_t i = 0; m && i < n; i++) cg_memory_clear(&m[i]);
    free(m);
}

static cg_status audit(cg_store *s, int64_t user_id, int64_t mem_id, const char *action,
                       int64_t now, cg_err *err) {
    db_val p[4] = {db_int(user_id), mem_id ? db_int(mem_id) : db_null(), db_text(action),
                   db_int(now)};
    return st_exec(s, "INSERT INTO audit(user_id, memory_id, action, at_ms) VALUES (?, ?, ?, ?)",
                   p, 4, err);
}

// Embedding of text as a float32 blob in *out (allocated), or NULL when no embed function.
static cg_status embed_blob(cg_store *s, const char *text, float **out, cg_err *err) {
    *out = NULL;
    if (!s->embed) return CG_OK;
    float *v = calloc((size_t)s->n_embd, sizeof *v);
    if (!v) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
    cg_status st = s->embed(s->embed_user, text, strlen(text), v, s->n_embd, err);
    if (st) {
        free(v);
        return cg_err_wrap(err, "store: embedding");
    }
    for (int i = 0; i < s->n_embd; i++)
        if (!isfinite(v[i])) {
            free(v);
            return cg_err_set(err, CG_ERR_INVALID, "store: embedding value %d is not finite", i);
        }
    *out = v;
    return CG_OK;
}

static cg_status get_mem(cg_store *s, int64_t user_id, int64_t id, cg_memory *out, cg_err *err) {
    mem_vec mv = {s, NULL, 0, 0};
    db_val p[2] = {db_int(id), db_int(user_id)};
    cg_status st = s->ops->exec(s->conn,
                                "SELECT " MEM_COLS " FROM memories WHERE id = ? AND user_id = ?",
                                p, 2, mem_row, &mv, err);
    if (!st && mv.n == 0)
        st = cg_err_set(err, CG_ERR_NOT_FOUND, "store: no memory id=%lld", (long long)id);
    if (!st) {
        *out = mv.v[0];
        mv.v[0] = (cg_memory){0};
    }
    cg_memory_list_free(mv.v, mv.n);
    return st;
}

cg_status cg_store_memory_get(cg_store *s, int64_t user_id, int64_t id, cg_memory *out,
                              cg_err *err) {
    return get_mem(s, user_id, id, out, err);
}

cg_status cg_store_memory_find_client(cg_store *s, int64_t user_id, const char *client_id,
                                      int64_t *out_id, cg_err *err) {
    db_val p[2] = {db_int(user_id), db_text(client_id)};
    return st_need(s, "SELECT id FROM memories WHERE user_id = ? AND client_id = ?", p, 2, out_id,
                   err, "memory with client id '%s'", client_id ? client_id : "(null)");
}

static cg_status index_text(cg_store *s, int64_t id, int64_t user_id, const char *text,
                            cg_err *err) {
    cg_buf terms;
    cg_buf_init(&terms);
    cg_status st = cg_cjk_terms(text, strlen(text), &terms, err);
    if (!st) st = s->ops->index_put(s->conn, id, user_id, text, terms.data, err);
    cg_buf_free(&terms);
    return st;
}

cg_status cg_store_memory_add(cg_store *s, int64_t user_id, const cg_mem_new *m, int64_t *out_id,
                              cg_err *err) {
    cg_status st;
    if (!m) return cg_err_set(err, CG_ERR_INVALID, "store: memory_add without a memory");
    if ((st = st_check_text("memory text", m->text, MAX_TEXT_BYTES, false, err))) return st;
    if ((unsigned)m->kind >= CG_MEM_KIND_COUNT_)
        return cg_err_set(err, CG_ERR_INVALID, "store: memory kind %d", (int)m->kind);
    if ((unsigned)m->source >= CG_SRC_COUNT_)
        return cg_err_set(err, CG_ERR_INVALID, "store: memory source %d", (int)m->source);
    if (!(m->importance >= 0.0 && m->importance <= 1.0))
        return cg_err_set(err, CG_ERR_INVALID, "store: memory importance %g not in 0..1",
                          m->importance);
    if (m->client_id && (st = st_check_text("memory client id", m->client_id, 256, false, err)))
        return st;
    int64_t now = cg_time_unix_ms();
    int64_t created = m->created_ms ? m->created_ms : now;
    int64_t valid_from = m->valid_from_ms ? m->valid_from_ms : created;
    float *emb = NULL;
    cg_buf body;
    cg_buf_init(&body);
    int64_t enc = 0, id = 0;
    if ((st = embed_blob(s, m->text, &emb, err))) goto done;
    if ((st = st_begin(s, err))) goto done;
    if ((st = st_need_user(s, user_id, err))) goto fail;
    if (m->conv_id) {
        int64_t temporary = 0;
        db_val pc[2] = {db_int(m->conv_id), db_int(user_id)};
        if ((st = st_need(s, "SELECT temporary FROM conversations WHERE id = ? AND user_id = ?", pc,
                          2, &temporary, err, "conversation id=%lld", (long long)m->conv_id)))
            goto fail;
        if (temporary) {
            st = cg_err_set(err, CG_ERR_STATE,
                            "store: conversation %lld is temporary: it never writes memory",
                            (long long)m->conv_id);
            goto fail;
        }
    }
    if (m->supersedes) {
        int64_t sup = 0;
        db_val ps[2] = {db_int(m->supersedes), db_int(user_id)};
        if ((st = st_need(s, "SELECT superseded_by FROM memories WHERE id = ? AND user_id = ?", ps,
                          2, &sup, err, "memory id=%lld to supersede", (long long)m->supersedes)))
            goto fail;
        if (sup) {
            st = cg_err_set(err, CG_ERR_STATE, "store: memory %lld is already superseded by %lld",
                            (long long)m->supersedes, (long long)sup);
            goto fail;
        }
    }
    if ((st = st_seal(s, user_id, "memories", m->text, &body, &enc, err))) goto fail;
    db_val p[13] = {db_int(user_id), db_int(m->kind), db_int(m->source), db_int(enc),
                    db_blob(body.data, body.len), db_real(m->importance), db_int(created),
                    db_int(now), db_int(valid_from), m->due_ms ? db_int(m->due_ms) : db_null(),
                    m->conv_id ? db_int(m->conv_id) : db_null(),
                    emb ? db_blob(emb, (size_t)s->n_embd * sizeof *emb) : db_null(),
                    db_text(m->client_id)};
    if ((st = st_int(s,
                     "INSERT INTO memories(user_id, kind, source, enc, body, importance,"
                     " created_ms, updated_ms, valid_from_ms, due_ms, conv_id, embedding,"
                     " client_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                     p, 13, &id, NULL, err))) {
        if (st == CG_ERR_INVALID && m->client_id)
            st = cg_err_set(err, CG_ERR_INVALID, "store: memory client id '%s' already exists",
                            m->client_id);
        goto fail;
    }
    if ((st = index_text(s, id, user_id, m->text, err))) goto fail;
    if (emb && s->version >= CG_STORE_VPACK_VERSION &&
        (st = st_vp_add(s, user_id, id, emb, s->n_embd, err)))
        goto fail;
    if ((st = audit(s, user_id, id, "add", now, err))) goto fail;
    if (m->supersedes) {
        db_val q[5] = {db_int(valid_from), db_int(id), db_int(now), db_int(m->supersedes),
                       db_int(user_id)};
        if ((st = st_exec(s,
                          "UPDATE memories SET valid_to_ms = ?, superseded_by = ?, updated_ms = ?"
                          " WHERE id = ? AND user_id = ?",
                          q, 5, err)))
            goto fail;
        if (s->version >= CG_STORE_VPACK_VERSION &&
            (st = st_vp_remove(s, user_id, m->supersedes, err)))
            goto fail;
        if ((st = audit(s, user_id, m->supersedes, "supersede", now, err))) goto fail;
    }
    if ((st = st_commit(s, err))) goto fail;
    if (out_id) *out_id = id;
    goto done;
fail:
    st_rollback(s);
done:
    free(emb);
    cg_buf_free(&body);
    return st;
}

cg_status cg_store_memory_edit(cg_store *s, int64_t user_id, int64_t id, const char *text,
                               double importance, cg_err *err) {
    cg_status st;
    if ((st = st_check_text("memory text", text, MAX_TEXT_BYTES, false, err))) return st;
    if (importance > 1.0 || isnan(importance))
        return cg_err_set(err, CG_ERR_INVALID, "store: memory importance %g not in 0..1",
                          importance);
    int64_t now = cg_time_unix_ms(), enc = 0;
    float *emb = NULL;
    cg_buf body;
    cg_buf_init(&body);
    if ((st = embed_blob(s, text, &emb, err))) goto done;
    if ((st = st_begin(s, err))) goto done;
    db_val pe[2] = {db_int(id), db_int(user_id)};
    if ((st = st_need(s, "SELECT id FROM memories WHERE id = ? AND user_id = ?", pe, 2, NULL, err,
                      "memory id=%lld", (long long)id)))
        goto fail;
    if ((st = st_seal(s, user_id, "memories", text, &body, &enc, err))) goto fail;
    db_val p[6] = {db_int(enc), db_blob(body.data, body.len),
                   emb ? db_blob(emb, (size_t)s->n_embd * sizeof *emb) : db_null(), db_int(now),
                   db_int(id), db_int(user_id)};
    if ((st = st_exec(s,
                      "UPDATE memories SET enc = ?, body = ?, embedding = ?, updated_ms = ?"
                      " WHERE id = ? AND user_id = ?",
                      p, 6, err)))
        goto fail;
    if (importance >= 0.0) {
        db_val pi[3] = {db_real(importance), db_int(id), db_int(user_id)};
        if ((st = st_exec(s, "UPDATE memories SET importance = ? WHERE id = ? AND user_id = ?", pi,
                          3, err)))
            goto fail;
    }
    if ((st = s->ops->index_del(s->conn, id, err))) goto fail;
    if ((st = index_text(s, id, user_id, text, err))) goto fail;
    if (s->version >= CG_STORE_VPACK_VERSION &&
        (st = st_vp_update(s, user_id, id, emb, s->n_embd, err)))
        goto fail;
    if ((st = audit(s, user_id, id, "edit", now, err))) goto fail;
    if ((st = st_commit(s, err))) goto fail;
    goto done;
fail:
    st_rollback(s);
done:
    free(emb);
    cg_buf_free(&body);
    return st;
}

cg_status cg_store_memory_delete(cg_store *s, int64_t user_id, int64_t id, cg_err *err) {
    cg_status st;
    db_val p[2] = {db_int(id), db_int(user_id)};
    if ((st = st_begin(s, err))) return st;
    if (s->version >= CG_STORE_VPACK_VERSION && (st = st_vp_remove(s, user_id, id, err)))
        goto fail;
    if ((st = st_need(s, "DELETE FROM memories WHERE id = ? AND user_id = ? RETURNING id", p, 2,
                      NULL, err, "memory id=%lld", (long long)id)))
        goto fail;
    if ((st = s->ops->index_del(s->conn, id, err))) goto fail;
    if ((st = audit(s, user_id, id, "delete", cg_time_unix_ms(), err))) goto fail;
    if ((st = st_commit(s, err))) goto fail;
    return CG_OK;
fail:
    st_rollback(s);
    return st;
}

cg_status cg_store_memory_forget_all(cg_store *s, int64_t user_id, int64_t *n_deleted,
                                     cg_err *err) {
    cg_status st;
    int64_t n = 0;
    db_val p[1] = {db_int(user_id)};
    if ((st = st_begin(s, err))) return st;
    if ((st = st_int(s, "SELECT count(*) FROM memories WHERE user_id = ?", p, 1, &n, NULL, err)))
        goto fail;
    if ((st = st_unindex_user(s, user_id, err))) goto fail;
    if (s->version >= CG_STORE_VPACK_VERSION && (st = st_vp_drop_user(s, user_id, err))) goto fail;
    if ((st = st_exec(s, "UPDATE memories SET superseded_by = NULL WHERE user_id = ?", p, 1, err)))
        goto fail;
    if ((st = st_exec(s, "DELETE FROM memories WHERE user_id = ?", p, 1, err))) goto fail;
    if ((st = audit(s, user_id, 0, "forget_all", cg_time_unix_ms(), err))) goto fail;
    if ((st = st_commit(s, err))) goto fail;
    if (n_deleted) *n_deleted = n;
    return s->ops->purge(s->conn, err);
fail:
    st_rollback(s);
    return st;
}

cg_status cg_store_memory_list(cg_store *s, int64_t user_id, bool current_only, cg_memory **out,
                               size_t *n_out, cg_err *err) {
    mem_vec mv = {s, NULL, 0, 0};
    db_val p[1] = {db_int(user_id)};
    cg_status st = s->ops->exec(
        s->conn,
        current_only ? "SELECT " MEM_COLS " FROM memories WHERE user_id = ?"
                       " AND superseded_by IS NULL AND valid_to_ms IS NULL"
                       " ORDER BY created_ms DESC, id DESC"
                     : "SELECT " MEM_COLS " FROM memories WHERE user_id = ?"
                       " ORDER BY created_ms DESC, id DESC",
        p, 1, mem_row, &mv, err);
    if (st) {
        cg_memory_list_free(mv.v, mv.n);
        return st;
    }
    *out = mv.v;
    *n_out = mv.n;
    return CG_OK;
}

cg_status cg_store_memory_due(cg_store *s, int64_t user_id, int64_t before_ms, cg_memory **out,
                              size_t *n_out, cg_err *err) {
    mem_vec mv = {s, NULL, 0, 0};
    db_val p[3] = {db_int(user_id), db_int(CG_MEM_TASK), db_int(before_ms)};
    cg_status st = s->ops->exec(s->conn,
                                "SELECT " MEM_COLS " FROM memories WHERE user_id = ? AND kind = ?"
                                " AND due_ms IS NOT NULL AND due_ms <= ?"
                                " AND superseded_by IS NULL AND valid_to_ms IS NULL"
                                " ORDER BY due_ms, id",
                                p, 3, mem_row, &mv, err);
    if (st) {
        cg_memory_list_free(mv.v, mv.n);
        return st;
    }
    *out = mv.v;
    *n_out = mv.n;
    return CG_OK;
}

// ---- search ----------------------------------------------------------------------------------

#define RRF_K 60.0
#define IMPORTANCE_WEIGHT 0.5     // score *= 1 + 0.5 * importance
#define RECENCY_WEIGHT 0.25       // score *= 1 + 0.25 * 2^(-age / half-life)
#define RECENCY_HALF_LIFE_DAYS 30.0

typedef struct vec_hit { int64_t id; float cos; } vec_hit;
typedef struct vec_ctx {
    const float *q;
    int n_embd;
    float min_cos;
    vec_hit *v;
    size_t n, cap;
} vec_ctx;

static cg_status vec_row(void *user, const db_val *cols, int n_cols, cg_err *err) {
    vec_ctx *c = user;
    if (cols[1].t == DB_NULL) return CG_OK;  // stored before an embedder was configured
    if (cols[1].t != DB_BLOB || cols[1].n != (size_t)c->n_embd * sizeof(float))
        return cg_err_set(err, CG_ERR_FORMAT,
                          "memories id=%lld column embedding: %zu bytes, want %d floats",
                          (long long)cols[0].i, cols[1].n, c->n_embd);
    float stack[512], *e = stack;
    if (c->n_embd > 512 && !(e = malloc((size_t)c->n_embd * sizeof *e)))
        return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
    memcpy(e, cols[1].p, cols[1].n);  // the blob may be unaligned
    float cs = cg_vec_cosine(c->q, e, (size_t)c->n_embd);
    if (e != stack) free(e);
    if (!(cs >= c->min_cos)) return CG_OK;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        vec_hit *v = realloc(c->v, cap * sizeof *v);
        if (!v) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = (vec_hit){cols[0].i, cs};
    return CG_OK;
}

static int cmp_vec_hit(const void *a, const void *b) {
    const vec_hit *x = a, *y = b;
    if (x->cos != y->cos) return x->cos > y->cos ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_mem_score(const void *a, const void *b) {
    const cg_memory *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->id > y->id ? -1 : x->id < y->id;  // newer first on ties
}

typedef struct fused { int64_t id; double rrf; } fused;

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_fused_id(const void *a, const void *b) {
    const fused *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

// The fused score of one memory: its reciprocal-rank sum times the importance and recency boosts.
static double boosted(double rrf, double importance, int64_t created_ms, int64_t now) {
    double age_days = (double)(now - created_ms) / 86400000.0;
    if (age_days < 0) age_days = 0;
    return rrf * (1.0 + IMPORTANCE_WEIGHT * importance) *
           (1.0 + RECENCY_WEIGHT * exp2(-age_days / RECENCY_HALF_LIFE_DAYS));
}

// What ranking needs of a candidate: read before any full row, so only the k winners' rows
// (bodies, decryption) are fetched. On PostgreSQL these columns come from the covering index
// memories_user_id without touching the table (see db_pg.c).
typedef struct ranked { int64_t id; double importance; int64_t created_ms; double score; } ranked;
typedef struct ranked_vec {
    const fused *f;
    size_t n_f;
    int64_t now;
    ranked *v;
    size_t n;
} ranked_vec;

static cg_status ranked_row(void *user, const db_val *cols, int n_cols, cg_err *err) {
    ranked_vec *rv = user;
    ranked r = {0};
    cg_status st;
    if ((st = col_int("memories", 0, "id", &cols[0], false, &r.id, err)) ||
        (st = col_real("memories", r.id, "importance", &cols[1], &r.importance, err)) ||
        (st = col_int("memories", r.id, "created_ms", &cols[2], false, &r.created_ms, err)))
        return st;
    fused key = {r.id, 0};
    const fused *hit = bsearch(&key, rv->f, rv->n_f, sizeof *rv->f, cmp_fused_id);
    if (!hit || rv->n == rv->n_f) return CG_OK;  // not asked for (cannot happen) or duplicate
    r.score = boosted(hit->rrf, r.importance, r.created_ms, rv->now);
    rv->v[rv->n++] = r;
    return CG_OK;
}

static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->id > y->id ? -1 : x->id < y->id;  // the order cmp_mem_score gives the full rows
}

// Runs `head` + " AND id IN (…)" over ids[0..n) in batches of 200, with the user id as the first
// parameter, handing every row to fn.
static cg_status by_ids(cg_store *s, int64_t user_id, const char *head, const int64_t *ids,
                        size_t n, db_row_fn fn, void *user, cg_err *err) {
    enum { BATCH = 200 };
    db_val p[BATCH + 1];
    cg_buf q;
    cg_buf_init(&q);
    cg_status st = CG_OK;
    for (size_t i = 0; i < n && !st; i += BATCH) {
        size_t m = n - i < BATCH ? n - i : BATCH;
        cg_buf_reset(&q);
        cg_buf_puts(&q, head);
        cg_buf_puts(&q, " AND id IN (");
        p[0] = db_int(user_id);
        for (size_t j = 0; j < m; j++) {
            cg_buf_puts(&q, j ? ", ?" : "?");
            p[j + 1] = db_int(ids[i + j]);
        }
        cg_buf_putc(&q, ')');
        if (!cg_buf_ok(&q)) {
            st = cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
            break;
        }
        st = s->ops->exec(s->conn, q.data, p, (int)m + 1, fn, user, err);
    }
    cg_buf_free(&q);
    return st;
}

// The vector list before sorting: every memory with reference cosine >= min_cos that could be
// among the `limit` best. Current memories at schema v4 come from the packed pages (vpack.c:
// candidates by a bounded f16 score, then the reference cosine over their blobs, so the
// ranking equals a scan of every blob); history searches and older schemas scan the blobs.
static cg_status vector_hits(cg_store *s, int64_t user_id, bool current_only, bool scan,
                             size_t limit, vec_ctx *vc, cg_err *err) {
    db_val p[1] = {db_int(user_id)};
    if (!current_only || s->version < CG_STORE_VPACK_VERSION || scan)
        return s->ops->exec(s->conn,
                            current_only ? "SELECT id, embedding FROM memories WHERE user_id = ?"
                                           " AND superseded_by IS NULL AND valid_to_ms IS NULL"
                                         : "SELECT id, embedding FROM memories WHERE user_id = ?",
                            p, 1, vec_row, vc, err);
    int64_t *cand = NULL;
    size_t n_cand = 0;
    cg_buf head;
    cg_buf_init(&head);
    cg_status st = st_vp_candidates(s, user_id, vc->q, vc->min_cos, limit, &cand, &n_cand, NULL,
                                    err);
    if (st) goto done;
    if (n_cand > 1) qsort(cand, n_cand, sizeof *cand, cmp_i64);
    cg_buf_printf(&head, "SELECT id, embedding FROM memories WHERE %s = ?", s->ops->user_col);
    if (!cg_buf_ok(&head)) {
        st = cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        goto done;
    }
    st = by_ids(s, user_id, head.data, cand, n_cand, vec_row, vc, err);
done:
    free(cand);
    cg_buf_free(&head);
    return st;
}

// Scores the memories whose ids are in f[0..n_f) (sorted by id) with their fused rank and the
// boosts, and fetches the k best as full rows into res (unsorted).
static cg_status fetch_scored(cg_store *s, int64_t user_id, const fused *f, size_t n_f,
                              int64_t now, int k, mem_vec *res, cg_err *err) {
    ranked_vec rv = {f, n_f, now, NULL, 0};
    int64_t *ids = malloc((n_f + 1) * sizeof *ids);
    cg_buf head;
    cg_buf_init(&head);
    cg_status st = CG_OK;
    if (!ids || !(rv.v = malloc((n_f + 1) * sizeof *rv.v))) {
        st = cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_f; i++) ids[i] = f[i].id;
    cg_buf_printf(&head, "SELECT id, importance, created_ms FROM memories WHERE %s = ?",
                  s->ops->user_col);
    if (!cg_buf_ok(&head)) {
        st = cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        goto done;
    }
    if ((st = by_ids(s, user_id, head.data, ids, n_f, ranked_row, &rv, err))) goto done;
    if (rv.n > 1) qsort(rv.v, rv.n, sizeof *rv.v, cmp_ranked);
    size_t n_best = rv.n < (size_t)k ? rv.n : (size_t)k;
    for (size_t i = 0; i < n_best; i++) ids[i] = rv.v[i].id;
    cg_buf_reset(&head);
    cg_buf_printf(&head, "SELECT " MEM_COLS " FROM memories WHERE %s = ?", s->ops->user_col);
    if (!cg_buf_ok(&head)) {
        st = cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        goto done;
    }
    size_t before = res->n;
    if ((st = by_ids(s, user_id, head.data, ids, n_best, mem_row, res, err))) goto done;
    for (size_t r = before; r < res->n; r++) {
        cg_memory *mm = &res->v[r];
        fused key = {mm->id, 0};
        const fused *hit = bsearch(&key, f, n_f, sizeof *f, cmp_fused_id);
        mm->score = boosted(hit ? hit->rrf : 0.0, mm->importance, mm->created_ms, now);
    }
done:
    free(ids);
    free(rv.v);
    cg_buf_free(&head);
    return st;
}

cg_status cg_store_memory_search(cg_store *s, int64_t user_id, const char *query,
                                 const cg_search_opts *opts, cg_memory **out, size_t *n_out,
                                 cg_err *err) {
    cg_search_opts o = opts ? *opts : (cg_search_opts){0};
    cg_status st;
    if ((st = st_check_text("search query", query, MAX_TEXT_BYTES, true, err))) return st;
    int k = o.k ? o.k : 10;
    if (k < 1 || k > 1000) return cg_err_set(err, CG_ERR_INVALID, "store: search k %d (1..1000)", k);
    double min_cos = o.min_cosine > 0.0 ? o.min_cosine : 0.2;
    int max_cand = o.max_candidates ? o.max_candidates : 1000;
    if (max_cand < 1 || max_cand > 1000000)
        return cg_err_set(err, CG_ERR_INVALID, "store: search max_candidates %d (1..1000000)",
                          max_cand);
    int64_t now = o.now_ms ? o.now_ms : cg_time_unix_ms();
    int limit = k * 5 < 50 ? 50 : k * 5;
    bool current_only = !o.include_history;
    cg_cjk_termset terms = {0};
    db_hit *hits = NULL;
    size_t n_hits = 0;
    float *qv = NULL;
    vec_ctx vc = {0};
    fused *f = NULL;
    size_t n_f = 0;
    mem_vec res = {s, NULL, 0, 0};
    *out = NULL;
    *n_out = 0;

    if ((st = cg_cjk_termset_of(query, strlen(query), &terms, err))) goto done;
    if ((st = s->ops->index_search(s->conn, user_id, (const char *const *)terms.v, terms.n,
                                   current_only, limit, max_cand, &hits, &n_hits, err)))
        goto done;
    if (s->embed && *query) {
        if ((st = embed_blob(s, query, &qv, err))) goto done;
        vc = (vec_ctx){qv, s->n_embd, (float)min_cos, NULL, 0, 0};
        if ((st = vector_hits(s, user_id, current_only, o.vec_scan, (size_t)limit, &vc, err)))
            goto done;
        if (vc.n > 1) qsort(vc.v, vc.n, sizeof *vc.v, cmp_vec_hit);
        if (vc.n > (size_t)limit) vc.n = (size_t)limit;
    }
    if (!(f = malloc((n_hits + vc.n + 1) * sizeof *f))) {
        st = cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        goto done;
    }
    // Reciprocal-rank fusion: both ranked lists into one array, merged by id.
    for (size_t i = 0; i < n_hits; i++) f[n_f++] = (fused){hits[i].id, 1.0 / (RRF_K + (double)(i + 1))};
    for (size_t i = 0; i < vc.n; i++) f[n_f++] = (fused){vc.v[i].id, 1.0 / (RRF_K + (double)(i + 1))};
    if (n_f > 1) qsort(f, n_f, sizeof *f, cmp_fused_id);
    size_t n_u = 0;
    for (size_t i = 0; i < n_f; i++) {
        if (n_u && f[n_u - 1].id == f[i].id) f[n_u - 1].rrf += f[i].rrf;
        else f[n_u++] = f[i];
    }
    n_f = n_u;
    if ((st = fetch_scored(s, user_id, f, n_f, now, k, &res, err))) goto done;
    if (res.n > 1) qsort(res.v, res.n, sizeof *res.v, cmp_mem_score);
    if (res.n > (size_t)k) {
        for (size_t i = (size_t)k; i < res.n; i++) cg_memory_clear(&res.v[i]);
        res.n = (size_t)k;
    }
    *out = res.v;
    *n_out = res.n;
    res.v = NULL;
    res.n = 0;
done:
    cg_memory_list_free(res.v, res.n);
    cg_cjk_termset_free(&terms);
    free(hits);
    free(qv);
    free(vc.v);
    free(f);
    return st;
}

cg_status cg_store_vec_ranked(cg_store *s, int64_t user_id, const char *query,
                              const cg_search_opts *opts, int64_t **ids, float **cos, size_t *n,
                              cg_err *err) {
    cg_search_opts o = opts ? *opts : (cg_search_opts){0};
    cg_status st;
    *ids = NULL;
    *cos = NULL;
    *n = 0;
    if (!s->embed) return cg_err_set(err, CG_ERR_STATE, "store: no embedding function configured");
    if ((st = st_check_text("search query", query, MAX_TEXT_BYTES, false, err))) return st;
    int k = o.k ? o.k : 10;
    if (k < 1 || k > 1000) return cg_err_set(err, CG_ERR_INVALID, "store: search k %d (1..1000)", k);
    int limit = k * 5 < 50 ? 50 : k * 5;
    float *qv = NULL;
    vec_ctx vc = {0};
    if ((st = embed_blob(s, query, &qv, err))) goto done;
    vc = (vec_ctx){qv, s->n_embd, (float)(o.min_cosine > 0.0 ? o.min_cosine : 0.2), NULL, 0, 0};
    if ((st = vector_hits(s, user_id, !o.include_history, o.vec_scan, (size_t)limit, &vc, err)))
        goto done;
    if (vc.n > 1) qsort(vc.v, vc.n, sizeof *vc.v, cmp_vec_hit);
    if (vc.n > (size_t)limit) vc.n = (size_t)limit;
    if (!(*ids = malloc((vc.n + 1) * sizeof **ids)) || !(*cos = malloc((vc.n + 1) * sizeof **cos))) {
        free(*ids);
        *ids = NULL;
        st = cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        goto done;
    }
    for (size_t i = 0; i < vc.n; i++) (*ids)[i] = vc.v[i].id, (*cos)[i] = vc.v[i].cos;
    *n = vc.n;
done:
    free(qv);
    free(vc.v);
    return st;
}

// ---- audit and export ------------------------------------------------------------------------

cg_status cg_store_audit_count(cg_store *s, int64_t user_id, int64_t *out, cg_err *err) {
    db_val p[1] = {db_int(user_id)};
    return st_int(s, "SELECT count(*) FROM audit WHERE user_id = ?", p, 1, out, NULL, err);
}

typedef struct exp_ctx { cg_store *s; int64_t user_id; cg_buf *out; size_t n; } exp_ctx;

static void sep(exp_ctx *e) {
    if (e->n++) cg_buf_putc(e->out, ',');
}

static void put_opt_int(cg_buf *b, const char *key, const db_val *v) {
    if (v->t == DB_INT) cg_buf_printf(b, ",\"%s\":%lld", key, (long long)v->i);
    else cg_buf_printf(b, ",\"%s\":null", key);
}

static cg_status exp_key(void *user, const db_val *c, int n, cg_err *err) {
    exp_ctx *e = user;
    sep(e);
    cg_buf_printf(e->out, "{\"id\":%lld,\"scope\":\"%s\",\"created_ms\":%lld", (long long)c[0].i,
                  c[1].i == CG_KEY_ADMIN ? "admin" : "user", (long long)c[2].i);
    put_opt_int(e->out, "last_used_ms", &c[3]);
    put_opt_int(e->out, "revoked_ms", &c[4]);
    cg_buf_putc(e->out, '}');
    return CG_OK;
}

static cg_status exp_conv(void *user, const db_val *c, int n, cg_err *err) {
    exp_ctx *e = user;
    char *title = NULL;
    cg_status st = col_str("conversations", c[0].i, "title", &c[1], true, &title, err);
    if (st) return st;
    sep(e);
    cg_buf_printf(e->out, "{\"id\":%lld,\"title\":", (long long)c[0].i);
    if (title) st_json_str(e->out, title);
    else cg_buf_puts(e->out, "null");
    cg_buf_printf(e->out, ",\"temporary\":%s,\"created_ms\":%lld,\"messages\":[",
                  c[2].i ? "true" : "false", (long long)c[3].i);
    free(title);
    return CG_OK;  // messages are appended by the caller after the row callback
}

static cg_status exp_audit(void *user, const db_val *c, int n, cg_err *err) {
    exp_ctx *e = user;
    char *action = NULL;
    cg_status st = col_str("audit", c[0].i, "action", &c[2], false, &action, err);
    if (st) return st;
    sep(e);
    cg_buf_printf(e->out, "{\"id\":%lld", (long long)c[0].i);
    put_opt_int(e->out, "memory_id", &c[1]);
    cg_buf_puts(e->out, ",\"action\":");
    st_json_str(e->out, action);
    cg_buf_printf(e->out, ",\"at_ms\":%lld}", (long long)c[3].i);
    free(action);
    return CG_OK;
}

cg_status st_id_row(void *user, const db_val *c, int n, cg_err *err) {
    (void)n;
    idlist *l = user;
    if (c[0].t != DB_INT) return cg_err_set(err, CG_ERR_FORMAT, "store: id is not an integer");
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        int64_t *v = realloc(l->v, cap * sizeof *v);
        if (!v) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = c[0].i;
    return CG_OK;
}

static cg_status exp_chunk(void *user, const db_val *c, int n, cg_err *err) {
    exp_ctx *e = user;
    int64_t enc = 0, id = 0;
    char *text = NULL;
    cg_status st;
    if ((st = col_int("chunks", 0, "id", &c[0], false, &id, err)) ||
        (st = col_int("chunks", id, "enc", &c[1], false, &enc, err)) ||
        (st = st_open_text(e->s, e->user_id, "chunks", id, "body", enc, &c[2], &text, err)))
        return st;
    sep(e);
    st_json_str(e->out, text);
    free(text);
    return CG_OK;
}

typedef struct doc_head { exp_ctx *e; int64_t id; } doc_head;

static cg_status exp_doc_head(void *user, const db_val *c, int n, cg_err *err) {
    doc_head *h = user;
    char *title = NULL;
    int64_t created = 0;
    cg_status st;
    if ((st = col_int("documents", h->id, "created_ms", &c[0], false, &created, err)) ||
        (st = col_str("documents", h->id, "title", &c[1], true, &title, err)))
        return st;
    sep(h->e);
    cg_buf_printf(h->e->out, "{\"id\":%lld,\"title\":", (long long)h->id);
    if (title) st_json_str(h->e->out, title);
    else cg_buf_puts(h->e->out, "null");
    cg_buf_printf(h->e->out, ",\"created_ms\":%lld,\"chunks\":[", (long long)created);
    free(title);
    return CG_OK;
}

// One document and its chunks in order.
static cg_status exp_doc(cg_store *s, int64_t user_id, int64_t doc_id, exp_ctx *e, cg_err *err) {
    cg_status st;
    db_val p[2] = {db_int(doc_id), db_int(user_id)};
    doc_head h = {e, doc_id};
    if ((st = s->ops->exec(s->conn,
                           "SELECT created_ms, title FROM documents WHERE id = ? AND user_id = ?",
                           p, 2, exp_doc_head, &h, err)))
        return st;
    exp_ctx ce = {s, user_id, e->out, 0};
    if ((st = s->ops->exec(s->conn,
                           "SELECT id, enc, body FROM chunks WHERE doc_id = ? AND user_id = ?"
                           " ORDER BY seq",
                           p, 2, exp_chunk, &ce, err)))
        return st;
    cg_buf_puts(e->out, "]}");
    return CG_OK;
}

static void put_memory(cg_buf *b, const cg_memory *m) {
    cg_buf_printf(b, "{\"id\":%lld,\"kind\":\"%s\",\"source\":\"%s\",\"text\":", (long long)m->id,
                  cg_mem_kind_name(m->kind), cg_mem_source_name(m->source));
    st_json_str(b, m->text);
    cg_buf_puts(b, ",\"client_id\":");
    if (m->client_id) st_json_str(b, m->client_id);
    else cg_buf_puts(b, "null");
    cg_buf_printf(b, ",\"importance\":%.17g,\"created_ms\":%lld,\"updated_ms\":%lld,"
                     "\"valid_from_ms\":%lld", m->importance, (long long)m->created_ms,
                  (long long)m->updated_ms, (long long)m->valid_from_ms);
    const int64_t opt[4] = {m->valid_to_ms, m->superseded_by, m->due_ms, m->conv_id};
    const char *names[4] = {"valid_to_ms", "superseded_by", "due_ms", "conversation_id"};
    for (int i = 0; i < 4; i++) {
        if (opt[i]) cg_buf_printf(b, ",\"%s\":%lld", names[i], (long long)opt[i]);
        else cg_buf_printf(b, ",\"%s\":null", names[i]);
    }
    cg_buf_putc(b, '}');
}

cg_status cg_store_export_json(cg_store *s, int64_t user_id, cg_buf *out, cg_err *err) {
    cg_status st;
    cg_user *users = NULL;
    size_t n_users = 0;
    cg_memory *mems = NULL;
    size_t n_mems = 0;
    cg_message *msgs = NULL;
    size_t n_msgs = 0;
    idlist convs = {0}, docs = {0};
    db_val p[1] = {db_int(user_id)};
    const cg_user *u = NULL;
    if ((st = cg_store_user_list(s, &users, &n_users, err))) goto done;
    for (size_t i = 0; i < n_users; i++)
        if (users[i].id == user_id) u = &users[i];
    if (!u) {
        st = cg_err_set(err, CG_ERR_NOT_FOUND, "store: no user id=%lld", (long long)user_id);
        goto done;
    }
    cg_buf_printf(out, "{\"user\":{\"id\":%lld,\"name\":", (long long)u->id);
    st_json_str(out, u->name);
    cg_buf_printf(out, ",\"created_ms\":%lld},\"keys\":[", (long long)u->created_ms);
    exp_ctx e = {s, user_id, out, 0};
    if ((st = s->ops->exec(s->conn,
                           "SELECT id, scope, created_ms, last_used_ms, revoked_ms FROM api_keys"
                           " WHERE user_id = ? ORDER BY id",
                           p, 1, exp_key, &e, err)))
        goto done;
    cg_buf_puts(out, "],\"conversations\":[");
    if ((st = s->ops->exec(s->conn, "SELECT id FROM conversations WHERE user_id = ? ORDER BY id",
                           p, 1, st_id_row, &convs, err)))
        goto done;
    e.n = 0;
    for (size_t i = 0; i < convs.n; i++) {
        db_val pc[2] = {db_int(convs.v[i]), db_int(user_id)};
        if ((st = s->ops->exec(s->conn,
                               "SELECT id, title, temporary, created_ms FROM conversations"
                               " WHERE id = ? AND user_id = ?",
                               pc, 2, exp_conv, &e, err)))
            goto done;
        if ((st = cg_store_msg_list(s, user_id, convs.v[i], &msgs, &n_msgs, err))) goto done;
        for (size_t j = 0; j < n_msgs; j++) {
            cg_buf_printf(out, "%s{\"id\":%lld,\"role\":", j ? "," : "", (long long)msgs[j].id);
            st_json_str(out, msgs[j].role);
            cg_buf_puts(out, ",\"text\":");
            st_json_str(out, msgs[j].text);
            cg_buf_printf(out, ",\"n_tokens\":%d,\"created_ms\":%lld}", msgs[j].n_tokens,
                          (long long)msgs[j].created_ms);
        }
        cg_message_list_free(msgs, n_msgs);
        msgs = NULL;
        cg_buf_puts(out, "]}");
    }
    cg_buf_puts(out, "],\"memories\":[");
    if ((st = cg_store_memory_list(s, user_id, false, &mems, &n_mems, err))) goto done;
    for (size_t i = 0; i < n_mems; i++) {
        if (i) cg_buf_putc(out, ',');
        put_memory(out, &mems[i]);
    }
    cg_buf_puts(out, "],\"documents\":[");
    if ((st = s->ops->exec(s->conn, "SELECT id FROM documents WHERE user_id = ? ORDER BY id", p, 1,
                           st_id_row, &docs, err)))
        goto done;
    e.n = 0;
    for (size_t i = 0; i < docs.n; i++)
        if ((st = exp_doc(s, user_id, docs.v[i], &e, err))) goto done;
    cg_buf_puts(out, "],\"audit\":[");
    e.n = 0;
    if ((st = s->ops->exec(s->conn,
                           "SELECT id, memory_id, action, at_ms FROM audit WHERE user_id = ?"
                           " ORDER BY id",
                           p, 1, exp_audit, &e, err)))
        goto done;
    cg_buf_puts(out, "]}");
    if (!cg_buf_ok(out)) st = cg_err_set(err, CG_ERR_NOMEM, "store: out of memory exporting");
done:
    cg_user_list_free(users, n_users);
    cg_memory_list_free(mems, n_mems);
    cg_message_list_free(msgs, n_msgs);
    free(convs.v);
    free(docs.v);
    return st;
}
