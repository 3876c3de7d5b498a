/*
 * conn.h - one client connection: its transport, its read buffer, its
 * output queue and its timers. What the bytes mean belongs to the protocol
 * server the listener chose (conn_proto_t: HTTP/1 today, HTTP/2 next).
 *
 *   worker --epoll--> conn_on_readable --> proto->on_readable --> conn_read (budgeted)
 *   worker flush list --> conn_flush --> outq --> io_writev --> proto->on_drained
 *   worker tick --> conn_on_tick --> proto->on_tick (timeouts, heartbeats)
 *   conn_close --> proto->on_close (aborts its requests) --> freed at end of turn
 *
 * Budgets per turn (STYLE: cap what one connection may take of a turn):
 * a connection reads at most CONN_READS_PER_TURN times; one that still has
 * bytes waits on the worker's read-again list for the next turn (sockets
 * are edge-triggered, so nothing else would bring it back). It writes at
 * most CONN_WRITE_CAP_PER_TURN bytes per turn, counted on every path (the
 * early write of an answer included).
 *
 * Lingering close: after our last byte, shutdown(SHUT_WR), then input is
 * discarded until the peer closes or CONN_LINGER_MS pass, so unread request
 * bytes cannot make the kernel reset an answer still in flight.
 *
 * Memory: a protocol allocates its connection with conn_t as its first
 * member (HTTP/1 keeps its one request inline), so an idle subscriber costs
 * one allocation; the read buffer exists only while a request is read.
 *
 * Threads: a conn belongs to its worker's thread and is touched by no other.
 */
#ifndef COURANT_CONN_H
#define COURANT_CONN_H

#include "io.h"
#include "outq.h"
#include "peer.h"
#include "worker.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct conn conn_t;

/* A protocol server: what to do with a connection's bytes and events. */
typedef struct conn_proto {
    const char *name; /* "http/1.1", "h2" */
    /* The socket may have bytes: read them with conn_read while wanted. */
    void (*on_readable)(conn_t *c);
    /* The output queue was written out (and the conn is not closing). */
    void (*on_drained)(conn_t *c);
    /* Every tick (250 ms): timeouts, heartbeats, ends of life. */
    void (*on_tick)(conn_t *c, int64_t now_ms);
    /* Shutdown began: close what is idle, end streams within spread_ms. */
    void (*on_stop)(conn_t *c, int64_t now_ms, int spread_ms);
    /* The conn is closing: abort its requests, free protocol state (not
     * the conn itself). */
    void (*on_close)(conn_t *c);
} conn_proto_t;

typedef enum conn_state {
    CONN_OPEN,    /* the protocol runs */
    CONN_LINGER,  /* all written and our side shut: input discarded until the
                     peer closes or CONN_LINGER_MS pass */
    CONN_CLOSING, /* closed this turn; freed at the end of the turn */
} conn_state_t;

#define CONN_LINGER_MS 2000
#define CONN_READS_PER_TURN 16             /* libuv reads at most 32 times per event */
#define CONN_WRITE_CAP_PER_TURN (1u << 20) /* fairness between connections (h2o: 1 MiB) */
#define CONN_IOV_MAX 256                   /* 25 KiB of ~100-byte events per writev */
#define CONN_DISCARD_BYTES 4096            /* per read of input that is dropped (on the stack) */

struct conn {
    int handle_kind;      /* must be first: tells epoll handles apart (worker.c) */
    uint8_t state;        /* conn_state_t */
    uint8_t readable : 1; /* edge-triggered: the socket may have unread bytes */
    uint8_t writable : 1; /* edge-triggered: the socket may accept bytes */
    uint8_t in_flush_list : 1;
    uint8_t in_read_list : 1;     /* waits on the worker's read-again list */
    uint8_t peer_loopback : 1;    /* the peer address is 127.0.0.0/8 or ::1 */
    uint8_t shut_after_flush : 1; /* linger once the queue is written */
    uint8_t peer_counted : 1;     /* counted in server_t.conns_per_ip (released at close) */
    uint8_t reads_this_turn;      /* conn_read calls in the current turn */
    uint32_t turn;                /* the worker turn the two counters belong to */
    uint32_t written_this_turn;   /* bytes written in that turn */
    io_t io;                      /* owns (fd closed by conn_free, state by io_close) */
    worker_t *worker;             /* borrows */
    const conn_proto_t *proto;    /* borrows: a static table */
    void *proto_ctx;              /* owns (through proto->on_close): per-protocol state
                                 that does not live inline, e.g. an HTTP/2 session */

    char *rbuf;          /* owns; NULL while idle or streaming */
    uint32_t rlen, rcap; /* bytes in rbuf, its size */

    outq_t out; /* the wire bytes waiting to be written */

    int64_t deadline_ms;      /* monotonic: the protocol's read/idle deadline, or linger end */
    int64_t last_write_ms;    /* monotonic: last time output was written (heartbeats) */
    peer_addr_t peer;         /* the socket peer's address (IPv4 mapped): limits, logs */
    struct conn *prev, *next; /* the worker's list of all its connections */
    struct conn *flush_next;  /* the worker's flush list, or its free list */
    struct conn *read_next;   /* the worker's read-again list */
};

/* Sets up the conn part of a connection the protocol allocated (zeroed,
 * conn_t first), taking ownership of `fd`. The peer's address is kept. */
void conn_init(conn_t *c, worker_t *w, int fd, const conn_proto_t *proto, const struct sockaddr *peer,
               socklen_t peer_len, int peer_loopback);

/* ---- called by the worker ---- */
void conn_on_readable(conn_t *c);
void conn_on_writable(conn_t *c); /* EPOLLOUT: schedules a flush if output waits */
void conn_flush(conn_t *c);       /* writes what is queued, within the turn's budget */
void conn_on_tick(conn_t *c, int64_t now_ms);
void conn_on_stop(conn_t *c, int64_t now_ms, int spread_ms);
void conn_free(conn_t *c); /* end of turn, after conn_close */

/* ---- called by protocols ---- */

/* One read into buf. Returns the bytes read; 0 when there is nothing more
 * this turn (the socket is drained, or the turn's read budget is spent: the
 * conn then waits on the read-again list); -1 after closing the conn (the
 * peer closed, or an error). `eof_why` is logged at debug level on EOF. */
ssize_t conn_read(conn_t *c, char *buf, size_t cap, const char *eof_why);

/* Reads once into the read buffer's free space (grown so that `want` more
 * bytes fit, within `cap` bytes in all), appending to rbuf[0..rlen).
 * Returns as conn_read; -2 when the cap or memory is exhausted (nothing
 * read: the caller refuses). */
ssize_t conn_read_rbuf(conn_t *c, size_t want, size_t cap, const char *eof_why);

/* The protocol consumed the first `n` buffered bytes (what is after them
 * moves to the front), or keeps only the first `len` (an in-place decoder
 * shrank them). */
void conn_rbuf_consume(conn_t *c, size_t n);
void conn_rbuf_truncate(conn_t *c, size_t len);
void conn_rbuf_release(conn_t *c); /* frees it (idle keep-alive, or a stream) */

/* The protocol's deadline (checked by its on_tick). */
static inline void conn_set_deadline(conn_t *c, int64_t at_ms) { c->deadline_ms = at_ms; }

/* Queues output (see outq.h for ownership) and schedules a flush. */
void conn_queue_static(conn_t *c, const char *s, size_t len);
void conn_queue_heap(conn_t *c, char *p, size_t len);

/* Queues event bytes (a slice of r->ev) unless that would pass `cap`
 * queued bytes; before calling the subscriber slow, the socket is offered
 * what is already queued (a burst is queued before the turn's flush).
 * Returns 0, or -1 without queuing. */
int conn_try_queue_event(conn_t *c, wref_t *r, const char *p, size_t len, size_t cap)
    __attribute__((warn_unused_result));

/* The protocol has output to produce (HTTP/2: frames it builds only when
 * the queue has drained): schedules a flush, in which proto->on_drained
 * runs once the queue is empty. */
void conn_want_flush(conn_t *c);

/* The same, from the worker's back-to-back copy of the event (wref_copy)
 * while this connection keeps up, so the events it takes in a row go out
 * as one iovec (wref.h: half the kernel time per event at 128 events per
 * writev); otherwise, or when not copied, as conn_try_queue_event. */
int conn_try_queue_event_copy(conn_t *c, wref_t *r, const char *p, size_t len, size_t cap)
    __attribute__((warn_unused_result));

/* Writes what is queued now, within the turn's budget (an answer goes out
 * in the turn that read its request). Never calls back into the protocol;
 * whatever follows a drained queue happens in the flush. */
void conn_write_now(conn_t *c);

/* Ends the connection gracefully: what is queued is written, then our side
 * is shut and the conn lingers until the peer closes. */
void conn_finish(conn_t *c);

/* Marks the connection closed: no more I/O, freed at the end of the turn.
 * `why` (static string) is logged at debug level. */
void conn_close(conn_t *c, const char *why);

static inline size_t conn_pending(const conn_t *c) { return c->out.bytes; }
static inline int conn_is_closing(const conn_t *c) { return c->state == CONN_CLOSING; }
static inline int conn_fd(const conn_t *c) { return c->io.fd; }

#endif
