// schema.c — JSON Schema → GBNF (see schema.h for what is supported).
//
// The schema is parsed with the strict JSON reader of src/tok (jval.h). Each schema node becomes one
// rule `<prefix>r<N>`; a $ref target gets its rule once (memoised by node), so recursive schemas
// give recursive rules. Shared primitives (space, string, number, …) are always emitted. Integer
// ranges are spelled out digit by digit (same-length decimal ranges split on the first digit).
// Errors name the JSON pointer of the offending keyword. All memory: the parsed document and cg_bufs,
// freed on every path through the one cleanup label of the entry point.
#include "sample/schema.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "tok/jval.h"

typedef cg_jval sj;   // a parsed schema node (borrowed from the document for the whole conversion)

// Member `key` of an object, or NULL (also when o is not an object).
static const sj *sj_get(const sj *o, const char *key) {
    return o && o->kind == CG_JV_DICT ? cg_jval_dict_getn(o, key, strlen(key)) : NULL;
}
static bool is_num(const sj *v) { return v->kind == CG_JV_INT || v->kind == CG_JV_FLOAT; }
static double num(const sj *v) { return v->kind == CG_JV_INT ? (double)v->u.i : v->u.f; }
static bool is_str(const sj *v) { return v->kind == CG_JV_STR; }
static bool is_bool(const sj *v, bool b) { return v->kind == CG_JV_BOOL && v->u.b == b; }

// Compact JSON of v (keys in document order, UTF-8 kept); false for a number JSON cannot hold.
static bool write_json(cg_buf *b, const sj *v) {
    static const cg_jval_dump_opts COMPACT = {.indent = -1, .item_sep = ",", .key_sep = ":", .finite_only = true};
    return cg_jval_dump(v, &COMPACT, b, NULL) == CG_OK;
}

typedef struct ref_memo { const sj *node; char name[80]; } ref_memo;

typedef struct gen {
    const sj *root;
    const char *prefix;
    cg_buf *out;
    cg_err *err;
    uint32_t n_rules;
    ref_memo *refs;
    size_t n_refs, cap_refs;
    int depth;
} gen;

#define P g->prefix
#define MAX_DEPTH 64

static const char *const UNSUPPORTED[] = {
    "pattern", "patternProperties", "not", "if", "then", "else", "multipleOf", "minProperties", "maxProperties",
    "contains", "dependentRequired", "dependentSchemas", "propertyNames", "unevaluatedProperties",
    "unevaluatedItems", "minContains", "maxContains", "dependencies",
};

static void new_name(gen *g, char *name) { snprintf(name, 80, "%sr%u", P, g->n_rules++); }

static void put_rule(gen *g, const char *name, const cg_buf *body) {
    cg_buf_printf(g->out, "%s ::= %.*s\n", name, (int)body->len, body->data ? body->data : "");
}

// A GBNF literal for the bytes s[0..n) (valid UTF-8).
static void gbnf_lit(cg_buf *b, const char *s, size_t n) {
    cg_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { cg_buf_putc(b, '\\'); cg_buf_putc(b, (char)c); }
        else if (c < 0x20 || c == 0x7F) cg_buf_printf(b, "\\x%02X", c);
        else cg_buf_putc(b, (char)c);
    }
    cg_buf_putc(b, '"');
}

// The JSON text of v, as a GBNF literal; false when v holds a number beyond a double (1e999).
static bool json_lit(cg_buf *b, const sj *v) {
    cg_buf t;
    cg_buf_init(&t);
    bool ok = write_json(&t, v);
    if (ok) gbnf_lit(b, t.data ? t.data : "", t.len);
    cg_buf_free(&t);
    return ok;
}

// The shared rules; '@' stands for the rule-name prefix.
static const char PRIMITIVES[] =
    "@space ::= | \" \" | \"\\n\" [ \\t]{0,8}\n"
    "@hex ::= [0-9a-fA-F]\n"
    "@hexns ::= [0-9A-Ca-c] @hex @hex @hex | [Dd] [0-7] @hex @hex | [E-Fe-f] @hex @hex @hex\n"
    "@char ::= [^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" @hexns)\n"
    "@kchar ::= [^\"\\\\\\x7F\\x00-\\x1F]\n"
    "@string ::= \"\\\"\" @char* \"\\\"\" @space\n"
    "@integral ::= \"0\" | [1-9] [0-9]{0,15}\n"
    "@integer ::= \"-\"? @integral @space\n"
    "@number ::= \"-\"? @integral (\".\" [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})? @space\n"
    "@boolean ::= (\"true\" | \"false\") @space\n"
    "@null ::= \"null\" @space\n"
    "@value ::= @object | @array | @string | @number | @boolean | @null\n"
    "@object ::= \"{\" @space (@string \":\" @space @value (\",\" @space @string \":\" @space @value)*)? \"}\" @space\n"
    "@array ::= \"[\" @space (@value (\",\" @space @value)*)? \"]\" @space\n"
    "@d28 ::= \"0\" [1-9] | \"1\" [0-9] | \"2\" [0-8]\n"
    "@date ::= [0-9]{4} \"-\" ((\"01\" | \"03\" | \"05\" | \"07\" | \"08\" | \"10\" | \"12\") \"-\" (@d28 | \"29\" | \"30\" | \"31\")"
    " | (\"04\" | \"06\" | \"09\" | \"11\") \"-\" (@d28 | \"29\" | \"30\") | \"02-\" @d28)\n"
    "@time ::= ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" [0-9]{1,6})?"
    " (\"Z\" | [+-] ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9])\n"
    "@uuid ::= [0-9a-f]{8} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{12}\n";

static void primitives(gen *g) {
    for (const char *c = PRIMITIVES; *c; c++) {
        if (*c == '@') cg_buf_puts(g->out, P);
        else cg_buf_putc(g->out, *c);
    }
}

static cg_status bad(gen *g, cg_status st, const char *path, const char *what) {
    return cg_err_set(g->err, st, "json schema: %s at '%s'", what, *path ? path : "#");
}

static void sub_path(char *dst, size_t cap, const char *path, const char *key) {
    snprintf(dst, cap, "%s/%s", path, key);
}

// ---- integer ranges ----------------------------------------------------------------------------------
// Decimal strings lo <= hi of the same length n.
static void digits_range(cg_buf *b, const char *lo, const char *hi, size_t n) {
    if (n == 0) { cg_buf_puts(b, "\"\""); return; }
    if (memcmp(lo, hi, n) == 0) { gbnf_lit(b, lo, n); return; }
    if (n == 1) { cg_buf_printf(b, "[%c-%c]", lo[0], hi[0]); return; }
    if (lo[0] == hi[0]) {
        cg_buf_printf(b, "\"%c\" (", lo[0]);
        digits_range(b, lo + 1, hi + 1, n - 1);
        cg_buf_putc(b, ')');
        return;
    }
    bool lo_zero = true, hi_nine = true;
    for (size_t i = 1; i < n; i++) {
        lo_zero &= lo[i] == '0';
        hi_nine &= hi[i] == '9';
    }
    char nines[24], zeros[24];
    memset(nines, '9', sizeof nines);
    memset(zeros, '0', sizeof zeros);
    cg_buf_putc(b, '(');
    char first_mid = lo[0], last_mid = hi[0];
    bool need_bar = false;
    if (!lo_zero) {
        cg_buf_printf(b, "\"%c\" (", lo[0]);
        digits_range(b, lo + 1, nines, n - 1);
        cg_buf_putc(b, ')');
        first_mid++;
        need_bar = true;
    }
    if (!hi_nine) last_mid--;
    if (first_mid <= last_mid) {
        if (need_bar) cg_buf_puts(b, " | ");
        cg_buf_printf(b, "[%c-%c] [0-9]{%zu}", first_mid, last_mid, n - 1);
        need_bar = true;
    }
    if (!hi_nine) {
        if (need_bar) cg_buf_puts(b, " | ");
        cg_buf_printf(b, "\"%c\" (", hi[0]);
        digits_range(b, zeros, hi + 1, n - 1);
        cg_buf_putc(b, ')');
    }
    cg_buf_putc(b, ')');
}

static int n_digits(uint64_t v) {
    int d = 1;
    while (v >= 10) { v /= 10; d++; }
    return d;
}

// Non-negative integers in [a, b]; b_unbounded: no upper bound (at most 16 digits, or a's length).
static void pos_range(cg_buf *b, uint64_t a, uint64_t hi, bool hi_unbounded) {
    int da = n_digits(a), db = hi_unbounded ? da : n_digits(hi);
    bool first = true;
    cg_buf_putc(b, '(');
    uint64_t p10 = 1;
    for (int i = 1; i < da; i++) p10 *= 10;
    for (int d = da; d <= db; d++) {
        uint64_t lo_d = d == 1 ? 0 : p10;
        uint64_t hi_d = d >= 20 ? UINT64_MAX : p10 * 10 - 1;
        if (lo_d < a) lo_d = a;
        if (!hi_unbounded && hi_d > hi) hi_d = hi;
        if (lo_d <= hi_d) {
            char ls[24], hs[24];
            snprintf(ls, sizeof ls, "%0*" PRIu64, d, lo_d);
            snprintf(hs, sizeof hs, "%0*" PRIu64, d, hi_d);
            if (!first) cg_buf_puts(b, " | ");
            digits_range(b, ls, hs, (size_t)d);
            first = false;
        }
        if (d < 20) p10 *= 10;
    }
    if (hi_unbounded && da < 16) {
        if (!first) cg_buf_puts(b, " | ");
        cg_buf_printf(b, "[1-9] [0-9]{%d,15}", da);
        first = false;
    }
    if (first) cg_buf_puts(b, "\"\"");   // cannot happen for a <= hi; keeps the grammar well-formed
    cg_buf_putc(b, ')');
}

// Integers in [lo, hi] (has_lo/has_hi: bounded on that side). lo <= hi when both are given.
static void int_range(cg_buf *b, int64_t lo, bool has_lo, int64_t hi, bool has_hi) {
    bool first = true;
    cg_buf_putc(b, '(');
    if (!has_hi || hi >= 0) {
        pos_range(b, has_lo && lo > 0 ? (uint64_t)lo : 0, has_hi ? (uint64_t)hi : 0, !has_hi);
        first = false;
    }
    if (!has_lo || lo < 0) {
        if (!first) cg_buf_puts(b, " | ");
        uint64_t nlo = has_hi && hi < 0 ? (uint64_t)(-(hi + 1)) + 1 : 1;
        uint64_t nhi = has_lo ? (uint64_t)(-(lo + 1)) + 1 : 0;
        cg_buf_puts(b, "\"-\" ");
        pos_range(b, nlo, nhi, !has_lo);
    }
    cg_buf_putc(b, ')');
}

// Reads minimum/maximum/exclusive* into integer bounds for integral values (ival) and for integral
// parts that may carry a fraction (fval). Returns false when the range is empty.
typedef struct bounds {
    bool has_lo, has_hi;
    int64_t lo, hi;
    bool has_excl;     // fval only: integral part `excl` (an exclusive integral minimum) with a nonzero fraction
    int64_t excl;
} bounds;

static cg_status read_bounds(gen *g, const sj *s, const char *path, bounds *ival, bounds *fval) {
    *ival = *fval = (bounds){0};
    const sj *mn = sj_get(s, "minimum"), *mx = sj_get(s, "maximum");
    const sj *emn = sj_get(s, "exclusiveMinimum"), *emx = sj_get(s, "exclusiveMaximum");
    double lo = -INFINITY, hi = INFINITY;
    bool lo_excl = false, hi_excl = false;
    if (mn && !is_num(mn)) return bad(g, CG_ERR_FORMAT, path, "minimum is not a number");
    if (mx && !is_num(mx)) return bad(g, CG_ERR_FORMAT, path, "maximum is not a number");
    if (mn) lo = num(mn);
    if (mx) hi = num(mx);
    if (emn && emn->kind == CG_JV_BOOL) lo_excl = emn->u.b;   // draft 4
    else if (emn && is_num(emn)) { if (num(emn) >= lo) { lo = num(emn); lo_excl = true; } }
    else if (emn) return bad(g, CG_ERR_FORMAT, path, "exclusiveMinimum is neither a number nor a boolean");
    if (emx && emx->kind == CG_JV_BOOL) hi_excl = emx->u.b;
    else if (emx && is_num(emx)) { if (num(emx) <= hi) { hi = num(emx); hi_excl = true; } }
    else if (emx) return bad(g, CG_ERR_FORMAT, path, "exclusiveMaximum is neither a number nor a boolean");
    const double LIM = 9.0e15;   // integers up to 16 digits are exact in a double
    if ((isfinite(lo) && fabs(lo) > LIM) || (isfinite(hi) && fabs(hi) > LIM))
        return bad(g, CG_ERR_UNSUPPORTED, path, "numeric bound beyond 9e15 is not representable");
    if (isfinite(lo)) {
        ival->has_lo = fval->has_lo = true;
        ival->lo = (int64_t)(lo_excl ? floor(lo) + 1 : ceil(lo));
        fval->lo = ival->lo;
        if (lo_excl && lo == floor(lo)) {
            fval->lo = (int64_t)lo + 1;
            fval->has_excl = true;
            fval->excl = (int64_t)lo;
        }
        else if (lo_excl) fval->lo = (int64_t)floor(lo) + (lo - floor(lo) > 0 ? 1 : 0);
    }
    if (isfinite(hi)) {
        ival->has_hi = fval->has_hi = true;
        ival->hi = (int64_t)(hi_excl ? ceil(hi) - 1 : floor(hi));
        fval->hi = (int64_t)floor(hi) - 1;
        if (hi_excl && hi == floor(hi)) fval->hi = (int64_t)hi - 1;
    }
    return CG_OK;
}

// ---- schema nodes ----------------------------------------------------------------------------------------
static cg_status visit(gen *g, const sj *s, const char *path, char *name);

static cg_status resolve_ref(gen *g, const sj *ref, const char *path, const sj **target) {
    if (!is_str(ref)) return bad(g, CG_ERR_FORMAT, path, "$ref is not a string");
    const char *r = ref->u.s.p;
    if (r[0] != '#') return bad(g, CG_ERR_UNSUPPORTED, path, "$ref outside this document");
    const sj *cur = g->root;
    const char *p = r + 1;
    while (*p == '/') {
        p++;
        char tok[256];
        size_t k = 0;
        while (*p && *p != '/' && k < sizeof tok - 1) {
            if (p[0] == '~' && p[1] == '0') { tok[k++] = '~'; p += 2; }
            else if (p[0] == '~' && p[1] == '1') { tok[k++] = '/'; p += 2; }
            else tok[k++] = *p++;
        }
        tok[k] = 0;
        if (cur->kind == CG_JV_LIST) {
            char *end;
            unsigned long i = strtoul(tok, &end, 10);
            cur = !*tok || *end || i >= cur->u.list.n ? NULL : cur->u.list.items[i];
        } else {
            cur = sj_get(cur, tok);
        }
        if (!cur) return cg_err_set(g->err, CG_ERR_NOT_FOUND, "json schema: $ref '%s' at '%s' does not resolve", r, path);
    }
    if (*p) return bad(g, CG_ERR_UNSUPPORTED, path, "$ref is not a JSON pointer");
    *target = cur;
    return CG_OK;
}

typedef struct prop { const char *key; size_t klen; const sj *kv; const sj *schema; bool req; } prop;   // kv: the key as a string value

// "not one of the declared keys" as a chain of rules over the keys' code points; *name gets the
// rule matching the rest of a key after the opening quote, closing quote included.
static cg_status not_keys(gen *g, const prop *props, size_t n, const uint8_t *alive, size_t depth, char *name) {
    cg_status st = CG_OK;
    new_name(g, name);
    cg_buf body;
    cg_buf_init(&body);
    bool terminal = false;
    uint32_t cps[256];
    size_t n_cps = 0;
    uint8_t *sub = malloc(n ? n : 1);
    if (!sub) { st = cg_err_set(g->err, CG_ERR_NOMEM, "json schema: out of memory"); goto done; }
    for (size_t i = 0; i < n; i++) {
        if (!alive[i]) continue;
        // the depth-th code point of the key
        size_t at = 0, k = 0;
        uint32_t cp = 0;
        int len = 0;
        while (at < props[i].klen && k <= depth) {
            len = cg_utf8_decode(props[i].key + at, props[i].klen - at, &cp);
            if (len <= 0) break;
            if (k == depth) break;
            at += (size_t)len;
            k++;
        }
        if (at >= props[i].klen) { terminal = true; continue; }
        bool seen = false;
        for (size_t j = 0; j < n_cps; j++) seen |= cps[j] == cp;
        if (!seen && n_cps < 256) cps[n_cps++] = cp;
    }
    if (!terminal) cg_buf_puts(&body, "\"\\\"\" | ");
    cg_buf_puts(&body, "[^\"\\\\\\x7F\\x00-\\x1F");
    for (size_t j = 0; j < n_cps; j++) cg_buf_printf(&body, "\\U%08X", cps[j]);
    cg_buf_printf(&body, "] %skchar* \"\\\"\"", P);
    for (size_t j = 0; j < n_cps; j++) {
        for (size_t i = 0; i < n; i++) {
            sub[i] = 0;
            if (!alive[i]) continue;
            size_t at = 0, k = 0;
            uint32_t cp = 0;
            while (at < props[i].klen) {
                int len = cg_utf8_decode(props[i].key + at, props[i].klen - at, &cp);
                if (len <= 0) break;
                if (k == depth) { sub[i] = cp == cps[j]; break; }
                at += (size_t)len;
                k++;
            }
        }
        char child[80];
        if ((st = not_keys(g, props, n, sub, depth + 1, child))) goto done;
        char enc[4];
        int len = cg_utf8_encode(cps[j], enc);
        cg_buf_puts(&body, " | ");
        gbnf_lit(&body, enc, (size_t)len);
        cg_buf_printf(&body, " %s", child);
    }
    put_rule(g, name, &body);
done:
    free(sub);
    cg_buf_free(&body);
    return st;
}

static cg_status object_rule(gen *g, prop *props, size_t n, const sj *additional, const char *path, cg_buf *body) {
    cg_status st = CG_OK;
    char (*kv)[80] = calloc(n ? n : 1, sizeof *kv);
    if (!kv) return cg_err_set(g->err, CG_ERR_NOMEM, "json schema: out of memory");
    for (size_t i = 0; i < n; i++) {
        char pp[512], val[80];
        sub_path(pp, sizeof pp, path, props[i].key);
        if ((st = visit(g, props[i].schema, pp, val))) goto done;
        new_name(g, kv[i]);
        cg_buf b;
        cg_buf_init(&b);
        cg_buf t;
        cg_buf_init(&t);
        write_json(&t, props[i].kv);   // a string: always writable
        gbnf_lit(&b, t.data ? t.data : "", t.len);
        cg_buf_printf(&b, " %sspace \":\" %sspace %s", P, P, val);
        put_rule(g, kv[i], &b);
        cg_buf_free(&b);
        cg_buf_free(&t);
    }
    char addkv[80] = "";
    if (additional && !is_bool(additional, false)) {
        char val[80], key[80];
        if (additional->kind == CG_JV_BOOL) snprintf(val, sizeof val, "%svalue", P);
        else {
            char pp[512];
            sub_path(pp, sizeof pp, path, "additionalProperties");
            if ((st = visit(g, additional, pp, val))) goto done;
        }
        uint8_t *alive = malloc(n ? n : 1);
        if (!alive) { st = cg_err_set(g->err, CG_ERR_NOMEM, "json schema: out of memory"); goto done; }
        memset(alive, 1, n ? n : 1);
        st = not_keys(g, props, n, alive, 0, key);
        free(alive);
        if (st) goto done;
        new_name(g, addkv);
        cg_buf b;
        cg_buf_init(&b);
        cg_buf_printf(&b, "\"\\\"\" %s %sspace \":\" %sspace %s", key, P, P, val);
        put_rule(g, addkv, &b);
        cg_buf_free(&b);
    }
    cg_buf_printf(body, "\"{\" %sspace ", P);
    size_t n_req = 0;
    for (size_t i = 0; i < n; i++) n_req += props[i].req;
    if (n_req) {
        bool first = true;
        for (size_t i = 0; i < n; i++) {
            if (!props[i].req) continue;
            if (!first) cg_buf_printf(body, "\",\" %sspace ", P);
            cg_buf_printf(body, "%s ", kv[i]);
            first = false;
        }
        for (size_t i = 0; i < n; i++)
            if (!props[i].req) cg_buf_printf(body, "(\",\" %sspace %s)? ", P, kv[i]);
        if (*addkv) cg_buf_printf(body, "(\",\" %sspace %s)* ", P, addkv);
    } else if (n || *addkv) {
        cg_buf_puts(body, "(");
        bool first = true;
        for (size_t i = 0; i < n; i++) {
            if (!first) cg_buf_puts(body, " | ");
            first = false;
            cg_buf_printf(body, "%s ", kv[i]);
            for (size_t j = i + 1; j < n; j++) cg_buf_printf(body, "(\",\" %sspace %s)? ", P, kv[j]);
            if (*addkv) cg_buf_printf(body, "(\",\" %sspace %s)* ", P, addkv);
        }
        if (*addkv) {
            if (!first) cg_buf_puts(body, " | ");
            cg_buf_printf(body, "%s (\",\" %sspace %s)* ", addkv, P, addkv);
        }
        cg_buf_puts(body, ")? ");
    }
    cg_buf_printf(body, "\"}\" %sspace", P);
done:
    free(kv);
    return st;
}

static cg_status grow_props(gen *g, prop **props, size_t n, size_t *cap) {
    if (n < *cap) return CG_OK;
    size_t c = *cap ? *cap * 2 : 16;
    prop *p = realloc(*props, c * sizeof *p);
    if (!p) return cg_err_set(g->err, CG_ERR_NOMEM, "json schema: out of memory");
    *props = p;
    *cap = c;
    return CG_OK;
}

static bool same_str(const sj *a, const char *p, size_t n) { return is_str(a) && a->u.s.n == n && memcmp(a->u.s.p, p, n) == 0; }

static cg_status collect_props(gen *g, const sj *s, const char *path, prop **props, size_t *n, size_t *cap) {
    // `required` keys without a property schema take any value
    static const sj ANY = {.refs = 1, .kind = CG_JV_BOOL, .immortal = 1, .u.b = true};
    cg_status st;
    const sj *pr = sj_get(s, "properties"), *req = sj_get(s, "required");
    if (pr && pr->kind != CG_JV_DICT) return bad(g, CG_ERR_FORMAT, path, "properties is not an object");
    if (req && req->kind != CG_JV_LIST) return bad(g, CG_ERR_FORMAT, path, "required is not an array");
    for (size_t i = 0; pr && i < pr->u.dict.n; i++) {
        if ((st = grow_props(g, props, *n, cap))) return st;
        const sj *key = pr->u.dict.keys[i];
        bool r = false;
        for (size_t j = 0; req && j < req->u.list.n; j++) r |= same_str(req->u.list.items[j], key->u.s.p, key->u.s.n);
        // allOf merging: a key seen before keeps its first schema, required if any says so
        bool dup = false;
        for (size_t j = 0; j < *n; j++)
            if ((*props)[j].klen == key->u.s.n && memcmp((*props)[j].key, key->u.s.p, key->u.s.n) == 0) {
                (*props)[j].req |= r;
                dup = true;
            }
        if (!dup) (*props)[(*n)++] = (prop){key->u.s.p, key->u.s.n, key, pr->u.dict.vals[i], r};
    }
    for (size_t j = 0; req && j < req->u.list.n; j++) {
        const sj *rk = req->u.list.items[j];
        if (!is_str(rk)) return bad(g, CG_ERR_FORMAT, path, "required holds a non-string");
        bool found = false;
        for (size_t i = 0; i < *n; i++) found |= (*props)[i].klen == rk->u.s.n && memcmp((*props)[i].key, rk->u.s.p, rk->u.s.n) == 0;
        if (found) continue;
        if ((st = grow_props(g, props, *n, cap))) return st;
        (*props)[(*n)++] = (prop){rk->u.s.p, rk->u.s.n, rk, &ANY, true};
    }
    return CG_OK;
}

static cg_status type_rule(gen *g, const sj *s, const char *type, const char *path, cg_buf *body) {
    cg_status st = CG_OK;
    if (!strcmp(type, "null")) { cg_buf_printf(body, "%snull", P); return CG_OK; }
    if (!strcmp(type, "boolean")) { cg_buf_printf(body, "%sboolean", P); return CG_OK; }
    if (!strcmp(type, "integer") || !strcmp(type, "number")) {
        bounds iv, fv;
        if ((st = read_bounds(g, s, path, &iv, &fv))) return st;
        bool is_int = !strcmp(type, "integer");
        if (!iv.has_lo && !iv.has_hi) {
            cg_buf_printf(body, "%s%s", P, is_int ? "integer" : "number");
            return CG_OK;
        }
        bool ok_i = !(iv.has_lo && iv.has_hi && iv.lo > iv.hi);
        if (fv.has_lo && fv.lo < 0) fv.lo = 0;
        if (!fv.has_lo) { fv.has_lo = true; fv.lo = 0; }
        bool ok_f = !is_int && !(fv.has_hi && fv.lo > fv.hi);
        bool ok_x = !is_int && fv.has_excl && fv.excl >= 0 && !(fv.has_hi && fv.excl > fv.hi);
        if (!ok_i && !ok_f && !ok_x) return bad(g, CG_ERR_UNSUPPORTED, path, "the numeric bounds admit no value we can generate");
        cg_buf_putc(body, '(');
        if (ok_i) int_range(body, iv.lo, iv.has_lo, iv.hi, iv.has_hi);
        if (ok_f) {
            if (ok_i) cg_buf_puts(body, " | ");
            pos_range(body, (uint64_t)fv.lo, fv.has_hi ? (uint64_t)fv.hi : 0, !fv.has_hi);
            cg_buf_puts(body, " \".\" [0-9]{1,15}");
        }
        if (ok_x) {   // just above an exclusive integral minimum: a fraction that is not all zeros
            if (ok_i || ok_f) cg_buf_puts(body, " | ");
            cg_buf_printf(body, "\"%" PRId64 ".\" [0-9]{0,14} [1-9]", fv.excl);
        }
        cg_buf_printf(body, ") %sspace", P);
        return CG_OK;
    }
    if (!strcmp(type, "string")) {
        const sj *fmt = sj_get(s, "format");
        if (fmt) {
            if (!is_str(fmt)) return bad(g, CG_ERR_FORMAT, path, "format is not a string");
            const char *f = fmt->u.s.p;
            if (!strcmp(f, "date") || !strcmp(f, "time") || !strcmp(f, "uuid"))
                cg_buf_printf(body, "\"\\\"\" %s%s \"\\\"\" %sspace", P, f, P);
            else if (!strcmp(f, "date-time"))
                cg_buf_printf(body, "\"\\\"\" %sdate \"T\" %stime \"\\\"\" %sspace", P, P, P);
            else
                return cg_err_set(g->err, CG_ERR_UNSUPPORTED, "json schema: format '%s' is not supported at '%s'", f, path);
            return CG_OK;
        }
        const sj *mn = sj_get(s, "minLength"), *mx = sj_get(s, "maxLength");
        if ((mn && (!is_num(mn) || num(mn) < 0)) || (mx && (!is_num(mx) || num(mx) < 0)))
            return bad(g, CG_ERR_FORMAT, path, "minLength/maxLength is not a non-negative number");
        if (!mn && !mx) { cg_buf_printf(body, "%sstring", P); return CG_OK; }
        double lo = mn ? num(mn) : 0, hi = mx ? num(mx) : -1;
        if (lo > 100000 || hi > 100000) return bad(g, CG_ERR_UNSUPPORTED, path, "string length bound above 100000");
        if (mx && hi < lo) return bad(g, CG_ERR_UNSUPPORTED, path, "maxLength < minLength: no string fits");
        if (mx) cg_buf_printf(body, "\"\\\"\" %schar{%u,%u} \"\\\"\" %sspace", P, (unsigned)lo, (unsigned)hi, P);
        else cg_buf_printf(body, "\"\\\"\" %schar{%u,} \"\\\"\" %sspace", P, (unsigned)lo, P);
        return CG_OK;
    }
    if (!strcmp(type, "array")) {
        const sj *items = sj_get(s, "items"), *prefix = sj_get(s, "prefixItems");
        const sj *mn = sj_get(s, "minItems"), *mx = sj_get(s, "maxItems"), *uniq = sj_get(s, "uniqueItems");
        if (uniq && is_bool(uniq, true)) return bad(g, CG_ERR_UNSUPPORTED, path, "uniqueItems: true");
        if ((mn && (!is_num(mn) || num(mn) < 0)) || (mx && (!is_num(mx) || num(mx) < 0)))
            return bad(g, CG_ERR_FORMAT, path, "minItems/maxItems is not a non-negative number");
        if ((mn && num(mn) > 10000) || (mx && num(mx) > 10000))
            return bad(g, CG_ERR_UNSUPPORTED, path, "minItems/maxItems above 10000");
        unsigned lo = mn ? (unsigned)num(mn) : 0;
        bool bounded = mx != NULL;
        unsigned hi = mx ? (unsigned)num(mx) : 0;
        if (lo > 10000 || hi > 10000) return bad(g, CG_ERR_UNSUPPORTED, path, "minItems/maxItems above 10000");
        if (bounded && hi < lo) return bad(g, CG_ERR_UNSUPPORTED, path, "maxItems < minItems: no array fits");
        char item[80];
        bool no_items = items && is_bool(items, false);
        if (items && !no_items) {
            char pp[512];
            sub_path(pp, sizeof pp, path, "items");
            if ((st = visit(g, items, pp, item))) return st;
        } else {
            snprintf(item, sizeof item, "%svalue", P);
        }
        cg_buf_printf(body, "\"[\" %sspace ", P);
        unsigned k = 0;
        if (prefix) {
            if (prefix->kind != CG_JV_LIST) return bad(g, CG_ERR_FORMAT, path, "prefixItems is not an array");
            if (prefix->u.list.n > 10000) return bad(g, CG_ERR_UNSUPPORTED, path, "prefixItems above 10000");
            k = (unsigned)prefix->u.list.n;
            if (bounded && hi < k) return bad(g, CG_ERR_UNSUPPORTED, path, "maxItems below the prefixItems count");
            for (unsigned i = 0; i < k; i++) {
                char pp[512], nm[80], idx[32];
                snprintf(idx, sizeof idx, "prefixItems/%u", i);
                sub_path(pp, sizeof pp, path, idx);
                if ((st = visit(g, prefix->u.list.items[i], pp, nm))) return st;
                if (i) cg_buf_printf(body, "\",\" %sspace ", P);
                cg_buf_printf(body, "%s ", nm);
            }
            if (!no_items && (!bounded || hi > k)) {
                if (bounded) cg_buf_printf(body, "(\",\" %sspace %s){%u,%u} ", P, item, lo > k ? lo - k : 0, hi - k);
                else cg_buf_printf(body, "(\",\" %sspace %s){%u,} ", P, item, lo > k ? lo - k : 0);
            }
        } else if (no_items || (bounded && hi == 0)) {
            if (lo > 0) return bad(g, CG_ERR_UNSUPPORTED, path, "minItems > 0 but no items allowed");
        } else if (lo == 0) {
            if (bounded) cg_buf_printf(body, "(%s (\",\" %sspace %s){0,%u})? ", item, P, item, hi - 1);
            else cg_buf_printf(body, "(%s (\",\" %sspace %s)*)? ", item, P, item);
        } else {
            if (bounded) cg_buf_printf(body, "%s (\",\" %sspace %s){%u,%u} ", item, P, item, lo - 1, hi - 1);
            else cg_buf_printf(body, "%s (\",\" %sspace %s){%u,} ", item, P, item, lo - 1);
        }
        cg_buf_printf(body, "\"]\" %sspace", P);
        return CG_OK;
    }
    if (!strcmp(type, "object")) {
        if (!sj_get(s, "properties") && !sj_get(s, "additionalProperties") && !sj_get(s, "required")) {
            cg_buf_printf(body, "%sobject", P);   // {"type": "object"} alone: any object
            return CG_OK;
        }
        prop *props = NULL;
        size_t n = 0, cap = 0;
        st = collect_props(g, s, path, &props, &n, &cap);
        if (!st) st = object_rule(g, props, n, sj_get(s, "additionalProperties"), path, body);
        free(props);
        return st;
    }
    return cg_err_set(g->err, CG_ERR_UNSUPPORTED, "json schema: unknown type '%s' at '%s'", type, path);
}

static cg_status visit(gen *g, const sj *s, const char *path, char *name) {
    cg_status st = CG_OK;
    if (s->kind == CG_JV_BOOL) {
        if (!s->u.b) return bad(g, CG_ERR_UNSUPPORTED, path, "schema 'false' admits no value");
        snprintf(name, 80, "%svalue", P);
        return CG_OK;
    }
    if (s->kind != CG_JV_DICT) return bad(g, CG_ERR_FORMAT, path, "a schema must be an object or a boolean");
    if (++g->depth > MAX_DEPTH) {
        g->depth--;
        return bad(g, CG_ERR_LIMIT, path, "schema nested too deeply");
    }
    for (size_t i = 0; i < sizeof UNSUPPORTED / sizeof *UNSUPPORTED; i++)
        if (sj_get(s, UNSUPPORTED[i])) {
            st = cg_err_set(g->err, CG_ERR_UNSUPPORTED, "json schema: keyword '%s' is not supported at '%s'",
                            UNSUPPORTED[i], *path ? path : "#");
            goto out;
        }
    const sj *ref = sj_get(s, "$ref");
    if (ref) {
        const sj *target;
        if ((st = resolve_ref(g, ref, path, &target))) goto out;
        for (size_t i = 0; i < g->n_refs; i++)
            if (g->refs[i].node == target) {
                snprintf(name, 80, "%s", g->refs[i].name);
                goto out;
            }
        if (g->n_refs == g->cap_refs) {
            g->cap_refs = g->cap_refs ? g->cap_refs * 2 : 16;
            ref_memo *r = realloc(g->refs, g->cap_refs * sizeof *r);
            if (!r) { st = cg_err_set(g->err, CG_ERR_NOMEM, "json schema: out of memory"); goto out; }
            g->refs = r;
        }
        // the name is reserved before the body so a recursive $ref finds it
        ref_memo *m = &g->refs[g->n_refs++];
        m->node = target;
        new_name(g, m->name);
        char tname[80], mname[80];
        snprintf(mname, sizeof mname, "%s", m->name);
        if ((st = visit(g, target, ref->u.s.p, tname))) goto out;
        cg_buf b;
        cg_buf_init(&b);
        cg_buf_puts(&b, tname);
        put_rule(g, mname, &b);
        cg_buf_free(&b);
        snprintf(name, 80, "%s", mname);
        goto out;
    }
    new_name(g, name);
    cg_buf body;
    cg_buf_init(&body);
    const sj *cnst = sj_get(s, "const"), *en = sj_get(s, "enum");
    const sj *any = sj_get(s, "anyOf"), *one = sj_get(s, "oneOf"), *all = sj_get(s, "allOf");
    const sj *type = sj_get(s, "type"), *nullable = sj_get(s, "nullable");
    bool is_nullable = nullable && is_bool(nullable, true);
    if (cnst) {
        if (!json_lit(&body, cnst)) { st = bad(g, CG_ERR_UNSUPPORTED, path, "const holds a number beyond a double"); goto done; }
        cg_buf_printf(&body, " %sspace", P);
    } else if (en) {
        if (en->kind != CG_JV_LIST || en->u.list.n == 0) { st = bad(g, CG_ERR_FORMAT, path, "enum is not a non-empty array"); goto done; }
        cg_buf_putc(&body, '(');
        for (size_t i = 0; i < en->u.list.n; i++) {
            if (i) cg_buf_puts(&body, " | ");
            if (!json_lit(&body, en->u.list.items[i])) { st = bad(g, CG_ERR_UNSUPPORTED, path, "enum holds a number beyond a double"); goto done; }
        }
        cg_buf_printf(&body, ") %sspace", P);
    } else if (any || one) {
        const sj *alts = any ? any : one;
        if (alts->kind != CG_JV_LIST || alts->u.list.n == 0) { st = bad(g, CG_ERR_FORMAT, path, "anyOf/oneOf is not a non-empty array"); goto done; }
        for (size_t i = 0; i < alts->u.list.n; i++) {
            char pp[512], nm[80], idx[40];
            snprintf(idx, sizeof idx, "%s/%zu", any ? "anyOf" : "oneOf", i);
            sub_path(pp, sizeof pp, path, idx);
            if ((st = visit(g, alts->u.list.items[i], pp, nm))) goto done;
            cg_buf_printf(&body, "%s%s", i ? " | " : "", nm);
        }
    } else if (all) {
        if (all->kind != CG_JV_LIST || all->u.list.n == 0) { st = bad(g, CG_ERR_FORMAT, path, "allOf is not a non-empty array"); goto done; }
        prop *props = NULL;
        size_t n = 0, cap = 0;
        const sj *additional = NULL;
        bool objects = true;
        for (size_t i = 0; i < all->u.list.n && !st; i++) {
            const sj *sub = all->u.list.items[i];
            const sj *sref = sj_get(sub, "$ref");
            if (sref && (st = resolve_ref(g, sref, path, &sub))) break;
            const sj *t = sj_get(sub, "type");
            if (sub->kind != CG_JV_DICT || (t && !same_str(t, "object", 6))) { objects = false; break; }
            st = collect_props(g, sub, path, &props, &n, &cap);
            const sj *ad = sj_get(sub, "additionalProperties");
            if (ad && (!additional || is_bool(ad, false))) additional = ad;
        }
        if (!st && !objects && all->u.list.n == 1) {
            char nm[80];
            st = visit(g, all->u.list.items[0], path, nm);
            if (!st) cg_buf_puts(&body, nm);
        } else if (!st && !objects) {
            st = bad(g, CG_ERR_UNSUPPORTED, path, "allOf is supported for object schemas only");
        } else if (!st) {
            st = collect_props(g, s, path, &props, &n, &cap);
            if (!st) st = object_rule(g, props, n, additional, path, &body);
        }
        free(props);
        if (st) goto done;
    } else if (type && type->kind == CG_JV_LIST) {
        for (size_t i = 0; i < type->u.list.n; i++) {
            if (!is_str(type->u.list.items[i])) { st = bad(g, CG_ERR_FORMAT, path, "type list holds a non-string"); goto done; }
            if (i) cg_buf_puts(&body, " | ");
            cg_buf_putc(&body, '(');
            if ((st = type_rule(g, s, type->u.list.items[i]->u.s.p, path, &body))) goto done;
            cg_buf_putc(&body, ')');
        }
    } else if (type) {
        if (!is_str(type)) { st = bad(g, CG_ERR_FORMAT, path, "type is not a string or a list"); goto done; }
        if ((st = type_rule(g, s, type->u.s.p, path, &body))) goto done;
    } else if (sj_get(s, "properties") || sj_get(s, "additionalProperties") || sj_get(s, "required")) {
        if ((st = type_rule(g, s, "object", path, &body))) goto done;
    } else if (sj_get(s, "items") || sj_get(s, "prefixItems")) {
        if ((st = type_rule(g, s, "array", path, &body))) goto done;
    } else {
        cg_buf_printf(&body, "%svalue", P);
    }
    if (is_nullable) cg_buf_printf(&body, " | %snull", P);
    put_rule(g, name, &body);
done:
    cg_buf_free(&body);
out:
    g->depth--;
    return st;
}

cg_status cg_schema_to_gbnf_rules(const char *json, size_t n, const char *prefix, cg_buf *out, cg_err *err) {
    cg_status st;
    gen g = {.prefix = prefix, .out = out, .err = err};
    cg_jval *root = NULL;
    if ((st = cg_jval_parse(json, n, 0, &root, err))) {
        cg_err_wrap(err, "json schema");
        goto done;
    }
    g.root = root;
    char name[80];
    if ((st = visit(&g, root, "", name))) goto done;
    cg_buf_printf(out, "%sroot ::= %s\n", prefix, name);
    primitives(&g);
    if (!cg_buf_ok(out)) st = cg_err_set(err, CG_ERR_NOMEM, "json schema: out of memory");
done:
    free(g.refs);
    cg_jval_unref(root);
    return st;
}

cg_status cg_schema_to_gbnf(const char *json, size_t n, cg_buf *out, cg_err *err) {
    return cg_schema_to_gbnf_rules(json, n, "", out, err);
}

void cg_schema_any_object_gbnf(cg_buf *out) {
    gen g = {.prefix = "", .out = out};
    cg_buf_puts(out, "root ::= object\n");
    primitives(&g);
}
