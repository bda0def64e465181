// sjson.h — a small strict JSON reader for src/sample (schemas, tool-call text). Internal.
//
// DESIGN keeps JSON libraries out of every module below `server`; this reader is ours. It parses
// RFC 8259 JSON into a tree allocated from a caller's arena (all pointers are borrowed until that
// arena is reset or freed): strings are decoded to UTF-8 (surrogate pairs joined; lone surrogates and
// invalid UTF-8 are errors), numbers keep their source text, every value records its byte range in
// the source so callers can copy a sub-value verbatim. Depth is capped at SJ_MAX_DEPTH.
// Duplicate object keys are an error. Pure functions: thread-safe with distinct arenas.
#ifndef CG_SAMPLE_SJSON_H
#define CG_SAMPLE_SJSON_H

#include <stdbool.h>
#include <stddef.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"

#define SJ_MAX_DEPTH 128

typedef enum sj_type { SJ_NULL, SJ_BOOL, SJ_NUM, SJ_STR, SJ_ARR, SJ_OBJ } sj_type;

typedef struct sj {
    sj_type type;
    bool b;                    // SJ_BOOL
    double num;                // SJ_NUM
    const char *s;             // SJ_STR: decoded bytes (NUL-terminated); SJ_NUM: source text
    size_t len;                // SJ_STR / SJ_NUM: byte length
    size_t n;                  // SJ_ARR / SJ_OBJ: count
    struct sj *items;          // SJ_ARR elements, SJ_OBJ values
    const char **keys;         // SJ_OBJ keys (decoded, NUL-terminated)
    size_t *key_lens;
    size_t src_off, src_len;   // the value's bytes in the source
} sj;

// Parses exactly one value (surrounded by optional whitespace) from p[0..n).
// Errors: CG_ERR_FORMAT "json: … at offset N", CG_ERR_LIMIT (depth), CG_ERR_NOMEM.
cg_status sj_parse(cg_arena *a, const char *p, size_t n, sj **out, cg_err *err);

// Parses one value at the start of p[0..n) (after optional whitespace) and sets *end to the offset
// just after it; trailing bytes are allowed. Same errors.
cg_status sj_parse_prefix(cg_arena *a, const char *p, size_t n, sj **out, size_t *end, cg_err *err);

// Member of an object by key, or NULL (also when o is not an object).
const sj *sj_get(const sj *o, const char *key);

// Writes v as compact JSON (strings escaped: " \ and control characters; numbers as in the source).
void sj_write(cg_buf *b, const sj *v);
// Writes s[0..n) as a JSON string literal.
void sj_write_str(cg_buf *b, const char *s, size_t n);

#endif
