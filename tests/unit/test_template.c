// test_template.c — the JSON value parser and the Jinja2 chat-template engine.
//
// The golden test renders every case of ../shared/testdata/templates (produced by Python jinja2
// 3.1 configured as transformers configures it) and compares byte for byte; the unit tests
// check hand-computed expectations (Python's own results for the same expressions).
#include "testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok/jval.h"
#include "tok/template.h"

// Generated from Python jinja2 3.1 (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
// loopcontrols, transformers' tojson) on the context EXPR_CTX; one row per template line.
static const char EXPR_CTX[] = "{\"s\": \"Hello, World\", \"k\": \"한국어 텍스트\", \"xs\": [3, 1, 2], \"d\": {\"b\": 2, \"a\": 1, \"C\": 3}, \"n\": null, \"f\": 1.5, \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}, {\"role\": \"user\", \"content\": \"bye\"}]}";
static const struct { const char *src, *want; } EXPR_CASES[] = {
    {"{{ 1/2 }}|{{ 7//2 }}|{{ -7//2 }}|{{ 7 % -3 }}|{{ -7 % 3 }}|{{ 2**10 }}|{{ 2**-1 }}|{{ 7.5//2 }}|{{ 10/4*2 }}",
     "0.5|3|-4|-2|2|1024|0.5|3.0|5.0"},
    {"{{ 1e20 }}|{{ 0.1+0.2 }}|{{ 1e16 }}|{{ 1.5e-5 }}|{{ 0.0001 }}|{{ 123456789.123 }}|{{ -0.0 }}|{{ 1e15 }}|{{ 3.0 }}",
     "1e+20|0.30000000000000004|1e+16|1.5e-05|0.0001|123456789.123|-0.0|1000000000000000.0|3.0"},
    {"{{ [1,'a',none,true,1.5,{'k':\"it's\"}] }}|{{ (1,2)|list }}|{{ \"a'b\\\"c\" }}|{{ [\"a'b\"] }}|{{ ['a\"b'] }}|{{ [\"x\\ny\\\\\"] }}",
     "[1, 'a', None, True, 1.5, {'k': \"it's\"}]|[1, 2]|a'b\"c|[\"a'b\"]|['a\"b']|['x\\ny\\\\']"},
    {"{{ s[0] }}|{{ s[-1] }}|{{ s[::-1] }}|{{ s[2:5] }}|{{ s[::2] }}|{{ s[-3:] }}|{{ s[:-3:-1] }}|{{ xs[1:] }}|{{ xs[::-1] }}|{{ xs[5:] }}",
     "H|d|dlroW ,olleH|llo|Hlo ol|rld|dl|[1, 2]|[2, 1, 3]|[]"},
    {"{{ k|length }}|{{ k[1] }}|{{ k[::-1] }}|{{ k[1:3] }}|{{ k|upper }}|{{ s|upper }}|{{ s|lower }}|{{ \"hello world-foo(bar\"|title }}|{{ \"hELLO\"|capitalize }}",
     "7|국|트스텍 어국한|국어|한국어 텍스트|HELLO, WORLD|hello, world|Hello World-Foo(Bar|Hello"},
    {"{{ \"  x y  \"|trim }}|{{ \"xxhixx\"|trim(\"x\") }}|{{ \"a,b,,c\".split(\",\") }}|{{ \"  a  b c \".split() }}|{{ \"a b c d\".split(\" \", 2) }}|{{ \"a b c d\".rsplit(\" \", 1) }}|{{ \" a  b \".split(none, 1) }}",
     "x y|hi|['a', 'b', '', 'c']|['a', 'b', 'c']|['a', 'b', 'c d']|['a b c', 'd']|['a', 'b ']"},
    {"{{ \"abc\".startswith(\"a\") }}|{{ \"abc\".endswith((\"x\",\"c\")) }}|{{ \"xxa\".lstrip(\"x\") }}|{{ \"abab\".replace(\"b\",\"c\") }}|{{ \"abab\".replace(\"b\",\"c\",1) }}|{{ \"abcabc\".find(\"c\") }}|{{ \"abcabc\".rfind(\"c\") }}|{{ \"aaa\".count(\"a\") }}",
     "True|True|a|acac|acab|2|5|3"},
    {"{{ \"-\".join([\"a\",\"b\"]) }}|{{ xs|join(\",\") }}|{{ \"{} and {}\".format(1,\"x\") }}|{{ \"{a}!\".format(a=2) }}|{{ \"l1\\nl2\\r\\nl3\".splitlines() }}|{{ \"Hello World\".title() }}|{{ \"x\".upper() }}",
     "a-b|3,1,2|1 and x|2!|['l1', 'l2', 'l3']|Hello World|X"},
    {"{{ xs|sort }}|{{ xs|sort(reverse=true) }}|{{ [\"b\",\"A\",\"c\"]|sort }}|{{ [\"b\",\"A\",\"c\"]|sort(case_sensitive=true) }}|{{ msgs|sort(attribute=\"content\")|map(attribute=\"content\")|list }}",
     "[1, 2, 3]|[3, 2, 1]|['A', 'b', 'c']|['A', 'b', 'c']|['bye', 'hi', 'yo']"},
    {"{{ d|dictsort }}|{{ d|dictsort(by=\"value\", reverse=true) }}|{{ d|items|list }}|{{ d.items()|list }}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.get(\"a\") }}|{{ d.get(\"z\", 9) }}|{{ d.get(\"z\") }}",
     "[('a', 1), ('b', 2), ('C', 3)]|[('C', 3), ('b', 2), ('a', 1)]|[('b', 2), ('a', 1), ('C', 3)]|[('b', 2), ('a', 1), ('C', 3)]|['b', 'a', 'C']|[2, 1, 3]|1|9|None"},
    {"{{ xs|first }}|{{ xs|last }}|{{ xs|min }}|{{ xs|max }}|{{ xs|sum }}|{{ xs|length }}|{{ d|length }}|{{ [\"a\",\"A\",\"b\"]|unique|list }}|{{ xs|reverse|list }}|{{ \"abc\"|reverse }}",
     "3|2|1|3|6|3|3|['a', 'b']|[2, 1, 3]|cba"},
    {"{{ n|default(\"x\") }}|{{ undefined_var|default(\"x\") }}|{{ \"\"|default(\"x\", true) }}|{{ undefined_var|d }}|{{ 0|default(5, boolean=true) }}",
     "None|x|x||5"},
    {"{{ \"3\"|int + 1 }}|{{ \"3.7\"|int }}|{{ \"x\"|int }}|{{ \"x\"|int(7) }}|{{ 3.9|int }}|{{ \"2.5\"|float }}|{{ 3|float }}|{{ -3|abs }}|{{ 2.567|round(2) }}|{{ 2.5|round }}|{{ 3|round }}|{{ 2.1|round(method=\"ceil\") }}",
     "4|3|0|7|3|2.5|3.0|3|2.57|2.0|3|3.0"},
    {"{{ msgs|selectattr(\"role\",\"equalto\",\"user\")|list|length }}|{{ msgs|rejectattr(\"role\",\"equalto\",\"user\")|map(attribute=\"content\")|join }}|{{ xs|select(\"odd\")|list }}|{{ xs|reject(\"odd\")|list }}|{{ msgs|map(attribute=\"nope\", default=\"D\")|list }}|{{ [\"a\",\"b\"]|map(\"upper\")|list }}",
     "2|yo|[3, 1]|[2]|['D', 'D', 'D']|['A', 'B']"},
    {"{{ \"a\\nb\\n\\nc\"|indent }}|{{ \"a\\nb\"|indent(2, true) }}|{{ \"a\\n\\nb\"|indent(2, blank=true) }}|{{ \"x\"|indent(\"--\", first=true) }}",
     "a\n    b\n\n    c|  a\n  b|a\n  \n  b|--x"},
    {"{{ \"one two  three\"|wordcount }}|{{ \"<b>&'\\\"\"|e }}|{{ \"x\"|center(5) }}|{{ [1,2,3,4,5]|batch(2)|list }}|{{ [1,2,3]|batch(2, 0)|list }}|{{ \"%s-%d\"|format(\"a\", 3) }}|{{ \"%s=%r\" % (\"k\", \"v\") }}",
     "3|&lt;b&gt;&amp;&#39;&#34;|  x  |[[1, 2], [3, 4], [5]]|[[1, 2], [3, 0]]|a-3|k='v'"},
    {"{{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ d|tojson(sort_keys=true) }}|{{ d|tojson(separators=(\",\",\":\")) }}|{{ [1.0, \"é\\n\\\"\", none, true, {}, []]|tojson }}|{{ {\"a\":[1,{\"b\":[]}]}|tojson(indent=2) }}",
     "{\"b\": 2, \"a\": 1, \"C\": 3}|{\n  \"b\": 2,\n  \"a\": 1,\n  \"C\": 3\n}|{\"C\": 3, \"a\": 1, \"b\": 2}|{\"b\":2,\"a\":1,\"C\":3}|[1.0, \"é\\n\\\"\", null, true, {}, []]|{\n  \"a\": [\n    1,\n    {\n      \"b\": []\n    }\n  ]\n}"},
    {"{{ 1 is odd }}|{{ 2 is even }}|{{ 9 is divisibleby 3 }}|{{ none is none }}|{{ \"x\" is string }}|{{ 1 is number }}|{{ true is number }}|{{ true is integer }}|{{ 1.0 is float }}|{{ d is mapping }}|{{ xs is iterable }}|{{ \"x\" is sequence }}|{{ true is boolean }}|{{ 1 is eq 1 }}|{{ 2 is gt 1 }}|{{ 1 is lt 2 }}|{{ 2 is ge 2 }}|{{ 2 is ne 2 }}|{{ xs is not string }}|{{ 1 is in xs }}|{{ \"a\" is lower }}|{{ true is true }}|{{ 0 is false }}",
     "True|True|True|True|True|True|True|False|True|True|True|True|True|True|True|True|True|False|True|True|True|True|False"},
    {"{{ 1 in xs }}|{{ 5 not in xs }}|{{ \"ell\" in s }}|{{ \"a\" in d }}|{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ \"a\" < \"b\" }}|{{ [1,2] < [1,3] }}|{{ 1 == 1.0 }}|{{ true == 1 }}|{{ none == none }}|{{ not 0 }}|{{ 0 or \"x\" }}|{{ 1 and 2 }}|{{ \"\" or none }}",
     "True|True|True|True|True|False|True|True|True|True|True|True|x|2|None"},
    {"{{ \"y\" if 1 else \"n\" }}|{{ \"y\" if 0 }}|{{ -f }}|{{ +3 }}|{{ \"ab\" * 3 }}|{{ [0] * 2 }}|{{ \"a\" ~ 1 ~ none ~ true }}|{{ xs + [4] }}|{{ \"%s\" % 5 }}|{{ 2 * 3 + 4 ** 2 // 3 - -1 }}|{{ 10 - 2 - 3 }}|{{ 2 ** 3 ** 2 }}",
     "y||-1.5|3|ababab|[0, 0]|a1NoneTrue|[3, 1, 2, 4]|5|12|5|64"},
    {"{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle(\"a\",\"b\") }};{% endfor %}",
     "1032TrueFalse31a;2121FalseFalse332b;3210FalseTrue31a;"},
    {"{% for x in xs if x > 1 %}{{ x }}{{ loop.index }}/{{ loop.length }} {% else %}none{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}|{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}|{% for c in \"ab\" %}{{ c }}.{% endfor %}|{% for k in d %}{{ k }}{% endfor %}",
     "31/2 22/2 |empty|b=2,a=1,C=3,|a.b.|baC"},
    {"{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}|{{ range(3)|list }}|{{ range(1, 10, 3)|list }}|{{ range(5, 0, -2)|list }}",
     "0134|[0, 1, 2]|[1, 4, 7]|[5, 3, 1]"},
    {"{% set a = 1 %}{% for i in range(3) %}{% set a = a + i %}{{ a }}{% endfor %}{{ a }}|{% set ns = namespace(t=0) %}{% for i in range(4) %}{% set ns.t = ns.t + i %}{% endfor %}{{ ns.t }}|{% set p, q = 1, 2 %}{{ p }}{{ q }}|{% set blk %}B{{ 1 + 1 }}{% endset %}{{ blk }}|{% set up | upper %}abc{% endset %}{{ up }}",
     "1231|6|12|B2|ABC"},
    {"{% macro m(a, b=2, c=\"z\") %}[{{ a }}{{ b }}{{ c }}{{ varargs }}{{ kwargs }}]{% endmacro %}{{ m(1) }}{{ m(1, c=3) }}{{ m(1, 2, 3, 4) }}{{ m(1, x=5) }}|{% macro w() %}<{{ caller() }}>{% endmacro %}{% call w() %}in{% endcall %}|{% filter upper %}low{% endfilter %}|{% generation %}gen{% endgeneration %}|{% raw %}{{ raw }}{% endraw %}",
     "[12z(){}][123(){}][123(4,){}][12z(){'x': 5}]|<in>|LOW|gen|{{ raw }}"},
    {"{{ d.a }}|{{ d[\"b\"] }}|{{ msgs[0].role }}|{{ msgs[-1][\"content\"] }}|{{ d.zz }}|{{ msgs[9] }}|{{ n.x }}|{{ dict(a=1) }}|{{ namespace(a=1).a }}|{{ {\"x\": [1, (2, 3)]} }}|{{ xs.index(2) }}|{{ xs.count(3) }}",
     "1|2|user|bye||||{'a': 1}|1|{'x': [1, (2, 3)]}|2|1"},
    {"A {{- \" B \" -}} C|{{ \"x\" }}  {#- c -#}  y|  {%- if true %}T{% endif %}|{%+ if true %}P{% endif +%}",
     "A B C|xy|T|P"},
};

// Second batch (macros with caller args, with, filter blocks, scoping, Unicode, printf-style %).
static const char EXPR2_CTX[] = "{\"s\": \"Hello, World\", \"k\": \"한국어 텍스트\", \"xs\": [3, 1, 2], \"d\": {\"b\": 2, \"a\": 1, \"C\": 3}, \"n\": null, \"f\": 1.5, \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}, {\"role\": \"user\", \"content\": \"bye\"}], \"tl\": [{\"function\": {\"name\": \"b\", \"p\": 2}}, {\"function\": {\"name\": \"a\", \"p\": 1}}, {\"function\": {\"name\": \"c\"}}]}";
static const struct { const char *src, *want; } EXPR2_CASES[] = {
    {"{% macro m(x) %}{{ caller(x, 2) }}{% endmacro %}{% call(a, b) m(5) %}[{{ a }}+{{ b }}]{% endcall %}|{% with q = 3, z = 4 %}{{ q * z }}{% endwith %}{{ q }}|{% filter replace(\"a\", \"b\") %}banana{% endfilter %}",
     "[5+2]|12|bbnbnb"},
    {"{% for i in [1,2] %}{% for j in \"ab\" %}{{ loop.index }}{{ j }}{% endfor %}{{ loop.index }};{% endfor %}|{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}|{% for x in xs %}{{ loop.cycle(\"o\", \"e\", \"x\") }}{% endfor %}",
     "1a2b1;1a2b2;|37|oex"},
    {"{{ '\\u00e9\\x41\\t|' }}|{{ 'a' \"b\" 'c' }}|{{ xs.0 }}|{{ msgs.1.role }}|{{ d|attr(\"a\") }}|{{ tl|selectattr(\"function.p\", \"defined\")|map(attribute=\"function.name\")|list }}|{{ tl|sort(attribute=\"function.name\")|map(attribute=\"function.name\")|join(\",\") }}",
     "éA\t||abc|3|assistant||['b', 'a']|a,b,c"},
    {"{{ [1,2,3,4,5][::-2] }}|{{ \"ab cd-ef\"|title }}|{{ \"ÀÉ straße\"|upper }}|{{ \"ÀÉ\"|lower }}|{{ d|dictsort(false, \"value\") }}|{{ tl|map(attribute=\"function\")|map(attribute=\"p\")|select(\"defined\")|list }}|{{ tl|max(attribute=\"function.name\") }}",
     "[5, 3, 1]|Ab Cd-Ef|ÀÉ STRASSE|àé|[('a', 1), ('b', 2), ('C', 3)]|[2, 1]|{'function': {'name': 'c'}}"},
    {"{{ -7.5 // 2 }}|{{ -2.5|round }}|{{ 7 % 2.5 }}|{{ 1 - 0.9 }}|{{ 100 / 3 }}|{{ 2 ** 0.5 }}|{{ 1e300 * 1e10 }}|{{ 3 // 1.5 }}|{{ 10 / 5 }}|{{ (1, 2) + (3,) }}|{{ [] + [] }}",
     "-4.0|-2.0|2.0|0.09999999999999998|33.333333333333336|1.4142135623730951|inf|2.0|2.0|(1, 2, 3)|[]"},
    {"{{ xs|sum(start=10) }}|{{ tl|length }}|{{ \"abc\"|list }}|{{ d|list }}|{{ none|string }}|{{ true|string|upper }}|{{ 1.0|string }}|{{ [none]|string }}|{{ xs|map(\"string\")|join(\"+\") }}",
     "16|3|['a', 'b', 'c']|['b', 'a', 'C']|None|TRUE|1.0|[None]|3+1+2"},
    {"{{ \"a-b-c\".split(\"-\", 1) }}|{{ \"a-b-c\".rsplit(\"-\") }}|{{ \"\".split() }}|{{ \"\".split(\",\") }}|{{ \"  \".strip() }}|{{ \"xyx\".strip(\"x\") }}|{{ \"Ab1\".isalnum() }}|{{ \"12\".isdigit() }}|{{ \"ab\".isupper() }}|{{ \" \\t\".isspace() }}",
     "['a', 'b-c']|['a', 'b', 'c']|[]|['']||y|True|True|False|True"},
    {"{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}|{% for i in range(2) %}{% set y = i %}{% endfor %}{{ y is defined }}|{% macro g() %}{{ x }}{% endmacro %}{{ g() }}|{% set x = 5 %}{{ g() }}",
     "2|False|2|5"},
    {"{{ msgs|selectattr(\"role\", \"in\", [\"user\", \"system\"])|list|length }}|{{ msgs|map(attribute=\"role\")|unique|list }}|{{ [3, 1, 2]|sort|first }}|{{ msgs|rejectattr(\"content\")|list }}|{{ msgs|selectattr(\"content\", \"string\")|list|length }}",
     "2|['user', 'assistant']|1|[]|3"},
    {"{{ \"x\" if none else \"y\" }}|{{ none is not none }}|{{ (none or {}).get(\"a\", 1) }}|{{ {}|length }}|{{ \"é\"|length }}|{{ \"🦷\"[0] }}|{{ \"a🦷b\"[-2:] }}|{{ \"%5s|%-3d|%.2f\" % (\"ab\", 7, 2.5) }}",
     "y|False|1|0|1|🦷|🦷b|   ab|7  |2.50"},
    {"{{ 1 if true }}{{ \"|\" }}{{ [1, 2] == [1, 2] }}|{{ {\"a\": 1} == {\"a\": 1} }}|{{ \"a\" != \"b\" }}|{{ 1 != 1.0 }}|{{ [1] in [[1]] }}|{{ \"\" in \"abc\" }}|{{ none in [none] }}|{{ true and none }}",
     "1|True|True|True|False|True|True|True|None"},
};

// Whitespace control, newline normalisation and raw blocks (same reference).
static const struct { const char *src, *want; } WS_CASES[] = {
    {"  {% if true %}\nX\n  {% endif %}\nY\n", "X\nY"},
    {"a\n  {# c #}\nb", "a\nb"},
    {"a  {% if true %}b{% endif %}  \nc", "a  b  \nc"},
    {"{% for i in [1,2] %}\n  {{ i }}\n{% endfor %}\n", "  1\n  2\n"},
    {"x\r\ny\rz\n\n", "x\ny\nz\n"},
    {"{%- if true -%}\n  a  \n{%- endif -%}\n b", "ab"},
    {"  {%+ if true %}k{% endif %}", "  k"},
    {"{% if true +%}\nq{% endif %}", "\nq"},
    {"{{ 'a' }}\n{{ 'b' }}\n", "a\nb"},
    {"\t{% raw %}  {{x}}\n{% endraw %}\nafter", "  {{x}}\nafter"},
};

// 2025-01-15 12:00:00, the fixed clock of the reference data (conversations.json "fixed_now").
#define FIXED_NOW 1736942400

// Cases that may fail, with the reason; must stay as short as possible (empty = done).
static const struct {
    const char *template_name, *conversation, *reason;
} expected_failures[] = {
    {NULL, NULL, NULL},
};

static bool is_expected_failure(const char *tname, const char *conv) {
    for (size_t i = 0; expected_failures[i].template_name; i++)
        if (strcmp(expected_failures[i].template_name, tname) == 0 && strcmp(expected_failures[i].conversation, conv) == 0)
            return true;
    return false;
}

static cg_jval *read_json(const char *path) {
    size_t n;
    unsigned char *b = cg_test_read_path(path, &n);
    cg_jval *v = NULL;
    cg_err err = {0};
    cg_status st = cg_jval_parse((const char *)b, n, 0, &v, &err);
    free(b);
    if (st) fail_msg("%s: %s", path, err.msg);
    return v;
}

static char *dump(const cg_jval *v) {
    cg_buf b;
    cg_buf_init(&b);
    cg_err err = {0};
    CG_ASSERT_OK(cg_jval_dump(v, NULL, &b, &err), &err);
    return b.data;
}

static const char *sget(const cg_jval *d, const char *k) {
    const cg_jval *v = cg_jval_dict_getn(d, k, strlen(k));
    return v && v->kind == CG_JV_STR ? v->u.s.p : NULL;
}

static void show_diff(const char *want, size_t wn, const char *got, size_t gn) {
    size_t i = 0;
    while (i < wn && i < gn && want[i] == got[i]) i++;
    size_t from = i > 60 ? i - 60 : 0;
    fprintf(stderr, "    first difference at byte %zu\n    want: %.*s\n    got:  %.*s\n", i,
            (int)((wn - from) > 160 ? 160 : wn - from), want + from, (int)((gn - from) > 160 ? 160 : gn - from), got + from);
}

static void test_golden_templates(void **state) {
    (void)state;
    const char *td = cg_test_testdata_dir();
    char dir[1024], path[1200];
    if (!td) { skip(); return; }
    snprintf(dir, sizeof dir, "%s/templates", td);
    DIR *d = opendir(dir);
    if (!d) { skip(); return; }
    snprintf(path, sizeof path, "%s/conversations.json", dir);
    cg_jval *convs_file = read_json(path);
    const cg_jval *convs = cg_jval_dict_getn(convs_file, "conversations", 13);
    const cg_jval *sp = cg_jval_dict_getn(convs_file, "special_tokens", 14);
    assert_non_null(convs);
    assert_non_null(sp);
    cg_chat_tokens toks = {sget(sp, "bos_token"), sget(sp, "eos_token"), sget(sp, "unk_token"), sget(sp, "pad_token")};
    assert_string_equal(sget(convs_file, "fixed_now"), "2025-01-15T12:00:00");
    cg_tmpl_opts opts = {.has_now = true, .now = FIXED_NOW};
    int n_total = 0, n_same = 0, n_bad = 0, n_xfail = 0, n_files = 0;
    struct dirent *e;
    char **names = NULL;
    size_t n_names = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") || strcmp(e->d_name, "conversations.json") == 0) continue;
        names = realloc(names, (n_names + 1) * sizeof *names);
        names[n_names++] = strdup(e->d_name);
    }
    closedir(d);
    for (size_t f = 0; f < n_names; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        cg_jval *tf = read_json(path);
        n_files++;
        const cg_jval *src = cg_jval_dict_getn(tf, "template", 8), *cases = cg_jval_dict_getn(tf, "cases", 5);
        assert_non_null(src);
        assert_non_null(cases);
        for (size_t c = 0; c < cases->u.list.n; c++) {
            const cg_jval *cs = cases->u.list.items[c];
            const char *cname = sget(cs, "conversation"), *want = sget(cs, "output"), *want_err = sget(cs, "error");
            const cg_jval *conv = cg_jval_dict_getn(convs, cname, strlen(cname));
            assert_non_null(conv);
            const cg_jval *msgs = cg_jval_dict_getn(conv, "messages", 8), *tools = cg_jval_dict_getn(conv, "tools", 5);
            const cg_jval *agp = cg_jval_dict_getn(conv, "add_generation_prompt", 21);
            char *mj = dump(msgs), *tj = tools ? dump(tools) : NULL;
            cg_buf out;
            cg_buf_init(&out);
            cg_err err = {0};
            cg_status st = cg_chat_apply_template(src->u.s.p, src->u.s.n, mj, tj, agp && cg_jval_truthy(agp), &toks,
                                                  &opts, &out, &err);
            bool same;
            n_total++;
            if (want_err) {
                const char *msg = strstr(want_err, "raise_exception: ");
                msg = msg ? msg + 17 : want_err;
                same = st != CG_OK && strstr(err.msg, msg) != NULL;
                if (!same) fprintf(stderr, "  %s / %s: expected error '%s', got status %d '%s'\n", names[f], cname, msg, st, err.msg);
            } else {
                size_t wn = cg_jval_dict_getn(cs, "output", 6)->u.s.n;
                same = st == CG_OK && out.len == wn && memcmp(out.data ? out.data : "", want, wn) == 0;
                if (!same) {
                    fprintf(stderr, "  %s / %s: MISMATCH%s%s\n", names[f], cname, st ? ": " : "", st ? err.msg : "");
                    if (!st) show_diff(want, wn, out.data ? out.data : "", out.len);
                }
            }
            if (same) n_same++;
            else if (is_expected_failure(names[f], cname)) n_xfail++;
            else n_bad++;
            cg_buf_free(&out);
            free(mj);
            free(tj);
        }
        cg_jval_unref(tf);
        free(names[f]);
    }
    free(names);
    cg_jval_unref(convs_file);
    printf("templates: %d/%d cases identical (%d files, %d expected failures)\n", n_same, n_total, n_files, n_xfail);
    for (size_t i = 0; expected_failures[i].template_name; i++)
        printf("  expected failure: %s / %s: %s\n", expected_failures[i].template_name, expected_failures[i].conversation,
               expected_failures[i].reason);
    assert_true(n_files > 0);
    assert_int_equal(n_bad, 0);
}


static cg_status render_src(const char *src, const char *ctx_json, const cg_tmpl_opts *o, cg_buf *out, cg_err *err) {
    cg_tmpl *t = NULL;
    cg_jval *ctx = NULL;
    cg_status st = cg_tmpl_parse(src, strlen(src), &t, err);
    if (!st && ctx_json) st = cg_jval_parse(ctx_json, strlen(ctx_json), 0, &ctx, err);
    if (!st) st = cg_tmpl_render(t, ctx, o, out, err);
    cg_jval_unref(ctx);
    cg_tmpl_free(t);
    return st;
}

static void run_table(const char *what, const char *ctx, const char *const *srcs, const char *const *wants, size_t n) {
    size_t same = 0;
    for (size_t i = 0; i < n; i++) {
        cg_buf out;
        cg_buf_init(&out);
        cg_err err = {0};
        cg_status st = render_src(srcs[i], ctx, NULL, &out, &err);
        const char *got = st ? err.msg : (out.data ? out.data : "");
        if (!st && strcmp(got, wants[i]) == 0) same++;
        else fprintf(stderr, "  %s case %zu:\n    src:  %s\n    want: %s\n    got:  %s\n", what, i, srcs[i], wants[i], got);
        cg_buf_free(&out);
    }
    printf("%s: %zu/%zu cases identical to jinja2\n", what, same, n);
    assert_int_equal(same, n);
}

static void test_expressions_filters_tests(void **state) {
    (void)state;
    size_t n = sizeof EXPR_CASES / sizeof EXPR_CASES[0];
    const char **s = calloc(n, sizeof *s), **w = calloc(n, sizeof *w);
    for (size_t i = 0; i < n; i++) { s[i] = EXPR_CASES[i].src; w[i] = EXPR_CASES[i].want; }
    run_table("expressions", EXPR_CTX, s, w, n);
    free(s);
    free(w);
    n = sizeof EXPR2_CASES / sizeof EXPR2_CASES[0];
    s = calloc(n, sizeof *s);
    w = calloc(n, sizeof *w);
    for (size_t i = 0; i < n; i++) { s[i] = EXPR2_CASES[i].src; w[i] = EXPR2_CASES[i].want; }
    run_table("expressions (2)", EXPR2_CTX, s, w, n);
    free(s);
    free(w);
}

static void test_whitespace_control(void **state) {
    (void)state;
    size_t n = sizeof WS_CASES / sizeof WS_CASES[0];
    const char **s = calloc(n, sizeof *s), **w = calloc(n, sizeof *w);
    for (size_t i = 0; i < n; i++) { s[i] = WS_CASES[i].src; w[i] = WS_CASES[i].want; }
    run_table("whitespace", NULL, s, w, n);
    free(s);
    free(w);
}

static void expect_err(const char *src, const char *ctx, const cg_tmpl_opts *o, cg_status want_st, const char *want_sub) {
    cg_buf out;
    cg_buf_init(&out);
    cg_err err = {0};
    cg_status st = render_src(src, ctx, o, &out, &err);
    if (st != want_st || !strstr(err.msg, want_sub))
        fail_msg("template %s: want status %d with '%s', got %d '%s'", src, want_st, want_sub, st, err.msg);
    cg_buf_free(&out);
}

static void test_syntax_errors(void **state) {
    (void)state;
    expect_err("{% if x %}\n{{ 1 + }}", NULL, NULL, CG_ERR_FORMAT, "line 2, column 8: expected an expression, got end of tag");
    expect_err("{% for x in y %}", NULL, NULL, CG_ERR_FORMAT, "missing 'endfor' for the block opened on line 1");
    expect_err("ok\n\n  {% foo %}", NULL, NULL, CG_ERR_FORMAT, "line 3, column 6: unknown tag 'foo'");
    expect_err("{{ 'abc }}", NULL, NULL, CG_ERR_FORMAT, "line 1, column 4: unterminated string literal");
    expect_err("line1\n{{ a.b( }}", NULL, NULL, CG_ERR_FORMAT, "line 2");
    expect_err("{% endif %}", NULL, NULL, CG_ERR_FORMAT, "line 1, column 4: unexpected end tag");
    expect_err("{{ x | }}", NULL, NULL, CG_ERR_FORMAT, "expected filter name");
    expect_err("{{ x ]}}", NULL, NULL, CG_ERR_FORMAT, "unexpected ']'");
    expect_err("{# never closed", NULL, NULL, CG_ERR_FORMAT, "unterminated comment");
    expect_err("bad \xff byte", NULL, NULL, CG_ERR_FORMAT, "invalid UTF-8 at byte offset 4");
    expect_err("{% if a %}{% else %}{% else %}{% endif %}", NULL, NULL, CG_ERR_FORMAT, "unexpected end tag");
    expect_err("{% raw %}x", NULL, NULL, CG_ERR_FORMAT, "missing endraw");
    // deep nesting is a limit, not a stack overflow
    char *deep = malloc(5000);
    strcpy(deep, "{{ ");
    memset(deep + 3, '(', 2000);
    deep[2003] = '1';
    memset(deep + 2004, ')', 2000);
    strcpy(deep + 4004, " }}");
    expect_err(deep, NULL, NULL, CG_ERR_LIMIT, "nested too deeply");
    free(deep);
}

static void test_runtime_errors(void **state) {
    (void)state;
    expect_err("a\n\n{{ raise_exception('boom ' ~ 1) }}", NULL, NULL, CG_ERR_FORMAT, "line 3: raise_exception: boom 1");
    expect_err("{{ x.y }}", NULL, NULL, CG_ERR_FORMAT, "line 1: 'x' is undefined");
    expect_err("{{ d.a.b }}", "{\"d\": {}}", NULL, CG_ERR_FORMAT, "'dict object' has no attribute 'a'");
    expect_err("\n{{ 'a' + 1 }}", NULL, NULL, CG_ERR_FORMAT, "line 2: unsupported operand type(s) for +: 'str' and 'int'");
    expect_err("{{ [].append(1) }}", NULL, NULL, CG_ERR_FORMAT, "access to attribute 'append' of 'list' object is unsafe.");
    expect_err("{{ {}.update({}) }}", NULL, NULL, CG_ERR_FORMAT, "access to attribute 'update' of 'dict' object is unsafe.");
    expect_err("{{ 1 | nosuch }}", NULL, NULL, CG_ERR_FORMAT, "no filter named 'nosuch'");
    expect_err("{{ 1 is nosuch }}", NULL, NULL, CG_ERR_FORMAT, "no test named 'nosuch'");
    expect_err("{{ 1 // 0 }}", NULL, NULL, CG_ERR_FORMAT, "integer division or modulo by zero");
    expect_err("{{ 1 / 0 }}", NULL, NULL, CG_ERR_FORMAT, "division by zero");
    expect_err("{{ none | length }}", NULL, NULL, CG_ERR_FORMAT, "object of type 'NoneType' has no len()");
    expect_err("{% for x in 3 %}{% endfor %}", NULL, NULL, CG_ERR_FORMAT, "'int' object is not iterable");
    expect_err("{% set a, b = [1] %}", NULL, NULL, CG_ERR_FORMAT, "not enough values to unpack (expected 2, got 1)");
    expect_err("{{ x | tojson }}", NULL, NULL, CG_ERR_FORMAT, "Object of type Undefined is not JSON serializable");
    expect_err("{{ 1 < 'a' }}", NULL, NULL, CG_ERR_FORMAT, "not supported between instances of 'int' and 'str'");
    expect_err("{% set s = 'x' %}{% set s.a = 1 %}", NULL, NULL, CG_ERR_FORMAT, "cannot assign attribute on non-namespace object");
    expect_err("{{ 9223372036854775807 + 1 }}", NULL, NULL, CG_ERR_UNSUPPORTED, "integer overflow");
    // the context must be a dict
    cg_tmpl *t = NULL;
    cg_err err = {0};
    CG_ASSERT_OK(cg_tmpl_parse("x", 1, &t, &err), &err);
    cg_jval *l = cg_jval_list();
    cg_buf out;
    cg_buf_init(&out);
    assert_int_equal(cg_tmpl_render(t, l, NULL, &out, &err), CG_ERR_TYPE);
    cg_jval_unref(l);
    cg_buf_free(&out);
    cg_tmpl_free(t);
}

static void test_caps(void **state) {
    (void)state;
    cg_tmpl_opts o = {.max_steps = 100000};
    expect_err("{% for i in range(1000) %}{% for j in range(1000) %}{{ '' }}{% endfor %}{% endfor %}", NULL, &o,
               CG_ERR_LIMIT, "evaluation steps");
    expect_err("{% for i in range(100000000) %}{% endfor %}", NULL, NULL, CG_ERR_LIMIT, "range()");
    expect_err("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, NULL, CG_ERR_LIMIT, "nested deeper");
    cg_tmpl_opts small = {.max_output = 1000};
    expect_err("{% for i in range(100) %}0123456789abcdef{% endfor %}", NULL, &small, CG_ERR_LIMIT, "output larger than 1000");
    expect_err("{{ 'x' * 1000000000000 }}", NULL, NULL, CG_ERR_LIMIT, "repetition");
    expect_err("{% set ns = namespace(s='xx') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", NULL,
               NULL, CG_ERR_LIMIT, "too large");
    expect_err("{% set ns = namespace(l=[]) %}{% for i in range(5000) %}{% set ns.l = [ns.l] %}{% endfor %}", NULL, NULL,
               CG_ERR_LIMIT, "values nested deeper than 1000");
    expect_err("{% set ns = namespace(l=[]) %}{% for i in range(30) %}{% set ns.l = ns.l + ns.l + [1] %}{% endfor %}", NULL,
               NULL, CG_ERR_LIMIT, "list of more than");
    // a namespace inside a namespace could form a reference cycle; refused
    expect_err("{% set ns = namespace(a=1) %}{% set ns.self = [ns] %}", NULL, NULL, CG_ERR_UNSUPPORTED,
               "a namespace cannot be stored inside a namespace");
    // within the caps the same templates work
    cg_buf out;
    cg_buf_init(&out);
    cg_err err = {0};
    CG_ASSERT_OK(render_src("{% for i in range(100) %}{{ i % 10 }}{% endfor %}", NULL, &small, &out, &err), &err);
    assert_int_equal(out.len, 100);
    cg_buf_free(&out);
}

static void test_strftime_now_clock(void **state) {
    (void)state;
    cg_tmpl_opts o = {.has_now = true, .now = FIXED_NOW};
    cg_buf out;
    cg_buf_init(&out);
    cg_err err = {0};
    CG_ASSERT_OK(render_src("{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%B %d, %Y') }}",
                            NULL, &o, &out, &err), &err);
    assert_string_equal(out.data, "2025-01-15 12:00:00|15 Jan 2025|January 15, 2025");
    cg_buf_free(&out);
}

static void test_json_parser(void **state) {
    (void)state;
    cg_jval *v = NULL;
    cg_err err = {0};
    const char *ok = " {\"a\": [1, -2.5e3, true, false, null, \"\\u00e9\\ud83e\\uddb7\\n\"], \"b\": {}, \"c\": 9223372036854775807, \"d\": 1e400} ";
    CG_ASSERT_OK(cg_jval_parse(ok, strlen(ok), 0, &v, &err), &err);
    assert_int_equal(v->kind, CG_JV_DICT);
    const cg_jval *a = cg_jval_dict_getn(v, "a", 1);
    assert_int_equal(a->u.list.n, 6);
    assert_int_equal(a->u.list.items[0]->kind, CG_JV_INT);
    assert_true(a->u.list.items[1]->kind == CG_JV_FLOAT && a->u.list.items[1]->u.f == -2500.0);
    assert_string_equal(a->u.list.items[5]->u.s.p, "\xc3\xa9\xf0\x9f\xa6\xb7\n");
    assert_int_equal(cg_jval_dict_getn(v, "c", 1)->u.i, INT64_MAX);
    cg_buf b;
    cg_buf_init(&b);
    CG_ASSERT_OK(cg_jval_dump(v, NULL, &b, &err), &err);
    // Python: json.dumps(json.loads(ok), ensure_ascii=False)
    assert_string_equal(b.data, "{\"a\": [1, -2500.0, true, false, null, \"\xc3\xa9\xf0\x9f\xa6\xb7\\n\"], \"b\": {}, "
                                "\"c\": 9223372036854775807, \"d\": Infinity}");
    cg_buf_free(&b);
    cg_jval_unref(v);

    static const struct { const char *text; cg_status st; const char *msg; } bad[] = {
        {"{\"a\": 1, \"a\": 2}", CG_ERR_FORMAT, "duplicate key \"a\" at byte offset 9"},
        {"[1, 2", CG_ERR_FORMAT, "',' or ']' expected at byte offset 5"},
        {"[1] x", CG_ERR_FORMAT, "trailing characters after the value at byte offset 4"},
        {"{\"a\" 1}", CG_ERR_FORMAT, "':' expected at byte offset 5"},
        {"\"abc", CG_ERR_FORMAT, "unterminated string at byte offset 4"},
        {"\"a\x01\"", CG_ERR_FORMAT, "control character in string at byte offset 2"},
        {"\"\\q\"", CG_ERR_FORMAT, "invalid escape at byte offset 1"},
        {"\"\\ud800\"", CG_ERR_FORMAT, "unpaired surrogate escape at byte offset 1"},
        {"\"\xc3\x28\"", CG_ERR_FORMAT, "invalid UTF-8 in string at byte offset 1"},
        {"01", CG_ERR_FORMAT, "trailing characters after the value at byte offset 1"},
        {"1.", CG_ERR_FORMAT, "digit expected after '.' at byte offset 2"},
        {"-", CG_ERR_FORMAT, "invalid number at byte offset 0"},
        {"tru", CG_ERR_FORMAT, "unexpected character at byte offset 0"},
        {"", CG_ERR_FORMAT, "unexpected end of input at byte offset 0"},
        {"{'a': 1}", CG_ERR_FORMAT, "object key string expected at byte offset 1"},
        {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
         "]", CG_ERR_LIMIT, "nesting too deep at byte offset 128"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cg_err e2 = {0};
        cg_jval *x = NULL;
        cg_status st = cg_jval_parse(bad[i].text, strlen(bad[i].text), 0, &x, &e2);
        if (st != bad[i].st || !strstr(e2.msg, bad[i].msg))
            fail_msg("json %zu '%s': want %d '%s', got %d '%s'", i, bad[i].text, bad[i].st, bad[i].msg, st, e2.msg);
        assert_null(x);
    }
}

// cg_jval_parse_prefix: the value's end, and whether a failure is the input ending early (each case
// decided by hand: a truncation is a proper prefix of some JSON value).
static void test_json_parse_prefix(void **state) {
    (void)state;
    static const struct { const char *text; bool ok; size_t end; bool truncated; } cases[] = {
        {"[1] tail", true, 3, false},          {"  {\"a\":\"b\"}{}", true, 11, false},
        {"12 ", true, 2, false},               {"[1, 2", false, 0, true},
        {"-", false, 0, true},                 {"tr", false, 0, true},
        {"nul", false, 0, true},               {"tx", false, 0, false},
        {"\"ab", false, 0, true},              {"\"\\", false, 0, true},
        {"\"\\u12", false, 0, true},          {"\"\\u1g", false, 0, false},
        {"\"\\ud800", false, 0, true},        {"\"\\ud800\\", false, 0, true},
        {"\"\\ud800x", false, 0, false},      {"{\"a\" 1}", false, 0, false},
        {"1.", false, 0, true},                {"1e+", false, 0, true},
        {"{\"a\": 1, \"a\"", false, 0, false}, {"", false, 0, true},
        {"]", false, 0, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cg_jval *v = NULL;
        size_t end = 0;
        bool truncated = !cases[i].truncated;
        cg_err e = {0};
        cg_status st = cg_jval_parse_prefix(cases[i].text, strlen(cases[i].text), 0, &v, &end, &truncated, &e);
        if ((st == CG_OK) != cases[i].ok || (cases[i].ok && end != cases[i].end) || truncated != cases[i].truncated)
            fail_msg("prefix %zu '%s': got st %d end %zu truncated %d (%s)", i, cases[i].text, st, end, truncated, e.msg);
        cg_jval_unref(v);
    }
    // finite_only: 1e400 parses to infinity, which strict JSON output refuses (Python allow_nan=False)
    cg_jval *v = NULL;
    cg_err err = {0};
    CG_ASSERT_OK(cg_jval_parse("[1e400]", 7, 0, &v, &err), &err);
    cg_buf b;
    cg_buf_init(&b);
    cg_jval_dump_opts o = {.indent = -1, .finite_only = true};
    assert_int_equal(cg_jval_dump(v, &o, &b, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "not a JSON number"));
    cg_buf_free(&b);
    cg_jval_unref(v);
}

static void test_python_printing(void **state) {
    (void)state;
    // Python repr(float) for these values, and json.dumps escapes.
    static const struct { double f; const char *want; } fl[] = {
        {1.0, "1.0"}, {0.1, "0.1"}, {1e16, "1e+16"}, {1.5e-5, "1.5e-05"}, {0.0001, "0.0001"}, {123456789012345.6, "123456789012345.6"},
        {1e22, "1e+22"}, {-2.5, "-2.5"}, {5e-324, "5e-324"}, {1.7976931348623157e308, "1.7976931348623157e+308"}, {2.0 / 3.0, "0.6666666666666666"},
    };
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) {
        cg_buf b;
        cg_buf_init(&b);
        cg_jval_py_float(fl[i].f, &b);
        assert_string_equal(b.data, fl[i].want);
        cg_buf_free(&b);
    }
    cg_jval *s = cg_jval_str("a\x01\x7f\t\"\\\xe2\x80\xa8", 9);
    cg_buf b;
    cg_buf_init(&b);
    cg_err err = {0};
    CG_ASSERT_OK(cg_jval_dump(s, NULL, &b, &err), &err);
    assert_string_equal(b.data, "\"a\\u0001\x7f\\t\\\"\\\\\xe2\x80\xa8\"");  // json.dumps(..., ensure_ascii=False)
    cg_buf_reset(&b);
    cg_jval_py_repr(s, &b);
    assert_string_equal(b.data, "'a\\x01\\x7f\\t\"\\\\\\u2028'");  // repr(...)
    cg_buf_reset(&b);
    // json.dumps("é🦷", ensure_ascii=True)
    CG_ASSERT_OK(render_src("{{ '\xc3\xa9\xf0\x9f\xa6\xb7'|tojson(ensure_ascii=true) }}", NULL, NULL, &b, &err), &err);
    assert_string_equal(b.data, "\"\\u00e9\\ud83e\\uddb7\"");
    cg_buf_free(&b);
    cg_jval_unref(s);
}

static void test_builtin_templates(void **state) {
    (void)state;
    const char *msgs = "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"U1\"},"
                       "{\"role\":\"assistant\",\"content\":\" A1 \"},{\"role\":\"user\",\"content\":\"U2\"}]";
    // Expected strings follow llama.cpp's llm_chat_apply_template for the same messages, add_ass = true.
    static const struct { const char *name, *want; } cases[] = {
        {"chatml", "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\n A1 <|im_end|>\n"
                   "<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n"},
        {"llama2", "[INST] S\nU1 [/INST] A1 </s>[INST] U2 [/INST]"},
        {"llama2-sys", "[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s>[INST] U2 [/INST]"},
        {"llama2-sys-bos", "[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]"},
        {"llama2-sys-strip", "[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST]A1</s>[INST] U2 [/INST]"},
        {"mistral-v1", " [INST] S\n\nU1 [/INST]  A1 </s> [INST] U2 [/INST]"},
        {"mistral-v3", "[INST] S\n\nU1[/INST] A1</s>[INST] U2[/INST]"},
        {"mistral-v3-tekken", "[INST]S\n\nU1[/INST] A1 </s>[INST]U2[/INST]"},
        {"mistral-v7", "[SYSTEM_PROMPT] S[/SYSTEM_PROMPT][INST] U1[/INST]  A1 </s>[INST] U2[/INST]"},
        {"phi3", "<|system|>\nS<|end|>\n<|user|>\nU1<|end|>\n<|assistant|>\n A1 <|end|>\n<|user|>\nU2<|end|>\n<|assistant|>\n"},
        {"llama3", "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU1<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\n"},
        {"gemma", "<start_of_turn>user\nS\n\nU1<end_of_turn>\n<start_of_turn>model\nA1<end_of_turn>\n<start_of_turn>user\nU2<end_of_turn>\n"
                  "<start_of_turn>model\n"},
        {"exaone3", "[|system|]S[|endofturn|]\n[|user|]U1\n[|assistant|]A1[|endofturn|]\n[|user|]U2\n[|assistant|]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *src = cg_chat_builtin_source(cases[i].name);
        assert_non_null(src);
        cg_buf out;
        cg_buf_init(&out);
        cg_err err = {0};
        CG_ASSERT_OK(cg_chat_apply_template(src, strlen(src), msgs, NULL, true, NULL, NULL, &out, &err), &err);
        if (strcmp(out.data, cases[i].want) != 0) fail_msg("builtin %s:\nwant %s\ngot  %s", cases[i].name, cases[i].want, out.data);
        cg_buf_free(&out);
    }
    assert_null(cg_chat_builtin_source("nope"));
    // Detection, as llama.cpp's llm_chat_detect_template.
    assert_string_equal(cg_chat_detect_builtin(NULL), "chatml");
    assert_string_equal(cg_chat_detect_builtin("llama3"), "llama3");
    assert_string_equal(cg_chat_detect_builtin("{{ '<|im_start|>' + m.role }}"), "chatml");
    assert_string_equal(cg_chat_detect_builtin("{{ bos_token + '[INST] ' + m.content.strip() }}"), "llama2-sys-strip");
    assert_string_equal(cg_chat_detect_builtin("{{ '<<SYS>>' }}[INST]"), "llama2-sys");
    assert_string_equal(cg_chat_detect_builtin("[INST][SYSTEM_PROMPT]"), "mistral-v7");
    assert_string_equal(cg_chat_detect_builtin("[AVAILABLE_TOOLS] [INST]"), "mistral-v1");
    assert_string_equal(cg_chat_detect_builtin("<|assistant|> <|end|>"), "phi3");
    assert_string_equal(cg_chat_detect_builtin("<start_of_turn>"), "gemma");
    assert_string_equal(cg_chat_detect_builtin("<|start_header_id|>x<|end_header_id|>"), "llama3");
    assert_string_equal(cg_chat_detect_builtin("[|system|][|assistant|][|endofturn|]"), "exaone3");
    assert_null(cg_chat_detect_builtin("[|system|][|assistant|][|endofturn|][|tool|]"));
    assert_null(cg_chat_detect_builtin("something else"));
}

static void test_chat_apply_errors(void **state) {
    (void)state;
    cg_buf out;
    cg_buf_init(&out);
    cg_err err = {0};
    assert_int_equal(cg_chat_apply_template("x", 1, "[{\"role\": \"user\", \"role\": 1}]", NULL, true, NULL, NULL, &out, &err),
                     CG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "messages: json: duplicate key \"role\" at byte offset 18"));
    assert_int_equal(cg_chat_apply_template("x", 1, "{}", NULL, true, NULL, NULL, &out, &err), CG_ERR_TYPE);
    assert_non_null(strstr(err.msg, "messages: expected a JSON array"));
    assert_int_equal(cg_chat_apply_template("x", 1, "[]", "[1,", true, NULL, NULL, &out, &err), CG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "tools: json:"));
    // tools undefined when not given; defined (and iterable) when given
    const char *src = "{{ tools is defined }}{% for t in tools or [] %}{{ t.name }}{% endfor %}{{ bos_token }}";
    cg_chat_tokens tk = {.bos = "<s>"};
    CG_ASSERT_OK(cg_chat_apply_template(src, strlen(src), "[]", NULL, false, &tk, NULL, &out, &err), &err);
    assert_string_equal(out.data, "False<s>");
    cg_buf_reset(&out);
    CG_ASSERT_OK(cg_chat_apply_template(src, strlen(src), "[]", "[{\"name\":\"f\"}]", false, NULL, NULL, &out, &err), &err);
    assert_string_equal(out.data, "Truef");
    cg_buf_free(&out);
}

typedef struct shared_render {
    const cg_tmpl *t;
    int n_ok;
} shared_render;

static void *render_worker(void *arg) {
    shared_render *s = arg;
    const char *ctx_json = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"add_generation_prompt\": true}";
    for (int i = 0; i < 200; i++) {
        cg_jval *ctx = NULL;
        cg_err err = {0};
        cg_buf out;
        cg_buf_init(&out);
        if (cg_jval_parse(ctx_json, strlen(ctx_json), 0, &ctx, &err) == CG_OK &&
            cg_tmpl_render(s->t, ctx, NULL, &out, &err) == CG_OK &&
            strcmp(out.data, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n") == 0)
            s->n_ok++;
        cg_jval_unref(ctx);
        cg_buf_free(&out);
    }
    return NULL;
}

// One parsed template rendered by several threads at once (literals are shared, never counted).
static void test_concurrent_renders(void **state) {
    (void)state;
    const char *src = cg_chat_builtin_source("chatml");
    cg_tmpl *t = NULL;
    cg_err err = {0};
    CG_ASSERT_OK(cg_tmpl_parse(src, strlen(src), &t, &err), &err);
    shared_render s[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        s[i] = (shared_render){.t = t};
        assert_int_equal(pthread_create(&th[i], NULL, render_worker, &s[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(s[i].n_ok, 200);
    }
    cg_tmpl_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_templates),  cmocka_unit_test(test_expressions_filters_tests),
        cmocka_unit_test(test_whitespace_control), cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_runtime_errors),    cmocka_unit_test(test_caps),
        cmocka_unit_test(test_strftime_now_clock), cmocka_unit_test(test_json_parser),
        cmocka_unit_test(test_json_parse_prefix),
        cmocka_unit_test(test_python_printing),   cmocka_unit_test(test_builtin_templates),
        cmocka_unit_test(test_chat_apply_errors), cmocka_unit_test(test_concurrent_renders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
