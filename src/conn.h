/*
 * conn.h - one client connection: reading a request, queuing output,
 * writing it with writev, and closing.
 *
 * Life of a connection:
 *
 *   accept -> READ_HEAD --(head complete, body expected)--> READ_BODY
 *                 |  ^                                         |
 *                 |  +------ response written, keep-alive -----+
 *                 v                                            v
 *              (router)  --> RESPOND (a response is queued) ---+--> close
 *                        --> STREAM  (an event stream; output only)
 *
 * Read buffer: allocated when a request starts and freed when the
 * connection goes idle or becomes a stream, so an idle subscriber holds no
 * read buffer at all (Redis and nginx do the same).
 *
 * Output queue: a FIFO of (pointer, length, kind) items. STATIC items are
 * string constants; HEAP items are owned and freed once written; EVENT items
 * borrow a wref and drop it once written. Nothing is ever copied per
 * subscriber: an event's bytes go from the evbuf to the socket by writev.
 * The first two items live inside the conn; a deeper queue moves to the heap.
 *
 * Threads: a conn belongs to its worker's thread and is touched by no other.
 */
#ifndef COURANT_CONN_H
#define COURANT_CONN_H

#include "http1.h"
#include "worker.h"

#include <stddef.h>
#include <stdint.h>

typedef enum conn_state {
    CONN_READ_HEAD, /* waiting for (the rest of) a request head */
    CONN_READ_BODY, /* head parsed, reading a request body */
    CONN_RESPOND,   /* a response is queued; reads wait until it is written */
    CONN_STREAM,    /* an event stream: output only, input is discarded */
    CONN_LINGER,    /* all written and SHUT_WR sent: input discarded until the
                        peer closes or CONN_LINGER_MS pass (so unread request
                        bytes don't make the kernel reset the answer away) */
    CONN_CLOSING,   /* closed this turn; freed at the end of the turn */
} conn_state_t;

typedef enum outq_kind { OUT_STATIC, OUT_HEAP, OUT_EVENT } outq_kind_t;

typedef struct outq_item {
    const char *ptr; /* STATIC: borrows; HEAP: owns (free); EVENT: inside wref->ev */
    uint32_t len;    /* bytes */
    uint32_t kind;   /* outq_kind_t */
    wref_t *wref;    /* EVENT: borrows one count of wref->refs */
} outq_item_t;

#define CONN_OUTQ_INLINE 2
#define CONN_LINGER_MS 2000

typedef struct conn {
    int handle_kind;        /* must be first: tells epoll handles apart */
    int fd;                 /* owns */
    worker_t *worker;       /* borrows */
    uint8_t state;          /* conn_state_t */
    uint8_t readable : 1;   /* edge-triggered: the socket may have unread bytes */
    uint8_t writable : 1;   /* edge-triggered: the socket may accept bytes */
    uint8_t keep_alive : 1; /* after this response, read the next request */
    uint8_t in_flush_list : 1;
    uint8_t peer_loopback : 1;    /* the peer address is 127.0.0.0/8 or ::1 */
    uint8_t shut_after_flush : 1; /* close once the queue is empty */
    uint8_t chunked : 1;          /* the request body is chunked */
    uint8_t got_bytes : 1;        /* this request has started arriving */

    char *rbuf;              /* owns; NULL while idle or streaming */
    uint32_t rlen, rcap;     /* bytes in rbuf, its size */
    uint32_t head_len;       /* request head bytes, once parsed */
    uint32_t body_len;       /* READ_BODY: decoded body bytes after the head */
    uint64_t content_length; /* READ_BODY without chunked */
    http1_chunked_decoder_t chunk_dec;

    outq_item_t *outq; /* points at outq_inline or a heap array (owned) */
    uint32_t outq_head, outq_count, outq_cap;
    uint32_t out_off; /* bytes of outq[outq_head] already written */
    size_t out_bytes; /* bytes queued and not yet written */
    outq_item_t outq_inline[CONN_OUTQ_INLINE];

    int64_t deadline_ms;      /* monotonic: read timeout, or stream end of life */
    int64_t last_write_ms;    /* monotonic: last time output was queued (heartbeat) */
    uint64_t ack_token;       /* CONN_RESPOND with --store: the publish waits for the
                                 store's answer (worker__ack_wait); 0 = not waiting */
    struct stream *stream;    /* owns; non-NULL in CONN_STREAM */
    struct conn *prev, *next; /* the worker's list of all its connections */
    struct conn *flush_next;  /* the worker's flush list, or its free list */
} conn_t;

/* Called by the worker. */
conn_t *conn_new(worker_t *w, int fd, int peer_loopback); /* NULL: caller closes fd */
void conn_on_readable(conn_t *c);
void conn_flush(conn_t *c); /* write what is queued, up to the per-turn cap */
void conn_free(conn_t *c);  /* end of turn, after conn_close */
void conn_on_tick(conn_t *c, int64_t now_ms);

/* Ends the connection gracefully: what is queued is written, then our side
 * is shut (the client sees a clean end of stream) and the conn lingers
 * until the peer closes. */
void conn_finish(conn_t *c);

/* Marks the connection closed: no more I/O, freed at the end of the turn.
 * `why` (static string) is logged at debug level. */
void conn_close(conn_t *c, const char *why);

/* Queue output. Ownership of a HEAP pointer passes to the conn. The event
 * variant takes one count of the wref and returns -1 without queuing when
 * it would pass --max-pending-bytes (the caller then drops the subscriber). */
void conn_enqueue_static(conn_t *c, const char *s, size_t len);
void conn_enqueue_heap(conn_t *c, char *p, size_t len);
int conn_try_enqueue_event(conn_t *c, wref_t *r) __attribute__((warn_unused_result));

/* Queues a whole response with Content-Length and the usual headers.
 * `extra_headers` is "" or lines each ending in CRLF. After it is written
 * the connection reads the next request, unless `close` or the client said
 * so. `status` is e.g. "404 Not Found". */
void conn_respond(conn_t *c, const char *status, const char *content_type, const char *extra_headers,
                  const char *body, size_t body_len, int close);

/* A plain-text error response with a log line and a refusal counted. */
void conn_refuse(conn_t *c, refusal_t why, const char *status, const char *reason);

/* The same with extra header lines ("" or lines ending in CRLF), e.g.
 * WWW-Authenticate, or CORS headers so a browser can read the refusal. */
void conn_refuse_with(conn_t *c, refusal_t why, const char *status, const char *extra_headers,
                      const char *reason);

#endif
