/*
 * acmehttp.c - see acmehttp.h.
 */
#include "acmehttp.h"

#include "acmechal.h"
#include "conn.h"
#include "server.h"
#include "worker.h"

#include <stdio.h>
#include <string.h>

#define REDIRECT_MAX 1400 /* bytes of a Location we build: it must fit resp_hdrs_t; longer is refused */

/* A Host value we may put into a Location: a name or IPv4 of letters,
 * digits, '-' and '.', or a bracketed IPv6 literal, then ":digits". The
 * length of the host part (port excluded), or -1. */
static long host_part(const char *h, size_t len)
{
    size_t i = 0;
    if (len && h[0] == '[') {
        while (i < len && h[i] != ']') {
            char c = h[i];
            if (i && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                       c == ':' || c == '.'))
                return -1;
            i++;
        }
        if (i == len || i < 3)
            return -1;
        i++; /* ']' */
    } else {
        for (; i < len && h[i] != ':'; i++) {
            char c = h[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '.'))
                return -1;
        }
        if (i == 0 || i > 253)
            return -1;
    }
    size_t host_len = i;
    if (i < len) {
        if (h[i] != ':' || i + 1 == len || len - i > 6)
            return -1;
        for (i++; i < len; i++)
            if (h[i] < '0' || h[i] > '9')
                return -1;
    }
    return (long)host_len;
}

/* Visible ASCII only: what a protocol parser let through still never
 * reaches a header value with a control byte or a space. */
static int visible(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

long acmehttp__redirect(const char *host, size_t host_len, int https_port, const char *path, size_t path_len,
                        const char *query, size_t query_len, char *out, size_t cap)
{
    long hl = host_part(host, host_len);
    if (hl < 0 || path_len == 0 || path[0] != '/' || !visible(path, path_len) || !visible(query, query_len))
        return -1;
    char port[16] = "";
    if (https_port > 0 && https_port != 443)
        snprintf(port, sizeof(port), ":%d", https_port);
    int n = snprintf(out, cap, "https://%.*s%s%.*s%s%.*s", (int)hl, host, port, (int)path_len, path,
                     query_len ? "?" : "", (int)query_len, query);
    return n > 0 && (size_t)n < cap ? n : -1;
}

/* The token of a challenge path, or NULL. */
static const char *challenge_token(const request_t *in, size_t *len)
{
    size_t pl = sizeof(ACMEHTTP_PREFIX) - 1;
    if (in->path_len <= pl || memcmp(in->path, ACMEHTTP_PREFIX, pl) != 0)
        return NULL;
    *len = in->path_len - pl;
    return in->path + pl;
}

void acmehttp_handle(req_t *r, const request_t *in)
{
    server_t *srv = worker_server(r->conn->worker);
    size_t tl = 0;
    const char *token = challenge_token(in, &tl);
    int get = (in->method_len == 3 && !memcmp(in->method, "GET", 3)) || in->is_head;
    if (token && get) {
        char keyauth[512];
        long n = srv->acme_chal ? acmechal_http01(srv->acme_chal, token, tl, keyauth, sizeof(keyauth)) : -1;
        if (n < 0) {
            req_refuse_quietly(r, REFUSE_NOT_FOUND, 404, NULL, "no such ACME challenge");
            return;
        }
        req_respond(r, 200, NULL, "text/plain", keyauth, (size_t)n);
        return;
    }
    const http1_header_t *host = request_header(in, "host");
    char loc[REDIRECT_MAX];
    long n = host ? acmehttp__redirect(host->value, host->value_len, srv->https_port, in->path, in->path_len,
                                       in->query, in->query_len, loc, sizeof(loc))
                  : -1;
    if (n < 0) {
        req_refuse_quietly(r, REFUSE_BAD_REQUEST, 400, NULL,
                           "this port only redirects to https: send a Host");
        return;
    }
    resp_hdrs_t h;
    resp_hdrs_init(&h);
    resp_hdrs_add(&h, "Location", loc);
    req_respond(r, 308, &h, "text/plain", "use https\n", 10);
}
