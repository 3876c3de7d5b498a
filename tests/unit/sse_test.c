/*
 * sse_test.c - unit tests for src/sse.c: the encoder byte for byte, the
 * parser against the WHATWG event-stream rules, and the parser against a
 * naive reference model on pseudo-random streams.
 *
 * Parser results are compared as a textual log of callbacks, one record per
 * callback, in order:
 *     E('type','data','last id')   on_event
 *     R(ms)                        on_retry
 *     C('text')                    on_comment
 * with \n \r \0 \' \\ and \xHH escapes inside the quotes. Every parser
 * expectation is checked with the stream fed whole, one byte at a time, and
 * in chunks of 2, 3 and 7 bytes.
 */
#include <errno.h>
#include <stdlib.h>

/* Allocation-failure injection: sse.c calls SSE_REALLOC for every buffer. */
static long test_realloc_budget = -1; /* successful reallocs left; -1: no limit */

static void *test_realloc(void *ptr, size_t size)
{
    if (test_realloc_budget == 0)
        return NULL;
    if (test_realloc_budget > 0)
        test_realloc_budget--;
    return realloc(ptr, size);
}

#define SSE_REALLOC test_realloc
#include "../../src/sse.c"

#include "test.h"

/* A string literal as a (pointer, length) pair; the literal may hold NULs. */
#define S(lit) (lit), (sizeof(lit) - 1)
#define NONE NULL, 0

/* ---- the callback log ---------------------------------------------------- */

typedef struct rec {
    char *s;
    size_t len, cap;
    size_t events;
    int bad_terminator; /* an event string was not NUL-terminated */
} rec_t;

static void rec_put(rec_t *r, const char *s, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->len + n + 1)
            cap *= 2;
        r->s = realloc(r->s, cap);
        if (!r->s)
            abort();
        r->cap = cap;
    }
    memcpy(r->s + r->len, s, n);
    r->len += n;
    r->s[r->len] = '\0';
}

static void rec_str(rec_t *r, const char *s) { rec_put(r, s, strlen(s)); }

static void rec_quoted(rec_t *r, const char *s, size_t n)
{
    rec_str(r, "'");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '\n')
            rec_str(r, "\\n");
        else if (c == '\r')
            rec_str(r, "\\r");
        else if (c == '\0')
            rec_str(r, "\\0");
        else if (c == '\'' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            rec_put(r, esc, 2);
        } else if (c >= 0x20 && c < 0x7f)
            rec_put(r, (const char *)&c, 1);
        else {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            rec_str(r, esc);
        }
    }
    rec_str(r, "'");
}

static void rec_event(rec_t *r, const char *type, size_t type_len, const char *data, size_t data_len,
                      const char *id, size_t id_len)
{
    rec_str(r, "E(");
    rec_quoted(r, type, type_len);
    rec_str(r, ",");
    rec_quoted(r, data, data_len);
    rec_str(r, ",");
    rec_quoted(r, id, id_len);
    rec_str(r, ")");
    r->events++;
}

static void rec_retry(rec_t *r, uint64_t ms)
{
    char buf[32];
    snprintf(buf, sizeof buf, "R(%" PRIu64 ")", ms);
    rec_str(r, buf);
}

static void rec_comment(rec_t *r, const char *text, size_t len)
{
    rec_str(r, "C(");
    rec_quoted(r, text, len);
    rec_str(r, ")");
}

static void rec_free(rec_t *r)
{
    free(r->s);
    memset(r, 0, sizeof *r);
}

static const char *rec_text(const rec_t *r) { return r->s ? r->s : ""; }

/* ---- driving the parser -------------------------------------------------- */

static void on_event(void *ctx, const sse_event_t *ev)
{
    rec_t *r = ctx;
    if (ev->type[ev->type_len] || ev->data[ev->data_len] || ev->last_id[ev->last_id_len])
        r->bad_terminator = 1;
    rec_event(r, ev->type, ev->type_len, ev->data, ev->data_len, ev->last_id, ev->last_id_len);
}

static void on_retry(void *ctx, uint64_t ms) { rec_retry(ctx, ms); }

static void on_comment(void *ctx, const char *text, size_t len) { rec_comment(ctx, text, len); }

static const sse_parser_callbacks_t rec_callbacks = {on_event, on_retry, on_comment};

/* Feeds s[0..n) in pieces of `chunk` bytes (0: all at once); stops at the
 * first failure. Returns the last feed's result. */
static int parse_chunked(const char *s, size_t n, size_t chunk, size_t max_bytes, rec_t *r)
{
    sse_parser_t p;
    int rc = 0;
    sse_parser_init(&p, &rec_callbacks, r, max_bytes);
    if (chunk == 0)
        chunk = n ? n : 1;
    for (size_t off = 0; off < n && rc == 0; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        rc = sse_parser_feed(&p, s + off, k);
    }
    sse_parser_dispose(&p);
    return rc;
}

static void expect_parse_(const char *s, size_t n, size_t max_bytes, const char *want, int want_rc, int line)
{
    static const size_t chunks[] = {0, 1, 2, 3, 7};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        rec_t r = {0};
        int rc = parse_chunked(s, n, chunks[c], max_bytes, &r);
        if (rc != want_rc || strcmp(rec_text(&r), want) != 0 || r.bad_terminator) {
            fprintf(stderr, "  %s:%d: chunk %zu: rc %d (want %d)%s\n    got  %s\n    want %s\n", __FILE__,
                    line, chunks[c], rc, want_rc, r.bad_terminator ? ", event string not NUL-terminated" : "",
                    rec_text(&r), want);
            test__failed_current++;
        }
        rec_free(&r);
    }
}

/* EXPECT_PARSE("stream literal", "expected log") */
#define EXPECT_PARSE(lit, want) expect_parse_(S(lit), 0, (want), 0, __LINE__)
#define EXPECT_PARSE_MAX(lit, max, want, rc) expect_parse_(S(lit), (max), (want), (rc), __LINE__)

/* ---- driving the encoder ------------------------------------------------- */

/* Encodes into a buffer of exactly sse_encoded_size() bytes (so ASan catches
 * any overrun) and compares with the expected bytes. */
static void expect_encode_(const sse_fields_t *f, const char *want, size_t want_len, int line)
{
    size_t size = sse_encoded_size(f);
    char *buf = malloc(size);
    size_t n = sse_encode(buf, f);
    if (n != size || n != want_len || memcmp(buf, want, n) != 0) {
        rec_t got = {0}, exp = {0};
        rec_quoted(&got, buf, n);
        rec_quoted(&exp, want, want_len);
        fprintf(stderr, "  %s:%d: size %zu, wrote %zu\n    got  %s\n    want %s\n", __FILE__, line, size, n,
                got.s, exp.s);
        test__failed_current++;
        rec_free(&got);
        rec_free(&exp);
    }
    free(buf);
}

#define EXPECT_ENCODE(f, lit) expect_encode_((f), S(lit), __LINE__)

/* ---- encoder tests ------------------------------------------------------- */

static void test_encode_field_order(void)
{
    sse_fields_t all = {S("42"), S("update"), S("hello"), 1500};
    EXPECT_ENCODE(&all, "id: 42\nevent: update\nretry: 1500\ndata: hello\n\n");
    sse_fields_t data_only = {NONE, NONE, S("x"), -1};
    EXPECT_ENCODE(&data_only, "data: x\n\n");
    sse_fields_t no_event = {S("7"), NONE, S("x"), 10};
    EXPECT_ENCODE(&no_event, "id: 7\nretry: 10\ndata: x\n\n");
    sse_fields_t event_data = {NONE, S("tick"), S("x"), -1};
    EXPECT_ENCODE(&event_data, "event: tick\ndata: x\n\n");
}

static void test_encode_data_lf(void)
{
    sse_fields_t f = {NONE, NONE, S("a\nb\nc"), -1};
    EXPECT_ENCODE(&f, "data: a\ndata: b\ndata: c\n\n");
    sse_fields_t blank_inside = {NONE, NONE, S("a\n\nb"), -1};
    EXPECT_ENCODE(&blank_inside, "data: a\ndata: \ndata: b\n\n");
}

static void test_encode_data_cr(void)
{
    sse_fields_t f = {NONE, NONE, S("a\rb\rc"), -1};
    EXPECT_ENCODE(&f, "data: a\ndata: b\ndata: c\n\n");
    sse_fields_t two = {NONE, NONE, S("a\r\rb"), -1};
    EXPECT_ENCODE(&two, "data: a\ndata: \ndata: b\n\n");
}

static void test_encode_data_crlf(void)
{
    sse_fields_t f = {NONE, NONE, S("a\r\nb\r\nc"), -1};
    EXPECT_ENCODE(&f, "data: a\ndata: b\ndata: c\n\n");
    sse_fields_t two = {NONE, NONE, S("a\r\n\r\nb"), -1};
    EXPECT_ENCODE(&two, "data: a\ndata: \ndata: b\n\n");
}

static void test_encode_data_mixed(void)
{
    /* "\n\r" is two line ends (LF, then CR), unlike "\r\n" */
    sse_fields_t f = {NONE, NONE, S("a\rb\nc\r\nd\n\re"), -1};
    EXPECT_ENCODE(&f, "data: a\ndata: b\ndata: c\ndata: d\ndata: \ndata: e\n\n");
}

static void test_encode_data_trailing_newline(void)
{
    sse_fields_t lf = {NONE, NONE, S("a\n"), -1};
    EXPECT_ENCODE(&lf, "data: a\ndata: \n\n");
    sse_fields_t cr = {NONE, NONE, S("a\r"), -1};
    EXPECT_ENCODE(&cr, "data: a\ndata: \n\n");
    sse_fields_t crlf = {NONE, NONE, S("a\r\n"), -1};
    EXPECT_ENCODE(&crlf, "data: a\ndata: \n\n");
    sse_fields_t only = {NONE, NONE, S("\n"), -1};
    EXPECT_ENCODE(&only, "data: \ndata: \n\n");
}

static void test_encode_data_empty(void)
{
    sse_fields_t f = {NONE, NONE, S(""), -1};
    EXPECT_ENCODE(&f, "data: \n\n");
    sse_fields_t with_id = {S("1"), NONE, S(""), -1};
    EXPECT_ENCODE(&with_id, "id: 1\ndata: \n\n");
}

static void test_encode_data_null(void)
{
    sse_fields_t id_only = {S("1"), NONE, NONE, -1};
    EXPECT_ENCODE(&id_only, "id: 1\n\n");
    sse_fields_t retry_only = {NONE, NONE, NONE, 3000};
    EXPECT_ENCODE(&retry_only, "retry: 3000\n\n");
    sse_fields_t nothing = {NONE, NONE, NONE, -1};
    EXPECT_ENCODE(&nothing, "\n");
}

static void test_encode_leading_spaces(void)
{
    sse_fields_t f = {S(" id"), S("  ev"), S("  x\n y\n"), -1};
    EXPECT_ENCODE(&f, "id:  id\nevent:   ev\ndata:   x\ndata:  y\ndata: \n\n");
}

static void test_encode_data_nul_kept(void)
{
    sse_fields_t f = {NONE, NONE, S("a\0b"), -1};
    EXPECT_ENCODE(&f, "data: a\0b\n\n");
}

static void test_encode_id_event_scrubbed(void)
{
    sse_fields_t f = {S("a\r\nb\0c\n"), S("x\ny\rz\0"), S("d"), -1};
    EXPECT_ENCODE(&f, "id: abc\nevent: xyz\ndata: d\n\n");
    sse_fields_t only_breaks = {S("\r\n\0"), S("\n"), NONE, -1};
    EXPECT_ENCODE(&only_breaks, "id: \nevent: \n\n");
    sse_fields_t empty = {S(""), S(""), S("d"), -1};
    EXPECT_ENCODE(&empty, "id: \nevent: \ndata: d\n\n");
}

static void test_encode_retry(void)
{
    sse_fields_t zero = {NONE, NONE, NONE, 0};
    EXPECT_ENCODE(&zero, "retry: 0\n\n");
    sse_fields_t max = {NONE, NONE, S("x"), INT64_MAX};
    EXPECT_ENCODE(&max, "retry: 9223372036854775807\ndata: x\n\n");
    sse_fields_t negative = {NONE, NONE, S("x"), -5};
    EXPECT_ENCODE(&negative, "data: x\n\n");
    sse_fields_t min = {NONE, NONE, S("x"), INT64_MIN};
    EXPECT_ENCODE(&min, "data: x\n\n");
}

static void expect_comment_(const char *text, size_t len, const char *want, size_t want_len, int line)
{
    size_t size = sse_comment_size(len);
    char *buf = malloc(size);
    size_t n = sse_encode_comment(buf, text, len);
    if (n > size || n != want_len || memcmp(buf, want, n) != 0) {
        fprintf(stderr, "  %s:%d: comment: size %zu, wrote %zu \"%.*s\"\n", __FILE__, line, size, n, (int)n,
                buf);
        test__failed_current++;
    }
    free(buf);
}

#define EXPECT_COMMENT(text, want) expect_comment_(S(text), S(want), __LINE__)

static void test_encode_comment(void)
{
    EXPECT_COMMENT("hello", ": hello\n");
    EXPECT_COMMENT("", ": \n");
    EXPECT_COMMENT("a\r\nb\nc\r", ": abc\n");
    EXPECT_COMMENT("\r\n", ": \n");
    EXPECT_COMMENT(" x", ":  x\n");
    ASSERT_UEQ(sse_comment_size(0), 3);
    ASSERT_UEQ(sse_comment_size(5), 8);
    char tiny[3];
    ASSERT_UEQ(sse_encode_comment(tiny, NULL, 0), 3); /* NULL text, no bytes */
    ASSERT(memcmp(tiny, ": \n", 3) == 0);
}

/* A small deterministic PRNG (splitmix64) so failures reproduce. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static size_t rng_below(size_t n) { return (size_t)(rng_next() % n); }

/* Random bytes drawn mostly from the characters the encoder treats specially. */
static void random_bytes(char *out, size_t n)
{
    static const char alphabet[] = {'\r', '\n', '\0', ' ', ':', 'a', 'b', '1', '\xEF'};
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[rng_below(sizeof alphabet)];
}

static void test_encode_size_matches_written(void)
{
    char id[16], ev[16], data[64];
    rng_state = 1;
    for (int iter = 0; iter < 2000; iter++) {
        size_t id_len = rng_below(sizeof id), ev_len = rng_below(sizeof ev);
        size_t data_len = rng_below(sizeof data);
        random_bytes(id, id_len);
        random_bytes(ev, ev_len);
        random_bytes(data, data_len);
        sse_fields_t f = {
            rng_below(3) ? id : NULL,
            id_len,
            rng_below(3) ? ev : NULL,
            ev_len,
            rng_below(4) ? data : NULL,
            data_len,
            rng_below(3) ? (int64_t)(rng_next() >> rng_below(64)) : -1,
        };
        size_t size = sse_encoded_size(&f);
        char *buf = malloc(size);
        ASSERT_UEQ(sse_encode(buf, &f), size);
        free(buf);
        size = sse_comment_size(data_len);
        buf = malloc(size);
        size_t n = sse_encode_comment(buf, data, data_len);
        ASSERT(n <= size);
        ASSERT(memchr(buf, '\r', n) == NULL);
        ASSERT(memchr(buf, '\n', n) == buf + n - 1);
        free(buf);
    }
}

/* ---- parser tests: line ends --------------------------------------------- */

static void test_parse_lf(void)
{
    EXPECT_PARSE("data: a\ndata: b\n\ndata: c\n\n", "E('message','a\\nb','')E('message','c','')");
}

static void test_parse_cr(void)
{
    EXPECT_PARSE("data: a\rdata: b\r\rdata: c\r\r", "E('message','a\\nb','')E('message','c','')");
}

static void test_parse_crlf(void)
{
    EXPECT_PARSE("data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n", "E('message','a\\nb','')E('message','c','')");
}

static void test_parse_mixed_line_ends(void)
{
    /* "\n\r" is LF then CR: two line ends, so the second is a blank line */
    EXPECT_PARSE("data: a\n\rdata: b\r\r\ndata: c\r\n\n", "E('message','a','')E('message','b','')"
                                                          "E('message','c','')");
}

/* Feeds NUL-terminated pieces one by one into the same parser. */
static int feed_pieces(const char *const *pieces, size_t count, sse_parser_t *p)
{
    for (size_t i = 0; i < count; i++)
        if (sse_parser_feed(p, pieces[i], strlen(pieces[i])) < 0)
            return -1;
    return 0;
}

static void test_parse_crlf_split_across_feeds(void)
{
    static const char *const pieces[] = {"data: a\r", "\ndata: b\r", "\n\r", "\n"};
    rec_t r = {0};
    sse_parser_t p;
    sse_parser_init(&p, &rec_callbacks, &r, 0);
    ASSERT_EQ(feed_pieces(pieces, 4, &p), 0);
    ASSERT_STR_EQ(rec_text(&r), "E('message','a\\nb','')");
    sse_parser_dispose(&p);
    rec_free(&r);
    EXPECT_PARSE("data: a\r\ndata: b\r\n\r\n", "E('message','a\\nb','')");
}

static void test_parse_cr_then_other_byte_next_feed(void)
{
    rec_t r = {0};
    sse_parser_t p;
    sse_parser_init(&p, &rec_callbacks, &r, 0);
    ASSERT_EQ(sse_parser_feed(&p, S("data: a\r")), 0);
    ASSERT_EQ(sse_parser_feed(&p, S("data: b\r")), 0);
    ASSERT_STR_EQ(rec_text(&r), "");
    /* a CR ends its line at once: no need to see the next byte first */
    ASSERT_EQ(sse_parser_feed(&p, S("\r")), 0);
    ASSERT_STR_EQ(rec_text(&r), "E('message','a\\nb','')");
    ASSERT_EQ(sse_parser_feed(&p, S("data: c\r")), 0);
    ASSERT_EQ(sse_parser_feed(&p, S(":x\r")), 0);
    ASSERT_EQ(sse_parser_feed(&p, S("\r")), 0);
    ASSERT_STR_EQ(rec_text(&r), "E('message','a\\nb','')C('x')E('message','c','')");
    sse_parser_dispose(&p);
    rec_free(&r);
}

static void test_parse_empty_feed(void)
{
    rec_t r = {0};
    sse_parser_t p;
    sse_parser_init(&p, &rec_callbacks, &r, 0);
    ASSERT_EQ(sse_parser_feed(&p, NULL, 0), 0);
    ASSERT_EQ(sse_parser_feed(&p, S("data: a\r")), 0);
    ASSERT_EQ(sse_parser_feed(&p, "", 0), 0);
    ASSERT_EQ(sse_parser_feed(&p, S("\n\n")), 0);
    ASSERT_STR_EQ(rec_text(&r), "E('message','a','')");
    sse_parser_dispose(&p);
    rec_free(&r);
}

/* ---- parser tests: BOM --------------------------------------------------- */

static void test_parse_bom_skipped(void)
{
    EXPECT_PARSE("\xEF\xBB\xBF"
                 "data: x\n\n",
                 "E('message','x','')");
    EXPECT_PARSE("\xEF\xBB\xBF"
                 ": c\n",
                 "C('c')");
    EXPECT_PARSE("\xEF\xBB\xBF", "");
}

static void test_parse_bom_split_over_feeds(void)
{
    static const char *const pieces[] = {"\xEF", "\xBB",
                                         ("\xBF"
                                          ": c\n"),
                                         "data: x\n\n"};
    rec_t r = {0};
    sse_parser_t p;
    sse_parser_init(&p, &rec_callbacks, &r, 0);
    ASSERT_EQ(feed_pieces(pieces, 4, &p), 0);
    ASSERT_STR_EQ(rec_text(&r), "C('c')E('message','x','')");
    sse_parser_dispose(&p);
    rec_free(&r);
}

static void test_parse_bom_not_at_start_is_data(void)
{
    EXPECT_PARSE("data: \xEF\xBB\xBF"
                 "x\n\n",
                 "E('message','\\xef\\xbb\\xbfx','')");
    /* after a line end, a BOM is just the start of a field name */
    EXPECT_PARSE("\n\xEF\xBB\xBF"
                 "data: x\n\ndata: y\n\n",
                 "E('message','y','')");
}

static void test_parse_second_bom_kept(void)
{
    EXPECT_PARSE("\xEF\xBB\xBF\xEF\xBB\xBF"
                 "data: x\n\ndata: y\n\n",
                 "E('message','y','')");
    EXPECT_PARSE("\xEF\xBB\xBF\xEF\xBB\xBF"
                 ": c\n",
                 "");
}

static void test_parse_partial_bom_kept(void)
{
    /* EF BB that do not go on to BF are content: the line is not a comment */
    EXPECT_PARSE("\xEF\xBB"
                 ": c\n",
                 "");
    EXPECT_PARSE("\xEF"
                 ": c\n",
                 "");
    EXPECT_PARSE("\xEF\xBB\n: c\n", "C('c')");
    /* with max_bytes 2 the kept bytes make "\xEF\xBB" "x" a 3-byte line */
    EXPECT_PARSE_MAX("\xEF\xBB"
                     "x\n",
                     2, "", -1);
}

/* ---- parser tests: lines and fields -------------------------------------- */

static void test_parse_comments(void)
{
    EXPECT_PARSE(": hello\n", "C('hello')");
    EXPECT_PARSE(":\n:x\n:  two\n", "C('')C('x')C(' two')");
    /* a comment neither dispatches nor ends the event it sits in */
    EXPECT_PARSE("data: a\n: c\ndata: b\n\n", "C('c')E('message','a\\nb','')");
    EXPECT_PARSE(": c\n\n", "C('c')");
    EXPECT_PARSE(": a: b\r", "C('a: b')");
}

static void test_parse_field_without_colon(void)
{
    EXPECT_PARSE("data\n\n", "E('message','','')");
    EXPECT_PARSE("data\ndata\n\n", "E('message','\\n','')");
    EXPECT_PARSE("data: a\ndata\n\n", "E('message','a\\n','')");
    EXPECT_PARSE("event\ndata: x\n\n", "E('message','x','')");
    EXPECT_PARSE("id: 5\nid\ndata: x\n\n", "E('message','x','')");
    EXPECT_PARSE("retry\n", "");
}

static void test_parse_one_space_stripped(void)
{
    EXPECT_PARSE("data:  x\n\n", "E('message',' x','')");
    EXPECT_PARSE("data:x\n\n", "E('message','x','')");
    EXPECT_PARSE("data: x \n\n", "E('message','x ','')");
    EXPECT_PARSE("data:\tx\n\n", "E('message','\\x09x','')"); /* only a space */
    EXPECT_PARSE("data: \n\n", "E('message','','')");
    EXPECT_PARSE("event:  t\nid:  i\ndata:\n\n", "E(' t','',' i')");
}

static void test_parse_colon_in_value(void)
{
    EXPECT_PARSE("data: a:b: c\n\n", "E('message','a:b: c','')");
    EXPECT_PARSE("event:a:b\ndata::\n\n", "E('a:b',':','')");
}

static void test_parse_data_joined(void)
{
    EXPECT_PARSE("data: a\ndata: b\ndata: c\n\n", "E('message','a\\nb\\nc','')");
    EXPECT_PARSE("data: a\ndata:\n\n", "E('message','a\\n','')");
    EXPECT_PARSE("data:\ndata: a\n\n", "E('message','\\na','')");
    EXPECT_PARSE("data:\ndata:\ndata:\n\n", "E('message','\\n\\n','')");
}

static void test_parse_data_nul_kept(void)
{
    EXPECT_PARSE("data: a\0b\n\n", "E('message','a\\0b','')");
    EXPECT_PARSE("event: t\0u\ndata: x\n\n", "E('t\\0u','x','')");
}

static void test_parse_blank_line_without_data(void)
{
    EXPECT_PARSE("\n\n\r\n\r", "");
    /* no dispatch, but the event type buffer is cleared */
    EXPECT_PARSE("event: foo\n\ndata: x\n\n", "E('message','x','')");
    EXPECT_PARSE("event: foo\nid: 1\n\ndata: x\n\n", "E('message','x','1')");
}

static void test_parse_default_type(void)
{
    EXPECT_PARSE("data: x\n\n", "E('message','x','')");
    EXPECT_PARSE("event:\ndata: x\n\n", "E('message','x','')");
    EXPECT_PARSE("event: t\ndata: x\n\n", "E('t','x','')");
    /* the last event field wins */
    EXPECT_PARSE("event: a\nevent: b\ndata: x\n\n", "E('b','x','')");
    EXPECT_PARSE("event: a\nevent:\ndata: x\n\n", "E('message','x','')");
}

static void test_parse_type_reset_after_dispatch(void)
{
    EXPECT_PARSE("event: foo\ndata: 1\n\ndata: 2\n\n", "E('foo','1','')E('message','2','')");
}

static void test_parse_id_with_nul_ignored(void)
{
    EXPECT_PARSE("id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n", "E('message','a','1')E('message','b','1')");
    EXPECT_PARSE("id: \0\ndata: a\n\n", "E('message','a','')");
}

static void test_parse_id_persists_and_resets(void)
{
    EXPECT_PARSE("id: 7\ndata: a\n\n"
                 "data: b\n\n"
                 "id:\ndata: c\n\n"
                 "id: 8\ndata: d\n\n"
                 "id\ndata: e\n\n",
                 "E('message','a','7')E('message','b','7')E('message','c','')"
                 "E('message','d','8')E('message','e','')");
    /* an id set with no data to dispatch still sticks */
    EXPECT_PARSE("id: 3\n\ndata: x\n\n", "E('message','x','3')");
    /* an id given after the data, in the same event, counts for it */
    EXPECT_PARSE("data: x\nid: 4\n\n", "E('message','x','4')");
    EXPECT_PARSE("id:  5 \ndata: x\n\n", "E('message','x',' 5 ')");
}

static void test_parse_retry_valid(void)
{
    EXPECT_PARSE("retry: 1000\n", "R(1000)");
    EXPECT_PARSE("retry:5\nretry: 0\nretry: 007\n", "R(5)R(0)R(7)");
    EXPECT_PARSE("retry: 18446744073709551615\n", "R(18446744073709551615)");
    EXPECT_PARSE("retry: 000000000000000000000000042\n", "R(42)");
    /* reported when its line ends, not at dispatch */
    EXPECT_PARSE("data: x\nretry: 9\n\n", "R(9)E('message','x','')");
}

static void test_parse_retry_invalid(void)
{
    EXPECT_PARSE("retry: 1a\n", "");
    EXPECT_PARSE("retry:  5\n", "");
    EXPECT_PARSE("retry: 5 \n", "");
    EXPECT_PARSE("retry:\n", "");
    EXPECT_PARSE("retry: \n", "");
    EXPECT_PARSE("retry: -1\n", "");
    EXPECT_PARSE("retry: +1\n", "");
    EXPECT_PARSE("retry: 1.5\n", "");
    EXPECT_PARSE("retry: 1\0\n", "");
    EXPECT_PARSE("retry: \xd9\xa3\n", ""); /* ARABIC-INDIC DIGIT THREE */
    EXPECT_PARSE("retry: 18446744073709551616\n", "");
    EXPECT_PARSE("retry: 99999999999999999999999\n", "");
    /* an invalid retry ignores only itself */
    EXPECT_PARSE("retry: x\nretry: 3\n", "R(3)");
}

static void test_parse_unknown_fields(void)
{
    EXPECT_PARSE("foo: bar\nData: x\nDATA: y\n data: z\ndata : q\ndata: w\n\n", "E('message','w','')");
    EXPECT_PARSE("foo: bar\n\n", "");
    EXPECT_PARSE("Retry: 5\nID: 1\nEvent: e\ndata: x\n\n", "E('message','x','')");
}

static void test_parse_unterminated_event(void)
{
    EXPECT_PARSE("data: x\n", "");
    EXPECT_PARSE("data: x", "");
    EXPECT_PARSE("data: x\n\ndata: y\n", "E('message','x','')");
    EXPECT_PARSE("data: x\n\ndata: y\n\r", "E('message','x','')E('message','y','')");
    /* the partial line is never acted on, even when it would be a retry */
    EXPECT_PARSE("retry: 5", "");
    EXPECT_PARSE(": c", "");
}

/* ---- parser tests: limits and failures ----------------------------------- */

static void test_parse_max_bytes_line(void)
{
    /* "data: 12" is 8 bytes: fits; "data: 123" does not */
    EXPECT_PARSE_MAX("data: 12\n\n", 8, "E('message','12','')", 0);
    EXPECT_PARSE_MAX("data: 123\n\n", 8, "", -1);
    EXPECT_PARSE_MAX(": 12345678\n", 8, "", -1);
    /* no line end needed: the partial line is already too long */
    EXPECT_PARSE_MAX("xxxxxxxxx", 8, "", -1);
    EXPECT_PARSE_MAX("xxxxxxxx", 8, "", 0);
    /* what came before the long line is delivered */
    EXPECT_PARSE_MAX("data: 1\n\n: c\nxxxxxxxxxxxx\ndata: 2\n\n", 8, "E('message','1','')C('c')", -1);
}

static void test_parse_max_bytes_data(void)
{
    /* the data delivered ("123\n456\n78", 10 bytes) is what counts, not the
     * buffer with its trailing LF */
    EXPECT_PARSE_MAX("data:123\ndata:456\ndata:78\n\n", 10, "E('message','123\\n456\\n78','')", 0);
    EXPECT_PARSE_MAX("data:123\ndata:456\ndata:789\n\n", 10, "", -1);
    EXPECT_PARSE_MAX("data\ndata\ndata\ndata\ndata\ndata\ndata\ndata\ndata\n\n", 8,
                     "E('message','\\n\\n\\n\\n\\n\\n\\n\\n','')", 0);
    EXPECT_PARSE_MAX("data\ndata\ndata\ndata\ndata\ndata\ndata\ndata\ndata\ndata\n\n", 8, "", -1);
    /* dispatch empties the buffer, so the limit is per event */
    EXPECT_PARSE_MAX("data:123\ndata:456\ndata:78\n\ndata:123\ndata:456\ndata:78\n\n", 10,
                     "E('message','123\\n456\\n78','')E('message','123\\n456\\n78','')", 0);
}

static void test_parse_failure_is_sticky(void)
{
    rec_t r = {0};
    sse_parser_t p;
    sse_parser_init(&p, &rec_callbacks, &r, 4);
    ASSERT_EQ(sse_parser_feed(&p, S("data: toolong\n")), -1);
    ASSERT_EQ(sse_parser_feed(&p, S("data\n\n")), -1);
    ASSERT_EQ(sse_parser_feed(&p, S("\n")), -1);
    ASSERT_STR_EQ(rec_text(&r), "");
    sse_parser_dispose(&p);
    sse_parser_dispose(&p); /* safe twice */
    rec_free(&r);
}

static void test_parse_default_max_bytes(void)
{
    rec_t r = {0};
    sse_parser_t p;
    sse_parser_init(&p, &rec_callbacks, &r, 0);
    ASSERT_UEQ(p.max_bytes, (size_t)16 << 20);
    sse_parser_dispose(&p);
    sse_parser_init(&p, &rec_callbacks, &r, SIZE_MAX);
    ASSERT(p.max_bytes <= SIZE_MAX / 4);
    ASSERT_EQ(sse_parser_feed(&p, S("data: x\n\n")), 0);
    ASSERT_STR_EQ(rec_text(&r), "E('message','x','')");
    sse_parser_dispose(&p);
    rec_free(&r);
}

static void test_parse_long_lines_grow(void)
{
    /* lines far past the initial capacity, arriving in odd pieces */
    size_t n = 100000;
    char *s = malloc(n);
    memcpy(s, "data: ", 6);
    for (size_t i = 6; i < n - 2; i++)
        s[i] = (char)('a' + i % 26);
    s[n - 2] = '\n';
    s[n - 1] = '\n';
    for (size_t chunk = 0; chunk < 2000; chunk += 997) {
        rec_t r = {0};
        ASSERT_EQ(parse_chunked(s, n, chunk, 0, &r), 0);
        ASSERT_UEQ(r.events, 1);
        ASSERT_UEQ(r.len, strlen("E('message','','')") + n - 8);
        rec_free(&r);
    }
    free(s);
}

static void test_parse_allocation_failure(void)
{
    /* the last line straddles the two feeds, so _line is needed too */
    static const char stream[] = "id: 1\nevent: t\ndata: a\ndata: b\n\ndata: c";
    static const char tail[] = "ontinued\n\n";
    int failures = 0, succeeded = 0;
    for (long budget = 0; budget < 32 && !succeeded; budget++) {
        rec_t r = {0};
        sse_parser_t p;
        sse_parser_init(&p, &rec_callbacks, &r, 0);
        test_realloc_budget = budget;
        int rc = sse_parser_feed(&p, S(stream));
        if (rc == 0)
            rc = sse_parser_feed(&p, S(tail));
        test_realloc_budget = -1;
        if (rc < 0) {
            failures++;
            ASSERT_EQ(sse_parser_feed(&p, S("\n")), -1);
        } else {
            succeeded = 1;
            ASSERT_STR_EQ(rec_text(&r), "E('t','a\\nb','1')E('message','continued','1')");
        }
        sse_parser_dispose(&p); /* LeakSanitizer checks nothing was lost */
        rec_free(&r);
    }
    ASSERT(succeeded);
    ASSERT(failures >= 4);
}

static void test_parse_callbacks_optional(void)
{
    static const sse_parser_callbacks_t only_event = {on_event, NULL, NULL};
    rec_t r = {0};
    sse_parser_t p;
    sse_parser_init(&p, &only_event, &r, 0);
    ASSERT_EQ(sse_parser_feed(&p, S(": c\nretry: 5\ndata: x\n\n")), 0);
    ASSERT_STR_EQ(rec_text(&r), "E('message','x','')");
    sse_parser_dispose(&p);
    rec_free(&r);
}

/* ---- encoder -> parser round trip ---------------------------------------- */

/* What the parser must give back for data the encoder was handed: every line
 * break read back as LF. */
static size_t normalize_breaks(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r') {
            out[k++] = '\n';
            if (i + 1 < n && s[i + 1] == '\n')
                i++;
        } else
            out[k++] = s[i];
    }
    return k;
}

static size_t scrub(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\r' && s[i] != '\n' && s[i] != '\0')
            out[k++] = s[i];
    return k;
}

static void test_roundtrip_encode_parse(void)
{
    char id[12], ev[12], data[48], want_id[12], want_ev[12], want_data[48];
    rng_state = 2;
    for (int iter = 0; iter < 3000; iter++) {
        size_t id_len = rng_below(sizeof id), ev_len = rng_below(sizeof ev);
        size_t data_len = rng_below(sizeof data);
        random_bytes(id, id_len);
        random_bytes(ev, ev_len);
        random_bytes(data, data_len);
        int has_id = (int)rng_below(2), has_ev = (int)rng_below(2);
        int64_t retry = rng_below(2) ? (int64_t)rng_below(100000) : -1;
        sse_fields_t f = {has_id ? id : NULL, id_len, has_ev ? ev : NULL, ev_len, data, data_len, retry};
        size_t size = sse_encoded_size(&f);
        char *buf = malloc(size);
        ASSERT_UEQ(sse_encode(buf, &f), size);

        rec_t want = {0};
        if (retry >= 0)
            rec_retry(&want, (uint64_t)retry);
        size_t wid = has_id ? scrub(id, id_len, want_id) : 0;
        size_t wev = has_ev ? scrub(ev, ev_len, want_ev) : 0;
        size_t wdata = normalize_breaks(data, data_len, want_data);
        rec_event(&want, wev ? want_ev : "message", wev ? wev : 7, want_data, wdata, want_id, wid);

        rec_t got = {0};
        int rc = parse_chunked(buf, size, rng_below(5), 0, &got);
        ASSERT_EQ(rc, 0);
        if (strcmp(rec_text(&got), rec_text(&want)) != 0) {
            TEST_FAIL_AT("round trip #%d\n    got  %s\n    want %s", iter, rec_text(&got), rec_text(&want));
            iter = 1 << 30; /* one report is enough */
        }
        rec_free(&got);
        rec_free(&want);
        free(buf);
    }
}

/* ---- differential test against a naive model ----------------------------- */

/*
 * The model reads the spec as literally as possible and shares no code with
 * sse.c: it takes the whole stream at once, drops a leading BOM, cuts the
 * rest into complete lines first, then runs the per-line steps on plain
 * heap strings (a string from the stream never outgrows the stream).
 */
typedef struct model_buf {
    char *s;
    size_t len;
} model_buf_t;

static int model_field_is(const char *name, size_t n, const char *want)
{
    return n == strlen(want) && strncmp(name, want, n) == 0;
}

static void model_line(const char *line, size_t n, model_buf_t *data, model_buf_t *type, model_buf_t *id,
                       rec_t *r)
{
    if (n == 0) { /* dispatch */
        if (data->len == 0) {
            type->len = 0;
            return;
        }
        if (data->s[data->len - 1] == '\n')
            data->len--;
        if (type->len)
            rec_event(r, type->s, type->len, data->s, data->len, id->s, id->len);
        else
            rec_event(r, "message", 7, data->s, data->len, id->s, id->len);
        data->len = type->len = 0;
        return;
    }
    if (line[0] == ':') {
        size_t skip = (n >= 2 && line[1] == ' ') ? 2 : 1;
        rec_comment(r, line + skip, n - skip);
        return;
    }
    size_t name_len = n;
    const char *value = line + n;
    size_t value_len = 0;
    for (size_t i = 0; i < n; i++) {
        if (line[i] == ':') {
            name_len = i;
            value = line + i + 1;
            value_len = n - i - 1;
            if (value_len && value[0] == ' ') {
                value++;
                value_len--;
            }
            break;
        }
    }
    if (model_field_is(line, name_len, "event")) {
        memcpy(type->s, value, value_len);
        type->len = value_len;
    } else if (model_field_is(line, name_len, "data")) {
        memcpy(data->s + data->len, value, value_len);
        data->len += value_len;
        data->s[data->len++] = '\n';
    } else if (model_field_is(line, name_len, "id")) {
        if (!memchr(value, '\0', value_len)) {
            memcpy(id->s, value, value_len);
            id->len = value_len;
        }
    } else if (model_field_is(line, name_len, "retry")) {
        char digits[64];
        int ok = value_len > 0 && value_len < sizeof digits;
        for (size_t i = 0; ok && i < value_len; i++)
            ok = value[i] >= '0' && value[i] <= '9';
        if (ok) {
            memcpy(digits, value, value_len);
            digits[value_len] = '\0';
            errno = 0;
            unsigned long long v = strtoull(digits, NULL, 10);
            if (errno == 0)
                rec_retry(r, v);
        }
    }
}

static void model_parse(const char *s, size_t n, rec_t *r)
{
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3;
        n -= 3;
    }
    model_buf_t data = {malloc(n + 1), 0}, type = {malloc(n + 1), 0}, id = {malloc(n + 1), 0};
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\r' && s[i] != '\n')
            continue;
        model_line(s + start, i - start, &data, &type, &id, r);
        if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
            i++;
        start = i + 1;
    }
    /* s[start..n) has no line end: the spec discards it */
    free(data.s);
    free(type.s);
    free(id.s);
}

/* The differential test's alphabet. Repetition weights the draw. */
static const char *const diff_tokens[] = {
    "\r",    "\n", "\n", "\r\n", ":", " ", "data", "data", "id",   "event",
    "retry", "x",  "x",  "\0",   "1", "1", "\xEF", "\xBB", "\xBF", "\xEF\xBB\xBF",
};
static const char *const diff_names[] = {"data", "data", "data", "id", "event", "retry", "", "x"};
static const char *const diff_ends[] = {"\n", "\n", "\r", "\r\n"};

/* Appends one token (which may hold a NUL, hence the explicit "\0" check). */
static size_t diff_put(char *out, size_t n, size_t cap, const char *tok)
{
    size_t len = tok[0] ? strlen(tok) : 1;
    if (n + len > cap)
        return n;
    memcpy(out + n, tok, len);
    return n + len;
}

#define PICK(arr) (arr)[rng_below(sizeof(arr) / sizeof((arr)[0]))]

/* Token soup: anything goes, mostly garbage lines. */
static size_t diff_soup(char *out, size_t cap)
{
    size_t n = 0, count = rng_below(60);
    for (size_t t = 0; t < count; t++)
        n = diff_put(out, n, cap, PICK(diff_tokens));
    return n;
}

/* Line-shaped: [name] [":" [" "]] value-tokens line-end, with blank lines,
 * so that plenty of events, retries and comments come out. */
static size_t diff_lines(char *out, size_t cap)
{
    size_t n = 0, lines = rng_below(16);
    for (size_t l = 0; l < lines; l++) {
        if (rng_below(4) == 0) {
            n = diff_put(out, n, cap, PICK(diff_ends)); /* blank: dispatch */
            continue;
        }
        n = diff_put(out, n, cap, PICK(diff_names));
        if (rng_below(5))
            n = diff_put(out, n, cap, ":");
        if (rng_below(2))
            n = diff_put(out, n, cap, " ");
        int digits_only = rng_below(3) == 0; /* so that retry: gets numbers */
        for (size_t v = rng_below(4); v > 0; v--)
            n = diff_put(out, n, cap, digits_only ? "1" : PICK(diff_tokens));
        n = diff_put(out, n, cap, PICK(diff_ends));
    }
    return n;
}

static void test_differential_random_streams(void)
{
    char stream[512];
    size_t total_events = 0, total_retries = 0, total_comments = 0, mismatches = 0;
    rng_state = 3;
    for (int iter = 0; iter < 6000; iter++) {
        size_t n = rng_below(3) ? diff_lines(stream + 3, sizeof stream - 4)
                                : diff_soup(stream + 3, sizeof stream - 4);
        char *start = stream + 3;
        if (rng_below(4) == 0) { /* a quarter start with a BOM */
            start = stream;
            memcpy(stream, "\xEF\xBB\xBF", 3);
            n += 3;
        }
        if (rng_below(2)) /* half end with one more LF */
            start[n++] = '\n';

        rec_t want = {0}, got = {0};
        model_parse(start, n, &want);

        sse_parser_t p;
        sse_parser_init(&p, &rec_callbacks, &got, 0);
        int rc = 0;
        for (size_t off = 0; off < n && rc == 0;) {
            size_t k = 1 + rng_below(9);
            if (k > n - off)
                k = n - off;
            rc = sse_parser_feed(&p, start + off, k);
            off += k;
        }
        sse_parser_dispose(&p);

        ASSERT_EQ(rc, 0);
        if (strcmp(rec_text(&got), rec_text(&want)) != 0 && mismatches++ < 3) {
            rec_t in = {0};
            rec_quoted(&in, start, n);
            TEST_FAIL_AT("stream #%d %s\n    got  %s\n    want %s", iter, in.s, rec_text(&got),
                         rec_text(&want));
            rec_free(&in);
        }
        total_events += want.events;
        total_retries += want.s && strstr(want.s, "R(");
        total_comments += want.s && strstr(want.s, "C(");
        rec_free(&want);
        rec_free(&got);
    }
    ASSERT_UEQ(mismatches, 0);
    /* the streams must exercise every callback, not just survive */
    ASSERT(total_events > 3000);
    ASSERT(total_retries > 300);
    ASSERT(total_comments > 300);
    if (getenv("SSE_TEST_VERBOSE"))
        fprintf(stderr, "  differential: %zu events, %zu streams with retry, %zu with comments\n",
                total_events, total_retries, total_comments);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    /* encoder */
    TEST_RUN(test_encode_field_order);
    TEST_RUN(test_encode_data_lf);
    TEST_RUN(test_encode_data_cr);
    TEST_RUN(test_encode_data_crlf);
    TEST_RUN(test_encode_data_mixed);
    TEST_RUN(test_encode_data_trailing_newline);
    TEST_RUN(test_encode_data_empty);
    TEST_RUN(test_encode_data_null);
    TEST_RUN(test_encode_leading_spaces);
    TEST_RUN(test_encode_data_nul_kept);
    TEST_RUN(test_encode_id_event_scrubbed);
    TEST_RUN(test_encode_retry);
    TEST_RUN(test_encode_comment);
    TEST_RUN(test_encode_size_matches_written);
    /* parser: line ends */
    TEST_RUN(test_parse_lf);
    TEST_RUN(test_parse_cr);
    TEST_RUN(test_parse_crlf);
    TEST_RUN(test_parse_mixed_line_ends);
    TEST_RUN(test_parse_crlf_split_across_feeds);
    TEST_RUN(test_parse_cr_then_other_byte_next_feed);
    TEST_RUN(test_parse_empty_feed);
    /* parser: BOM */
    TEST_RUN(test_parse_bom_skipped);
    TEST_RUN(test_parse_bom_split_over_feeds);
    TEST_RUN(test_parse_bom_not_at_start_is_data);
    TEST_RUN(test_parse_second_bom_kept);
    TEST_RUN(test_parse_partial_bom_kept);
    /* parser: lines and fields */
    TEST_RUN(test_parse_comments);
    TEST_RUN(test_parse_field_without_colon);
    TEST_RUN(test_parse_one_space_stripped);
    TEST_RUN(test_parse_colon_in_value);
    TEST_RUN(test_parse_data_joined);
    TEST_RUN(test_parse_data_nul_kept);
    TEST_RUN(test_parse_blank_line_without_data);
    TEST_RUN(test_parse_default_type);
    TEST_RUN(test_parse_type_reset_after_dispatch);
    TEST_RUN(test_parse_id_with_nul_ignored);
    TEST_RUN(test_parse_id_persists_and_resets);
    TEST_RUN(test_parse_retry_valid);
    TEST_RUN(test_parse_retry_invalid);
    TEST_RUN(test_parse_unknown_fields);
    TEST_RUN(test_parse_unterminated_event);
    /* parser: limits and failures */
    TEST_RUN(test_parse_max_bytes_line);
    TEST_RUN(test_parse_max_bytes_data);
    TEST_RUN(test_parse_failure_is_sticky);
    TEST_RUN(test_parse_default_max_bytes);
    TEST_RUN(test_parse_long_lines_grow);
    TEST_RUN(test_parse_allocation_failure);
    TEST_RUN(test_parse_callbacks_optional);
    /* both */
    TEST_RUN(test_roundtrip_encode_parse);
    TEST_RUN(test_differential_random_streams);
    TEST_MAIN_END();
}
