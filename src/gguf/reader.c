// reader.c — the GGUF reader: parses and validates the whole header at open, then serves lookups.
//
// Every read goes through a cursor that knows how many bytes remain; every count or length read
// from the file is checked against the remaining bytes (and a cap) before it is used to allocate or
// to advance. Sizes are computed with the overflow-checked helpers of base/num.h.
#include "gguf/gguf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/mmap.h"
#include "base/num.h"
#include "base/utf8.h"
#include "quant/quant.h"

struct cg_gguf {
    cg_mmap map;                 // owned mapping (cg_gguf_open); zeroed for cg_gguf_open_mem
    const unsigned char *data;   // the file bytes (map.data or the borrowed buffer)
    uint64_t size;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    size_t n_kv;
    cg_gguf_kv *kvs;             // n_kv entries, file order
    size_t n_tensors;
    cg_gguf_tensor *tensors;     // n_tensors entries, file order
    uint32_t *kv_hash;           // open addressing: index + 1, 0 = empty; kv_hash_cap slots
    size_t kv_hash_cap;
    uint32_t *tn_hash;
    size_t tn_hash_cap;
    cg_arena arena;              // key and name copies, string-array offset tables
};

// ---- type facts -----------------------------------------------------------------------------

static const char *const TYPE_NAMES[CG_GGUF_TYPE_COUNT] = {
    "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
    "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64",
};
static const unsigned char TYPE_SIZES[CG_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *cg_gguf_type_name(cg_gguf_type t) {
    return (unsigned)t < CG_GGUF_TYPE_COUNT ? TYPE_NAMES[t] : "UNKNOWN";
}

size_t cg_gguf_type_size(cg_gguf_type t) { return (unsigned)t < CG_GGUF_TYPE_COUNT ? TYPE_SIZES[t] : 0; }

bool cg_gguf_type_is_int(cg_gguf_type t) {
    switch (t) {
    case CG_GGUF_TYPE_UINT8: case CG_GGUF_TYPE_INT8: case CG_GGUF_TYPE_UINT16: case CG_GGUF_TYPE_INT16:
    case CG_GGUF_TYPE_UINT32: case CG_GGUF_TYPE_INT32: case CG_GGUF_TYPE_UINT64: case CG_GGUF_TYPE_INT64:
        return true;
    default:
        return false;
    }
}

// ---- hashing --------------------------------------------------------------------------------

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;   // FNV-1a
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

// Capacity: a power of two ≥ 2n (n ≤ 2^20, so this cannot overflow).
static size_t hash_cap(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    return cap;
}

// ---- the parse cursor -----------------------------------------------------------------------

// Where the parser is, for messages: "kv 3 ('general.name')" or "tensor info 7 ('output.weight')".
typedef struct parser {
    cg_gguf *g;
    const unsigned char *d;
    uint64_t size, pos;
    cg_err *err;
    char where[160];
} parser;

static void set_where_kv(parser *ps, size_t i, const char *key) {
    if (key)
        snprintf(ps->where, sizeof ps->where, "kv %zu ('%.100s')", i, key);
    else
        snprintf(ps->where, sizeof ps->where, "kv %zu", i);
}

static void set_where_tensor(parser *ps, size_t i, const char *name) {
    if (name)
        snprintf(ps->where, sizeof ps->where, "tensor info %zu ('%.100s')", i, name);
    else
        snprintf(ps->where, sizeof ps->where, "tensor info %zu", i);
}

static uint64_t left(const parser *ps) { return ps->size - ps->pos; }

// Fails unless n more bytes are available for `field`.
static cg_status need(parser *ps, uint64_t n, const char *field) {
    if (left(ps) >= n) return CG_OK;
    return cg_err_set(ps->err, CG_ERR_FORMAT,
                      "gguf: truncated file: %s: %s at offset %" PRIu64 " needs %" PRIu64 " bytes, %" PRIu64
                      " left (file size %" PRIu64 ")",
                      ps->where, field, ps->pos, n, left(ps), ps->size);
}

static cg_status rd_u32(parser *ps, const char *field, uint32_t *v) {
    cg_status st = need(ps, 4, field);
    if (st) return st;
    *v = cg_le32(ps->d + ps->pos);
    ps->pos += 4;
    return CG_OK;
}

static cg_status rd_u64(parser *ps, const char *field, uint64_t *v) {
    cg_status st = need(ps, 8, field);
    if (st) return st;
    *v = cg_le64(ps->d + ps->pos);
    ps->pos += 8;
    return CG_OK;
}

// A string: u64 length then bytes. `what` is "key", "string value", "tensor name" …; the length is
// checked against `cap` (CG_ERR_LIMIT) and the remaining bytes (CG_ERR_FORMAT).
static cg_status rd_str(parser *ps, const char *what, uint64_t cap, cg_gguf_str *out) {
    char field[64];
    snprintf(field, sizeof field, "%s length", what);
    uint64_t at = ps->pos, n;
    cg_status st = rd_u64(ps, field, &n);
    if (st) return st;
    if (n > cap)
        return cg_err_set(ps->err, CG_ERR_LIMIT,
                          "gguf: %s: %s length %" PRIu64 " at offset %" PRIu64 " is above the limit %" PRIu64,
                          ps->where, what, n, at, cap);
    snprintf(field, sizeof field, "%s bytes", what);
    if ((st = need(ps, n, field))) return st;
    out->p = (const char *)ps->d + ps->pos;
    out->n = (size_t)n;
    ps->pos += n;
    return CG_OK;
}

// Keys and tensor names: non-empty, valid UTF-8, no NUL. Copied NUL-terminated into the arena.
static cg_status check_name(parser *ps, const char *what, cg_gguf_str s, uint64_t at, const char **copy) {
    if (s.n == 0)
        return cg_err_set(ps->err, CG_ERR_FORMAT, "gguf: %s: empty %s at offset %" PRIu64, ps->where, what, at);
    size_t bad;
    if (!cg_utf8_valid(s.p, s.n, &bad))
        return cg_err_set(ps->err, CG_ERR_FORMAT, "gguf: %s: %s is not valid UTF-8 (byte %zu, offset %" PRIu64 ")",
                          ps->where, what, bad, at + 8 + bad);
    const char *nul = memchr(s.p, 0, s.n);
    if (nul)
        return cg_err_set(ps->err, CG_ERR_FORMAT, "gguf: %s: %s contains a NUL byte at offset %" PRIu64, ps->where,
                          what, at + 8 + (uint64_t)(nul - s.p));
    *copy = cg_arena_strndup(&ps->g->arena, s.p, s.n);
    if (!*copy) return cg_err_set(ps->err, CG_ERR_NOMEM, "gguf: out of memory");
    return CG_OK;
}

// ---- metadata -------------------------------------------------------------------------------

static cg_status check_bools(parser *ps, const unsigned char *p, uint64_t n, uint64_t at) {
    for (uint64_t i = 0; i < n; i++)
        if (p[i] > 1)
            return cg_err_set(ps->err, CG_ERR_FORMAT,
                              "gguf: %s: bool value %u at offset %" PRIu64 " is not 0 or 1", ps->where, p[i], at + i);
    return CG_OK;
}

static cg_status parse_value(parser *ps, cg_gguf_kv *kv) {
    cg_status st;
    uint32_t t;
    uint64_t at = ps->pos;
    if ((st = rd_u32(ps, "value type", &t))) return st;
    if (t >= CG_GGUF_TYPE_COUNT)
        return cg_err_set(ps->err, CG_ERR_FORMAT, "gguf: %s: unknown value type %" PRIu32 " at offset %" PRIu64,
                          ps->where, t, at);
    kv->type = kv->elem_type = (cg_gguf_type)t;
    kv->n = 1;
    if (t == CG_GGUF_TYPE_STRING) {
        cg_gguf_str s;
        if ((st = rd_str(ps, "string value", CG_GGUF_MAX_STRING_LEN, &s))) return st;
        kv->raw = (const unsigned char *)s.p;
        kv->raw_size = s.n;
        return CG_OK;
    }
    if (t != CG_GGUF_TYPE_ARRAY) {
        size_t sz = TYPE_SIZES[t];
        at = ps->pos;
        if ((st = need(ps, sz, "value"))) return st;
        kv->raw = ps->d + ps->pos;
        kv->raw_size = sz;
        if (t == CG_GGUF_TYPE_BOOL && (st = check_bools(ps, kv->raw, 1, at))) return st;
        ps->pos += sz;
        return CG_OK;
    }
    // Array: element type, count, payload.
    uint32_t et;
    at = ps->pos;
    if ((st = rd_u32(ps, "array element type", &et))) return st;
    if (et == CG_GGUF_TYPE_ARRAY)
        return cg_err_set(ps->err, CG_ERR_FORMAT,
                          "gguf: %s: nested array (array of arrays) at offset %" PRIu64 " is not supported",
                          ps->where, at);
    if (et >= CG_GGUF_TYPE_COUNT)
        return cg_err_set(ps->err, CG_ERR_FORMAT,
                          "gguf: %s: unknown array element type %" PRIu32 " at offset %" PRIu64, ps->where, et, at);
    kv->elem_type = (cg_gguf_type)et;
    uint64_t n;
    at = ps->pos;
    if ((st = rd_u64(ps, "array length", &n))) return st;
    if (n > CG_GGUF_MAX_ARRAY_LEN)
        return cg_err_set(ps->err, CG_ERR_LIMIT,
                          "gguf: %s: array length %" PRIu64 " at offset %" PRIu64 " is above the limit %" PRIu64,
                          ps->where, n, at, CG_GGUF_MAX_ARRAY_LEN);
    kv->n = n;
    kv->raw = ps->d + ps->pos;
    uint64_t start = ps->pos;
    if (et != CG_GGUF_TYPE_STRING) {
        uint64_t bytes = n * TYPE_SIZES[et];   // n ≤ 2^30, size ≤ 8: no overflow
        if (bytes > left(ps))
            return cg_err_set(ps->err, CG_ERR_FORMAT,
                              "gguf: truncated file: %s: array of %" PRIu64 " %s at offset %" PRIu64 " needs %" PRIu64
                              " bytes, %" PRIu64 " left",
                              ps->where, n, TYPE_NAMES[et], start, bytes, left(ps));
        if (et == CG_GGUF_TYPE_BOOL && (st = check_bools(ps, kv->raw, n, start))) return st;
        ps->pos += bytes;
        kv->raw_size = bytes;
        return CG_OK;
    }
    // String array: each element needs at least its 8-byte length, so n*8 must fit before we
    // allocate the offset table.
    if (n * 8 > left(ps))
        return cg_err_set(ps->err, CG_ERR_FORMAT,
                          "gguf: truncated file: %s: array of %" PRIu64 " strings at offset %" PRIu64
                          " needs at least %" PRIu64 " bytes, %" PRIu64 " left",
                          ps->where, n, start, n * 8, left(ps));
    uint64_t *off = NULL;
    if (n > 0) {
        off = cg_arena_alloc(&ps->g->arena, (size_t)n * sizeof *off, 8);
        if (!off) return cg_err_set(ps->err, CG_ERR_NOMEM, "gguf: out of memory for %" PRIu64 " strings", n);
    }
    for (uint64_t i = 0; i < n; i++) {
        off[i] = ps->pos - start;
        char what[48];
        snprintf(what, sizeof what, "string element %" PRIu64, i);
        cg_gguf_str s;
        if ((st = rd_str(ps, what, CG_GGUF_MAX_STRING_LEN, &s))) return st;
    }
    kv->str_off = off;
    kv->raw_size = ps->pos - start;
    return CG_OK;
}

static const cg_gguf_kv *kv_lookup(const cg_gguf *g, const char *key, size_t n) {
    if (!g || !g->kv_hash) return NULL;
    size_t mask = g->kv_hash_cap - 1;
    for (size_t h = (size_t)hash_bytes(key, n) & mask;; h = (h + 1) & mask) {
        uint32_t slot = g->kv_hash[h];
        if (!slot) return NULL;
        const cg_gguf_kv *kv = &g->kvs[slot - 1];
        if (kv->key_len == n && memcmp(kv->key, key, n) == 0) return kv;
    }
}

static const cg_gguf_tensor *tensor_lookup(const cg_gguf *g, const char *name, size_t n) {
    if (!g || !g->tn_hash) return NULL;
    size_t mask = g->tn_hash_cap - 1;
    for (size_t h = (size_t)hash_bytes(name, n) & mask;; h = (h + 1) & mask) {
        uint32_t slot = g->tn_hash[h];
        if (!slot) return NULL;
        const cg_gguf_tensor *t = &g->tensors[slot - 1];
        if (t->name_len == n && memcmp(t->name, name, n) == 0) return t;
    }
}

static cg_status parse_kvs(parser *ps, uint64_t n_kv) {
    cg_gguf *g = ps->g;
    cg_status st;
    g->kv_hash_cap = hash_cap((size_t)n_kv);
    g->kv_hash = calloc(g->kv_hash_cap, sizeof *g->kv_hash);
    g->kvs = n_kv ? calloc((size_t)n_kv, sizeof *g->kvs) : NULL;
    if (!g->kv_hash || (n_kv && !g->kvs)) return cg_err_set(ps->err, CG_ERR_NOMEM, "gguf: out of memory");
    for (size_t i = 0; i < n_kv; i++) {
        cg_gguf_kv *kv = &g->kvs[i];
        set_where_kv(ps, i, NULL);
        kv->offset = ps->pos;
        cg_gguf_str key;
        if ((st = rd_str(ps, "key", CG_GGUF_MAX_KEY_LEN, &key))) return st;
        if ((st = check_name(ps, "key", key, kv->offset, &kv->key))) return st;
        kv->key_len = key.n;
        set_where_kv(ps, i, kv->key);
        if (kv_lookup(g, kv->key, kv->key_len))
            return cg_err_set(ps->err, CG_ERR_FORMAT, "gguf: %s: duplicate key '%.200s' at offset %" PRIu64,
                              ps->where, kv->key, kv->offset);
        if ((st = parse_value(ps, kv))) return st;
        size_t mask = g->kv_hash_cap - 1, h = (size_t)hash_bytes(kv->key, kv->key_len) & mask;
        while (g->kv_hash[h]) h = (h + 1) & mask;
        g->kv_hash[h] = (uint32_t)(i + 1);
        g->n_kv = i + 1;
    }
    return CG_OK;
}

static cg_status read_alignment(parser *ps) {
    cg_gguf *g = ps->g;
    g->alignment = CG_GGUF_DEFAULT_ALIGNMENT;
    const cg_gguf_kv *kv = cg_gguf_find(g, "general.alignment");
    if (!kv) return CG_OK;
    if (kv->type != CG_GGUF_TYPE_UINT32)
        return cg_err_set(ps->err, CG_ERR_FORMAT,
                          "gguf: general.alignment (kv at offset %" PRIu64 ") has type %s, must be UINT32",
                          kv->offset, cg_gguf_type_name(kv->type));
    uint32_t a = cg_le32(kv->raw);
    if (a == 0 || (a & (a - 1)) != 0)
        return cg_err_set(ps->err, CG_ERR_FORMAT,
                          "gguf: general.alignment %" PRIu32 " (kv at offset %" PRIu64
                          ") is not a non-zero power of two",
                          a, kv->offset);
    g->alignment = a;
    return CG_OK;
}

// ---- tensor infos ---------------------------------------------------------------------------

static cg_status parse_tensor_infos(parser *ps, uint64_t n_tensors) {
    cg_gguf *g = ps->g;
    cg_status st;
    g->tn_hash_cap = hash_cap((size_t)n_tensors);
    g->tn_hash = calloc(g->tn_hash_cap, sizeof *g->tn_hash);
    g->tensors = n_tensors ? calloc((size_t)n_tensors, sizeof *g->tensors) : NULL;
    if (!g->tn_hash || (n_tensors && !g->tensors)) return cg_err_set(ps->err, CG_ERR_NOMEM, "gguf: out of memory");
    for (size_t i = 0; i < n_tensors; i++) {
        cg_gguf_tensor *t = &g->tensors[i];
        set_where_tensor(ps, i, NULL);
        t->index = i;
        t->info_offset = ps->pos;
        cg_gguf_str name;
        if ((st = rd_str(ps, "tensor name", CG_GGUF_MAX_NAME_LEN, &name))) return st;
        if ((st = check_name(ps, "tensor name", name, t->info_offset, &t->name))) return st;
        t->name_len = name.n;
        set_where_tensor(ps, i, t->name);
        if (tensor_lookup(g, t->name, t->name_len))
            return cg_err_set(ps->err, CG_ERR_FORMAT, "gguf: %s: duplicate tensor name '%.200s' at offset %" PRIu64,
                              ps->where, t->name, t->info_offset);

        uint64_t at = ps->pos;
        if ((st = rd_u32(ps, "n_dims", &t->n_dims))) return st;
        if (t->n_dims < 1 || t->n_dims > CG_GGUF_MAX_DIMS)
            return cg_err_set(ps->err, CG_ERR_FORMAT,
                              "gguf: %s: n_dims %" PRIu32 " at offset %" PRIu64 " is not in 1..%d", ps->where,
                              t->n_dims, at, CG_GGUF_MAX_DIMS);
        for (int d = 0; d < CG_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        const uint64_t at_ne = ps->pos;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            char field[16];
            snprintf(field, sizeof field, "ne[%" PRIu32 "]", d);
            uint64_t v;
            at = ps->pos;
            if ((st = rd_u64(ps, field, &v))) return st;
            if (v > (uint64_t)INT64_MAX)
                return cg_err_set(ps->err, CG_ERR_FORMAT, "gguf: %s: %s = %" PRId64 " at offset %" PRIu64 " is negative",
                                  ps->where, field, (int64_t)v, at);
            t->ne[d] = (int64_t)v;
        }
        uint64_t n_elems = 1;
        for (int d = 0; d < CG_GGUF_MAX_DIMS; d++)
            if (!cg_mul_u64(n_elems, (uint64_t)t->ne[d], &n_elems) || n_elems > (uint64_t)INT64_MAX)
                return cg_err_set(ps->err, CG_ERR_FORMAT,
                                  "gguf: %s: dimensions %" PRId64 " x %" PRId64 " x %" PRId64 " x %" PRId64
                                  " (ne at offset %" PRIu64 ") overflow the element count",
                                  ps->where, t->ne[0], t->ne[1], t->ne[2], t->ne[3], at_ne);
        t->n_elems = (int64_t)n_elems;

        at = ps->pos;
        if ((st = rd_u32(ps, "type", &t->type))) return st;
        const cg_qtype_traits *tr = cg_qtype_get(t->type);
        if (!tr)
            return cg_err_set(ps->err, CG_ERR_UNSUPPORTED,
                              "gguf: tensor '%.200s' (info %zu) has unknown tensor type %" PRIu32 " at offset %" PRIu64,
                              t->name, i, t->type, at);
        if ((uint64_t)t->ne[0] % (uint64_t)tr->blck_size)
            return cg_err_set(ps->err, CG_ERR_FORMAT,
                              "gguf: %s: ne[0] = %" PRId64 " (offset %" PRIu64 ") is not a multiple of the block size %" PRId64
                              " of type %s",
                              ps->where, t->ne[0], at_ne, tr->blck_size, tr->name);
        // n_bytes = row bytes * rows, checked.
        uint64_t row, nb;
        if (cg_qtype_row_size(t->type, (uint64_t)t->ne[0], &row, NULL) != CG_OK ||
            !cg_mul_u64(row, (uint64_t)t->ne[1], &nb) || !cg_mul_u64(nb, (uint64_t)t->ne[2], &nb) ||
            !cg_mul_u64(nb, (uint64_t)t->ne[3], &nb))
            return cg_err_set(ps->err, CG_ERR_FORMAT,
                              "gguf: %s: byte size of %" PRId64 " x %" PRId64 " x %" PRId64 " x %" PRId64
                              " %s (ne at offset %" PRIu64 ") overflows",
                              ps->where, t->ne[0], t->ne[1], t->ne[2], t->ne[3], tr->name, at_ne);
        t->n_bytes = nb;

        at = ps->pos;
        if ((st = rd_u64(ps, "offset", &t->offset))) return st;
        if (t->offset % g->alignment)
            return cg_err_set(ps->err, CG_ERR_FORMAT,
                              "gguf: %s: data offset %" PRIu64 " at offset %" PRIu64
                              " is not a multiple of the alignment %" PRIu32,
                              ps->where, t->offset, at, g->alignment);

        size_t mask = g->tn_hash_cap - 1, h = (size_t)hash_bytes(t->name, t->name_len) & mask;
        while (g->tn_hash[h]) h = (h + 1) & mask;
        g->tn_hash[h] = (uint32_t)(i + 1);
        g->n_tensors = i + 1;
    }
    return CG_OK;
}

static int cmp_by_offset(const void *a, const void *b) {
    const cg_gguf_tensor *x = *(const cg_gguf_tensor *const *)a, *y = *(const cg_gguf_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->n_bytes != y->n_bytes) return x->n_bytes < y->n_bytes ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static cg_status check_extents(parser *ps) {
    cg_gguf *g = ps->g;
    for (size_t i = 0; i < g->n_tensors; i++) {
        cg_gguf_tensor *t = &g->tensors[i];
        uint64_t end;
        if (!cg_add_u64(g->data_offset, t->offset, &t->file_offset) || !cg_add_u64(t->file_offset, t->n_bytes, &end) ||
            end > g->size)
            return cg_err_set(ps->err, CG_ERR_FORMAT,
                              "gguf: tensor '%.200s' (info %zu at offset %" PRIu64 "): data at offset %" PRIu64
                              " + %" PRIu64 " (+%" PRIu64 " bytes) extends past the end of the file (size %" PRIu64 ")",
                              t->name, i, t->info_offset, g->data_offset, t->offset, t->n_bytes, g->size);
        t->data = g->data + t->file_offset;
    }
    if (g->n_tensors < 2) return CG_OK;
    const cg_gguf_tensor **order = malloc(g->n_tensors * sizeof *order);
    if (!order) return cg_err_set(ps->err, CG_ERR_NOMEM, "gguf: out of memory");
    for (size_t i = 0; i < g->n_tensors; i++) order[i] = &g->tensors[i];
    qsort(order, g->n_tensors, sizeof *order, cmp_by_offset);
    cg_status st = CG_OK;
    const cg_gguf_tensor *prev = NULL;
    for (size_t i = 0; i < g->n_tensors; i++) {
        const cg_gguf_tensor *t = order[i];
        if (t->n_bytes == 0) continue;   // an empty tensor overlaps nothing
        if (prev && prev->offset + prev->n_bytes > t->offset) {
            st = cg_err_set(ps->err, CG_ERR_FORMAT,
                            "gguf: tensors '%.150s' (data %" PRIu64 "..%" PRIu64 ") and '%.150s' (data %" PRIu64 "..%" PRIu64
                            ") overlap (offsets relative to the data section at %" PRIu64 ")",
                            prev->name, prev->offset, prev->offset + prev->n_bytes, t->name, t->offset,
                            t->offset + t->n_bytes, g->data_offset);
            break;
        }
        prev = t;
    }
    free(order);
    return st;
}

// ---- open / close ---------------------------------------------------------------------------

static cg_status parse(cg_gguf *g, cg_err *err) {
    parser ps = {.g = g, .d = g->data, .size = g->size, .pos = 0, .err = err};
    cg_status st;
    snprintf(ps.where, sizeof ps.where, "header");
    if ((st = need(&ps, 4, "magic"))) return st;
    if (memcmp(g->data, CG_GGUF_MAGIC, 4) != 0) {
        const unsigned char *m = g->data;
        return cg_err_set(err, CG_ERR_FORMAT,
                          "gguf: not a GGUF file: bad magic %02x %02x %02x %02x at offset 0 (expected \"GGUF\")", m[0],
                          m[1], m[2], m[3]);
    }
    ps.pos = 4;
    if ((st = rd_u32(&ps, "version", &g->version))) return st;
    if (g->version != 2 && g->version != 3) {
        uint32_t sw = __builtin_bswap32(g->version);
        if (sw >= 1 && sw <= 3)
            return cg_err_set(err, CG_ERR_UNSUPPORTED,
                              "gguf: header: version field at offset 4 reads %" PRIu32
                              ": a big-endian GGUF file, which is not supported",
                              g->version);
        return cg_err_set(err, CG_ERR_UNSUPPORTED,
                          "gguf: header: GGUF version %" PRIu32 " at offset 4 is not supported (only 2 and 3)",
                          g->version);
    }
    uint64_t n_tensors, n_kv;
    if ((st = rd_u64(&ps, "n_tensors", &n_tensors))) return st;
    if ((st = rd_u64(&ps, "n_kv", &n_kv))) return st;
    if (n_tensors > CG_GGUF_MAX_TENSORS)
        return cg_err_set(err, CG_ERR_LIMIT, "gguf: header: n_tensors %" PRIu64 " at offset 8 is above the limit %" PRIu64,
                          n_tensors, CG_GGUF_MAX_TENSORS);
    if (n_kv > CG_GGUF_MAX_KV)
        return cg_err_set(err, CG_ERR_LIMIT, "gguf: header: n_kv %" PRIu64 " at offset 16 is above the limit %" PRIu64,
                          n_kv, CG_GGUF_MAX_KV);
    // The smallest kv is 14 bytes (8 key length, 1 key byte, 4 type, 1 value), the smallest tensor
    // info 33 (8 + 1 + 4 n_dims + 8 ne[0] + 4 type + 8 offset): refuse counts the file cannot hold
    // before allocating tables for them.
    uint64_t min_bytes = n_kv * 14 + n_tensors * 33;   // both ≤ 2^20: no overflow
    if (min_bytes > left(&ps))
        return cg_err_set(err, CG_ERR_FORMAT,
                          "gguf: truncated file: header: n_kv %" PRIu64 " and n_tensors %" PRIu64
                          " need at least %" PRIu64 " bytes after offset 24, the file has %" PRIu64 " left",
                          n_kv, n_tensors, min_bytes, left(&ps));
    if ((st = parse_kvs(&ps, n_kv))) return st;
    if ((st = read_alignment(&ps))) return st;
    if ((st = parse_tensor_infos(&ps, n_tensors))) return st;
    snprintf(ps.where, sizeof ps.where, "data section");
    if (!cg_align_up_u64(ps.pos, g->alignment, &g->data_offset))
        return cg_err_set(err, CG_ERR_FORMAT, "gguf: data section offset overflows");
    if (g->n_tensors > 0 && g->data_offset > g->size)
        return cg_err_set(err, CG_ERR_FORMAT,
                          "gguf: truncated file: padding before the data section: the tensor infos end at offset %" PRIu64
                          ", the data starts at %" PRIu64 " (alignment %" PRIu32 "), the file has %" PRIu64 " bytes",
                          ps.pos, g->data_offset, g->alignment, g->size);
    return check_extents(&ps);
}

static cg_status open_common(cg_gguf *g, cg_gguf **out, cg_err *err) {
    cg_arena_init(&g->arena, 1 << 16);
    cg_status st = parse(g, err);
    if (st) {
        cg_gguf_close(g);
        return st;
    }
    *out = g;
    return CG_OK;
}

cg_status cg_gguf_open_mem(const void *data, size_t size, cg_gguf **out, cg_err *err) {
    *out = NULL;
    if (!data && size) return cg_err_set(err, CG_ERR_INVALID, "gguf: NULL buffer of %zu bytes", size);
    cg_gguf *g = calloc(1, sizeof *g);
    if (!g) return cg_err_set(err, CG_ERR_NOMEM, "gguf: out of memory");
    static const unsigned char empty[1];
    g->data = data ? data : empty;
    g->size = size;
    return open_common(g, out, err);
}

cg_status cg_gguf_open(const char *path, cg_gguf **out, cg_err *err) {
    *out = NULL;
    cg_gguf *g = calloc(1, sizeof *g);
    if (!g) return cg_err_set(err, CG_ERR_NOMEM, "gguf: out of memory");
    cg_status st = cg_mmap_open(path, &g->map, err);
    if (st) {
        free(g);
        return st;
    }
    static const unsigned char empty[1];
    g->data = g->map.data ? g->map.data : empty;
    g->size = g->map.size;
    return open_common(g, out, err);
}

void cg_gguf_close(cg_gguf *g) {
    if (!g) return;
    free(g->kvs);
    free(g->tensors);
    free(g->kv_hash);
    free(g->tn_hash);
    cg_arena_free(&g->arena);
    cg_mmap_close(&g->map);
    free(g);
}

// ---- accessors ------------------------------------------------------------------------------

uint32_t cg_gguf_version(const cg_gguf *g) { return g->version; }
uint32_t cg_gguf_alignment(const cg_gguf *g) { return g->alignment; }
uint64_t cg_gguf_data_offset(const cg_gguf *g) { return g->data_offset; }
uint64_t cg_gguf_file_size(const cg_gguf *g) { return g->size; }
const unsigned char *cg_gguf_file_data(const cg_gguf *g) { return g->size ? g->data : NULL; }

size_t cg_gguf_n_kv(const cg_gguf *g) { return g->n_kv; }
const cg_gguf_kv *cg_gguf_kv_at(const cg_gguf *g, size_t i) { return i < g->n_kv ? &g->kvs[i] : NULL; }
const cg_gguf_kv *cg_gguf_find(const cg_gguf *g, const char *key) { return kv_lookup(g, key, strlen(key)); }

size_t cg_gguf_n_tensors(const cg_gguf *g) { return g->n_tensors; }
const cg_gguf_tensor *cg_gguf_tensor_at(const cg_gguf *g, size_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}
const cg_gguf_tensor *cg_gguf_find_tensor(const cg_gguf *g, const char *name) {
    return tensor_lookup(g, name, strlen(name));
}

static cg_gguf_scalar load_scalar(cg_gguf_type t, const unsigned char *p) {
    cg_gguf_scalar v;
    memset(&v, 0, sizeof v);
    switch (t) {
    case CG_GGUF_TYPE_UINT8: v.u8 = p[0]; break;
    case CG_GGUF_TYPE_INT8: v.i8 = (int8_t)p[0]; break;
    case CG_GGUF_TYPE_UINT16: v.u16 = cg_le16(p); break;
    case CG_GGUF_TYPE_INT16: v.i16 = (int16_t)cg_le16(p); break;
    case CG_GGUF_TYPE_UINT32: v.u32 = cg_le32(p); break;
    case CG_GGUF_TYPE_INT32: v.i32 = (int32_t)cg_le32(p); break;
    case CG_GGUF_TYPE_FLOAT32: v.f32 = cg_lef32(p); break;
    case CG_GGUF_TYPE_BOOL: v.b = p[0] != 0; break;
    case CG_GGUF_TYPE_UINT64: v.u64 = cg_le64(p); break;
    case CG_GGUF_TYPE_INT64: v.i64 = (int64_t)cg_le64(p); break;
    case CG_GGUF_TYPE_FLOAT64: v.f64 = cg_lef64(p); break;
    default: break;
    }
    return v;
}

cg_gguf_scalar cg_gguf_kv_scalar(const cg_gguf_kv *kv) {
    if (kv->type == CG_GGUF_TYPE_STRING || kv->type == CG_GGUF_TYPE_ARRAY) {
        cg_gguf_scalar z;
        memset(&z, 0, sizeof z);
        return z;
    }
    return load_scalar(kv->type, kv->raw);
}

cg_gguf_str cg_gguf_kv_str(const cg_gguf_kv *kv) {
    cg_gguf_str s = {NULL, 0};
    if (kv->type == CG_GGUF_TYPE_STRING) {
        s.p = (const char *)kv->raw;
        s.n = (size_t)kv->raw_size;
    }
    return s;
}

static cg_status arr_check(const cg_gguf_kv *kv, uint64_t i, bool want_str, cg_err *err) {
    if (kv->type != CG_GGUF_TYPE_ARRAY)
        return cg_err_set(err, CG_ERR_TYPE, "gguf: key '%.200s' is a %s, not an array", kv->key,
                          cg_gguf_type_name(kv->type));
    if ((kv->elem_type == CG_GGUF_TYPE_STRING) != want_str)
        return cg_err_set(err, CG_ERR_TYPE, "gguf: key '%.200s' is an array of %s, not of %s", kv->key,
                          cg_gguf_type_name(kv->elem_type), want_str ? "STRING" : "numbers");
    if (i >= kv->n)
        return cg_err_set(err, CG_ERR_INVALID, "gguf: key '%.200s': index %" PRIu64 " is past the array's %" PRIu64
                                               " elements",
                          kv->key, i, kv->n);
    return CG_OK;
}

cg_status cg_gguf_arr_scalar(const cg_gguf_kv *kv, uint64_t i, cg_gguf_scalar *out, cg_err *err) {
    cg_status st = arr_check(kv, i, false, err);
    if (st) return st;
    *out = load_scalar(kv->elem_type, kv->raw + i * TYPE_SIZES[kv->elem_type]);
    return CG_OK;
}

cg_status cg_gguf_arr_str(const cg_gguf_kv *kv, uint64_t i, cg_gguf_str *out, cg_err *err) {
    cg_status st = arr_check(kv, i, true, err);
    if (st) return st;
    const unsigned char *p = kv->raw + kv->str_off[i];
    out->n = (size_t)cg_le64(p);
    out->p = (const char *)p + 8;
    return CG_OK;
}

const void *cg_gguf_arr_data(const cg_gguf_kv *kv) {
    if (kv->type != CG_GGUF_TYPE_ARRAY || kv->elem_type == CG_GGUF_TYPE_STRING) return NULL;
    return kv->raw;
}

cg_status cg_gguf_arr_copy(const cg_gguf_kv *kv, cg_gguf_type elem_type, void *dst, size_t dst_size, cg_err *err) {
    if (kv->type != CG_GGUF_TYPE_ARRAY || kv->elem_type != elem_type || elem_type == CG_GGUF_TYPE_STRING)
        return cg_err_set(err, CG_ERR_TYPE, "gguf: key '%.200s' is %s%s, not an array of %s", kv->key,
                          kv->type == CG_GGUF_TYPE_ARRAY ? "an array of " : "a ",
                          cg_gguf_type_name(kv->type == CG_GGUF_TYPE_ARRAY ? kv->elem_type : kv->type),
                          cg_gguf_type_name(elem_type));
    if (dst_size < kv->raw_size)
        return cg_err_set(err, CG_ERR_INVALID, "gguf: key '%.200s': %" PRIu64 " bytes do not fit in %zu", kv->key,
                          kv->raw_size, dst_size);
    if (kv->raw_size) memcpy(dst, kv->raw, (size_t)kv->raw_size);
    return CG_OK;
}

// ---- typed getters --------------------------------------------------------------------------

static cg_status find_typed(const cg_gguf *g, const char *key, cg_gguf_type t, const cg_gguf_kv **out, cg_err *err) {
    const cg_gguf_kv *kv = cg_gguf_find(g, key);
    if (!kv) return cg_err_set(err, CG_ERR_NOT_FOUND, "gguf: key '%.200s' not found", key);
    if (kv->type != t)
        return cg_err_set(err, CG_ERR_TYPE, "gguf: key '%.200s' has type %s, expected %s", key,
                          cg_gguf_type_name(kv->type), cg_gguf_type_name(t));
    *out = kv;
    return CG_OK;
}

#define GETTER(fn, ctype, gtype, member)                                                           \
    cg_status fn(const cg_gguf *g, const char *key, ctype *out, cg_err *err) {                     \
        const cg_gguf_kv *kv;                                                                      \
        cg_status st = find_typed(g, key, gtype, &kv, err);                                        \
        if (st) return st;                                                                         \
        *out = load_scalar(gtype, kv->raw).member;                                                 \
        return CG_OK;                                                                              \
    }
GETTER(cg_gguf_get_u8, uint8_t, CG_GGUF_TYPE_UINT8, u8)
GETTER(cg_gguf_get_i8, int8_t, CG_GGUF_TYPE_INT8, i8)
GETTER(cg_gguf_get_u16, uint16_t, CG_GGUF_TYPE_UINT16, u16)
GETTER(cg_gguf_get_i16, int16_t, CG_GGUF_TYPE_INT16, i16)
GETTER(cg_gguf_get_u32, uint32_t, CG_GGUF_TYPE_UINT32, u32)
GETTER(cg_gguf_get_i32, int32_t, CG_GGUF_TYPE_INT32, i32)
GETTER(cg_gguf_get_u64, uint64_t, CG_GGUF_TYPE_UINT64, u64)
GETTER(cg_gguf_get_i64, int64_t, CG_GGUF_TYPE_INT64, i64)
GETTER(cg_gguf_get_f32, float, CG_GGUF_TYPE_FLOAT32, f32)
GETTER(cg_gguf_get_f64, double, CG_GGUF_TYPE_FLOAT64, f64)
GETTER(cg_gguf_get_bool, bool, CG_GGUF_TYPE_BOOL, b)
#undef GETTER

cg_status cg_gguf_get_str(const cg_gguf *g, const char *key, cg_gguf_str *out, cg_err *err) {
    const cg_gguf_kv *kv;
    cg_status st = find_typed(g, key, CG_GGUF_TYPE_STRING, &kv, err);
    if (st) return st;
    *out = cg_gguf_kv_str(kv);
    return CG_OK;
}

// Any integer entry as a sign + magnitude pair, so that every value is representable.
static cg_status find_int(const cg_gguf *g, const char *key, bool *neg, uint64_t *mag, cg_err *err) {
    const cg_gguf_kv *kv = cg_gguf_find(g, key);
    if (!kv) return cg_err_set(err, CG_ERR_NOT_FOUND, "gguf: key '%.200s' not found", key);
    if (!cg_gguf_type_is_int(kv->type))
        return cg_err_set(err, CG_ERR_TYPE, "gguf: key '%.200s' has type %s, expected an integer", key,
                          cg_gguf_type_name(kv->type));
    cg_gguf_scalar v = load_scalar(kv->type, kv->raw);
    int64_t s = 0;
    *neg = false;
    switch (kv->type) {
    case CG_GGUF_TYPE_UINT8: *mag = v.u8; return CG_OK;
    case CG_GGUF_TYPE_UINT16: *mag = v.u16; return CG_OK;
    case CG_GGUF_TYPE_UINT32: *mag = v.u32; return CG_OK;
    case CG_GGUF_TYPE_UINT64: *mag = v.u64; return CG_OK;
    case CG_GGUF_TYPE_INT8: s = v.i8; break;
    case CG_GGUF_TYPE_INT16: s = v.i16; break;
    case CG_GGUF_TYPE_INT32: s = v.i32; break;
    default: s = v.i64; break;
    }
    *neg = s < 0;
    *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    return CG_OK;
}

cg_status cg_gguf_get_int(const cg_gguf *g, const char *key, int64_t *out, cg_err *err) {
    bool neg;
    uint64_t mag;
    cg_status st = find_int(g, key, &neg, &mag, err);
    if (st) return st;
    if (!neg && mag > (uint64_t)INT64_MAX)
        return cg_err_set(err, CG_ERR_LIMIT, "gguf: key '%.200s' = %" PRIu64 " does not fit in int64", key, mag);
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return CG_OK;
}

cg_status cg_gguf_get_uint(const cg_gguf *g, const char *key, uint64_t *out, cg_err *err) {
    bool neg;
    uint64_t mag;
    cg_status st = find_int(g, key, &neg, &mag, err);
    if (st) return st;
    if (neg && mag)
        return cg_err_set(err, CG_ERR_LIMIT, "gguf: key '%.200s' = -%" PRIu64 " is negative", key, mag);
    *out = mag;
    return CG_OK;
}

cg_status cg_gguf_get_u32_any(const cg_gguf *g, const char *key, uint32_t *out, cg_err *err) {
    uint64_t v;
    cg_status st = cg_gguf_get_uint(g, key, &v, err);
    if (st) return st;
    if (v > UINT32_MAX)
        return cg_err_set(err, CG_ERR_LIMIT, "gguf: key '%.200s' = %" PRIu64 " does not fit in uint32", key, v);
    *out = (uint32_t)v;
    return CG_OK;
}

cg_status cg_gguf_get_real(const cg_gguf *g, const char *key, double *out, cg_err *err) {
    const cg_gguf_kv *kv = cg_gguf_find(g, key);
    if (!kv) return cg_err_set(err, CG_ERR_NOT_FOUND, "gguf: key '%.200s' not found", key);
    if (kv->type == CG_GGUF_TYPE_FLOAT32) {
        *out = cg_lef32(kv->raw);
        return CG_OK;
    }
    if (kv->type == CG_GGUF_TYPE_FLOAT64) {
        *out = cg_lef64(kv->raw);
        return CG_OK;
    }
    return cg_err_set(err, CG_ERR_TYPE, "gguf: key '%.200s' has type %s, expected FLOAT32 or FLOAT64", key,
                      cg_gguf_type_name(kv->type));
}

cg_status cg_gguf_get_arr(const cg_gguf *g, const char *key, cg_gguf_type elem_type, const cg_gguf_kv **out,
                          cg_err *err) {
    const cg_gguf_kv *kv;
    cg_status st = find_typed(g, key, CG_GGUF_TYPE_ARRAY, &kv, err);
    if (st) return st;
    if (elem_type != CG_GGUF_TYPE_COUNT && kv->elem_type != elem_type)
        return cg_err_set(err, CG_ERR_TYPE, "gguf: key '%.200s' is an array of %s, expected an array of %s", key,
                          cg_gguf_type_name(kv->elem_type), cg_gguf_type_name(elem_type));
    *out = kv;
    return CG_OK;
}
