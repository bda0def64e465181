// jval.c — reference-counted JSON-like values, a strict JSON parser and Python-compatible printers.
//
// Invariants: refs ≥ 1 while a value is reachable; a STR/UNDEF buffer is always NUL-terminated at
// p[n] (p may be NULL only for a nameless UNDEF); dict keys are unique under cg_jval_equal. The
// parser is recursive with an explicit depth cap, checks every size for overflow and reports the
// byte offset of the first problem. Dicts use linear lookup (chat data is small); an object in
// JSON input may hold at most JV_MAX_KEYS keys so duplicate detection stays bounded.
#include "tok/jval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"
#include "base/utf8.h"

#define JV_MAX_KEYS 8192
#define JV_MAX_ITEMS (1u << 26)

static cg_jval *jv_new(cg_jval_kind k) {
    cg_jval *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->refs = 1;
    v->kind = (uint8_t)k;
    return v;
}

cg_jval *cg_jval_null(void) { return jv_new(CG_JV_NULL); }
cg_jval *cg_jval_bool(bool b) {
    cg_jval *v = jv_new(CG_JV_BOOL);
    if (v) v->u.b = b;
    return v;
}
cg_jval *cg_jval_int(int64_t i) {
    cg_jval *v = jv_new(CG_JV_INT);
    if (v) v->u.i = i;
    return v;
}
cg_jval *cg_jval_float(double f) {
    cg_jval *v = jv_new(CG_JV_FLOAT);
    if (v) v->u.f = f;
    return v;
}
cg_jval *cg_jval_str(const char *p, size_t n) {
    if (n == SIZE_MAX) return NULL;
    char *c = malloc(n + 1);
    if (!c) return NULL;
    if (n) memcpy(c, p, n);
    c[n] = 0;
    return cg_jval_str_take(c, n);
}
cg_jval *cg_jval_cstr(const char *s) { return cg_jval_str(s, strlen(s)); }
cg_jval *cg_jval_str_take(char *p, size_t n) {
    cg_jval *v = jv_new(CG_JV_STR);
    if (!v) { free(p); return NULL; }
    v->u.s.p = p;
    v->u.s.n = n;
    return v;
}
cg_jval *cg_jval_list(void) { return jv_new(CG_JV_LIST); }
cg_jval *cg_jval_dict(void) { return jv_new(CG_JV_DICT); }
cg_jval *cg_jval_undef(const char *name, size_t n) {
    cg_jval *v = jv_new(CG_JV_UNDEF);
    if (!v) return NULL;
    if (name) {
        v->u.s.p = malloc(n + 1);
        if (!v->u.s.p) { free(v); return NULL; }
        memcpy(v->u.s.p, name, n);
        v->u.s.p[n] = 0;
        v->u.s.n = n;
    }
    return v;
}
cg_jval *cg_jval_func(void *data, void (*drop)(void *), int tag) {
    cg_jval *v = jv_new(CG_JV_FUNC);
    if (!v) { if (drop) drop(data); return NULL; }
    v->u.fn.data = data;
    v->u.fn.drop = drop;
    v->u.fn.tag = tag;
    return v;
}

cg_jval *cg_jval_ref(cg_jval *v) {
    if (v && !v->immortal) v->refs++;
    return v;
}

void cg_jval_make_immortal(cg_jval *v) {
    if (v) v->immortal = 1;
}

void cg_jval_release_immortal(cg_jval *v) {
    if (!v) return;
    v->immortal = 0;
    cg_jval_unref(v);
}

void cg_jval_unref(cg_jval *v) {
    if (!v || v->immortal || --v->refs > 0) return;
    switch ((cg_jval_kind)v->kind) {
    case CG_JV_STR: case CG_JV_UNDEF: free(v->u.s.p); break;
    case CG_JV_LIST:
        for (size_t i = 0; i < v->u.list.n; i++) cg_jval_unref(v->u.list.items[i]);
        free(v->u.list.items);
        break;
    case CG_JV_DICT: case CG_JV_NS:
        for (size_t i = 0; i < v->u.dict.n; i++) {
            cg_jval_unref(v->u.dict.keys[i]);
            cg_jval_unref(v->u.dict.vals[i]);
        }
        free(v->u.dict.keys);
        free(v->u.dict.vals);
        break;
    case CG_JV_FUNC: if (v->u.fn.drop) v->u.fn.drop(v->u.fn.data); break;
    default: break;
    }
    free(v);
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap * 2 : 4, bytes;
    if (nc < need) nc = need;
    if (!cg_mul_size(nc, elem, &bytes)) return false;
    void *q = realloc(*p, bytes);
    if (!q) return false;
    *p = q;
    *cap = nc;
    return true;
}

bool cg_jval_list_push(cg_jval *l, cg_jval *v) {
    if (!v) return false;
    if (v->depth + 1 >= CG_JVAL_MAX_DEPTH || l->u.list.n >= JV_MAX_ITEMS ||
        !grow((void **)&l->u.list.items, &l->u.list.cap, l->u.list.n + 1, sizeof(cg_jval *))) {
        cg_jval_unref(v);
        return false;
    }
    l->u.list.items[l->u.list.n++] = v;
    if (v->depth + 1 > l->depth) l->depth = (uint16_t)(v->depth + 1);
    return true;
}

bool cg_jval_dict_set(cg_jval *d, cg_jval *key, cg_jval *v) {
    if (!key || !v || v->depth + 1 >= CG_JVAL_MAX_DEPTH || key->depth + 1 >= CG_JVAL_MAX_DEPTH) goto fail;
    uint16_t dep = (uint16_t)((v->depth > key->depth ? v->depth : key->depth) + 1);
    if (dep > d->depth) d->depth = dep;
    for (size_t i = 0; i < d->u.dict.n; i++) {
        if (cg_jval_equal(d->u.dict.keys[i], key)) {
            cg_jval_unref(d->u.dict.vals[i]);
            d->u.dict.vals[i] = v;
            cg_jval_unref(key);
            return true;
        }
    }
    size_t cap = d->u.dict.cap;
    if (d->u.dict.n >= JV_MAX_ITEMS ||
        !grow((void **)&d->u.dict.keys, &cap, d->u.dict.n + 1, sizeof(cg_jval *)))
        goto fail;
    cap = d->u.dict.cap;
    if (!grow((void **)&d->u.dict.vals, &cap, d->u.dict.n + 1, sizeof(cg_jval *))) goto fail;
    d->u.dict.cap = cap;
    d->u.dict.keys[d->u.dict.n] = key;
    d->u.dict.vals[d->u.dict.n] = v;
    d->u.dict.n++;
    return true;
fail:
    cg_jval_unref(key);
    cg_jval_unref(v);
    return false;
}

bool cg_jval_dict_set_c(cg_jval *d, const char *key, cg_jval *v) {
    return cg_jval_dict_set(d, cg_jval_cstr(key), v);
}

cg_jval *cg_jval_dict_get(const cg_jval *d, const cg_jval *key) {
    for (size_t i = 0; i < d->u.dict.n; i++)
        if (cg_jval_equal(d->u.dict.keys[i], key)) return d->u.dict.vals[i];
    return NULL;
}

cg_jval *cg_jval_dict_getn(const cg_jval *d, const char *key, size_t n) {
    for (size_t i = 0; i < d->u.dict.n; i++) {
        const cg_jval *k = d->u.dict.keys[i];
        if (k->kind == CG_JV_STR && k->u.s.n == n && memcmp(k->u.s.p, key, n) == 0)
            return d->u.dict.vals[i];
    }
    return NULL;
}

static bool is_num(const cg_jval *v) {
    return v->kind == CG_JV_INT || v->kind == CG_JV_FLOAT || v->kind == CG_JV_BOOL;
}
static double num_f(const cg_jval *v) {
    return v->kind == CG_JV_FLOAT ? v->u.f : v->kind == CG_JV_INT ? (double)v->u.i : (double)v->u.b;
}

bool cg_jval_equal(const cg_jval *a, const cg_jval *b) {
    if (a == b) return a->kind != CG_JV_FLOAT || a->u.f == a->u.f;
    if (is_num(a) && is_num(b)) {
        if (a->kind != CG_JV_FLOAT && b->kind != CG_JV_FLOAT) {
            int64_t x = a->kind == CG_JV_INT ? a->u.i : a->u.b, y = b->kind == CG_JV_INT ? b->u.i : b->u.b;
            return x == y;
        }
        return num_f(a) == num_f(b);
    }
    if (a->kind != b->kind) return false;
    switch ((cg_jval_kind)a->kind) {
    case CG_JV_NULL: case CG_JV_UNDEF: return true;
    case CG_JV_STR: return a->u.s.n == b->u.s.n && memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0;
    case CG_JV_LIST:
        if (a->u.list.n != b->u.list.n) return false;
        for (size_t i = 0; i < a->u.list.n; i++)
            if (!cg_jval_equal(a->u.list.items[i], b->u.list.items[i])) return false;
        return true;
    case CG_JV_DICT:
        if (a->u.dict.n != b->u.dict.n) return false;
        for (size_t i = 0; i < a->u.dict.n; i++) {
            const cg_jval *o = cg_jval_dict_get(b, a->u.dict.keys[i]);
            if (!o || !cg_jval_equal(a->u.dict.vals[i], o)) return false;
        }
        return true;
    default: return false;  // callables and namespaces compare by identity
    }
}

bool cg_jval_truthy(const cg_jval *v) {
    switch ((cg_jval_kind)v->kind) {
    case CG_JV_NULL: case CG_JV_UNDEF: return false;
    case CG_JV_BOOL: return v->u.b;
    case CG_JV_INT: return v->u.i != 0;
    case CG_JV_FLOAT: return v->u.f != 0.0;
    case CG_JV_STR: return v->u.s.n > 0;
    case CG_JV_LIST: return v->u.list.n > 0;
    case CG_JV_DICT: return v->u.dict.n > 0;
    default: return true;
    }
}

const char *cg_jval_type_name(const cg_jval *v) {
    switch ((cg_jval_kind)v->kind) {
    case CG_JV_NULL: return "NoneType";
    case CG_JV_BOOL: return "bool";
    case CG_JV_INT: return "int";
    case CG_JV_FLOAT: return "float";
    case CG_JV_STR: return "str";
    case CG_JV_LIST: return v->tuple ? "tuple" : "list";
    case CG_JV_DICT: return "dict";
    case CG_JV_UNDEF: return "Undefined";
    case CG_JV_FUNC: return "function";
    case CG_JV_NS: return "Namespace";
    }
    return "object";
}

// ---- JSON parser ------------------------------------------------------------------------------

typedef struct jp {
    const char *s;
    size_t n, i;
    int depth, max_depth;
    bool eof;   // the last failure is the input ending early: more bytes could make it valid
    cg_err *err;
} jp;

static cg_status jp_fail(jp *p, cg_status st, const char *what) {
    p->eof = p->i >= p->n;
    return cg_err_set(p->err, st, "json: %s at byte offset %zu", what, p->i);
}

// A failure reported at an earlier offset (the start of the token) that is still a truncation.
static cg_status jp_fail_eof(jp *p, cg_status st, const char *what) {
    st = jp_fail(p, st, what);
    p->eof = true;
    return st;
}

static void jp_ws(jp *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static int hexv(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static cg_status jp_hex4(jp *p, uint32_t *cp) {
    if (p->n - p->i < 4) {
        bool all_hex = true;
        for (size_t k = p->i; k < p->n; k++) all_hex &= hexv(p->s[k]) >= 0;
        cg_status st = jp_fail(p, CG_ERR_FORMAT, "truncated \\u escape");
        p->eof = all_hex;   // hex digits up to the end: the rest may follow
        return st;
    }
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexv(p->s[p->i + k]);
        if (h < 0) return jp_fail(p, CG_ERR_FORMAT, "bad hex digit in \\u escape");
        v = v * 16 + (uint32_t)h;
    }
    p->i += 4;
    *cp = v;
    return CG_OK;
}

static cg_status jp_string(jp *p, cg_jval **out) {
    cg_status st;
    cg_buf b;
    cg_buf_init(&b);
    p->i++;  // opening quote
    for (;;) {
        if (p->i >= p->n) { st = jp_fail(p, CG_ERR_FORMAT, "unterminated string"); goto fail; }
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') { p->i++; break; }
        if (c < 0x20) { st = jp_fail(p, CG_ERR_FORMAT, "control character in string"); goto fail; }
        if (c == '\\') {
            if (p->i + 1 >= p->n) { st = jp_fail_eof(p, CG_ERR_FORMAT, "unterminated escape"); goto fail; }
            char e = p->s[p->i + 1];
            p->i += 2;
            char one = 0;
            switch (e) {
            case '"': one = '"'; break;
            case '\\': one = '\\'; break;
            case '/': one = '/'; break;
            case 'b': one = '\b'; break;
            case 'f': one = '\f'; break;
            case 'n': one = '\n'; break;
            case 'r': one = '\r'; break;
            case 't': one = '\t'; break;
            case 'u': {
                uint32_t cp, lo;
                size_t at = p->i - 2;
                if ((st = jp_hex4(p, &cp))) goto fail;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (p->n - p->i < 2 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
                        bool cut = p->i == p->n || (p->n - p->i == 1 && p->s[p->i] == '\\');
                        p->i = at;
                        st = cut ? jp_fail_eof(p, CG_ERR_FORMAT, "unpaired surrogate escape")
                                 : jp_fail(p, CG_ERR_FORMAT, "unpaired surrogate escape");
                        goto fail;
                    }
                    p->i += 2;
                    if ((st = jp_hex4(p, &lo))) goto fail;
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        p->i = at;
                        st = jp_fail(p, CG_ERR_FORMAT, "unpaired surrogate escape");
                        goto fail;
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    p->i = at;
                    st = jp_fail(p, CG_ERR_FORMAT, "unpaired surrogate escape");
                    goto fail;
                }
                char enc[4];
                int k = cg_utf8_encode(cp, enc);
                cg_buf_append(&b, enc, (size_t)k);
                continue;
            }
            default:
                p->i -= 2;
                st = jp_fail(p, CG_ERR_FORMAT, "invalid escape");
                goto fail;
            }
            cg_buf_putc(&b, one);
            continue;
        }
        size_t run = p->i;
        while (run < p->n && p->s[run] != '"' && p->s[run] != '\\' && (unsigned char)p->s[run] >= 0x20) run++;
        size_t bad;
        if (!cg_utf8_valid(p->s + p->i, run - p->i, &bad)) {
            p->i += bad;
            st = jp_fail(p, CG_ERR_FORMAT, "invalid UTF-8 in string");
            goto fail;
        }
        cg_buf_append(&b, p->s + p->i, run - p->i);
        p->i = run;
    }
    if (!cg_buf_ok(&b)) { st = jp_fail(p, CG_ERR_NOMEM, "out of memory"); goto fail; }
    *out = b.data ? cg_jval_str_take(b.data, b.len) : cg_jval_str("", 0);
    if (!*out) return jp_fail(p, CG_ERR_NOMEM, "out of memory");
    return CG_OK;
fail:
    cg_buf_free(&b);
    return st;
}

static cg_status jp_number(jp *p, cg_jval **out) {
    size_t st0 = p->i, i = p->i;
    bool is_float = false;
    if (i < p->n && p->s[i] == '-') i++;
    if (i >= p->n) return jp_fail_eof(p, CG_ERR_FORMAT, "invalid number");
    if (!(p->s[i] >= '0' && p->s[i] <= '9')) return jp_fail(p, CG_ERR_FORMAT, "invalid number");
    if (p->s[i] == '0') {
        i++;
    } else {
        while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') i++;
    }
    if (i < p->n && p->s[i] == '.') {
        is_float = true;
        i++;
        if (i >= p->n || !(p->s[i] >= '0' && p->s[i] <= '9')) { p->i = i; return jp_fail(p, CG_ERR_FORMAT, "digit expected after '.'"); }
        while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') i++;
    }
    if (i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
        is_float = true;
        i++;
        if (i < p->n && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (i >= p->n || !(p->s[i] >= '0' && p->s[i] <= '9')) { p->i = i; return jp_fail(p, CG_ERR_FORMAT, "digit expected in exponent"); }
        while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') i++;
    }
    size_t len = i - st0;
    if (len > 400) return jp_fail(p, CG_ERR_LIMIT, "number too long");
    char tmp[401];
    memcpy(tmp, p->s + st0, len);
    tmp[len] = 0;
    p->i = i;
    if (!is_float) {
        char *end;
        errno = 0;
        long long v = strtoll(tmp, &end, 10);
        if (errno == 0) {
            *out = cg_jval_int((int64_t)v);
            goto done;
        }
    }
    *out = cg_jval_float(strtod(tmp, NULL));
done:
    if (!*out) return jp_fail(p, CG_ERR_NOMEM, "out of memory");
    return CG_OK;
}

static cg_status jp_value(jp *p, cg_jval **out);

static cg_status jp_container(jp *p, bool is_obj, cg_jval **out) {
    cg_status st;
    if (++p->depth > p->max_depth) return jp_fail(p, CG_ERR_LIMIT, "nesting too deep");
    cg_jval *c = is_obj ? cg_jval_dict() : cg_jval_list(), *k = NULL, *v = NULL;
    if (!c) return jp_fail(p, CG_ERR_NOMEM, "out of memory");
    p->i++;
    jp_ws(p);
    char close = is_obj ? '}' : ']';
    if (p->i < p->n && p->s[p->i] == close) { p->i++; goto ok; }
    for (;;) {
        jp_ws(p);
        if (is_obj) {
            if (p->i >= p->n || p->s[p->i] != '"') { st = jp_fail(p, CG_ERR_FORMAT, "object key string expected"); goto fail; }
            size_t kat = p->i;
            if ((st = jp_string(p, &k))) goto fail;
            if (c->u.dict.n >= JV_MAX_KEYS) { p->i = kat; st = jp_fail(p, CG_ERR_LIMIT, "too many keys in object"); goto fail; }
            if (cg_jval_dict_get(c, k)) {
                p->i = kat;
                st = cg_err_set(p->err, CG_ERR_FORMAT, "json: duplicate key \"%.*s\" at byte offset %zu",
                                (int)(k->u.s.n > 64 ? 64 : k->u.s.n), k->u.s.p, kat);
                goto fail;
            }
            jp_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') { st = jp_fail(p, CG_ERR_FORMAT, "':' expected"); goto fail; }
            p->i++;
        }
        if ((st = jp_value(p, &v))) goto fail;
        bool okp = is_obj ? cg_jval_dict_set(c, k, v) : cg_jval_list_push(c, v);
        k = v = NULL;
        if (!okp) { st = jp_fail(p, CG_ERR_NOMEM, "out of memory"); goto fail; }
        jp_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
        if (p->i < p->n && p->s[p->i] == close) { p->i++; break; }
        st = jp_fail(p, CG_ERR_FORMAT, is_obj ? "',' or '}' expected" : "',' or ']' expected");
        goto fail;
    }
ok:
    p->depth--;
    *out = c;
    return CG_OK;
fail:
    cg_jval_unref(k);
    cg_jval_unref(v);
    cg_jval_unref(c);
    return st;
}

static cg_status jp_lit(jp *p, const char *word, cg_jval *v, cg_jval **out) {
    size_t n = strlen(word);
    if (p->n - p->i < n || memcmp(p->s + p->i, word, n) != 0) {
        cg_jval_unref(v);
        bool cut = p->n - p->i < n && memcmp(p->s + p->i, word, p->n - p->i) == 0;
        return cut ? jp_fail_eof(p, CG_ERR_FORMAT, "unexpected character") : jp_fail(p, CG_ERR_FORMAT, "unexpected character");
    }
    if (!v) return jp_fail(p, CG_ERR_NOMEM, "out of memory");
    p->i += n;
    *out = v;
    return CG_OK;
}

static cg_status jp_value(jp *p, cg_jval **out) {
    jp_ws(p);
    if (p->i >= p->n) return jp_fail(p, CG_ERR_FORMAT, "unexpected end of input");
    char c = p->s[p->i];
    switch (c) {
    case '{': return jp_container(p, true, out);
    case '[': return jp_container(p, false, out);
    case '"': return jp_string(p, out);
    case 't': return jp_lit(p, "true", cg_jval_bool(true), out);
    case 'f': return jp_lit(p, "false", cg_jval_bool(false), out);
    case 'n': return jp_lit(p, "null", cg_jval_null(), out);
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return jp_number(p, out);
        return jp_fail(p, CG_ERR_FORMAT, "unexpected character");
    }
}

static cg_status parse_at(const char *text, size_t n, int max_depth, bool whole, cg_jval **out, size_t *end,
                          bool *truncated, cg_err *err) {
    jp p = {.s = text, .n = n, .max_depth = max_depth > 0 ? max_depth : 128, .err = err};
    if (p.max_depth > CG_JVAL_MAX_DEPTH - 2) p.max_depth = CG_JVAL_MAX_DEPTH - 2;
    cg_jval *v = NULL;
    *out = NULL;
    if (truncated) *truncated = false;
    if (!text && n) return cg_err_set(err, CG_ERR_INVALID, "json: NULL text");
    cg_status st = jp_value(&p, &v);
    if (st) {
        if (truncated) *truncated = st == CG_ERR_FORMAT && p.eof;
        return st;
    }
    if (end) *end = p.i;
    if (whole) {
        jp_ws(&p);
        if (p.i != n) {
            cg_jval_unref(v);
            return jp_fail(&p, CG_ERR_FORMAT, "trailing characters after the value");
        }
    }
    *out = v;
    return CG_OK;
}

cg_status cg_jval_parse(const char *text, size_t n, int max_depth, cg_jval **out, cg_err *err) {
    return parse_at(text, n, max_depth, true, out, NULL, NULL, err);
}

cg_status cg_jval_parse_prefix(const char *text, size_t n, int max_depth, cg_jval **out, size_t *end,
                               bool *truncated, cg_err *err) {
    return parse_at(text, n, max_depth, false, out, end, truncated, err);
}

// ---- printers ---------------------------------------------------------------------------------

void cg_jval_py_float(double f, cg_buf *out) {
    if (isnan(f)) { cg_buf_puts(out, "nan"); return; }
    if (isinf(f)) { cg_buf_puts(out, f < 0 ? "-inf" : "inf"); return; }
    if (f == 0) { cg_buf_puts(out, signbit(f) ? "-0.0" : "0.0"); return; }
    // Shortest digit string that round-trips, then Python's repr layout (fixed for 1e-4 ≤ |f| < 1e16).
    char tmp[64];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    char digits[32];
    int nd = 0;
    const char *q = tmp;
    bool neg = false;
    if (*q == '-') { neg = true; q++; }
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9') digits[nd++] = *q;
    int exp10 = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (neg) cg_buf_putc(out, '-');
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 < 0) {
            cg_buf_puts(out, "0.");
            for (int k = 0; k < -exp10 - 1; k++) cg_buf_putc(out, '0');
            cg_buf_append(out, digits, (size_t)nd);
        } else {
            for (int k = 0; k <= exp10; k++) cg_buf_putc(out, k < nd ? digits[k] : '0');
            cg_buf_putc(out, '.');
            if (nd > exp10 + 1) cg_buf_append(out, digits + exp10 + 1, (size_t)(nd - exp10 - 1));
            else cg_buf_putc(out, '0');
        }
        return;
    }
    cg_buf_putc(out, digits[0]);
    if (nd > 1) {
        cg_buf_putc(out, '.');
        cg_buf_append(out, digits + 1, (size_t)(nd - 1));
    }
    cg_buf_printf(out, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
}

static void dump_str(const char *s, size_t n, bool ascii, cg_buf *out) {
    cg_buf_putc(out, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e = NULL;
        char hex[16];
        if (ascii && c >= 0x80) {
            uint32_t cp;
            int k = cg_utf8_decode(s + i, n - i, &cp);
            if (k <= 0) { k = 1; cp = 0xFFFD; }
            cg_buf_append(out, s + run, i - run);
            if (cp >= 0x10000)
                cg_buf_printf(out, "\\u%04x\\u%04x", 0xD800 + ((cp - 0x10000) >> 10), 0xDC00 + ((cp - 0x10000) & 0x3FF));
            else
                cg_buf_printf(out, "\\u%04x", cp);
            i += (size_t)k - 1;
            run = i + 1;
            continue;
        }
        switch (c) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(hex, sizeof hex, "\\u%04x", c);
                e = hex;
            }
        }
        if (e) {
            cg_buf_append(out, s + run, i - run);
            cg_buf_puts(out, e);
            run = i + 1;
        }
    }
    cg_buf_append(out, s + run, n - run);
    cg_buf_putc(out, '"');
}

static void dump_nl(const cg_jval_dump_opts *o, int level, cg_buf *out) {
    cg_buf_putc(out, '\n');
    for (int l = 0; l < level; l++) {
        if (o->indent_str) cg_buf_puts(out, o->indent_str);
        else for (int k = 0; k < o->indent; k++) cg_buf_putc(out, ' ');
    }
}

static int key_cmp(const cg_jval *a, const cg_jval *b) {
    if (a->kind == CG_JV_STR && b->kind == CG_JV_STR) {
        size_t m = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
        int c = memcmp(a->u.s.p, b->u.s.p, m);
        return c ? c : (a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n);
    }
    if (is_num(a) && is_num(b)) return num_f(a) < num_f(b) ? -1 : num_f(a) > num_f(b);
    return 0;
}

static cg_status dump_rec(const cg_jval *v, const cg_jval_dump_opts *o, int level, cg_buf *out, cg_err *err) {
    cg_status st = CG_OK;
    bool pretty = o->indent >= 0 || o->indent_str;
    const char *isep = o->item_sep ? o->item_sep : pretty ? "," : ", ";
    const char *ksep = o->key_sep ? o->key_sep : ": ";
    if (level > 512) return cg_err_set(err, CG_ERR_LIMIT, "tojson: nesting deeper than 512");
    switch ((cg_jval_kind)v->kind) {
    case CG_JV_NULL: cg_buf_puts(out, "null"); break;
    case CG_JV_BOOL: cg_buf_puts(out, v->u.b ? "true" : "false"); break;
    case CG_JV_INT: cg_buf_printf(out, "%lld", (long long)v->u.i); break;
    case CG_JV_FLOAT:
        if (o->finite_only && !isfinite(v->u.f))
            return cg_err_set(err, CG_ERR_INVALID, "tojson: %g is not a JSON number", v->u.f);
        if (isnan(v->u.f)) cg_buf_puts(out, "NaN");
        else if (isinf(v->u.f)) cg_buf_puts(out, v->u.f < 0 ? "-Infinity" : "Infinity");
        else cg_jval_py_float(v->u.f, out);
        break;
    case CG_JV_STR: dump_str(v->u.s.p, v->u.s.n, o->ensure_ascii, out); break;
    case CG_JV_LIST:
        if (v->u.list.n == 0) { cg_buf_puts(out, "[]"); break; }
        cg_buf_putc(out, '[');
        for (size_t i = 0; i < v->u.list.n; i++) {
            if (i) cg_buf_puts(out, isep);
            if (pretty) dump_nl(o, level + 1, out);
            if ((st = dump_rec(v->u.list.items[i], o, level + 1, out, err))) return st;
        }
        if (pretty) dump_nl(o, level, out);
        cg_buf_putc(out, ']');
        break;
    case CG_JV_DICT: case CG_JV_NS: {
        size_t n = v->u.dict.n;
        if (n == 0) { cg_buf_puts(out, "{}"); break; }
        size_t *ord = malloc(n * sizeof *ord);
        if (!ord) return cg_err_set(err, CG_ERR_NOMEM, "tojson: out of memory");
        for (size_t i = 0; i < n; i++) ord[i] = i;
        if (o->sort_keys) {  // insertion sort: stable, dicts are small
            for (size_t i = 1; i < n; i++) {
                size_t x = ord[i], j = i;
                while (j > 0 && key_cmp(v->u.dict.keys[ord[j - 1]], v->u.dict.keys[x]) > 0) { ord[j] = ord[j - 1]; j--; }
                ord[j] = x;
            }
        }
        cg_buf_putc(out, '{');
        for (size_t i = 0; i < n && !st; i++) {
            const cg_jval *k = v->u.dict.keys[ord[i]];
            if (i) cg_buf_puts(out, isep);
            if (pretty) dump_nl(o, level + 1, out);
            if (k->kind == CG_JV_STR) {
                dump_str(k->u.s.p, k->u.s.n, o->ensure_ascii, out);
            } else if (k->kind == CG_JV_INT || k->kind == CG_JV_FLOAT || k->kind == CG_JV_BOOL || k->kind == CG_JV_NULL) {
                cg_buf tmp;
                cg_buf_init(&tmp);
                if ((st = dump_rec(k, o, level + 1, &tmp, err)) == CG_OK) {
                    cg_buf_putc(out, '"');
                    cg_buf_append(out, tmp.data, tmp.len);
                    cg_buf_putc(out, '"');
                }
                cg_buf_free(&tmp);
                if (st) break;
            } else {
                st = cg_err_set(err, CG_ERR_TYPE, "tojson: keys must be str, int, float, bool or None, not %s",
                                cg_jval_type_name(k));
                break;
            }
            cg_buf_puts(out, ksep);
            st = dump_rec(v->u.dict.vals[ord[i]], o, level + 1, out, err);
        }
        free(ord);
        if (st) return st;
        if (pretty) dump_nl(o, level, out);
        cg_buf_putc(out, '}');
        break;
    }
    default:
        return cg_err_set(err, CG_ERR_TYPE, "tojson: Object of type %s is not JSON serializable",
                          cg_jval_type_name(v));
    }
    return CG_OK;
}

cg_status cg_jval_dump(const cg_jval *v, const cg_jval_dump_opts *o, cg_buf *out, cg_err *err) {
    cg_jval_dump_opts def = {.indent = -1};
    cg_status st = dump_rec(v, o ? o : &def, 0, out, err);
    if (!st && !cg_buf_ok(out)) st = cg_err_set(err, CG_ERR_NOMEM, "tojson: out of memory");
    return st;
}

static void repr_str(const char *s, size_t n, cg_buf *out) {
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    cg_buf_putc(out, q);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        int k = cg_utf8_decode(s + i, n - i, &cp);
        if (k <= 0) { cg_buf_printf(out, "\\x%02x", c); i++; continue; }
        if (cp == (uint32_t)q || cp == '\\') { cg_buf_putc(out, '\\'); cg_buf_putc(out, (char)cp); }
        else if (cp == '\n') cg_buf_puts(out, "\\n");
        else if (cp == '\r') cg_buf_puts(out, "\\r");
        else if (cp == '\t') cg_buf_puts(out, "\\t");
        else if (cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad) cg_buf_printf(out, "\\x%02x", cp);
        else if (cp == 0x2028 || cp == 0x2029 || (cp >= 0x200b && cp <= 0x200f) || cp == 0xfeff)
            cg_buf_printf(out, "\\u%04x", cp);
        else cg_buf_append(out, s + i, (size_t)k);
        i += (size_t)k;
    }
    cg_buf_putc(out, q);
}

static void py_print(const cg_jval *v, bool repr, int depth, cg_buf *out) {
    if (depth > 512) { cg_buf_puts(out, "..."); return; }
    switch ((cg_jval_kind)v->kind) {
    case CG_JV_NULL: cg_buf_puts(out, "None"); break;
    case CG_JV_BOOL: cg_buf_puts(out, v->u.b ? "True" : "False"); break;
    case CG_JV_INT: cg_buf_printf(out, "%lld", (long long)v->u.i); break;
    case CG_JV_FLOAT: cg_jval_py_float(v->u.f, out); break;
    case CG_JV_STR:
        if (repr) repr_str(v->u.s.p, v->u.s.n, out);
        else cg_buf_append(out, v->u.s.p, v->u.s.n);
        break;
    case CG_JV_UNDEF: break;
    case CG_JV_LIST:
        cg_buf_putc(out, v->tuple ? '(' : '[');
        for (size_t i = 0; i < v->u.list.n; i++) {
            if (i) cg_buf_puts(out, ", ");
            py_print(v->u.list.items[i], true, depth + 1, out);
        }
        if (v->tuple && v->u.list.n == 1) cg_buf_putc(out, ',');
        cg_buf_putc(out, v->tuple ? ')' : ']');
        break;
    case CG_JV_DICT: case CG_JV_NS:
        cg_buf_puts(out, v->kind == CG_JV_NS ? "<Namespace {" : "{");
        for (size_t i = 0; i < v->u.dict.n; i++) {
            if (i) cg_buf_puts(out, ", ");
            py_print(v->u.dict.keys[i], true, depth + 1, out);
            cg_buf_puts(out, ": ");
            py_print(v->u.dict.vals[i], true, depth + 1, out);
        }
        cg_buf_puts(out, v->kind == CG_JV_NS ? "}>" : "}");
        break;
    case CG_JV_FUNC: cg_buf_puts(out, "<function>"); break;
    }
}

void cg_jval_py_str(const cg_jval *v, cg_buf *out) { py_print(v, false, 0, out); }
void cg_jval_py_repr(const cg_jval *v, cg_buf *out) { py_print(v, true, 0, out); }
