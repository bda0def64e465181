// memory.c — `chingu memory add|list|search|forget|export|import`: a user's memories from the shell.
//
// Every subcommand takes --user NAME and the store options (--db URL|PATH / --data-dir DIR).
// import reads JSON Lines, one memory a line:
//   {"id": "client id", "text": "…", "kind": "…", "importance": 0..1,
//    "created_at": "ISO-8601", "supersedes": "id of an earlier memory"}
// Only text is required. The whole file is validated before anything is written (an error names
// the line and the field); "supersedes" is resolved when its line is written, so it may name a
// memory imported earlier in the same file or by an earlier import. Errors: one line, exit 1;
// usage errors: exit 2.
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mmap.h"
#include "cli/cli.h"
#include "mem/store.h"
#include "server/sse.h"

static const char USAGE[] =
    "usage: chingu memory SUBCOMMAND --user NAME [--db URL|PATH | --data-dir DIR] …\n"
    "  add [--kind K] [--importance X] [--supersedes ID] TEXT   prints the new memory's id\n"
    "  list [--all] [--json]                  current memories, newest first (--all: with history)\n"
    "  search [--json] [--k K] [--all] QUERY  ranked current memories (JSON: id, memory_id, text, score, kind)\n"
    "  forget ID | forget --all               delete one memory, or every memory of the user\n"
    "  export                                 everything the user has, as one JSON object\n"
    "  import FILE.jsonl                      one memory a line: {\"id\",\"text\",\"kind\",\"importance\",\n"
    "                                         \"created_at\",\"supersedes\"}; only text is required\n"
    "  K: profile preference relationship event task note\n";

// ---- ISO-8601 ---------------------------------------------------------------------------------

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

// "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS[.fff…]]" + optional "Z" or "±HH:MM" (no zone: UTC).
static bool parse_iso8601(const char *s, int64_t *out_ms) {
    int y, mo, d, h = 0, mi = 0, se = 0, ms = 0;
    size_t n = strlen(s);
    if (n < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d))
        return false;
    static const int MDAYS[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > MDAYS[mo - 1]) return false;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return false;
    const char *p = s + 10;
    int64_t off_s = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        if (!digits(p + 1, 2, &h) || p[3] != ':' || !digits(p + 4, 2, &mi) || h > 23 || mi > 59) return false;
        p += 6;
        if (*p == ':') {
            if (!digits(p + 1, 2, &se) || se > 60) return false;
            p += 3;
            if (*p == '.' || *p == ',') {
                p++;
                int nd = 0;
                while (*p >= '0' && *p <= '9') {
                    if (nd < 3) ms = ms * 10 + (*p - '0');
                    nd++;
                    p++;
                }
                if (!nd) return false;
                for (; nd < 3; nd++) ms *= 10;
            }
        }
        if (*p == 'Z' || *p == 'z') p++;
        else if (*p == '+' || *p == '-') {
            int oh, om;
            if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59) return false;
            off_s = (*p == '-' ? -1 : 1) * (int64_t)(oh * 3600 + om * 60);
            p += 6;
        }
    }
    if (*p) return false;
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off_s;
    if (t < 0) return false;
    *out_ms = t * 1000 + ms;
    return true;
}

// ---- import -----------------------------------------------------------------------------------

typedef struct imp_line {
    int line;
    json_t *obj;             // owned (holds the strings below)
    const char *text, *client_id, *supersedes;
    char client_buf[24], sup_buf[24];   // integer ids as text
    cg_mem_kind kind;
    double importance;
    int64_t created_ms;
} imp_line;

// A string or an integer field as text; *out NULL when absent/null. False on another type.
static bool id_field(json_t *o, const char *name, char *buf, size_t n, const char **out) {
    json_t *v = json_object_get(o, name);
    *out = NULL;
    if (!v || json_is_null(v)) return true;
    if (json_is_string(v)) { *out = json_string_value(v); return **out != '\0'; }
    if (json_is_integer(v)) { snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); *out = buf; return true; }
    return false;
}

static int parse_line(const char *file, imp_line *L, const char *s, size_t n) {
    json_error_t je;
    cg_err err = {0};
    L->obj = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
    if (!L->obj) return cg_cli_fail("memory import: %s line %d: not valid JSON: %s (column %d)", file, L->line, je.text, je.column);
    if (!json_is_object(L->obj)) return cg_cli_fail("memory import: %s line %d: expected a JSON object", file, L->line);
    json_t *v = json_object_get(L->obj, "text");
    if (!v || !json_is_string(v) || !*json_string_value(v))
        return cg_cli_fail("memory import: %s line %d: \"text\" is required (a non-empty string)", file, L->line);
    L->text = json_string_value(v);
    if (!id_field(L->obj, "id", L->client_buf, sizeof L->client_buf, &L->client_id))
        return cg_cli_fail("memory import: %s line %d: \"id\" must be a non-empty string or an integer", file, L->line);
    if (!id_field(L->obj, "supersedes", L->sup_buf, sizeof L->sup_buf, &L->supersedes))
        return cg_cli_fail("memory import: %s line %d: \"supersedes\" must be a non-empty string or an integer", file, L->line);
    if ((v = json_object_get(L->obj, "kind")) && !json_is_null(v)) {
        if (!json_is_string(v)) return cg_cli_fail("memory import: %s line %d: \"kind\" must be a string", file, L->line);
        if (cg_mem_kind_parse(json_string_value(v), &L->kind, &err))
            return cg_cli_fail("memory import: %s line %d: %s", file, L->line, err.msg);
    }
    if ((v = json_object_get(L->obj, "importance")) && !json_is_null(v)) {
        if (!json_is_number(v) || !(json_number_value(v) >= 0 && json_number_value(v) <= 1))
            return cg_cli_fail("memory import: %s line %d: \"importance\" must be a number in 0..1", file, L->line);
        L->importance = json_number_value(v);
    }
    if ((v = json_object_get(L->obj, "created_at")) && !json_is_null(v)) {
        if (!json_is_string(v) || !parse_iso8601(json_string_value(v), &L->created_ms) || !L->created_ms)
            return cg_cli_fail("memory import: %s line %d: \"created_at\" must be an ISO-8601 time after 1970 "
                               "(e.g. 2025-03-01T09:30:00Z), got %s", file, L->line,
                               json_is_string(v) ? json_string_value(v) : "a non-string");
    }
    return 0;
}

static int import_file(cg_store *s, int64_t uid, const char *file) {
    cg_err err = {0};
    unsigned char *data = NULL;
    size_t size = 0;
    if (cg_file_read_all(file, &data, &size, &err)) return cg_cli_fail("memory import: %s", err.msg);
    int rc = 1;
    imp_line *lines = NULL;
    size_t n = 0, cap = 0;
    int line_no = 0;
    for (size_t pos = 0; pos < size;) {
        const char *p = (const char *)data + pos;
        const char *nl = memchr(p, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - p) : size - pos;
        pos += len + (nl != NULL);
        line_no++;
        while (len && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        size_t lead = 0;
        while (lead < len && (p[lead] == ' ' || p[lead] == '\t')) lead++;
        if (lead == len) continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 256;
            imp_line *nl2 = realloc(lines, nc * sizeof *lines);
            if (!nl2) { cg_cli_fail("memory import: out of memory at line %d", line_no); goto out; }
            lines = nl2;
            cap = nc;
        }
        imp_line *L = &lines[n++];
        memset(L, 0, sizeof *L);
        L->line = line_no;
        if (parse_line(file, L, p + lead, len - lead)) goto out;
    }
    for (size_t i = 0; i < n; i++) {
        imp_line *L = &lines[i];
        cg_mem_new nm = {.text = L->text, .kind = L->kind, .importance = L->importance, .created_ms = L->created_ms,
                         .client_id = L->client_id};
        if (L->supersedes) {
            cg_status st = cg_store_memory_find_client(s, uid, L->supersedes, &nm.supersedes, &err);
            if (st == CG_ERR_NOT_FOUND) {
                cg_cli_fail("memory import: %s line %d: \"supersedes\": no earlier memory has id '%s' "
                            "(%zu of %zu lines imported)", file, L->line, L->supersedes, i, n);
                goto out;
            }
            if (st) { cg_cli_fail("memory import: %s line %d: %s (%zu of %zu lines imported)", file, L->line, err.msg, i, n); goto out; }
        }
        int64_t id;
        if (cg_store_memory_add(s, uid, &nm, &id, &err)) {
            cg_cli_fail("memory import: %s line %d: %s (%zu of %zu lines imported)", file, L->line, err.msg, i, n);
            goto out;
        }
    }
    fprintf(stderr, "imported %zu memories\n", n);
    rc = 0;
out:
    for (size_t i = 0; i < n; i++) json_decref(lines[i].obj);
    free(lines);
    free(data);
    return rc;
}

// ---- output -----------------------------------------------------------------------------------

static void put_memories(cg_buf *b, const cg_memory *m, size_t n, bool json, bool search) {
    if (json) cg_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (!json) {
            cg_buf_printf(b, "%" PRId64 "\t%s\t%.2f\t", m[i].id, cg_mem_kind_name(m[i].kind), search ? m[i].score : m[i].importance);
            if (m[i].superseded_by) cg_buf_printf(b, "[superseded by %" PRId64 "] ", m[i].superseded_by);
            for (const char *t = m[i].text; *t; t++) cg_buf_putc(b, *t == '\n' || *t == '\t' ? ' ' : *t);
            cg_buf_putc(b, '\n');
            continue;
        }
        cg_buf_puts(b, i ? ",{\"id\":" : "{\"id\":");
        if (m[i].client_id) cg_json_cstr(b, m[i].client_id);
        else cg_buf_printf(b, "\"%" PRId64 "\"", m[i].id);
        cg_buf_printf(b, ",\"memory_id\":%" PRId64 ",\"kind\":", m[i].id);
        cg_json_cstr(b, cg_mem_kind_name(m[i].kind));
        cg_buf_puts(b, ",\"text\":");
        cg_json_cstr(b, m[i].text);
        cg_buf_puts(b, search ? ",\"score\":" : ",\"importance\":");
        cg_json_float(b, search ? m[i].score : m[i].importance);
        cg_buf_printf(b, ",\"created_ms\":%" PRId64 ",\"current\":%s}", m[i].created_ms,
                      m[i].superseded_by || m[i].valid_to_ms ? "false" : "true");
    }
    if (json) cg_buf_puts(b, "]\n");
}

static bool parse_int(const char *v, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || x < lo || x > hi) return false;
    *out = x;
    return true;
}

int cg_cli_memory(int argc, char **argv) {
    cg_cli_db o = {0};
    const char *sub = NULL, *user = NULL, *kind_s = NULL, *arg = NULL;
    bool json = false, all = false;
    long long k = 10, supersedes = 0;
    double importance = 0;
    for (int i = 1; i < argc; i++) {
        int r = cg_cli_store_opt(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(USAGE, stdout); return 0; }
        if (!strcmp(a, "--json")) { json = true; continue; }
        if (!strcmp(a, "--all")) { all = true; continue; }
        if (!strcmp(a, "--")) { if (!val || arg) { cg_cli_fail("memory: '--' needs exactly one argument after it"); return 2; } arg = val; i++; continue; }
        bool takes = !strcmp(a, "--user") || !strcmp(a, "--kind") || !strcmp(a, "--importance") || !strcmp(a, "--k") ||
                     !strcmp(a, "--supersedes");
        if (takes && !val) { cg_cli_fail("memory: %s needs a value", a); return 2; }
        if (takes) i++;
        if (!strcmp(a, "--user")) user = val;
        else if (!strcmp(a, "--kind")) kind_s = val;
        else if (!strcmp(a, "--k")) {
            if (!parse_int(val, 1, 1000, &k)) { cg_cli_fail("memory: --k needs an integer in 1..1000, got '%s'", val); return 2; }
        } else if (!strcmp(a, "--supersedes")) {
            if (!parse_int(val, 1, INT64_MAX, &supersedes)) { cg_cli_fail("memory: --supersedes needs a memory id, got '%s'", val); return 2; }
        } else if (!strcmp(a, "--importance")) {
            char *end;
            importance = strtod(val, &end);
            if (!*val || *end || !(importance >= 0 && importance <= 1)) { cg_cli_fail("memory: --importance needs a number in 0..1, got '%s'", val); return 2; }
        } else if (a[0] == '-' && a[1]) { cg_cli_fail("memory: unknown option '%s'\n%s", a, USAGE); return 2; }
        else if (!sub) sub = a;
        else if (!arg) arg = a;
        else { cg_cli_fail("memory: unexpected argument '%s' (quote a text with spaces)\n%s", a, USAGE); return 2; }
    }
    static const char *const SUBS[] = {"add", "list", "search", "forget", "export", "import"};
    int which = -1;
    for (int i = 0; sub && i < 6; i++)
        if (!strcmp(sub, SUBS[i])) which = i;
    if (which < 0) { cg_cli_fail("memory: expected one of add, list, search, forget, export, import\n%s", USAGE); return 2; }
    if (!user) { cg_cli_fail("memory %s: --user NAME is required\n%s", sub, USAGE); return 2; }
    bool needs_arg = which == 0 || which == 2 || which == 5 || (which == 3 && !all);
    if (needs_arg != (arg != NULL)) {
        cg_cli_fail("memory %s: %s\n%s", sub, needs_arg ? "needs an argument" : "takes no argument", USAGE);
        return 2;
    }
    long long forget_id = 0;
    if (which == 3 && !all && !parse_int(arg, 1, INT64_MAX, &forget_id)) {
        cg_cli_fail("memory forget: ID must be a memory id (a positive integer), got '%s'", arg);
        return 2;
    }
    cg_err err = {0};
    cg_mem_kind kind = CG_MEM_PROFILE;
    if (kind_s && cg_mem_kind_parse(kind_s, &kind, &err)) { cg_cli_fail("memory: %s", err.msg); return 2; }

    cg_store *s = NULL;
    if (cg_cli_store_open("memory", &o, which == 5, &s)) return 1;
    int rc = 1;
    int64_t uid;
    cg_buf b;
    cg_buf_init(&b);
    cg_memory *list = NULL;
    size_t n = 0;
    char cmd[32];
    snprintf(cmd, sizeof cmd, "memory %s", sub);
    if (cg_cli_user_id(cmd, s, user, &uid)) goto out;
    cg_status st = CG_OK;
    switch (which) {
    case 0: {
        cg_mem_new nm = {.text = arg, .kind = kind, .importance = importance, .supersedes = supersedes};
        int64_t id;
        if ((st = cg_store_memory_add(s, uid, &nm, &id, &err))) break;
        printf("%" PRId64 "\n", id);
        break;
    }
    case 1:
        if ((st = cg_store_memory_list(s, uid, !all, &list, &n, &err))) break;
        put_memories(&b, list, n, json, false);
        break;
    case 2: {
        cg_search_opts so = {.k = (int)k, .include_history = all};
        if ((st = cg_store_memory_search(s, uid, arg, &so, &list, &n, &err))) break;
        put_memories(&b, list, n, json, true);
        break;
    }
    case 3:
        if (all) {
            int64_t nd = 0;
            if (!(st = cg_store_memory_forget_all(s, uid, &nd, &err))) fprintf(stderr, "forgot %" PRId64 " memories\n", nd);
        } else if (!(st = cg_store_memory_delete(s, uid, forget_id, &err))) {
            fprintf(stderr, "forgot memory %lld\n", forget_id);
        } else if (st == CG_ERR_NOT_FOUND) {
            cg_cli_fail("memory forget: user '%s' has no memory %lld", user, forget_id);
            goto out;
        }
        break;
    case 4:
        if (!(st = cg_store_export_json(s, uid, &b, &err))) cg_buf_putc(&b, '\n');
        break;
    default:
        if (import_file(s, uid, arg)) goto out;
        break;
    }
    if (st) { cg_cli_fail("%s: %s", cmd, err.msg); goto out; }
    if (!cg_buf_ok(&b) || (b.len && fwrite(b.data, 1, b.len, stdout) != b.len)) { cg_cli_fail("%s: out of memory or cannot write", cmd); goto out; }
    rc = 0;
out:
    cg_memory_list_free(list, n);
    cg_buf_free(&b);
    cg_store_close(s);
    return rc;
}
