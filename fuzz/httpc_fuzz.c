/*
 * httpc_fuzz.c - libFuzzer target for the CLI's HTTP client parsers
 * (src/httpc.c). The first byte chooses:
 *
 *   even: httpc_parse_head on the rest. Properties: the answer is a length
 *         within the input, HTTPC_INCOMPLETE or HTTPC_ERROR; every pointer
 *         it returns lies inside the input; a complete head parses the same
 *         with bytes appended, and every strict prefix of it is
 *         incomplete (the verdict depends only on the bytes seen).
 *   odd:  httpc_parse_url on the rest (NUL-terminated). Properties: a
 *         parsed URL has a host, a port 1..65535, a target starting with
 *         '/' without spaces or control bytes; and "http://" + authority +
 *         target parses back to the same host, port and target.
 *
 * Each input is copied to the end of a heap block so ASan catches a read past it.
 */
#include "fuzz.h"
#include "httpc.h"

#include <stdio.h>

static int inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && p + n <= buf + len;
}

static void check_head(const char *buf, size_t len)
{
    httpc_head_t h;
    ssize_t r = httpc_parse_head(buf, len, &h);
    CHECK(r == HTTPC_INCOMPLETE || r == HTTPC_ERROR || (r > 0 && (size_t)r <= len));
    if (r <= 0)
        return;
    CHECK(h.status >= 100 && h.status <= 999);
    CHECK(inside(h.reason, h.reason_len, buf, (size_t)r));
    CHECK(h.num_headers <= HTTPC_MAX_HEADERS);
    for (size_t i = 0; i < h.num_headers; i++) {
        CHECK(h.headers[i].name_len > 0 && inside(h.headers[i].name, h.headers[i].name_len, buf, (size_t)r));
        CHECK(inside(h.headers[i].value, h.headers[i].value_len, buf, (size_t)r));
    }
    httpc_head_t h2;
    for (size_t k = 0; k < (size_t)r; k++) /* strict prefixes: incomplete */
        CHECK(httpc_parse_head(buf, k, &h2) == HTTPC_INCOMPLETE);
    char *more = malloc((size_t)r + 7);
    CHECK(more);
    memcpy(more, buf, (size_t)r);
    memcpy(more + r, "garbage", 7);
    CHECK(httpc_parse_head(more, (size_t)r + 7, &h2) == r && h2.status == h.status &&
          h2.num_headers == h.num_headers);
    free(more);
}

static void check_url(const char *s)
{
    httpc_url_t *u = malloc(sizeof(*u)), *v = malloc(sizeof(*v));
    CHECK(u && v);
    const char *why = NULL;
    if (httpc_parse_url(s, u, &why) == 0) {
        CHECK(u->host[0] && u->port >= 1 && u->port <= 65535 && u->target[0] == '/');
        for (const char *p = u->target; *p; p++)
            CHECK((unsigned char)*p > 0x20 && (unsigned char)*p != 0x7f);
        char again[sizeof(u->authority) + sizeof(u->target) + 8];
        snprintf(again, sizeof(again), "http://%s%s", u->authority, u->target);
        CHECK(httpc_parse_url(again, v, &why) == 0);
        CHECK(!strcmp(u->host, v->host) && u->port == v->port && !strcmp(u->target, v->target));
    } else {
        CHECK(why != NULL);
    }
    free(u);
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 20000)
        return 0;
    size_t len = size - 1;
    char *buf = malloc(len + 1);
    CHECK(buf);
    memcpy(buf, data + 1, len);
    if (data[0] % 2 == 0) {
        check_head(buf, len);
    } else {
        buf[len] = 0;
        check_url(buf);
    }
    free(buf);
    return 0;
}
