// key.c — `chingu key create|revoke`: a user's API keys for `chingu serve --db …`.
//
// create prints the key alone on stdout, once (only its keyed hash is stored), and its id and
// scope on stderr; revoke takes that id. Errors: one line, exit 1; usage: exit 2.
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mem/store.h"

static const char USAGE[] =
    "usage: chingu key create --user NAME [--admin] [--db URL|PATH | --data-dir DIR]\n"
    "       chingu key revoke --user NAME KEY_ID   [--db URL|PATH | --data-dir DIR]\n"
    "  create prints the key once on stdout (keep it: it cannot be shown again) and its id on stderr;\n"
    "  --admin keys manage users and keys over the REST API, user keys see only their own data\n";

int cg_cli_key(int argc, char **argv) {
    cg_cli_db o = {0};
    const char *sub = NULL, *user = NULL, *key_id_s = NULL;
    bool admin = false;
    for (int i = 1; i < argc; i++) {
        int r = cg_cli_store_opt(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(USAGE, stdout); return 0; }
        if (!strcmp(a, "--admin")) admin = true;
        else if (!strcmp(a, "--user")) {
            if (i + 1 >= argc) { cg_cli_fail("key: --user needs a value"); return 2; }
            user = argv[++i];
        } else if (a[0] == '-' && a[1]) { cg_cli_fail("key: unknown option '%s'\n%s", a, USAGE); return 2; }
        else if (!sub) sub = a;
        else if (!key_id_s) key_id_s = a;
        else { cg_cli_fail("key: unexpected argument '%s'\n%s", a, USAGE); return 2; }
    }
    bool create = sub && !strcmp(sub, "create"), revoke = sub && !strcmp(sub, "revoke");
    if (!create && !revoke) { cg_cli_fail("key: expected create or revoke\n%s", USAGE); return 2; }
    if (!user) { cg_cli_fail("key %s: --user NAME is required\n%s", sub, USAGE); return 2; }
    if (create == (key_id_s != NULL)) { cg_cli_fail("key %s: %s\n%s", sub, create ? "takes no KEY_ID" : "needs a KEY_ID", USAGE); return 2; }
    int64_t key_id = 0;
    if (revoke) {
        char *end;
        errno = 0;
        long long v = strtoll(key_id_s, &end, 10);
        if (!*key_id_s || *end || errno || v <= 0) { cg_cli_fail("key revoke: KEY_ID must be a positive integer, got '%s'", key_id_s); return 2; }
        key_id = v;
    }
    cg_store *s = NULL;
    if (cg_cli_store_open("key", &o, false, &s)) return 1;
    int rc = 1;
    cg_err err = {0};
    int64_t uid;
    if (cg_cli_user_id(create ? "key create" : "key revoke", s, user, &uid)) goto out;
    if (create) {
        char key[CG_KEY_STR_LEN];
        if (cg_store_key_create(s, uid, admin ? CG_KEY_ADMIN : CG_KEY_USER, key, &key_id, &err)) {
            cg_cli_fail("key create: %s", err.msg);
            goto out;
        }
        printf("%s\n", key);
        fprintf(stderr, "key id %" PRId64 " for user '%s', scope %s (shown once)\n", key_id, user, admin ? "admin" : "user");
    } else {
        cg_status st = cg_store_key_revoke(s, uid, key_id, &err);
        if (st == CG_ERR_NOT_FOUND) { cg_cli_fail("key revoke: user '%s' has no key %" PRId64, user, key_id); goto out; }
        if (st) { cg_cli_fail("key revoke: %s", err.msg); goto out; }
        fprintf(stderr, "revoked key %" PRId64 " of user '%s'\n", key_id, user);
    }
    rc = 0;
out:
    cg_store_close(s);
    return rc;
}
