/*
 * stats.h - one reading of the server's counters, summed over the workers:
 * what GET /metrics renders and what the admin dashboard sends, so that the
 * two can never disagree about what a number means.
 *
 *   worker_stats_t x N (relaxed atomics, one writer each) --+
 *   hub_get_stats   (hub lock: two numbers)                  +--> stats_t (plain numbers)
 *   journal_stats   (atomics; queue lock: one number)        |
 *   server_t atomics (open connections, body bytes)  --------+
 *
 * Collecting takes no lock for longer than a copy and renders nothing; the
 * callers format afterwards, holding nothing. Counters are cumulative since
 * start (rates are the reader's business); the numbers of different workers
 * are read a few nanoseconds apart, so a sum may mix two instants.
 *
 * Threads: any worker thread (the handlers); reads other threads' atomics.
 */
#ifndef COURANT_STATS_H
#define COURANT_STATS_H

#include "histo.h"
#include "journal.h"
#include "req.h"

#include <stdint.h>

struct server;

/* One worker's share (the dashboard's per-worker view). */
typedef struct stats_worker {
    uint64_t turns;         /* loop turns since start */
    uint64_t busy_us;       /* microseconds spent in turns (outside epoll_wait) */
    uint64_t conns;         /* connections it holds now */
    uint64_t subscribers;   /* its open streams */
    uint64_t deliveries;    /* events queued to its subscribers */
    uint64_t bytes_written; /* bytes its sockets took */
} stats_worker_t;

typedef struct stats {
    int64_t open_conns;              /* connections open now, all workers */
    int64_t body_bytes;              /* request body bytes buffered now */
    int64_t head_bytes;              /* read buffers of unfinished request heads now */
    uint64_t accepted;               /* connections accepted since start */
    uint64_t subscribers;            /* streams open now */
    uint64_t requests;               /* requests read */
    uint64_t published;              /* events the hub accepted (this node's hub: with --redis, all nodes') */
    uint64_t history_len;            /* events in the history ring */
    uint64_t deliveries;             /* events queued to subscribers (live) */
    uint64_t bytes_written;          /* bytes the sockets took */
    uint64_t replayed;               /* events replayed from history */
    uint64_t slow_disconnects;       /* subscribers dropped past --max-pending-bytes */
    uint64_t writes;                 /* writev calls that wrote bytes */
    uint64_t answers_held;           /* publish answers held by pacing (--publish-wait-lag) */
    uint64_t lag_refusals;           /* publishes refused past --publish-refuse-lag */
    int64_t fanout_lag_ns;           /* worker_fanout_lag_ns now */
    uint64_t h2_connections;         /* connections that became HTTP/2 (h2c or ALPN) */
    uint64_t h2_streams;             /* HTTP/2 streams opened by clients */
    uint64_t h2_calm;                /* HTTP/2 sessions ended for abuse (ENHANCE_YOUR_CALM) */
    uint64_t refused[REFUSE__COUNT]; /* refusals by reason (req.h) */
    histo_snapshot_t publish_enqueue; /* worker.h: head to hub or journal */
    histo_snapshot_t enqueue_written; /* worker.h: hub post to last byte written */
    journal_stats_t journal;          /* the journal's health and counters */
    int num_workers;                  /* workers summed */
} stats_t;

/* Reads everything into *out. `per_worker`, if not NULL, has room for
 * srv->num_workers entries and receives each worker's share. */
void stats_collect(struct server *srv, stats_t *out, stats_worker_t *per_worker);

#endif
