/*
 * hub.h - the one place where events are ordered, remembered and handed out.
 *
 *   publisher (any thread)          hub (one mutex)              workers
 *   ---------------------           ---------------              -------
 *   evbuf_try_new()  ---------->    seq = ++last_seq
 *                                   history ring append  --+
 *                                   id index put           |
 *                                   for each worker:       +--> inbox (ref)
 *                                     worker_post(ev)           eventfd wake
 *
 * The hub's mutex is held only to assign the order, touch the history and
 * push one pointer into each worker's inbox: never while writing to a
 * socket, never while waiting for anyone. Because the pushes happen under
 * the same lock that assigns `seq`, every worker's inbox is in seq order,
 * which is what makes "events of one topic arrive in publish order" and the
 * resume seam (below) hold.
 *
 * History is a ring of the last `--history` events (and no older than
 * `--history-age`), with a hash index from event id to event so that a
 * Last-Event-ID is found in O(1). When the same id is published twice the
 * index points at the oldest one still in history: a resume may resend, but
 * never skips the events published between the two uses.
 *
 * Resume seam: hub_snapshot() collects, under the lock, the events a new
 * subscriber must replay and returns `start_seq`, the last seq that existed
 * at that moment. The worker registers the subscriber and delivers from its
 * inbox only events with seq > start_seq: those were all pushed after the
 * snapshot, so there is no gap and no duplicate between replay and live.
 *
 * Threads: every function is thread-safe unless it says otherwise.
 */
#ifndef COURANT_HUB_H
#define COURANT_HUB_H

#include "evbuf.h"

#include <stddef.h>
#include <stdint.h>

typedef struct hub hub_t;
struct worker;

/* history: events kept (0 = none); history_age_s: 0 = no age limit. */
hub_t *hub_new(long history, int history_age_s);

/* Frees the hub and drops its history. Workers must be stopped. */
void hub_free(hub_t *h);

/* Sets the workers events are fanned out to. Main thread, before any publish. */
void hub_set_workers(hub_t *h, struct worker **workers, int n);

/* Publishes `ev`, taking over the caller's reference: assigns its seq,
 * records it in history and posts it to every worker. Never blocks on I/O. */
void hub_publish(hub_t *h, evbuf_t *ev);

/* Start-up, before any publish and before the workers run: appends `ev`
 * (history loaded from the store, oldest first) to the history, taking
 * over the caller's reference. It gets the next seq like a publish, so the
 * seqs of later publishes continue after it; nothing is posted to workers
 * (nobody is subscribed yet). --redis may also call it later, from its
 * reader thread, when Redis was unreachable at start: workers then run,
 * but nothing has been published yet (every publish goes through Redis),
 * and loaded events are not delivered live, only replayed on resume. */
void hub_load(hub_t *h, evbuf_t *ev);

/* Drops history entries older than the age limit (called periodically). */
void hub_trim(hub_t *h);

/* Decides which history a new subscriber replays. */
typedef int (*hub_match_cb)(void *ctx, const evbuf_t *ev);

typedef struct hub_snapshot {
    evbuf_t **events; /* owns: one reference each, in seq order */
    size_t count;
    uint64_t start_seq;  /* deliver live events with seq > start_seq */
    char *last_event_id; /* owns: the response's Last-Event-ID header value,
                             NULL when the client sent no id (no header) */
} hub_snapshot_t;

/* last_id: the client's Last-Event-ID (NULL if it sent none). Events after
 * it that `match` accepts are collected; "earliest" means all of history.
 * An id the hub does not know replays nothing, and last_event_id is then
 * "earliest", which differs from what the client sent and so tells it that
 * it missed events. Returns 0, or -1 if memory runs out. */
int hub_try_snapshot(hub_t *h, const char *last_id, size_t last_id_len, hub_match_cb match, void *ctx,
                     hub_snapshot_t *out) __attribute__((warn_unused_result));

/* Releases what a snapshot still owns. */
void hub_snapshot_dispose(hub_snapshot_t *s);

/* The id of the newest event in history, or "earliest" when history is
 * empty (the subscriptions API's lastEventID). malloc'd; NULL if out of
 * memory. */
char *hub_try_last_event_id(hub_t *h) __attribute__((warn_unused_result));

typedef struct hub_stats {
    uint64_t published;   /* events accepted since start */
    uint64_t history_len; /* events in history now */
} hub_stats_t;

void hub_get_stats(hub_t *h, hub_stats_t *out);

#endif
