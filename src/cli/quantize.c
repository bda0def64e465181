// quantize.c — `chingu quantize IN OUT TYPE [--pure] [--threads N]`: converts a GGUF model to one of
// the mixes llama-quantize offers (model/quantize.h does the work). Shows a progress bar when
// stderr is a terminal, then a one-line summary on stdout. Errors: one line, exit 1; usage
// errors exit 2.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "model/quantize.h"
#include "quant/mix.h"

static const char USAGE[] = "usage: chingu quantize IN.gguf OUT.gguf TYPE [--pure] [--threads N]";

typedef struct bar {
    int last_permille;
} bar;

static void show_progress(void *user, const char *name, size_t i, size_t n, uint64_t done, uint64_t total) {
    bar *b = user;
    int permille = total ? (int)(done * 1000 / total) : 1000;
    if (permille == b->last_permille) return;
    b->last_permille = permille;
    enum { WIDTH = 30 };
    char cells[WIDTH + 1];
    int full = permille * WIDTH / 1000;
    for (int k = 0; k < WIDTH; k++) cells[k] = k < full ? '#' : '.';
    cells[WIDTH] = 0;
    fprintf(stderr, "\r[%s] %3d%% %zu/%zu %-40.40s", cells, permille / 10, i + 1, n, name);
    fflush(stderr);
}

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

int cg_cli_quantize(int argc, char **argv) {
    const char *pos[3];
    int n_pos = 0, n_thread = 0;
    bool pure = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--pure")) {
            pure = true;
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            char *end;
            if (i + 1 >= argc) { cg_cli_fail("quantize: %s needs a number\n%s", a, USAGE); return 2; }
            long v = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 1 || v > 1024) {
                cg_cli_fail("quantize: --threads '%s' is not a number in 1..1024", argv[i]);
                return 2;
            }
            n_thread = (int)v;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s\n", USAGE);
            return 0;
        } else if (a[0] == '-' && a[1]) {
            cg_cli_fail("quantize: unknown option '%s'\n%s", a, USAGE);
            return 2;
        } else if (n_pos < 3) {
            pos[n_pos++] = a;
        } else {
            cg_cli_fail("quantize: unexpected argument '%s'\n%s", a, USAGE);
            return 2;
        }
    }
    if (n_pos != 3) {
        cg_cli_fail("quantize: expected IN, OUT and TYPE\n%s", USAGE);
        return 2;
    }
    const cg_ftype_info *fi = cg_ftype_find(pos[2]);
    if (!fi) {
        char list[512];
        cg_ftype_list(list, sizeof list);
        return cg_cli_fail("quantize: unknown type '%s' (valid: %s)", pos[2], list);
    }

    bar b = {.last_permille = -1};
    cg_quantize_stats stats = {0};
    cg_quantize_params p = {.ftype = fi->ftype, .pure = pure, .n_thread = n_thread, .stats = &stats};
    bool tty = isatty(STDERR_FILENO);
    if (tty) {
        p.progress = show_progress;
        p.progress_user = &b;
    }
    cg_err err = {0};
    cg_status st = cg_quantize_file(pos[0], pos[1], &p, &err);
    if (tty && b.last_permille >= 0) fputc('\n', stderr);
    if (st) return cg_cli_fail("%s", err.msg);
    printf("quantized %s (%.2f MiB) -> %s (%.2f MiB, %s%s): %zu tensors, %zu converted, %.2f s\n", pos[0],
           mib(stats.in_file_bytes), pos[1], mib(stats.out_file_bytes), fi->name, pure ? ", pure" : "",
           stats.n_tensors, stats.n_converted, stats.seconds);
    return 0;
}
