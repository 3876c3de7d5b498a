/*
 * h2server.c - see h2server.h for the layout, the hand-over and the defences.
 *
 * A stream's life (phase):
 *
 *   HEADERS frame(s) -> H2S_HEAD: fields collected into `head` (bounded)
 *      | END_HEADERS: handler->on_head decides (route, policy, body limit)
 *      v
 *   H2S_BODY: DATA appended to `body` (<= the limit, counted in
 *      |      server_t.body_bytes; 413 past it, 503 past the total)
 *      | END_STREAM: handler->on_request
 *      v
 *   H2S_RESPOND (an answer queued or awaited) or H2S_STREAM (events)
 *      | nghttp2 closes the stream (END_STREAM both ways, or RST_STREAM)
 *      v
 *   on_stream_close: req_on_abort (detach the subscriber, cancel an ack), free
 *
 * Sending: nghttp2_session_mem_send gives us frames; control frames and
 * frame headers are copied into `wbuf` (a small heap buffer handed to the
 * conn's queue as one OUTQ_HEAP item), payload slices are moved from the
 * stream's outq to the conn's as they are (no copy of event bytes). We ask
 * for frames only when the conn's queue is empty (on_drained), and stop at
 * H2_SEND_HIGH bytes: what the kernel has not taken is not framed, so a
 * stalled connection keeps its backlog per stream, where
 * --max-pending-bytes applies.
 *
 * Re-entrancy: nghttp2 calls us back only from inside mem_recv and
 * mem_send, and nothing in those callbacks closes the conn or frees a
 * stream; streams are freed only in on_stream_close (inside nghttp2) or in
 * on_close (never inside nghttp2: `in_ng` asserts it).
 *
 * Memory: an h2sess (about 200 bytes) plus nghttp2's session, counted by the
 * allocator below; an h2stream (about 150 bytes: the req_t and an outq with
 * two inline slots) plus nghttp2's stream; the head and body exist only while
 * a request is read. Measured figures are in docs/ARCHITECTURE.md.
 */
#include "h2server.h"

#include "log.h"
#include "server.h"
#include "stream.h"

#include <assert.h>
#include <ctype.h>
#include <malloc.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum h2s_phase {
    H2S_HEAD,    /* header block arriving */
    H2S_BODY,    /* head accepted, body arriving */
    H2S_RESPOND, /* handled: an answer queued or awaited (or refused) */
    H2S_STREAM,  /* an event stream */
} h2s_phase_t;

/* A request's header fields while they arrive: offsets into `buf`. */
typedef struct h2_field {
    uint32_t off;  /* of the name in buf; the value follows it */
    uint16_t nlen; /* name bytes */
    uint32_t vlen; /* value bytes */
} h2_field_t;

typedef struct h2_head {
    char *buf;                       /* owns: names and values, back to back */
    uint32_t used, cap;              /* bytes of buf */
    uint32_t list_size;              /* RFC 9113 accounting: name + value + 32 per field */
    uint16_t n;                      /* entries of f */
    uint8_t too_large;               /* past --max-header-bytes or H2_MAX_FIELDS: 431 */
    h2_field_t f[H2_MAX_FIELDS + 4]; /* the pseudo fields count too */
} h2_head_t;

typedef struct h2sess h2sess_t;

typedef struct h2stream {
    req_t req;                    /* must be first: req_ops get a req_t * */
    h2sess_t *sess;               /* borrows: the owner */
    struct h2stream *prev, *next; /* the session's list */
    int32_t id;                   /* HTTP/2 stream id */
    uint8_t phase;                /* h2s_phase_t */
    uint8_t deferred : 1;         /* nghttp2 waits for resume_data (out was empty) */
    uint8_t eof : 1;              /* end the stream once `out` is sent */
    uint8_t reset : 1;            /* RST_STREAM submitted: nothing more is queued */
    uint8_t complete : 1;         /* the request's END_STREAM arrived */
    uint8_t rst_after_answer : 1; /* answered before the request was whole: RST(NO_ERROR) after */
    outq_t out;                   /* payload bytes not framed yet (event slices, comments, bodies) */
    h2_head_t *head;              /* owns; non-NULL while the request is read */
    char *body;                   /* owns; the request body while it is read */
    uint32_t body_len, body_cap;  /* bytes of body */
    uint32_t reserved;            /* bytes counted in server_t.body_bytes */
    uint64_t body_limit;          /* what the route accepts (handler->on_head) */
    int64_t deadline_ms;          /* monotonic: request complete by (header timeout), or answer read by */
} h2stream_t;

/* A token bucket refilled from the worker's clock (ms). */
typedef struct h2_bucket {
    int64_t last_ms; /* when it was last refilled */
    uint32_t tokens; /* left */
} h2_bucket_t;

struct h2sess {
    conn_t *conn;         /* borrows: the connection (owns this through proto_ctx) */
    nghttp2_session *ng;  /* owns */
    h2stream_t *streams;  /* owns: every open stream with a req */
    size_t num_streams;   /* entries of streams */
    char *wbuf;           /* owns: frame bytes not yet handed to the conn's queue */
    uint32_t wlen, wcap;  /* bytes of wbuf */
    size_t mem, mem_peak; /* bytes nghttp2 holds through our allocator */
    h2_bucket_t resets;   /* client RST_STREAMs */
    h2_bucket_t ctrl;     /* PING, SETTINGS, PRIORITY, empty DATA */
    uint8_t in_ng;        /* inside mem_recv / mem_send (on_close must not run then) */
    uint8_t stopping : 1; /* GOAWAY sent for shutdown */
    uint8_t calm : 1;     /* ended for abuse */
    uint8_t paused : 1;   /* send_data returned PAUSE (H2_SEND_HIGH reached) */
    uint8_t fatal : 1;    /* the session failed: finish the conn after sending */
    nghttp2_mem mem_fns;  /* the counting allocator, user data = this */
};

static h2sess_t *sess_of(const conn_t *c) { return c->proto_ctx; }
static h2stream_t *st_of(req_t *r) { return (h2stream_t *)r; }
static server_t *srv_of(h2sess_t *s) { return worker_server(s->conn->worker); }
static const config_t *cfg_of(h2sess_t *s) { return srv_of(s)->cfg; }
static int64_t now_of(h2sess_t *s) { return worker__now_ms(s->conn->worker); }

/* ---- nghttp2's memory, counted and capped ------------------------------------------ */

static void *ng_malloc(size_t size, void *ud)
{
    h2sess_t *s = ud;
    if (s->mem + size > H2_SESSION_MEM_MAX)
        return NULL; /* nghttp2 fails with NOMEM: the session ends */
    void *p = malloc(size);
    if (p) {
        s->mem += malloc_usable_size(p);
        if (s->mem > s->mem_peak)
            s->mem_peak = s->mem;
    }
    return p;
}

static void ng_free(void *p, void *ud)
{
    h2sess_t *s = ud;
    if (!p)
        return;
    s->mem -= malloc_usable_size(p);
    free(p);
}

static void *ng_calloc(size_t n, size_t size, void *ud)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = ng_malloc(n * size, ud);
    if (p)
        memset(p, 0, n * size);
    return p;
}

static void *ng_realloc(void *p, size_t size, void *ud)
{
    h2sess_t *s = ud;
    size_t old = p ? malloc_usable_size(p) : 0;
    if (s->mem - old + size > H2_SESSION_MEM_MAX)
        return NULL;
    void *n = realloc(p, size);
    if (!n)
        return NULL;
    s->mem = s->mem - old + malloc_usable_size(n);
    if (s->mem > s->mem_peak)
        s->mem_peak = s->mem;
    return n;
}

/* ---- budgets ------------------------------------------------------------------------ */

/* Takes one token; 0, or -1 when the bucket is empty. */
static int bucket_take(h2_bucket_t *b, int64_t now, uint32_t burst, uint32_t rate)
{
    if (now > b->last_ms) {
        uint64_t add = (uint64_t)(now - b->last_ms) * rate / 1000;
        if (add) {
            b->tokens = (uint32_t)(b->tokens + add > burst ? burst : b->tokens + add);
            b->last_ms = now; /* whole tokens only: the remainder keeps accruing */
        }
    }
    if (!b->tokens)
        return -1;
    b->tokens--;
    return 0;
}

/* The peer abuses the protocol: GOAWAY ENHANCE_YOUR_CALM, and the session
 * stops reading; the conn finishes once the GOAWAY is written. */
static void calm_down(h2sess_t *s, const char *what)
{
    if (s->calm)
        return;
    s->calm = 1;
    s->fatal = 1;
    atomic_fetch_add_explicit(&worker_stats(s->conn->worker)->h2_calm, 1, memory_order_relaxed);
    log_warn("fd %d: HTTP/2 peer sent too many %s; GOAWAY ENHANCE_YOUR_CALM", conn_fd(s->conn), what);
    nghttp2_session_terminate_session(s->ng, NGHTTP2_ENHANCE_YOUR_CALM);
}

static int body_reserve(h2stream_t *st, size_t n)
{
    server_t *srv = srv_of(st->sess);
    long long now = atomic_fetch_add_explicit(&srv->body_bytes, (long long)n, memory_order_relaxed);
    if (now + (long long)n > (long long)srv->cfg->max_body_bytes_total) {
        atomic_fetch_sub_explicit(&srv->body_bytes, (long long)n, memory_order_relaxed);
        return -1;
    }
    st->reserved += (uint32_t)n;
    return 0;
}

/* Frees what a request needed only while it was read. */
static void reading_free(h2stream_t *st)
{
    if (st->head) {
        free(st->head->buf);
        free(st->head);
        st->head = NULL;
    }
    free(st->body);
    st->body = NULL;
    st->body_len = st->body_cap = 0;
    if (st->reserved) {
        atomic_fetch_sub_explicit(&srv_of(st->sess)->body_bytes, (long long)st->reserved,
                                  memory_order_relaxed);
        st->reserved = 0;
    }
}

/* ---- output: frames into the conn's queue ------------------------------------------ */

/* Makes *buf (of *cap bytes) hold at least `need` bytes: doubling from
 * `first`, never past `limit` (the caller's need is within it). The output
 * buffer, a stream's header fields and its request body grow this way.
 * Returns 0, or -1 when memory runs out (*buf and *cap unchanged). */
static int buf_reserve(char **buf, uint32_t *cap, size_t need, size_t first, size_t limit)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : first;
    while (ncap < need)
        ncap *= 2;
    if (ncap > limit)
        ncap = limit;
    char *n = realloc(*buf, ncap);
    if (!n)
        return -1;
    *buf = n;
    *cap = (uint32_t)ncap;
    return 0;
}

static int wbuf_append(h2sess_t *s, const void *p, size_t len)
{
    if (buf_reserve(&s->wbuf, &s->wcap, s->wlen + len, 256, SIZE_MAX))
        return -1;
    memcpy(s->wbuf + s->wlen, p, len);
    s->wlen += (uint32_t)len;
    return 0;
}

/* Hands the buffered frame bytes to the conn's queue (ownership passes). */
static void wbuf_flush(h2sess_t *s)
{
    if (!s->wlen)
        return;
    char *p = s->wbuf;
    if (s->wcap > 2 * s->wlen + 64) { /* do not keep a burst's capacity per queued item */
        char *n = realloc(p, s->wlen);
        if (n)
            p = n;
    }
    conn_queue_heap(s->conn, p, s->wlen);
    s->wbuf = NULL;
    s->wlen = s->wcap = 0;
}

/* nghttp2 asks how many payload bytes of a stream may go now (at most
 * `length`: the window and the frame size). */
static ssize_t on_read_data(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                            nghttp2_data_source *src, void *ud)
{
    (void)ng, (void)id, (void)buf, (void)ud;
    h2stream_t *st = src->ptr;
    size_t n = st->out.bytes < length ? st->out.bytes : length;
    if (n == 0 && !st->eof) {
        st->deferred = 1; /* push() resumes it */
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n)
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (st->eof && n == st->out.bytes)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* One DATA frame: its 9-byte header, then `length` bytes moved from the
 * stream's queue to the conn's: event slices keep pointing into the shared
 * evbuf (the conn's queue takes a wref count, the stream's drops its own),
 * constants stay constants, and only heap bytes (comments, answers) are
 * copied. */
static int on_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
                        nghttp2_data_source *src, void *ud)
{
    (void)ng;
    h2sess_t *s = ud;
    h2stream_t *st = src->ptr;
    assert(frame->data.padlen == 0); /* we never pad */
    if (wbuf_append(s, framehd, 9))
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    while (length) {
        const outq_item_t *it = &st->out.items[st->out.head];
        size_t off = st->out.off, n = it->len - off < length ? it->len - off : length;
        if (it->kind == OUTQ_HEAP) {
            if (wbuf_append(s, it->ptr + off, n))
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        } else {
            wbuf_flush(s);
            if (it->kind == OUTQ_STATIC)
                conn_queue_static(s->conn, it->ptr + off, n);
            else if (conn_try_queue_event(s->conn, it->wref, it->ptr + off, n, SIZE_MAX))
                return NGHTTP2_ERR_CALLBACK_FAILURE; /* the conn is closing */
        }
        outq_consume(&st->out, n);
        length -= n;
    }
    if (conn_pending(s->conn) + s->wlen >= H2_SEND_HIGH) {
        s->paused = 1;
        return NGHTTP2_ERR_PAUSE;
    }
    return 0;
}

/* Frames what nghttp2 has to send, until the conn holds H2_SEND_HIGH bytes.
 * Returns 0, or -1 if the session failed (the caller finishes the conn). */
static int produce(h2sess_t *s)
{
    s->in_ng++;
    int rc = 0;
    while (conn_pending(s->conn) + s->wlen < H2_SEND_HIGH) {
        const uint8_t *p;
        s->paused = 0;
        ssize_t n = nghttp2_session_mem_send(s->ng, &p);
        if (n < 0) {
            log_info("fd %d: HTTP/2 session failed: %s", conn_fd(s->conn), nghttp2_strerror((int)n));
            rc = -1;
            break;
        }
        if (n == 0 && !s->paused)
            break;
        if (n > 0 && wbuf_append(s, p, (size_t)n)) {
            rc = -1;
            break;
        }
    }
    s->in_ng--;
    wbuf_flush(s);
    return rc;
}

/* Sends what is due and decides whether the connection is over: it is
 * when the session wants neither to read nor to write (GOAWAY exchanged and
 * no stream left, or a fatal error), once the conn's queue is written. */
static void send_and_maybe_finish(h2sess_t *s)
{
    conn_t *c = s->conn;
    if (conn_is_closing(c))
        return;
    if (produce(s))
        s->fatal = 1;
    if (s->fatal || (!nghttp2_session_want_read(s->ng) && !nghttp2_session_want_write(s->ng))) {
        conn_finish(c); /* writes what is queued (the GOAWAY), then lingers */
        return;
    }
    if (!s->num_streams)
        conn_set_deadline(c, now_of(s) + (int64_t)cfg_of(s)->idle_timeout_s * 1000);
}

/* ---- requests: fields -> request_t -------------------------------------------------- */

static int head_add(h2_head_t *h, const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen,
                    size_t max)
{
    h->list_size += (uint32_t)(nlen + vlen + 32);
    if (h->too_large || h->list_size > max || h->n >= H2_MAX_FIELDS + 4 || nlen > UINT16_MAX) {
        h->too_large = 1; /* keep counting, store nothing more; 431 at the end */
        return 0;
    }
    if (buf_reserve(&h->buf, &h->cap, h->used + nlen + vlen, 512, SIZE_MAX))
        return -1;
    h->f[h->n] = (h2_field_t){h->used, (uint16_t)nlen, (uint32_t)vlen};
    memcpy(h->buf + h->used, name, nlen);
    memcpy(h->buf + h->used + nlen, value, vlen);
    h->used += (uint32_t)(nlen + vlen);
    h->n++;
    return 0;
}

/* What a view needs beyond the fields: storage on the caller's stack. */
typedef struct h2_view {
    http1_header_t hdrs[H2_MAX_FIELDS + 1]; /* regular fields, :authority as host */
    char *cookie;                           /* owns: several cookie fields joined with "; " */
} h2_view_t;

static int field_is(const h2_head_t *h, const h2_field_t *f, const char *name)
{
    return f->nlen == strlen(name) && !memcmp(h->buf + f->off, name, f->nlen);
}

/* Joins the cookie fields (RFC 9113 8.2.3) into one, as HTTP/1 sends them. */
static int join_cookies(const h2_head_t *h, h2_view_t *v, http1_header_t *out)
{
    size_t total = 0, count = 0;
    for (uint16_t i = 0; i < h->n; i++)
        if (field_is(h, &h->f[i], "cookie")) {
            total += h->f[i].vlen + 2;
            count++;
        }
    if (count < 2)
        return 0;
    if (!(v->cookie = malloc(total)))
        return -1;
    size_t n = 0;
    for (uint16_t i = 0; i < h->n; i++) {
        if (!field_is(h, &h->f[i], "cookie"))
            continue;
        if (n) {
            memcpy(v->cookie + n, "; ", 2);
            n += 2;
        }
        memcpy(v->cookie + n, h->buf + h->f[i].off + h->f[i].nlen, h->f[i].vlen);
        n += h->f[i].vlen;
    }
    *out = (http1_header_t){"cookie", 6, v->cookie, n};
    return 1;
}

/* Builds the request view from the collected fields. Returns 0, or -1 when
 * the request is malformed for us (the caller answers 400). */
static int build_request(h2stream_t *st, h2_view_t *v, request_t *in)
{
    const h2_head_t *h = st->head;
    conn_t *c = st->sess->conn;
    memset(in, 0, offsetof(request_t, cors));
    resp_hdrs_init(&in->cors);
    v->cookie = NULL;
    size_t n = 0;
    int cookie_done = 0;
    for (uint16_t i = 0; i < h->n; i++) {
        const h2_field_t *f = &h->f[i];
        const char *name = h->buf + f->off, *value = name + f->nlen;
        if (field_is(h, f, ":method")) {
            in->method = value;
            in->method_len = f->vlen;
        } else if (field_is(h, f, ":path")) {
            const char *q = memchr(value, '?', f->vlen);
            in->path = value;
            in->path_len = q ? (size_t)(q - value) : f->vlen;
            in->query = q ? q + 1 : "";
            in->query_len = q ? f->vlen - in->path_len - 1 : 0;
        } else if (field_is(h, f, ":authority")) {
            v->hdrs[n++] = (http1_header_t){"host", 4, value, f->vlen};
        } else if (name[0] == ':') {
            continue; /* :scheme, :protocol: nothing for us */
        } else if (field_is(h, f, "cookie") && cookie_done) {
            continue;
        } else {
            if (field_is(h, f, "cookie")) {
                cookie_done = 1;
                int r = join_cookies(h, v, &v->hdrs[n]);
                if (r < 0)
                    return -1;
                if (r > 0) {
                    n++;
                    continue;
                }
            }
            v->hdrs[n++] = (http1_header_t){name, f->nlen, value, f->vlen};
        }
        if (n > H2_MAX_FIELDS)
            return -1;
    }
    if (!in->method || !in->path) { /* nghttp2 checks this; CONNECT has no :path */
        in->method = in->method ? in->method : "";
        in->path = "";
        in->query = "";
    }
    in->headers = v->hdrs;
    in->num_headers = n;
    in->version = 20;
    in->is_head = in->method_len == 4 && !memcmp(in->method, "HEAD", 4);
    in->secure = c->io.ops != &io_plain;
    in->peer_loopback = c->peer_loopback;
    in->peer = &c->peer;
    in->client = c->peer;
    return 0;
}

static void refuse(h2stream_t *st, refusal_t why, int status, const char *reason)
{
    st->req.state = REQ_HANDLING;
    st->phase = H2S_RESPOND;
    req_refuse(&st->req, why, status, NULL, reason);
    reading_free(st);
}

/* Builds the request view of st's fields (build_request). Returns 0 (the
 * caller frees v->cookie when done), or -1 after refusing a malformed
 * request (400). */
static int view_or_refuse(h2stream_t *st, h2_view_t *v, request_t *in)
{
    if (!build_request(st, v, in))
        return 0;
    free(v->cookie);
    refuse(st, REFUSE_BAD_REQUEST, 400, "malformed request");
    return -1;
}

/* The whole request is here: hand it to the router. */
static void handle(h2stream_t *st)
{
    h2_view_t v;
    request_t in;
    if (view_or_refuse(st, &v, &in))
        return;
    in.body = st->body;
    in.body_len = st->body_len;
    atomic_fetch_add_explicit(&worker_stats(st->sess->conn->worker)->requests, 1, memory_order_relaxed);
    st->phase = H2S_RESPOND;
    st->req.state = REQ_HANDLING;
    srv_of(st->sess)->handler->on_request(&st->req, &in);
    assert(st->req.state != REQ_HANDLING);
    free(v.cookie);
    reading_free(st);
}

/* The header block is complete: ask the router. */
static void begin_request(h2stream_t *st, int end_stream)
{
    h2sess_t *s = st->sess;
    if (st->head->too_large) {
        refuse(st, REFUSE_HEADERS_TOO_LARGE, 431, "request header fields are larger than --max-header-bytes");
        return;
    }
    h2_view_t v;
    request_t in;
    if (view_or_refuse(st, &v, &in))
        return;
    const http1_header_t *cl = request_header(&in, "content-length");
    uint64_t content_length = 0;
    int bad_cl = cl && http1_parse_content_length(cl->value, cl->value_len, &content_length);
    st->req.state = REQ_HANDLING;
    st->req.is_head = in.is_head;
    long limit = bad_cl ? -2 : srv_of(s)->handler->on_head(&st->req, &in);
    free(v.cookie);
    if (bad_cl) {
        refuse(st, REFUSE_BAD_REQUEST, 400, "malformed Content-Length");
        return;
    }
    if (limit < 0) { /* answered (refused) already */
        st->phase = H2S_RESPOND;
        reading_free(st);
        return;
    }
    st->req.state = REQ_IDLE;
    st->body_limit = (uint64_t)limit;
    if (content_length > st->body_limit) {
        refuse(st, REFUSE_BODY_TOO_LARGE, 413,
               limit ? "request body is larger than --max-event-bytes" : "this request takes no body");
        return;
    }
    st->phase = H2S_BODY;
    if (end_stream) {
        st->complete = 1;
        handle(st);
    }
}

/* ---- nghttp2 callbacks: receiving ------------------------------------------------------ */

static h2stream_t *stream_get(h2sess_t *s, int32_t id)
{
    return nghttp2_session_get_stream_user_data(s->ng, id);
}

static const req_ops_t h2_req_ops;

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    h2sess_t *s = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2stream_t *st = calloc(1, sizeof(*st));
    h2_head_t *h = st ? calloc(1, sizeof(*h)) : NULL;
    if (!h) {
        free(st);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM(INTERNAL_ERROR) */
    }
    st->sess = s;
    st->id = frame->hd.stream_id;
    st->head = h;
    st->phase = H2S_HEAD;
    st->deadline_ms = now_of(s) + (int64_t)cfg_of(s)->header_timeout_s * 1000;
    req_init(&st->req, &h2_req_ops, s->conn);
    outq_init(&st->out, worker__wrefs(s->conn->worker));
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    s->num_streams++;
    conn_set_deadline(s->conn, 0); /* no idle timeout while streams are open */
    atomic_fetch_add_explicit(&worker_stats(s->conn->worker)->h2_streams, 1, memory_order_relaxed);
    nghttp2_session_set_stream_user_data(ng, st->id, st);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *ud)
{
    (void)ng, (void)flags;
    h2sess_t *s = ud;
    h2stream_t *st = stream_get(s, frame->hd.stream_id);
    if (!st || st->phase != H2S_HEAD || !st->head)
        return 0; /* trailers, or a stream refused already: ignored */
    nghttp2_vec n = nghttp2_rcbuf_get_buf(name), v = nghttp2_rcbuf_get_buf(value);
    if (head_add(st->head, n.base, n.len, v.base, v.len, cfg_of(s)->max_header_bytes))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

/* Frames that cost us work and the peer nothing (CVE-2019-9512, -9515,
 * -9518): PING, SETTINGS, PRIORITY, empty DATA without END_STREAM, and
 * frames of unknown types (ignored, but read). */
static int is_cheap_frame(const nghttp2_frame_hd *hd)
{
    switch (hd->type) {
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
        return !(hd->flags & NGHTTP2_FLAG_ACK);
    case NGHTTP2_PRIORITY:
        return 1;
    case NGHTTP2_DATA:
        return hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM);
    case NGHTTP2_HEADERS:
    case NGHTTP2_RST_STREAM:
    case NGHTTP2_PUSH_PROMISE:
    case NGHTTP2_GOAWAY:
    case NGHTTP2_WINDOW_UPDATE:
    case NGHTTP2_CONTINUATION:
        return 0;
    default:
        return 1;
    }
}

/* Every frame header, before its payload (nghttp2 calls on_frame_recv for
 * fewer: not for PRIORITY without the RFC 7540 tree, nor for unknown
 * types): the flood budgets are counted here. */
static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *ud)
{
    (void)ng;
    h2sess_t *s = ud;
    if (s->calm)
        return 0;
    int64_t now = now_of(s);
    if (is_cheap_frame(hd) && bucket_take(&s->ctrl, now, H2_CTRL_BURST, H2_CTRL_RATE))
        calm_down(s, "control frames (PING/SETTINGS/PRIORITY/empty DATA)");
    else if (hd->type == NGHTTP2_RST_STREAM && bucket_take(&s->resets, now, H2_RESET_BURST, H2_RESET_RATE))
        calm_down(s, "stream resets (rapid reset)");
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    (void)ng;
    h2sess_t *s = ud;
    h2stream_t *st = frame->hd.stream_id ? stream_get(s, frame->hd.stream_id) : NULL;
    if (!st || s->calm)
        return 0;
    int end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS && st->phase == H2S_HEAD) {
        begin_request(st, end_stream);
    } else if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) && end_stream) {
        st->complete = 1;
        if (st->phase == H2S_BODY)
            handle(st);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                         void *ud)
{
    (void)ng, (void)flags;
    h2sess_t *s = ud;
    h2stream_t *st = stream_get(s, id);
    if (!st || st->phase != H2S_BODY)
        return 0; /* answered already: the rest is discarded */
    if (st->body_len + len > st->body_limit) {
        st->rst_after_answer = 1;
        refuse(st, REFUSE_BODY_TOO_LARGE, 413,
               st->body_limit ? "request body is larger than --max-event-bytes"
                              : "this request takes no body");
        return 0;
    }
    if (body_reserve(st, len)) {
        st->rst_after_answer = 1;
        refuse(st, REFUSE_UNAVAILABLE, 503,
               "too many request bodies in flight (--max-body-bytes-total); retry");
        return 0;
    }
    if (buf_reserve(&st->body, &st->body_cap, st->body_len + len, 1024, st->body_limit)) {
        refuse(st, REFUSE_UNAVAILABLE, 503, "out of memory");
        return 0;
    }
    memcpy(st->body + st->body_len, data, len);
    st->body_len += (uint32_t)len;
    return 0;
}

/* A frame went out: after an answer to a request we stopped reading, ask
 * the client to stop sending it (RFC 9113 8.1, RST_STREAM NO_ERROR). */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    h2sess_t *s = ud;
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) || !frame->hd.stream_id)
        return 0;
    h2stream_t *st = stream_get(s, frame->hd.stream_id);
    if (st && st->rst_after_answer && !st->complete) {
        st->rst_after_answer = 0;
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static void stream_free(h2sess_t *s, h2stream_t *st)
{
    req_on_abort(&st->req); /* detaches the subscriber, cancels an ack */
    reading_free(st);
    outq_dispose(&st->out);
    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    s->num_streams--;
    free(st);
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *ud)
{
    h2sess_t *s = ud;
    h2stream_t *st = stream_get(s, id);
    (void)error_code;
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    stream_free(s, st);
    return 0;
}

/* ---- answers (req_ops_t) ------------------------------------------------------------------ */

/* Fields that mean nothing in HTTP/2 (RFC 9113 8.2.2): never sent. */
static int connection_specific(const char *name)
{
    static const char *const drop[] = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                                       "upgrade"};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (!strcasecmp(name, drop[i]))
            return 1;
    return 0;
}

#define H2_RESP_FIELDS 48

/* The response's field list: :status, content-type, maybe content-length,
 * then the handler's fields lowercased into `lower` (nghttp2 copies them). */
static size_t build_nva(nghttp2_nv *nva, char *lower, const char *status, const char *content_type,
                        const char *length, const resp_hdrs_t *fields)
{
    size_t n = 0, used = 0, pos = 0;
#define NV(nm, val) \
    nva[n++] = (nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(val), strlen(nm), strlen(val), NGHTTP2_NV_FLAG_NONE}
    NV(":status", status);
    NV("content-type", content_type);
    if (length)
        NV("content-length", length);
    const char *name, *value;
    while (fields && n < H2_RESP_FIELDS && (name = resp_hdrs_next(fields, &pos, &value))) {
        size_t nl = strlen(name);
        if (connection_specific(name) || used + nl + 1 > RESP_HDRS_BYTES)
            continue;
        for (size_t i = 0; i < nl; i++)
            lower[used + i] = (char)tolower((unsigned char)name[i]);
        lower[used + nl] = 0;
        NV(lower + used, value);
        used += nl + 1;
    }
#undef NV
    return n;
}

static void want_send(h2stream_t *st)
{
    if (st->deferred) {
        st->deferred = 0;
        nghttp2_session_resume_data(st->sess->ng, st->id);
    }
    conn_want_flush(st->sess->conn);
}

static void h2_respond(req_t *r, int status, const resp_hdrs_t *fields, const char *content_type,
                       const char *body, size_t len)
{
    h2stream_t *st = st_of(r);
    h2sess_t *s = st->sess;
    if (fields && fields->overflow)
        log_warn("fd %d: response header fields did not fit; some were dropped", conn_fd(s->conn));
    if (!st->complete)
        st->rst_after_answer = 1;
    char code[8], clen[24], lower[RESP_HDRS_BYTES];
    snprintf(code, sizeof(code), "%d", status);
    snprintf(clen, sizeof(clen), "%zu", len);
    nghttp2_nv nva[H2_RESP_FIELDS + 3];
    size_t n = build_nva(nva, lower, code, content_type, clen, fields);
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = on_read_data};
    int with_body = !r->is_head && len > 0;
    if (with_body) {
        char *copy = malloc(len);
        if (!copy) {
            h2_req_ops.reset(r, "out of memory for a response");
            return;
        }
        memcpy(copy, body, len);
        outq_push_heap(&st->out, copy, len);
    }
    st->eof = 1;
    st->phase = H2S_RESPOND;
    st->deadline_ms = now_of(s) + H2_RESPONSE_DEADLINE_MS;
    int rv = nghttp2_submit_response(s->ng, st->id, nva, n, with_body ? &prd : NULL);
    if (rv)
        log_info("fd %d: HTTP/2 stream %d: cannot answer: %s", conn_fd(s->conn), st->id,
                 nghttp2_strerror(rv));
    conn_want_flush(s->conn);
}

static int h2_stream_begin(req_t *r, const resp_hdrs_t *fields)
{
    h2stream_t *st = st_of(r);
    h2sess_t *s = st->sess;
    char lower[RESP_HDRS_BYTES];
    nghttp2_nv nva[H2_RESP_FIELDS + 3];
    size_t n = build_nva(nva, lower, "200", "text/event-stream", NULL, fields);
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = on_read_data};
    if (nghttp2_submit_response(s->ng, st->id, nva, n, &prd))
        return -1;
    st->phase = H2S_STREAM;
    st->deadline_ms = 0;
    conn_want_flush(s->conn);
    return 0;
}

static int h2_push(req_t *r, wref_t *w, const char *p, size_t len, int heap)
{
    h2stream_t *st = st_of(r);
    if (st->reset || st->eof) {
        if (heap)
            free((void *)p);
        return w ? -1 : 0;
    }
    if (w) {
        /* Flow control is the slow-subscriber policy: a stream whose window
         * stays closed piles up here, and only here. */
        if (st->out.bytes + len > cfg_of(st->sess)->max_pending_bytes)
            return -1;
        outq_push_event(&st->out, w, p, len);
    } else if (heap) {
        outq_push_heap(&st->out, (char *)p, len);
    } else {
        outq_push_static(&st->out, p, len);
    }
    want_send(st);
    return 0;
}

static void h2_end(req_t *r)
{
    h2stream_t *st = st_of(r);
    if (st->eof)
        return;
    st->eof = 1; /* END_STREAM once the queue is sent */
    st->deferred = 1;
    want_send(st);
}

static size_t h2_pending(const req_t *r) { return ((const h2stream_t *)r)->out.bytes; }

static void h2_reset(req_t *r, const char *why)
{
    h2stream_t *st = st_of(r);
    if (st->reset)
        return;
    st->reset = 1;
    log_debug("fd %d: HTTP/2 stream %d reset: %s", conn_fd(st->sess->conn), st->id, why);
    nghttp2_submit_rst_stream(st->sess->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    conn_want_flush(st->sess->conn);
}

static const req_ops_t h2_req_ops = {h2_respond, h2_stream_begin, h2_push, h2_end, h2_pending, h2_reset};

/* ---- the session ------------------------------------------------------------------------- */

/* Built once per process (pthread_once), read-only afterwards: every
 * worker's sessions share them. */
static nghttp2_session_callbacks *shared_cbs;
static nghttp2_option *shared_opt;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void init_tables(void)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs))
        abort();
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_send_data_callback(cbs, on_send_data);
    shared_cbs = cbs;
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt))
        abort();
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, H2_MAX_OUTBOUND_ACK);
    nghttp2_option_set_max_settings(opt, 16);
    nghttp2_option_set_max_continuations(opt, H2_MAX_CONTINUATIONS);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, H2_DEFLATE_TABLE_SIZE);
    /* nghttp2's own rapid-reset limiter, a backstop behind ours (looser, so
     * ours answers first, with ENHANCE_YOUR_CALM and a log line). */
    nghttp2_option_set_stream_reset_rate_limit(opt, 2 * H2_RESET_BURST, 2 * H2_RESET_RATE);
    shared_opt = opt;
}

/* Our SETTINGS: the first frame we send. */
static int submit_settings(h2sess_t *s)
{
    const config_t *cfg = cfg_of(s);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)cfg->h2_max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, NGHTTP2_INITIAL_WINDOW_SIZE},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cfg->max_header_bytes},
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, H2_HEADER_TABLE_SIZE},
        /* RFC 9218: no RFC 7540 priority tree (nghttp2 then keeps no closed streams). */
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    return nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
}

static h2sess_t *sess_new(conn_t *c)
{
    pthread_once(&tables_once, init_tables);
    h2sess_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->conn = c;
    s->mem_fns = (nghttp2_mem){s, ng_malloc, ng_free, ng_calloc, ng_realloc};
    int64_t now = worker__now_ms(c->worker);
    s->resets = (h2_bucket_t){now, H2_RESET_BURST};
    s->ctrl = (h2_bucket_t){now, H2_CTRL_BURST};
    if (nghttp2_session_server_new3(&s->ng, shared_cbs, s, shared_opt, &s->mem_fns) || submit_settings(s)) {
        if (s->ng)
            nghttp2_session_del(s->ng);
        free(s);
        return NULL;
    }
    return s;
}

/* Feeds input to nghttp2. Returns 0, or -1 when the session cannot go on
 * (then `fatal` is set: what is queued goes out, then the conn finishes). */
static int feed(h2sess_t *s, const char *p, size_t len)
{
    s->in_ng++;
    ssize_t n = nghttp2_session_mem_recv(s->ng, (const uint8_t *)p, len);
    s->in_ng--;
    if (n < 0) {
        /* nghttp2 stops reading on these and queues no GOAWAY itself: a
         * flood it detected (ACKs the peer does not read), too many
         * CONTINUATIONs, our memory cap (NOMEM), a bad preface. An abuse
         * gets ENHANCE_YOUR_CALM, the rest PROTOCOL_ERROR. */
        int abuse =
            n == NGHTTP2_ERR_FLOODED || n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS || n == NGHTTP2_ERR_NOMEM;
        log_info("fd %d: HTTP/2 session ended: %s", conn_fd(s->conn), nghttp2_strerror((int)n));
        if (abuse)
            calm_down(s, nghttp2_strerror((int)n));
        else if (n != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
            nghttp2_session_terminate_session(s->ng, NGHTTP2_PROTOCOL_ERROR);
        s->fatal = 1;
        return -1;
    }
    return s->fatal ? -1 : 0;
}

/* Reads while the socket has bytes and the session wants them, feeding
 * nghttp2 from a stack buffer: a connection holds no read buffer. */
static void read_some(h2sess_t *s)
{
    conn_t *c = s->conn;
    char buf[16384];
    while (!s->fatal && nghttp2_session_want_read(s->ng)) {
        ssize_t n = conn_read(c, buf, sizeof(buf), "HTTP/2 peer closed");
        if (n < 0)
            return; /* closed: s is gone */
        if (n == 0)
            break;
        if (feed(s, buf, (size_t)n))
            break;
    }
    if (!s->fatal && !nghttp2_session_want_read(s->ng) && c->readable) {
        char sink[512]; /* after GOAWAY: the peer's leftovers are dropped */
        while (conn_read(c, sink, sizeof(sink), "HTTP/2 peer closed") > 0)
            ;
        if (conn_is_closing(c))
            return;
    }
    send_and_maybe_finish(s);
    conn_write_now(c); /* answers go out in the turn that read their requests */
}

/* ---- the protocol (conn_proto_t) ------------------------------------------------------------ */

static void h2_on_readable(conn_t *c) { read_some(sess_of(c)); }

static void h2_on_drained(conn_t *c) { send_and_maybe_finish(sess_of(c)); }

static void h2_on_tick(conn_t *c, int64_t now_ms)
{
    h2sess_t *s = sess_of(c);
    if (!s->num_streams && c->deadline_ms && now_ms >= c->deadline_ms) {
        nghttp2_session_terminate_session(s->ng, NGHTTP2_NO_ERROR); /* GOAWAY, then close */
        s->fatal = 1;
        log_debug("fd %d: HTTP/2 connection idle; GOAWAY", conn_fd(c));
        send_and_maybe_finish(s);
        return;
    }
    for (h2stream_t *st = s->streams, *next; st; st = next) {
        next = st->next; /* nothing here frees a stream: resets are only submitted */
        if (st->phase == H2S_STREAM && req_stream(&st->req)) {
            stream_on_tick(&st->req, now_ms);
        } else if ((st->phase == H2S_HEAD || st->phase == H2S_BODY) && now_ms >= st->deadline_ms) {
            st->rst_after_answer = 1;
            refuse(st, REFUSE_TIMEOUT, 408, "request not received within --header-timeout");
        } else if (st->phase == H2S_RESPOND && st->req.state == REQ_ANSWERED && st->deadline_ms &&
                   now_ms >= st->deadline_ms) {
            st->deadline_ms = 0;
            h2_reset(&st->req, "response not read by the client");
        }
    }
}

static void h2_on_stop(conn_t *c, int64_t now_ms, int spread_ms)
{
    h2sess_t *s = sess_of(c);
    if (s->stopping)
        return;
    s->stopping = 1;
    /* GOAWAY with the last stream we took: the client opens no more here,
     * the open ones finish, and streams end with the same jittered drain as
     * HTTP/1 ones (so browsers do not all reconnect in one burst). */
    nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    for (h2stream_t *st = s->streams; st; st = st->next)
        if (st->phase == H2S_STREAM && req_stream(&st->req))
            stream_schedule_end(&st->req, now_ms, spread_ms);
    conn_want_flush(c);
}

static void h2_on_close(conn_t *c)
{
    h2sess_t *s = sess_of(c);
    if (!s)
        return;
    assert(!s->in_ng); /* never from inside an nghttp2 callback (see the top of this file) */
    log_debug("fd %d: HTTP/2 session closed: nghttp2 held %zu bytes (peak %zu)", conn_fd(c), s->mem,
              s->mem_peak);
    for (h2stream_t *st = s->streams, *next; st; st = next) {
        next = st->next;
        stream_free(s, st); /* nghttp2_session_del calls no stream-close callback */
    }
    nghttp2_session_del(s->ng);
    free(s->wbuf);
    free(s);
    c->proto_ctx = NULL;
}

const conn_proto_t h2server_proto = {"h2",       h2_on_readable, h2_on_drained,
                                     h2_on_tick, h2_on_stop,     h2_on_close};

/* ---- entry points ---------------------------------------------------------------------------- */

int h2server_take_over(struct conn *c)
{
    h2sess_t *s = sess_new(c);
    if (!s)
        return -1;
    c->proto = &h2server_proto;
    c->proto_ctx = s;
    conn_set_deadline(c, worker__now_ms(c->worker) + (int64_t)cfg_of(s)->header_timeout_s * 1000);
    atomic_fetch_add_explicit(&worker_stats(c->worker)->h2_connections, 1, memory_order_relaxed);
    log_debug("fd %d: HTTP/2", conn_fd(c));
    if (c->rlen) {
        /* What the previous protocol read: the preface and maybe more. */
        int r = feed(s, c->rbuf, c->rlen);
        conn_rbuf_release(c);
        if (r) {
            send_and_maybe_finish(s);
            return 0;
        }
    }
    conn_rbuf_release(c);
    read_some(s);
    return 0;
}

struct conn *h2server_accept(worker_t *w, int fd, const struct sockaddr *peer, socklen_t len,
                             int peer_loopback, void *ctx)
{
    (void)ctx;
    conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    conn_init(c, w, fd, &h2server_proto, peer, len, peer_loopback);
    h2sess_t *s = sess_new(c);
    if (!s) {
        free(c);
        return NULL;
    }
    c->proto_ctx = s;
    conn_set_deadline(c, worker__now_ms(w) + (int64_t)cfg_of(s)->header_timeout_s * 1000);
    atomic_fetch_add_explicit(&worker_stats(w)->h2_connections, 1, memory_order_relaxed);
    conn_want_flush(c); /* our SETTINGS go out first */
    return c;
}

int h2server_get_stats(const struct conn *c, h2server_stats_t *out)
{
    if (c->proto != &h2server_proto || !c->proto_ctx)
        return -1;
    const h2sess_t *s = c->proto_ctx;
    *out = (h2server_stats_t){s->num_streams, s->mem, s->mem_peak, s->calm};
    return 0;
}

int h2server__feed(struct conn *c, const char *p, size_t len)
{
    h2sess_t *s = sess_of(c);
    if (conn_is_closing(c) || c->state != CONN_OPEN)
        return -1;
    if (!s->fatal && nghttp2_session_want_read(s->ng))
        (void)feed(s, p, len);
    send_and_maybe_finish(s);
    return conn_is_closing(c) || c->state != CONN_OPEN ? -1 : 0;
}
