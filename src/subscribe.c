/*
 * subscribe.c - see subscribe.h.
 */
#include "subscribe.h"

#include "auth.h"
#include "authanswer.h"
#include "conn.h"
#include "demo.h"
#include "dialect.h"
#include "grant.h"
#include "matchset.h"
#include "server.h"
#include "stream.h"
#include "worker.h"

#include <stdlib.h>
#include <string.h>

/* Applies the subscribe policy (auth.h) in the request's dialect. Returns 1
 * with *g filled (empty, g->dialect unset, for anonymous subscribers and
 * without a subscriber key), or 0 after refusing. */
static int may_subscribe(req_t *r, const request_t *in, grant_t *g, int *anonymous)
{
    server_t *srv = worker_server(r->conn->worker);
    const auth_t *a = srv->auth;
    const char *why = NULL;
    auth_status_t st = auth_check(a, AUTH_SUBSCRIBER, in, g, &why);
    *anonymous = st != AUTH_VALID;
    if (st == AUTH_VALID || st == AUTH_NO_KEY || (st == AUTH_NO_TOKEN && srv->cfg->anonymous))
        return 1;
    authanswer_refuse(r, in, a, st, why, "a subscriber token is required (courant runs without --anonymous)");
    return 0;
}

/* Checks what the parameters say against the route. Returns NULL or why
 * the request is refused (400). */
static const char *check_params(const request_t *in, int events_alias, dialect_sub_t *q)
{
    if (q->bad)
        return q->bad;
    if (events_alias && q->dialect == DIALECT_V1)
        return "/events speaks Mercure draft-07: topic= selectors (Mercure 1.0: /.well-known/mercure?match=)";
    if (q->num_sel == 0) {
        if (!events_alias)
            return "missing topic selector (topic= for Mercure draft-07, match= or match_urlpattern= for "
                   "1.0)";
        q->sel[0] = DEMO_CLOCK_TOPIC;
        q->sel_len[0] = strlen(DEMO_CLOCK_TOPIC);
        q->sel_type[0] = GRANT_MATCH_TEMPLATE_OR_EXACT;
        q->num_sel = 1;
    }
    /* The header (what EventSource sends on reconnection) wins over the
     * query parameter (what a client sets by hand on the first connection),
     * in both dialects. */
    const http1_header_t *lei = request_header(in, "last-event-id");
    if (lei && lei->value_len) { /* empty means none, as EventSource sends it */
        q->last_event_id = lei->value;
        q->last_event_id_len = lei->value_len;
    }
    return NULL;
}

/* draft-08, "Payloads": each subscription gets the payload of the first
 * subscribe authorization detail whose topics match its own matcher string
 * (as if it were a topic). Fills payloads[i] (borrowed from g). Returns 0,
 * or -1 when memory runs out. */
static int v1_payloads(const grant_t *g, const char *base, const dialect_sub_t *q, const char **payloads)
{
    memset(payloads, 0, q->num_sel * sizeof(*payloads));
    if (!g || !g->num_payloads)
        return 0;
    const char *why;
    matchset_t *m = matchset_try_new(g->subscribe, g->num_subscribe, base, &why);
    if (!m)
        return -1;
    for (size_t i = 0; i < q->num_sel; i++) {
        long k = matchset_first(m, q->sel[i], q->sel_len[i]);
        payloads[i] = k >= 0 ? g->subscribe[k].payload : NULL;
    }
    matchset_free(m);
    return 0;
}

static void start(req_t *r, const request_t *in, const dialect_sub_t *q)
{
    server_t *srv = worker_server(r->conn->worker);
    grant_t g;
    int anonymous = 1;
    if (!may_subscribe(r, in, &g, &anonymous))
        return;
    int v1 = in->dialect == DIALECT_V1;
    const char *payloads[DIALECT_MAX_SELECTORS];
    if (v1 && v1_payloads(anonymous ? NULL : &g, auth_resource(srv->auth), q, payloads)) {
        grant_dispose(&g);
        req_refuse(r, REFUSE_UNAVAILABLE, 503, &in->cors, "out of memory");
        return;
    }
    stream_request_t sr = {
        .selectors = q->sel,
        .selector_lens = q->sel_len,
        .selector_types = q->sel_type,
        .num_selectors = q->num_sel,
        .last_event_id = q->last_event_id,
        .last_event_id_len = q->last_event_id_len,
        .v1 = v1,
        .hdrs = &in->cors,
        .grant = anonymous ? NULL : &g,
        .payloads = v1 ? payloads : NULL,
        .anonymous = in->token_from == REQ_TOKEN_NONE,
    };
    stream_start(r, &sr);
    grant_dispose(&g);
}

void subscribe_handle(req_t *r, const request_t *in, int events_alias)
{
    /* QUERY (draft-08): the form body adds to the query */
    int query = in->method_len == 5 && !memcmp(in->method, "QUERY", 5);
    char *scratch = malloc(in->query_len + (query ? in->body_len : 0) + 1);
    if (!scratch) {
        req_refuse(r, REFUSE_UNAVAILABLE, 503, &in->cors, "out of memory");
        return;
    }
    dialect_sub_t q;
    dialect_parse_subscribe(
        in->query, in->query_len, query ? (in->body ? in->body : "") : NULL, query ? in->body_len : 0,
        (size_t)worker_server(r->conn->worker)->cfg->max_topics_per_subscribe, scratch, &q);
    const char *bad = check_params(in, events_alias, &q);
    if (bad) {
        req_refuse(r, REFUSE_BAD_REQUEST, 400, &in->cors, bad);
    } else if (in->is_head) {
        /* HEAD: what GET would answer, without the stream */
        resp_hdrs_t h = in->cors;
        resp_hdrs_add(&h, "Cache-Control", "no-cache");
        req_respond(r, 200, &h, "text/event-stream", "", 0);
    } else {
        start(r, in, &q);
    }
    free(scratch);
}
