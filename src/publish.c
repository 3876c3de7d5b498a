/*
 * publish.c - see publish.h.
 *
 * The form is percent-decoded into one scratch buffer the size of the body
 * (decoding never grows), and the fields point into it; the event is then
 * built with one allocation (evbuf_try_new) and the scratch freed.
 */
#include "publish.h"

#include "acks.h"
#include "auth.h"
#include "authanswer.h"
#include "conn.h"
#include "dialect.h"
#include "grant.h"
#include "hub.h"
#include "id.h"
#include "journal.h"
#include "log.h"
#include "matchset.h"
#include "server.h"
#include "url.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RESERVED_PREFIX "/.well-known/mercure"
#define DEFAULT_HUB_URL "http://localhost/.well-known/mercure"
#define MAX_ID_LEN 1024

typedef struct form {
    const char *topics[EVBUF_MAX_TOPICS];
    size_t topic_lens[EVBUF_MAX_TOPICS];
    size_t num_topics;
    const char *data, *id, *type, *retry;
    size_t data_len, id_len, type_len, retry_len;
    int is_private;
    int v1;           /* Mercure 1.0 rules */
    int error_status; /* set by the field callback on a bad field */
    const char *error;
} form_t;

static int field_is(const char *n, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(n, lit, len) == 0;
}

static int form_fail(form_t *f, int status, const char *why)
{
    f->error_status = status;
    f->error = why;
    return 1;
}

static int on_field(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    form_t *f = ctx;
    if (field_is(name, nlen, "topic")) {
        if (f->num_topics == EVBUF_MAX_TOPICS) /* draft-08: a limit on topic fields is a 413 */
            return form_fail(f, f->v1 ? 413 : 400, "too many topics (at most 64)");
        f->topics[f->num_topics] = value;
        f->topic_lens[f->num_topics++] = vlen;
    } else if (field_is(name, nlen, "data")) {
        /* Repeated data fields are refused rather than silently merged. */
        if (f->data)
            return form_fail(f, 400, "data given more than once");
        f->data = value;
        f->data_len = vlen;
    } else if (field_is(name, nlen, "id")) {
        if (f->id)
            return form_fail(f, 400, "id given more than once");
        f->id = value;
        f->id_len = vlen;
    } else if (field_is(name, nlen, "type")) {
        if (f->type)
            return form_fail(f, 400, "type given more than once");
        f->type = value;
        f->type_len = vlen;
    } else if (field_is(name, nlen, "retry")) {
        if (f->retry)
            return form_fail(f, 400, "retry given more than once");
        if (vlen) { /* an empty retry is no retry, as in the Mercure hub */
            f->retry = value;
            f->retry_len = vlen;
        }
    } else if (field_is(name, nlen, "private")) {
        f->is_private = 1; /* any value, "on" by HTML forms */
    }
    /* Unknown fields are ignored, as the Mercure hub does. */
    return 0;
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Decodes %XX of RFC 3986 unreserved characters in place (draft-08: the
 * reserved-namespace test compares paths with those decoded). Returns the
 * new length. */
static size_t decode_unreserved(char *p, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (p[i] == '%' && i + 2 < len && (hi = hex_value(p[i + 1])) >= 0 &&
            (lo = hex_value(p[i + 2])) >= 0) {
            char c = (char)(hi << 4 | lo);
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                c == '.' || c == '_' || c == '~') {
                p[o++] = c;
                i += 2;
                continue;
            }
        }
        p[o++] = p[i];
    }
    return o;
}

/* Is `path` (len bytes) `hub` or below it ("hub/...")? */
static int under(const char *path, size_t len, const char *hub, size_t hl)
{
    return hl && len >= hl && !memcmp(path, hub, hl) && (len == hl || path[hl] == '/');
}

int publish_topic_is_reserved(const char *topic, size_t len, const char *hub_url)
{
    url_t base, u;
    url_init(&base);
    url_init(&u);
    if (!hub_url)
        hub_url = DEFAULT_HUB_URL;
    int reserved = 0;
    /* The WHATWG parser removes dot segments, "%2e" spelled ones included. */
    if (!url_try_parse(hub_url, strlen(hub_url), NULL, &base) && !url_try_parse(topic, len, &base, &u) &&
        !u.opaque_path) {
        size_t pl = decode_unreserved(u.path.p ? u.path.p : (char[1]){0}, u.path.len);
        const char *path = url_str_ptr(&u.path), *hub = url_str_ptr(&base.path);
        reserved = under(path, pl, RESERVED_PREFIX, strlen(RESERVED_PREFIX)) ||
                   (strcmp(hub, "/") && under(path, pl, hub, base.path.len));
    }
    url_dispose(&u);
    url_dispose(&base);
    return reserved;
}

static int has_control(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    return 0;
}

/* A field value's characters: draft-07 refuses C0 and DEL (they would
 * break the SSE framing); draft-08 wants UTF-8 without C0, C1, DEL or
 * Unicode format characters. */
static int bad_chars(const form_t *f, const char *s, size_t len)
{
    return f->v1 ? !grant_string_ok(s, len) : has_control(s, len);
}

static int all_digits(const char *s, size_t len)
{
    if (!len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static const char *validate_topics(const form_t *f, const char *hub_url, int *status)
{
    if (f->num_topics == 0)
        return "missing topic";
    for (size_t i = 0; i < f->num_topics; i++) {
        const char *t = f->topics[i];
        size_t tl = f->topic_lens[i];
        if (tl == 0)
            return "empty topic";
        if (bad_chars(f, t, tl))
            return f->v1 ? "a topic is not UTF-8 or holds a control or format character"
                         : "a topic contains control characters";
        if (f->v1 && tl == 1 && t[0] == '*')
            return "the topic * is reserved for the wildcard matcher";
        /* Subscription events cannot be forged: draft-07 refuses any topic
         * containing the hub's path (as the Mercure hub does), and both
         * dialects refuse a topic whose resolved path is in the namespace. */
        int substring = !f->v1 && memmem(t, tl, RESERVED_PREFIX, strlen(RESERVED_PREFIX));
        if (substring || publish_topic_is_reserved(t, tl, hub_url)) {
            *status = f->v1 ? 400 : 403;
            return "topics under /.well-known/mercure are reserved for the hub";
        }
    }
    return NULL;
}

/* Checks the decoded form; returns NULL or the reason it is refused. */
static const char *validate(const form_t *f, const char *hub_url, int *status)
{
    *status = 400;
    const char *why = validate_topics(f, hub_url, status);
    if (why)
        return why;
    if (f->id && f->id_len) { /* an empty id is no id: one is generated */
        if (bad_chars(f, f->id, f->id_len))
            return f->v1 ? "id is not UTF-8 or holds a control or format character"
                         : "id contains control characters";
        if (f->id[0] == '#')
            return "id must not start with #";
        if (f->id_len == 8 && memcmp(f->id, "earliest", 8) == 0)
            return "id must not be \"earliest\"";
        if (f->id_len > MAX_ID_LEN) {
            *status = f->v1 ? 413 : 400;
            return "id is longer than 1024 bytes";
        }
    }
    if (f->type && bad_chars(f, f->type, f->type_len))
        return f->v1 ? "type is not UTF-8 or holds a control or format character"
                     : "type contains control characters";
    if (f->type && f->type_len == 7 && !memcmp(f->type, "mercure", 7))
        return "type mercure is reserved for the hub's own events";
    if (f->retry && (!all_digits(f->retry, f->retry_len) || f->retry_len > 10))
        return "retry must be a number of milliseconds";
    if (f->v1 && f->data && !url_is_utf8(f->data, f->data_len))
        return "data is not UTF-8";
    return NULL;
}

evbuf_t *publish_parse_form(const char *body, size_t len, const publish_rules_t *rules, int *status,
                            const char **reason)
{
    char *scratch = malloc(len ? len : 1);
    if (!scratch) {
        *status = 503;
        *reason = "out of memory";
        return NULL;
    }
    form_t f;
    memset(&f, 0, sizeof(f));
    f.v1 = rules && rules->v1;
    evbuf_t *ev = NULL;
    int r = http1_parse_form(body, len, scratch, on_field, &f);
    if (r < 0) {
        *status = 400;
        *reason = "malformed form body (bad percent-encoding)";
    } else if (r > 0) {
        *status = f.error_status;
        *reason = f.error;
    } else if ((*reason = validate(&f, rules ? rules->hub_url : NULL, status)) == NULL) {
        char made_id[ID_UUID_URN_LEN + 1];
        if (!f.id || !f.id_len) { /* "If omitted, the hub MUST generate" one */
            id_new_uuid7(made_id);
            f.id = made_id;
            f.id_len = ID_UUID_URN_LEN;
        }
        evbuf_spec_t spec = {
            .id = f.id,
            .id_len = f.id_len,
            .type = f.type_len ? f.type : NULL,
            .type_len = f.type_len,
            .data = f.data ? f.data : "",
            .data_len = f.data_len,
            .retry = f.retry ? strtoll(f.retry, NULL, 10) : -1,
            .topics = f.topics,
            .topic_lens = f.topic_lens,
            .num_topics = f.num_topics,
            .is_private = f.is_private,
        };
        ev = evbuf_try_new(&spec);
        if (!ev) {
            *status = 503;
            *reason = "out of memory";
        }
    }
    free(scratch);
    return ev;
}

/* ---- who may publish ------------------------------------------------------------ */

static int is_form_content_type(const request_t *in)
{
    const http1_header_t *ct = request_header(in, "content-type");
    if (!ct)
        return 1; /* lenient: some clients omit it for form posts */
    const char *want = "application/x-www-form-urlencoded";
    size_t n = strlen(want);
    return ct->value_len >= n && http1_token_eq(ct->value, n, want) &&
           (ct->value_len == n || ct->value[n] == ';' || ct->value[n] == ' ');
}

/* The host[:port] of an Origin value ("null" and garbage give 0). */
static size_t origin_host(const char *v, size_t len, const char **host)
{
    const char *sep = memmem(v, len, "://", 3);
    if (!sep)
        return 0;
    *host = sep + 3;
    return len - (size_t)(*host - v);
}

/* Without a publisher key: a loopback peer, and nothing a browser or a
 * proxy adds when it relays someone else's request. Returns NULL or why not. */
static const char *keyless_refusal(const request_t *in)
{
    if (!in->peer_loopback)
        return "publishing is allowed from loopback addresses only (no --publisher-jwt-key)";
    static const char *const relayed[] = {"forwarded", "x-forwarded-for", "via"};
    for (size_t i = 0; i < sizeof(relayed) / sizeof(relayed[0]); i++)
        if (request_header(in, relayed[i]))
            return "a relayed request (Forwarded, X-Forwarded-For or Via) may not publish without "
                   "--publisher-jwt-key";
    const http1_header_t *sfs = request_header(in, "sec-fetch-site");
    if (sfs && http1_token_eq(sfs->value, sfs->value_len, "cross-site"))
        return "a cross-site browser request may not publish without --publisher-jwt-key";
    const http1_header_t *origin = request_header(in, "origin");
    if (origin) {
        const http1_header_t *host = request_header(in, "host");
        const char *oh;
        size_t ol = origin_host(origin->value, origin->value_len, &oh);
        if (!host || !ol || ol != host->value_len || strncasecmp(oh, host->value, ol) != 0)
            return "a browser request from another origin may not publish without --publisher-jwt-key";
    }
    return NULL;
}

/* Applies the publish policy with a publisher key. Returns 1 with *g
 * filled, or 0 after refusing. */
static int token_may_publish(req_t *r, const request_t *in, grant_t *g)
{
    server_t *srv = worker_server(r->conn->worker);
    const char *why = NULL;
    auth_status_t st = auth_check(srv->auth, AUTH_PUBLISHER, in, g, &why);
    if (st != AUTH_VALID) {
        authanswer_refuse(r, in, srv->auth, st, why, "a publisher token is required");
        return 0;
    }
    const char *no = NULL;
    /* A browser sends cookies on cross-site form posts too: with the token in
     * a cookie the request must come from a --publish-origin (CSRF). */
    if (in->token_from == REQ_TOKEN_COOKIE &&
        !auth_origin_allowed(in, srv->cfg->publish_origins, srv->cfg->num_publish_origins))
        no = "cookie-authorized publish from an origin not in --publish-origin";
    else if (!g->has_publish)
        no = g->dialect == GRANT_V1 ? "the token grants no publish action (authorization_details)"
                                    : "the token has no mercure.publish claim";
    if (no) {
        grant_dispose(g);
        authanswer_forbid(r, in, srv->auth, no);
        return 0;
    }
    return 1;
}

/* Returns 1 with *g filled (empty for the keyless rule), or 0 after
 * refusing. */
static int may_publish(req_t *r, const request_t *in, grant_t *g)
{
    server_t *srv = worker_server(r->conn->worker);
    memset(g, 0, sizeof(*g));
    if (auth_has_key(srv->auth, AUTH_PUBLISHER))
        return token_may_publish(r, in, g);
    const char *why = keyless_refusal(in);
    if (why) {
        req_refuse(r, REFUSE_FORBIDDEN, 403, &in->cors, why);
        return 0;
    }
    return 1;
}

long publish_on_head(req_t *r, request_t *in)
{
    grant_t g;
    if (!may_publish(r, in, &g))
        return -1;
    grant_dispose(&g);
    if (!is_form_content_type(in)) {
        req_refuse(r, REFUSE_BAD_REQUEST, 415, &in->cors,
                   "publish wants Content-Type: application/x-www-form-urlencoded");
        return -1;
    }
    return (long)worker_server(r->conn->worker)->cfg->max_event_bytes;
}

/* Does every topic of `ev` match one of the token's publish matchers?
 * (draft-07 and draft-08 alike: the publisher must be allowed to publish
 * to each topic, alternates included.) -1 when memory runs out. */
static int topics_allowed(const grant_t *g, const char *base, const evbuf_t *ev)
{
    const char *why;
    matchset_t *m = matchset_try_new(g->publish, g->num_publish, base, &why);
    if (!m)
        return -1;
    int ok = 1;
    for (unsigned t = 0; ok && t < ev->num_topics; t++)
        ok = matchset_first(m, ev->topics[t], ev->topic_lens[t]) >= 0;
    matchset_free(m);
    return ok;
}

/* ---- answering ---------------------------------------------------------------------- */

static refusal_t refusal_of(int status)
{
    return status == 403   ? REFUSE_FORBIDDEN
           : status == 413 ? REFUSE_BODY_TOO_LARGE
           : status >= 500 ? REFUSE_UNAVAILABLE
                           : REFUSE_BAD_REQUEST;
}

/* ---- pacing (--publish-wait-lag, --publish-refuse-lag) ------------------------------
 *
 * The answer to a publish is what paces a publisher that waits for it. An
 * event is published (ordered, in history, in every inbox) at once; only its
 * answer is held while the fan-out lags more than --publish-wait-lag behind
 * (worker_fanout_lag_ns): the publisher slows down to what the workers
 * write, and the backlog, hence the latency of a burst, stays near the
 * bound instead of growing with the burst. A publisher that does not wait
 * for answers (many connections) is refused past --publish-refuse-lag.
 * Held answers go through the ack table, like a durable journal's, so a
 * publisher that leaves meanwhile costs nothing (acks.h). */

static int64_t lag_bound_ns(const req_t *r, int refuse)
{
    const config_t *cfg = worker_server(r->conn->worker)->cfg;
    return (int64_t)(refuse ? cfg->publish_refuse_lag_ms : cfg->publish_wait_lag_ms) * 1000000;
}

/* A held answer's release (worker.c, release_held): the 200 goes out now.
 * `data` is the copy of the CORS fields answer_or_hold made. */
static void on_release(void *ctx, void *data, evbuf_t *ev, int ok)
{
    req_t *r = ctx;
    (void)ok; /* a release is always a success; a peer that left is dropped by acks */
    req_set_ack_token(r, 0);
    req_respond(r, 200, data, "text/plain; charset=utf-8", ev->id, ev->id_len);
}

/* Answers 200 with the id now, or holds the answer while the fan-out lags
 * (the req is REQ_WAITING then). `cors` is copied when held. */
static void answer_or_hold(req_t *r, const resp_hdrs_t *cors, evbuf_t *ev)
{
    worker_t *w = r->conn->worker;
    int64_t bound = lag_bound_ns(r, 0);
    if (bound && worker_pacing_lag_ns(worker_server(w)) > bound) {
        resp_hdrs_t *copy = resp_hdrs_dup(cors);
        uint64_t token = copy ? acks_try_wait(worker__acks(w), on_release, r, copy) : 0;
        if (token && worker__hold_answer(w, token, ev) == 0) {
            req_wait(r, token);
            return;
        }
        if (token)
            acks_cancel(worker__acks(w), token); /* out of memory: answer at once rather than fail */
    }
    req_respond(r, 200, cors, "text/plain; charset=utf-8", ev->id, ev->id_len);
}

/* The journal's verdict for a waiting publish (acks.h), or the release of a
 * held answer, on its worker. A 503 is logged at debug only: the journal
 * logs an outage once, and a line per refused publish would flood the log
 * for its length. */
static void on_answer(void *ctx, void *data, evbuf_t *ev, int ok)
{
    req_t *r = ctx;
    const resp_hdrs_t *cors = data;
    req_set_ack_token(r, 0);
    if (ok) {
        req_note_enqueued(r);        /* the journal accepted it (worker.h, publish_enqueue) */
        answer_or_hold(r, cors, ev); /* a durable journal's ack may be held on too */
    } else {
        req_refuse_quietly(r, REFUSE_UNAVAILABLE, 503, cors,
                           journal_failure_reason(worker_server(r->conn->worker)->journal));
    }
}

/* Past --publish-refuse-lag: 503 with Retry-After, nothing published.
 * Returns 1 when refused. */
static int refused_for_lag(req_t *r, const request_t *in)
{
    int64_t bound = lag_bound_ns(r, 1);
    if (!bound || worker_pacing_lag_ns(worker_server(r->conn->worker)) <= bound)
        return 0;
    atomic_fetch_add_explicit(&worker_stats(r->conn->worker)->lag_refusals, 1, memory_order_relaxed);
    resp_hdrs_t h = in->cors;
    resp_hdrs_add(&h, "Retry-After", "1");
    req_refuse_quietly(r, REFUSE_UNAVAILABLE, 503, &h,
                       "subscribers are more than --publish-refuse-lag behind; retry");
    return 1;
}

/* Hands the event (and the caller's reference) to the journal (journal.h),
 * the one path for every journal. The memory journal publishes at once:
 * answer now (or hold the answer, pacing). A durable one answers later
 * through this worker's inbox and ack table: the request waits
 * (REQ_WAITING), reading nothing more. With --redis the event is not given
 * to the hub here: it is fanned out when it is read back from the stream,
 * in the stream's order, on every node alike. */
static void submit(req_t *r, const request_t *in, evbuf_t *ev)
{
    worker_t *w = r->conn->worker;
    journal_t *j = worker_server(w)->journal;
    if (refused_for_lag(r, in)) {
        evbuf_unref(ev);
        return;
    }
    uint64_t token = 0;
    if (!journal_is_memory(j)) {
        resp_hdrs_t *cors = resp_hdrs_dup(&in->cors);
        if (!cors || !(token = acks_try_wait(worker__acks(w), on_answer, r, cors))) {
            evbuf_unref(ev);
            req_refuse(r, REFUSE_UNAVAILABLE, 503, &in->cors, "out of memory");
            return;
        }
    }
    log_debug("publishing %s to %s (%u bytes)", ev->id, ev->topics[0], ev->len);
    evbuf_ref(ev); /* ours, for the answer: the journal takes the other reference */
    const char *why = NULL;
    int rc = journal_try_submit(j, ev, worker_post_ack, w, token, &why);
    if (rc == JOURNAL_PUBLISHED) {
        req_note_enqueued(r); /* in the hub (worker.h, publish_enqueue) */
        answer_or_hold(r, &in->cors, ev);
    } else if (rc == JOURNAL_PENDING) {
        req_wait(r, token);
    } else {
        acks_cancel(worker__acks(w), token);
        evbuf_unref(ev); /* refused: the journal's reference is still ours */
        req_refuse_quietly(r, REFUSE_UNAVAILABLE, 503, &in->cors, why);
    }
    evbuf_unref(ev);
}

void publish_handle(req_t *r, request_t *in)
{
    server_t *srv = worker_server(r->conn->worker);
    grant_t g;
    if (!may_publish(r, in, &g))
        return;
    int by_token = g.has_publish;
    /* The dialect: the token's, or for a keyless publish what its
     * (unverified) token would say, else draft-07. */
    publish_rules_t rules = {.v1 = in->dialect == DIALECT_V1, .hub_url = auth_resource(srv->auth)};
    int status;
    const char *reason;
    evbuf_t *ev = publish_parse_form(in->body, in->body_len, &rules, &status, &reason);
    if (!ev) {
        grant_dispose(&g);
        req_refuse(r, refusal_of(status), status, &in->cors, reason);
        return;
    }
    int ok = by_token ? topics_allowed(&g, auth_resource(srv->auth), ev) : 1;
    grant_dispose(&g);
    if (ok <= 0) {
        evbuf_unref(ev);
        if (ok < 0)
            req_refuse(r, REFUSE_UNAVAILABLE, 503, &in->cors, "out of memory");
        else
            authanswer_forbid(
                r, in, srv->auth,
                rules.v1 ? "a topic of the update is outside the token's publish authorization details"
                         : "a topic of the update is outside the token's mercure.publish selectors");
        return;
    }
    submit(r, in, ev);
}
