// tokenize.c — `chingu tokenize -m MODEL [--no-bos] [--special] [--json] (TEXT | --file F)`:
// the token ids of a text with the model's own tokenizer, and each token's piece.
//
// Defaults match how prompts are tokenized for generation (llama-tokenize's defaults except
// parse_special): add_special = true (BOS/EOS as the vocabulary says), parse_special = false.
//   --no-bos   add_special = false (no BOS, no EOS)
//   --special  parse_special = true (special-token texts in the input become those tokens)
//   --json     one line: {"ids":[…],"pieces":[…]} (pieces with U+FFFD for bytes that are not valid
//              UTF-8 on their own, e.g. a byte-fallback token)
// Text output: one line per token, "<id> '<piece>'" with C escapes for control and invalid bytes.
// Pieces are llama_token_to_piece(special=true). Exit status: 0 ok, 1 error, 2 usage.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mmap.h"
#include "base/utf8.h"
#include "cli/cli.h"
#include "gguf/gguf.h"
#include "tok/tok.h"

static const char USAGE[] = "usage: chingu tokenize -m MODEL [--no-bos] [--special] [--json] (TEXT | --file F)";

// JSON string: escapes ", \ and control characters; each byte of an invalid sequence is U+FFFD.
static void put_json_str(cg_buf *b, const char *s, size_t n) {
    cg_buf_putc(b, '"');
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            cg_buf_putc(b, '\\');
            cg_buf_putc(b, (char)c);
            i++;
        } else if (c < 0x20) {
            if (c == '\n') cg_buf_puts(b, "\\n");
            else if (c == '\t') cg_buf_puts(b, "\\t");
            else if (c == '\r') cg_buf_puts(b, "\\r");
            else cg_buf_printf(b, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            cg_buf_putc(b, (char)c);
            i++;
        } else {
            uint32_t cp;
            int l = cg_utf8_decode(s + i, n - i, &cp);
            if (l <= 0) {
                cg_buf_puts(b, "\xef\xbf\xbd");
                i++;
            } else {
                cg_buf_append(b, s + i, (size_t)l);
                i += (size_t)l;
            }
        }
    }
    cg_buf_putc(b, '"');
}

// Single-quoted piece with C escapes (\n, \t, \r, \xHH for control and invalid bytes).
static void put_c_str(cg_buf *b, const char *s, size_t n) {
    cg_buf_putc(b, '\'');
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\'' || c == '\\') {
            cg_buf_putc(b, '\\');
            cg_buf_putc(b, (char)c);
            i++;
        } else if (c == '\n') {
            cg_buf_puts(b, "\\n"), i++;
        } else if (c == '\t') {
            cg_buf_puts(b, "\\t"), i++;
        } else if (c == '\r') {
            cg_buf_puts(b, "\\r"), i++;
        } else if (c < 0x20 || c == 0x7f) {
            cg_buf_printf(b, "\\x%02x", c), i++;
        } else if (c < 0x80) {
            cg_buf_putc(b, (char)c), i++;
        } else {
            uint32_t cp;
            int l = cg_utf8_decode(s + i, n - i, &cp);
            if (l <= 0) {
                cg_buf_printf(b, "\\x%02x", c);
                i++;
            } else {
                cg_buf_append(b, s + i, (size_t)l);
                i += (size_t)l;
            }
        }
    }
    cg_buf_putc(b, '\'');
}

int cg_cli_tokenize(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *text = NULL;
    bool add_special = true, parse_special = false, json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) model = argv[++i];
        else if (!strcmp(a, "--file") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(a, "--no-bos")) add_special = false;
        else if (!strcmp(a, "--special")) parse_special = true;
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            puts(USAGE);
            return 0;
        } else if (a[0] == '-' && a[1] != 0) {
            fprintf(stderr, "chingu tokenize: unknown option '%s'\n%s\n", a, USAGE);
            return 2;
        } else if (!text) {
            text = a;
        } else {
            fprintf(stderr, "chingu tokenize: more than one TEXT argument\n%s\n", USAGE);
            return 2;
        }
    }
    if (!model || (!text && !file) || (text && file)) {
        fprintf(stderr, "%s\n", USAGE);
        return 2;
    }

    int rc = 1;
    cg_err err = {0};
    cg_gguf *g = NULL;
    cg_vocab *v = NULL;
    unsigned char *fdata = NULL;
    size_t tlen = 0;
    cg_tokens t = {0};
    cg_buf out;
    cg_buf_init(&out);
    if (file) {
        if (cg_file_read_all(file, &fdata, &tlen, &err)) {
            cg_cli_fail("tokenize: %s", err.msg);
            goto done;
        }
        text = (const char *)fdata;
    } else {
        tlen = strlen(text);
    }
    if (cg_gguf_open(model, &g, &err) || cg_vocab_load(g, &v, &err)) {
        cg_cli_fail("tokenize: %s: %s", model, err.msg);
        goto done;
    }
    if (cg_tokenize(v, text ? text : "", tlen, add_special, parse_special, &t, &err)) {
        cg_cli_fail("tokenize: %s", err.msg);
        goto done;
    }
    if (json) {
        cg_buf_puts(&out, "{\"ids\":[");
        for (size_t i = 0; i < t.n; i++) cg_buf_printf(&out, "%s%d", i ? "," : "", t.ids[i]);
        cg_buf_puts(&out, "],\"pieces\":[");
    }
    for (size_t i = 0; i < t.n; i++) {
        const char *p;
        size_t pn;
        if (cg_token_to_piece(v, t.ids[i], 0, true, &p, &pn, &err)) {
            cg_cli_fail("tokenize: %s", err.msg);
            goto done;
        }
        if (json) {
            if (i) cg_buf_putc(&out, ',');
            put_json_str(&out, p, pn);
        } else {
            cg_buf_printf(&out, "%6d ", t.ids[i]);
            put_c_str(&out, p, pn);
            cg_buf_putc(&out, '\n');
        }
    }
    if (json) cg_buf_puts(&out, "]}\n");
    if (!cg_buf_ok(&out)) {
        cg_cli_fail("tokenize: out of memory");
        goto done;
    }
    if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len) {
        cg_cli_fail("tokenize: write to stdout failed");
        goto done;
    }
    rc = 0;
done:
    cg_buf_free(&out);
    cg_tokens_free(&t);
    cg_vocab_free(v);
    cg_gguf_close(g);
    free(fdata);
    return rc;
}
