// test_info.c — `chingu info` as a command ($CHINGU_BIN): --json on every shared model against
// MANIFEST.json, the text listing, one line + exit 1 on every malformed file, exit 2 on usage errors.
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"

// Runs argv, capturing stdout and stderr. Returns the exit status (or 128 + signal).
static int run(char *const argv[], cg_buf *out, cg_buf *err) {
    int po[2], pe[2];
    if (pipe(po) || pipe(pe)) fail_msg("pipe failed");
    pid_t pid = fork();
    if (pid < 0) fail_msg("fork failed");
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        close(po[1]);
        close(pe[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    struct pollfd fds[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    cg_buf *bufs[2] = {out, err};
    int open_fds = 2;
    while (open_fds) {
        if (poll(fds, 2, -1) < 0) continue;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
            char buf[65536];
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                cg_buf_append(bufs[i], buf, (size_t)n);
            } else {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const char *bin(void) {
    const char *b = getenv("CHINGU_BIN");
    return b && *b ? b : NULL;
}

static int info(const char *path, bool json, cg_buf *out, cg_buf *err) {
    cg_buf_reset(out);
    cg_buf_reset(err);
    char *argv[] = {(char *)bin(), "info", (char *)path, json ? "--json" : NULL, NULL};
    return run(argv, out, err);
}

static size_t n_codepoints(const char *s) {
    size_t c = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) c++;
    return c;
}

static void test_json_matches_manifest(void **state) {
    (void)state;
    const char *models = cg_test_models_dir();
    if (!bin() || !models) {
        skip();
        return;
    }
    char mpath[PATH_MAX * 2];
    snprintf(mpath, sizeof mpath, "%s/MANIFEST.json", models);
    json_error_t jerr;
    json_t *m = json_load_file(mpath, 0, &jerr);
    if (!m) fail_msg("cannot parse %s: %s", mpath, jerr.text);
    cg_buf out, err;
    cg_buf_init(&out);
    cg_buf_init(&err);
    size_t i_file;
    json_t *e;
    json_array_foreach(json_object_get(m, "files"), i_file, e) {
        char path[PATH_MAX * 3];
        snprintf(path, sizeof path, "%s/../%s", models, json_string_value(json_object_get(e, "path")));
        int rc = info(path, true, &out, &err);
        if (rc != 0) fail_msg("%s: exit %d: %s", path, rc, err.data);
        json_t *j = json_loadb(out.data, out.len, 0, &jerr);
        if (!j) fail_msg("%s: output is not JSON: %s", path, jerr.text);
        assert_true(json_equal(json_object_get(j, "version"), json_object_get(e, "gguf_version")));
        const char *facts[] = {"alignment", "data_offset", "size"};
        for (int k = 0; k < 3; k++)
            if (!json_equal(json_object_get(j, facts[k]), json_object_get(e, facts[k])))
                fail_msg("%s: %s differs", path, facts[k]);
        json_t *kv = json_object_get(j, "kv");
        json_t *mkv = json_object_get(e, "kv"), *marr = json_object_get(e, "arrays");
        assert_int_equal(json_object_size(kv), json_object_size(mkv) + json_object_size(marr));
        const char *key;
        json_t *want;
        json_object_foreach(mkv, key, want) {
            json_t *got = json_object_get(kv, key);
            if (!got) fail_msg("%s: key %s missing", path, key);
            unsigned long n_chars;
            char tail;
            if (json_is_string(want) && sscanf(json_string_value(want), "(%lu chars%c", &n_chars, &tail) == 2 &&
                tail == ')') {
                assert_true(json_is_string(got));
                assert_int_equal(n_codepoints(json_string_value(got)), n_chars);
            } else if (json_is_real(want)) {   // a float that happens to be integral may print as 1e+06
                if (!json_is_number(got) || json_number_value(got) != json_real_value(want))
                    fail_msg("%s: %s differs", path, key);
            } else if (!json_equal(got, want)) {
                char *g = json_dumps(got, JSON_ENCODE_ANY), *w = json_dumps(want, JSON_ENCODE_ANY);
                fail_msg("%s: %s = %s, want %s", path, key, g, w);
            }
        }
        json_object_foreach(marr, key, want) {
            json_t *got = json_object_get(kv, key);
            if (!got) fail_msg("%s: array %s missing", path, key);
            assert_string_equal(json_string_value(json_object_get(got, "type")), "ARRAY");
            assert_true(json_equal(json_object_get(got, "elem_type"), json_object_get(want, "elem_type")));
            assert_true(json_equal(json_object_get(got, "n"), json_object_get(want, "n")));
            size_t n = (size_t)json_integer_value(json_object_get(want, "n"));
            assert_int_equal(json_array_size(json_object_get(got, "head")), n < 8 ? n : 8);
        }
        json_t *ts = json_object_get(j, "tensors"), *mts = json_object_get(e, "tensors");
        assert_int_equal(json_array_size(ts), json_array_size(mts));
        size_t i;
        json_t *mt;
        json_array_foreach(mts, i, mt) {
            json_t *t = json_array_get(ts, i);
            const char *fields[] = {"name", "type", "ggml_type_id", "ne", "offset", "n_bytes"};
            for (int k = 0; k < 6; k++)
                if (!json_equal(json_object_get(t, fields[k]), json_object_get(mt, fields[k])))
                    fail_msg("%s: tensor %zu: %s differs", path, i, fields[k]);
            assert_int_equal(json_integer_value(json_object_get(t, "data_offset_rel")),
                             json_integer_value(json_object_get(mt, "offset")) -
                                 json_integer_value(json_object_get(e, "data_offset")));
        }
        json_decref(j);
    }
    json_decref(m);
    cg_buf_free(&out);
    cg_buf_free(&err);
}

static void test_text_listing(void **state) {
    (void)state;
    const char *models = cg_test_models_dir();
    if (!bin() || !models) {
        skip();
        return;
    }
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/real/stories260K.gguf", models);
    cg_buf out, err;
    cg_buf_init(&out);
    cg_buf_init(&err);
    assert_int_equal(info(path, false, &out, &err), 0);
    assert_int_equal(err.len, 0);
    const char *expect[] = {
        "GGUF version 3, alignment 32, ",
        "STRING   general.architecture = \"llama\"\n",
        ("ARRAY    tokenizer.ggml.tokens = [STRING; 512] \"<unk>\", \"<s>\", \"</s>\", \"<0x00>\", \"<0x01>\", "
         "\"<0x02>\", \"<0x03>\", \"<0x04>\", …\n"),   // one line, split in two
        "ARRAY    tokenizer.ggml.token_type = [INT32; 512] 2, 3, 3, 6, 6, 6, 6, 6, …\n",
        "UINT32   tokenizer.ggml.padding_token_id = 4294967295\n",
        "FLOAT32  llama.attention.layer_norm_rms_epsilon = 9.99999975e-06\n",
        "token_embd.weight",
        "64 x 512",
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        if (!strstr(out.data, expect[i])) fail_msg("missing in text output: %s\n---\n%s", expect[i], out.data);
    cg_buf_free(&out);
    cg_buf_free(&err);
}

static void test_bad_files_one_line(void **state) {
    (void)state;
    if (!bin()) {
        skip();
        return;
    }
    const char *src = getenv("CHINGU_SRC");
    if (!src) src = ".";
    char tsv[PATH_MAX];
    snprintf(tsv, sizeof tsv, "%s/tests/gguf_bad/expected.tsv", src);
    FILE *f = fopen(tsv, "r");
    if (!f) fail_msg("cannot open %s", tsv);
    cg_buf out, err;
    cg_buf_init(&out);
    cg_buf_init(&err);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        line[strcspn(line, "\n")] = 0;
        char *name = strtok(line, "\t");
        strtok(NULL, "\t");
        char *sub = strtok(NULL, "\t");
        char path[PATH_MAX * 2];
        snprintf(path, sizeof path, "%s/tests/gguf_bad/%s", src, name);
        for (int json = 0; json < 2; json++) {
            int rc = info(path, json, &out, &err);
            if (rc != 1) fail_msg("%s: exit %d", name, rc);
            assert_int_equal(out.len, 0);
            char prefix[PATH_MAX * 2 + 32];
            snprintf(prefix, sizeof prefix, "chingu: info: %s: ", path);
            if (strncmp(err.data, prefix, strlen(prefix)) != 0) fail_msg("%s: stderr: %s", name, err.data);
            char *nl = strchr(err.data, '\n');
            if (!nl || nl[1] != '\0') fail_msg("%s: stderr is not exactly one line: %s", name, err.data);
            if (!strstr(err.data, sub)) fail_msg("%s: stderr lacks \"%s\": %s", name, sub, err.data);
        }
        n++;
    }
    fclose(f);
    assert_true(n >= 40);
    cg_buf_free(&out);
    cg_buf_free(&err);
}

static void test_usage_and_io_errors(void **state) {
    (void)state;
    if (!bin()) {
        skip();
        return;
    }
    cg_buf out, err;
    cg_buf_init(&out);
    cg_buf_init(&err);
    char *no_file[] = {(char *)bin(), "info", NULL};
    assert_int_equal(run(no_file, &out, &err), 2);
    char *two[] = {(char *)bin(), "info", "a.gguf", "b.gguf", NULL};
    assert_int_equal(run(two, &out, &err), 2);
    char *opt[] = {(char *)bin(), "info", "--bogus", "a.gguf", NULL};
    assert_int_equal(run(opt, &out, &err), 2);
    cg_buf_reset(&err);
    char *missing[] = {(char *)bin(), "info", "/nonexistent/x.gguf", NULL};
    assert_int_equal(run(missing, &out, &err), 1);
    assert_non_null(strstr(err.data, "chingu: info: /nonexistent/x.gguf: "));
    cg_buf_free(&out);
    cg_buf_free(&err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_matches_manifest),
        cmocka_unit_test(test_text_listing),
        cmocka_unit_test(test_bad_files_one_line),
        cmocka_unit_test(test_usage_and_io_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
