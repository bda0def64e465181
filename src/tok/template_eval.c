// template_eval.c — the interpreter: walks the parsed tree with a context and writes the text.
//
// Values are reference-counted cg_jval; every evaluation returns a new reference or NULL with
// r->st and the error set (one failure stops rendering). Scopes are frames of DICTs: the root
// frame holds top-level `set`s, each for-loop iteration, macro call and `with` gets its own frame
// (so a `set` inside a loop does not leak out — hence namespace()), `if` does not. Lookup walks
// the frames, then the context, then the globals; an unknown name is Undefined. Caps: every
// statement, loop iteration and call is a step (max_steps), macro calls and expression nesting
// count against max_depth, and output is bounded by max_output, so hostile templates end with
// CG_ERR_LIMIT instead of hanging or exhausting memory.
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"
#include "base/utf8.h"
#include "tok/template_int.h"

cg_jval *rt_fail(rt *r, cg_status st, const char *fmt, ...) {
    if (r->st) return NULL;  // keep the first error
    char msg[CG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->st = cg_err_set(r->err, st, "template: line %d: %s", r->line, msg);
    return NULL;
}

bool rt_step(rt *r) {
    if (++r->steps > r->max_steps) {
        rt_fail(r, CG_ERR_LIMIT, "more than %" PRIu64 " evaluation steps (loop or recursion too long)", r->max_steps);
        return false;
    }
    return true;
}

bool rt_emit(rt *r, const char *p, size_t n) {
    if (n > r->max_out || r->out->len > r->max_out - n) {
        rt_fail(r, CG_ERR_LIMIT, "output larger than %zu bytes", r->max_out);
        return false;
    }
    cg_buf_append(r->out, p, n);
    if (!cg_buf_ok(r->out)) {
        rt_fail(r, CG_ERR_NOMEM, "out of memory");
        return false;
    }
    return true;
}

static cg_jval *oom(rt *r) { return rt_fail(r, CG_ERR_NOMEM, "out of memory"); }

size_t rt_cp_len(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

cg_jval *rt_str_of(rt *r, const cg_jval *v) {
    if (v->kind == CG_JV_STR) return cg_jval_ref((cg_jval *)v);
    cg_buf b;
    cg_buf_init(&b);
    cg_jval_py_str(v, &b);
    if (!cg_buf_ok(&b)) { cg_buf_free(&b); return oom(r); }
    cg_jval *s = b.data ? cg_jval_str_take(b.data, b.len) : cg_jval_str("", 0);
    return s ? s : oom(r);
}

static cg_jval *undef_err(rt *r, const cg_jval *u) {
    if (u->u.s.p) return rt_fail(r, CG_ERR_FORMAT, "%s", u->u.s.p);
    return rt_fail(r, CG_ERR_FORMAT, "value is undefined");
}

static cg_jval *mk_undef(rt *r, const char *fmt, ...) CG_PRINTF(2, 3);
static cg_jval *mk_undef(rt *r, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof msg) n = sizeof msg - 1;
    cg_jval *u = cg_jval_undef(msg, (size_t)n);
    return u ? u : oom(r);
}

static const char *obj_name(const cg_jval *v) {
    switch (v->kind) {
    case CG_JV_DICT: return "dict object";
    case CG_JV_LIST: return "list object";
    case CG_JV_STR: return "str object";
    case CG_JV_INT: return "int object";
    case CG_JV_FLOAT: return "float object";
    case CG_JV_BOOL: return "bool object";
    case CG_JV_NULL: return "None";
    case CG_JV_NS: return "Namespace object";
    default: return "object";
    }
}

// Byte offset of code point index `ci` in s (ci ≤ code point count).
static size_t cp_off(const char *s, size_t n, size_t ci) {
    size_t i = 0;
    while (i < n && ci > 0) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
        ci--;
    }
    return i;
}

cg_jval *rt_getattr(rt *r, cg_jval *obj, const char *name, size_t nn) {
    if (obj->kind == CG_JV_UNDEF) return undef_err(r, obj);
    if (obj->kind == CG_JV_NS) {
        cg_jval *v = cg_jval_dict_getn(obj, name, nn);
        if (v) return cg_jval_ref(v);
        return mk_undef(r, "'Namespace object' has no attribute '%.*s'", (int)nn, name);
    }
    cg_jval *m = lib_method(r, obj, name, nn);
    if (m || r->st) return m;
    if (obj->kind == CG_JV_DICT) {
        cg_jval *v = cg_jval_dict_getn(obj, name, nn);
        if (v) return cg_jval_ref(v);
    }
    return mk_undef(r, "'%s' has no attribute '%.*s'", obj_name(obj), (int)nn, name);
}

cg_jval *rt_getitem(rt *r, cg_jval *obj, cg_jval *key) {
    if (obj->kind == CG_JV_UNDEF) return undef_err(r, obj);
    if (obj->kind == CG_JV_DICT || obj->kind == CG_JV_NS) {
        cg_jval *v = cg_jval_dict_get(obj, key);
        if (v) return cg_jval_ref(v);
    } else if ((obj->kind == CG_JV_LIST || obj->kind == CG_JV_STR) && (key->kind == CG_JV_INT || key->kind == CG_JV_BOOL)) {
        int64_t i = key->kind == CG_JV_INT ? key->u.i : key->u.b;
        size_t n = obj->kind == CG_JV_LIST ? obj->u.list.n : rt_cp_len(obj->u.s.p, obj->u.s.n);
        if (i < 0) i += (int64_t)n;
        if (i >= 0 && (uint64_t)i < n) {
            if (obj->kind == CG_JV_LIST) return cg_jval_ref(obj->u.list.items[i]);
            size_t a = cp_off(obj->u.s.p, obj->u.s.n, (size_t)i);
            size_t b = cp_off(obj->u.s.p + a, obj->u.s.n - a, 1);
            cg_jval *s = cg_jval_str(obj->u.s.p + a, b);
            return s ? s : oom(r);
        }
        return mk_undef(r, "'%s' has no element %" PRId64, obj_name(obj), key->kind == CG_JV_INT ? key->u.i : key->u.b);
    }
    if (key->kind == CG_JV_STR && obj->kind != CG_JV_NS) {
        cg_jval *m = lib_method(r, obj, key->u.s.p, key->u.s.n);
        if (m || r->st) return m;
        return mk_undef(r, "'%s' has no attribute '%.*s'", obj_name(obj), (int)key->u.s.n, key->u.s.p);
    }
    cg_buf b;
    cg_buf_init(&b);
    cg_jval_py_repr(key, &b);
    cg_jval *u = mk_undef(r, "'%s' has no element %s", obj_name(obj), b.data ? b.data : "");
    cg_buf_free(&b);
    return u;
}

cg_jval *rt_to_list(rt *r, cg_jval *v) {
    cg_jval *l;
    switch (v->kind) {
    case CG_JV_LIST: return cg_jval_ref(v);
    case CG_JV_UNDEF: l = cg_jval_list(); return l ? l : oom(r);
    case CG_JV_DICT: case CG_JV_NS:
        if (!(l = cg_jval_list())) return oom(r);
        for (size_t i = 0; i < v->u.dict.n; i++)
            if (!cg_jval_list_push(l, cg_jval_ref(v->u.dict.keys[i]))) { cg_jval_unref(l); return oom(r); }
        return l;
    case CG_JV_STR:
        if (!(l = cg_jval_list())) return oom(r);
        for (size_t i = 0; i < v->u.s.n;) {
            int k = cg_utf8_seq_len((unsigned char)v->u.s.p[i]);
            if (k <= 0 || (size_t)k > v->u.s.n - i) k = 1;
            if (!cg_jval_list_push(l, cg_jval_str(v->u.s.p + i, (size_t)k))) { cg_jval_unref(l); return oom(r); }
            i += (size_t)k;
        }
        return l;
    default:
        return rt_fail(r, CG_ERR_FORMAT, "'%s' object is not iterable", cg_jval_type_name(v));
    }
}

int rt_compare(rt *r, const cg_jval *a, const cg_jval *b, int *cmp) {
    bool an = a->kind == CG_JV_INT || a->kind == CG_JV_FLOAT || a->kind == CG_JV_BOOL;
    bool bn = b->kind == CG_JV_INT || b->kind == CG_JV_FLOAT || b->kind == CG_JV_BOOL;
    if (an && bn) {
        if (a->kind != CG_JV_FLOAT && b->kind != CG_JV_FLOAT) {
            int64_t x = a->kind == CG_JV_INT ? a->u.i : a->u.b, y = b->kind == CG_JV_INT ? b->u.i : b->u.b;
            *cmp = x < y ? -1 : x > y;
        } else {
            double x = a->kind == CG_JV_FLOAT ? a->u.f : a->kind == CG_JV_INT ? (double)a->u.i : a->u.b;
            double y = b->kind == CG_JV_FLOAT ? b->u.f : b->kind == CG_JV_INT ? (double)b->u.i : b->u.b;
            *cmp = x < y ? -1 : x > y;
        }
        return 0;
    }
    if (a->kind == CG_JV_STR && b->kind == CG_JV_STR) {
        size_t m = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
        int c = memcmp(a->u.s.p, b->u.s.p, m);
        *cmp = c < 0 ? -1 : c > 0 ? 1 : (a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n);
        return 0;
    }
    if (a->kind == CG_JV_LIST && b->kind == CG_JV_LIST && a->tuple == b->tuple) {
        size_t m = a->u.list.n < b->u.list.n ? a->u.list.n : b->u.list.n;
        for (size_t i = 0; i < m; i++) {
            if (cg_jval_equal(a->u.list.items[i], b->u.list.items[i])) continue;
            return rt_compare(r, a->u.list.items[i], b->u.list.items[i], cmp);
        }
        *cmp = a->u.list.n < b->u.list.n ? -1 : a->u.list.n > b->u.list.n;
        return 0;
    }
    if (a->kind == CG_JV_UNDEF) { undef_err(r, a); return -1; }
    if (b->kind == CG_JV_UNDEF) { undef_err(r, b); return -1; }
    rt_fail(r, CG_ERR_FORMAT, "comparison not supported between instances of '%s' and '%s'", cg_jval_type_name(a),
            cg_jval_type_name(b));
    return -1;
}

const cg_jval *cargs_get(const cargs *a, size_t i, const char *kw) {
    if (i < a->n) return a->pos[i];
    if (kw)
        for (size_t k = 0; k < a->nk; k++)
            if (a->kn[k]->sn == strlen(kw) && memcmp(a->kn[k]->s, kw, a->kn[k]->sn) == 0) return a->kv[k];
    return NULL;
}

bool rt_holds_ns(const cg_jval *v) {
    if (v->kind == CG_JV_NS) return true;
    if (v->kind == CG_JV_LIST)
        for (size_t i = 0; i < v->u.list.n; i++)
            if (rt_holds_ns(v->u.list.items[i])) return true;
    if (v->kind == CG_JV_DICT)
        for (size_t i = 0; i < v->u.dict.n; i++)
            if (rt_holds_ns(v->u.dict.vals[i]) || rt_holds_ns(v->u.dict.keys[i])) return true;
    return false;
}

bool rt_push_fail(rt *r, const cg_jval *v) {
    if (v && v->depth + 1 >= CG_JVAL_MAX_DEPTH)
        rt_fail(r, CG_ERR_LIMIT, "values nested deeper than %d", CG_JVAL_MAX_DEPTH);
    else
        oom(r);
    return false;
}

// ---- scopes -----------------------------------------------------------------------------------

static cg_jval *lookup(rt *r, const char *name, size_t nn) {
    for (frame *f = r->scope; f; f = f->parent) {
        cg_jval *v = cg_jval_dict_getn(f->vars, name, nn);
        if (v) return cg_jval_ref(v);
    }
    if (r->ctx) {
        cg_jval *v = cg_jval_dict_getn(r->ctx, name, nn);
        if (v) return cg_jval_ref(v);
    }
    cg_jval *g = lib_global(r, name, nn);
    if (g || r->st) return g;
    return mk_undef(r, "'%.*s' is undefined", (int)nn, name);
}

static bool set_var(rt *r, const char *name, size_t nn, cg_jval *v) {
    cg_jval *k = cg_jval_str(name, nn);
    uint16_t dep = v ? v->depth : 0;
    if (!cg_jval_dict_set(r->scope->vars, k, v)) {
        if (dep + 1 >= CG_JVAL_MAX_DEPTH) rt_fail(r, CG_ERR_LIMIT, "values nested deeper than %d", CG_JVAL_MAX_DEPTH);
        else oom(r);
        return false;
    }
    return true;
}

// ---- operators --------------------------------------------------------------------------------

static bool is_intlike(const cg_jval *v) { return v->kind == CG_JV_INT || v->kind == CG_JV_BOOL; }
static bool is_numv(const cg_jval *v) { return is_intlike(v) || v->kind == CG_JV_FLOAT; }
static int64_t ival(const cg_jval *v) { return v->kind == CG_JV_INT ? v->u.i : v->u.b; }
static double fval(const cg_jval *v) { return v->kind == CG_JV_FLOAT ? v->u.f : (double)ival(v); }

static const char *op_sym(int op) {
    static const char *s[] = {"", "+", "-", "*", "/", "//", "%", "**"};
    return op >= OP_ADD && op <= OP_POW ? s[op] : "?";
}

static cg_jval *repeat(rt *r, const cg_jval *seq, int64_t times) {
    if (times < 0) times = 0;
    size_t unit = seq->kind == CG_JV_STR ? seq->u.s.n : seq->u.list.n, total;
    if (!cg_mul_size(unit, (size_t)times, &total) || total > (seq->kind == CG_JV_STR ? r->max_out : r->max_out / 8))
        return rt_fail(r, CG_ERR_LIMIT, "repetition result larger than %zu", r->max_out);
    if (seq->kind == CG_JV_STR) {
        char *p = malloc(total + 1);
        if (!p) return oom(r);
        for (int64_t t = 0; t < times; t++) memcpy(p + (size_t)t * unit, seq->u.s.p, unit);
        p[total] = 0;
        cg_jval *s = cg_jval_str_take(p, total);
        return s ? s : oom(r);
    }
    cg_jval *l = cg_jval_list();
    if (!l) return oom(r);
    for (int64_t t = 0; t < times; t++)
        for (size_t i = 0; i < unit; i++)
            if (!cg_jval_list_push(l, cg_jval_ref(seq->u.list.items[i]))) { cg_jval_unref(l); return oom(r); }
    return l;
}

// Python printf-style `fmt % args`: flags (-, 0, +, space), width and precision; s r d i f e g x o c %.
cg_jval *rt_percent(rt *r, const cg_jval *fmt, const cg_jval *args) {
    cg_buf b;
    cg_buf_init(&b);
    size_t ai = 0;
    const char *s = fmt->u.s.p;
    size_t n = fmt->u.s.n;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') { cg_buf_putc(&b, s[i]); continue; }
        if (++i >= n) goto incomplete;
        if (s[i] == '%') { cg_buf_putc(&b, '%'); continue; }
        char flags[8];
        int nf = 0, width = 0, prec = -1;
        while (i < n && strchr("-0+ #", s[i]) && nf < 6) flags[nf++] = s[i++];
        flags[nf] = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && width < 10000) width = width * 10 + (s[i++] - '0');
        if (i < n && s[i] == '.') {
            prec = 0;
            i++;
            while (i < n && s[i] >= '0' && s[i] <= '9' && prec < 1000) prec = prec * 10 + (s[i++] - '0');
        }
        if (i >= n) goto incomplete;
        char conv = s[i];
        const cg_jval *a;
        if (args->kind == CG_JV_LIST && args->tuple) {
            if (ai >= args->u.list.n) { cg_buf_free(&b); return rt_fail(r, CG_ERR_FORMAT, "not enough arguments for format string"); }
            a = args->u.list.items[ai++];
        } else {
            if (ai++) { cg_buf_free(&b); return rt_fail(r, CG_ERR_FORMAT, "not enough arguments for format string"); }
            a = args;
        }
        char spec[32], tmp[512];
        if (conv == 's' || conv == 'r') {
            cg_buf v;
            cg_buf_init(&v);
            if (conv == 's') cg_jval_py_str(a, &v);
            else cg_jval_py_repr(a, &v);
            size_t len = v.len;
            if (prec >= 0) {  // precision truncates to that many code points
                size_t k = 0, cps = 0;
                while (k < len && cps < (size_t)prec) { k++; while (k < len && ((unsigned char)v.data[k] & 0xC0) == 0x80) k++; cps++; }
                len = k;
            }
            size_t cps = rt_cp_len(v.data ? v.data : "", len);
            bool left = strchr(flags, '-') != NULL;
            if (!left) for (size_t k = cps; k < (size_t)width; k++) cg_buf_putc(&b, ' ');
            cg_buf_append(&b, v.data, len);
            if (left) for (size_t k = cps; k < (size_t)width; k++) cg_buf_putc(&b, ' ');
            cg_buf_free(&v);
            continue;
        }
        if (!is_numv(a)) {
            cg_buf_free(&b);
            return rt_fail(r, CG_ERR_FORMAT, "%%%c format: a real number is required, not %s", conv, cg_jval_type_name(a));
        }
        if (width > 400) width = 400;
        if (prec > 100) prec = 100;
        switch (conv) {
        case 'd': case 'i': case 'x': case 'X': case 'o': case 'c': {
            int64_t x = a->kind == CG_JV_FLOAT ? (int64_t)a->u.f : ival(a);
            if (conv == 'c') {
                char enc[4];
                int m = cg_utf8_encode((uint32_t)x, enc);
                if (m > 0) cg_buf_append(&b, enc, (size_t)m);
                continue;
            }
            snprintf(spec, sizeof spec, "%%%s%dll%c", flags, width, conv == 'i' ? 'd' : conv);
            snprintf(tmp, sizeof tmp, spec, (long long)x);
            break;
        }
        case 'f': case 'F': case 'e': case 'E': case 'g': case 'G':
            snprintf(spec, sizeof spec, "%%%s%d.%d%c", flags, width, prec < 0 ? 6 : prec, conv);
            snprintf(tmp, sizeof tmp, spec, fval(a));
            break;
        default:
            cg_buf_free(&b);
            return rt_fail(r, CG_ERR_UNSUPPORTED, "unsupported format character '%c'", conv);
        }
        cg_buf_puts(&b, tmp);
    }
    if (args->kind == CG_JV_LIST && args->tuple ? ai < args->u.list.n : ai == 0) {
        cg_buf_free(&b);
        return rt_fail(r, CG_ERR_FORMAT, "not all arguments converted during string formatting");
    }
    if (!cg_buf_ok(&b)) { cg_buf_free(&b); return oom(r); }
    cg_jval *v = b.data ? cg_jval_str_take(b.data, b.len) : cg_jval_str("", 0);
    return v ? v : oom(r);
incomplete:
    cg_buf_free(&b);
    return rt_fail(r, CG_ERR_FORMAT, "incomplete format");
}

static cg_jval *binop(rt *r, int op, cg_jval *a, cg_jval *b) {
    if (a->kind == CG_JV_UNDEF) return undef_err(r, a);
    if (b->kind == CG_JV_UNDEF) return undef_err(r, b);
    cg_jval *res = NULL;
    if (is_numv(a) && is_numv(b)) {
        if (is_intlike(a) && is_intlike(b) && op != OP_DIV) {
            int64_t x = ival(a), y = ival(b), z = 0;
            bool ok = true;
            switch (op) {
            case OP_ADD: ok = !__builtin_add_overflow(x, y, &z); break;
            case OP_SUB: ok = !__builtin_sub_overflow(x, y, &z); break;
            case OP_MUL: ok = !__builtin_mul_overflow(x, y, &z); break;
            case OP_FLOORDIV: case OP_MOD:
                if (y == 0) return rt_fail(r, CG_ERR_FORMAT, "integer division or modulo by zero");
                if (x == INT64_MIN && y == -1) { ok = false; break; }
                z = op == OP_FLOORDIV ? x / y : x % y;
                if (op == OP_FLOORDIV && (x % y != 0) && ((x < 0) != (y < 0))) z--;
                if (op == OP_MOD && z != 0 && ((z < 0) != (y < 0))) z += y;
                break;
            case OP_POW:
                if (y < 0) { res = cg_jval_float(pow((double)x, (double)y)); return res ? res : oom(r); }
                z = 1;
                for (int64_t k = 0; k < y && ok; k++) {
                    ok = !__builtin_mul_overflow(z, x, &z);
                    if (x == 0 || x == 1) break;
                    if (x == -1) { z = (y % 2) ? -1 : 1; break; }
                }
                if (x == 0 && y > 0) z = 0;
                break;
            }
            if (!ok) return rt_fail(r, CG_ERR_UNSUPPORTED, "integer overflow in '%s'", op_sym(op));
            res = cg_jval_int(z);
            return res ? res : oom(r);
        }
        double x = fval(a), y = fval(b), z = 0;
        switch (op) {
        case OP_ADD: z = x + y; break;
        case OP_SUB: z = x - y; break;
        case OP_MUL: z = x * y; break;
        case OP_DIV:
            if (y == 0) return rt_fail(r, CG_ERR_FORMAT, "division by zero");
            z = x / y;
            break;
        case OP_FLOORDIV:
            if (y == 0) return rt_fail(r, CG_ERR_FORMAT, "float floor division by zero");
            z = floor(x / y);
            break;
        case OP_MOD:
            if (y == 0) return rt_fail(r, CG_ERR_FORMAT, "float modulo");
            z = fmod(x, y);
            if (z != 0 && ((z < 0) != (y < 0))) z += y;
            break;
        case OP_POW: z = pow(x, y); break;
        }
        res = cg_jval_float(z);
        return res ? res : oom(r);
    }
    if (op == OP_ADD && a->kind == CG_JV_STR && b->kind == CG_JV_STR && a->safe != b->safe) {
        // jinja2 Markup: `markup + str` escapes the plain operand and stays Markup
        cargs none = {0};
        cg_jval *ea = a->safe ? cg_jval_ref(a) : lib_filter(r, "escape", 6, a, &none);
        cg_jval *eb = ea ? (b->safe ? cg_jval_ref(b) : lib_filter(r, "escape", 6, b, &none)) : NULL;
        if (ea && eb) res = binop(r, op, ea, eb);  // both are Markup now (escape results are safe)
        cg_jval_unref(ea);
        cg_jval_unref(eb);
        return res;
    }
    if (op == OP_ADD && a->kind == CG_JV_STR && b->kind == CG_JV_STR) {
        size_t n;
        if (!cg_add_size(a->u.s.n, b->u.s.n, &n) || n > r->max_out) return rt_fail(r, CG_ERR_LIMIT, "string too long");
        char *p = malloc(n + 1);
        if (!p) return oom(r);
        memcpy(p, a->u.s.p, a->u.s.n);
        memcpy(p + a->u.s.n, b->u.s.p, b->u.s.n);
        p[n] = 0;
        res = cg_jval_str_take(p, n);
        if (res) res->safe = a->safe;
        return res ? res : oom(r);
    }
    if (op == OP_ADD && a->kind == CG_JV_LIST && b->kind == CG_JV_LIST) {
        if (a->tuple != b->tuple)
            return rt_fail(r, CG_ERR_FORMAT, "can only concatenate %s (not \"%s\") to %s", a->tuple ? "tuple" : "list",
                           b->tuple ? "tuple" : "list", a->tuple ? "tuple" : "list");
        if (a->u.list.n + b->u.list.n > r->max_out / 8)
            return rt_fail(r, CG_ERR_LIMIT, "list of more than %zu items", r->max_out / 8);
        if (!(res = cg_jval_list())) return oom(r);
        res->tuple = a->tuple;
        for (size_t i = 0; i < a->u.list.n; i++)
            if (!cg_jval_list_push(res, cg_jval_ref(a->u.list.items[i]))) { cg_jval_unref(res); return oom(r); }
        for (size_t i = 0; i < b->u.list.n; i++)
            if (!cg_jval_list_push(res, cg_jval_ref(b->u.list.items[i]))) { cg_jval_unref(res); return oom(r); }
        return res;
    }
    if (op == OP_MUL && (a->kind == CG_JV_STR || a->kind == CG_JV_LIST) && is_intlike(b)) return repeat(r, a, ival(b));
    if (op == OP_MUL && (b->kind == CG_JV_STR || b->kind == CG_JV_LIST) && is_intlike(a)) return repeat(r, b, ival(a));
    if (op == OP_MOD && a->kind == CG_JV_STR) return rt_percent(r, a, b);
    return rt_fail(r, CG_ERR_FORMAT, "unsupported operand type(s) for %s: '%s' and '%s'", op_sym(op),
                   cg_jval_type_name(a), cg_jval_type_name(b));
}

static int contains(rt *r, cg_jval *hay, cg_jval *needle) {
    switch (hay->kind) {
    case CG_JV_STR:
        if (needle->kind != CG_JV_STR) {
            rt_fail(r, CG_ERR_FORMAT, "'in <string>' requires string as left operand, not %s", cg_jval_type_name(needle));
            return -1;
        }
        if (needle->u.s.n == 0) return 1;
        if (needle->u.s.n > hay->u.s.n) return 0;
        for (size_t i = 0; i + needle->u.s.n <= hay->u.s.n; i++)
            if (memcmp(hay->u.s.p + i, needle->u.s.p, needle->u.s.n) == 0) return 1;
        return 0;
    case CG_JV_LIST:
        for (size_t i = 0; i < hay->u.list.n; i++)
            if (cg_jval_equal(hay->u.list.items[i], needle)) return 1;
        return 0;
    case CG_JV_DICT: case CG_JV_NS: return cg_jval_dict_get(hay, needle) != NULL;
    case CG_JV_UNDEF: return 0;
    default:
        rt_fail(r, CG_ERR_FORMAT, "argument of type '%s' is not iterable", cg_jval_type_name(hay));
        return -1;
    }
}

static cg_jval *slice(rt *r, cg_jval *obj, cg_jval *vs, cg_jval *ve, cg_jval *vst) {
    if (obj->kind == CG_JV_UNDEF) return undef_err(r, obj);
    if (obj->kind != CG_JV_LIST && obj->kind != CG_JV_STR)
        return rt_fail(r, CG_ERR_FORMAT, "'%s' object is not subscriptable", cg_jval_type_name(obj));
    cg_jval *bounds[3] = {vs, ve, vst};
    for (int k = 0; k < 3; k++)
        if (bounds[k] && bounds[k]->kind != CG_JV_NULL && !is_intlike(bounds[k]))
            return rt_fail(r, CG_ERR_FORMAT, "slice indices must be integers or None");
    int64_t n = obj->kind == CG_JV_LIST ? (int64_t)obj->u.list.n : (int64_t)rt_cp_len(obj->u.s.p, obj->u.s.n);
    int64_t step = (vst && vst->kind != CG_JV_NULL) ? ival(vst) : 1;
    if (step == 0) return rt_fail(r, CG_ERR_FORMAT, "slice step cannot be zero");
    int64_t lo, hi;
    if (step > 0) {
        lo = (vs && vs->kind != CG_JV_NULL) ? ival(vs) : 0;
        hi = (ve && ve->kind != CG_JV_NULL) ? ival(ve) : n;
        if (lo < 0) lo += n;
        if (lo < 0) lo = 0;
        if (lo > n) lo = n;
        if (hi < 0) hi += n;
        if (hi < 0) hi = 0;
        if (hi > n) hi = n;
    } else {
        lo = (vs && vs->kind != CG_JV_NULL) ? ival(vs) : n - 1;
        hi = (ve && ve->kind != CG_JV_NULL) ? ival(ve) : -n - 1;
        if (lo < 0) lo += n;
        if (lo < -1) lo = -1;
        if (lo >= n) lo = n - 1;
        if (hi < 0) hi += n;
        if (hi < -1) hi = -1;
        if (hi >= n) hi = n - 1;
    }
    // Collect indices; for strings map code point index → byte offsets once.
    size_t *offs = NULL;
    if (obj->kind == CG_JV_STR) {
        offs = malloc(((size_t)n + 1) * sizeof *offs);
        if (!offs) return oom(r);
        size_t ci = 0;
        for (size_t i = 0; i < obj->u.s.n; i++)
            if (((unsigned char)obj->u.s.p[i] & 0xC0) != 0x80) offs[ci++] = i;
        offs[ci] = obj->u.s.n;
    }
    cg_jval *res = obj->kind == CG_JV_LIST ? cg_jval_list() : NULL;
    if (res) res->tuple = obj->tuple;
    cg_buf b;
    cg_buf_init(&b);
    if (obj->kind == CG_JV_LIST && !res) { free(offs); return oom(r); }
    for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) {
        if (obj->kind == CG_JV_LIST) {
            if (!cg_jval_list_push(res, cg_jval_ref(obj->u.list.items[i]))) { cg_jval_unref(res); free(offs); return oom(r); }
        } else {
            cg_buf_append(&b, obj->u.s.p + offs[i], offs[i + 1] - offs[i]);
        }
    }
    free(offs);
    if (obj->kind == CG_JV_STR) {
        if (!cg_buf_ok(&b)) { cg_buf_free(&b); return oom(r); }
        res = b.data ? cg_jval_str_take(b.data, b.len) : cg_jval_str("", 0);
        if (!res) return oom(r);
    }
    return res;
}

// ---- expressions ------------------------------------------------------------------------------

static cg_jval *ev(rt *r, const node *n);
static cg_status ex_body(rt *r, const nvec *body);

static void cargs_free(cargs *a) {
    for (size_t i = 0; i < a->n; i++) cg_jval_unref(a->pos[i]);
    for (size_t i = 0; i < a->nk; i++) cg_jval_unref(a->kv[i]);
    free(a->pos);
    free(a->kv);
    free(a->kn);
}

static bool eval_args(rt *r, const node *n, cargs *a, size_t extra_kw) {
    memset(a, 0, sizeof *a);
    a->pos = calloc(n->args.n + 1, sizeof *a->pos);
    a->kv = calloc(n->kwn.n + extra_kw + 1, sizeof *a->kv);
    a->kn = calloc(n->kwn.n + extra_kw + 1, sizeof *a->kn);
    if (!a->pos || !a->kv || !a->kn) { oom(r); return false; }
    for (size_t i = 0; i < n->args.n; i++) {
        if (!(a->pos[i] = ev(r, n->args.v[i]))) return false;
        a->n++;
    }
    for (size_t i = 0; i < n->kwn.n; i++) {
        if (!(a->kv[i] = ev(r, n->kwv.v[i]))) return false;
        a->kn[i] = n->kwn.v[i];
        a->nk++;
    }
    return true;
}

// A callable made from a macro definition or a call block's body.
typedef struct caller_fn {
    const node *def;  // N_MACRO or N_CALLBLOCK
    frame *scope;     // call block: the frame it was written in (valid while alive)
    bool alive;
} caller_fn;

static cg_jval *call_macro(rt *r, const node *def, frame *closure, const cargs *a, cg_jval *caller) {
    if (++r->depth > r->max_depth) {
        r->depth--;
        return rt_fail(r, CG_ERR_LIMIT, "macro calls nested deeper than %d", r->max_depth);
    }
    if (!rt_step(r)) { r->depth--; return NULL; }
    cg_jval *res = NULL;
    frame f = {.vars = cg_jval_dict(), .parent = closure};
    cg_jval *varargs = cg_jval_list(), *kwargs = cg_jval_dict();
    cg_buf body;
    cg_buf_init(&body);
    cg_buf *saved_out = r->out;
    frame *saved_scope = r->scope;
    int saved_line = r->line;
    if (!f.vars || !varargs || !kwargs) { oom(r); goto done; }
    r->scope = &f;
    for (size_t i = 0; i < def->args.n; i++) {
        const node *p = def->args.v[i];
        cg_jval *v = NULL;
        if (i < a->n) v = cg_jval_ref(a->pos[i]);
        for (size_t k = 0; !v && k < a->nk; k++)
            if (a->kn[k]->sn == p->sn && memcmp(a->kn[k]->s, p->s, p->sn) == 0) v = cg_jval_ref(a->kv[k]);
        if (!v && def->kwv.v[i]) {
            if (!(v = ev(r, def->kwv.v[i]))) goto done;
        }
        if (!v && !(v = mk_undef(r, "'%.*s' is undefined", (int)p->sn, p->s))) goto done;
        if (!set_var(r, p->s, p->sn, v)) goto done;
    }
    for (size_t i = def->args.n; i < a->n; i++)
        if (!cg_jval_list_push(varargs, cg_jval_ref(a->pos[i]))) { oom(r); goto done; }
    for (size_t k = 0; k < a->nk; k++) {
        bool known = false;
        for (size_t i = 0; i < def->args.n; i++)
            if (a->kn[k]->sn == def->args.v[i]->sn && memcmp(a->kn[k]->s, def->args.v[i]->s, a->kn[k]->sn) == 0) known = true;
        if (!known && !cg_jval_dict_set(kwargs, cg_jval_str(a->kn[k]->s, a->kn[k]->sn), cg_jval_ref(a->kv[k]))) {
            oom(r);
            goto done;
        }
    }
    varargs->tuple = 1;
    if (!set_var(r, "varargs", 7, cg_jval_ref(varargs)) || !set_var(r, "kwargs", 6, cg_jval_ref(kwargs))) goto done;
    if (caller && !set_var(r, "caller", 6, cg_jval_ref(caller))) goto done;
    r->out = &body;
    if (ex_body(r, &def->body)) goto done;
    r->ctl = 0;
    res = body.data ? cg_jval_str_take(body.data, body.len) : cg_jval_str("", 0);
    body.data = NULL;
    if (!res) oom(r);
done:
    r->out = saved_out;
    r->scope = saved_scope;
    r->line = saved_line;
    r->depth--;
    cg_buf_free(&body);
    cg_jval_unref(f.vars);
    cg_jval_unref(varargs);
    cg_jval_unref(kwargs);
    return res;
}

cg_jval *rt_call(rt *r, cg_jval *fn, const cargs *a) {
    if (fn->kind == CG_JV_UNDEF) return undef_err(r, fn);
    if (fn->kind != CG_JV_FUNC) return rt_fail(r, CG_ERR_FORMAT, "'%s' object is not callable", cg_jval_type_name(fn));
    switch (fn->u.fn.tag) {
    case FN_BUILTIN: return lib_call_global(r, fn, a);
    case FN_METHOD: return lib_call_method(r, fn, a);
    case FN_MACRO: {
        caller_fn *c = fn->u.fn.data;
        cg_jval *caller = NULL;
        for (size_t k = 0; k < a->nk; k++)
            if (a->kn[k]->sn == 6 && memcmp(a->kn[k]->s, "caller", 6) == 0) caller = a->kv[k];
        return call_macro(r, c->def, r->root, a, caller);
    }
    case FN_CALLER: {
        caller_fn *c = fn->u.fn.data;
        if (!c->alive) return rt_fail(r, CG_ERR_STATE, "caller() used after its call block ended");
        return call_macro(r, c->def, c->scope, a, NULL);
    }
    }
    return rt_fail(r, CG_ERR_INTERNAL, "unknown callable");
}

static cg_jval *apply_filters(rt *r, const node *chain, cg_jval *in) {
    if (chain->kind == N_INPUT) return cg_jval_ref(in);
    cg_jval *v = apply_filters(r, chain->a, in);
    if (!v) return NULL;
    cargs a;
    cg_jval *res = NULL;
    r->line = chain->line;
    if (eval_args(r, chain, &a, 0)) res = lib_filter(r, chain->s, chain->sn, v, &a);
    cargs_free(&a);
    cg_jval_unref(v);
    return res;
}

static cg_jval *ev_inner(rt *r, const node *n) {
    cg_jval *a = NULL, *b = NULL, *c = NULL, *res = NULL;
    cargs ca;
    switch ((nkind)n->kind) {
    case N_LIT: return cg_jval_ref(n->lit);
    case N_NAME: return lookup(r, n->s, n->sn);
    case N_ATTR:
        if (!(a = ev(r, n->a))) return NULL;
        res = rt_getattr(r, a, n->s, n->sn);
        break;
    case N_ITEM:
        if (!(a = ev(r, n->a)) || !(b = ev(r, n->b))) break;
        res = rt_getitem(r, a, b);
        break;
    case N_SLICE:
        if (!(a = ev(r, n->a))) break;
        if (n->b && !(b = ev(r, n->b))) break;
        if (n->c && !(c = ev(r, n->c))) break;
        {
            cg_jval *d = NULL;
            if (n->d && !(d = ev(r, n->d))) break;
            res = slice(r, a, b, c, d);
            cg_jval_unref(d);
        }
        break;
    case N_CALL:
        if (!(a = ev(r, n->a))) break;
        if (eval_args(r, n, &ca, 0)) {
            r->line = n->line;
            res = rt_call(r, a, &ca);
        }
        cargs_free(&ca);
        break;
    case N_FILTER:
        if (!(a = ev(r, n->a))) break;
        if (eval_args(r, n, &ca, 0)) {
            r->line = n->line;
            res = lib_filter(r, n->s, n->sn, a, &ca);
        }
        cargs_free(&ca);
        break;
    case N_TEST:
        if (!(a = ev(r, n->a))) break;
        if (eval_args(r, n, &ca, 0)) {
            r->line = n->line;
            int t = lib_test(r, n->s, n->sn, a, &ca);
            if (t >= 0) res = cg_jval_bool(n->neg ? !t : t);
            if (t >= 0 && !res) oom(r);
        }
        cargs_free(&ca);
        break;
    case N_BIN:
        if (!(a = ev(r, n->a)) || !(b = ev(r, n->b))) break;
        r->line = n->line;
        res = binop(r, n->op, a, b);
        break;
    case N_CONCAT: {
        if (!(a = ev(r, n->a)) || !(b = ev(r, n->b))) break;
        cg_buf s;
        cg_buf_init(&s);
        cg_jval_py_str(a, &s);
        cg_jval_py_str(b, &s);
        if (!cg_buf_ok(&s) || s.len > r->max_out) {
            cg_buf_free(&s);
            rt_fail(r, cg_buf_ok(&s) ? CG_ERR_LIMIT : CG_ERR_NOMEM, "string concatenation too large");
            break;
        }
        res = s.data ? cg_jval_str_take(s.data, s.len) : cg_jval_str("", 0);
        if (!res) oom(r);
        break;
    }
    case N_NEG: case N_POS:
        if (!(a = ev(r, n->a))) break;
        if (a->kind == CG_JV_UNDEF) { undef_err(r, a); break; }
        if (!is_numv(a)) { rt_fail(r, CG_ERR_FORMAT, "bad operand type for unary %s: '%s'", n->kind == N_NEG ? "-" : "+", cg_jval_type_name(a)); break; }
        if (n->kind == N_POS) res = a->kind == CG_JV_BOOL ? cg_jval_int(a->u.b) : cg_jval_ref(a);
        else if (a->kind == CG_JV_FLOAT) res = cg_jval_float(-a->u.f);
        else if (ival(a) == INT64_MIN) { rt_fail(r, CG_ERR_UNSUPPORTED, "integer overflow in unary -"); break; }
        else res = cg_jval_int(-ival(a));
        if (!res) oom(r);
        break;
    case N_NOT:
        if (!(a = ev(r, n->a))) break;
        if (!(res = cg_jval_bool(!cg_jval_truthy(a)))) oom(r);
        break;
    case N_AND: case N_OR:
        if (!(a = ev(r, n->a))) break;
        if (cg_jval_truthy(a) == (n->kind == N_OR)) return a;
        cg_jval_unref(a);
        return ev(r, n->b);
    case N_COND:
        if (!(a = ev(r, n->b))) break;
        if (cg_jval_truthy(a)) res = ev(r, n->a);
        else if (n->c) res = ev(r, n->c);
        else res = mk_undef(r, "the inline if-expression on line %d evaluated to false and no else section was defined", n->line);
        break;
    case N_LIST: case N_TUPLE:
        if (!(res = cg_jval_list())) { oom(r); break; }
        res->tuple = n->kind == N_TUPLE;
        for (size_t i = 0; i < n->args.n; i++) {
            cg_jval *x = ev(r, n->args.v[i]);
            if (!x) { cg_jval_unref(res); res = NULL; break; }
            uint16_t dep = x->depth;
            if (!cg_jval_list_push(res, x)) {
                cg_jval_unref(res);
                res = NULL;
                if (dep + 1 >= CG_JVAL_MAX_DEPTH) rt_fail(r, CG_ERR_LIMIT, "values nested deeper than %d", CG_JVAL_MAX_DEPTH);
                else oom(r);
                break;
            }
        }
        break;
    case N_DICT:
        if (!(res = cg_jval_dict())) { oom(r); break; }
        for (size_t i = 0; i < n->args.n; i++) {
            cg_jval *k = ev(r, n->args.v[i]);
            cg_jval *v = k ? ev(r, n->kwv.v[i]) : NULL;
            if (!k || !v) { cg_jval_unref(k); cg_jval_unref(res); res = NULL; break; }
            uint16_t dep = v->depth > k->depth ? v->depth : k->depth;
            if (!cg_jval_dict_set(res, k, v)) {
                cg_jval_unref(res);
                res = NULL;
                if (dep + 1 >= CG_JVAL_MAX_DEPTH) rt_fail(r, CG_ERR_LIMIT, "values nested deeper than %d", CG_JVAL_MAX_DEPTH);
                else oom(r);
                break;
            }
        }
        break;
    case N_CMP: {
        if (!(a = ev(r, n->args.v[0]))) break;
        bool ok = true;
        for (size_t i = 1; i < n->args.n && ok; i++) {
            cg_jval_unref(b);
            if (!(b = ev(r, n->args.v[i]))) return cg_jval_unref(a), NULL;
            int op = n->ops[i - 1], cmp = 0, t;
            r->line = n->line;
            switch (op) {
            case OP_EQ: ok = cg_jval_equal(a, b); break;
            case OP_NE: ok = !cg_jval_equal(a, b); break;
            case OP_IN: case OP_NOTIN:
                if ((t = contains(r, b, a)) < 0) { cg_jval_unref(a); cg_jval_unref(b); return NULL; }
                ok = op == OP_IN ? t : !t;
                break;
            default:
                if (rt_compare(r, a, b, &cmp)) { cg_jval_unref(a); cg_jval_unref(b); return NULL; }
                ok = op == OP_LT ? cmp < 0 : op == OP_LE ? cmp <= 0 : op == OP_GT ? cmp > 0 : cmp >= 0;
            }
            cg_jval_unref(a);
            a = b;
            b = NULL;
        }
        if (!(res = cg_jval_bool(ok))) oom(r);
        break;
    }
    default:
        rt_fail(r, CG_ERR_INTERNAL, "unexpected node %d in expression", n->kind);
    }
    cg_jval_unref(a);
    cg_jval_unref(b);
    cg_jval_unref(c);
    return res;
}

static cg_jval *ev(rt *r, const node *n) {
    if (r->st) return NULL;
    if (++r->depth > r->max_depth) {
        r->depth--;
        return rt_fail(r, CG_ERR_LIMIT, "expressions nested deeper than %d", r->max_depth);
    }
    int line = r->line;
    r->line = n->line;
    cg_jval *v = ev_inner(r, n);
    if (v) r->line = line;
    r->depth--;
    return v;
}

// ---- statements -------------------------------------------------------------------------------

static bool assign(rt *r, const node *target, cg_jval *v) {  // takes v
    if (target->kind == N_NAME) return set_var(r, target->s, target->sn, v);
    if (target->kind == N_TUPLE) {
        cg_jval *l = rt_to_list(r, v);
        cg_jval_unref(v);
        if (!l) return false;
        bool ok = true;
        if (l->u.list.n != target->args.n) {
            rt_fail(r, CG_ERR_FORMAT, "%s values to unpack (expected %zu, got %zu)",
                    l->u.list.n > target->args.n ? "too many" : "not enough", target->args.n, l->u.list.n);
            ok = false;
        }
        for (size_t i = 0; ok && i < target->args.n; i++) ok = assign(r, target->args.v[i], cg_jval_ref(l->u.list.items[i]));
        cg_jval_unref(l);
        return ok;
    }
    if (target->kind == N_ATTR) {
        cg_jval *ns = ev(r, target->a);
        bool ok = false;
        if (ns && ns->kind == CG_JV_NS) {
            if (rt_holds_ns(v)) rt_fail(r, CG_ERR_UNSUPPORTED, "a namespace cannot be stored inside a namespace");
            else ok = cg_jval_dict_set(ns, cg_jval_str(target->s, target->sn), cg_jval_ref(v)) || !rt_push_fail(r, v);
        }
        else if (ns) rt_fail(r, CG_ERR_FORMAT, "cannot assign attribute on non-namespace object");
        cg_jval_unref(ns);
        cg_jval_unref(v);
        return ok;
    }
    cg_jval_unref(v);
    rt_fail(r, CG_ERR_FORMAT, "cannot assign to this expression");
    return false;
}

static cg_status render_to(rt *r, const nvec *body, cg_jval **out) {
    cg_buf b;
    cg_buf_init(&b);
    cg_buf *saved = r->out;
    r->out = &b;
    cg_status st = ex_body(r, body);
    r->out = saved;
    if (st) { cg_buf_free(&b); return st; }
    *out = b.data ? cg_jval_str_take(b.data, b.len) : cg_jval_str("", 0);
    if (!*out) { oom(r); return r->st; }
    return CG_OK;
}

static cg_status ex_for(rt *r, const node *n) {
    cg_jval *it = ev(r, n->b), *items = NULL, *loop = NULL;
    cg_status st = CG_OK;
    if (!it) return r->st;
    if (!(items = rt_to_list(r, it))) goto done;
    if (n->c) {  // `for x in xs if cond`: filter first, so loop.length counts the kept items
        cg_jval *kept = cg_jval_list();
        if (!kept) { oom(r); goto done; }
        for (size_t i = 0; i < items->u.list.n; i++) {
            if (!rt_step(r)) { cg_jval_unref(kept); goto done; }
            frame f = {.vars = cg_jval_dict(), .parent = r->scope};
            if (!f.vars) { oom(r); cg_jval_unref(kept); goto done; }
            r->scope = &f;
            cg_jval *cv = NULL;
            if (assign(r, n->a, cg_jval_ref(items->u.list.items[i]))) cv = ev(r, n->c);
            r->scope = f.parent;
            cg_jval_unref(f.vars);
            if (!cv) { cg_jval_unref(kept); goto done; }
            bool keep = cg_jval_truthy(cv);
            cg_jval_unref(cv);
            if (keep && !cg_jval_list_push(kept, cg_jval_ref(items->u.list.items[i]))) { oom(r); cg_jval_unref(kept); goto done; }
        }
        cg_jval_unref(items);
        items = kept;
    }
    size_t len = items->u.list.n;
    if (len == 0) {
        st = ex_body(r, &n->orelse);
        goto done;
    }
    for (size_t i = 0; i < len; i++) {
        if (!rt_step(r)) goto done;
        frame f = {.vars = cg_jval_dict(), .parent = r->scope};
        loop = cg_jval_dict();
        if (!f.vars || !loop) { cg_jval_unref(f.vars); oom(r); goto done; }
        bool ok = cg_jval_dict_set_c(loop, "index0", cg_jval_int((int64_t)i)) &&
                  cg_jval_dict_set_c(loop, "index", cg_jval_int((int64_t)i + 1)) &&
                  cg_jval_dict_set_c(loop, "revindex", cg_jval_int((int64_t)(len - i))) &&
                  cg_jval_dict_set_c(loop, "revindex0", cg_jval_int((int64_t)(len - i - 1))) &&
                  cg_jval_dict_set_c(loop, "first", cg_jval_bool(i == 0)) &&
                  cg_jval_dict_set_c(loop, "last", cg_jval_bool(i + 1 == len)) &&
                  cg_jval_dict_set_c(loop, "length", cg_jval_int((int64_t)len)) &&
                  cg_jval_dict_set_c(loop, "depth", cg_jval_int(1)) &&
                  cg_jval_dict_set_c(loop, "depth0", cg_jval_int(0)) &&
                  (i == 0 || cg_jval_dict_set_c(loop, "previtem", cg_jval_ref(items->u.list.items[i - 1]))) &&
                  (i + 1 == len || cg_jval_dict_set_c(loop, "nextitem", cg_jval_ref(items->u.list.items[i + 1])));
        if (ok) {
            cg_jval *cyc = lib_method(r, loop, "cycle", 5);
            ok = cyc && cg_jval_dict_set_c(loop, "cycle", cyc);
        }
        r->scope = &f;
        if (!ok) {
            oom(r);
            cg_jval_unref(loop);
        } else if (set_var(r, "loop", 4, loop) && assign(r, n->a, cg_jval_ref(items->u.list.items[i]))) {
            ex_body(r, &n->body);
        }
        loop = NULL;  // owned by the frame (set_var takes it even when it fails)
        r->scope = f.parent;
        cg_jval_unref(f.vars);
        if (r->st) goto done;
        if (r->ctl == 1) { r->ctl = 0; break; }
        r->ctl = 0;
    }
done:
    cg_jval_unref(loop);
    cg_jval_unref(it);
    cg_jval_unref(items);
    return r->st ? r->st : st;
}

static cg_status ex_stmt(rt *r, const node *n) {
    cg_jval *v = NULL, *w = NULL;
    r->line = n->line;
    switch ((nkind)n->kind) {
    case N_TEXT: rt_emit(r, n->s, n->sn); break;
    case N_PRINT:
        if (!(v = ev(r, n->a))) break;
        if (v->kind == CG_JV_STR) rt_emit(r, v->u.s.p, v->u.s.n);
        else if ((w = rt_str_of(r, v))) rt_emit(r, w->u.s.p, w->u.s.n);
        break;
    case N_IF:
        if (!(v = ev(r, n->a))) break;
        ex_body(r, cg_jval_truthy(v) ? &n->body : &n->orelse);
        break;
    case N_FOR: ex_for(r, n); break;
    case N_SET:
        if ((v = ev(r, n->b))) assign(r, n->a, v);
        v = NULL;
        break;
    case N_SETBLOCK:
        if (render_to(r, &n->body, &v)) break;
        if (n->b) {
            w = apply_filters(r, n->b, v);
            cg_jval_unref(v);
            v = w;
            w = NULL;
            if (!v) break;
        }
        assign(r, n->a, v);
        v = NULL;
        break;
    case N_FILTERBLOCK:
        if (render_to(r, &n->body, &v)) break;
        if (!(w = apply_filters(r, n->a, v))) break;
        cg_jval_unref(v);
        if ((v = rt_str_of(r, w))) rt_emit(r, v->u.s.p, v->u.s.n);
        break;
    case N_MACRO: {
        caller_fn *c = calloc(1, sizeof *c);
        if (!c) { oom(r); break; }
        c->def = n;
        c->alive = true;
        if (!(v = cg_jval_func(c, free, FN_MACRO))) { oom(r); break; }
        set_var(r, n->s, n->sn, v);
        v = NULL;
        break;
    }
    case N_CALLBLOCK: {
        caller_fn *c = calloc(1, sizeof *c);
        if (!c) { oom(r); break; }
        c->def = n;
        c->scope = r->scope;
        c->alive = true;
        if (!(w = cg_jval_func(c, free, FN_CALLER))) { oom(r); break; }
        const node *call = n->a;
        cg_jval *fn = ev(r, call->a);
        cargs ca;
        if (fn && eval_args(r, call, &ca, 1)) {
            static const node caller_name = {.kind = N_NAME, .s = "caller", .sn = 6};
            ca.kn[ca.nk] = &caller_name;
            ca.kv[ca.nk++] = cg_jval_ref(w);
            v = rt_call(r, fn, &ca);
            if (v) {
                cg_jval *s = rt_str_of(r, v);
                if (s) rt_emit(r, s->u.s.p, s->u.s.n);
                cg_jval_unref(s);
            }
        }
        if (fn) cargs_free(&ca);
        cg_jval_unref(fn);
        c->alive = false;
        break;
    }
    case N_BREAK: r->ctl = 1; break;
    case N_CONTINUE: r->ctl = 2; break;
    case N_BLOCK: ex_body(r, &n->body); break;
    case N_WITH: {
        frame f = {.vars = cg_jval_dict(), .parent = r->scope};
        if (!f.vars) { oom(r); break; }
        bool ok = true;
        for (size_t i = 0; ok && i < n->args.n; i++) {
            cg_jval *x = ev(r, n->kwv.v[i]);  // evaluated in the outer scope
            frame *outer = r->scope;
            r->scope = &f;
            ok = x && set_var(r, n->args.v[i]->s, n->args.v[i]->sn, x);
            r->scope = outer;
        }
        r->scope = &f;
        if (ok) ex_body(r, &n->body);
        r->scope = f.parent;
        cg_jval_unref(f.vars);
        break;
    }
    default: rt_fail(r, CG_ERR_INTERNAL, "unexpected node %d in statement list", n->kind);
    }
    cg_jval_unref(v);
    cg_jval_unref(w);
    return r->st;
}

static cg_status ex_body(rt *r, const nvec *body) {
    for (size_t i = 0; i < body->n; i++) {
        if (!rt_step(r)) return r->st;
        if (ex_stmt(r, body->v[i])) return r->st;
        if (r->ctl) return CG_OK;
    }
    return CG_OK;
}

cg_status cg_tmpl_render(const cg_tmpl *t, const cg_jval *context, const cg_tmpl_opts *opts, cg_buf *out,
                         cg_err *err) {
    static const cg_tmpl_opts def = {0};
    if (!t || !out) return cg_err_set(err, CG_ERR_INVALID, "template: NULL template or output");
    if (context && context->kind != CG_JV_DICT)
        return cg_err_set(err, CG_ERR_TYPE, "template: context must be a dict, not %s", cg_jval_type_name(context));
    const cg_tmpl_opts *o = opts ? opts : &def;
    frame root = {.vars = cg_jval_dict()};
    if (!root.vars) return cg_err_set(err, CG_ERR_NOMEM, "template: out of memory");
    rt r = {.t = t, .err = err, .out = out, .ctx = context, .scope = &root, .root = &root, .o = o,
            .max_steps = o->max_steps ? o->max_steps : 10000000u, .max_depth = o->max_depth ? o->max_depth : 200,
            .max_out = o->max_output ? o->max_output : (size_t)16 << 20, .line = 1};
    ex_body(&r, &t->root->body);
    cg_jval_unref(root.vars);
    return r.st;
}
