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
// With a page cache (cg_store_opts.vec_cache_bytes, schema v5) the decoded pages of recently
// searched users stay in process, validated on every search by the page generations in mem_vgen
// that triggers keep (see "search" below), with an int8 first pass in front of the f16 bound.
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
//
// A page is scored from its decoded form (vc_page): ids, per-entry scale/norm/resid and the
// halves in one contiguous aligned array. The cache (vp_cache) keeps decoded pages of recently
// searched users between searches; without it (or for a user above the cache's limit) each
// page row is decoded into a scratch vc_page and scored as it arrives.
//
// Cache validation (schema v5, mem_vgen; triggers in the drivers' migrations bump it with
// every change of a mem_vpack row, in the writer's transaction): each search first reads the
// user's generation (mem_vgen row (user, -1)). Equal to the one the cached copy was built
// at: no page changed since, the cached pages are the database's. Different: the user's page
// generations are listed and only pages whose generation differs are read again, each in the
// same statement as its generation, so a page's bytes and the number it is labelled with come
// from one snapshot. The user's label is the generation read *before* the list, so a change
// committed while refreshing makes the next search refresh again. No row: the user has no
// pages, or they were written without the triggers — the pages are read directly.

// A cached page also carries an int8 copy of every vector, scored first: half the bytes of the
// halves to stream through memory per search (the packed stage is bound by memory bandwidth).
// It is y = scale*h requantised as y ~ s8*x8 (s8 = max|y|/127) with its own exact error,
// resid8 = resid + |y - s8*x8| (rounded up), so |cos_ref - s8*dot(q, x8)/(|q||x|)| <=
// resid8/|x| + slack. Only an entry whose int8 upper bound reaches min_cos and the current
// `limit`-th best lower bound is scored again from its halves — entries it drops are below
// `limit` others for certain, so the candidates still contain the exact top.
typedef struct vc_page {
    int64_t page, gen;
    uint32_t n;
    int64_t *ids;    // n
    float *meta;     // n x {scale, norm, resid}
    float *meta8;    // n x {s8, resid8}; NULL: no int8 copy (a scratch page of a direct read)
    const uint16_t *h;  // n x n_embd halves: 32-byte aligned in mem, or (a direct read's scratch
                        // page) the blob's own bytes when those are 2-byte aligned
    int8_t *x8;      // n x n_embd, 32-byte aligned; NULL with meta8
    void *mem;       // the one allocation holding the arrays
    size_t bytes;    // bytes charged to the cache for this page
} vc_page;

typedef struct vc_user {
    int64_t user_id, gen;
    uint64_t used;    // LRU stamp
    vc_page *pages;   // sorted by page
    size_t n_pages;
    size_t bytes;
} vc_user;

struct vp_cache {
    size_t limit, bytes;
    uint64_t tick;
    vc_user *users;
    size_t n_users, cap_users;
    cg_vec_cache_stats stats;
};

static void vc_page_free(vc_page *p) {
    free(p->mem);
    p->mem = NULL;
}

static void vc_user_free(vc_user *u) {
    for (size_t i = 0; i < u->n_pages; i++) vc_page_free(&u->pages[i]);
    free(u->pages);
    u->pages = NULL;
    u->n_pages = 0;
    u->bytes = 0;
}

cg_status st_vp_cache_new(size_t limit_bytes, struct vp_cache **out, cg_err *err) {
    *out = NULL;
    if (limit_bytes == 0) return cg_err_set(err, CG_ERR_INVALID, "store: vector cache of 0 bytes");
    struct vp_cache *c = calloc(1, sizeof *c);
    if (!c) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
    c->limit = limit_bytes;
    *out = c;
    return CG_OK;
}

void st_vp_cache_free(struct vp_cache *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_users; i++) vc_user_free(&c->users[i]);
    free(c->users);
    free(c);
}

void cg_store_vec_cache_stats(const cg_store *s, cg_vec_cache_stats *out) {
    *out = (cg_vec_cache_stats){0};
    if (!s->vcache) return;
    *out = s->vcache->stats;
    out->bytes = s->vcache->bytes;
    out->limit = s->vcache->limit;
    out->users = s->vcache->n_users;
}

// Removes user slot i from the cache (freeing its pages).
static void vc_drop(struct vp_cache *c, size_t i) {
    c->bytes -= c->users[i].bytes;
    vc_user_free(&c->users[i]);
    c->users[i] = c->users[--c->n_users];
}

static size_t vc_find(const struct vp_cache *c, int64_t user_id) {
    for (size_t i = 0; i < c->n_users; i++)
        if (c->users[i].user_id == user_id) return i;
    return SIZE_MAX;
}

// Decodes and validates a page blob into pg (allocating pg->mem; pg->page and pg->gen set by
// the caller). The messages are the ones search has always given for a broken page.
// The int8 copy of entry i of pg (see vc_page), from its halves (vec.h: cg_vec_quant8).
static void vc_quant8(vc_page *pg, uint32_t i, size_t d) {
    int8_t *x8 = pg->x8 + (size_t)i * d;
    double r2 = 0.0;
    float s8 = cg_vec_quant8(pg->h + (size_t)i * d, pg->meta[3 * i], d, x8, &r2);
    if (!isfinite(s8)) {  // a broken half: the int8 score is NaN, reported as the f16 one is
        memset(x8, 0, d);
        pg->meta8[2 * i] = NAN;
        pg->meta8[2 * i + 1] = 0.0f;
        return;
    }
    pg->meta8[2 * i] = s8;
    pg->meta8[2 * i + 1] = (float)(((double)pg->meta[3 * i + 2] + sqrt(r2)) * (1.0 + 1e-6));
}

static cg_status vc_decode(int64_t user_id, int64_t page, const db_val *data, int n_embd,
                           bool with_i8, vc_page *pg, cg_err *err) {
    if (data->t != DB_BLOB)
        return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld page=%lld column data: not a "
                          "blob", (long long)user_id, (long long)page);
    vp_view v;
    cg_status st = vp_parse(user_id, page, data->p, data->n, &v, err);
    if (st) return st;
    if (v.n_embd != (uint32_t)n_embd)
        return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld page=%lld: vectors of %u "
                          "dimensions, the store embeds %d", (long long)user_id,
                          (long long)page, (unsigned)v.n_embd, n_embd);
    // ids, meta, then halves at a 32-byte boundary; sizes bounded by VP_MAX_N x 4096. A direct
    // read (no int8 copy) scores the blob's halves in place when they are 2-byte aligned.
    bool in_place = !with_i8 && ((uintptr_t)v.vecs & 1) == 0;
    size_t n = v.n, d = (size_t)n_embd, off_meta = n * 8, off_meta8 = off_meta + n * 12;
    size_t off_h = (off_meta8 + (with_i8 ? n * 8 : 0) + 31) & ~(size_t)31;
    size_t off_x8 = (off_h + (in_place ? 0 : n * d * 2) + 31) & ~(size_t)31;
    size_t total = off_x8 + (with_i8 ? n * d : 0) + 32;
    unsigned char *mem = aligned_alloc(32, (total + 31) & ~(size_t)31);
    if (!mem) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
    pg->mem = mem;
    pg->n = v.n;
    pg->ids = (int64_t *)(void *)mem;
    pg->meta = (float *)(void *)(mem + off_meta);
    pg->h = in_place ? (const uint16_t *)(const void *)v.vecs : (uint16_t *)(void *)(mem + off_h);
    pg->meta8 = with_i8 ? (float *)(void *)(mem + off_meta8) : NULL;
    pg->x8 = with_i8 ? (int8_t *)(void *)(mem + off_x8) : NULL;
    pg->bytes = total + sizeof *pg;
    for (uint32_t i = 0; i < v.n; i++) {
        const unsigned char *e = v.ent + (size_t)i * VP_ENTRY;
        float scale = cg_lef32(e + 8), norm = cg_lef32(e + 12), resid = cg_lef32(e + 16);
        if (!(scale >= 0.0f && norm >= 0.0f && resid >= 0.0f) || !isfinite(scale) ||
            !isfinite(norm) || !isfinite(resid)) {
            vc_page_free(pg);
            return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld page=%lld entry %u: "
                              "scale/norm/resid %g/%g/%g invalid", (long long)user_id,
                              (long long)page, (unsigned)i, scale, norm, resid);
        }
        pg->ids[i] = (int64_t)cg_le64(e);
        pg->meta[3 * i] = scale;
        pg->meta[3 * i + 1] = norm;
        pg->meta[3 * i + 2] = resid;
    }
    if (!in_place) memcpy(mem + off_h, v.vecs, n * d * 2);
    if (with_i8)
        for (uint32_t i = 0; i < v.n; i++) vc_quant8(pg, i, d);
    return CG_OK;
}

typedef struct cand { int64_t id; float lo, hi; } cand;

typedef struct scan_ctx {
    int64_t user_id;
    const float *q;
    int n_embd;
    float q_norm, min_cos, slack;
    cand *v;
    size_t n, cap;
    float *heap;         // the `limit` largest lower bounds so far (min-heap)
    size_t n_heap, limit;
    size_t n_scored, n_rescored;  // entries scored; of them, scored again from the halves
} scan_ctx;

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

// Scores every entry of one decoded page. An entry is kept when its upper bound reaches
// min_cos and the `limit`-th largest lower bound so far (that threshold only rises, so what it
// drops the final cut in st_vp_candidates would drop too).
static cg_status score_page(scan_ctx *sc, const vc_page *pg, cg_err *err) {
    if (sc->cap - sc->n < pg->n) {
        size_t cap = sc->cap ? sc->cap : 256;
        while (cap - sc->n < pg->n) cap *= 2;
        cand *nv = realloc(sc->v, cap * sizeof *nv);
        if (!nv) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        sc->v = nv;
        sc->cap = cap;
    }
    size_t d = (size_t)sc->n_embd;
    for (uint32_t i = 0; i < pg->n; i++) {
        float scale = pg->meta[3 * i], norm = pg->meta[3 * i + 1], resid = pg->meta[3 * i + 2];
        if (norm == 0.0f || scale == 0.0f) continue;  // cosine 0 < min_cos
        float den = sc->q_norm * norm;
        if (pg->x8) {  // the int8 pass first (see vc_page)
            float d8 = cg_vec_dot_i8(sc->q, pg->x8 + (size_t)i * d, d);
            float a8 = pg->meta8[2 * i] * d8 / den, hi8 = a8 + pg->meta8[2 * i + 1] / norm + sc->slack;
            if (!isfinite(a8))
                return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld page=%lld entry %u: "
                                  "non-finite score", (long long)sc->user_id, (long long)pg->page,
                                  (unsigned)i);
            if (hi8 < sc->min_cos || (sc->n_heap == sc->limit && hi8 < sc->heap[0])) {
                sc->n_scored++;
                continue;
            }
            sc->n_rescored++;
        }
        float dot = cg_vec_dot_f16(sc->q, pg->h + (size_t)i * d, d);
        float a = scale * dot / den, e_b = resid / norm + sc->slack;
        if (!isfinite(a))
            return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld page=%lld entry %u: "
                              "non-finite score", (long long)sc->user_id, (long long)pg->page,
                              (unsigned)i);
        sc->n_scored++;
        float lo = a - e_b, hi = a + e_b;
        if (hi < sc->min_cos) continue;
        if (sc->n_heap == sc->limit && hi < sc->heap[0]) continue;
        heap_push(sc->heap, &sc->n_heap, sc->limit, lo);
        sc->v[sc->n++] = (cand){pg->ids[i], lo, hi};
    }
    return CG_OK;
}

// Row callback of the direct read: decode into a scratch page, score, free.
static cg_status scan_row(void *user, const db_val *c, int n_cols, cg_err *err) {
    scan_ctx *sc = user;
    if (c[0].t != DB_INT)
        return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld: page number is not an integer",
                          (long long)sc->user_id);
    vc_page pg = {.page = c[0].i};
    cg_status st = vc_decode(sc->user_id, pg.page, &c[1], sc->n_embd, false, &pg, err);
    if (!st) st = score_page(sc, &pg, err);
    vc_page_free(&pg);
    return st;
}

// ---- cache refresh ---------------------------------------------------------------------------

typedef struct gen_list { int64_t *page, *gen; size_t n, cap; } gen_list;

static cg_status gen_row(void *user, const db_val *c, int n_cols, cg_err *err) {
    gen_list *g = user;
    if (c[0].t != DB_INT || c[1].t != DB_INT)
        return cg_err_set(err, CG_ERR_FORMAT, "mem_vgen: page or gen is not an integer");
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        int64_t *p = realloc(g->page, cap * sizeof *p);
        if (!p) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        g->page = p;
        int64_t *q = realloc(g->gen, cap * sizeof *q);
        if (!q) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        g->gen = q;
        g->cap = cap;
    }
    g->page[g->n] = c[0].i;
    g->gen[g->n++] = c[1].i;
    return CG_OK;
}

// The refresh in progress: the new page array (in the order of the generation list), with
// mem == NULL for the slots still to read.
typedef struct refresh {
    int64_t user_id;
    int n_embd;
    vc_page *pages;
    size_t n;
    size_t n_read;
} refresh;

static int cmp_page_no(const void *a, const void *b) {
    int64_t x = ((const vc_page *)a)->page, y = ((const vc_page *)b)->page;
    return x < y ? -1 : x > y;
}

static cg_status refresh_row(void *user, const db_val *c, int n_cols, cg_err *err) {
    refresh *r = user;
    if (c[0].t != DB_INT || c[1].t != DB_INT)
        return cg_err_set(err, CG_ERR_FORMAT, "mem_vpack user=%lld: page or gen is not an "
                          "integer", (long long)r->user_id);
    vc_page key = {.page = c[0].i};
    vc_page *pg = bsearch(&key, r->pages, r->n, sizeof *r->pages, cmp_page_no);
    if (!pg || pg->mem) return CG_OK;  // created after the list was read, or not wanted
    cg_status st = vc_decode(r->user_id, pg->page, &c[2], r->n_embd, true, pg, err);
    if (st) return st;
    pg->gen = c[1].i;  // the generation of these very bytes (same statement)
    r->n_read++;
    return CG_OK;
}

// Upper bound of the bytes of a user's n_pages decoded pages (sizing before any read).
static size_t vc_page_bound(int n_embd) {
    size_t cap = st_vp_cap(n_embd);
    return cap * (28 + 3 * (size_t)n_embd) + 128 + sizeof(vc_page);
}

// Brings slot u (user_id set, possibly with old pages) up to generation `gen` of the database.
// On error the slot's pages are freed (the caller drops it).
static cg_status vc_refresh(cg_store *s, vc_user *u, int64_t gen, cg_err *err) {
    gen_list gl = {0};
    refresh r = {.user_id = u->user_id, .n_embd = s->n_embd};
    cg_buf q;
    cg_buf_init(&q);
    db_val p[201];
    p[0] = db_int(u->user_id);
    cg_status st = s->ops->exec(s->conn, "SELECT page, gen FROM mem_vgen WHERE user_id = ?"
                                " AND page >= 0 ORDER BY page", p, 1, gen_row, &gl, err);
    if (st) goto done;
    if (!(r.pages = calloc(gl.n + 1, sizeof *r.pages))) {
        st = cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        goto done;
    }
    // Keep every old page whose generation is unchanged; the rest is to read.
    size_t n_need = 0, j = 0;
    for (size_t i = 0; i < gl.n; i++) {
        vc_page *pg = &r.pages[r.n++];
        pg->page = gl.page[i];
        pg->gen = gl.gen[i];
        while (j < u->n_pages && u->pages[j].page < pg->page) j++;
        if (j < u->n_pages && u->pages[j].page == pg->page && u->pages[j].gen == pg->gen) {
            *pg = u->pages[j];
            u->pages[j].mem = NULL;  // moved
        } else {
            n_need++;
        }
    }
    if (n_need * 2 > gl.n) {  // most of them: one range read of the user's pages
        st = s->ops->exec(s->conn,
                          "SELECT v.page, g.gen, v.data FROM mem_vpack v JOIN mem_vgen g"
                          " ON g.user_id = v.user_id AND g.page = v.page WHERE v.user_id = ?",
                          p, 1, refresh_row, &r, err);
    } else {
        size_t i = 0;
        while (!st && i < r.n) {
            size_t m = 0;
            cg_buf_reset(&q);
            cg_buf_puts(&q, "SELECT v.page, g.gen, v.data FROM mem_vpack v JOIN mem_vgen g"
                            " ON g.user_id = v.user_id AND g.page = v.page"
                            " WHERE v.user_id = ? AND v.page IN (");
            for (; i < r.n && m < 200; i++)
                if (!r.pages[i].mem) {
                    cg_buf_puts(&q, m ? ", ?" : "?");
                    p[++m] = db_int(r.pages[i].page);
                }
            if (!m) break;
            cg_buf_putc(&q, ')');
            st = cg_buf_ok(&q) ? s->ops->exec(s->conn, q.data, p, (int)m + 1, refresh_row, &r, err)
                               : cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        }
    }
    if (st) goto done;
    // Pages listed but gone by the time of the read (deleted meanwhile) are left out.
    size_t k = 0, bytes = 0;
    for (size_t i = 0; i < r.n; i++)
        if (r.pages[i].mem) {
            bytes += r.pages[i].bytes;
            r.pages[k++] = r.pages[i];
        }
    vc_user_free(u);
    u->pages = r.pages;
    u->n_pages = k;
    u->bytes = bytes + sizeof *u;
    u->gen = gen;
    r.pages = NULL;
    s->vcache->stats.pages_read += r.n_read;
done:
    if (r.pages) {
        for (size_t i = 0; i < r.n; i++) vc_page_free(&r.pages[i]);
        free(r.pages);
        vc_user_free(u);
    }
    free(gl.page);
    free(gl.gen);
    cg_buf_free(&q);
    return st;
}

// Scores the user's pages from the cache, validating and refreshing it first. *used = false
// when the cache cannot serve this user (no generation row, or larger than the limit): the
// caller reads the pages directly.
static cg_status vc_scan(cg_store *s, scan_ctx *sc, bool *used, cg_err *err) {
    struct vp_cache *c = s->vcache;
    *used = false;
    int64_t gen = 0, n_pages = 0;
    bool found = false;
    db_val p[1] = {db_int(sc->user_id)};
    cg_status st = st_int(s, "SELECT gen FROM mem_vgen WHERE user_id = ? AND page = -1", p, 1,
                          &gen, &found, err);
    if (st) return st;
    size_t i = vc_find(c, sc->user_id);
    if (!found) {  // no pages, or pages written without generations: read them directly
        if (i != SIZE_MAX) vc_drop(c, i);
        return CG_OK;
    }
    if (i == SIZE_MAX || c->users[i].gen != gen) {
        // Would the user fit at all? (An upper bound from the page count, before reading.)
        if ((st = st_int(s, "SELECT count(*) FROM mem_vgen WHERE user_id = ? AND page >= 0", p,
                         1, &n_pages, NULL, err)))
            return st;
        if (c->limit <= sizeof(vc_user) ||
            (size_t)n_pages > (c->limit - sizeof(vc_user)) / vc_page_bound(sc->n_embd)) {
            if (i != SIZE_MAX) vc_drop(c, i);
            return CG_OK;
        }
        if (i == SIZE_MAX) {
            if (c->n_users == c->cap_users) {
                size_t cap = c->cap_users ? c->cap_users * 2 : 8;
                vc_user *nu = realloc(c->users, cap * sizeof *nu);
                if (!nu) return cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
                c->users = nu;
                c->cap_users = cap;
            }
            i = c->n_users++;
            c->users[i] = (vc_user){.user_id = sc->user_id, .gen = gen - 1};
        }
        vc_user *u = &c->users[i];
        c->bytes -= u->bytes;
        u->bytes = 0;
        if ((st = vc_refresh(s, u, gen, err))) {
            vc_user_free(u);
            c->users[i] = c->users[--c->n_users];
            return st;
        }
        c->bytes += u->bytes;
        c->stats.loads++;
        // Least recently searched users out until the cache is within its bound.
        while (c->bytes > c->limit && c->n_users > 1) {
            size_t lru = SIZE_MAX;
            for (size_t k = 0; k < c->n_users; k++)
                if (k != i && (lru == SIZE_MAX || c->users[k].used < c->users[lru].used)) lru = k;
            int64_t keep = sc->user_id;
            vc_drop(c, lru);
            c->stats.evictions++;
            i = vc_find(c, keep);
        }
    } else {
        c->stats.hits++;
    }
    vc_user *u = &c->users[i];
    u->used = ++c->tick;
    *used = true;
    for (size_t k = 0; k < u->n_pages; k++)
        if ((st = score_page(sc, &u->pages[k], err))) return st;
    if (c->bytes > c->limit) vc_drop(c, i);  // larger than the estimate: scored, not kept
    return CG_OK;
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
                   .min_cos = min_cos, .slack = (float)((8.0 * s->n_embd + 64.0) * 0x1p-24),
                   .limit = limit};
    int64_t *ids = NULL;
    cg_status st = CG_OK;
    if (limit == 0 || sc.q_norm == 0.0f) goto done;
    if (!(sc.heap = malloc(limit * sizeof *sc.heap))) {
        st = cg_err_set(err, CG_ERR_NOMEM, "store: out of memory");
        goto done;
    }
    bool cached = false;
    if (s->vcache && s->version >= CG_STORE_VGEN_VERSION &&
        (st = vc_scan(s, &sc, &cached, err)))
        goto done;
    if (!cached) {
        if (s->vcache) s->vcache->stats.bypass++;
        db_val p[1] = {db_int(user_id)};
        if ((st = s->ops->exec(s->conn, "SELECT page, data FROM mem_vpack WHERE user_id = ?", p,
                               1, scan_row, &sc, err)))
            goto done;
    }
    // Anything whose upper bound is below the limit-th best lower bound cannot be in the top.
    float cut = sc.n_heap == limit ? sc.heap[0] : -INFINITY;
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
    if (s->vcache) {
        s->vcache->stats.reranked += m;
        s->vcache->stats.rescored += sc.n_rescored;
    }
done:
    if (n_scored) *n_scored = sc.n_scored;
    free(ids);
    free(sc.heap);
    free(sc.v);
    return st;
}
