// vocab.h — internal layout of cg_vocab shared by vocab.c, spm.c, bpe.c and pretok.c.
// Not part of the public API (see tok.h). Everything here is immutable after cg_vocab_load and
// therefore safe to read from many threads.
#ifndef CG_TOK_VOCAB_H
#define CG_TOK_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "tok/tok.h"

// Open-addressing hash of byte strings → int32 value. Slots hold value+1 (0 = empty); the key
// bytes are found through a caller-provided accessor (token text or merge text).
typedef struct cg_strhash {
    uint32_t *slots;   // owned, mask+1 entries
    uint64_t mask;
} cg_strhash;

uint64_t cg_tok_hash_bytes(const void *p, size_t n);

// A compiled pre-tokenizer (a list of regexes applied one after another, each splitting the
// pieces the previous one produced). Owned by the vocab.
typedef struct cg_pretok cg_pretok;

// Looks `name` up in the table of llama.cpp pre-tokenizers and compiles its regexes (PCRE2 JIT).
// Also reports the per-name flags. Errors: CG_ERR_UNSUPPORTED (unknown name), CG_ERR_INTERNAL
// (a regex failed to compile — a bug), CG_ERR_NOMEM.
typedef struct cg_pretok_flags {
    bool ignore_merges;   // a word that is a whole token is emitted as is (llama3, tekken)
    bool clean_spaces;    // clean_up_tokenization_spaces when detokenizing
    int add_bos;          // -1 keep the model default, 0/1 force
    bool no_bos_id;       // the pre-tokenizer clears the default BOS id (chatglm)
} cg_pretok_flags;
cg_status cg_pretok_new(const char *name, cg_pretok **out, cg_pretok_flags *flags, cg_err *err);
void cg_pretok_free(cg_pretok *p);

// Per-call scratch for splitting (not shared between threads).
typedef struct cg_pretok_scratch {
    uint32_t *cpts;       // code points of the text
    uint32_t *cp_off;     // byte offset of code point i in the text (n_cpts + 1 entries)
    size_t n_cpts, cap_cpts;
    unsigned char *alt;   // collapsed or whitespace-mapped copy of the text
    size_t cap_alt;
    uint32_t *alt_b2c;    // byte offset in alt → code point index (for UTF-8 subjects)
    size_t cap_b2c;
    size_t *pieces, *pieces2;   // piece lengths in code points
    size_t n_pieces, cap_pieces, cap_pieces2;
    void *match_data;     // pcre2_match_data_8 *
    void *mctx;           // pcre2_match_context_8 *
    void *jit_stack;      // pcre2_jit_stack_8 *
    void *word_cache;     // bpe.c: word → ids cache for this call (owned)
} cg_pretok_scratch;
void cg_pretok_scratch_free(cg_pretok_scratch *s);

// Splits valid UTF-8 text[0..n) into words; on success s->pieces[0..n_pieces) are the word
// lengths in code points and s->cp_off maps code point index → byte offset.
cg_status cg_pretok_split(const cg_pretok *p, const char *text, size_t n, cg_pretok_scratch *s, cg_err *err);

struct cg_vocab {
    cg_vocab_type type;
    char *model_name;        // tokenizer.ggml.model, NUL-terminated, owned
    char *pre_name;          // tokenizer.ggml.pre or "", owned
    uint32_t n_tokens;

    char *text;              // all token texts back to back (owned)
    uint64_t *text_off;      // n_tokens + 1 offsets into text
    float *scores;           // n_tokens
    uint32_t *attr;          // n_tokens, CG_TOK_ATTR_* bits
    cg_strhash tok_map;      // token text → id

    // BPE merges: the "left right" strings back to back; merge_map key = that string, value = rank
    char *merges;
    uint64_t *merge_off;     // n_merges + 1
    uint32_t n_merges;
    cg_strhash merge_map;
    // the same merges keyed by the two token ids: (a << 32 | b) → rank and the merged token's id
    uint64_t *pair_keys;     // UINT64_MAX = empty slot
    int32_t *pair_rank, *pair_result;
    uint64_t pair_mask;

    int32_t special[CG_SPECIAL_COUNT_];
    bool add_bos, add_eos, add_sep, add_space_prefix, remove_extra_ws, ignore_merges, clean_spaces;
    bool escape_whitespaces;

    uint8_t *is_eog;         // n_tokens flags

    int32_t *special_cache;  // CONTROL/USER_DEFINED/UNKNOWN ids, longest text first (ties: lower id)
    uint32_t n_special_cache;

    char *piece;             // token_to_piece(special=true) of every token, back to back (owned)
    uint64_t *piece_off;     // n_tokens + 1

    int32_t byte_tok[256];   // SPM: <0xXX> (or the 1-byte text); BPE: GPT-2 byte char; -1 none

    cg_pretok *pretok;       // BPE only
};

static inline const char *cg_vocab_text_at(const cg_vocab *v, int32_t id, size_t *n) {
    *n = (size_t)(v->text_off[id + 1] - v->text_off[id]);
    return v->text + v->text_off[id];
}

// Hash lookups (CG_TOKEN_NULL / -1 when absent).
int32_t cg_vocab_lookup(const cg_vocab *v, const char *s, size_t n);
// Rank of merging token texts a and b (-1 when there is no such merge).
int32_t cg_vocab_merge_rank(const cg_vocab *v, const char *a, size_t na, const char *b, size_t nb);

// Merge of token ids a and b: true with its rank and the id of the merged text (CG_TOKEN_NULL when
// that text is not a token), false when there is no such merge.
static inline bool cg_vocab_pair(const cg_vocab *v, int32_t a, int32_t b, int32_t *rank, int32_t *result) {
    if (!v->pair_keys) return false;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint64_t i = (key * 0x9E3779B97F4A7C15ull) >> 20 & v->pair_mask;
    for (;;) {
        uint64_t k = v->pair_keys[i];
        if (k == key) {
            *rank = v->pair_rank[i];
            *result = v->pair_result[i];
            return true;
        }
        if (k == UINT64_MAX) return false;
        i = (i + 1) & v->pair_mask;
    }
}

// Growable id list append (sticky NOMEM as return false).
bool cg_tokens_push(cg_tokens *t, int32_t id);

// SPM over one text fragment (already prefixed/escaped by the caller). Appends to out.
cg_status cg_spm_tokenize(const cg_vocab *v, const char *text, size_t n, cg_tokens *out, cg_err *err);
// Byte-level BPE over one text fragment (valid UTF-8). Appends to out.
cg_status cg_bpe_tokenize(const cg_vocab *v, const char *text, size_t n, cg_pretok_scratch *ps, cg_tokens *out,
                          cg_err *err);

// Frees the BPE word cache kept in a scratch (called by cg_pretok_scratch_free).
void cg_bpe_cache_free(void *cache);

// GPT-2 byte ↔ unicode mapping: byte b is written as code point cg_bpe_byte_cp(b); the inverse
// returns -1 for a code point that no byte maps to.
uint32_t cg_bpe_byte_cp(uint8_t b);
int cg_bpe_cp_byte(uint32_t cp);

#endif
