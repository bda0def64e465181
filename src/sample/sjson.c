// sjson.c — strict recursive-descent JSON reader into an arena-allocated tree (see sjson.h).
//
// Invariants: `pos` only moves forward; every error names the byte offset; nothing is allocated
// outside the caller's arena, so an error path needs no cleanup.
#include "sample/sjson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

typedef struct jp {
    const char *p;
    size_t n, pos;
    cg_arena *a;
    cg_err *err;
} jp;

static cg_status jerr(jp *j, const char *what) {
    return cg_err_set(j->err, CG_ERR_FORMAT, "json: %s at offset %zu", what, j->pos);
}

static void ws(jp *j) {
    while (j->pos < j->n && (j->p[j->pos] == ' ' || j->p[j->pos] == '\t' || j->p[j->pos] == '\n' || j->p[j->pos] == '\r'))
        j->pos++;
}

static int hex4(const char *s) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

static cg_status parse_string(jp *j, const char **out, size_t *out_len) {
    j->pos++;   // opening quote
    cg_buf b;
    cg_buf_init(&b);
    cg_status st = CG_OK;
    while (j->pos < j->n && j->p[j->pos] != '"') {
        unsigned char c = (unsigned char)j->p[j->pos];
        if (c < 0x20) { st = jerr(j, "control character in a string"); goto done; }
        if (c != '\\') {
            // copy a run of plain bytes, validating UTF-8 as we go
            size_t start = j->pos;
            while (j->pos < j->n && j->p[j->pos] != '"' && j->p[j->pos] != '\\' && (unsigned char)j->p[j->pos] >= 0x20)
                j->pos++;
            size_t bad;
            if (!cg_utf8_valid(j->p + start, j->pos - start, &bad)) {
                j->pos = start + bad;
                st = jerr(j, "invalid UTF-8 in a string");
                goto done;
            }
            cg_buf_append(&b, j->p + start, j->pos - start);
            continue;
        }
        if (j->pos + 1 >= j->n) { st = jerr(j, "unterminated escape"); goto done; }
        char e = j->p[j->pos + 1];
        j->pos += 2;
        switch (e) {
        case '"': cg_buf_putc(&b, '"'); break;
        case '\\': cg_buf_putc(&b, '\\'); break;
        case '/': cg_buf_putc(&b, '/'); break;
        case 'b': cg_buf_putc(&b, '\b'); break;
        case 'f': cg_buf_putc(&b, '\f'); break;
        case 'n': cg_buf_putc(&b, '\n'); break;
        case 'r': cg_buf_putc(&b, '\r'); break;
        case 't': cg_buf_putc(&b, '\t'); break;
        case 'u': {
            int u = j->pos + 4 <= j->n ? hex4(j->p + j->pos) : -1;
            if (u < 0) { st = jerr(j, "bad \\u escape"); goto done; }
            j->pos += 4;
            uint32_t cp = (uint32_t)u;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int lo = j->pos + 6 <= j->n && j->p[j->pos] == '\\' && j->p[j->pos + 1] == 'u' ? hex4(j->p + j->pos + 2) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) { st = jerr(j, "lone high surrogate in a \\u escape"); goto done; }
                j->pos += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                st = jerr(j, "lone low surrogate in a \\u escape");
                goto done;
            }
            char enc[4];
            int len = cg_utf8_encode(cp, enc);
            cg_buf_append(&b, enc, (size_t)len);
            break;
        }
        default: st = jerr(j, "unknown escape"); goto done;
        }
    }
    if (j->pos >= j->n) { st = jerr(j, "unterminated string"); goto done; }
    j->pos++;
    if (!cg_buf_ok(&b)) { st = cg_err_set(j->err, CG_ERR_NOMEM, "json: out of memory"); goto done; }
    *out = cg_arena_strndup(j->a, b.data ? b.data : "", b.len);
    *out_len = b.len;
    if (!*out) st = cg_err_set(j->err, CG_ERR_NOMEM, "json: out of memory");
done:
    cg_buf_free(&b);
    return st;
}

static cg_status parse_value(jp *j, sj *v, int depth);

static cg_status parse_number(jp *j, sj *v) {
    size_t s = j->pos;
    if (j->pos < j->n && j->p[j->pos] == '-') j->pos++;
    if (j->pos >= j->n) return jerr(j, "truncated number");
    if (j->p[j->pos] == '0') j->pos++;
    else if (j->p[j->pos] >= '1' && j->p[j->pos] <= '9')
        while (j->pos < j->n && j->p[j->pos] >= '0' && j->p[j->pos] <= '9') j->pos++;
    else return jerr(j, "bad number");
    if (j->pos < j->n && j->p[j->pos] == '.') {
        j->pos++;
        size_t d = j->pos;
        while (j->pos < j->n && j->p[j->pos] >= '0' && j->p[j->pos] <= '9') j->pos++;
        if (j->pos == d) return jerr(j, "number without digits after '.'");
    }
    if (j->pos < j->n && (j->p[j->pos] == 'e' || j->p[j->pos] == 'E')) {
        j->pos++;
        if (j->pos < j->n && (j->p[j->pos] == '+' || j->p[j->pos] == '-')) j->pos++;
        size_t d = j->pos;
        while (j->pos < j->n && j->p[j->pos] >= '0' && j->p[j->pos] <= '9') j->pos++;
        if (j->pos == d) return jerr(j, "number without exponent digits");
    }
    v->type = SJ_NUM;
    v->s = j->p + s;
    v->len = j->pos - s;
    char tmp[64];
    size_t l = v->len < sizeof tmp - 1 ? v->len : sizeof tmp - 1;
    memcpy(tmp, v->s, l);
    tmp[l] = 0;
    v->num = strtod(tmp, NULL);
    return CG_OK;
}

// Growable temporary arrays for members (heap), copied into the arena at the end.
static cg_status parse_container(jp *j, sj *v, int depth, bool is_obj) {
    cg_status st = CG_OK;
    size_t cap = 0, n = 0;
    sj *items = NULL;
    const char **keys = NULL;
    size_t *klen = NULL;
    j->pos++;
    ws(j);
    char close = is_obj ? '}' : ']';
    if (j->pos < j->n && j->p[j->pos] == close) {
        j->pos++;
        goto finish;
    }
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            sj *ni = realloc(items, cap * sizeof *ni);
            if (ni) items = ni;
            const char **nk = is_obj ? realloc(keys, cap * sizeof *nk) : NULL;
            if (nk) keys = nk;
            size_t *nl = is_obj ? realloc(klen, cap * sizeof *nl) : NULL;
            if (nl) klen = nl;
            if (!ni || (is_obj && (!nk || !nl))) { st = cg_err_set(j->err, CG_ERR_NOMEM, "json: out of memory"); goto done; }
        }
        if (is_obj) {
            ws(j);
            if (j->pos >= j->n || j->p[j->pos] != '"') { st = jerr(j, "expected a string key"); goto done; }
            size_t at = j->pos;
            if ((st = parse_string(j, &keys[n], &klen[n]))) goto done;
            for (size_t i = 0; i < n; i++)
                if (klen[i] == klen[n] && memcmp(keys[i], keys[n], klen[n]) == 0) {
                    j->pos = at;
                    st = jerr(j, "duplicate key");
                    goto done;
                }
            ws(j);
            if (j->pos >= j->n || j->p[j->pos] != ':') { st = jerr(j, "expected ':'"); goto done; }
            j->pos++;
        }
        ws(j);
        if ((st = parse_value(j, &items[n], depth + 1))) goto done;
        n++;
        ws(j);
        if (j->pos < j->n && j->p[j->pos] == ',') { j->pos++; continue; }
        if (j->pos < j->n && j->p[j->pos] == close) { j->pos++; break; }
        st = jerr(j, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
        goto done;
    }
finish:
    v->type = is_obj ? SJ_OBJ : SJ_ARR;
    v->n = n;
    if (n) {
        v->items = cg_arena_alloc(j->a, n * sizeof *v->items, 8);
        if (!v->items) { st = cg_err_set(j->err, CG_ERR_NOMEM, "json: out of memory"); goto done; }
        memcpy(v->items, items, n * sizeof *items);
        if (is_obj) {
            v->keys = cg_arena_alloc(j->a, n * sizeof *v->keys, 8);
            v->key_lens = cg_arena_alloc(j->a, n * sizeof *v->key_lens, 8);
            if (!v->keys || !v->key_lens) { st = cg_err_set(j->err, CG_ERR_NOMEM, "json: out of memory"); goto done; }
            memcpy(v->keys, keys, n * sizeof *keys);
            memcpy(v->key_lens, klen, n * sizeof *klen);
        }
    }
done:
    free(items);
    free(keys);
    free(klen);
    return st;
}

static cg_status parse_value(jp *j, sj *v, int depth) {
    memset(v, 0, sizeof *v);
    if (depth > SJ_MAX_DEPTH) return cg_err_set(j->err, CG_ERR_LIMIT, "json: nesting deeper than %d at offset %zu",
                                                SJ_MAX_DEPTH, j->pos);
    if (j->pos >= j->n) return jerr(j, "unexpected end of input");
    v->src_off = j->pos;
    cg_status st = CG_OK;
    char c = j->p[j->pos];
    if (c == '{' || c == '[') {
        st = parse_container(j, v, depth, c == '{');
    } else if (c == '"') {
        v->type = SJ_STR;
        st = parse_string(j, &v->s, &v->len);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        st = parse_number(j, v);
    } else if (j->n - j->pos >= 4 && memcmp(j->p + j->pos, "true", 4) == 0) {
        v->type = SJ_BOOL;
        v->b = true;
        j->pos += 4;
    } else if (j->n - j->pos >= 5 && memcmp(j->p + j->pos, "false", 5) == 0) {
        v->type = SJ_BOOL;
        j->pos += 5;
    } else if (j->n - j->pos >= 4 && memcmp(j->p + j->pos, "null", 4) == 0) {
        v->type = SJ_NULL;
        j->pos += 4;
    } else {
        st = jerr(j, "unexpected character");
    }
    v->src_len = j->pos - v->src_off;
    return st;
}

cg_status sj_parse_prefix(cg_arena *a, const char *p, size_t n, sj **out, size_t *end, cg_err *err) {
    jp j = {p, n, 0, a, err};
    sj *v = cg_arena_alloc(a, sizeof *v, 8);
    if (!v) return cg_err_set(err, CG_ERR_NOMEM, "json: out of memory");
    ws(&j);
    cg_status st = parse_value(&j, v, 0);
    if (st) return st;
    *out = v;
    *end = j.pos;
    return CG_OK;
}

cg_status sj_parse(cg_arena *a, const char *p, size_t n, sj **out, cg_err *err) {
    size_t end;
    cg_status st = sj_parse_prefix(a, p, n, out, &end, err);
    if (st) return st;
    jp j = {p, n, end, a, err};
    ws(&j);
    if (j.pos != n) return jerr(&j, "trailing characters after the value");
    return CG_OK;
}

const sj *sj_get(const sj *o, const char *key) {
    if (!o || o->type != SJ_OBJ) return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < o->n; i++)
        if (o->key_lens[i] == kl && memcmp(o->keys[i], key, kl) == 0) return &o->items[i];
    return NULL;
}

void sj_write_str(cg_buf *b, const char *s, size_t n) {
    cg_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') cg_buf_puts(b, "\\\"");
        else if (c == '\\') cg_buf_puts(b, "\\\\");
        else if (c == '\n') cg_buf_puts(b, "\\n");
        else if (c == '\r') cg_buf_puts(b, "\\r");
        else if (c == '\t') cg_buf_puts(b, "\\t");
        else if (c < 0x20) cg_buf_printf(b, "\\u%04x", c);
        else cg_buf_putc(b, (char)c);
    }
    cg_buf_putc(b, '"');
}

void sj_write(cg_buf *b, const sj *v) {
    switch (v->type) {
    case SJ_NULL: cg_buf_puts(b, "null"); break;
    case SJ_BOOL: cg_buf_puts(b, v->b ? "true" : "false"); break;
    case SJ_NUM: cg_buf_append(b, v->s, v->len); break;
    case SJ_STR: sj_write_str(b, v->s, v->len); break;
    case SJ_ARR:
        cg_buf_putc(b, '[');
        for (size_t i = 0; i < v->n; i++) {
            if (i) cg_buf_putc(b, ',');
            sj_write(b, &v->items[i]);
        }
        cg_buf_putc(b, ']');
        break;
    case SJ_OBJ:
        cg_buf_putc(b, '{');
        for (size_t i = 0; i < v->n; i++) {
            if (i) cg_buf_putc(b, ',');
            sj_write_str(b, v->keys[i], v->key_lens[i]);
            cg_buf_putc(b, ':');
            sj_write(b, &v->items[i]);
        }
        cg_buf_putc(b, '}');
        break;
    }
}
