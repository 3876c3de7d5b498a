/*
 * httpc_test.c - unit tests for src/httpc.c: URL parsing, the response-head
 * parser (cases, every prefix of a valid head is incomplete, never an
 * error), and body framing (Content-Length, chunked, close-delimited, a
 * head split over reads) over a socketpair.
 */
#include "../../src/httpc.c"

#include "test.h"

#include <sys/socket.h>

static void test_url(void)
{
    httpc_url_t u;
    const char *why = NULL;
    ASSERT_EQ(httpc_parse_url("http://127.0.0.1:8000", &u, &why), 0);
    ASSERT_STR_EQ(u.host, "127.0.0.1");
    ASSERT_EQ(u.port, 8000);
    ASSERT_STR_EQ(u.target, "/");
    ASSERT_STR_EQ(u.authority, "127.0.0.1:8000");
    ASSERT_EQ(httpc_parse_url("HTTP://hub.example/.well-known/mercure?x=1#frag", &u, &why), 0);
    ASSERT_STR_EQ(u.host, "hub.example");
    ASSERT_EQ(u.port, 80);
    ASSERT_STR_EQ(u.target, "/.well-known/mercure?x=1");
    ASSERT_STR_EQ(u.authority, "hub.example");
    ASSERT_EQ(httpc_parse_url("http://[::1]:9/p", &u, &why), 0);
    ASSERT_STR_EQ(u.host, "::1");
    ASSERT_STR_EQ(u.authority, "[::1]:9");
    ASSERT_EQ(httpc_parse_url("http://h?q", &u, &why), 0);
    ASSERT_STR_EQ(u.target, "/?q");

    static const char *const bad[] = {
        "https://h/",    "ftp://h/",         "http://",     "http://:80/",
        "http://h:0/",   "http://h:65536/",  "http://h:x/", "http://u:p@h/",
        "http://[::1/",  "http://[::1]x/",   "http://h h/", "http://h/a b",
        "http://h/\x01", "http://h:123456/", "h:80",        "http://[%01]:9/",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        if (httpc_parse_url(bad[i], &u, &why) != -1 || !why)
            TEST_FAIL_AT("accepted %s", bad[i]);
    }
    ASSERT_EQ(httpc_parse_url("https://h/", &u, &why), -1);
    ASSERT(strstr(why, "not supported yet") != NULL);
}

static void test_head(void)
{
    httpc_head_t h;
    const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Empty:\r\n"
                      "Last-Event-ID:  earliest \r\n\r\nbody";
    ssize_t n = httpc_parse_head(ok, sizeof(ok) - 1, &h);
    ASSERT_EQ(n, (ssize_t)(sizeof(ok) - 1 - 4));
    ASSERT_EQ(h.status, 200);
    ASSERT_EQ(h.minor_version, 1);
    ASSERT_MEM_STR(h.reason, h.reason_len, "OK");
    ASSERT_UEQ(h.num_headers, 3);
    const httpc_header_t *f = httpc_find_header(&h, "last-event-id");
    ASSERT(f != NULL);
    if (f)
        ASSERT_MEM_STR(f->value, f->value_len, "earliest");
    f = httpc_find_header(&h, "x-empty");
    ASSERT(f && f->value_len == 0);
    ASSERT(httpc_find_header(&h, "Content-Length") == NULL);
    /* every strict prefix is incomplete, never an error */
    for (size_t len = 0; len < (size_t)n; len++)
        if (httpc_parse_head(ok, len, &h) != HTTPC_INCOMPLETE)
            TEST_FAIL_AT("prefix of %zu bytes not incomplete", len);

    const char lf[] = "HTTP/1.0 404 Not Found\nA: b\n\n";
    ASSERT_EQ(httpc_parse_head(lf, sizeof(lf) - 1, &h), (ssize_t)(sizeof(lf) - 1));
    ASSERT_EQ(h.status, 404);
    const char noreason[] = "HTTP/1.1 204\r\n\r\n";
    ASSERT_EQ(httpc_parse_head(noreason, sizeof(noreason) - 1, &h), (ssize_t)(sizeof(noreason) - 1));
    ASSERT_EQ(h.reason_len, 0);

    static const char *const bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 099 x\r\n\r\n",
        "HTTP/1.1 200 OK\rX: y\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX : y\r\n\r\n",
        "HTTP/1.1 200 OK\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\x01\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: v\r\n\r\n",
        "http/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (httpc_parse_head(bad[i], strlen(bad[i]), &h) != HTTPC_ERROR)
            TEST_FAIL_AT("accepted %s", bad[i]);

    char many[HTTPC_MAX_HEADERS * 8 + 64];
    size_t k = (size_t)sprintf(many, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i <= HTTPC_MAX_HEADERS; i++)
        k += (size_t)sprintf(many + k, "a: b\r\n");
    k += (size_t)sprintf(many + k, "\r\n");
    ASSERT_EQ(httpc_parse_head(many, k, &h), HTTPC_ERROR);
}

/* A conn reading from one end of a socketpair whose other end got `wire`
 * and was shut down for writing. */
static void conn_with(httpc_conn_t *c, int fds[2], const char *wire, size_t len)
{
    memset(c, 0, sizeof(*c));
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    ASSERT_EQ(write(fds[1], wire, len), (ssize_t)len);
    shutdown(fds[1], SHUT_WR);
    c->fd = fds[0];
    c->_read = plain_read;
    c->_write = plain_write;
    c->_buf = malloc(BUF_CAP);
    c->_cap = BUF_CAP;
}

/* Reads the head and the whole body in small pieces; returns the body. */
static char *body_of(const char *wire, size_t len, int *status, ssize_t *rc)
{
    httpc_conn_t c;
    int fds[2];
    httpc_head_t h;
    char why[128], *out = calloc(1, 4096);
    size_t n = 0;
    conn_with(&c, fds, wire, len);
    *rc = httpc_read_head(&c, &h, 1000, why, sizeof(why));
    *status = h.status;
    while (*rc == 0) {
        ssize_t r = httpc_read_body(&c, out + n, 3, 1000); /* 3 bytes at a time */
        if (r <= 0) {
            *rc = r;
            break;
        }
        n += (size_t)r;
    }
    out[n] = 0; /* the decoder may leave framing bytes past what it returned */
    httpc_close(&c);
    close(fds[1]);
    return out;
}

static void test_bodies(void)
{
    int status;
    ssize_t rc;
    const char length[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
    char *b = body_of(length, sizeof(length) - 1, &status, &rc);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(status, 200);
    ASSERT_STR_EQ(b, "hello"); /* stops at Content-Length */
    free(b);
    const char chunked[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "4\r\nWiki\r\n6;ext=1\r\npedia \r\n0\r\nTrailer: x\r\n\r\n";
    b = body_of(chunked, sizeof(chunked) - 1, &status, &rc);
    ASSERT_EQ(rc, 0);
    ASSERT_STR_EQ(b, "Wikipedia ");
    free(b);
    const char close_[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n: hi\n\ndata: x\n\n";
    b = body_of(close_, sizeof(close_) - 1, &status, &rc);
    ASSERT_EQ(rc, 0);
    ASSERT_STR_EQ(b, ": hi\n\ndata: x\n\n");
    free(b);
    const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort";
    b = body_of(cut, sizeof(cut) - 1, &status, &rc);
    ASSERT_EQ(rc, HTTPC_ERROR); /* closed mid-body */
    free(b);
    const char badchunk[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    b = body_of(badchunk, sizeof(badchunk) - 1, &status, &rc);
    ASSERT_EQ(rc, HTTPC_ERROR);
    free(b);
    const char nohead[] = "HTTP/1.1 200 OK\r\nContent-";
    b = body_of(nohead, sizeof(nohead) - 1, &status, &rc);
    ASSERT_EQ(rc, HTTPC_ERROR); /* closed before the head ended */
    free(b);
}

static void test_timeout_and_cancel(void)
{
    httpc_conn_t c;
    int fds[2];
    httpc_head_t h;
    char why[128];
    memset(&c, 0, sizeof(c));
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    c.fd = fds[0];
    c._read = plain_read;
    c._write = plain_write;
    c._buf = malloc(BUF_CAP);
    c._cap = BUF_CAP;
    int64_t t0 = now_ms();
    ASSERT_EQ(httpc_read_head(&c, &h, 300, why, sizeof(why)), HTTPC_TIMEOUT);
    int64_t dt = now_ms() - t0;
    ASSERT(dt >= 290 && dt < 1500);
    volatile sig_atomic_t stop = 1;
    c.cancel = &stop;
    ASSERT_EQ(httpc_read_head(&c, &h, 5000, why, sizeof(why)), HTTPC_CANCELLED);
    httpc_close(&c);
    close(fds[1]);
}

static void test_format_request(void)
{
    httpc_url_t u;
    const char *why;
    ASSERT_EQ(httpc_parse_url("http://[::1]:8000/.well-known/mercure?topic=a", &u, &why), 0);
    char *r = httpc_format_request("POST", &u, "X-A: b\r\n", 7);
    const char *start =
        "POST /.well-known/mercure?topic=a HTTP/1.1\r\nHost: [::1]:8000\r\nUser-Agent: courant/";
    ASSERT(r && !strncmp(r, start, strlen(start)));
    ASSERT(r && strstr(r, "\r\nX-A: b\r\nContent-Length: 7\r\n\r\n") != NULL);
    free(r);
    r = httpc_format_request("GET", &u, "", 0);
    ASSERT(r && !strstr(r, "Content-Length"));
    free(r);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_url);
    TEST_RUN(test_head);
    TEST_RUN(test_bodies);
    TEST_RUN(test_timeout_and_cancel);
    TEST_RUN(test_format_request);
    TEST_MAIN_END();
}
