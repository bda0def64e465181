// generate.c — `chingu generate -m MODEL -p PROMPT [-n N] [--temp T] [--seed S] [--kv-type f16|f32]
// [-c N_CTX] [-t THREADS] [--ignore-eos] [--json]`: the continuation of a prompt.
//
// The prompt is tokenized with add_special = true, parse_special = false (as llama.cpp does for
// generation), evaluated in one batch, then N tokens (default 64) are generated one at a time:
// greedy when --temp is 0 (the default), else sampled from softmax(logits / T) with --seed.
// Generation stops at an end-of-generation token unless --ignore-eos. Text output streams the
// continuation to stdout as it is produced (valid UTF-8: the streaming detokenizer holds back
// incomplete sequences). --json prints one line {"prompt_tokens":[…],"tokens":[…],"text":"…"} at the
// end. A prompt longer than the context is an error that states both numbers.
// Exit status: 0 ok, 1 error, 2 usage.
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "cli/cli.h"
#include "engine/session.h"

static const char USAGE[] =
    "usage: chingu generate -m MODEL -p PROMPT [-n N] [--temp T] [--seed S] [--kv-type f16|f32] [-c N_CTX] "
    "[-t THREADS] [--ignore-eos] [--json]";

// Parses a non-negative integer option value; false on garbage.
static bool parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

int cg_cli_parse_kv_type(const char *s, cg_kv_dtype *out) {
    if (!strcmp(s, "f16")) *out = CG_KV_F16;
    else if (!strcmp(s, "f32")) *out = CG_KV_F32;
    else return 0;
    return 1;
}

int cg_cli_generate(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL;
    long n_gen = 64, n_ctx = 0, n_threads = 0;
    double temp = 0.0;
    unsigned long long seed = (unsigned long long)time(NULL);
    bool json = false, ignore_eos = false;
    cg_session_params sp = {.kv_type = CG_KV_F16};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && v) model = argv[++i];
        else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && v) prompt = argv[++i];
        else if ((!strcmp(a, "-n") || !strcmp(a, "--n-predict")) && v) {
            if (!parse_int(argv[++i], 0, 1 << 20, &n_gen)) return fprintf(stderr, "chingu generate: bad -n '%s'\n", v), 2;
        } else if ((!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) && v) {
            if (!parse_int(argv[++i], 1, 1 << 20, &n_ctx)) return fprintf(stderr, "chingu generate: bad -c '%s'\n", v), 2;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && v) {
            if (!parse_int(argv[++i], 1, 1024, &n_threads))
                return fprintf(stderr, "chingu generate: bad -t '%s'\n", v), 2;
        } else if (!strcmp(a, "--temp") && v) {
            char *end;
            temp = strtod(argv[++i], &end);
            if (*end || !(temp >= 0.0) || temp > 100.0)
                return fprintf(stderr, "chingu generate: bad --temp '%s' (0..100)\n", v), 2;
        } else if (!strcmp(a, "--seed") && v) {
            char *end;
            seed = strtoull(argv[++i], &end, 10);
            if (*end || !*v) return fprintf(stderr, "chingu generate: bad --seed '%s'\n", v), 2;
        } else if (!strcmp(a, "--kv-type") && v) {
            if (!cg_cli_parse_kv_type(argv[++i], &sp.kv_type))
                return fprintf(stderr, "chingu generate: --kv-type must be f16 or f32, not '%s'\n", v), 2;
        } else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--ignore-eos")) ignore_eos = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            puts(USAGE);
            return 0;
        } else {
            fprintf(stderr, "chingu generate: unknown or incomplete option '%s'\n%s\n", a, USAGE);
            return 2;
        }
    }
    if (!model || !prompt) {
        fprintf(stderr, "%s\n", USAGE);
        return 2;
    }
    sp.n_ctx = (int)n_ctx;
    sp.n_threads = (int)n_threads;

    int rc = 1;
    cg_err err = {0};
    cg_session *s = NULL;
    cg_tokens pt = {0};
    int32_t *gen = NULL;
    size_t n_out = 0;
    cg_detok_stream *ds = NULL;
    cg_buf text, chunk;
    cg_buf_init(&text);
    cg_buf_init(&chunk);
    json_t *out = NULL;
    uint64_t rng = seed;
    if (cg_session_open(model, &sp, &s, &err)) {
        cg_cli_fail("generate: %s", err.msg);
        goto done;
    }
    const cg_vocab *voc = cg_session_vocab(s);
    int64_t nv = cg_model_hparams(cg_session_model(s))->n_vocab;
    if (cg_tokenize(voc, prompt, strlen(prompt), true, false, &pt, &err) ||
        cg_detok_stream_new(voc, false, &ds, &err)) {
        cg_cli_fail("generate: %s", err.msg);
        goto done;
    }
    if (pt.n == 0) {
        cg_cli_fail("generate: the prompt is empty after tokenization");
        goto done;
    }
    // The stream sees the prompt too (its text is discarded), so the continuation keeps the
    // leading space an SPM vocabulary strips from a text's first piece.
    for (size_t i = 0; i < pt.n; i++)
        if (cg_detok_stream_feed(ds, pt.ids[i], &chunk, &err)) {
            cg_cli_fail("generate: %s", err.msg);
            goto done;
        }
    const float *logits;
    if (cg_session_feed(s, pt.ids, pt.n, &logits, &err)) {
        cg_cli_fail("generate: %s", err.msg);
        goto done;
    }
    for (long g = 0; g < n_gen; g++) {
        int32_t t = cg_sample_token(logits, nv, (float)temp, &rng);
        int32_t *grown = realloc(gen, (n_out + 1) * sizeof *gen);
        if (!grown) {
            cg_cli_fail("generate: out of memory");
            goto done;
        }
        gen = grown;
        gen[n_out++] = t;
        bool eog = cg_vocab_is_eog(voc, t);
        if (!(eog && !ignore_eos)) {
            chunk.len = 0;
            if (cg_detok_stream_feed(ds, t, &chunk, &err)) {
                cg_cli_fail("generate: %s", err.msg);
                goto done;
            }
            cg_buf_append(&text, chunk.data, chunk.len);
            if (!json && chunk.len) {
                fwrite(chunk.data, 1, chunk.len, stdout);
                fflush(stdout);
            }
        }
        if (eog && !ignore_eos) break;
        if (g + 1 == n_gen) break;
        if (cg_session_n_past(s) >= cg_session_n_ctx(s)) {
            fprintf(stderr, "\nchingu generate: context of %d tokens is full; stopping\n", cg_session_n_ctx(s));
            break;
        }
        if (cg_session_feed(s, &t, 1, &logits, &err)) {
            cg_cli_fail("generate: %s", err.msg);
            goto done;
        }
    }
    chunk.len = 0;
    if (cg_detok_stream_flush(ds, &chunk, &err)) {
        cg_cli_fail("generate: %s", err.msg);
        goto done;
    }
    cg_buf_append(&text, chunk.data, chunk.len);
    if (!cg_buf_ok(&text) || !cg_buf_ok(&chunk)) {
        cg_cli_fail("generate: out of memory");
        goto done;
    }
    if (json) {
        out = json_object();
        json_t *a = json_array(), *b = json_array();
        for (size_t i = 0; i < pt.n; i++) json_array_append_new(a, json_integer(pt.ids[i]));
        for (size_t i = 0; i < n_out; i++) json_array_append_new(b, json_integer(gen[i]));
        json_object_set_new(out, "prompt_tokens", a);
        json_object_set_new(out, "tokens", b);
        json_object_set_new(out, "text", json_stringn(text.data ? text.data : "", text.len));
        char *js = json_dumps(out, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (!js) {
            cg_cli_fail("generate: cannot encode the JSON output");
            goto done;
        }
        puts(js);
        free(js);
    } else {
        fwrite(chunk.data, 1, chunk.len, stdout);
        putchar('\n');
    }
    rc = 0;
done:
    json_decref(out);
    cg_buf_free(&text);
    cg_buf_free(&chunk);
    cg_detok_stream_free(ds);
    cg_tokens_free(&pt);
    free(gen);
    cg_session_free(s);
    return rc;
}
