// chat.h — a model's chat setup: which template renders its conversations and the special-token
// strings the template sees (bos_token, eos_token, unk_token, pad_token).
//
// The model's own `tokenizer.chat_template` is used when present; otherwise the built-in template
// llama.cpp falls back to (chatml), or a built-in named by the caller. A cg_chat_setup owns copies of
// everything (the GGUF and vocab may be closed afterwards); it is immutable and thread-safe to share.
#ifndef CG_TOK_CHAT_H
#define CG_TOK_CHAT_H

#include <stddef.h>

#include "base/err.h"
#include "gguf/gguf.h"
#include "tok/template.h"
#include "tok/tok.h"

typedef struct cg_chat_setup {
    char *template_src;      // owned, NUL-terminated
    size_t template_len;
    const char *builtin;     // NULL: the model's own template; else the built-in's name (static)
    char *tok_strs[4];       // owned copies of bos, eos, unk, pad (NULL when the vocab has none)
    cg_chat_tokens tokens;   // views of tok_strs, ready for cg_chat_apply_template
} cg_chat_setup;

// Fills *out for a model. `builtin_name` (may be NULL) forces a built-in template ("chatml",
// "llama3", …). `v` may be NULL (no special-token strings). Errors: CG_ERR_TYPE (the template key
// is not a string), CG_ERR_FORMAT (the template is not valid UTF-8), CG_ERR_NOT_FOUND (unknown
// built-in name; the message lists the known ones), CG_ERR_NOMEM.
cg_status cg_chat_setup_from_model(const cg_gguf *g, const cg_vocab *v, const char *builtin_name,
                                   cg_chat_setup *out, cg_err *err);
void cg_chat_setup_free(cg_chat_setup *s);   // accepts a zeroed struct

#endif
