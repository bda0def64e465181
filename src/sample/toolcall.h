// toolcall.h — tool calls in model output: incremental parsers per chat format, and grammars that
// force a tool call (tool_choice "required" or a named function).
//
// Formats:
//   CG_TOOLCALL_HERMES   Qwen2.5 / Hermes: <tool_call>{"name": …, "arguments": {…}}</tool_call>, repeated.
//   CG_TOOLCALL_LLAMA3   Llama 3.x: the whole output is {"name": …, "parameters": {…}} (JSON mode), or
//                        <|python_tag|> followed by that JSON, by `fn.call(k=v, …)` (built-in tools), or
//                        by code (a call named "python" with {"code": …}).
//   CG_TOOLCALL_MISTRAL  [TOOL_CALLS][{"name": …, "arguments": {…}, "id": …}, …] and the newer
//                        [TOOL_CALLS]name[ARGS]{…} (repeated).
//   CG_TOOLCALL_GENERIC  the whole output is {"tool_call": {"name", "arguments"}}, {"tool_calls": […]}
//                        or {"response": "text"} (the text becomes content).
//
// Streaming: feed text chunks as they are generated; each call returns the content that is now
// certain (markup never reaches it: a suffix that could begin a marker is held back) and any tool
// calls completed by this chunk (by default a call is delivered whole, when its closing markup or the
// end of output is seen). Whitespace right after a tool call is dropped. Text that does not parse as a tool call is returned as content: the model's output never
// makes these functions fail. The result does not depend on how the text is split into chunks.
//
// Ownership: the parser owns its calls (strings valid until cg_toolcall_parser_free). Not thread-safe.
#ifndef CG_SAMPLE_TOOLCALL_H
#define CG_SAMPLE_TOOLCALL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

typedef enum cg_toolcall_format {
    CG_TOOLCALL_HERMES,
    CG_TOOLCALL_LLAMA3,
    CG_TOOLCALL_MISTRAL,
    CG_TOOLCALL_GENERIC,
    CG_TOOLCALL_FORMAT_COUNT_
} cg_toolcall_format;

typedef struct cg_toolcall {
    char *name;        // owned by the parser, NUL-terminated
    char *arguments;   // compact JSON text (an object, normally)
    char *id;          // owned; NULL when the model gave none
} cg_toolcall;

typedef struct cg_toolcall_parser cg_toolcall_parser;

// Errors: CG_ERR_INVALID (unknown format), CG_ERR_NOMEM.
cg_status cg_toolcall_parser_new(cg_toolcall_format fmt, cg_toolcall_parser **out, cg_err *err);
void cg_toolcall_parser_free(cg_toolcall_parser *p);   // accepts NULL

// Feeds a chunk. Appends certain content to *content; *n_new receives the number of tool calls that
// completed (they are the last *n_new of cg_toolcall_parser_call). Errors: CG_ERR_NOMEM,
// CG_ERR_STATE (after finish).
cg_status cg_toolcall_parser_feed(cg_toolcall_parser *p, const char *text, size_t n, cg_buf *content,
                                  size_t *n_new, cg_err *err);
// End of output: resolves everything held back. Same outputs and errors.
cg_status cg_toolcall_parser_finish(cg_toolcall_parser *p, cg_buf *content, size_t *n_new, cg_err *err);

size_t cg_toolcall_parser_n_calls(const cg_toolcall_parser *p);
const cg_toolcall *cg_toolcall_parser_call(const cg_toolcall_parser *p, size_t i);   // borrowed

// Streamed arguments (set before the first feed; CG_ERR_STATE after). With it, a call written as
// {"name": "NAME", "arguments"|"parameters": {…}…} — HERMES after <tool_call>, LLAMA3 as the whole output,
// GENERIC inside {"tool_call": …} or as each element of {"tool_calls": […]} — becomes an open call as soon as the '{' of its arguments is read: cg_toolcall_parser_open_call gives
// its name and the arguments read so far, which only ever grow by appending and are a prefix of the
// call's final arguments. Those are the model's object in compact form (whitespace outside strings
// dropped; strings, numbers and literals as written; raw control bytes in strings escaped), so the
// pieces concatenate to valid JSON (a member's key is held back until its value begins). An object
// that breaks off (end of output, or a byte that cannot continue it) is closed where it stands: an
// open string value is closed, a member whose value had not begun (or was an unfinished number or
// literal) is left out, open arrays and objects are closed. Markup after the arguments up to </tool_call> (HERMES) or the end of
// output (LLAMA3, GENERIC; there "}, {" continues the list with another call) is dropped. Calls in other shapes (other formats, arguments given as a string, keys in
// another order) are still delivered whole, with their arguments re-serialised as without streaming.
cg_status cg_toolcall_parser_stream_args(cg_toolcall_parser *p, bool on, cg_err *err);
// The call being streamed (its index is cg_toolcall_parser_n_calls): false when there is none. The
// pointers are borrowed until the next feed/finish; args is not NUL-terminated.
bool cg_toolcall_parser_open_call(const cg_toolcall_parser *p, const char **name, const char **args, size_t *n_args);

// At most max_calls calls (0: no limit; set before the first feed, CG_ERR_STATE after): once that many
// completed, the rest of the output is dropped — neither calls nor content — and done() is true, so
// the caller can stop generating (parallel_tool_calls: false).
cg_status cg_toolcall_parser_set_max_calls(cg_toolcall_parser *p, size_t max_calls, cg_err *err);
bool cg_toolcall_parser_done(const cg_toolcall_parser *p);

// ---- forcing a call with a grammar -----------------------------------------------------------------
typedef struct cg_tool_def {
    const char *name;          // borrowed for the call
    const char *parameters;    // JSON Schema text of the arguments; NULL: any object
    size_t parameters_len;
} cg_tool_def;

// Appends a GBNF grammar (start rule `root`) whose sentences are one tool call — or several when
// parallel — in format fmt, for the tool named only_name (NULL: any of the tools), with arguments
// valid under each tool's schema. Markers that are special tokens in some vocabularies
// ([TOOL_CALLS], <|python_tag|>) are not generated: the LLAMA3 grammar uses the JSON form, the
// MISTRAL one starts at the '[' after [TOOL_CALLS] (parse such output with the marker prepended).
// Errors: CG_ERR_INVALID (no tools, unknown only_name, bad name), schema errors (see schema.h),
// CG_ERR_NOMEM.
cg_status cg_toolcall_grammar(cg_toolcall_format fmt, const cg_tool_def *tools, size_t n_tools,
                              const char *only_name, bool parallel, cg_buf *out, cg_err *err);

#endif
