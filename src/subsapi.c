/*
 * subsapi.c - see subsapi.h.
 */
#include "subsapi.h"

#include "auth.h"
#include "authanswer.h"
#include "conn.h"
#include "dialect.h"
#include "grant.h"
#include "matchset.h"
#include "server.h"
#include "subs.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int subsapi_is_path(const char *path, size_t len)
{
    size_t n = strlen(SUBSAPI_PATH);
    return len >= n && !memcmp(path, SUBSAPI_PATH, n) && (len == n || path[n] == '/');
}

/* Decodes a percent-encoded path segment into a new NUL-terminated string;
 * NULL if malformed (or %00). */
static char *segment_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    ssize_t n = http1_pct_decode(s, len, out, HTTP1_PCT_REJECT_NUL);
    if (n < 0) {
        free(out);
        return NULL;
    }
    out[n] = 0;
    return out;
}

/* The path after the API prefix, cut into at most `max` non-empty segments
 * (decoded into seg[], NULL-terminated list; the caller frees them). Returns
 * the number of segments, or -1 for a malformed URL (empty or undecodable
 * segment, more than max; out of memory reads as malformed too). */
static int split_segments(const char *rest, size_t rlen, char **seg, int max)
{
    int n = 0;
    for (size_t i = 0; i < rlen;) {
        const char *s = rest + i + 1; /* past the '/' */
        const char *slash = memchr(s, '/', rlen - i - 1);
        size_t sl = slash ? (size_t)(slash - s) : rlen - i - 1;
        if (n == max || sl == 0 || !(seg[n] = segment_decode(s, sl))) {
            while (n)
                free(seg[--n]);
            return -1;
        }
        n++;
        i += sl + 1;
    }
    return n;
}

/* Does one of the token's subscribe matchers match the request path (as
 * sent, percent-encoded, which is also how subscription topics are built;
 * draft-08: the relative form, URL patterns resolved against the hub's
 * URL)? -1 when memory runs out. */
static int path_authorized(const grant_t *g, const char *base, const char *path, size_t plen)
{
    const char *why;
    matchset_t *m = matchset_try_new(g->subscribe, g->num_subscribe, base, &why);
    if (!m)
        return -1;
    int ok = matchset_first(m, path, plen) >= 0;
    matchset_free(m);
    return ok;
}

/* A quoted-string (RFC 9110 5.6.4) of s into out (cap bytes). */
static void quote(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    out[n++] = '"';
    for (; *s && n + 3 < cap; s++) {
        if (*s == '"' || *s == '\\')
            out[n++] = '\\';
        out[n++] = *s;
    }
    out[n++] = '"';
    out[n] = 0;
}

/* draft-08: every API answer carries the reconciliation cursor as the
 * last-event-id of a rel="mercure" Link, with the type and content type of
 * the events it leads to. */
static void add_link(resp_hdrs_t *h, const char *resource, const char *last)
{
    char q[1100];
    quote(last ? last : "earliest", q, sizeof(q));
    resp_hdrs_addf(
        h, "Link",
        "<%s>; rel=\"mercure\"; last-event-id=%s; type=\"mercure\"; content-type=\"application/json\"",
        resource ? resource : SUBSAPI_PATH, q);
    resp_hdrs_add(h, "Cache-Control", "must-revalidate");
}

/* The path's parts into q: classic /{topic}[/{subscriber}], v1
 * /{match_type}/{match}[/{subscriber}]. Returns 0, 404 or 400. */
static int read_path(const request_t *in, char **seg, int *nseg, subs_query_t *q)
{
    size_t n = strlen(SUBSAPI_PATH);
    int v1 = in->dialect == DIALECT_V1;
    *nseg = split_segments(in->path + n, in->path_len - n, seg, v1 ? 3 : 2);
    if (*nseg < 0)
        return 400;
    if (v1) {
        if (*nseg == 1)
            return 404; /* /subscriptions/{match_type} alone is no resource */
        q->match_type = *nseg ? seg[0] : NULL;
        q->match = *nseg > 1 ? seg[1] : NULL;
        q->subscriber = *nseg > 2 ? seg[2] : NULL;
    } else {
        q->match = *nseg ? seg[0] : NULL;
        q->subscriber = *nseg > 1 ? seg[1] : NULL;
    }
    return 0;
}

static void answer(req_t *r, const request_t *in, server_t *srv, const subs_query_t *q)
{
    int not_found = 0;
    char *last = NULL;
    char *doc = subs_try_render(srv->subs, q, &not_found, &last);
    resp_hdrs_t h = in->cors;
    if (q->v1)
        add_link(&h, auth_resource(srv->auth), last);
    free(last);
    if (not_found)
        req_refuse(r, REFUSE_NOT_FOUND, 404, &in->cors, "no such subscription");
    else if (!doc)
        req_refuse(r, REFUSE_UNAVAILABLE, 503, &in->cors, "out of memory");
    else
        req_respond(r, 200, &h, q->v1 ? "application/json" : "application/ld+json", doc, strlen(doc));
    free(doc);
}

void subsapi_handle(req_t *r, const request_t *in)
{
    server_t *srv = worker_server(r->conn->worker);
    const auth_t *a = srv->auth;
    const char *why = NULL;
    grant_t g;
    auth_status_t st = auth_check(a, AUTH_SUBSCRIBER, in, &g, &why);
    if (st != AUTH_VALID) {
        authanswer_refuse(r, in, a, st, why, "the subscriptions API needs a subscriber token");
        return;
    }
    int v1 = g.dialect == GRANT_V1;
    int allowed = path_authorized(&g, auth_resource(a), in->path, in->path_len);
    grant_dispose(&g);
    if (allowed <= 0) {
        if (allowed < 0)
            req_refuse(r, REFUSE_UNAVAILABLE, 503, &in->cors, "out of memory");
        else
            authanswer_forbid(
                r, in, a,
                v1 ? "no subscribe authorization detail of the token matches this subscriptions URL"
                   : "the token's mercure.subscribe selectors do not match this subscriptions URL");
        return;
    }
    char *seg[3] = {NULL, NULL, NULL};
    char path[4096];
    snprintf(path, sizeof(path), "%.*s", (int)in->path_len, in->path);
    subs_query_t q = {.v1 = v1, .path = path};
    int nseg = 0, bad = read_path(in, seg, &nseg, &q);
    if (bad == 400)
        req_refuse(r, REFUSE_BAD_REQUEST, 400, &in->cors, "malformed subscriptions URL");
    else if (bad == 404)
        req_refuse(r, REFUSE_NOT_FOUND, 404, &in->cors, "no such subscriptions resource");
    else
        answer(r, in, srv, &q);
    for (int i = 0; i < nseg; i++)
        free(seg[i]);
}
