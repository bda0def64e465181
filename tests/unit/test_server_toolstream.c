// test_server_toolstream.c — the shape of streamed tool calls (openai.c): as OpenAI sends them, the
// first delta of a call carries index, id, type "function", function.name and empty arguments;
// later deltas carry only the index and an arguments fragment; the fragments concatenate to the
// arguments; the non-streamed body has the whole call; finish_reason is "tool_calls".
#include "testutil.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "server/openai.h"

static void feed_call(cg_oai_acc *a, cg_buf *sse) {
    cg_srv_event ev = {.kind = CG_SRV_EV_TOOL_CALL, .i_choice = 0, .i_tool = 0, .tool_id = "call_1", .tool_name = "f",
                       .args = "{\"a\":3,", .n_args = 7};
    cg_oai_acc_event(a, &ev, sse);
    ev = (cg_srv_event){.kind = CG_SRV_EV_TOOL_CALL, .i_choice = 0, .i_tool = 0, .args = "\"b\":\"\xc3\xa9\"}", .n_args = 9};
    cg_oai_acc_event(a, &ev, sse);
    ev = (cg_srv_event){.kind = CG_SRV_EV_TOOL_CALL, .i_choice = 0, .i_tool = 1, .tool_id = "call_2", .tool_name = "g",
                        .args = "{}", .n_args = 2};
    cg_oai_acc_event(a, &ev, sse);
    ev = (cg_srv_event){.kind = CG_SRV_EV_CHOICE_END, .i_choice = 0, .finish = CG_SRV_FINISH_TOOL_CALLS};
    cg_oai_acc_event(a, &ev, sse);
    ev = (cg_srv_event){.kind = CG_SRV_EV_DONE, .usage = {3, 9, 0}};
    cg_oai_acc_event(a, &ev, sse);
}

static void test_tool_call_stream_shape(void **state) {
    (void)state;
    cg_err err = {0};
    cg_oai_acc *a;
    cg_oai_acc_params p = {.endpoint = CG_OAI_CHAT, .id = "chatcmpl-1", .model = "m", .created = 5, .n_choices = 1,
                           .stream = true};
    CG_ASSERT_OK(cg_oai_acc_new(&p, &a, &err), &err);
    cg_buf sse;
    cg_buf_init(&sse);
    feed_call(a, &sse);
    char *copy = strdup(sse.data);
    char *save = NULL;
    int n_frames = 0, n_first = 0, n_frag = 0;
    char args[2][64] = {"", ""};
    const char *finish = NULL;
    json_t *keep = json_array();
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        assert_true(!strncmp(line, "data: ", 6));
        if (!strcmp(line + 6, "[DONE]")) break;
        n_frames++;
        json_error_t je;
        json_t *f = json_loads(line + 6, 0, &je);
        if (!f) fail_msg("frame %d is not JSON: %s", n_frames, line);
        json_array_append_new(keep, f);
        json_t *c0 = json_array_get(json_object_get(f, "choices"), 0);
        json_t *fr = json_object_get(c0, "finish_reason");
        if (json_is_string(fr)) finish = json_string_value(fr);
        json_t *delta = json_object_get(c0, "delta");
        if (n_frames == 1) {   // the role chunk: content null when the choice starts with a call
            assert_string_equal(json_string_value(json_object_get(delta, "role")), "assistant");
            assert_true(json_is_null(json_object_get(delta, "content")));
        }
        json_t *tcs = json_object_get(delta, "tool_calls");
        if (!tcs) continue;
        assert_int_equal(json_array_size(tcs), 1);
        json_t *tc = json_array_get(tcs, 0);
        json_int_t idx = json_integer_value(json_object_get(tc, "index"));
        assert_true(idx == 0 || idx == 1);
        json_t *fn = json_object_get(tc, "function");
        const char *frag = json_string_value(json_object_get(fn, "arguments"));
        assert_non_null(frag);
        if (json_object_get(tc, "id")) {
            n_first++;
            assert_string_equal(json_string_value(json_object_get(tc, "id")), idx ? "call_2" : "call_1");
            assert_string_equal(json_string_value(json_object_get(tc, "type")), "function");
            assert_string_equal(json_string_value(json_object_get(fn, "name")), idx ? "g" : "f");
            assert_string_equal(frag, "");
        } else {
            n_frag++;
            assert_null(json_object_get(tc, "type"));
            assert_null(json_object_get(fn, "name"));
            assert_true(strlen(frag) > 0);
        }
        strcat(args[idx], frag);
    }
    assert_int_equal(n_first, 2);
    assert_int_equal(n_frag, 3);
    assert_string_equal(args[0], "{\"a\":3,\"b\":\"\xc3\xa9\"}");
    assert_string_equal(args[1], "{}");
    assert_non_null(finish);
    assert_string_equal(finish, "tool_calls");
    json_decref(keep);
    free(copy);
    cg_oai_acc_free(a);

    // not streamed: the same calls, whole
    p.stream = false;
    CG_ASSERT_OK(cg_oai_acc_new(&p, &a, &err), &err);
    cg_buf_reset(&sse);
    feed_call(a, &sse);
    assert_int_equal(sse.len, 0);
    cg_buf body;
    cg_buf_init(&body);
    cg_oai_acc_body(a, &body);
    json_error_t je;
    json_t *v = json_loads(body.data, 0, &je);
    if (!v) fail_msg("body is not JSON: %s", je.text);
    json_t *msg = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message");
    assert_true(json_is_null(json_object_get(msg, "content")));
    json_t *calls = json_object_get(msg, "tool_calls");
    assert_int_equal(json_array_size(calls), 2);
    json_t *fn0 = json_object_get(json_array_get(calls, 0), "function");
    assert_string_equal(json_string_value(json_object_get(fn0, "arguments")), "{\"a\":3,\"b\":\"\xc3\xa9\"}");
    json_decref(v);
    cg_buf_free(&body);
    cg_buf_free(&sse);
    cg_oai_acc_free(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_tool_call_stream_shape)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
