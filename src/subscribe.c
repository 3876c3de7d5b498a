/*
 * subscribe.c - see subscribe.h.
 */
#include "subscribe.h"

#include "auth.h"
#include "conn.h"
#include "demo.h"
#include "server.h"
#include "stream.h"
#include "worker.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SELECTORS EVBUF_MAX_TOPICS

typedef struct query {
    const char *selectors[MAX_SELECTORS]; /* borrow the decoded query (scratch) */
    size_t selector_lens[MAX_SELECTORS];
    size_t num_selectors;
    size_t max_selectors; /* --max-topics-per-subscribe */
    const char *last_event_id;
    size_t last_event_id_len;
    int too_many;
} query_t;

static int on_query_pair(void *ctx, const char *n, size_t nl, const char *v, size_t vl)
{
    query_t *q = ctx;
    if (nl == 5 && !memcmp(n, "topic", 5)) {
        if (q->num_selectors == q->max_selectors) {
            q->too_many = 1;
            return 1;
        }
        q->selectors[q->num_selectors] = v;
        q->selector_lens[q->num_selectors++] = vl;
    } else if (nl == 11 && (!memcmp(n, "lastEventID", 11) || !memcmp(n, "lastEventId", 11)) && vl &&
               !q->last_event_id) {
        /* lastEventId: event-source-polyfill's spelling of the parameter */
        q->last_event_id = v;
        q->last_event_id_len = vl;
    }
    return 0;
}

/* Applies the subscribe policy (auth.h). Returns 1 with *claims filled (empty
 * for anonymous subscribers), or 0 after refusing. */
static int may_subscribe(req_t *r, const request_t *in, jwt_claims_t *claims)
{
    server_t *srv = worker_server(r->conn->worker);
    const char *why = NULL;
    auth_status_t st = auth_check(srv->auth, AUTH_SUBSCRIBER, in, claims, &why);
    if (st == AUTH_INVALID || (st == AUTH_NO_TOKEN && !srv->cfg->anonymous)) {
        resp_hdrs_t h = in->cors;
        auth_add_challenge(&h);
        req_refuse(r, REFUSE_UNAUTHORIZED, 401, &h,
                   st == AUTH_INVALID ? why
                                      : "a subscriber token is required (courant runs without --anonymous)");
        return 0;
    }
    return 1;
}

/* Reads the query into *q (pointing into scratch). Returns NULL or why the
 * request is refused. */
static const char *read_query(const request_t *in, char *scratch, int events_alias, query_t *q)
{
    if (http1_parse_form(in->query, in->query_len, scratch, on_query_pair, q) < 0)
        return "malformed query string";
    if (q->too_many)
        return "too many topic selectors (--max-topics-per-subscribe)";
    for (size_t i = 0; i < q->num_selectors; i++)
        if (q->selector_lens[i] == 0 || memchr(q->selectors[i], 0, q->selector_lens[i]))
            return "empty or invalid topic selector";
    if (q->num_selectors == 0) {
        if (!events_alias)
            return "missing topic selector";
        q->selectors[0] = DEMO_CLOCK_TOPIC;
        q->selector_lens[0] = strlen(DEMO_CLOCK_TOPIC);
        q->num_selectors = 1;
    }
    /* The header (what EventSource sends on reconnection) wins over the
     * query parameter (what a client sets by hand on the first connection). */
    const http1_header_t *lei = request_header(in, "last-event-id");
    if (lei && lei->value_len) { /* empty means none, as EventSource sends it */
        q->last_event_id = lei->value;
        q->last_event_id_len = lei->value_len;
    }
    return NULL;
}

void subscribe_handle(req_t *r, const request_t *in, int events_alias)
{
    char *scratch = malloc(in->query_len + 1);
    if (!scratch) {
        req_refuse(r, REFUSE_UNAVAILABLE, 503, &in->cors, "out of memory");
        return;
    }
    query_t q;
    memset(&q, 0, sizeof(q));
    q.max_selectors = (size_t)worker_server(r->conn->worker)->cfg->max_topics_per_subscribe;
    const char *bad = read_query(in, scratch, events_alias, &q);
    jwt_claims_t claims;
    if (bad) {
        req_refuse(r, REFUSE_BAD_REQUEST, 400, &in->cors, bad);
    } else if (in->is_head) {
        /* HEAD: what GET would answer, without the stream */
        resp_hdrs_t h = in->cors;
        resp_hdrs_add(&h, "Cache-Control", "no-cache");
        req_respond(r, 200, &h, "text/event-stream", "", 0);
    } else if (may_subscribe(r, in, &claims)) {
        stream_request_t sr = {
            .selectors = q.selectors,
            .selector_lens = q.selector_lens,
            .num_selectors = q.num_selectors,
            .last_event_id = q.last_event_id,
            .last_event_id_len = q.last_event_id_len,
            .hdrs = &in->cors,
            .claims = claims.subscribe,
            .num_claims = claims.num_subscribe,
            .token_exp_s = claims.exp,
            .payload = claims.payload,
            .anonymous = in->token_from == REQ_TOKEN_NONE,
        };
        stream_start(r, &sr);
        jwt_claims_dispose(&claims);
    }
    free(scratch);
}
