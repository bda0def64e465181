// user.c — `chingu user add|list|rm`, and the store options shared by user/key/memory.
//
// The store is `--db URL|PATH` (a SQLite path or a PostgreSQL URL, see src/mem/store.h) or the
// SQLite file of `--data-dir DIR` (default: $CHINGU_HOME, else ~/.local/share/chingu). Errors are
// one line on stderr and exit 1; usage errors exit 2.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mem/store.h"
#include "server/sse.h"

static const char USAGE[] =
    "usage: chingu user add NAME      [--db URL|PATH | --data-dir DIR]\n"
    "       chingu user list [--json] [--db URL|PATH | --data-dir DIR]\n"
    "       chingu user rm NAME       [--db URL|PATH | --data-dir DIR]   (deletes everything of the user)\n";

int cg_cli_store_opt(cg_cli_db *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    bool db = !strcmp(a, "--db"), dir = !strcmp(a, "--data-dir");
    if (!db && !dir) return 0;
    if (*i + 1 >= argc) {
        cg_cli_fail("%s needs a value", a);
        return -1;
    }
    *(db ? &o->db : &o->data_dir) = argv[++*i];
    return 1;
}

int cg_cli_store_open(const char *cmd, const cg_cli_db *o, bool relaxed, cg_store **out) {
    cg_err err = {0};
    char *path = NULL;
    if (!o->db && cg_store_default_path(o->data_dir, &path, &err)) return cg_cli_fail("%s: %s", cmd, err.msg);
    // One command per process: a vector page cache would be filled and thrown away (at 100k
    // memories the first search costs ~170 ms with it, ~46 ms reading the pages directly).
    cg_store_opts so = {.relaxed_durability = relaxed, .vec_cache_bytes = -1};
    cg_status st = cg_store_open(o->db ? o->db : path, &so, out, &err);
    free(path);
    if (st) return cg_cli_fail("%s: %s", cmd, err.msg);
    return 0;
}

int cg_cli_user_id(const char *cmd, cg_store *s, const char *name, int64_t *out) {
    cg_err err = {0};
    cg_status st = cg_store_user_find(s, name, out, &err);
    if (st == CG_ERR_NOT_FOUND) return cg_cli_fail("%s: no user '%s' (chingu user list)", cmd, name);
    if (st) return cg_cli_fail("%s: %s", cmd, err.msg);
    return 0;
}

int cg_cli_user(int argc, char **argv) {
    cg_cli_db o = {0};
    const char *sub = NULL, *name = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        int r = cg_cli_store_opt(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(USAGE, stdout); return 0; }
        if (!strcmp(a, "--json")) json = true;
        else if (a[0] == '-' && a[1]) { cg_cli_fail("user: unknown option '%s'\n%s", a, USAGE); return 2; }
        else if (!sub) sub = a;
        else if (!name) name = a;
        else { cg_cli_fail("user: unexpected argument '%s'\n%s", a, USAGE); return 2; }
    }
    bool add = sub && !strcmp(sub, "add"), list = sub && !strcmp(sub, "list"), rm = sub && !strcmp(sub, "rm");
    if (!add && !list && !rm) { cg_cli_fail("user: expected add, list or rm\n%s", USAGE); return 2; }
    if (list == (name != NULL)) { cg_cli_fail("user %s: %s\n%s", sub, list ? "takes no NAME" : "needs a NAME", USAGE); return 2; }

    cg_store *s = NULL;
    if (cg_cli_store_open("user", &o, false, &s)) return 1;
    int rc = 1;
    cg_err err = {0};
    int64_t id;
    if (add) {
        if (cg_store_user_add(s, name, &id, &err)) { cg_cli_fail("user add: %s", err.msg); goto out; }
        printf("%" PRId64 "\n", id);
    } else if (rm) {
        if (cg_cli_user_id("user rm", s, name, &id)) goto out;
        if (cg_store_user_delete(s, id, &err)) { cg_cli_fail("user rm: %s", err.msg); goto out; }
        fprintf(stderr, "deleted user '%s' and everything of theirs\n", name);
    } else {
        cg_user *u = NULL;
        size_t n = 0;
        if (cg_store_user_list(s, &u, &n, &err)) { cg_cli_fail("user list: %s", err.msg); goto out; }
        cg_buf b;
        cg_buf_init(&b);
        if (json) cg_buf_putc(&b, '[');
        for (size_t i = 0; i < n; i++) {
            if (!json) { cg_buf_printf(&b, "%" PRId64 "\t%s\n", u[i].id, u[i].name); continue; }
            cg_buf_printf(&b, "%s{\"id\":%" PRId64 ",\"name\":", i ? "," : "", u[i].id);
            cg_json_cstr(&b, u[i].name);
            cg_buf_printf(&b, ",\"created_ms\":%" PRId64 "}", u[i].created_ms);
        }
        if (json) cg_buf_puts(&b, "]\n");
        cg_user_list_free(u, n);
        bool ok = cg_buf_ok(&b) && fwrite(b.data, 1, b.len, stdout) == b.len;
        cg_buf_free(&b);
        if (!ok) { cg_cli_fail("user list: out of memory or cannot write"); goto out; }
    }
    rc = 0;
out:
    cg_store_close(s);
    return rc;
}
