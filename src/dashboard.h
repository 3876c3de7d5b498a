/*
 * dashboard.h - the live admin dashboard. On with --admin or --demo:
 *
 *   GET /admin/             the page (web/admin/: charts drawn as SVG by its own
 *   GET /admin/dash.js         script; no library), served to anyone: it holds
 *   GET /admin/dash.css        no data, only code
 *   GET /admin/stream       text/event-stream: an `event: stats` snapshot at
 *                           once, then one a second           (admin token)
 *   GET /admin/stats.json   one snapshot                      (admin token)
 *
 * An admin token (auth.h, auth_check_admin) comes like any token: the
 * Authorization header, the `authorization` query parameter (what the page
 * uses: EventSource cannot send headers), or the cookie.
 *
 * Where the numbers come from, and what they cost:
 *
 *   worker wK, on its tick (every 250 ms: server_t.worker_tick)
 *     someone asked within DASHBOARD_WATCH_MS?
 *       its topic index, at most DASHBOARD_SCAN_SLOTS slots this tick
 *         (stream_scan_topics) -> its own topk list (topk.h)
 *       the pass wrapped -> board[K] (its mutex: one copy of ~4.5 KiB)
 *     it holds feeds, and a second passed since its last snapshot?
 *       stats_collect (stats.h: relaxed loads; the hub's lock for two
 *       numbers, the journal's for one), every board (its mutex, one copy),
 *       -> one JSON text, rendered holding no lock -> a copy per feed
 *
 * So the dashboard reads the very counters /metrics reads (stats.h), a
 * snapshot costs O(workers + TOPK_KEEP x workers) whatever the number of
 * connections or topics, and the top-topics scan costs at most
 * DASHBOARD_SCAN_SLOTS slot visits per worker tick, only while someone
 * watches, in fixed memory: a pass over a worker holding a million topics
 * takes about a minute, and the list shows what the last complete pass saw.
 *
 * A feed is the admin's stream (req_t.held.feed, dashboard.c's dash_feed_t) on
 * the worker that accepted it; it ends when the token expires, when the
 * server stops, or when the admin leaves (req_on_abort). A dashboard that
 * does not read falls behind by skipping snapshots (none is queued while
 * more than DASHBOARD_MAX_PENDING bytes wait), never by growing a queue.
 *
 * Threads: dashboard_new/free on main (before the workers start, after they
 * stop); the rest on worker threads.
 */
#ifndef COURANT_DASHBOARD_H
#define COURANT_DASHBOARD_H

#include "req.h"

#include <stdint.h>

struct server;
struct worker;

typedef struct dashboard dashboard_t;

#define DASHBOARD_SCAN_SLOTS 8192         /* topic index slots a worker scans per tick */
#define DASHBOARD_WATCH_MS 10000          /* workers keep scanning this long after a snapshot */
#define DASHBOARD_PUSH_MS 1000            /* between two snapshots on a feed */
#define DASHBOARD_MAX_PENDING (256 << 10) /* a feed with more queued skips snapshots */
#define DASHBOARD_TOP 10                  /* topics listed */

/* For srv's workers (srv->num_workers of them). NULL if out of memory. */
dashboard_t *dashboard_new(struct server *srv);
void dashboard_free(dashboard_t *d); /* workers joined; feeds gone */

/* server_t.worker_tick: feeds and the top-topics scan, on worker `w`'s thread. */
void dashboard_on_worker_tick(void *d, struct worker *w, int64_t now_ms);

/* Is this one of the dashboard's paths (/admin/...)? */
int dashboard_is_path(const char *path, size_t len);

/* GET /admin/...: the page, a stream, or a snapshot. */
void dashboard_handle(req_t *r, const request_t *in);

#endif
