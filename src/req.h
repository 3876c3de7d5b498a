/*
 * req.h - one request and its answer, whatever protocol carried them.
 *
 *   protocol server (h1server.c; h2 next)          router and handlers
 *   -------------------------------------          -------------------
 *   head parsed  ---- request_t (a view) ------->  route_head: route, authorize,
 *                <--- REQ_BODY_* / answered ----      how much body to accept
 *   body read    ---- request_t + body --------->  route_request: the handler
 *                <--- req_respond / req_refuse        one whole answer, or
 *                <--- req_try_stream_begin            an event stream: its head,
 *                <--- req_try_push_event              then events (zero-copy) and
 *                <--- req_push_comment                comments, until
 *                <--- req_end                         it ends
 *   peer gone    ---- req_on_abort (stream, ack) ->  (detached here, in req.c)
 *
 * Handlers never write protocol bytes: status, header fields and a body go
 * through this API, and the protocol server frames them (HTTP/1.1 text with
 * Content-Length or chunked, or HTTP/2 frames). Event bytes stay zero-copy:
 * an event is pushed as a wref (wref.h) and ends up as an iovec into the
 * shared evbuf.
 *
 * Ownership: a req_t belongs to the protocol server that made it (inside the
 * conn for HTTP/1, one per stream for HTTP/2). It owns its subscriber state
 * (req_stream), or a feed (req_feed), or, while a publish waits for the
 * journal, the ack (req_ack_token, acks.h): one at a time, in one word
 * (req_t.held); each is released by req_on_abort when the peer goes away
 * first.
 * A request_t is a view into the protocol's buffers, valid only during the
 * call it is passed to.
 *
 * Threads: a req belongs to its connection's worker thread.
 */
#ifndef COURANT_REQ_H
#define COURANT_REQ_H

#include "http1.h"
#include "peer.h"
#include "wref.h"

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct stream;

/* Refusal reasons counted for /metrics (refused_requests_total{reason=..}). */
typedef enum refusal {
    REFUSE_BAD_REQUEST,
    REFUSE_NOT_FOUND,
    REFUSE_METHOD,
    REFUSE_HEADERS_TOO_LARGE,
    REFUSE_BODY_TOO_LARGE,
    REFUSE_TIMEOUT,
    REFUSE_OVER_CAPACITY,
    REFUSE_FORBIDDEN,
    REFUSE_UNAVAILABLE,
    REFUSE_UNAUTHORIZED,
    REFUSE_RATE_LIMITED,
    REFUSE__COUNT
} refusal_t;

extern const char *const refusal_names[REFUSE__COUNT];

/* ---- response header fields ---------------------------------------------------
 * A small builder on the stack: "Name\0value\0" pairs in one buffer, so an
 * answer that must wait (a publish waiting for the journal) keeps a compact
 * copy. Names are the usual mixed case; HTTP/2 lowercases them. */
#define RESP_HDRS_BYTES 1536

typedef struct resp_hdrs {
    uint16_t n;                /* fields */
    uint16_t used;             /* bytes of buf in use */
    uint8_t overflow;          /* a field did not fit (dropped; logged by the protocol) */
    char buf[RESP_HDRS_BYTES]; /* "Name\0value\0" pairs */
} resp_hdrs_t;

void resp_hdrs_init(resp_hdrs_t *h);
/* Appends a field; the value is copied. A field that does not fit is
 * dropped and `overflow` set. */
void resp_hdrs_add(resp_hdrs_t *h, const char *name, const char *value);
void resp_hdrs_addf(resp_hdrs_t *h, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void resp_hdrs_append(resp_hdrs_t *h, const resp_hdrs_t *more);
/* A compact heap copy (only the bytes in use), for an answer that waits;
 * free() it. NULL if out of memory. Read it only with resp_hdrs_next. */
resp_hdrs_t *resp_hdrs_dup(const resp_hdrs_t *h);
/* Iterates: start with *pos = 0; returns the name (and *value) or NULL at the end. */
const char *resp_hdrs_next(const resp_hdrs_t *h, size_t *pos, const char **value);

/* ---- the request ------------------------------------------------------------- */

typedef enum req_token_from {
    REQ_TOKEN_NONE,   /* no token presented */
    REQ_TOKEN_HEADER, /* Authorization: Bearer */
    REQ_TOKEN_QUERY,  /* the authorization query parameter (classic dialect) */
    REQ_TOKEN_COOKIE, /* a cookie (browsers: CSRF rules apply): mercureAuthorization (classic) or
                         __Secure-mercure_access_token (v1), as request_t.dialect says */
} req_token_from_t;

/* What a handler reads. Every pointer borrows the protocol's buffers and is
 * valid only during the call the view is passed to. */
typedef struct request {
    const char *method; /* e.g. "GET", not NUL-terminated */
    size_t method_len;
    const char *path; /* as sent, percent-encoded, without the query */
    size_t path_len;
    const char *query; /* after '?', without it; "" if none */
    size_t query_len;
    const http1_header_t *headers; /* field names as sent (lookups are case-insensitive) */
    size_t num_headers;
    const char *body; /* complete body (route_request only), or NULL */
    size_t body_len;
    int version;             /* 10 (HTTP/1.0), 11, 20 */
    uint8_t is_head;         /* HEAD: answer as GET, without a body */
    uint8_t secure;          /* arrived over TLS */
    uint8_t peer_loopback;   /* the socket peer is 127.0.0.0/8 or ::1 */
    const peer_addr_t *peer; /* the socket peer's address */
    /* Filled by the router at head time, for the handlers: */
    peer_addr_t client;          /* the client: the peer, or behind a --trusted-proxy what its header says */
    uint8_t client_limited;      /* rate limits apply to it (not loopback, or --limit-loopback) */
    uint8_t dialect;             /* dialect_t (dialect.h): the protocol the request speaks, as far as
                                    its route and parameters say; AUTO: the token's decides */
    uint8_t token_in_url;        /* a v1 request carries a token in its query: 400 invalid_request */
    req_token_from_t token_from; /* where the token came from */
    const char *token;           /* the token (borrowed; a decoded query value points into router scratch) */
    size_t token_len;
    resp_hdrs_t cors; /* CORS fields for this request's Origin (maybe none) */
} request_t;

/* Case-insensitive lookup of a request header field; NULL if absent. */
const http1_header_t *request_header(const request_t *in, const char *name);

/* ---- the exchange --------------------------------------------------------------- */

typedef struct req req_t;

/* A stream that is not a subscriber (the admin dashboard's feed,
 * dashboard.c): its starter keeps its state behind this header and hears of
 * the end here, as stream.c does through req_on_abort. */
typedef struct req_feed {
    void (*on_abort)(req_t *r); /* the exchange is going away: unlink and free the feed */
} req_feed_t;

struct accesslog_rec;

/* What a protocol server implements (h1server.c, later h2). */
typedef struct req_ops {
    /* A whole answer: status, fields (plus Content-Type and the framing the
     * protocol needs), and a body (copied; omitted for HEAD). */
    void (*respond)(req_t *r, int status, const resp_hdrs_t *h, const char *content_type, const char *body,
                    size_t len);
    /* The head of an event stream (200, text/event-stream). 0 or -1 (out of memory). */
    int (*stream_begin)(req_t *r, const resp_hdrs_t *h);
    /* Queues stream bytes: an event (wref != NULL, `ev` bytes are its wire
     * bytes) or a comment/retry line (wref == NULL; `heap`: p is malloc'd
     * and owned by the queue from now on, else a constant). Returns -1
     * without queuing an event when it would pass --max-pending-bytes. */
    int (*push)(req_t *r, wref_t *wref, const char *p, size_t len, int heap);
    /* Ends a stream gracefully: what is queued is written, then the end is
     * signalled (HTTP/1: close or last chunk; HTTP/2: END_STREAM). */
    void (*end)(req_t *r);
    /* Stream bytes queued and not yet written. */
    size_t (*pending)(const req_t *r);
    /* Abandons the exchange at once (HTTP/1: closes the connection; HTTP/2:
     * resets the stream). */
    void (*reset)(req_t *r, const char *why);
} req_ops_t;

typedef enum req_state {
    REQ_IDLE,      /* no request in progress */
    REQ_HANDLING,  /* a handler runs, or must still answer */
    REQ_WAITING,   /* the answer waits for an ack (req_ack_token) */
    REQ_ANSWERED,  /* a whole answer is queued */
    REQ_STREAMING, /* an event stream: a subscriber (req_stream) or a feed (req_feed) */
    REQ_ENDING,    /* the stream is ending: no more events */
} req_state_t;

/* What req_t.held holds (req_t.holds). A request is a subscriber, a feed, or
 * a publish waiting for an ack, never two at once, so the three share one
 * word: every connection (idle subscribers above all) is 16 bytes smaller. */
typedef enum req_holds {
    REQ_HOLDS_NONE,   /* nothing */
    REQ_HOLDS_STREAM, /* held.stream */
    REQ_HOLDS_FEED,   /* held.feed */
    REQ_HOLDS_ACK,    /* held.ack_token */
} req_holds_t;

struct req {
    const req_ops_t *ops; /* borrows: the protocol's table */
    struct conn *conn;    /* borrows: the connection carrying it */
    /* What this request holds, as `holds` says; read and write it only
     * through req_stream/req_feed/req_ack_token and their setters below. */
    union {
        struct stream *stream; /* owns: subscriber state while streaming (stream.h) */
        req_feed_t *feed;      /* owns (through feed->on_abort): a non-subscriber stream's state */
        uint64_t ack_token;    /* REQ_WAITING: the ack slot (acks.h) */
    } held;
    struct accesslog_rec *alog; /* owns: this request's access-log record (--access-log), or NULL */
    int64_t head_us;            /* monotonic us of the turn that completed the head (router); 0 = unknown */
    uint8_t state;              /* req_state_t */
    uint8_t route;              /* the router's choice at head time (router.c) */
    uint8_t is_head;            /* HEAD: no body in the answer */
    uint8_t holds;              /* req_holds_t: which member of `held` is in use */
};

/* The subscriber state, or NULL when the req holds none. */
static inline struct stream *req_stream(const req_t *r)
{
    return r->holds == REQ_HOLDS_STREAM ? r->held.stream : NULL;
}

/* The feed, or NULL when the req holds none. */
static inline req_feed_t *req_feed(const req_t *r)
{
    return r->holds == REQ_HOLDS_FEED ? r->held.feed : NULL;
}

/* The ack slot a waiting publish holds, or 0. */
static inline uint64_t req_ack_token(const req_t *r)
{
    return r->holds == REQ_HOLDS_ACK ? r->held.ack_token : 0;
}

/* The setters: a value takes `held` (the req must hold nothing else), and
 * NULL or 0 gives it back. Ownership of a stream or a feed passes to the
 * req (released by req_on_abort); clearing does not free. Like every req
 * call, on the connection's worker thread. */
static inline void req_set_stream(req_t *r, struct stream *s)
{
    assert(r->holds == REQ_HOLDS_NONE || r->holds == REQ_HOLDS_STREAM);
    r->holds = s ? REQ_HOLDS_STREAM : REQ_HOLDS_NONE;
    r->held.stream = s;
}

static inline void req_set_feed(req_t *r, req_feed_t *f)
{
    assert(r->holds == REQ_HOLDS_NONE || r->holds == REQ_HOLDS_FEED);
    r->holds = f ? REQ_HOLDS_FEED : REQ_HOLDS_NONE;
    r->held.feed = f;
}

static inline void req_set_ack_token(req_t *r, uint64_t token)
{
    assert(r->holds == REQ_HOLDS_NONE || r->holds == REQ_HOLDS_ACK);
    r->holds = token ? REQ_HOLDS_ACK : REQ_HOLDS_NONE;
    r->held.ack_token = token;
}

/* What answers requests, for every protocol (router.c implements it; main
 * puts it in server_t). */
typedef struct req_handler {
    /* The head is complete (no body read yet): route, authorize, and say how
     * many body bytes to accept: >= 0 (a larger body is refused with 413,
     * and a body on a route that takes none with 413 too), or -1 when the
     * request was answered already (refused). Runs before any
     * "100 Continue" goes out. */
    long (*on_head)(req_t *r, request_t *in);
    /* The whole request is here: answer it (now, later through an ack, or
     * as a stream). */
    void (*on_request)(req_t *r, request_t *in);
} req_handler_t;

/* Sets up a req for a protocol (storage provided by the protocol). */
void req_init(req_t *r, const req_ops_t *ops, struct conn *c);

/* ---- answering (handlers) ------------------------------------------------------ */

/* A whole answer. `h` may be NULL (no extra fields). */
void req_respond(req_t *r, int status, const resp_hdrs_t *h, const char *content_type, const char *body,
                 size_t len);

/* A plain-text refusal: the status, `reason` as the body, a log line, and
 * the counter for `why`. `h` may be NULL. */
void req_refuse(req_t *r, refusal_t why, int status, const resp_hdrs_t *h, const char *reason);

/* The same, logged at debug level (for refusals an outage would repeat). */
void req_refuse_quietly(req_t *r, refusal_t why, int status, const resp_hdrs_t *h, const char *reason);

/* Starts an event stream; the req is REQ_STREAMING after it. 0, or -1 when
 * memory runs out (nothing was sent; the caller refuses). */
int req_try_stream_begin(req_t *r, const resp_hdrs_t *h) __attribute__((warn_unused_result));

/* Queues one event on a stream; -1 (nothing queued) past --max-pending-bytes. */
int req_try_push_event(req_t *r, wref_t *w) __attribute__((warn_unused_result));

/* Queues a comment or field line on a stream: a constant, or (heap) a
 * malloc'd buffer whose ownership passes to the queue. */
void req_push_bytes(req_t *r, const char *p, size_t len, int heap);

/* The same for a malloc'd buffer, whose ownership passes to the queue
 * (the pointer is not const, so the analyzer sees it escape). */
void req_push_heap(req_t *r, char *p, size_t len);

/* Ends a stream gracefully (see req_ops_t.end); the req is REQ_ENDING. */
void req_end(req_t *r);

/* Abandons it at once (a subscriber that reads nothing after its end). */
void req_reset(req_t *r, const char *why);

size_t req_pending(const req_t *r);

/* The answer will come later (an ack): the req is REQ_WAITING with `token`.
 * A waiting req may wait again with a new token (its first ack came, but
 * the answer is held on: publish pacing, worker.h). */
void req_wait(req_t *r, uint64_t token);

/* A publish's event is in the hub (memory journal) or accepted by the
 * journal: records the time since the head into the worker's
 * publish_enqueue histogram (worker.h). Call once per published event. */
void req_note_enqueued(req_t *r);

/* ---- for protocol servers -------------------------------------------------------- */

/* The peer went away (or the connection is closing): detaches the stream
 * (or the feed) from its worker, cancels a pending ack, and writes the
 * access-log line of a stream, or of a request left unanswered (499). The
 * req is REQ_IDLE after it and may be freed or reused. */
void req_on_abort(req_t *r);

/* The reason phrase of a status code ("Not Found"), or "" if unknown. */
const char *req_status_text(int status);

#endif
