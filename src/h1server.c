/*
 * h1server.c - see h1server.h for the state machine.
 *
 * Stream responses are close-delimited HTTP/1.1: headers with "Connection:
 * close" and no Content-Length, then raw event-stream bytes. That is valid
 * HTTP (RFC 9112, 6.3) and lets every event go from its shared evbuf to the
 * socket untouched.
 */
#include "h1server.h"

#include "log.h"
#include "server.h"
#include "stream.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef enum h1_phase {
    H1_READ_HEAD, /* waiting for (the rest of) a request head */
    H1_READ_BODY, /* head accepted, reading its body */
    H1_RESPOND,   /* the request is handled: its answer is queued or awaited */
    H1_STREAM,    /* an event stream: output only */
    H1_HANDED,    /* handed over to HTTP/2 (server_t.h2_take_over): h1 state unused */
} h1_phase_t;

/* The state of a request being read; allocated on its first byte, freed
 * once it is handled (streams and idle connections hold none). */
typedef struct h1_reading {
    http1_head_scan_t scan;  /* how far the head has been scanned (each byte once) */
    uint32_t head_len;       /* request head bytes, once complete */
    uint32_t body_len;       /* decoded body bytes after the head */
    uint32_t reserved;       /* bytes counted in server_t.body_bytes */
    uint32_t head_reserved;  /* bytes counted in server_t.head_bytes (head_reserve) */
    uint64_t content_length; /* READ_BODY without chunked */
    uint64_t body_limit;     /* what the route accepts (handler->on_head) */
    uint8_t chunked;         /* the body is chunked */
    http1_chunked_decoder_t chunk_dec;
} h1_reading_t;

typedef struct h1conn {
    conn_t conn;                /* must be first: the worker frees a conn_t */
    req_t req;                  /* the one request in progress */
    h1_reading_t *rd;           /* owns; non-NULL while a request is being read */
    uint8_t phase;              /* h1_phase_t */
    uint8_t keep_alive : 1;     /* after this answer, read the next request */
    uint8_t got_bytes : 1;      /* the current request has started arriving */
    uint8_t complete : 1;       /* the whole current request was read */
    uint8_t chunked_stream : 1; /* the stream's body is chunked (HTTP/1.1) */
    uint8_t served : 1;         /* a request was handled: an HTTP/2 preface is no longer looked for */
    uint8_t version;            /* 10 or 11 */
    uint32_t stream_input;      /* bytes the peer sent after its stream request */
    uint32_t pending_cap;       /* --max-pending-bytes, kept here: read once per delivery (a
                                   288 -> 292-byte conn stays in the same 304-byte malloc chunk) */
} h1conn_t;

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

static h1conn_t *h1_of(conn_t *c) { return (h1conn_t *)c; }
static h1conn_t *h1_of_req(req_t *r) { return (h1conn_t *)r->conn; }
static server_t *srv_of(h1conn_t *h) { return worker_server(h->conn.worker); }
static const config_t *cfg_of(h1conn_t *h) { return srv_of(h)->cfg; }
static int64_t now_of(h1conn_t *h) { return worker__now_ms(h->conn.worker); }

/* ---- body budget --------------------------------------------------------------- */

/* Counts `n` more buffered body bytes against --max-body-bytes-total.
 * Returns 0, or -1 (nothing counted) past it. */
static int body_reserve(h1conn_t *h, size_t n)
{
    server_t *srv = srv_of(h);
    long long now = atomic_fetch_add_explicit(&srv->body_bytes, (long long)n, memory_order_relaxed);
    if (now + (long long)n > (long long)cfg_of(h)->max_body_bytes_total) {
        atomic_fetch_sub_explicit(&srv->body_bytes, (long long)n, memory_order_relaxed);
        return -1;
    }
    h->rd->reserved += (uint32_t)n;
    return 0;
}

/* ---- head budget --------------------------------------------------------------- */

/* A request still unfinished after a read keeps its buffer: the read
 * buffer while its head is incomplete, the head while its body arrives.
 * Counts that against --max-head-bytes-total, so that many slow heads (each
 * within --max-header-bytes and --header-timeout) cannot add up to
 * connections x --max-header-bytes of memory. A head that arrives whole in
 * one read, as honest ones do, is never counted. Returns 0, or -1 past the
 * budget (nothing more counted). */
static int head_reserve(h1conn_t *h)
{
    h1_reading_t *rd = h->rd;
    size_t want = h->phase == H1_READ_HEAD ? h->conn.rcap : rd->head_len;
    if (want <= rd->head_reserved)
        return 0;
    size_t n = want - rd->head_reserved;
    server_t *srv = srv_of(h);
    long long now = atomic_fetch_add_explicit(&srv->head_bytes, (long long)n, memory_order_relaxed);
    if (now + (long long)n > (long long)cfg_of(h)->max_head_bytes_total) {
        atomic_fetch_sub_explicit(&srv->head_bytes, (long long)n, memory_order_relaxed);
        return -1;
    }
    rd->head_reserved = (uint32_t)want;
    return 0;
}

static void reading_free(h1conn_t *h)
{
    if (!h->rd)
        return;
    if (h->rd->reserved)
        atomic_fetch_sub_explicit(&srv_of(h)->body_bytes, (long long)h->rd->reserved, memory_order_relaxed);
    if (h->rd->head_reserved)
        atomic_fetch_sub_explicit(&srv_of(h)->head_bytes, (long long)h->rd->head_reserved,
                                  memory_order_relaxed);
    free(h->rd);
    h->rd = NULL;
}

/* ---- answers (req_ops_t) ---------------------------------------------------------- */

/* "Name: value\r\n" for each field; returns the bytes written (cap is
 * enough: the caller sized it with fields_size). */
static size_t format_fields(char *out, const resp_hdrs_t *h)
{
    size_t n = 0, pos = 0;
    const char *name, *value;
    while (h && (name = resp_hdrs_next(h, &pos, &value))) {
        size_t nl = strlen(name), vl = strlen(value);
        memcpy(out + n, name, nl);
        memcpy(out + n + nl, ": ", 2);
        memcpy(out + n + nl + 2, value, vl);
        memcpy(out + n + nl + 2 + vl, "\r\n", 2);
        n += nl + vl + 4;
    }
    return n;
}

static size_t fields_size(const resp_hdrs_t *h) { return h ? (size_t)h->used + 4u * h->n : 0; }

static void h1_respond(req_t *r, int status, const resp_hdrs_t *fields, const char *content_type,
                       const char *body, size_t len)
{
    h1conn_t *h = h1_of_req(r);
    /* An answer before the request was fully read ends the connection: the
     * bytes after it cannot be trusted to start a new request. */
    if (!h->complete)
        h->keep_alive = 0;
    if (fields && fields->overflow)
        log_warn("fd %d: response header fields did not fit; some were dropped", conn_fd(&h->conn));
    size_t body_out = r->is_head ? 0 : len;
    size_t cap = 160 + strlen(content_type) + fields_size(fields) + body_out;
    char *buf = malloc(cap);
    if (!buf) {
        conn_close(&h->conn, "out of memory for a response");
        return;
    }
    int n =
        snprintf(buf, cap, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: %s\r\n",
                 status, req_status_text(status), content_type, len, h->keep_alive ? "keep-alive" : "close");
    assert(n > 0 && (size_t)n < cap);
    size_t off = (size_t)n + format_fields(buf + n, fields);
    memcpy(buf + off, "\r\n", 2);
    off += 2;
    memcpy(buf + off, body, body_out);
    assert(off + body_out <= cap);
    h->phase = H1_RESPOND;
    conn_set_deadline(&h->conn, now_of(h) + 60000); /* to be read by the client */
    conn_queue_heap(&h->conn, buf, off + body_out);
}

static int h1_stream_begin(req_t *r, const resp_hdrs_t *fields)
{
    h1conn_t *h = h1_of_req(r);
    size_t cap = 160 + fields_size(fields);
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    /* HTTP/1.1: one chunk per event, so clients that read chunk by chunk
     * (Python's requests, iter_lines) get each event when it is written;
     * HTTP/1.0 has no chunking: the stream is close-delimited. */
    h->chunked_stream = h->version >= 11;
    int n =
        snprintf(buf, cap, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n%sConnection: close\r\n",
                 h->chunked_stream ? "Transfer-Encoding: chunked\r\n" : "");
    assert(n > 0);
    size_t off = (size_t)n + format_fields(buf + n, fields);
    memcpy(buf + off, "\r\n", 2);
    h->keep_alive = 0;
    h->phase = H1_STREAM;
    conn_queue_heap(&h->conn, buf, off + 2);
    return 0;
}

/* A comment or field line as one chunk: a small copy (preambles and
 * heartbeats, not events). Takes `p` when `heap`. */
static void queue_chunk(h1conn_t *h, const char *p, size_t len, int heap)
{
    char *buf = malloc(len + 16);
    if (buf) {
        int n = snprintf(buf, 16, "%zx\r\n", len);
        memcpy(buf + n, p, len);
        memcpy(buf + n + len, "\r\n", 2);
        conn_queue_heap(&h->conn, buf, (size_t)n + len + 2);
    } /* else: a comment or hint is dropped, the stream goes on */
    if (heap)
        free((void *)p);
}

/* Stream bytes that are not an event: comments, the retry hint. Out of
 * line, so that h1_push, run once per delivery, saves no registers. */
static __attribute__((noinline)) int push_bytes(h1conn_t *h, const char *p, size_t len, int heap)
{
    if (h->chunked_stream)
        queue_chunk(h, p, len, heap);
    else if (heap)
        conn_queue_heap(&h->conn, (char *)p, len);
    else
        conn_queue_static(&h->conn, p, len);
    return 0;
}

static int h1_push(req_t *r, wref_t *w, const char *p, size_t len, int heap)
{
    h1conn_t *h = h1_of_req(r);
    if (!w)
        return push_bytes(h, p, len, heap);
    if (h->chunked_stream) /* the common case: copied back to back while it keeps up */
        return conn_try_queue_event_copy(&h->conn, w, w->ev->chunked, w->ev->chunked_len, h->pending_cap);
    return conn_try_queue_event(&h->conn, w, p, len, h->pending_cap);
}

static const char last_chunk[] = "0\r\n\r\n";

static void h1_end(req_t *r)
{
    h1conn_t *h = h1_of_req(r);
    if (h->chunked_stream) {
        h->chunked_stream = 0; /* once */
        conn_queue_static(&h->conn, last_chunk, sizeof(last_chunk) - 1);
    }
    conn_finish(r->conn);
}

static size_t h1_pending(const req_t *r) { return conn_pending(r->conn); }

static void h1_reset(req_t *r, const char *why) { conn_close(r->conn, why); }

static const req_ops_t h1_req_ops = {h1_respond, h1_stream_begin, h1_push, h1_end, h1_pending, h1_reset};

/* ---- reading requests ------------------------------------------------------------- */

static void start_next_request(h1conn_t *h)
{
    conn_t *c = &h->conn;
    h->phase = H1_READ_HEAD;
    h->complete = 0;
    req_init(&h->req, &h1_req_ops, c);
    h->got_bytes = c->rlen > 0;
    int64_t t = h->got_bytes ? cfg_of(h)->header_timeout_s : cfg_of(h)->idle_timeout_s;
    conn_set_deadline(c, now_of(h) + t * 1000);
    if (c->rlen == 0)
        conn_rbuf_release(c); /* idle keep-alive connections hold no buffer */
}

/* Splits the target into path and query and fills the view. */
static void fill_request(h1conn_t *h, const http1_request_t *hr, request_t *in)
{
    memset(in, 0, offsetof(request_t, cors));
    resp_hdrs_init(&in->cors);
    in->method = hr->method;
    in->method_len = hr->method_len;
    const char *q = memchr(hr->target, '?', hr->target_len);
    in->path = hr->target;
    in->path_len = q ? (size_t)(q - hr->target) : hr->target_len;
    in->query = q ? q + 1 : "";
    in->query_len = q ? hr->target_len - in->path_len - 1 : 0;
    in->headers = hr->headers;
    in->num_headers = hr->num_headers;
    in->version = hr->minor_version >= 1 ? 11 : 10;
    in->is_head = hr->method_len == 4 && !memcmp(hr->method, "HEAD", 4);
    in->secure = h->conn.io.ops != &io_plain; /* TLS installed its own io */
    in->peer_loopback = h->conn.peer_loopback;
    in->peer = &h->conn.peer;
    in->client = h->conn.peer;
}

static void refuse(h1conn_t *h, refusal_t why, int status, const char *reason)
{
    h->req.state = REQ_HANDLING;
    req_refuse(&h->req, why, status, NULL, reason);
}

/* Parses the head from what is buffered, scanning only the bytes that
 * arrived since the last call (http1_parse_request_resume), so a head costs
 * time linear in its length however it trickles in. Returns 1 when complete (*hr filled), 0 when more is needed, -1
 * after refusing. */
static int parse_head(h1conn_t *h, http1_request_t *hr)
{
    conn_t *c = &h->conn;
    size_t max = cfg_of(h)->max_header_bytes;
    ssize_t r = http1_parse_request_resume(&h->rd->scan, c->rbuf, c->rlen, hr);
    if (r == HTTP1_INCOMPLETE) {
        if (c->rlen >= max) {
            refuse(h, REFUSE_HEADERS_TOO_LARGE, 431, "request head is larger than --max-header-bytes");
            return -1;
        }
        return 0;
    }
    if (r == HTTP1_TOO_MANY_HEADERS) {
        refuse(h, REFUSE_HEADERS_TOO_LARGE, 431, "too many header fields");
        return -1;
    }
    if (r < 0) {
        refuse(h, REFUSE_BAD_REQUEST, 400, "malformed request");
        return -1;
    }
    if ((size_t)r > max) {
        refuse(h, REFUSE_HEADERS_TOO_LARGE, 431, "request head is larger than --max-header-bytes");
        return -1;
    }
    h->rd->head_len = (uint32_t)r;
    return 1;
}

/* Keep-alive from the version and the Connection field: "close" wins. */
static int wants_keep_alive(const http1_request_t *hr)
{
    const http1_header_t *ch = http1_find_header(hr, "connection");
    if (ch && http1_value_has_token(ch->value, ch->value_len, "close"))
        return 0;
    if (hr->minor_version >= 1)
        return 1;
    return ch && http1_value_has_token(ch->value, ch->value_len, "keep-alive");
}

/* The head is complete: ask the router, then frame the body. Returns 0 to
 * go on reading the body, -1 when the request was answered or refused. */
static int begin_request(h1conn_t *h, const http1_request_t *hr)
{
    h1_reading_t *rd = h->rd;
    h->keep_alive = (uint8_t)wants_keep_alive(hr);
    h->version = hr->minor_version >= 1 ? 11 : 10;
    const http1_header_t *te = http1_find_header(hr, "transfer-encoding");
    const http1_header_t *cl = http1_find_header(hr, "content-length");
    /* http1_parse_request already refused ambiguous framing (both fields,
     * several lengths, TE in HTTP/1.0): TE here means chunked last. */
    if (te && !http1_token_eq(te->value, te->value_len, "chunked")) {
        refuse(h, REFUSE_BAD_REQUEST, 501, "only the chunked transfer coding is supported");
        return -1;
    }
    if (cl && http1_parse_content_length(cl->value, cl->value_len, &rd->content_length)) {
        refuse(h, REFUSE_BAD_REQUEST, 400, "malformed Content-Length");
        return -1;
    }
    rd->chunked = te != NULL;
    request_t in;
    fill_request(h, hr, &in);
    h->req.state = REQ_HANDLING;
    h->req.is_head = in.is_head;
    long limit = srv_of(h)->handler->on_head(&h->req, &in);
    if (limit < 0)
        return -1; /* answered (refused) already */
    h->req.state = REQ_IDLE;
    rd->body_limit = (uint64_t)limit;
    if ((rd->chunked && limit == 0) || rd->content_length > rd->body_limit) {
        refuse(h, REFUSE_BODY_TOO_LARGE, 413,
               limit ? "request body is larger than --max-event-bytes" : "this request takes no body");
        return -1;
    }
    h->phase = H1_READ_BODY;
    const http1_header_t *expect = http1_find_header(hr, "expect");
    if (expect && http1_token_eq(expect->value, expect->value_len, "100-continue") &&
        (rd->chunked || rd->content_length > (uint64_t)(h->conn.rlen - rd->head_len)))
        conn_queue_static(&h->conn, continue_100, sizeof(continue_100) - 1);
    return 0;
}

/* Returns 1 when the body is complete (then *consumed is the bytes of rbuf
 * the whole request used), 0 when more is needed, -1 after refusing. */
static int read_body(h1conn_t *h, size_t *consumed)
{
    conn_t *c = &h->conn;
    h1_reading_t *rd = h->rd;
    if (!rd->chunked) {
        size_t have = c->rlen - rd->head_len;
        if (have > rd->content_length)
            have = (size_t)rd->content_length;
        if (have > rd->reserved && body_reserve(h, have - rd->reserved)) {
            refuse(h, REFUSE_UNAVAILABLE, 503,
                   "too many request bodies in flight (--max-body-bytes-total); retry");
            return -1;
        }
        if (have < rd->content_length)
            return 0;
        rd->body_len = (uint32_t)rd->content_length;
        *consumed = rd->head_len + rd->body_len;
        return 1;
    }
    char *p = c->rbuf + rd->head_len + rd->body_len;
    size_t len = c->rlen - rd->head_len - rd->body_len;
    ssize_t r = http1_chunked_decode(&rd->chunk_dec, p, &len);
    if (r == HTTP1_MALFORMED) {
        refuse(h, REFUSE_BAD_REQUEST, 400, "malformed chunked body");
        return -1;
    }
    rd->body_len += (uint32_t)len;
    if (rd->body_len > rd->body_limit) {
        refuse(h, REFUSE_BODY_TOO_LARGE, 413, "request body is larger than --max-event-bytes");
        return -1;
    }
    if (rd->body_len > rd->reserved && body_reserve(h, rd->body_len - rd->reserved)) {
        refuse(h, REFUSE_UNAVAILABLE, 503,
               "too many request bodies in flight (--max-body-bytes-total); retry");
        return -1;
    }
    if (r == HTTP1_INCOMPLETE) {
        conn_rbuf_truncate(c, rd->head_len + rd->body_len); /* the decoder consumed the rest */
        return 0;
    }
    /* Complete: the next request's r bytes sit right after the payload. */
    *consumed = rd->head_len + rd->body_len;
    conn_rbuf_truncate(c, *consumed + (size_t)r);
    return 1;
}

/* The whole request is here: hand it to the router. */
static void handle(h1conn_t *h, size_t consumed)
{
    conn_t *c = &h->conn;
    http1_request_t hr;
    /* The head was parsed before the buffer may have moved: parse again
     * (cheap: heads are small) to get pointers into the current buffer. */
    ssize_t r = http1_parse_request(c->rbuf, h->rd->head_len, &hr);
    assert(r == (ssize_t)h->rd->head_len);
    (void)r;
    request_t in;
    fill_request(h, &hr, &in);
    in.body = c->rbuf + h->rd->head_len;
    in.body_len = h->rd->body_len;
    atomic_fetch_add_explicit(&worker_stats(c->worker)->requests, 1, memory_order_relaxed);
    h->complete = 1;
    h->served = 1;
    h->phase = H1_RESPOND;
    h->req.state = REQ_HANDLING;
    srv_of(h)->handler->on_request(&h->req, &in);
    assert(h->req.state != REQ_HANDLING || conn_is_closing(c));
    if (conn_is_closing(c))
        return;
    reading_free(h);
    /* Keep pipelined bytes for after this answer. */
    conn_rbuf_consume(c, consumed);
    if (h->phase == H1_STREAM)
        conn_rbuf_release(c); /* a stream reads nothing more */
    conn_write_now(c);        /* the answer goes out in the turn that read its request */
}

/* RFC 9113 3.4: what a client with prior knowledge sends first. */
static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* h2c with prior knowledge: the first bytes of a cleartext connection are
 * the HTTP/2 preface (no HTTP/1 request starts with it). Returns 1 when the
 * connection is handed over (or closed), or must wait for more bytes to
 * tell; 0 to go on as HTTP/1. */
static int maybe_h2(h1conn_t *h)
{
    conn_t *c = &h->conn;
    server_t *srv = srv_of(h);
    if (h->served || !srv->h2_take_over || !srv->cfg->h2c)
        return 0;
    size_t n = c->rlen < sizeof(h2_preface) - 1 ? c->rlen : sizeof(h2_preface) - 1;
    if (memcmp(c->rbuf, h2_preface, n) != 0) {
        h->served = 1; /* HTTP/1 it is */
        return 0;
    }
    if (n < sizeof(h2_preface) - 1)
        return 1; /* a prefix so far: wait (the head parser would wait too) */
    reading_free(h);
    h->phase = H1_HANDED; /* our loops stop; the conn's proto changes below */
    if (srv->h2_take_over(c))
        conn_close(c, "out of memory for an HTTP/2 session");
    return 1;
}

/* The answer to the current request is queued and written out: the next
 * (maybe pipelined) request may start. */
static int answer_written(const h1conn_t *h)
{
    return h->phase == H1_RESPOND && h->req.state == REQ_ANSWERED && outq_empty(&h->conn.out);
}

/* Runs the request state machine over what is buffered. A pipelined
 * request is handled as soon as the answer before it is written, in the
 * same turn (one connection with 8 requests in flight was answered 4 per
 * turn when the next request waited for a flush pass: 0.74M deliveries/s
 * against 1.5-2.0M with 8 connections). The per-turn write budget bounds
 * it: an answer the socket does not take at once stops the loop until
 * conn_flush calls on_drained. */
static void process_input(h1conn_t *h)
{
    conn_t *c = &h->conn;
    while (!conn_is_closing(c)) {
        if (h->phase == H1_RESPOND) {
            if (!answer_written(h))
                return; /* waits for an ack, or for the socket */
            if (!h->keep_alive || atomic_load(&srv_of(h)->stopping)) {
                conn_finish(c);
                return;
            }
            start_next_request(h);
        }
        if (h->phase == H1_READ_HEAD) {
            if (c->rlen == 0)
                return;
            if (maybe_h2(h))
                return;
            if (!h->rd && !(h->rd = calloc(1, sizeof(*h->rd)))) {
                conn_close(c, "out of memory for a request");
                return;
            }
            http1_request_t hr;
            int r = parse_head(h, &hr);
            if (r <= 0 || begin_request(h, &hr))
                return;
        }
        if (h->phase != H1_READ_BODY)
            return; /* a stream, or refused */
        size_t consumed = 0;
        if (read_body(h, &consumed) <= 0)
            return;
        handle(h, consumed);
    }
}

/* Reads while the socket has bytes and the request needs them. */
static void read_request(h1conn_t *h)
{
    conn_t *c = &h->conn;
    while (c->readable && (h->phase == H1_READ_HEAD || h->phase == H1_READ_BODY) && !conn_is_closing(c)) {
        const config_t *cfg = cfg_of(h);
        size_t cap = cfg->max_header_bytes + 64 + (h->phase == H1_READ_BODY ? h->rd->body_limit : 0);
        ssize_t n = conn_read_rbuf(c, 2048, cap, "peer closed");
        if (n == -2) {
            if (h->phase == H1_READ_HEAD)
                refuse(h, REFUSE_HEADERS_TOO_LARGE, 431, "request head is larger than --max-header-bytes");
            else
                refuse(h, REFUSE_BODY_TOO_LARGE, 413, "request body is larger than --max-event-bytes");
            return;
        }
        if (n <= 0)
            return;
        if (!h->got_bytes) {
            h->got_bytes = 1;
            conn_set_deadline(c, now_of(h) + (int64_t)cfg->header_timeout_s * 1000);
        }
        process_input(h);
        int unfinished = h->phase == H1_READ_BODY || (h->phase == H1_READ_HEAD && h->rd);
        if (unfinished && !conn_is_closing(c) && head_reserve(h)) {
            refuse(h, REFUSE_UNAVAILABLE, 503,
                   "too many unfinished request heads (--max-head-bytes-total); retry");
            return;
        }
    }
}

/* A stream reads nothing, but must notice the peer going away, and a peer
 * that keeps sending is cut off. */
static void discard_stream_input(h1conn_t *h)
{
    char sink[CONN_DISCARD_BYTES];
    ssize_t n;
    while ((n = conn_read(&h->conn, sink, sizeof(sink), "subscriber went away")) > 0) {
        h->stream_input += (uint32_t)n;
        if (h->stream_input > cfg_of(h)->max_stream_input_bytes) {
            log_info("fd %d: subscriber sent more than --max-stream-input-bytes after its request; closing",
                     conn_fd(&h->conn));
            conn_close(&h->conn, "subscriber kept sending");
            return;
        }
    }
}

/* ---- the protocol (conn_proto_t) --------------------------------------------------- */

static void h1_on_readable(conn_t *c)
{
    h1conn_t *h = h1_of(c);
    if (h->phase == H1_READ_HEAD || h->phase == H1_READ_BODY)
        read_request(h);
    else if (h->phase == H1_STREAM)
        discard_stream_input(h);
    /* H1_RESPOND: the bytes wait until the answer is written. */
}

static void h1_on_drained(conn_t *c)
{
    h1conn_t *h = h1_of(c);
    /* A publish waiting for its ack has no answer queued yet: what just
     * drained was an interim "100 Continue". Keep waiting. */
    if (!answer_written(h))
        return;
    process_input(h); /* the next request: keep-alive, maybe pipelined */
    read_request(h);
}

static void h1_on_tick(conn_t *c, int64_t now_ms)
{
    h1conn_t *h = h1_of(c);
    switch (h->phase) {
    case H1_READ_HEAD:
    case H1_READ_BODY:
        if (now_ms < c->deadline_ms)
            return;
        if (!h->got_bytes) {
            conn_close(c, "idle timeout");
            return;
        }
        refuse(h, REFUSE_TIMEOUT, 408, "request not received within --header-timeout");
        conn_finish(c);
        break;
    case H1_STREAM:
        if (req_stream(&h->req))
            stream_on_tick(&h->req, now_ms);
        break;
    case H1_RESPOND:
        if (h->req.state == REQ_ANSWERED && now_ms >= c->deadline_ms && !outq_empty(&c->out))
            conn_close(c, "response not read by the client");
        break;
    case H1_HANDED:
        break; /* not reached: the conn's proto is HTTP/2's */
    }
}

static void h1_on_stop(conn_t *c, int64_t now_ms, int spread_ms)
{
    h1conn_t *h = h1_of(c);
    if (h->phase == H1_STREAM && req_stream(&h->req))
        stream_schedule_end(&h->req, now_ms, spread_ms);
    else if (h->phase == H1_READ_HEAD && !h->got_bytes)
        conn_close(c, "shutting down");
}

static void h1_on_close(conn_t *c)
{
    h1conn_t *h = h1_of(c);
    req_on_abort(&h->req);
    reading_free(h);
}

const conn_proto_t h1server_proto = {"http/1.1", h1_on_readable, h1_on_drained,
                                     h1_on_tick, h1_on_stop,     h1_on_close};

static const char over_capacity[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 41\r\n"
    "Connection: close\r\nRetry-After: 1\r\n\r\nserver is at --max-connections; retry.\r\n\n";
static const char too_many[] =
    "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nContent-Length: 52\r\n"
    "Connection: close\r\nRetry-After: 1\r\n\r\nyour address is at --max-connections-per-ip; retry.\n";

void h1server_refuse_at_accept(int fd, int status)
{
    /* The send buffer of a fresh socket is empty, so it fits. */
    const char *msg = status == 429 ? too_many : over_capacity;
    size_t len = status == 429 ? sizeof(too_many) - 1 : sizeof(over_capacity) - 1;
    ssize_t r = send(fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)r;
}

struct conn *h1server_accept(worker_t *w, int fd, const struct sockaddr *peer, socklen_t len,
                             int peer_loopback, void *ctx)
{
    (void)ctx;
    h1conn_t *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    conn_init(&h->conn, w, fd, &h1server_proto, peer, len, peer_loopback);
    req_init(&h->req, &h1_req_ops, &h->conn);
    h->phase = H1_READ_HEAD;
    h->pending_cap = (uint32_t)worker_server(w)->cfg->max_pending_bytes; /* <= 1 GiB (config.c) */
    conn_set_deadline(&h->conn, worker__now_ms(w) + (int64_t)worker_server(w)->cfg->header_timeout_s * 1000);
    return &h->conn;
}
