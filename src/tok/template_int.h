// template_int.h — internals shared by the template parser (template_parse.c), the interpreter
// (template_eval.c) and the built-in filters/tests/methods (template_lib.c). Not a public API.
//
// The tree is allocated from the template's arena and is immutable after parsing; literal values
// are owned by the template (released in cg_tmpl_free). Render state (struct rt) lives on the
// stack of one cg_tmpl_render call and is never shared between threads.
#ifndef CG_TOK_TEMPLATE_INT_H
#define CG_TOK_TEMPLATE_INT_H

#include "base/arena.h"
#include "tok/template.h"

typedef enum nkind {
    // expressions
    N_LIT, N_NAME, N_ATTR, N_ITEM, N_SLICE, N_CALL, N_FILTER, N_TEST, N_BIN, N_NEG, N_POS, N_NOT, N_AND,
    N_OR, N_COND, N_LIST, N_TUPLE, N_DICT, N_CMP, N_CONCAT, N_INPUT,
    // statements
    N_TEXT, N_PRINT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_CALLBLOCK, N_FILTERBLOCK, N_BREAK,
    N_CONTINUE, N_BLOCK, N_WITH,
} nkind;

// Binary and comparison operators.
enum { OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT,
       OP_GE, OP_IN, OP_NOTIN };

typedef struct node node;
typedef struct nvec {
    node **v;
    size_t n, cap;
} nvec;

struct node {
    uint8_t kind;   // nkind
    uint8_t neg;    // N_TEST: `is not`
    int op;         // N_BIN
    int line, col;
    const char *s;  // N_NAME/N_ATTR/N_FILTER/N_TEST/N_MACRO name, N_TEXT bytes
    size_t sn;
    cg_jval *lit;   // N_LIT
    node *a, *b, *c, *d;
    nvec args;      // call/filter/test args, list/tuple items, dict keys, macro params, CMP operands
    nvec kwn, kwv;  // kwarg names (N_NAME) and values, dict values, macro defaults (NULL entries)
    int *ops;       // N_CMP operators (args.n - 1 of them)
    nvec body, orelse;
};

struct cg_tmpl {
    cg_arena arena;
    node *root;      // N_BLOCK
    cg_jval **lits;  // every literal, released at free
    size_t n_lits, cap_lits;
};

// ---- render state ---------------------------------------------------------------------------

typedef struct frame frame;
struct frame {
    cg_jval *vars;  // owned DICT
    frame *parent;
};

typedef struct rt {
    const cg_tmpl *t;
    cg_err *err;
    cg_buf *out;
    const cg_jval *ctx;  // borrowed context DICT (may be NULL)
    frame *scope, *root;
    const cg_tmpl_opts *o;
    uint64_t steps, max_steps;
    int depth, max_depth;
    size_t max_out;
    int line;
    int ctl;  // 1 break, 2 continue
    cg_status st;
} rt;

// Arguments of a call: positional values and keyword values (all borrowed during the call).
typedef struct cargs {
    cg_jval **pos;
    size_t n;
    const node **kn;  // N_NAME nodes
    cg_jval **kv;
    size_t nk;
} cargs;

// Callable tags of CG_JV_FUNC values.
enum { FN_BUILTIN = 1, FN_METHOD, FN_MACRO, FN_CALLER };

// Sets an error "template: line L: …" and returns NULL (for expression helpers).
cg_jval *rt_fail(rt *r, cg_status st, const char *fmt, ...) CG_PRINTF(3, 4);
// Accounts one step; false (with CG_ERR_LIMIT set) when the cap is reached.
bool rt_step(rt *r);
// Output with the size cap.
bool rt_emit(rt *r, const char *p, size_t n);

// Library (template_lib.c). Each returns a new reference or NULL with r->st/r->err set.
cg_jval *lib_filter(rt *r, const char *name, size_t nn, cg_jval *in, const cargs *a);
// Returns 1/0, or -1 with an error set.
int lib_test(rt *r, const char *name, size_t nn, cg_jval *in, const cargs *a);
// obj.name for str/dict/list methods: a bound method value, or NULL *without* error if none.
cg_jval *lib_method(rt *r, cg_jval *obj, const char *name, size_t nn);
cg_jval *lib_call_method(rt *r, cg_jval *fn, const cargs *a);
// Global functions: range, dict, namespace, raise_exception, strftime_now, joiner/cycler absent.
cg_jval *lib_global(rt *r, const char *name, size_t nn);
cg_jval *lib_call_global(rt *r, cg_jval *fn, const cargs *a);

// Helpers shared by eval and lib.
cg_jval *rt_str_of(rt *r, const cg_jval *v);  // Python str(v) as a STR value
size_t rt_cp_len(const char *s, size_t n);    // code points in valid UTF-8
cg_jval *rt_getitem(rt *r, cg_jval *obj, cg_jval *key);
cg_jval *rt_getattr(rt *r, cg_jval *obj, const char *name, size_t nn);
// Iteration: a new LIST of the items (dict → keys, str → characters, Undefined → empty).
cg_jval *rt_to_list(rt *r, cg_jval *v);
int rt_compare(rt *r, const cg_jval *a, const cg_jval *b, int *cmp);  // 0 ok, -1 error
cg_jval *rt_call(rt *r, cg_jval *fn, const cargs *a);
// Python `fmt % args` (args a LIST = tuple, else one value): %s %r %d %i %f %%.
cg_jval *rt_percent(rt *r, const cg_jval *fmt, const cg_jval *args);
// True when v is or contains a namespace (namespaces may not nest: no reference cycles).
bool rt_holds_ns(const cg_jval *v);
// Reports a failed container insert of v (depth cap or out of memory); returns false.
bool rt_push_fail(rt *r, const cg_jval *v);
const cg_jval *cargs_get(const cargs *a, size_t i, const char *kw);

#endif
