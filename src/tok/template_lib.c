// template_lib.c — jinja2's filters and tests, the str/dict/list methods the sandbox allows, and
// the globals (range, dict, namespace, raise_exception, strftime_now).
//
// Semantics follow jinja2 3.1 and CPython: strings are UTF-8 indexed by code point, case mapping
// uses utf8proc's simple mappings, sort/unique/min/max/dictsort compare strings case-insensitively
// unless case_sensitive=True, whitespace means Python's str.isspace set. Methods that would mutate
// a list or dict are errors, as in ImmutableSandboxedEnvironment. Every function returns a new
// reference, or NULL with the render error set.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "base/num.h"
#include "base/utf8.h"
#include "tok/template_int.h"

static cg_jval *oom(rt *r) { return rt_fail(r, CG_ERR_NOMEM, "out of memory"); }
static bool eqn(const char *a, size_t an, const char *b) { return an == strlen(b) && memcmp(a, b, an) == 0; }
static bool is_int(const cg_jval *v) { return v->kind == CG_JV_INT || v->kind == CG_JV_BOOL; }
static bool is_num(const cg_jval *v) { return is_int(v) || v->kind == CG_JV_FLOAT; }
static int64_t ival(const cg_jval *v) { return v->kind == CG_JV_INT ? v->u.i : v->u.b; }
static double fval(const cg_jval *v) { return v->kind == CG_JV_FLOAT ? v->u.f : (double)ival(v); }

static cg_jval *take_buf(rt *r, cg_buf *b) {
    if (!cg_buf_ok(b)) { cg_buf_free(b); return oom(r); }
    cg_jval *v = b->data ? cg_jval_str_take(b->data, b->len) : cg_jval_str("", 0);
    b->data = NULL;
    return v ? v : oom(r);
}
static cg_jval *mkbool(rt *r, bool b) { cg_jval *v = cg_jval_bool(b); return v ? v : oom(r); }
static cg_jval *mkint(rt *r, int64_t i) { cg_jval *v = cg_jval_int(i); return v ? v : oom(r); }
static cg_jval *mkstr(rt *r, const char *p, size_t n) { cg_jval *v = cg_jval_str(p, n); return v ? v : oom(r); }

static bool py_space(uint32_t c) {
    return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xa0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
           c == 0x205f || c == 0x3000;
}

static uint32_t dec(const char *s, size_t n, size_t i, int *len) {
    uint32_t cp;
    int k = cg_utf8_decode(s + i, n - i, &cp);
    if (k <= 0) { *len = 1; return (unsigned char)s[i]; }
    *len = k;
    return cp;
}

// str(v) as a borrowed-or-new STR; caller unrefs.
static cg_jval *as_str(rt *r, cg_jval *v) { return rt_str_of(r, v); }

static bool in_chars(uint32_t c, const cg_jval *chars) {
    for (size_t i = 0; i < chars->u.s.n;) {
        int k;
        uint32_t d = dec(chars->u.s.p, chars->u.s.n, i, &k);
        if (d == c) return true;
        i += (size_t)k;
    }
    return false;
}

// strip: which 1 = left, 2 = right, 3 = both; chars NULL → whitespace.
static cg_jval *do_strip(rt *r, const cg_jval *s, const cg_jval *chars, int which) {
    size_t a = 0, b = s->u.s.n;
    if (chars && chars->kind == CG_JV_NULL) chars = NULL;
    if (chars && chars->kind != CG_JV_STR) return rt_fail(r, CG_ERR_FORMAT, "strip arg must be None or str");
    if (which & 1) {
        while (a < b) {
            int k;
            uint32_t c = dec(s->u.s.p, s->u.s.n, a, &k);
            if (chars ? !in_chars(c, chars) : !py_space(c)) break;
            a += (size_t)k;
        }
    }
    if (which & 2) {
        while (b > a) {
            size_t q = b - 1;
            while (q > a && ((unsigned char)s->u.s.p[q] & 0xC0) == 0x80) q--;
            int k;
            uint32_t c = dec(s->u.s.p, s->u.s.n, q, &k);
            if (chars ? !in_chars(c, chars) : !py_space(c)) break;
            b = q;
        }
    }
    return mkstr(r, s->u.s.p + a, b - a);
}

enum { CASE_UPPER, CASE_LOWER, CASE_CAPITALIZE, CASE_TITLE_JINJA, CASE_TITLE_PY, CASE_SWAP };

static cg_jval *do_case(rt *r, const cg_jval *s, int mode) {
    cg_buf b;
    cg_buf_init(&b);
    bool word_start = true;
    size_t idx = 0;
    for (size_t i = 0; i < s->u.s.n; idx++) {
        int k;
        uint32_t c = dec(s->u.s.p, s->u.s.n, i, &k);
        i += (size_t)k;
        uint32_t o = c;
        switch (mode) {
        case CASE_UPPER: o = (uint32_t)utf8proc_toupper((utf8proc_int32_t)c); break;
        case CASE_LOWER: o = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c); break;
        case CASE_CAPITALIZE:
            o = idx == 0 ? (uint32_t)utf8proc_totitle((utf8proc_int32_t)c) : (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
            break;
        case CASE_TITLE_JINJA: {
            // jinja2 do_title: words start after whitespace, '-', '(', '{', '[', '<'
            bool sep = py_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
            o = sep ? c : word_start ? (uint32_t)utf8proc_totitle((utf8proc_int32_t)c) : (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
            word_start = sep;
            break;
        }
        case CASE_TITLE_PY: {
            utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
            bool cased = cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
            o = !cased ? c : word_start ? (uint32_t)utf8proc_totitle((utf8proc_int32_t)c) : (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
            word_start = !cased;
            break;
        }
        case CASE_SWAP: {
            uint32_t u = (uint32_t)utf8proc_toupper((utf8proc_int32_t)c);
            o = u != c ? u : (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
            break;
        }
        }
        if (c == 0xDF && (mode == CASE_UPPER || mode == CASE_SWAP || o != c)) {  // Python: 'ß'.upper() == 'SS'
            bool title = mode == CASE_CAPITALIZE || mode == CASE_TITLE_JINJA || mode == CASE_TITLE_PY;
            cg_buf_puts(&b, title ? "Ss" : "SS");
            continue;
        }
        char enc[4];
        int m = cg_utf8_encode(o, enc);
        if (m <= 0) { m = cg_utf8_encode(c, enc); if (m <= 0) { enc[0] = '?'; m = 1; } }
        cg_buf_append(&b, enc, (size_t)m);
    }
    return take_buf(r, &b);
}

static const char *memfind(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0) return h;
    if (nn > hn) return NULL;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == nd[0] && memcmp(h + i, nd, nn) == 0) return h + i;
    return NULL;
}

static cg_jval *do_replace(rt *r, const cg_jval *s, const cg_jval *old, const cg_jval *nw, int64_t count) {
    if (old->kind != CG_JV_STR || nw->kind != CG_JV_STR) return rt_fail(r, CG_ERR_FORMAT, "replace() arguments must be str");
    cg_buf b;
    cg_buf_init(&b);
    const char *p = s->u.s.p, *e = p + s->u.s.n;
    int64_t done = 0;
    if (old->u.s.n == 0) {  // Python inserts `new` between every character and at both ends
        for (size_t i = 0; i <= s->u.s.n;) {
            if (count < 0 || done < count) { cg_buf_append(&b, nw->u.s.p, nw->u.s.n); done++; }
            if (i == s->u.s.n) break;
            int k = cg_utf8_seq_len((unsigned char)p[i]);
            if (k <= 0) k = 1;
            cg_buf_append(&b, p + i, (size_t)k);
            i += (size_t)k;
        }
        if (b.len > r->max_out) { cg_buf_free(&b); return rt_fail(r, CG_ERR_LIMIT, "replace() result too large"); }
        return take_buf(r, &b);
    }
    while (p < e) {
        const char *f = (count < 0 || done < count) ? memfind(p, (size_t)(e - p), old->u.s.p, old->u.s.n) : NULL;
        if (!f) break;
        cg_buf_append(&b, p, (size_t)(f - p));
        cg_buf_append(&b, nw->u.s.p, nw->u.s.n);
        p = f + old->u.s.n;
        done++;
        if (b.len > r->max_out) { cg_buf_free(&b); return rt_fail(r, CG_ERR_LIMIT, "replace() result too large"); }
    }
    cg_buf_append(&b, p, (size_t)(e - p));
    return take_buf(r, &b);
}

static bool push(rt *r, cg_jval *l, cg_jval *v) {
    if (!v) return false;
    if (!cg_jval_list_push(l, v)) { oom(r); return false; }
    return true;
}

// Python str.split / rsplit.
static cg_jval *do_split(rt *r, const cg_jval *s, const cg_jval *sep, int64_t maxsplit, bool from_right) {
    cg_jval *l = cg_jval_list();
    if (!l) return oom(r);
    if (sep && sep->kind == CG_JV_NULL) sep = NULL;
    if (sep && sep->kind != CG_JV_STR) { cg_jval_unref(l); return rt_fail(r, CG_ERR_FORMAT, "must be str or None, not %s", cg_jval_type_name(sep)); }
    if (sep && sep->u.s.n == 0) { cg_jval_unref(l); return rt_fail(r, CG_ERR_FORMAT, "empty separator"); }
    const char *p = s->u.s.p;
    size_t n = s->u.s.n;
    if (!sep) {
        // whitespace runs; collect words (left to right), then honour maxsplit from the chosen side
        size_t i = 0;
        typedef struct { size_t a, b; } span;
        span *sp = NULL;
        size_t nsp = 0, cap = 0;
        while (i < n) {
            int k;
            while (i < n && py_space(dec(p, n, i, &k))) i += (size_t)k;
            if (i >= n) break;
            size_t a = i;
            while (i < n && !py_space(dec(p, n, i, &k))) i += (size_t)k;
            if (nsp == cap) {
                cap = cap ? cap * 2 : 16;
                span *q = realloc(sp, cap * sizeof *q);
                if (!q) { free(sp); cg_jval_unref(l); return oom(r); }
                sp = q;
            }
            sp[nsp].a = a;
            sp[nsp].b = i;
            nsp++;
        }
        if (maxsplit < 0 || (size_t)maxsplit >= nsp) {
            for (size_t w = 0; w < nsp; w++)
                if (!push(r, l, cg_jval_str(p + sp[w].a, sp[w].b - sp[w].a))) goto fail_ws;
        } else if (!from_right) {
            for (size_t w = 0; w < (size_t)maxsplit; w++)
                if (!push(r, l, cg_jval_str(p + sp[w].a, sp[w].b - sp[w].a))) goto fail_ws;
            // remainder keeps its inner whitespace, trailing whitespace stripped
            size_t a = sp[maxsplit].a, b = n;  // the rest keeps its trailing whitespace, as in Python
            if (!push(r, l, cg_jval_str(p + a, b - a))) goto fail_ws;
        } else {
            size_t first = nsp - (size_t)maxsplit;
            if (!push(r, l, cg_jval_str(p, sp[first - 1].b))) goto fail_ws;  // keeps leading whitespace
            for (size_t w = first; w < nsp; w++)
                if (!push(r, l, cg_jval_str(p + sp[w].a, sp[w].b - sp[w].a))) goto fail_ws;
        }
        free(sp);
        return l;
    fail_ws:
        free(sp);
        cg_jval_unref(l);
        return r->st ? NULL : oom(r);
    }
    const char *sp = sep->u.s.p;
    size_t sn = sep->u.s.n;
    if (!from_right) {
        size_t a = 0;
        int64_t done = 0;
        while (maxsplit < 0 || done < maxsplit) {
            const char *f = memfind(p + a, n - a, sp, sn);
            if (!f) break;
            size_t at = (size_t)(f - p);
            if (!push(r, l, cg_jval_str(p + a, at - a))) { cg_jval_unref(l); return r->st ? NULL : oom(r); }
            a = at + sn;
            done++;
        }
        if (!push(r, l, cg_jval_str(p + a, n - a))) { cg_jval_unref(l); return r->st ? NULL : oom(r); }
        return l;
    }
    // rsplit: find separators from the right, then emit left to right
    size_t *cuts = NULL, nc = 0, cap = 0, b = n;
    while ((maxsplit < 0 || (int64_t)nc < maxsplit) && b >= sn) {
        size_t found = SIZE_MAX;
        for (size_t q = b - sn + 1; q-- > 0;)
            if (memcmp(p + q, sp, sn) == 0) { found = q; break; }
        if (found == SIZE_MAX) break;
        if (nc == cap) {
            cap = cap ? cap * 2 : 8;
            size_t *q = realloc(cuts, cap * sizeof *q);
            if (!q) { free(cuts); cg_jval_unref(l); return oom(r); }
            cuts = q;
        }
        cuts[nc++] = found;
        b = found;
    }
    size_t a = 0;
    for (size_t k = nc; k-- > 0;) {
        if (!push(r, l, cg_jval_str(p + a, cuts[k] - a))) { free(cuts); cg_jval_unref(l); return r->st ? NULL : oom(r); }
        a = cuts[k] + sn;
    }
    free(cuts);
    if (!push(r, l, cg_jval_str(p + a, n - a))) { cg_jval_unref(l); return r->st ? NULL : oom(r); }
    return l;
}

static cg_jval *do_splitlines(rt *r, const cg_jval *s, bool keepends) {
    cg_jval *l = cg_jval_list();
    if (!l) return oom(r);
    const char *p = s->u.s.p;
    size_t n = s->u.s.n, a = 0, i = 0;
    while (i < n) {
        int k;
        uint32_t c = dec(p, n, i, &k);
        bool brk = c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d || c == 0x1e ||
                   c == 0x85 || c == 0x2028 || c == 0x2029;
        if (!brk) { i += (size_t)k; continue; }
        size_t e = i + (size_t)k;
        if (c == '\r' && e < n && p[e] == '\n') e++;
        if (!push(r, l, cg_jval_str(p + a, (keepends ? e : i) - a))) { cg_jval_unref(l); return r->st ? NULL : oom(r); }
        a = i = e;
    }
    if (a < n && !push(r, l, cg_jval_str(p + a, n - a))) { cg_jval_unref(l); return r->st ? NULL : oom(r); }
    return l;
}

static cg_jval *do_join(rt *r, cg_jval *seq, const cg_jval *sep, const cg_jval *attr);

// ---- methods ----------------------------------------------------------------------------------

enum {
    M_STRIP = 1, M_LSTRIP, M_RSTRIP, M_SPLIT, M_RSPLIT, M_STARTSWITH, M_ENDSWITH, M_UPPER, M_LOWER, M_TITLE,
    M_CAPITALIZE, M_REPLACE, M_FIND, M_RFIND, M_COUNT, M_JOIN, M_FORMAT, M_SPLITLINES, M_ISDIGIT, M_ISALPHA,
    M_ISALNUM, M_ISSPACE, M_ISUPPER, M_ISLOWER, M_INDEX, M_SWAPCASE,
    M_GET, M_ITEMS, M_KEYS, M_VALUES, M_COPY,
    M_LCOUNT, M_LINDEX,
    M_CYCLE,
};

typedef struct method {
    cg_jval *self;
    int id;
    char name[16];
} method;

static void method_drop(void *p) {
    method *m = p;
    cg_jval_unref(m->self);
    free(m);
}

static const struct { const char *name; int id; } STR_METHODS[] = {
    {"strip", M_STRIP}, {"lstrip", M_LSTRIP}, {"rstrip", M_RSTRIP}, {"split", M_SPLIT}, {"rsplit", M_RSPLIT},
    {"startswith", M_STARTSWITH}, {"endswith", M_ENDSWITH}, {"upper", M_UPPER}, {"lower", M_LOWER},
    {"title", M_TITLE}, {"capitalize", M_CAPITALIZE}, {"replace", M_REPLACE}, {"find", M_FIND},
    {"rfind", M_RFIND}, {"count", M_COUNT}, {"join", M_JOIN}, {"format", M_FORMAT},
    {"splitlines", M_SPLITLINES}, {"isdigit", M_ISDIGIT}, {"isalpha", M_ISALPHA}, {"isalnum", M_ISALNUM},
    {"isspace", M_ISSPACE}, {"isupper", M_ISUPPER}, {"islower", M_ISLOWER}, {"index", M_INDEX},
    {"swapcase", M_SWAPCASE}, {NULL, 0}};
static const struct { const char *name; int id; } DICT_METHODS[] = {
    {"get", M_GET}, {"items", M_ITEMS}, {"keys", M_KEYS}, {"values", M_VALUES}, {"copy", M_COPY}, {NULL, 0}};
static const struct { const char *name; int id; } LIST_METHODS[] = {
    {"count", M_LCOUNT}, {"index", M_LINDEX}, {"copy", M_COPY}, {NULL, 0}};
static const char *const LIST_UNSAFE[] = {"append", "clear", "pop", "reverse", "insert", "sort", "extend", "remove", NULL};
static const char *const DICT_UNSAFE[] = {"clear", "pop", "popitem", "setdefault", "update", NULL};

static cg_jval *mk_method(rt *r, cg_jval *self, int id, const char *name, size_t nn) {
    method *m = calloc(1, sizeof *m);
    if (!m) return oom(r);
    m->self = cg_jval_ref(self);
    m->id = id;
    snprintf(m->name, sizeof m->name, "%.*s", (int)nn, name);
    cg_jval *f = cg_jval_func(m, method_drop, FN_METHOD);
    return f ? f : oom(r);
}

cg_jval *lib_method(rt *r, cg_jval *obj, const char *name, size_t nn) {
    if (obj->kind == CG_JV_DICT && eqn(name, nn, "cycle") && cg_jval_dict_getn(obj, "index0", 6) &&
        !cg_jval_dict_getn(obj, "cycle", 5)) {
        // the loop object's cycle(): bound to the iteration index, not to the loop dict (no cycle)
        cg_jval *ix = cg_jval_ref(cg_jval_dict_getn(obj, "index0", 6));
        cg_jval *m = mk_method(r, ix, M_CYCLE, name, nn);
        cg_jval_unref(ix);
        return m;
    }
    if (obj->kind == CG_JV_STR) {
        for (int i = 0; STR_METHODS[i].name; i++)
            if (eqn(name, nn, STR_METHODS[i].name)) return mk_method(r, obj, STR_METHODS[i].id, name, nn);
    } else if (obj->kind == CG_JV_DICT) {
        for (int i = 0; DICT_METHODS[i].name; i++)
            if (eqn(name, nn, DICT_METHODS[i].name)) return mk_method(r, obj, DICT_METHODS[i].id, name, nn);
        for (int i = 0; DICT_UNSAFE[i]; i++)
            if (eqn(name, nn, DICT_UNSAFE[i]))
                return rt_fail(r, CG_ERR_FORMAT, "access to attribute '%s' of 'dict' object is unsafe.", DICT_UNSAFE[i]);
    } else if (obj->kind == CG_JV_LIST) {
        for (int i = 0; LIST_METHODS[i].name; i++)
            if (eqn(name, nn, LIST_METHODS[i].name)) return mk_method(r, obj, LIST_METHODS[i].id, name, nn);
        for (int i = 0; LIST_UNSAFE[i]; i++)
            if (eqn(name, nn, LIST_UNSAFE[i]))
                return rt_fail(r, CG_ERR_FORMAT, "access to attribute '%s' of 'list' object is unsafe.", LIST_UNSAFE[i]);
    }
    return NULL;
}

static bool str_pred(const cg_jval *s, int id) {
    if (s->u.s.n == 0) return false;
    bool any_cased = false;
    for (size_t i = 0; i < s->u.s.n;) {
        int k;
        uint32_t c = dec(s->u.s.p, s->u.s.n, i, &k);
        i += (size_t)k;
        utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
        bool alpha = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
        bool digit = cat == UTF8PROC_CATEGORY_ND;
        switch (id) {
        case M_ISDIGIT: if (!digit) return false; break;
        case M_ISALPHA: if (!alpha) return false; break;
        case M_ISALNUM: if (!alpha && !digit && cat != UTF8PROC_CATEGORY_NL && cat != UTF8PROC_CATEGORY_NO) return false; break;
        case M_ISSPACE: if (!py_space(c)) return false; break;
        case M_ISUPPER:
            if (cat == UTF8PROC_CATEGORY_LL) return false;
            if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LT) any_cased = true;
            break;
        case M_ISLOWER:
            if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LT) return false;
            if (cat == UTF8PROC_CATEGORY_LL) any_cased = true;
            break;
        }
    }
    return (id == M_ISUPPER || id == M_ISLOWER) ? any_cased : true;
}

static int prefix_test(rt *r, const cg_jval *s, const cg_jval *arg, bool ends) {
    if (arg->kind == CG_JV_LIST) {
        for (size_t i = 0; i < arg->u.list.n; i++) {
            int t = prefix_test(r, s, arg->u.list.items[i], ends);
            if (t != 0) return t;
        }
        return 0;
    }
    if (arg->kind != CG_JV_STR) {
        rt_fail(r, CG_ERR_FORMAT, "%s first arg must be str or a tuple of str, not %s", ends ? "endswith" : "startswith",
                cg_jval_type_name(arg));
        return -1;
    }
    if (arg->u.s.n > s->u.s.n) return 0;
    return memcmp(s->u.s.p + (ends ? s->u.s.n - arg->u.s.n : 0), arg->u.s.p, arg->u.s.n) == 0;
}

static cg_jval *str_format(rt *r, const cg_jval *fmt, const cargs *a) {
    cg_buf b;
    cg_buf_init(&b);
    const char *s = fmt->u.s.p;
    size_t n = fmt->u.s.n, auto_ix = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '{' && i + 1 < n && s[i + 1] == '{') { cg_buf_putc(&b, '{'); i++; continue; }
        if (s[i] == '}' && i + 1 < n && s[i + 1] == '}') { cg_buf_putc(&b, '}'); i++; continue; }
        if (s[i] != '{') { cg_buf_putc(&b, s[i]); continue; }
        size_t e = i + 1;
        while (e < n && s[e] != '}') e++;
        if (e >= n) { cg_buf_free(&b); return rt_fail(r, CG_ERR_FORMAT, "format(): single '{' encountered in format string"); }
        const char *f = s + i + 1;
        size_t fl = e - i - 1;
        for (size_t q = 0; q < fl; q++)
            if (f[q] == ':' || f[q] == '!') {
                cg_buf_free(&b);
                return rt_fail(r, CG_ERR_UNSUPPORTED, "format(): format specs are not supported");
            }
        const cg_jval *v = NULL;
        if (fl == 0) {
            v = auto_ix < a->n ? a->pos[auto_ix] : NULL;
            auto_ix++;
        } else if (f[0] >= '0' && f[0] <= '9') {
            size_t ix = (size_t)strtoul(f, NULL, 10);
            v = ix < a->n ? a->pos[ix] : NULL;
        } else {
            for (size_t k = 0; k < a->nk; k++)
                if (a->kn[k]->sn == fl && memcmp(a->kn[k]->s, f, fl) == 0) v = a->kv[k];
        }
        if (!v) { cg_buf_free(&b); return rt_fail(r, CG_ERR_FORMAT, "format(): missing argument for '{%.*s}'", (int)fl, f); }
        cg_jval_py_str(v, &b);
        i = e;
    }
    return take_buf(r, &b);
}

static cg_jval *sub_count(rt *r, const cg_jval *s, const cg_jval *sub, int which) {
    if (sub->kind != CG_JV_STR) return rt_fail(r, CG_ERR_FORMAT, "must be str, not %s", cg_jval_type_name(sub));
    const char *p = s->u.s.p;
    size_t n = s->u.s.n, sn = sub->u.s.n;
    if (which == M_COUNT) {
        if (sn == 0) return mkint(r, (int64_t)rt_cp_len(p, n) + 1);
        int64_t c = 0;
        for (size_t i = 0; i + sn <= n;) {
            if (memcmp(p + i, sub->u.s.p, sn) == 0) { c++; i += sn; } else i++;
        }
        return mkint(r, c);
    }
    int64_t found = -1;
    for (size_t i = 0; i + sn <= n; i++) {
        if (memcmp(p + i, sub->u.s.p, sn) == 0) {
            found = (int64_t)rt_cp_len(p, i);
            if (which != M_RFIND) break;
        }
    }
    if (which == M_INDEX && found < 0) return rt_fail(r, CG_ERR_FORMAT, "substring not found");
    return mkint(r, found);
}

cg_jval *lib_call_method(rt *r, cg_jval *fn, const cargs *a) {
    method *m = fn->u.fn.data;
    cg_jval *s = m->self;
    const cg_jval *a0 = cargs_get(a, 0, NULL), *a1 = cargs_get(a, 1, NULL);
    if (!rt_step(r)) return NULL;
    switch (m->id) {
    case M_STRIP: return do_strip(r, s, cargs_get(a, 0, "chars"), 3);
    case M_LSTRIP: return do_strip(r, s, cargs_get(a, 0, "chars"), 1);
    case M_RSTRIP: return do_strip(r, s, cargs_get(a, 0, "chars"), 2);
    case M_SPLIT: case M_RSPLIT: {
        const cg_jval *mx = cargs_get(a, 1, "maxsplit");
        if (mx && !is_int(mx)) return rt_fail(r, CG_ERR_FORMAT, "maxsplit must be an integer");
        return do_split(r, s, cargs_get(a, 0, "sep"), mx ? ival(mx) : -1, m->id == M_RSPLIT);
    }
    case M_STARTSWITH: case M_ENDSWITH: {
        if (!a0) return rt_fail(r, CG_ERR_FORMAT, "%s() takes at least 1 argument (0 given)", m->name);
        int t = prefix_test(r, s, a0, m->id == M_ENDSWITH);
        return t < 0 ? NULL : mkbool(r, t);
    }
    case M_UPPER: return do_case(r, s, CASE_UPPER);
    case M_LOWER: return do_case(r, s, CASE_LOWER);
    case M_TITLE: return do_case(r, s, CASE_TITLE_PY);
    case M_CAPITALIZE: return do_case(r, s, CASE_CAPITALIZE);
    case M_SWAPCASE: return do_case(r, s, CASE_SWAP);
    case M_REPLACE: {
        const cg_jval *c = cargs_get(a, 2, "count");
        if (!a0 || !a1) return rt_fail(r, CG_ERR_FORMAT, "replace() takes at least 2 arguments");
        return do_replace(r, s, a0, a1, c && is_int(c) ? ival(c) : -1);
    }
    case M_FIND: case M_RFIND: case M_COUNT: case M_INDEX:
        if (!a0) return rt_fail(r, CG_ERR_FORMAT, "%s() takes at least 1 argument (0 given)", m->name);
        return sub_count(r, s, a0, m->id);
    case M_JOIN:
        if (!a0) return rt_fail(r, CG_ERR_FORMAT, "join() takes exactly one argument (0 given)");
        return do_join(r, (cg_jval *)a0, s, NULL);
    case M_FORMAT: return str_format(r, s, a);
    case M_SPLITLINES: {
        const cg_jval *k = cargs_get(a, 0, "keepends");
        return do_splitlines(r, s, k && cg_jval_truthy(k));
    }
    case M_ISDIGIT: case M_ISALPHA: case M_ISALNUM: case M_ISSPACE: case M_ISUPPER: case M_ISLOWER:
        return mkbool(r, str_pred(s, m->id));
    case M_GET: {
        if (!a0) return rt_fail(r, CG_ERR_FORMAT, "get expected at least 1 argument, got 0");
        cg_jval *v = cg_jval_dict_get(s, a0);
        if (v) return cg_jval_ref(v);
        if (a1) return cg_jval_ref((cg_jval *)a1);
        v = cg_jval_null();
        return v ? v : oom(r);
    }
    case M_ITEMS: case M_KEYS: case M_VALUES: {
        cg_jval *l = cg_jval_list();
        if (!l) return oom(r);
        for (size_t i = 0; i < s->u.dict.n; i++) {
            cg_jval *x;
            if (m->id == M_KEYS) x = cg_jval_ref(s->u.dict.keys[i]);
            else if (m->id == M_VALUES) x = cg_jval_ref(s->u.dict.vals[i]);
            else {
                x = cg_jval_list();
                if (x) x->tuple = 1;
                if (x && (!cg_jval_list_push(x, cg_jval_ref(s->u.dict.keys[i])) ||
                          !cg_jval_list_push(x, cg_jval_ref(s->u.dict.vals[i])))) { cg_jval_unref(x); x = NULL; }
            }
            if (!x || !cg_jval_list_push(l, x)) { cg_jval_unref(l); return oom(r); }
        }
        return l;
    }
    case M_COPY: {
        cg_jval *c = s->kind == CG_JV_LIST ? cg_jval_list() : cg_jval_dict();
        if (!c) return oom(r);
        if (s->kind == CG_JV_LIST) {
            for (size_t i = 0; i < s->u.list.n; i++)
                if (!cg_jval_list_push(c, cg_jval_ref(s->u.list.items[i]))) { cg_jval_unref(c); return oom(r); }
        } else {
            for (size_t i = 0; i < s->u.dict.n; i++)
                if (!cg_jval_dict_set(c, cg_jval_ref(s->u.dict.keys[i]), cg_jval_ref(s->u.dict.vals[i]))) { cg_jval_unref(c); return oom(r); }
        }
        return c;
    }
    case M_LCOUNT: case M_LINDEX: {
        if (!a0) return rt_fail(r, CG_ERR_FORMAT, "%s() takes exactly one argument (0 given)", m->name);
        int64_t c = 0;
        for (size_t i = 0; i < s->u.list.n; i++) {
            if (cg_jval_equal(s->u.list.items[i], a0)) {
                if (m->id == M_LINDEX) return mkint(r, (int64_t)i);
                c++;
            }
        }
        if (m->id == M_LINDEX) return rt_fail(r, CG_ERR_FORMAT, "value is not in list");
        return mkint(r, c);
    }
    case M_CYCLE:
        if (a->n == 0) return rt_fail(r, CG_ERR_FORMAT, "no items for cycling given");
        return cg_jval_ref(a->pos[(size_t)s->u.i % a->n]);
    }
    return rt_fail(r, CG_ERR_INTERNAL, "unknown method");
}

// ---- globals ----------------------------------------------------------------------------------

enum { G_RANGE = 1, G_DICT, G_NAMESPACE, G_RAISE, G_STRFTIME };
static const struct { const char *name; int id; } GLOBALS[] = {
    {"range", G_RANGE}, {"dict", G_DICT}, {"namespace", G_NAMESPACE}, {"raise_exception", G_RAISE},
    {"strftime_now", G_STRFTIME}, {NULL, 0}};

cg_jval *lib_global(rt *r, const char *name, size_t nn) {
    for (int i = 0; GLOBALS[i].name; i++) {
        if (eqn(name, nn, GLOBALS[i].name)) {
            cg_jval *f = cg_jval_func((void *)(intptr_t)GLOBALS[i].id, NULL, FN_BUILTIN);
            return f ? f : oom(r);
        }
    }
    return NULL;
}

cg_jval *lib_call_global(rt *r, cg_jval *fn, const cargs *a) {
    int id = (int)(intptr_t)fn->u.fn.data;
    if (!rt_step(r)) return NULL;
    switch (id) {
    case G_RANGE: {
        int64_t lo = 0, hi, st = 1;
        for (size_t i = 0; i < a->n; i++)
            if (!is_int(a->pos[i])) return rt_fail(r, CG_ERR_FORMAT, "range() argument must be an integer, not %s", cg_jval_type_name(a->pos[i]));
        if (a->n == 1) hi = ival(a->pos[0]);
        else if (a->n == 2 || a->n == 3) {
            lo = ival(a->pos[0]);
            hi = ival(a->pos[1]);
            if (a->n == 3) st = ival(a->pos[2]);
        } else {
            return rt_fail(r, CG_ERR_FORMAT, "range expected 1 to 3 arguments, got %zu", a->n);
        }
        if (st == 0) return rt_fail(r, CG_ERR_FORMAT, "range() arg 3 must not be zero");
        double cnt = st > 0 ? ceil(((double)hi - (double)lo) / (double)st) : ceil(((double)lo - (double)hi) / (double)-st);
        if (cnt > (double)(r->max_steps - r->steps) || cnt > 1e8)
            return rt_fail(r, CG_ERR_LIMIT, "range() of %.0f items is above the step cap", cnt);
        cg_jval *l = cg_jval_list();
        if (!l) return oom(r);
        for (int64_t x = lo; st > 0 ? x < hi : x > hi; x += st) {
            if (!cg_jval_list_push(l, cg_jval_int(x))) { cg_jval_unref(l); return oom(r); }
            if ((st > 0 && x > INT64_MAX - st) || (st < 0 && x < INT64_MIN - st)) break;
        }
        return l;
    }
    case G_DICT: case G_NAMESPACE: {
        cg_jval *d = id == G_DICT ? cg_jval_dict() : cg_jval_dict();
        if (!d) return oom(r);
        if (id == G_NAMESPACE) d->kind = CG_JV_NS;
        for (size_t i = 0; i < a->n; i++) {
            const cg_jval *x = a->pos[i];
            if (x->kind != CG_JV_DICT && x->kind != CG_JV_NS) { cg_jval_unref(d); return rt_fail(r, CG_ERR_FORMAT, "%s() positional argument must be a dict", id == G_DICT ? "dict" : "namespace"); }
            if (id == G_NAMESPACE && rt_holds_ns(x)) { cg_jval_unref(d); return rt_fail(r, CG_ERR_UNSUPPORTED, "a namespace cannot be stored inside a namespace"); }
            for (size_t k = 0; k < x->u.dict.n; k++)
                if (!cg_jval_dict_set(d, cg_jval_ref(x->u.dict.keys[k]), cg_jval_ref(x->u.dict.vals[k]))) { cg_jval_unref(d); return oom(r); }
        }
        for (size_t k = 0; k < a->nk; k++) {
            if (id == G_NAMESPACE && rt_holds_ns(a->kv[k])) {
                cg_jval_unref(d);
                return rt_fail(r, CG_ERR_UNSUPPORTED, "a namespace cannot be stored inside a namespace");
            }
            if (!cg_jval_dict_set(d, cg_jval_str(a->kn[k]->s, a->kn[k]->sn), cg_jval_ref(a->kv[k]))) {
                cg_jval_unref(d);
                rt_push_fail(r, a->kv[k]);
                return NULL;
            }
        }
        return d;
    }
    case G_RAISE: {
        const cg_jval *m = cargs_get(a, 0, "message");
        cg_buf b;
        cg_buf_init(&b);
        if (m) cg_jval_py_str(m, &b);
        rt_fail(r, CG_ERR_FORMAT, "raise_exception: %s", b.data ? b.data : "");
        cg_buf_free(&b);
        return NULL;
    }
    case G_STRFTIME: {
        const cg_jval *f = cargs_get(a, 0, "format");
        if (!f || f->kind != CG_JV_STR) return rt_fail(r, CG_ERR_FORMAT, "strftime_now() needs a format string");
        if (f->u.s.n > 256) return rt_fail(r, CG_ERR_LIMIT, "strftime_now() format longer than 256 bytes");
        int64_t now = r->o->has_now ? r->o->now : r->o->now_fn ? r->o->now_fn(r->o->now_user) : (int64_t)time(NULL);
        time_t tt = (time_t)now;
        struct tm tmv;
        if (r->o->has_now || r->o->now_fn) gmtime_r(&tt, &tmv);
        else localtime_r(&tt, &tmv);
        char fmt[260], out[1024];
        memcpy(fmt, f->u.s.p, f->u.s.n);
        fmt[f->u.s.n] = 0;
        size_t n = f->u.s.n ? strftime(out, sizeof out, fmt, &tmv) : 0;
        return mkstr(r, out, n);
    }
    }
    return rt_fail(r, CG_ERR_INTERNAL, "unknown global");
}

// ---- filters ----------------------------------------------------------------------------------

// Attribute path "a.b.0" as jinja2's make_attrgetter resolves it (dict keys, then int indexes).
static cg_jval *attr_path(rt *r, cg_jval *v, const cg_jval *path) {
    if (path->kind == CG_JV_INT) return rt_getitem(r, v, (cg_jval *)path);
    if (path->kind != CG_JV_STR) return rt_fail(r, CG_ERR_FORMAT, "attribute must be a string");
    cg_jval *cur = cg_jval_ref(v);
    const char *p = path->u.s.p, *e = p + path->u.s.n;
    while (cur) {
        const char *dot = memchr(p, '.', (size_t)(e - p));
        size_t len = dot ? (size_t)(dot - p) : (size_t)(e - p);
        cg_jval *key;
        bool digits = len > 0;
        for (size_t i = 0; i < len; i++) digits = digits && p[i] >= '0' && p[i] <= '9';
        key = digits ? cg_jval_int(strtoll(p, NULL, 10)) : cg_jval_str(p, len);
        if (!key) { cg_jval_unref(cur); return oom(r); }
        cg_jval *nx = rt_getitem(r, cur, key);
        cg_jval_unref(key);
        cg_jval_unref(cur);
        cur = nx;
        if (!dot) break;
        p = dot + 1;
    }
    return cur;
}

static int key_cmp(rt *r, const cg_jval *a, const cg_jval *b, bool case_sensitive, int *cmp) {
    if (!case_sensitive && a->kind == CG_JV_STR && b->kind == CG_JV_STR) {
        cg_jval *la = do_case(r, a, CASE_LOWER), *lb = la ? do_case(r, b, CASE_LOWER) : NULL;
        int rc = -1;
        if (la && lb) rc = rt_compare(r, la, lb, cmp);
        cg_jval_unref(la);
        cg_jval_unref(lb);
        return rc;
    }
    return rt_compare(r, a, b, cmp);
}

// Stable merge sort of keys[] carrying vals[].
static int msort(rt *r, cg_jval **keys, cg_jval **vals, size_t n, bool cs, bool rev, cg_jval **tk, cg_jval **tv) {
    if (n < 2) return 0;
    size_t h = n / 2;
    if (msort(r, keys, vals, h, cs, rev, tk, tv) || msort(r, keys + h, vals + h, n - h, cs, rev, tk, tv)) return -1;
    size_t i = 0, j = h, o = 0;
    while (i < h && j < n) {
        int c;
        if (key_cmp(r, keys[j], keys[i], cs, &c)) return -1;
        if (rev ? c > 0 : c < 0) { tk[o] = keys[j]; tv[o++] = vals[j++]; }
        else { tk[o] = keys[i]; tv[o++] = vals[i++]; }
    }
    while (i < h) { tk[o] = keys[i]; tv[o++] = vals[i++]; }
    while (j < n) { tk[o] = keys[j]; tv[o++] = vals[j++]; }
    memcpy(keys, tk, n * sizeof *keys);
    memcpy(vals, tv, n * sizeof *vals);
    return 0;
}

// Sorts `items` (a LIST, borrowed) by key (attribute path or the item); returns a new LIST.
static cg_jval *sorted(rt *r, cg_jval *items, const cg_jval *attr, bool cs, bool rev) {
    size_t n = items->u.list.n;
    cg_jval **keys = calloc(n + 1, sizeof *keys), **vals = calloc(n + 1, sizeof *vals);
    cg_jval **tk = calloc(n + 1, sizeof *tk), **tv = calloc(n + 1, sizeof *tv);
    cg_jval *res = NULL;
    size_t nk = 0;
    if (!keys || !vals || !tk || !tv) { oom(r); goto done; }
    for (; nk < n; nk++) {
        vals[nk] = items->u.list.items[nk];
        keys[nk] = attr ? attr_path(r, vals[nk], attr) : cg_jval_ref(vals[nk]);
        if (!keys[nk]) goto done;
    }
    if (msort(r, keys, vals, n, cs, rev, tk, tv)) goto done;
    if (!(res = cg_jval_list())) { oom(r); goto done; }
    for (size_t i = 0; i < n; i++)
        if (!cg_jval_list_push(res, cg_jval_ref(vals[i]))) { cg_jval_unref(res); res = NULL; oom(r); goto done; }
done:
    if (keys) for (size_t i = 0; i < nk; i++) cg_jval_unref(keys[i]);
    free(keys);
    free(vals);
    free(tk);
    free(tv);
    return res;
}

static cg_jval *do_join(rt *r, cg_jval *seq, const cg_jval *sep, const cg_jval *attr) {
    cg_jval *l = rt_to_list(r, seq);
    if (!l) return NULL;
    cg_buf b;
    cg_buf_init(&b);
    for (size_t i = 0; i < l->u.list.n; i++) {
        if (i && sep) cg_jval_py_str(sep, &b);
        cg_jval *x = attr ? attr_path(r, l->u.list.items[i], attr) : cg_jval_ref(l->u.list.items[i]);
        if (!x) { cg_buf_free(&b); cg_jval_unref(l); return NULL; }
        cg_jval_py_str(x, &b);
        cg_jval_unref(x);
        if (b.len > r->max_out) { cg_buf_free(&b); cg_jval_unref(l); return rt_fail(r, CG_ERR_LIMIT, "join() result too large"); }
    }
    cg_jval_unref(l);
    return take_buf(r, &b);
}

static cg_jval *do_indent(rt *r, cg_jval *s, const cg_jval *width, bool first, bool blank) {
    cg_buf ind;
    cg_buf_init(&ind);
    if (width && width->kind == CG_JV_STR) cg_buf_append(&ind, width->u.s.p, width->u.s.n);
    else {
        int64_t w = width && is_int(width) ? ival(width) : 4;
        for (int64_t k = 0; k < w && k < 1024; k++) cg_buf_putc(&ind, ' ');
    }
    cg_buf tmp;
    cg_buf_init(&tmp);
    cg_buf_append(&tmp, s->u.s.p, s->u.s.n);
    cg_buf_putc(&tmp, '\n');
    cg_jval *t = take_buf(r, &tmp), *lines = t ? do_splitlines(r, t, false) : NULL;
    cg_jval_unref(t);
    if (!lines) { cg_buf_free(&ind); return NULL; }
    cg_buf b;
    cg_buf_init(&b);
    const char *is = ind.data ? ind.data : "";
    if (first) cg_buf_append(&b, is, ind.len);
    for (size_t i = 0; i < lines->u.list.n; i++) {
        const cg_jval *ln = lines->u.list.items[i];
        if (i) {
            cg_buf_putc(&b, '\n');
            if (blank || ln->u.s.n) cg_buf_append(&b, is, ind.len);
        }
        cg_buf_append(&b, ln->u.s.p, ln->u.s.n);
    }
    cg_jval_unref(lines);
    cg_buf_free(&ind);
    return take_buf(r, &b);
}

static cg_jval *select_items(rt *r, cg_jval *in, const cargs *a, bool attr_mode, bool want) {
    if (!cg_jval_truthy(in)) {  // jinja2 iterates only `if value`
        cg_jval *e = cg_jval_list();
        return e ? e : oom(r);
    }
    cg_jval *l = rt_to_list(r, in), *res = NULL;
    if (!l) return NULL;
    const cg_jval *attr = attr_mode ? cargs_get(a, 0, NULL) : NULL;
    if (attr_mode && !attr) { cg_jval_unref(l); return rt_fail(r, CG_ERR_FORMAT, "selectattr/rejectattr need an attribute"); }
    size_t ti = attr_mode ? 1 : 0;
    const cg_jval *tname = cargs_get(a, ti, NULL);
    if (tname && tname->kind != CG_JV_STR) { cg_jval_unref(l); return rt_fail(r, CG_ERR_FORMAT, "test name must be a string"); }
    cargs ta = {.pos = a->n > ti + 1 ? a->pos + ti + 1 : NULL, .n = a->n > ti + 1 ? a->n - ti - 1 : 0};
    if (!(res = cg_jval_list())) { cg_jval_unref(l); return oom(r); }
    for (size_t i = 0; i < l->u.list.n; i++) {
        cg_jval *it = l->u.list.items[i];
        cg_jval *x = attr ? attr_path(r, it, attr) : cg_jval_ref(it);
        if (!x) goto fail;
        int t = tname ? lib_test(r, tname->u.s.p, tname->u.s.n, x, &ta) : cg_jval_truthy(x);
        cg_jval_unref(x);
        if (t < 0) goto fail;
        if ((t != 0) == want && !cg_jval_list_push(res, cg_jval_ref(it))) { oom(r); goto fail; }
    }
    cg_jval_unref(l);
    return res;
fail:
    cg_jval_unref(l);
    cg_jval_unref(res);
    return NULL;
}

static bool arg_bool(const cg_jval *v, bool def) { return v ? cg_jval_truthy(v) : def; }

static cg_jval *to_int(rt *r, cg_jval *in, const cg_jval *def) {
    if (is_int(in)) return mkint(r, ival(in));
    if (in->kind == CG_JV_FLOAT && isfinite(in->u.f) && fabs(in->u.f) < 9.2e18) return mkint(r, (int64_t)in->u.f);
    if (in->kind == CG_JV_STR) {
        char tmp[64];
        size_t n = in->u.s.n < 63 ? in->u.s.n : 63;
        memcpy(tmp, in->u.s.p, n);
        tmp[n] = 0;
        char *end;
        long long v = strtoll(tmp, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\n') end++;
        if (end != tmp && !*end) return mkint(r, v);
        double d = strtod(tmp, &end);
        while (*end == ' ' || *end == '\t' || *end == '\n') end++;
        if (end != tmp && !*end && isfinite(d) && fabs(d) < 9.2e18) return mkint(r, (int64_t)d);
    }
    return def ? cg_jval_ref((cg_jval *)def) : mkint(r, 0);
}

cg_jval *lib_filter(rt *r, const char *name, size_t nn, cg_jval *in, const cargs *a) {
    const cg_jval *a0 = cargs_get(a, 0, NULL);
    cg_jval *s = NULL, *res = NULL, *l = NULL;
    if (!rt_step(r)) return NULL;
#define IS(x) eqn(name, nn, x)
    if (IS("safe") || IS("e") || IS("escape") || IS("forceescape")) {
        if (IS("safe") || (in->kind == CG_JV_STR && in->safe && !IS("forceescape"))) {
            if (in->kind == CG_JV_STR && in->safe) return cg_jval_ref(in);
            if (!(s = as_str(r, in))) return NULL;
            res = mkstr(r, s->u.s.p, s->u.s.n);
            cg_jval_unref(s);
            if (res) res->safe = 1;
            return res;
        }
        if (!(s = as_str(r, in))) return NULL;
        cg_buf b;
        cg_buf_init(&b);
        for (size_t i = 0; i < s->u.s.n; i++) {
            char c = s->u.s.p[i];
            switch (c) {
            case '&': cg_buf_puts(&b, "&amp;"); break;
            case '<': cg_buf_puts(&b, "&lt;"); break;
            case '>': cg_buf_puts(&b, "&gt;"); break;
            case '"': cg_buf_puts(&b, "&#34;"); break;
            case '\'': cg_buf_puts(&b, "&#39;"); break;
            default: cg_buf_putc(&b, c);
            }
        }
        cg_jval_unref(s);
        if ((res = take_buf(r, &b))) res->safe = 1;
        return res;
    }
    if (IS("tojson")) {
        cg_jval_dump_opts o = {.indent = -1};
        const cg_jval *ind = cargs_get(a, 1, "indent"), *sep = cargs_get(a, 2, "separators"),
                      *sk = cargs_get(a, 3, "sort_keys"), *ea = cargs_get(a, 0, "ensure_ascii");
        char indbuf[64] = {0};
        char isep[16], ksep[16];
        o.ensure_ascii = ea && cg_jval_truthy(ea);
        if (ind && ind->kind != CG_JV_NULL) {
            if (is_int(ind)) o.indent = ival(ind) < 0 ? 0 : ival(ind) > 64 ? 64 : (int)ival(ind);
            else if (ind->kind == CG_JV_STR) { snprintf(indbuf, sizeof indbuf, "%.*s", (int)ind->u.s.n, ind->u.s.p); o.indent_str = indbuf; }
            else return rt_fail(r, CG_ERR_FORMAT, "tojson: indent must be an int or a string");
        }
        if (sep && sep->kind != CG_JV_NULL) {
            if (sep->kind != CG_JV_LIST || sep->u.list.n != 2 || sep->u.list.items[0]->kind != CG_JV_STR ||
                sep->u.list.items[1]->kind != CG_JV_STR || sep->u.list.items[0]->u.s.n >= sizeof isep ||
                sep->u.list.items[1]->u.s.n >= sizeof ksep)
                return rt_fail(r, CG_ERR_FORMAT, "tojson: separators must be a pair of short strings");
            snprintf(isep, sizeof isep, "%.*s", (int)sep->u.list.items[0]->u.s.n, sep->u.list.items[0]->u.s.p);
            snprintf(ksep, sizeof ksep, "%.*s", (int)sep->u.list.items[1]->u.s.n, sep->u.list.items[1]->u.s.p);
            o.item_sep = isep;
            o.key_sep = ksep;
        }
        o.sort_keys = sk && cg_jval_truthy(sk);
        cg_buf b;
        cg_buf_init(&b);
        cg_err e2 = {0};
        cg_status st = cg_jval_dump(in, &o, &b, &e2);
        if (st) { cg_buf_free(&b); return rt_fail(r, st == CG_ERR_TYPE ? CG_ERR_FORMAT : st, "%s", e2.msg); }
        if (b.len > r->max_out) { cg_buf_free(&b); return rt_fail(r, CG_ERR_LIMIT, "tojson output too large"); }
        return take_buf(r, &b);
    }
    if (IS("length") || IS("count")) {
        switch (in->kind) {
        case CG_JV_STR: return mkint(r, (int64_t)rt_cp_len(in->u.s.p, in->u.s.n));
        case CG_JV_LIST: return mkint(r, (int64_t)in->u.list.n);
        case CG_JV_DICT: case CG_JV_NS: return mkint(r, (int64_t)in->u.dict.n);
        case CG_JV_UNDEF: return mkint(r, 0);
        default: return rt_fail(r, CG_ERR_FORMAT, "object of type '%s' has no len()", cg_jval_type_name(in));
        }
    }
    if (IS("default") || IS("d")) {
        bool boolean = arg_bool(cargs_get(a, 1, "boolean"), false);
        bool use_def = in->kind == CG_JV_UNDEF || (boolean && !cg_jval_truthy(in));
        if (!use_def) return cg_jval_ref(in);
        const cg_jval *dv = cargs_get(a, 0, "default_value");
        return dv ? cg_jval_ref((cg_jval *)dv) : mkstr(r, "", 0);
    }
    if (IS("string")) return as_str(r, in);
    if (IS("list")) {
        if (in->kind == CG_JV_LIST && in->tuple) {
            cargs none = {0};
            cg_jval *m = lib_method(r, in, "copy", 4);
            res = m ? lib_call_method(r, m, &none) : NULL;
            cg_jval_unref(m);
            return res;
        }
        return rt_to_list(r, in);
    }
    if (IS("items")) {
        if (in->kind == CG_JV_UNDEF) { l = cg_jval_list(); return l ? l : oom(r); }
        if (in->kind != CG_JV_DICT && in->kind != CG_JV_NS) return rt_fail(r, CG_ERR_FORMAT, "can only get item pairs from a mapping");
        cg_jval *m = lib_method(r, in->kind == CG_JV_NS ? in : in, "items", 5);
        if (!m) {
            if (r->st) return NULL;
            return rt_fail(r, CG_ERR_FORMAT, "can only get item pairs from a mapping");
        }
        cargs none = {0};
        res = lib_call_method(r, m, &none);
        cg_jval_unref(m);
        return res;
    }
    if (IS("first") || IS("last")) {
        if (!(l = rt_to_list(r, in))) return NULL;
        if (l->u.list.n == 0) res = cg_jval_undef("No first item, sequence was empty.", 34);
        else res = cg_jval_ref(l->u.list.items[IS("first") ? 0 : l->u.list.n - 1]);
        cg_jval_unref(l);
        return res ? res : oom(r);
    }
    if (IS("join")) return do_join(r, in, cargs_get(a, 0, "d"), cargs_get(a, 1, "attribute"));
    if (in->kind == CG_JV_UNDEF && (IS("int") || IS("float") || IS("abs") || IS("round")))
        return rt_fail(r, CG_ERR_FORMAT, "%s", in->u.s.p ? in->u.s.p : "value is undefined");  // Undefined.__int__ raises
    if (IS("int")) return to_int(r, in, cargs_get(a, 0, "default"));
    if (IS("float")) {
        if (is_num(in)) { res = cg_jval_float(fval(in)); return res ? res : oom(r); }
        if (in->kind == CG_JV_STR) {
            char tmp[64], *end;
            size_t n = in->u.s.n < 63 ? in->u.s.n : 63;
            memcpy(tmp, in->u.s.p, n);
            tmp[n] = 0;
            double d = strtod(tmp, &end);
            if (end != tmp && !*end) { res = cg_jval_float(d); return res ? res : oom(r); }
        }
        const cg_jval *dv = cargs_get(a, 0, "default");
        if (dv) return cg_jval_ref((cg_jval *)dv);
        res = cg_jval_float(0.0);
        return res ? res : oom(r);
    }
    if (IS("abs")) {
        if (in->kind == CG_JV_FLOAT) res = cg_jval_float(fabs(in->u.f));
        else if (is_int(in)) {
            if (ival(in) == INT64_MIN) return rt_fail(r, CG_ERR_UNSUPPORTED, "integer overflow in abs");
            res = cg_jval_int(ival(in) < 0 ? -ival(in) : ival(in));
        } else return rt_fail(r, CG_ERR_FORMAT, "bad operand type for abs(): '%s'", cg_jval_type_name(in));
        return res ? res : oom(r);
    }
    if (IS("round")) {
        if (!is_num(in)) return rt_fail(r, CG_ERR_FORMAT, "round: a number is required");
        const cg_jval *me0 = cargs_get(a, 1, "method");
        if (is_int(in) && (!me0 || (me0->kind == CG_JV_STR && eqn(me0->u.s.p, me0->u.s.n, "common"))))
            return mkint(r, ival(in));  // Python round(int, n) stays an int
        const cg_jval *pr = cargs_get(a, 0, "precision"), *me = cargs_get(a, 1, "method");
        int64_t p = pr && is_int(pr) ? ival(pr) : 0;
        if (p > 15) p = 15;
        if (p < -15) p = -15;
        double m = pow(10.0, (double)p), x = fval(in) * m, y;
        if (me && me->kind == CG_JV_STR && eqn(me->u.s.p, me->u.s.n, "floor")) y = floor(x);
        else if (me && me->kind == CG_JV_STR && eqn(me->u.s.p, me->u.s.n, "ceil")) y = ceil(x);
        else y = nearbyint(x);  // Python round(): half to even
        res = cg_jval_float(y / m);
        return res ? res : oom(r);
    }
    if (IS("upper") || IS("lower") || IS("title") || IS("capitalize") || IS("trim") || IS("wordcount") ||
        IS("center") || IS("reverse") || IS("replace") || IS("indent") || IS("format") || IS("striptags") ||
        IS("truncate")) {
        if (IS("reverse") && in->kind != CG_JV_STR && in->kind != CG_JV_UNDEF) {
            if (!(l = rt_to_list(r, in))) return NULL;
            if (!(res = cg_jval_list())) { cg_jval_unref(l); return oom(r); }
            for (size_t i = l->u.list.n; i-- > 0;)
                if (!cg_jval_list_push(res, cg_jval_ref(l->u.list.items[i]))) { cg_jval_unref(res); res = NULL; oom(r); break; }
            cg_jval_unref(l);
            return res;
        }
        if (!(s = as_str(r, in))) return NULL;
        if (IS("upper")) res = do_case(r, s, CASE_UPPER);
        else if (IS("lower")) res = do_case(r, s, CASE_LOWER);
        else if (IS("title")) res = do_case(r, s, CASE_TITLE_JINJA);
        else if (IS("capitalize")) res = do_case(r, s, CASE_CAPITALIZE);
        else if (IS("trim")) res = do_strip(r, s, cargs_get(a, 0, "chars"), 3);
        else if (IS("replace")) {
            const cg_jval *o = cargs_get(a, 0, "old"), *nw = cargs_get(a, 1, "new"), *c = cargs_get(a, 2, "count");
            res = (!o || !nw) ? rt_fail(r, CG_ERR_FORMAT, "replace filter needs old and new") : do_replace(r, s, o, nw, c && is_int(c) ? ival(c) : -1);
        } else if (IS("indent")) {
            res = do_indent(r, s, cargs_get(a, 0, "width"), arg_bool(cargs_get(a, 1, "first"), false),
                            arg_bool(cargs_get(a, 2, "blank"), false));
        } else if (IS("wordcount")) {
            int64_t c = 0;
            bool inw = false;
            for (size_t i = 0; i < s->u.s.n;) {
                int k;
                uint32_t cp = dec(s->u.s.p, s->u.s.n, i, &k);
                i += (size_t)k;
                utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
                bool w = cp == '_' || (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
                         (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO) || cat == UTF8PROC_CATEGORY_MN ||
                         cat == UTF8PROC_CATEGORY_MC;
                if (w && !inw) c++;
                inw = w;
            }
            res = mkint(r, c);
        } else if (IS("center")) {
            const cg_jval *w = cargs_get(a, 0, "width");
            int64_t width = w && is_int(w) ? ival(w) : 80, len = (int64_t)rt_cp_len(s->u.s.p, s->u.s.n);
            if (width > (int64_t)r->max_out) width = (int64_t)r->max_out;
            cg_buf b;
            cg_buf_init(&b);
            int64_t pad = width > len ? width - len : 0, left = pad / 2 + (pad & width & 1);
            for (int64_t k = 0; k < left; k++) cg_buf_putc(&b, ' ');
            cg_buf_append(&b, s->u.s.p, s->u.s.n);
            for (int64_t k = 0; k < pad - left; k++) cg_buf_putc(&b, ' ');
            res = take_buf(r, &b);
        } else if (IS("reverse")) {
            cg_buf b;
            cg_buf_init(&b);
            for (size_t e = s->u.s.n; e > 0;) {
                size_t q = e - 1;
                while (q > 0 && ((unsigned char)s->u.s.p[q] & 0xC0) == 0x80) q--;
                cg_buf_append(&b, s->u.s.p + q, e - q);
                e = q;
            }
            res = take_buf(r, &b);
        } else if (IS("format")) {
            cg_jval *args = cg_jval_list();
            if (!args) { cg_jval_unref(s); return oom(r); }
            args->tuple = 1;
            bool ok = true;
            for (size_t i = 0; i < a->n && ok; i++) ok = cg_jval_list_push(args, cg_jval_ref(a->pos[i]));
            if (!ok) res = oom(r);
            else {
                cg_jval *lhs = s;
                // `value|format(x)` is `value % (x,)`
                res = rt_percent(r, lhs, args);
            }
            cg_jval_unref(args);
        } else if (IS("striptags")) {
            cg_buf b;
            cg_buf_init(&b);
            bool tag = false, sp = false;
            for (size_t i = 0; i < s->u.s.n; i++) {
                char c = s->u.s.p[i];
                if (c == '<') { tag = true; continue; }
                if (tag) { if (c == '>') tag = false; continue; }
                if (c == ' ' || c == '\n' || c == '\t' || c == '\r') { sp = b.len > 0; continue; }
                if (sp) { cg_buf_putc(&b, ' '); sp = false; }
                cg_buf_putc(&b, c);
            }
            res = take_buf(r, &b);
        } else {
            res = rt_fail(r, CG_ERR_UNSUPPORTED, "filter 'truncate' is not supported");
        }
        if (res && res->kind == CG_JV_STR && in->kind == CG_JV_STR && in->safe &&
            (IS("trim") || IS("upper") || IS("lower") || IS("title") || IS("capitalize") || IS("center") || IS("indent")))
            res->safe = 1;
        cg_jval_unref(s);
        return res;
    }
    if (IS("map")) {
        if (!cg_jval_truthy(in)) { res = cg_jval_list(); return res ? res : oom(r); }
        if (!(l = rt_to_list(r, in))) return NULL;
        const cg_jval *attr = cargs_get(a, SIZE_MAX, "attribute"), *dv = cargs_get(a, SIZE_MAX, "default");
        if (!(res = cg_jval_list())) { cg_jval_unref(l); return oom(r); }
        cargs fa = {.pos = a->n > 1 ? a->pos + 1 : NULL, .n = a->n > 1 ? a->n - 1 : 0};
        if (!attr && (!a0 || a0->kind != CG_JV_STR)) { cg_jval_unref(l); cg_jval_unref(res); return rt_fail(r, CG_ERR_FORMAT, "map: needs a filter name or attribute="); }
        for (size_t i = 0; i < l->u.list.n; i++) {
            cg_jval *x = attr ? attr_path(r, l->u.list.items[i], attr)
                              : lib_filter(r, a0->u.s.p, a0->u.s.n, l->u.list.items[i], &fa);
            if (x && attr && dv && x->kind == CG_JV_UNDEF) { cg_jval_unref(x); x = cg_jval_ref((cg_jval *)dv); }
            if (!x || !cg_jval_list_push(res, x)) { if (x == NULL && !r->st) oom(r); cg_jval_unref(res); res = NULL; break; }
        }
        cg_jval_unref(l);
        return res;
    }
    if (IS("select")) return select_items(r, in, a, false, true);
    if (IS("reject")) return select_items(r, in, a, false, false);
    if (IS("selectattr")) return select_items(r, in, a, true, true);
    if (IS("rejectattr")) return select_items(r, in, a, true, false);
    if (IS("attr")) {  // getattr() only: dict keys are not attributes
        if (!a0 || a0->kind != CG_JV_STR) return rt_fail(r, CG_ERR_FORMAT, "attr: needs a name");
        if (in->kind == CG_JV_NS || in->kind == CG_JV_UNDEF) return rt_getattr(r, in, a0->u.s.p, a0->u.s.n);
        res = lib_method(r, in, a0->u.s.p, a0->u.s.n);
        if (res || r->st) return res;
        res = cg_jval_undef("no such attribute", 17);
        return res ? res : oom(r);
    }
    if (IS("sort") || IS("unique") || IS("min") || IS("max")) {
        bool is_sort = IS("sort");
        const cg_jval *rev = is_sort ? cargs_get(a, 0, "reverse") : NULL;
        const cg_jval *cs = cargs_get(a, is_sort ? 1 : 0, "case_sensitive");
        const cg_jval *attr = cargs_get(a, is_sort ? 2 : 1, "attribute");
        if (!(l = rt_to_list(r, in))) return NULL;
        if (IS("unique")) {
            if (!(res = cg_jval_list())) { cg_jval_unref(l); return oom(r); }
            for (size_t i = 0; i < l->u.list.n; i++) {
                cg_jval *ki = attr ? attr_path(r, l->u.list.items[i], attr) : cg_jval_ref(l->u.list.items[i]);
                bool dup = false;
                for (size_t j = 0; ki && !dup && j < res->u.list.n; j++) {
                    cg_jval *kj = attr ? attr_path(r, res->u.list.items[j], attr) : cg_jval_ref(res->u.list.items[j]);
                    int c = 1;
                    if (kj) {
                        if (!arg_bool(cs, false) && ki->kind == CG_JV_STR && kj->kind == CG_JV_STR) key_cmp(r, ki, kj, false, &c);
                        else c = cg_jval_equal(ki, kj) ? 0 : 1;
                    }
                    dup = c == 0;
                    cg_jval_unref(kj);
                }
                bool ok = ki && (dup || cg_jval_list_push(res, cg_jval_ref(l->u.list.items[i])));
                cg_jval_unref(ki);
                if (!ok || r->st) { if (!r->st) oom(r); cg_jval_unref(res); res = NULL; break; }
            }
            cg_jval_unref(l);
            return res;
        }
        res = sorted(r, l, attr, arg_bool(cs, false), arg_bool(rev, false));
        cg_jval_unref(l);
        if (!res || is_sort) return res;
        if (res->u.list.n == 0) { cg_jval_unref(res); res = cg_jval_undef("No aggregated item, sequence was empty.", 39); return res ? res : oom(r); }
        cg_jval *x = cg_jval_ref(res->u.list.items[IS("min") ? 0 : res->u.list.n - 1]);
        cg_jval_unref(res);
        return x;
    }
    if (IS("dictsort")) {
        if (in->kind != CG_JV_DICT && in->kind != CG_JV_NS) return rt_fail(r, CG_ERR_FORMAT, "dictsort: expected a mapping");
        const cg_jval *cs = cargs_get(a, 0, "case_sensitive"), *by = cargs_get(a, 1, "by"), *rev = cargs_get(a, 2, "reverse");
        bool by_value = by && by->kind == CG_JV_STR && eqn(by->u.s.p, by->u.s.n, "value");
        if (!(l = cg_jval_list())) return oom(r);
        for (size_t i = 0; i < in->u.dict.n; i++) {
            cg_jval *pr = cg_jval_list();
            if (pr) pr->tuple = 1;
            if (!pr || !cg_jval_list_push(pr, cg_jval_ref(in->u.dict.keys[i])) || !cg_jval_list_push(pr, cg_jval_ref(in->u.dict.vals[i])) ||
                !cg_jval_list_push(l, pr)) { cg_jval_unref(l); return oom(r); }
        }
        cg_jval *ix = cg_jval_int(by_value ? 1 : 0);
        if (!ix) { cg_jval_unref(l); return oom(r); }
        res = sorted(r, l, ix, arg_bool(cs, false), arg_bool(rev, false));
        cg_jval_unref(ix);
        cg_jval_unref(l);
        return res;
    }
    if (IS("sum")) {
        const cg_jval *attr = cargs_get(a, 0, "attribute"), *start = cargs_get(a, 1, "start");
        if (!(l = rt_to_list(r, in))) return NULL;
        cg_jval *acc = start ? cg_jval_ref((cg_jval *)start) : cg_jval_int(0);
        for (size_t i = 0; acc && i < l->u.list.n; i++) {
            cg_jval *x = attr ? attr_path(r, l->u.list.items[i], attr) : cg_jval_ref(l->u.list.items[i]);
            if (!x) { cg_jval_unref(acc); acc = NULL; break; }
            if (!is_num(acc) || !is_num(x)) { cg_jval_unref(x); cg_jval_unref(acc); acc = NULL; rt_fail(r, CG_ERR_FORMAT, "sum: unsupported operand types"); break; }
            cg_jval *nx = (is_int(acc) && is_int(x)) ? cg_jval_int(ival(acc) + ival(x)) : cg_jval_float(fval(acc) + fval(x));
            cg_jval_unref(x);
            cg_jval_unref(acc);
            acc = nx;
            if (!acc) oom(r);
        }
        cg_jval_unref(l);
        return acc;
    }
    if (IS("batch")) {
        const cg_jval *cnt = cargs_get(a, 0, "linecount"), *fill = cargs_get(a, 1, "fill_with");
        if (!cnt || !is_int(cnt) || ival(cnt) <= 0) return rt_fail(r, CG_ERR_FORMAT, "batch: linecount must be a positive integer");
        if (!(l = rt_to_list(r, in))) return NULL;
        size_t per = (size_t)ival(cnt);
        if (!(res = cg_jval_list())) { cg_jval_unref(l); return oom(r); }
        cg_jval *cur = NULL;
        for (size_t i = 0; i < l->u.list.n; i++) {
            if (!cur && !(cur = cg_jval_list())) break;
            if (!cg_jval_list_push(cur, cg_jval_ref(l->u.list.items[i]))) break;
            if (cur->u.list.n == per) { if (!cg_jval_list_push(res, cur)) { cur = NULL; break; } cur = NULL; }
        }
        if (cur) {
            while (fill && cur->u.list.n < per) if (!cg_jval_list_push(cur, cg_jval_ref((cg_jval *)fill))) break;
            if (!cg_jval_list_push(res, cur)) oom(r);
        }
        cg_jval_unref(l);
        return res;
    }
    cg_jval_unref(s);
#undef IS
    return rt_fail(r, CG_ERR_FORMAT, "no filter named '%.*s'", (int)nn, name);
}

// ---- tests ------------------------------------------------------------------------------------

int lib_test(rt *r, const char *name, size_t nn, cg_jval *in, const cargs *a) {
    const cg_jval *a0 = cargs_get(a, 0, NULL);
    int k = in->kind, c;
#define IS(x) eqn(name, nn, x)
    if (IS("defined")) return k != CG_JV_UNDEF;
    if (IS("undefined")) return k == CG_JV_UNDEF;
    if (IS("none")) return k == CG_JV_NULL;
    if (IS("string")) return k == CG_JV_STR;
    if (IS("number")) return k == CG_JV_INT || k == CG_JV_FLOAT || k == CG_JV_BOOL;
    if (IS("integer")) return k == CG_JV_INT;
    if (IS("float")) return k == CG_JV_FLOAT;
    if (IS("boolean")) return k == CG_JV_BOOL;
    if (IS("true")) return k == CG_JV_BOOL && in->u.b;
    if (IS("false")) return k == CG_JV_BOOL && !in->u.b;
    if (IS("mapping")) return k == CG_JV_DICT;
    if (IS("iterable")) return k == CG_JV_STR || k == CG_JV_LIST || k == CG_JV_DICT || k == CG_JV_UNDEF || k == CG_JV_NS;
    if (IS("sequence")) return k == CG_JV_STR || k == CG_JV_LIST || k == CG_JV_DICT;
    if (IS("callable")) return k == CG_JV_FUNC;
    if (IS("lower") || IS("upper")) {
        if (k != CG_JV_STR) return 0;
        cg_jval *t = do_case(r, in, IS("lower") ? CASE_LOWER : CASE_UPPER);
        if (!t) return -1;
        int eq = cg_jval_equal(t, in);
        cg_jval_unref(t);
        return eq;
    }
    if (IS("escaped")) return 0;
    if (IS("even") || IS("odd") || IS("divisibleby")) {  // Python `value % n` (floats too)
        const cg_jval *dv = IS("divisibleby") ? a0 : NULL;
        if (k == CG_JV_UNDEF) { rt_fail(r, CG_ERR_FORMAT, "%s", in->u.s.p ? in->u.s.p : "value is undefined"); return -1; }
        if (!is_num(in) || (IS("divisibleby") && (!dv || !is_num(dv)))) {
            rt_fail(r, CG_ERR_FORMAT, "unsupported operand type(s) for %%: '%s' and 'int'", cg_jval_type_name(in));
            return -1;
        }
        if (is_int(in) && (!dv || is_int(dv))) {
            int64_t m = dv ? ival(dv) : 2;
            if (m == 0) { rt_fail(r, CG_ERR_FORMAT, "integer division or modulo by zero"); return -1; }
            int64_t rem = (m == -1) ? 0 : ival(in) % m;
            if (rem != 0 && ((rem < 0) != (m < 0))) rem += m;
            return IS("odd") ? rem == 1 : rem == 0;
        }
        double m = dv ? fval(dv) : 2.0;
        if (m == 0) { rt_fail(r, CG_ERR_FORMAT, "float modulo"); return -1; }
        double rem = fmod(fval(in), m);
        if (rem != 0 && ((rem < 0) != (m < 0))) rem += m;
        return IS("odd") ? rem == 1.0 : rem == 0.0;
    }
    if (IS("sameas")) {
        if (!a0) { rt_fail(r, CG_ERR_FORMAT, "sameas needs an argument"); return -1; }
        if (k == CG_JV_NULL || k == CG_JV_BOOL) return a0->kind == k && (k == CG_JV_NULL || a0->u.b == in->u.b);
        return in == a0;
    }
    if (IS("in")) {
        if (!a0) { rt_fail(r, CG_ERR_FORMAT, "test 'in' needs an argument"); return -1; }
        if (a0->kind == CG_JV_STR) {
            if (k != CG_JV_STR) { rt_fail(r, CG_ERR_FORMAT, "'in <string>' requires string as left operand, not %s", cg_jval_type_name(in)); return -1; }
            return memfind(a0->u.s.p, a0->u.s.n, in->u.s.p, in->u.s.n) != NULL;
        }
        if (a0->kind == CG_JV_LIST) {
            for (size_t i = 0; i < a0->u.list.n; i++) if (cg_jval_equal(a0->u.list.items[i], in)) return 1;
            return 0;
        }
        if (a0->kind == CG_JV_DICT) return cg_jval_dict_get(a0, in) != NULL;
        rt_fail(r, CG_ERR_FORMAT, "argument of type '%s' is not iterable", cg_jval_type_name(a0));
        return -1;
    }
    if (IS("eq") || IS("equalto") || IS("==")) return a0 ? cg_jval_equal(in, a0) : (rt_fail(r, CG_ERR_FORMAT, "test needs an argument"), -1);
    if (IS("ne") || IS("!=")) return a0 ? !cg_jval_equal(in, a0) : (rt_fail(r, CG_ERR_FORMAT, "test needs an argument"), -1);
    if (IS("lt") || IS("lessthan") || IS("<") || IS("le") || IS("<=") || IS("gt") || IS("greaterthan") || IS(">") ||
        IS("ge") || IS(">=")) {
        if (!a0) { rt_fail(r, CG_ERR_FORMAT, "test needs an argument"); return -1; }
        if (rt_compare(r, in, a0, &c)) return -1;
        if (IS("lt") || IS("lessthan") || IS("<")) return c < 0;
        if (IS("le") || IS("<=")) return c <= 0;
        if (IS("gt") || IS("greaterthan") || IS(">")) return c > 0;
        return c >= 0;
    }
#undef IS
    rt_fail(r, CG_ERR_FORMAT, "no test named '%.*s'", (int)nn, name);
    return -1;
}
