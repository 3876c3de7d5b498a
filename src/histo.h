/*
 * histo.h - a latency histogram with fixed log-scale buckets, written by one
 * thread and read by any.
 *
 *   bucket   0    1    2    3     4     5     6   ...  15    16    17    18    19
 *   <= us   10   20   50   100   200   500   1e3  ...  1e6   2e6   5e6   1e7   +Inf
 *
 * The bounds follow 1-2-5 steps from 10 us to 10 s: the same relative
 * precision (at most a factor 2.5 inside a bucket) over six decades, 20
 * counters, no allocation, and bounds a person reads at a glance in
 * /metrics (`le="0.0005"`). Prometheus wants cumulative buckets: they are
 * summed when rendered, never stored, so a sample costs one counter.
 *
 * One writer: each histogram belongs to one worker (worker_stats_t), the
 * only thread that records into it. A record is therefore a relaxed load
 * and a relaxed store per counter (a plain mov on x86, no locked
 * instruction), and readers on other threads see every counter whole,
 * perhaps a few samples behind its neighbours. Readers sum the workers'
 * histograms into a histo_snapshot_t (plain integers) and render or
 * compare those.
 *
 * Threads: histo_record on the owning thread only; histo_add_to and the
 * snapshot functions on any thread.
 */
#ifndef COURANT_HISTO_H
#define COURANT_HISTO_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define HISTO_BUCKETS 20 /* 19 finite bounds and +Inf */

/* The finite upper bounds, in microseconds, ascending. */
extern const uint32_t histo_bounds_us[HISTO_BUCKETS - 1];

typedef struct histo {
    atomic_ulong counts[HISTO_BUCKETS]; /* samples per bucket (not cumulative); one writer */
    atomic_ulong sum_us;                /* sum of all samples, microseconds; one writer */
} histo_t;

/* Plain totals, summed from one or more histograms. */
typedef struct histo_snapshot {
    uint64_t counts[HISTO_BUCKETS]; /* samples per bucket (not cumulative) */
    uint64_t sum_us;                /* microseconds */
    uint64_t count;                 /* sum of counts */
} histo_snapshot_t;

/* The bucket a sample of `us` microseconds falls in (negative counts as 0). */
int histo_bucket(int64_t us);

/* Owning thread: counts one sample of `us` microseconds (negative: 0, a
 * clock read earlier than the stamp it is compared with). */
void histo_record(histo_t *h, int64_t us);

/* Any thread: adds h's counters into *s (relaxed loads). Start from a zeroed
 * snapshot. */
void histo_add_to(const histo_t *h, histo_snapshot_t *s);

/* The q-quantile (0 < q <= 1) in microseconds, interpolated linearly inside
 * its bucket (the usual Prometheus histogram_quantile estimate); a quantile
 * in the +Inf bucket is reported as the last finite bound. -1 when empty. */
double histo_quantile(const histo_snapshot_t *s, double q);

/* Writes `name`'s Prometheus histogram (# TYPE, _bucket{le=..} cumulative,
 * in seconds, _sum in seconds, _count) into out[0..cap). Returns the bytes
 * written; a full buffer cuts the text (the caller's buffer is sized for
 * it). `name` is a metric name, trusted. */
size_t histo_render_prom(const histo_snapshot_t *s, const char *name, char *out, size_t cap);

#endif
