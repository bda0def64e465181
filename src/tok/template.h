// template.h — Jinja2 chat templates rendered the way Hugging Face transformers renders them.
//
// The engine implements the Jinja2 subset real chat templates use, configured as transformers'
// apply_chat_template configures jinja2: ImmutableSandboxedEnvironment(trim_blocks=True,
// lstrip_blocks=True) with loop controls, `{% generation %}`, a `tojson` that is Python
// json.dumps(ensure_ascii=False, …), and the globals raise_exception(msg) and strftime_now(fmt).
// Undefined names behave as jinja2's default Undefined: printing gives '', truth is false,
// iteration is empty, but an attribute/item of an Undefined, arithmetic on it, or calling it is an
// error. Mutating list/dict methods (append, pop, update …) are errors, as in the immutable sandbox.
//
// Ownership: a cg_tmpl owns its parsed tree; the source passed to cg_tmpl_parse is copied. A
// cg_tmpl is immutable after parsing and may be rendered from several threads at once, each with
// its own context, output buffer and error. The context value is borrowed for the duration of
// cg_tmpl_render; its contents are never changed, but reference counts of its values are, so one
// context must not be rendered by two threads at the same time.
#ifndef CG_TOK_TEMPLATE_H
#define CG_TOK_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "tok/jval.h"

typedef struct cg_tmpl cg_tmpl;

typedef struct cg_tmpl_opts {
    // The instant strftime_now() formats, as seconds since 1970-01-01 interpreted as a civil
    // (timezone-less) time. Used when has_now; otherwise now_fn (if set), otherwise the local clock.
    bool has_now;
    int64_t now;
    int64_t (*now_fn)(void *user);  // returns the same kind of seconds; called at most once per call
    void *now_user;
    // Caps (0 = default): output bytes (16 MiB), evaluation steps — loop iterations, calls and
    // statements (10 million), nesting of macro calls / expressions (200).
    size_t max_output;
    uint64_t max_steps;
    int max_depth;
} cg_tmpl_opts;

// Parses a template. `src` need not be NUL-terminated and must be valid UTF-8.
// Errors: CG_ERR_FORMAT "template: line L, column C: …" for a syntax error or invalid UTF-8;
// CG_ERR_LIMIT for a template nesting deeper than the parser's cap; CG_ERR_NOMEM.
// On success *out is owned by the caller (free with cg_tmpl_free).
cg_status cg_tmpl_parse(const char *src, size_t len, cg_tmpl **out, cg_err *err);
void cg_tmpl_free(cg_tmpl *t);  // accepts NULL

// Renders with `context` (a DICT; NULL means empty) and appends the text to `out`.
// Errors: CG_ERR_FORMAT "template: line L: …" for a runtime error (undefined attribute, bad
// operand types …) or for raise_exception (the message then reads "… raise_exception: MSG");
// CG_ERR_LIMIT when a cap of opts is reached; CG_ERR_NOMEM. On error `out` may hold partial text.
cg_status cg_tmpl_render(const cg_tmpl *t, const cg_jval *context, const cg_tmpl_opts *opts, cg_buf *out,
                         cg_err *err);

// Special tokens transformers passes to a chat template (NULL → not defined in the context).
typedef struct cg_chat_tokens {
    const char *bos, *eos, *unk, *pad;
} cg_chat_tokens;

// Builds the context transformers builds — messages, tools (only when tools_json is not NULL),
// add_generation_prompt, bos_token/eos_token/unk_token/pad_token — and renders template_src.
// messages_json is a JSON array of message objects; tools_json a JSON array or NULL.
// Errors: those of cg_jval_parse (prefixed "messages: " / "tools: "), cg_tmpl_parse and
// cg_tmpl_render; CG_ERR_TYPE when messages/tools are not arrays.
cg_status cg_chat_apply_template(const char *template_src, size_t template_len, const char *messages_json,
                                 const char *tools_json, bool add_generation_prompt,
                                 const cg_chat_tokens *tokens, const cg_tmpl_opts *opts, cg_buf *out,
                                 cg_err *err);

// Built-in templates for models whose GGUF carries none, chosen as llama.cpp chooses them.
// cg_chat_builtin_name maps a template name ("chatml", "llama2", "llama3", "gemma", "mistral",
// "phi3", "exaone3", also the llama.cpp aliases like "mistral-v1"/"llama2-sys") to its Jinja source; NULL when
// unknown. Borrowed static string.
const char *cg_chat_builtin_source(const char *name);
// llama.cpp's detection: given a (possibly NULL) template source, the name of the built-in
// closest to it ("chatml" when src is NULL), or NULL when nothing matches.
const char *cg_chat_detect_builtin(const char *src);

#endif
