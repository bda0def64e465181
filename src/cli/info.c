// info.c — `chingu info FILE [--json]`: a GGUF file's header, metadata and tensor table.
//
// Text output is in the spirit of gguf-dump: the header facts, every key with its type and value
// (strings quoted with C escapes, long strings and arrays abbreviated), then the tensor table.
// --json prints one object:
//   {"version", "alignment", "data_offset", "size",
//    "kv": {key: value | {"type": "ARRAY", "elem_type", "n", "head": [first elements]}},
//    "tensors": [{"name", "type", "ggml_type_id", "ne", "offset", "data_offset_rel", "n_bytes"}]}
// where "offset" is the tensor's absolute file offset, as the shared MANIFEST.json lists it
// ("data_offset_rel" is the offset as stored in the file, relative to the data section). JSON strings
// that are not valid UTF-8 get U+FFFD for each invalid byte. A UINT64 above INT64_MAX is written as a
// JSON real (jansson has no unsigned integers).
// Exit status: 0 valid file, 1 invalid file (one line on stderr), 2 usage error.
#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/utf8.h"
#include "cli/cli.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

enum { ARRAY_HEAD = 8, STRING_HEAD = 64 };

// ---- text -----------------------------------------------------------------------------------

// Appends s quoted, with C escapes for quotes, backslashes, control bytes and invalid UTF-8.
// At most `max` bytes of s are shown (cut at a character boundary); then …" (N bytes) follows.
static void put_quoted(cg_buf *b, const char *s, size_t n, size_t max) {
    cg_buf_putc(b, '"');
    size_t i = 0;
    while (i < n && i < max) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            cg_buf_putc(b, '\\');
            cg_buf_putc(b, (char)c);
            i++;
        } else if (c == '\n') {
            cg_buf_puts(b, "\\n");
            i++;
        } else if (c == '\t') {
            cg_buf_puts(b, "\\t");
            i++;
        } else if (c == '\r') {
            cg_buf_puts(b, "\\r");
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            cg_buf_printf(b, "\\x%02x", c);
            i++;
        } else if (c < 0x80) {
            cg_buf_putc(b, (char)c);
            i++;
        } else {
            uint32_t cp;
            int len = cg_utf8_decode(s + i, n - i, &cp);
            if (len == 0) {
                cg_buf_printf(b, "\\x%02x", c);
                i++;
            } else {
                cg_buf_append(b, s + i, (size_t)len);
                i += (size_t)len;
            }
        }
    }
    cg_buf_putc(b, '"');
    if (i < n) cg_buf_printf(b, "… (%zu bytes)", n);
}

// Keys are valid UTF-8; print them bare unless they hold something that needs escaping.
static void put_key(cg_buf *b, const char *k, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c <= 0x20 || c == 0x7f || c == '"' || c == '\\' || c == '=') {
            put_quoted(b, k, n, n);
            return;
        }
    }
    cg_buf_append(b, k, n);
}

static void put_scalar(cg_buf *b, cg_gguf_type t, cg_gguf_scalar v) {
    switch (t) {
    case CG_GGUF_TYPE_UINT8: cg_buf_printf(b, "%u", v.u8); break;
    case CG_GGUF_TYPE_INT8: cg_buf_printf(b, "%d", v.i8); break;
    case CG_GGUF_TYPE_UINT16: cg_buf_printf(b, "%u", v.u16); break;
    case CG_GGUF_TYPE_INT16: cg_buf_printf(b, "%d", v.i16); break;
    case CG_GGUF_TYPE_UINT32: cg_buf_printf(b, "%" PRIu32, v.u32); break;
    case CG_GGUF_TYPE_INT32: cg_buf_printf(b, "%" PRId32, v.i32); break;
    case CG_GGUF_TYPE_UINT64: cg_buf_printf(b, "%" PRIu64, v.u64); break;
    case CG_GGUF_TYPE_INT64: cg_buf_printf(b, "%" PRId64, v.i64); break;
    case CG_GGUF_TYPE_FLOAT32: cg_buf_printf(b, "%.9g", (double)v.f32); break;
    case CG_GGUF_TYPE_FLOAT64: cg_buf_printf(b, "%.17g", v.f64); break;
    case CG_GGUF_TYPE_BOOL: cg_buf_puts(b, v.b ? "true" : "false"); break;
    default: cg_buf_puts(b, "?"); break;
    }
}

static void put_value(cg_buf *b, const cg_gguf_kv *kv) {
    if (kv->type == CG_GGUF_TYPE_STRING) {
        cg_gguf_str s = cg_gguf_kv_str(kv);
        put_quoted(b, s.p, s.n, STRING_HEAD);
        return;
    }
    if (kv->type != CG_GGUF_TYPE_ARRAY) {
        put_scalar(b, kv->type, cg_gguf_kv_scalar(kv));
        return;
    }
    cg_buf_printf(b, "[%s; %" PRIu64 "]", cg_gguf_type_name(kv->elem_type), kv->n);
    for (uint64_t i = 0; i < kv->n && i < ARRAY_HEAD; i++) {
        cg_buf_puts(b, i ? ", " : " ");
        if (kv->elem_type == CG_GGUF_TYPE_STRING) {
            cg_gguf_str s;
            if (cg_gguf_arr_str(kv, i, &s, NULL) == CG_OK) put_quoted(b, s.p, s.n, STRING_HEAD);
        } else {
            cg_gguf_scalar v;
            if (cg_gguf_arr_scalar(kv, i, &v, NULL) == CG_OK) put_scalar(b, kv->elem_type, v);
        }
    }
    if (kv->n > ARRAY_HEAD) cg_buf_puts(b, ", …");
}

// ggml's type name in upper case, as gguf-py spells it ("q4_K" -> "Q4_K").
static void type_upper(uint32_t type, char out[24]) {
    const char *n = cg_qtype_name(type);
    size_t i = 0;
    for (; n[i] && i < 23; i++) out[i] = (char)toupper((unsigned char)n[i]);
    out[i] = '\0';
}

static void render_text(const cg_gguf *g, cg_buf *b) {
    cg_buf_printf(b,
                  "GGUF version %" PRIu32 ", alignment %" PRIu32 ", %zu kv, %zu tensors, data offset %" PRIu64
                  ", file size %" PRIu64 "\n",
                  cg_gguf_version(g), cg_gguf_alignment(g), cg_gguf_n_kv(g), cg_gguf_n_tensors(g),
                  cg_gguf_data_offset(g), cg_gguf_file_size(g));
    cg_buf_printf(b, "\nmetadata (%zu):\n", cg_gguf_n_kv(g));
    for (size_t i = 0; i < cg_gguf_n_kv(g); i++) {
        const cg_gguf_kv *kv = cg_gguf_kv_at(g, i);
        cg_buf_printf(b, "  %4zu  %-7s  ", i, cg_gguf_type_name(kv->type));
        put_key(b, kv->key, kv->key_len);
        cg_buf_puts(b, " = ");
        put_value(b, kv);
        cg_buf_putc(b, '\n');
    }
    cg_buf_printf(b, "\ntensors (%zu):\n", cg_gguf_n_tensors(g));
    if (cg_gguf_n_tensors(g)) cg_buf_printf(b, "  %4s  %-40s  %-7s  %-24s  %12s  %12s\n", "#", "name", "type", "shape",
                                            "bytes", "offset");
    for (size_t i = 0; i < cg_gguf_n_tensors(g); i++) {
        const cg_gguf_tensor *t = cg_gguf_tensor_at(g, i);
        char type[24], shape[128];
        type_upper(t->type, type);
        int k = 0;
        for (uint32_t d = 0; d < t->n_dims && k >= 0 && (size_t)k < sizeof shape; d++)
            k += snprintf(shape + k, sizeof shape - (size_t)k, d ? " x %" PRId64 : "%" PRId64, t->ne[d]);
        cg_buf_printf(b, "  %4zu  %-40s  %-7s  %-24s  %12" PRIu64 "  %12" PRIu64 "\n", i, t->name, type, shape,
                      t->n_bytes, t->file_offset);
    }
}

// ---- JSON -----------------------------------------------------------------------------------

static json_t *jstr(const char *s, size_t n) {
    if (cg_utf8_valid(s, n, NULL)) return json_stringn(s, n);
    cg_buf b;
    cg_buf_init(&b);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = cg_utf8_decode(s + i, n - i, &cp);
        if (len == 0) {
            cg_buf_puts(&b, "\xEF\xBF\xBD");   // U+FFFD
            i++;
        } else {
            cg_buf_append(&b, s + i, (size_t)len);
            i += (size_t)len;
        }
    }
    json_t *j = cg_buf_ok(&b) ? json_stringn(b.data ? b.data : "", b.len) : NULL;
    cg_buf_free(&b);
    return j;
}

static json_t *jscalar(cg_gguf_type t, cg_gguf_scalar v) {
    switch (t) {
    case CG_GGUF_TYPE_UINT8: return json_integer(v.u8);
    case CG_GGUF_TYPE_INT8: return json_integer(v.i8);
    case CG_GGUF_TYPE_UINT16: return json_integer(v.u16);
    case CG_GGUF_TYPE_INT16: return json_integer(v.i16);
    case CG_GGUF_TYPE_UINT32: return json_integer(v.u32);
    case CG_GGUF_TYPE_INT32: return json_integer(v.i32);
    case CG_GGUF_TYPE_UINT64: return v.u64 > INT64_MAX ? json_real((double)v.u64) : json_integer((json_int_t)v.u64);
    case CG_GGUF_TYPE_INT64: return json_integer(v.i64);
    case CG_GGUF_TYPE_FLOAT32: return json_real((double)v.f32);
    case CG_GGUF_TYPE_FLOAT64: return json_real(v.f64);
    case CG_GGUF_TYPE_BOOL: return json_boolean(v.b);
    default: return json_null();
    }
}

static json_t *jvalue(const cg_gguf_kv *kv) {
    if (kv->type == CG_GGUF_TYPE_STRING) {
        cg_gguf_str s = cg_gguf_kv_str(kv);
        return jstr(s.p, s.n);
    }
    if (kv->type != CG_GGUF_TYPE_ARRAY) return jscalar(kv->type, cg_gguf_kv_scalar(kv));
    json_t *head = json_array();
    for (uint64_t i = 0; i < kv->n && i < ARRAY_HEAD; i++) {
        if (kv->elem_type == CG_GGUF_TYPE_STRING) {
            cg_gguf_str s = {NULL, 0};
            cg_gguf_arr_str(kv, i, &s, NULL);
            json_array_append_new(head, jstr(s.p, s.n));
        } else {
            cg_gguf_scalar v;
            memset(&v, 0, sizeof v);
            cg_gguf_arr_scalar(kv, i, &v, NULL);
            json_array_append_new(head, jscalar(kv->elem_type, v));
        }
    }
    return json_pack("{s:s, s:s, s:I, s:o}", "type", "ARRAY", "elem_type", cg_gguf_type_name(kv->elem_type), "n",
                     (json_int_t)kv->n, "head", head);
}

static json_t *render_json(const cg_gguf *g) {
    json_t *kvs = json_object();
    for (size_t i = 0; i < cg_gguf_n_kv(g); i++) {
        const cg_gguf_kv *kv = cg_gguf_kv_at(g, i);
        json_object_setn_new(kvs, kv->key, kv->key_len, jvalue(kv));
    }
    json_t *tensors = json_array();
    for (size_t i = 0; i < cg_gguf_n_tensors(g); i++) {
        const cg_gguf_tensor *t = cg_gguf_tensor_at(g, i);
        char type[24];
        type_upper(t->type, type);
        json_t *ne = json_array();
        for (uint32_t d = 0; d < t->n_dims; d++) json_array_append_new(ne, json_integer(t->ne[d]));
        json_array_append_new(tensors, json_pack("{s:s, s:s, s:i, s:o, s:I, s:I, s:I}", "name", t->name, "type", type,
                                                 "ggml_type_id", (int)t->type, "ne", ne, "offset",
                                                 (json_int_t)t->file_offset, "data_offset_rel", (json_int_t)t->offset,
                                                 "n_bytes", (json_int_t)t->n_bytes));
    }
    return json_pack("{s:i, s:i, s:I, s:I, s:o, s:o}", "version", (int)cg_gguf_version(g), "alignment",
                     (int)cg_gguf_alignment(g), "data_offset", (json_int_t)cg_gguf_data_offset(g), "size",
                     (json_int_t)cg_gguf_file_size(g), "kv", kvs, "tensors", tensors);
}

// ---- the command ----------------------------------------------------------------------------

// The error message on one line: control characters (a key may hold a newline) become escapes.
static void one_line(const char *in, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; in[i] && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
}

int cg_cli_info(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: chingu info FILE [--json]\n");
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            cg_cli_fail("info: unknown option '%s' (usage: chingu info FILE [--json])", argv[i]);
            return 2;
        } else if (path) {
            cg_cli_fail("info: more than one FILE (usage: chingu info FILE [--json])");
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        cg_cli_fail("info: missing FILE (usage: chingu info FILE [--json])");
        return 2;
    }
    cg_err err = {0};
    cg_gguf *g = NULL;
    if (cg_gguf_open(path, &g, &err) != CG_OK) {
        char msg[2 * CG_ERR_MSG_MAX];
        one_line(err.msg, msg, sizeof msg);
        return cg_cli_fail("info: %s: %s", path, msg);
    }
    int rc = 0;
    if (json) {
        json_t *j = render_json(g);
        char *s = j ? json_dumps(j, JSON_PRESERVE_ORDER | JSON_INDENT(1) | JSON_REAL_PRECISION(17)) : NULL;
        if (!s)
            rc = cg_cli_fail("info: %s: out of memory rendering JSON", path);
        else if (puts(s) == EOF)
            rc = cg_cli_fail("info: cannot write output");
        free(s);
        json_decref(j);
    } else {
        cg_buf b;
        cg_buf_init(&b);
        render_text(g, &b);
        if (!cg_buf_ok(&b))
            rc = cg_cli_fail("info: %s: out of memory", path);
        else if (fwrite(b.data, 1, b.len, stdout) != b.len)
            rc = cg_cli_fail("info: cannot write output");
        cg_buf_free(&b);
    }
    if (fflush(stdout) != 0 && rc == 0) rc = cg_cli_fail("info: cannot write output");
    cg_gguf_close(g);
    return rc;
}
