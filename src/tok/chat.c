// chat.c — picks a model's chat template and copies the special-token strings its template uses.
// Invariant: tokens.* point into tok_strs (or are NULL); template_src is NUL-terminated.
#include "tok/chat.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/utf8.h"

static const char *const BUILTIN_NAMES = "chatml, llama2, llama3, gemma, mistral, phi3, exaone3";

static char *dup_n(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

cg_status cg_chat_setup_from_model(const cg_gguf *g, const cg_vocab *v, const char *builtin_name,
                                   cg_chat_setup *out, cg_err *err) {
    cg_status st = CG_OK;
    memset(out, 0, sizeof *out);
    const char *src = NULL;
    size_t len = 0;
    if (builtin_name) {
        src = cg_chat_builtin_source(builtin_name);
        if (!src) {
            st = cg_err_set(err, CG_ERR_NOT_FOUND, "chat: unknown built-in template '%s' (known: %s)",
                            builtin_name, BUILTIN_NAMES);
            goto fail;
        }
        out->builtin = builtin_name;
        len = strlen(src);
    } else {
        const cg_gguf_kv *kv = g ? cg_gguf_find(g, "tokenizer.chat_template") : NULL;
        if (kv) {
            cg_gguf_str s;
            if ((st = cg_gguf_get_str(g, "tokenizer.chat_template", &s, err))) goto fail;
            size_t bad;
            if (!cg_utf8_valid(s.p, s.n, &bad)) {
                st = cg_err_set(err, CG_ERR_FORMAT, "chat: tokenizer.chat_template is not valid UTF-8 (byte %zu)", bad);
                goto fail;
            }
            src = s.p;
            len = s.n;
        } else {
            // As llama.cpp: a model without a template is chatted with in ChatML.
            out->builtin = "chatml";
            src = cg_chat_builtin_source("chatml");
            len = strlen(src);
            CG_INFO("chat: the model has no tokenizer.chat_template; using the built-in chatml template");
        }
    }
    if (!(out->template_src = dup_n(src, len))) goto nomem;
    out->template_len = len;
    if (v) {
        static const cg_special ROLES[4] = {CG_SPECIAL_BOS, CG_SPECIAL_EOS, CG_SPECIAL_UNK, CG_SPECIAL_PAD};
        for (int i = 0; i < 4; i++) {
            int32_t id = cg_vocab_special(v, ROLES[i]);
            size_t n;
            const char *t = id == CG_TOKEN_NULL ? NULL : cg_vocab_token_text(v, id, &n);
            if (t && !(out->tok_strs[i] = dup_n(t, n))) goto nomem;
        }
    }
    out->tokens = (cg_chat_tokens){out->tok_strs[0], out->tok_strs[1], out->tok_strs[2], out->tok_strs[3]};
    return CG_OK;
nomem:
    st = cg_err_set(err, CG_ERR_NOMEM, "chat: out of memory");
fail:
    cg_chat_setup_free(out);
    return st;
}

void cg_chat_setup_free(cg_chat_setup *s) {
    if (!s) return;
    free(s->template_src);
    for (int i = 0; i < 4; i++) free(s->tok_strs[i]);
    memset(s, 0, sizeof *s);
}
