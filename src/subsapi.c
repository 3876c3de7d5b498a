/*
 * subsapi.c - see subsapi.h.
 */
#include "subsapi.h"

#include "auth.h"
#include "conn.h"
#include "selector.h"
#include "server.h"
#include "subs.h"
#include "worker.h"

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

/* Does one of the token's subscribe selectors match the request path (as
 * sent, percent-encoded, which is also how subscription topics are built)? */
static int path_authorized(const jwt_claims_t *claims, const char *path, size_t plen)
{
    for (size_t i = 0; i < claims->num_subscribe; i++) {
        selector_t *s = selector_try_new(claims->subscribe[i], strlen(claims->subscribe[i]));
        int ok = s && selector_match(s, path, plen);
        selector_free(s);
        if (ok)
            return 1;
    }
    return 0;
}

/* Splits "/topic" or "/topic/subscriber" after the API path. Returns 0, or
 * -1 for a malformed URL (out of memory also reads as malformed). */
static int split_rest(const char *rest, size_t rlen, char **topic, char **subscriber)
{
    *topic = *subscriber = NULL;
    if (!rlen)
        return 0;
    const char *slash = memchr(rest + 1, '/', rlen - 1);
    size_t tl = slash ? (size_t)(slash - rest - 1) : rlen - 1;
    if (tl == 0 || !(*topic = segment_decode(rest + 1, tl)))
        return -1;
    if (!slash)
        return 0;
    size_t sl = rlen - tl - 2;
    if (sl == 0 || memchr(slash + 1, '/', sl) || !(*subscriber = segment_decode(slash + 1, sl))) {
        free(*topic);
        *topic = NULL;
        return -1;
    }
    return 0;
}

void subsapi_handle(req_t *r, const request_t *in)
{
    server_t *srv = worker_server(r->conn->worker);
    const char *why = NULL;
    jwt_claims_t claims;
    auth_status_t st = auth_check(srv->auth, AUTH_SUBSCRIBER, in, &claims, &why);
    if (st != AUTH_VALID) {
        resp_hdrs_t h = in->cors;
        auth_add_challenge(&h);
        req_refuse(r, REFUSE_UNAUTHORIZED, 401, &h,
                   st == AUTH_INVALID ? why : "the subscriptions API needs a subscriber token");
        return;
    }
    int allowed = path_authorized(&claims, in->path, in->path_len);
    jwt_claims_dispose(&claims);
    if (!allowed) {
        req_refuse(r, REFUSE_FORBIDDEN, 403, &in->cors,
                   "the token's mercure.subscribe selectors do not match this subscriptions URL");
        return;
    }
    size_t n = strlen(SUBSAPI_PATH);
    char *topic, *subscriber;
    if (split_rest(in->path + n, in->path_len - n, &topic, &subscriber)) {
        req_refuse(r, REFUSE_BAD_REQUEST, 400, &in->cors, "malformed subscriptions URL");
        return;
    }
    int not_found = 0;
    char *doc = subs_try_render(srv->subs, topic, subscriber, &not_found);
    free(topic);
    free(subscriber);
    if (not_found)
        req_refuse(r, REFUSE_NOT_FOUND, 404, &in->cors, "no such subscription");
    else if (!doc)
        req_refuse(r, REFUSE_UNAVAILABLE, 503, &in->cors, "out of memory");
    else
        req_respond(r, 200, &in->cors, "application/ld+json", doc, strlen(doc));
    free(doc);
}
