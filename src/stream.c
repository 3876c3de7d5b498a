/*
 * stream.c - see stream.h for the index layout, fan-out and replay.
 */
#include "stream.h"

#include "conn.h"
#include "grant.h"
#include "hub.h"
#include "log.h"
#include "selector.h"
#include "server.h"
#include "strmap.h"
#include "subs.h"
#include "upindex.h"
#include "urlpattern.h"
#include "worker.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct topic_subs topic_subs_t;
typedef struct tmpl_subs tmpl_subs_t;
typedef struct prefix_bucket prefix_bucket_t;

/* Which list a link hangs on: a link is one selector, so exactly one. */
typedef enum link_kind {
    LINK_WILDCARD, /* the index's wildcard list ("*") */
    LINK_TOPIC,    /* to.owner's list (an exact topic) */
    LINK_TEMPLATE, /* to.tmpl's list (a URI template) */
    LINK_URLPAT,   /* to.upat's list (a v1 URL pattern) */
} link_kind_t;

typedef struct sub_link {
    struct sub_link *prev, *next; /* neighbours in the owner's list */
    /* The entry whose list holds the link, as `kind` says (nothing for the
     * wildcard): one word for three, 8 bytes off every link, which takes a
     * one-topic stream_t from a 112- to a 96-byte malloc chunk. */
    union {
        topic_subs_t *owner; /* LINK_TOPIC: borrows */
        tmpl_subs_t *tmpl;   /* LINK_TEMPLATE: borrows (holds one of its refs) */
        upentry_t *upat;     /* LINK_URLPAT: borrows (holds one of its refs) */
    } to;
    req_t *req;   /* borrows: the subscriber */
    uint8_t kind; /* link_kind_t */
} sub_link_t;

/* One compiled URI template per distinct text per worker, shared by every
 * stream that subscribes with it or holds it in its claim: fan-out matches
 * each candidate template once per topic (then walks its links), and all
 * its users share one selector id, hence one set of cache entries. */
struct tmpl_subs {
    struct tmpl_subs *prev, *next; /* the bucket's list of templates */
    prefix_bucket_t *bucket;       /* borrows: the literal-prefix bucket it hangs in */
    selector_t *sel;               /* owns; its text is the key in tmpl_by_text */
    sub_link_t *head;              /* links subscribed with this template (maybe none) */
    uint64_t matched_seq;          /* the last event it was delivered for (several topics) */
    uint32_t refs;                 /* links + claims + stream_start's in-flight holds */
};

/* Templates sharing one literal prefix (the index key). */
struct prefix_bucket {
    tmpl_subs_t *head; /* borrows: templates with this prefix */
    uint32_t count;    /* templates in the list */
    uint32_t len;      /* of prefix */
    char prefix[];     /* owns: the key (not NUL-terminated use; NUL added) */
};

struct topic_subs {
    sub_link_t *head; /* owns nothing: links belong to their streams */
    uint32_t count;   /* links in the list */
    uint32_t len;     /* of topic */
    char topic[];     /* owns: the key of the index entry */
};

/* A stream still reading history (see stream.h): on the index's replay list
 * until caught up. Allocated only while replaying. */
typedef struct replay {
    struct replay *prev, *next; /* the index's replay list */
    req_t *req;                 /* borrows: the subscriber */
    uint64_t next_seq;          /* the next history seq to read */
    uint64_t replayed;          /* events queued so far (--max-replay) */
} replay_t;

struct stream_index {
    struct worker *worker;                       /* borrows: the owner */
    strmap_t topics;                             /* topic -> topic_subs_t* (owned) */
    sub_link_t *wildcard;                        /* streams subscribed to "*" */
    strmap_t tmpl_by_text;                       /* template text -> tmpl_subs_t* (owned) */
    strmap_t prefixes;                           /* literal prefix -> prefix_bucket_t* (owned); not "" */
    prefix_bucket_t *unprefixed;                 /* owns: templates starting with '{' */
    uint32_t prefix_lens[STREAM_PREFIX_MAX + 1]; /* buckets per prefix length */
    size_t num_templates;                        /* interned templates */
    selector_cache_t *cache;                     /* owns: (template, topic) -> match, bounded */
    size_t streams;                              /* open streams on this worker */
    replay_t *replays;                           /* borrows (owned by their streams): replays in progress */
    uint32_t replay_turn;                        /* the turn replay_budget belongs to */
    uint32_t replay_budget;                      /* replay cost this turn may still spend (replay_cost) */
    size_t prefix_lookups, template_matches;     /* counters (stats) */
    upindex_t *upats;                            /* owns: URL patterns, made at the first one (upindex.h) */
    uint32_t match_turn;                         /* the turn match_budget belongs to */
    uint64_t match_budget; /* matching steps (templates, URL patterns) this turn may still spend */
    size_t upat_evals, deferred, budget_spent; /* counters (stats) */
    uint8_t match_spent_logged;                /* this turn's exhaustion was counted */
    int64_t match_last_log_ms;                 /* when the last exhaustion was logged */
    char retry_line[32];                       /* "retry: N\n" (--retry), formatted once */
    size_t retry_len;                          /* 0: no retry hint */
    long retry_ms;                             /* the --retry that retry_line holds */
};

/* Entries of each worker's match cache: 4096 x (32 bytes + the topic copy,
 * at most 512 bytes) bounds it to about 2 MiB per worker in the worst case. */
#define MATCH_CACHE_ENTRIES 4096

/* One subscribe matcher of the token (private updates), by kind. */
typedef enum claim_kind {
    CLAIM_ANY,        /* "*" */
    CLAIM_SELECTOR,   /* classic: a selector (interned when a template) */
    CLAIM_EXACT,      /* v1 exact: byte for byte */
    CLAIM_URLPATTERN, /* v1 URL pattern (interned) */
} claim_kind_t;

typedef struct claim {
    uint8_t kind; /* claim_kind_t */
    union {
        selector_t *sel; /* CLAIM_SELECTOR: owns (or holds a template's ref) */
        upentry_t *up;   /* CLAIM_URLPATTERN: holds one ref */
        char *text;      /* CLAIM_EXACT: owns, NUL-terminated */
    } u;
    uint32_t len; /* CLAIM_EXACT: bytes of text */
} claim_t;

typedef struct stream {
    claim_t *claims;     /* owns: subscribe matchers of the token (private updates); NULL if none */
    subs_handle_t *subs; /* owns: its subscriptions (--subscriptions), or NULL */
    replay_t *replay;    /* owns: non-NULL while reading history */
    uint64_t last_seq;   /* newest seq queued or passed over: an event is sent once */
    int64_t end_ms;      /* monotonic: end of life, 0 = none */
    uint8_t overflowed;  /* a delivery passed --max-pending-bytes */
    uint8_t ending;      /* no more events: closes once output is written */
    uint16_t num_links;
    uint16_t num_claims; /* entries of claims */
    sub_link_t links[];  /* one per distinct selector */
} stream_t;

#define STREAM_DRAIN_GRACE_MS 5000

static const char first_comment[] = ":\n";
static const char heartbeat[] = ":\n";

static const config_t *cfg_of(req_t *r) { return worker_server(r->conn->worker)->cfg; }
static stream_index_t *index_of(req_t *r) { return worker__streams(r->conn->worker); }

stream_index_t *stream_index_new(struct worker *w)
{
    stream_index_t *idx = calloc(1, sizeof(*idx));
    if (!idx)
        return NULL;
    idx->worker = w;
    idx->retry_ms = -2; /* formatted on first use (push_preamble) */
    idx->cache = selector_cache_new(MATCH_CACHE_ENTRIES);
    idx->unprefixed = calloc(1, sizeof(prefix_bucket_t) + 1);
    if (!idx->cache || !idx->unprefixed) {
        selector_cache_free(idx->cache);
        free(idx->unprefixed);
        free(idx);
        return NULL;
    }
    strmap_init(&idx->topics);
    strmap_init(&idx->tmpl_by_text);
    strmap_init(&idx->prefixes);
    return idx;
}

void stream_index_free(stream_index_t *idx)
{
    if (!idx)
        return;
    assert(idx->streams == 0 && idx->topics.count == 0);
    assert(idx->num_templates == 0 && idx->tmpl_by_text.count == 0 && idx->prefixes.count == 0);
    strmap_dispose(&idx->topics);
    strmap_dispose(&idx->tmpl_by_text);
    strmap_dispose(&idx->prefixes);
    selector_cache_free(idx->cache);
    upindex_free(idx->upats);
    free(idx->unprefixed);
    free(idx);
}

size_t stream_scan_topics(struct worker *w, size_t cursor, size_t budget, stream_topic_cb visit, void *ctx)
{
    const strmap_t *m = &worker__streams(w)->topics;
    size_t end = cursor + budget < m->cap ? cursor + budget : m->cap;
    for (size_t i = cursor; i < end; i++) {
        const topic_subs_t *ts = m->slots[i].value;
        if (m->slots[i].key)
            visit(ctx, ts->topic, ts->len, ts->count);
    }
    return end < m->cap ? end : 0;
}

void stream_index_get_stats(const stream_index_t *idx, stream_index_stats_t *out)
{
    out->streams = idx->streams;
    out->templates = idx->num_templates;
    out->prefix_lookups = idx->prefix_lookups;
    out->template_matches = idx->template_matches;
    out->urlpatterns = idx->upats ? upindex_count(idx->upats) : 0;
    out->urlpattern_evals = idx->upat_evals;
    out->deferred = idx->deferred;
    out->budget_spent = idx->budget_spent;
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

/* ---- templates and their prefix buckets ---------------------------------------- */

/* The literal text before a template's first expression, capped. */
static size_t template_prefix_len(const selector_t *sel)
{
    const char *brace = memchr(selector_text(sel), '{', selector_len(sel));
    size_t n = brace ? (size_t)(brace - selector_text(sel)) : selector_len(sel);
    return n > STREAM_PREFIX_MAX ? STREAM_PREFIX_MAX : n;
}

static prefix_bucket_t *bucket_acquire(stream_index_t *idx, const char *prefix, size_t len)
{
    if (len == 0)
        return idx->unprefixed;
    prefix_bucket_t *b = strmap_get(&idx->prefixes, prefix, len);
    if (b)
        return b;
    if (!(b = calloc(1, sizeof(*b) + len + 1)))
        return NULL;
    b->len = (uint32_t)len;
    memcpy(b->prefix, prefix, len);
    if (strmap_try_put(&idx->prefixes, b->prefix, len, b)) {
        free(b);
        return NULL;
    }
    idx->prefix_lens[len]++;
    return b;
}

static void bucket_release_if_empty(stream_index_t *idx, prefix_bucket_t *b)
{
    if (b == idx->unprefixed || b->count)
        return;
    strmap_remove(&idx->prefixes, b->prefix, b->len);
    idx->prefix_lens[b->len]--;
    free(b);
}

static tmpl_subs_t *tmpl_find(stream_index_t *idx, const selector_t *sel)
{
    return strmap_get(&idx->tmpl_by_text, selector_text(sel), selector_len(sel));
}

/* Interns a compiled template (taking `sel`; refs + 1). NULL if out of
 * memory (sel freed). */
static selector_t *tmpl_intern(stream_index_t *idx, selector_t *sel)
{
    tmpl_subs_t *t = tmpl_find(idx, sel);
    if (t) {
        selector_free(sel);
        t->refs++;
        return t->sel;
    }
    prefix_bucket_t *b = bucket_acquire(idx, selector_text(sel), template_prefix_len(sel));
    if (!b || !(t = calloc(1, sizeof(*t))) ||
        strmap_try_put(&idx->tmpl_by_text, selector_text(sel), selector_len(sel), t)) {
        free(t);
        if (b)
            bucket_release_if_empty(idx, b);
        selector_free(sel);
        return NULL;
    }
    t->sel = sel;
    t->refs = 1;
    t->bucket = b;
    t->next = b->head;
    if (b->head)
        b->head->prev = t;
    b->head = t;
    b->count++;
    idx->num_templates++;
    return sel;
}

/* Compiles `s`; a URI template is interned (one per text per worker, refs
 * counted). Release with selector_release. NULL when out of memory. */
static selector_t *selector_acquire(stream_index_t *idx, const char *s, size_t len)
{
    selector_t *sel = selector_try_new(s, len);
    if (!sel || selector_kind(sel) != SELECTOR_TEMPLATE)
        return sel;
    return tmpl_intern(idx, sel);
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
    prefix_bucket_t *b = t->bucket;
    if (t->prev)
        t->prev->next = t->next;
    else
        b->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    b->count--;
    bucket_release_if_empty(idx, b);
    idx->num_templates--;
    selector_free(sel);
    free(t);
}

/* ---- URL patterns ---------------------------------------------------------------- */

/* The worker's URL-pattern index, made at the first pattern: relative
 * patterns and topics resolve against the hub's resource identifier, which
 * cannot change in a running server (--resource-identifier is restart-only). */
static upindex_t *upats_of(stream_index_t *idx, const config_t *cfg)
{
    if (!idx->upats) {
        const char *base = config_resource_identifier(cfg);
        idx->upats = base ? upindex_new(base) : NULL;
    }
    return idx->upats;
}

/* This turn's matching budget (stream.h, "Matching budget"). */
static uint64_t *match_budget(stream_index_t *idx)
{
    uint32_t turn = worker__turn(idx->worker);
    if (idx->match_turn != turn) {
        idx->match_turn = turn;
        idx->match_budget = (uint64_t)worker_server(idx->worker)->cfg->match_turn_budget;
        idx->match_spent_logged = 0;
    }
    return &idx->match_budget;
}

/* A turn's budget ran out: counted, and logged at most once a minute per
 * worker (an attack would otherwise flood the log). */
static void match_budget_spent(stream_index_t *idx)
{
    if (idx->match_spent_logged)
        return;
    idx->match_spent_logged = 1;
    idx->budget_spent++;
    int64_t now = worker__now_ms(idx->worker);
    if (!idx->match_last_log_ms || now - idx->match_last_log_ms >= 60000) {
        idx->match_last_log_ms = now;
        log_info("matching budget of a turn spent (--match-turn-budget): subscribers still to match read "
                 "from history in later turns (%zu deferrals so far on this worker)",
                 idx->deferred);
    }
}

/* Does the pattern match? 1 or 0, through the match cache; -1 when the
 * cache does not know and this turn's budget is spent (not evaluated). */
static int upat_match(stream_index_t *idx, upentry_t *e, const char *topic, size_t len)
{
    int r = selector_cache_lookup(idx->cache, e->id, topic, len);
    if (r >= 0)
        return r;
    uint64_t *budget = match_budget(idx);
    if (*budget == 0) {
        match_budget_spent(idx);
        return -1;
    }
    r = urlpattern_match(e->pat, topic, len);
    /* What this match cost (urlpattern.h: state visits of the last match
     * on this thread), plus one so that even trivial matches count. */
    uint64_t cost = urlpattern__last_steps() + 1;
    *budget = cost >= *budget ? 0 : *budget - cost;
    idx->upat_evals++;
    selector_cache_store(idx->cache, e->id, topic, len, r);
    return r;
}

/* Does the template match? 1 or 0; -1 when this turn's budget is spent and
 * neither the template's DFA nor the cache knows (not evaluated). The same
 * budget as URL patterns: whatever kind of selector a client picks, its
 * matching comes out of one allowance per turn. The budget is charged what
 * the match reports (selector_cache_work: DFA steps, and the NFA states
 * scanned to build new DFA states or to simulate a template that gave its
 * DFA up), so a template that is cheap once warm costs little, and one that
 * is not costs its NFA. Once the budget is spent, a known answer (a DFA
 * walk, a lookup: about what hashing the topic costs) is still given. The
 * template's DFA is this worker's: matched on this thread only. */
static int tmpl_match(stream_index_t *idx, selector_t *sel, const char *topic, size_t len)
{
    uint64_t *budget = match_budget(idx);
    if (*budget == 0) {
        int r = selector_cache_known(idx->cache, sel, topic, len);
        if (r < 0)
            match_budget_spent(idx);
        return r;
    }
    uint64_t work0 = selector_cache_work(idx->cache);
    int r = selector_cache_match(idx->cache, sel, topic, len);
    uint64_t cost = selector_cache_work(idx->cache) - work0;
    *budget = cost >= *budget ? 0 : *budget - cost;
    return r;
}

/* ---- links ------------------------------------------------------------------------ */

/* What one distinct selector of a new stream compiled to. */
typedef struct compiled {
    selector_t *sel; /* classic: owns (a template's: holds one ref); NULL otherwise */
    upentry_t *up;   /* v1 URL pattern: holds one ref; NULL otherwise */
} compiled_t;

/* Hangs `l` on the list for `topic`, creating the entry if needed. A
 * template's or URL pattern's link takes over the reference `c` holds. */
static int link_attach(stream_index_t *idx, sub_link_t *l, const char *topic, size_t len, compiled_t *c)
{
    l->kind = LINK_WILDCARD;
    l->to.owner = NULL;
    if (is_wildcard(topic, len)) {
        list_insert(&idx->wildcard, l);
        return 0;
    }
    if (c->up) {
        l->kind = LINK_URLPAT;
        l->to.upat = c->up;
        c->up = NULL;
        list_insert((sub_link_t **)&l->to.upat->head, l);
        return 0;
    }
    if (c->sel && selector_kind(c->sel) == SELECTOR_TEMPLATE) {
        l->kind = LINK_TEMPLATE;
        l->to.tmpl = tmpl_find(idx, c->sel);
        c->sel = NULL;
        list_insert(&l->to.tmpl->head, l);
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
    l->kind = LINK_TOPIC;
    l->to.owner = ts;
    list_insert(&ts->head, l);
    ts->count++;
    return 0;
}

static void link_detach(stream_index_t *idx, sub_link_t *l)
{
    if (l->kind == LINK_TEMPLATE) {
        list_remove(&l->to.tmpl->head, l);
        selector_release(idx, l->to.tmpl->sel);
        l->kind = LINK_WILDCARD;
        l->to.owner = NULL;
        return;
    }
    if (l->kind == LINK_URLPAT) {
        list_remove((sub_link_t **)&l->to.upat->head, l);
        upindex_release(idx->upats, l->to.upat);
        l->kind = LINK_WILDCARD;
        l->to.owner = NULL;
        return;
    }
    if (l->kind == LINK_WILDCARD) {
        list_remove(&idx->wildcard, l);
        return;
    }
    topic_subs_t *ts = l->to.owner;
    list_remove(&ts->head, l);
    if (--ts->count == 0) {
        strmap_remove(&idx->topics, ts->topic, ts->len);
        free(ts);
    }
}

/* ---- who receives what ---------------------------------------------------------- */

/* Does claim c match the topic? 1, 0, or -1 (matching budget spent). */
static int claim_match(stream_index_t *idx, const claim_t *c, const char *topic, size_t len)
{
    switch ((claim_kind_t)c->kind) {
    case CLAIM_ANY:
        return 1;
    case CLAIM_SELECTOR:
        return tmpl_match(idx, c->u.sel, topic, len);
    case CLAIM_EXACT:
        return c->len == len && memcmp(c->u.text, topic, len) == 0;
    case CLAIM_URLPATTERN:
        return upat_match(idx, c->u.up, topic, len);
    }
    return 0;
}

/* May this stream see `ev` at all? A private update reaches only
 * subscribers whose subscribe claim matches one of its topics (draft-07
 * and draft-08 alike: the union of its topics' audiences). 1, 0, or -1
 * when a URL pattern could not be evaluated this turn. */
static int visible_to(stream_index_t *idx, const stream_t *s, const evbuf_t *ev)
{
    if (!ev->is_private)
        return 1;
    int unknown = 0;
    for (uint16_t i = 0; i < s->num_claims; i++)
        for (unsigned t = 0; t < ev->num_topics; t++) {
            int m = claim_match(idx, &s->claims[i], ev->topics[t], ev->topic_lens[t]);
            if (m > 0)
                return 1;
            unknown |= m < 0;
        }
    return unknown ? -1 : 0;
}

/* Is `ev` one of the stream's topics? (replay; live delivery finds the
 * stream through the index instead) 1, 0, or -1 (budget spent). */
static int wanted_by(stream_index_t *idx, const stream_t *s, const evbuf_t *ev)
{
    int unknown = 0;
    for (uint16_t i = 0; i < s->num_links; i++) {
        const sub_link_t *l = &s->links[i];
        if (l->kind == LINK_WILDCARD)
            return 1; /* "*" */
        for (unsigned t = 0; t < ev->num_topics; t++) {
            int m;
            if (l->kind == LINK_TOPIC)
                m = l->to.owner->len == ev->topic_lens[t] &&
                    !memcmp(l->to.owner->topic, ev->topics[t], l->to.owner->len);
            else if (l->kind == LINK_TEMPLATE)
                m = tmpl_match(idx, l->to.tmpl->sel, ev->topics[t], ev->topic_lens[t]);
            else
                m = upat_match(idx, l->to.upat, ev->topics[t], ev->topic_lens[t]);
            if (m > 0)
                return 1;
            unknown |= m < 0;
        }
    }
    return unknown ? -1 : 0;
}

/* The subscriber fell more than --max-pending-bytes behind. It gets what is
 * already queued (so it can resume right after it with Last-Event-ID), no
 * more events, and is closed once that is written, or after a grace period
 * if it reads nothing. Closing right away would free list nodes that the
 * fan-out may be walking. */
static void on_overflow(req_t *r)
{
    stream_t *s = req_stream(r);
    s->overflowed = 1;
    s->ending = 1;
    s->end_ms = worker__now_ms(r->conn->worker) + STREAM_DRAIN_GRACE_MS;
    atomic_fetch_add_explicit(&worker_stats(r->conn->worker)->slow_disconnects, 1, memory_order_relaxed);
    log_warn("fd %d: subscriber more than --max-pending-bytes behind; disconnecting it", conn_fd(r->conn));
    req_end(r);
}

static void replay_link(stream_index_t *idx, replay_t *rp)
{
    rp->prev = NULL;
    rp->next = idx->replays;
    if (idx->replays)
        idx->replays->prev = rp;
    idx->replays = rp;
}

/* This turn's matching budget is spent and `r` still has to be matched
 * against the event `seq`: it reads it, and what follows, from history in
 * later turns instead (stream.h, "Matching budget"). Nothing is lost and
 * the order holds: a replaying stream takes no live events. */
static void defer(stream_index_t *idx, req_t *r, uint64_t seq)
{
    stream_t *s = req_stream(r);
    if (s->replay || s->ending || seq <= s->last_seq)
        return; /* reading history already, ending, or it has the event */
    replay_t *rp = calloc(1, sizeof(*rp));
    if (!rp) {
        log_warn("fd %d: out of memory while deferring a subscriber; ending its stream", conn_fd(r->conn));
        s->ending = 1;
        req_end(r);
        return;
    }
    rp->req = r;
    rp->next_seq = seq;
    replay_link(idx, rp);
    s->replay = rp;
    idx->deferred++;
}

/* Queues `ev` to one subscriber; returns 1 if it was queued. */
static int deliver(stream_index_t *idx, req_t *r, evbuf_t *ev, wref_t **w)
{
    stream_t *s = req_stream(r);
    if (s->replay || ev->seq <= s->last_seq || s->ending)
        return 0; /* replaying: it will read ev from history */
    int vis = visible_to(idx, s, ev);
    if (vis < 0) {
        defer(idx, r, ev->seq);
        return 0;
    }
    s->last_seq = ev->seq;
    if (!vis)
        return 0;
    if (!*w) {
        *w = wref_new(worker__wrefs(idx->worker), ev);
        (*w)->live =
            1; /* timed when written (worker.h, enqueue_written), worth one copy per worker (wref.h) */
    }
    if (req_try_push_event(r, *w)) {
        on_overflow(r);
        return 0;
    }
    return 1;
}

/* ---- fan-out ---------------------------------------------------------------------- */

static unsigned long deliver_list(stream_index_t *idx, sub_link_t *l, evbuf_t *ev, wref_t **w)
{
    unsigned long n = 0;
    for (; l; l = l->next)
        n += (unsigned long)deliver(idx, l->req, ev, w);
    return n;
}

/* Does any stream of the list take event `seq` live? Those replaying read
 * it from history (with the replay budget), so matching for them now would
 * spend this turn's budget for nothing: deferred hostile templates would
 * otherwise keep costing on every live event. */
static int any_live(const sub_link_t *l, uint64_t seq)
{
    for (; l; l = l->next) {
        const stream_t *s = req_stream(l->req);
        if (!s->replay && !s->ending && seq > s->last_seq)
            return 1;
    }
    return 0;
}

/* The templates of one bucket that match `topic`, each once per event. */
static unsigned long deliver_bucket(stream_index_t *idx, prefix_bucket_t *b, const char *topic, size_t len,
                                    evbuf_t *ev, wref_t **w)
{
    unsigned long n = 0;
    for (tmpl_subs_t *t = b->head; t; t = t->next) {
        if (!t->head || t->matched_seq == ev->seq)
            continue; /* only held by claims, or already delivered for another topic */
        if (!any_live(t->head, ev->seq))
            continue; /* all replaying (they read it from history) or past it: no need to match */
        idx->template_matches++;
        int m = tmpl_match(idx, t->sel, topic, len);
        if (m < 0) {
            for (sub_link_t *l = t->head; l; l = l->next)
                defer(idx, l->req, ev->seq);
        } else if (m) {
            t->matched_seq = ev->seq;
            n += deliver_list(idx, t->head, ev, w);
        }
    }
    return n;
}

/* Templates whose literal prefix `topic` starts with: one lookup per prefix
 * length in use. */
static unsigned long deliver_templates(stream_index_t *idx, const char *topic, size_t len, evbuf_t *ev,
                                       wref_t **w)
{
    unsigned long n = deliver_bucket(idx, idx->unprefixed, topic, len, ev, w);
    size_t max = len < STREAM_PREFIX_MAX ? len : STREAM_PREFIX_MAX;
    for (size_t plen = 1; plen <= max; plen++) {
        if (!idx->prefix_lens[plen])
            continue;
        idx->prefix_lookups++;
        prefix_bucket_t *b = strmap_get(&idx->prefixes, topic, plen);
        if (b)
            n += deliver_bucket(idx, b, topic, len, ev, w);
    }
    return n;
}

/* One URL-pattern candidate of one topic (upindex_candidates' callback). */
typedef struct upat_visit {
    stream_index_t *idx;
    evbuf_t *ev;
    const char *topic;
    size_t len;
    wref_t **w;
    unsigned long delivered;
} upat_visit_t;

static void on_upat_candidate(upentry_t *e, void *ctx)
{
    upat_visit_t *v = ctx;
    if (!e->head || e->matched_seq == v->ev->seq)
        return; /* only held by claims, or already delivered for another topic */
    if (!any_live(e->head, v->ev->seq))
        return; /* all replaying or past it */
    int m = upat_match(v->idx, e, v->topic, v->len);
    if (m < 0) {
        for (sub_link_t *l = e->head; l; l = l->next)
            defer(v->idx, l->req, v->ev->seq);
    } else if (m) {
        e->matched_seq = v->ev->seq;
        v->delivered += deliver_list(v->idx, e->head, v->ev, v->w);
    }
}

void stream_fanout(struct worker *wk, evbuf_t *ev)
{
    stream_index_t *idx = worker__streams(wk);
    wref_t *w = NULL;
    unsigned long delivered = 0; /* one atomic add per event, not per subscriber */
    for (unsigned i = 0; i < ev->num_topics; i++) {
        topic_subs_t *ts = strmap_get(&idx->topics, ev->topics[i], ev->topic_lens[i]);
        if (ts)
            delivered += deliver_list(idx, ts->head, ev, &w);
    }
    delivered += deliver_list(idx, idx->wildcard, ev, &w);
    if (idx->num_templates)
        for (unsigned i = 0; i < ev->num_topics; i++)
            delivered += deliver_templates(idx, ev->topics[i], ev->topic_lens[i], ev, &w);
    if (idx->upats && upindex_count(idx->upats)) {
        for (unsigned i = 0; i < ev->num_topics; i++) {
            upat_visit_t v = {idx, ev, ev->topics[i], ev->topic_lens[i], &w, 0};
            upindex_candidates(idx->upats, ev->topics[i], ev->topic_lens[i], on_upat_candidate, &v);
            delivered += v.delivered;
        }
    }
    if (w && w->refs == 0)
        wref_release_unused(worker__wrefs(wk), w);
    if (delivered)
        atomic_fetch_add_explicit(&worker_stats(wk)->deliveries, delivered, memory_order_relaxed);
}

/* ---- replay ------------------------------------------------------------------------- */

static void replay_unlink(stream_index_t *idx, replay_t *rp)
{
    if (rp->prev)
        rp->prev->next = rp->next;
    else
        idx->replays = rp->next;
    if (rp->next)
        rp->next->prev = rp->prev;
}

/* The stream caught up with history: from now on it takes live events. */
static void replay_done(stream_index_t *idx, req_t *r)
{
    stream_t *s = req_stream(r);
    replay_unlink(idx, s->replay);
    free(s->replay);
    s->replay = NULL;
}

/* This turn's replay budget. */
static uint32_t *replay_budget(stream_index_t *idx)
{
    uint32_t turn = worker__turn(idx->worker);
    if (idx->replay_turn != turn) {
        idx->replay_turn = turn;
        idx->replay_budget = STREAM_REPLAY_BUDGET;
    }
    return &idx->replay_budget;
}

/* What checking events [0, checked) of a batch cost: one per event, plus
 * the matching work their selectors did (a client's templates decide that,
 * up to states x topic length per event and template). */
static uint64_t replay_cost(stream_index_t *idx, size_t checked, uint64_t work0)
{
    return (uint64_t)checked + (selector_cache_work(idx->cache) - work0) / STREAM_REPLAY_MATCH_WORK;
}

/* What replay_batch did with a batch. */
typedef enum batch_result {
    BATCH_DONE,    /* every event was looked at */
    BATCH_STOPPED, /* the stream stopped taking events (overflow, --max-replay) */
    BATCH_PAUSED,  /* this turn's replay or matching budget ran out: the rest next turn */
} batch_result_t;

/* Queues the matching events of one batch, within this turn's budget
 * (charged here); a batch cut short goes on next turn from rp->next_seq. */
static batch_result_t replay_batch(stream_index_t *idx, req_t *r, hub_batch_t *b)
{
    stream_t *s = req_stream(r);
    replay_t *rp = s->replay;
    worker_stats_t *st = worker_stats(idx->worker);
    long max_replay = cfg_of(r)->max_replay;
    uint32_t *budget = replay_budget(idx);
    uint64_t work0 = selector_cache_work(idx->cache);
    batch_result_t res = BATCH_DONE;
    size_t i;
    for (i = 0; i < b->count; i++) {
        evbuf_t *ev = b->events[i];
        if (replay_cost(idx, i, work0) >= *budget) {
            rp->next_seq = ev->seq; /* not checked: next turn starts here */
            res = BATCH_PAUSED;
            break;
        }
        int vis = visible_to(idx, s, ev), want = vis > 0 ? wanted_by(idx, s, ev) : 0;
        if (vis < 0 || want < 0) {
            rp->next_seq = ev->seq; /* the matching budget: this event again, next turn */
            res = BATCH_PAUSED;
            break;
        }
        rp->next_seq = ev->seq + 1;
        s->last_seq = ev->seq;
        if (!vis || !want)
            continue;
        if (max_replay && rp->replayed >= (uint64_t)max_replay) {
            /* The rest resumes by reconnecting: Last-Event-ID names the last
             * event it got, so it goes on right after it. */
            log_debug("fd %d: --max-replay reached; the client resumes by reconnecting", conn_fd(r->conn));
            s->last_seq = ev->seq - 1;
            s->ending = 1;
            req_end(r);
            res = BATCH_STOPPED;
            break;
        }
        wref_t *w = wref_new(worker__wrefs(idx->worker), ev);
        int full = req_try_push_event(r, w);
        if (w->refs == 0)
            wref_release_unused(worker__wrefs(idx->worker), w);
        if (full) {
            on_overflow(r);
            res = BATCH_STOPPED;
            break;
        }
        rp->replayed++;
        atomic_fetch_add_explicit(&st->replayed, 1, memory_order_relaxed);
    }
    uint64_t cost = replay_cost(idx, i, work0);
    *budget = cost >= *budget ? 0 : *budget - (uint32_t)cost;
    return res;
}

/* Handles one batch read for `r`: queues it, then either finishes the
 * replay (caught up), ends the stream (history lost the events it needs,
 * or it stopped taking events), or leaves it for another batch (the batch
 * was full, or a budget ran out). */
static void replay_consume(stream_index_t *idx, req_t *r, hub_batch_t *b)
{
    stream_t *s = req_stream(r);
    batch_result_t res = replay_batch(idx, r, b);
    int stopped = res == BATCH_STOPPED;
    int caught_up = res == BATCH_DONE && b->count < b->max;
    if (b->gap && !stopped) {
        /* Events it needed were evicted before it read them (a burst larger
         * than --history within one turn): end the stream, so the client
         * reconnects and learns from Last-Event-ID that it missed some. */
        log_warn("fd %d: history moved past a replaying subscriber; ending its stream", conn_fd(r->conn));
        s->ending = 1;
        req_end(r);
        stopped = 1;
    }
    if (caught_up || stopped) {
        if (caught_up && !stopped && s->last_seq < b->newest)
            s->last_seq = b->newest; /* nothing past it in history for this stream */
        replay_done(idx, r);
    }
    hub_batch_release(b);
}

/* One batch for one replaying stream, within the budget. */
static void replay_step(stream_index_t *idx, req_t *r)
{
    uint32_t *budget = replay_budget(idx);
    evbuf_t *events[STREAM_REPLAY_BATCH];
    hub_batch_t b = {events, *budget < STREAM_REPLAY_BATCH ? *budget : STREAM_REPLAY_BATCH, 0, 0, 0};
    if (b.max == 0)
        return;
    hub_read(worker_server(idx->worker)->hub, req_stream(r)->replay->next_seq, &b);
    replay_consume(idx, r, &b); /* charges the budget */
}

int stream_replay_pending(const stream_index_t *idx) { return idx->replays != NULL; }

void stream_replay_some(struct worker *w)
{
    stream_index_t *idx = worker__streams(w);
    /* Round robin: each replaying stream gets a batch while the budget lasts;
     * the list's order rotates so nobody waits forever behind a long one. */
    replay_t *rp = idx->replays;
    while (rp && *replay_budget(idx) > 0) {
        replay_t *next = rp->next;
        replay_step(idx, rp->req);
        rp = next;
    }
}

/* ---- subscribing -------------------------------------------------------------- */

/* Distinct selectors only (same type and text), so one subscriber sits at
 * most once per list. */
static size_t count_distinct(const stream_request_t *sr, uint8_t *dup)
{
    size_t n = 0;
    for (size_t i = 0; i < sr->num_selectors; i++) {
        dup[i] = 0;
        for (size_t j = 0; j < i && !dup[i]; j++)
            dup[i] = sr->selector_types[i] == sr->selector_types[j] &&
                     sr->selector_lens[i] == sr->selector_lens[j] &&
                     memcmp(sr->selectors[i], sr->selectors[j], sr->selector_lens[i]) == 0;
        n += !dup[i];
    }
    return n;
}

static int64_t lifetime_deadline(const config_t *cfg, int64_t now)
{
    if (!cfg->max_lifetime_s)
        return 0;
    /* Jitter of +-20 %, so streams opened together do not end together. */
    int64_t base = (int64_t)cfg->max_lifetime_s * 1000;
    return now + base * 8 / 10 + (int64_t)(random() % (base * 4 / 10 + 1));
}

/* When the stream must end: --max-lifetime, or sooner when its token expires
 * (the client reconnects with a fresh token; until then it gets nothing its
 * expired token would no longer allow; draft-08 makes it a MUST). */
static int64_t stream_deadline(const config_t *cfg, const stream_request_t *sr, int64_t now_mono)
{
    int64_t end = lifetime_deadline(cfg, now_mono);
    if (sr->grant && sr->grant->exp) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t left_ms = sr->grant->exp * 1000 - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        int64_t at = now_mono + (left_ms > 0 ? left_ms : 0);
        if (!end || at < end)
            end = at;
    }
    return end;
}

static void release_compiled(stream_index_t *idx, compiled_t *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        selector_release(idx, v[i].sel);
        if (v[i].up)
            upindex_release(idx->upats, v[i].up);
        v[i] = (compiled_t){NULL, NULL};
    }
}

static void release_claims(stream_index_t *idx, claim_t *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        if (c[i].kind == CLAIM_SELECTOR)
            selector_release(idx, c[i].u.sel);
        else if (c[i].kind == CLAIM_URLPATTERN)
            upindex_release(idx->upats, c[i].u.up);
        else if (c[i].kind == CLAIM_EXACT)
            free(c[i].u.text);
    }
    free(c);
}

/* Compiles a URL pattern the client sent and interns it, within the
 * limits. Returns NULL, or why the request is refused (*status). */
static const char *compile_urlpattern(stream_index_t *idx, const config_t *cfg, const char *text, size_t len,
                                      size_t *count, size_t *fresh, upentry_t **out, int *status)
{
    upindex_t *x = upats_of(idx, cfg);
    *status = 503;
    if (!x)
        return "out of memory (or no resource identifier for URL patterns)";
    *status = 400;
    if (++*count > (size_t)cfg->max_urlpatterns_per_subscriber)
        return "too many URL patterns in one subscription (--max-urlpatterns-per-subscriber)";
    upentry_t *e = upindex_find(x, text, len);
    if (e) {
        upindex_ref(e);
        *out = e;
        return NULL;
    }
    if (upindex_count(x) + ++*fresh > (size_t)cfg->max_urlpatterns_per_worker) {
        *status = 503;
        return "this worker holds too many distinct URL patterns (--max-urlpatterns-per-worker); retry later";
    }
    const char *why = NULL;
    urlpattern_t *p = urlpattern_try_new(text, len, upindex_base(x), &why);
    if (!p)
        return why && !strcmp(why, "out of memory") ? (*status = 503, why)
                                                    : "invalid URL pattern (match_urlpattern)";
    if (cfg->max_urlpattern_states && urlpattern_states(p) > cfg->max_urlpattern_states) {
        urlpattern_free(p);
        return "a URL pattern is too complex (--max-urlpattern-states)";
    }
    *status = 503;
    if (!(*out = upindex_intern(x, p)))
        return "out of memory";
    return NULL;
}

/* Compiles the distinct selectors (c[k]) and checks the limits on what an
 * untrusted client may make this worker match. Returns NULL, or why the
 * request is refused (*status: 400 or 503). */
static const char *compile_selectors(stream_index_t *idx, const config_t *cfg, const stream_request_t *sr,
                                     const uint8_t *dup, compiled_t *c, int *status)
{
    size_t templates = 0, new_templates = 0, patterns = 0, new_patterns = 0;
    *status = 503;
    for (size_t i = 0, k = 0; i < sr->num_selectors; i++) {
        if (dup[i])
            continue;
        const char *text = sr->selectors[i];
        size_t len = sr->selector_lens[i];
        grant_match_type_t type = (grant_match_type_t)sr->selector_types[i];
        if (is_wildcard(text, len) || type == GRANT_MATCH_EXACT) {
            k++; /* the topic index or the "*" list: nothing to compile */
            continue;
        }
        if (type == GRANT_MATCH_URLPATTERN) {
            const char *why =
                compile_urlpattern(idx, cfg, text, len, &patterns, &new_patterns, &c[k].up, status);
            if (why)
                return why;
            k++;
            continue;
        }
        selector_t *sel = selector_try_new(text, len);
        *status = 503;
        if (!sel)
            return "out of memory";
        if (selector_kind(sel) == SELECTOR_TEMPLATE) {
            *status = 400;
            if (cfg->max_template_states && selector_num_states(sel) > cfg->max_template_states) {
                selector_free(sel);
                return "a URI template is too complex (--max-template-states)";
            }
            if (++templates > (size_t)cfg->max_templates_per_subscriber) {
                selector_free(sel);
                return "too many URI templates in one subscription (--max-templates-per-subscriber)";
            }
            if (!tmpl_find(idx, sel) &&
                idx->num_templates + ++new_templates > (size_t)cfg->max_templates_per_worker) {
                selector_free(sel);
                *status = 503;
                return "this worker holds too many distinct URI templates (--max-templates-per-worker); "
                       "retry later";
            }
            *status = 503;
            if (!(sel = tmpl_intern(idx, sel)))
                return "out of memory";
        }
        c[k++].sel = sel;
    }
    return NULL;
}

/* The token's subscribe matchers, compiled for visibility checks. Trusted
 * (a verified token), bounded by grant.h's limits. NULL with n = 0 when
 * there are none; *oom on failure. */
static claim_t *compile_claims(stream_index_t *idx, const config_t *cfg, const grant_t *g, size_t *n,
                               int *oom)
{
    *n = 0;
    *oom = 0;
    if (!g || !g->num_subscribe)
        return NULL;
    claim_t *c = calloc(g->num_subscribe, sizeof(*c));
    if (!c) {
        *oom = 1;
        return NULL;
    }
    for (; *n < g->num_subscribe; ++*n) {
        const grant_matcher_t *m = &g->subscribe[*n];
        claim_t *o = &c[*n];
        if (m->wildcard) {
            o->kind = CLAIM_ANY;
        } else if (m->type == GRANT_MATCH_TEMPLATE_OR_EXACT) {
            o->kind = CLAIM_SELECTOR;
            if (!(o->u.sel = selector_acquire(idx, m->text, m->len)))
                break;
        } else if (m->type == GRANT_MATCH_EXACT) {
            o->kind = CLAIM_EXACT;
            o->len = (uint32_t)m->len;
            if (!(o->u.text = strndup(m->text, m->len)))
                break;
        } else {
            upindex_t *x = upats_of(idx, cfg);
            upentry_t *e = x ? upindex_find(x, m->text, m->len) : NULL;
            urlpattern_t *p = x && !e ? urlpattern_try_new(m->text, m->len, upindex_base(x), NULL) : NULL;
            if (e)
                upindex_ref(e);
            else if (!p || !(e = upindex_intern(x, p)))
                break; /* grant.c compiled it once: only memory fails here */
            o->kind = CLAIM_URLPATTERN;
            o->u.up = e;
        }
    }
    if (*n < g->num_subscribe) {
        c[*n].kind = CLAIM_ANY; /* the failed slot holds nothing */
        release_claims(idx, c, *n);
        *n = 0;
        *oom = 1;
        return NULL;
    }
    return c;
}

/* --subscriptions: lists the stream's distinct selectors and publishes
 * their "active" events (after the head is queued, so the subscriber's own
 * stream is already in the index when they fan out). Each subscriber's
 * dialect decides the shape of its own subscription events. */
static void register_subscriptions(req_t *r, const stream_request_t *sr, const uint8_t *dup, size_t n)
{
    struct subs *reg = worker_server(r->conn->worker)->subs;
    if (!reg)
        return;
    subs_spec_t spec[n ? n : 1];
    const char *classic_payload = sr->grant && !sr->v1 ? sr->grant->payload : NULL;
    for (size_t i = 0, k = 0; i < sr->num_selectors; i++) {
        if (!dup[i])
            spec[k++] = (subs_spec_t){sr->selectors[i], sr->selector_lens[i], sr->selector_types[i],
                                      sr->payloads ? sr->payloads[i] : classic_payload};
    }
    if (!(req_stream(r)->subs = subs_add(reg, sr->v1, spec, n, sr->anonymous)))
        log_warn("fd %d: out of memory: the subscription is not listed", conn_fd(r->conn));
}

/* The response head: CORS, the reconnection field, no caching. The classic
 * dialect answers Last-Event-ID (what courant always did); draft-08 names
 * it Mercure-Last-Event-ID, and requires it whenever a last event id was
 * sent: the id of the event before the first one sent, or "earliest". */
static void head_fields(resp_hdrs_t *h, const stream_request_t *sr, const char *last_event_id)
{
    resp_hdrs_init(h);
    resp_hdrs_add(h, "Cache-Control", "no-cache");
    resp_hdrs_add(h, "X-Accel-Buffering", "no");
    if (last_event_id)
        resp_hdrs_add(h, sr->v1 ? "Mercure-Last-Event-ID" : "Last-Event-ID", last_event_id);
    if (sr->hdrs)
        resp_hdrs_append(h, sr->hdrs);
}

/* Queues the first comment and the retry hint (a client's first bytes).
 * The retry field has no blank line after it: a parser applies it when it
 * reads the line, and the blank line would end a message of its own, which
 * some client libraries (fetch-event-source, extended-eventsource,
 * donovanhide/eventsource) hand to the application as an empty event. The
 * next event's lines simply follow it. */
static void push_preamble(req_t *r, stream_index_t *idx)
{
    long retry = cfg_of(r)->retry_ms;
    if (retry != idx->retry_ms) { /* first use, or a reload changed --retry */
        idx->retry_ms = retry;
        idx->retry_len =
            retry < 0 ? 0 : (size_t)snprintf(idx->retry_line, sizeof(idx->retry_line), "retry: %ld\n", retry);
    }
    req_push_bytes(r, first_comment, sizeof(first_comment) - 1, 0);
    if (idx->retry_len)
        req_push_bytes(r, idx->retry_line, idx->retry_len, 0);
}

void stream_start(req_t *r, const stream_request_t *sr)
{
    worker_t *w = r->conn->worker;
    stream_index_t *idx = worker__streams(w);
    const config_t *cfg = worker_server(w)->cfg;
    uint8_t dup[sr->num_selectors ? sr->num_selectors : 1];
    size_t n = count_distinct(sr, dup), num_claims = 0;

    stream_t *s = calloc(1, sizeof(*s) + n * sizeof(sub_link_t));
    compiled_t *comp = calloc(n ? n : 1, sizeof(*comp));
    replay_t *rp = calloc(1, sizeof(*rp));
    claim_t *claims = NULL;
    int status = 503, oom = 0;
    const char *why =
        !s || !comp || !rp ? "out of memory" : compile_selectors(idx, cfg, sr, dup, comp, &status);
    if (!why && (claims = compile_claims(idx, cfg, sr->grant, &num_claims, &oom), oom))
        why = "out of memory";
    evbuf_t *events[STREAM_REPLAY_BATCH];
    uint32_t *budget = replay_budget(idx);
    hub_batch_t batch = {events, *budget < STREAM_REPLAY_BATCH ? *budget : STREAM_REPLAY_BATCH, 0, 0, 0};
    char *last_event_id = NULL;
    uint64_t from = 0;
    if (!why && hub_try_resume(worker_server(w)->hub, sr->last_event_id, sr->last_event_id_len, &from,
                               &last_event_id, &batch))
        why = "out of memory";
    resp_hdrs_t h;
    if (!why) {
        head_fields(&h, sr, last_event_id);
        if (req_try_stream_begin(r, &h))
            why = "out of memory";
    }
    free(last_event_id);
    if (why) {
        release_compiled(idx, comp, n);
        release_claims(idx, claims, num_claims);
        hub_batch_release(&batch);
        free(comp);
        free(rp);
        free(s);
        req_refuse(r, status == 400 ? REFUSE_BAD_REQUEST : REFUSE_UNAVAILABLE, status, sr->hdrs, why);
        return;
    }
    s->claims = claims;
    s->num_claims = (uint16_t)num_claims;
    s->end_ms = stream_deadline(cfg, sr, worker__now_ms(w));
    s->last_seq = from - 1;
    for (size_t i = 0, k = 0; i < sr->num_selectors; i++) {
        if (dup[i])
            continue;
        s->links[k].req = r;
        if (link_attach(idx, &s->links[k], sr->selectors[i], sr->selector_lens[i], &comp[k]))
            break; /* out of memory: the stream gets fewer topics; logged below */
        s->num_links = (uint16_t)++k;
    }
    release_compiled(idx, comp, n); /* those not taken over by a link */
    free(comp);
    if (s->num_links < n)
        log_warn("fd %d: out of memory while subscribing; some selectors ignored", conn_fd(r->conn));
    req_set_stream(r, s);
    rp->req = r;
    rp->next_seq = from;
    replay_link(idx, rp);
    s->replay = rp;
    idx->streams++;
    atomic_fetch_add_explicit(&worker_stats(w)->streams_open, 1, memory_order_relaxed);
    push_preamble(r, idx);
    replay_consume(idx, r, &batch); /* charges the budget */
    register_subscriptions(r, sr, dup, n);
    log_debug("fd %d subscribed (%s): %zu selectors, %zu claims", conn_fd(r->conn), sr->v1 ? "v1" : "classic",
              n, num_claims);
}

void stream_detach(req_t *r)
{
    stream_t *s = req_stream(r);
    stream_index_t *idx = index_of(r);
    if (s->replay)
        replay_done(idx, r);
    for (uint16_t i = 0; i < s->num_links; i++)
        link_detach(idx, &s->links[i]);
    release_claims(idx, s->claims, s->num_claims);
    if (s->subs) {
        server_t *srv = worker_server(r->conn->worker);
        subs_remove(srv->subs, s->subs, atomic_load(&srv->stopping));
    }
    idx->streams--;
    atomic_fetch_sub_explicit(&worker_stats(r->conn->worker)->streams_open, 1, memory_order_relaxed);
    free(s);
    req_set_stream(r, NULL);
}

/* ---- timers --------------------------------------------------------------------- */

static void stream_end(req_t *r)
{
    req_stream(r)->ending = 1;
    req_end(r);
}

void stream_on_tick(req_t *r, int64_t now_ms)
{
    stream_t *s = req_stream(r);
    if (s->end_ms && now_ms >= s->end_ms) {
        if (s->ending)
            req_reset(r, "subscriber did not read its pending output in time");
        else
            stream_end(r);
        return;
    }
    int hb = cfg_of(r)->heartbeat_s;
    if (hb && !s->ending && req_pending(r) == 0 && now_ms - r->conn->last_write_ms >= (int64_t)hb * 1000)
        req_push_bytes(r, heartbeat, sizeof(heartbeat) - 1, 0);
}

void stream_schedule_end(req_t *r, int64_t now_ms, int spread_ms)
{
    stream_t *s = req_stream(r);
    if (s->ending)
        return;
    int64_t at = now_ms + (spread_ms > 0 ? random() % spread_ms : 0);
    if (!s->end_ms || at < s->end_ms)
        s->end_ms = at;
}
