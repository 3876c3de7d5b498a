/*
 * sse_fuzz.c - libFuzzer target for src/sse.c. It checks properties, and
 * abort()s when one fails, so a finding is a real bug and not just a crash:
 *
 *  1. Chunking does not matter. The input parsed as one feed, one byte per
 *     feed, and in chunks whose sizes come from the input itself gives the
 *     same callbacks in the same order, and the same success or failure;
 *     both with the default limit and with a small max_bytes, so the -1
 *     paths are compared too.
 *  2. What the parser reports is well-formed: type, id and comment text
 *     hold no CR or LF, the id no NUL, data no CR; the type is never empty;
 *     event strings are NUL-terminated; data fits max_bytes.
 *  3. Parsed events re-encode: encoding an event the parser gave and parsing
 *     that again yields the same event (minus any NUL in the type, which the
 *     encoder drops by contract).
 *  4. Encoded fields parse back. The input is read as
 *         flags, separator, id SEP event SEP data SEP comment
 *     the fields are encoded (after a comment, maybe a BOM), the result is
 *     parsed, and what comes out must be the fields with line breaks in the
 *     data read back as LF and CR/LF/NUL dropped from id and event.
 */
#include "fuzz.h"
#include "sse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- a byte log of callbacks: comparable with memcmp ------------------------- */

typedef struct log {
    char *s;
    size_t len, cap;
    size_t max_bytes; /* the parser's limit, for property 2 */
    int reencode;     /* apply property 3 to every event */
} log_t;

static void log_put(log_t *l, const void *p, size_t n)
{
    if (l->len + n > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        while (cap < l->len + n)
            cap *= 2;
        l->s = realloc(l->s, cap);
        CHECK(l->s);
        l->cap = cap;
    }
    if (n)
        memcpy(l->s + l->len, p, n);
    l->len += n;
}

/* A length-prefixed string, so that records can't run into each other. */
static void log_str(log_t *l, const char *s, size_t n)
{
    uint64_t len = n;
    log_put(l, &len, sizeof len);
    log_put(l, s, n);
}

static int has_any(const char *s, size_t n, const char *bytes, size_t nbytes)
{
    for (size_t i = 0; i < nbytes; i++)
        if (n && memchr(s, bytes[i], n))
            return 1;
    return 0;
}

static void log_event(log_t *l, const sse_event_t *ev)
{
    log_put(l, "E", 1);
    log_str(l, ev->type, ev->type_len);
    log_str(l, ev->data, ev->data_len);
    log_str(l, ev->last_id, ev->last_id_len);
}

/* ---- parsing ---------------------------------------------------------------- */

static void reencode_check(const sse_event_t *ev);
static size_t copy_without(const char *s, size_t n, const char *drop, size_t ndrop, char *out);

static void on_event(void *ctx, const sse_event_t *ev)
{
    log_t *l = ctx;
    CHECK(ev->type_len > 0);
    CHECK(!has_any(ev->type, ev->type_len, "\r\n", 2));
    CHECK(!has_any(ev->last_id, ev->last_id_len, "\r\n\0", 3)); /* CR, LF, NUL */
    CHECK(!has_any(ev->data, ev->data_len, "\r", 1));
    CHECK(ev->data_len <= l->max_bytes);
    CHECK(ev->type[ev->type_len] == '\0' && ev->data[ev->data_len] == '\0' &&
          ev->last_id[ev->last_id_len] == '\0');
    log_event(l, ev);
    if (l->reencode)
        reencode_check(ev);
}

static void on_retry(void *ctx, uint64_t ms)
{
    log_put(ctx, "R", 1);
    log_put(ctx, &ms, sizeof ms);
}

static void on_comment(void *ctx, const char *text, size_t len)
{
    CHECK(!has_any(text, len, "\r\n", 2));
    log_put(ctx, "C", 1);
    log_str(ctx, text, len);
}

static const sse_parser_callbacks_t callbacks = {on_event, on_retry, on_comment};

/* Parses buf into l; chunk sizes cycle through `sizes` (0: one feed).
 * Returns the result of the last feed made. */
static int parse(const char *buf, size_t len, size_t max_bytes, const uint8_t *sizes, size_t nsizes, log_t *l)
{
    sse_parser_t p;
    int rc = 0;
    sse_parser_init(&p, &callbacks, l, max_bytes);
    l->max_bytes = p.max_bytes;
    if (nsizes == 0) {
        rc = sse_parser_feed(&p, buf, len);
    } else {
        for (size_t off = 0, i = 0; off < len && rc == 0; i++) {
            size_t k = sizes[i % nsizes];
            if (k > len - off)
                k = len - off;
            rc = sse_parser_feed(&p, buf + off, k);
            off += k;
        }
    }
    sse_parser_dispose(&p);
    return rc;
}

/* ---- property 3: a parsed event re-encodes to itself -------------------------- */

static void reencode_check(const sse_event_t *ev)
{
    sse_fields_t f = {ev->last_id, ev->last_id_len, ev->type, ev->type_len, ev->data, ev->data_len, -1};
    size_t size = sse_encoded_size(&f);
    char *buf = malloc(size);
    CHECK(buf);
    CHECK(sse_encode(buf, &f) == size);

    /* A NUL is legal in a parsed type but the encoder drops it (sse.h), so
     * the type comes back without NULs, or as "message" if nothing is left. */
    char *type = malloc(ev->type_len + 8);
    CHECK(type);
    sse_event_t want_ev = *ev;
    want_ev.type = type;
    want_ev.type_len = copy_without(ev->type, ev->type_len, "\0", 1, type);
    if (want_ev.type_len == 0) {
        memcpy(type, "message", 7);
        want_ev.type_len = 7;
    }
    log_t want = {0}, got = {0};
    log_event(&want, &want_ev);
    CHECK(parse(buf, size, 0, NULL, 0, &got) == 0);
    CHECK(got.len == want.len && memcmp(got.s, want.s, got.len) == 0);
    free(type);
    free(want.s);
    free(got.s);
    free(buf);
}

/* ---- property 1 --------------------------------------------------------------- */

static void check_chunking(const char *buf, size_t len, size_t max_bytes)
{
    static const uint8_t one[1] = {1};
    uint8_t sizes[8];
    /* chunk sizes taken from the input's tail: deterministic, input-driven */
    for (size_t i = 0; i < sizeof sizes; i++)
        sizes[i] = (uint8_t)(1 + (len > i ? (uint8_t)buf[len - 1 - i] : (uint8_t)i) % 17);

    log_t whole = {0}, bytes = {0}, chunks = {0};
    whole.reencode = max_bytes == 0;
    int rc_whole = parse(buf, len, max_bytes, NULL, 0, &whole);
    int rc_bytes = parse(buf, len, max_bytes, one, 1, &bytes);
    int rc_chunks = parse(buf, len, max_bytes, sizes, sizeof sizes, &chunks);
    CHECK(rc_whole == rc_bytes && rc_whole == rc_chunks);
    CHECK(whole.len == bytes.len && whole.len == chunks.len);
    CHECK(whole.len == 0 ||
          (memcmp(whole.s, bytes.s, whole.len) == 0 && memcmp(whole.s, chunks.s, whole.len) == 0));
    free(whole.s);
    free(bytes.s);
    free(chunks.s);
}

/* ---- property 4 --------------------------------------------------------------- */

/* Splits s[0..n) at the first `sep`: returns the part, advances *s and *n. */
static size_t take_part(const char **s, size_t *n, char sep, const char **part)
{
    const char *at = *n ? memchr(*s, sep, *n) : NULL;
    size_t len = at ? (size_t)(at - *s) : *n;
    *part = *s;
    *s += at ? len + 1 : len;
    *n -= at ? len + 1 : len;
    return len;
}

/* Copies s minus the bytes in `drop`. */
static size_t copy_without(const char *s, size_t n, const char *drop, size_t ndrop, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!memchr(drop, s[i], ndrop))
            out[k++] = s[i];
    return k;
}

/* CR, LF and CRLF all become LF. */
static size_t normalize_breaks(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r') {
            out[k++] = '\n';
            if (i + 1 < n && s[i + 1] == '\n')
                i++;
        } else {
            out[k++] = s[i];
        }
    }
    return k;
}

static void check_roundtrip(const uint8_t *in, size_t len)
{
    if (len < 2)
        return;
    uint8_t flags = in[0];
    char sep = (char)in[1];
    const char *rest = (const char *)in + 2;
    size_t rest_len = len - 2;
    const char *id, *ev, *data, *comment;
    size_t id_len = take_part(&rest, &rest_len, sep, &id);
    size_t ev_len = take_part(&rest, &rest_len, sep, &ev);
    size_t data_len = take_part(&rest, &rest_len, sep, &data);
    size_t comment_len = rest_len;
    comment = rest;

    int64_t retry = -1;
    if (flags & 8) {
        uint64_t h = 1469598103934665603u; /* FNV-1a of the input */
        for (size_t i = 0; i < len; i++)
            h = (h ^ in[i]) * 1099511628211u;
        retry = (int64_t)(h >> (flags >> 5)) & INT64_MAX; /* small ones too */
    }
    sse_fields_t f = {(flags & 1) ? id : NULL,
                      id_len,
                      (flags & 2) ? ev : NULL,
                      ev_len,
                      (flags & 4) ? data : NULL,
                      data_len,
                      retry};

    /* the stream: [BOM] comment event */
    size_t csize = sse_comment_size(comment_len), esize = sse_encoded_size(&f);
    char *stream = malloc(3 + csize + esize);
    CHECK(stream);
    size_t n = 0;
    if (flags & 16) {
        memcpy(stream, "\xEF\xBB\xBF", 3);
        n = 3;
    }
    size_t cn = sse_encode_comment(stream + n, comment, comment_len);
    CHECK(cn <= csize);
    n += cn;
    CHECK(sse_encode(stream + n, &f) == esize);
    n += esize;

    /* what it must parse to */
    log_t want = {0}, got = {0};
    char *tmp = malloc(len + 8);
    CHECK(tmp);
    size_t k = copy_without(comment, comment_len, "\r\n", 2, tmp);
    log_put(&want, "C", 1);
    log_str(&want, tmp, k);
    if (retry >= 0) {
        uint64_t ms = (uint64_t)retry;
        log_put(&want, "R", 1);
        log_put(&want, &ms, sizeof ms);
    }
    if (f.data) {
        sse_event_t e;
        char *type = malloc(ev_len + 8), *lid = malloc(id_len + 1), *d = malloc(data_len + 1);
        CHECK(type && lid && d);
        e.type_len = f.event ? copy_without(ev, ev_len, "\r\n\0", 3, type) : 0;
        e.type = type;
        if (e.type_len == 0) {
            memcpy(type, "message", 7);
            e.type_len = 7;
        }
        e.last_id_len = f.id ? copy_without(id, id_len, "\r\n\0", 3, lid) : 0;
        e.last_id = lid;
        e.data_len = normalize_breaks(data, data_len, d);
        e.data = d;
        log_event(&want, &e);
        free(type);
        free(lid);
        free(d);
    }

    CHECK(parse(stream, n, 0, NULL, 0, &got) == 0);
    CHECK(got.len == want.len && memcmp(got.s, want.s, got.len) == 0);
    free(tmp);
    free(want.s);
    free(got.s);
    free(stream);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    check_chunking(buf, size, 0);
    /* a small limit, 8..71 bytes, so that lines and data hit it */
    check_chunking(buf, size, 8 + (size ? data[0] % 64 : 0));
    check_roundtrip(data, size);
    return 0;
}
