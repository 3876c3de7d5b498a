/*
 * store.h - durable history: every published event is committed to an
 * SQLite file (WAL mode) before it is acknowledged or delivered.
 *
 *   worker wK (publish)         store thread                      hub / workers
 *   -------------------         ------------                      -------------
 *   store_try_submit(ev) --+    wait for work (or 1 s: retention)
 *   (queue + cond signal)  |    take the WHOLE queue: one group
 *   the conn waits, reads  +--> BEGIN; INSERT each; trim a bounded
 *   nothing more                 step (count, age); COMMIT (fsync)
 *                               ok:   hub_publish each, in commit order --> fan-out
 *                                     then done(ok) each ---------------> worker inbox:
 *                               fail: ROLLBACK; done(failed) each          200 / 503
 *
 * Group commit: while one group is being fsynced, new publishes pile up in
 * the queue, and the next group takes them all, so the number of fsyncs
 * follows the disk, not the publish rate, and nobody waits on a timer.
 * Nothing is delivered before it is committed (hub_publish runs after
 * COMMIT), and nothing is acknowledged before it is delivered to the hub,
 * so a subscriber never sees an event that a crash could take back.
 *
 * The file: one table, `events(seq INTEGER PRIMARY KEY, published_ms, id,
 * topics, private, wire)`, where `wire` is the event's encoded SSE bytes
 * (so loading rebuilds the very same bytes) and `topics` the topics joined
 * by '\n' (topics cannot contain control characters). seq is SQLite's
 * rowid: max + 1 per insert, so rows stay contiguous; retention deletes
 * from the oldest end, at most a bounded number of rows per group, and
 * SQLite reuses the freed pages, so the file stops growing at about the
 * size of --history events (plus a WAL capped by journal_size_limit).
 *
 * The store's seq is not the hub's seq: the hub numbers events in memory
 * (loaded history first, then new publishes), the store orders its rows.
 * Both orders are the commit order.
 *
 * Exclusivity: the connection uses locking_mode=EXCLUSIVE, so the first
 * write at open keeps the file locked until exit: a second courant on the
 * same file is refused at start-up ("database is locked").
 *
 * Threads: store_open, store_load, store_start, store_stop and store_free
 * run on the main thread; store_try_submit on any thread; the done callback
 * and hub_publish run on the store thread. The sqlite3 handle is used by
 * one thread at a time (main until store_start, then the store thread).
 */
#ifndef COURANT_STORE_H
#define COURANT_STORE_H

#include "evbuf.h"
#include "hub.h"

#include <stdint.h>

typedef struct store store_t;

/* How hard a commit tries to reach the disk (--sync). */
typedef enum store_sync {
    STORE_SYNC_FULL,   /* fsync the WAL at every group commit: survives power loss */
    STORE_SYNC_NORMAL, /* fsync only at checkpoints: survives a crash of courant,
                          a power loss may take back the last commits */
    STORE_SYNC_OFF,    /* never fsync: the OS decides; a power loss may corrupt
                          or lose recent history */
} store_sync_t;

/* Parses "full", "normal" or "off". Returns 0 or -1. */
int store_parse_sync(const char *s, store_sync_t *out);

/* Completion of one submitted event, on the store thread. `ev` is borrowed
 * for the call (take a reference to keep it). ok: 1 when the event is
 * committed (and already handed to the hub), 0 when it is not stored and
 * was not published. */
typedef void (*store_done_cb)(void *ctx, uint64_t token, evbuf_t *ev, int ok);

/* Opens (or creates) the store at `path`, takes its lock, checks it
 * (quick_check) and proves it is writable. history / history_age_s: the
 * retention (as --history, --history-age; 0 age = none). On failure returns
 * NULL and sets *reason to a one-line explanation in `reason_buf`. */
store_t *store_open(const char *path, store_sync_t sync, long history, int history_age_s, char *reason_buf,
                    size_t reason_cap) __attribute__((warn_unused_result));

/* Calls `cb` with each retained event (the last `history`, none older than
 * the age limit), oldest first; each event is new (refs = 1) and owned by
 * the callee. Main thread, before store_start. Returns the number loaded,
 * or -1 with a reason (a read error: the file is damaged). */
typedef void (*store_load_cb)(void *ctx, evbuf_t *ev);
long store_load(store_t *s, store_load_cb cb, void *ctx, char *reason_buf, size_t reason_cap);

/* Starts the store thread, which publishes committed events to `hub`.
 * Returns 0 or -1. */
int store_start(store_t *s, hub_t *hub);

/* Any thread: queues `ev` (taking over the caller's reference) to be
 * committed, published and then completed through `done` (may be NULL: no
 * completion). Never blocks on I/O. Returns -1 without taking the reference
 * when the queue is full (STORE_MAX_QUEUE) or the store is stopping: the
 * caller answers 503. */
int store_try_submit(store_t *s, evbuf_t *ev, store_done_cb done, void *ctx, uint64_t token)
    __attribute__((warn_unused_result));

#define STORE_MAX_QUEUE 65536

/* Any thread (main, on SIGUSR1): asks the store thread for an online
 * backup. Between two groups it copies a consistent snapshot of the file
 * with SQLite's backup API into PATH.backup.tmp, then renames it to
 * PATH.backup, and logs the outcome. Publishes wait in the queue meanwhile
 * (milliseconds for a --history-sized file). A backup is needed because
 * courant holds the file's exclusive lock, so no other process can read it
 * while courant runs. */
void store_request_backup(store_t *s);

/* Commits what is queued, then stops and joins the store thread. */
void store_stop(store_t *s);

/* Closes the file. The thread must be stopped (or never started). */
void store_free(store_t *s);

typedef struct store_stats {
    uint64_t commits; /* groups committed */
    uint64_t events;  /* events committed */
    uint64_t failed;  /* events refused because a commit failed */
    uint64_t rows;    /* rows in the file after the last trim (approximate) */
    int healthy;      /* the last commit succeeded */
} store_stats_t;

/* Any thread. */
void store_get_stats(store_t *s, store_stats_t *out);

#endif
