/*
 * metrics.c - see metrics.h.
 */
#include "metrics.h"

#include "backplane.h"
#include "conn.h"
#include "hub.h"
#include "server.h"
#include "store.h"
#include "tls.h"
#include "worker.h"

#include <stdio.h>

/* Appends to body[0..*n) within cap; a full buffer stops appending. */
#define APPEND(body, cap, n, ...)                                                          \
    do {                                                                                   \
        if (*(n) < (cap)) {                                                                \
            int k_ = snprintf((body) + *(n), (cap) - *(n), __VA_ARGS__);                   \
            *(n) = k_ < 0 ? (cap) : *(n) + (size_t)k_ < (cap) ? *(n) + (size_t)k_ : (cap); \
        }                                                                                  \
    } while (0)

static void worker_counters(server_t *srv, char *body, size_t cap, size_t *n)
{
    unsigned long sum[7] = {0}, refused[REFUSE__COUNT] = {0};
    for (int i = 0; i < srv->num_workers; i++) {
        worker_stats_t *st = worker_stats(srv->workers[i]);
        atomic_ulong *fields[7] = {&st->accepted, &st->deliveries,       &st->bytes_written,
                                   &st->replayed, &st->slow_disconnects, &st->streams_open,
                                   &st->requests};
        for (int k = 0; k < 7; k++)
            sum[k] += atomic_load_explicit(fields[k], memory_order_relaxed);
        for (int k = 0; k < REFUSE__COUNT; k++)
            refused[k] += atomic_load_explicit(&st->refused[k], memory_order_relaxed);
    }
    hub_stats_t hs;
    hub_get_stats(srv->hub, &hs);
    APPEND(body, cap, n,
           "# TYPE courant_connections_open gauge\ncourant_connections_open %ld\n"
           "# TYPE courant_connections_accepted_total counter\ncourant_connections_accepted_total %lu\n"
           "# TYPE courant_subscribers_open gauge\ncourant_subscribers_open %lu\n"
           "# TYPE courant_requests_total counter\ncourant_requests_total %lu\n"
           "# TYPE courant_events_published_total counter\ncourant_events_published_total %llu\n"
           "# TYPE courant_deliveries_total counter\ncourant_deliveries_total %lu\n"
           "# TYPE courant_bytes_written_total counter\ncourant_bytes_written_total %lu\n"
           "# TYPE courant_events_replayed_total counter\ncourant_events_replayed_total %lu\n"
           "# TYPE courant_slow_subscriber_disconnects_total counter\n"
           "courant_slow_subscriber_disconnects_total %lu\n"
           "# TYPE courant_history_events gauge\ncourant_history_events %llu\n"
           "# TYPE courant_request_body_bytes gauge\ncourant_request_body_bytes %lld\n"
           "# TYPE courant_refused_requests_total counter\n",
           atomic_load(&srv->open_conns), sum[0], sum[5], sum[6], (unsigned long long)hs.published, sum[1],
           sum[2], sum[3], sum[4], (unsigned long long)hs.history_len, atomic_load(&srv->body_bytes));
    for (int k = 0; k < REFUSE__COUNT; k++)
        APPEND(body, cap, n, "courant_refused_requests_total{reason=\"%s\"} %lu\n", refusal_names[k],
               refused[k]);
}

static void journal_counters(server_t *srv, char *body, size_t cap, size_t *n)
{
    if (srv->store) {
        store_stats_t ss;
        store_get_stats(srv->store, &ss);
        APPEND(body, cap, n,
               "# TYPE courant_store_commits_total counter\ncourant_store_commits_total %llu\n"
               "# TYPE courant_store_events_total counter\ncourant_store_events_total %llu\n"
               "# TYPE courant_store_failed_events_total counter\ncourant_store_failed_events_total %llu\n"
               "# TYPE courant_store_rows gauge\ncourant_store_rows %llu\n"
               "# TYPE courant_store_healthy gauge\ncourant_store_healthy %d\n",
               (unsigned long long)ss.commits, (unsigned long long)ss.events, (unsigned long long)ss.failed,
               (unsigned long long)ss.rows, ss.healthy);
    }
    if (srv->tls) {
        tls_stats_t ts;
        tls_get_stats(&ts);
        APPEND(
            body, cap, n,
            "# TYPE courant_tls_handshakes_total counter\ncourant_tls_handshakes_total %lu\n"
            "# TYPE courant_tls_resumed_total counter\ncourant_tls_resumed_total %lu\n"
            "# TYPE courant_tls_handshake_failures_total counter\ncourant_tls_handshake_failures_total %lu\n"
            "# TYPE courant_tls_records_total counter\ncourant_tls_records_total %lu\n"
            "# TYPE courant_tls_record_bytes_total counter\ncourant_tls_record_bytes_total %lu\n",
            ts.handshakes, ts.resumed, ts.failed, ts.records, ts.record_bytes);
    }
    if (srv->backplane) {
        backplane_stats_t bs;
        backplane_get_stats(srv->backplane, &bs);
        APPEND(
            body, cap, n,
            "# TYPE courant_backplane_up gauge\ncourant_backplane_up %d\n"
            "# TYPE courant_backplane_xadd_total counter\ncourant_backplane_xadd_total %llu\n"
            "# TYPE courant_backplane_xadd_failed_total counter\ncourant_backplane_xadd_failed_total %llu\n"
            "# TYPE courant_backplane_xread_total counter\ncourant_backplane_xread_total %llu\n"
            "# TYPE courant_backplane_bad_entries_total counter\ncourant_backplane_bad_entries_total %llu\n",
            bs.up, (unsigned long long)bs.xadd, (unsigned long long)bs.xadd_failed,
            (unsigned long long)bs.xread, (unsigned long long)bs.bad_entries);
    }
}

void metrics_handle(req_t *r, const request_t *in)
{
    server_t *srv = worker_server(r->conn->worker);
    char body[8192];
    size_t n = 0;
    worker_counters(srv, body, sizeof(body), &n);
    journal_counters(srv, body, sizeof(body), &n);
    req_respond(r, 200, &in->cors, "text/plain; version=0.0.4", body, n);
}
