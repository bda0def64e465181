// grammar_parse.c — GBNF text → compiled rules (see grammar.h for the syntax).
//
// A recursive-descent parser over the source bytes. Each rule is built in its own growable element
// vector; groups and repetitions become generated rules named "<rule>_<n>". After parsing, every
// referenced rule must be defined, root must exist, and no rule may reach itself through a chain of
// leftmost (possibly after nullable elements) references — the matcher would loop forever.
// Errors carry the line and column of the offending byte. Nothing here is global; all memory is
// owned by the parser state until moved into the cg_grammar.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"
#include "base/utf8.h"
#include "sample/grammar_int.h"

typedef struct evec { gelem *p; uint32_t n, cap; } evec;

typedef struct sym {
    char *name;          // owned
    evec body;           // owned
    bool defined;
    size_t first_ref;    // source offset of the first reference (for "undefined rule" errors)
    size_t def_at;       // source offset of the definition
} sym;

typedef struct parser {
    const char *s;
    size_t n, pos;
    sym *syms;
    uint32_t n_syms, cap_syms;
    uint64_t n_el_total;
    uint32_t *htab;      // owned: symbol index + 1 by name hash (0 = empty)
    size_t hcap;
    cg_err *err;
} parser;

static uint64_t name_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static void line_col(const parser *ps, size_t at, size_t *line, size_t *col) {
    size_t l = 1, c = 1;
    for (size_t i = 0; i < at && i < ps->n; i++) {
        if (ps->s[i] == '\n') { l++; c = 1; }
        else if (((unsigned char)ps->s[i] & 0xC0) != 0x80) c++;
    }
    *line = l;
    *col = c;
}

static cg_status perr(parser *ps, size_t at, const char *what) {
    size_t l, c;
    line_col(ps, at, &l, &c);
    return cg_err_set(ps->err, CG_ERR_FORMAT, "grammar: line %zu, column %zu: %s", l, c, what);
}

static cg_status push(parser *ps, evec *v, uint32_t type, uint32_t value) {
    if (++ps->n_el_total > CG_GRAMMAR_MAX_ELEMENTS)
        return cg_err_set(ps->err, CG_ERR_LIMIT, "grammar: more than %u elements after expanding repetitions",
                          CG_GRAMMAR_MAX_ELEMENTS);
    if (v->n == v->cap) {
        uint32_t cap = v->cap ? v->cap * 2 : 16;
        gelem *p = realloc(v->p, (size_t)cap * sizeof *p);
        if (!p) return cg_err_set(ps->err, CG_ERR_NOMEM, "grammar: out of memory");
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = (gelem){type, value};
    return CG_OK;
}

static cg_status push_range(parser *ps, evec *v, const gelem *src, uint32_t n) {
    cg_status st;
    for (uint32_t i = 0; i < n; i++)
        if ((st = push(ps, v, src[i].type, src[i].value))) return st;
    return CG_OK;
}

// Index of the symbol named name[0..len), or UINT32_MAX.
static uint32_t find_symbol(const parser *ps, const char *name, size_t len) {
    if (!ps->hcap) return UINT32_MAX;
    for (size_t h = name_hash(name, len) & (ps->hcap - 1); ps->htab[h]; h = (h + 1) & (ps->hcap - 1)) {
        const char *s = ps->syms[ps->htab[h] - 1].name;
        if (strlen(s) == len && memcmp(s, name, len) == 0) return ps->htab[h] - 1;
    }
    return UINT32_MAX;
}

// Finds or creates a symbol. *id receives its index.
static cg_status symbol(parser *ps, const char *name, size_t len, uint32_t *id) {
    uint32_t found = find_symbol(ps, name, len);
    if (found != UINT32_MAX) { *id = found; return CG_OK; }
    if ((size_t)(ps->n_syms + 1) * 2 > ps->hcap) {
        size_t cap = ps->hcap ? ps->hcap * 2 : 256;
        uint32_t *t = calloc(cap, sizeof *t);
        if (!t) return cg_err_set(ps->err, CG_ERR_NOMEM, "grammar: out of memory");
        for (uint32_t i = 0; i < ps->n_syms; i++) {
            size_t h = name_hash(ps->syms[i].name, strlen(ps->syms[i].name)) & (cap - 1);
            while (t[h]) h = (h + 1) & (cap - 1);
            t[h] = i + 1;
        }
        free(ps->htab);
        ps->htab = t;
        ps->hcap = cap;
    }
    if (ps->n_syms == ps->cap_syms) {
        uint32_t cap = ps->cap_syms ? ps->cap_syms * 2 : 32;
        sym *p = realloc(ps->syms, (size_t)cap * sizeof *p);
        if (!p) return cg_err_set(ps->err, CG_ERR_NOMEM, "grammar: out of memory");
        ps->syms = p;
        ps->cap_syms = cap;
    }
    sym *s = &ps->syms[ps->n_syms];
    memset(s, 0, sizeof *s);
    s->name = malloc(len + 1);
    if (!s->name) return cg_err_set(ps->err, CG_ERR_NOMEM, "grammar: out of memory");
    memcpy(s->name, name, len);
    s->name[len] = 0;
    s->first_ref = SIZE_MAX;
    size_t h = name_hash(name, len) & (ps->hcap - 1);
    while (ps->htab[h]) h = (h + 1) & (ps->hcap - 1);
    ps->htab[h] = ps->n_syms + 1;
    *id = ps->n_syms++;
    return CG_OK;
}

// A fresh generated rule "<base>_<k>".
static cg_status gen_symbol(parser *ps, uint32_t base, uint32_t *id) {
    char name[300];
    for (uint32_t k = ps->n_syms;; k++) {
        int len = snprintf(name, sizeof name, "%.200s_%u", ps->syms[base].name, k);
        if (find_symbol(ps, name, (size_t)len) != UINT32_MAX) continue;
        cg_status st = symbol(ps, name, (size_t)len, id);
        if (st) return st;
        ps->syms[*id].defined = true;
        ps->syms[*id].def_at = ps->pos;
        return CG_OK;
    }
}

static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Skips blanks and comments; newlines too when newline_ok.
static void skip_space(parser *ps, bool newline_ok) {
    while (ps->pos < ps->n) {
        char c = ps->s[ps->pos];
        if (c == ' ' || c == '\t' || ((c == '\n' || c == '\r') && newline_ok)) {
            ps->pos++;
        } else if (c == '#') {
            while (ps->pos < ps->n && ps->s[ps->pos] != '\n') ps->pos++;
        } else {
            break;
        }
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// One (possibly escaped) character of a literal or class.
static cg_status parse_char(parser *ps, uint32_t *cp) {
    size_t at = ps->pos;
    if (ps->pos >= ps->n) return perr(ps, at, "unexpected end of input in a literal or class");
    if (ps->s[ps->pos] == '\\') {
        if (ps->pos + 1 >= ps->n) return perr(ps, at, "unexpected end of input after '\\'");
        char e = ps->s[ps->pos + 1];
        ps->pos += 2;
        int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        if (digits) {
            uint32_t v = 0;
            for (int i = 0; i < digits; i++) {
                int h = ps->pos < ps->n ? hexval(ps->s[ps->pos]) : -1;
                if (h < 0) return perr(ps, ps->pos, "expected a hex digit in an escape");
                v = v * 16 + (uint32_t)h;
                ps->pos++;
            }
            if (v > 0x10FFFF) return perr(ps, at, "escape above U+10FFFF");
            *cp = v;
            return CG_OK;
        }
        switch (e) {
        case 'n': *cp = '\n'; return CG_OK;
        case 'r': *cp = '\r'; return CG_OK;
        case 't': *cp = '\t'; return CG_OK;
        case '\\': case '"': case '[': case ']': case '-': case '^': case '/': *cp = (uint32_t)e; return CG_OK;
        default: return perr(ps, at, "unknown escape (allowed: \\x \\u \\U \\n \\r \\t \\\\ \\\" \\[ \\] \\- \\^ \\/)");
        }
    }
    int len = cg_utf8_decode(ps->s + ps->pos, ps->n - ps->pos, cp);
    if (len == 0) return perr(ps, at, "invalid UTF-8 in the grammar source");
    ps->pos += (size_t)len;
    return CG_OK;
}

static cg_status parse_alternates(parser *ps, uint32_t rule, evec *out, bool nested);

// Applies a repetition {min,max} (max UINT32_MAX = unbounded) to out[start..].
static cg_status repeat(parser *ps, uint32_t rule, evec *out, uint32_t start, uint32_t min, uint32_t max) {
    cg_status st = CG_OK;
    uint32_t n_x = out->n - start;
    gelem *x = malloc((size_t)(n_x ? n_x : 1) * sizeof *x);
    if (!x) return cg_err_set(ps->err, CG_ERR_NOMEM, "grammar: out of memory");
    memcpy(x, out->p + start, (size_t)n_x * sizeof *x);
    out->n = start;
    for (uint32_t i = 0; i < min; i++)
        if ((st = push_range(ps, out, x, n_x))) goto done;
    if (max == UINT32_MAX) {
        // star ::= x star |
        uint32_t r;
        if ((st = gen_symbol(ps, rule, &r))) goto done;
        evec *b = &ps->syms[r].body;
        if ((st = push_range(ps, b, x, n_x)) || (st = push(ps, b, GE_RULE_REF, r)) || (st = push(ps, b, GE_ALT, 0)) ||
            (st = push(ps, b, GE_END, 0)))
            goto done;
        st = push(ps, out, GE_RULE_REF, r);
    } else if (max > min) {
        // opt_k ::= x opt_{k+1} | ; the innermost first
        uint32_t inner = UINT32_MAX;
        for (uint32_t k = 0; k < max - min; k++) {
            uint32_t r;
            if ((st = gen_symbol(ps, rule, &r))) goto done;
            evec *b = &ps->syms[r].body;
            if ((st = push_range(ps, b, x, n_x))) goto done;
            if (inner != UINT32_MAX && (st = push(ps, b, GE_RULE_REF, inner))) goto done;
            if ((st = push(ps, b, GE_ALT, 0)) || (st = push(ps, b, GE_END, 0))) goto done;
            inner = r;
        }
        st = push(ps, out, GE_RULE_REF, inner);
    }
done:
    free(x);
    return st;
}

static cg_status parse_uint(parser *ps, uint32_t *v) {
    size_t at = ps->pos;
    uint64_t x = 0;
    while (ps->pos < ps->n && ps->s[ps->pos] >= '0' && ps->s[ps->pos] <= '9') {
        x = x * 10 + (uint64_t)(ps->s[ps->pos] - '0');
        if (x > CG_GRAMMAR_MAX_REPEAT) return cg_err_set(ps->err, CG_ERR_LIMIT, "grammar: repetition count above %d",
                                                          CG_GRAMMAR_MAX_REPEAT);
        ps->pos++;
    }
    if (ps->pos == at) return perr(ps, at, "expected a number in {m,n}");
    *v = (uint32_t)x;
    return CG_OK;
}

static cg_status parse_sequence(parser *ps, uint32_t rule, evec *out, bool nested) {
    cg_status st;
    uint32_t last_start = UINT32_MAX;   // where the last atom began (for repetition)
    while (ps->pos < ps->n) {
        char c = ps->s[ps->pos];
        size_t at = ps->pos;
        if (c == '"') {
            ps->pos++;
            last_start = out->n;
            while (ps->pos < ps->n && ps->s[ps->pos] != '"') {
                if (ps->s[ps->pos] == '\n') return perr(ps, ps->pos, "newline inside a literal (write \\n)");
                uint32_t cp;
                if ((st = parse_char(ps, &cp)) || (st = push(ps, out, GE_CHAR, cp))) return st;
            }
            if (ps->pos >= ps->n) return perr(ps, at, "unterminated literal");
            ps->pos++;
            if (out->n == last_start) last_start = UINT32_MAX;   // "" is empty: nothing to repeat
        } else if (c == '[') {
            ps->pos++;
            last_start = out->n;
            uint32_t type = GE_CHAR;
            if (ps->pos < ps->n && ps->s[ps->pos] == '^') { type = GE_CHAR_NOT; ps->pos++; }
            bool first = true;
            while (ps->pos < ps->n && ps->s[ps->pos] != ']') {
                uint32_t lo;
                if ((st = parse_char(ps, &lo)) || (st = push(ps, out, first ? type : GE_CHAR_ALT, lo))) return st;
                first = false;
                if (ps->pos + 1 < ps->n && ps->s[ps->pos] == '-' && ps->s[ps->pos + 1] != ']') {
                    ps->pos++;
                    uint32_t hi;
                    size_t at_hi = ps->pos;
                    if ((st = parse_char(ps, &hi))) return st;
                    if (hi < lo) return perr(ps, at_hi, "character range upper bound below its lower bound");
                    if ((st = push(ps, out, GE_CHAR_RNG_UPPER, hi))) return st;
                }
            }
            if (ps->pos >= ps->n) return perr(ps, at, "unterminated character class");
            if (first) return perr(ps, at, "empty character class");
            ps->pos++;
        } else if (is_name_char(c)) {
            size_t b = ps->pos;
            while (ps->pos < ps->n && is_name_char(ps->s[ps->pos])) ps->pos++;
            uint32_t id;
            if ((st = symbol(ps, ps->s + b, ps->pos - b, &id))) return st;
            if (ps->syms[id].first_ref == SIZE_MAX) ps->syms[id].first_ref = b;
            last_start = out->n;
            if ((st = push(ps, out, GE_RULE_REF, id))) return st;
        } else if (c == '(') {
            ps->pos++;
            skip_space(ps, true);
            uint32_t sub;
            if ((st = gen_symbol(ps, rule, &sub))) return st;
            evec body = {0};
            st = parse_alternates(ps, rule, &body, true);
            ps->syms[sub].body = body;   // the symbol table may have moved: index again
            if (st) return st;
            if (ps->pos >= ps->n || ps->s[ps->pos] != ')') return perr(ps, at, "expected ')' to close this group");
            ps->pos++;
            last_start = out->n;
            if ((st = push(ps, out, GE_RULE_REF, sub))) return st;
        } else if (c == '.') {
            ps->pos++;
            last_start = out->n;
            if ((st = push(ps, out, GE_CHAR_ANY, 0))) return st;
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (last_start == UINT32_MAX) return perr(ps, at, "repetition operator without anything before it");
            ps->pos++;
            uint32_t min = 0, max = UINT32_MAX;
            if (c == '+') min = 1;
            else if (c == '?') max = 1;
            else if (c == '{') {
                skip_space(ps, false);
                if (ps->pos < ps->n && ps->s[ps->pos] == ',') min = 0;
                else if ((st = parse_uint(ps, &min))) return st;
                skip_space(ps, false);
                if (ps->pos < ps->n && ps->s[ps->pos] == ',') {
                    ps->pos++;
                    skip_space(ps, false);
                    if (ps->pos < ps->n && ps->s[ps->pos] != '}' && (st = parse_uint(ps, &max))) return st;
                } else {
                    max = min;
                }
                skip_space(ps, false);
                if (ps->pos >= ps->n || ps->s[ps->pos] != '}') return perr(ps, at, "expected '}' to close {m,n}");
                ps->pos++;
                if (max < min) return perr(ps, at, "{m,n} with n < m");
            }
            if ((st = repeat(ps, rule, out, last_start, min, max))) return st;
            last_start = UINT32_MAX;   // x** is not allowed
        } else {
            break;
        }
        skip_space(ps, nested);
    }
    return CG_OK;
}

static cg_status parse_alternates(parser *ps, uint32_t rule, evec *out, bool nested) {
    cg_status st;
    if ((st = parse_sequence(ps, rule, out, nested))) return st;
    while (ps->pos < ps->n && ps->s[ps->pos] == '|') {
        ps->pos++;
        if ((st = push(ps, out, GE_ALT, 0))) return st;
        skip_space(ps, true);
        if ((st = parse_sequence(ps, rule, out, nested))) return st;
    }
    return push(ps, out, GE_END, 0);
}

static cg_status parse_rule(parser *ps) {
    cg_status st;
    size_t at = ps->pos;
    while (ps->pos < ps->n && is_name_char(ps->s[ps->pos])) ps->pos++;
    if (ps->pos == at) return perr(ps, at, "expected a rule name");
    uint32_t id;
    if ((st = symbol(ps, ps->s + at, ps->pos - at, &id))) return st;
    if (ps->syms[id].defined) return perr(ps, at, "rule defined twice");
    ps->syms[id].defined = true;
    ps->syms[id].def_at = at;
    skip_space(ps, false);
    if (ps->pos + 3 > ps->n || memcmp(ps->s + ps->pos, "::=", 3) != 0) return perr(ps, ps->pos, "expected '::='");
    ps->pos += 3;
    skip_space(ps, true);
    evec body = {0};
    st = parse_alternates(ps, id, &body, false);
    ps->syms[id].body = body;
    if (st) return st;
    if (ps->pos < ps->n && ps->s[ps->pos] != '\n' && ps->s[ps->pos] != '\r')
        return perr(ps, ps->pos, "unexpected character (expected the end of the rule)");
    skip_space(ps, true);
    return CG_OK;
}

// ---- checks -----------------------------------------------------------------------------------------
static cg_status check_left_recursion(parser *ps, cg_err *err) {
    cg_status st = CG_OK;
    uint32_t n = ps->n_syms;
    bool *nullable = calloc(n, sizeof *nullable);
    uint8_t *color = calloc(n, 1);
    uint32_t *path = malloc((size_t)n * sizeof *path);
    uint32_t *iter = malloc((size_t)n * sizeof *iter);
    uint32_t (*edges)[2] = NULL, *first = NULL;
    uint32_t n_edges = 0, cap_edges = 0;
    if (!nullable || !color || !path || !iter) { st = cg_err_set(err, CG_ERR_NOMEM, "grammar: out of memory"); goto done; }
    // nullable: fixpoint over "some alternative whose elements are all nullable references"
    for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t r = 0; r < n; r++) {
            if (nullable[r]) continue;
            const evec *b = &ps->syms[r].body;
            bool alt_ok = true;
            for (uint32_t i = 0; i < b->n; i++) {
                uint32_t t = b->p[i].type;
                if (t == GE_ALT || t == GE_END) {
                    if (alt_ok) { nullable[r] = true; changed = true; break; }
                    alt_ok = true;
                } else if (t == GE_RULE_REF) {
                    alt_ok &= nullable[b->p[i].value];
                } else if (gelem_is_char(t)) {
                    alt_ok = false;
                }
            }
        }
    }
    // leftmost-reference edges: r -> q when q can be the first thing r matches
    for (uint32_t r = 0; r < n; r++) {
        const evec *b = &ps->syms[r].body;
        bool blocked = false;
        for (uint32_t i = 0; i < b->n; i++) {
            uint32_t t = b->p[i].type;
            if (t == GE_ALT || t == GE_END) { blocked = false; continue; }
            if (blocked) continue;
            if (gelem_is_char(t)) { blocked = true; continue; }
            if (t == GE_RULE_REF) {
                if (n_edges == cap_edges) {
                    cap_edges = cap_edges ? cap_edges * 2 : 64;
                    uint32_t (*e)[2] = realloc(edges, (size_t)cap_edges * sizeof *edges);
                    if (!e) { st = cg_err_set(err, CG_ERR_NOMEM, "grammar: out of memory"); goto done; }
                    edges = e;
                }
                edges[n_edges][0] = r;
                edges[n_edges][1] = b->p[i].value;
                n_edges++;
                if (!nullable[b->p[i].value]) blocked = true;
            }
        }
    }
    // edges are grouped by source (built in order of r): first edge index per rule
    first = malloc(((size_t)n + 1) * sizeof *first);
    if (!first) { st = cg_err_set(err, CG_ERR_NOMEM, "grammar: out of memory"); goto done; }
    for (uint32_t r = 0, e = 0; r <= n; r++) {
        while (e < n_edges && edges[e][0] < r) e++;
        first[r] = e;
    }
    // iterative DFS; reaching a rule on the current path (color 1) is left recursion
    for (uint32_t start = 0; start < n; start++) {
        if (color[start]) continue;
        uint32_t depth = 0;
        path[depth] = start;
        iter[depth] = first[start];
        color[start] = 1;
        depth++;
        while (depth) {
            uint32_t r = path[depth - 1];
            if (iter[depth - 1] >= first[r + 1]) {
                color[r] = 2;
                depth--;
                continue;
            }
            uint32_t next = edges[iter[depth - 1]++][1];
            if (color[next] == 1) {
                char chain[400];
                size_t len = 0;
                uint32_t k = 0;
                while (path[k] != next) k++;
                for (; k < depth && len < sizeof chain - 80; k++)
                    len += (size_t)snprintf(chain + len, sizeof chain - len, "%s -> ", ps->syms[path[k]].name);
                snprintf(chain + len, sizeof chain - len, "%s", ps->syms[next].name);
                size_t l, c;
                line_col(ps, ps->syms[next].def_at, &l, &c);
                st = cg_err_set(err, CG_ERR_FORMAT,
                                "grammar: line %zu, column %zu: left recursion: rule '%s' can reach itself without "
                                "consuming input (%s)",
                                l, c, ps->syms[next].name, chain);
                goto done;
            }
            if (color[next] == 0) {
                color[next] = 1;
                path[depth] = next;
                iter[depth] = first[next];
                depth++;
            }
        }
    }
done:
    free(nullable);
    free(color);
    free(path);
    free(iter);
    free(edges);
    free(first);
    return st;
}

void cg_grammar_free(cg_grammar *g) {
    if (!g) return;
    free(g->el);
    free(g->rule_off);
    free(g->rem);
    free(g);
}

size_t cg_grammar_n_rules(const cg_grammar *g) { return g->n_rules; }

cg_status cg_grammar_parse(const char *src, size_t n, const char *root, cg_grammar **out, cg_err *err) {
    cg_status st = CG_OK;
    cg_grammar *g = NULL;
    parser ps = {.s = src, .n = n, .err = err};
    if (n > CG_GRAMMAR_MAX_SOURCE)
        return cg_err_set(err, CG_ERR_LIMIT, "grammar: source of %zu bytes (at most %u)", n, CG_GRAMMAR_MAX_SOURCE);
    if (!root) root = "root";
    skip_space(&ps, true);
    while (ps.pos < ps.n)
        if ((st = parse_rule(&ps))) goto done;
    uint32_t root_id = UINT32_MAX;
    for (uint32_t i = 0; i < ps.n_syms; i++) {
        if (!ps.syms[i].defined) {
            size_t l, c;
            line_col(&ps, ps.syms[i].first_ref, &l, &c);
            st = cg_err_set(err, CG_ERR_FORMAT, "grammar: line %zu, column %zu: undefined rule '%s'", l, c,
                            ps.syms[i].name);
            goto done;
        }
        if (strcmp(ps.syms[i].name, root) == 0) root_id = i;
    }
    if (root_id == UINT32_MAX) {
        st = cg_err_set(err, CG_ERR_FORMAT, "grammar: line 1, column 1: no '%s' rule", root);
        goto done;
    }
    if ((st = check_left_recursion(&ps, err))) goto done;
    g = calloc(1, sizeof *g);
    if (!g) { st = cg_err_set(err, CG_ERR_NOMEM, "grammar: out of memory"); goto done; }
    uint64_t total = 0;
    for (uint32_t i = 0; i < ps.n_syms; i++) total += ps.syms[i].body.n;
    g->el = malloc((size_t)(total ? total : 1) * sizeof *g->el);
    g->rule_off = malloc((size_t)ps.n_syms * sizeof *g->rule_off);
    if (!g->el || !g->rule_off) { st = cg_err_set(err, CG_ERR_NOMEM, "grammar: out of memory"); goto done; }
    for (uint32_t i = 0; i < ps.n_syms; i++) {
        g->rule_off[i] = g->n_el;
        memcpy(g->el + g->n_el, ps.syms[i].body.p, (size_t)ps.syms[i].body.n * sizeof *g->el);
        g->n_el += ps.syms[i].body.n;
    }
    g->n_rules = ps.n_syms;
    g->root = root_id;
    if (!cg_grammar_compute_dist(g)) st = cg_err_set(err, CG_ERR_NOMEM, "grammar: out of memory");
done:
    for (uint32_t i = 0; i < ps.n_syms; i++) {
        free(ps.syms[i].name);
        free(ps.syms[i].body.p);
    }
    free(ps.syms);
    free(ps.htab);
    if (st) {
        cg_grammar_free(g);
        return st;
    }
    *out = g;
    return CG_OK;
}
