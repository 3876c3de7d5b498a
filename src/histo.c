/*
 * histo.c - see histo.h.
 */
#include "histo.h"

#include <stdio.h>

const uint32_t histo_bounds_us[HISTO_BUCKETS - 1] = {
    10,    20,    50,     100,    200,    500,     1000,    2000,    5000,     10000,
    20000, 50000, 100000, 200000, 500000, 1000000, 2000000, 5000000, 10000000,
};

/* The same bounds in seconds, as Prometheus labels: exact decimal text,
 * not what %g makes of a double ("1e-05"). */
static const char *const le_text[HISTO_BUCKETS] = {
    "0.00001", "0.00002", "0.00005", "0.0001", "0.0002", "0.0005", "0.001", "0.002", "0.005", "0.01",
    "0.02",    "0.05",    "0.1",     "0.2",    "0.5",    "1",      "2",     "5",     "10",    "+Inf",
};

int histo_bucket(int64_t us)
{
    /* Linear from the small end: most samples are below a millisecond, so
     * this stops within a few comparisons (a binary search always takes 5). */
    int i = 0;
    while (i < HISTO_BUCKETS - 1 && us > (int64_t)histo_bounds_us[i])
        i++;
    return i;
}

/* One writer: load and store instead of a locked add. */
static void bump(atomic_ulong *c, unsigned long n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

void histo_record(histo_t *h, int64_t us)
{
    if (us < 0)
        us = 0;
    bump(&h->counts[histo_bucket(us)], 1);
    bump(&h->sum_us, (unsigned long)us);
}

void histo_add_to(const histo_t *h, histo_snapshot_t *s)
{
    for (int i = 0; i < HISTO_BUCKETS; i++) {
        uint64_t n = atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        s->counts[i] += n;
        s->count += n;
    }
    s->sum_us += atomic_load_explicit(&h->sum_us, memory_order_relaxed);
}

double histo_quantile(const histo_snapshot_t *s, double q)
{
    if (s->count == 0)
        return -1;
    double rank = q * (double)s->count, seen = 0;
    for (int i = 0; i < HISTO_BUCKETS; i++) {
        if (s->counts[i] == 0 || seen + (double)s->counts[i] < rank) {
            seen += (double)s->counts[i];
            continue;
        }
        if (i == HISTO_BUCKETS - 1)
            return histo_bounds_us[HISTO_BUCKETS - 2];
        double lo = i ? histo_bounds_us[i - 1] : 0, hi = histo_bounds_us[i];
        return lo + (hi - lo) * (rank - seen) / (double)s->counts[i];
    }
    return histo_bounds_us[HISTO_BUCKETS - 2]; /* q > 1: the top */
}

size_t histo_render_prom(const histo_snapshot_t *s, const char *name, char *out, size_t cap)
{
    size_t n = 0;
#define PUT(...)                                                            \
    do {                                                                    \
        if (n < cap) {                                                      \
            int k_ = snprintf(out + n, cap - n, __VA_ARGS__);               \
            n = k_ < 0 ? cap : n + (size_t)k_ < cap ? n + (size_t)k_ : cap; \
        }                                                                   \
    } while (0)
    PUT("# TYPE %s histogram\n", name);
    uint64_t cumulative = 0;
    for (int i = 0; i < HISTO_BUCKETS; i++) {
        cumulative += s->counts[i];
        PUT("%s_bucket{le=\"%s\"} %llu\n", name, le_text[i], (unsigned long long)cumulative);
    }
    PUT("%s_sum %llu.%06llu\n%s_count %llu\n", name, (unsigned long long)(s->sum_us / 1000000),
        (unsigned long long)(s->sum_us % 1000000), name, (unsigned long long)cumulative);
#undef PUT
    return n;
}
