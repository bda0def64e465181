// vpack.c — the packed per-user vector store (mem_vpack, schema v4) behind the vector half of
// hybrid search, and its exact candidate selection.
//
// The truth is each memory's float32 embedding blob (memories.embedding). mem_vpack is derived
// from it: for every user, the embeddings of their *current* memories (superseded_by IS NULL AND
// valid_to_ms IS NULL AND embedding IS NOT NULL) in pages of up to ~32 KiB, one row per
// (user_id, page). memories.vpage names the page that holds a memory (NULL: in no page).
// A page blob (little-endian):
//   u32 magic 'CGV1' | u32 n_embd | u32 n | u32 0
//   n x { i64 id, f32 scale, f32 norm, f32 resid }
//   n x n_embd x f16   h = x / scale (scale = max|x|, so no component overflows binary16)
// norm = |x|, resid = |x - scale*h| (rounded up): the exact error of the half-precision copy.
//
// Search reads the user's pages (one range of the primary key), scores every entry with the
// AVX2 f32 x f16 dot (vec.c) and keeps, with a rigorous bound
//   |cos_ref(q, x) - scale*dot(q, h)/(|q||x|)| <= resid/|x| + slack(n_embd)
// (slack covers float rounding of both computations), every entry that could be in the exact
// top `limit`; the caller then re-ranks those candidates with the reference cosine over their
// blobs. So the packed stage returns exactly the ranking of a scan of every blob.
//
// Invariant kept by every write path (memory.c, store.c; same transaction as the row change):
// an entry for memory m is in page memories[m].vpage of m's user iff m is current and has an
// embedding. cg_store_vec_rebuild recomputes all of it from the blobs (migration v4 runs it).
// Not thread-safe (one store, one thread; see store.h).
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"
#include "mem/store_int.h"
#include "mem/vec.h"

#define VP_MAGIC 0x31564743u  // "CGV1"
#define VP_HEAD 16
#define VP_ENTRY 20
#define VP_TARGET_BYTES 32768
#define VP_MAX_N 4096

size_t st_vp_cap(int n_embd) {
    size_t cap = VP_TARGET_BYTES / (VP_ENTRY + 2 * (size_t)n_embd);
    return cap < 1 ? 1 : cap > VP_MAX_N ? VP_MAX_N : cap;
}

// A decoded view of a page blob (pointers into the blob; vectors may need an aligned copy).
typedef struct vp_view {
    uint32_t n_embd, n;
    const unsigned char *ent;   // n x VP_ENTRY
    const unsigned char *vecs;  // n x n_embd x 2
} vp_view;

static cg_status vp_parse(int64_t user_id, int64_t page, const void *p, size_t len, vp_view *v,
                          cg_err *err) {
    if (len < VP_HEAD)
        return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld page=%lld: %zu bytes, below the "
                          "%d-byte header", (long long)user_id, (long long)page, len, VP_HEAD);
    const unsigned char *b = p;
    if (cg_le32(b) != VP_MAGIC)
        return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld page=%lld: bad magic 0x%08x",
                          (long long)user_id, (long long)page, (unsigned)cg_le32(b));
    v->n_embd = cg_le32(b + 4);
    v->n = cg_le32(b + 8);
    if (v->n_embd < 1 || v->n_embd > 4096 || v->n > VP_MAX_N)
        return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld page=%lld: n_embd %u, n %u out "
                          "of range", (long long)user_id, (long long)page, (unsigned)v->n_embd,
                          (unsigned)v->n);
    size_t want = VP_HEAD + (size_t)v->n * (VP_ENTRY + 2 * (size_t)v->n_embd);
    if (len != want)
        return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld page=%lld: %zu bytes, want %zu "
                          "for %u vectors of %u", (long long)user_id, (long long)page, len, want,
                          (unsigned)v->n, (unsigned)v->n_embd);
    v->ent = b + VP_HEAD;
    v->vecs = v->ent + (size_t)v->n * VP_ENTRY;
    return CG_OK;
}

// Encodes x (n_embd,) as one entry: header fields into ent, halves into h.
static void vp_encode(int64_t id, const float *x, int n_embd, unsigned char *ent, unsigned char *h) {
    float scale = 0.0f;
    for (int j = 0; j < n_embd; j++) scale = fmaxf(scale, fabsf(x[j]));
    double norm2 = 0.0, res2 = 0.0;
    for (int j = 0; j < n_embd; j++) {
        uint16_t hv = scale > 0.0f ? cg_vec_f32_to_f16(x[j] / scale) : 0;
        memcpy(h + 2 * (size_t)j, &hv, 2);
        double d = (double)x[j] - (double)scale * (double)cg_vec_f16_to_f32(hv);
        norm2 += (double)x[j] * x[j];
        res2 += d * d;
    }
    float norm = (float)sqrt(norm2), resid = (float)(sqrt(res2) * (1.0 + 1e-6));
    memcpy(ent, &id, 8);
    memcpy(ent + 8, &scale, 4);
    memcpy(ent + 12, &norm, 4);
    memcpy(ent + 16, &resid, 4);
}

cg_status st_vp_page(const int64_t *ids, const float *x, size_t n, int n_embd, cg_buf *out,
                     cg_err *err) {
    size_t vb = 2 * (size_t)n_embd;
    if (n == 0 || n > st_vp_cap(n_embd) || n_embd < 1 || n_embd > 4096)
        return cg_err_set(err, CG_ERR_INVALID, "mem_vpack: page of %zu vectors of %d", n, n_embd);
    size_t total = VP_HEAD + n * (VP_ENTRY + vb);
    if (!cg_buf_reserve(out, total)) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
    unsigned char *o = (unsigned char *)out->data + out->len;
    uint32_t head[4] = {VP_MAGIC, (uint32_t)n_embd, (uint32_t)n, 0};
    memcpy(o, head, VP_HEAD);
    for (size_t i = 0; i < n; i++)
        vp_encode(ids[i], x + i * (size_t)n_embd, n_embd, o + VP_HEAD + i * VP_ENTRY,
                  o + VP_HEAD + n * VP_ENTRY + i * vb);
    out->len += total;
    return CG_OK;
}

typedef struct blob_copy { cg_buf *b; int64_t user_id, page; bool found; } blob_copy;

static cg_status copy_page_row(void *user, const db_val *c, int n, cg_err *err) {
    blob_copy *bc = user;
    if (c[0].t != DB_INT || c[1].t != DB_BLOB)
        return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld page=%lld column data: not a "
                          "blob", (long long)bc->user_id, (long long)(c[0].t == DB_INT ? c[0].i : -1));
    bc->page = c[0].i;
    bc->found = true;
    cg_buf_reset(bc->b);
    cg_buf_append(bc->b, c[1].p, c[1].n);
    if (!cg_buf_ok(bc->b)) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
    return CG_OK;
}

static cg_status put_page(cg_store *s, int64_t user_id, int64_t page, const cg_buf *b, bool is_new,
                          cg_err *err) {
    db_val p[3] = {db_blob(b->data, b->len), db_int(user_id), db_int(page)};
    if (is_new)
        return st_exec(s, "INSERT INTO mem_vpack(data, user_id, page) VALUES (?, ?, ?)", p, 3, err);
    return st_exec(s, "UPDATE mem_vpack SET data = ? WHERE user_id = ? AND page = ?", p, 3, err);
}

// Two connections changing one user's pages at once would each rewrite a page from what they
// read (a lost update). SQLite's BEGIN IMMEDIATE already serialises writers; on PostgreSQL the
// user's row is locked until commit (NO KEY UPDATE: foreign-key checks of concurrent inserts,
// which take KEY SHARE, are not blocked).
static cg_status lock_user(cg_store *s, int64_t user_id, cg_err *err) {
    if (strcmp(s->ops->name, "postgres") != 0) return CG_OK;
    db_val p[1] = {db_int(user_id)};
    return st_exec(s, "SELECT id FROM users WHERE id = ? FOR NO KEY UPDATE", p, 1, err);
}

static cg_status set_vpage(cg_store *s, int64_t user_id, int64_t id, int64_t page, cg_err *err) {
    db_val p[3] = {page >= 0 ? db_int(page) : db_null(), db_int(id), db_int(user_id)};
    return st_exec(s, "UPDATE memories SET vpage = ? WHERE id = ? AND user_id = ?", p, 3, err);
}

// Appends memory id's vector to the user's last page (or a new one).
cg_status st_vp_add(cg_store *s, int64_t user_id, int64_t id, const float *x, int n_embd,
                    cg_err *err) {
    cg_buf b;
    cg_buf_init(&b);
    blob_copy bc = {&b, user_id, -1, false};
    vp_view v = {0};
    cg_status st;
    db_val p[1] = {db_int(user_id)};
    if ((st = lock_user(s, user_id, err))) goto done;
    if ((st = s->ops->exec(s->conn,
                           "SELECT page, data FROM mem_vpack WHERE user_id = ?"
                           " ORDER BY page DESC LIMIT 1",
                           p, 1, copy_page_row, &bc, err)))
        goto done;
    if (bc.found && (st = vp_parse(user_id, bc.page, b.data, b.len, &v, err))) goto done;
    bool is_new = !bc.found || v.n_embd != (uint32_t)n_embd || v.n >= st_vp_cap(n_embd);
    int64_t page = bc.found ? bc.page + (is_new ? 1 : 0) : 0;
    size_t vb = 2 * (size_t)n_embd;
    cg_buf nb;
    cg_buf_init(&nb);
    uint32_t n_old = is_new ? 0 : v.n;
    size_t total = VP_HEAD + ((size_t)n_old + 1) * (VP_ENTRY + vb);
    if (!cg_buf_reserve(&nb, total)) {
        cg_buf_free(&nb);
        st = cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        goto done;
    }
    unsigned char *o = (unsigned char *)nb.data;
    uint32_t head[4] = {VP_MAGIC, (uint32_t)n_embd, n_old + 1, 0};
    memcpy(o, head, VP_HEAD);
    if (n_old) memcpy(o + VP_HEAD, v.ent, (size_t)n_old * VP_ENTRY);
    unsigned char *vecs = o + VP_HEAD + ((size_t)n_old + 1) * VP_ENTRY;
    if (n_old) memcpy(vecs, v.vecs, (size_t)n_old * vb);
    vp_encode(id, x, n_embd, o + VP_HEAD + (size_t)n_old * VP_ENTRY, vecs + (size_t)n_old * vb);
    nb.len = total;
    st = put_page(s, user_id, page, &nb, is_new, err);
    cg_buf_free(&nb);
    if (!st) st = set_vpage(s, user_id, id, page, err);
done:
    cg_buf_free(&b);
    return st;
}

// The page memory id is in (-1: none).
static cg_status vpage_of(cg_store *s, int64_t user_id, int64_t id, int64_t *page, cg_err *err) {
    bool found = false;
    int64_t v = 0;
    db_val p[2] = {db_int(id), db_int(user_id)};
    // vpage IS NULL reads as "no row", so a found row always has a page.
    cg_status st = st_int(s, "SELECT vpage FROM memories WHERE id = ? AND user_id = ?"
                             " AND vpage IS NOT NULL", p, 2, &v, &found, err);
    *page = found ? v : -1;
    return st;
}

// Loads page `page` of the user into b and parses it; the memory id must be in it (else
// CG_ERR_FORMAT: memories.vpage and the page disagree). *slot = its index.
static cg_status load_with(cg_store *s, int64_t user_id, int64_t page, int64_t id, cg_buf *b,
                           vp_view *v, uint32_t *slot, cg_err *err) {
    blob_copy bc = {b, user_id, -1, false};
    db_val p[2] = {db_int(user_id), db_int(page)};
    cg_status st = s->ops->exec(s->conn,
                                "SELECT page, data FROM mem_vpack WHERE user_id = ? AND page = ?",
                                p, 2, copy_page_row, &bc, err);
    if (st) return st;
    if (!bc.found)
        return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld page=%lld: missing (memory "
                          "id=%lld names it); run cg_store_vec_rebuild", (long long)user_id,
                          (long long)page, (long long)id);
    if ((st = vp_parse(user_id, page, b->data, b->len, v, err))) return st;
    for (uint32_t i = 0; i < v->n; i++)
        if ((int64_t)cg_le64(v->ent + (size_t)i * VP_ENTRY) == id) {
            *slot = i;
            return CG_OK;
        }
    return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld page=%lld: memory id=%lld is not "
                      "in it; run cg_store_vec_rebuild", (long long)user_id, (long long)page,
                      (long long)id);
}

cg_status st_vp_remove(cg_store *s, int64_t user_id, int64_t id, cg_err *err) {
    int64_t page = -1;
    cg_status st = lock_user(s, user_id, err);
    if (!st) st = vpage_of(s, user_id, id, &page, err);
    if (st || page < 0) return st;
    cg_buf b;
    cg_buf_init(&b);
    vp_view v;
    uint32_t slot = 0;
    if ((st = load_with(s, user_id, page, id, &b, &v, &slot, err))) goto done;
    if (v.n == 1) {
        db_val p[2] = {db_int(user_id), db_int(page)};
        st = st_exec(s, "DELETE FROM mem_vpack WHERE user_id = ? AND page = ?", p, 2, err);
    } else {
        // Move the last entry into the slot, then drop the last: page order is irrelevant.
        size_t vb = 2 * (size_t)v.n_embd, last = v.n - 1;
        cg_buf nb;
        cg_buf_init(&nb);
        size_t total = VP_HEAD + (size_t)last * (VP_ENTRY + vb);
        if (!cg_buf_reserve(&nb, total)) {
            cg_buf_free(&nb);
            st = cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
            goto done;
        }
        unsigned char *o = (unsigned char *)nb.data;
        uint32_t head[4] = {VP_MAGIC, v.n_embd, (uint32_t)last, 0};
        memcpy(o, head, VP_HEAD);
        unsigned char *ent = o + VP_HEAD, *vecs = ent + last * VP_ENTRY;
        memcpy(ent, v.ent, last * VP_ENTRY);
        memcpy(vecs, v.vecs, last * vb);
        if (slot != last) {
            memcpy(ent + (size_t)slot * VP_ENTRY, v.ent + last * VP_ENTRY, VP_ENTRY);
            memcpy(vecs + (size_t)slot * vb, v.vecs + last * vb, vb);
        }
        nb.len = total;
        st = put_page(s, user_id, page, &nb, false, err);
        cg_buf_free(&nb);
    }
    if (!st) st = set_vpage(s, user_id, id, -1, err);
done:
    cg_buf_free(&b);
    return st;
}

cg_status st_vp_update(cg_store *s, int64_t user_id, int64_t id, const float *x, int n_embd,
                       cg_err *err) {
    int64_t page = -1, cur = 0;
    bool found = false;
    cg_status st = lock_user(s, user_id, err);
    if (!st) st = vpage_of(s, user_id, id, &page, err);
    if (st) return st;
    db_val p[2] = {db_int(id), db_int(user_id)};
    if ((st = st_int(s, "SELECT id FROM memories WHERE id = ? AND user_id = ?"
                        " AND superseded_by IS NULL AND valid_to_ms IS NULL",
                     p, 2, &cur, &found, err)))
        return st;
    if (!x || !found) return st_vp_remove(s, user_id, id, err);  // no vector, or not current
    if (page < 0) return st_vp_add(s, user_id, id, x, n_embd, err);
    cg_buf b;
    cg_buf_init(&b);
    vp_view v;
    uint32_t slot = 0;
    if ((st = load_with(s, user_id, page, id, &b, &v, &slot, err))) goto done;
    if (v.n_embd != (uint32_t)n_embd) {  // other dimension: move it to a page of its own kind
        if (!(st = st_vp_remove(s, user_id, id, err))) st = st_vp_add(s, user_id, id, x, n_embd, err);
        goto done;
    }
    unsigned char *base = (unsigned char *)b.data;
    size_t off_ent = (size_t)(v.ent - base), off_vec = (size_t)(v.vecs - base);
    vp_encode(id, x, n_embd, base + off_ent + (size_t)slot * VP_ENTRY,
              base + off_vec + (size_t)slot * 2 * (size_t)n_embd);
    st = put_page(s, user_id, page, &b, false, err);
done:
    cg_buf_free(&b);
    return st;
}

cg_status st_vp_drop_user(cg_store *s, int64_t user_id, cg_err *err) {
    db_val p[1] = {db_int(user_id)};
    return st_exec(s, "DELETE FROM mem_vpack WHERE user_id = ?", p, 1, err);
}

// ---- rebuild ---------------------------------------------------------------------------------


// Pages under construction for one user.
typedef struct builder {
    cg_store *s;
    int64_t user_id, page;
    uint32_t n_embd, n;
    cg_buf ent, vecs;
    idlist ids;       // ids in the current page
    float *tmp;    // aligned copy of one vector
    size_t tmp_n;
} builder;

static cg_status flush_page(builder *bd, cg_err *err) {
    if (bd->n == 0) return CG_OK;
    cg_buf pg;
    cg_buf_init(&pg);
    uint32_t head[4] = {VP_MAGIC, bd->n_embd, bd->n, 0};
    cg_buf_append(&pg, head, VP_HEAD);
    cg_buf_append(&pg, bd->ent.data, bd->ent.len);
    cg_buf_append(&pg, bd->vecs.data, bd->vecs.len);
    cg_status st = cg_buf_ok(&pg) ? put_page(bd->s, bd->user_id, bd->page, &pg, true, err)
                                  : cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
    cg_buf_free(&pg);
    cg_buf q;
    cg_buf_init(&q);
    for (size_t i = 0; !st && i < bd->ids.n; i += 200) {
        size_t m = bd->ids.n - i < 200 ? bd->ids.n - i : 200;
        db_val p[202];
        cg_buf_reset(&q);
        cg_buf_printf(&q, "UPDATE memories SET vpage = ? WHERE user_id = ? AND id IN (");
        p[0] = db_int(bd->page);
        p[1] = db_int(bd->user_id);
        for (size_t j = 0; j < m; j++) {
            cg_buf_puts(&q, j ? ", ?" : "?");
            p[j + 2] = db_int(bd->ids.v[i + j]);
        }
        cg_buf_putc(&q, ')');
        st = cg_buf_ok(&q) ? st_exec(bd->s, q.data, p, (int)m + 2, err)
                           : cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
    }
    cg_buf_free(&q);
    bd->page++;
    bd->n = 0;
    bd->ids.n = 0;
    cg_buf_reset(&bd->ent);
    cg_buf_reset(&bd->vecs);
    return st;
}

static cg_status build_row(void *user, const db_val *c, int n_cols, cg_err *err) {
    builder *bd = user;
    if (c[0].t != DB_INT) return cg_err_set(err, CG_ERR_FORMAT, "store: id is not an integer");
    // A blob that is not a float32 vector cannot be searched either way (the blob scan reports
    // it); it stays out of the pack.
    if (c[1].t != DB_BLOB || c[1].n == 0 || c[1].n % 4 || c[1].n / 4 > 4096) return CG_OK;
    uint32_t d = (uint32_t)(c[1].n / 4);
    cg_status st;
    if (bd->n && (d != bd->n_embd || bd->n >= st_vp_cap((int)bd->n_embd)) &&
        (st = flush_page(bd, err)))
        return st;
    bd->n_embd = d;
    if (bd->tmp_n < d) {
        float *t = realloc(bd->tmp, d * sizeof *t);
        if (!t) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        bd->tmp = t;
        bd->tmp_n = d;
    }
    memcpy(bd->tmp, c[1].p, c[1].n);
    for (uint32_t j = 0; j < d; j++)
        if (!isfinite(bd->tmp[j])) return CG_OK;  // not a usable vector: as above
    unsigned char e[VP_ENTRY];
    if (!cg_buf_reserve(&bd->vecs, 2 * (size_t)d))
        return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
    vp_encode(c[0].i, bd->tmp, (int)d, e, (unsigned char *)bd->vecs.data + bd->vecs.len);
    bd->vecs.len += 2 * (size_t)d;
    cg_buf_append(&bd->ent, e, VP_ENTRY);
    if (!cg_buf_ok(&bd->ent)) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
    if ((st = st_id_row(&bd->ids, c, 1, err))) return st;
    bd->n++;
    return CG_OK;
}

static cg_status rebuild_user(cg_store *s, int64_t user_id, cg_err *err) {
    builder bd = {.s = s, .user_id = user_id};
    cg_buf_init(&bd.ent);
    cg_buf_init(&bd.vecs);
    idlist cur = {0};
    cg_buf q;
    cg_buf_init(&q);
    db_val p[201];
    p[0] = db_int(user_id);
    cg_status st;
    if ((st = st_exec(s, "DELETE FROM mem_vpack WHERE user_id = ?", p, 1, err)) ||
        (st = st_exec(s, "UPDATE memories SET vpage = NULL WHERE user_id = ? AND vpage IS NOT NULL",
                      p, 1, err)) ||
        (st = s->ops->exec(s->conn,
                           "SELECT id FROM memories WHERE user_id = ? AND superseded_by IS NULL"
                           " AND valid_to_ms IS NULL AND embedding IS NOT NULL ORDER BY id",
                           p, 1, st_id_row, &cur, err)))
        goto done;
    // Blobs in id order, 200 at a time (bounded memory whatever the user's size).
    for (size_t i = 0; !st && i < cur.n; i += 200) {
        size_t m = cur.n - i < 200 ? cur.n - i : 200;
        cg_buf_reset(&q);
        cg_buf_printf(&q, "SELECT id, embedding FROM memories WHERE %s = ? AND id IN (",
                      s->ops->user_col);
        for (size_t j = 0; j < m; j++) {
            cg_buf_puts(&q, j ? ", ?" : "?");
            p[j + 1] = db_int(cur.v[i + j]);
        }
        cg_buf_puts(&q, ") ORDER BY id");
        st = cg_buf_ok(&q) ? s->ops->exec(s->conn, q.data, p, (int)m + 1, build_row, &bd, err)
                           : cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
    }
    if (!st) st = flush_page(&bd, err);
done:
    cg_buf_free(&bd.ent);
    cg_buf_free(&bd.vecs);
    free(bd.ids.v);
    free(bd.tmp);
    free(cur.v);
    cg_buf_free(&q);
    return st;
}

cg_status st_vp_rebuild(cg_store *s, int64_t user_id, cg_err *err) {
    if (user_id) return rebuild_user(s, user_id, err);
    idlist users = {0};
    cg_status st = s->ops->exec(s->conn, "SELECT id FROM users ORDER BY id", NULL, 0, st_id_row,
                                &users, err);
    for (size_t i = 0; !st && i < users.n; i++) st = rebuild_user(s, users.v[i], err);
    free(users.v);
    return st;
}

cg_status cg_store_vec_rebuild(cg_store *s, int64_t user_id, cg_err *err) {
    if (s->version < CG_STORE_VPACK_VERSION)
        return cg_err_set(err, CG_ERR_STATE, "store: schema version %d has no vector pack (needs %d)",
                          s->version, CG_STORE_VPACK_VERSION);
    cg_status st = st_begin(s, err);
    if (st) return st;
    if ((st = st_vp_rebuild(s, user_id, err))) {
        st_rollback(s);
        return st;
    }
    if ((st = st_commit(s, err))) st_rollback(s);
    return st;
}

// ---- search ----------------------------------------------------------------------------------

typedef struct cand { int64_t id; float lo, hi; } cand;

typedef struct scan_ctx {
    int64_t user_id;
    const float *q;
    int n_embd;
    float q_norm, min_cos, slack;
    cand *v;
    size_t n, cap;
    uint16_t *aligned;  // copy of a page's halves when the blob is not 2-byte aligned
    size_t aligned_n;
    size_t n_scored;
} scan_ctx;

static cg_status scan_page(void *user, const db_val *c, int n_cols, cg_err *err) {
    scan_ctx *sc = user;
    if (c[0].t != DB_INT)
        return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld: page number is not an integer",
                          (long long)sc->user_id);
    int64_t page = c[0].i;
    if (c[1].t != DB_BLOB)
        return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld page=%lld column data: not a "
                          "blob", (long long)sc->user_id, (long long)page);
    vp_view v;
    cg_status st = vp_parse(sc->user_id, page, c[1].p, c[1].n, &v, err);
    if (st) return st;
    if (v.n_embd != (uint32_t)sc->n_embd)
        return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld page=%lld: vectors of %u "
                          "dimensions, the store embeds %d", (long long)sc->user_id,
                          (long long)page, (unsigned)v.n_embd, sc->n_embd);
    const uint16_t *h = (const uint16_t *)(const void *)v.vecs;
    size_t n_half = (size_t)v.n * v.n_embd;
    if (((uintptr_t)v.vecs & 1) != 0) {
        if (sc->aligned_n < n_half) {
            uint16_t *a = realloc(sc->aligned, n_half * sizeof *a);
            if (!a) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
            sc->aligned = a;
            sc->aligned_n = n_half;
        }
        memcpy(sc->aligned, v.vecs, n_half * 2);
        h = sc->aligned;
    }
    if (sc->cap - sc->n < v.n) {
        size_t cap = sc->cap ? sc->cap : 256;
        while (cap - sc->n < v.n) cap *= 2;
        cand *nv = realloc(sc->v, cap * sizeof *nv);
        if (!nv) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        sc->v = nv;
        sc->cap = cap;
    }
    for (uint32_t i = 0; i < v.n; i++) {
        const unsigned char *e = v.ent + (size_t)i * VP_ENTRY;
        float scale = cg_lef32(e + 8), norm = cg_lef32(e + 12), resid = cg_lef32(e + 16);
        if (!(scale >= 0.0f && norm >= 0.0f && resid >= 0.0f) || !isfinite(scale) ||
            !isfinite(norm) || !isfinite(resid))
            return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld page=%lld entry %u: "
                              "scale/norm/resid %g/%g/%g invalid", (long long)sc->user_id,
                              (long long)page, (unsigned)i, scale, norm, resid);
        if (norm == 0.0f || scale == 0.0f) continue;  // cosine 0 < min_cos
        float dot = cg_vec_dot_f16(sc->q, h + (size_t)i * v.n_embd, (size_t)sc->n_embd);
        float den = sc->q_norm * norm;
        float a = scale * dot / den, e_b = resid / norm + sc->slack;
        if (!isfinite(a))
            return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld page=%lld entry %u: "
                              "non-finite score", (long long)sc->user_id, (long long)page,
                              (unsigned)i);
        sc->n_scored++;
        if (a + e_b < sc->min_cos) continue;
        sc->v[sc->n++] = (cand){(int64_t)cg_le64(e), a - e_b, a + e_b};
    }
    return CG_OK;
}

// Min-heap of floats (the `limit` largest lower bounds seen so far).
static void heap_push(float *h, size_t *n, size_t cap, float x) {
    if (*n < cap) {
        size_t i = (*n)++;
        h[i] = x;
        while (i > 0 && h[(i - 1) / 2] > h[i]) {
            float t = h[i];
            h[i] = h[(i - 1) / 2];
            h[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
        return;
    }
    if (x <= h[0]) return;
    h[0] = x;
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && h[l] < h[m]) m = l;
        if (r < *n && h[r] < h[m]) m = r;
        if (m == i) break;
        float t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

cg_status st_vp_candidates(cg_store *s, int64_t user_id, const float *q, float min_cos,
                           size_t limit, int64_t **out, size_t *n_out, size_t *n_scored,
                           cg_err *err) {
    *out = NULL;
    *n_out = 0;
    double qn2 = 0.0;
    for (int j = 0; j < s->n_embd; j++) qn2 += (double)q[j] * q[j];
    // Float rounding of the reference cosine and of the packed score: each a sum of n_embd
    // products of magnitude <= |q||x|, so a few n_embd units of 2^-24 relative to 1.
    scan_ctx sc = {.user_id = user_id, .q = q, .n_embd = s->n_embd, .q_norm = (float)sqrt(qn2),
                   .min_cos = min_cos, .slack = (float)((8.0 * s->n_embd + 64.0) * 0x1p-24)};
    float *heap = NULL;
    int64_t *ids = NULL;
    cg_status st = CG_OK;
    if (limit == 0 || sc.q_norm == 0.0f) goto done;
    db_val p[1] = {db_int(user_id)};
    if ((st = s->ops->exec(s->conn, "SELECT page, data FROM mem_vpack WHERE user_id = ?", p, 1,
                           scan_page, &sc, err)))
        goto done;
    // Anything whose upper bound is below the limit-th best lower bound cannot be in the top.
    float cut = -INFINITY;
    if (sc.n > limit) {
        if (!(heap = malloc(limit * sizeof *heap))) {
            st = cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
            goto done;
        }
        size_t nh = 0;
        for (size_t i = 0; i < sc.n; i++) heap_push(heap, &nh, limit, sc.v[i].lo);
        cut = heap[0];
    }
    if (!(ids = malloc((sc.n + 1) * sizeof *ids))) {
        st = cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        goto done;
    }
    size_t m = 0;
    for (size_t i = 0; i < sc.n; i++)
        if (sc.v[i].hi >= cut) ids[m++] = sc.v[i].id;
    *out = ids;
    *n_out = m;
    ids = NULL;
done:
    if (n_scored) *n_scored = sc.n_scored;
    free(ids);
    free(heap);
    free(sc.v);
    free(sc.aligned);
    return st;
}
