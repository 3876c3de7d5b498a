/*
 * publish.c - see publish.h.
 *
 * The form is percent-decoded into one scratch buffer the size of the body
 * (decoding never grows), and the fields point into it; the event is then
 * built with one allocation (evbuf_try_new) and the scratch freed.
 */
#include "publish.h"

#include "auth.h"
#include "id.h"
#include "journal.h"
#include "log.h"
#include "selector.h"
#include "stream.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESERVED_PREFIX "/.well-known/mercure"

typedef struct form {
    const char *topics[EVBUF_MAX_TOPICS];
    size_t topic_lens[EVBUF_MAX_TOPICS];
    size_t num_topics;
    const char *data, *id, *type, *retry;
    size_t data_len, id_len, type_len, retry_len;
    int is_private;
    const char *error_status; /* set by the field callback on a bad field */
    const char *error;
} form_t;

static int field_is(const char *n, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(n, lit, len) == 0;
}

static int form_fail(form_t *f, const char *status, const char *why)
{
    f->error_status = status;
    f->error = why;
    return 1;
}

static int on_field(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    form_t *f = ctx;
    if (field_is(name, nlen, "topic")) {
        if (f->num_topics == EVBUF_MAX_TOPICS)
            return form_fail(f, "400 Bad Request", "too many topics (at most 64)");
        f->topics[f->num_topics] = value;
        f->topic_lens[f->num_topics++] = vlen;
    } else if (field_is(name, nlen, "data")) {
        /* Repeated data fields are refused rather than silently merged. */
        if (f->data)
            return form_fail(f, "400 Bad Request", "data given more than once");
        f->data = value;
        f->data_len = vlen;
    } else if (field_is(name, nlen, "id")) {
        if (f->id)
            return form_fail(f, "400 Bad Request", "id given more than once");
        f->id = value;
        f->id_len = vlen;
    } else if (field_is(name, nlen, "type")) {
        if (f->type)
            return form_fail(f, "400 Bad Request", "type given more than once");
        f->type = value;
        f->type_len = vlen;
    } else if (field_is(name, nlen, "retry")) {
        if (f->retry)
            return form_fail(f, "400 Bad Request", "retry given more than once");
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

static int has_control(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    return 0;
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

/* Checks the decoded form; returns NULL or the reason it is refused. */
static const char *validate(const form_t *f, const char **status)
{
    *status = "400 Bad Request";
    if (f->num_topics == 0)
        return "missing topic";
    for (size_t i = 0; i < f->num_topics; i++) {
        if (f->topic_lens[i] == 0)
            return "empty topic";
        if (has_control(f->topics[i], f->topic_lens[i]))
            return "a topic contains control characters";
        /* Any topic containing /.well-known/mercure is refused, as the
         * Mercure hub does, so subscription events cannot be forged. */
        if (memmem(f->topics[i], f->topic_lens[i], RESERVED_PREFIX, strlen(RESERVED_PREFIX))) {
            *status = "403 Forbidden";
            return "topics under /.well-known/mercure are reserved";
        }
    }
    if (f->id && f->id_len) { /* an empty id is no id: one is generated */
        if (has_control(f->id, f->id_len))
            return "id contains control characters";
        if (f->id[0] == '#')
            return "id must not start with #";
        if (f->id_len == 8 && memcmp(f->id, "earliest", 8) == 0)
            return "id must not be \"earliest\"";
        if (f->id_len > 1024)
            return "id is longer than 1024 bytes";
    }
    if (f->type && has_control(f->type, f->type_len))
        return "type contains control characters";
    if (f->retry && (!all_digits(f->retry, f->retry_len) || f->retry_len > 10))
        return "retry must be a number of milliseconds";
    return NULL;
}

evbuf_t *publish_parse_form(const char *body, size_t len, const char **status, const char **reason)
{
    char *scratch = malloc(len ? len : 1);
    if (!scratch) {
        *status = "503 Service Unavailable";
        *reason = "out of memory";
        return NULL;
    }
    form_t f;
    memset(&f, 0, sizeof(f));
    evbuf_t *ev = NULL;
    int r = http1_parse_form(body, len, scratch, on_field, &f);
    if (r < 0) {
        *status = "400 Bad Request";
        *reason = "malformed form body (bad percent-encoding)";
    } else if (r > 0) {
        *status = f.error_status;
        *reason = f.error;
    } else if ((*reason = validate(&f, status)) == NULL) {
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
            *status = "503 Service Unavailable";
            *reason = "out of memory";
        }
    }
    free(scratch);
    return ev;
}

/* A 503 from the journal: counted like any refusal, but logged at debug
 * only. The journal logs an outage once (Redis lost and back, commits
 * failing and working again, its queue full); one info line per refused
 * publish would flood the log for its length. */
static void refuse_journal(conn_t *c, const char *cors_headers, const char *reason)
{
    atomic_fetch_add_explicit(&worker_stats(c->worker)->refused[REFUSE_UNAVAILABLE], 1, memory_order_relaxed);
    log_debug("fd %d refused 503 Service Unavailable: %s", c->fd, reason);
    char body[256];
    int n = snprintf(body, sizeof(body), "%s\n", reason);
    conn_respond(c, "503 Service Unavailable", "text/plain; charset=utf-8", cors_headers, body, (size_t)n,
                 c->state != CONN_RESPOND);
}

/* Hands the event (and our reference) to the journal (journal.h), the one
 * path for every journal. The memory journal publishes at once: answer
 * now. A durable one answers later through this worker's inbox
 * (worker_post_ack, then publish_on_stored): the conn waits in CONN_RESPOND
 * with nothing queued, reading nothing more. With --redis the event is not
 * given to the hub by this node: it is fanned out when read back from the
 * stream, in the stream's order, on every node alike. */
static void publish_to_journal(conn_t *c, evbuf_t *ev, const char *cors_headers)
{
    journal_t *j = worker_server(c->worker)->journal;
    uint64_t token = 0;
    if (!journal_is_memory(j) && !(token = worker__ack_wait(c->worker, c, cors_headers))) {
        evbuf_unref(ev);
        conn_refuse(c, REFUSE_UNAVAILABLE, "503 Service Unavailable", "out of memory");
        return;
    }
    log_debug("publishing %s to %s (%u bytes)", ev->id, ev->topics[0], ev->len);
    evbuf_ref(ev); /* ours, for the answer: the journal takes the other reference */
    const char *why = NULL;
    int rc = journal_try_submit(j, ev, worker_post_ack, c->worker, token, &why);
    if (rc == JOURNAL_PUBLISHED) {
        publish_on_stored(c, ev, 1, cors_headers);
    } else if (rc == JOURNAL_PENDING) {
        c->ack_token = token; /* CONN_RESPOND with nothing queued: reads wait for the answer */
    } else {
        worker__ack_cancel(c->worker, token);
        evbuf_unref(ev); /* refused: the journal's reference is still ours */
        refuse_journal(c, cors_headers, why);
    }
    evbuf_unref(ev);
}

static int is_form_content_type(const http1_request_t *req)
{
    const http1_header_t *ct = http1_find_header(req, "content-type");
    if (!ct)
        return 1; /* lenient: some clients omit it for form posts */
    const char *want = "application/x-www-form-urlencoded";
    size_t n = strlen(want);
    return ct->value_len >= n && http1_token_eq(ct->value, n, want) &&
           (ct->value_len == n || ct->value[n] == ';' || ct->value[n] == ' ');
}

/* Does every topic of `ev` match one of the token's mercure.publish
 * selectors? (draft-dunglas-mercure-07: the publisher must be allowed to
 * publish to each topic, alternates included.) */
static int topics_allowed(worker_t *w, const jwt_claims_t *claims, const evbuf_t *ev, int *oom)
{
    selector_t *sels[JWT_MAX_SELECTORS];
    size_t n = 0;
    int ok = 1;
    *oom = 0;
    for (; n < claims->num_publish; n++) {
        if (!(sels[n] = selector_try_new(claims->publish[n], strlen(claims->publish[n])))) {
            *oom = 1;
            ok = 0;
            break;
        }
    }
    for (unsigned t = 0; ok && t < ev->num_topics; t++) {
        int hit = 0;
        for (size_t i = 0; i < n && !hit; i++)
            hit = selector_cache_match(stream_match_cache(w), sels[i], ev->topics[t], ev->topic_lens[t]);
        ok = hit;
    }
    for (size_t i = 0; i < n; i++)
        selector_free(sels[i]);
    return ok;
}

/* Applies the publish policy (auth.h). Returns 1 with *claims filled when a
 * token decides (has_key set), 1 with empty claims for the loopback rule,
 * or 0 after refusing. */
static int publisher_may_post(conn_t *c, const http1_request_t *req, const char *query, size_t qlen,
                              const char *cors, jwt_claims_t *claims)
{
    server_t *srv = worker_server(c->worker);
    memset(claims, 0, sizeof(*claims));
    if (!auth_has_key(srv->auth, AUTH_PUBLISHER)) {
        /* Without a publisher key only local backends may publish, so a
         * fresh install is never an open relay. */
        if (c->peer_loopback)
            return 1;
        conn_refuse_with(c, REFUSE_FORBIDDEN, "403 Forbidden", cors,
                         "publishing is allowed from loopback addresses only (no --publisher-jwt-key)");
        return 0;
    }
    char *scratch = malloc(qlen + 1);
    const char *qtok = NULL, *why = NULL;
    size_t qtok_len = 0;
    int from_cookie = 0;
    if (!scratch || auth_query_token(query, qlen, scratch, &qtok, &qtok_len) < 0)
        qtok = NULL; /* a malformed query carries no token */
    auth_status_t st = auth_check(srv->auth, AUTH_PUBLISHER, req, qtok, qtok_len, claims, &from_cookie, &why);
    free(scratch);
    if (st != AUTH_VALID) {
        auth_refuse_401(c, cors, st == AUTH_INVALID ? why : "a publisher token is required");
        return 0;
    }
    const char *forbid = NULL;
    /* A browser sends cookies on cross-site form posts too: with the token in
     * a cookie the request must come from a --publish-origin (CSRF). */
    if (from_cookie && !auth_origin_allowed(req, srv->cfg->publish_origins, srv->cfg->num_publish_origins))
        forbid = "cookie-authorized publish from an origin not in --publish-origin";
    else if (!claims->has_publish)
        forbid = "the token has no mercure.publish claim";
    if (forbid) {
        jwt_claims_dispose(claims);
        conn_refuse_with(c, REFUSE_FORBIDDEN, "403 Forbidden", cors, forbid);
        return 0;
    }
    return 1;
}

static void refuse_form(conn_t *c, const char *status, const char *reason, const char *cors)
{
    refusal_t why = !strncmp(status, "403", 3) ? REFUSE_FORBIDDEN
                    : !strncmp(status, "5", 1) ? REFUSE_UNAVAILABLE
                                               : REFUSE_BAD_REQUEST;
    conn_refuse_with(c, why, status, cors, reason);
}

void publish_handle(conn_t *c, const http1_request_t *req, const char *query, size_t qlen, char *body,
                    size_t body_len, const char *cors_headers)
{
    jwt_claims_t claims;
    if (!publisher_may_post(c, req, query, qlen, cors_headers, &claims))
        return;
    int by_token = claims.has_publish;
    if (!is_form_content_type(req)) {
        jwt_claims_dispose(&claims);
        conn_refuse_with(c, REFUSE_BAD_REQUEST, "415 Unsupported Media Type", cors_headers,
                         "publish wants Content-Type: application/x-www-form-urlencoded");
        return;
    }
    const char *status, *reason;
    evbuf_t *ev = publish_parse_form(body, body_len, &status, &reason);
    if (!ev) {
        jwt_claims_dispose(&claims);
        refuse_form(c, status, reason, cors_headers);
        return;
    }
    int oom = 0;
    if (by_token && !topics_allowed(c->worker, &claims, ev, &oom)) {
        jwt_claims_dispose(&claims);
        evbuf_unref(ev);
        if (oom)
            refuse_form(c, "503 Service Unavailable", "out of memory", cors_headers);
        else
            conn_refuse_with(c, REFUSE_FORBIDDEN, "403 Forbidden", cors_headers,
                             "a topic of the update is outside the token's mercure.publish selectors");
        return;
    }
    jwt_claims_dispose(&claims);
    publish_to_journal(c, ev, cors_headers);
}

void publish_on_stored(conn_t *c, const evbuf_t *ev, int ok, const char *cors_headers)
{
    if (!ok) {
        refuse_journal(c, cors_headers, journal_failure_reason(worker_server(c->worker)->journal));
        return;
    }
    conn_respond(c, "200 OK", "text/plain; charset=utf-8", cors_headers, ev->id, ev->id_len, 0);
}
