// serve.c — `chingu serve`: the OpenAI-compatible HTTP server.
//
// `-m MODEL.gguf` serves a real model through the engine thread (server/backend_engine.h); on a
// terminal a bar shows the model's weights being read (name, share, MiB);
// `-m fake:[options]` is the deterministic test backend (src/server/backend_fake.h), which says so
// in its model metadata. SIGTERM/SIGINT stop
// the server gracefully (stop accepting, let in-flight requests finish, cancel the rest) and exit 0.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "cli/cli.h"
#include "mem/store.h"
#include "server/backend_engine.h"
#include "server/backend_fake.h"
#include "server/server.h"

#define MAX_ORIGINS 16

static const char USAGE[] =
    "usage: chingu serve -m MODEL [--host H] [--port P] [--ctx N] [--parallel N] [--threads N]\n"
    "                    [--api-key-file F] [--cors-origin O]... [--max-body BYTES] [--max-tokens N]\n"
    "                    [--timeout SECONDS] [--engine-threads N] [--queue N] [--db URL|PATH | --data-dir DIR]\n"
    "                    [--quiet]\n"
    "  MODEL: a GGUF file, or fake:[latency_ms=N,slots=N,queue=N,loading_ms=N,id=NAME] (a deterministic\n"
    "         test backend)\n"
    "  --parallel: sequences decoding at once; --queue: requests waiting for KV space before 503\n"
    "  --host defaults to 127.0.0.1, --port to 8080 (0 picks a free port and logs it)\n"
    "  --db / --data-dir: the memory store behind /v1/users, /v1/keys, /v1/conversations, /v1/memories\n"
    "         (authenticated by store keys: chingu key create); without either, those answer 501\n";

// The load bar on a terminal: the model's file name and size, then the share of weights read.
typedef struct load_bar {
    const char *name;
    int last_permille;
} load_bar;

static void show_load(void *user, uint64_t done, uint64_t total) {
    load_bar *b = user;
    int permille = total ? (int)(done * 1000 / total) : 1000;
    if (permille == b->last_permille) return;
    b->last_permille = permille;
    enum { WIDTH = 30 };
    char cells[WIDTH + 1];
    int full = permille * WIDTH / 1000;
    for (int k = 0; k < WIDTH; k++) cells[k] = k < full ? '#' : '.';
    cells[WIDTH] = 0;
    fprintf(stderr, "\rloading %-.40s [%s] %3d%% %.1f/%.1f MiB", b->name, cells, permille / 10,
            (double)done / 1048576.0, (double)total / 1048576.0);
    fflush(stderr);
}

static int parse_num(const char *opt, const char *v, unsigned long long max, unsigned long long *out) {
    char *end;
    errno = 0;
    unsigned long long x = v ? strtoull(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || v[0] == '-' || x > max)
        return cg_cli_fail("serve: %s needs an integer in 0..%llu, got '%s'", opt, max, v ? v : "(nothing)");
    *out = x;
    return 0;
}

int cg_cli_serve(int argc, char **argv) {
    const char *model = NULL, *key_file = NULL, *db = NULL, *data_dir = NULL;
    const char *origins[MAX_ORIGINS];
    cg_srv_config cfg = {.host = "127.0.0.1", .port = 8080, .limits = cg_oai_limits_default(), .log_requests = true};
    unsigned long long ctx = 4096, parallel = 4, v = 0, engine_threads = 0, queue = 64;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(USAGE, stdout); return 0; }
        if (!strcmp(a, "--quiet")) { cfg.log_requests = false; continue; }
        if (!val) return cg_cli_fail("serve: %s needs a value\n%s", a, USAGE);
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = val;
        else if (!strcmp(a, "--host")) cfg.host = val;
        else if (!strcmp(a, "--api-key-file")) key_file = val;
        else if (!strcmp(a, "--db")) db = val;
        else if (!strcmp(a, "--data-dir")) data_dir = val;
        else if (!strcmp(a, "--cors-origin")) {
            if (cfg.n_cors_origins == MAX_ORIGINS) return cg_cli_fail("serve: at most %d --cors-origin", MAX_ORIGINS);
            origins[cfg.n_cors_origins++] = val;
        } else if (!strcmp(a, "--port")) { if (parse_num(a, val, 65535, &v)) return 2; cfg.port = (uint16_t)v; }
        else if (!strcmp(a, "--ctx")) { if (parse_num(a, val, 1u << 24, &ctx) || !ctx) return 2; }
        else if (!strcmp(a, "--parallel")) { if (parse_num(a, val, 4096, &parallel) || !parallel) return 2; }
        else if (!strcmp(a, "--threads")) { if (parse_num(a, val, 256, &v)) return 2; cfg.n_threads = (uint32_t)v; }
        else if (!strcmp(a, "--engine-threads")) { if (parse_num(a, val, 1024, &engine_threads)) return 2; }
        else if (!strcmp(a, "--queue")) { if (parse_num(a, val, 1u << 20, &queue) || !queue) return 2; }
        else if (!strcmp(a, "--max-body")) { if (parse_num(a, val, 1ull << 32, &v)) return 2; cfg.max_body = (size_t)v; }
        else if (!strcmp(a, "--max-tokens")) { if (parse_num(a, val, 1u << 24, &v) || !v) return 2; cfg.limits.max_tokens_cap = (int64_t)v; }
        else if (!strcmp(a, "--timeout")) { if (parse_num(a, val, 86400, &v)) return 2; cfg.limits.timeout_ms = (uint32_t)v * 1000; }
        else return cg_cli_fail("serve: unknown option '%s'\n%s", a, USAGE);
    }
    cfg.cors_origins = origins;
    if (!model) return cg_cli_fail("serve: -m MODEL is required\n%s", USAGE);
    bool fake = !strncmp(model, "fake:", 5);
    if (!fake && parallel > 1024) return cg_cli_fail("serve: --parallel %llu: at most 1024 with a model", parallel);

    // The log level is read from CHINGU_LOG on first use; do it before any thread exists.
    (void)cg_log_level_get();
    // Every thread started from here on inherits the blocked set, so only sigwait sees them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    cg_err err = {0};
    cg_srv_auth *auth = NULL;
    cg_srv_backend be = {0};
    cg_server *srv = NULL;
    cg_store *store = NULL;
    char *db_path = NULL;
    if (db || data_dir) {
        if (!db && cg_store_default_path(data_dir, &db_path, &err)) { cg_cli_fail("serve: %s", err.msg); goto out; }
        if (cg_store_open(db ? db : db_path, NULL, &store, &err) || cg_rest_mem_new(store, &cfg.mem, &err)) {
            cg_cli_fail("serve: %s", err.msg);
            goto out;
        }
        CG_INFO("serve: memory store %s (%s)", db ? "from --db" : db_path, cg_store_backend(store));
    }
    if (key_file) {
        if (cg_srv_auth_load(key_file, &auth, &err)) { cg_cli_fail("serve: %s", err.msg); goto out; }
        cfg.auth = auth;
    }
    if (fake) {
        if (cg_srv_fake_new(model + 5, (uint32_t)ctx, (uint32_t)parallel, &be, &err)) {
            cg_cli_fail("serve: %s", err.msg);
            goto out;
        }
    } else {
        struct stat sb;
        CG_INFO("serve: loading %s (%.1f MiB)", model, stat(model, &sb) == 0 ? (double)sb.st_size / 1048576.0 : 0.0);
        const char *base = strrchr(model, '/');
        load_bar bar = {.name = base ? base + 1 : model, .last_permille = -1};
        cg_srv_engine_params ep = {.model_path = model,
                                   .sched = {.n_ctx = (int)ctx, .n_parallel = (int)parallel, .max_queue = (int)queue,
                                             .n_threads = (int)engine_threads}};
        if (isatty(STDERR_FILENO)) ep.progress = show_load, ep.progress_user = &bar;   // logs stay one line each
        cg_status lst = cg_srv_engine_new(&ep, &be, &err);
        if (bar.last_permille >= 0) fputc('\n', stderr);
        if (lst) {
            cg_cli_fail("serve: %s", err.msg);
            goto out;
        }
    }
    if (cg_server_start(&cfg, &be, &srv, &err)) { cg_cli_fail("serve: %s", err.msg); goto out; }
    cg_srv_model_info mi;
    be.info(be.state, &mi);
    CG_INFO("serve: model '%s'%s ctx %u, %llu slots, %s; listening on http://%s%s%s:%u", mi.id,
            fake ? " (FAKE TEST BACKEND, not a model)" : "", mi.n_ctx, parallel, auth ? "API keys required" : "no API keys", strchr(cfg.host, ':') ? "[" : "",
            cfg.host, strchr(cfg.host, ':') ? "]" : "", cg_server_port(srv));
    int sig = 0;
    sigwait(&set, &sig);
    CG_INFO("serve: %s received, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    rc = 0;
out:
    cg_server_stop(srv);
    if (be.free) be.free(be.state);
    cg_srv_auth_free(auth);
    cg_rest_mem_free(cfg.mem);
    cg_store_close(store);
    free(db_path);
    if (!rc) CG_INFO("serve: stopped");
    return rc;
}
