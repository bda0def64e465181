// writer.c — the GGUF writer: collects kvs and tensors, then lays the file out as llama.cpp does
// (header, kvs in insertion order, tensor infos, padding, each tensor's data padded to the alignment)
// and writes it atomically to a path or to memory.
#define _GNU_SOURCE
#include "gguf/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/num.h"
#include "base/utf8.h"
#include "quant/quant.h"

typedef struct wkv {
    char *key;                // owned, NUL-terminated
    size_t key_len;
    uint32_t type;
    unsigned char *value;     // owned: the serialized value (everything after the type field)
    size_t value_size;
} wkv;

typedef struct wtensor {
    char *name;               // owned
    size_t name_len;
    uint32_t type, n_dims;
    int64_t ne[CG_GGUF_MAX_DIMS];
    uint64_t n_bytes;
    const void *data;         // borrowed (when produce is NULL)
    cg_gguf_produce_fn produce;
    void *user;
} wtensor;

struct cg_gguf_writer {
    uint32_t version;
    uint32_t alignment;
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
};

cg_status cg_gguf_writer_new(cg_gguf_writer **out, cg_err *err) {
    *out = calloc(1, sizeof **out);
    if (!*out) return cg_err_set(err, CG_ERR_NOMEM, "gguf writer: out of memory");
    (*out)->version = 3;
    (*out)->alignment = CG_GGUF_DEFAULT_ALIGNMENT;
    return CG_OK;
}

void cg_gguf_writer_free(cg_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].value);
    }
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->kvs);
    free(w->tensors);
    free(w);
}

cg_status cg_gguf_writer_set_version(cg_gguf_writer *w, uint32_t version, cg_err *err) {
    if (version != 2 && version != 3)
        return cg_err_set(err, CG_ERR_INVALID, "gguf writer: version %" PRIu32 " (only 2 and 3 can be written)", version);
    w->version = version;
    return CG_OK;
}

size_t cg_gguf_writer_n_tensors(const cg_gguf_writer *w) { return w->n_tensors; }
size_t cg_gguf_writer_n_kv(const cg_gguf_writer *w) { return w->n_kv; }

// ---- metadata -------------------------------------------------------------------------------

static cg_status check_utf8_name(const char *what, const char *s, size_t n, size_t max, cg_err *err) {
    if (n == 0) return cg_err_set(err, CG_ERR_INVALID, "gguf writer: empty %s", what);
    if (n > max) return cg_err_set(err, CG_ERR_INVALID, "gguf writer: %s '%.60s…' is %zu bytes (at most %zu)", what, s, n, max);
    size_t bad;
    if (!cg_utf8_valid(s, n, &bad))
        return cg_err_set(err, CG_ERR_INVALID, "gguf writer: %s is not valid UTF-8 (byte %zu)", what, bad);
    return CG_OK;
}

static wkv *find_wkv(const cg_gguf_writer *w, const char *key, size_t n) {
    for (size_t i = 0; i < w->n_kv; i++)
        if (w->kvs[i].key_len == n && memcmp(w->kvs[i].key, key, n) == 0) return &w->kvs[i];
    return NULL;
}

bool cg_gguf_writer_remove(cg_gguf_writer *w, const char *key) {
    wkv *kv = find_wkv(w, key, strlen(key));
    if (!kv) return false;
    size_t i = (size_t)(kv - w->kvs);
    free(kv->key);
    free(kv->value);
    memmove(&w->kvs[i], &w->kvs[i + 1], (w->n_kv - i - 1) * sizeof *w->kvs);
    w->n_kv--;
    if (strcmp(key, "general.alignment") == 0) w->alignment = CG_GGUF_DEFAULT_ALIGNMENT;
    return true;
}

// Takes ownership of `value` (malloc'ed, value_size bytes), also on failure.
static cg_status set_kv(cg_gguf_writer *w, const char *key, uint32_t type, unsigned char *value, size_t value_size,
                        cg_err *err) {
    size_t n = strlen(key);
    cg_status st = check_utf8_name("key", key, n, (size_t)CG_GGUF_MAX_KEY_LEN, err);
    if (!st && strcmp(key, "general.alignment") == 0) {
        uint32_t a = type == CG_GGUF_TYPE_UINT32 ? cg_le32(value) : 0;
        if (type != CG_GGUF_TYPE_UINT32 || a == 0 || (a & (a - 1)))
            st = cg_err_set(err, CG_ERR_INVALID, "gguf writer: general.alignment must be a UINT32 non-zero power of two");
        else
            w->alignment = a;
    }
    if (st) {
        free(value);
        return st;
    }
    wkv *kv = find_wkv(w, key, n);
    if (kv) {   // replace in place
        free(kv->value);
        kv->type = type;
        kv->value = value;
        kv->value_size = value_size;
        return CG_OK;
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        wkv *p = realloc(w->kvs, cap * sizeof *p);
        if (!p) {
            free(value);
            return cg_err_set(err, CG_ERR_NOMEM, "gguf writer: out of memory");
        }
        w->kvs = p;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(value);
        return cg_err_set(err, CG_ERR_NOMEM, "gguf writer: out of memory");
    }
    w->kvs[w->n_kv++] = (wkv){.key = k, .key_len = n, .type = type, .value = value, .value_size = value_size};
    return CG_OK;
}

static cg_status set_bytes(cg_gguf_writer *w, const char *key, uint32_t type, const void *p, size_t n, cg_err *err) {
    unsigned char *v = malloc(n ? n : 1);
    if (!v) return cg_err_set(err, CG_ERR_NOMEM, "gguf writer: out of memory");
    memcpy(v, p, n);
    return set_kv(w, key, type, v, n, err);
}

#define SETTER(fn, ctype, gtype)                                                                   \
    cg_status fn(cg_gguf_writer *w, const char *key, ctype v, cg_err *err) {                      \
        return set_bytes(w, key, gtype, &v, sizeof v, err);                                        \
    }
SETTER(cg_gguf_writer_set_u8, uint8_t, CG_GGUF_TYPE_UINT8)
SETTER(cg_gguf_writer_set_i8, int8_t, CG_GGUF_TYPE_INT8)
SETTER(cg_gguf_writer_set_u16, uint16_t, CG_GGUF_TYPE_UINT16)
SETTER(cg_gguf_writer_set_i16, int16_t, CG_GGUF_TYPE_INT16)
SETTER(cg_gguf_writer_set_u32, uint32_t, CG_GGUF_TYPE_UINT32)
SETTER(cg_gguf_writer_set_i32, int32_t, CG_GGUF_TYPE_INT32)
SETTER(cg_gguf_writer_set_u64, uint64_t, CG_GGUF_TYPE_UINT64)
SETTER(cg_gguf_writer_set_i64, int64_t, CG_GGUF_TYPE_INT64)
SETTER(cg_gguf_writer_set_f32, float, CG_GGUF_TYPE_FLOAT32)
SETTER(cg_gguf_writer_set_f64, double, CG_GGUF_TYPE_FLOAT64)
#undef SETTER

cg_status cg_gguf_writer_set_bool(cg_gguf_writer *w, const char *key, bool v, cg_err *err) {
    unsigned char b = v ? 1 : 0;
    return set_bytes(w, key, CG_GGUF_TYPE_BOOL, &b, 1, err);
}

cg_status cg_gguf_writer_set_strn(cg_gguf_writer *w, const char *key, const char *s, size_t n, cg_err *err) {
    if (n > CG_GGUF_MAX_STRING_LEN)
        return cg_err_set(err, CG_ERR_INVALID, "gguf writer: string value of '%.200s' is %zu bytes (at most %" PRIu64 ")",
                          key, n, CG_GGUF_MAX_STRING_LEN);
    unsigned char *v = malloc(8 + n);
    if (!v) return cg_err_set(err, CG_ERR_NOMEM, "gguf writer: out of memory");
    uint64_t len = n;
    memcpy(v, &len, 8);
    if (n) memcpy(v + 8, s, n);
    return set_kv(w, key, CG_GGUF_TYPE_STRING, v, 8 + n, err);
}

cg_status cg_gguf_writer_set_str(cg_gguf_writer *w, const char *key, const char *s, cg_err *err) {
    return cg_gguf_writer_set_strn(w, key, s, strlen(s), err);
}

cg_status cg_gguf_writer_set_arr(cg_gguf_writer *w, const char *key, cg_gguf_type elem_type, const void *data,
                                 uint64_t n, cg_err *err) {
    size_t es = cg_gguf_type_size(elem_type);
    if (es == 0)
        return cg_err_set(err, CG_ERR_INVALID, "gguf writer: '%.200s': array elements of type %s need set_arr_str or are "
                                               "not allowed", key, cg_gguf_type_name(elem_type));
    if (n > CG_GGUF_MAX_ARRAY_LEN)
        return cg_err_set(err, CG_ERR_INVALID, "gguf writer: '%.200s': %" PRIu64 " elements (at most %" PRIu64 ")", key,
                          n, CG_GGUF_MAX_ARRAY_LEN);
    if (elem_type == CG_GGUF_TYPE_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (((const unsigned char *)data)[i] > 1)
                return cg_err_set(err, CG_ERR_INVALID, "gguf writer: '%.200s': bool element %" PRIu64 " is not 0 or 1",
                                  key, i);
    size_t bytes = (size_t)n * es;
    unsigned char *v = malloc(12 + bytes);
    if (!v) return cg_err_set(err, CG_ERR_NOMEM, "gguf writer: out of memory");
    uint32_t et = elem_type;
    memcpy(v, &et, 4);
    memcpy(v + 4, &n, 8);
    if (bytes) memcpy(v + 12, data, bytes);
    return set_kv(w, key, CG_GGUF_TYPE_ARRAY, v, 12 + bytes, err);
}

cg_status cg_gguf_writer_set_arr_str(cg_gguf_writer *w, const char *key, const char *const *strs, const size_t *lens,
                                     uint64_t n, cg_err *err) {
    if (n > CG_GGUF_MAX_ARRAY_LEN)
        return cg_err_set(err, CG_ERR_INVALID, "gguf writer: '%.200s': %" PRIu64 " elements (at most %" PRIu64 ")", key,
                          n, CG_GGUF_MAX_ARRAY_LEN);
    size_t total = 12;
    for (uint64_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : strlen(strs[i]);
        if (len > CG_GGUF_MAX_STRING_LEN || !cg_add_size(total, 8 + len, &total))
            return cg_err_set(err, CG_ERR_INVALID, "gguf writer: '%.200s': string element %" PRIu64 " is too long", key, i);
    }
    unsigned char *v = malloc(total);
    if (!v) return cg_err_set(err, CG_ERR_NOMEM, "gguf writer: out of memory");
    uint32_t et = CG_GGUF_TYPE_STRING;
    memcpy(v, &et, 4);
    memcpy(v + 4, &n, 8);
    size_t pos = 12;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = lens ? lens[i] : strlen(strs[i]);
        memcpy(v + pos, &len, 8);
        if (len) memcpy(v + pos + 8, strs[i], (size_t)len);
        pos += 8 + (size_t)len;
    }
    return set_kv(w, key, CG_GGUF_TYPE_ARRAY, v, total, err);
}

cg_status cg_gguf_writer_copy_kv(cg_gguf_writer *w, const cg_gguf_kv *kv, cg_err *err) {
    switch (kv->type) {
    case CG_GGUF_TYPE_STRING: {
        cg_gguf_str s = cg_gguf_kv_str(kv);
        return cg_gguf_writer_set_strn(w, kv->key, s.p, s.n, err);
    }
    case CG_GGUF_TYPE_ARRAY: {
        // The reader validated the payload: copy it as it is, behind a fresh array header.
        size_t bytes = (size_t)kv->raw_size;
        unsigned char *v = malloc(12 + bytes);
        if (!v) return cg_err_set(err, CG_ERR_NOMEM, "gguf writer: out of memory");
        uint32_t et = kv->elem_type;
        uint64_t n = kv->n;
        memcpy(v, &et, 4);
        memcpy(v + 4, &n, 8);
        if (bytes) memcpy(v + 12, kv->raw, bytes);
        return set_kv(w, kv->key, CG_GGUF_TYPE_ARRAY, v, 12 + bytes, err);
    }
    default:
        return set_bytes(w, kv->key, kv->type, kv->raw, (size_t)kv->raw_size, err);
    }
}

// ---- tensors --------------------------------------------------------------------------------

static cg_status add_tensor(cg_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne,
                            const void *data, cg_gguf_produce_fn produce, void *user, cg_err *err) {
    size_t n = strlen(name);
    cg_status st = check_utf8_name("tensor name", name, n, CG_GGUF_GGML_MAX_NAME, err);
    if (st) return st;
    for (size_t i = 0; i < w->n_tensors; i++)
        if (w->tensors[i].name_len == n && memcmp(w->tensors[i].name, name, n) == 0)
            return cg_err_set(err, CG_ERR_INVALID, "gguf writer: duplicate tensor name '%s'", name);
    if (n_dims < 1 || n_dims > CG_GGUF_MAX_DIMS)
        return cg_err_set(err, CG_ERR_INVALID, "gguf writer: tensor '%s': n_dims %" PRIu32 " (1..%d)", name, n_dims,
                          CG_GGUF_MAX_DIMS);
    wtensor t = {.type = type, .n_dims = n_dims, .data = data, .produce = produce, .user = user};
    uint64_t n_elems = 1;
    for (int d = 0; d < CG_GGUF_MAX_DIMS; d++) {
        t.ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 0)
            return cg_err_set(err, CG_ERR_INVALID, "gguf writer: tensor '%s': ne[%d] = %" PRId64 " is negative", name, d,
                              t.ne[d]);
        if (!cg_mul_u64(n_elems, (uint64_t)t.ne[d], &n_elems) || n_elems > (uint64_t)INT64_MAX)
            return cg_err_set(err, CG_ERR_INVALID, "gguf writer: tensor '%s': element count overflows", name);
    }
    uint64_t row;
    cg_err sub = {0};
    if (cg_qtype_row_size(type, (uint64_t)t.ne[0], &row, &sub) != CG_OK)
        return cg_err_set(err, CG_ERR_INVALID, "gguf writer: tensor '%s': %s", name, sub.msg);
    if (!cg_mul_u64(row, (uint64_t)t.ne[1], &t.n_bytes) || !cg_mul_u64(t.n_bytes, (uint64_t)t.ne[2], &t.n_bytes) ||
        !cg_mul_u64(t.n_bytes, (uint64_t)t.ne[3], &t.n_bytes))
        return cg_err_set(err, CG_ERR_INVALID, "gguf writer: tensor '%s': byte size overflows", name);
    if (!produce && !data && t.n_bytes)
        return cg_err_set(err, CG_ERR_INVALID, "gguf writer: tensor '%s': NULL data for %" PRIu64 " bytes", name,
                          t.n_bytes);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        wtensor *p = realloc(w->tensors, cap * sizeof *p);
        if (!p) return cg_err_set(err, CG_ERR_NOMEM, "gguf writer: out of memory");
        w->tensors = p;
        w->cap_tensors = cap;
    }
    t.name = strdup(name);
    if (!t.name) return cg_err_set(err, CG_ERR_NOMEM, "gguf writer: out of memory");
    t.name_len = n;
    w->tensors[w->n_tensors++] = t;
    return CG_OK;
}

cg_status cg_gguf_writer_add_tensor(cg_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                    const int64_t *ne, const void *data, cg_err *err) {
    return add_tensor(w, name, type, n_dims, ne, data, NULL, NULL, err);
}

cg_status cg_gguf_writer_add_tensor_cb(cg_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                       const int64_t *ne, cg_gguf_produce_fn produce, void *user, cg_err *err) {
    if (!produce) return cg_err_set(err, CG_ERR_INVALID, "gguf writer: tensor '%s': NULL producer", name);
    return add_tensor(w, name, type, n_dims, ne, NULL, produce, user, err);
}

// ---- output ---------------------------------------------------------------------------------

// An output: a file descriptor behind a buffer, or a cg_buf.
typedef struct out {
    int fd;               // -1 for memory
    const char *path;     // for messages
    cg_buf *mem;
    unsigned char *buf;   // file buffer
    size_t len, cap;
    uint64_t pos;         // bytes emitted so far
} out;

static cg_status fd_write_all(out *o, const void *p, size_t n, cg_err *err) {
    const unsigned char *c = p;
    while (n) {
        ssize_t k = write(o->fd, c, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return cg_err_set(err, CG_ERR_IO, "gguf writer: cannot write '%s' at offset %" PRIu64 ": %s", o->path,
                              o->pos, strerror(errno));
        }
        if (k == 0)
            return cg_err_set(err, CG_ERR_IO, "gguf writer: cannot write '%s' at offset %" PRIu64 ": no progress",
                              o->path, o->pos);
        c += k;
        n -= (size_t)k;
    }
    return CG_OK;
}

static cg_status out_flush(out *o, cg_err *err) {
    if (o->fd < 0 || o->len == 0) return CG_OK;
    cg_status st = fd_write_all(o, o->buf, o->len, err);
    o->len = 0;
    return st;
}

static cg_status out_write(out *o, const void *p, size_t n, cg_err *err) {
    if (n == 0) return CG_OK;
    if (o->fd < 0) {
        cg_buf_append(o->mem, p, n);
        if (!cg_buf_ok(o->mem)) return cg_err_set(err, CG_ERR_NOMEM, "gguf writer: out of memory");
        o->pos += n;
        return CG_OK;
    }
    cg_status st;
    if (o->len + n > o->cap) {
        if ((st = out_flush(o, err))) return st;
        if (n >= o->cap) {   // large: straight through
            st = fd_write_all(o, p, n, err);
            o->pos += n;
            return st;
        }
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    o->pos += n;
    return CG_OK;
}

static cg_status out_u32(out *o, uint32_t v, cg_err *err) { return out_write(o, &v, 4, err); }
static cg_status out_u64(out *o, uint64_t v, cg_err *err) { return out_write(o, &v, 8, err); }

static cg_status out_pad(out *o, uint32_t align, cg_err *err) {
    static const unsigned char zeros[256];
    uint64_t target;
    if (!cg_align_up_u64(o->pos, align, &target)) return cg_err_set(err, CG_ERR_LIMIT, "gguf writer: file too large");
    while (o->pos < target) {
        uint64_t n = target - o->pos;
        cg_status st = out_write(o, zeros, n > sizeof zeros ? sizeof zeros : (size_t)n, err);
        if (st) return st;
    }
    return CG_OK;
}

struct cg_gguf_sink {
    out *o;
    uint64_t remaining;
    const char *name;
};

cg_status cg_gguf_sink_write(cg_gguf_sink *s, const void *p, size_t n, cg_err *err) {
    if (n > s->remaining)
        return cg_err_set(err, CG_ERR_INVALID, "gguf writer: tensor '%s': producer wrote more than the tensor's size",
                          s->name);
    s->remaining -= n;
    return out_write(s->o, p, n, err);
}

static cg_status emit(const cg_gguf_writer *w, out *o, cg_err *err) {
    cg_status st;
    if ((st = out_write(o, CG_GGUF_MAGIC, 4, err)) || (st = out_u32(o, w->version, err)) ||
        (st = out_u64(o, w->n_tensors, err)) || (st = out_u64(o, w->n_kv, err)))
        return st;
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kvs[i];
        if ((st = out_u64(o, kv->key_len, err)) || (st = out_write(o, kv->key, kv->key_len, err)) ||
            (st = out_u32(o, kv->type, err)) || (st = out_write(o, kv->value, kv->value_size, err)))
            return st;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        if ((st = out_u64(o, t->name_len, err)) || (st = out_write(o, t->name, t->name_len, err)) ||
            (st = out_u32(o, t->n_dims, err)))
            return st;
        for (uint32_t d = 0; d < t->n_dims; d++)
            if ((st = out_u64(o, (uint64_t)t->ne[d], err))) return st;
        if ((st = out_u32(o, t->type, err)) || (st = out_u64(o, off, err))) return st;
        uint64_t padded;
        if (!cg_align_up_u64(t->n_bytes, w->alignment, &padded) || !cg_add_u64(off, padded, &off))
            return cg_err_set(err, CG_ERR_LIMIT, "gguf writer: data section too large");
    }
    if ((st = out_pad(o, w->alignment, err))) return st;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        if (t->produce) {
            cg_gguf_sink sink = {.o = o, .remaining = t->n_bytes, .name = t->name};
            if ((st = t->produce(t->user, i, t->n_bytes, &sink, err))) return st;
            if (sink.remaining)
                return cg_err_set(err, CG_ERR_INVALID,
                                  "gguf writer: tensor '%s': producer wrote %" PRIu64 " of %" PRIu64 " bytes", t->name,
                                  t->n_bytes - sink.remaining, t->n_bytes);
        } else {
            // Borrowed data: write in slices so a size above SIZE_MAX (32-bit hosts) cannot wrap.
            const unsigned char *p = t->data;
            for (uint64_t done = 0; done < t->n_bytes;) {
                uint64_t n = t->n_bytes - done;
                if (n > (1u << 30)) n = 1u << 30;
                if ((st = out_write(o, p + done, (size_t)n, err))) return st;
                done += n;
            }
        }
        if ((st = out_pad(o, w->alignment, err))) return st;
    }
    return out_flush(o, err);
}

cg_status cg_gguf_writer_write_mem(const cg_gguf_writer *w, cg_buf *buf, cg_err *err) {
    out o = {.fd = -1, .path = "(memory)", .mem = buf};
    return emit(w, &o, err);
}

cg_status cg_gguf_writer_write_file(const cg_gguf_writer *w, const char *path, cg_err *err) {
    size_t n = strlen(path);
    char *tmp = malloc(n + 5);
    unsigned char *buf = malloc(1 << 20);
    if (!tmp || !buf) {
        free(tmp);
        free(buf);
        return cg_err_set(err, CG_ERR_NOMEM, "gguf writer: out of memory");
    }
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    cg_status st = CG_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = cg_err_set(err, CG_ERR_IO, "gguf writer: cannot create '%s': %s", tmp, strerror(errno));
        goto done;
    }
    out o = {.fd = fd, .path = tmp, .buf = buf, .cap = 1 << 20};
    st = emit(w, &o, err);
    if (!st && fsync(fd) != 0)
        st = cg_err_set(err, CG_ERR_IO, "gguf writer: cannot sync '%s': %s", tmp, strerror(errno));
    if (close(fd) != 0 && !st)
        st = cg_err_set(err, CG_ERR_IO, "gguf writer: cannot close '%s': %s", tmp, strerror(errno));
    if (!st && rename(tmp, path) != 0)
        st = cg_err_set(err, CG_ERR_IO, "gguf writer: cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    if (st) {
        unlink(tmp);
        goto done;
    }
    // Make the rename durable. Failure here is not an error: the file is complete either way, and
    // some file systems do not support syncing a directory.
    {
        const char *slash = strrchr(path, '/');
        char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
        if (dir) {
            int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                (void)fsync(dfd);
                close(dfd);
            }
            free(dir);
        }
    }
done:
    free(tmp);
    free(buf);
    return st;
}
