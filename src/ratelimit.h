/*
 * ratelimit.h - per-client admission limits, shared by every worker thread:
 * token buckets (requests per period: publishes, subscriptions) and live
 * counters (open connections per address).
 *
 * Both are fixed-capacity tables keyed by bytes (a peer_addr_key(), a JWT
 * subject, ...). The key is hashed with the process's keyed SipHash
 * (siphash.h) and an entry stores only that 64-bit hash, not the key: all
 * entries have one small size, memory is 32 to 40 bytes per key of
 * capacity (buckets; twice that for counters, see ratelimit_counter_new),
 * allocated once at creation, and two keys share an
 * entry only if their keyed hashes collide, which a client cannot arrange
 * and which happens by chance with probability about n^2 / 2^65 (1e-10 for
 * 65,536 live keys): then they share one limit, nothing worse.
 *
 * Threads: any. The table is cut into stripes by hash, each with its own
 * mutex, held only for one O(1) step (a probe of a half-empty index, a list
 * relink, at most one eviction); no loop under a lock depends on what a
 * client sends. Why one shared table and not one per worker with the limit
 * divided by the worker count: the kernel spreads a client's connections
 * over workers by hashing their ports, so per-worker shares would refuse a
 * client early when its connections land unevenly and let it exceed its
 * limit on nothing; and every worker would hold a copy. Sixteen stripes
 * keep the locks uncontended at the rates these limits run at: a check
 * costs about 50 ns, hashing included (20 M checks a second on one core
 * here, over 50,000 keys), where a connection or a publish costs tens of
 * microseconds.
 *
 * Token buckets are kept as one number per key, the GCRA "theoretical
 * arrival time" (TAT): a key may take a token at time t if TAT - t <=
 * (burst - 1) * interval, and doing so moves TAT to max(TAT, t) + interval,
 * where interval = period / rate. This is exactly a bucket of `burst`
 * tokens refilled at `rate` per `period`, without a timer or a refill
 * loop. A bucket whose TAT is in the past is full, the same as no entry.
 *
 * Bounded memory: when a bucket table is full, a new key takes the entry
 * of its stripe's least recently used key. That key loses its state, which
 * only matters if its bucket was not full yet (counted in
 * ratelimit_stats's evicted_live): size the table above the number of
 * clients active within one refill period, and key IPv6 clients by /64,
 * so that a flood of fresh keys cannot reset a busy client's bucket.
 * Counter entries are never evicted (a live connection must stay counted):
 * a counter table that is full refuses new keys; sized to the maximum of
 * open connections it never is.
 *
 * Clock: callers pass a monotonic time in milliseconds (the worker's loop
 * time), so tests drive time by hand.
 */
#ifndef COURANT_RATELIMIT_H
#define COURANT_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct ratelimit ratelimit_t;
typedef struct ratelimit_counter ratelimit_counter_t;

/* Results of the try_ functions. */
enum {
    RATELIMIT_OK = 0,       /* taken */
    RATELIMIT_LIMITED = -1, /* this key is over its limit (429 / refuse the connection) */
    RATELIMIT_FULL = -2,    /* counters only: no room for one more key (503) */
};

/* A bucket table: each key may take `burst` tokens at once and gets `rate`
 * new ones per `period_ms` (e.g. 10 per 1000 ms, burst 20), kept for at
 * most `capacity` keys. rate, period_ms, burst and capacity must be >= 1,
 * and period_ms * 1000 / rate is the refill interval in microseconds
 * (rounded down, at least 1: rates above a million per second are not
 * kept exactly). Returns NULL (errno EINVAL or ENOMEM) on failure. Call
 * from any thread; the table is then shared. */
ratelimit_t *ratelimit_new(uint32_t rate, uint32_t period_ms, uint32_t burst, size_t capacity);

/* Frees the table; no other thread may be using it. NULL is fine. */
void ratelimit_free(ratelimit_t *rl);

/* Takes one token for key[0..len) at time now_ms. Returns RATELIMIT_OK, or
 * RATELIMIT_LIMITED with *retry_after_ms set to when the next token will be
 * there (at least 1; for a Retry-After header, rounded up to seconds by the
 * caller). retry_after_ms may be NULL. O(1); any thread. now_ms should not
 * go backwards; if it does, buckets just refill later. */
int ratelimit_try_take(ratelimit_t *rl, const void *key, size_t len, uint64_t now_ms,
                       uint64_t *retry_after_ms) __attribute__((warn_unused_result));

/* Keys held, and keys evicted while their bucket was not yet full (each is
 * a client whose limit was reset early: a sign the table is too small).
 * Approximate while other threads run; any thread. */
void ratelimit_stats(ratelimit_t *rl, size_t *keys, uint64_t *evicted_live);

/* A counter table: at most `max_per_key` acquisitions outstanding per key,
 * for at most `capacity` keys with an outstanding acquisition (the table
 * allocates room for twice that per stripe on average, so that an uneven
 * spread of keys over stripes does not refuse keys early). max_per_key and
 * capacity must be >= 1. Returns NULL (errno EINVAL or ENOMEM). */
ratelimit_counter_t *ratelimit_counter_new(uint32_t max_per_key, size_t capacity);

/* Frees the table; no other thread may be using it. NULL is fine. */
void ratelimit_counter_free(ratelimit_counter_t *c);

/* Counts one more for key[0..len) (a connection accepted from an address).
 * Returns RATELIMIT_OK, RATELIMIT_LIMITED (already max_per_key: nothing
 * counted) or RATELIMIT_FULL (no room for a new key: nothing counted).
 * Every RATELIMIT_OK must be matched by one ratelimit_counter_release()
 * with the same key, from any thread. O(1). */
int ratelimit_counter_try_acquire(ratelimit_counter_t *c, const void *key, size_t len)
    __attribute__((warn_unused_result));

/* Undoes one acquisition (the connection closed); the key's entry is freed
 * when its count reaches 0. Returns 0, or -1 if the key had nothing
 * outstanding (a caller bug; nothing changes). O(1); any thread. */
int ratelimit_counter_release(ratelimit_counter_t *c, const void *key, size_t len);

/* What is outstanding for key[0..len) (0 if none). Any thread. */
uint32_t ratelimit_counter_get(ratelimit_counter_t *c, const void *key, size_t len);

/* Changes the per-key maximum (a reload): keys already past it keep what
 * they hold and acquire no more until they are below it. 0 is ignored.
 * Any thread. */
void ratelimit_counter_set_max(ratelimit_counter_t *c, uint32_t max_per_key);

/* Keys with an outstanding acquisition. Approximate while other threads
 * run; any thread. */
size_t ratelimit_counter_keys(ratelimit_counter_t *c);

#endif
