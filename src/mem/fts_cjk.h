// fts_cjk.h — the search tokenizer shared by both store backends and by queries.
//
// Runs of Hangul, Han and Kana become overlapping bigrams of code points ("서울에" -> 서울, 울에;
// a one-syllable run is a unigram), so a two-syllable word is found inside a longer run with a
// particle attached. Other letters and digits form words, NFKC-case-folded (utf8proc). Everything
// else separates tokens. Invalid UTF-8 bytes act as separators (never an error, never a crash).
// Pure functions, thread-safe.
#ifndef CG_MEM_FTS_CJK_H
#define CG_MEM_FTS_CJK_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

// Tokens longer than this many bytes are cut (at a code point boundary).
#define CG_CJK_MAX_TOKEN 256

// Receives one token: tok[0..n) (borrowed until return) and its byte span [start, end) in the
// input. A non-zero return stops tokenizing and is passed back by cg_cjk_tokenize.
typedef int (*cg_cjk_token_fn)(void *user, const char *tok, size_t n, size_t start, size_t end);

// Tokenizes s[0..n). Returns 0, or the first non-zero value fn returned, or -1 when out of memory.
int cg_cjk_tokenize(const char *s, size_t n, cg_cjk_token_fn fn, void *user);

// True for code points tokenized as bigrams (Hangul syllables and jamo, Han, Hiragana, Katakana).
bool cg_cjk_is_bigram_cp(unsigned cp);

// Appends every token of s, in order and with repeats, separated by single spaces.
cg_status cg_cjk_terms(const char *s, size_t n, cg_buf *out, cg_err *err);

// The distinct tokens of s in first-seen order. Owned by the caller: cg_cjk_termset_free.
typedef struct cg_cjk_termset { char **v; size_t n; } cg_cjk_termset;
cg_status cg_cjk_termset_of(const char *s, size_t n, cg_cjk_termset *out, cg_err *err);
void cg_cjk_termset_free(cg_cjk_termset *t);

#endif
