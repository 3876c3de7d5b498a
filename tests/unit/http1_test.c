/*
 * http1_test.c - unit tests for src/http1.c: the request-head parser, header
 * helpers, Content-Length, the chunked decoder and the form parser.
 *
 * Every input is copied into a heap buffer of exactly its length (no NUL
 * after it), so AddressSanitizer reports any read past buf + len; the head
 * parser, the decoder and the form parser are also run on inputs that end
 * right at a PROT_NONE guard page.
 */
#define HTTP1_COUNT_SCAN /* http1__scanned counts the bytes resume examines */
#include "../../src/http1.c"

#include <sys/mman.h>

#include "test.h"

/* ---- helpers ------------------------------------------------------------- */

/* Exact-size copies, freed together by release() at the end of each test
 * (LeakSanitizer notices a test that forgets). */
static void *allocs[4096];
static size_t nallocs;

/* An uninitialised buffer of exactly n bytes (a form parser's scratch). */
static char *blank(size_t n)
{
    char *b = malloc(n ? n : 1);
    if (!b || nallocs == sizeof allocs / sizeof allocs[0]) {
        fprintf(stderr, "blank: out of memory or slots\n");
        abort();
    }
    allocs[nallocs++] = b;
    return b;
}

static char *exact(const void *s, size_t n)
{
    char *b = blank(n);
    if (n)
        memcpy(b, s, n);
    return b;
}

static void release(void)
{
    while (nallocs)
        free(allocs[--nallocs]);
}

/* Parses a NUL-terminated literal from an exact-size copy; the copy lives
 * until release(), so req's pointers may be checked. */
static ssize_t parse(const char *s, http1_request_t *req)
{
    size_t n = strlen(s);
    return http1_parse_request(exact(s, n), n, req);
}

#define HDR_IS(req, i, n, v)                                                   \
    do {                                                                       \
        ASSERT((req).num_headers > (i));                                       \
        ASSERT_MEM_STR((req).headers[i].name, (req).headers[i].name_len, n);   \
        ASSERT_MEM_STR((req).headers[i].value, (req).headers[i].value_len, v); \
    } while (0)

/* The fields of two parses of the same bytes, at different addresses. */
static int same_request(const char *a, const http1_request_t *x, const char *b, const http1_request_t *y)
{
    if (x->method - a != y->method - b || x->method_len != y->method_len || x->target - a != y->target - b ||
        x->target_len != y->target_len || x->minor_version != y->minor_version ||
        x->num_headers != y->num_headers)
        return 0;
    for (size_t i = 0; i < x->num_headers; i++) {
        const http1_header_t *f = &x->headers[i], *g = &y->headers[i];
        if (f->name - a != g->name - b || f->name_len != g->name_len || f->value - a != g->value - b ||
            f->value_len != g->value_len)
            return 0;
    }
    return 1;
}

/* Feeds s[0..n) to http1_parse_request_resume in pieces: cut[] lists the
 * prefix lengths of the successive calls (increasing, the last is n). Each
 * call gets a fresh exact-size copy (so the buffer moves every time) and
 * must give what the stateless parser gives on that prefix. */
static void check_resume_cuts(const char *s, size_t n, const size_t *cut, size_t ncuts, const char *how,
                              int line)
{
    static http1_request_t want_req, got_req;
    http1_head_scan_t scan = {0};
    for (size_t c = 0; c < ncuts; c++) {
        size_t k = cut[c];
        char *b = exact(s, k);
        ssize_t want = http1_parse_request(b, k, &want_req);
        ssize_t got = http1_parse_request_resume(&scan, b, k, &got_req);
        if (got != want || (want >= 0 && !same_request(b, &want_req, b, &got_req))) {
            TEST_FAIL_AT("line %d, %s: call %zu (prefix %zu of %zu): resume gives %zd, stateless %zd", line,
                         how, c, k, n, got, want);
            break;
        }
    }
    release();
}

/* Every way of splitting that is cheap to enumerate for a short input: one
 * byte at a time, every split into two pieces, pieces of 2..9 bytes, and
 * random pieces. */
static void check_splits(const char *s, size_t n, int line)
{
    size_t *cut = malloc((n + 1) * sizeof *cut);
    for (size_t k = 0; k <= n; k++)
        cut[k] = k;
    check_resume_cuts(s, n, cut, n + 1, "byte by byte", line);
    for (size_t k = 0; k <= n; k++) {
        size_t two[2] = {k, n};
        check_resume_cuts(s, n, two, 2, "two pieces", line);
    }
    for (size_t step = 2; step < 10; step++) {
        size_t m = 0;
        for (size_t k = step; k < n; k += step)
            cut[m++] = k;
        cut[m++] = n;
        check_resume_cuts(s, n, cut, m, "fixed pieces", line);
    }
    unsigned seed = (unsigned)n * 2654435761u;
    for (int round = 0; round < 20; round++) {
        size_t m = 0;
        for (size_t k = 0; k < n;) {
            seed = seed * 1103515245u + 12345u;
            k += 1 + (seed >> 16) % 13;
            cut[m++] = k < n ? k : n;
        }
        check_resume_cuts(s, n, cut, m, "random pieces", line);
    }
    free(cut);
}

/* Every proper prefix of a valid head is INCOMPLETE, the whole gives its
 * length; and a longer buffer (the body follows) gives the same length.
 * The resumable parser agrees over every split. */
static void check_prefixes(const char *s, size_t n)
{
    check_splits(s, n, __LINE__);
    http1_request_t req;
    for (size_t k = 0; k < n; k++) {
        ssize_t r = http1_parse_request(exact(s, k), k, &req);
        if (r != HTTP1_INCOMPLETE)
            TEST_FAIL_AT("prefix %zu of %zu: got %zd, want INCOMPLETE", k, n, r);
    }
    ASSERT_EQ(http1_parse_request(exact(s, n), n, &req), n);
    char *more = malloc(n + 5);
    memcpy(more, s, n);
    memcpy(more + n, "body!", 5);
    ASSERT_EQ(http1_parse_request(more, n + 5, &req), n);
    free(more);
    release();
}

/* A malformed head: the whole gives `want`, and every prefix gives
 * INCOMPLETE until the error shows up, then `want` from there on. */
static void check_error_n(const char *s, size_t n, ssize_t want, int line)
{
    check_splits(s, n, line);
    http1_request_t req;
    ssize_t got = http1_parse_request(exact(s, n), n, &req);
    if (got != want)
        TEST_FAIL_AT("line %d: \"%.*s\": got %zd, want %zd", line, (int)n, s, got, want);
    int seen_error = 0;
    for (size_t k = 0; k <= n; k++) {
        ssize_t r = http1_parse_request(exact(s, k), k, &req);
        if (r == want)
            seen_error = 1;
        else if (r != HTTP1_INCOMPLETE || seen_error)
            TEST_FAIL_AT("line %d: prefix %zu of %zu: got %zd", line, k, n, r);
    }
    release();
}
#define CHECK_ERROR(s, want) check_error_n((s), sizeof(s) - 1, (want), __LINE__)
#define CHECK_MALFORMED(s) CHECK_ERROR(s, HTTP1_MALFORMED)

/* ---- request head -------------------------------------------------------- */

static void test_simple_get(void)
{
    const char *s = "GET /.well-known/mercure?topic=x HTTP/1.1\r\nHost: example.com\r\n\r\n";
    http1_request_t req;
    ASSERT_EQ(parse(s, &req), strlen(s));
    ASSERT_MEM_STR(req.method, req.method_len, "GET");
    ASSERT_MEM_STR(req.target, req.target_len, "/.well-known/mercure?topic=x");
    ASSERT_EQ(req.minor_version, 1);
    ASSERT_UEQ(req.num_headers, 1);
    HDR_IS(req, 0, "Host", "example.com");

    /* No headers at all. */
    ASSERT_EQ(parse("GET / HTTP/1.1\r\n\r\n", &req), 18);
    ASSERT_UEQ(req.num_headers, 0);
    ASSERT_MEM_STR(req.target, req.target_len, "/");
    release();
}

static void test_mercure_requests(void)
{
    const char *sub =
        "GET /.well-known/mercure?topic=https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D HTTP/1.1\r\n"
        "Host: localhost:8000\r\n"
        "Accept: text/event-stream\r\n"
        "Last-Event-ID: urn:uuid:5e94c686-2c0b-4f9b-958c-92ccc3bbb4eb\r\n"
        "Cache-Control: no-cache\r\n"
        "\r\n";
    http1_request_t req;
    ASSERT_EQ(parse(sub, &req), strlen(sub));
    ASSERT_UEQ(req.num_headers, 4);
    HDR_IS(req, 2, "Last-Event-ID", "urn:uuid:5e94c686-2c0b-4f9b-958c-92ccc3bbb4eb");

    const char *pub = "POST /.well-known/mercure HTTP/1.1\r\n"
                      "Host: localhost\r\n"
                      "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc\r\n"
                      "Content-Type: application/x-www-form-urlencoded\r\n"
                      "Content-Length: 38\r\n"
                      "\r\n"
                      "topic=https%3A%2F%2Fexample.com&data=x";
    ssize_t n = parse(pub, &req);
    ASSERT_EQ(n, strlen(pub) - 38);
    ASSERT_MEM_STR(req.method, req.method_len, "POST");
    const http1_header_t *cl = http1_find_header(&req, "content-length");
    ASSERT(cl != NULL);
    uint64_t len = 0;
    ASSERT_EQ(http1_parse_content_length(cl->value, cl->value_len, &len), 0);
    ASSERT_UEQ(len, 38);
    release();
}

static void test_ows_trimmed(void)
{
    const char *s = "GET / HTTP/1.1\r\n"
                    "A:plain\r\n"
                    "B:   spaces around   \r\n"
                    "C:\t\ttabs\t \r\n"
                    "D: inner  \t space kept\r\n"
                    "E:\r\n"
                    "F:    \t  \r\n"
                    "\r\n";
    http1_request_t req;
    ASSERT_EQ(parse(s, &req), strlen(s));
    ASSERT_UEQ(req.num_headers, 6);
    HDR_IS(req, 0, "A", "plain");
    HDR_IS(req, 1, "B", "spaces around");
    HDR_IS(req, 2, "C", "tabs");
    HDR_IS(req, 3, "D", "inner  \t space kept");
    HDR_IS(req, 4, "E", "");
    HDR_IS(req, 5, "F", "");
    /* Even empty values point inside the buffer. */
    for (size_t i = 0; i < req.num_headers; i++)
        ASSERT(req.headers[i].value != NULL);
    release();
}

static void test_versions(void)
{
    http1_request_t req;
    ASSERT_EQ(parse("GET / HTTP/1.0\r\n\r\n", &req), 18);
    ASSERT_EQ(req.minor_version, 0);
    ASSERT_EQ(parse("GET / HTTP/1.1\r\n\r\n", &req), 18);
    ASSERT_EQ(req.minor_version, 1);
    /* Higher minors are treated as the highest we implement. */
    ASSERT_EQ(parse("GET / HTTP/1.2\r\n\r\n", &req), 18);
    ASSERT_EQ(req.minor_version, 1);
    ASSERT_EQ(parse("GET / HTTP/1.9\r\n\r\n", &req), 18);
    ASSERT_EQ(req.minor_version, 1);
    release();
}

static void test_bare_lf(void)
{
    const char *s = "GET /x HTTP/1.0\nHost: a\nX-Y:  z \n\n";
    http1_request_t req;
    ASSERT_EQ(parse(s, &req), strlen(s));
    ASSERT_EQ(req.minor_version, 0);
    ASSERT_UEQ(req.num_headers, 2);
    HDR_IS(req, 0, "Host", "a");
    HDR_IS(req, 1, "X-Y", "z");
    /* Mixed CRLF and LF. */
    const char *m = "GET / HTTP/1.1\r\nA: 1\nB: 2\r\n\n";
    ASSERT_EQ(parse(m, &req), strlen(m));
    HDR_IS(req, 1, "B", "2");
    release();
}

static void test_leading_empty_line(void)
{
    http1_request_t req;
    ASSERT_EQ(parse("\r\nGET / HTTP/1.1\r\n\r\n", &req), 20);
    ASSERT_MEM_STR(req.method, req.method_len, "GET");
    ASSERT_EQ(parse("\nGET / HTTP/1.1\n\n", &req), 17);
    /* Only one is skipped. */
    CHECK_MALFORMED("\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    CHECK_MALFORMED("\rGET / HTTP/1.1\r\n\r\n");
    release();
}

static void test_incomplete_every_prefix(void)
{
    static const char *const heads[] = {
        "GET / HTTP/1.1\r\n\r\n",
        ("GET /.well-known/mercure?topic=https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D HTTP/1.1\r\n"
         "Host: example.com\r\nLast-Event-ID: urn:uuid:1\r\nAccept: text/event-stream\r\n\r\n"),
        ("POST /.well-known/mercure HTTP/1.1\r\nHost: h\r\n"
         "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\r\n"),
        "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "\r\nGET /x HTTP/1.0\nA:b\nC:  \t\n\n",
        "OPTIONS * HTTP/1.1\r\nX:\xc3\xa9t\xc3\xa9\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++)
        check_prefixes(heads[i], strlen(heads[i]));
}

static void test_malformed(void)
{
    /* Bare CR, in every position a line end can be. */
    CHECK_MALFORMED("GET / HTTP/1.1\rHost: a\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.1\r\nHost: a\r\n\rX");
    /* Whitespace before the colon. */
    CHECK_MALFORMED("GET / HTTP/1.1\r\nHost : a\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.1\r\nContent-Length\t: 5\r\n\r\n");
    /* obs-fold, and whitespace before the first field. */
    CHECK_MALFORMED("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.1\r\n Host: a\r\n\r\n");
    /* NUL, CTLs and DEL in a value. */
    check_error_n("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", 27, HTTP1_MALFORMED, __LINE__);
    CHECK_MALFORMED("GET / HTTP/1.1\r\nA: b\x01\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.1\r\nA: \x1b[31m\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.1\r\nA: \x0b\r\n\r\n");
    /* Method. */
    CHECK_MALFORMED(" / HTTP/1.1\r\n\r\n");
    CHECK_MALFORMED("G(T / HTTP/1.1\r\n\r\n");
    CHECK_MALFORMED("GET\t/ HTTP/1.1\r\n\r\n");
    CHECK_MALFORMED("\x80GET / HTTP/1.1\r\n\r\n");
    /* Versions. */
    CHECK_MALFORMED("GET / HTTP/2.0\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.x\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.10\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.1 \r\n\r\n");
    CHECK_MALFORMED("GET / http/1.1\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/0.9\r\n\r\n");
    CHECK_MALFORMED("GET /\r\n\r\n");
    /* Target and separators. */
    CHECK_MALFORMED("GET  HTTP/1.1\r\n\r\n");
    CHECK_MALFORMED("GET  / HTTP/1.1\r\n\r\n");
    CHECK_MALFORMED("GET /  HTTP/1.1\r\n\r\n");
    CHECK_MALFORMED("GET /a\x01 HTTP/1.1\r\n\r\n");
    CHECK_MALFORMED("GET /a\x7f HTTP/1.1\r\n\r\n");
    CHECK_MALFORMED("GET /a\tb HTTP/1.1\r\n\r\n");
    check_error_n("GET /a\0 HTTP/1.1\r\n\r\n", 21, HTTP1_MALFORMED, __LINE__);
    /* Field names. */
    CHECK_MALFORMED("GET / HTTP/1.1\r\n: v\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.1\r\nA(b: v\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.1\r\nA/b: v\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.1\r\nA@b: v\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.1\r\n\"A\": v\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.1\r\n\xc3\xa9: v\r\n\r\n");
    CHECK_MALFORMED("GET / HTTP/1.1\r\nNoColon\r\n\r\n");
    check_error_n("GET / HTTP/1.1\r\nA\0: v\r\n\r\n", 25, HTTP1_MALFORMED, __LINE__);
}

static void test_too_many_headers(void)
{
    char buf[64 * 16 + 64];
    size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < HTTP1_MAX_HEADERS; i++)
        n += (size_t)sprintf(buf + n, "H%d: %d\r\n", i, i);
    size_t before_end = n;
    n += (size_t)sprintf(buf + n, "\r\n");

    http1_request_t req;
    ASSERT_EQ(http1_parse_request(exact(buf, n), n, &req), n);
    ASSERT_UEQ(req.num_headers, HTTP1_MAX_HEADERS);
    HDR_IS(req, 63, "H63", "63");

    /* One more field line: 431, decided as soon as it starts. */
    n = before_end + (size_t)sprintf(buf + before_end, "X: y\r\n\r\n");
    ASSERT_EQ(http1_parse_request(exact(buf, n), n, &req), HTTP1_TOO_MANY_HEADERS);
    check_error_n(buf, n, HTTP1_TOO_MANY_HEADERS, __LINE__);
    release();
}

static void test_find_header(void)
{
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\nACCEPT: text/event-stream\r\n"
                    "last-event-id: 42\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n";
    http1_request_t req;
    ASSERT_EQ(parse(s, &req), strlen(s));
    const http1_header_t *h = http1_find_header(&req, "accept");
    ASSERT(h && h == &req.headers[1]);
    h = http1_find_header(&req, "Last-Event-ID");
    ASSERT(h != NULL);
    if (h)
        ASSERT_MEM_STR(h->value, h->value_len, "42");
    h = http1_find_header(&req, "X-DUP");
    ASSERT(h != NULL);
    if (h)
        ASSERT_MEM_STR(h->value, h->value_len, "1"); /* the first one */
    ASSERT(http1_find_header(&req, "Hos") == NULL);
    ASSERT(http1_find_header(&req, "Hostt") == NULL);
    ASSERT(http1_find_header(&req, "") == NULL);
    release();
}

static void test_token_eq(void)
{
    ASSERT(http1_token_eq("Keep-Alive", 10, "keep-alive"));
    ASSERT(http1_token_eq("", 0, ""));
    ASSERT(!http1_token_eq("keep", 4, "keep-alive"));
    ASSERT(!http1_token_eq("keep-alive", 10, "keep"));
    ASSERT(!http1_token_eq("a\0", 2, "a"));
    /* Only ASCII letters fold: '@' (0x40) is not '`' (0x60). */
    ASSERT(!http1_token_eq("@", 1, "`"));
    ASSERT(!http1_token_eq("[", 1, "{"));
}

static void test_value_has_token(void)
{
    const char *v = "keep-alive, Upgrade";
    ASSERT(http1_value_has_token(v, strlen(v), "upgrade"));
    ASSERT(http1_value_has_token(v, strlen(v), "Keep-Alive"));
    ASSERT(!http1_value_has_token(v, strlen(v), "close"));
    ASSERT(!http1_value_has_token(v, strlen(v), "keep"));
    ASSERT(!http1_value_has_token(v, strlen(v), "alive, upgrade"));
    const char *w = " ,, \tclose\t ,";
    ASSERT(http1_value_has_token(w, strlen(w), "close"));
    ASSERT(!http1_value_has_token(w, strlen(w), ""));
    ASSERT(!http1_value_has_token("", 0, "close"));
    ASSERT(http1_value_has_token("close", 5, "CLOSE"));
    ASSERT(!http1_value_has_token("chunked;x=1", 11, "chunked"));
    /* Exact-size buffer: no read past the end when the last element is
     * checked. */
    char *b = exact("gzip,chunked", 12);
    ASSERT(http1_value_has_token(b, 12, "chunked"));
    release();
}

static void test_framing(void)
{
    http1_request_t req;
    const char *ok[] = {
        "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 00012\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\ntransfer-encoding:  CHUNKED \r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip,chunked , \r\n\r\n",
        "POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ssize_t r = parse(ok[i], &req);
        if (r != (ssize_t)strlen(ok[i]))
            TEST_FAIL_AT("ok[%zu]: got %zd", i, r);
    }
    /* Two Content-Lengths, even equal ones. */
    CHECK_MALFORMED("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n");
    CHECK_MALFORMED("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
    /* Invalid Content-Length values. */
    CHECK_MALFORMED("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n");
    CHECK_MALFORMED("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n");
    CHECK_MALFORMED("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n");
    CHECK_MALFORMED("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n");
    CHECK_MALFORMED("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n");
    CHECK_MALFORMED("POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n");
    /* Both framings. */
    CHECK_MALFORMED("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
    CHECK_MALFORMED("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n");
    /* Transfer-Encoding that does not end in chunked, twice, or in 1.0. */
    CHECK_MALFORMED("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
    CHECK_MALFORMED("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n");
    CHECK_MALFORMED("POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n");
    CHECK_MALFORMED("POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n");
    CHECK_MALFORMED("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n");
    CHECK_MALFORMED("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
    release();
}

/* The head parser on inputs that end exactly where a PROT_NONE page starts:
 * a read of buf[len] is a SIGSEGV, sanitizers or not. */
static char *guard_base; /* two pages: RW then PROT_NONE */
static size_t guard_page;

static char *at_guard(const char *s, size_t n)
{
    char *p = guard_base + guard_page - n;
    memcpy(p, s, n);
    return p;
}

static int form_count_cb(void *ctx, const char *name, size_t name_len, const char *value, size_t value_len)
{
    (*(int *)ctx)++;
    return 0;
}

static void test_guard_page(void)
{
    guard_page = (size_t)sysconf(_SC_PAGESIZE);
    void *map = mmap(NULL, 2 * guard_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT(map != MAP_FAILED);
    if (map == MAP_FAILED)
        return;
    guard_base = map;
    ASSERT_EQ(mprotect(guard_base + guard_page, guard_page, PROT_NONE), 0);

    static const char *const heads[] = {
        ("POST /.well-known/mercure HTTP/1.1\r\nHost: localhost\r\n"
         "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\n"),
        "GET / HTTP/1.0\nA:  b  \n\n", "GET / HTTP/1.1\r\nA: b\r\n \r\n\r\n", /* malformed late */
    };
    http1_request_t req;
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        size_t n = strlen(heads[i]);
        http1_head_scan_t scan = {0};
        for (size_t k = 0; k <= n; k++) {
            ssize_t r = http1_parse_request(at_guard(heads[i], k), k, &req);
            if (k < n)
                ASSERT(r == HTTP1_INCOMPLETE || (i == 2 && r == HTTP1_MALFORMED));
            else
                ASSERT_EQ(r, i == 2 ? HTTP1_MALFORMED : (ssize_t)n);
            /* The buffer moves each call (the bytes end at the guard). */
            ASSERT_EQ(http1_parse_request_resume(&scan, at_guard(heads[i], k), k, &req), r);
        }
    }

    /* Content-Length, the helpers, the decoder and the form parser too. */
    uint64_t v;
    ASSERT_EQ(http1_parse_content_length(at_guard("123", 3), 3, &v), 0);
    ASSERT(http1_value_has_token(at_guard("a, b ,", 6), 6, "b"));
    const char *body = "5;x=\"y\"\r\nhello\r\n0\r\nT: v\r\n\r\n";
    size_t n = strlen(body);
    for (size_t k = 0; k <= n; k++) {
        http1_chunked_decoder_t d = {0};
        size_t m = k;
        ssize_t r = http1_chunked_decode(&d, at_guard(body, k), &m);
        ASSERT_EQ(r, k == n ? 0 : HTTP1_INCOMPLETE);
    }
    const char *forms[] = {"a=%41", "a=%4", "a=%", "a+b=c+", "a&b"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        size_t fl = strlen(forms[i]);
        char scratch[16];
        int calls = 0;
        int r = http1_parse_form(at_guard(forms[i], fl), fl, scratch, form_count_cb, &calls);
        ASSERT_EQ(r, (i == 1 || i == 2) ? -1 : 0);
        ASSERT_EQ(http1_pct_decode(at_guard(forms[i], fl), fl, scratch, 0),
                  (i == 1 || i == 2) ? -1 : (ssize_t)fl - 2 * (i == 0));
    }
    munmap(map, 2 * guard_page);
}

/* ---- the resumable head parser ------------------------------------------- */

/* A malformed request line is reported on the call that brings its bad
 * byte, long before the head could be complete, and then sticks. */
static void test_resume_early_error(void)
{
    static const char s[] = "GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n";
    http1_request_t req;
    http1_head_scan_t scan = {0};
    ASSERT_EQ(http1_parse_request_resume(&scan, exact(s, 6), 6, &req), HTTP1_INCOMPLETE);
    ASSERT_EQ(http1_parse_request_resume(&scan, exact(s, 7), 7, &req), HTTP1_MALFORMED);
    ASSERT_EQ(http1_parse_request_resume(&scan, exact(s, sizeof s - 1), sizeof s - 1, &req), HTTP1_MALFORMED);

    /* Field line 65 is refused when its first byte arrives. */
    char buf[64 * 16 + 64];
    size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < HTTP1_MAX_HEADERS; i++)
        n += (size_t)sprintf(buf + n, "H%d: %d\r\n", i, i);
    scan = (http1_head_scan_t){0};
    ASSERT_EQ(http1_parse_request_resume(&scan, exact(buf, n), n, &req), HTTP1_INCOMPLETE);
    buf[n] = 'X';
    ASSERT_EQ(http1_parse_request_resume(&scan, exact(buf, n + 1), n + 1, &req), HTTP1_TOO_MANY_HEADERS);
    release();
}

/* Two pipelined requests: zero the scan after the first, go on at buf + n. */
static void test_resume_pipelined(void)
{
    static const char s[] = "GET /a HTTP/1.1\r\nA: 1\r\n\r\nGET /b HTTP/1.1\r\nB: 2\r\n\r\n";
    const size_t first = 25, total = sizeof s - 1;
    http1_request_t req;
    http1_head_scan_t scan = {0};
    size_t off = 0;
    int done = 0;
    for (size_t k = 1; k <= total; k++) {
        char *b = exact(s, k);
        ssize_t r = http1_parse_request_resume(&scan, b + off, k - off, &req);
        if (r == HTTP1_INCOMPLETE)
            continue;
        ASSERT(r > 0);
        if (r <= 0)
            break;
        if (done == 0) {
            ASSERT_EQ(r, first);
            ASSERT_UEQ(k, first); /* found on the call that brought the last LF */
            ASSERT_MEM_STR(req.target, req.target_len, "/a");
        } else {
            ASSERT_EQ(r, total - first);
            ASSERT_MEM_STR(req.target, req.target_len, "/b");
            HDR_IS(req, 0, "B", "2");
        }
        done++;
        off += (size_t)r;
        scan = (http1_head_scan_t){0};
    }
    ASSERT_EQ(done, 2);
    release();
}

/* A shorter buffer than last time is outside the contract, but restarting
 * keeps the answer right. */
static void test_resume_shorter_restarts(void)
{
    static const char a[] = "GET /a HTTP/1.1\r\nX: y", b[] = "GET / HTTP/1.1\r\n\r\n";
    http1_request_t req;
    http1_head_scan_t scan = {0};
    ASSERT_EQ(http1_parse_request_resume(&scan, exact(a, sizeof a - 1), sizeof a - 1, &req),
              HTTP1_INCOMPLETE);
    ASSERT_EQ(http1_parse_request_resume(&scan, exact(b, sizeof b - 1), sizeof b - 1, &req), sizeof b - 1);
    release();
}

/* The issue's attack: a 256 KiB head in 128-byte pieces. The stateless
 * parser re-run on every read examines sum(128 k) = ~268 M bytes; resume
 * examines each byte once, plus the whole head once at the end. Counted,
 * not timed. */
static void test_resume_linear(void)
{
    const size_t target = 256 * 1024, piece = 128;
    char *s = malloc(target + 256);
    size_t n = (size_t)sprintf(s, "GET /.well-known/mercure HTTP/1.1\r\n");
    for (int h = 0; h < HTTP1_MAX_HEADERS; h++) {
        n += (size_t)sprintf(s + n, "X-Pad-%02d: ", h);
        size_t pad = (target - n) / (size_t)(HTTP1_MAX_HEADERS - h) - 2;
        memset(s + n, 'a' + h % 26, pad);
        n += pad;
        n += (size_t)sprintf(s + n, "\r\n");
    }
    n += (size_t)sprintf(s + n, "\r\n");
    ASSERT(n >= target - 64 && n <= target + 256);

    http1_request_t req;
    http1_head_scan_t scan = {0};
    http1__scanned = 0;
    ssize_t r = HTTP1_INCOMPLETE;
    size_t calls = 0;
    for (size_t k = piece; r == HTTP1_INCOMPLETE; k += piece) {
        if (k > n)
            k = n;
        r = http1_parse_request_resume(&scan, s, k, &req);
        calls++;
    }
    ASSERT_EQ(r, n);
    ASSERT_UEQ(req.num_headers, HTTP1_MAX_HEADERS);
    ASSERT_UEQ(http1__scanned, 2 * n); /* once by the automaton, once by the final parse */
    uint64_t stateless = 0;
    for (size_t k = piece; k < n + piece; k += piece)
        stateless += k < n ? k : n;
    printf("# %zu-byte head in %zu-byte pieces (%zu calls): resume examines %ju bytes, "
           "re-parsing from byte 0 would examine %ju\n",
           n, piece, calls, (uintmax_t)http1__scanned, (uintmax_t)stateless);
    free(s);
}

/* ---- Content-Length ------------------------------------------------------ */

static int cl(const char *s, uint64_t *out)
{
    size_t n = strlen(s);
    int r = http1_parse_content_length(exact(s, n), n, out);
    release();
    return r;
}

static void test_content_length(void)
{
    uint64_t v = 7;
    ASSERT_EQ(cl("0", &v), 0);
    ASSERT_UEQ(v, 0);
    ASSERT_EQ(cl("42", &v), 0);
    ASSERT_UEQ(v, 42);
    ASSERT_EQ(cl("00012", &v), 0);
    ASSERT_UEQ(v, 12);
    ASSERT_EQ(cl("18446744073709551615", &v), 0);
    ASSERT(v == UINT64_MAX);
    v = 7;
    const char *bad[] = {"",   "+1",  "-1",  " 1",      "1 ", "18446744073709551616", "99999999999999999999",
                         "1a", "0x1", "1,1", "\xd9\xa1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (cl(bad[i], &v) != -1)
            TEST_FAIL_AT("\"%s\" accepted", bad[i]);
    }
    ASSERT_UEQ(v, 7); /* untouched on failure */
    ASSERT_EQ(http1_parse_content_length(NULL, 0, &v), -1);
}

/* ---- chunked ------------------------------------------------------------- */

typedef struct chunk_result {
    ssize_t ret;
    char payload[1024];
    size_t payload_len;
    char left[1024]; /* bytes after the body: the returned tail plus any */
    size_t left_len; /* input that was never fed */
} chunk_result_t;

/* Feeds in[0..n) as pieces cut at cuts[0..ncuts) (ascending), each piece in
 * an exact-size buffer, the way a server feeds each read. */
static void chunk_feed(const char *in, size_t n, const size_t *cuts, size_t ncuts, chunk_result_t *res)
{
    http1_chunked_decoder_t d = {0};
    memset(res, 0, sizeof *res);
    res->ret = HTTP1_INCOMPLETE;
    size_t start = 0;
    for (size_t i = 0; i <= ncuts && res->ret == HTTP1_INCOMPLETE; i++) {
        size_t stop = i < ncuts ? cuts[i] : n;
        size_t m = stop - start;
        char *piece = exact(in + start, m);
        res->ret = http1_chunked_decode(&d, piece, &m);
        if (m > stop - start)
            TEST_FAIL_AT("produced more than fed");
        memcpy(res->payload + res->payload_len, piece, m);
        res->payload_len += m;
        if (res->ret >= 0) {
            memcpy(res->left, piece + m, (size_t)res->ret);
            res->left_len = (size_t)res->ret;
            memcpy(res->left + res->left_len, in + stop, n - stop);
            res->left_len += n - stop;
        }
        start = stop;
    }
    release();
}

static ssize_t chunk_whole(const char *in, size_t n, chunk_result_t *res)
{
    chunk_feed(in, n, NULL, 0, res);
    return res->ret;
}

#define CHUNK_OK(in, want_payload, want_left)                                      \
    do {                                                                           \
        chunk_result_t cr_;                                                        \
        ASSERT_EQ(chunk_whole((in), sizeof(in) - 1, &cr_), sizeof(want_left) - 1); \
        ASSERT_MEM_STR(cr_.payload, cr_.payload_len, want_payload);                \
        ASSERT_MEM_STR(cr_.left, cr_.left_len, want_left);                         \
    } while (0)

#define CHUNK_BAD(in)                                                        \
    do {                                                                     \
        chunk_result_t cr_;                                                  \
        ASSERT_EQ(chunk_whole((in), sizeof(in) - 1, &cr_), HTTP1_MALFORMED); \
    } while (0)

static void test_chunked_simple(void)
{
    CHUNK_OK("5\r\nhello\r\n0\r\n\r\n", "hello", "");
    CHUNK_OK("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", "");
    CHUNK_OK("0\r\n\r\n", "", "");
    CHUNK_OK("000\r\n\r\n", "", "");
    CHUNK_OK("A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij", "");
    {
        static const char nul[] = "0005\r\nhe\0lo\r\n0\r\n\r\n";
        chunk_result_t r;
        ASSERT_EQ(chunk_whole(nul, sizeof nul - 1, &r), 0);
        ASSERT(r.payload_len == 5 && memcmp(r.payload, "he\0lo", 5) == 0);
    }

    /* Payload that looks like framing is just payload. */
    CHUNK_OK("6\r\n0\r\n\r\nX\r\n0\r\n\r\n", "0\r\n\r\nX", "");

    chunk_result_t r;
    ASSERT_EQ(chunk_whole("5\r\nhel", 6, &r), HTTP1_INCOMPLETE);
    ASSERT_MEM_STR(r.payload, r.payload_len, "hel");
    ASSERT_EQ(chunk_whole("", 0, &r), HTTP1_INCOMPLETE);
    ASSERT_UEQ(r.payload_len, 0);
}

static void test_chunked_extensions(void)
{
    CHUNK_OK("5;name=value\r\nhello\r\n0\r\n\r\n", "hello", "");
    CHUNK_OK("5 ; a=\"b;c\"; d\r\nhello\r\n0;last\r\n\r\n", "hello", "");
    CHUNK_OK("5\t;x\r\nhello\r\n0 \t ;\r\n\r\n", "hello", "");
    CHUNK_OK("5;\xc3\xa9\t\r\nhello\r\n0\r\n\r\n", "hello", "");
    CHUNK_BAD("5;a\nb\r\nhello\r\n0\r\n\r\n"); /* bare LF inside extension */
    CHUNK_BAD("5;a\rb\r\nhello\r\n0\r\n\r\n"); /* bare CR inside extension */
    CHUNK_BAD("5;a\x01\r\nhello\r\n0\r\n\r\n");
    CHUNK_BAD("5;a\x7f\r\nhello\r\n0\r\n\r\n");
    {
        static const char in[] = "5;a\0\r\nhello\r\n0\r\n\r\n";
        chunk_result_t r;
        ASSERT_EQ(chunk_whole(in, sizeof in - 1, &r), HTTP1_MALFORMED);
    }
    /* A size line over the cap. */
    static char big[CHUNK_LINE_MAX + 32];
    size_t n = 0;
    big[n++] = '1';
    big[n++] = ';';
    while (n < CHUNK_LINE_MAX + 4)
        big[n++] = 'x';
    memcpy(big + n, "\r\na\r\n0\r\n\r\n", 10);
    n += 10;
    chunk_result_t r;
    ASSERT_EQ(chunk_whole(big, n, &r), HTTP1_MALFORMED);
    /* Just under it is fine. */
    n = 2;
    while (n < CHUNK_LINE_MAX - 2)
        big[n++] = 'x';
    memcpy(big + n, "\r\na\r\n0\r\n\r\n", 10);
    n += 10;
    ASSERT_EQ(chunk_whole(big, n, &r), 0);
    ASSERT_MEM_STR(r.payload, r.payload_len, "a");
}

static void test_chunked_trailers(void)
{
    CHUNK_OK("5\r\nhello\r\n0\r\nExpires: never\r\n\r\n", "hello", "");
    CHUNK_OK("5\r\nhello\r\n0\r\nA: 1\r\nB:\r\nC:\t x \xff\r\n\r\n", "hello", "");
    CHUNK_BAD("5\r\nhello\r\n0\r\nA: 1\r\n continued\r\n\r\n"); /* obs-fold */
    CHUNK_BAD("5\r\nhello\r\n0\r\nA : 1\r\n\r\n");
    CHUNK_BAD("5\r\nhello\r\n0\r\n: 1\r\n\r\n");
    CHUNK_BAD("5\r\nhello\r\n0\r\nA\r\n\r\n");
    CHUNK_BAD("5\r\nhello\r\n0\r\nA: 1\n\r\n");
    CHUNK_BAD("5\r\nhello\r\n0\r\nA: \x01\r\n\r\n");
    CHUNK_BAD("5\r\nhello\r\n0\r\n\n");
    CHUNK_BAD("5\r\nhello\r\n0\r\n\rX");
}

static void test_chunked_malformed(void)
{
    CHUNK_BAD("\r\nhello\r\n0\r\n\r\n");   /* no size */
    CHUNK_BAD(" 5\r\nhello\r\n0\r\n\r\n"); /* leading space */
    CHUNK_BAD("+5\r\nhello\r\n0\r\n\r\n");
    CHUNK_BAD("-5\r\nhello\r\n0\r\n\r\n");
    CHUNK_BAD("0x5\r\nhello\r\n0\r\n\r\n");
    CHUNK_BAD("5 \r\nhello\r\n0\r\n\r\n"); /* BWS not before ';' */
    CHUNK_BAD("5 5\r\nhello\r\n0\r\n\r\n");
    CHUNK_BAD("5g\r\nhello\r\n0\r\n\r\n");
    CHUNK_BAD("5\nhello\r\n0\r\n\r\n"); /* bare LF */
    CHUNK_BAD("5\rhello\r\n0\r\n\r\n"); /* bare CR */
    CHUNK_BAD("5\r\nhello\n0\r\n\r\n");
    CHUNK_BAD("5\r\nhello\r0\r\n\r\n");
    CHUNK_BAD("5\r\nhelloX\r\n0\r\n\r\n"); /* data longer than its size */
    CHUNK_BAD("5\r\nhell\r\n0\r\n\r\n");   /* shorter: "\r" is data, "\n0" not CRLF */
    CHUNK_BAD("5\r\nhello\r\n\r\n");       /* missing last-chunk */
    CHUNK_BAD("5\r\nhello\r\n0\r\r\n\r\n");
}

static void test_chunked_hex_overflow(void)
{
    chunk_result_t r;
    /* SIZE_MAX is a valid size (it just needs more data)... */
    static const char max[] = "ffffffffffffffff\r\nabc";
    ASSERT_EQ(chunk_whole(max, sizeof max - 1, &r), HTTP1_INCOMPLETE);
    ASSERT_MEM_STR(r.payload, r.payload_len, "abc");
    /* ...one more digit is not, however the digits are spelled. */
    CHUNK_BAD("10000000000000000\r\n");
    CHUNK_BAD("ffffffffffffffff0\r\n");
    CHUNK_BAD("FFFFFFFFFFFFFFFFF\r\n");
    /* Leading zeros are not overflow. */
    CHUNK_OK("00000000000000000000000000000001\r\nx\r\n0\r\n\r\n", "x", "");
}

static void test_chunked_leftover(void)
{
    CHUNK_OK("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n", "hello", "GET / HTTP/1.1\r\n\r\n");
    CHUNK_OK("0\r\nT: 1\r\n\r\nX", "", "X");

    /* In place: the tail sits right after the payload, counted. */
    static const char in[] = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nPOST /x HTTP/1.1\r\n";
    size_t n = sizeof in - 1;
    char *b = exact(in, n);
    http1_chunked_decoder_t d = {0};
    size_t m = n;
    ssize_t r = http1_chunked_decode(&d, b, &m);
    ASSERT_EQ(r, 18);
    ASSERT_UEQ(m, 5);
    ASSERT_MEM_STR(b, m + (size_t)r, "abcdePOST /x HTTP/1.1\r\n");

    /* Once done, everything more is left over, nothing is payload. */
    char *more = exact("GET", 3);
    m = 3;
    ASSERT_EQ(http1_chunked_decode(&d, more, &m), 3);
    ASSERT_UEQ(m, 0);
    ASSERT_MEM_STR(more, 3, "GET");

    /* Once malformed, it stays so. */
    http1_chunked_decoder_t e = {0};
    char *bad = exact("z", 1);
    m = 1;
    ASSERT_EQ(http1_chunked_decode(&e, bad, &m), HTTP1_MALFORMED);
    char *good = exact("0\r\n\r\n", 5);
    m = 5;
    ASSERT_EQ(http1_chunked_decode(&e, good, &m), HTTP1_MALFORMED);
    ASSERT_UEQ(m, 0);
    release();
}

/* Every way of cutting the input into two pieces, and feeding it one byte at
 * a time, gives the same payload, verdict and tail as feeding it whole. */
/* Same verdict (complete, incomplete or malformed), same payload, and when
 * complete the same bytes after the body. (The returned count itself may
 * differ: it only counts the tail of the piece that completed the body.) */
static int chunk_same(const chunk_result_t *a, const chunk_result_t *b)
{
    if ((a->ret >= 0) != (b->ret >= 0) || (a->ret < 0 && a->ret != b->ret))
        return 0;
    return a->payload_len == b->payload_len && memcmp(a->payload, b->payload, a->payload_len) == 0 &&
           a->left_len == b->left_len && memcmp(a->left, b->left, a->left_len) == 0;
}

static void check_chunk_splits(const char *in, size_t n)
{
    chunk_result_t whole, part;
    chunk_whole(in, n, &whole);
    for (size_t cut = 0; cut <= n; cut++) {
        chunk_feed(in, n, &cut, 1, &part);
        if (!chunk_same(&part, &whole))
            TEST_FAIL_AT("cut at %zu of %zu differs (ret %zd vs %zd)", cut, n, part.ret, whole.ret);
    }
    size_t cuts[512];
    for (size_t i = 0; i + 1 < n; i++)
        cuts[i] = i + 1;
    chunk_feed(in, n, cuts, n ? n - 1 : 0, &part);
    if (!chunk_same(&part, &whole))
        TEST_FAIL_AT("byte-by-byte feed differs (ret %zd vs %zd)", part.ret, whole.ret);
}

static void test_chunked_split_every_byte(void)
{
    static const char *const bodies[] = {
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        "1a;ext=\"v\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0;e\r\nT: v\r\nU:w\r\n\r\nGET / HTTP/1.1\r\n",
        "3\r\nabc\r\n3\r\nde\r\n", /* malformed late */
        "5\r\nhello\r\n0\r\n\r\n\r\n",
        "ffffffffffffffff1\r\n",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        check_chunk_splits(bodies[i], strlen(bodies[i]));
    chunk_result_t r;
    ASSERT_EQ(chunk_whole(bodies[1], strlen(bodies[1]), &r), 16);
    ASSERT_MEM_STR(r.payload, r.payload_len, "abcdefghijklmnopqrstuvwxyz");
}

/* ---- forms --------------------------------------------------------------- */

typedef struct form_log {
    char text[1024]; /* "name=value;" per pair, bytes as decoded */
    size_t len;
    int calls;
    int stop_at; /* return 7 from this call (1-based); 0 = never */
} form_log_t;

static int form_log_cb(void *ctx, const char *name, size_t name_len, const char *value, size_t value_len)
{
    form_log_t *log = ctx;
    memcpy(log->text + log->len, name, name_len);
    log->len += name_len;
    log->text[log->len++] = '=';
    memcpy(log->text + log->len, value, value_len);
    log->len += value_len;
    log->text[log->len++] = ';';
    log->calls++;
    return log->calls == log->stop_at ? 7 : 0;
}

static int form(const char *s, size_t n, form_log_t *log)
{
    memset(log, 0, sizeof *log);
    char *in = exact(s, n), *scratch = blank(n);
    int r = http1_parse_form(in, n, scratch, form_log_cb, log);
    release();
    return r;
}

#define FORM_OK(s, want, ncalls)                      \
    do {                                              \
        form_log_t fl_;                               \
        ASSERT_EQ(form((s), sizeof(s) - 1, &fl_), 0); \
        ASSERT_MEM_STR(fl_.text, fl_.len, want);      \
        ASSERT_EQ(fl_.calls, ncalls);                 \
    } while (0)

#define FORM_BAD(s)                                    \
    do {                                               \
        form_log_t fl_;                                \
        ASSERT_EQ(form((s), sizeof(s) - 1, &fl_), -1); \
        ASSERT_EQ(fl_.calls, 0);                       \
    } while (0)

static void test_form(void)
{
    FORM_OK("a=1&b=2", "a=1;b=2;", 2);
    FORM_OK("a+b=c+d+", "a b=c d ;", 1);
    FORM_OK("%41=%42%43", "A=BC;", 1);
    FORM_OK("x=%2b%2B+", "x=++ ;", 1);
    FORM_OK("a", "a=;", 1);
    FORM_OK("a=", "a=;", 1);
    FORM_OK("&&a=1&&", "a=1;", 1);
    FORM_OK("=v", "=v;", 1);
    FORM_OK("=", "=;", 1);
    FORM_OK("a=b=c", "a=b=c;", 1);
    FORM_OK("%26=%3D&%3d", "&==;==;", 2);
    FORM_OK("", "", 0);
    FORM_OK("&", "", 0);
    FORM_OK("topic=https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D&topic=x&data=%7B%22a%22%3A1%7D",
            "topic=https://example.com/books/{id};topic=x;data={\"a\":1};", 3);
    FORM_OK("t=%C3%A9", "t=\xc3\xa9;", 1);
    FORM_BAD("%zz");
    FORM_BAD("a=%4");
    FORM_BAD("a=%");
    FORM_BAD("a=1&b=%g0");
    FORM_BAD("a=%0g&b=2");
    FORM_BAD("a=1&b=2&c=%"); /* refused whole: no callback for a or b */
    FORM_BAD("%%41");
    ASSERT_EQ(http1_parse_form(NULL, 0, NULL, form_log_cb, NULL), 0);
}

/* ---- http1_pct_decode ------------------------------------------------------ */

/* Decodes an exact-size copy, out of place and in place; both must agree. */
static ssize_t pct(const char *s, size_t n, int flags, char *out)
{
    ssize_t r = http1_pct_decode(exact(s, n), n, out, flags);
    char *inplace = exact(s, n);
    ssize_t r2 = http1_pct_decode(inplace, n, inplace, flags);
    ASSERT_EQ(r2, r);
    if (r > 0 && r == r2)
        ASSERT(memcmp(inplace, out, (size_t)r) == 0);
    return r;
}

#define PCT_OK(in, flags, want)                                  \
    do {                                                         \
        char out_[64];                                           \
        ssize_t r_ = pct((in), sizeof(in) - 1, (flags), out_);   \
        ASSERT_EQ(r_, sizeof(want) - 1);                         \
        if (r_ >= 0)                                             \
            ASSERT(memcmp(out_, (want), sizeof(want) - 1) == 0); \
    } while (0)
#define PCT_BAD(in, flags)                                       \
    do {                                                         \
        char out_[64];                                           \
        ASSERT_EQ(pct((in), sizeof(in) - 1, (flags), out_), -1); \
    } while (0)

static void test_pct_decode(void)
{
    PCT_OK("", 0, "");
    PCT_OK("abc", 0, "abc");
    PCT_OK("a%20b", 0, "a b");
    PCT_OK("%41%4a%4A%7e", 0, "AJJ~");
    PCT_OK("%2F%2f", 0, "//");
    PCT_OK("%C3%A9", 0, "\xc3\xa9");
    PCT_OK("%FF", 0, "\xff");
    PCT_OK("a+b", 0, "a+b");
    PCT_OK("a+b", HTTP1_PCT_PLUS_SPACE, "a b");
    PCT_OK("%2B+", HTTP1_PCT_PLUS_SPACE, "+ ");
    PCT_OK("%25", 0, "%");
    PCT_OK("%2525", 0, "%25"); /* decoded once, not twice */
    PCT_OK("a%00b", 0, "a\0b");
    PCT_BAD("a%00b", HTTP1_PCT_REJECT_NUL);
    PCT_BAD("a\0b", HTTP1_PCT_REJECT_NUL);
    PCT_OK("a%01b", HTTP1_PCT_REJECT_NUL,
           "a\x01"
           "b");
    PCT_BAD("%", 0);
    PCT_BAD("%4", 0);
    PCT_BAD("a%", 0);
    PCT_BAD("a%4", 0);
    PCT_BAD("%zz", 0);
    PCT_BAD("%4g", 0);
    PCT_BAD("%g4", 0);
    PCT_BAD("%%41", 0);
    PCT_BAD("% 41", 0);
    PCT_BAD("%+1", HTTP1_PCT_PLUS_SPACE);
    ASSERT_EQ(http1_pct_decode(NULL, 0, NULL, 0), 0);
    release();
}

static void test_form_nul(void)
{
    form_log_t l;
    ASSERT_EQ(form("v=a%00b", 7, &l), 0);
    ASSERT_EQ(l.calls, 1);
    ASSERT_UEQ(l.len, 6); /* "v=" + "a\0b" + ";" */
    ASSERT(memcmp(l.text, "v=a\0b;", 6) == 0);
    /* A raw NUL byte is just a byte too. */
    ASSERT_EQ(form("n\0=1", 4, &l), 0);
    ASSERT(l.len == 5 && memcmp(l.text, "n\0=1;", 5) == 0);
}

static void test_form_order_and_stop(void)
{
    FORM_OK("topic=a&topic=b&x=1&topic=c", "topic=a;topic=b;x=1;topic=c;", 4);

    form_log_t l;
    memset(&l, 0, sizeof l);
    l.stop_at = 2;
    static const char s[] = "a=1&b=2&c=3";
    char scratch[sizeof s];
    ASSERT_EQ(http1_parse_form(s, sizeof s - 1, scratch, form_log_cb, &l), 7);
    ASSERT_EQ(l.calls, 2);
    ASSERT_MEM_STR(l.text, l.len, "a=1;b=2;");
}

/* Every pair's pointers stay valid after later pairs are decoded: publish
 * keeps all the fields of a form at once. */
typedef struct kept {
    const char *v[8];
    size_t l[8];
    int n;
} kept_t;

static int keep_cb(void *ctx, const char *name, size_t nl, const char *value, size_t vl)
{
    kept_t *k = ctx;
    (void)name;
    (void)nl;
    k->v[k->n] = value;
    k->l[k->n++] = vl;
    return 0;
}

static void test_form_pointers_stay_valid(void)
{
    static const char in[] = "topic=https%3A%2F%2Fex.com%2Fa&data=two%0Alines&topic=b+c&id=%41%42";
    char scratch[sizeof(in)];
    kept_t k = {.n = 0};
    ASSERT_EQ(http1_parse_form(in, sizeof(in) - 1, scratch, keep_cb, &k), 0);
    ASSERT_EQ(k.n, 4);
    ASSERT_MEM_STR(k.v[0], k.l[0], "https://ex.com/a");
    ASSERT_MEM_STR(k.v[1], k.l[1], "two\nlines");
    ASSERT_MEM_STR(k.v[2], k.l[2], "b c");
    ASSERT_MEM_STR(k.v[3], k.l[3], "AB");
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_simple_get);
    TEST_RUN(test_mercure_requests);
    TEST_RUN(test_ows_trimmed);
    TEST_RUN(test_versions);
    TEST_RUN(test_bare_lf);
    TEST_RUN(test_leading_empty_line);
    TEST_RUN(test_incomplete_every_prefix);
    TEST_RUN(test_malformed);
    TEST_RUN(test_too_many_headers);
    TEST_RUN(test_find_header);
    TEST_RUN(test_token_eq);
    TEST_RUN(test_value_has_token);
    TEST_RUN(test_framing);
    TEST_RUN(test_guard_page);
    TEST_RUN(test_resume_early_error);
    TEST_RUN(test_resume_pipelined);
    TEST_RUN(test_resume_shorter_restarts);
    TEST_RUN(test_resume_linear);
    TEST_RUN(test_content_length);
    TEST_RUN(test_chunked_simple);
    TEST_RUN(test_chunked_extensions);
    TEST_RUN(test_chunked_trailers);
    TEST_RUN(test_chunked_malformed);
    TEST_RUN(test_chunked_hex_overflow);
    TEST_RUN(test_chunked_leftover);
    TEST_RUN(test_chunked_split_every_byte);
    TEST_RUN(test_pct_decode);
    TEST_RUN(test_form);
    TEST_RUN(test_form_pointers_stay_valid);
    TEST_RUN(test_form_nul);
    TEST_RUN(test_form_order_and_stop);
    TEST_MAIN_END();
}
