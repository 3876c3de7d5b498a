/*
 * router.c - see router.h.
 *
 *   GET  /                      demo page (with --demo), /app.js, /style.css
 *   GET  /events                the seed's stream: the demo clock, or ?topic=
 *   GET  /.well-known/mercure   Mercure subscribe (?topic=..., Last-Event-ID)
 *   POST /.well-known/mercure   Mercure publish (publish.c)
 *   GET  /healthz               liveness: "ok"
 *   GET  /metrics               Prometheus text format
 *   OPTIONS *                   CORS preflight
 */
#include "router.h"

#include "assets.h"
#include "demo.h"
#include "journal.h"
#include "log.h"
#include "publish.h"
#include "selector.h"
#include "stream.h"
#include "subs.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MERCURE_PATH "/.well-known/mercure"
#define MAX_SELECTORS 64

const char *const refusal_names[REFUSE__COUNT] = {
    "bad_request", "not_found",     "method_not_allowed", "headers_too_large", "body_too_large",
    "timeout",     "over_capacity", "forbidden",          "unavailable",       "unauthorized",
};

static int path_is(const char *path, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(path, lit, len) == 0;
}

static int method_is(const http1_request_t *req, const char *m)
{
    return strlen(m) == req->method_len && memcmp(req->method, m, req->method_len) == 0;
}

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

/* An origin named in --cors-origin or --publish-origin gets itself echoed
 * with credentials (so the mercureAuthorization cookie crosses origins);
 * "*" gets the wildcard, which browsers never combine with credentials. */
const char *router_cors_headers(const server_t *srv, const http1_request_t *req, char *buf, size_t cap)
{
    const config_t *cfg = srv->cfg;
    const http1_header_t *origin = http1_find_header(req, "origin");
    if (origin_listed(cfg->cors_origins, cfg->num_cors_origins, origin) ||
        origin_listed(cfg->publish_origins, cfg->num_publish_origins, origin)) {
        snprintf(buf, cap,
                 "Access-Control-Allow-Origin: %.*s\r\nAccess-Control-Allow-Credentials: true\r\n"
                 "Access-Control-Expose-Headers: Last-Event-ID\r\nVary: Origin\r\n",
                 (int)origin->value_len, origin->value);
        return buf;
    }
    if (star_listed(cfg->cors_origins, cfg->num_cors_origins) ||
        star_listed(cfg->publish_origins, cfg->num_publish_origins))
        return "Access-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: Last-Event-ID\r\n";
    return "";
}

static void answer_preflight(conn_t *c, const char *cors)
{
    char extra[1024];
    snprintf(extra, sizeof(extra),
             "%sAccess-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
             "Access-Control-Allow-Headers: Authorization, Content-Type, Last-Event-ID, Cache-Control\r\n"
             "Access-Control-Max-Age: 600\r\n",
             cors);
    conn_respond(c, "204 No Content", "text/plain", extra, "", 0, 0);
}

static void answer_metrics(conn_t *c)
{
    server_t *srv = worker_server(c->worker);
    unsigned long sum[7] = {0}, refused[REFUSE__COUNT] = {0};
    for (int i = 0; i < srv->num_workers; i++) {
        worker_stats_t *st = worker_stats(srv->workers[i]);
        atomic_ulong *fields[7] = {&st->accepted, &st->deliveries,       &st->bytes_written,
                                   &st->replayed, &st->slow_disconnects, &st->streams_open,
                                   &st->requests};
        for (int k = 0; k < 7; k++)
            sum[k] += atomic_load_explicit(fields[k], memory_order_relaxed);
        for (int k = 0; k < REFUSE__COUNT; k++)
            refused[k] += atomic_load_explicit(&st->refused[k], memory_order_relaxed);
    }
    hub_stats_t hs;
    hub_get_stats(srv->hub, &hs);
    char body[4096];
    int n =
        snprintf(body, sizeof(body),
                 "# TYPE courant_connections_open gauge\ncourant_connections_open %ld\n"
                 "# TYPE courant_connections_accepted_total counter\ncourant_connections_accepted_total %lu\n"
                 "# TYPE courant_subscribers_open gauge\ncourant_subscribers_open %lu\n"
                 "# TYPE courant_requests_total counter\ncourant_requests_total %lu\n"
                 "# TYPE courant_events_published_total counter\ncourant_events_published_total %llu\n"
                 "# TYPE courant_deliveries_total counter\ncourant_deliveries_total %lu\n"
                 "# TYPE courant_bytes_written_total counter\ncourant_bytes_written_total %lu\n"
                 "# TYPE courant_events_replayed_total counter\ncourant_events_replayed_total %lu\n"
                 "# TYPE courant_slow_subscriber_disconnects_total counter\n"
                 "courant_slow_subscriber_disconnects_total %lu\n"
                 "# TYPE courant_history_events gauge\ncourant_history_events %llu\n"
                 "# TYPE courant_refused_requests_total counter\n",
                 atomic_load(&srv->open_conns), sum[0], sum[5], sum[6], (unsigned long long)hs.published,
                 sum[1], sum[2], sum[3], sum[4], (unsigned long long)hs.history_len);
    for (int k = 0; k < REFUSE__COUNT && n > 0 && (size_t)n < sizeof(body); k++)
        n += snprintf(body + n, sizeof(body) - (size_t)n,
                      "courant_refused_requests_total{reason=\"%s\"} %lu\n", refusal_names[k], refused[k]);
    journal_stats_t js;
    journal_stats(srv->journal, &js);
    if (!strcmp(js.name, "store") && n > 0 && (size_t)n < sizeof(body))
        n += snprintf(
            body + n, sizeof(body) - (size_t)n,
            "# TYPE courant_store_commits_total counter\ncourant_store_commits_total %llu\n"
            "# TYPE courant_store_events_total counter\ncourant_store_events_total %llu\n"
            "# TYPE courant_store_failed_events_total counter\ncourant_store_failed_events_total %llu\n"
            "# TYPE courant_store_rows gauge\ncourant_store_rows %llu\n"
            "# TYPE courant_store_bad_rows_total counter\ncourant_store_bad_rows_total %llu\n"
            "# TYPE courant_store_healthy gauge\ncourant_store_healthy %d\n",
            (unsigned long long)js.groups, (unsigned long long)js.events, (unsigned long long)js.failed,
            (unsigned long long)js.rows, (unsigned long long)js.bad_records, js.up);
    if (!strcmp(js.name, "redis") && n > 0 && (size_t)n < sizeof(body))
        n += snprintf(
            body + n, sizeof(body) - (size_t)n,
            "# TYPE courant_backplane_up gauge\ncourant_backplane_up %d\n"
            "# TYPE courant_backplane_xadd_total counter\ncourant_backplane_xadd_total %llu\n"
            "# TYPE courant_backplane_xadd_failed_total counter\ncourant_backplane_xadd_failed_total %llu\n"
            "# TYPE courant_backplane_xread_total counter\ncourant_backplane_xread_total %llu\n"
            "# TYPE courant_backplane_bad_entries_total counter\ncourant_backplane_bad_entries_total %llu\n",
            js.up, (unsigned long long)js.events, (unsigned long long)js.failed,
            (unsigned long long)js.read_back, (unsigned long long)js.bad_records);
    if (n < 0 || (size_t)n >= sizeof(body))
        n = (int)sizeof(body) - 1;
    conn_respond(c, "200 OK", "text/plain; version=0.0.4", "", body, (size_t)n, 0);
}

typedef struct query {
    const char *selectors[MAX_SELECTORS];
    size_t selector_lens[MAX_SELECTORS];
    size_t num_selectors;
    const char *last_event_id;
    size_t last_event_id_len;
    const char *token; /* the `authorization` parameter, NULL if absent */
    size_t token_len;
    int too_many;
} query_t;

static int on_query_pair(void *ctx, const char *n, size_t nl, const char *v, size_t vl)
{
    query_t *q = ctx;
    if (nl == 5 && !memcmp(n, "topic", 5)) {
        if (q->num_selectors == MAX_SELECTORS) {
            q->too_many = 1;
            return 1;
        }
        q->selectors[q->num_selectors] = v;
        q->selector_lens[q->num_selectors++] = vl;
    } else if (nl == 13 && !memcmp(n, "authorization", 13) && !q->token) {
        q->token = v;
        q->token_len = vl;
    } else if (nl == 11 && !memcmp(n, "lastEventID", 11) && vl && !q->last_event_id) {
        q->last_event_id = v;
        q->last_event_id_len = vl;
    }
    return 0;
}

/* Applies the subscribe policy (auth.h). Returns 1 with *claims filled (empty
 * for anonymous subscribers), or 0 after refusing. */
static int subscriber_may_enter(conn_t *c, const http1_request_t *req, const query_t *q, const char *cors,
                                jwt_claims_t *claims)
{
    server_t *srv = worker_server(c->worker);
    int from_cookie;
    const char *why = NULL;
    auth_status_t st =
        auth_check(srv->auth, AUTH_SUBSCRIBER, req, q->token, q->token_len, claims, &from_cookie, &why);
    if (st == AUTH_INVALID) {
        auth_refuse_401(c, cors, why);
        return 0;
    }
    if (st == AUTH_NO_TOKEN && !srv->cfg->anonymous) {
        auth_refuse_401(c, cors, "a subscriber token is required (courant runs without --anonymous)");
        return 0;
    }
    return 1;
}

/* GET /events and GET /.well-known/mercure. */
static void subscribe(conn_t *c, const http1_request_t *req, const char *query, size_t qlen,
                      int is_events_alias, const char *cors)
{
    char *scratch = malloc(qlen + 1);
    if (!scratch) {
        conn_refuse(c, REFUSE_UNAVAILABLE, "503 Service Unavailable", "out of memory");
        return;
    }
    query_t q;
    memset(&q, 0, sizeof(q));
    int r = http1_parse_form(query, qlen, scratch, on_query_pair, &q);
    if (r < 0 || q.too_many) {
        conn_refuse(c, REFUSE_BAD_REQUEST, "400 Bad Request",
                    q.too_many ? "too many topic selectors (at most 64)" : "malformed query string");
        free(scratch);
        return;
    }
    for (size_t i = 0; i < q.num_selectors; i++) {
        if (q.selector_lens[i] == 0 || memchr(q.selectors[i], 0, q.selector_lens[i])) {
            conn_refuse(c, REFUSE_BAD_REQUEST, "400 Bad Request", "empty or invalid topic selector");
            free(scratch);
            return;
        }
    }
    if (q.num_selectors == 0) {
        if (!is_events_alias) {
            conn_refuse(c, REFUSE_BAD_REQUEST, "400 Bad Request", "missing topic selector");
            free(scratch);
            return;
        }
        q.selectors[0] = DEMO_CLOCK_TOPIC;
        q.selector_lens[0] = strlen(DEMO_CLOCK_TOPIC);
        q.num_selectors = 1;
    }
    /* The header (what EventSource sends on reconnection) wins over the
     * query parameter (what a client sets by hand on the first connection). */
    const http1_header_t *lei = http1_find_header(req, "last-event-id");
    if (lei && lei->value_len) { /* empty means none, as EventSource sends it */
        q.last_event_id = lei->value;
        q.last_event_id_len = lei->value_len;
    }
    jwt_claims_t claims;
    if (subscriber_may_enter(c, req, &q, cors, &claims)) {
        stream_request_t sr = {
            .selectors = q.selectors,
            .selector_lens = q.selector_lens,
            .num_selectors = q.num_selectors,
            .last_event_id = q.last_event_id,
            .last_event_id_len = q.last_event_id_len,
            .cors_headers = cors,
            .claims = claims.subscribe,
            .num_claims = claims.num_subscribe,
            .token_exp_s = claims.exp,
            .payload = claims.payload,
        };
        stream_start(c, &sr);
        jwt_claims_dispose(&claims);
    }
    free(scratch);
}

static void method_not_allowed(conn_t *c, const char *allow)
{
    char extra[128];
    snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
    atomic_fetch_add_explicit(&worker_stats(c->worker)->refused[REFUSE_METHOD], 1, memory_order_relaxed);
    log_info("fd %d refused 405: method not allowed", c->fd);
    conn_respond(c, "405 Method Not Allowed", "text/plain; charset=utf-8", extra, "method not allowed\n", 19,
                 0);
}

#define SUBS_PATH MERCURE_PATH "/subscriptions"

/* Decodes %XX in a path segment into a new string; NULL if malformed. */
static char *path_segment_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; out && i < len; i++) {
        if (s[i] != '%') {
            out[n++] = s[i];
            continue;
        }
        unsigned v = 0;
        if (i + 2 >= len || sscanf(s + i + 1, "%2x", &v) != 1 || !isxdigit((unsigned char)s[i + 1]) ||
            !isxdigit((unsigned char)s[i + 2]) || v == 0) {
            free(out);
            return NULL;
        }
        out[n++] = (char)v;
        i += 2;
    }
    if (out)
        out[n] = 0;
    return out;
}

/* Does one of the token's subscribe selectors match the request path (as
 * sent, percent-encoded, which is also how subscription topics are built)? */
static int path_authorized(conn_t *c, const jwt_claims_t *claims, const char *path, size_t plen)
{
    for (size_t i = 0; i < claims->num_subscribe; i++) {
        selector_t *s = selector_try_new(claims->subscribe[i], strlen(claims->subscribe[i]));
        int ok = s && selector_cache_match(stream_match_cache(c->worker), s, path, plen);
        selector_free(s);
        if (ok)
            return 1;
    }
    return 0;
}

/* GET /.well-known/mercure/subscriptions[/{topic}[/{subscriber}]]. */
static void answer_subscriptions(conn_t *c, const http1_request_t *req, const char *path, size_t plen,
                                 const char *query, size_t qlen, const char *cors)
{
    server_t *srv = worker_server(c->worker);
    char *scratch = malloc(qlen + 1);
    const char *qtok = NULL, *why = NULL;
    size_t qtok_len = 0;
    int from_cookie;
    if (!scratch || auth_query_token(query, qlen, scratch, &qtok, &qtok_len) < 0)
        qtok = NULL;
    jwt_claims_t claims;
    auth_status_t st =
        auth_check(srv->auth, AUTH_SUBSCRIBER, req, qtok, qtok_len, &claims, &from_cookie, &why);
    free(scratch);
    if (st != AUTH_VALID) {
        auth_refuse_401(c, cors, st == AUTH_INVALID ? why : "the subscriptions API needs a subscriber token");
        return;
    }
    int allowed = path_authorized(c, &claims, path, plen);
    jwt_claims_dispose(&claims);
    if (!allowed) {
        conn_refuse_with(c, REFUSE_FORBIDDEN, "403 Forbidden", cors,
                         "the token's mercure.subscribe selectors do not match this subscriptions URL");
        return;
    }
    const char *rest = path + strlen(SUBS_PATH);
    size_t rlen = plen - strlen(SUBS_PATH);
    char *topic = NULL, *subscriber = NULL;
    int bad = 0;
    if (rlen) { /* "/topic" or "/topic/subscriber" */
        const char *slash = memchr(rest + 1, '/', rlen - 1);
        size_t tl = slash ? (size_t)(slash - rest - 1) : rlen - 1;
        bad = tl == 0 || !(topic = path_segment_decode(rest + 1, tl));
        if (!bad && slash) {
            size_t sl = rlen - tl - 2;
            bad = sl == 0 || memchr(slash + 1, '/', sl) || !(subscriber = path_segment_decode(slash + 1, sl));
        }
    }
    int not_found = 0;
    char *doc = bad ? NULL : subs_try_render(srv->subs, topic, subscriber, &not_found);
    free(topic);
    free(subscriber);
    if (bad)
        conn_refuse_with(c, REFUSE_BAD_REQUEST, "400 Bad Request", cors, "malformed subscriptions URL");
    else if (not_found)
        conn_refuse_with(c, REFUSE_NOT_FOUND, "404 Not Found", cors, "no such subscription");
    else if (!doc)
        conn_refuse_with(c, REFUSE_UNAVAILABLE, "503 Service Unavailable", cors, "out of memory");
    else
        conn_respond(c, "200 OK", "application/ld+json", cors, doc, strlen(doc), 0);
    free(doc);
}

static int is_subs_path(const char *path, size_t plen)
{
    size_t n = strlen(SUBS_PATH);
    return plen >= n && !memcmp(path, SUBS_PATH, n) && (plen == n || path[n] == '/');
}

void router_handle(conn_t *c, const http1_request_t *req, char *body, size_t body_len)
{
    server_t *srv = worker_server(c->worker);
    const char *target = req->target;
    size_t tlen = req->target_len;
    if (tlen == 0 || target[0] != '/') {
        if (method_is(req, "OPTIONS") && tlen == 1 && target[0] == '*') {
            answer_preflight(c, "");
            return;
        }
        conn_refuse(c, REFUSE_BAD_REQUEST, "400 Bad Request", "request target must be a path");
        return;
    }
    const char *qmark = memchr(target, '?', tlen);
    size_t plen = qmark ? (size_t)(qmark - target) : tlen;
    const char *query = qmark ? qmark + 1 : "";
    size_t qlen = qmark ? tlen - plen - 1 : 0;
    char cors_buf[512];
    const char *cors = router_cors_headers(srv, req, cors_buf, sizeof(cors_buf));
    int get = method_is(req, "GET");

    if (method_is(req, "OPTIONS")) {
        answer_preflight(c, cors);
    } else if (path_is(target, plen, MERCURE_PATH)) {
        if (get)
            subscribe(c, req, query, qlen, 0, cors);
        else if (method_is(req, "POST"))
            publish_handle(c, req, query, qlen, body, body_len, cors);
        else
            method_not_allowed(c, "GET, POST, OPTIONS");
    } else if (srv->subs && is_subs_path(target, plen)) {
        if (get)
            answer_subscriptions(c, req, target, plen, query, qlen, cors);
        else
            method_not_allowed(c, "GET, OPTIONS");
    } else if (srv->demo_tokens && path_is(target, plen, "/demo/tokens.json")) {
        if (get)
            conn_respond(c, "200 OK", "application/json", "Cache-Control: no-store\r\n", srv->demo_tokens,
                         strlen(srv->demo_tokens), 0);
        else
            method_not_allowed(c, "GET");
    } else if (path_is(target, plen, "/events")) {
        if (get)
            subscribe(c, req, query, qlen, 1, cors);
        else
            method_not_allowed(c, "GET, OPTIONS");
    } else if (path_is(target, plen, "/healthz")) {
        if (get)
            conn_respond(c, "200 OK", "text/plain; charset=utf-8", cors, "ok\n", 3, 0);
        else
            method_not_allowed(c, "GET");
    } else if (path_is(target, plen, "/metrics")) {
        if (get)
            answer_metrics(c);
        else
            method_not_allowed(c, "GET");
    } else {
        const asset_t *a = srv->cfg->demo ? assets_find(target, plen) : NULL;
        if (!a) {
            conn_refuse(c, REFUSE_NOT_FOUND, "404 Not Found", "no such path");
        } else if (!get) {
            method_not_allowed(c, "GET");
        } else {
            conn_respond(c, "200 OK", a->content_type, "Cache-Control: no-cache\r\n", (const char *)a->data,
                         a->len, 0);
        }
    }
}
