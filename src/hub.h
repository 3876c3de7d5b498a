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
 * Resume seam, without matching under the lock: hub_try_resume finds where
 * a new subscriber resumes (O(1) through the id index) and copies the first
 * batch of history after it (pointers plus references, at most `max`), in
 * the same critical section; the worker filters that batch by the
 * subscriber's selectors after the lock is released, and reads on with
 * hub_read in later turns until a batch comes back short (caught up).
 * Meanwhile the subscriber ignores live events; once caught up it takes
 * live events with seq > the last one read. So the lock is held only to
 * copy a bounded number of pointers, and what a subscriber's selectors
 * cost is paid on its own worker, within that worker's per-turn budget.
 *
 * Sinks: the hub posts each event to every worker through a sink (a post
 * function called under the lock, and a wake function called after it is
 * released), so it knows nothing of workers and no eventfd is written
 * while the lock is held.
 *
 * Threads: every function is thread-safe unless it says otherwise.
 */
#ifndef COURANT_HUB_H
#define COURANT_HUB_H

#include "evbuf.h"

#include <stddef.h>
#include <stdint.h>

typedef struct hub hub_t;

/* history: events kept (0 = none); history_age_s: 0 = no age limit. */
hub_t *hub_new(long history, int history_age_s);

/* Frees the hub and drops its history. Workers must be stopped. */
void hub_free(hub_t *h);

/* Where events go: each sink's post is called under the hub lock (it takes
 * its own reference if it keeps the event, and returns 1 when its consumer
 * needs waking), and its wake after the lock is released. */
typedef struct hub_sink {
    int (*post)(void *ctx, evbuf_t *ev);
    void (*wake)(void *ctx);
    void *ctx;
} hub_sink_t;

/* Sets the sinks (copied). Main thread, before any publish. */
int hub_try_set_sinks(hub_t *h, const hub_sink_t *sinks, int n) __attribute__((warn_unused_result));

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

/* A batch of history read by a subscriber. The caller provides `events`
 * (max slots); the hub fills `count` of them, each with a reference the
 * caller drops (hub_batch_release). */
typedef struct hub_batch {
    evbuf_t **events; /* caller's array */
    size_t max;       /* its slots */
    size_t count;     /* filled, in seq order */
    uint64_t newest;  /* the newest seq published when the batch was read */
    int gap;          /* events between `from` and the batch were evicted unread */
} hub_batch_t;

/* Where a new subscriber resumes, and the first batch after it. last_id:
 * the client's Last-Event-ID (NULL if none: nothing to replay); "earliest"
 * replays all of history; an unknown id replays nothing. *from is the seq
 * of the first event to read next (after this batch: batch->events' last
 * seq + 1, else *from as given to hub_read). *last_event_id (owned, NULL
 * when the client sent no id) is the response's Last-Event-ID header: the
 * id itself when known, "earliest" otherwise, which tells the client it
 * missed events. Returns 0, or -1 when memory runs out. */
int hub_try_resume(hub_t *h, const char *last_id, size_t last_id_len, uint64_t *from, char **last_event_id,
                   hub_batch_t *batch) __attribute__((warn_unused_result));

/* The next batch: events with seq >= from (at most batch->max). */
void hub_read(hub_t *h, uint64_t from, hub_batch_t *batch);

/* Drops the batch's references (count becomes 0). */
void hub_batch_release(hub_batch_t *batch);

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
