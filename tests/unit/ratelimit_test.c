/*
 * ratelimit_test.c - token buckets and counters: refill timing against an
 * injected clock, eviction under a flood of distinct keys (the memory stays
 * what was allocated), the counters' limits and their freeing, the
 * structural invariants after every test, and threads hammering one table
 * (run under ASan here; the report of this branch says how it was run
 * under ThreadSanitizer).
 */
#include "../../src/ratelimit.c"

#include <stdatomic.h>

#include "test.h"

/* ---- invariants ------------------------------------------------------------ */

/* Every used entry is in the index once and (buckets) on the LRU list once;
 * the free list holds the rest; the index is at most half full. */
static void walk_stripe(stripe_t *s, int buckets)
{
    pthread_mutex_lock(&s->lock);
    uint8_t *seen = calloc(s->cap, 1);
    uint32_t in_index = 0, on_lru = 0, on_free = 0;
    for (uint32_t i = 0; i <= s->imask; i++) {
        if (!s->index[i])
            continue;
        uint32_t no = s->index[i] - 1, found;
        ASSERT(no < s->cap);
        ASSERT(seen[no] == 0);
        seen[no] = 1;
        in_index++;
        ASSERT_UEQ(index_find(s, s->e[no].hash, &found), i); /* reachable from its home */
        ASSERT_UEQ(found, no);
    }
    if (buckets) {
        uint32_t prev = NIL;
        for (uint32_t no = s->lru_head; no != NIL && on_lru <= s->cap; no = s->e[no].next) {
            ASSERT(seen[no] == 1);
            seen[no] = 2;
            ASSERT_UEQ(s->e[no].prev, prev);
            prev = no;
            on_lru++;
        }
        ASSERT_UEQ(s->lru_tail, prev);
        ASSERT_UEQ(on_lru, in_index);
    }
    for (uint32_t no = s->free_head; no != NIL && on_free <= s->cap; no = s->e[no].next) {
        ASSERT(seen[no] == 0);
        seen[no] = 3;
        on_free++;
    }
    ASSERT_UEQ(in_index, s->used);
    ASSERT_UEQ(in_index + on_free, s->cap);
    ASSERT(2 * (uint64_t)s->used <= (uint64_t)s->imask + 1);
    free(seen);
    pthread_mutex_unlock(&s->lock);
}

static void walk_table(table_t *t, int buckets)
{
    for (unsigned i = 0; i < t->nstripes; i++)
        walk_stripe(&t->stripes[i], buckets);
}

static int take(ratelimit_t *rl, const char *key, uint64_t now, uint64_t *retry)
{
    return ratelimit_try_take(rl, key, strlen(key), now, retry);
}

/* ---- buckets --------------------------------------------------------------- */

static void test_bucket_burst_and_refill(void)
{
    ratelimit_t *rl = ratelimit_new(10, 1000, 5, 100); /* 10/s: a token every 100 ms; burst 5 */
    uint64_t retry = 42;
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ(take(rl, "a", 1000, &retry), RATELIMIT_OK);
        ASSERT_UEQ(retry, 0);
    }
    ASSERT_EQ(take(rl, "a", 1000, &retry), RATELIMIT_LIMITED);
    ASSERT_UEQ(retry, 100);
    ASSERT_EQ(take(rl, "b", 1000, &retry), RATELIMIT_OK); /* another key: its own bucket */
    ASSERT_EQ(take(rl, "a", 1099, &retry), RATELIMIT_LIMITED);
    ASSERT_UEQ(retry, 1);
    ASSERT_EQ(take(rl, "a", 1100, &retry), RATELIMIT_OK); /* exactly one token back */
    ASSERT_EQ(take(rl, "a", 1100, &retry), RATELIMIT_LIMITED);
    ASSERT_UEQ(retry, 100);
    /* Limited attempts do not cost tokens: at 1250 one more is there. */
    for (int i = 0; i < 100; i++)
        ASSERT_EQ(take(rl, "a", 1150, NULL), RATELIMIT_LIMITED);
    ASSERT_EQ(take(rl, "a", 1200, &retry), RATELIMIT_OK);
    /* After a long idle time the bucket is full, and no fuller than burst. */
    int got = 0;
    while (take(rl, "a", 100000, NULL) == RATELIMIT_OK && got < 100)
        got++;
    ASSERT_EQ(got, 5);
    /* Sustained: at the rate, every attempt succeeds; twice as fast, half. */
    int ok = 0;
    for (uint64_t t = 200000; t < 210000; t += 100)
        ok += take(rl, "c", t, NULL) == RATELIMIT_OK;
    ASSERT_EQ(ok, 100);
    ok = 0;
    for (uint64_t t = 300000; t < 310000; t += 50)
        ok += take(rl, "d", t, NULL) == RATELIMIT_OK;
    ASSERT(ok >= 100 && ok <= 100 + 5); /* the rate, plus the initial burst */
    walk_table(&rl->t, 1);
    ratelimit_free(rl);
}

/* Rates that do not divide the period: 3 per second, burst 1. */
static void test_bucket_uneven_rate(void)
{
    ratelimit_t *rl = ratelimit_new(3, 1000, 1, 10);
    uint64_t retry;
    ASSERT_EQ(take(rl, "k", 0, &retry), RATELIMIT_OK);
    ASSERT_EQ(take(rl, "k", 0, &retry), RATELIMIT_LIMITED);
    ASSERT_UEQ(retry, 334);                                   /* 333.333 ms, rounded up */
    ASSERT_EQ(take(rl, "k", 333, &retry), RATELIMIT_LIMITED); /* 0.333 ms early */
    ASSERT_EQ(take(rl, "k", 334, &retry), RATELIMIT_OK);
    int ok = 0;
    for (uint64_t t = 1000; t < 61000; t++)
        ok += take(rl, "k", t, NULL) == RATELIMIT_OK;
    ASSERT(ok >= 180 && ok <= 181); /* 3 a second for 60 s */
    ratelimit_free(rl);
}

static void test_bucket_bad_params(void)
{
    errno = 0;
    ASSERT(ratelimit_new(0, 1000, 1, 10) == NULL && errno == EINVAL);
    ASSERT(ratelimit_new(1, 0, 1, 10) == NULL);
    ASSERT(ratelimit_new(1, 1000, 0, 10) == NULL);
    ASSERT(ratelimit_new(1, 1000, 1, 0) == NULL);
    ASSERT(ratelimit_counter_new(0, 10) == NULL && errno == EINVAL);
    ASSERT(ratelimit_counter_new(1, 0) == NULL);
    ratelimit_free(NULL);
    ratelimit_counter_free(NULL);
    /* Over a million a second: the interval is held at 1 us, not 0. */
    ratelimit_t *rl = ratelimit_new(4000000, 1000, 1, 10);
    ASSERT(rl != NULL);
    ASSERT_EQ(rl->interval_us, 1);
    ratelimit_free(rl);
}

/* A flood of distinct keys: the table never holds more than its capacity,
 * allocates nothing, and evicts the least recently used. */
static void test_bucket_flood_and_lru(void)
{
    const size_t cap = 64;
    ratelimit_t *rl = ratelimit_new(1, 1000, 2, cap);
    ASSERT_EQ(rl->t.nstripes, 1);
    stripe_t *s = &rl->t.stripes[0];
    rl_entry_t *entries = s->e;
    uint32_t *index = s->index;

    /* "victim" spends its burst, then cap - 1 other keys arrive: it is
     * still there (and still limited). */
    ASSERT_EQ(take(rl, "victim", 0, NULL), RATELIMIT_OK);
    ASSERT_EQ(take(rl, "victim", 0, NULL), RATELIMIT_OK);
    char key[32];
    for (size_t i = 0; i < cap - 1; i++) {
        snprintf(key, sizeof key, "k%zu", i);
        ASSERT_EQ(take(rl, key, 0, NULL), RATELIMIT_OK);
    }
    ASSERT_UEQ(s->used, cap);
    ASSERT_EQ(take(rl, "victim", 0, NULL), RATELIMIT_LIMITED); /* touched: now most recent */
    /* Keys k0.. are now the least recently used: the next new key evicts k0. */
    ASSERT_EQ(take(rl, "new", 0, NULL), RATELIMIT_OK);
    ASSERT_EQ(take(rl, "victim", 0, NULL), RATELIMIT_LIMITED); /* survived */
    size_t keys;
    uint64_t ev;
    ratelimit_stats(rl, &keys, &ev);
    ASSERT_UEQ(keys, cap);
    ASSERT_UEQ(ev, 1); /* k0 had used a token: its bucket was not full */

    /* The flood: 100,000 distinct keys. */
    for (size_t i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "flood%zu", i);
        ASSERT_EQ(take(rl, key, 10, NULL), RATELIMIT_OK);
        if (s->used > cap)
            TEST_FAIL_AT("step %zu: %u keys held, capacity %zu", i, s->used, cap);
    }
    ASSERT(s->e == entries && s->index == index); /* the same memory throughout */
    ratelimit_stats(rl, &keys, &ev);
    ASSERT_UEQ(keys, cap);
    /* The victim was evicted long ago: it has a full bucket again. This is
     * the price of bounded memory (see ratelimit.h), counted in ev. */
    ASSERT_EQ(take(rl, "victim", 10, NULL), RATELIMIT_OK);
    ASSERT(ev > 100000 - 10);
    walk_table(&rl->t, 1);
    ratelimit_free(rl);
}

/* Entries whose bucket is full again are evicted without counting as lost. */
static void test_bucket_expired_eviction_not_counted(void)
{
    ratelimit_t *rl = ratelimit_new(10, 1000, 1, 8);
    char key[16];
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof key, "a%d", i);
        ASSERT_EQ(take(rl, key, 0, NULL), RATELIMIT_OK);
    }
    for (int i = 0; i < 8; i++) { /* 200 ms later every bucket is full again */
        snprintf(key, sizeof key, "b%d", i);
        ASSERT_EQ(take(rl, key, 200, NULL), RATELIMIT_OK);
    }
    size_t keys;
    uint64_t ev;
    ratelimit_stats(rl, &keys, &ev);
    ASSERT_UEQ(keys, 8);
    ASSERT_UEQ(ev, 0);
    walk_table(&rl->t, 1);
    ratelimit_free(rl);
}

/* Striped: a large table spreads keys over all its stripes. */
static void test_bucket_striped(void)
{
    ratelimit_t *rl = ratelimit_new(5, 1000, 3, 4096);
    ASSERT_EQ(rl->t.nstripes, STRIPES_MAX);
    char key[32];
    for (int i = 0; i < 2048; i++) {
        snprintf(key, sizeof key, "203.0.113.%d/%d", i % 256, i);
        ASSERT_EQ(take(rl, key, 0, NULL), RATELIMIT_OK);
    }
    for (unsigned i = 0; i < rl->t.nstripes; i++)
        ASSERT(rl->t.stripes[i].used > 0);
    walk_table(&rl->t, 1);
    ratelimit_free(rl);
}

/* ---- counters -------------------------------------------------------------- */

static void test_counter_basic(void)
{
    ratelimit_counter_t *c = ratelimit_counter_new(2, 16);
    ASSERT_EQ(ratelimit_counter_try_acquire(c, "a", 1), RATELIMIT_OK);
    ASSERT_EQ(ratelimit_counter_try_acquire(c, "a", 1), RATELIMIT_OK);
    ASSERT_EQ(ratelimit_counter_try_acquire(c, "a", 1), RATELIMIT_LIMITED);
    ASSERT_UEQ(ratelimit_counter_get(c, "a", 1), 2); /* the refusal counted nothing */
    ASSERT_EQ(ratelimit_counter_try_acquire(c, "b", 1), RATELIMIT_OK);
    ASSERT_UEQ(ratelimit_counter_keys(c), 2);
    ASSERT_EQ(ratelimit_counter_release(c, "a", 1), 0);
    ASSERT_EQ(ratelimit_counter_try_acquire(c, "a", 1), RATELIMIT_OK);
    ASSERT_EQ(ratelimit_counter_release(c, "zz", 2), -1); /* never acquired */
    ASSERT_EQ(ratelimit_counter_release(c, "a", 1), 0);
    ASSERT_EQ(ratelimit_counter_release(c, "a", 1), 0);
    ASSERT_EQ(ratelimit_counter_release(c, "a", 1), -1); /* one too many */
    ASSERT_UEQ(ratelimit_counter_get(c, "a", 1), 0);
    ASSERT_UEQ(ratelimit_counter_keys(c), 1); /* a's entry was freed at 0 */
    ASSERT_EQ(ratelimit_counter_release(c, "b", 1), 0);
    ASSERT_UEQ(ratelimit_counter_keys(c), 0);
    walk_table(&c->t, 0);
    ratelimit_counter_free(c);
}

/* Full: a new key is refused, existing keys are not; freeing makes room. */
static void test_counter_full(void)
{
    ratelimit_counter_t *c = ratelimit_counter_new(3, 4);
    char key[16];
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ASSERT_EQ(ratelimit_counter_try_acquire(c, key, strlen(key)), RATELIMIT_OK);
    }
    ASSERT_EQ(ratelimit_counter_try_acquire(c, "new", 3), RATELIMIT_FULL);
    ASSERT_EQ(ratelimit_counter_try_acquire(c, "k0", 2), RATELIMIT_OK);
    ASSERT_EQ(ratelimit_counter_release(c, "k3", 2), 0);
    ASSERT_EQ(ratelimit_counter_try_acquire(c, "new", 3), RATELIMIT_OK);
    walk_table(&c->t, 0);
    ratelimit_counter_free(c);
}

/* Connection churn: 200,000 accept/close pairs over 50,000 addresses in a
 * table of 1,024: it never fills, and ends empty. */
static void test_counter_churn(void)
{
    ratelimit_counter_t *c = ratelimit_counter_new(4, 1024);
    char key[32];
    unsigned seed = 7;
    int live[64] = {0};
    for (int step = 0; step < 200000; step++) {
        seed = seed * 1103515245u + 12345u;
        int slot = (int)((seed >> 10) % 64);
        if (live[slot]) {
            snprintf(key, sizeof key, "addr%d", live[slot]);
            ASSERT_EQ(ratelimit_counter_release(c, key, strlen(key)), 0);
            live[slot] = 0;
        } else {
            live[slot] = 1 + (int)((seed >> 16) % 50000);
            snprintf(key, sizeof key, "addr%d", live[slot]);
            int r = ratelimit_counter_try_acquire(c, key, strlen(key));
            ASSERT(r == RATELIMIT_OK || r == RATELIMIT_LIMITED);
            if (r != RATELIMIT_OK)
                live[slot] = 0;
        }
    }
    for (int i = 0; i < 64; i++) {
        if (!live[i])
            continue;
        snprintf(key, sizeof key, "addr%d", live[i]);
        ASSERT_EQ(ratelimit_counter_release(c, key, strlen(key)), 0);
    }
    ASSERT_UEQ(ratelimit_counter_keys(c), 0);
    walk_table(&c->t, 0);
    ratelimit_counter_free(c);
}

/* Striped counters hold `capacity` distinct keys whatever the spread. */
static void test_counter_capacity_striped(void)
{
    const size_t cap = 16384;
    ratelimit_counter_t *c = ratelimit_counter_new(1, cap);
    ASSERT_EQ(c->t.nstripes, STRIPES_MAX);
    char key[32];
    for (size_t i = 0; i < cap; i++) {
        snprintf(key, sizeof key, "k%zu", i);
        ASSERT_EQ(ratelimit_counter_try_acquire(c, key, strlen(key)), RATELIMIT_OK);
    }
    ASSERT_UEQ(ratelimit_counter_keys(c), cap);
    walk_table(&c->t, 0);
    ratelimit_counter_free(c);
}

/* ---- threads --------------------------------------------------------------- */

#define THREADS 4
#define HOT_KEYS 8

typedef struct hammer {
    ratelimit_t *rl;
    ratelimit_counter_t *c;
    atomic_int *taken;       /* per hot key: tokens taken by all threads */
    atomic_int *outstanding; /* per hot key: counter acquisitions held */
    atomic_int *max_seen;    /* per hot key: the most outstanding at once */
    unsigned seed;
    int frozen_clock; /* 1: every take at t = 5000 */
} hammer_t;

static void *hammer_main(void *arg)
{
    hammer_t *h = arg;
    char key[32];
    int held[HOT_KEYS] = {0};
    for (int i = 0; i < 20000; i++) {
        h->seed = h->seed * 1103515245u + 12345u;
        int k = (int)((h->seed >> 8) % HOT_KEYS);
        snprintf(key, sizeof key, "hot%d", k);
        uint64_t now = h->frozen_clock ? 5000 : 5000 + (uint64_t)i / 10;
        if (ratelimit_try_take(h->rl, key, strlen(key), now, NULL) == RATELIMIT_OK)
            atomic_fetch_add(&h->taken[k], 1);
        /* A cold key now and then: evictions under the other threads' feet. */
        snprintf(key, sizeof key, "cold%u", h->seed >> 12);
        (void)!ratelimit_try_take(h->rl, key, strlen(key), now, NULL);
        /* Counters: acquire and release hot keys. */
        snprintf(key, sizeof key, "conn%d", k);
        if (held[k] && (h->seed & 0x100)) {
            atomic_fetch_sub(&h->outstanding[k], 1);
            ASSERT_EQ(ratelimit_counter_release(h->c, key, strlen(key)), 0);
            held[k]--;
        } else if (ratelimit_counter_try_acquire(h->c, key, strlen(key)) == RATELIMIT_OK) {
            int now_out = atomic_fetch_add(&h->outstanding[k], 1) + 1;
            int m = atomic_load(&h->max_seen[k]);
            while (now_out > m && !atomic_compare_exchange_weak(&h->max_seen[k], &m, now_out))
                ;
            held[k]++;
        }
    }
    for (int k = 0; k < HOT_KEYS; k++) {
        snprintf(key, sizeof key, "conn%d", k);
        for (; held[k]; held[k]--) {
            atomic_fetch_sub(&h->outstanding[k], 1);
            ASSERT_EQ(ratelimit_counter_release(h->c, key, strlen(key)), 0);
        }
    }
    return NULL;
}

static void run_hammer(int frozen)
{
    const uint32_t burst = 50, per_key = 6;
    ratelimit_t *rl = ratelimit_new(100, 1000, burst, 2048);
    ratelimit_counter_t *c = ratelimit_counter_new(per_key, 1024);
    static atomic_int taken[HOT_KEYS], outstanding[HOT_KEYS], max_seen[HOT_KEYS];
    for (int k = 0; k < HOT_KEYS; k++) {
        atomic_store(&taken[k], 0);
        atomic_store(&outstanding[k], 0);
        atomic_store(&max_seen[k], 0);
    }
    hammer_t h[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        h[i] = (hammer_t){rl, c, taken, outstanding, max_seen, 1000u + (unsigned)i * 7919u, frozen};
        ASSERT_EQ(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (int k = 0; k < HOT_KEYS; k++) {
        int got = atomic_load(&taken[k]);
        /* Frozen: exactly one burst per key, however the threads raced (a
         * hot key is touched every ~8 steps, far more often than the ~2,000
         * steps it would take the cold keys to push it out of its stripe's
         * LRU list). Moving clock (each thread's own, so they disagree):
         * at most burst + rate x the 2 s the clocks span. */
        if (frozen)
            ASSERT_EQ(got, burst);
        else
            ASSERT(got >= (int)burst && got <= (int)burst + 100 * 2 + (int)burst);
        ASSERT(atomic_load(&max_seen[k]) <= (int)per_key);
        ASSERT_EQ(atomic_load(&outstanding[k]), 0);
    }
    ASSERT_UEQ(ratelimit_counter_keys(c), 0); /* every acquisition was released */
    walk_table(&rl->t, 1);
    walk_table(&c->t, 0);
    ratelimit_free(rl);
    ratelimit_counter_free(c);
}

static void test_threads_frozen_clock(void) { run_hammer(1); }
static void test_threads_moving_clock(void) { run_hammer(0); }

int main(void)
{
    TEST_MAIN_BEGIN();
    static const uint8_t fixed[SIPHASH_KEY_LEN] = "ratelimit-tests!";
    siphash_seed_set(fixed); /* reproducible stripes and probe runs */
    TEST_RUN(test_bucket_burst_and_refill);
    TEST_RUN(test_bucket_uneven_rate);
    TEST_RUN(test_bucket_bad_params);
    TEST_RUN(test_bucket_flood_and_lru);
    TEST_RUN(test_bucket_expired_eviction_not_counted);
    TEST_RUN(test_bucket_striped);
    TEST_RUN(test_counter_basic);
    TEST_RUN(test_counter_full);
    TEST_RUN(test_counter_churn);
    TEST_RUN(test_counter_capacity_striped);
    TEST_RUN(test_threads_frozen_clock);
    TEST_RUN(test_threads_moving_clock);
    TEST_MAIN_END();
}
