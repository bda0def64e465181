// cli.h — the chingu command table. Each command lives in its own file (src/cli/<cmd>.c) and
// returns a process exit status; src/cli is the only place allowed to exit().
#ifndef CG_CLI_H
#define CG_CLI_H

#include "kern/kern.h"   // cg_kv_dtype

typedef int (*cg_cli_fn)(int argc, char **argv);   // argv[0] is the command name

typedef struct cg_cli_cmd {
    const char *name;
    cg_cli_fn fn;
    const char *usage;   // one line: arguments
    const char *help;    // one line: what it does
} cg_cli_cmd;

int cg_cli_info(int argc, char **argv);
int cg_cli_quantize(int argc, char **argv);
int cg_cli_serve(int argc, char **argv);
int cg_cli_tokenize(int argc, char **argv);
int cg_cli_generate(int argc, char **argv);
int cg_cli_logits(int argc, char **argv);
int cg_cli_run(int argc, char **argv);

// "f16" / "f32" → *out; returns 0 for anything else.
int cg_cli_parse_kv_type(const char *s, cg_kv_dtype *out);

// Prints "chingu: <msg>" on stderr; returns 1 for `return cg_cli_fail(...)`.
int cg_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
