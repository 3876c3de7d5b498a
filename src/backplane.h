/*
 * backplane.h - --redis: many courant nodes share one ordered history in a
 * Redis Stream. Publish on any node, receive on every node, resume anywhere.
 *
 *   worker wK (publish)       "bp-pub" thread (conn 1)          Redis stream KEY
 *   -------------------       ------------------------          ----------------
 *   backplane_try_submit --+  take the WHOLE queue: one group
 *   (503 at once if down)  +-> pipeline XADD KEY MAXLEN ~ N * .. --> entry appended
 *   the conn waits            read the replies in order
 *                             done(ok) each -> wK inbox: 200 / 503
 *
 *   every node:               "bp-read" thread (conn 2)
 *                             XREAD BLOCK 500 STREAMS KEY <last id> <----- entries
 *                             parse each entry back into an evbuf
 *                             hub_publish it (fan-out, history)  ---> workers
 *
 * One order everywhere: a node never hands its own publishes to the hub; it
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
 * Start-up: backplane_open tries Redis once (1 s): if it answers, the last
 * --history entries (XREVRANGE) are loaded into the hub (hub_load) before
 * the workers start, and XREAD continues after the newest. If it does not,
 * courant starts anyway (subscribers are served, publishes get 503) and the
 * reader thread loads history when Redis first answers; nothing can have
 * been published on this node before that (everything goes through Redis).
 *
 * An entry's fields: id (the event id), topics (joined by '\n'; topics hold
 * no control characters), private ("0"/"1"), ms (published, CLOCK_REALTIME
 * ms) and wire (the encoded SSE bytes, delivered as they are). Entries are
 * hostile input like any other: backplane__parse_entry checks each one
 * (fuzz/backplane_fuzz.c) and a bad one is skipped, counted and logged.
 *
 * Threads: open/start/stop/free on the main thread; try_submit and
 * get_stats on any thread; the done callback and hub_publish run on the
 * backplane threads. Each hiredis context is used by one thread only.
 */
#ifndef COURANT_BACKPLANE_H
#define COURANT_BACKPLANE_H

#include "evbuf.h"
#include "hub.h"

#include <stddef.h>
#include <stdint.h>

typedef struct backplane backplane_t;
struct redisReply;

#define BACKPLANE_MAX_QUEUE 65536      /* publishes waiting for XADD; 503 past it */
#define BACKPLANE_MIN_MAXLEN 1000      /* the stream keeps at least this many entries */
#define BACKPLANE_MAX_WIRE (64u << 20) /* an entry's wire bytes at most (--max-event-bytes' cap) */

/* Same contract as store_done_cb (worker_post_ack fits): `ev` borrowed for
 * the call; ok = 1 when XADD answered with a stream id. */
typedef void (*backplane_done_cb)(void *ctx, uint64_t token, evbuf_t *ev, int ok);

/* Parses `url` (redis://[[USER]:PASS@]HOST[:PORT][/DB]), tries to connect
 * and, if Redis answers, loads the last `history` entries of stream `key`
 * into `hub` (hub_load: main thread, before the workers run). Returns NULL
 * with a one-line reason only for a bad URL or out of memory; an
 * unreachable Redis is not an error (logged; the threads keep trying). */
backplane_t *backplane_open(const char *url, const char *key, long history, hub_t *hub, char *reason_buf,
                            size_t reason_cap) __attribute__((warn_unused_result));

/* Starts the two threads. Returns 0 or -1. */
int backplane_start(backplane_t *b);

/* Any thread: queues `ev` for XADD (taking over the caller's reference);
 * `done` (may be NULL) is called with the outcome on the publish thread.
 * Returns -1 without taking the reference when Redis is not connected,
 * the queue is full or the backplane is stopping: the caller answers 503. */
int backplane_try_submit(backplane_t *b, evbuf_t *ev, backplane_done_cb done, void *ctx, uint64_t token)
    __attribute__((warn_unused_result));

/* Sends what is queued (if connected), then stops and joins both threads. */
void backplane_stop(backplane_t *b);

/* Closes the connections and frees. The threads must be stopped. */
void backplane_free(backplane_t *b);

typedef struct backplane_stats {
    int up;               /* both connections work */
    uint64_t xadd;        /* entries appended (XADD answered with an id) */
    uint64_t xadd_failed; /* publishes answered 503 after being queued */
    uint64_t xread;       /* entries read back and handed to the hub */
    uint64_t bad_entries; /* entries skipped: not a courant event */
} backplane_stats_t;

void backplane_get_stats(backplane_t *b, backplane_stats_t *out);

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

/* Checks that `wire` is exactly one event as sse_encode writes it, whose
 * id line is `id`: "id: ID\n", then only "event: ", "retry: " or "data: "
 * lines, at least one "data: " line (without one a client dispatches
 * nothing), then one blank line that ends it; no CR, no NUL. Returns 0 or -1. */
int backplane__check_wire(const char *wire, size_t wire_len, const char *id, size_t id_len);

#endif
