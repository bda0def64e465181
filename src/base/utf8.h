// utf8.h — UTF-8 validation and decoding (strict: no overlongs, no surrogates, ≤ U+10FFFF).
// Pure functions, thread-safe.
#ifndef CG_BASE_UTF8_H
#define CG_BASE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Returns true when s[0..n) is valid UTF-8. On failure *bad_at (if not NULL) is the byte index of
// the first invalid sequence.
bool cg_utf8_valid(const char *s, size_t n, size_t *bad_at);

// Decodes one code point at s (n bytes available). Returns its length (1..4) and sets *cp, or 0 for
// an invalid or truncated sequence.
int cg_utf8_decode(const char *s, size_t n, uint32_t *cp);

// Encodes cp (≤ U+10FFFF, not a surrogate) into out (4 bytes room). Returns the length or 0.
int cg_utf8_encode(uint32_t cp, char out[4]);

// Length of the sequence a lead byte announces (1..4), or 0 for a continuation/invalid lead byte.
int cg_utf8_seq_len(unsigned char lead);

#endif
