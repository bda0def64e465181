// logits.c — `chingu logits -m MODEL -p PROMPT -o FILE [--kv-type f16|f32] [-c N_CTX] [-t THREADS]`:
// writes the last prompt position's logits (n_vocab little-endian float32 values, no header) to
// FILE. The prompt is tokenized with add_special = true, parse_special = false and evaluated in one
// batch. Exit status: 0 ok, 1 error, 2 usage.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/session.h"

static const char USAGE[] = "usage: chingu logits -m MODEL -p PROMPT -o FILE [--kv-type f16|f32] [-c N_CTX] [-t THREADS]";

int cg_cli_logits(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *path = NULL;
    cg_session_params sp = {.kv_type = CG_KV_F16};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && v) model = argv[++i];
        else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && v) prompt = argv[++i];
        else if (!strcmp(a, "-o") && v) path = argv[++i];
        else if (!strcmp(a, "--kv-type") && v) {
            if (!cg_cli_parse_kv_type(argv[++i], &sp.kv_type))
                return fprintf(stderr, "chingu logits: --kv-type must be f16 or f32, not '%s'\n", v), 2;
        } else if ((!strcmp(a, "-c") || !strcmp(a, "-t")) && v) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 1 || n > (1 << 20)) return fprintf(stderr, "chingu logits: bad %s '%s'\n", a, v), 2;
            if (a[1] == 'c') sp.n_ctx = (int)n;
            else sp.n_threads = (int)n;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            puts(USAGE);
            return 0;
        } else {
            fprintf(stderr, "chingu logits: unknown or incomplete option '%s'\n%s\n", a, USAGE);
            return 2;
        }
    }
    if (!model || !prompt || !path) {
        fprintf(stderr, "%s\n", USAGE);
        return 2;
    }
    int rc = 1;
    cg_err err = {0};
    cg_session *s = NULL;
    cg_tokens pt = {0};
    FILE *f = NULL;
    if (cg_session_open(model, &sp, &s, &err)) {
        cg_cli_fail("logits: %s", err.msg);
        goto done;
    }
    if (cg_tokenize(cg_session_vocab(s), prompt, strlen(prompt), true, false, &pt, &err)) {
        cg_cli_fail("logits: %s", err.msg);
        goto done;
    }
    if (pt.n == 0) {
        cg_cli_fail("logits: the prompt is empty after tokenization");
        goto done;
    }
    const float *logits;
    if (cg_session_feed(s, pt.ids, pt.n, &logits, &err)) {
        cg_cli_fail("logits: %s", err.msg);
        goto done;
    }
    size_t nv = (size_t)cg_model_hparams(cg_session_model(s))->n_vocab;
    f = fopen(path, "wb");
    if (!f || fwrite(logits, sizeof(float), nv, f) != nv) {
        cg_cli_fail("logits: cannot write %s", path);
        goto done;
    }
    if (fclose(f)) {
        f = NULL;
        cg_cli_fail("logits: cannot write %s", path);
        goto done;
    }
    f = NULL;
    fprintf(stderr, "chingu logits: %zu prompt tokens, %zu logits written to %s\n", pt.n, nv, path);
    rc = 0;
done:
    if (f) fclose(f);
    cg_tokens_free(&pt);
    cg_session_free(s);
    return rc;
}
