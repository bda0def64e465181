// run.c — `chingu run MODEL [-n N] [--temp T] [--seed S] [--kv-type f16|f32] [-c N_CTX] [-t THREADS]`:
// an interactive session in the terminal. Each line typed is appended to the conversation and the
// model's reply streams back as it is generated, until an end-of-generation token or N tokens
// (default 256). The conversation stays in the KV cache, so later turns continue it.
// Commands: /clear starts over, /exit (or end of input) quits. Ctrl-C stops the reply being
// generated, not the program.
//
// Chat templates: a model that carries tokenizer.chat_template (or any model with --template NAME,
// a built-in: chatml, llama3, …) is chatted with through its template: the conversation is kept as
// messages, re-rendered each turn, and only the new text (the delta after what the KV cache already
// holds) is tokenized (parse_special) and fed, as llama.cpp's llama-cli does. When the rendered
// history no longer extends what was fed (a template that rewrites earlier turns), the cache is
// rebuilt from the full prompt. A model without a template (a base model such as TinyStories) gets
// plain-text turns: the model continues the text. --raw forces that mode; --system sets a system
// message.
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
#include "tok/chat.h"
#include "tok/jval.h"

static const char USAGE[] =
    "usage: chingu run MODEL [-n N] [--temp T] [--seed S] [--kv-type f16|f32] [-c N_CTX] [-t THREADS]\n"
    "                        [--template NAME | --raw] [--system TEXT]";

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

// Generates a reply after the tokens already fed (the user's turn: `prev`), logits are those of the
// last fed token. The turn's tokens go through the detokenizer first (output discarded) so the
// reply's first piece keeps its leading space.
// The reply's text is appended to `collect` as it streams.
static int reply(cg_session *s, const cg_tokens *prev, const float *logits, long n_max, float temp, uint64_t *rng,
                 cg_buf *collect) {
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
        if (chunk.len) {   // a held-back partial character gives an empty chunk (data may be NULL)
            fwrite(chunk.data, 1, chunk.len, stdout);
            fflush(stdout);
            cg_buf_append(collect, chunk.data, chunk.len);
        }
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
    if (cg_detok_stream_flush(ds, &chunk, &err) == CG_OK && chunk.len) {
        fwrite(chunk.data, 1, chunk.len, stdout);
        cg_buf_append(collect, chunk.data, chunk.len);
    }
    if (g_interrupted) printf(" [stopped]");
    putchar('\n');
    rc = 0;
done:
    cg_buf_free(&chunk);
    cg_detok_stream_free(ds);
    return rc;
}

// Chat mode state: the messages so far and the rendered text the KV cache holds.
typedef struct chat {
    cg_chat_setup setup;
    cg_jval *messages;   // owned list of {"role", "content"}
    const char *system;  // borrowed from argv
    cg_buf fed;          // rendered text already in the cache
} chat;

static cg_status chat_reset(chat *c, cg_err *err) {
    cg_jval_unref(c->messages);
    c->messages = cg_jval_list();
    cg_buf_reset(&c->fed);
    if (!c->messages) return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
    return CG_OK;
}

static cg_status chat_push(chat *c, const char *role, const char *text, size_t n, cg_err *err) {
    // The containers take over the references they are given, also when they fail (see jval.c).
    cg_jval *m = cg_jval_dict();
    if (!m || !cg_jval_dict_set_c(m, "role", cg_jval_cstr(role)) || !cg_jval_dict_set_c(m, "content", cg_jval_str(text, n))) {
        cg_jval_unref(m);
        return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
    }
    return cg_jval_list_push(c->messages, m) ? CG_OK : cg_err_set(err, CG_ERR_NOMEM, "out of memory");
}

// Drops the last message (a user turn that could not be fed).
static void chat_pop(chat *c) {
    if (c->messages->u.list.n) cg_jval_unref(c->messages->u.list.items[--c->messages->u.list.n]);
}

static cg_status chat_render(const chat *c, bool add_gen, cg_buf *out, cg_err *err) {
    cg_buf js;
    cg_buf_init(&js);
    cg_jval_dump_opts o = {.indent = -1};
    cg_buf_reset(out);
    cg_status st = cg_jval_dump(c->messages, &o, &js, err);
    if (!st)
        st = cg_chat_apply_template(c->setup.template_src, c->setup.template_len, js.data, NULL, add_gen,
                                    &c->setup.tokens, NULL, out, err);
    cg_buf_free(&js);
    if (!st && !cg_buf_ok(out)) st = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
    return st;
}

// Tokenizes `text` (special-token texts become their tokens) and feeds it. The first text of an
// empty cache gets BOS unless the template already wrote it.
static cg_status chat_feed(cg_session *s, const chat *c, const char *text, size_t n, cg_tokens *t,
                           const float **logits, cg_err *err) {
    const char *bos = c->setup.tokens.bos;
    bool add_special = cg_session_n_past(s) == 0 && !(bos && *bos && n >= strlen(bos) && !memcmp(text, bos, strlen(bos)));
    cg_tokens_free(t);
    cg_status st = cg_tokenize(cg_session_vocab(s), text, n, add_special, true, t, err);
    if (st || t->n == 0) return st;
    return cg_session_feed(s, t->ids, t->n, logits, err);
}

static bool has_prefix(const cg_buf *b, const cg_buf *prefix) {
    return b->len >= prefix->len && (prefix->len == 0 || !memcmp(b->data, prefix->data, prefix->len));
}

// One chat turn: the user's line in, the model's reply out (streamed), history updated.
static int chat_turn(cg_session *s, chat *c, const char *line, size_t n, long n_max, float temp, uint64_t *rng) {
    cg_err err = {0};
    cg_buf p, answer;
    cg_buf_init(&p);
    cg_buf_init(&answer);
    cg_tokens t = {0};
    const float *logits = NULL;
    int rc = 1;
    if (chat_push(c, "user", line, n, &err) || chat_render(c, true, &p, &err)) {
        cg_cli_fail("run: %s", err.msg);
        goto done;
    }
    if (!has_prefix(&p, &c->fed)) {   // the template rewrote history: rebuild the cache
        cg_session_rewind(s, 0);
        cg_buf_reset(&c->fed);
    }
    if (chat_feed(s, c, p.data + c->fed.len, p.len - c->fed.len, &t, &logits, &err)) {
        fprintf(stderr, "chingu run: %s (use /clear)\n", err.msg);
        chat_pop(c);
        cg_session_rewind(s, 0);   // the cache no longer matches `fed`
        cg_buf_reset(&c->fed);
        rc = 0;
        goto done;
    }
    cg_buf_reset(&c->fed);
    cg_buf_append(&c->fed, p.data, p.len);
    if (!logits) {   // nothing new to feed: cannot happen with a generation prompt, but be safe
        rc = 0;
        goto done;
    }
    cg_tokens none = {0};
    if (reply(s, &none, logits, n_max, temp, rng, &answer)) goto done;
    // Close the assistant turn the way the template writes it (e.g. "<|im_end|>\n") so the next
    // turn's delta starts right after it.
    cg_buf_append(&c->fed, answer.data, answer.len);
    if (chat_push(c, "assistant", answer.data ? answer.data : "", answer.len, &err) || chat_render(c, false, &p, &err)) {
        cg_cli_fail("run: %s", err.msg);
        goto done;
    }
    if (has_prefix(&p, &c->fed) && p.len > c->fed.len) {
        if (chat_feed(s, c, p.data + c->fed.len, p.len - c->fed.len, &t, &logits, &err) == CG_OK) {
            cg_buf_reset(&c->fed);
            cg_buf_append(&c->fed, p.data, p.len);
        } else {
            cg_session_rewind(s, 0);
            cg_buf_reset(&c->fed);
        }
    }
    rc = cg_buf_ok(&c->fed) ? 0 : cg_cli_fail("run: out of memory");
done:
    cg_tokens_free(&t);
    cg_buf_free(&p);
    cg_buf_free(&answer);
    return rc;
}

int cg_cli_run(int argc, char **argv) {
    const char *model = NULL;
    long n_max = 256;
    double temp = 0.0;
    uint64_t rng = (uint64_t)time(NULL);
    cg_session_params sp = {.kv_type = CG_KV_F16};
    const char *template_name = NULL, *system_text = NULL;
    bool raw = false;
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
        } else if (!strcmp(a, "--template") && v) {
            template_name = argv[++i];
        } else if (!strcmp(a, "--system") && v) {
            system_text = argv[++i];
        } else if (!strcmp(a, "--raw")) {
            raw = true;
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
    chat c = {0};
    cg_buf_init(&c.fed);
    bool chat_mode = false;
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
    const cg_gguf *g = cg_model_gguf(cg_session_model(s));
    chat_mode = !raw && (template_name || cg_gguf_find(g, "tokenizer.chat_template"));
    if (chat_mode) {
        c.system = system_text;
        if (cg_chat_setup_from_model(g, cg_session_vocab(s), template_name, &c.setup, &err) || chat_reset(&c, &err) ||
            (c.system && chat_push(&c, "system", c.system, strlen(c.system), &err))) {
            cg_cli_fail("run: %s", err.msg);
            goto done;
        }
        fprintf(stderr, "chingu run: chat template: %s\n", c.setup.builtin ? c.setup.builtin : "the model's own");
    } else {
        fprintf(stderr, "chingu run: no chat template: plain-text turns (the model continues your text)\n");
    }
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
            if (chat_mode && (chat_reset(&c, &err) || (c.system && chat_push(&c, "system", c.system, strlen(c.system), &err)))) {
                cg_cli_fail("run: %s", err.msg);
                goto done;
            }
            fprintf(stderr, "[conversation cleared]\n");
            continue;
        }
        if (n == 0) continue;
        if (chat_mode) {
            if (chat_turn(s, &c, line, (size_t)n, n_max, (float)temp, &rng)) goto done;
            continue;
        }
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
        cg_buf answer;
        cg_buf_init(&answer);
        int r = reply(s, &t, logits, n_max, (float)temp, &rng, &answer);
        cg_buf_free(&answer);
        if (r) goto done;
    }
    rc = 0;
done:
    sigaction(SIGINT, &old, NULL);
    free(line);
    cg_tokens_free(&t);
    cg_jval_unref(c.messages);
    cg_buf_free(&c.fed);
    cg_chat_setup_free(&c.setup);
    cg_session_free(s);
    return rc;
}
