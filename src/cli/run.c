// run.c — `chingu run MODEL [-n N] [--temp T] [--seed S] [--kv-type f16|f32] [-c N_CTX] [-t THREADS]`:
// an interactive session in the terminal. Each line typed is appended to the conversation and the
// model's reply streams back as it is generated, until an end-of-generation token or N tokens
// (default 256). The conversation stays in the KV cache, so later turns continue it.
// Commands: /clear starts over, /exit (or end of input) quits. Ctrl-C stops the reply being
// generated, not the program.
//
// Chat templates: the template engine lives on another branch and is not linked yet, so the turns
// are sent as plain text (the model continues the text), which is also what a base model such as
// TinyStories expects. A model that carries tokenizer.chat_template gets a notice.
//
// The SIGINT flag is the only static state (a signal handler can reach nothing else); src/cli is
// allowed process-level state. Exit status: 0 ok, 1 error, 2 usage.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "cli/cli.h"
#include "engine/session.h"

static const char USAGE[] =
    "usage: chingu run MODEL [-n N] [--temp T] [--seed S] [--kv-type f16|f32] [-c N_CTX] [-t THREADS]";

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

// Generates a reply after the tokens already fed (the user's turn: `prev`), logits are those of the
// last fed token. The turn's tokens go through the detokenizer first (output discarded) so the
// reply's first piece keeps its leading space.
static int reply(cg_session *s, const cg_tokens *prev, const float *logits, long n_max, float temp, uint64_t *rng) {
    const cg_vocab *voc = cg_session_vocab(s);
    int64_t nv = cg_model_hparams(cg_session_model(s))->n_vocab;
    cg_err err = {0};
    cg_detok_stream *ds = NULL;
    cg_buf chunk;
    cg_buf_init(&chunk);
    int rc = 1;
    if (cg_detok_stream_new(voc, false, &ds, &err)) {
        cg_cli_fail("run: %s", err.msg);
        goto done;
    }
    for (size_t i = 0; i < prev->n; i++)
        if (cg_detok_stream_feed(ds, prev->ids[i], &chunk, &err)) {
            cg_cli_fail("run: %s", err.msg);
            goto done;
        }
    for (long g = 0; g < n_max && !g_interrupted; g++) {
        int32_t t = cg_sample_token(logits, nv, temp, rng);
        if (cg_vocab_is_eog(voc, t)) break;
        chunk.len = 0;
        if (cg_detok_stream_feed(ds, t, &chunk, &err)) {
            cg_cli_fail("run: %s", err.msg);
            goto done;
        }
        fwrite(chunk.data, 1, chunk.len, stdout);
        fflush(stdout);
        if (cg_session_n_past(s) >= cg_session_n_ctx(s)) {
            printf("\n[the context of %d tokens is full: /clear to start over]", cg_session_n_ctx(s));
            break;
        }
        if (cg_session_feed(s, &t, 1, &logits, &err)) {
            cg_cli_fail("run: %s", err.msg);
            goto done;
        }
    }
    chunk.len = 0;
    if (cg_detok_stream_flush(ds, &chunk, &err) == CG_OK) fwrite(chunk.data, 1, chunk.len, stdout);
    if (g_interrupted) printf(" [stopped]");
    putchar('\n');
    rc = 0;
done:
    cg_buf_free(&chunk);
    cg_detok_stream_free(ds);
    return rc;
}

int cg_cli_run(int argc, char **argv) {
    const char *model = NULL;
    long n_max = 256;
    double temp = 0.0;
    uint64_t rng = (uint64_t)time(NULL);
    cg_session_params sp = {.kv_type = CG_KV_F16};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "-n") && v) {
            n_max = strtol(argv[++i], &end, 10);
            if (*end || n_max < 1 || n_max > (1 << 20)) return fprintf(stderr, "chingu run: bad -n '%s'\n", v), 2;
        } else if (!strcmp(a, "--temp") && v) {
            temp = strtod(argv[++i], &end);
            if (*end || !(temp >= 0.0) || temp > 100.0) return fprintf(stderr, "chingu run: bad --temp '%s'\n", v), 2;
        } else if (!strcmp(a, "--seed") && v) {
            rng = strtoull(argv[++i], &end, 10);
            if (*end) return fprintf(stderr, "chingu run: bad --seed '%s'\n", v), 2;
        } else if (!strcmp(a, "--kv-type") && v) {
            if (!cg_cli_parse_kv_type(argv[++i], &sp.kv_type))
                return fprintf(stderr, "chingu run: --kv-type must be f16 or f32, not '%s'\n", v), 2;
        } else if ((!strcmp(a, "-c") || !strcmp(a, "-t")) && v) {
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 1 || n > (1 << 20)) return fprintf(stderr, "chingu run: bad %s '%s'\n", a, v), 2;
            if (a[1] == 'c') sp.n_ctx = (int)n;
            else sp.n_threads = (int)n;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            puts(USAGE);
            return 0;
        } else if (a[0] != '-' && !model) {
            model = a;
        } else {
            fprintf(stderr, "chingu run: unknown or incomplete option '%s'\n%s\n", a, USAGE);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "%s\n", USAGE);
        return 2;
    }
    int rc = 1;
    cg_err err = {0};
    cg_session *s = NULL;
    cg_tokens t = {0};
    char *line = NULL;
    size_t cap = 0;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    if (cg_session_open(model, &sp, &s, &err)) {
        cg_cli_fail("run: %s", err.msg);
        goto done;
    }
    if (cg_gguf_find(cg_model_gguf(cg_session_model(s)), "tokenizer.chat_template"))
        fprintf(stderr, "chingu run: this model has a chat template; it is not applied yet (plain text turns)\n");
    fprintf(stderr, "chingu run: %s — type text and press Enter; /clear starts over, /exit quits\n", model);
    for (;;) {
        g_interrupted = 0;
        fputs("> ", stdout);
        fflush(stdout);
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            if (g_interrupted) {   // Ctrl-C at the prompt: a fresh prompt, not an exit
                clearerr(stdin);
                putchar('\n');
                continue;
            }
            putchar('\n');
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/clear")) {
            cg_session_rewind(s, 0);
            fprintf(stderr, "[conversation cleared]\n");
            continue;
        }
        if (n == 0) continue;
        // The first turn starts with BOS (add_special); later turns continue after a space.
        cg_tokens_free(&t);
        bool first = cg_session_n_past(s) == 0;
        cg_buf text;
        cg_buf_init(&text);
        if (!first) cg_buf_putc(&text, ' ');
        cg_buf_append(&text, line, (size_t)n);
        cg_status st = cg_buf_ok(&text) ? cg_tokenize(cg_session_vocab(s), text.data, text.len, first, false, &t, &err)
                                         : cg_err_set(&err, CG_ERR_NOMEM, "out of memory");
        cg_buf_free(&text);
        if (st) {
            cg_cli_fail("run: %s", err.msg);
            goto done;
        }
        if (t.n == 0) continue;
        const float *logits;
        if (cg_session_feed(s, t.ids, t.n, &logits, &err)) {
            fprintf(stderr, "chingu run: %s (use /clear)\n", err.msg);
            continue;
        }
        fwrite(line, 1, (size_t)n, stdout);   // the reply continues the text
        if (reply(s, &t, logits, n_max, (float)temp, &rng)) goto done;
    }
    rc = 0;
done:
    sigaction(SIGINT, &old, NULL);
    free(line);
    cg_tokens_free(&t);
    cg_session_free(s);
    return rc;
}
