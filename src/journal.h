/*
 * journal.h - where every event goes before anyone sees it: made durable
 * (or not), then fanned out, then answered. One journal, chosen once at
 * start by main, serves every source of events: publish (publish.c), the
 * demo clock (demo.c) and subscription events (subs.c).
 *
 *   journal   chosen by   durable when                 who hands it to the hub
 *   -------   ---------   ------------                 -----------------------
 *   memory    (default)   never: history is the hub's  submit itself, at once
 *   store     --store     COMMIT in SQLite (store.c)   the journal thread, after COMMIT
 *   redis     --redis     XADD answered (backplane.c)  backplane.c's reader, for what
 *                                                      it reads back from the stream
 *
 * The durable journals share everything but the backend's few calls (a
 * journal_backend_t): the queue, the thread, grouping, ordering and the
 * completions live here, once.
 *
 *   any thread                              journal thread ("store", "bp-pub")
 *   ----------                              ----------------------------------
 *   journal_try_submit(ev, done, ctx, tok)  wait: work, stop, backup, or the
 *     backend refuses (down) ---> -1, why     backend's idle deadline
 *     queue full (65,536) ------> -1, why   take the WHOLE queue: one group
 *     push, signal if it was empty          ops->commit_group(evs, n, ok[])
 *     ------------------------> PENDING     ops->publishes: hub_publish each
 *                                             ok event, in queue order
 *                                           done(ctx, tok, ev, ok) each, in
 *                                             queue order; unref each
 *                                           queue empty until the deadline:
 *                                             ops->idle (retention, PING,
 *                                             reconnect), returns the next
 *                                           SIGUSR1: ops->backup between groups
 *
 * Group commit: while one group is being committed, new events pile up in
 * the queue, and the next group takes them all, so the number of commits
 * (fsyncs, round trips) follows the backend, not the publish rate, and
 * nobody waits on a timer.
 *
 * Order: events are committed, published and completed in the order their
 * submits took the queue lock. A done callback runs after hub_publish of
 * its event (when the journal publishes), so an answer never overtakes its
 * event, and never runs inside journal_try_submit (h2o's rule: completions
 * are queued, never called re-entrantly).
 *
 * Threads: journal_new / journal_new_memory, load, start, stop and free on
 * the main thread; journal_try_submit, request_backup and stats on any
 * thread. done callbacks, hub_publish (store) and every backend call but
 * load, start, stop and free run on the journal thread. The queue lock is
 * held only to push or swap the queue: never during I/O, never while
 * calling out (done, hub_publish, the backend), so a thread holding any
 * other lock may submit.
 */
#ifndef COURANT_JOURNAL_H
#define COURANT_JOURNAL_H

#include "evbuf.h"
#include "hub.h"

#include <stddef.h>
#include <stdint.h>

typedef struct journal journal_t;

#define JOURNAL_MAX_QUEUE 65536 /* events waiting for the journal thread; refused past it */

/* journal_try_submit's outcomes (a refusal is -1). */
#define JOURNAL_PENDING 0   /* taken: done will be called, later, on the journal thread */
#define JOURNAL_PUBLISHED 1 /* memory journal: already in the hub; done is NOT called */

/* Completion of one submitted event, on the journal thread. `ev` is
 * borrowed for the call (take a reference to keep it). ok: 1 when the
 * event is durable (and, when the journal publishes, already handed to the
 * hub); 0 when it is not (it was not published by this node; with redis it
 * may still have been appended: the answer was lost). worker_post_ack fits. */
typedef void (*journal_done_cb)(void *ctx, uint64_t token, evbuf_t *ev, int ok);

/* What /metrics shows about the journal. */
typedef struct journal_stats {
    const char *name;     /* "memory", "store", "redis": which journal (static) */
    int up;               /* it works now: store, the last commit succeeded; redis, both connections */
    uint64_t groups;      /* groups in which at least one event was made durable (store: commits) */
    uint64_t events;      /* events made durable, done(ok = 1) (store: committed; redis: XADD answered) */
    uint64_t failed;      /* events taken then done(ok = 0) (commit failed; XADD refused or unanswered) */
    uint64_t refused;     /* submits refused at once (backend down, queue full, stopping) */
    uint64_t rows;        /* store: rows in the file after the last trim (approximate); else 0 */
    uint64_t read_back;   /* redis: entries read back and handed to the hub; else 0 */
    uint64_t bad_records; /* records skipped on reading back (wire.h's check): store rows at load,
                             redis stream entries */
    uint64_t queued;      /* events waiting for the journal thread now (its lag); 0 for memory */
} journal_stats_t;

/* ---- a backend: what a durable journal implements ------------------------------------ */

/* One durable journal is one file implementing these calls (store.c,
 * backplane.c); its open function builds its state and hands it to
 * journal_new. `self` is that state. A Postgres or NATS journal would be a
 * third such file and one more choice in main. */
typedef struct journal_backend {
    const char *name;          /* "store", "redis": journal_stats.name, log lines */
    const char *thread_name;   /* the journal thread's name in log lines */
    int publishes;             /* 1: the journal hands each event made durable to the hub, in
                                  order, before its done (store); 0: the backend fans out by
                                  itself (redis: its reader, what it reads back) */
    const char *busy_reason;   /* the 503's reason when JOURNAL_MAX_QUEUE events wait */
    const char *failed_reason; /* the 503's reason for an event completed with ok = 0 */

    /* Main thread, before start: puts the retained history into `hub`
     * (hub_load, oldest first). Returns the number loaded, or -1 with a
     * one-line reason in `why` (courant then refuses to start). */
    long (*load)(void *self, hub_t *hub, char *why, size_t cap);
    /* Main thread, after the journal thread started: starts threads of the
     * backend's own (redis: the reader). NULL: none. Returns 0 or -1. */
    int (*start)(void *self, hub_t *hub);
    /* Any thread, no lock held: NULL when an event can be taken now, else
     * the static reason it cannot (redis: not connected). NULL: always. */
    const char *(*refuses)(void *self);
    /* Journal thread: makes evs[0..n-1] durable, in order, and sets ok[i]
     * to 1 or 0 for each. The events are borrowed (the journal holds their
     * references). Returns how many ms the journal may wait, idle, before
     * calling idle (0: as soon as the queue is empty). */
    int (*commit_group)(void *self, evbuf_t *const *evs, size_t n, int *ok);
    /* Journal thread, queue empty since the deadline the last call gave:
     * retention, PING, reconnect. Returns the next deadline in ms. */
    int (*idle)(void *self);
    /* Journal thread, between groups, on journal_request_backup. NULL:
     * nothing to back up. */
    void (*backup)(void *self);
    /* Any thread: fills up, rows, read_back, bad_records. */
    void (*stats)(void *self, journal_stats_t *out);
    /* Main thread, after the journal thread drained and stopped: stops the
     * backend's own threads (must cope with start never having run). NULL:
     * none. */
    void (*stop)(void *self);
    /* Main thread: frees the state; every thread is stopped. */
    void (*free)(void *self);
} journal_backend_t;

/* Wraps a backend's state into a journal that publishes to `hub`
 * (borrowed: it must outlive the journal). Takes ownership of `self` even
 * when it fails (ops->free). Returns NULL if memory runs out. */
journal_t *journal_new(const journal_backend_t *ops, void *self, hub_t *hub)
    __attribute__((warn_unused_result));

/* The memory journal: submit hands the event to `hub` at once, in the
 * caller's thread; no thread, nothing durable, never refuses. */
journal_t *journal_new_memory(hub_t *hub) __attribute__((warn_unused_result));

/* ---- what main and the event sources use ---------------------------------------------- */

/* Main thread, before start: loads the backend's history into the hub.
 * Returns the number of events loaded (0 for memory), or -1 with a
 * one-line reason. */
long journal_load(journal_t *j, char *why, size_t cap);

/* Main thread: starts the journal thread, then the backend's own threads;
 * submits are refused until then. Returns 0 or -1 (logged). */
int journal_start(journal_t *j);

/* The event_submit: the one way an event enters courant. Any
 * thread, never blocks on I/O. Takes over the caller's reference to `ev`
 * unless it refuses. `done` (NULL: nobody waits, as for the demo clock and
 * subscription events) gets `ctx` and `token` back.
 *
 *   JOURNAL_PENDING    queued: done(ok) will be called on the journal thread
 *   JOURNAL_PUBLISHED  memory journal: hub_publish already ran, in this
 *                      thread; done is not called; answer at once
 *   -1                 refused (backend down, queue full, not started or
 *                      stopping, out of memory): the reference is still the
 *                      caller's, *why a static one-line reason; answer 503.
 *                      The journal logs an outage once; callers need not
 *                      log each refusal. */
int journal_try_submit(journal_t *j, evbuf_t *ev, journal_done_cb done, void *ctx, uint64_t token,
                       const char **why) __attribute__((warn_unused_result));

/* 1 for the memory journal, whose submit never returns JOURNAL_PENDING: a
 * caller may skip preparing for a later answer. Any thread. */
int journal_is_memory(const journal_t *j);

/* The 503's reason for an event completed with ok = 0 (static). Any thread. */
const char *journal_failure_reason(const journal_t *j);

/* Any thread (main, on SIGUSR1): asks for a backup between two groups
 * (store: PATH.backup, see store.h). A journal without one logs that
 * there is nothing to back up. */
void journal_request_backup(journal_t *j);

/* Main thread: refuses new submits, lets the journal thread commit and
 * complete everything queued, joins it, then stops the backend's own
 * threads. Call after the workers are joined (their publishes are then in
 * the queue) and before worker_free (the completions post into inboxes). */
void journal_stop(journal_t *j);

/* Main thread: frees the journal and the backend. It must be stopped (or
 * never started). NULL is ignored. */
void journal_free(journal_t *j);

/* Any thread. */
void journal_stats(journal_t *j, journal_stats_t *out);

#endif
