/*
 * subs.c - see subs.h.
 *
 * Documents are built with libjansson (the same library that reads token
 * claims), so every string is escaped correctly whatever the topic holds.
 */
#include "subs.h"

#include "grant.h"
#include "id.h"
#include "log.h"
#include "ratelimit.h"

#include <assert.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#define SUBS_PREFIX "/.well-known/mercure/subscriptions"
#define JSONLD_CONTEXT "https://mercure.rocks/"

typedef struct entry {
    struct entry *prev, *next;       /* the registry's list; guarded by subs.lock */
    char *id;                        /* owns: the subscription's id (subs.h), its events' topic */
    char *topic;                     /* owns: the selector / matcher, NUL-terminated */
    const char *match_type;          /* static: v1 "exact" or "urlpattern"; NULL for classic */
    json_t *payload;                 /* owns a reference: the payload, or NULL */
    const struct subs_handle *owner; /* borrows: the handle whose array holds this entry */
} entry_t;

struct subs_handle {
    atomic_uint refs; /* the stream's, plus one per render in progress */
    int anonymous;    /* its subscriber presented no token: its events are rate-limited */
    int v1;           /* the subscriber's dialect: the shape of its documents and events */
    char subscriber[ID_UUID_URN_LEN + 1];
    size_t n;
    entry_t entries[]; /* one per distinct selector */
};

struct subs {
    pthread_mutex_t lock; /* guards head (held to link, unlink, or copy pointers: never to render) */
    entry_t *head;
    hub_t *hub;               /* borrows: lastEventID */
    journal_t *journal;       /* borrows: where subscription events go */
    ratelimit_t *anon_events; /* owns: the budget of anonymous subscribers' events, or NULL */
    atomic_ulong dropped;     /* anonymous subscribers' events not published (over budget) */
};

subs_t *subs_new(hub_t *hub, journal_t *journal, long anon_rate)
{
    subs_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    s->hub = hub;
    s->journal = journal;
    /* One global bucket: whatever the number of addresses an attacker has,
     * anonymous connects and disconnects push at most this many events a
     * second into history. */
    if (anon_rate > 0 &&
        !(s->anon_events = ratelimit_new((uint32_t)anon_rate, 1000, (uint32_t)anon_rate * 5, 1))) {
        free(s);
        return NULL;
    }
    return s;
}

void subs_free(subs_t *s)
{
    if (!s)
        return;
    ratelimit_free(s->anon_events);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

unsigned long subs_dropped_events(subs_t *s) { return atomic_load(&s->dropped); }

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* May this handle's subscription event be published now? */
static int within_budget(subs_t *s, const subs_handle_t *h)
{
    if (!h->anonymous || !s->anon_events)
        return 1;
    if (ratelimit_try_take(s->anon_events, "a", 1, (uint64_t)monotonic_ms(), NULL) == RATELIMIT_OK)
        return 1;
    atomic_fetch_add(&s->dropped, 1);
    return 0;
}

size_t subs_pct_encode(const char *in, size_t len, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
            ch == '.' || ch == '_' || ch == '~') {
            out[n++] = (char)ch;
        } else {
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    out[n] = 0;
    return n;
}

/* The subscription document of one entry, in its subscriber's dialect. */
static json_t *entry_doc(const subs_handle_t *h, const entry_t *e, int active)
{
    json_t *d =
        h->v1 ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "id", e->id, "type", "subscription", "match_type",
                          e->match_type, "match", e->topic, "subscriber", h->subscriber, "active", active)
              : json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "@context", JSONLD_CONTEXT, "id", e->id, "type",
                          "Subscription", "topic", e->topic, "subscriber", h->subscriber, "active", active);
    if (d && e->payload)
        json_object_set(d, "payload", e->payload);
    return d;
}

static void publish_entry(subs_t *s, const subs_handle_t *h, const entry_t *e, int active)
{
    if (!within_budget(s, h))
        return;
    json_t *d = entry_doc(h, e, active);
    char *data = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    if (!data) {
        log_warn("out of memory: a subscription event was not published");
        return;
    }
    char id[ID_UUID_URN_LEN + 1];
    id_new_uuid7(id);
    const char *topics[1] = {e->id};
    size_t lens[1] = {strlen(e->id)};
    evbuf_spec_t spec = {
        .id = id,
        .id_len = strlen(id),
        .type = h->v1 ? "mercure" : NULL, /* draft-08: the reserved type of hub events */
        .type_len = h->v1 ? 7 : 0,
        .data = data,
        .data_len = strlen(data),
        .retry = -1,
        .topics = topics,
        .topic_lens = lens,
        .num_topics = 1,
        .is_private = 1,
    };
    evbuf_t *ev = evbuf_try_new(&spec);
    free(data);
    if (!ev) {
        log_warn("out of memory: a subscription event was not published");
        return;
    }
    const char *why;
    if (journal_try_submit(s->journal, ev, NULL, NULL, 0, &why) < 0) {
        log_debug("a subscription event was not published: %s", why);
        evbuf_unref(ev);
    }
}

/* SUBS_PREFIX ["/" match_type] "/" enc(topic) "/" enc(subscriber) */
static char *make_id(const char *match_type, const char *topic, size_t len, const char *subscriber)
{
    size_t sl = strlen(subscriber), tl = match_type ? strlen(match_type) + 1 : 0;
    char *id = malloc(sizeof(SUBS_PREFIX) + 2 + tl + 3 * (len + sl));
    if (!id)
        return NULL;
    size_t n = sizeof(SUBS_PREFIX) - 1;
    memcpy(id, SUBS_PREFIX, n);
    if (match_type) {
        id[n++] = '/';
        memcpy(id + n, match_type, tl - 1);
        n += tl - 1;
    }
    id[n++] = '/';
    n += subs_pct_encode(topic, len, id + n);
    id[n++] = '/';
    subs_pct_encode(subscriber, sl, id + n);
    return id;
}

static void free_handle(subs_handle_t *h);

static void handle_unref(subs_handle_t *h)
{
    if (atomic_fetch_sub(&h->refs, 1) == 1)
        free_handle(h);
}

static void free_handle(subs_handle_t *h)
{
    assert(atomic_load(&h->refs) == 0);
    for (size_t i = 0; i < h->n; i++) {
        free(h->entries[i].id);
        free(h->entries[i].topic);
        json_decref(h->entries[i].payload);
    }
    free(h);
}

subs_handle_t *subs_add(subs_t *s, int v1, const subs_spec_t *specs, size_t n, int anonymous)
{
    subs_handle_t *h = calloc(1, sizeof(*h) + n * sizeof(entry_t));
    if (!h)
        return NULL;
    atomic_init(&h->refs, 1);
    h->anonymous = anonymous;
    h->v1 = v1;
    id_new_uuid7(h->subscriber);
    for (size_t i = 0; i < n; i++, h->n++) {
        entry_t *e = &h->entries[i];
        e->match_type = !v1 ? NULL : specs[i].match_type == GRANT_MATCH_URLPATTERN ? "urlpattern" : "exact";
        e->id = make_id(e->match_type, specs[i].match, specs[i].len, h->subscriber);
        e->topic = strndup(specs[i].match, specs[i].len);
        e->owner = h;
        /* A payload shared by entries (classic: one per token) is parsed once per entry: a few,
         * small (the token is at most 8 KiB). */
        if (specs[i].payload)
            e->payload = json_loads(specs[i].payload, JSON_DECODE_ANY, NULL);
        if (!e->id || !e->topic || (specs[i].payload && !e->payload)) {
            h->n++;
            handle_unref(h);
            return NULL;
        }
    }
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < h->n; i++) {
        entry_t *e = &h->entries[i];
        e->prev = NULL;
        e->next = s->head;
        if (s->head)
            s->head->prev = e;
        s->head = e;
    }
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < h->n; i++)
        publish_entry(s, h, &h->entries[i], 1);
    return h;
}

void subs_remove(subs_t *s, subs_handle_t *h, int quiet)
{
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < h->n; i++) {
        entry_t *e = &h->entries[i];
        if (e->prev)
            e->prev->next = e->next;
        else
            s->head = e->next;
        if (e->next)
            e->next->prev = e->prev;
    }
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; !quiet && i < h->n; i++)
        publish_entry(s, h, &h->entries[i], 0);
    handle_unref(h); /* a render in progress may still hold it */
}

/* The entries a render shows, copied under the lock (pointers, and one
 * reference on each owner so none is freed meanwhile): the JSON is built
 * after the lock is released. */
typedef struct picked {
    const entry_t **v; /* borrows entries whose owners hold a reference for us */
    size_t n, cap;
} picked_t;

/* Does entry e answer q? Its dialect, and the path's parts. */
static int wanted(const entry_t *e, const subs_query_t *q)
{
    if (e->owner->v1 != q->v1)
        return 0;
    if (q->match_type && (!e->match_type || strcmp(q->match_type, e->match_type)))
        return 0;
    if (q->match && strcmp(q->match, e->topic))
        return 0;
    return !q->subscriber || !strcmp(q->subscriber, e->owner->subscriber);
}

static int pick(subs_t *s, const subs_query_t *q, picked_t *p)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    for (entry_t *e = s->head; e; e = e->next) {
        if (!wanted(e, q))
            continue;
        if (p->n == p->cap) {
            size_t ncap = p->cap ? p->cap * 2 : 64;
            const entry_t **nv = realloc(p->v, ncap * sizeof(*nv));
            if (!nv) {
                rc = -1;
                break;
            }
            p->v = nv;
            p->cap = ncap;
        }
        atomic_fetch_add(&((subs_handle_t *)e->owner)->refs, 1);
        p->v[p->n++] = e;
        if (q->subscriber)
            break;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void picked_dispose(picked_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        handle_unref((subs_handle_t *)p->v[i]->owner);
    free(p->v);
}

/* A collection: classic JSON-LD (with lastEventID), or v1 JSON whose id is
 * the URL used to retrieve it (draft-08, "Subscription API"). */
static json_t *collection_doc(const subs_query_t *q, json_t *list, const char *last)
{
    if (q->v1)
        return json_pack("{s:s, s:s, s:o}", "id", q->path ? q->path : SUBS_PREFIX, "type", "subscriptions",
                         "subscriptions", list);
    char id[sizeof(SUBS_PREFIX) + 3 * 2048 + 2];
    size_t n = sizeof(SUBS_PREFIX) - 1;
    memcpy(id, SUBS_PREFIX, n + 1);
    if (q->match && strlen(q->match) <= 2048) {
        id[n++] = '/';
        subs_pct_encode(q->match, strlen(q->match), id + n);
    }
    return json_pack("{s:s, s:s, s:s, s:o, s:s}", "@context", JSONLD_CONTEXT, "id", id, "type",
                     "Subscriptions", "subscriptions", list, "lastEventID", last);
}

char *subs_try_render(subs_t *s, const subs_query_t *q, int *not_found, char **last_event_id)
{
    *not_found = 0;
    char *last = *last_event_id = hub_try_last_event_id(s->hub);
    json_t *list = json_array();
    picked_t p = {0};
    if (!last || !list || pick(s, q, &p)) {
        json_decref(list);
        picked_dispose(&p);
        return NULL;
    }
    json_t *doc = NULL;
    if (q->subscriber) {
        json_decref(list);
        if (!p.n) {
            *not_found = 1;
            return NULL;
        }
        doc = entry_doc(p.v[0]->owner, p.v[0], 1);
        if (doc && !q->v1)
            json_object_set_new(doc, "lastEventID", json_string(last));
    } else {
        for (size_t i = 0; i < p.n; i++)
            json_array_append_new(list, entry_doc(p.v[i]->owner, p.v[i], 1));
        doc = collection_doc(q, list, last);
    }
    picked_dispose(&p);
    char *out = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return out;
}
