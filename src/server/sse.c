// sse.c — JSON string escaping and SSE framing (see sse.h for the exact escaping rules).
// Invariant: every byte appended by cg_json_str is printable ASCII or part of a valid UTF-8
// sequence, so the result is always a valid JSON string and never contains a raw newline.
#include "server/sse.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "base/utf8.h"

void cg_json_str(cg_buf *b, const char *s, size_t n) {
    static const char HEX[] = "0123456789abcdef";
    cg_buf_putc(b, '"');
    size_t i = 0, run = 0;   // run: start of bytes that can be copied verbatim
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        size_t adv = 1;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') { i++; continue; }
        if (c >= 0x80) {
            uint32_t cp;
            int len = cg_utf8_decode(s + i, n - i, &cp);
            if (len > 0 && cp != 0x2028 && cp != 0x2029) { i += (size_t)len; continue; }
            if (len > 0) {
                esc = cp == 0x2028 ? "\\u2028" : "\\u2029";
                adv = (size_t)len;
            } else {
                esc = "\xEF\xBF\xBD";   // U+FFFD for one invalid byte
            }
        } else {
            switch (c) {
            case '"': esc = "\\\""; break;
            case '\\': esc = "\\\\"; break;
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            default:
                u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0', u[4] = HEX[c >> 4], u[5] = HEX[c & 15], u[6] = 0;
                esc = u;
            }
        }
        cg_buf_append(b, s + run, i - run);
        cg_buf_puts(b, esc);
        i += adv;
        run = i;
    }
    cg_buf_append(b, s + run, n - run);
    cg_buf_putc(b, '"');
}

void cg_json_cstr(cg_buf *b, const char *s) {
    if (!s) { cg_buf_puts(b, "null"); return; }
    size_t n = 0;
    while (s[n]) n++;
    cg_json_str(b, s, n);
}

void cg_json_float(cg_buf *b, double v) {
    if (isnan(v) || v < -9999) v = -9999;
    if (v > 9999) v = 9999;
    cg_buf_printf(b, "%.9g", v);
}

void cg_sse_data(cg_buf *b, const char *payload, size_t n) {
    cg_buf_puts(b, "data: ");
    cg_buf_append(b, payload, n);
    cg_buf_puts(b, "\n\n");
}
