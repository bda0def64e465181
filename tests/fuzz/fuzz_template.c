// fuzz_template.c — libFuzzer target for the chat-template engine and the JSON value parser.
//
// The input is parsed as JSON (must never crash, whatever it is) and as a Jinja template that is
// rendered against a fixed chat context with small caps, so a hostile template ends with an error
// value quickly. Any crash, sanitizer report, leak or timeout is a bug.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tok/jval.h"
#include "tok/template.h"

static const char CTX[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", \"content\": \"안녕 {{x}}\"},"
    " {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"type\": \"function\", \"function\":"
    " {\"name\": \"f\", \"arguments\": {\"a\": 1, \"b\": [1.5, null, true]}}}]},"
    " {\"role\": \"tool\", \"content\": \"{\\\"t\\\": 21}\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\"}}}],"
    " \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cg_err err = {0};
    cg_jval *v = NULL;
    if (cg_jval_parse((const char *)data, size, 0, &v, &err) == CG_OK) {
        cg_buf b;
        cg_buf_init(&b);
        cg_jval_dump(v, NULL, &b, &err);
        cg_jval_py_repr(v, &b);
        cg_buf_free(&b);
        cg_jval_unref(v);
    }
    cg_jval *ctx = NULL;
    if (cg_jval_parse(CTX, strlen(CTX), 0, &ctx, &err) != CG_OK) return 0;
    cg_tmpl *t = NULL;
    if (cg_tmpl_parse((const char *)data, size, &t, &err) == CG_OK) {
        cg_tmpl_opts o = {.has_now = true, .now = 1736942400, .max_output = 1 << 20, .max_steps = 200000, .max_depth = 100};
        cg_buf out;
        cg_buf_init(&out);
        cg_tmpl_render(t, ctx, &o, &out, &err);
        cg_buf_free(&out);
        cg_tmpl_free(t);
    }
    cg_jval_unref(ctx);
    return 0;
}
