/*
 * sse.c - the text/event-stream encoder and streaming parser (see sse.h).
 *
 * Encoder. One routine, encode(), walks the fields in wire order and writes
 * through a sink_t that either copies bytes or only counts them. Both
 * sse_encoded_size() and sse_encode() run it, so the size can never drift
 * from what is written. Values are split or scrubbed, never escaped: the
 * format has no escaping, so the only safe transformation of an id or type
 * that holds a line break is to drop the break.
 *
 * Parser. A byte-level transcription of the WHATWG "Interpreting an event
 * stream" algorithm, made incremental. Feeds arrive in arbitrary pieces, so
 * what the algorithm reads "line by line" is reconstructed by a small state
 * machine whose state survives between feeds:
 *
 *   _bom_state  0 -> 1 -> 2 -> 3   bytes EF, BB, BF seen at the very start of
 *                                  the stream; any other byte (or the end of
 *                                  the BOM) moves to 3 and stays there. On a
 *                                  mismatch the EF/BB already swallowed were
 *                                  content after all and go into the line.
 *   _last_was_cr                   a line just ended with CR; if the next
 *                                  byte (maybe in the next feed) is LF, it is
 *                                  the second half of a CRLF and is dropped.
 *   _line                          bytes of a line whose end has not arrived.
 *   _data, _type, _id              the spec's data, event type and last
 *                                  event ID buffers, kept exactly as the spec
 *                                  defines them (the data buffer includes the
 *                                  LF after every data line).
 *   _failed                        a feed failed; every later feed fails too.
 *
 * A line is acted on as soon as its terminator is seen (a CR is not held back
 * waiting for a possible LF), so callbacks fire as early as possible.
 *
 * Invariants:
 *   - _line_len <= max_bytes, _type_len <= max_bytes, _id_len <= max_bytes,
 *     and _data_len <= max_bytes + 1, so the data handed to on_event (the
 *     buffer minus its trailing LF) is at most max_bytes.
 *   - A non-NULL buffer has room for its content plus a NUL, and _type, _id
 *     and _data are NUL-terminated whenever a callback sees them.
 *   - _line holds bytes only when the current line started in an earlier
 *     feed; lines that lie wholly inside one feed are parsed in place.
 *   - The parser never calls abort() on input: every size comes from the
 *     peer, so a failed allocation or an oversized line is reported as -1.
 */
#include "sse.h"

#include <stdlib.h>
#include <string.h>

/* Test hook: unit tests substitute a failing realloc to reach the -1 paths. */
#ifndef SSE_REALLOC
#define SSE_REALLOC realloc
#endif

#define SSE_DEFAULT_MAX_BYTES ((size_t)16 << 20)
#define SSE_MIN_CAP 64

static const unsigned char sse_bom[3] = {0xEF, 0xBB, 0xBF};

/* ---- shared -------------------------------------------------------------- */

/* Offset of the first CR or LF in s[0..n), or n. */
static size_t find_eol(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\r' || s[i] == '\n')
            return i;
    return n;
}

/* ---- encoder ------------------------------------------------------------- */

/* Where encoded bytes go: `out` == NULL means "just count". */
typedef struct sink {
    char *out;
    size_t n;
} sink_t;

static void put(sink_t *s, const char *p, size_t n)
{
    if (s->out && n)
        memcpy(s->out + s->n, p, n);
    s->n += n;
}

/* Copies p[0..n) minus CR, LF and (if strip_nul) NUL: the bytes that could end
 * a line early or, for ids, make the parser ignore the whole field. */
static void put_scrubbed(sink_t *s, const char *p, size_t n, int strip_nul)
{
    size_t run = 0; /* start of the pending run of clean bytes */
    if (n == 0)
        return; /* p may be NULL then; even NULL + 0 is undefined */
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r' || p[i] == '\n' || (strip_nul && p[i] == '\0')) {
            put(s, p + run, i - run);
            run = i + 1;
        }
    }
    put(s, p + run, n - run);
}

/* "<name>: <value>\n" with the value scrubbed. The one space after the colon
 * is always written, so a value that itself starts with a space keeps it
 * (the parser strips exactly one). */
static void put_field(sink_t *s, const char *name, const char *v, size_t n)
{
    put(s, name, strlen(name));
    put(s, ": ", 2);
    put_scrubbed(s, v, n, 1);
    put(s, "\n", 1);
}

static void put_retry(sink_t *s, int64_t ms)
{
    char digits[20]; /* INT64_MAX has 19 */
    size_t i = sizeof digits;
    uint64_t v = (uint64_t)ms;
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(s, "retry: ", 7);
    put(s, digits + i, sizeof digits - i);
    put(s, "\n", 1);
}

/* One "data: " line per line of the payload. The payload's own line breaks
 * (CR, LF or CRLF) become line boundaries, so after parsing they all read back
 * as LF; a trailing break yields a final empty data line, which is what makes
 * the parser restore the trailing LF. */
static void put_data(sink_t *s, const char *d, size_t n)
{
    size_t start = 0;
    for (;;) {
        size_t eol = start + find_eol(d + start, n - start);
        put(s, "data: ", 6);
        put(s, d + start, eol - start);
        put(s, "\n", 1);
        if (eol == n)
            break;
        if (d[eol] == '\r' && eol + 1 < n && d[eol + 1] == '\n')
            eol++;
        start = eol + 1;
    }
}

static void encode(sink_t *s, const sse_fields_t *f)
{
    if (f->id)
        put_field(s, "id", f->id, f->id_len);
    if (f->event)
        put_field(s, "event", f->event, f->event_len);
    if (f->retry >= 0)
        put_retry(s, f->retry);
    if (f->data)
        put_data(s, f->data, f->data_len);
    put(s, "\n", 1);
}

size_t sse_encoded_size(const sse_fields_t *f)
{
    sink_t s = {NULL, 0};
    encode(&s, f);
    return s.n;
}

size_t sse_encode(char *out, const sse_fields_t *f)
{
    sink_t s = {out, 0};
    encode(&s, f);
    return s.n;
}

size_t sse_comment_size(size_t text_len)
{
    return text_len + 3; /* ": " and "\n"; scrubbing only ever shrinks it */
}

size_t sse_encode_comment(char *out, const char *text, size_t text_len)
{
    sink_t s = {out, 0};
    put(&s, ": ", 2);
    put_scrubbed(&s, text, text_len, 0); /* NUL is harmless in a comment */
    put(&s, "\n", 1);
    return s.n;
}

/* ---- parser: buffers ----------------------------------------------------- */

/* Ensures *buf can hold `need` (<= limit) bytes plus a NUL, growing
 * geometrically but never past limit + 1 bytes. -1 if realloc fails; the
 * buffer is then left as it was, still owned by the parser. */
static int buf_reserve(char **buf, size_t *cap, size_t need, size_t limit)
{
    if (need < *cap)
        return 0;
    size_t ncap = *cap ? *cap : SSE_MIN_CAP;
    while (ncap <= need)
        ncap *= 2; /* limit <= SIZE_MAX / 4 (see init), so this can't wrap */
    if (ncap > limit + 1)
        ncap = limit + 1;
    char *nbuf = SSE_REALLOC(*buf, ncap);
    if (!nbuf)
        return -1;
    *buf = nbuf;
    *cap = ncap;
    return 0;
}

/* Appends s[0..n) to a buffer, keeping it NUL-terminated. */
static int buf_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n, size_t limit)
{
    if (n > limit - *len) /* *len <= limit always holds */
        return -1;
    if (buf_reserve(buf, cap, *len + n, limit) < 0)
        return -1;
    if (n)
        memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* ---- parser: the spec's per-line steps ----------------------------------- */

/* "Dispatch the event", minus the parts that belong to the EventSource object
 * (copying the last event ID buffer out is implicit: on_event reads _id). */
static void dispatch(sse_parser_t *p)
{
    if (p->_data_len == 0) {
        p->_type_len = 0; /* the spec resets both buffers even here */
        return;
    }
    p->_data[--p->_data_len] = '\0'; /* drop the LF after the last data line */
    sse_event_t ev = {
        .type = p->_type_len ? p->_type : "message",
        .type_len = p->_type_len ? p->_type_len : 7,
        .data = p->_data,
        .data_len = p->_data_len,
        .last_id = p->_id_len ? p->_id : "",
        .last_id_len = p->_id_len,
    };
    if (p->cb.on_event)
        p->cb.on_event(p->ctx, &ev);
    p->_data_len = 0;
    p->_type_len = 0;
}

/* The spec's "only ASCII digits" test plus base-10 conversion. An empty value
 * is refused (it holds no digits to interpret), and so is one above
 * UINT64_MAX: ignoring a field it cannot honour is the spec's default, and
 * clamping would invent a delay the server never sent. */
static int parse_retry(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int name_is(const char *name, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(name, want, n) == 0;
}

/* "Process the field": names match case-sensitively; unknown ones are
 * ignored. */
static int process_field(sse_parser_t *p, const char *name, size_t name_len, const char *v, size_t n)
{
    size_t max = p->max_bytes;
    if (name_is(name, name_len, "event")) {
        p->_type_len = 0;
        return buf_append(&p->_type, &p->_type_len, &p->_type_cap, v, n, max);
    }
    if (name_is(name, name_len, "data")) {
        /* limit max + 1: the trailing LF is removed before anyone sees it */
        if (buf_append(&p->_data, &p->_data_len, &p->_data_cap, v, n, max + 1) < 0)
            return -1;
        return buf_append(&p->_data, &p->_data_len, &p->_data_cap, "\n", 1, max + 1);
    }
    if (name_is(name, name_len, "id")) {
        if (n && memchr(v, '\0', n))
            return 0;
        p->_id_len = 0;
        return buf_append(&p->_id, &p->_id_len, &p->_id_cap, v, n, max);
    }
    if (name_is(name, name_len, "retry")) {
        uint64_t ms;
        if (parse_retry(v, n, &ms) == 0 && p->cb.on_retry)
            p->cb.on_retry(p->ctx, ms);
    }
    return 0;
}

/* One complete line, its terminator already removed. */
static int process_line(sse_parser_t *p, const char *s, size_t n)
{
    if (n == 0) {
        dispatch(p);
        return 0;
    }
    if (s[0] == ':') {
        /* Not part of the spec's model (it ignores comments), but the one
         * space is stripped as for field values so that a comment written by
         * sse_encode_comment() reads back unchanged. */
        size_t skip = (n > 1 && s[1] == ' ') ? 2 : 1;
        if (p->cb.on_comment)
            p->cb.on_comment(p->ctx, s + skip, n - skip);
        return 0;
    }
    const char *colon = memchr(s, ':', n);
    if (!colon)
        return process_field(p, s, n, s + n, 0);
    size_t name_len = (size_t)(colon - s);
    const char *v = colon + 1;
    size_t vlen = n - name_len - 1;
    if (vlen && v[0] == ' ') {
        v++;
        vlen--;
    }
    return process_field(p, s, name_len, v, vlen);
}

/* ---- parser: framing ----------------------------------------------------- */

/* Consumes the bytes of a leading BOM from buf[*i..len). On the first byte
 * that breaks the BOM, the part already swallowed is put back as content. */
static int skip_bom(sse_parser_t *p, const char *buf, size_t len, size_t *i)
{
    while (p->_bom_state < 3 && *i < len) {
        if ((unsigned char)buf[*i] == sse_bom[p->_bom_state]) {
            p->_bom_state++;
            (*i)++;
            continue;
        }
        size_t seen = (size_t)p->_bom_state;
        p->_bom_state = 3;
        return buf_append(&p->_line, &p->_line_len, &p->_line_cap, (const char *)sse_bom, seen, p->max_bytes);
    }
    return 0;
}

/* Finishes a line whose last n bytes are start[0..n) (terminator excluded);
 * any earlier bytes of it are waiting in _line. */
static int end_line(sse_parser_t *p, const char *start, size_t n)
{
    if (p->_line_len == 0) {
        /* Fast path: the whole line is in this feed; parse it in place. */
        if (n > p->max_bytes)
            return -1;
        return process_line(p, start, n);
    }
    if (buf_append(&p->_line, &p->_line_len, &p->_line_cap, start, n, p->max_bytes) < 0)
        return -1;
    size_t total = p->_line_len;
    p->_line_len = 0; /* the line is consumed even if processing fails */
    return process_line(p, p->_line, total);
}

static int feed_bytes(sse_parser_t *p, const char *buf, size_t len)
{
    size_t i = 0;
    if (skip_bom(p, buf, len, &i) < 0)
        return -1;
    while (i < len) {
        if (p->_last_was_cr) {
            p->_last_was_cr = 0;
            if (buf[i] == '\n') {
                i++;
                continue;
            }
        }
        size_t eol = i + find_eol(buf + i, len - i);
        if (eol == len)
            return buf_append(&p->_line, &p->_line_len, &p->_line_cap, buf + i, len - i, p->max_bytes);
        if (end_line(p, buf + i, eol - i) < 0)
            return -1;
        p->_last_was_cr = buf[eol] == '\r';
        i = eol + 1;
    }
    return 0;
}

/* ---- parser: public ------------------------------------------------------ */

void sse_parser_init(sse_parser_t *p, const sse_parser_callbacks_t *cb, void *ctx, size_t max_bytes)
{
    memset(p, 0, sizeof *p);
    p->cb = *cb;
    p->ctx = ctx;
    if (max_bytes == 0)
        max_bytes = SSE_DEFAULT_MAX_BYTES;
    /* Keeps every size computation (limit + 2, doubling) far from wrapping. */
    if (max_bytes > SIZE_MAX / 4)
        max_bytes = SIZE_MAX / 4;
    p->max_bytes = max_bytes;
}

int sse_parser_feed(sse_parser_t *p, const char *buf, size_t len)
{
    if (p->_failed)
        return -1;
    if (len == 0)
        return 0;
    if (feed_bytes(p, buf, len) < 0) {
        p->_failed = 1;
        return -1;
    }
    return 0;
}

void sse_parser_dispose(sse_parser_t *p)
{
    free(p->_line);
    free(p->_data);
    free(p->_type);
    free(p->_id);
    p->_line = p->_data = p->_type = p->_id = NULL;
    p->_line_len = p->_line_cap = 0;
    p->_data_len = p->_data_cap = 0;
    p->_type_len = p->_type_cap = 0;
    p->_id_len = p->_id_cap = 0;
}
