/*
 * dashboard.c - see dashboard.h for the routes, where the numbers come
 * from and what they cost.
 *
 *   dashboard_t
 *     watch_until_ms (atomic)        workers scan their topics until then
 *     w[0 .. num_workers)            one per worker:
 *       feeds -> dash_feed_t <-> ..    its admins' streams (its thread only)
 *       scan, cursor                   the top-topics pass in progress (its thread only)
 *       board                          the last complete pass (topk.h: mutex)
 *
 * A snapshot is one JSON object (the page's only input; field names are
 * part of the page's contract, see web/admin/dash.js):
 *
 *   {"t": monotonic ms, "ts": wall-clock ms, "uptime_s", "version", "workers",
 *    "connections", "accepted", "subscribers", "requests", "published",
 *    "deliveries", "bytes", "replayed", "slow_disconnects", "history",
 *    "refused": {reason: count, ..},
 *    "journal": {"name", "up", "queued", "events", "failed", "refused",
 *                "rows", "read_back", "bad_records"},
 *    "latency": {"le_us": [bounds], "publish_enqueue": {"counts": [..],
 *                "sum_us"}, "enqueue_written": {..}},
 *    "top": [{"topic", "cut", "subscribers"}, .. at most DASHBOARD_TOP],
 *    "top_age_ms": age of the oldest worker list used (-1: none yet),
 *    "per_worker": [{"turns", "busy_us", "conns", "subscribers",
 *                    "deliveries", "bytes"}, ..]}
 *
 * Counters are cumulative, as /metrics has them: the page turns them into
 * rates and windowed percentiles, so the server keeps no history.
 */
#include "dashboard.h"

#include "assets.h"
#include "auth.h"
#include "buildinfo.h"
#include "conn.h"
#include "log.h"
#include "server.h"
#include "stats.h"
#include "stream.h"
#include "topk.h"
#include "worker.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct dash_worker dash_worker_t;

/* An admin's stream on one worker. */
typedef struct dash_feed {
    req_feed_t base;               /* must be first: req_t.held.feed points here */
    struct dash_feed *prev, *next; /* its worker's list */
    dash_worker_t *dw;             /* borrows: the worker's state */
    req_t *req;                    /* borrows: the stream it feeds */
    int64_t end_ms;                /* monotonic: the token's exp; 0 = none */
} dash_feed_t;

struct dash_worker {
    dash_feed_t *feeds;   /* owns (through req_t.held.feed): this worker's feeds; its thread only */
    int64_t next_push_ms; /* monotonic: the next snapshot for its feeds */
    size_t cursor;        /* where the topic scan goes on; its thread only */
    topk_list_t scan;     /* the pass in progress; its thread only */
    topk_board_t board;   /* the last complete pass, for every thread */
};

struct dashboard {
    server_t *srv;               /* borrows */
    int num_workers;             /* entries of w */
    atomic_llong watch_until_ms; /* monotonic ms: workers scan their topics until then */
    dash_worker_t *w;            /* owns: one per worker */
};

dashboard_t *dashboard_new(server_t *srv)
{
    dashboard_t *d = calloc(1, sizeof(*d));
    if (!d || !(d->w = calloc((size_t)srv->num_workers, sizeof(*d->w)))) {
        free(d);
        return NULL;
    }
    d->srv = srv;
    d->num_workers = srv->num_workers;
    for (int i = 0; i < d->num_workers; i++) {
        topk_init(&d->w[i].scan);
        topk_board_init(&d->w[i].board);
    }
    return d;
}

void dashboard_free(dashboard_t *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->num_workers; i++)
        topk_board_dispose(&d->w[i].board);
    free(d->w);
    free(d);
}

int dashboard_is_path(const char *path, size_t len) { return len >= 6 && !memcmp(path, "/admin", 6); }

static int64_t realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the snapshot -------------------------------------------------------------- */

/* A growing text buffer; `oom` sticks once memory runs out. */
typedef struct jbuf {
    char *p;
    size_t n, cap;
    int oom;
} jbuf_t;

static void jprintf(jbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void jprintf(jbuf_t *b, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !b->oom; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        size_t ncap = (b->cap + (size_t)k + 1) * 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

static void render_histo(jbuf_t *b, const char *name, const histo_snapshot_t *h)
{
    jprintf(b, "\"%s\":{\"counts\":[", name);
    for (int i = 0; i < HISTO_BUCKETS; i++)
        jprintf(b, "%s%llu", i ? "," : "", (unsigned long long)h->counts[i]);
    jprintf(b, "],\"sum_us\":%llu}", (unsigned long long)h->sum_us);
}

static void render_counters(jbuf_t *b, const stats_t *st, server_t *srv, int64_t now_ms)
{
    int64_t wall = realtime_ms();
    jprintf(b,
            "{\"t\":%lld,\"ts\":%lld,\"uptime_s\":%lld,\"version\":\"%s\",\"workers\":%d,"
            "\"connections\":%lld,\"accepted\":%llu,\"subscribers\":%llu,\"requests\":%llu,"
            "\"published\":%llu,\"deliveries\":%llu,\"bytes\":%llu,\"replayed\":%llu,"
            "\"slow_disconnects\":%llu,\"history\":%llu,\"refused\":{",
            (long long)now_ms, (long long)wall, (long long)((wall - srv->started_ms) / 1000),
            courant_version(), st->num_workers, (long long)st->open_conns, (unsigned long long)st->accepted,
            (unsigned long long)st->subscribers, (unsigned long long)st->requests,
            (unsigned long long)st->published, (unsigned long long)st->deliveries,
            (unsigned long long)st->bytes_written, (unsigned long long)st->replayed,
            (unsigned long long)st->slow_disconnects, (unsigned long long)st->history_len);
    for (int k = 0; k < REFUSE__COUNT; k++)
        jprintf(b, "%s\"%s\":%llu", k ? "," : "", refusal_names[k], (unsigned long long)st->refused[k]);
    const journal_stats_t *js = &st->journal;
    jprintf(
        b,
        "},\"journal\":{\"name\":\"%s\",\"up\":%d,\"queued\":%llu,\"events\":%llu,\"failed\":%llu,"
        "\"refused\":%llu,\"rows\":%llu,\"read_back\":%llu,\"bad_records\":%llu},\"latency\":{\"le_us\":[",
        js->name, js->up, (unsigned long long)js->queued, (unsigned long long)js->events,
        (unsigned long long)js->failed, (unsigned long long)js->refused, (unsigned long long)js->rows,
        (unsigned long long)js->read_back, (unsigned long long)js->bad_records);
    for (int i = 0; i < HISTO_BUCKETS - 1; i++)
        jprintf(b, "%s%u", i ? "," : "", histo_bounds_us[i]);
    jprintf(b, "],");
    render_histo(b, "publish_enqueue", &st->publish_enqueue);
    jprintf(b, ",");
    render_histo(b, "enqueue_written", &st->enqueue_written);
    jprintf(b, "}");
}

/* Every worker's last list, summed. Returns the age of the oldest one used,
 * or -1 when no worker has finished a pass yet. */
static int64_t merge_boards(dashboard_t *d, topk_list_t *all, int64_t now_ms)
{
    topk_list_t one;
    int64_t oldest = -1;
    topk_init(all);
    for (int i = 0; i < d->num_workers; i++) {
        int64_t at = topk_board_read(&d->w[i].board, &one);
        if (!at)
            continue;
        topk_merge(all, &one);
        if (oldest < 0 || now_ms - at > oldest)
            oldest = now_ms - at;
    }
    return oldest;
}

static void render_top(jbuf_t *b, dashboard_t *d, int64_t now_ms)
{
    topk_list_t all;
    int64_t age = merge_boards(d, &all, now_ms);
    jprintf(b, ",\"top\":[");
    for (size_t i = 0; i < all.n && i < DASHBOARD_TOP; i++) {
        char esc[TOPK_TOPIC_MAX * 6 + 1];
        esc[log_json_escape(all.e[i].topic, all.e[i].len, esc, sizeof(esc) - 1, NULL)] = 0;
        jprintf(b, "%s{\"topic\":\"%s\",\"cut\":%s,\"subscribers\":%llu}", i ? "," : "", esc,
                all.e[i].cut ? "true" : "false", (unsigned long long)all.e[i].count);
    }
    jprintf(b, "],\"top_age_ms\":%lld", (long long)age);
}

static void render_workers(jbuf_t *b, const stats_worker_t *pw, int n)
{
    jprintf(b, ",\"per_worker\":[");
    for (int i = 0; i < n; i++)
        jprintf(b,
                "%s{\"turns\":%llu,\"busy_us\":%llu,\"conns\":%llu,\"subscribers\":%llu,\"deliveries\":%llu,"
                "\"bytes\":%llu}",
                i ? "," : "", (unsigned long long)pw[i].turns, (unsigned long long)pw[i].busy_us,
                (unsigned long long)pw[i].conns, (unsigned long long)pw[i].subscribers,
                (unsigned long long)pw[i].deliveries, (unsigned long long)pw[i].bytes_written);
    jprintf(b, "]}");
}

/* One snapshot as JSON (malloc'd, *len bytes, NUL-terminated), or NULL when
 * memory runs out. Reading takes the locks stats.h and topk.h name, each
 * for a copy; rendering holds none. Also keeps the workers scanning. */
static char *render_snapshot(dashboard_t *d, int64_t now_ms, size_t *len)
{
    server_t *srv = d->srv;
    atomic_store_explicit(&d->watch_until_ms, now_ms + DASHBOARD_WATCH_MS, memory_order_relaxed);
    stats_t st;
    stats_worker_t *pw = calloc((size_t)srv->num_workers, sizeof(*pw));
    jbuf_t b = {NULL, 0, 0, 0};
    if (!pw)
        return NULL;
    stats_collect(srv, &st, pw);
    b.cap = 2048 + (size_t)srv->num_workers * 160;
    if (!(b.p = malloc(b.cap))) {
        free(pw);
        return NULL;
    }
    render_counters(&b, &st, srv, now_ms);
    render_top(&b, d, now_ms);
    render_workers(&b, pw, srv->num_workers);
    free(pw);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.n;
    return b.p;
}

/* ---- feeds ---------------------------------------------------------------------- */

static const char stats_head[] = "event: stats\ndata: ";

/* The snapshot as one SSE event, a heap copy the queue takes. */
static void push_snapshot(req_t *r, const char *json, size_t len)
{
    if (r->state != REQ_STREAMING || req_pending(r) > DASHBOARD_MAX_PENDING)
        return; /* ending, or not reading: skip this one rather than queue it */
    size_t hl = sizeof(stats_head) - 1, n = hl + len + 2;
    char *ev = malloc(n);
    if (!ev)
        return;
    memcpy(ev, stats_head, hl);
    memcpy(ev + hl, json, len);
    memcpy(ev + hl + len, "\n\n", 2);
    req_push_heap(r, ev, n);
}

static void feed_unlink(dash_feed_t *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        f->dw->feeds = f->next;
    if (f->next)
        f->next->prev = f->prev;
}

static void feed_on_abort(req_t *r)
{
    dash_feed_t *f = (dash_feed_t *)req_feed(r);
    feed_unlink(f);
    free(f);
}

static void push_all(dashboard_t *d, dash_worker_t *dw, int64_t now_ms)
{
    size_t len = 0;
    char *json = render_snapshot(d, now_ms, &len);
    if (!json) {
        log_warn("admin dashboard: out of memory for a snapshot");
        return;
    }
    for (dash_feed_t *f = dw->feeds; f; f = f->next)
        push_snapshot(f->req, json, len);
    free(json);
}

/* Ends feeds whose token expired, or all of them when the server stops.
 * Ending may close the connection at once, which frees the feed
 * (feed_on_abort): the next one is taken first. */
static void end_feeds(dash_worker_t *dw, int64_t now_ms, int all)
{
    for (dash_feed_t *f = dw->feeds, *next; f; f = next) {
        next = f->next;
        if (f->req->state == REQ_STREAMING && (all || (f->end_ms && now_ms >= f->end_ms)))
            req_end(f->req);
    }
}

static void on_topic(void *ctx, const char *topic, size_t len, uint32_t subscribers)
{
    topk_offer(ctx, topic, len, subscribers);
}

/* One bounded step of this worker's pass over its topics. */
static void scan_step(dash_worker_t *dw, worker_t *w, int64_t now_ms)
{
    dw->cursor = stream_scan_topics(w, dw->cursor, DASHBOARD_SCAN_SLOTS, on_topic, &dw->scan);
    if (dw->cursor == 0) { /* the pass is complete */
        topk_board_publish(&dw->board, &dw->scan, now_ms);
        topk_init(&dw->scan);
    }
}

void dashboard_on_worker_tick(void *dp, worker_t *w, int64_t now_ms)
{
    dashboard_t *d = dp;
    dash_worker_t *dw = &d->w[worker_index(w)];
    if (now_ms < atomic_load_explicit(&d->watch_until_ms, memory_order_relaxed))
        scan_step(dw, w, now_ms);
    if (!dw->feeds)
        return;
    end_feeds(dw, now_ms, atomic_load(&d->srv->stopping));
    /* Half a tick early is on time: snapshots come every second, not every 1.25. */
    if (dw->feeds && now_ms + 125 >= dw->next_push_ms) {
        dw->next_push_ms = now_ms + DASHBOARD_PUSH_MS;
        push_all(d, dw, now_ms);
    }
}

/* ---- requests ---------------------------------------------------------------------- */

static int path_is(const request_t *in, const char *lit)
{
    return strlen(lit) == in->path_len && memcmp(in->path, lit, in->path_len) == 0;
}

/* The admin token, or a refusal (answered). Returns 1 with *exp_s set. */
static int admin_allowed(req_t *r, const request_t *in, int64_t *exp_s)
{
    server_t *srv = worker_server(r->conn->worker);
    const char *why = NULL;
    resp_hdrs_t h;
    resp_hdrs_init(&h);
    switch (auth_check_admin(srv->auth, in, exp_s, &why)) {
    case AUTH_ADMIN_OK:
        return 1;
    case AUTH_ADMIN_NO_KEY:
        req_refuse(
            r, REFUSE_FORBIDDEN, 403, NULL,
            "no key can sign an admin token: start courant with --admin-jwt-key (or a subscriber key)");
        return 0;
    case AUTH_ADMIN_NO_TOKEN:
        auth_add_challenge(srv->auth, &h, NULL);
        req_refuse(r, REFUSE_UNAUTHORIZED, 401, &h, "the dashboard needs an admin token");
        return 0;
    case AUTH_ADMIN_INVALID:
        auth_add_challenge(srv->auth, &h, NULL);
        req_refuse(r, REFUSE_UNAUTHORIZED, 401, &h, why);
        return 0;
    case AUTH_ADMIN_NOT_ADMIN:
        req_refuse(r, REFUSE_FORBIDDEN, 403, NULL, why);
        return 0;
    }
    return 0;
}

static void handle_stream(req_t *r, int64_t exp_s)
{
    dashboard_t *d = worker_server(r->conn->worker)->dashboard;
    worker_t *w = r->conn->worker;
    dash_worker_t *dw = &d->w[worker_index(w)];
    resp_hdrs_t h;
    resp_hdrs_init(&h);
    resp_hdrs_add(&h, "Cache-Control", "no-store");
    resp_hdrs_add(&h, "X-Accel-Buffering", "no");
    dash_feed_t *f = calloc(1, sizeof(*f));
    if (!f || req_try_stream_begin(r, &h)) {
        free(f);
        req_refuse(r, REFUSE_UNAVAILABLE, 503, NULL, "out of memory");
        return;
    }
    int64_t now = worker__now_ms(w);
    f->base.on_abort = feed_on_abort;
    f->dw = dw;
    f->req = r;
    if (exp_s) { /* the stream ends with the token, as subscribers' do */
        int64_t left = exp_s * 1000 - realtime_ms();
        f->end_ms = now + (left > 0 ? left : 0);
    }
    f->next = dw->feeds;
    if (dw->feeds)
        dw->feeds->prev = f;
    dw->feeds = f;
    req_set_feed(r, &f->base);
    static const char hello[] = ":\nretry: 2000\n";
    req_push_bytes(r, hello, sizeof(hello) - 1, 0);
    size_t len = 0;
    char *json = render_snapshot(d, now, &len); /* the first one now: the page fills at once */
    if (json)
        push_snapshot(r, json, len);
    free(json);
}

static void handle_json(req_t *r)
{
    dashboard_t *d = worker_server(r->conn->worker)->dashboard;
    size_t len = 0;
    char *json = render_snapshot(d, worker__now_ms(r->conn->worker), &len);
    if (!json) {
        req_refuse(r, REFUSE_UNAVAILABLE, 503, NULL, "out of memory");
        return;
    }
    resp_hdrs_t h;
    resp_hdrs_init(&h);
    resp_hdrs_add(&h, "Cache-Control", "no-store");
    req_respond(r, 200, &h, "application/json", json, len);
    free(json);
}

/* The page's files: /admin and /admin/ are its index. */
static void handle_asset(req_t *r, const request_t *in)
{
    const asset_t *a = path_is(in, "/admin") || path_is(in, "/admin/") ? assets_find("/admin/index.html", 17)
                                                                       : assets_find(in->path, in->path_len);
    if (!a) {
        req_refuse(r, REFUSE_NOT_FOUND, 404, NULL, "no such path");
        return;
    }
    resp_hdrs_t h;
    resp_hdrs_init(&h);
    resp_hdrs_add(&h, "Cache-Control", "no-cache");
    /* The page runs only its own script and talks only to this origin. */
    resp_hdrs_add(&h, "Content-Security-Policy",
                  "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'");
    resp_hdrs_add(&h, "X-Content-Type-Options", "nosniff");
    resp_hdrs_add(&h, "Referrer-Policy", "no-referrer");
    req_respond(r, 200, &h, a->content_type, (const char *)a->data, a->len);
}

void dashboard_handle(req_t *r, const request_t *in)
{
    int stream = path_is(in, "/admin/stream"), json = path_is(in, "/admin/stats.json");
    if (!stream && !json) {
        handle_asset(r, in);
        return;
    }
    int64_t exp_s = 0;
    if (!admin_allowed(r, in, &exp_s))
        return;
    if (stream && !in->is_head)
        handle_stream(r, exp_s);
    else
        handle_json(r);
}
