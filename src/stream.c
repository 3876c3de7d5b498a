/*
 * stream.c - see stream.h for the index layout.
 *
 * The wire format of a stream response is close-delimited HTTP/1.1: headers
 * with "Connection: close" and no Content-Length or chunking, then raw
 * event-stream bytes. That is valid HTTP (RFC 9112, 6.3) and lets every
 * event go from its shared evbuf to the socket untouched; chunked framing
 * would need per-connection bytes around each write.
 */
#include "stream.h"

#include "hub.h"
#include "log.h"
#include "selector.h"
#include "strmap.h"
#include "subs.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

typedef struct topic_subs topic_subs_t;

typedef struct tmpl_subs tmpl_subs_t;

typedef struct sub_link {
    struct sub_link *prev, *next; /* neighbours in the owner's list */
    topic_subs_t *owner;          /* borrows; NULL for the wildcard and template lists */
    tmpl_subs_t *tmpl;            /* borrows (holds one of its refs): a template link's entry */
    conn_t *conn;                 /* borrows: the subscriber */
} sub_link_t;

/* One compiled URI template per distinct text per worker, shared by every
 * stream that subscribes with it or holds it in its mercure.subscribe claim:
 * fan-out matches each template once per topic (then walks its links), and
 * all its users share one selector id, hence one set of cache entries. */
struct tmpl_subs {
    struct tmpl_subs *prev, *next; /* the worker's list of templates */
    selector_t *sel;               /* owns; its text is the key in tmpl_by_text */
    sub_link_t *head;              /* links subscribed with this template (maybe none) */
    uint32_t refs;                 /* links + claims + stream_start's in-flight holds */
};

struct topic_subs {
    sub_link_t *head; /* owns nothing: links belong to their streams */
    uint32_t count;   /* links in the list */
    uint32_t len;     /* of topic */
    char topic[];     /* owns: the key of the index entry */
};

struct stream_index {
    strmap_t topics;         /* topic -> topic_subs_t* (owned) */
    sub_link_t *wildcard;    /* streams subscribed to "*" */
    tmpl_subs_t *templates;  /* owns: every interned template (see tmpl_subs) */
    strmap_t tmpl_by_text;   /* template text -> tmpl_subs_t* (borrowed from the list) */
    selector_cache_t *cache; /* owns: (template, topic) -> match, bounded */
    size_t streams;          /* open streams on this worker */
};

/* Entries of each worker's match cache: 4096 x (32 bytes + the topic copy,
 * at most 512 bytes) bounds it to about 2 MiB per worker in the worst case. */
#define MATCH_CACHE_ENTRIES 4096

typedef struct stream {
    selector_t **claims; /* owns: mercure.subscribe selectors (private updates); NULL if none */
    subs_handle_t *subs; /* owns: its subscriptions (--subscriptions), or NULL */
    uint64_t start_seq;  /* only events with seq > start_seq go live */
    uint64_t last_seq;   /* newest seq queued: an event is sent once */
    int64_t end_ms;      /* monotonic: end of life, 0 = none */
    uint8_t overflowed;  /* a delivery passed --max-pending-bytes */
    uint8_t ending;      /* no more events: closes once output is written */
    uint16_t num_links;
    uint16_t num_claims; /* entries of claims (in the padding before links) */
    sub_link_t links[];  /* one per distinct selector */
} stream_t;

#define STREAM_DRAIN_GRACE_MS 5000

static const char first_comment[] = ":\n";
static const char heartbeat[] = ":\n";

stream_index_t *stream_index_new(void)
{
    stream_index_t *idx = calloc(1, sizeof(*idx));
    if (!idx)
        return NULL;
    if (!(idx->cache = selector_cache_new(MATCH_CACHE_ENTRIES))) {
        free(idx);
        return NULL;
    }
    strmap_init(&idx->topics);
    strmap_init(&idx->tmpl_by_text);
    return idx;
}

void stream_index_free(stream_index_t *idx)
{
    if (!idx)
        return;
    assert(idx->streams == 0 && idx->topics.count == 0);
    assert(idx->templates == NULL && idx->tmpl_by_text.count == 0);
    strmap_dispose(&idx->topics);
    strmap_dispose(&idx->tmpl_by_text);
    selector_cache_free(idx->cache);
    free(idx);
}

static void list_insert(sub_link_t **head, sub_link_t *l)
{
    l->prev = NULL;
    l->next = *head;
    if (*head)
        (*head)->prev = l;
    *head = l;
}

static void list_remove(sub_link_t **head, sub_link_t *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        *head = l->next;
    if (l->next)
        l->next->prev = l->prev;
}

static int is_wildcard(const char *s, size_t len) { return len == 1 && s[0] == '*'; }

selector_cache_t *stream_match_cache(worker_t *w) { return worker__streams(w)->cache; }

static tmpl_subs_t *tmpl_find(stream_index_t *idx, const selector_t *sel)
{
    return strmap_get(&idx->tmpl_by_text, selector_text(sel), selector_len(sel));
}

/* Compiles `s`; a URI template is interned (one per text per worker, refs
 * counted). Release with selector_release. NULL when out of memory. */
static selector_t *selector_acquire(stream_index_t *idx, const char *s, size_t len)
{
    selector_t *sel = selector_try_new(s, len);
    if (!sel || selector_kind(sel) != SELECTOR_TEMPLATE)
        return sel;
    tmpl_subs_t *t = tmpl_find(idx, sel);
    if (t) {
        selector_free(sel);
        t->refs++;
        return t->sel;
    }
    if (!(t = calloc(1, sizeof(*t))) ||
        strmap_try_put(&idx->tmpl_by_text, selector_text(sel), selector_len(sel), t)) {
        free(t);
        selector_free(sel);
        return NULL;
    }
    t->sel = sel;
    t->refs = 1;
    t->next = idx->templates;
    if (idx->templates)
        idx->templates->prev = t;
    idx->templates = t;
    return sel;
}

static void selector_release(stream_index_t *idx, selector_t *sel)
{
    if (!sel)
        return;
    if (selector_kind(sel) != SELECTOR_TEMPLATE) {
        selector_free(sel);
        return;
    }
    tmpl_subs_t *t = tmpl_find(idx, sel);
    assert(t && t->sel == sel && t->refs > 0);
    if (--t->refs)
        return;
    assert(t->head == NULL);
    strmap_remove(&idx->tmpl_by_text, selector_text(sel), selector_len(sel));
    if (t->prev)
        t->prev->next = t->next;
    else
        idx->templates = t->next;
    if (t->next)
        t->next->prev = t->prev;
    selector_free(sel);
    free(t);
}

/* Hangs `l` on the list for `topic`, creating the entry if needed. A
 * template's link takes over the reference `*sel` holds (set to NULL). */
static int link_attach(stream_index_t *idx, sub_link_t *l, const char *topic, size_t len, selector_t **sel)
{
    l->tmpl = NULL;
    if (is_wildcard(topic, len)) {
        l->owner = NULL;
        list_insert(&idx->wildcard, l);
        return 0;
    }
    if (selector_kind(*sel) == SELECTOR_TEMPLATE) {
        l->owner = NULL;
        l->tmpl = tmpl_find(idx, *sel);
        *sel = NULL;
        list_insert(&l->tmpl->head, l);
        return 0;
    }
    topic_subs_t *ts = strmap_get(&idx->topics, topic, len);
    if (!ts) {
        ts = malloc(sizeof(*ts) + len + 1);
        if (!ts)
            return -1;
        ts->head = NULL;
        ts->count = 0;
        ts->len = (uint32_t)len;
        memcpy(ts->topic, topic, len);
        ts->topic[len] = 0;
        if (strmap_try_put(&idx->topics, ts->topic, len, ts)) {
            free(ts);
            return -1;
        }
    }
    l->owner = ts;
    list_insert(&ts->head, l);
    ts->count++;
    return 0;
}

static void link_detach(stream_index_t *idx, sub_link_t *l)
{
    topic_subs_t *ts = l->owner;
    if (l->tmpl) {
        list_remove(&l->tmpl->head, l);
        selector_release(idx, l->tmpl->sel);
        l->tmpl = NULL;
        return;
    }
    if (!ts) {
        list_remove(&idx->wildcard, l);
        return;
    }
    list_remove(&ts->head, l);
    if (--ts->count == 0) {
        strmap_remove(&idx->topics, ts->topic, ts->len);
        free(ts);
    }
}

/* ---- subscribing -------------------------------------------------------------- */

typedef struct match_ctx {
    selector_t **sels; /* borrows: the compiled distinct selectors */
    size_t num_sels;
    selector_t *const *claims; /* borrows: the mercure.subscribe selectors */
    size_t num_claims;
    selector_cache_t *cache; /* borrows: the worker's */
} match_ctx_t;

/* Does any selector match any of the event's topics? */
static int any_match(selector_cache_t *cache, selector_t *const *sels, size_t n, const evbuf_t *ev)
{
    for (size_t i = 0; i < n; i++)
        for (unsigned t = 0; t < ev->num_topics; t++)
            if (selector_cache_match(cache, sels[i], ev->topics[t], ev->topic_lens[t]))
                return 1;
    return 0;
}

/* Would a subscriber with these selectors and claims receive `ev`? (history
 * replay; live delivery applies the same rule in deliver()) */
static int selectors_match(void *ctx, const evbuf_t *ev)
{
    const match_ctx_t *m = ctx;
    if (ev->is_private && !any_match(m->cache, m->claims, m->num_claims, ev))
        return 0; /* private: only for subscribers whose claim matches a topic */
    return any_match(m->cache, m->sels, m->num_sels, ev);
}

/* Distinct selectors only, so one subscriber sits at most once per list. */
static size_t count_distinct(const stream_request_t *req, uint8_t *dup)
{
    size_t n = 0;
    for (size_t i = 0; i < req->num_selectors; i++) {
        dup[i] = 0;
        for (size_t j = 0; j < i && !dup[i]; j++)
            dup[i] = req->selector_lens[i] == req->selector_lens[j] &&
                     memcmp(req->selectors[i], req->selectors[j], req->selector_lens[i]) == 0;
        n += !dup[i];
    }
    return n;
}

static char *format_head(const stream_request_t *req, const char *last_event_id, long retry_ms,
                         size_t *len_out)
{
    size_t cap = 512 + strlen(req->cors_headers) + (last_event_id ? strlen(last_event_id) : 0);
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    int n = snprintf(buf, cap,
                     "HTTP/1.1 200 OK\r\n"
                     "Content-Type: text/event-stream\r\n"
                     "Cache-Control: no-cache\r\n"
                     "X-Accel-Buffering: no\r\n"
                     "Connection: close\r\n"
                     "%s%s%s"
                     "%s\r\n"
                     "%s",
                     last_event_id ? "Last-Event-ID: " : "", last_event_id ? last_event_id : "",
                     last_event_id ? "\r\n" : "", req->cors_headers, first_comment);
    if (retry_ms >= 0)
        n += snprintf(buf + n, cap - (size_t)n, "retry: %ld\n\n", retry_ms);
    assert(n > 0 && (size_t)n < cap);
    *len_out = (size_t)n;
    return buf;
}

/* The subscriber fell more than --max-pending-bytes behind. It gets what is
 * already queued (so it can resume right after it with Last-Event-ID), no
 * more events, and is closed once that is written, or after a grace period
 * if it reads nothing. Closing right away would free list nodes that the
 * fan-out may be walking. */
static void on_overflow(conn_t *c)
{
    stream_t *s = c->stream;
    s->overflowed = 1;
    s->ending = 1;
    c->shut_after_flush = 1;
    s->end_ms = worker__now_ms(c->worker) + STREAM_DRAIN_GRACE_MS;
    atomic_fetch_add_explicit(&worker_stats(c->worker)->slow_disconnects, 1, memory_order_relaxed);
    log_warn("fd %d: subscriber more than --max-pending-bytes behind; disconnecting it", c->fd);
}

static void replay(conn_t *c, hub_snapshot_t *snap)
{
    worker_stats_t *st = worker_stats(c->worker);
    for (size_t i = 0; i < snap->count; i++) {
        wref_t *r = worker__wref_new(c->worker, snap->events[i]);
        if (c->stream->ending) {
            /* nothing more: the client resumes after what it got */
        } else if (conn_try_enqueue_event(c, r)) {
            on_overflow(c);
        } else {
            atomic_fetch_add_explicit(&st->replayed, 1, memory_order_relaxed);
        }
        if (r->refs == 0)
            worker__wref_unref_empty(c->worker, r);
    }
}

static int64_t lifetime_deadline(const config_t *cfg, int64_t now)
{
    if (!cfg->max_lifetime_s)
        return 0;
    /* Jitter of +-20 %, so streams opened together do not end together. */
    int64_t base = (int64_t)cfg->max_lifetime_s * 1000;
    return now + base * 8 / 10 + (int64_t)(random() % (base * 4 / 10 + 1));
}

/* Compiles the distinct selectors (sels[k]) and the claim selectors. */
static int compile_all(stream_index_t *idx, const stream_request_t *req, const uint8_t *dup,
                       selector_t **sels, selector_t **claims)
{
    for (size_t i = 0, k = 0; i < req->num_selectors; i++) {
        if (!dup[i] && !(sels[k++] = selector_acquire(idx, req->selectors[i], req->selector_lens[i])))
            return -1;
    }
    for (size_t i = 0; i < req->num_claims; i++)
        if (!(claims[i] = selector_acquire(idx, req->claims[i], strlen(req->claims[i]))))
            return -1;
    return 0;
}

static void release_selectors(stream_index_t *idx, selector_t **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        selector_release(idx, v[i]);
}

/* When the stream must end: --max-lifetime, or sooner when its token expires
 * (the client reconnects with a fresh token; until then it gets nothing its
 * expired token would no longer allow). */
static int64_t stream_deadline(const config_t *cfg, const stream_request_t *req, int64_t now_mono)
{
    int64_t end = lifetime_deadline(cfg, now_mono);
    if (req->token_exp_s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t left_ms = req->token_exp_s * 1000 - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        int64_t at = now_mono + (left_ms > 0 ? left_ms : 0);
        if (!end || at < end)
            end = at;
    }
    return end;
}

static void refuse_oom(conn_t *c)
{
    conn_refuse(c, REFUSE_UNAVAILABLE, "503 Service Unavailable", "out of memory");
}

/* --subscriptions: lists the stream's distinct selectors and publishes
 * their "active" events (after the head and replay are queued, so the
 * subscriber's own stream is already in the index when they fan out). */
static void register_subscriptions(conn_t *c, const stream_request_t *req, const uint8_t *dup, size_t n)
{
    struct subs *reg = worker_server(c->worker)->subs;
    if (!reg)
        return;
    const char *sel[n ? n : 1];
    size_t lens[n ? n : 1];
    for (size_t i = 0, k = 0; i < req->num_selectors; i++) {
        if (!dup[i]) {
            sel[k] = req->selectors[i];
            lens[k++] = req->selector_lens[i];
        }
    }
    if (!(c->stream->subs = subs_add(reg, sel, lens, n, req->payload)))
        log_warn("fd %d: out of memory: the subscription is not listed", c->fd);
}

void stream_start(conn_t *c, const stream_request_t *req)
{
    worker_t *w = c->worker;
    stream_index_t *idx = worker__streams(w);
    const config_t *cfg = worker_server(w)->cfg;
    uint8_t dup[req->num_selectors ? req->num_selectors : 1];
    size_t n = count_distinct(req, dup);

    stream_t *s = calloc(1, sizeof(*s) + n * sizeof(sub_link_t));
    selector_t **sels = calloc(n ? n : 1, sizeof(*sels));
    selector_t **claims = req->num_claims ? calloc(req->num_claims, sizeof(*claims)) : NULL;
    if (!s || !sels || (req->num_claims && !claims) || compile_all(idx, req, dup, sels, claims)) {
        release_selectors(idx, sels, n);
        release_selectors(idx, claims, req->num_claims);
        free(sels);
        free(claims);
        free(s);
        refuse_oom(c);
        return;
    }
    s->claims = claims;
    s->num_claims = (uint16_t)req->num_claims;
    hub_snapshot_t snap;
    match_ctx_t mctx = {sels, n, claims, req->num_claims, idx->cache};
    char *head = NULL;
    size_t head_len = 0;
    if (hub_try_snapshot(worker_server(w)->hub, req->last_event_id, req->last_event_id_len, selectors_match,
                         &mctx, &snap)) {
        memset(&snap, 0, sizeof(snap));
    } else {
        head = format_head(req, snap.last_event_id, cfg->retry_ms, &head_len);
    }
    if (!head) {
        release_selectors(idx, sels, n);
        release_selectors(idx, claims, req->num_claims);
        free(sels);
        free(claims);
        free(s);
        hub_snapshot_dispose(&snap);
        refuse_oom(c);
        return;
    }
    s->start_seq = snap.start_seq;
    s->last_seq = snap.start_seq;
    s->end_ms = stream_deadline(cfg, req, worker__now_ms(w));
    for (size_t i = 0, k = 0; i < req->num_selectors; i++) {
        if (dup[i])
            continue;
        s->links[k].conn = c;
        if (link_attach(idx, &s->links[k], req->selectors[i], req->selector_lens[i], &sels[k]))
            break; /* out of memory: the stream gets fewer topics; logged below */
        s->num_links = (uint16_t)++k;
    }
    release_selectors(idx, sels, n); /* those not taken over by a template link */
    free(sels);
    if (s->num_links < n)
        log_warn("fd %d: out of memory while subscribing; some selectors ignored", c->fd);
    c->stream = s;
    c->state = CONN_STREAM;
    c->keep_alive = 0;
    idx->streams++;
    atomic_fetch_add_explicit(&worker_stats(w)->streams_open, 1, memory_order_relaxed);
    conn_enqueue_heap(c, head, head_len);
    replay(c, &snap);
    hub_snapshot_dispose(&snap);
    register_subscriptions(c, req, dup, n);
    log_debug("fd %d subscribed: %zu selectors, %zu claims, replayed %zu", c->fd, n, req->num_claims,
              snap.count);
}

void stream_detach(conn_t *c)
{
    stream_t *s = c->stream;
    stream_index_t *idx = worker__streams(c->worker);
    for (uint16_t i = 0; i < s->num_links; i++)
        link_detach(idx, &s->links[i]);
    release_selectors(idx, s->claims, s->num_claims);
    free(s->claims);
    if (s->subs) {
        server_t *srv = worker_server(c->worker);
        subs_remove(srv->subs, s->subs, atomic_load(&srv->stopping));
    }
    idx->streams--;
    atomic_fetch_sub_explicit(&worker_stats(c->worker)->streams_open, 1, memory_order_relaxed);
    free(s);
    c->stream = NULL;
}

/* ---- fan-out ---------------------------------------------------------------------- */

/* Queues `ev` to one subscriber; returns 1 if it was queued. */
static int deliver(worker_t *w, conn_t *c, evbuf_t *ev, wref_t **r)
{
    stream_t *s = c->stream;
    if (ev->seq <= s->last_seq || s->ending)
        return 0;
    s->last_seq = ev->seq;
    /* A private update reaches only subscribers whose mercure.subscribe claim
     * matches one of its topics: the same rule as selectors_match(). */
    if (ev->is_private && !any_match(worker__streams(w)->cache, s->claims, s->num_claims, ev))
        return 0;
    if (!*r)
        *r = worker__wref_new(w, ev);
    if (conn_try_enqueue_event(c, *r)) {
        on_overflow(c);
        return 0;
    }
    return 1;
}

void stream_fanout(worker_t *w, evbuf_t *ev)
{
    stream_index_t *idx = worker__streams(w);
    wref_t *r = NULL;
    unsigned long delivered = 0; /* one atomic add per event, not per subscriber */
    for (unsigned i = 0; i < ev->num_topics; i++) {
        topic_subs_t *ts = strmap_get(&idx->topics, ev->topics[i], ev->topic_lens[i]);
        for (sub_link_t *l = ts ? ts->head : NULL; l; l = l->next)
            delivered += (unsigned long)deliver(w, l->conn, ev, &r);
    }
    for (sub_link_t *l = idx->wildcard; l; l = l->next)
        delivered += (unsigned long)deliver(w, l->conn, ev, &r);
    /* Template selectors: one cached match per (distinct template, topic),
     * then every link of a matching template, like an exact topic's list. */
    for (tmpl_subs_t *t = idx->templates; t; t = t->next) {
        if (!t->head)
            continue; /* only held by claims */
        for (unsigned i = 0; i < ev->num_topics; i++) {
            if (selector_cache_match(idx->cache, t->sel, ev->topics[i], ev->topic_lens[i])) {
                for (sub_link_t *l = t->head; l; l = l->next)
                    delivered += (unsigned long)deliver(w, l->conn, ev, &r);
                break;
            }
        }
    }
    if (r && r->refs == 0)
        worker__wref_unref_empty(w, r);
    if (delivered)
        atomic_fetch_add_explicit(&worker_stats(w)->deliveries, delivered, memory_order_relaxed);
}

/* ---- timers --------------------------------------------------------------------- */

static void stream_end(conn_t *c)
{
    c->stream->ending = 1;
    conn_finish(c);
}

void stream_on_tick(conn_t *c, int64_t now_ms)
{
    stream_t *s = c->stream;
    if (s->end_ms && now_ms >= s->end_ms) {
        if (s->ending)
            conn_close(c, "subscriber did not read its pending output in time");
        else
            stream_end(c);
        return;
    }
    int hb = worker_server(c->worker)->cfg->heartbeat_s;
    if (hb && c->outq_count == 0 && now_ms - c->last_write_ms >= (int64_t)hb * 1000)
        conn_enqueue_static(c, heartbeat, sizeof(heartbeat) - 1);
}

void stream_schedule_end(conn_t *c, int64_t now_ms, int spread_ms)
{
    stream_t *s = c->stream;
    if (s->ending)
        return;
    int64_t at = now_ms + (spread_ms > 0 ? random() % spread_ms : 0);
    if (!s->end_ms || at < s->end_ms)
        s->end_ms = at;
}
