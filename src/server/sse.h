// sse.h — the hot-path JSON string escaper and Server-Sent-Events framing for streamed responses.
//
// Streamed chunks are written with this small escaper instead of a JSON library: one pass, no
// allocation besides the output buffer. The escaper always produces a valid JSON string literal:
// '"' and '\' are escaped, control characters become \n \t \r \b \f or \u00XX, U+2028/U+2029
// become \u2028/\u2029 (JavaScript-safe), and bytes that are not valid UTF-8 become U+FFFD (one
// replacement per invalid byte; an incomplete trailing sequence also becomes U+FFFD — callers
// hold incomplete sequences back before they get here). Pure functions on the caller's buffer.
#ifndef CG_SERVER_SSE_H
#define CG_SERVER_SSE_H

#include <stddef.h>

#include "base/buf.h"

// Appends s[0..n) as a quoted JSON string literal.
void cg_json_str(cg_buf *b, const char *s, size_t n);
// As cg_json_str for a NUL-terminated string; NULL appends `null`.
void cg_json_cstr(cg_buf *b, const char *s);
// Appends a float as a JSON number (non-finite values become -9999 / 9999: JSON has no inf/NaN).
void cg_json_float(cg_buf *b, double v);

// Appends one SSE event "data: <payload>\n\n". payload must not contain "\n" (JSON from the
// escaper never does).
void cg_sse_data(cg_buf *b, const char *payload, size_t n);

#endif
