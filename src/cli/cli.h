// cli.h — the chingu command table. Each command lives in its own file (src/cli/<cmd>.c) and
// returns a process exit status; src/cli is the only place allowed to exit().
#ifndef CG_CLI_H
#define CG_CLI_H

#include "kern/kern.h"   // cg_kv_dtype
#include <stdbool.h>
#include <stdint.h>

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
int cg_cli_template(int argc, char **argv);
int cg_cli_generate(int argc, char **argv);
int cg_cli_logits(int argc, char **argv);
int cg_cli_run(int argc, char **argv);

// "f16" / "f32" → *out; returns 0 for anything else.
int cg_cli_parse_kv_type(const char *s, cg_kv_dtype *out);
int cg_cli_synth(int argc, char **argv);
int cg_cli_bench(int argc, char **argv);
// `chingu bench --kernels`: kernel microbenchmarks (bench_kern.c); returns the exit status.
int cg_cli_bench_kernels(int n_thread, int mib);
int cg_cli_user(int argc, char **argv);
int cg_cli_key(int argc, char **argv);
int cg_cli_memory(int argc, char **argv);

// The store options shared by user/key/memory: `--db URL|PATH` / `--data-dir DIR`.
// cg_cli_store_opt consumes argv[*i] (and its value) when it is one of them: returns 1 when
// consumed, 0 when not, -1 on a missing value (a message was printed: usage error).
struct cg_store;
typedef struct cg_cli_db { const char *db, *data_dir; } cg_cli_db;
int cg_cli_store_opt(cg_cli_db *o, int argc, char **argv, int *i);
// Opens the store named by o (default: <data dir>/chingu.db); prints the error and returns 1 on
// failure. *out is owned by the caller (cg_store_close). `relaxed`: synchronous=NORMAL (imports).
int cg_cli_store_open(const char *cmd, const cg_cli_db *o, bool relaxed, struct cg_store **out);
// Resolves a user name to its id; prints "CMD: no user 'NAME'" and returns 1 when absent.
int cg_cli_user_id(const char *cmd, struct cg_store *s, const char *name, int64_t *out);

// Prints "chingu: <msg>" on stderr; returns 1 for `return cg_cli_fail(...)`.
int cg_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
