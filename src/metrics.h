/*
 * metrics.h - GET /metrics: the Prometheus text format, summed over the
 * workers' counters (relaxed atomics), the hub, and the store or Redis, as
 * stats_collect (stats.h) reads them, plus the two latency histograms
 * (worker.h) with fixed buckets (histo.h). No per-topic labels: a label
 * per topic would let clients grow it.
 *
 * Threads: the request's worker thread; it only reads other threads'
 * atomics and takes the hub's lock for two numbers and the journal's for
 * one; the text is rendered after both are released.
 */
#ifndef COURANT_METRICS_H
#define COURANT_METRICS_H

#include "req.h"

void metrics_handle(req_t *r, const request_t *in);

#endif
