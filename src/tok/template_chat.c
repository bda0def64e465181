// template_chat.c — apply_chat_template the way transformers builds its context, and the built-in
// templates for GGUFs that carry none.
//
// The context holds exactly what transformers passes: messages, tools (only when given),
// add_generation_prompt and the special-token strings. The built-ins are small Jinja sources of our
// own that reproduce llama.cpp's hard-coded formats (llm_chat_apply_template), and detection
// follows llm_chat_detect_template: an exact built-in name first, then substrings of the template.
#include <string.h>

#include "tok/template.h"

#define LLAMA2_BODY                                                                                      \
    "{% set ns = namespace(inside=true) %}[INST] {% for m in messages %}"                              \
    "{% set c = (m['content'] | trim) if strip_msg else m['content'] %}"                                \
    "{% if not ns.inside %}{% set ns.inside = true %}{{ '<s>[INST] ' if bos_hist else '[INST] ' }}{% endif %}" \
    "{% if m['role'] == 'system' %}{% if sys_ok %}{{ '<<SYS>>\\n' ~ c ~ '\\n<</SYS>>\\n\\n' }}"         \
    "{% else %}{{ c ~ '\\n' }}{% endif %}"                                                              \
    "{% elif m['role'] == 'user' %}{{ c ~ ' [/INST]' }}"                                                \
    "{% else %}{{ c ~ '</s>' }}{% set ns.inside = false %}{% endif %}{% endfor %}"

#define MISTRAL_BODY                                                                                     \
    "{% set ns = namespace(inside=false) %}{% for m in messages %}"                                    \
    "{% if not ns.inside %}{{ lead ~ '[INST]' ~ trail }}{% set ns.inside = true %}{% endif %}"          \
    "{% if m['role'] == 'system' %}{{ m['content'] ~ '\\n\\n' }}"                                       \
    "{% elif m['role'] == 'user' %}{{ m['content'] ~ lead ~ '[/INST]' }}"                               \
    "{% else %}{{ trail ~ ((m['content'] | trim) if trim_asst else m['content']) ~ '</s>' }}"            \
    "{% set ns.inside = false %}{% endif %}{% endfor %}"

#define MISTRAL7_BODY                                                                                    \
    "{% for m in messages %}{% if m['role'] == 'system' %}"                                             \
    "{{ '[SYSTEM_PROMPT]' ~ trail ~ m['content'] ~ '[/SYSTEM_PROMPT]' }}"                               \
    "{% elif m['role'] == 'user' %}{{ '[INST]' ~ trail ~ m['content'] ~ '[/INST]' }}"                   \
    "{% else %}{{ trail ~ m['content'] ~ '</s>' }}{% endif %}{% endfor %}"

static const struct {
    const char *name;
    const char *src;
} BUILTINS[] = {
    {"chatml",
     "{% for m in messages %}{{ '<|im_start|>' ~ m['role'] ~ '\\n' ~ m['content'] ~ '<|im_end|>\\n' }}{% endfor %}"
     "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"},
    {"llama2", "{% set sys_ok = false %}{% set bos_hist = false %}{% set strip_msg = false %}" LLAMA2_BODY},
    {"llama2-sys", "{% set sys_ok = true %}{% set bos_hist = false %}{% set strip_msg = false %}" LLAMA2_BODY},
    {"llama2-sys-bos", "{% set sys_ok = true %}{% set bos_hist = true %}{% set strip_msg = false %}" LLAMA2_BODY},
    {"llama2-sys-strip", "{% set sys_ok = true %}{% set bos_hist = false %}{% set strip_msg = true %}" LLAMA2_BODY},
    {"mistral-v1", "{% set lead = ' ' %}{% set trail = ' ' %}{% set trim_asst = false %}" MISTRAL_BODY},
    {"mistral-v3", "{% set lead = '' %}{% set trail = ' ' %}{% set trim_asst = true %}" MISTRAL_BODY},
    {"mistral-v3-tekken", "{% set lead = '' %}{% set trail = '' %}{% set trim_asst = false %}" MISTRAL_BODY},
    {"mistral-v7", "{% set trail = ' ' %}" MISTRAL7_BODY},
    {"mistral-v7-tekken", "{% set trail = '' %}" MISTRAL7_BODY},
    {"mistral", "{% set trail = ' ' %}" MISTRAL7_BODY},  // alias of mistral-v7
    {"phi3",
     "{% for m in messages %}{{ '<|' ~ m['role'] ~ '|>\\n' ~ m['content'] ~ '<|end|>\\n' }}{% endfor %}"
     "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"},
    {"llama3",
     "{% for m in messages %}{{ '<|start_header_id|>' ~ m['role'] ~ '<|end_header_id|>\\n\\n' ~ (m['content'] | trim)"
     " ~ '<|eot_id|>' }}{% endfor %}"
     "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"},
    {"gemma",
     "{% set ns = namespace(sys='') %}{% for m in messages %}"
     "{% if m['role'] == 'system' %}{% set ns.sys = ns.sys ~ (m['content'] | trim) %}{% else %}"
     "{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}{{ '<start_of_turn>' ~ role ~ '\\n' }}"
     "{% if ns.sys != '' and role != 'model' %}{{ ns.sys ~ '\\n\\n' }}{% set ns.sys = '' %}{% endif %}"
     "{{ (m['content'] | trim) ~ '<end_of_turn>\\n' }}{% endif %}{% endfor %}"
     "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"},
    {"exaone3",
     "{% for m in messages %}{% if m['role'] == 'system' %}{{ '[|system|]' ~ (m['content'] | trim) ~ '[|endofturn|]\\n' }}"
     "{% elif m['role'] == 'user' %}{{ '[|user|]' ~ (m['content'] | trim) ~ '\\n' }}"
     "{% elif m['role'] == 'assistant' %}{{ '[|assistant|]' ~ (m['content'] | trim) ~ '[|endofturn|]\\n' }}{% endif %}"
     "{% endfor %}{% if add_generation_prompt %}{{ '[|assistant|]' }}{% endif %}"},
};

const char *cg_chat_builtin_source(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof BUILTINS / sizeof BUILTINS[0]; i++)
        if (strcmp(BUILTINS[i].name, name) == 0) return BUILTINS[i].src;
    return NULL;
}

const char *cg_chat_detect_builtin(const char *t) {
    if (!t) return "chatml";
    if (cg_chat_builtin_source(t)) return strcmp(t, "mistral") == 0 ? "llama2" : t;  // llama.cpp: "mistral…" → llama2 family
#define HAS(s) (strstr(t, (s)) != NULL)
    if (HAS("<|im_start|>")) return (HAS("<|im_sep|>") || HAS("<end_of_utterance>")) ? NULL : "chatml";
    if (strncmp(t, "mistral", 7) == 0 || HAS("[INST]")) {
        if (HAS("[SYSTEM_PROMPT]")) return "mistral-v7";
        if (HAS("' [INST] ' + system_message") || HAS("[AVAILABLE_TOOLS]")) {
            if (HAS(" [INST]")) return "mistral-v1";
            if (HAS("\"[INST]\"")) return "mistral-v3-tekken";
            return "mistral-v3";
        }
        if (HAS("content.strip()")) return "llama2-sys-strip";
        if (HAS("bos_token + '[INST]")) return "llama2-sys-bos";
        if (HAS("<<SYS>>")) return "llama2-sys";
        return "llama2";
    }
    if (HAS("<|assistant|>") && HAS("<|end|>")) return "phi3";
    // llama.cpp checks several other families before these two; none of them is built in here.
    if (HAS("[gMASK]<sop>") || (HAS("<|assistant|>") && HAS("<|user|>")) || (HAS("<|user|>") && HAS("<|endoftext|>")) ||
        HAS("bos_token + message['role']"))
        return NULL;
    if (HAS("<start_of_turn>")) return "gemma";
    if (HAS("'\\n\\nAssistant: ' + eos_token") || HAS("GPT4 Correct ") || (HAS("USER: ") && HAS("ASSISTANT: ")) ||
        (HAS("### Instruction:") && HAS("<|EOT|>")) || (HAS("<|START_OF_TURN_TOKEN|>") && HAS("<|USER_TOKEN|>")))
        return NULL;
    if (HAS("<|start_header_id|>") && HAS("<|end_header_id|>")) return "llama3";
    if (HAS("[|system|]") && HAS("[|assistant|]") && HAS("[|endofturn|]")) return HAS("[|tool|]") ? NULL : "exaone3";
#undef HAS
    return NULL;
}

static bool put_tok(cg_jval *ctx, const char *key, const char *val) {
    if (!val) return true;
    return cg_jval_dict_set_c(ctx, key, cg_jval_cstr(val));
}

cg_status cg_chat_apply_template(const char *template_src, size_t template_len, const char *messages_json,
                                 const char *tools_json, bool add_generation_prompt,
                                 const cg_chat_tokens *tokens, const cg_tmpl_opts *opts, cg_buf *out,
                                 cg_err *err) {
    cg_status st;
    cg_jval *ctx = cg_jval_dict(), *msgs = NULL, *tools = NULL;
    cg_tmpl *t = NULL;
    if (!ctx) return cg_err_set(err, CG_ERR_NOMEM, "chat template: out of memory");
    if (!messages_json) { st = cg_err_set(err, CG_ERR_INVALID, "chat template: messages are required"); goto done; }
    if ((st = cg_jval_parse(messages_json, strlen(messages_json), 0, &msgs, err))) {
        cg_err_wrap(err, "messages");
        goto done;
    }
    if (msgs->kind != CG_JV_LIST) {
        st = cg_err_set(err, CG_ERR_TYPE, "messages: expected a JSON array, got %s", cg_jval_type_name(msgs));
        goto done;
    }
    if (tools_json) {
        if ((st = cg_jval_parse(tools_json, strlen(tools_json), 0, &tools, err))) {
            cg_err_wrap(err, "tools");
            goto done;
        }
        if (tools->kind != CG_JV_LIST) {
            st = cg_err_set(err, CG_ERR_TYPE, "tools: expected a JSON array, got %s", cg_jval_type_name(tools));
            goto done;
        }
    }
    bool ok = cg_jval_dict_set_c(ctx, "messages", cg_jval_ref(msgs));
    if (ok && tools) ok = cg_jval_dict_set_c(ctx, "tools", cg_jval_ref(tools));
    ok = ok && cg_jval_dict_set_c(ctx, "add_generation_prompt", cg_jval_bool(add_generation_prompt));
    if (ok && tokens)
        ok = put_tok(ctx, "bos_token", tokens->bos) && put_tok(ctx, "eos_token", tokens->eos) &&
             put_tok(ctx, "unk_token", tokens->unk) && put_tok(ctx, "pad_token", tokens->pad);
    if (!ok) { st = cg_err_set(err, CG_ERR_NOMEM, "chat template: out of memory"); goto done; }
    if ((st = cg_tmpl_parse(template_src, template_len, &t, err))) goto done;
    st = cg_tmpl_render(t, ctx, opts, out, err);
done:
    cg_tmpl_free(t);
    cg_jval_unref(msgs);
    cg_jval_unref(tools);
    cg_jval_unref(ctx);
    return st;
}
