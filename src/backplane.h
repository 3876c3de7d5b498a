/*
 * backplane.h - --redis: the Redis journal (journal.h). Many courant nodes
 * share one ordered history in a Redis Stream. Publish on any node, receive
 * on every node, resume anywhere.
 *
 *   any thread                journal thread "bp-pub" (conn 1)  Redis stream KEY
 *   ----------                --------------------------------  ----------------
 *   journal_try_submit ----+  take the WHOLE queue: one group
 *   (503 at once if down)  +-> commit_group: pipeline XADD    --> entry appended
 *   the conn waits            KEY MAXLEN ~ N * .., read the
 *                             replies in order
 *                             done(ok) each -> wK inbox: 200 / 503
 *
 *   every node:               "bp-read" thread (conn 2)
 *                             XREAD BLOCK 500 STREAMS KEY <last id> <----- entries
 *                             parse each entry back into an evbuf
 *                             hub_publish it (fan-out, history)  ---> workers
 *
 * The queue, the publish thread, the grouping and the completions are the
 * journal's (journal.c); this file is the Redis part: the two connections,
 * the pipelined XADDs, the reader thread, history loading and reconnects.
 *
 * One order everywhere: a node never hands its own publishes to the hub
 * (journal_backend_t.publishes = 0); it
 * fans out only what it reads back from the stream, in stream order, like
 * every other node. So all nodes' histories hold the same events in the same
 * order, and a Last-Event-ID from one node resumes exactly on another.
 *
 * Acknowledged means in Redis: the publisher gets 200 only once XADD
 * answered with a stream id. A publish whose XADD fails, or whose answer is
 * unknown because the connection broke, gets 503 (it may still have been
 * appended: the publisher retries, with its own id if it wants to avoid a
 * duplicate). While the publish connection is down every publish gets 503
 * at once; nothing is queued for later.
 *
 * Faults: each thread reconnects on its own with backoff (100 ms doubling
 * to 2 s); the reader resumes XREAD after the last stream id it saw, so
 * nothing appended meanwhile is missed (as long as the stream still holds
 * it: MAXLEN keeps at least --history entries, BACKPLANE_MIN_MAXLEN at
 * least). State changes (connected, lost, reconnected) are logged once each.
 *
 * Start-up: journal_load tries Redis once (1 s): if it answers, the last
 * --history entries (XREVRANGE) are loaded into the hub (hub_load) before
 * the workers start, and XREAD continues after the newest. If it does not,
 * courant starts anyway (subscribers are served, publishes get 503) and the
 * reader thread loads history when Redis first answers; nothing can have
 * been published on this node before that (everything goes through Redis).
 *
 * An entry's fields: id (the event id), topics (joined by '\n'; topics hold
 * no control characters), private ("0"/"1"), ms (published, CLOCK_REALTIME
 * ms) and wire (the encoded SSE bytes, delivered as they are): wire.h's
 * record, the store's row. Entries are hostile input like any other:
 * backplane__parse_entry checks each one with wire_try_decode, as the
 * store's loader checks its rows (fuzz/backplane_fuzz.c), and a bad one is
 * skipped, counted and logged.
 *
 * Threads: open, load and free on the main thread (journal.h's calls);
 * commits, PINGs and publish-side reconnects on the journal thread; the
 * reader thread hub_publishes. Each hiredis context is used by one thread
 * at a time (both by main until journal_start).
 */
#ifndef COURANT_BACKPLANE_H
#define COURANT_BACKPLANE_H

#include "evbuf.h"
#include "hub.h"
#include "journal.h"

#include <stddef.h>
#include <stdint.h>

struct redisReply;

#define BACKPLANE_MIN_MAXLEN 1000 /* the stream keeps at least this many entries */

/* Parses `url` (redis://[[USER]:PASS@]HOST[:PORT][/DB]) and returns the
 * Redis journal for stream `key`, publishing to `hub`; nothing is
 * connected yet. journal_load then tries Redis once and, if it answers,
 * loads the last `history` entries into the hub; an unreachable Redis is
 * not an error (logged; the threads keep trying). Returns NULL with a
 * one-line reason only for a bad URL or out of memory. Main thread. */
journal_t *backplane_open(const char *url, const char *key, long history, hub_t *hub, char *reason_buf,
                          size_t reason_cap) __attribute__((warn_unused_result));

/* ---- for tests and the fuzz target ------------------------------------------------- */

typedef struct backplane_url {
    char host[256];
    int port;
    int db;
    char user[128];
    char pass[256];
} backplane_url_t;

/* Parses a redis:// URL. Returns 0, or -1 with *why set. */
int backplane__parse_url(const char *url, backplane_url_t *out, const char **why);

/* One stream entry, [id, [field, value, ...]], from XREAD or XREVRANGE.
 * On success returns 0 and a new event (refs = 1) in *out. Returns -1 with
 * *why when the entry is not a valid courant event. In both cases the
 * entry's stream id (if it has one that fits) is copied to `sid`, so the
 * reader can move past a bad entry. */
int backplane__parse_entry(const struct redisReply *entry, evbuf_t **out, char *sid, size_t sid_cap,
                           const char **why);

#endif
