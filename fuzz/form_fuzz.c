/*
 * form_fuzz.c - libFuzzer target for http1_parse_form().
 *
 * Properties (abort() on any violation):
 *   - the result is -1 exactly when an independent scan finds a '%' not
 *     followed by two hex digits, and then no callback ran; otherwise 0, with
 *     one callback per non-empty '&'-separated pair, in order;
 *   - name and value point inside the scratch buffer, and a pair's decoded
 *     lengths never exceed the raw pair's length (so never the input's);
 *   - round trip: percent-encoding a delivered pair and parsing that again
 *     delivers exactly that pair, once;
 *   - a callback's non-zero return stops the walk and is returned.
 * And for http1_pct_decode(), the decoder the form parser and the router
 * share, under each of its four flag combinations:
 *   - it gives exactly what an independent reference decoder gives (the
 *     length or -1, and the bytes);
 *   - decoding in place gives the same result as into another buffer;
 *   - the form parser refuses the input exactly when the plain decoder does;
 *   - round trip: what it decoded, percent-encoded again, decodes to itself.
 * Input and scratch are exact-size heap buffers, so ASan flags over-reads.
 */
#include "fuzz.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

static int hex(unsigned char c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

typedef struct walk {
    const char *scratch;
    size_t scratch_len;
    const char *in; /* the raw input, to find each pair's raw length */
    size_t in_len;
    size_t pos; /* where the next raw pair is searched from */
    int calls;
    int stop_at; /* return 5 at this call (1-based), 0 = never */
    int plus;    /* encode spaces as '+' in the round trip */
} walk_t;

typedef struct expect {
    const char *name, *value;
    size_t name_len, value_len;
    int calls;
} expect_t;

static int expect_cb(void *ctx, const char *name, size_t name_len, const char *value, size_t value_len)
{
    expect_t *e = ctx;
    e->calls++;
    CHECK(name_len == e->name_len && memcmp(name, e->name, name_len) == 0);
    CHECK(value_len == e->value_len && memcmp(value, e->value, value_len) == 0);
    return 0;
}

static size_t encode(const char *s, size_t n, int plus, char *out)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
            c == '.' || c == '_' || c == '~') {
            out[o++] = (char)c;
        } else if (c == ' ' && plus) {
            out[o++] = '+';
        } else {
            out[o++] = '%';
            out[o++] = digits[c >> 4];
            out[o++] = digits[c & 15];
        }
    }
    return o;
}

static void round_trip(const walk_t *w, const char *name, size_t name_len, const char *value,
                       size_t value_len)
{
    size_t cap = 3 * (name_len + value_len) + 1;
    char *enc = malloc(cap);
    CHECK(enc != NULL);
    size_t n = encode(name, name_len, w->plus, enc);
    enc[n++] = '=';
    n += encode(value, value_len, w->plus, enc + n);
    char *exact = malloc(n), *scratch = malloc(n);
    CHECK(exact && scratch);
    memcpy(exact, enc, n);
    expect_t e = {name, value, name_len, value_len, 0};
    CHECK(http1_parse_form(exact, n, scratch, expect_cb, &e) == 0);
    CHECK(e.calls == 1);
    free(enc);
    free(exact);
    free(scratch);
}

static int walk_cb(void *ctx, const char *name, size_t name_len, const char *value, size_t value_len)
{
    walk_t *w = ctx;
    w->calls++;
    const char *s0 = w->scratch, *s1 = w->scratch + w->scratch_len;
    CHECK(name >= s0 && name <= s1 && name_len <= (size_t)(s1 - name));
    CHECK(value >= s0 && value <= s1 && value_len <= (size_t)(s1 - value));

    /* The raw pair this callback is for: the next non-empty segment. */
    while (w->pos < w->in_len && w->in[w->pos] == '&')
        w->pos++;
    CHECK(w->pos < w->in_len);
    size_t end = w->pos;
    while (end < w->in_len && w->in[end] != '&')
        end++;
    size_t raw = end - w->pos;
    w->pos = end;
    CHECK(name_len + value_len <= raw);
    CHECK(name_len + value_len <= w->in_len);

    round_trip(w, name, name_len, value, value_len);
    return w->calls == w->stop_at ? 5 : 0;
}

/* The reference: written from RFC 3986 2.1 and the flags' contract, not
 * from src/http1.c. */
static long ref_decode(const char *in, size_t n, int flags, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            if (n - i < 3)
                return -1; /* fewer than two bytes after the '%' */
            unsigned char a = (unsigned char)in[i + 1], b = (unsigned char)in[i + 2];
            if (!hex(a) || !hex(b))
                return -1;
            unsigned va = a <= '9' ? a - '0' : (a | 0x20) - 'a' + 10;
            unsigned vb = b <= '9' ? b - '0' : (b | 0x20) - 'a' + 10;
            c = (unsigned char)(va * 16 + vb);
            i += 2;
        } else if (c == '+' && (flags & HTTP1_PCT_PLUS_SPACE)) {
            c = ' ';
        }
        if (c == 0 && (flags & HTTP1_PCT_REJECT_NUL))
            return -1;
        out[o++] = (char)c;
    }
    return (long)o;
}

static void check_pct_decode(const char *in, size_t size, int flags)
{
    char *want = malloc(size ? size : 1), *got = malloc(size ? size : 1), *inplace = malloc(size ? size : 1);
    CHECK(want && got && inplace);
    long wr = ref_decode(in, size, flags, want);
    ssize_t r = http1_pct_decode(in, size, got, flags);
    CHECK(r == wr);
    CHECK(r <= (ssize_t)size);
    memcpy(inplace, in, size);
    CHECK(http1_pct_decode(inplace, size, inplace, flags) == r);
    if (r > 0) {
        CHECK(memcmp(got, want, (size_t)r) == 0);
        CHECK(memcmp(inplace, want, (size_t)r) == 0);
        /* Round trip: encode (never '+', so the flags cannot change it). */
        char *enc = malloc(3 * (size_t)r), *back = malloc(3 * (size_t)r);
        CHECK(enc && back);
        size_t en = encode(got, (size_t)r, 0, enc);
        CHECK(http1_pct_decode(enc, en, back, flags) == r);
        CHECK(memcmp(back, got, (size_t)r) == 0);
        free(enc);
        free(back);
    }
    free(want);
    free(got);
    free(inplace);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1), *scratch = malloc(size ? size : 1);
    CHECK(in && scratch);
    memcpy(in, data, size);

    /* Independent oracles: is every '%' an escape, how many pairs. */
    int bad = 0, pairs = 0;
    for (size_t i = 0; i < size; i++) {
        if (in[i] == '%') {
            if (size - i < 3 || !hex((unsigned char)in[i + 1]) || !hex((unsigned char)in[i + 2]))
                bad = 1;
            else
                i += 2;
        }
    }
    for (size_t i = 0; i < size; i++)
        if (in[i] != '&' && (i == 0 || in[i - 1] == '&'))
            pairs++;

    for (int flags = 0; flags < 4; flags++)
        check_pct_decode(in, size, flags);
    CHECK(bad == (http1_pct_decode(in, size, scratch, 0) < 0));

    walk_t w = {scratch, size, in, size, 0, 0, 0, size & 1};
    int r = http1_parse_form(in, size, scratch, walk_cb, &w);
    if (bad) {
        CHECK(r == -1 && w.calls == 0);
    } else {
        CHECK(r == 0 && w.calls == pairs);
        /* Stop at an input-derived call: its value comes back, no more calls. */
        if (pairs > 0) {
            walk_t s = {scratch, size, in, size, 0, 0, 1 + (int)(data[0] % (unsigned)pairs), 0};
            CHECK(http1_parse_form(in, size, scratch, walk_cb, &s) == 5);
            CHECK(s.calls == s.stop_at);
        }
    }
    free(in);
    free(scratch);
    return 0;
}
