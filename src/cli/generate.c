// generate.c — `chingu generate -m MODEL -p PROMPT [options]`: the continuation of a prompt, optionally
// constrained by a GBNF grammar or a JSON Schema, with the sampler options of llama.cpp.
//
// The prompt is tokenized with add_special = true, parse_special = false (as llama.cpp does for
// generation), evaluated in one batch, added to the sampler's history (penalties see it, as in
// llama.cpp), then up to N tokens (default 64) are generated one at a time with the sampler chain
// of src/sample (setup.h: mask by the grammar → sample → accept). Greedy when --temp is 0 (the
// default); with --temp > 0 the chain uses llama.cpp's defaults (top-k 40, top-p 0.95, min-p 0.05)
// unless told otherwise. Generation stops at an end-of-generation token (unless --ignore-eos), at a
// --stop string (matched across token boundaries, not printed), when the grammar allows nothing
// more, at N tokens, or when the context is full. Under a grammar or schema, N (or the room left in
// the context) is a budget the output always fits in: it closes what it opened and ends complete,
// with finish "grammar" (setup.h, cg_sample_seq_set_budget), given a vocabulary with single-byte
// tokens (byte-level BPE, SentencePiece byte fallback) and N at least the shortest sentence. Text
// output streams the continuation to stdout as it is produced (valid UTF-8: the streaming
// detokenizer holds back incomplete sequences; the stop matcher holds back what could still become
// a stop string). --json prints one line
// {"prompt_tokens":[…],"tokens":[…],"text":"…","finish":"eog|stop|length|grammar|context"} at the end.
// A prompt longer than the context is an error that states both numbers; a bad grammar or schema
// file is one line naming the file, the line and the column (or the JSON pointer of a schema keyword).
// Exit status: 0 ok, 1 error, 2 usage.
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/mmap.h"
#include "cli/cli.h"
#include "engine/session.h"
#include "sample/setup.h"
#include "sample/stop.h"

static const char USAGE[] =
    "usage: chingu generate -m MODEL -p PROMPT [-n N] [--seed S] [--kv-type f16|f32] [-c N_CTX] [-t THREADS]\n"
    "         [--ignore-eos] [--json] [--stop STR]... [--grammar FILE | --json-schema FILE | --json-object]\n"
    "         [--temp T] [--top-k K] [--top-p P] [--min-p P] [--typical P] [--min-keep N]\n"
    "         [--repeat-penalty F] [--repeat-last-n N] [--presence-penalty F] [--frequency-penalty F]\n"
    "         [--mirostat 0|2] [--mirostat-lr ETA] [--mirostat-ent TAU] [--dry-multiplier F] [--dry-base F]\n"
    "         [--dry-allowed-length N] [--dry-penalty-last-n N] [--xtc-probability P] [--xtc-threshold P]\n"
    "         [--logit-bias ID(+|-)BIAS]...";

#define MAX_BIAS 256

// Parses an integer option value within [lo, hi]; false on garbage.
static bool parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

// Parses a finite float option value within [lo, hi]; false on garbage.
static bool parse_float(const char *s, double lo, double hi, float *out) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !isfinite(v) || v < lo || v > hi) return false;
    *out = (float)v;
    return true;
}

// "ID+BIAS" / "ID-BIAS" (llama.cpp's --logit-bias; BIAS may be "inf": "-inf" bans the token).
static bool parse_bias(const char *s, cg_logit_bias *out) {
    char *end;
    long id = strtol(s, &end, 10);
    if (end == s || id < 0 || id > INT32_MAX || (*end != '+' && *end != '-')) return false;
    char *e2;
    double b = strtod(end, &e2);
    if (e2 == end + 1 || *e2 || isnan(b)) return false;
    *out = (cg_logit_bias){(int32_t)id, (float)b};
    return true;
}

int cg_cli_parse_kv_type(const char *s, cg_kv_dtype *out) {
    if (!strcmp(s, "f16")) *out = CG_KV_F16;
    else if (!strcmp(s, "f32")) *out = CG_KV_F32;
    else return 0;
    return 1;
}

// Float sampler options: name, field, range.
typedef struct fopt { const char *name; size_t off; double lo, hi; } fopt;
#define FO(n, f, lo, hi) {n, offsetof(cg_sampler_params, f), lo, hi}
static const fopt FOPTS[] = {
    FO("--temp", temperature, 0, 100),           FO("--top-p", top_p, 0, 1),
    FO("--min-p", min_p, 0, 1),                  FO("--typical", typical_p, 0, 1),
    FO("--repeat-penalty", repeat_penalty, 1e-6, 1e6),
    FO("--presence-penalty", presence_penalty, -1e6, 1e6),
    FO("--frequency-penalty", frequency_penalty, -1e6, 1e6),
    FO("--mirostat-lr", mirostat_eta, 1e-9, 1e6), FO("--mirostat-ent", mirostat_tau, 1e-9, 1e6),
    FO("--dry-multiplier", dry_multiplier, 0, 1e6), FO("--dry-base", dry_base, 1, 1e6),
    FO("--xtc-probability", xtc_probability, 0, 1), FO("--xtc-threshold", xtc_threshold, 0, 1),
};

// The byte offset a JSON error message names ("… at byte offset N"), as line and column (1-based;
// columns count code points).
static bool offset_linecol(const char *msg, const char *src, size_t n, size_t *line, size_t *col) {
    static const char AT[] = "json: ";   // a syntax error of the reader (jval.h), not a schema keyword's
    static const char OFF[] = " at byte offset ";
    const char *j = strstr(msg, AT), *at = j ? strstr(j, OFF) : NULL;
    if (!at) return false;
    size_t off = (size_t)strtoull(at + sizeof OFF - 1, NULL, 10);
    if (off > n) off = n;
    *line = 1, *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (src[i] == '\n') (*line)++, *col = 1;
        else if (((unsigned char)src[i] & 0xC0) != 0x80) (*col)++;
    }
    return true;
}

// Reads the grammar or schema file and compiles it; on error prints one line naming the file.
static bool load_grammar(cg_sample_grammar_kind kind, const char *path, cg_grammar **out) {
    cg_err err = {0};
    unsigned char *src = NULL;
    size_t n = 0;
    bool ok = false;
    if (kind == CG_SAMPLE_GRAMMAR_JSON_OBJECT) {
        ok = cg_sample_grammar_build(kind, NULL, 0, out, &err) == CG_OK;
        if (!ok) cg_cli_fail("generate: %s", err.msg);
        return ok;
    }
    if (cg_file_read_all(path, &src, &n, &err)) {
        cg_cli_fail("generate: %s", err.msg);
        return false;
    }
    cg_status st = cg_sample_grammar_build(kind, (const char *)src, n, out, &err);
    size_t line, col;
    if (st == CG_OK) ok = true;
    else if (kind == CG_SAMPLE_GRAMMAR_JSON_SCHEMA && offset_linecol(err.msg, (const char *)src, n, &line, &col))
        cg_cli_fail("generate: %s:%zu:%zu: %s", path, line, col, err.msg);
    else
        cg_cli_fail("generate: %s: %s", path, err.msg);   // GBNF: the message has the line and column
    free(src);
    return ok;
}

static const char *const FINISH[] = {"length", "eog", "stop", "grammar", "context"};
enum { FIN_LENGTH, FIN_EOG, FIN_STOP, FIN_GRAMMAR, FIN_CONTEXT };

int cg_cli_generate(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *gpath = NULL;
    cg_sample_grammar_kind gkind = CG_SAMPLE_GRAMMAR_GBNF;
    long n_gen = 64, n_ctx = 0, n_threads = 0, lv;
    unsigned long long seed = (unsigned long long)time(NULL);
    bool json = false, ignore_eos = false, has_constraint = false;
    cg_session_params sesp = {.kv_type = CG_KV_F16};
    cg_sampler_params sp;
    cg_sampler_params_default(&sp);
    sp.temperature = 0.0f;   // greedy unless asked
    cg_logit_bias bias[MAX_BIAS];
    size_t n_bias = 0;
    const char *stops[CG_STOP_MAX_STRINGS];
    size_t stop_lens[CG_STOP_MAX_STRINGS], n_stops = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const fopt *fo = NULL;
        for (size_t k = 0; k < sizeof FOPTS / sizeof *FOPTS && v; k++)
            if (!strcmp(a, FOPTS[k].name)) fo = &FOPTS[k];
        if (fo) {
            i++;
            if (!parse_float(v, fo->lo, fo->hi, (float *)((char *)&sp + fo->off)))
                return fprintf(stderr, "chingu generate: bad %s '%s' (%g..%g)\n", a, v, fo->lo, fo->hi), 2;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && v) model = argv[++i];
        else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && v) prompt = argv[++i];
        else if ((!strcmp(a, "-n") || !strcmp(a, "--n-predict")) && v) {
            if (!parse_int(argv[++i], 0, 1 << 20, &n_gen)) return fprintf(stderr, "chingu generate: bad -n '%s'\n", v), 2;
        } else if ((!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) && v) {
            if (!parse_int(argv[++i], 1, 1 << 20, &n_ctx)) return fprintf(stderr, "chingu generate: bad -c '%s'\n", v), 2;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && v) {
            if (!parse_int(argv[++i], 1, 1024, &n_threads))
                return fprintf(stderr, "chingu generate: bad -t '%s'\n", v), 2;
        } else if (!strcmp(a, "--top-k") && v) {
            if (!parse_int(argv[++i], 0, INT32_MAX, &lv)) return fprintf(stderr, "chingu generate: bad --top-k '%s'\n", v), 2;
            sp.top_k = (int32_t)lv;
        } else if (!strcmp(a, "--min-keep") && v) {
            if (!parse_int(argv[++i], 0, 1 << 20, &lv)) return fprintf(stderr, "chingu generate: bad --min-keep '%s'\n", v), 2;
            sp.min_keep = (size_t)lv;
        } else if (!strcmp(a, "--repeat-last-n") && v) {
            if (!parse_int(argv[++i], -1, INT32_MAX, &lv))
                return fprintf(stderr, "chingu generate: bad --repeat-last-n '%s' (-1: the whole context)\n", v), 2;
            sp.penalty_last_n = (int32_t)lv;
        } else if (!strcmp(a, "--dry-allowed-length") && v) {
            if (!parse_int(argv[++i], 0, 1 << 20, &lv))
                return fprintf(stderr, "chingu generate: bad --dry-allowed-length '%s'\n", v), 2;
            sp.dry_allowed_length = (int32_t)lv;
        } else if (!strcmp(a, "--dry-penalty-last-n") && v) {
            if (!parse_int(argv[++i], -1, INT32_MAX, &lv))
                return fprintf(stderr, "chingu generate: bad --dry-penalty-last-n '%s' (-1: the whole context)\n", v), 2;
            sp.dry_last_n = (int32_t)lv;
        } else if (!strcmp(a, "--mirostat") && v) {
            if (!parse_int(argv[++i], 0, 2, &lv) || lv == 1)
                return fprintf(stderr, "chingu generate: bad --mirostat '%s' (0 off, 2 mirostat v2; v1 is not implemented)\n", v), 2;
            sp.mirostat = (int)lv;
        } else if (!strcmp(a, "--logit-bias") && v) {
            if (n_bias == MAX_BIAS) return fprintf(stderr, "chingu generate: more than %d --logit-bias\n", MAX_BIAS), 2;
            if (!parse_bias(argv[++i], &bias[n_bias]))
                return fprintf(stderr, "chingu generate: bad --logit-bias '%s' (ID+BIAS or ID-BIAS, e.g. 15043-inf)\n", v), 2;
            n_bias++;
        } else if (!strcmp(a, "--stop") && v) {
            size_t len = strlen(argv[++i]);
            if (n_stops == CG_STOP_MAX_STRINGS || len == 0 || len > CG_STOP_MAX_LEN)
                return fprintf(stderr, "chingu generate: --stop '%s': 1..%d bytes, at most %d of them\n", v,
                               CG_STOP_MAX_LEN, CG_STOP_MAX_STRINGS), 2;
            stops[n_stops] = v;
            stop_lens[n_stops++] = len;
        } else if ((!strcmp(a, "--grammar") || !strcmp(a, "--grammar-file") || !strcmp(a, "--json-schema") ||
                    !strcmp(a, "--json-schema-file")) && v) {
            if (has_constraint)
                return fprintf(stderr, "chingu generate: give one of --grammar, --json-schema, --json-object\n"), 2;
            has_constraint = true;
            gkind = !strncmp(a, "--grammar", 9) ? CG_SAMPLE_GRAMMAR_GBNF : CG_SAMPLE_GRAMMAR_JSON_SCHEMA;
            gpath = argv[++i];
        } else if (!strcmp(a, "--json-object")) {
            if (has_constraint)
                return fprintf(stderr, "chingu generate: give one of --grammar, --json-schema, --json-object\n"), 2;
            has_constraint = true;
            gkind = CG_SAMPLE_GRAMMAR_JSON_OBJECT;
        } else if (!strcmp(a, "--seed") && v) {
            char *end;
            seed = strtoull(argv[++i], &end, 10);
            if (*end || !*v || *v == '-') return fprintf(stderr, "chingu generate: bad --seed '%s'\n", v), 2;
        } else if (!strcmp(a, "--kv-type") && v) {
            if (!cg_cli_parse_kv_type(argv[++i], &sesp.kv_type))
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
    sesp.n_ctx = (int)n_ctx;
    sesp.n_threads = (int)n_threads;
    sp.seed = seed;
    sp.logit_bias = bias;
    sp.n_logit_bias = n_bias;

    int rc = 1, finish = FIN_LENGTH;
    cg_err err = {0};
    cg_session *s = NULL;
    cg_tokens pt = {0};
    int32_t *gen = NULL;
    size_t n_out = 0;
    cg_detok_stream *ds = NULL;
    cg_grammar *grammar = NULL;
    cg_sample_vocab sv = {0};
    cg_sample_seq seq = {0};
    cg_stop *stop = NULL;
    cg_buf text, chunk, emit;
    cg_buf_init(&text);
    cg_buf_init(&chunk);
    cg_buf_init(&emit);
    json_t *out = NULL;
    // The grammar first: a bad file is reported before the model is loaded.
    if (has_constraint && !load_grammar(gkind, gpath, &grammar)) goto done;
    if (cg_session_open(model, &sesp, &s, &err)) {
        cg_cli_fail("generate: %s", err.msg);
        goto done;
    }
    const cg_vocab *voc = cg_session_vocab(s);
    int32_t nv = (int32_t)cg_model_hparams(cg_session_model(s))->n_vocab;
    if (cg_sample_vocab_init(&sv, voc, nv, grammar != NULL, &err) || cg_sample_seq_init(&seq, &sp, grammar, &sv, &err) ||
        cg_stop_new(stops, stop_lens, n_stops, sv.eog, ignore_eos ? 0 : sv.n_eog, 0, &stop, &err)) {
        cg_cli_fail("generate: %s", err.msg);
        goto done;
    }
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
        if (cg_detok_stream_feed(ds, pt.ids[i], &chunk, &err) || cg_sampler_accept(seq.smp, pt.ids[i], &err)) {
            cg_cli_fail("generate: %s", err.msg);
            goto done;
        }
    // Under a grammar the budget (N, or what the context leaves if less) keeps the output
    // completable: it closes its strings and containers and ends as a complete sentence before
    // the limit (setup.h), reported as finish "grammar".
    long room = (long)cg_session_n_ctx(s) - (long)pt.n;
    cg_sample_seq_set_budget(&seq, room > 0 && room < n_gen ? room : n_gen, CG_SAMPLE_BUDGET_MARGIN);
    const float *logits;
    if (cg_session_feed(s, pt.ids, pt.n, &logits, &err)) {
        cg_cli_fail("generate: %s", err.msg);
        goto done;
    }
    for (long g = 0; g < n_gen; g++) {
        int32_t t;
        cg_status st = cg_sample_seq_next(&seq, logits, &t, &err);
        if (st == CG_ERR_STATE) {   // the grammar and the logits leave no token: the output ends here
            finish = FIN_GRAMMAR;
            break;
        }
        if (st) {
            cg_cli_fail("generate: %s", err.msg);
            goto done;
        }
        int32_t *grown = realloc(gen, (n_out + 1) * sizeof *gen);
        if (!grown) {
            cg_cli_fail("generate: out of memory");
            goto done;
        }
        gen = grown;
        gen[n_out++] = t;
        bool is_eog = !ignore_eos && cg_vocab_is_eog(voc, t);
        chunk.len = 0;
        emit.len = 0;
        if (!is_eog && cg_detok_stream_feed(ds, t, &chunk, &err)) {
            cg_cli_fail("generate: %s", err.msg);
            goto done;
        }
        cg_stop_reason why = cg_stop_feed_token(stop, t, chunk.data ? chunk.data : "", chunk.len, &emit);
        if (why == CG_STOP_EOG) finish = FIN_EOG;
        else if (why == CG_STOP_STRING) finish = FIN_STOP;
        else if (cg_sample_seq_must_end(&seq)) finish = FIN_GRAMMAR;
        else if (g + 1 == n_gen) finish = FIN_LENGTH;
        else if (cg_session_n_past(s) >= cg_session_n_ctx(s)) finish = FIN_CONTEXT;
        else finish = -1;
        cg_buf_append(&text, emit.data, emit.len);
        if (!json && emit.len) {
            fwrite(emit.data, 1, emit.len, stdout);
            fflush(stdout);
        }
        if (finish == FIN_CONTEXT)
            fprintf(stderr, "\nchingu generate: context of %d tokens is full; stopping\n", cg_session_n_ctx(s));
        if (finish >= 0) break;
        if (cg_session_feed(s, &t, 1, &logits, &err)) {
            cg_cli_fail("generate: %s", err.msg);
            goto done;
        }
    }
    if (finish < 0) finish = FIN_LENGTH;
    // What the detokenizer and the stop matcher still hold is part of the output, unless a stop
    // string cut it off.
    emit.len = 0;
    if (finish != FIN_STOP) {
        chunk.len = 0;
        if (cg_detok_stream_flush(ds, &chunk, &err)) {
            cg_cli_fail("generate: %s", err.msg);
            goto done;
        }
        if (chunk.len && cg_stop_feed_text(stop, chunk.data, chunk.len, &emit) == CG_STOP_STRING) finish = FIN_STOP;
        cg_stop_flush(stop, &emit);
    }
    cg_buf_append(&text, emit.data, emit.len);
    if (!cg_buf_ok(&text) || !cg_buf_ok(&chunk) || !cg_buf_ok(&emit)) {
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
        json_object_set_new(out, "finish", json_string(FINISH[finish]));
        char *js = json_dumps(out, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (!js) {
            cg_cli_fail("generate: cannot encode the JSON output");
            goto done;
        }
        puts(js);
        free(js);
    } else {
        fwrite(emit.data, 1, emit.len, stdout);
        putchar('\n');
    }
    rc = 0;
done:
    json_decref(out);
    cg_buf_free(&text);
    cg_buf_free(&chunk);
    cg_buf_free(&emit);
    cg_detok_stream_free(ds);
    cg_tokens_free(&pt);
    free(gen);
    cg_stop_free(stop);
    cg_sample_seq_free(&seq);
    cg_sample_vocab_free(&sv);
    cg_grammar_free(grammar);
    cg_session_free(s);
    return rc;
}
