/*
 * req.c - see req.h. The protocol-free half of an exchange: header field
 * building, refusals (a log line and a counter each), and the dispatch to
 * the protocol that carries the request.
 */
#include "req.h"

#include "accesslog.h"
#include "acks.h"
#include "conn.h"
#include "log.h"
#include "stream.h"
#include "worker.h"

#include <assert.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const refusal_names[REFUSE__COUNT] = {
    "bad_request",   "not_found", "method_not_allowed", "headers_too_large", "body_too_large", "timeout",
    "over_capacity", "forbidden", "unavailable",        "unauthorized",      "rate_limited",
};

/* ---- response header fields ------------------------------------------------------ */

void resp_hdrs_init(resp_hdrs_t *h)
{
    h->n = 0;
    h->used = 0;
    h->overflow = 0;
}

void resp_hdrs_add(resp_hdrs_t *h, const char *name, const char *value)
{
    size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
    if (h->used + nl + vl > sizeof(h->buf)) {
        h->overflow = 1;
        return;
    }
    memcpy(h->buf + h->used, name, nl);
    memcpy(h->buf + h->used + nl, value, vl);
    h->used = (uint16_t)(h->used + nl + vl);
    h->n++;
}

void resp_hdrs_addf(resp_hdrs_t *h, const char *name, const char *fmt, ...)
{
    char value[RESP_HDRS_BYTES];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(value)) {
        h->overflow = 1;
        return;
    }
    resp_hdrs_add(h, name, value);
}

void resp_hdrs_append(resp_hdrs_t *h, const resp_hdrs_t *more)
{
    size_t pos = 0;
    const char *value, *name;
    while ((name = resp_hdrs_next(more, &pos, &value)))
        resp_hdrs_add(h, name, value);
    h->overflow |= more->overflow;
}

resp_hdrs_t *resp_hdrs_dup(const resp_hdrs_t *h)
{
    size_t size = offsetof(resp_hdrs_t, buf) + h->used;
    resp_hdrs_t *copy = malloc(size);
    if (copy)
        memcpy(copy, h, size);
    return copy;
}

const char *resp_hdrs_next(const resp_hdrs_t *h, size_t *pos, const char **value)
{
    if (*pos >= h->used)
        return NULL;
    const char *name = h->buf + *pos;
    *value = name + strlen(name) + 1;
    *pos = (size_t)(*value - h->buf) + strlen(*value) + 1;
    return name;
}

/* ---- the request --------------------------------------------------------------------- */

const http1_header_t *request_header(const request_t *in, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < in->num_headers; i++) {
        const http1_header_t *h = &in->headers[i];
        if (h->name_len == nl && http1_token_eq(h->name, nl, name))
            return h;
    }
    return NULL;
}

/* ---- the exchange ----------------------------------------------------------------------- */

void req_init(req_t *r, const req_ops_t *ops, struct conn *c)
{
    memset(r, 0, sizeof(*r));
    r->ops = ops;
    r->conn = c;
}

static int64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the access log (accesslog.h) -------------------------------------------------- */

/* Writes the request's line now and forgets its record. A request the
 * router never saw (a malformed head) gets a record on the spot. */
static void access_done(req_t *r, int status, uint64_t bytes)
{
    if (!r->alog) {
        if (!accesslog_enabled())
            return;
        r->alog = accesslog_rec_new("-", 1, "-", 1, "", 0, &r->conn->peer, r->head_us);
        if (!r->alog)
            return;
    }
    r->alog->status = (uint16_t)status;
    r->alog->bytes += bytes;
    accesslog_rec_finish(r->alog, monotonic_us());
    r->alog = NULL;
}

void req_respond(req_t *r, int status, const resp_hdrs_t *h, const char *content_type, const char *body,
                 size_t len)
{
    assert(r->state == REQ_HANDLING || r->state == REQ_WAITING);
    r->state = REQ_ANSWERED;
    /* Logged first: respond may close the connection (out of memory), and
     * req_on_abort must not log the request a second time. */
    access_done(r, status, r->is_head ? 0 : len);
    r->ops->respond(r, status, h, content_type, body, len);
}

static void refuse(req_t *r, refusal_t why, int status, const resp_hdrs_t *h, const char *reason,
                   log_level_t level)
{
    atomic_fetch_add_explicit(&worker_stats(r->conn->worker)->refused[why], 1, memory_order_relaxed);
    if (log_get_level() <= level)
        log_msg(level, "fd %d refused %d %s: %s", conn_fd(r->conn), status, req_status_text(status), reason);
    char body[512];
    int n = snprintf(body, sizeof(body), "%s\n", reason);
    if (n < 0 || (size_t)n >= sizeof(body))
        n = (int)sizeof(body) - 1;
    req_respond(r, status, h, "text/plain; charset=utf-8", body, (size_t)n);
}

void req_refuse(req_t *r, refusal_t why, int status, const resp_hdrs_t *h, const char *reason)
{
    refuse(r, why, status, h, reason, LOG_INFO);
}

void req_refuse_quietly(req_t *r, refusal_t why, int status, const resp_hdrs_t *h, const char *reason)
{
    refuse(r, why, status, h, reason, LOG_DEBUG);
}

int req_try_stream_begin(req_t *r, const resp_hdrs_t *h)
{
    assert(r->state == REQ_HANDLING);
    if (r->ops->stream_begin(r, h))
        return -1;
    r->state = REQ_STREAMING;
    if (r->alog)
        r->alog->status = 200; /* its line is written when the stream ends */
    return 0;
}

int req_try_push_event(req_t *r, wref_t *w)
{
    assert(r->state == REQ_STREAMING);
    if (r->ops->push(r, w, w->ev->bytes, w->ev->len, 0))
        return -1;
    if (r->alog)
        r->alog->bytes += w->ev->len;
    return 0;
}

void req_push_bytes(req_t *r, const char *p, size_t len, int heap)
{
    (void)r->ops->push(r, NULL, p, len, heap);
    if (r->alog)
        r->alog->bytes += len;
}

void req_push_heap(req_t *r, char *p, size_t len) { req_push_bytes(r, p, len, 1); }

void req_end(req_t *r)
{
    if (r->state != REQ_STREAMING)
        return;
    r->state = REQ_ENDING;
    r->ops->end(r);
}

void req_reset(req_t *r, const char *why) { r->ops->reset(r, why); }

size_t req_pending(const req_t *r) { return r->ops->pending(r); }

void req_wait(req_t *r, uint64_t token)
{
    assert((r->state == REQ_HANDLING || r->state == REQ_WAITING) && token);
    r->state = REQ_WAITING;
    req_set_ack_token(r, token);
}

void req_note_enqueued(req_t *r)
{
    if (r->head_us)
        histo_record(&worker_stats(r->conn->worker)->publish_enqueue, monotonic_us() - r->head_us);
}

void req_on_abort(req_t *r)
{
    if (r->alog) /* a stream's end, or a request whose client left before its answer */
        access_done(r, r->alog->status ? r->alog->status : 499, 0);
    req_feed_t *feed = req_feed(r);
    if (feed) {
        feed->on_abort(r);
        req_set_feed(r, NULL);
    }
    if (req_stream(r))
        stream_detach(r); /* clears it */
    uint64_t token = req_ack_token(r);
    if (token) { /* a publish waiting for the journal: its answer will be dropped */
        acks_cancel(worker__acks(r->conn->worker), token);
        req_set_ack_token(r, 0);
    }
    r->state = REQ_IDLE;
}

const char *req_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "";
    }
}
