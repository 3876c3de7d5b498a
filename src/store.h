/*
 * store.h - --store: the SQLite journal (journal.h). Every event is
 * committed to an SQLite file (WAL mode) before it is delivered or
 * acknowledged; at start the file's history is loaded into the hub.
 *
 *   any thread                 journal thread ("store")              hub / workers
 *   ----------                 ------------------------              -------------
 *   journal_try_submit(ev) -+  wait for work (or 1 s: retention)
 *   (queue + cond signal)   |  take the WHOLE queue: one group
 *   the conn waits, reads   +-> commit_group: BEGIN; INSERT each;
 *   nothing more                trim a bounded step (count, age);
 *                               COMMIT (fsync)
 *                               ok:   hub_publish each, in commit order --> fan-out
 *                                     then done(ok) each ---------------> worker inbox:
 *                               fail: ROLLBACK; done(failed) each          200 / 503
 *
 * The queue, the thread, the grouping and the completions are the
 * journal's (journal.c); this file is the SQLite part: open and check the
 * file, load it, commit a group, trim, back up. The journal publishes
 * (journal_backend_t.publishes = 1): nothing is delivered before it is
 * committed (hub_publish runs after COMMIT), and nothing is acknowledged
 * before it is delivered to the hub, so a subscriber never sees an event
 * that a crash could take back.
 *
 * The file: one table, `events(seq INTEGER PRIMARY KEY, published_ms, id,
 * topics, private, wire)`, where `wire` is the event's encoded SSE bytes
 * (so loading rebuilds the very same bytes) and `topics` the topics joined
 * by '\n' (wire.h). seq is SQLite's rowid: max + 1 per insert, so rows stay
 * contiguous; retention deletes from the oldest end, at most a bounded
 * number of rows per group, and SQLite reuses the freed pages, so the file
 * stops growing at about the size of --history events (plus a WAL capped
 * by journal_size_limit).
 *
 * Loading checks every row as the Redis journal checks a stream entry
 * (wire_try_decode: the wire bytes are one SSE event with the row's id,
 * the topics and id are sane): a row that fails is skipped, counted
 * (journal_stats.bad_records, courant_store_bad_rows_total) and logged, and
 * the rest of the history loads. A file someone edited cannot make courant
 * deliver bytes that change a client's Last-Event-ID or split into two
 * events.
 *
 * The store's seq is not the hub's seq: the hub numbers events in memory
 * (loaded history first, then new publishes), the store orders its rows.
 * Both orders are the commit order.
 *
 * Exclusivity: the connection uses locking_mode=EXCLUSIVE, so the first
 * write at open keeps the file locked until exit: a second courant on the
 * same file is refused at start-up ("database is locked").
 *
 * Threads: store_open, loading and freeing run on the main thread; commits,
 * retention and backups on the journal thread. The sqlite3 handle is used
 * by one thread at a time (main until journal_start, then the journal
 * thread).
 */
#ifndef COURANT_STORE_H
#define COURANT_STORE_H

#include "hub.h"
#include "journal.h"

#include <stddef.h>

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

/* Opens (or creates) the store at `path`, takes its lock, checks it
 * (quick_check) and proves it is writable; returns it as a journal that
 * publishes to `hub` (journal_load, journal_start, ...). history /
 * history_age_s: the retention (as --history, --history-age; 0 age =
 * none). On failure returns NULL and sets *reason to a one-line
 * explanation in `reason_buf`. Main thread. */
journal_t *store_open(const char *path, store_sync_t sync, long history, int history_age_s, hub_t *hub,
                      char *reason_buf, size_t reason_cap) __attribute__((warn_unused_result));

/* On journal_request_backup (main, on SIGUSR1), between two groups, the
 * journal thread copies a consistent snapshot of the file with SQLite's
 * backup API into PATH.backup.tmp, then renames it to PATH.backup, and logs
 * the outcome. Publishes wait in the queue meanwhile (milliseconds for a
 * --history-sized file). A backup is needed because courant holds the
 * file's exclusive lock, so no other process can read it while courant
 * runs. */

#endif
