// quantize.c — GGUF → GGUF conversion to a quantization mix (see quantize.h).
//
// Flow: open IN (mmap) → read the hparams the mix rules need → order the tensors as llama.cpp's
// loader does → choose each tensor's type (quant/mix.c) → check that every conversion is possible
// before anything is written → build the writer: metadata copied in order, then the two keys
// llama-quantize sets, then one streaming producer per tensor → write OUT atomically.
//
// A producer converts its tensor in chunks of rows (CHUNK_BYTES of output at most): the pool's
// threads take contiguous row ranges of the chunk, each dequantizing a row into its own f32
// scratch row and quantizing it into the chunk buffer; then the chunk goes to the writer. Rows are
// independent for every format (no importance matrix), so the result does not depend on the
// number of threads. Memory: one chunk plus one f32 row per thread; tensor data is read straight
// from the mapping. A tensor that keeps its type is copied byte for byte.
#include "model/quantize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/num.h"
#include "base/thread.h"
#include "base/time.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

#define CHUNK_BYTES ((uint64_t)8 << 20)   // output bytes converted per pool run
#define COPY_BYTES ((uint64_t)64 << 20)   // bytes per write when a tensor is copied as is

// What the pool threads work on: rows [row0, row0 + n_rows) of one tensor.
typedef struct chunk_job {
    const unsigned char *src;   // tensor data (mapping)
    uint64_t src_row_bytes, dst_row_bytes;
    int64_t ne0, row0, n_rows;
    const cg_qtype_traits *st, *dt;
    bool src_f32, dst_f32;
    unsigned char *dst;         // chunk buffer: n_rows * dst_row_bytes
    float **scratch;            // per thread: ne0 floats
} chunk_job;

typedef struct qctx {
    const cg_gguf *g;
    const cg_quantize_params *p;
    cg_pool *pool;
    int n_thread;
    const size_t *order;        // output position -> input tensor index
    const uint32_t *types;      // output position -> new type
    size_t n;
    unsigned char *chunk;
    uint64_t chunk_cap;
    float **scratch;
    int64_t scratch_cap;        // floats per thread row
    uint64_t bytes_done, bytes_total;
    chunk_job job;
} qctx;

static void convert_rows(void *ctx, int i_thread, int n_thread) {
    const chunk_job *j = ctx;
    int64_t b, e;
    cg_pool_split(j->n_rows, i_thread, n_thread, &b, &e);
    float *tmp = j->scratch[i_thread];
    for (int64_t r = b; r < e; r++) {
        const unsigned char *src = j->src + (uint64_t)(j->row0 + r) * j->src_row_bytes;
        unsigned char *dst = j->dst + (uint64_t)r * j->dst_row_bytes;
        const float *f;
        if (j->src_f32 && (uintptr_t)src % _Alignof(float) == 0) {
            f = (const float *)(const void *)src;
        } else {
            if (j->src_f32)
                memcpy(tmp, src, (size_t)j->ne0 * sizeof(float));
            else
                j->st->to_f32(src, tmp, j->ne0);
            f = tmp;
        }
        if (j->dst_f32)
            memcpy(dst, f, (size_t)j->ne0 * sizeof(float));
        else
            j->dt->from_f32(f, dst, j->ne0);
    }
}

static void report(qctx *q, const char *name, size_t i) {
    if (q->p->progress) q->p->progress(q->p->progress_user, name, i, q->n, q->bytes_done, q->bytes_total);
}

static cg_status grow(qctx *q, uint64_t chunk_bytes, int64_t ne0, cg_err *err) {
    if (chunk_bytes > q->chunk_cap) {
        unsigned char *c = realloc(q->chunk, (size_t)chunk_bytes);
        if (!c) return cg_err_set(err, CG_ERR_NOMEM, "quantize: out of memory for a %llu-byte chunk",
                                  (unsigned long long)chunk_bytes);
        q->chunk = c;
        q->chunk_cap = chunk_bytes;
    }
    if (ne0 > q->scratch_cap) {
        size_t bytes;
        if (!cg_mul_size((size_t)ne0, sizeof(float), &bytes))
            return cg_err_set(err, CG_ERR_LIMIT, "quantize: row of %lld elements is too long", (long long)ne0);
        for (int i = 0; i < q->n_thread; i++) {
            float *s = realloc(q->scratch[i], bytes);
            if (!s) return cg_err_set(err, CG_ERR_NOMEM, "quantize: out of memory for a %zu-byte row", bytes);
            q->scratch[i] = s;
        }
        q->scratch_cap = ne0;
    }
    return CG_OK;
}

// Writer callback: produces tensor i (output order) in its new type.
static cg_status produce(void *user, size_t i, uint64_t n_bytes, cg_gguf_sink *sink, cg_err *err) {
    qctx *q = user;
    const cg_gguf_tensor *t = cg_gguf_tensor_at(q->g, q->order[i]);
    uint32_t ty = q->types[i];
    cg_status st;
    if (ty == t->type) {
        const unsigned char *p = t->data;
        for (uint64_t off = 0; off < t->n_bytes;) {
            uint64_t k = t->n_bytes - off < COPY_BYTES ? t->n_bytes - off : COPY_BYTES;
            if ((st = cg_gguf_sink_write(sink, p + off, (size_t)k, err))) return st;
            off += k;
            q->bytes_done += k;
            report(q, t->name, i);
        }
        return CG_OK;
    }
    if (t->n_elems == 0 || t->ne[0] == 0) return CG_OK;
    chunk_job *j = &q->job;
    *j = (chunk_job){.src = t->data, .ne0 = t->ne[0], .st = cg_qtype_get(t->type), .dt = cg_qtype_get(ty),
                     .src_f32 = t->type == CG_QTYPE_F32, .dst_f32 = ty == CG_QTYPE_F32};
    if ((st = cg_qtype_row_size(t->type, (uint64_t)t->ne[0], &j->src_row_bytes, err)) ||
        (st = cg_qtype_row_size(ty, (uint64_t)t->ne[0], &j->dst_row_bytes, err)))
        return cg_err_wrap(err, "quantize: tensor '%s'", t->name);
    int64_t n_rows = t->n_elems / t->ne[0];
    if ((uint64_t)n_rows * j->dst_row_bytes != n_bytes)
        return cg_err_set(err, CG_ERR_INTERNAL, "quantize: tensor '%s': %llu bytes expected, rows give %llu",
                          t->name, (unsigned long long)n_bytes, (unsigned long long)((uint64_t)n_rows * j->dst_row_bytes));
    int64_t rows_per_chunk = (int64_t)(CHUNK_BYTES / j->dst_row_bytes);
    if (rows_per_chunk < 1) rows_per_chunk = 1;
    if (rows_per_chunk > n_rows) rows_per_chunk = n_rows;
    if ((st = grow(q, (uint64_t)rows_per_chunk * j->dst_row_bytes, j->ne0, err))) return st;
    j->dst = q->chunk;
    j->scratch = q->scratch;
    for (int64_t r0 = 0; r0 < n_rows; r0 += rows_per_chunk) {
        j->row0 = r0;
        j->n_rows = n_rows - r0 < rows_per_chunk ? n_rows - r0 : rows_per_chunk;
        // Small chunks are not worth waking the workers for.
        if (j->n_rows * j->ne0 < 4096 || q->n_thread == 1)
            convert_rows(j, 0, 1);
        else
            cg_pool_run(q->pool, convert_rows, j);
        uint64_t k = (uint64_t)j->n_rows * j->dst_row_bytes;
        if ((st = cg_gguf_sink_write(sink, q->chunk, (size_t)k, err))) return st;
        q->bytes_done += k;
        report(q, t->name, i);
    }
    return CG_OK;
}

// An unsigned integer metadata value, or element 0 of an integer array (per-layer hparams).
static cg_status hparam_u32(const cg_gguf *g, const char *key, bool required, uint32_t dflt, uint32_t *out,
                            cg_err *err) {
    const cg_gguf_kv *kv = cg_gguf_find(g, key);
    *out = dflt;
    if (!kv) {
        if (required) return cg_err_set(err, CG_ERR_NOT_FOUND, "quantize: the model has no '%s' key", key);
        return CG_OK;
    }
    if (kv->type != CG_GGUF_TYPE_ARRAY) return cg_gguf_get_u32_any(g, key, out, err);
    cg_gguf_scalar s;
    cg_status st;
    if (kv->n == 0 || !cg_gguf_type_is_int(kv->elem_type))
        return cg_err_set(err, CG_ERR_TYPE, "quantize: '%s' is an array of %llu %s, expected integers", key,
                          (unsigned long long)kv->n, cg_gguf_type_name(kv->elem_type));
    if ((st = cg_gguf_arr_scalar(kv, 0, &s, err))) return st;
    int64_t v;
    switch (kv->elem_type) {
    case CG_GGUF_TYPE_UINT8: v = s.u8; break;
    case CG_GGUF_TYPE_INT8: v = s.i8; break;
    case CG_GGUF_TYPE_UINT16: v = s.u16; break;
    case CG_GGUF_TYPE_INT16: v = s.i16; break;
    case CG_GGUF_TYPE_UINT32: v = s.u32; break;
    case CG_GGUF_TYPE_INT32: v = s.i32; break;
    case CG_GGUF_TYPE_UINT64: v = s.u64 > INT64_MAX ? -1 : (int64_t)s.u64; break;
    default: v = s.i64; break;
    }
    if (v < 0 || v > UINT32_MAX)
        return cg_err_set(err, CG_ERR_LIMIT, "quantize: '%s'[0] = %lld is out of range", key, (long long)v);
    *out = (uint32_t)v;
    return CG_OK;
}

static int cmp_by_name(const void *a, const void *b) {
    return cg_mix_name_cmp(((const cg_mix_tensor *)a)->name, ((const cg_mix_tensor *)b)->name);
}

// The first conversion chingu cannot do, as an error.
static cg_status check_convertible(const cg_mix_tensor *t, uint32_t to, cg_err *err) {
    if (to == t->type) return CG_OK;
    const cg_qtype_traits *st = cg_qtype_get(t->type), *dt = cg_qtype_get(to);
    if (t->type != CG_QTYPE_F32 && (!st || !st->to_f32))
        return cg_err_set(err, CG_ERR_UNSUPPORTED, "quantize: tensor '%s' is %s, which chingu cannot read yet (needed to make %s)",
                          t->name, cg_qtype_name(t->type), cg_qtype_name(to));
    if (to != CG_QTYPE_F32 && (!dt || !dt->from_f32))
        return cg_err_set(err, CG_ERR_UNSUPPORTED, "quantize: tensor '%s' should become %s, which chingu cannot write yet",
                          t->name, cg_qtype_name(to));
    return CG_OK;
}

cg_status cg_quantize_file(const char *in, const char *out, const cg_quantize_params *p, cg_err *err) {
    cg_status st = CG_OK;
    cg_gguf *g = NULL;
    cg_gguf_writer *w = NULL;
    cg_mix_tensor *mt = NULL;
    size_t *order = NULL;
    uint32_t *types = NULL;
    qctx q = {0};
    uint64_t t_start = cg_time_ns();

    if (!in || !out || !p) return cg_err_set(err, CG_ERR_INVALID, "quantize: missing input, output or parameters");
    const cg_ftype_info *fi = cg_ftype_get((uint32_t)p->ftype);
    if (!fi) return cg_err_set(err, CG_ERR_INVALID, "quantize: unsupported file type %d", (int)p->ftype);

    if ((st = cg_gguf_open(in, &g, err))) {
        cg_err_wrap(err, "quantize: '%s'", in);
        goto done;
    }

    // The facts the mix rules read.
    cg_gguf_str arch;
    char arch_s[128], key[256];
    cg_mix_hparams hp = {0};
    if ((st = cg_gguf_get_str(g, "general.architecture", &arch, err))) goto done;
    if (arch.n == 0 || arch.n >= sizeof arch_s || memchr(arch.p, 0, arch.n)) {
        st = cg_err_set(err, CG_ERR_FORMAT, "quantize: general.architecture '%.*s' is not a valid name",
                        (int)(arch.n > 64 ? 64 : arch.n), arch.p);
        goto done;
    }
    memcpy(arch_s, arch.p, arch.n);
    arch_s[arch.n] = 0;
    hp.arch = arch_s;
    snprintf(key, sizeof key, "%s.block_count", arch_s);
    if ((st = hparam_u32(g, key, true, 0, &hp.n_layer, err))) goto done;
    snprintf(key, sizeof key, "%s.expert_count", arch_s);
    if ((st = hparam_u32(g, key, false, 0, &hp.n_expert, err))) goto done;
    snprintf(key, sizeof key, "%s.attention.head_count", arch_s);
    if ((st = hparam_u32(g, key, false, 0, &hp.n_head, err))) goto done;
    snprintf(key, sizeof key, "%s.attention.head_count_kv", arch_s);
    if ((st = hparam_u32(g, key, false, hp.n_head, &hp.n_head_kv, err))) goto done;

    // Tensors in llama.cpp's order, and their new types.
    size_t n = cg_gguf_n_tensors(g);
    mt = calloc(n ? n : 1, sizeof *mt);
    order = calloc(n ? n : 1, sizeof *order);
    types = calloc(n ? n : 1, sizeof *types);
    if (!mt || !order || !types) {
        st = cg_err_set(err, CG_ERR_NOMEM, "quantize: out of memory for %zu tensors", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const cg_gguf_tensor *t = cg_gguf_tensor_at(g, i);
        mt[i] = (cg_mix_tensor){.name = t->name, .n_dims = t->n_dims, .type = t->type};
        memcpy(mt[i].ne, t->ne, sizeof mt[i].ne);
    }
    qsort(mt, n, sizeof *mt, cmp_by_name);
    for (size_t i = 0; i < n; i++) order[i] = cg_gguf_find_tensor(g, mt[i].name)->index;
    if ((st = cg_mix_choose(&hp, p->ftype, p->pure, mt, n, types, err))) goto done;
    size_t n_converted = 0;
    bool requant = false;
    for (size_t i = 0; i < n; i++) {
        if ((st = check_convertible(&mt[i], types[i], err))) goto done;
        if (types[i] != mt[i].type) {
            n_converted++;
            requant |= cg_qtype_get(mt[i].type)->is_quantized;
        }
    }
    if (requant) CG_WARN("quantize: '%s' is already quantized; converting again loses more precision", in);

    // Metadata as llama-quantize writes it: the input's keys in order, then the version and the
    // file type (removed first, so they move to the end), without split keys.
    if ((st = cg_gguf_writer_new(&w, err))) goto done;
    for (size_t i = 0; i < cg_gguf_n_kv(g); i++)
        if ((st = cg_gguf_writer_copy_kv(w, cg_gguf_kv_at(g, i), err))) goto done;
    cg_gguf_writer_remove(w, "general.quantization_version");
    if ((st = cg_gguf_writer_set_u32(w, "general.quantization_version", 2, err))) goto done;
    cg_gguf_writer_remove(w, "general.file_type");
    if ((st = cg_gguf_writer_set_u32(w, "general.file_type", (uint32_t)p->ftype, err))) goto done;
    cg_gguf_writer_remove(w, "split.no");
    cg_gguf_writer_remove(w, "split.count");
    cg_gguf_writer_remove(w, "split.tensors.count");

    q = (qctx){.g = g, .p = p, .order = order, .types = types, .n = n};
    for (size_t i = 0; i < n; i++) {
        const cg_gguf_tensor *t = cg_gguf_tensor_at(g, order[i]);
        uint64_t row, bytes = 0;
        if ((st = cg_qtype_row_size(types[i], (uint64_t)t->ne[0], &row, err))) goto done;
        if (!cg_mul_u64(row, t->ne[0] ? (uint64_t)(t->n_elems / t->ne[0]) : 0, &bytes) ||
            !cg_add_u64(q.bytes_total, bytes, &q.bytes_total)) {
            st = cg_err_set(err, CG_ERR_LIMIT, "quantize: tensor '%s' is too large", t->name);
            goto done;
        }
        if ((st = cg_gguf_writer_add_tensor_cb(w, t->name, types[i], t->n_dims, t->ne, produce, &q, err))) goto done;
    }

    if ((st = cg_pool_new(p->n_thread, &q.pool, err))) goto done;
    q.n_thread = cg_pool_size(q.pool);
    q.scratch = calloc((size_t)q.n_thread, sizeof *q.scratch);
    if (!q.scratch) {
        st = cg_err_set(err, CG_ERR_NOMEM, "quantize: out of memory");
        goto done;
    }
    if ((st = cg_gguf_writer_write_file(w, out, err))) goto done;

    if (p->stats) {
        struct stat sb;
        *p->stats = (cg_quantize_stats){
            .in_file_bytes = cg_gguf_file_size(g),
            .out_file_bytes = stat(out, &sb) == 0 ? (uint64_t)sb.st_size : 0,
            .n_tensors = n,
            .n_converted = n_converted,
            .seconds = (double)(cg_time_ns() - t_start) / 1e9,
        };
    }

done:
    if (q.scratch)
        for (int i = 0; i < q.n_thread; i++) free(q.scratch[i]);
    free(q.scratch);
    free(q.chunk);
    cg_pool_free(q.pool);
    cg_gguf_writer_free(w);
    free(types);
    free(order);
    free(mt);
    cg_gguf_close(g);
    return st;
}
