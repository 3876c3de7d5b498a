/*
 * worker.h - one event loop on one thread: its listening sockets, its
 * connections, its share of the subscribers, and its inbox of events.
 *
 * A turn of the loop:
 *   1. epoll_wait (timeout: the next 250 ms tick)
 *   2. for each ready handle: accept, drain the inbox (fan-out), or read
 *   3. flush every connection that has queued output (writev, capped per turn)
 *   4. on a tick: timeouts, heartbeats, lifetimes, shutdown drain
 *   5. free the connections closed during this turn
 * Connections are never freed inside their own callbacks (step 5), so an
 * epoll event later in the same batch never touches freed memory.
 *
 * The inbox is the only shared structure: a vector of messages under a
 * mutex, plus an eventfd that is written only when the inbox goes from empty
 * to non-empty, so a burst of publishes costs the worker one wake-up. A
 * message is either an event to fan out (from the hub) or, with --store, the
 * store's answer to a publish that waits for its commit (an "ack").
 *
 * Acks and closed connections: a publishing conn may close (peer gone,
 * shutdown) before its ack arrives, and its memory is then freed. So the
 * store never holds a conn pointer: it holds a token, the index of a slot in
 * this worker's ack table plus the slot's generation. conn_close releases
 * the slot (generation + 1); an ack whose generation no longer matches is
 * dropped on the worker thread, so a late ack never touches freed memory or
 * answers a different request.
 *
 *   acks[i] = { conn (borrows), headers (owns), gen }     token = gen << 32 | i + 1
 *
 * Per-worker event reference (wref): subscriber queues on this worker point
 * at a wref, whose plain `refs` counts them; the wref holds the worker's one
 * atomic reference on the evbuf (see evbuf.h).
 */
#ifndef COURANT_WORKER_H
#define COURANT_WORKER_H

#include "evbuf.h"
#include "server.h"

#include <stdint.h>

typedef struct worker worker_t;
struct conn;

typedef struct wref {
    evbuf_t *ev;   /* owns one atomic reference */
    uint32_t refs; /* subscriber queues holding this wref (this worker only) */
} wref_t;

/* Counters for /metrics. Each is written by its worker only (relaxed
 * atomics, so another thread may read them without a data race). */
typedef struct worker_stats {
    atomic_ulong accepted, deliveries, bytes_written, replayed, slow_disconnects, streams_open, requests,
        refused[REFUSE__COUNT];
} worker_stats_t;

/* Creates worker `index` with its listening sockets `listen_fds` (borrowed
 * until worker_free, which closes them). Returns NULL on failure. */
worker_t *worker_new(int index, server_t *srv, const int *listen_fds, int num_listen);
int worker_start(worker_t *w); /* starts the thread; 0 or -1 */
void worker_wake(worker_t *w); /* any thread: re-check the stop flag now */
void worker_join(worker_t *w);
void worker_free(worker_t *w);

/* Any thread (the hub calls it under its lock): queues `ev` for fan-out on
 * this worker, taking a new reference. */
void worker_post(worker_t *w, evbuf_t *ev);

/* Any thread (the journal thread; the signature is journal_done_cb): queues the
 * outcome of a stored publish for the worker `worker` (a worker_t *), taking
 * a new reference on `ev`. On the worker thread the waiting connection is
 * answered (200 with the id, or 503), unless it closed meanwhile. */
void worker_post_ack(void *worker, uint64_t token, evbuf_t *ev, int ok);

worker_stats_t *worker_stats(worker_t *w);
int worker_index(const worker_t *w);
server_t *worker_server(worker_t *w);

/* ---- for conn.c and stream.c (same thread as the worker) ---- */
struct stream_index *worker__streams(worker_t *w);
void worker__schedule_flush(worker_t *w, struct conn *c);
void worker__schedule_free(worker_t *w, struct conn *c);
wref_t *worker__wref_new(worker_t *w, evbuf_t *ev);    /* refs 0; takes a new atomic ref */
void worker__wref_unref(worker_t *w, wref_t *r);       /* drops one count; frees at 0 */
void worker__wref_unref_empty(worker_t *w, wref_t *r); /* frees a wref nobody queued */
int64_t worker__now_ms(const worker_t *w);             /* CLOCK_MONOTONIC at turn start */
/* publish.c: `c` waits for a store ack; `headers` ("" or CRLF lines) is
 * copied for the answer. Returns the token, 0 if memory runs out. */
uint64_t worker__ack_wait(worker_t *w, struct conn *c, const char *headers);
/* conn.c (closing) or publish.c (submit refused): the ack will be ignored. */
void worker__ack_cancel(worker_t *w, uint64_t token);

#endif
