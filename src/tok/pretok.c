// pretok.c — byte-level BPE pre-tokenizers: split text into words with the regexes llama.cpp uses
// for each `tokenizer.ggml.pre` name, with PCRE2 (JIT when available).
//
// How llama.cpp splits (and therefore how we must): the text is a sequence of code points; each
// regex of the list is applied in turn to every piece the previous one produced (the first to the
// whole text), and both the matches and the unmatched gaps between them become pieces. Each piece
// is a separate regex subject, so anchors and lookarounds never see past it. llama.cpp evaluates a
// regex in one of three ways and each has observable quirks, so we reproduce all three:
//   * UCP  — the GPT-2 and Llama-3 patterns run through hand-written matchers that use real Unicode
//            categories. We run the original patterns with PCRE2_UTF|PCRE2_UCP on the UTF-8 text
//            (the GPT-2 one with the trailing `|\s+` its matcher implements).
//   * COLLAPSED — any other pattern using \p{N} \p{L} \p{P} \p{M} \p{S} (or \p{Lu} …) runs on a
//            "collapsed" text with one byte per code point: ASCII stays, other code points become
//            0xD1 number, 0xD2 letter, 0xD3 punctuation, 0xD4 mark, 0xD5 symbol, 0x0B whitespace,
//            0xD0 anything else; \p{X} becomes a class of that byte plus the ASCII members. (So in
//            qwen2's pattern an emoji is not a letter but 👍 ≠ \s either; \p{Lu} means any letter.)
//            We build the same collapsed bytes and run the rewritten pattern without UTF mode.
//   * WIDE — a pattern without categories runs on the code points with non-ASCII whitespace
//            replaced by U+000B (so \s stays ASCII-only but still matches them). We run it with
//            PCRE2_UTF (no UCP) on UTF-8 text that carries the same replacement.
// All patterns are compiled with PCRE2_DOLLAR_ENDONLY ($ = end of piece, as in std::regex). The
// input must be valid UTF-8 (vocab.c sanitises it), so every match uses PCRE2_NO_UTF_CHECK.
//
// Invariants: a cg_pretok is immutable after cg_pretok_new and shared between threads; all
// per-call state (code points, collapsed text, match data, JIT stack) lives in cg_pretok_scratch.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/grow.h"
#include "base/num.h"
#include "base/utf8.h"
#include "tok/vocab.h"

// ---- the regexes (verbatim from llama.cpp's llm_tokenizer_bpe) -------------------------------

#define RX_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RX_LLAMA3_ADAPTED                                                                             \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| " \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
// What the two hand-written matchers implement, as PCRE2 patterns (original tokenizer.json forms).
#define RX_GPT2_UCP RX_GPT2 "|\\s+"
#define RX_LLAMA3_UCP                                                                                  \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_QWEN2                                                                                      \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "  \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_QWEN35                                                                                     \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| " \
    "?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_CJK_KO "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+"
#define RX_DEEPSEEK_LETTERS                                                                           \
    "\\s?[A-Za-z\xc2\xb5\xc3\x80-\xc3\x96\xc3\x98-\xc3\xb6\xc3\xb8-\xc6\xba\xc6\xbc-\xc6\xbf\xc7\x84-\xca\x93" \
    "\xca\x95-\xca\xaf\xcd\xb0-\xcd\xb3\xcd\xb6\xcd\xb7\xcd\xbb-\xcd\xbd\xcd\xbf\xce\x86\xce\x88-\xce\x8a"     \
    "\xce\x8c\xce\x8e-\xce\xa1\xce\xa3-\xcf\xb5\xcf\xb7-\xd2\x81\xd2\x8a-\xd4\xaf\xd4\xb1-\xd5\x96"             \
    "\xe1\x82\xa0-\xe1\x83\x85\xe1\x8e\xa0-\xe1\x8f\xb5\xe1\x8f\xb8-\xe1\x8f\xbd\xe1\xb2\x90-\xe1\xb2\xba"     \
    "\xe1\xb2\xbd-\xe1\xb2\xbf\xe1\xb4\x80-\xe1\xb4\xab\xe1\xb5\xab-\xe1\xb5\xb7\xe1\xb5\xb9-\xe1\xb6\x9a"     \
    "\xe1\xb8\x80-\xe1\xbc\x95\xe1\xbc\x98-\xe1\xbc\x9d\xe1\xbc\xa0-\xe1\xbd\x85\xe1\xbd\x88-\xe1\xbd\x8d"     \
    "\xe1\xbd\x90-\xe1\xbd\x97\xe1\xbd\x99\xe1\xbd\x9b\xe1\xbd\x9d\xe1\xbd\x9f-\xe1\xbd\xbd\xe1\xbe\x80-"      \
    "\xe1\xbe\xb4\xe1\xbe\xb6-\xe1\xbe\xbc\xe1\xbe\xbe\xe1\xbf\x82-\xe1\xbf\x84\xe1\xbf\x86-\xe1\xbf\x8c"     \
    "\xe1\xbf\x90-\xe1\xbf\x93\xe1\xbf\x96-\xe1\xbf\x9b\xe1\xbf\xa0-\xe1\xbf\xac\xe1\xbf\xb2-\xe1\xbf\xb4"     \
    "\xe1\xbf\xb6-\xe1\xbf\xbc\xe2\x84\x82\xe2\x84\x87\xe2\x84\x8a-\xe2\x84\x93\xe2\x84\x95\xe2\x84\x99-"     \
    "\xe2\x84\x9d\xe2\x84\xa4\xe2\x84\xa6\xe2\x84\xa8\xe2\x84\xaa-\xe2\x84\xad\xe2\x84\xaf-\xe2\x84\xb4"     \
    "\xe2\x84\xb9\xe2\x84\xbc-\xe2\x84\xbf\xe2\x85\x85-\xe2\x85\x89\xe2\x85\x8e\xe2\x86\x83\xe2\x86\x84"     \
    "\xe2\xb0\x80-\xe2\xb1\xbb\xe2\xb1\xbe-\xe2\xb3\xa4\xe2\xb3\xab-\xe2\xb3\xae\xe2\xb3\xb2\xe2\xb3\xb3"     \
    "\xea\x99\x80-\xea\x99\xad\xea\x9a\x80-\xea\x9a\x9b\xea\x9c\xa2-\xea\x9d\xaf\xea\x9d\xb1-\xea\x9e\x87"     \
    "\xea\x9e\x8b-\xea\x9e\x8e\xea\xad\xb0-\xea\xae\xbf\xef\xac\x80-\xef\xac\x86\xef\xac\x93-\xef\xac\x97"     \
    "\xef\xbc\xa1-\xef\xbc\xba\xef\xbd\x81-\xef\xbd\x9a\xf0\x90\x90\x80-\xf0\x90\x91\x8f\xf0\x90\x92\xb0-"    \
    "\xf0\x90\x93\x93\xf0\x90\x93\x98-\xf0\x90\x93\xbb\xf0\x90\xb2\x80-\xf0\x90\xb2\xb2\xf0\x90\xb3\x80-"    \
    "\xf0\x90\xb3\xb2\xf0\x91\xa2\xa0-\xf0\x91\xa3\x9f\xf0\x9e\xa4\x80-\xf0\x9e\xa5\x83]+"
#define RX_DEEPSEEK_PUNCT                                                                             \
    "\\s?[!-/:-~\xef\xbc\x81-\xef\xbc\x8f\xef\xbc\x9a-\xef\xbd\x9e\xe2\x80\x98-\xe2\x80\x9f\xe3\x80\x80-"   \
    "\xe3\x80\x82]+"
#define RX_TEKKEN                                                                                     \
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])(" \
    "[^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_CONTRACTIONS_OPT "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?"
#define RX_GPT4O                                                                                       \
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+" RX_CONTRACTIONS_OPT           \
    "|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*" RX_CONTRACTIONS_OPT          \
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_SEED_CODER                                                                                  \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| " \
    "?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_BAILING                                                                                     \
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "                    \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"
#define RX_EXAONE_MOE                                                                                  \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: " \
    "\\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"
#define RX_BLOOM " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+"

#define RX_DEEPSEEK3_CJK "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+"
#define RX_DEEPSEEK3_MAIN                                                                              \
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "   \
    "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"
#define RX_MINICPM5                                                                                    \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| "  \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_UFAKZEKA                                                                                    \
    "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define MAX_RX 6

typedef struct pretok_def {
    const char *names;   // '|'-separated tokenizer.ggml.pre values
    const char *rx[MAX_RX];
    bool clean_spaces;
    bool ignore_merges;
    int add_bos;         // -1 model default
    bool no_bos_id;
    bool add_sep;
} pretok_def;

// One row per llama.cpp pre-tokenizer type we support (names → regexes and flags).
static const pretok_def PRETOKS[] = {
    {"default", {"[\\p{P}\\$\\+<=>\\^~\\|]+", RX_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, true, false, -1, false, false},
    {"llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2|jina-v5-nano", {RX_LLAMA3_ADAPTED},
     true, true, 1, false, false},
    {"dbrx|smaug-bpe", {RX_LLAMA3_ADAPTED}, true, false, -1, false, false},
    {"deepseek-llm",
     {"[\r\n]", RX_DEEPSEEK_LETTERS, RX_DEEPSEEK_PUNCT, "\\s+$", RX_CJK_KO, "\\p{N}+"}, false, false, -1, false, false},
    {"deepseek-coder", {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RX_CJK_KO, "\\p{N}"}, false, false, -1, false, false},
    {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RX_GPT2, "[0-9][0-9][0-9]"}, true, false, -1, false, false},
    {"mpt|olmo|jais|gpt-2|phi-2|jina-es|jina-de|gigachat|jina-v2-es|jina-v2-de|a.x-4.0|mellum|modern-bert|exaone4",
     {RX_GPT2}, true, false, -1, false, false},
    {"trillion|granite-docling", {RX_GPT2}, false, false, -1, false, false},
    {"starcoder|refact|codeshell|exaone|minerva-7b|mellum2", {"\\p{N}", RX_GPT2}, true, false, -1, false, false},
    {"command-r|smollm", {"\\p{N}", RX_GPT2}, false, false, -1, false, false},
    {"qwen2|deepseek-r1-qwen|kormo|f2llmv2|hunyuan|solar-open", {RX_QWEN2}, false, false, -1, false, false},
    {"stablelm2|megrez", {RX_QWEN2}, true, false, -1, false, false},
    {"qwen35", {RX_QWEN35}, false, false, -1, false, false},
    {"glm4|chatglm-bpe", {RX_LLAMA3_ADAPTED}, true, false, -1, true, false},
    {"poro-chat", {RX_BLOOM}, false, false, -1, false, false},
    {"bloom|gpt3-finnish", {RX_BLOOM}, true, false, -1, false, false},
    {"tekken", {RX_TEKKEN}, false, true, 1, false, false},
    {"gpt-4o|llama4|kanana2|talkie|minimax-m2", {RX_GPT4O}, false, false, -1, false, false},
    {"seed-coder", {RX_SEED_CODER}, false, false, -1, false, false},
    {"grok-2", {RX_QWEN2}, false, false, -1, false, false},
    {"bailingmoe|bailingmoe2|llada-moe", {RX_BAILING}, false, false, -1, false, false},
    {"exaone-moe", {RX_EXAONE_MOE}, true, false, -1, false, false},
    {"jina-v1-en|jina-v2-code|roberta-bpe", {RX_GPT2}, true, false, -1, false, true},
    {"deepseek-v3|hunyuan-dense|joyai-llm|hy_v4", {"\\p{N}{1,3}", RX_DEEPSEEK3_CJK, RX_DEEPSEEK3_MAIN}, false, false,
     -1, false, false},
    {"minicpm5", {"\\p{N}{1,3}", RX_MINICPM5}, true, true, -1, false, false},
    {"ufakzeka", {RX_UFAKZEKA}, false, false, -1, false, false},
    {"laguna", {"[^\\n]+|[\\n]+", RX_QWEN2}, false, false, -1, false, false},
};

typedef enum rx_mode { RX_UCP, RX_COLLAPSED, RX_WIDE } rx_mode;

typedef struct rx {
    pcre2_code *code;
    rx_mode mode;
} rx;

struct cg_pretok {
    rx rx[MAX_RX];
    int n_rx;
    bool need_collapse;
    bool need_wide;
};

// ---- Unicode facts as llama.cpp sees them --------------------------------------------------------

// llama.cpp's whitespace set (unicode_set_whitespace).
static bool is_ws(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

// The collapsed byte of a code point ≥ 128.
static unsigned char collapse_cp(uint32_t c) {
    if (is_ws(c)) return 0x0B;
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return 0xD1;
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
        return 0xD2;
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
        return 0xD3;
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
        return 0xD4;
    case UTF8PROC_CATEGORY_SM: case UTF8PROC_CATEGORY_SC: case UTF8PROC_CATEGORY_SK:
    case UTF8PROC_CATEGORY_SO:
        return 0xD5;
    default:
        return 0xD0;
    }
}

// ---- compiling ------------------------------------------------------------------------------------

typedef struct ucat {
    const char *pat;
    unsigned char byte;
    const char *ascii;   // the ASCII members, as class text
} ucat;

static const ucat UCATS[] = {
    {"\\p{N}", 0xD1, "0-9"},
    {"\\p{L}", 0xD2, "A-Za-z"},
    {"\\p{P}", 0xD3, "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"},
    {"\\p{M}", 0xD4, ""},
    {"\\p{S}", 0xD5, "\\$\\+<->\\^`\\|"},
    {"\\p{Lu}", 0xD2, "A-Za-z"},
    {"\\p{Ll}", 0xD2, "A-Za-z"},
    {"\\p{Lt}", 0xD2, "A-Za-z"},
    {"\\p{Lm}", 0xD2, "A-Za-z"},
    {"\\p{Lo}", 0xD2, "A-Za-z"},
};

static bool uses_categories(const char *re) {
    for (size_t i = 0; i < sizeof UCATS / sizeof UCATS[0]; i++)
        if (strstr(re, UCATS[i].pat)) return true;
    return false;
}

// Rewrites \p{X} into collapsed-byte classes, exactly as llama.cpp rewrites its std::regex.
static bool collapse_regex(const char *re, cg_buf *out) {
    bool inside = false;
    size_t n = strlen(re);
    for (size_t i = 0; i < n; i++) {
        if (re[i] == '[' && (i == 0 || re[i - 1] != '\\')) {
            cg_buf_putc(out, '[');
            inside = true;
            continue;
        }
        if (inside && re[i] == ']' && re[i - 1] != '\\') {
            cg_buf_putc(out, ']');
            inside = false;
            continue;
        }
        if (re[i] == '\\' && i + 3 < n && re[i + 1] == 'p' && re[i + 2] == '{') {
            const char *close = strchr(re + i + 3, '}');
            if (close && (size_t)(close - re) <= i + 10) {
                size_t plen = (size_t)(close - re) - i + 1;
                for (size_t k = 0; k < sizeof UCATS / sizeof UCATS[0]; k++) {
                    if (strlen(UCATS[k].pat) == plen && !memcmp(UCATS[k].pat, re + i, plen)) {
                        if (!inside) cg_buf_putc(out, '[');
                        cg_buf_printf(out, "\\x{%02X}%s", UCATS[k].byte, UCATS[k].ascii);
                        if (!inside) cg_buf_putc(out, ']');
                        i += plen - 1;
                        goto next;
                    }
                }
            }
        }
        cg_buf_putc(out, re[i]);
    next:;
    }
    return cg_buf_ok(out);
}

static cg_status compile_one(const char *re, rx *r, cg_err *err) {
    cg_status st = CG_OK;
    cg_buf pat;
    cg_buf_init(&pat);
    uint32_t opts = PCRE2_DOLLAR_ENDONLY;
    if (!strcmp(re, RX_GPT2)) {
        r->mode = RX_UCP;
        cg_buf_puts(&pat, RX_GPT2_UCP);
        opts |= PCRE2_UTF | PCRE2_UCP;
    } else if (!strcmp(re, RX_LLAMA3_ADAPTED)) {
        r->mode = RX_UCP;
        cg_buf_puts(&pat, RX_LLAMA3_UCP);
        opts |= PCRE2_UTF | PCRE2_UCP;
    } else if (uses_categories(re)) {
        r->mode = RX_COLLAPSED;
        collapse_regex(re, &pat);
    } else {
        r->mode = RX_WIDE;
        cg_buf_puts(&pat, re);
        opts |= PCRE2_UTF;
    }
    if (!cg_buf_ok(&pat)) {
        st = cg_err_set(err, CG_ERR_NOMEM, "pretok: out of memory");
        goto done;
    }
    int ec = 0;
    PCRE2_SIZE eoff = 0;
    r->code = pcre2_compile((PCRE2_SPTR)pat.data, pat.len, opts, &ec, &eoff, NULL);
    if (!r->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        st = cg_err_set(err, CG_ERR_INTERNAL, "pretok: regex '%s' does not compile at %zu: %s", pat.data,
                        (size_t)eoff, (const char *)msg);
        goto done;
    }
    (void)pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE);   // falls back to the interpreter
done:
    cg_buf_free(&pat);
    return st;
}

static bool name_in(const char *names, const char *name) {
    size_t n = strlen(name);
    const char *p = names;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !memcmp(p, name, n)) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

cg_status cg_pretok_new(const char *name, cg_pretok **out, cg_pretok_flags *flags, cg_err *err) {
    const pretok_def *def = NULL;
    for (size_t i = 0; i < sizeof PRETOKS / sizeof PRETOKS[0]; i++)
        if (name_in(PRETOKS[i].names, name)) def = &PRETOKS[i];
    if (!def)
        return cg_err_set(err, CG_ERR_UNSUPPORTED, "tokenizer: unknown pre-tokenizer '%s' (tokenizer.ggml.pre)",
                          name);
    cg_pretok *p = calloc(1, sizeof *p);
    if (!p) return cg_err_set(err, CG_ERR_NOMEM, "pretok: out of memory");
    cg_status st;
    for (int i = 0; i < MAX_RX && def->rx[i]; i++) {
        if ((st = compile_one(def->rx[i], &p->rx[i], err))) goto fail;
        p->n_rx = i + 1;
        if (p->rx[i].mode == RX_COLLAPSED) p->need_collapse = true;
        if (p->rx[i].mode == RX_WIDE) p->need_wide = true;
    }
    flags->clean_spaces = def->clean_spaces;
    flags->ignore_merges = def->ignore_merges;
    flags->add_bos = def->add_bos;
    flags->no_bos_id = def->no_bos_id;
    flags->add_sep = def->add_sep;
    *out = p;
    return CG_OK;
fail:
    cg_pretok_free(p);
    return st;
}

void cg_pretok_free(cg_pretok *p) {
    if (!p) return;
    for (int i = 0; i < MAX_RX; i++) pcre2_code_free(p->rx[i].code);
    free(p);
}

void cg_pretok_scratch_free(cg_pretok_scratch *s) {
    free(s->cpts);
    free(s->cp_off);
    free(s->alt);
    free(s->alt_b2c);
    free(s->pieces);
    free(s->pieces2);
    pcre2_match_data_free(s->match_data);
    pcre2_match_context_free(s->mctx);
    pcre2_jit_stack_free(s->jit_stack);
    cg_bpe_cache_free(s->word_cache);
    memset(s, 0, sizeof *s);
}

// ---- splitting ------------------------------------------------------------------------------------

static bool push_piece(cg_pretok_scratch *s, size_t len) {
    if (!cg_grow((void **)&s->pieces2, &s->cap_pieces2, s->n_pieces + 1, sizeof(size_t))) return false;
    s->pieces2[s->n_pieces++] = len;
    return true;
}

// Code point index of byte offset b in a subject whose code point starts are off[lo..hi].
static size_t byte_to_cp(const uint32_t *off, size_t lo, size_t hi, uint32_t b) {
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (off[mid] < b) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

// Runs one regex over every current piece and stores the new piece list in s->pieces.
static cg_status split_rx(const rx *r, const char *text, cg_pretok_scratch *s, size_t n_old, cg_err *err) {
    pcre2_match_data *md = s->match_data;
    s->n_pieces = 0;
    size_t start = 0;   // code point index of the current piece
    for (size_t ip = 0; ip < n_old; ip++) {
        size_t len = s->pieces[ip];
        const unsigned char *subj;
        size_t subj_len;
        const uint32_t *off = NULL;   // code point start offsets relative to the subject base
        uint32_t base = 0;
        if (r->mode == RX_COLLAPSED) {
            subj = s->alt + start;
            subj_len = len;
        } else if (r->mode == RX_UCP) {
            base = s->cp_off[start];
            subj = (const unsigned char *)text + base;
            subj_len = s->cp_off[start + len] - base;
            off = s->cp_off;
        } else {
            base = s->alt_b2c[start];
            subj = s->alt + base;
            subj_len = s->alt_b2c[start + len] - base;
            off = s->alt_b2c;
        }
        size_t pos = 0;       // unit offset in subject
        size_t prev_cp = 0;   // code points consumed (relative to piece)
        while (pos <= subj_len) {
            int rc = pcre2_match(r->code, subj, subj_len, pos, PCRE2_NO_UTF_CHECK, md, s->mctx);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                PCRE2_UCHAR msg[160];
                pcre2_get_error_message(rc, msg, sizeof msg);
                return cg_err_set(err, CG_ERR_LIMIT, "pretok: regex match failed: %s", (const char *)msg);
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            size_t ms_cp, me_cp;
            if (r->mode == RX_COLLAPSED) {
                ms_cp = ms;
                me_cp = me;
            } else {
                ms_cp = byte_to_cp(off, start, start + len, base + (uint32_t)ms) - start;
                me_cp = byte_to_cp(off, start, start + len, base + (uint32_t)me) - start;
            }
            if (me == ms) {
                // An empty match yields no word; step over one code point (std::regex does too).
                if (ms >= subj_len) break;
                size_t step = 1;
                if (r->mode != RX_COLLAPSED) step = off[start + ms_cp + 1] - off[start + ms_cp];
                pos = ms + step;
                continue;
            }
            if (ms_cp > prev_cp && !push_piece(s, ms_cp - prev_cp)) goto nomem;
            if (!push_piece(s, me_cp - ms_cp)) goto nomem;
            prev_cp = me_cp;
            pos = me;
        }
        if (prev_cp < len && !push_piece(s, len - prev_cp)) goto nomem;
        start += len;
    }
    // swap the lists
    size_t *t = s->pieces;
    s->pieces = s->pieces2;
    s->pieces2 = t;
    size_t c = s->cap_pieces;
    s->cap_pieces = s->cap_pieces2;
    s->cap_pieces2 = c;
    return CG_OK;
nomem:
    return cg_err_set(err, CG_ERR_NOMEM, "pretok: out of memory");
}

cg_status cg_pretok_split(const cg_pretok *p, const char *text, size_t n, cg_pretok_scratch *s, cg_err *err) {
    if (n > UINT32_MAX - 8) return cg_err_set(err, CG_ERR_LIMIT, "pretok: text of %zu bytes is too long", n);
    if (!s->match_data) {
        s->match_data = pcre2_match_data_create(4, NULL);
        s->mctx = pcre2_match_context_create(NULL);
        s->jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
        if (!s->match_data || !s->mctx || !s->jit_stack) goto nomem;
        pcre2_jit_stack_assign(s->mctx, NULL, s->jit_stack);
    }
    // decode (text is valid UTF-8)
    if (!cg_grow((void **)&s->cpts, &s->cap_cpts, n + 1, sizeof(uint32_t))) goto nomem;
    size_t cap_off = s->cap_cpts;
    if (cap_off < n + 2) cap_off = n + 2;
    {
        uint32_t *o = realloc(s->cp_off, cap_off * sizeof(uint32_t));
        if (!o) goto nomem;
        s->cp_off = o;
    }
    size_t nc = 0;
    bool has_wide_ws = false;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = cg_utf8_decode(text + i, n - i, &cp);
        if (l <= 0) {   // cannot happen for sanitised input; treat the byte as U+FFFD
            cp = 0xFFFD;
            l = 1;
        }
        if (cp >= 0x80 && is_ws(cp)) has_wide_ws = true;
        s->cpts[nc] = cp;
        s->cp_off[nc] = (uint32_t)i;
        nc++;
        i += (size_t)l;
    }
    s->cp_off[nc] = (uint32_t)n;
    s->n_cpts = nc;

    // alternative subjects
    size_t alt_need = 0;
    if (p->need_collapse) alt_need = nc;
    if (p->need_wide && has_wide_ws) alt_need = nc + n + 1;   // collapsed part first, then wide UTF-8
    if (alt_need && !cg_grow((void **)&s->alt, &s->cap_alt, alt_need + 1, 1)) goto nomem;
    if (p->need_collapse)
        for (size_t i = 0; i < nc; i++) s->alt[i] = s->cpts[i] < 128 ? (unsigned char)s->cpts[i] : collapse_cp(s->cpts[i]);
    if (p->need_wide) {
        if (!cg_grow((void **)&s->alt_b2c, &s->cap_b2c, nc + 1, sizeof(uint32_t))) goto nomem;
        // The wide subject lives after the collapsed bytes in alt; offsets are relative to alt.
        size_t wbase = p->need_collapse ? nc : 0;
        if (!has_wide_ws) {
            // No substitution needed: reuse the original text's offsets by copying the text.
            if (!cg_grow((void **)&s->alt, &s->cap_alt, wbase + n + 1, 1)) goto nomem;
            memcpy(s->alt + wbase, text, n);
            for (size_t i = 0; i <= nc; i++) s->alt_b2c[i] = (uint32_t)(wbase + s->cp_off[i]);
        } else {
            size_t w = wbase;
            for (size_t i = 0; i < nc; i++) {
                s->alt_b2c[i] = (uint32_t)w;
                uint32_t cp = s->cpts[i];
                if (cp >= 0x80 && is_ws(cp)) {
                    s->alt[w++] = 0x0B;
                } else {
                    size_t l = s->cp_off[i + 1] - s->cp_off[i];
                    memcpy(s->alt + w, text + s->cp_off[i], l);
                    w += l;
                }
            }
            s->alt_b2c[nc] = (uint32_t)w;
        }
    }

    if (!cg_grow((void **)&s->pieces, &s->cap_pieces, 1, sizeof(size_t))) goto nomem;
    s->pieces[0] = nc;
    s->n_pieces = nc ? 1 : 0;
    for (int i = 0; i < p->n_rx; i++) {
        cg_status st = split_rx(&p->rx[i], text, s, s->n_pieces, err);
        if (st) return st;
    }
    return CG_OK;
nomem:
    return cg_err_set(err, CG_ERR_NOMEM, "pretok: out of memory");
}
