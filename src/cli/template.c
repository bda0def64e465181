// template.c — `chingu template`: renders a conversation through a chat template and prints exactly
// the prompt the model would see (no added newline).
//
//   chingu template (-m MODEL | --template FILE.jinja | --builtin NAME) --messages FILE.json
//                   [--tools FILE.json] [--no-generation-prompt] [--bos S] [--eos S] [--unk S] [--pad S]
//                   [--now ISO-8601]
//
// With -m the model's own template and special-token strings are used (--bos … override them).
// --now fixes the instant strftime_now() formats ("2025-01-15T12:00:00" or "2025-01-15 12:00:00").
// Exit status: 0 ok, 1 error (one line on stderr), 2 usage.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mmap.h"
#include "cli/cli.h"
#include "gguf/gguf.h"
#include "tok/chat.h"
#include "tok/template.h"
#include "tok/tok.h"

static const char USAGE[] =
    "usage: chingu template (-m MODEL | --template FILE.jinja | --builtin NAME) --messages FILE.json\n"
    "                       [--tools FILE.json] [--no-generation-prompt] [--bos S] [--eos S] [--unk S] [--pad S]\n"
    "                       [--now YYYY-MM-DDTHH:MM:SS]";

// Days from 1970-01-01 to the civil date y-m-d (proleptic Gregorian; H. Hinnant's algorithm).
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int parse_now(const char *s, int64_t *out) {
    int y, mo, d, h = 0, mi = 0, sec = 0;
    char sep = 0, end = 0;
    int n = sscanf(s, "%4d-%2d-%2d%c%2d:%2d:%2d%c", &y, &mo, &d, &sep, &h, &mi, &sec, &end);
    if (!(n == 3 || (n == 7 && (sep == 'T' || sep == ' ')) || (n == 8 && end == 'Z'))) return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || h < 0 || mi < 0 || sec < 0) return -1;
    *out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
    return 0;
}

static int read_text(const char *path, char **out) {
    unsigned char *data;
    size_t n;
    cg_err err = {0};
    if (cg_file_read_all(path, &data, &n, &err)) return cg_cli_fail("template: %s", err.msg);
    if (memchr(data, 0, n)) {
        free(data);
        return cg_cli_fail("template: %s: contains a NUL byte", path);
    }
    *out = (char *)data;
    return 0;
}

int cg_cli_template(int argc, char **argv) {
    const char *model = NULL, *tmpl_path = NULL, *builtin = NULL, *msgs_path = NULL, *tools_path = NULL;
    const char *tok_override[4] = {NULL, NULL, NULL, NULL};
    const char *now_s = NULL;
    int add_gen = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, var) if (!strcmp(a, name)) { if (!next) goto usage; var = next; i++; continue; }
        OPT("-m", model) OPT("--model", model) OPT("--template", tmpl_path) OPT("--builtin", builtin)
        OPT("--messages", msgs_path) OPT("--tools", tools_path) OPT("--bos", tok_override[0])
        OPT("--eos", tok_override[1]) OPT("--unk", tok_override[2]) OPT("--pad", tok_override[3])
        OPT("--now", now_s)
#undef OPT
        if (!strcmp(a, "--no-generation-prompt")) { add_gen = 0; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { puts(USAGE); return 0; }
        fprintf(stderr, "chingu: template: unknown argument '%s'\n%s\n", a, USAGE);
        return 2;
    }
    if (!msgs_path || (!!model + !!tmpl_path + !!builtin) != 1) goto usage;

    int rc = 1;
    cg_err err = {0};
    cg_gguf *g = NULL;
    cg_vocab *v = NULL;
    cg_chat_setup setup = {0};
    char *tmpl_src = NULL, *msgs = NULL, *tools = NULL;
    cg_buf out;
    cg_buf_init(&out);
    cg_tmpl_opts opts = {0};
    if (now_s) {
        if (parse_now(now_s, &opts.now)) {
            rc = cg_cli_fail("template: --now '%s' is not YYYY-MM-DD[THH:MM:SS]", now_s);
            goto done;
        }
        opts.has_now = true;
    }
    if (read_text(msgs_path, &msgs)) goto done;
    if (tools_path && read_text(tools_path, &tools)) goto done;
    if (model) {
        if (cg_gguf_open(model, &g, &err) || cg_vocab_load(g, &v, &err) ||
            cg_chat_setup_from_model(g, v, NULL, &setup, &err)) {
            rc = cg_cli_fail("template: %s: %s", model, err.msg);
            goto done;
        }
    } else if (builtin) {
        if (cg_chat_setup_from_model(NULL, NULL, builtin, &setup, &err)) {
            rc = cg_cli_fail("template: %s", err.msg);
            goto done;
        }
    } else {
        if (read_text(tmpl_path, &tmpl_src)) goto done;
        setup.template_src = tmpl_src;
        setup.template_len = strlen(tmpl_src);
        tmpl_src = NULL;   // now owned by setup
    }
    cg_chat_tokens toks = setup.tokens;
    const char **slots[4] = {&toks.bos, &toks.eos, &toks.unk, &toks.pad};
    for (int i = 0; i < 4; i++)
        if (tok_override[i]) *slots[i] = tok_override[i];
    if (cg_chat_apply_template(setup.template_src, setup.template_len, msgs, tools, add_gen, &toks, &opts, &out, &err)) {
        rc = cg_cli_fail("template: %s", err.msg);
        goto done;
    }
    if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len) {
        rc = cg_cli_fail("template: cannot write the output");
        goto done;
    }
    rc = fflush(stdout) ? cg_cli_fail("template: cannot write the output") : 0;
done:
    cg_buf_free(&out);
    cg_chat_setup_free(&setup);
    cg_vocab_free(v);
    cg_gguf_close(g);
    free(tmpl_src);
    free(msgs);
    free(tools);
    return rc;
usage:
    fprintf(stderr, "%s\n", USAGE);
    return 2;
}
