/*
 * conn.c - see conn.h for the state machine and the output queue.
 *
 * Edge-triggered epoll: every socket is registered once, for EPOLLIN |
 * EPOLLOUT | EPOLLRDHUP with EPOLLET, and never modified. `readable` and
 * `writable` remember readiness we have not used up yet; a read or write
 * that returns EAGAIN clears them. So changing interest costs no syscall.
 *
 * Costs per connection (x86-64): sizeof(conn_t) bytes while idle, plus the
 * stream and its subscription links for a subscriber; the read buffer (4 KiB
 * to start) exists only while a request is being read.
 */
#include "conn.h"

#include "log.h"
#include "router.h"
#include "stream.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define CONN_RBUF_INITIAL 4096
#define CONN_WRITE_CAP_PER_TURN (1u << 20) /* fairness between connections */
#define CONN_IOV_MAX 256                   /* 25 KiB of ~100-byte events per writev */

static ssize_t write_queued(conn_t *c, size_t budget);

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

static server_t *srv_of(conn_t *c) { return worker_server(c->worker); }
static const config_t *cfg_of(conn_t *c) { return srv_of(c)->cfg; }

conn_t *conn_new(worker_t *w, int fd, int peer_loopback)
{
    conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fd = fd;
    c->worker = w;
    c->state = CONN_READ_HEAD;
    c->peer_loopback = peer_loopback ? 1 : 0;
    c->outq = c->outq_inline;
    c->outq_cap = CONN_OUTQ_INLINE;
    c->deadline_ms = worker__now_ms(w) + (int64_t)cfg_of(c)->header_timeout_s * 1000;
    return c;
}

/* ---- output queue ---------------------------------------------------------- */

static void outq_release(conn_t *c, outq_item_t *it)
{
    if (it->kind == OUT_HEAP)
        free((void *)it->ptr);
    else if (it->kind == OUT_EVENT)
        worker__wref_unref(c->worker, it->wref);
}

/* Makes room for one more item; aborts only if a tiny allocation fails,
 * since the queue depth is bounded by --max-pending-bytes. */
static outq_item_t *outq_push(conn_t *c)
{
    if (c->outq_head + c->outq_count == c->outq_cap) {
        if (c->outq_head > 0) {
            memmove(c->outq, c->outq + c->outq_head, c->outq_count * sizeof(*c->outq));
            c->outq_head = 0;
        } else {
            uint32_t ncap = c->outq_cap * 2;
            outq_item_t *n =
                c->outq == c->outq_inline ? malloc(ncap * sizeof(*n)) : realloc(c->outq, ncap * sizeof(*n));
            if (!n)
                abort();
            if (c->outq == c->outq_inline)
                memcpy(n, c->outq_inline, sizeof(c->outq_inline));
            c->outq = n;
            c->outq_cap = ncap;
        }
    }
    return &c->outq[c->outq_head + c->outq_count++];
}

static void enqueue(conn_t *c, const char *p, size_t len, outq_kind_t kind, wref_t *r)
{
    if (c->state == CONN_CLOSING) {
        if (kind == OUT_HEAP)
            free((void *)p);
        else if (kind == OUT_EVENT)
            worker__wref_unref(c->worker, r);
        return;
    }
    outq_item_t *it = outq_push(c);
    *it = (outq_item_t){p, (uint32_t)len, kind, r};
    c->out_bytes += len;
    c->last_write_ms = worker__now_ms(c->worker);
    worker__schedule_flush(c->worker, c);
}

void conn_enqueue_static(conn_t *c, const char *s, size_t len) { enqueue(c, s, len, OUT_STATIC, NULL); }

void conn_enqueue_heap(conn_t *c, char *p, size_t len) { enqueue(c, p, len, OUT_HEAP, NULL); }

int conn_try_enqueue_event(conn_t *c, wref_t *r)
{
    size_t cap = cfg_of(c)->max_pending_bytes;
    /* The cap bounds what the kernel would not take: before calling a
     * subscriber slow, offer the socket what is queued (a burst of events is
     * queued before the turn's flush). Errors are left to conn_flush, since
     * closing here would free list nodes the fan-out is walking. */
    if (c->out_bytes + r->ev->len > cap && c->writable)
        (void)write_queued(c, SIZE_MAX);
    if (c->out_bytes + r->ev->len > cap)
        return -1;
    r->refs++;
    enqueue(c, r->ev->bytes, r->ev->len, OUT_EVENT, r);
    return 0;
}

static void outq_clear(conn_t *c)
{
    for (uint32_t i = 0; i < c->outq_count; i++)
        outq_release(c, &c->outq[c->outq_head + i]);
    c->outq_head = c->outq_count = 0;
    c->out_off = 0;
    c->out_bytes = 0;
    if (c->outq != c->outq_inline) {
        free(c->outq);
        c->outq = c->outq_inline;
        c->outq_cap = CONN_OUTQ_INLINE;
    }
}

/* ---- closing ----------------------------------------------------------------- */

void conn_close(conn_t *c, const char *why)
{
    if (c->state == CONN_CLOSING)
        return;
    log_debug("fd %d closed: %s", c->fd, why);
    if (c->stream)
        stream_detach(c);
    if (c->ack_token) { /* a publish waiting for the store: its answer will be dropped */
        worker__ack_cancel(c->worker, c->ack_token);
        c->ack_token = 0;
    }
    c->state = CONN_CLOSING;
    outq_clear(c);
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
    worker__schedule_free(c->worker, c);
}

void conn_free(conn_t *c)
{
    assert(c->state == CONN_CLOSING);
    close(c->fd);
    free(c);
}

/* ---- responses ------------------------------------------------------------------ */

void conn_respond(conn_t *c, const char *status, const char *content_type, const char *extra_headers,
                  const char *body, size_t body_len, int close_after)
{
    if (close_after)
        c->keep_alive = 0;
    size_t cap = 256 + strlen(status) + strlen(content_type) + strlen(extra_headers) + body_len;
    char *buf = malloc(cap);
    if (!buf) {
        conn_close(c, "out of memory for a response");
        return;
    }
    int n = snprintf(buf, cap,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: %s\r\n%s\r\n",
                     status, content_type, body_len, c->keep_alive ? "keep-alive" : "close", extra_headers);
    assert(n > 0 && (size_t)n + body_len <= cap);
    memcpy(buf + n, body, body_len);
    c->state = CONN_RESPOND;
    conn_enqueue_heap(c, buf, (size_t)n + body_len);
}

void conn_refuse(conn_t *c, refusal_t why, const char *status, const char *reason)
{
    conn_refuse_with(c, why, status, "", reason);
}

void conn_refuse_with(conn_t *c, refusal_t why, const char *status, const char *extra_headers,
                      const char *reason)
{
    atomic_fetch_add_explicit(&worker_stats(c->worker)->refused[why], 1, memory_order_relaxed);
    log_info("fd %d refused %s: %s", c->fd, status, reason);
    char body[512];
    int n = snprintf(body, sizeof(body), "%s\n", reason);
    if (n < 0 || (size_t)n >= sizeof(body))
        n = (int)sizeof(body) - 1;
    /* A refusal before the request was fully read ends the connection: the
     * bytes after it cannot be trusted to start a new request. */
    int must_close = c->state != CONN_RESPOND;
    conn_respond(c, status, "text/plain; charset=utf-8", extra_headers, body, (size_t)n, must_close);
}

/* ---- reading requests ------------------------------------------------------------- */

static size_t request_cap(conn_t *c) { return cfg_of(c)->max_header_bytes + cfg_of(c)->max_event_bytes + 64; }

/* Grows the read buffer so that at least `want` more bytes fit, within the
 * cap. Returns 0, or -1 when the cap or memory is exhausted. */
static int rbuf_reserve(conn_t *c, size_t want)
{
    if (c->rcap - c->rlen >= want)
        return 0;
    size_t need = (size_t)c->rlen + want, cap = c->rcap ? c->rcap : CONN_RBUF_INITIAL;
    while (cap < need)
        cap *= 2;
    if (cap > request_cap(c))
        cap = request_cap(c);
    if (cap <= c->rlen)
        return -1;
    char *n = realloc(c->rbuf, cap);
    if (!n)
        return -1;
    c->rbuf = n;
    c->rcap = (uint32_t)cap;
    return 0;
}

static void start_next_request(conn_t *c)
{
    c->state = CONN_READ_HEAD;
    c->head_len = c->body_len = 0;
    c->content_length = 0;
    c->chunked = 0;
    c->got_bytes = c->rlen > 0;
    int64_t t = c->got_bytes ? cfg_of(c)->header_timeout_s : cfg_of(c)->idle_timeout_s;
    c->deadline_ms = worker__now_ms(c->worker) + t * 1000;
    if (c->rlen == 0) {
        free(c->rbuf); /* idle keep-alive connections hold no buffer */
        c->rbuf = NULL;
        c->rcap = 0;
    }
}

/* Decides how the body is framed once the head is known. Returns 0 to go
 * on, -1 after refusing. */
static int begin_body(conn_t *c, const http1_request_t *req)
{
    const http1_header_t *te = http1_find_header(req, "transfer-encoding");
    const http1_header_t *cl = http1_find_header(req, "content-length");
    if (te && cl) {
        conn_refuse(c, REFUSE_BAD_REQUEST, "400 Bad Request", "both Content-Length and Transfer-Encoding");
        return -1;
    }
    if (te) {
        if (!http1_token_eq(te->value, te->value_len, "chunked")) {
            conn_refuse(c, REFUSE_BAD_REQUEST, "501 Not Implemented",
                        "only the chunked transfer coding is supported");
            return -1;
        }
        c->chunked = 1;
        memset(&c->chunk_dec, 0, sizeof(c->chunk_dec));
    } else if (cl) {
        if (http1_parse_content_length(cl->value, cl->value_len, &c->content_length)) {
            conn_refuse(c, REFUSE_BAD_REQUEST, "400 Bad Request", "malformed Content-Length");
            return -1;
        }
        if (c->content_length > cfg_of(c)->max_event_bytes) {
            conn_refuse(c, REFUSE_BODY_TOO_LARGE, "413 Content Too Large",
                        "request body is larger than --max-event-bytes");
            return -1;
        }
    }
    c->state = CONN_READ_BODY;
    const http1_header_t *expect = http1_find_header(req, "expect");
    if (expect && http1_token_eq(expect->value, expect->value_len, "100-continue") &&
        (c->chunked || c->content_length > (uint64_t)(c->rlen - c->head_len)))
        conn_enqueue_static(c, continue_100, sizeof(continue_100) - 1);
    return 0;
}

static int parse_head(conn_t *c, http1_request_t *req)
{
    ssize_t r = http1_parse_request(c->rbuf, c->rlen, req);
    if (r == HTTP1_INCOMPLETE) {
        if (c->rlen >= cfg_of(c)->max_header_bytes)
            conn_refuse(c, REFUSE_HEADERS_TOO_LARGE, "431 Request Header Fields Too Large",
                        "request head is larger than --max-header-bytes");
        return -1;
    }
    if (r == HTTP1_TOO_MANY_HEADERS) {
        conn_refuse(c, REFUSE_HEADERS_TOO_LARGE, "431 Request Header Fields Too Large",
                    "too many header fields");
        return -1;
    }
    if (r < 0) {
        conn_refuse(c, REFUSE_BAD_REQUEST, "400 Bad Request", "malformed request");
        return -1;
    }
    if ((size_t)r > cfg_of(c)->max_header_bytes) {
        conn_refuse(c, REFUSE_HEADERS_TOO_LARGE, "431 Request Header Fields Too Large",
                    "request head is larger than --max-header-bytes");
        return -1;
    }
    c->head_len = (uint32_t)r;
    return 0;
}

/* Returns 1 when the body is complete (then *consumed is the bytes of rbuf
 * the whole request used), 0 when more is needed, -1 after refusing. */
static int read_body(conn_t *c, size_t *consumed)
{
    if (!c->chunked) {
        if ((uint64_t)(c->rlen - c->head_len) < c->content_length)
            return 0;
        c->body_len = (uint32_t)c->content_length;
        *consumed = c->head_len + c->body_len;
        return 1;
    }
    char *p = c->rbuf + c->head_len + c->body_len;
    size_t len = c->rlen - c->head_len - c->body_len;
    ssize_t r = http1_chunked_decode(&c->chunk_dec, p, &len);
    if (r == HTTP1_MALFORMED) {
        conn_refuse(c, REFUSE_BAD_REQUEST, "400 Bad Request", "malformed chunked body");
        return -1;
    }
    c->body_len += (uint32_t)len;
    if (c->body_len > cfg_of(c)->max_event_bytes) {
        conn_refuse(c, REFUSE_BODY_TOO_LARGE, "413 Content Too Large",
                    "request body is larger than --max-event-bytes");
        return -1;
    }
    if (r == HTTP1_INCOMPLETE) {
        c->rlen = c->head_len + c->body_len; /* the decoder consumed the rest */
        return 0;
    }
    /* Complete: the next request's r bytes sit right after the payload. */
    *consumed = c->head_len + c->body_len;
    c->rlen = (uint32_t)(*consumed + (size_t)r);
    return 1;
}

/* Tries the write first (STYLE: arm EPOLLOUT only for what is left): a
 * publisher gets its answer in the turn that read its request, not after
 * the turn's fan-out writes, which kept publishers waiting and fan-out
 * batches small. Whatever follows a drained queue (the next pipelined
 * request, or closing) runs from conn_flush, where the conn is already
 * scheduled, so nothing here re-enters the request parser. */
static void answer_now(conn_t *c)
{
    if (c->state != CONN_RESPOND || !c->writable || !c->outq_count)
        return;
    if (write_queued(c, CONN_WRITE_CAP_PER_TURN) < 0)
        conn_close(c, "write error");
}

/* Runs the request state machine over what is buffered. */
static void process_input(conn_t *c)
{
    http1_request_t req;
    while (c->state == CONN_READ_HEAD || c->state == CONN_READ_BODY) {
        if (c->state == CONN_READ_HEAD) {
            if (c->rlen == 0 || parse_head(c, &req))
                return;
            const http1_header_t *te = http1_find_header(&req, "transfer-encoding");
            const http1_header_t *cl = http1_find_header(&req, "content-length");
            c->keep_alive = req.minor_version >= 1;
            const http1_header_t *conn_h = http1_find_header(&req, "connection");
            if (conn_h && http1_value_has_token(conn_h->value, conn_h->value_len, "close"))
                c->keep_alive = 0;
            if (conn_h && http1_value_has_token(conn_h->value, conn_h->value_len, "keep-alive"))
                c->keep_alive = 1;
            if (te || cl) {
                if (begin_body(c, &req))
                    return;
            } else {
                c->state = CONN_READ_BODY;
            }
        }
        size_t consumed = 0;
        int r = read_body(c, &consumed);
        if (r <= 0)
            return;
        /* The head was parsed before the buffer may have moved: parse again
         * (cheap: heads are small) to get pointers into the current buffer. */
        ssize_t hr = http1_parse_request(c->rbuf, c->head_len, &req);
        assert(hr == (ssize_t)c->head_len);
        (void)hr;
        atomic_fetch_add_explicit(&worker_stats(c->worker)->requests, 1, memory_order_relaxed);
        c->state = CONN_RESPOND;
        router_handle(c, &req, c->rbuf + c->head_len, c->body_len);
        if (c->state == CONN_CLOSING)
            return;
        /* Keep pipelined bytes for after this response. */
        memmove(c->rbuf, c->rbuf + consumed, c->rlen - consumed);
        c->rlen -= (uint32_t)consumed;
        if (c->state == CONN_STREAM) {
            free(c->rbuf); /* a stream reads nothing more */
            c->rbuf = NULL;
            c->rlen = c->rcap = 0;
        }
        answer_now(c);
    }
}

/* One read(2): returns the bytes read; 0 when the socket is drained (the
 * readiness flag is cleared); -1 after closing the conn on EOF or error. */
static ssize_t read_some(conn_t *c, char *buf, size_t cap, const char *eof_why)
{
    for (;;) {
        ssize_t n = read(c->fd, buf, cap);
        if (n > 0)
            return n;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            c->readable = 0;
            return 0;
        }
        conn_close(c, n == 0 ? eof_why : "read error");
        return -1;
    }
}

/* Reads while the socket has bytes and the request needs them. */
static void read_request(conn_t *c)
{
    while (c->readable && (c->state == CONN_READ_HEAD || c->state == CONN_READ_BODY)) {
        if (rbuf_reserve(c, 2048)) {
            if (c->state == CONN_READ_HEAD)
                conn_refuse(c, REFUSE_HEADERS_TOO_LARGE, "431 Request Header Fields Too Large",
                            "request head is larger than --max-header-bytes");
            else
                conn_refuse(c, REFUSE_BODY_TOO_LARGE, "413 Content Too Large",
                            "request body is larger than --max-event-bytes");
            return;
        }
        ssize_t n = read_some(c, c->rbuf + c->rlen, c->rcap - c->rlen, "peer closed");
        if (n <= 0)
            return;
        if (!c->got_bytes) {
            c->got_bytes = 1;
            c->deadline_ms = worker__now_ms(c->worker) + (int64_t)cfg_of(c)->header_timeout_s * 1000;
        }
        c->rlen += (uint32_t)n;
        process_input(c);
    }
}

/* A stream reads nothing, but must notice the peer going away. */
static void discard_input(conn_t *c)
{
    char sink[512];
    while (c->readable && read_some(c, sink, sizeof(sink), "subscriber went away") > 0)
        ;
}

void conn_on_readable(conn_t *c)
{
    c->readable = 1;
    if (c->state == CONN_READ_HEAD || c->state == CONN_READ_BODY)
        read_request(c);
    else if (c->state == CONN_STREAM || c->state == CONN_LINGER)
        discard_input(c);
    /* In CONN_RESPOND the bytes wait until the response is written. */
}

/* ---- writing ---------------------------------------------------------------------- */

/* Pops fully written items and advances the offset into a partial one. */
static void outq_consume(conn_t *c, size_t n)
{
    c->out_bytes -= n;
    while (n) {
        outq_item_t *it = &c->outq[c->outq_head];
        size_t left = it->len - c->out_off;
        if (n < left) {
            c->out_off += (uint32_t)n;
            return;
        }
        n -= left;
        outq_release(c, it);
        c->outq_head++;
        c->outq_count--;
        c->out_off = 0;
    }
    if (c->outq_count == 0) {
        c->outq_head = 0;
        if (c->outq != c->outq_inline) {
            /* A burst grew the queue; once written, an idle subscriber goes
             * back to its inline slots (the bench saw RSS stay up otherwise). */
            free(c->outq);
            c->outq = c->outq_inline;
            c->outq_cap = CONN_OUTQ_INLINE;
        }
    }
}

/* Ends our side and waits (briefly) for the peer to close its own. */
static void linger(conn_t *c)
{
    if (c->ack_token) { /* not expected (a waiting publish queues nothing), but never answer late */
        worker__ack_cancel(c->worker, c->ack_token);
        c->ack_token = 0;
    }
    shutdown(c->fd, SHUT_WR);
    if (c->stream)
        stream_detach(c);
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
    c->state = CONN_LINGER;
    c->deadline_ms = worker__now_ms(c->worker) + CONN_LINGER_MS;
    discard_input(c); /* the peer may have closed already */
}

void conn_finish(conn_t *c)
{
    c->shut_after_flush = 1;
    if (c->outq_count == 0 && c->state != CONN_CLOSING && c->state != CONN_LINGER)
        linger(c);
}

/* Called when the queue has just become empty. */
static void on_output_drained(conn_t *c)
{
    if (c->shut_after_flush) {
        linger(c);
        return;
    }
    /* A publish waiting for the store has no answer queued yet: what just
     * drained was an interim "100 Continue". Keep waiting. */
    if (c->state != CONN_RESPOND || c->ack_token)
        return;
    if (!c->keep_alive || atomic_load(&srv_of(c)->stopping)) {
        linger(c);
        return;
    }
    start_next_request(c);
    process_input(c); /* a pipelined request may already be here */
    if (c->state == CONN_READ_HEAD || c->state == CONN_READ_BODY)
        read_request(c);
}

/* Writes queued items while the socket takes them and the budget lasts.
 * Returns the bytes written, or -1 on a socket error (the caller decides
 * whether it may close the conn now). Never calls back into anything. */
static ssize_t write_queued(conn_t *c, size_t budget)
{
    size_t done = 0;
    while (c->outq_count && done < budget) {
        struct iovec iov[CONN_IOV_MAX];
        int n = 0;
        size_t total = 0;
        for (uint32_t i = 0; i < c->outq_count && n < CONN_IOV_MAX && total < budget - done; i++) {
            const outq_item_t *it = &c->outq[c->outq_head + i];
            size_t off = i == 0 ? c->out_off : 0;
            iov[n].iov_base = (void *)(it->ptr + off);
            iov[n].iov_len = it->len - off;
            total += iov[n++].iov_len;
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            c->writable = 0; /* EPOLLOUT (edge) will bring us back */
            break;
        }
        if (w < 0)
            return -1;
        outq_consume(c, (size_t)w);
        done += (size_t)w;
    }
    atomic_fetch_add_explicit(&worker_stats(c->worker)->bytes_written, (unsigned long)done,
                              memory_order_relaxed);
    return (ssize_t)done;
}

void conn_flush(conn_t *c)
{
    if (c->state == CONN_CLOSING)
        return;
    /* The queue may already be empty: written early (an answer, right after
     * its request; or a subscriber offered the socket before being called
     * slow). What follows a drained queue still has to happen here. */
    if (c->outq_count && write_queued(c, CONN_WRITE_CAP_PER_TURN) < 0) {
        conn_close(c, "write error");
        return;
    }
    if (c->outq_count == 0)
        on_output_drained(c);
    else if (c->writable)
        worker__schedule_flush(c->worker, c); /* budget spent: go on next turn */
}

/* ---- timers ------------------------------------------------------------------------ */

void conn_on_tick(conn_t *c, int64_t now_ms)
{
    if (c->state == CONN_READ_HEAD || c->state == CONN_READ_BODY) {
        if (now_ms < c->deadline_ms)
            return;
        if (!c->got_bytes) {
            conn_close(c, "idle timeout");
            return;
        }
        conn_refuse(c, REFUSE_TIMEOUT, "408 Request Timeout", "request not received within --header-timeout");
        c->shut_after_flush = 1;
    } else if (c->state == CONN_STREAM) {
        stream_on_tick(c, now_ms);
    } else if (c->state == CONN_LINGER && now_ms >= c->deadline_ms) {
        conn_close(c, "peer did not close after the answer");
    } else if (c->state == CONN_RESPOND && now_ms >= c->deadline_ms + 60000 && c->outq_count) {
        conn_close(c, "response not read by the client");
    }
}
