/*
 * ratelimit.c - see ratelimit.h.
 *
 * Layout: a table is an array of stripes; a key's keyed hash h picks the
 * stripe by its top bits and the index slot by its low bits, so the two
 * choices are independent. Each stripe is a small open-addressing hash
 * table over a fixed array of entries:
 *
 *   stripe (one cache line of bookkeeping, its own mutex)
 *     index[imask + 1]   uint32: entry number + 1, 0 = empty; at most half
 *                        full, linear probing, backward-shift deletion (no
 *                        tombstones, so probes stay short forever)
 *     e[cap]             entries: { hash, val, prev, next }, 24 bytes
 *                        val = TAT in microseconds (buckets) or the count
 *                        (counters); prev/next link the LRU list (buckets),
 *                        next links the free list
 *     lru_head .. lru_tail   most .. least recently used (buckets only)
 *
 * Everything is allocated by *_new and never resized, so the memory a flood
 * of distinct keys can cost is fixed at creation.
 *
 * Invariants (checked by the unit test's walk_stripe): used entries are
 * exactly those the index points to; for buckets, exactly those on the LRU
 * list; the others are on the free list; used <= cap; the index is at most
 * half full.
 */
#include "ratelimit.h"

#include "siphash.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX
#define STRIPES_MAX 16 /* a table this small needs fewer: see table_init */

typedef struct rl_entry {
    uint64_t hash;       /* the key's keyed SipHash: its identity in this table */
    int64_t val;         /* buckets: TAT, microseconds; counters: outstanding count */
    uint32_t prev, next; /* buckets: LRU neighbours (NIL at the ends); free entries: next free */
} rl_entry_t;

typedef struct stripe {
    pthread_mutex_t lock;                /* guards every field below and the entries */
    rl_entry_t *e;                       /* owns: cap entries */
    uint32_t *index;                     /* owns: imask + 1 slots, entry number + 1 or 0 */
    uint32_t imask;                      /* index size - 1 (a power of two minus one) */
    uint32_t cap;                        /* entries */
    uint32_t used;                       /* entries holding a key */
    uint32_t lru_head;                   /* most recently used entry, or NIL (buckets) */
    uint32_t lru_tail;                   /* least recently used entry, or NIL (buckets) */
    uint32_t free_head;                  /* first free entry, or NIL */
    uint64_t evicted_live;               /* buckets evicted before they were full again */
} __attribute__((aligned(64))) stripe_t; /* one per cache line: no false sharing between stripes */

typedef struct table {
    stripe_t *stripes; /* owns: nstripes, cache-line aligned */
    unsigned nstripes; /* a power of two */
    unsigned shift;    /* h >> shift is the stripe (64 - log2(nstripes)) */
} table_t;

struct ratelimit {
    table_t t;
    int64_t interval_us;  /* period / rate: the time one token takes to come back */
    int64_t tolerance_us; /* (burst - 1) * interval: how far TAT may run ahead of now */
};

struct ratelimit_counter {
    table_t t;
    atomic_uint max_per_key; /* outstanding acquisitions allowed per key (a reload may change it) */
};

/* ---- the striped table ------------------------------------------------------ */

static uint32_t pow2_at_least(uint64_t n)
{
    uint32_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

static void stripe_reset(stripe_t *s)
{
    s->used = 0;
    s->lru_head = s->lru_tail = NIL;
    for (uint32_t i = 0; i < s->cap; i++)
        s->e[i].next = i + 1 < s->cap ? i + 1 : NIL;
    s->free_head = s->cap ? 0 : NIL;
    memset(s->index, 0, ((size_t)s->imask + 1) * sizeof *s->index);
}

static void table_dispose(table_t *t)
{
    if (!t->stripes)
        return;
    for (unsigned i = 0; i < t->nstripes; i++) {
        pthread_mutex_destroy(&t->stripes[i].lock);
        free(t->stripes[i].e);
        free(t->stripes[i].index);
    }
    free(t->stripes);
    t->stripes = NULL;
}

/* per_stripe entries in each of nstripes stripes. Returns 0 or -1 (ENOMEM,
 * or EINVAL for sizes past 32-bit entry numbers). */
static int table_init_stripes(table_t *t, unsigned nstripes, size_t per_stripe)
{
    memset(t, 0, sizeof *t);
    if (per_stripe == 0 || per_stripe > UINT32_MAX / 4) {
        errno = EINVAL;
        return -1;
    }
    t->nstripes = nstripes;
    unsigned bits = 0;
    while ((1u << bits) < nstripes)
        bits++;
    t->shift = 64 - bits; /* bits == 0: h >> 64 is undefined, see stripe_of */
    t->stripes = aligned_alloc(64, nstripes * sizeof(stripe_t));
    if (!t->stripes)
        return -1;
    memset(t->stripes, 0, nstripes * sizeof(stripe_t));
    for (unsigned i = 0; i < nstripes; i++) {
        stripe_t *s = &t->stripes[i];
        pthread_mutex_init(&s->lock, NULL);
        s->cap = (uint32_t)per_stripe;
        s->imask = pow2_at_least(2 * (uint64_t)per_stripe) - 1; /* at most half full */
        s->e = calloc(s->cap, sizeof *s->e);
        s->index = calloc((size_t)s->imask + 1, sizeof *s->index);
        if (!s->e || !s->index) {
            t->nstripes = i + 1;
            table_dispose(t);
            errno = ENOMEM;
            return -1;
        }
        stripe_reset(s);
    }
    return 0;
}

/* Small tables get one stripe (a test can then fill it exactly); from
 * 1,024 entries on, STRIPES_MAX. */
static unsigned stripes_for(size_t capacity) { return capacity >= 1024 ? STRIPES_MAX : 1; }

static stripe_t *stripe_of(const table_t *t, uint64_t h)
{
    return &t->stripes[t->nstripes > 1 ? (unsigned)(h >> t->shift) : 0];
}

/* Looks hash h up: returns the index slot that holds it, with *found its
 * entry, or the empty slot where it would go, with *found NIL. Expected
 * O(1): the index is at most half full and h is keyed. */
static uint32_t index_find(const stripe_t *s, uint64_t h, uint32_t *found)
{
    for (uint32_t i = (uint32_t)h & s->imask;; i = (i + 1) & s->imask) {
        uint32_t v = s->index[i];
        if (v == 0 || s->e[v - 1].hash == h) {
            *found = v ? v - 1 : NIL;
            return i;
        }
    }
}

static void lru_unlink(stripe_t *s, uint32_t no)
{
    rl_entry_t *x = &s->e[no];
    if (x->prev != NIL)
        s->e[x->prev].next = x->next;
    else
        s->lru_head = x->next;
    if (x->next != NIL)
        s->e[x->next].prev = x->prev;
    else
        s->lru_tail = x->prev;
}

static void lru_push_front(stripe_t *s, uint32_t no)
{
    rl_entry_t *x = &s->e[no];
    x->prev = NIL;
    x->next = s->lru_head;
    if (s->lru_head != NIL)
        s->e[s->lru_head].prev = no;
    s->lru_head = no;
    if (s->lru_tail == NIL)
        s->lru_tail = no;
}

/* Puts hash h into a free entry (at index slot `slot`, from index_find).
 * Returns the entry, or NIL if none is free. */
static uint32_t entry_add(stripe_t *s, uint32_t slot, uint64_t h)
{
    uint32_t no = s->free_head;
    if (no == NIL)
        return NIL;
    s->free_head = s->e[no].next;
    s->e[no].hash = h;
    s->e[no].val = 0;
    s->index[slot] = no + 1;
    s->used++;
    return no;
}

/* Takes entry `no` out of the index (backward-shift deletion, as in
 * strmap.c) and onto the free list. Not off the LRU list: callers do that. */
static void entry_remove(stripe_t *s, uint32_t no)
{
    uint32_t found, i = index_find(s, s->e[no].hash, &found);
    assert(found == no);
    for (uint32_t j = (i + 1) & s->imask; s->index[j]; j = (j + 1) & s->imask) {
        uint32_t home = (uint32_t)s->e[s->index[j] - 1].hash & s->imask;
        int movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            s->index[i] = s->index[j];
            i = j;
        }
    }
    s->index[i] = 0;
    s->e[no].next = s->free_head;
    s->free_head = no;
    s->used--;
}

/* ---- token buckets ---------------------------------------------------------- */

ratelimit_t *ratelimit_new(uint32_t rate, uint32_t period_ms, uint32_t burst, size_t capacity)
{
    if (rate == 0 || period_ms == 0 || burst == 0 || capacity == 0) {
        errno = EINVAL;
        return NULL;
    }
    ratelimit_t *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    unsigned n = stripes_for(capacity);
    if (table_init_stripes(&rl->t, n, (capacity + n - 1) / n)) {
        free(rl);
        return NULL;
    }
    rl->interval_us = (int64_t)period_ms * 1000 / rate;
    if (rl->interval_us < 1)
        rl->interval_us = 1;
    rl->tolerance_us = (int64_t)(burst - 1) * rl->interval_us;
    return rl;
}

void ratelimit_free(ratelimit_t *rl)
{
    if (!rl)
        return;
    table_dispose(&rl->t);
    free(rl);
}

/* The entry for h, made (from a free entry, or by evicting the least
 * recently used) if it is new, and moved to the front of the LRU list. */
static uint32_t bucket_entry(stripe_t *s, uint64_t h, int64_t now_us)
{
    uint32_t no, slot = index_find(s, h, &no);
    if (no != NIL) {
        lru_unlink(s, no);
        lru_push_front(s, no);
        return no;
    }
    if (s->free_head == NIL) {
        uint32_t victim = s->lru_tail; /* cap >= 1, and every used entry is on the list */
        if (s->e[victim].val > now_us)
            s->evicted_live++;
        lru_unlink(s, victim);
        entry_remove(s, victim);
        slot = index_find(s, h, &no); /* the removal may have shifted the run */
    }
    no = entry_add(s, slot, h);
    s->e[no].val = now_us; /* a new key has a full bucket */
    lru_push_front(s, no);
    return no;
}

int ratelimit_try_take(ratelimit_t *rl, const void *key, size_t len, uint64_t now_ms,
                       uint64_t *retry_after_ms)
{
    uint64_t h = siphash_keyed(key, len);
    int64_t now_us = (int64_t)(now_ms * 1000);
    stripe_t *s = stripe_of(&rl->t, h);
    pthread_mutex_lock(&s->lock);
    rl_entry_t *x = &s->e[bucket_entry(s, h, now_us)];
    int64_t tat = x->val > now_us ? x->val : now_us;
    int64_t ahead = tat - now_us; /* how far this key has run ahead of its rate */
    int r = RATELIMIT_OK;
    if (ahead > rl->tolerance_us)
        r = RATELIMIT_LIMITED;
    else
        x->val = tat + rl->interval_us;
    pthread_mutex_unlock(&s->lock);
    if (retry_after_ms) {
        int64_t wait_us = r == RATELIMIT_OK ? 0 : ahead - rl->tolerance_us;
        *retry_after_ms = (uint64_t)(wait_us + 999) / 1000;
    }
    return r;
}

void ratelimit_stats(ratelimit_t *rl, size_t *keys, uint64_t *evicted_live)
{
    size_t k = 0;
    uint64_t ev = 0;
    for (unsigned i = 0; i < rl->t.nstripes; i++) {
        stripe_t *s = &rl->t.stripes[i];
        pthread_mutex_lock(&s->lock);
        k += s->used;
        ev += s->evicted_live;
        pthread_mutex_unlock(&s->lock);
    }
    *keys = k;
    *evicted_live = ev;
}

/* ---- counters --------------------------------------------------------------- */

ratelimit_counter_t *ratelimit_counter_new(uint32_t max_per_key, size_t capacity)
{
    if (max_per_key == 0 || capacity == 0) {
        errno = EINVAL;
        return NULL;
    }
    ratelimit_counter_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    unsigned n = stripes_for(capacity);
    /* Twice the average per stripe (plus a little for tiny tables): with a
     * keyed hash a stripe gets about capacity / n keys, give or take a few
     * square roots of it, so twice is never reached in practice. One
     * stripe needs no slack at all. */
    size_t per = n == 1 ? capacity : 2 * ((capacity + n - 1) / n) + 16;
    if (table_init_stripes(&c->t, n, per)) {
        free(c);
        return NULL;
    }
    atomic_init(&c->max_per_key, max_per_key);
    return c;
}

void ratelimit_counter_free(ratelimit_counter_t *c)
{
    if (!c)
        return;
    table_dispose(&c->t);
    free(c);
}

int ratelimit_counter_try_acquire(ratelimit_counter_t *c, const void *key, size_t len)
{
    uint64_t h = siphash_keyed(key, len);
    stripe_t *s = stripe_of(&c->t, h);
    int r = RATELIMIT_OK;
    pthread_mutex_lock(&s->lock);
    uint32_t no, slot = index_find(s, h, &no);
    if (no == NIL)
        no = entry_add(s, slot, h); /* val = 0 */
    if (no == NIL)
        r = RATELIMIT_FULL;
    else if (s->e[no].val >= atomic_load_explicit(&c->max_per_key, memory_order_relaxed))
        r = RATELIMIT_LIMITED; /* an existing entry: a new one has 0 < max_per_key */
    else
        s->e[no].val++;
    pthread_mutex_unlock(&s->lock);
    return r;
}

int ratelimit_counter_release(ratelimit_counter_t *c, const void *key, size_t len)
{
    uint64_t h = siphash_keyed(key, len);
    stripe_t *s = stripe_of(&c->t, h);
    int r = 0;
    pthread_mutex_lock(&s->lock);
    uint32_t no;
    index_find(s, h, &no);
    if (no == NIL)
        r = -1;
    else if (--s->e[no].val == 0)
        entry_remove(s, no);
    pthread_mutex_unlock(&s->lock);
    return r;
}

uint32_t ratelimit_counter_get(ratelimit_counter_t *c, const void *key, size_t len)
{
    uint64_t h = siphash_keyed(key, len);
    stripe_t *s = stripe_of(&c->t, h);
    pthread_mutex_lock(&s->lock);
    uint32_t no;
    index_find(s, h, &no);
    uint32_t v = no == NIL ? 0 : (uint32_t)s->e[no].val;
    pthread_mutex_unlock(&s->lock);
    return v;
}

void ratelimit_counter_set_max(ratelimit_counter_t *c, uint32_t max_per_key)
{
    if (max_per_key)
        atomic_store_explicit(&c->max_per_key, max_per_key, memory_order_relaxed);
}

size_t ratelimit_counter_keys(ratelimit_counter_t *c)
{
    size_t k = 0;
    for (unsigned i = 0; i < c->t.nstripes; i++) {
        stripe_t *s = &c->t.stripes[i];
        pthread_mutex_lock(&s->lock);
        k += s->used;
        pthread_mutex_unlock(&s->lock);
    }
    return k;
}
