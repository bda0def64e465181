// tok.h — tokenizer vocabularies (SPM and byte-level BPE), tokenization, detokenization and a
// streaming detokenizer, matching llama.cpp's llama_tokenize / llama_token_to_piece /
// llama_detokenize bit for bit (see ../shared/testdata/README.md section 1).
//
// A cg_vocab is built from the `tokenizer.ggml.*` keys of a GGUF file. It owns copies of
// everything it needs (it does NOT borrow from the cg_gguf, which may be closed after load).
// It is immutable after cg_vocab_load and safe to share between threads: tokenize and
// detokenize allocate only per-call scratch. A cg_detok_stream is per-sequence state and is not
// thread-safe (one owner at a time).
//
// Input text: any bytes. Text that is not valid UTF-8 is tokenized as if every byte of each
// invalid sequence were U+FFFD (what llama.cpp's BPE code does when it decodes code points);
// tokenize never reads outside [text, text + len) and never fails because of the text itself.
//
// Token ids are int32_t as in llama.cpp; CG_TOKEN_NULL (-1) means "none".
#ifndef CG_TOK_TOK_H
#define CG_TOK_TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "gguf/gguf.h"

#define CG_TOKEN_NULL (-1)

typedef struct cg_vocab cg_vocab;

// The tokenizer family (`tokenizer.ggml.model`). WPM (BERT) and UGM (T5) vocabularies load (their
// tokens, ids and pieces are usable) but cg_tokenize returns CG_ERR_UNSUPPORTED for them.
typedef enum cg_vocab_type {
    CG_VOCAB_SPM = 1,   // "llama": SentencePiece BPE with scores and <0xXX> byte fallback
    CG_VOCAB_BPE,       // "gpt2": byte-level BPE with merges and a named pre-tokenizer
    CG_VOCAB_WPM,       // "bert": WordPiece (tokenization not implemented yet)
    CG_VOCAB_UGM,       // "t5":  Unigram (tokenization not implemented yet)
} cg_vocab_type;

// Token attributes (llama.cpp's llama_token_attr bits). A token's GGUF type (1 NORMAL, 2 UNKNOWN,
// 3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE) gives the first bit; load-time quirks add others.
enum {
    CG_TOK_ATTR_UNDEFINED = 0,
    CG_TOK_ATTR_UNKNOWN = 1 << 0,
    CG_TOK_ATTR_UNUSED = 1 << 1,
    CG_TOK_ATTR_NORMAL = 1 << 2,
    CG_TOK_ATTR_CONTROL = 1 << 3,
    CG_TOK_ATTR_USER_DEFINED = 1 << 4,
    CG_TOK_ATTR_BYTE = 1 << 5,
    CG_TOK_ATTR_LSTRIP = 1 << 7,
    CG_TOK_ATTR_RSTRIP = 1 << 8,
};

// Special token roles, for cg_vocab_special.
typedef enum cg_special {
    CG_SPECIAL_BOS = 0,
    CG_SPECIAL_EOS,
    CG_SPECIAL_EOT,
    CG_SPECIAL_EOM,
    CG_SPECIAL_UNK,
    CG_SPECIAL_SEP,
    CG_SPECIAL_PAD,
    CG_SPECIAL_MASK,
    CG_SPECIAL_NL,        // the newline token (SPM: <0x0A>; BPE: tokenize("\n")[0])
    CG_SPECIAL_FIM_PRE,
    CG_SPECIAL_FIM_SUF,
    CG_SPECIAL_FIM_MID,
    CG_SPECIAL_FIM_PAD,
    CG_SPECIAL_FIM_REP,
    CG_SPECIAL_FIM_SEP,
    CG_SPECIAL_COUNT_
} cg_special;

// ---- loading --------------------------------------------------------------------------------

// Builds a vocabulary from g's tokenizer.ggml.* keys. g is borrowed only during the call.
// Defaults for absent keys follow llama.cpp per tokenizer model and pre-tokenizer (SPM adds BOS;
// llama3/tekken add BOS; special ids default to llama.cpp's; out-of-range special ids keep the
// default, as llama.cpp does). Load-time quirks reproduced: end-of-generation tokens found by text
// are forced to CONTROL, "<|end|>" leaves the EOG set for harmony vocabularies, phi-3 special tokens
// strip following whitespace.
// Errors: CG_ERR_NOT_FOUND (no tokenizer.ggml.model / tokens / merges for BPE), CG_ERR_TYPE
// (a key of the wrong type), CG_ERR_FORMAT (scores/types shorter than tokens, duplicate token
// text, BPE token text not UTF-8, a merge without a space or naming a token that does not exist,
// add_bos/add_eos/add_sep set without the id), CG_ERR_UNSUPPORTED (unknown tokenizer model or
// pre-tokenizer name: the message names it), CG_ERR_LIMIT (more than INT32_MAX tokens),
// CG_ERR_NOMEM. On success *out is owned by the caller: free with cg_vocab_free.
cg_status cg_vocab_load(const cg_gguf *g, cg_vocab **out, cg_err *err);
void cg_vocab_free(cg_vocab *v);   // accepts NULL

// ---- facts ------------------------------------------------------------------------------------

cg_vocab_type cg_vocab_get_type(const cg_vocab *v);
uint32_t cg_vocab_n_tokens(const cg_vocab *v);
// Pre-tokenizer name as in the file ("" when absent; BPE then uses "default").
const char *cg_vocab_pre_name(const cg_vocab *v);
int32_t cg_vocab_special(const cg_vocab *v, cg_special which);   // CG_TOKEN_NULL when none
bool cg_vocab_add_bos(const cg_vocab *v);
bool cg_vocab_add_eos(const cg_vocab *v);
bool cg_vocab_add_sep(const cg_vocab *v);
bool cg_vocab_add_space_prefix(const cg_vocab *v);
// True for the end-of-generation set (EOS, EOT, EOM, FIM pad/rep/sep and the tokens llama.cpp
// recognises by text). False for ids out of range.
bool cg_vocab_is_eog(const cg_vocab *v, int32_t id);
// Attribute bits of a token (CG_TOK_ATTR_*), 0 for ids out of range.
uint32_t cg_vocab_token_attr(const cg_vocab *v, int32_t id);
// The token's raw text as stored in the file (borrowed until cg_vocab_free; NOT NUL-terminated,
// *n set to its length). NULL for ids out of range.
const char *cg_vocab_token_text(const cg_vocab *v, int32_t id, size_t *n);
float cg_vocab_token_score(const cg_vocab *v, int32_t id);
// Exact text → id lookup (CG_TOKEN_NULL when absent).
int32_t cg_vocab_find(const cg_vocab *v, const char *text, size_t n);

// ---- tokenizing --------------------------------------------------------------------------------

// A growable list of ids. Zero-initialise; free with cg_tokens_free. Not thread-safe.
typedef struct cg_tokens {
    int32_t *ids;   // owned
    size_t n, cap;
} cg_tokens;
void cg_tokens_free(cg_tokens *t);   // frees ids and zeroes *t; accepts a zeroed struct

// Tokenizes text[0..len) and APPENDS the ids to *out.
//   add_special:   BOS first if the vocab adds BOS, EOS last if it adds EOS (BPE/SPM rules).
//   parse_special: CONTROL and UNKNOWN token texts in the text become those tokens; USER_DEFINED
//                  token texts are matched even when false (llama.cpp semantics).
// Errors: CG_ERR_UNSUPPORTED (WPM/UGM vocab), CG_ERR_NOMEM. On error *out keeps what it had.
cg_status cg_tokenize(const cg_vocab *v, const char *text, size_t len, bool add_special, bool parse_special,
                      cg_tokens *out, cg_err *err);

// Same, into a caller buffer of `cap` ids (llama_tokenize's contract): *n_needed is always set to
// the number of ids the text needs; when it exceeds cap nothing is written and CG_ERR_LIMIT is
// returned (call again with a larger buffer).
cg_status cg_tokenize_buf(const cg_vocab *v, const char *text, size_t len, bool add_special, bool parse_special,
                          int32_t *ids, size_t cap, size_t *n_needed, cg_err *err);

// ---- detokenizing ------------------------------------------------------------------------------

// The text piece of one token (llama_token_to_piece): *p points into the vocab (borrowed until
// cg_vocab_free), *n its length. special=false renders CONTROL and UNKNOWN tokens as "". lstrip > 0
// skips up to that many leading spaces. Errors: CG_ERR_INVALID (id out of range).
cg_status cg_token_to_piece(const cg_vocab *v, int32_t id, int lstrip, bool special, const char **p, size_t *n,
                            cg_err *err);

// llama_detokenize: APPENDS the text of ids[0..n) to out. remove_special drops a leading BOS and a
// trailing EOS when the vocab adds them; unparse_special renders CONTROL/UNKNOWN tokens' text.
// SPM vocabularies with add_space_prefix drop the first piece's leading space; BPE vocabularies
// with clean_up_tokenization_spaces apply llama.cpp's three clean-up passes. The output is bytes
// (may be invalid UTF-8 when the ids are, e.g. half a byte-fallback sequence).
// Errors: CG_ERR_INVALID (an id out of range; the message names its index), CG_ERR_NOMEM.
cg_status cg_detokenize(const cg_vocab *v, const int32_t *ids, size_t n, bool remove_special, bool unparse_special,
                        cg_buf *out, cg_err *err);

// ---- streaming detokenizer ---------------------------------------------------------------------

// Feeds ids one at a time and emits only complete, valid UTF-8: an incomplete sequence at the end is
// held back until it completes; bytes that can never form valid UTF-8 become U+FFFD (one per
// maximal invalid subpart, as WHATWG/Unicode recommend). The concatenated output of every feed plus
// the flush equals cg_detokenize(ids, remove_special=false, unparse_special) when that is valid
// UTF-8, except that clean-up passes (BPE clean_spaces) are not applied to a stream.
typedef struct cg_detok_stream cg_detok_stream;

// v is borrowed for the stream's lifetime. Errors: CG_ERR_NOMEM.
cg_status cg_detok_stream_new(const cg_vocab *v, bool unparse_special, cg_detok_stream **out, cg_err *err);
void cg_detok_stream_free(cg_detok_stream *s);   // accepts NULL
// Appends whatever became complete to out. Errors: CG_ERR_INVALID (id out of range), CG_ERR_NOMEM.
cg_status cg_detok_stream_feed(cg_detok_stream *s, int32_t id, cg_buf *out, cg_err *err);
// Emits what is held back (an incomplete sequence becomes U+FFFD) and resets the stream.
cg_status cg_detok_stream_flush(cg_detok_stream *s, cg_buf *out, cg_err *err);

#endif
