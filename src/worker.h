/*
 * worker.h - one event loop on one thread: its listening sockets, its
 * connections, its share of the subscribers, and its inbox of events.
 *
 * A turn of the loop:
 *   1. epoll_wait (timeout: the next 250 ms tick, or the gathered inbox's
 *      deadline; 0 when work is left over)
 *   2. the read-again list (connections whose read budget ran out), then
 *      for each ready handle: accept, note the doorbell, or read
 *   3. take the inbox and fan it out, when due: under a burst the inbox is
 *      gathered for up to --fanout-batch-us (or 128 events), so that one
 *      writev carries many events; the first event after a quiet spell
 *      goes at once
 *   4. replay history to new subscribers, within the turn's budget
 *   5. flush every connection that has queued output (writev, capped per
 *      turn); every 64 connections, read what arrived meanwhile (a
 *      publisher's next request is answered during a long fan-out)
 *   6. on a tick: timeouts, heartbeats, lifetimes, shutdown drain
 *   7. free the connections closed during this turn
 * Connections are never freed inside their own callbacks (step 6), so an
 * epoll event later in the same batch never touches freed memory.
 *
 * The inbox is the only shared structure: a vector of messages under a
 * mutex, plus an eventfd. A message is either an event to fan out (from the
 * hub) or the journal's answer to a publish that waits for it (an "ack",
 * completed through the worker's ack table, acks.h). The hub pushes into
 * every inbox under its lock but rings the doorbells after releasing it
 * (worker_post returns whether a wake-up is due; worker_wake does it).
 *
 * Each listener carries the protocol its connections speak (HTTP/1 today,
 * HTTP/2 or TLS next): accept hands the socket to that protocol's
 * `accept` function, which allocates the connection.
 *
 * Threads: worker_post, worker_post_ack, worker_wake and worker_stats'
 * counters may be used from any thread; everything else from the worker's
 * own thread (after worker_start) or from main (before it, after join).
 */
#ifndef COURANT_WORKER_H
#define COURANT_WORKER_H

#include "evbuf.h"
#include "histo.h"
#include "outq.h"
#include "req.h"
#include "wref.h"

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct worker worker_t;
struct conn;
struct server;
struct acks;
struct stream_index;

/* What a listening socket's connections speak: allocates a connection for
 * an accepted socket (conn_init inside), or NULL (the worker closes fd). */
typedef struct conn *(*worker_accept_fn)(worker_t *w, int fd, const struct sockaddr *peer, socklen_t len,
                                         int peer_loopback, void *ctx);

/* Best effort, on a fresh socket about to be closed: tells the peer why in
 * the listener's protocol: 503 (the server is at --max-connections) or 429
 * (its address is at --max-connections-per-ip). */
typedef void (*worker_refuse_fn)(int fd, int status);

typedef struct worker_listener {
    int fd;                  /* owns until worker_new takes it */
    worker_accept_fn accept; /* the protocol */
    worker_refuse_fn refuse; /* its over-capacity answer; NULL: just close */
    void *ctx;               /* borrows: passed to accept (e.g. the TLS context) */
} worker_listener_t;

/* Counters for /metrics. Each is written by its worker only (relaxed
 * atomics, so another thread may read them without a data race).
 *
 * The two latency histograms (histo.h), per worker, one writer each:
 *   publish_enqueue  a publish's head (the turn that completed it) to its
 *                    event being in the hub (memory journal) or accepted by
 *                    the journal (its ack): req_note_enqueued
 *   enqueue_written  an event's hub post (evbuf.hub_ns) to the writev that
 *                    took its last byte, for each live delivery (replays are
 *                    not timed); "now" is the worker's clock read once per
 *                    turn before it writes: no clock read per delivery */
typedef struct worker_stats {
    atomic_ulong accepted, deliveries, bytes_written, replayed, slow_disconnects, streams_open, requests,
        refused[REFUSE__COUNT];
    atomic_ulong h2_connections; /* connections that became HTTP/2 (h2c or ALPN) */
    atomic_ulong h2_streams;     /* HTTP/2 streams opened by clients */
    atomic_ulong h2_calm;        /* HTTP/2 sessions ended for abuse (GOAWAY ENHANCE_YOUR_CALM) */
    atomic_ulong conns_open;     /* connections this worker holds now (gauge) */
    atomic_ulong busy_us;        /* microseconds spent in turns, outside epoll_wait */
    histo_t publish_enqueue;     /* see above */
    histo_t enqueue_written;     /* see above */
    atomic_ulong writes;         /* writev calls that wrote bytes (deliveries / writes: events per write) */
    atomic_ulong answers_held;   /* publish answers held by pacing (--publish-wait-lag) */
    atomic_ulong lag_refusals;   /* publishes refused past --publish-refuse-lag */
} worker_stats_t;

/* Creates worker `index` with its listening sockets (taken over: closed by
 * worker_free). Returns NULL on failure. */
worker_t *worker_new(int index, struct server *srv, const worker_listener_t *listeners, int num_listeners);
int worker_start(worker_t *w); /* starts the thread; 0 or -1 */
void worker_wake(worker_t *w); /* any thread: rings the doorbell */
void worker_join(worker_t *w);
void worker_free(worker_t *w);

/* Any thread (the hub, under its lock): queues `ev` for fan-out on this
 * worker, taking a new reference. Returns 1 when the inbox was empty, so
 * the caller must call worker_wake once it holds no lock. */
int worker_post(worker_t *w, evbuf_t *ev) __attribute__((warn_unused_result));

/* Any thread (a journal thread; the signature is journal_done_cb): queues
 * the outcome of a publish waiting on worker `worker` (a worker_t *),
 * taking a new reference on `ev`, and wakes the worker if needed. */
void worker_post_ack(void *worker, uint64_t token, evbuf_t *ev, int ok);

/* Any thread: turns begun so far. A reload waits for it to move on every
 * worker before freeing what it replaced (reload.h). */
uint32_t worker_turns(worker_t *w);
/* Publish pacing. The fan-out lag: how long ago the hub ordered the oldest
 * event that some worker has not written yet (taken from its inbox, fanned
 * out and flushed); 0 when every worker is idle. Any thread. */
int64_t worker_fanout_lag_ns(struct server *srv);
/* What pacing compares with --publish-wait-lag and --publish-refuse-lag:
 * the lag beyond the one a worker that keeps up still shows, its last
 * pass (taking its inbox, fanning it out, writing it): at N=10,000 one pass
 * writes 5,000 streams per worker and takes 50-85 ms, at N=1,000 about 3 ms
 * (median and 90th percentile of the passes of one burst).
 * Counting the pass would hold answers at every pass where subscribers are
 * many, for no latency gained. Any thread. */
int64_t worker_pacing_lag_ns(struct server *srv);

worker_stats_t *worker_stats(worker_t *w);
int worker_index(const worker_t *w);
struct server *worker_server(worker_t *w);

/* ---- for the loop's core: conn.c, stream.c, req.c (worker thread) ---- */
struct stream_index *worker__streams(worker_t *w);
struct acks *worker__acks(worker_t *w);
wref_pool_t *worker__wrefs(worker_t *w);
void worker__schedule_flush(worker_t *w, struct conn *c);
void worker__schedule_read(worker_t *w, struct conn *c); /* read again next turn */
void worker__schedule_free(worker_t *w, struct conn *c);
void worker__link_conn(worker_t *w, struct conn *c); /* a new conn joins the list */
int64_t worker__now_ms(const worker_t *w);           /* CLOCK_MONOTONIC at turn start */
int64_t worker__now_us(const worker_t *w);           /* the same, in microseconds */
/* outq_written_cb for a conn's queue (conn.c): times the write of a live
 * event item, or of each event a block slice holds (wref.h), into
 * enqueue_written. `w` is the worker_t. */
void worker__event_written(void *w, const outq_item_t *it);
/* Holds a publish answer (an ack slot, acks.h; a reference on ev is taken)
 * until the fan-out lag is back under --publish-wait-lag: then the slot is
 * completed with ok = 1. 0, or -1 when memory runs out (answer at once). */
int worker__hold_answer(worker_t *w, uint64_t token, evbuf_t *ev);
uint32_t worker__turn(const worker_t *w); /* counts turns (per-turn budgets) */

#endif
