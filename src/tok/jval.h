// jval.h — a small reference-counted JSON-like value (null, bool, int, float, string, list,
// dict with insertion order) used as template data, plus a strict JSON parser and the two
// printers templates need (Python json.dumps and Python str()/repr()).
//
// Ownership: every constructor returns a new reference (or NULL when out of memory); release it
// with cg_jval_unref. Containers own one reference to each element; cg_jval_list_push and
// cg_jval_dict_set *take* the caller's reference to the value (and key) they are given, even on
// failure. Strings are immutable byte strings (UTF-8 when built by the parser or the template
// engine) with an explicit length. Lists and dicts built by the parser are not shared with other
// threads by this module: a value is not thread-safe while anyone mutates it, and refcounts are
// not atomic, so share a finished value between threads only read-only and with external care.
//
// The kinds after CG_JV_DICT are used by the template engine only (Jinja's Undefined, callables
// and namespace objects); the JSON parser never produces them and cg_jval_dump rejects them.
#ifndef CG_TOK_JVAL_H
#define CG_TOK_JVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

typedef enum cg_jval_kind {
    CG_JV_NULL,
    CG_JV_BOOL,
    CG_JV_INT,
    CG_JV_FLOAT,
    CG_JV_STR,
    CG_JV_LIST,
    CG_JV_DICT,
    CG_JV_UNDEF,  // template engine: Jinja's Undefined (name = what was missing, may be NULL)
    CG_JV_FUNC,   // template engine: a callable (data owned through drop)
    CG_JV_NS,     // template engine: namespace() object, a dict that `set ns.x = …` may change
} cg_jval_kind;

typedef struct cg_jval cg_jval;

struct cg_jval {
    int32_t refs;
    uint8_t kind;      // cg_jval_kind
    uint8_t safe;      // STR made by the template engine's |safe / |escape (jinja2 Markup); else 0
    uint8_t tuple;     // LIST that Python would hold as a tuple (printed "(a, b)"); else 0
    uint16_t depth;    // nesting depth of a container when its items were added (0 for scalars)
    uint8_t immortal;  // ref/unref do nothing (template literals shared by concurrent renders)
    union {
        bool b;
        int64_t i;
        double f;
        struct { char *p; size_t n; } s;                       // STR, UNDEF (name)
        struct { cg_jval **items; size_t n, cap; } list;       // LIST
        struct { cg_jval **keys, **vals; size_t n, cap; } dict; // DICT, NS
        struct { void *data; void (*drop)(void *data); int tag; } fn; // FUNC
    } u;
};

cg_jval *cg_jval_null(void);
cg_jval *cg_jval_bool(bool b);
cg_jval *cg_jval_int(int64_t i);
cg_jval *cg_jval_float(double f);
cg_jval *cg_jval_str(const char *p, size_t n);   // copies n bytes
cg_jval *cg_jval_cstr(const char *s);             // copies strlen(s) bytes
cg_jval *cg_jval_str_take(char *p, size_t n);     // takes a malloc'ed buffer of n+1 bytes (NUL at n)
cg_jval *cg_jval_list(void);
cg_jval *cg_jval_dict(void);
cg_jval *cg_jval_undef(const char *name, size_t n); // name may be NULL
cg_jval *cg_jval_func(void *data, void (*drop)(void *), int tag); // on failure drop(data) is called

// Reference counting is not atomic, except that an immortal value is never counted (read-only
// sharing between threads is then safe); cg_jval_make_immortal marks a value (not its items), and
// cg_jval_release_immortal clears the mark and drops the one reference its owner holds.
cg_jval *cg_jval_ref(cg_jval *v);   // returns v; accepts NULL
void     cg_jval_unref(cg_jval *v); // accepts NULL
void     cg_jval_make_immortal(cg_jval *v);
void     cg_jval_release_immortal(cg_jval *v);

// Containers never nest deeper than this (list_push/dict_set refuse), so recursive walks are bounded.
#define CG_JVAL_MAX_DEPTH 1000

// Appends v (reference taken). false when out of memory, the list is too long, or v is nested
// CG_JVAL_MAX_DEPTH deep already.
bool cg_jval_list_push(cg_jval *list, cg_jval *v);
// Sets key → v (both references taken); replaces the value of an equal existing key in place.
// Fails like cg_jval_list_push.
bool cg_jval_dict_set(cg_jval *dict, cg_jval *key, cg_jval *v);
bool cg_jval_dict_set_c(cg_jval *dict, const char *key, cg_jval *v); // key copied
// Borrowed lookups (valid while the container holds the value); NULL when absent.
cg_jval *cg_jval_dict_get(const cg_jval *dict, const cg_jval *key);
cg_jval *cg_jval_dict_getn(const cg_jval *dict, const char *key, size_t n);

// Python-style equality (1 == 1.0, True == 1, containers element-wise).
bool cg_jval_equal(const cg_jval *a, const cg_jval *b);
// Python truthiness (Undefined is false, callables true).
bool cg_jval_truthy(const cg_jval *v);

// Strict JSON (RFC 8259) into a value. Objects with a repeated key, nesting deeper than
// `max_depth` (0 = 128), invalid UTF-8, or trailing bytes are errors: CG_ERR_FORMAT with the byte
// offset in the message; CG_ERR_NOMEM. Integers that fit int64 become INT, other numbers FLOAT.
// max_depth above CG_JVAL_MAX_DEPTH is lowered to it.
cg_status cg_jval_parse(const char *text, size_t n, int max_depth, cg_jval **out, cg_err *err);

// Parses one value at the start of text[0..n) (after optional whitespace); bytes after it are
// allowed and *end is set to the offset just past the value. Same strictness and errors as
// cg_jval_parse. truncated (optional) is set on every return: true when the failure is the input
// ending too early (a proper prefix of a value: more bytes could complete it), false otherwise —
// what a streaming reader needs to tell "wait for more" from "not JSON".
cg_status cg_jval_parse_prefix(const char *text, size_t n, int max_depth, cg_jval **out, size_t *end,
                               bool *truncated, cg_err *err);

// Python json.dumps(v, ensure_ascii=…, indent=…, separators=…, sort_keys=…).
// indent < 0 means None; indent_str (may be NULL) overrides it with a string indent.
// item_sep/key_sep NULL mean Python's defaults (", " / ": ", or "," with an indent).
typedef struct cg_jval_dump_opts {
    int indent;
    const char *indent_str;
    const char *item_sep, *key_sep;
    bool sort_keys;
    bool ensure_ascii;  // escape non-ASCII as \uXXXX (surrogate pairs above U+FFFF)
    bool finite_only;   // NaN/±inf are CG_ERR_INVALID (Python allow_nan=False); else NaN/Infinity
} cg_jval_dump_opts;
// CG_ERR_TYPE for a value JSON cannot hold (Undefined, callables), CG_ERR_LIMIT when nesting is
// deeper than 512, CG_ERR_INVALID for a non-finite float with finite_only.
cg_status cg_jval_dump(const cg_jval *v, const cg_jval_dump_opts *o, cg_buf *out, cg_err *err);

// Python str(v) (strings as-is, None, True, 1.0, lists/dicts via repr) and repr(v).
void cg_jval_py_str(const cg_jval *v, cg_buf *out);
void cg_jval_py_repr(const cg_jval *v, cg_buf *out);
// Python repr() of a float ("1.0", "1e+16", "1.5e-05", "nan", "inf").
void cg_jval_py_float(double f, cg_buf *out);

// Python type name used in error messages ("str", "int", "list", "dict", "NoneType" …).
const char *cg_jval_type_name(const cg_jval *v);

#endif
