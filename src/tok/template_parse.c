// template_parse.c — Jinja2 lexer and parser (into the tree of template_int.h).
//
// The lexer follows jinja2's rules as transformers configures them: newlines normalised to "\n"
// and one trailing newline dropped; `{%-`/`-%}` strip all whitespace on that side; `{%+`/`+%}`
// keep it; trim_blocks drops the first newline after a block or comment tag; lstrip_blocks removes
// spaces/tabs between a line start and a block or comment tag; `{% raw %}` text is literal; end
// markers are only recognised outside brackets. The parser is recursive descent with jinja2's
// precedence (or < and < not < compare < +,- < ~ < *,/,//,% < ** < unary < postfix/filters) and a
// depth cap. Every syntax error carries line and column. The tree lives in the template's arena.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"
#include "base/utf8.h"
#include "tok/template_int.h"

#define MAX_PARSE_DEPTH 200

typedef enum { T_EOF, T_DATA, T_VBEGIN, T_VEND, T_BBEGIN, T_BEND, T_NAME, T_STR, T_INT, T_FLOAT, T_OP } ttype;

typedef struct tok {
    ttype t;
    const char *p;
    size_t n;
    int line, col;
    cg_jval *v;  // STR/INT/FLOAT literal (owned by the template's literal list)
} tok;

typedef struct lx {
    cg_tmpl *t;
    const char *s;
    size_t n, pos;
    int line;
    size_t line_off;
    tok *toks;
    size_t n_toks, cap_toks;
    size_t i;      // parser cursor
    int depth;
    cg_err *err;
    cg_status st;
} lx;

static void adv(lx *L, size_t to) {
    for (size_t k = L->pos; k < to; k++)
        if (L->s[k] == '\n') { L->line++; L->line_off = k + 1; }
    L->pos = to;
}

static int col_of(lx *L, size_t off) {
    // column in code points, 1-based; off is on the current line
    size_t c = 1;
    for (size_t k = L->line_off; k < off; k++)
        if (((unsigned char)L->s[k] & 0xC0) != 0x80) c++;
    return (int)c;
}

static cg_status lerr(lx *L, int line, int col, const char *fmt, const char *arg) {
    char msg[256];
    snprintf(msg, sizeof msg, fmt, arg ? arg : "");
    L->st = cg_err_set(L->err, CG_ERR_FORMAT, "template: line %d, column %d: %s", line, col, msg);
    return L->st;
}

static bool keep_lit(cg_tmpl *t, cg_jval *v) {
    if (!v) return false;
    if (t->n_lits == t->cap_lits) {
        size_t nc = t->cap_lits ? t->cap_lits * 2 : 64;
        cg_jval **q = realloc(t->lits, nc * sizeof *q);
        if (!q) { cg_jval_unref(v); return false; }
        t->lits = q;
        t->cap_lits = nc;
    }
    t->lits[t->n_lits++] = v;
    cg_jval_make_immortal(v);  // renders on several threads share literals without counting
    return true;
}

static tok *push_tok(lx *L, ttype ty, const char *p, size_t n, size_t off) {
    if (L->n_toks == L->cap_toks) {
        size_t nc = L->cap_toks ? L->cap_toks * 2 : 256;
        tok *q = realloc(L->toks, nc * sizeof *q);
        if (!q) { L->st = cg_err_set(L->err, CG_ERR_NOMEM, "template: out of memory"); return NULL; }
        L->toks = q;
        L->cap_toks = nc;
    }
    tok *k = &L->toks[L->n_toks++];
    memset(k, 0, sizeof *k);
    k->t = ty;
    k->p = p;
    k->n = n;
    k->line = L->line;
    k->col = col_of(L, off);
    return k;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static bool is_id0(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_dig(char c) { return c >= '0' && c <= '9'; }

// Python string-literal escapes (what jinja2 applies to its string tokens).
static cg_status lex_string(lx *L, size_t start, size_t *end) {
    char q = L->s[start];
    size_t k = start + 1;
    cg_buf b;
    cg_buf_init(&b);
    for (;;) {
        if (k >= L->n) {
            cg_buf_free(&b);
            return lerr(L, L->line, col_of(L, start), "unterminated string literal%s", "");
        }
        char c = L->s[k];
        if (c == q) break;
        if (c == '\\' && k + 1 < L->n) {
            char e = L->s[k + 1];
            uint32_t cp = 0;
            int hexn = 0;
            k += 2;
            switch (e) {
            case 'n': cg_buf_putc(&b, '\n'); continue;
            case 't': cg_buf_putc(&b, '\t'); continue;
            case 'r': cg_buf_putc(&b, '\r'); continue;
            case '\\': cg_buf_putc(&b, '\\'); continue;
            case '\'': cg_buf_putc(&b, '\''); continue;
            case '"': cg_buf_putc(&b, '"'); continue;
            case 'a': cg_buf_putc(&b, '\a'); continue;
            case 'b': cg_buf_putc(&b, '\b'); continue;
            case 'f': cg_buf_putc(&b, '\f'); continue;
            case 'v': cg_buf_putc(&b, '\v'); continue;
            case '0': cg_buf_putc(&b, '\0'); continue;
            case '\n': continue;
            case 'x': hexn = 2; break;
            case 'u': hexn = 4; break;
            case 'U': hexn = 8; break;
            default: cg_buf_putc(&b, '\\'); cg_buf_putc(&b, e); continue;
            }
            for (int h = 0; h < hexn; h++, k++) {
                char d = k < L->n ? L->s[k] : 0;
                int v = (d >= '0' && d <= '9') ? d - '0' : (d >= 'a' && d <= 'f') ? d - 'a' + 10
                        : (d >= 'A' && d <= 'F') ? d - 'A' + 10 : -1;
                if (v < 0) {
                    cg_buf_free(&b);
                    return lerr(L, L->line, col_of(L, k), "bad escape in string literal%s", "");
                }
                cp = cp * 16 + (uint32_t)v;
            }
            char enc[4];
            int m = cg_utf8_encode(cp, enc);
            if (m <= 0) {
                cg_buf_free(&b);
                return lerr(L, L->line, col_of(L, k), "invalid code point escape in string literal%s", "");
            }
            cg_buf_append(&b, enc, (size_t)m);
            continue;
        }
        cg_buf_putc(&b, c);
        k++;
    }
    if (!cg_buf_ok(&b)) { cg_buf_free(&b); return L->st = cg_err_set(L->err, CG_ERR_NOMEM, "template: out of memory"); }
    cg_jval *v = b.data ? cg_jval_str_take(b.data, b.len) : cg_jval_str("", 0);
    if (!keep_lit(L->t, v)) return L->st = cg_err_set(L->err, CG_ERR_NOMEM, "template: out of memory");
    tok *tk = push_tok(L, T_STR, L->s + start, k + 1 - start, start);
    if (!tk) return L->st;
    tk->v = v;
    *end = k + 1;
    return CG_OK;
}

static const char *OPS3[] = {NULL};
static const char *OPS2[] = {"**", "//", "==", "!=", "<=", ">=", NULL};
static const char OPS1[] = "+-*/%~<>=()[]{}.,:|";

// Tokenises the inside of a `{{ }}` or `{% %}` tag starting at L->pos, up to and including its end.
static cg_status lex_tag(lx *L, bool is_block, bool *line_starting) {
    int bal = 0;
    (void)OPS3;
    for (;;) {
        size_t k = L->pos;
        while (k < L->n && is_ws(L->s[k])) k++;
        adv(L, k);
        if (k >= L->n) return lerr(L, L->line, col_of(L, k), "unexpected end of template, expected '%s'", is_block ? "%}" : "}}");
        const char *p = L->s + k;
        size_t rem = L->n - k;
        if (bal == 0) {
            const char *endm = is_block ? "%}" : "}}";
            int mode = -1;  // 0 plain, 1 '-', 2 '+'
            size_t mlen = 0;
            if (rem >= 3 && p[0] == '-' && memcmp(p + 1, endm, 2) == 0) { mode = 1; mlen = 3; }
            else if (is_block && rem >= 3 && p[0] == '+' && memcmp(p + 1, endm, 2) == 0) { mode = 2; mlen = 3; }
            else if (rem >= 2 && memcmp(p, endm, 2) == 0) { mode = 0; mlen = 2; }
            if (mode >= 0) {
                if (!push_tok(L, is_block ? T_BEND : T_VEND, p, mlen, k)) return L->st;
                size_t e = k + mlen;
                if (mode == 1) {
                    while (e < L->n && is_ws(L->s[e])) e++;
                } else if (mode == 0 && is_block && e < L->n && L->s[e] == '\n') {
                    e++;
                }
                *line_starting = e > 0 && L->s[e - 1] == '\n';
                adv(L, e);
                return CG_OK;
            }
        }
        char c = *p;
        if (c == '\'' || c == '"') {
            size_t e = k;
            if (lex_string(L, k, &e)) return L->st;
            adv(L, e);
            continue;
        }
        if (is_id0(c) || ((unsigned char)c >= 0x80)) {
            size_t e = k;
            while (e < L->n && (is_id0(L->s[e]) || is_dig(L->s[e]))) e++;
            if (e == k) return lerr(L, L->line, col_of(L, k), "unexpected character in tag%s", "");
            if (!push_tok(L, T_NAME, p, e - k, k)) return L->st;
            adv(L, e);
            continue;
        }
        if (is_dig(c)) {
            size_t e = k;
            bool fl = false;
            while (e < L->n && (is_dig(L->s[e]) || L->s[e] == '_')) e++;
            if (e + 1 < L->n && L->s[e] == '.' && is_dig(L->s[e + 1])) {
                fl = true;
                e++;
                while (e < L->n && (is_dig(L->s[e]) || L->s[e] == '_')) e++;
            }
            if (e < L->n && (L->s[e] == 'e' || L->s[e] == 'E')) {
                size_t f = e + 1;
                if (f < L->n && (L->s[f] == '+' || L->s[f] == '-')) f++;
                if (f < L->n && is_dig(L->s[f])) {
                    fl = true;
                    e = f;
                    while (e < L->n && is_dig(L->s[e])) e++;
                }
            }
            char tmp[64];
            size_t m = 0;
            for (size_t q = k; q < e && m < sizeof tmp - 1; q++)
                if (L->s[q] != '_') tmp[m++] = L->s[q];
            tmp[m] = 0;
            if (e - k >= sizeof tmp) return lerr(L, L->line, col_of(L, k), "number literal too long%s", "");
            cg_jval *v;
            if (fl) {
                v = cg_jval_float(strtod(tmp, NULL));
            } else {
                errno = 0;
                long long x = strtoll(tmp, NULL, 10);
                if (errno) return lerr(L, L->line, col_of(L, k), "integer literal out of range: %s", tmp);
                v = cg_jval_int((int64_t)x);
            }
            if (!keep_lit(L->t, v)) return L->st = cg_err_set(L->err, CG_ERR_NOMEM, "template: out of memory");
            tok *tk = push_tok(L, fl ? T_FLOAT : T_INT, p, e - k, k);
            if (!tk) return L->st;
            tk->v = v;
            adv(L, e);
            continue;
        }
        size_t ol = 0;
        for (int o = 0; OPS2[o]; o++)
            if (rem >= 2 && memcmp(p, OPS2[o], 2) == 0) { ol = 2; break; }
        if (!ol && strchr(OPS1, c) && c) ol = 1;
        if (!ol) {
            char ch[8];
            snprintf(ch, sizeof ch, "%c", c);
            return lerr(L, L->line, col_of(L, k), "unexpected character '%s' in tag", ch);
        }
        if (ol == 1 && (c == '(' || c == '[' || c == '{')) bal++;
        if (ol == 1 && (c == ')' || c == ']' || c == '}')) {
            if (bal == 0) return lerr(L, L->line, col_of(L, k), "unexpected '%s'", (c == ')') ? ")" : (c == ']') ? "]" : "}");
            bal--;
        }
        if (!push_tok(L, T_OP, p, ol, k)) return L->st;
        adv(L, k + ol);
    }
}

// Applies `{%-` / lstrip_blocks to the text before a tag and emits it.
static cg_status emit_text(lx *L, size_t a, size_t b, char mod, bool lstrip, bool line_starting) {
    if (mod == '-') {
        while (b > a && is_ws(L->s[b - 1])) b--;
    } else if (mod != '+' && lstrip) {
        size_t l = b;
        while (l > a && L->s[l - 1] != '\n') l--;
        if ((l > a || line_starting) && l < b) {
            size_t q = l;
            while (q < b && is_ws(L->s[q])) q++;
            if (q == b) b = l;
        }
    }
    if (b > a && !push_tok(L, T_DATA, L->s + a, b - a, a)) return L->st;
    return CG_OK;
}

static bool match_word(const char *s, size_t n, size_t *k, const char *w) {
    size_t q = *k;
    while (q < n && is_ws(s[q])) q++;
    size_t wl = strlen(w);
    if (n - q < wl || memcmp(s + q, w, wl) != 0) return false;
    q += wl;
    if (q < n && (is_id0(s[q]) || is_dig(s[q]))) return false;
    while (q < n && is_ws(s[q])) q++;
    *k = q;
    return true;
}

static cg_status lex_all(lx *L) {
    bool line_starting = true;
    while (L->pos < L->n) {
        const char *s = L->s;
        size_t i = L->pos;
        while (i + 1 < L->n && !(s[i] == '{' && (s[i + 1] == '{' || s[i + 1] == '%' || s[i + 1] == '#'))) i++;
        if (i + 1 >= L->n) {
            if (!push_tok(L, T_DATA, s + L->pos, L->n - L->pos, L->pos)) return L->st;
            adv(L, L->n);
            break;
        }
        char kind = s[i + 1];
        char mod = (i + 2 < L->n && (s[i + 2] == '-' || s[i + 2] == '+')) ? s[i + 2] : 0;
        size_t after = i + 2 + (mod ? 1 : 0);
        // {% raw %}
        size_t q = after;
        bool is_raw = false;
        char raw_end_mod = 0;
        if (kind == '%' && match_word(s, L->n, &q, "raw")) {
            if (q + 2 <= L->n && s[q] == '-' && q + 3 <= L->n && s[q + 1] == '%' && s[q + 2] == '}') { is_raw = true; raw_end_mod = '-'; q += 3; }
            else if (q + 2 <= L->n && s[q] == '%' && s[q + 1] == '}') { is_raw = true; q += 2; }
        }
        if (emit_text(L, L->pos, i, mod, kind != '{', line_starting)) return L->st;
        adv(L, i);
        if (is_raw) {
            if (raw_end_mod == '-') while (q < L->n && is_ws(s[q])) q++;
            // find {% [-+]? endraw [-+]?%}
            size_t j = q;
            for (;;) {
                while (j + 1 < L->n && !(s[j] == '{' && s[j + 1] == '%')) j++;
                if (j + 1 >= L->n) return lerr(L, L->line, col_of(L, i), "missing endraw for raw block%s", "");
                char m2 = (j + 2 < L->n && (s[j + 2] == '-' || s[j + 2] == '+')) ? s[j + 2] : 0;
                size_t r = j + 2 + (m2 ? 1 : 0);
                if (match_word(s, L->n, &r, "endraw")) {
                    int em = -1;
                    if (r + 3 <= L->n && s[r] == '-' && s[r + 1] == '%' && s[r + 2] == '}') em = 1;
                    else if (r + 3 <= L->n && s[r] == '+' && s[r + 1] == '%' && s[r + 2] == '}') em = 2;
                    else if (r + 2 <= L->n && s[r] == '%' && s[r + 1] == '}') em = 0;
                    if (em >= 0) {
                        adv(L, q);
                        if (emit_text(L, q, j, m2, true, false)) return L->st;
                        size_t e = r + (em ? 3 : 2);
                        if (em == 1) while (e < L->n && is_ws(s[e])) e++;
                        else if (em == 0 && e < L->n && s[e] == '\n') e++;
                        line_starting = e > 0 && s[e - 1] == '\n';
                        adv(L, e);
                        break;
                    }
                }
                j += 2;
            }
            continue;
        }
        if (kind == '#') {
            size_t j = after;
            while (j + 1 < L->n && !(s[j] == '#' && s[j + 1] == '}')) j++;
            if (j + 1 >= L->n) return lerr(L, L->line, col_of(L, i), "unterminated comment%s", "");
            size_t e = j + 2;
            if (j > after && s[j - 1] == '-') { while (e < L->n && is_ws(s[e])) e++; }
            else if (j > after && s[j - 1] == '+') { }
            else if (e < L->n && s[e] == '\n') e++;
            line_starting = s[e - 1] == '\n';
            adv(L, e);
            continue;
        }
        if (!push_tok(L, kind == '%' ? T_BBEGIN : T_VBEGIN, s + i, after - i, i)) return L->st;
        adv(L, after);
        if (lex_tag(L, kind == '%', &line_starting)) return L->st;
    }
    if (!push_tok(L, T_EOF, L->s + L->n, 0, L->n)) return L->st;
    return CG_OK;
}

// ---- parser -----------------------------------------------------------------------------------

static tok *cur(lx *L) { return &L->toks[L->i]; }
static tok *peek(lx *L, size_t k) {
    size_t j = L->i + k;
    return &L->toks[j < L->n_toks ? j : L->n_toks - 1];
}
static bool is_op(const tok *k, const char *op) {
    return k->t == T_OP && k->n == strlen(op) && memcmp(k->p, op, k->n) == 0;
}
static bool is_name(const tok *k, const char *w) {
    return k->t == T_NAME && k->n == strlen(w) && memcmp(k->p, w, k->n) == 0;
}

static node *perr(lx *L, const tok *k, const char *what) {
    char got[48];
    if (k->t == T_EOF) snprintf(got, sizeof got, "end of template");
    else if (k->t == T_BEND || k->t == T_VEND) snprintf(got, sizeof got, "end of tag");
    else snprintf(got, sizeof got, "'%.*s'", (int)(k->n > 30 ? 30 : k->n), k->p);
    char msg[200];
    snprintf(msg, sizeof msg, "%s, got %s", what, got);
    lerr(L, k->line, k->col, "%s", msg);
    return NULL;
}

static node *mk(lx *L, nkind kd, const tok *at) {
    node *n = cg_arena_calloc(&L->t->arena, 1, sizeof *n, 8);
    if (!n) { L->st = cg_err_set(L->err, CG_ERR_NOMEM, "template: out of memory"); return NULL; }
    n->kind = (uint8_t)kd;
    n->line = at->line;
    n->col = at->col;
    return n;
}

static bool vpush(lx *L, nvec *v, node *x) {
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 4;
        node **q = cg_arena_alloc(&L->t->arena, nc * sizeof *q, 8);
        if (!q) { L->st = cg_err_set(L->err, CG_ERR_NOMEM, "template: out of memory"); return false; }
        if (v->n) memcpy(q, v->v, v->n * sizeof *q);
        v->v = q;
        v->cap = nc;
    }
    v->v[v->n++] = x;
    return true;
}

static bool expect_op(lx *L, const char *op) {
    if (!is_op(cur(L), op)) {
        char w[32];
        snprintf(w, sizeof w, "expected '%s'", op);
        perr(L, cur(L), w);
        return false;
    }
    L->i++;
    return true;
}

static node *p_expr(lx *L);       // with conditional
static node *p_or(lx *L);
static node *p_unary(lx *L, bool with_filter);
static node *p_primary(lx *L);

static bool p_call_args(lx *L, node *n) {
    // at '('
    L->i++;
    while (!is_op(cur(L), ")")) {
        if (n->args.n + n->kwn.n > 0 && !expect_op(L, ",")) return false;
        if (is_op(cur(L), ")")) break;
        if (cur(L)->t == T_NAME && is_op(peek(L, 1), "=")) {
            node *k = mk(L, N_NAME, cur(L));
            if (!k) return false;
            k->s = cur(L)->p;
            k->sn = cur(L)->n;
            L->i += 2;
            node *v = p_expr(L);
            if (!v || !vpush(L, &n->kwn, k) || !vpush(L, &n->kwv, v)) return false;
        } else {
            if (n->kwn.n) { perr(L, cur(L), "positional argument after keyword argument"); return false; }
            node *v = p_expr(L);
            if (!v || !vpush(L, &n->args, v)) return false;
        }
    }
    L->i++;
    return true;
}

static node *p_postfix(lx *L, node *e) {
    for (;;) {
        tok *k = cur(L);
        if (is_op(k, ".")) {
            L->i++;
            tok *nm = cur(L);
            node *x = mk(L, N_ATTR, k);
            if (!x) return NULL;
            if (nm->t == T_NAME) { x->s = nm->p; x->sn = nm->n; }
            else if (nm->t == T_INT) { x->kind = N_ITEM; x->b = mk(L, N_LIT, nm); if (!x->b) return NULL; x->b->lit = nm->v; }
            else return perr(L, nm, "expected attribute name after '.'");
            L->i++;
            x->a = e;
            e = x;
        } else if (is_op(k, "[")) {
            L->i++;
            node *x = mk(L, N_ITEM, k);
            if (!x) return NULL;
            x->a = e;
            node *parts[3] = {0};
            int np = 0;
            bool slice = false;
            for (;;) {
                if (is_op(cur(L), ":")) {
                    slice = true;
                    if (++np > 2) return perr(L, cur(L), "too many ':' in slice");
                    L->i++;
                    continue;
                }
                if (is_op(cur(L), "]")) break;
                if (parts[np]) return perr(L, cur(L), "expected ']'");
                parts[np] = p_expr(L);
                if (!parts[np]) return NULL;
            }
            L->i++;
            if (slice) {
                x->kind = N_SLICE;
                x->b = parts[0];
                x->c = parts[1];
                x->d = parts[2];
            } else {
                if (!parts[0]) return perr(L, cur(L), "expected subscript expression");
                x->b = parts[0];
            }
            e = x;
        } else if (is_op(k, "(")) {
            node *x = mk(L, N_CALL, k);
            if (!x) return NULL;
            x->a = e;
            if (!p_call_args(L, x)) return NULL;
            e = x;
        } else {
            return e;
        }
    }
}

static node *p_filter_one(lx *L, node *e) {
    tok *nm = cur(L);
    if (nm->t != T_NAME) return perr(L, nm, "expected filter name");
    node *x = mk(L, N_FILTER, nm);
    if (!x) return NULL;
    x->s = nm->p;
    x->sn = nm->n;
    L->i++;
    // dotted filter names (a.b) are joined as jinja2 does
    while (is_op(cur(L), ".") && peek(L, 1)->t == T_NAME) {
        x->sn = (size_t)(peek(L, 1)->p + peek(L, 1)->n - x->s);
        L->i += 2;
    }
    x->a = e;
    if (is_op(cur(L), "(") && !p_call_args(L, x)) return NULL;
    return x;
}

static node *p_filter_expr(lx *L, node *e) {
    for (;;) {
        tok *k = cur(L);
        if (is_op(k, "|")) {
            L->i++;
            if (!(e = p_filter_one(L, e))) return NULL;
        } else if (is_name(k, "is")) {
            L->i++;
            node *x = mk(L, N_TEST, k);
            if (!x) return NULL;
            if (is_name(cur(L), "not")) { x->neg = 1; L->i++; }
            tok *nm = cur(L);
            if (nm->t != T_NAME) return perr(L, nm, "expected test name after 'is'");
            x->s = nm->p;
            x->sn = nm->n;
            L->i++;
            while (is_op(cur(L), ".") && peek(L, 1)->t == T_NAME) {
                x->sn = (size_t)(peek(L, 1)->p + peek(L, 1)->n - x->s);
                L->i += 2;
            }
            x->a = e;
            tok *nx = cur(L);
            if (is_op(nx, "(")) {
                if (!p_call_args(L, x)) return NULL;
            } else if ((nx->t == T_NAME || nx->t == T_STR || nx->t == T_INT || nx->t == T_FLOAT || is_op(nx, "[") ||
                        is_op(nx, "{")) &&
                       !is_name(nx, "else") && !is_name(nx, "or") && !is_name(nx, "and") && !is_name(nx, "if") &&
                       !is_name(nx, "in") && !is_name(nx, "is") && !is_name(nx, "not") && !is_name(nx, "for")) {
                node *arg = p_unary(L, false);
                if (!arg || !vpush(L, &x->args, arg)) return NULL;
            }
            e = x;
        } else if (is_op(k, "(")) {
            node *x = mk(L, N_CALL, k);
            if (!x) return NULL;
            x->a = e;
            if (!p_call_args(L, x)) return NULL;
            e = x;
        } else {
            return e;
        }
    }
}

static node *p_unary(lx *L, bool with_filter) {
    tok *k = cur(L);
    node *e;
    if (++L->depth > MAX_PARSE_DEPTH) {
        L->st = cg_err_set(L->err, CG_ERR_LIMIT, "template: line %d, column %d: expression nested too deeply", k->line, k->col);
        return NULL;
    }
    if (is_op(k, "-") || is_op(k, "+")) {
        L->i++;
        e = mk(L, is_op(k, "-") ? N_NEG : N_POS, k);
        if (!e || !(e->a = p_unary(L, false))) return NULL;
    } else {
        e = p_primary(L);
    }
    if (e) e = p_postfix(L, e);
    if (e && with_filter) e = p_filter_expr(L, e);
    L->depth--;
    return e;
}

static node *p_bin(lx *L, int level);

// level: 0 pow, 1 math2, 2 concat, 3 math1
static node *p_bin(lx *L, int level) {
    node *l = level == 0 ? p_unary(L, true) : p_bin(L, level - 1);
    if (!l) return NULL;
    for (;;) {
        tok *k = cur(L);
        int op = 0;
        if (level == 0 && is_op(k, "**")) op = OP_POW;
        else if (level == 1 && is_op(k, "*")) op = OP_MUL;
        else if (level == 1 && is_op(k, "/")) op = OP_DIV;
        else if (level == 1 && is_op(k, "//")) op = OP_FLOORDIV;
        else if (level == 1 && is_op(k, "%")) op = OP_MOD;
        else if (level == 2 && is_op(k, "~")) op = -1;
        else if (level == 3 && is_op(k, "+")) op = OP_ADD;
        else if (level == 3 && is_op(k, "-")) op = OP_SUB;
        if (!op) return l;
        L->i++;
        node *r = level == 0 ? p_unary(L, true) : p_bin(L, level - 1);
        if (!r) return NULL;
        node *x = mk(L, op == -1 ? N_CONCAT : N_BIN, k);
        if (!x) return NULL;
        x->op = op;
        x->a = l;
        x->b = r;
        l = x;
    }
}

static node *p_compare(lx *L) {
    node *first = p_bin(L, 3);
    if (!first) return NULL;
    node *cmp = NULL;
    int ops[64];
    int nops = 0;
    for (;;) {
        tok *k = cur(L);
        int op = 0;
        if (is_op(k, "==")) op = OP_EQ;
        else if (is_op(k, "!=")) op = OP_NE;
        else if (is_op(k, "<")) op = OP_LT;
        else if (is_op(k, "<=")) op = OP_LE;
        else if (is_op(k, ">")) op = OP_GT;
        else if (is_op(k, ">=")) op = OP_GE;
        else if (is_name(k, "in")) op = OP_IN;
        else if (is_name(k, "not") && is_name(peek(L, 1), "in")) op = OP_NOTIN;
        if (!op) break;
        L->i += op == OP_NOTIN ? 2 : 1;
        if (!cmp) {
            cmp = mk(L, N_CMP, k);
            if (!cmp || !vpush(L, &cmp->args, first)) return NULL;
        }
        if (nops == 64) return perr(L, k, "comparison chain too long");
        ops[nops++] = op;
        node *r = p_bin(L, 3);
        if (!r || !vpush(L, &cmp->args, r)) return NULL;
    }
    if (!cmp) return first;
    cmp->ops = cg_arena_alloc(&L->t->arena, (size_t)nops * sizeof(int), 8);
    if (!cmp->ops) { L->st = cg_err_set(L->err, CG_ERR_NOMEM, "template: out of memory"); return NULL; }
    memcpy(cmp->ops, ops, (size_t)nops * sizeof(int));
    return cmp;
}

static node *p_not(lx *L) {
    tok *k = cur(L);
    if (is_name(k, "not")) {
        L->i++;
        if (++L->depth > MAX_PARSE_DEPTH) {
            L->st = cg_err_set(L->err, CG_ERR_LIMIT, "template: line %d, column %d: expression nested too deeply", k->line, k->col);
            return NULL;
        }
        node *x = mk(L, N_NOT, k);
        if (!x || !(x->a = p_not(L))) return NULL;
        L->depth--;
        return x;
    }
    return p_compare(L);
}

// A left-associative chain `sub (word sub)*` of one boolean operator (and / or).
static node *p_chain(lx *L, node *(*sub)(lx *), const char *word, nkind kind) {
    node *l = sub(L);
    while (l && is_name(cur(L), word)) {
        node *x = mk(L, kind, cur(L));
        L->i++;
        if (!x) return NULL;
        x->a = l;
        if (!(x->b = sub(L))) return NULL;
        l = x;
    }
    return l;
}

static node *p_and(lx *L) { return p_chain(L, p_not, "and", N_AND); }

static node *p_or(lx *L) { return p_chain(L, p_and, "or", N_OR); }

static node *p_expr(lx *L) {
    if (++L->depth > MAX_PARSE_DEPTH) {
        L->st = cg_err_set(L->err, CG_ERR_LIMIT, "template: line %d, column %d: expression nested too deeply",
                           cur(L)->line, cur(L)->col);
        return NULL;
    }
    node *e = p_or(L);
    while (e && is_name(cur(L), "if")) {
        node *x = mk(L, N_COND, cur(L));
        L->i++;
        if (!x) return NULL;
        x->a = e;
        if (!(x->b = p_or(L))) return NULL;
        if (is_name(cur(L), "else")) {
            L->i++;
            if (!(x->c = p_expr(L))) return NULL;
        }
        e = x;
    }
    L->depth--;
    return e;
}

// expr [, expr …] → a tuple when a comma appears (or `explicit` parentheses were used by caller).
static node *p_tuple(lx *L, bool simple) {
    tok *at = cur(L);
    node *first = simple ? p_primary(L) : p_expr(L);
    if (!first) return NULL;
    if (!is_op(cur(L), ",")) return first;
    node *t = mk(L, N_TUPLE, at);
    if (!t || !vpush(L, &t->args, first)) return NULL;
    while (is_op(cur(L), ",")) {
        L->i++;
        tok *k = cur(L);
        if (k->t == T_BEND || k->t == T_VEND || is_op(k, ")") || is_name(k, "in") || is_op(k, "=")) break;
        node *x = simple ? p_primary(L) : p_expr(L);
        if (!x || !vpush(L, &t->args, x)) return NULL;
    }
    return t;
}

static node *p_primary(lx *L) {
    tok *k = cur(L);
    node *x;
    if (k->t == T_NAME) {
        L->i++;
        if (is_name(k, "true") || is_name(k, "True") || is_name(k, "false") || is_name(k, "False") ||
            is_name(k, "none") || is_name(k, "None")) {
            x = mk(L, N_LIT, k);
            if (!x) return NULL;
            cg_jval *v = (k->p[0] == 'n' || k->p[0] == 'N') ? cg_jval_null() : cg_jval_bool(k->p[0] == 't' || k->p[0] == 'T');
            if (!keep_lit(L->t, v)) { L->st = cg_err_set(L->err, CG_ERR_NOMEM, "template: out of memory"); return NULL; }
            x->lit = v;
            return x;
        }
        x = mk(L, N_NAME, k);
        if (!x) return NULL;
        x->s = k->p;
        x->sn = k->n;
        return x;
    }
    if (k->t == T_STR) {
        L->i++;
        x = mk(L, N_LIT, k);
        if (!x) return NULL;
        x->lit = k->v;
        if (cur(L)->t == T_STR) {  // adjacent string literals concatenate
            cg_buf b;
            cg_buf_init(&b);
            cg_buf_append(&b, k->v->u.s.p, k->v->u.s.n);
            while (cur(L)->t == T_STR) {
                cg_buf_append(&b, cur(L)->v->u.s.p, cur(L)->v->u.s.n);
                L->i++;
            }
            cg_jval *v = cg_buf_ok(&b) && b.data ? cg_jval_str_take(b.data, b.len) : NULL;
            if (!v) cg_buf_free(&b);
            if (!keep_lit(L->t, v)) { L->st = cg_err_set(L->err, CG_ERR_NOMEM, "template: out of memory"); return NULL; }
            x->lit = v;
        }
        return x;
    }
    if (k->t == T_INT || k->t == T_FLOAT) {
        L->i++;
        x = mk(L, N_LIT, k);
        if (x) x->lit = k->v;
        return x;
    }
    if (is_op(k, "(")) {
        L->i++;
        if (is_op(cur(L), ")")) {
            L->i++;
            return mk(L, N_TUPLE, k);
        }
        node *e = p_expr(L);
        if (!e) return NULL;
        if (is_op(cur(L), ",")) {
            node *t = mk(L, N_TUPLE, k);
            if (!t || !vpush(L, &t->args, e)) return NULL;
            while (is_op(cur(L), ",")) {
                L->i++;
                if (is_op(cur(L), ")")) break;
                node *y = p_expr(L);
                if (!y || !vpush(L, &t->args, y)) return NULL;
            }
            e = t;
        }
        if (!expect_op(L, ")")) return NULL;
        return e;
    }
    if (is_op(k, "[")) {
        L->i++;
        x = mk(L, N_LIST, k);
        if (!x) return NULL;
        while (!is_op(cur(L), "]")) {
            if (x->args.n && !expect_op(L, ",")) return NULL;
            if (is_op(cur(L), "]")) break;
            node *y = p_expr(L);
            if (!y || !vpush(L, &x->args, y)) return NULL;
        }
        L->i++;
        return x;
    }
    if (is_op(k, "{")) {
        L->i++;
        x = mk(L, N_DICT, k);
        if (!x) return NULL;
        while (!is_op(cur(L), "}")) {
            if (x->args.n && !expect_op(L, ",")) return NULL;
            if (is_op(cur(L), "}")) break;
            node *kk = p_expr(L);
            if (!kk || !expect_op(L, ":")) return NULL;
            node *vv = p_expr(L);
            if (!vv || !vpush(L, &x->args, kk) || !vpush(L, &x->kwv, vv)) return NULL;
        }
        L->i++;
        return x;
    }
    return perr(L, k, "expected an expression");
}

// ---- statements -------------------------------------------------------------------------------

static bool p_body(lx *L, nvec *body, const char *const *ends, size_t *which);

static bool expect_bend(lx *L) {
    if (cur(L)->t != T_BEND) { perr(L, cur(L), "expected end of statement block"); return false; }
    L->i++;
    return true;
}

static node *p_assign_target(lx *L) {
    tok *k = cur(L);
    if (k->t != T_NAME) return perr(L, k, "expected a name to assign to");
    node *first;
    if (is_op(peek(L, 1), ".")) {
        if (peek(L, 2)->t != T_NAME) return perr(L, peek(L, 2), "expected attribute name");
        first = mk(L, N_ATTR, k);
        if (!first || !(first->a = mk(L, N_NAME, k))) return NULL;
        first->a->s = k->p;
        first->a->sn = k->n;
        first->s = peek(L, 2)->p;
        first->sn = peek(L, 2)->n;
        L->i += 3;
        return first;
    }
    return p_tuple(L, true);
}

static node *p_stmt(lx *L) {
    tok *bt = cur(L);  // BBEGIN
    L->i++;
    tok *k = cur(L);
    if (k->t != T_NAME) return perr(L, k, "expected a statement name");
    node *x;
    L->i++;
    if (is_name(k, "if")) {
        x = mk(L, N_IF, k);
        if (!x || !(x->a = p_expr(L)) || !expect_bend(L)) return NULL;
        node *curif = x;
        for (;;) {
            static const char *const ends[] = {"elif", "else", "endif", NULL};
            size_t w;
            if (!p_body(L, &curif->body, ends, &w)) return NULL;
            if (w == 0) {
                node *e = mk(L, N_IF, cur(L));
                if (!e || !vpush(L, &curif->orelse, e) || !(e->a = p_expr(L)) || !expect_bend(L)) return NULL;
                curif = e;
                continue;
            }
            if (w == 1) {
                static const char *const ends2[] = {"endif", NULL};
                if (!expect_bend(L) || !p_body(L, &curif->orelse, ends2, &w)) return NULL;
            }
            return expect_bend(L) ? x : NULL;
        }
    }
    if (is_name(k, "for")) {
        x = mk(L, N_FOR, k);
        if (!x || !(x->a = p_tuple(L, true))) return NULL;
        if (!is_name(cur(L), "in")) return perr(L, cur(L), "expected 'in' in for loop");
        L->i++;
        if (!(x->b = p_tuple(L, false))) return NULL;
        // `x->b` may have swallowed `if cond` as a conditional expression without else: split it
        if (x->b->kind == N_COND && !x->b->c) {
            x->c = x->b->b;
            x->b = x->b->a;
        }
        if (is_name(cur(L), "recursive")) return perr(L, cur(L), "recursive loops are not supported");
        if (!expect_bend(L)) return NULL;
        static const char *const ends[] = {"else", "endfor", NULL};
        size_t w;
        if (!p_body(L, &x->body, ends, &w)) return NULL;
        if (w == 0) {
            static const char *const ends2[] = {"endfor", NULL};
            if (!expect_bend(L) || !p_body(L, &x->orelse, ends2, &w)) return NULL;
        }
        return expect_bend(L) ? x : NULL;
    }
    if (is_name(k, "set")) {
        x = mk(L, N_SET, k);
        if (!x || !(x->a = p_assign_target(L))) return NULL;
        if (is_op(cur(L), "=")) {
            L->i++;
            if (!(x->b = p_tuple(L, false)) || !expect_bend(L)) return NULL;
            return x;
        }
        x->kind = N_SETBLOCK;
        if (is_op(cur(L), "|")) {
            node *in = mk(L, N_INPUT, cur(L));
            if (!in || !(x->b = p_filter_expr(L, in))) return NULL;
        }
        static const char *const ends[] = {"endset", NULL};
        size_t w;
        if (!expect_bend(L) || !p_body(L, &x->body, ends, &w) || !expect_bend(L)) return NULL;
        return x;
    }
    if (is_name(k, "macro") || is_name(k, "call")) {
        bool is_call = is_name(k, "call");
        x = mk(L, is_call ? N_CALLBLOCK : N_MACRO, k);
        if (!x) return NULL;
        if (!is_call) {
            if (cur(L)->t != T_NAME) return perr(L, cur(L), "expected macro name");
            x->s = cur(L)->p;
            x->sn = cur(L)->n;
            L->i++;
        }
        if (is_op(cur(L), "(") || !is_call) {
            if (!expect_op(L, "(")) return NULL;
            while (!is_op(cur(L), ")")) {
                if (x->args.n && !expect_op(L, ",")) return NULL;
                if (is_op(cur(L), ")")) break;
                if (cur(L)->t != T_NAME) return perr(L, cur(L), "expected parameter name");
                node *pn = mk(L, N_NAME, cur(L));
                if (!pn) return NULL;
                pn->s = cur(L)->p;
                pn->sn = cur(L)->n;
                L->i++;
                node *dv = NULL;
                if (is_op(cur(L), "=")) {
                    L->i++;
                    if (!(dv = p_expr(L))) return NULL;
                }
                if (!vpush(L, &x->args, pn) || !vpush(L, &x->kwv, dv)) return NULL;
            }
            L->i++;
        }
        if (is_call && !(x->a = p_expr(L))) return NULL;
        if (is_call && x->a->kind != N_CALL) return perr(L, cur(L), "expected a call in call block");
        static const char *const endm[] = {"endmacro", NULL};
        static const char *const endc[] = {"endcall", NULL};
        size_t w;
        if (!expect_bend(L) || !p_body(L, &x->body, is_call ? endc : endm, &w)) return NULL;
        if (!is_call && cur(L)->t == T_NAME) L->i++;  // {% endmacro name %}
        return expect_bend(L) ? x : NULL;
    }
    if (is_name(k, "filter")) {
        x = mk(L, N_FILTERBLOCK, k);
        node *in = x ? mk(L, N_INPUT, k) : NULL;
        if (!in) return NULL;
        x->a = p_filter_one(L, in);
        if (x->a) x->a = p_filter_expr(L, x->a);
        if (!x->a) return NULL;
        static const char *const ends[] = {"endfilter", NULL};
        size_t w;
        if (!expect_bend(L) || !p_body(L, &x->body, ends, &w) || !expect_bend(L)) return NULL;
        return x;
    }
    if (is_name(k, "generation") || is_name(k, "with")) {
        bool is_with = is_name(k, "with");
        x = mk(L, is_with ? N_WITH : N_BLOCK, k);
        if (!x) return NULL;
        while (is_with && cur(L)->t == T_NAME) {
            node *pn = mk(L, N_NAME, cur(L));
            if (!pn) return NULL;
            pn->s = cur(L)->p;
            pn->sn = cur(L)->n;
            L->i++;
            if (!expect_op(L, "=")) return NULL;
            node *v = p_expr(L);
            if (!v || !vpush(L, &x->args, pn) || !vpush(L, &x->kwv, v)) return NULL;
            if (is_op(cur(L), ",")) L->i++;
        }
        static const char *const endg[] = {"endgeneration", NULL};
        static const char *const endw[] = {"endwith", NULL};
        size_t w;
        if (!expect_bend(L) || !p_body(L, &x->body, is_with ? endw : endg, &w) || !expect_bend(L)) return NULL;
        return x;
    }
    if (is_name(k, "break") || is_name(k, "continue")) {
        x = mk(L, is_name(k, "break") ? N_BREAK : N_CONTINUE, k);
        return x && expect_bend(L) ? x : NULL;
    }
    (void)bt;
    char w[64];
    snprintf(w, sizeof w, "unknown tag '%.*s'", (int)(k->n > 40 ? 40 : k->n), k->p);
    lerr(L, k->line, k->col, "%s", w);
    return NULL;
}

// Parses statements until `{% <one of ends> …` (leaving the cursor after the end tag's name) or,
// when ends is NULL, until the end of the template.
static bool p_body(lx *L, nvec *body, const char *const *ends, size_t *which) {
    tok *opened = L->i > 0 ? &L->toks[L->i - 1] : cur(L);
    if (++L->depth > MAX_PARSE_DEPTH) {
        L->st = cg_err_set(L->err, CG_ERR_LIMIT, "template: line %d, column %d: blocks nested too deeply",
                           cur(L)->line, cur(L)->col);
        return false;
    }
    for (;;) {
        tok *k = cur(L);
        if (k->t == T_EOF) {
            if (!ends) break;
            char w[64];
            size_t last = 0;
            while (ends[last + 1]) last++;
            snprintf(w, sizeof w, "missing '%s' for the block opened on line %d", ends[last], opened->line);
            perr(L, k, w);
            return false;
        }
        if (k->t == T_DATA) {
            node *x = mk(L, N_TEXT, k);
            if (!x || !vpush(L, body, x)) return false;
            x->s = k->p;
            x->sn = k->n;
            L->i++;
            continue;
        }
        if (k->t == T_VBEGIN) {
            L->i++;
            node *x = mk(L, N_PRINT, k);
            if (!x || !(x->a = p_tuple(L, false))) return false;
            if (cur(L)->t != T_VEND) { perr(L, cur(L), "expected '}}'"); return false; }
            L->i++;
            if (!vpush(L, body, x)) return false;
            continue;
        }
        if (k->t == T_BBEGIN) {
            tok *nm = peek(L, 1);
            if (ends) {
                for (size_t e = 0; ends[e]; e++) {
                    if (is_name(nm, ends[e])) {
                        L->i += 2;
                        *which = e;
                        L->depth--;
                        return true;
                    }
                }
            }
            static const char *const closers[] = {"endif", "endfor", "endmacro", "endset", "endcall", "endfilter",
                                                  "endgeneration", "endwith", "else", "elif", "endraw", NULL};
            for (size_t e = 0; closers[e]; e++)
                if (is_name(nm, closers[e])) { perr(L, nm, ends ? "unexpected end tag" : "unexpected end tag with no open block"); return false; }
            node *x = p_stmt(L);
            if (!x || !vpush(L, body, x)) return false;
            continue;
        }
        perr(L, k, "unexpected token");
        return false;
    }
    L->depth--;
    return true;
}

void cg_tmpl_free(cg_tmpl *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n_lits; i++) cg_jval_release_immortal(t->lits[i]);
    free(t->lits);
    cg_arena_free(&t->arena);
    free(t);
}

cg_status cg_tmpl_parse(const char *src, size_t len, cg_tmpl **out, cg_err *err) {
    cg_status st = CG_OK;
    *out = NULL;
    if (!src && len) return cg_err_set(err, CG_ERR_INVALID, "template: NULL source");
    size_t bad;
    if (!cg_utf8_valid(src, len, &bad))
        return cg_err_set(err, CG_ERR_FORMAT, "template: invalid UTF-8 at byte offset %zu", bad);
    cg_tmpl *t = calloc(1, sizeof *t);
    lx L = {0};
    if (!t) return cg_err_set(err, CG_ERR_NOMEM, "template: out of memory");
    cg_arena_init(&t->arena, 64 * 1024);
    // Normalise \r\n and \r to \n and drop one trailing newline, as jinja2 does.
    char *s = cg_arena_alloc(&t->arena, len + 1, 1);
    if (!s) { st = cg_err_set(err, CG_ERR_NOMEM, "template: out of memory"); goto fail; }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n > 0 && s[n - 1] == '\n') n--;
    s[n] = 0;
    L.t = t;
    L.s = s;
    L.n = n;
    L.line = 1;
    L.err = err;
    if ((st = lex_all(&L))) goto fail;
    t->root = mk(&L, N_BLOCK, &L.toks[0]);
    size_t w;
    if (!t->root || !p_body(&L, &t->root->body, NULL, &w)) { st = L.st ? L.st : CG_ERR_FORMAT; goto fail; }
    free(L.toks);
    *out = t;
    return CG_OK;
fail:
    free(L.toks);
    cg_tmpl_free(t);
    return st;
}
