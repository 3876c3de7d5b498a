/*
 * router.c - see router.h.
 */
#include "router.h"

#include "accesslog.h"
#include "acmehttp.h"
#include "assets.h"
#include "auth.h"
#include "conn.h"
#include "dashboard.h"
#include "dialect.h"
#include "discovery.h"
#include "http1.h"
#include "jws.h"
#include "metrics.h"
#include "publish.h"
#include "ratelimit.h"
#include "server.h"
#include "subsapi.h"
#include "subscribe.h"
#include "worker.h"

#include <stdlib.h>
#include <string.h>

#define MERCURE_PATH "/.well-known/mercure"
/* RFC 9728 3.1: the metadata of the resource at MERCURE_PATH (draft-08,
 * "Protected Resource Metadata"). */
#define METADATA_PATH "/.well-known/oauth-protected-resource/.well-known/mercure"
/* A QUERY subscribe's form body at most (draft-08 allows QUERY so that long
 * matcher lists fit; 64 matchers of 2 KiB, encoded, fit in this). */
#define QUERY_BODY_MAX (512 * 1024)

typedef enum route {
    ROUTE_NONE,
    ROUTE_PREFLIGHT,
    ROUTE_MERCURE,
    ROUTE_SUBSAPI,
    ROUTE_DEMO_TOKENS,
    ROUTE_EVENTS,
    ROUTE_HEALTHZ,
    ROUTE_METRICS,
    ROUTE_ADMIN,
    ROUTE_ASSET,
    ROUTE_METADATA,
} route_t;

/* What each route accepts, for the method check and the Allow field. */
static const struct {
    const char *allow; /* methods, as the Allow field lists them */
    uint8_t post;      /* POST accepted (publish: the only route with a body) */
} routes[] = {
    [ROUTE_NONE] = {"", 0},
    [ROUTE_PREFLIGHT] = {"OPTIONS", 0},
    [ROUTE_MERCURE] = {"GET, HEAD, POST, QUERY, OPTIONS", 1},
    [ROUTE_SUBSAPI] = {"GET, HEAD, OPTIONS", 0},
    [ROUTE_DEMO_TOKENS] = {"GET, HEAD", 0},
    [ROUTE_EVENTS] = {"GET, HEAD, OPTIONS", 0},
    [ROUTE_HEALTHZ] = {"GET, HEAD", 0},
    [ROUTE_METRICS] = {"GET, HEAD", 0},
    [ROUTE_ADMIN] = {"GET, HEAD", 0},
    [ROUTE_ASSET] = {"GET, HEAD", 0},
    [ROUTE_METADATA] = {"GET, HEAD, OPTIONS", 0},
};

static int path_is(const request_t *in, const char *lit)
{
    return strlen(lit) == in->path_len && memcmp(in->path, lit, in->path_len) == 0;
}

static int method_is(const request_t *in, const char *m)
{
    return strlen(m) == in->method_len && memcmp(in->method, m, in->method_len) == 0;
}

static route_t find_route(const server_t *srv, const request_t *in)
{
    if (path_is(in, MERCURE_PATH))
        return ROUTE_MERCURE;
    if (srv->subs && subsapi_is_path(in->path, in->path_len))
        return ROUTE_SUBSAPI;
    if (srv->demo_tokens && path_is(in, "/demo/tokens.json"))
        return ROUTE_DEMO_TOKENS;
    if (path_is(in, "/events"))
        return ROUTE_EVENTS;
    if (path_is(in, "/healthz"))
        return ROUTE_HEALTHZ;
    if (path_is(in, "/metrics"))
        return ROUTE_METRICS;
    if ((srv->cfg->admin || srv->cfg->demo) && dashboard_is_path(in->path, in->path_len))
        return ROUTE_ADMIN;
    if (path_is(in, METADATA_PATH))
        return ROUTE_METADATA;
    if (srv->cfg->demo && assets_find(in->path, in->path_len))
        return ROUTE_ASSET;
    return ROUTE_NONE;
}

/* ---- CORS ------------------------------------------------------------------------ */

static int origin_listed(char *const *list, int n, const http1_header_t *origin)
{
    for (int i = 0; origin && i < n; i++)
        if (strlen(list[i]) == origin->value_len && !memcmp(list[i], origin->value, origin->value_len))
            return 1;
    return 0;
}

static int star_listed(char *const *list, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i], "*"))
            return 1;
    return 0;
}

/* What cross-origin readers may see: the reconnection fields of both
 * dialects, the subscriptions API's Link (draft-08 needs it exposed for
 * its last-event-id) and the RFC 6750 challenge. */
#define EXPOSED "Last-Event-ID, Mercure-Last-Event-ID, Link, WWW-Authenticate"

/* An origin named in --cors-origin or --publish-origin gets itself echoed
 * with credentials (so the mercureAuthorization cookie crosses origins);
 * "*" gets the wildcard, which browsers never combine with credentials. */
static void cors_fields(const config_t *cfg, request_t *in)
{
    const http1_header_t *origin = request_header(in, "origin");
    resp_hdrs_init(&in->cors);
    if (origin_listed(cfg->cors_origins, cfg->num_cors_origins, origin) ||
        origin_listed(cfg->publish_origins, cfg->num_publish_origins, origin)) {
        resp_hdrs_addf(&in->cors, "Access-Control-Allow-Origin", "%.*s", (int)origin->value_len,
                       origin->value);
        resp_hdrs_add(&in->cors, "Access-Control-Allow-Credentials", "true");
        resp_hdrs_add(&in->cors, "Access-Control-Expose-Headers", EXPOSED);
        resp_hdrs_add(&in->cors, "Vary", "Origin");
    } else if (star_listed(cfg->cors_origins, cfg->num_cors_origins) ||
               star_listed(cfg->publish_origins, cfg->num_publish_origins)) {
        resp_hdrs_add(&in->cors, "Access-Control-Allow-Origin", "*");
        resp_hdrs_add(&in->cors, "Access-Control-Expose-Headers", EXPOSED);
    }
}

static void answer_preflight(req_t *r, const request_t *in)
{
    resp_hdrs_t h = in->cors;
    resp_hdrs_add(&h, "Access-Control-Allow-Methods", "GET, POST, QUERY, OPTIONS");
    resp_hdrs_add(&h, "Access-Control-Allow-Headers",
                  "Authorization, Content-Type, Last-Event-ID, Cache-Control");
    resp_hdrs_add(&h, "Access-Control-Max-Age", "600");
    req_respond(r, 204, &h, "text/plain", "", 0);
}

/* ---- the request's dialect and token ------------------------------------------------ */

/* The query's token parameters: `authorization` (classic) and, refused in
 * v1 requests, `access_token` (RFC 6750 2.3). */
typedef struct qscan {
    const char *auth; /* the decoded authorization value, or NULL */
    size_t auth_len;
    int any; /* authorization or access_token is present */
} qscan_t;

static int on_token_param(void *ctx, const char *n, size_t nl, const char *v, size_t vl)
{
    qscan_t *q = ctx;
    if (nl == 13 && !memcmp(n, "authorization", 13)) {
        q->any = 1;
        if (!q->auth) {
            q->auth = v;
            q->auth_len = vl;
        }
    } else if (nl == 12 && !memcmp(n, "access_token", 12)) {
        q->any = 1;
    }
    return 0;
}

/* The dialect a route and its parameters say (dialect.h); AUTO where the
 * token decides. A subscribe's query is decoded into scratch (qlen + 1). */
static dialect_t request_dialect(const request_t *in, route_t route, char *scratch)
{
    if (route == ROUTE_EVENTS)
        return DIALECT_CLASSIC;
    if (route == ROUTE_SUBSAPI)
        return dialect_of_subsapi_path(in->path, in->path_len);
    if (route != ROUTE_MERCURE || method_is(in, "POST") || method_is(in, "OPTIONS"))
        return DIALECT_AUTO;
    if (method_is(in, "QUERY"))
        return DIALECT_V1;
    if (!method_is(in, "GET") && !in->is_head)
        return DIALECT_AUTO; /* refused (405) anyway */
    dialect_sub_t p;
    dialect_parse_subscribe(in->query, in->query_len, NULL, 0, DIALECT_MAX_SELECTORS, scratch, &p);
    return p.dialect;
}

/* Sets in->dialect and finds the token (auth.h: which sources each dialect
 * reads). Returns 0, or -1 when memory runs out. */
static int find_token(request_t *in, route_t route, char **scratch)
{
    int words = memmem(in->query, in->query_len, "authorization", 13) ||
                memmem(in->query, in->query_len, "access_token", 12); /* cheap pre-check */
    *scratch = NULL;
    int subscribe = route == ROUTE_MERCURE && (method_is(in, "GET") || in->is_head);
    if ((words || subscribe) && !(*scratch = malloc(in->query_len + 1)))
        return -1;
    in->dialect = (uint8_t)request_dialect(in, route, *scratch);
    qscan_t q = {0};
    if (words && http1_parse_form(in->query, in->query_len, *scratch, on_token_param, &q) < 0)
        q = (qscan_t){0}; /* a malformed query: refused by the handler */
    in->token_in_url = in->dialect == DIALECT_V1 && q.any;
    auth_find_token(in, in->dialect == DIALECT_V1 ? NULL : q.auth, q.auth_len);
    return 0;
}

/* ---- who the client is, and how often it may come ------------------------------------- */

/* The client behind a --trusted-proxy is what the proxy's header says;
 * anyone else is the socket peer. */
static void resolve_client(server_t *srv, request_t *in)
{
    const server_limits_t *lim = srv->limits;
    in->client = *in->peer;
    if (lim->num_trusted && peer_cidr_list_contains(lim->trusted, lim->num_trusted, in->peer)) {
        const char *name = lim->trusted_header == PEER_HEADER_FORWARDED ? "forwarded" : "x-forwarded-for";
        peer_span_t values[16];
        size_t n = 0;
        for (size_t i = 0; i < in->num_headers && n < 16; i++)
            if (in->headers[i].name_len == strlen(name) &&
                http1_token_eq(in->headers[i].name, strlen(name), name))
                values[n++] = (peer_span_t){in->headers[i].value, in->headers[i].value_len};
        (void)peer_client_addr(in->peer, lim->trusted, lim->num_trusted, lim->trusted_header, values, n,
                               &in->client);
    }
    in->client_limited = srv->cfg->limit_loopback || !peer_addr_is_loopback(&in->client);
}

/* Takes one token for `key` from `rl`; past the rate answers 429 with
 * Retry-After and returns 1. */
static int over_rate(req_t *r, request_t *in, struct ratelimit *rl, const void *key, size_t len,
                     const char *what)
{
    uint64_t retry_ms = 0;
    if (!rl || ratelimit_try_take(rl, key, len, (uint64_t)worker__now_ms(r->conn->worker), &retry_ms) ==
                   RATELIMIT_OK)
        return 0;
    resp_hdrs_t h = in->cors;
    resp_hdrs_addf(&h, "Retry-After", "%llu", (unsigned long long)((retry_ms + 999) / 1000));
    req_refuse(r, REFUSE_RATE_LIMITED, 429, &h, what);
    return 1;
}

/* --subscribe-rate per client address; --publish-rate per token, or per
 * client address for a publish without one. Loopback clients are the host's
 * own backends: exempt unless --limit-loopback. */
static int rate_limited(req_t *r, request_t *in, int publish)
{
    const server_limits_t *lim = worker_server(r->conn->worker)->limits;
    if (!in->client_limited)
        return 0;
    uint8_t key[1 + PEER_KEY_LEN];
    key[0] = 'a'; /* an address key never equals a token key (they start with 't') */
    peer_addr_key(&in->client, 64, key + 1);
    if (!publish)
        return over_rate(r, in, lim->subscribe_rate, key, sizeof(key),
                         "too many subscribes from your address (--subscribe-rate); retry later");
    if (in->token_from != REQ_TOKEN_NONE && in->token_len) {
        char tkey[1 + JWS_MAX_TOKEN];
        size_t n = in->token_len < JWS_MAX_TOKEN ? in->token_len : JWS_MAX_TOKEN;
        tkey[0] = 't';
        memcpy(tkey + 1, in->token, n);
        return over_rate(r, in, lim->publish_rate, tkey, n + 1,
                         "too many publishes with this token (--publish-rate); retry later");
    }
    return over_rate(r, in, lim->publish_rate, key, sizeof(key),
                     "too many publishes from your address (--publish-rate); retry later");
}

/* ---- the two calls --------------------------------------------------------------------- */

/* Fills what the router adds to the view (CORS, the dialect, the token). */
static int prepare(req_t *r, request_t *in, route_t route, char **scratch)
{
    server_t *srv = worker_server(r->conn->worker);
    cors_fields(srv->cfg, in);
    if (find_token(in, route, scratch)) {
        req_refuse(r, REFUSE_UNAVAILABLE, 503, &in->cors, "out of memory");
        return -1;
    }
    return 0;
}

/* Is the body a form (or of no declared type)? */
static int is_form(const request_t *in)
{
    const http1_header_t *ct = request_header(in, "content-type");
    const char *want = "application/x-www-form-urlencoded";
    size_t n = strlen(want);
    return !ct || (ct->value_len >= n && http1_token_eq(ct->value, n, want) &&
                   (ct->value_len == n || ct->value[n] == ';' || ct->value[n] == ' '));
}

static void method_not_allowed(req_t *r, const request_t *in, route_t route)
{
    resp_hdrs_t h = in->cors;
    resp_hdrs_add(&h, "Allow", routes[route].allow);
    req_refuse(r, REFUSE_METHOD, 405, &h, "method not allowed");
}

/* --access-log: the request's record, made once the client is known (a
 * refusal before that gets a bare one, req.c). A subscribe's topics are in
 * its query; a publish's are counted when its body is here. */
static uint16_t topic_count(const char *form, size_t len)
{
    size_t n = accesslog_count_params(form, len, "topic");
    return (uint16_t)(n > UINT16_MAX ? UINT16_MAX : n);
}

static void access_begin(req_t *r, const request_t *in)
{
    if (!accesslog_enabled())
        return;
    r->alog = accesslog_rec_new(in->method, in->method_len, in->path, in->path_len, in->query, in->query_len,
                                &in->client, r->head_us);
    if (r->alog && method_is(in, "GET"))
        r->alog->topics = topic_count(in->query, in->query_len);
}

static long route_head(req_t *r, request_t *in)
{
    server_t *srv = worker_server(r->conn->worker);
    char *scratch = NULL;
    long limit = 0;
    if (srv->tls && r->conn->io.ops == &io_plain) { /* --listen-http: ACME HTTP-01 and redirects only */
        acmehttp_handle(r, in);
        return -1;
    }
    r->head_us = worker__now_us(r->conn->worker); /* latency and the access log start here */
    if (in->path_len == 0 || in->path[0] != '/') {
        if (method_is(in, "OPTIONS") && in->path_len == 1 && in->path[0] == '*') {
            r->route = ROUTE_PREFLIGHT;
            return 0;
        }
        req_refuse(r, REFUSE_BAD_REQUEST, 400, NULL, "request target must be a path");
        return -1;
    }
    route_t route = find_route(srv, in);
    if (prepare(r, in, route, &scratch))
        return -1;
    r->route = (uint8_t)route;
    resolve_client(srv, in);
    access_begin(r, in);
    int subscribes = route == ROUTE_MERCURE || route == ROUTE_EVENTS;
    if (route == ROUTE_NONE) {
        req_refuse(r, REFUSE_NOT_FOUND, 404, &in->cors, "no such path");
        limit = -1;
    } else if (method_is(in, "OPTIONS")) {
        r->route = ROUTE_PREFLIGHT;
    } else if (method_is(in, "POST") && routes[route].post) {
        limit = rate_limited(r, in, 1) ? -1 : publish_on_head(r, in);
    } else if (method_is(in, "QUERY") && route == ROUTE_MERCURE) {
        /* draft-08: a subscribe whose matchers travel in a form body */
        limit = rate_limited(r, in, 0) ? -1 : QUERY_BODY_MAX;
        if (limit >= 0 && !is_form(in)) {
            req_refuse(r, REFUSE_BAD_REQUEST, 415, &in->cors,
                       "a QUERY subscribe wants Content-Type: application/x-www-form-urlencoded");
            limit = -1;
        }
    } else if (!method_is(in, "GET") && !in->is_head) {
        method_not_allowed(r, in, route);
        limit = -1;
    } else if (subscribes && rate_limited(r, in, 0)) {
        limit = -1;
    }
    free(scratch);
    return limit;
}

static void route_request(req_t *r, request_t *in)
{
    server_t *srv = worker_server(r->conn->worker);
    char *scratch = NULL;
    if (r->route != ROUTE_PREFLIGHT || (in->path_len && in->path[0] == '/'))
        if (prepare(r, in, (route_t)r->route, &scratch))
            return;
    switch ((route_t)r->route) {
    case ROUTE_PREFLIGHT:
        answer_preflight(r, in);
        break;
    case ROUTE_MERCURE:
        if (method_is(in, "POST") && r->alog)
            r->alog->topics = topic_count(in->body, in->body_len);
        if (method_is(in, "POST"))
            publish_handle(r, in);
        else
            subscribe_handle(r, in, 0);
        break;
    case ROUTE_EVENTS:
        subscribe_handle(r, in, 1);
        break;
    case ROUTE_SUBSAPI:
        subsapi_handle(r, in);
        break;
    case ROUTE_DEMO_TOKENS: {
        resp_hdrs_t h;
        resp_hdrs_init(&h);
        resp_hdrs_add(&h, "Cache-Control", "no-store");
        req_respond(r, 200, &h, "application/json", srv->demo_tokens, strlen(srv->demo_tokens));
        break;
    }
    case ROUTE_HEALTHZ:
        req_respond(r, 200, &in->cors, "text/plain; charset=utf-8", "ok\n", 3);
        break;
    case ROUTE_METRICS:
        metrics_handle(r, in);
        break;
    case ROUTE_ADMIN:
        dashboard_handle(r, in);
        break;
    case ROUTE_METADATA:
        discovery_handle(r, in);
        break;
    case ROUTE_ASSET: {
        const asset_t *a = assets_find(in->path, in->path_len);
        resp_hdrs_t h;
        resp_hdrs_init(&h);
        resp_hdrs_add(&h, "Cache-Control", "no-cache");
        req_respond(r, 200, &h, a->content_type, (const char *)a->data, a->len);
        break;
    }
    case ROUTE_NONE:
        req_refuse(r, REFUSE_NOT_FOUND, 404, &in->cors, "no such path");
        break;
    }
    free(scratch);
}

const req_handler_t router_handler = {route_head, route_request};
