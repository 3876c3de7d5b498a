/*
 * hub.c - see hub.h for the design; this file holds the history ring.
 *
 *   ring: [ .. | oldest | ... | newest | .. ]   capacity = --history
 *              ^head            ^(head + count - 1) % cap
 *   seq of ring[(head + k) % cap] == first_seq + k
 *
 * A reused id chains its events through dup_next[] in seq order: by_id
 * points at the oldest (resume continues after it: may resend, never
 * skips), by_id_newest at the newest (so appending costs O(1)). Eviction is
 * FIFO, so the evicted event is always the oldest of its id, and the index
 * moves on to the next one in its chain.
 *
 * So an event found through the id index is located in the ring by
 * arithmetic on its seq: O(1), no scan.
 */
#include "hub.h"

#include "strmap.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct hub {
    pthread_mutex_t lock;  /* guards everything below */
    uint64_t last_seq;     /* seq of the newest published event, 0 if none */
    evbuf_t **ring;        /* owns: one reference per held event */
    size_t cap;            /* ring capacity (--history) */
    size_t head;           /* index of the oldest event */
    size_t count;          /* events held */
    uint64_t first_seq;    /* seq of ring[head] when count > 0 */
    int64_t max_age_ms;    /* 0 = no age limit */
    strmap_t by_id;        /* id -> OLDEST event with that id in the ring (borrowed) */
    strmap_t by_id_newest; /* id -> NEWEST event with that id, when it is reused */
    uint64_t *dup_next;    /* owns, parallel to ring: seq of the next event with
                               the same id, 0 if none (ids are rarely reused) */
    hub_sink_t *sinks;     /* owns the array: set once at start */
    int num_sinks;
    uint64_t published;
};

hub_t *hub_new(long history, int history_age_s)
{
    hub_t *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    pthread_mutex_init(&h->lock, NULL);
    h->cap = history > 0 ? (size_t)history : 0;
    if (h->cap && (!(h->ring = calloc(h->cap, sizeof(*h->ring))) ||
                   !(h->dup_next = calloc(h->cap, sizeof(*h->dup_next))))) {
        free(h->ring);
        free(h);
        return NULL;
    }
    h->max_age_ms = (int64_t)history_age_s * 1000;
    strmap_init(&h->by_id);
    strmap_init(&h->by_id_newest);
    return h;
}

static void evict_oldest(hub_t *h)
{
    evbuf_t *old = h->ring[h->head];
    uint64_t next = h->dup_next[h->head];
    if (strmap_get(&h->by_id, old->id, old->id_len) == old) {
        if (next) {
            /* the id lives on in a newer event: the index moves to it */
            evbuf_t *n = h->ring[(h->head + (size_t)(next - h->first_seq)) % h->cap];
            (void)!strmap_try_put(&h->by_id, n->id, n->id_len, n); /* replaces: no growth */
        } else {
            strmap_remove(&h->by_id, old->id, old->id_len);
        }
    }
    if (strmap_get(&h->by_id_newest, old->id, old->id_len) == old)
        strmap_remove(&h->by_id_newest, old->id, old->id_len);
    h->ring[h->head] = NULL;
    h->dup_next[h->head] = 0;
    h->head = (h->head + 1) % h->cap;
    h->count--;
    h->first_seq++;
    evbuf_unref(old);
}

void hub_free(hub_t *h)
{
    if (!h)
        return;
    while (h->count)
        evict_oldest(h);
    strmap_dispose(&h->by_id);
    strmap_dispose(&h->by_id_newest);
    free(h->sinks);
    free(h->ring);
    free(h->dup_next);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

#define HUB_MAX_SINKS 256 /* --workers' bound */

int hub_try_set_sinks(hub_t *h, const hub_sink_t *sinks, int n)
{
    if (n < 0 || n > HUB_MAX_SINKS)
        return -1;
    hub_sink_t *copy = n ? malloc((size_t)n * sizeof(*copy)) : NULL;
    if (n && !copy)
        return -1;
    if (n)
        memcpy(copy, sinks, (size_t)n * sizeof(*copy));
    free(h->sinks);
    h->sinks = copy;
    h->num_sinks = n;
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Evicts by age; bounded per call so one publish never pays for a huge purge
 * (the periodic hub_trim finishes the job). */
static void trim_by_age(hub_t *h, size_t budget)
{
    if (!h->max_age_ms)
        return;
    int64_t cutoff = now_ms() - h->max_age_ms;
    while (h->count && budget-- && h->ring[h->head]->published_ms < cutoff)
        evict_oldest(h);
}

static void history_append(hub_t *h, evbuf_t *ev)
{
    if (!h->cap)
        return;
    if (h->count == h->cap)
        evict_oldest(h);
    if (h->count == 0)
        h->first_seq = ev->seq;
    evbuf_ref(ev);
    size_t slot = (h->head + h->count) % h->cap;
    h->ring[slot] = ev;
    h->dup_next[slot] = 0;
    h->count++;
    /* If an index cannot grow, resume by this id fails over to "unknown id"
     * (the client is told through Last-Event-ID); delivery is unharmed. */
    evbuf_t *oldest = strmap_get(&h->by_id, ev->id, ev->id_len);
    if (!oldest) {
        (void)!strmap_try_put(&h->by_id, ev->id, ev->id_len, ev);
        return;
    }
    evbuf_t *tail = strmap_get(&h->by_id_newest, ev->id, ev->id_len);
    if (!tail)
        tail = oldest;
    h->dup_next[(h->head + (size_t)(tail->seq - h->first_seq)) % h->cap] = ev->seq;
    (void)!strmap_try_put(&h->by_id_newest, ev->id, ev->id_len, ev);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void hub_publish(hub_t *h, evbuf_t *ev)
{
    uint8_t wake[HUB_MAX_SINKS] = {0};
    const int n = h->num_sinks; /* set once before any publish */
    pthread_mutex_lock(&h->lock);
    ev->seq = ++h->last_seq;
    /* The post time: for the workers' fan-out lag, and the enqueue-to-written
     * histogram (worker.h). One vDSO clock read, under the lock so that
     * it grows with seq. */
    ev->hub_ns = mono_ns();
    h->published++;
    trim_by_age(h, 64);
    history_append(h, ev);
    for (int i = 0; i < n; i++)
        wake[i] = (uint8_t)h->sinks[i].post(h->sinks[i].ctx, ev);
    pthread_mutex_unlock(&h->lock);
    /* Doorbells after the lock: an eventfd write is a syscall, and other
     * publishers wait for this lock. */
    for (int i = 0; i < n; i++)
        if (wake[i])
            h->sinks[i].wake(h->sinks[i].ctx);
    evbuf_unref(ev); /* the caller's reference, now carried by ring and inboxes */
}

void hub_load(hub_t *h, evbuf_t *ev)
{
    pthread_mutex_lock(&h->lock);
    ev->seq = ++h->last_seq;
    history_append(h, ev);
    pthread_mutex_unlock(&h->lock);
    evbuf_unref(ev); /* the caller's reference; the ring holds its own */
}

void hub_trim(hub_t *h)
{
    pthread_mutex_lock(&h->lock);
    trim_by_age(h, SIZE_MAX);
    pthread_mutex_unlock(&h->lock);
}

/* The seq a resume starts from (see hub_try_resume); *known = 0 for an id
 * the hub does not know. */
static uint64_t resume_seq(hub_t *h, const char *last_id, size_t len, int *known)
{
    *known = 1;
    if (!last_id)
        return h->last_seq + 1; /* nothing to replay */
    if (len == 8 && memcmp(last_id, "earliest", 8) == 0)
        return h->count ? h->first_seq : h->last_seq + 1;
    evbuf_t *ev = strmap_get(&h->by_id, last_id, len);
    if (!ev) {
        *known = 0;
        return h->last_seq + 1;
    }
    assert(ev->seq >= h->first_seq && ev->seq < h->first_seq + h->count);
    return ev->seq + 1;
}

/* Copies events with seq >= from into the batch (lock held). O(batch). */
static void read_locked(hub_t *h, uint64_t from, hub_batch_t *b)
{
    b->count = 0;
    b->newest = h->last_seq;
    b->gap = from <= h->last_seq && (h->count == 0 || from < h->first_seq);
    if (h->count == 0 || from > h->last_seq)
        return;
    if (from < h->first_seq)
        from = h->first_seq;
    for (uint64_t seq = from; seq <= h->last_seq && b->count < b->max; seq++) {
        evbuf_t *ev = h->ring[(h->head + (size_t)(seq - h->first_seq)) % h->cap];
        evbuf_ref(ev);
        b->events[b->count++] = ev;
    }
}

int hub_try_resume(hub_t *h, const char *last_id, size_t last_id_len, uint64_t *from, char **last_event_id,
                   hub_batch_t *batch)
{
    *last_event_id = NULL;
    pthread_mutex_lock(&h->lock);
    trim_by_age(h, 256);
    int known;
    *from = resume_seq(h, last_id, last_id_len, &known);
    read_locked(h, *from, batch);
    pthread_mutex_unlock(&h->lock);
    /* The id of the event just before the first one this client gets
     * (draft-dunglas-mercure-07, "Reconciliation"): the id it sent when we
     * know it, else "earliest" (asked for, or unknown/expired: the client
     * sees the value differs from what it sent, so it knows it missed
     * events). No header at all when the client sent no id. */
    if (last_id) {
        *last_event_id = known ? strndup(last_id, last_id_len) : strdup("earliest");
        if (!*last_event_id) {
            hub_batch_release(batch);
            return -1;
        }
    }
    return 0;
}

void hub_read(hub_t *h, uint64_t from, hub_batch_t *batch)
{
    pthread_mutex_lock(&h->lock);
    read_locked(h, from, batch);
    pthread_mutex_unlock(&h->lock);
}

void hub_batch_release(hub_batch_t *batch)
{
    for (size_t i = 0; i < batch->count; i++)
        evbuf_unref(batch->events[i]);
    batch->count = 0;
}

void hub_get_stats(hub_t *h, hub_stats_t *out)
{
    pthread_mutex_lock(&h->lock);
    out->published = h->published;
    out->history_len = h->count;
    pthread_mutex_unlock(&h->lock);
}

char *hub_try_last_event_id(hub_t *h)
{
    pthread_mutex_lock(&h->lock);
    char *id = h->count ? strdup(h->ring[(h->head + h->count - 1) % h->cap]->id) : strdup("earliest");
    pthread_mutex_unlock(&h->lock);
    return id;
}
