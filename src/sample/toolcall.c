// toolcall.c — incremental tool-call parsing per format, and tool-call grammars.
//
// The parser keeps every byte fed in `buf`; `pos` is the first byte not yet decided. Decisions only
// depend on buf[pos..] and on whether the output is final, never on chunk boundaries, which is what
// makes streamed and one-shot parses identical. In content mode the earliest start marker is looked
// for; bytes before it are content, and a suffix that could still begin a marker is held back. In
// call mode a format-specific function decides: complete (consume, record calls), incomplete (wait),
// or not a call (the bytes become content).
//
// With streamed arguments, a call in the {"name": …, "arguments": {…}} shape switches to M_STREAM as
// soon as the '{' of its arguments is in the buffer: the normaliser (jnorm) consumes those bytes one
// at a time into open_args, which only grows; when the object closes (or breaks off, or the output
// ends) it is healed and becomes calls[n_calls], and M_TAIL drops the markup after it (M_NEXT reads
// the next element of a GENERIC list). Every decision is still a function of buf[pos..] and `final`
// alone, so streamed and one-shot parses give the same calls and content.
#include "sample/toolcall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample/schema.h"
#include "tok/jval.h"

typedef cg_jval sj;   // a parsed JSON value (owned by whoever parsed it, borrowed below)

// Member `key` of an object, or NULL (also when o is not an object).
static const sj *sj_get(const sj *o, const char *key) {
    return o && o->kind == CG_JV_DICT ? cg_jval_dict_getn(o, key, strlen(key)) : NULL;
}

// Compact JSON of v (keys in the model's order, UTF-8 kept); false for a number JSON cannot hold
// (1e999 parses to infinity) or out of memory.
static bool write_json(cg_buf *b, const sj *v) {
    static const cg_jval_dump_opts COMPACT = {.indent = -1, .item_sep = ",", .key_sep = ":", .finite_only = true};
    return cg_jval_dump(v, &COMPACT, b, NULL) == CG_OK;
}

// s[0..n) as a JSON string literal.
static void write_str(cg_buf *b, const char *s, size_t n) {
    cg_jval *v = cg_jval_str(s, n);
    if (!v || !write_json(b, v)) b->failed = true;   // out of memory: sticky, like any append
    cg_jval_unref(v);
}

static bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

typedef enum mode { M_CONTENT, M_MARKER, M_WHOLE, M_STREAM, M_TAIL, M_NEXT } mode;
typedef enum verdict { V_COMPLETE, V_INCOMPLETE, V_INVALID } verdict;

// ---- streamed arguments: an incremental JSON normaliser -------------------------------------------------
// Reads the model's argument object a byte at a time and appends, as soon as they are certain, the
// bytes of its compact form: whitespace outside strings dropped, everything else verbatim except raw
// control bytes in strings (written as \u00XX). What it appended so far can always be completed into
// valid JSON (jn_heal): a ',' and an object key with its ':' are held until the member's value
// begins, and an escape, a number or a literal until it is complete — so a cut never leaves a key
// without its value (the member is dropped) and only an open string value, array or object has to be
// closed.
#define JN_MAX_DEPTH 64
#define JN_MAX_HOLD 64
typedef enum jst { J_VALUE, J_ARR_FIRST, J_OBJ_FIRST, J_OBJ_KEY, J_COLON, J_AFTER, J_STR, J_ESC, J_UHEX, J_NUM, J_LIT, J_DONE } jst;

typedef struct jnorm {
    jst st;
    char stack[JN_MAX_DEPTH];   // '{' or '[' per open container
    unsigned depth;
    bool key;                   // the string being read is an object key (written to kbuf)
    bool comma;                 // a ',' not written yet
    bool have_key;              // kbuf holds a complete key whose ':' was read; the value is due
    cg_buf kbuf;                // the key being read or held, with its quotes (owned)
    char hold[JN_MAX_HOLD];     // escape, number or literal bytes not written yet
    unsigned n_hold;
    const char *lit;            // J_LIT: "true", "false" or "null"
} jnorm;

static void jn_init(jnorm *j) {
    cg_buf kb = j->kbuf;
    memset(j, 0, sizeof *j);
    j->kbuf = kb;
    cg_buf_reset(&j->kbuf);
}

// A value begins: writes the held ',' and key.
static void jn_pend(jnorm *j, cg_buf *out) {
    if (j->comma) cg_buf_putc(out, ',');
    if (j->have_key) {
        cg_buf_append(out, j->kbuf.data, j->kbuf.len);
        cg_buf_putc(out, ':');
    }
    j->comma = j->have_key = false;
}

static jst jn_after(const jnorm *j) { return j->depth ? J_AFTER : J_DONE; }

// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
static bool jn_number_ok(const char *s, size_t n) {
    size_t i = 0;
    if (i < n && s[i] == '-') i++;
    if (i < n && s[i] == '0') i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9') while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    else return false;
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return false;
    }
    return i == n;
}

static bool jn_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// One byte of input; false when it cannot continue valid JSON (nothing is written then).
static bool jn_byte(jnorm *j, char c, cg_buf *out) {
    cg_buf *w = j->key ? &j->kbuf : out;   // where string bytes go
    switch (j->st) {
    case J_STR:
        if (c == '"') {
            cg_buf_putc(w, '"');
            j->st = j->key ? J_COLON : jn_after(j);
        } else if (c == '\\') {
            j->hold[0] = c;
            j->n_hold = 1;
            j->st = J_ESC;
        } else if ((unsigned char)c < 0x20) {
            cg_buf_printf(w, "\\u%04x", (unsigned)(unsigned char)c);
        } else {
            cg_buf_putc(w, c);
        }
        return true;
    case J_ESC:
        if (c == 'u') {
            j->hold[j->n_hold++] = c;
            j->st = J_UHEX;
            return true;
        }
        if (!c || !strchr("\"\\/bfnrt", c)) return false;
        cg_buf_putc(w, '\\');
        cg_buf_putc(w, c);
        j->n_hold = 0;
        j->st = J_STR;
        return true;
    case J_UHEX:
        if (!jn_hex(c)) return false;
        j->hold[j->n_hold++] = c;
        if (j->n_hold == 6) {
            cg_buf_append(w, j->hold, 6);
            j->n_hold = 0;
            j->st = J_STR;
        }
        return true;
    case J_NUM:
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
            if (j->n_hold == JN_MAX_HOLD) return false;
            j->hold[j->n_hold++] = c;
            return true;
        }
        if (!jn_number_ok(j->hold, j->n_hold)) return false;
        jn_pend(j, out);
        cg_buf_append(out, j->hold, j->n_hold);
        j->n_hold = 0;
        j->st = jn_after(j);
        return j->st == J_DONE ? false : jn_byte(j, c, out);
    case J_LIT:
        if (c != j->lit[j->n_hold]) return false;
        j->hold[j->n_hold++] = c;
        if (!j->lit[j->n_hold]) {
            jn_pend(j, out);
            cg_buf_append(out, j->hold, j->n_hold);
            j->n_hold = 0;
            j->st = jn_after(j);
        }
        return true;
    case J_DONE: return false;
    default: break;
    }
    if (is_ws(c)) return true;
    switch (j->st) {
    case J_COLON:
        if (c != ':') return false;
        j->key = false;
        j->have_key = true;
        j->st = J_VALUE;
        return true;
    case J_OBJ_FIRST:
    case J_OBJ_KEY:
        if (c == '}' && j->st == J_OBJ_FIRST) {
            cg_buf_putc(out, '}');
            j->depth--;
            j->st = jn_after(j);
            return true;
        }
        if (c != '"') return false;
        cg_buf_reset(&j->kbuf);
        cg_buf_putc(&j->kbuf, '"');
        j->key = true;
        j->st = J_STR;
        return true;
    case J_AFTER: {
        char top = j->stack[j->depth - 1];
        if (c == ',') {
            j->comma = true;
            j->st = top == '{' ? J_OBJ_KEY : J_VALUE;
            return true;
        }
        if (c != (top == '{' ? '}' : ']')) return false;
        cg_buf_putc(out, c);
        j->depth--;
        j->st = jn_after(j);
        return true;
    }
    case J_ARR_FIRST:
        if (c == ']') {
            cg_buf_putc(out, ']');
            j->depth--;
            j->st = jn_after(j);
            return true;
        }
        break;
    default: break;
    }
    // a value begins (J_VALUE, or J_ARR_FIRST with an element)
    if (c == '{' || c == '[') {
        if (j->depth == JN_MAX_DEPTH) return false;
        jn_pend(j, out);
        cg_buf_putc(out, c);
        j->stack[j->depth++] = c;
        j->st = c == '{' ? J_OBJ_FIRST : J_ARR_FIRST;
        return true;
    }
    if (c == '"') {
        jn_pend(j, out);
        cg_buf_putc(out, '"');
        j->key = false;
        j->st = J_STR;
        return true;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        j->hold[0] = c;
        j->n_hold = 1;
        j->st = J_NUM;
        return true;
    }
    j->lit = c == 't' ? "true" : c == 'f' ? "false" : c == 'n' ? "null" : NULL;
    if (!j->lit) return false;
    j->hold[0] = c;
    j->n_hold = 1;
    j->st = J_LIT;
    return true;
}

// Completes what was written into valid JSON: closes an open string value, writes a complete number
// that was held, drops a held ',' or a key whose value never began, closes every open container.
static void jn_heal(jnorm *j, cg_buf *out) {
    bool in_value_str = (j->st == J_STR || j->st == J_ESC || j->st == J_UHEX) && !j->key;
    if (in_value_str) cg_buf_putc(out, '"');   // a held escape is dropped
    if (j->st == J_NUM && jn_number_ok(j->hold, j->n_hold)) {
        jn_pend(j, out);
        cg_buf_append(out, j->hold, j->n_hold);
    }
    j->comma = j->have_key = j->key = false;
    j->n_hold = 0;
    while (j->depth) cg_buf_putc(out, j->stack[--j->depth] == '{' ? '}' : ']');
    j->st = J_DONE;
}

struct cg_toolcall_parser {
    cg_toolcall_format fmt;
    cg_buf buf;
    size_t pos;
    mode mode;
    int marker;            // which marker started M_MARKER
    bool skip_ws;          // drop whitespace (right after a call)
    bool at_start;         // nothing decided yet (JSON-at-start formats)
    bool finished;
    cg_toolcall *calls;
    size_t n_calls, cap_calls;
    bool stream;           // stream arguments (cg_toolcall_parser_stream_args)
    size_t max_calls;      // 0: no limit
    bool list;             // GENERIC {"tool_calls": [...]}: another streamed call may follow
    char *open_name;       // M_STREAM: the call being streamed (owned) and its arguments so far
    cg_buf open_args;
    jnorm jn;
};

static const char *const MARKERS[CG_TOOLCALL_FORMAT_COUNT_][2] = {
    [CG_TOOLCALL_HERMES] = {"<tool_call>", NULL},
    [CG_TOOLCALL_LLAMA3] = {"<|python_tag|>", NULL},
    [CG_TOOLCALL_MISTRAL] = {"[TOOL_CALLS]", NULL},
    [CG_TOOLCALL_GENERIC] = {NULL, NULL},
};

cg_status cg_toolcall_parser_new(cg_toolcall_format fmt, cg_toolcall_parser **out, cg_err *err) {
    if ((unsigned)fmt >= CG_TOOLCALL_FORMAT_COUNT_)
        return cg_err_set(err, CG_ERR_INVALID, "toolcall: unknown format %d", (int)fmt);
    cg_toolcall_parser *p = calloc(1, sizeof *p);
    if (!p) return cg_err_set(err, CG_ERR_NOMEM, "toolcall: out of memory");
    p->fmt = fmt;
    p->at_start = true;
    cg_buf_init(&p->buf);
    cg_buf_init(&p->open_args);
    cg_buf_init(&p->jn.kbuf);
    *out = p;
    return CG_OK;
}

void cg_toolcall_parser_free(cg_toolcall_parser *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_calls; i++) {
        free(p->calls[i].name);
        free(p->calls[i].arguments);
        free(p->calls[i].id);
    }
    free(p->calls);
    cg_buf_free(&p->buf);
    free(p->open_name);
    cg_buf_free(&p->open_args);
    cg_buf_free(&p->jn.kbuf);
    free(p);
}

size_t cg_toolcall_parser_n_calls(const cg_toolcall_parser *p) { return p->n_calls; }

static bool limit_reached(const cg_toolcall_parser *p) { return p->max_calls && p->n_calls >= p->max_calls; }

cg_status cg_toolcall_parser_stream_args(cg_toolcall_parser *p, bool on, cg_err *err) {
    if (p->buf.data) return cg_err_set(err, CG_ERR_STATE, "toolcall: stream_args after the first feed");
    p->stream = on;
    return CG_OK;
}

cg_status cg_toolcall_parser_set_max_calls(cg_toolcall_parser *p, size_t max_calls, cg_err *err) {
    if (p->buf.data) return cg_err_set(err, CG_ERR_STATE, "toolcall: set_max_calls after the first feed");
    p->max_calls = max_calls;
    return CG_OK;
}

bool cg_toolcall_parser_done(const cg_toolcall_parser *p) { return limit_reached(p); }

bool cg_toolcall_parser_open_call(const cg_toolcall_parser *p, const char **name, const char **args, size_t *n_args) {
    if (p->mode != M_STREAM || !p->open_name) return false;
    *name = p->open_name;
    *args = p->open_args.data ? p->open_args.data : "";
    *n_args = p->open_args.len;
    return true;
}
const cg_toolcall *cg_toolcall_parser_call(const cg_toolcall_parser *p, size_t i) {
    return i < p->n_calls ? &p->calls[i] : NULL;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

// ---- building calls ----------------------------------------------------------------------------------
typedef struct pending { cg_toolcall c[16]; size_t n; bool nomem; } pending;

static void pending_free(pending *pd) {
    for (size_t i = 0; i < pd->n; i++) {
        free(pd->c[i].name);
        free(pd->c[i].arguments);
        free(pd->c[i].id);
    }
    pd->n = 0;
}

// Adds a call with the given name and arguments value (an object, or a string holding JSON).
static bool add_call(pending *pd, const char *name, size_t name_len, const sj *args, const sj *id) {
    if (pd->n == sizeof pd->c / sizeof *pd->c || name_len == 0) return false;
    cg_buf a;
    cg_buf_init(&a);
    bool written = true;
    if (!args) {
        cg_buf_puts(&a, "{}");
    } else if (args->kind == CG_JV_STR) {
        // some models send the arguments as a JSON string: unwrap it when it holds an object
        cg_jval *inner = NULL;
        if (cg_jval_parse(args->u.s.p, args->u.s.n, 0, &inner, NULL) == CG_OK && inner->kind == CG_JV_DICT)
            written = write_json(&a, inner);
        else
            written = write_json(&a, args);
        cg_jval_unref(inner);
    } else {
        written = write_json(&a, args);
    }
    if (!written && cg_buf_ok(&a)) {   // a number beyond a double: not a call we can pass on
        cg_buf_free(&a);
        return false;
    }
    bool has_id = id && id->kind == CG_JV_STR;
    cg_toolcall c = {dup_n(name, name_len), dup_n(a.data ? a.data : "", a.len), NULL};
    if (has_id) c.id = dup_n(id->u.s.p, id->u.s.n);
    bool ok = c.name && c.arguments && (!has_id || c.id) && cg_buf_ok(&a);
    cg_buf_free(&a);
    if (!ok) {
        free(c.name);
        free(c.arguments);
        free(c.id);
        pd->nomem = true;
        return false;
    }
    pd->c[pd->n++] = c;
    return true;
}

static bool valid_name(const char *s, size_t n) {
    if (n == 0 || n > 256) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

// {"name": "...", "arguments"|"parameters": {...}, "id"?: "..."}
static bool call_from_obj(pending *pd, const sj *o) {
    if (!o || o->kind != CG_JV_DICT) return false;
    const sj *name = sj_get(o, "name");
    const sj *args = sj_get(o, "arguments");
    if (!args) args = sj_get(o, "parameters");
    if (!name || name->kind != CG_JV_STR || !valid_name(name->u.s.p, name->u.s.n)) return false;
    if (args && args->kind != CG_JV_DICT && args->kind != CG_JV_STR) return false;
    static const char *const KNOWN[] = {"name", "arguments", "parameters", "id", "type"};
    for (size_t i = 0; i < o->u.dict.n; i++) {   // no unknown members: a JSON answer that merely has "name" is content
        const sj *k = o->u.dict.keys[i];
        bool known = false;
        for (size_t j = 0; j < sizeof KNOWN / sizeof *KNOWN; j++)
            known |= k->u.s.n == strlen(KNOWN[j]) && memcmp(k->u.s.p, KNOWN[j], k->u.s.n) == 0;
        if (!known) return false;
    }
    return add_call(pd, name->u.s.p, name->u.s.n, args, sj_get(o, "id"));
}

// Parses one JSON value at s[0..n) into *v (owned by the caller): 1 ok, 0 truncated (needs more
// input), -1 invalid, -2 out of memory.
static int json_at(const char *s, size_t n, sj **v, size_t *end) {
    size_t i = 0;
    while (i < n && is_ws(s[i])) i++;
    if (i == n) return 0;
    bool truncated;
    cg_status st = cg_jval_parse_prefix(s, n, 0, v, end, &truncated, NULL);
    if (st == CG_OK) return 1;
    if (st == CG_ERR_NOMEM) return -2;
    return truncated ? 0 : -1;
}

// Python-style `fn.call(k="v", n=3)` (Llama 3.1 built-in tools) → a call named fn.
static bool python_call(pending *pd, const char *s, size_t n) {
    size_t i = 0;
    while (i < n && is_ws(s[i])) i++;
    size_t name_at = i;
    while (i < n && valid_name(s + i, 1) && s[i] != '.') i++;
    size_t name_len = i - name_at;
    if (name_len == 0 || n - i < 6 || memcmp(s + i, ".call(", 6) != 0) return false;
    i += 6;
    cg_buf a;
    cg_buf_init(&a);
    cg_buf_putc(&a, '{');
    bool ok = true, first = true;
    while (ok) {
        while (i < n && is_ws(s[i])) i++;
        if (i < n && s[i] == ')') { i++; break; }
        if (!first) {
            if (i < n && s[i] == ',') i++;
            else { ok = false; break; }
            while (i < n && is_ws(s[i])) i++;
        }
        size_t k = i;
        while (i < n && (valid_name(s + i, 1) && s[i] != '.' && s[i] != '-')) i++;
        if (i == k || i >= n || s[i] != '=') { ok = false; break; }
        if (!first) cg_buf_putc(&a, ',');
        write_str(&a, s + k, i - k);
        cg_buf_putc(&a, ':');
        i++;
        if (i < n && (s[i] == '"' || s[i] == '\'')) {
            char q = s[i++];
            cg_buf str;
            cg_buf_init(&str);
            while (i < n && s[i] != q) {
                if (s[i] == '\\' && i + 1 < n) i++;
                cg_buf_putc(&str, s[i++]);
            }
            if (i >= n) { ok = false; cg_buf_free(&str); break; }
            i++;
            write_str(&a, str.data ? str.data : "", str.len);
            cg_buf_free(&str);
        } else {
            size_t v = i;
            while (i < n && s[i] != ',' && s[i] != ')' && !is_ws(s[i])) i++;
            size_t vl = i - v;
            if (vl == 4 && !memcmp(s + v, "True", 4)) cg_buf_puts(&a, "true");
            else if (vl == 5 && !memcmp(s + v, "False", 5)) cg_buf_puts(&a, "false");
            else if (vl == 4 && !memcmp(s + v, "None", 4)) cg_buf_puts(&a, "null");
            else {
                cg_jval *num = NULL;
                ok = vl > 0 && cg_jval_parse(s + v, vl, 0, &num, NULL) == CG_OK &&
                     (num->kind == CG_JV_INT || num->kind == CG_JV_FLOAT);
                if (ok) cg_buf_append(&a, s + v, vl);
                cg_jval_unref(num);
            }
        }
        first = false;
    }
    while (ok && i < n && is_ws(s[i])) i++;
    ok = ok && i == n;
    cg_buf_putc(&a, '}');
    if (ok) {
        cg_jval *args = NULL;
        ok = cg_jval_parse(a.data, a.len, 0, &args, NULL) == CG_OK && add_call(pd, s + name_at, name_len, args, NULL);
        cg_jval_unref(args);
    }
    cg_buf_free(&a);
    return ok;
}

// ---- per-format decisions -----------------------------------------------------------------------------
// s[0..n) starts at the marker (M_MARKER) or at the first byte of the output (M_WHOLE).
static verdict decide(cg_toolcall_parser *p, const char *s, size_t n, bool final, pending *pd, size_t *used,
                      cg_buf *content) {
    verdict v = V_INVALID;
    sj *val = NULL, *args = NULL;   // owned here, released at the end
    size_t end;
    if (p->mode == M_WHOLE) {
        *used = n;
        if (!final) { v = V_INCOMPLETE; goto done; }
        if (cg_jval_parse(s, n, 0, &val, NULL) != CG_OK) goto done;
        if (p->fmt == CG_TOOLCALL_LLAMA3) {
            if (call_from_obj(pd, val)) v = V_COMPLETE;
        } else {   // generic
            const sj *one = sj_get(val, "tool_call"), *many = sj_get(val, "tool_calls"), *resp = sj_get(val, "response");
            bool single = val->kind == CG_JV_DICT && val->u.dict.n == 1;
            if (single && resp && resp->kind == CG_JV_STR) {
                cg_buf_append(content, resp->u.s.p, resp->u.s.n);   // a plain answer in the generic envelope
                v = V_COMPLETE;
            } else if (single && one && call_from_obj(pd, one)) v = V_COMPLETE;
            else if (single && many && many->kind == CG_JV_LIST && many->u.list.n) {
                bool ok = true;
                for (size_t i = 0; i < many->u.list.n && ok; i++) ok = call_from_obj(pd, many->u.list.items[i]);
                if (ok) v = V_COMPLETE;
                else pending_free(pd);
            }
        }
        goto done;
    }
    const char *marker = MARKERS[p->fmt][p->marker];
    size_t ml = strlen(marker);
    const char *body = s + ml;
    size_t bn = n - ml;
    if (p->fmt == CG_TOOLCALL_HERMES) {
        const char *close = "</tool_call>";
        const char *c = NULL;
        for (size_t i = 0; i + 12 <= bn && !c; i++)
            if (memcmp(body + i, close, 12) == 0) c = body + i;
        if (!c && !final) { v = V_INCOMPLETE; goto done; }
        size_t inner = c ? (size_t)(c - body) : bn;
        *used = c ? ml + inner + 12 : n;
        if (cg_jval_parse(body, inner, 0, &val, NULL) == CG_OK && call_from_obj(pd, val)) v = V_COMPLETE;
        goto done;
    }
    if (p->fmt == CG_TOOLCALL_LLAMA3) {   // <|python_tag|>: the rest of the output
        *used = n;
        if (!final) { v = V_INCOMPLETE; goto done; }
        size_t i = 0;
        while (i < bn && is_ws(body[i])) i++;
        if (i == bn) goto done;
        if (cg_jval_parse(body, bn, 0, &val, NULL) == CG_OK) {
            if (call_from_obj(pd, val)) v = V_COMPLETE;
        } else if (python_call(pd, body, bn)) {
            v = V_COMPLETE;
        } else {
            cg_buf code;
            cg_buf_init(&code);
            cg_buf_puts(&code, "{\"code\":");
            write_str(&code, body + i, bn - i);
            cg_buf_putc(&code, '}');
            if (cg_buf_ok(&code) && cg_jval_parse(code.data, code.len, 0, &args, NULL) == CG_OK &&
                add_call(pd, "python", 6, args, NULL))
                v = V_COMPLETE;
            cg_buf_free(&code);
        }
        goto done;
    }
    // Mistral
    size_t i = 0;
    while (i < bn && is_ws(body[i])) i++;
    *used = ml;   // when invalid: only the marker becomes content, scanning resumes after it
    if (i == bn) { v = final ? V_INVALID : V_INCOMPLETE; goto done; }
    if (body[i] == '[') {
        int r = json_at(body, bn, &val, &end);
        if (r == 0) { v = final ? V_INVALID : V_INCOMPLETE; goto done; }
        if (r < 0 || val->kind != CG_JV_LIST || val->u.list.n == 0) goto done;
        bool ok = true;
        for (size_t k = 0; k < val->u.list.n && ok; k++) ok = call_from_obj(pd, val->u.list.items[k]);
        if (!ok) { pending_free(pd); goto done; }
        *used = ml + end;
        v = V_COMPLETE;
        goto done;
    }
    // name[ARGS]{...}
    size_t name_at = i, k = i;
    while (k < bn && valid_name(body + k, 1)) k++;
    if (k == bn) { v = final || k - name_at > 256 ? V_INVALID : V_INCOMPLETE; goto done; }
    const char *args_tag = "[ARGS]";
    size_t avail = bn - k < 6 ? bn - k : 6;
    if (memcmp(body + k, args_tag, avail) != 0 || k == name_at) goto done;
    if (avail < 6) { v = final ? V_INVALID : V_INCOMPLETE; goto done; }
    int r = json_at(body + k + 6, bn - k - 6, &val, &end);
    if (r == 0) { v = final ? V_INVALID : V_INCOMPLETE; goto done; }
    if (r < 0 || val->kind != CG_JV_DICT) goto done;
    if (!add_call(pd, body + name_at, k - name_at, val, NULL)) goto done;
    *used = ml + k + 6 + end;
    v = V_COMPLETE;
done:
    cg_jval_unref(val);
    cg_jval_unref(args);
    return v;
}

// Longest suffix of s[0..n) that is a proper prefix of a marker of this format.
static size_t holdback(const cg_toolcall_parser *p, const char *s, size_t n) {
    size_t keep = 0;
    for (int m = 0; m < 2; m++) {
        const char *mk = MARKERS[p->fmt][m];
        if (!mk) continue;
        size_t L = strlen(mk);
        for (size_t k = (L - 1 < n ? L - 1 : n); k > keep; k--)
            if (memcmp(s + n - k, mk, k) == 0) { keep = k; break; }
    }
    return keep;
}

// ---- streamed calls -------------------------------------------------------------------------------------
// Skips whitespace at s[*i..n), then matches lit: 1 matched (i moves past it), 0 the input ends inside
// it, -1 something else.
static int pfx_lit(const char *s, size_t n, size_t *i, const char *lit) {
    while (*i < n && is_ws(s[*i])) (*i)++;
    size_t L = strlen(lit), k = 0;
    while (k < L && *i + k < n && s[*i + k] == lit[k]) k++;
    if (k == L) {
        *i += L;
        return 1;
    }
    return *i + k == n ? 0 : -1;
}

// Whether s[0..n) begins a call whose arguments can be streamed: {"name": "NAME", "arguments": { —
// "parameters" too — with whitespace anywhere between. 1: yes (*name_at/*name_len locate NAME, *args_at
// the '{' of the arguments), 0: could still become one, -1: no (the call is parsed whole).
static int stream_prefix(const char *s, size_t n, size_t *name_at, size_t *name_len, size_t *args_at) {
    size_t i = 0;
    int r;
    if ((r = pfx_lit(s, n, &i, "{")) < 1 || (r = pfx_lit(s, n, &i, "\"name\"")) < 1 || (r = pfx_lit(s, n, &i, ":")) < 1 ||
        (r = pfx_lit(s, n, &i, "\"")) < 1)
        return r;
    size_t at = i;
    while (i < n && s[i] != '"') {
        if (!valid_name(s + i, 1) || i - at >= 256) return -1;
        i++;
    }
    if (i == n) return 0;
    if (i == at) return -1;
    *name_at = at;
    *name_len = i - at;
    i++;
    if ((r = pfx_lit(s, n, &i, ",")) < 1) return r;
    size_t j = i;
    int a = pfx_lit(s, n, &i, "\"arguments\"");
    if (a < 1) {
        int b = pfx_lit(s, n, &j, "\"parameters\"");
        if (b == 1) i = j;
        else return a == 0 || b == 0 ? 0 : -1;
    }
    if ((r = pfx_lit(s, n, &i, ":")) < 1) return r;
    while (i < n && is_ws(s[i])) i++;
    if (i == n) return 0;
    if (s[i] != '{') return -1;
    *args_at = i;
    return 1;
}

// GENERIC: {"tool_call": CALL} or {"tool_calls": [CALL, …]}: 1 with *skip at CALL (*list for the
// second), 0 could still be, -1 neither.
static int generic_prefix(const char *s, size_t n, size_t *skip, bool *list) {
    size_t i = 0, j;
    int r = pfx_lit(s, n, &i, "{");
    if (r < 1) return r;
    j = i;
    int a = pfx_lit(s, n, &i, "\"tool_call\""), b = pfx_lit(s, n, &j, "\"tool_calls\"");
    if (a < 1 && b < 1) return a == 0 || b == 0 ? 0 : -1;
    *list = b == 1;
    if (*list) i = j;
    if ((r = pfx_lit(s, n, &i, ":")) < 1 || (*list && (r = pfx_lit(s, n, &i, "[")) < 1)) return r;
    *skip = i;
    return 1;
}

// Appends a call (name and arguments copied); false when out of memory.
static bool push_call(cg_toolcall_parser *p, const char *name, const char *args, size_t n_args) {
    if (p->n_calls == p->cap_calls) {
        size_t cap = p->cap_calls ? p->cap_calls * 2 : 8;
        cg_toolcall *c = realloc(p->calls, cap * sizeof *c);
        if (!c) return false;
        p->calls = c;
        p->cap_calls = cap;
    }
    cg_toolcall c = {strdup(name), dup_n(args ? args : "", n_args), NULL};
    if (!c.name || !c.arguments) {
        free(c.name);
        free(c.arguments);
        return false;
    }
    p->calls[p->n_calls++] = c;
    return true;
}

static cg_status run(cg_toolcall_parser *p, bool final, cg_buf *content, size_t *n_new, cg_err *err) {
    size_t before = p->n_calls;
    *n_new = 0;
    if (!p->buf.data) return CG_OK;   // nothing fed yet
    for (;;) {
        const char *s = p->buf.data + p->pos;
        size_t n = p->buf.len - p->pos;
        if (p->mode == M_CONTENT && limit_reached(p)) {   // at most max_calls: the rest is dropped
            p->pos = p->buf.len;
            break;
        }
        if (p->mode == M_STREAM) {
            size_t i = 0;
            bool bad = false;
            while (i < n && p->jn.st != J_DONE && !bad) {
                if (jn_byte(&p->jn, s[i], &p->open_args)) i++;
                else bad = true;
            }
            p->pos += i;
            if (p->jn.st != J_DONE && !bad && !final) break;
            if (p->jn.st != J_DONE) jn_heal(&p->jn, &p->open_args);   // cut or broken: closed as it stands
            if (!cg_buf_ok(&p->open_args) || !cg_buf_ok(&p->jn.kbuf) ||
                !push_call(p, p->open_name, p->open_args.data, p->open_args.len))
                return cg_err_set(err, CG_ERR_NOMEM, "toolcall: out of memory");
            free(p->open_name);
            p->open_name = NULL;
            cg_buf_reset(&p->open_args);
            p->mode = M_TAIL;
            continue;
        }
        if (p->mode == M_NEXT) {   // GENERIC list: after "}," the next call, or nothing more is taken
            size_t name_at = 0, name_len = 0, args_at = 0;
            int r = limit_reached(p) ? -1 : stream_prefix(s, n, &name_at, &name_len, &args_at);
            if (r == 0 && !final) break;
            if (r == 1) {
                free(p->open_name);
                if (!(p->open_name = dup_n(s + name_at, name_len)))
                    return cg_err_set(err, CG_ERR_NOMEM, "toolcall: out of memory");
                jn_init(&p->jn);
                p->pos += args_at;
                p->mode = M_STREAM;
                continue;
            }
            p->list = false;
            p->mode = M_TAIL;
            continue;
        }
        if (p->mode == M_TAIL && p->list) {   // GENERIC list: "}" then "," (another call) or the end
            size_t i = 0;
            int r = pfx_lit(s, n, &i, "}");
            if (r == 1) r = pfx_lit(s, n, &i, ",");
            if (r == 0 && !final) break;
            if (r == 1) {
                p->pos += i;
                p->mode = M_NEXT;
                continue;
            }
            p->list = false;   // the rest is dropped
        }
        if (p->mode == M_TAIL) {   // the rest of a streamed call's markup (or what followed a broken one)
            if (p->fmt == CG_TOOLCALL_HERMES) {
                const char *close = "</tool_call>";
                size_t at = n;
                for (size_t i = 0; i + 12 <= n && at == n; i++)
                    if (memcmp(s + i, close, 12) == 0) at = i;
                if (at < n) {
                    p->pos += at + 12;
                    p->mode = M_CONTENT;
                    p->skip_ws = true;
                    continue;
                }
                if (!final) {
                    p->pos += n > 11 ? n - 11 : 0;   // keep what could begin the closing tag
                    break;
                }
            }
            p->pos += n;
            if (final) p->mode = M_CONTENT;
            break;
        }
        if (p->stream && ((p->mode == M_MARKER && p->fmt == CG_TOOLCALL_HERMES) ||
                          (p->mode == M_WHOLE && (p->fmt == CG_TOOLCALL_LLAMA3 || p->fmt == CG_TOOLCALL_GENERIC)))) {
            size_t skip = p->mode == M_MARKER ? strlen(MARKERS[p->fmt][p->marker]) : 0;
            size_t name_at = 0, name_len = 0, args_at = 0;
            int r = 1;
            p->list = false;
            if (p->fmt == CG_TOOLCALL_GENERIC) r = generic_prefix(s, n, &skip, &p->list);
            if (r == 1) r = stream_prefix(s + skip, n - skip, &name_at, &name_len, &args_at);
            if (r == 0 && !final) break;   // may still become a streamed call
            if (r == 1) {
                free(p->open_name);
                if (!(p->open_name = dup_n(s + skip + name_at, name_len)))
                    return cg_err_set(err, CG_ERR_NOMEM, "toolcall: out of memory");
                cg_buf_reset(&p->open_args);
                jn_init(&p->jn);
                p->pos += skip + args_at;
                p->mode = M_STREAM;
                continue;
            }
        }
        if (p->mode == M_CONTENT) {
            if (p->skip_ws) {
                size_t i = 0;
                while (i < n && is_ws(s[i])) i++;
                p->pos += i;
                if (i == n) break;
                p->skip_ws = false;
                continue;
            }
            if (p->at_start && (p->fmt == CG_TOOLCALL_LLAMA3 || p->fmt == CG_TOOLCALL_GENERIC)) {
                size_t i = 0;
                while (i < n && is_ws(s[i])) i++;
                if (i == n && !final) break;   // only whitespace so far: undecided
                p->at_start = false;
                if (i < n && s[i] == '{') {
                    p->mode = M_WHOLE;
                    continue;
                }
            }
            p->at_start = false;
            // earliest marker
            size_t best = n;
            int which = -1;
            for (int m = 0; m < 2; m++) {
                const char *mk = MARKERS[p->fmt][m];
                if (!mk) continue;
                size_t L = strlen(mk);
                for (size_t i = 0; i + L <= n && i < best; i++)
                    if (memcmp(s + i, mk, L) == 0) { best = i; which = m; break; }
            }
            if (which >= 0) {
                cg_buf_append(content, s, best);
                p->pos += best;
                p->mode = M_MARKER;
                p->marker = which;
                continue;
            }
            size_t keep = final ? 0 : holdback(p, s, n);
            cg_buf_append(content, s, n - keep);
            p->pos += n - keep;
            break;
        }
        pending pd = {0};
        size_t used = 0;
        verdict v = decide(p, s, n, final, &pd, &used, content);
        if (pd.nomem) {
            pending_free(&pd);
            return cg_err_set(err, CG_ERR_NOMEM, "toolcall: out of memory");
        }
        if (v == V_INCOMPLETE) break;
        if (v == V_INVALID) {
            pending_free(&pd);
            cg_buf_append(content, s, used);
            p->pos += used;
            p->mode = M_CONTENT;
            continue;
        }
        while (p->max_calls && p->n_calls + pd.n > p->max_calls) {   // beyond the limit: dropped
            pd.n--;
            free(pd.c[pd.n].name);
            free(pd.c[pd.n].arguments);
            free(pd.c[pd.n].id);
        }
        if (p->n_calls + pd.n > p->cap_calls) {
            size_t cap = p->cap_calls ? p->cap_calls * 2 : 8;
            while (cap < p->n_calls + pd.n) cap *= 2;
            cg_toolcall *c = realloc(p->calls, cap * sizeof *c);
            if (!c) {
                pending_free(&pd);
                return cg_err_set(err, CG_ERR_NOMEM, "toolcall: out of memory");
            }
            p->calls = c;
            p->cap_calls = cap;
        }
        if (pd.n) memcpy(p->calls + p->n_calls, pd.c, pd.n * sizeof *pd.c);
        p->n_calls += pd.n;
        p->pos += used;
        p->mode = M_CONTENT;
        p->skip_ws = true;
    }
    if (!cg_buf_ok(content) || !cg_buf_ok(&p->buf)) return cg_err_set(err, CG_ERR_NOMEM, "toolcall: out of memory");
    *n_new = p->n_calls - before;
    return CG_OK;
}

cg_status cg_toolcall_parser_feed(cg_toolcall_parser *p, const char *text, size_t n, cg_buf *content, size_t *n_new,
                                  cg_err *err) {
    *n_new = 0;
    if (p->finished) return cg_err_set(err, CG_ERR_STATE, "toolcall: feed after finish");
    cg_buf_append(&p->buf, text, n);
    return run(p, false, content, n_new, err);
}

cg_status cg_toolcall_parser_finish(cg_toolcall_parser *p, cg_buf *content, size_t *n_new, cg_err *err) {
    *n_new = 0;
    if (p->finished) return cg_err_set(err, CG_ERR_STATE, "toolcall: finish called twice");
    p->finished = true;
    cg_buf_append(&p->buf, "", 0);
    if (!p->buf.data) {   // nothing was ever fed
        *n_new = 0;
        return CG_OK;
    }
    return run(p, true, content, n_new, err);
}

// ---- grammars --------------------------------------------------------------------------------------------
cg_status cg_toolcall_grammar(cg_toolcall_format fmt, const cg_tool_def *tools, size_t n_tools, const char *only_name,
                              bool parallel, cg_buf *out, cg_err *err) {
    cg_status st = CG_OK;
    if (n_tools == 0) return cg_err_set(err, CG_ERR_INVALID, "toolcall: no tools to call");
    if ((unsigned)fmt >= CG_TOOLCALL_FORMAT_COUNT_) return cg_err_set(err, CG_ERR_INVALID, "toolcall: unknown format %d", (int)fmt);
    bool found = !only_name;
    for (size_t i = 0; i < n_tools; i++) {
        if (!tools[i].name || !valid_name(tools[i].name, strlen(tools[i].name)))
            return cg_err_set(err, CG_ERR_INVALID, "toolcall: tool %zu has an invalid name '%s'", i,
                              tools[i].name ? tools[i].name : "(null)");
        if (only_name && !strcmp(only_name, tools[i].name)) found = true;
    }
    if (!found) return cg_err_set(err, CG_ERR_INVALID, "toolcall: tool_choice names '%s', which is not among the tools", only_name);
    const char *args_key = fmt == CG_TOOLCALL_LLAMA3 ? "parameters" : "arguments";
    cg_buf calls;
    cg_buf_init(&calls);
    bool first = true;
    for (size_t i = 0; i < n_tools; i++) {
        if (only_name && strcmp(only_name, tools[i].name)) continue;
        char prefix[32];
        snprintf(prefix, sizeof prefix, "t%zu-", i);
        if (tools[i].parameters) {
            if ((st = cg_schema_to_gbnf_rules(tools[i].parameters, tools[i].parameters_len, prefix, out, err))) {
                cg_err_wrap(err, "toolcall: tool '%s' parameters", tools[i].name);
                goto done;
            }
        } else {
            if ((st = cg_schema_to_gbnf_rules("{\"type\":\"object\"}", 17, prefix, out, err))) goto done;
        }
        cg_buf_printf(&calls, "%s\"{\\\"name\\\": \\\"%s\\\", \\\"%s\\\": \" %sroot \"}\"", first ? "" : " | ",
                      tools[i].name, args_key, prefix);
        first = false;
    }
    cg_buf_printf(out, "call ::= %.*s\n", (int)calls.len, calls.data);
    switch (fmt) {
    case CG_TOOLCALL_HERMES:
        cg_buf_puts(out, "one ::= \"<tool_call>\\n\" call \"\\n</tool_call>\"\n");
        cg_buf_printf(out, "root ::= one%s\n", parallel ? " (\"\\n\" one)*" : "");
        break;
    case CG_TOOLCALL_LLAMA3: cg_buf_puts(out, "root ::= call\n"); break;
    case CG_TOOLCALL_MISTRAL:
        cg_buf_printf(out, "root ::= \"[\" call%s \"]\"\n", parallel ? " (\", \" call)*" : "");
        break;
    case CG_TOOLCALL_GENERIC:
        if (parallel) cg_buf_puts(out, "root ::= \"{\\\"tool_calls\\\": [\" call (\", \" call)* \"]}\"\n");
        else cg_buf_puts(out, "root ::= \"{\\\"tool_call\\\": \" call \"}\"\n");
        break;
    default: break;
    }
    if (!cg_buf_ok(out)) st = cg_err_set(err, CG_ERR_NOMEM, "toolcall: out of memory");
done:
    cg_buf_free(&calls);
    return st;
}
