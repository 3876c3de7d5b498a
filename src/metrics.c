/*
 * metrics.c - see metrics.h.
 */
#include "metrics.h"

#include "conn.h"
#include "hub.h"
#include "journal.h"
#include "ratelimit.h"
#include "server.h"
#include "subs.h"
#include "worker.h"

#include <stdio.h>
#include <string.h>

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
    unsigned long sum[10] = {0}, refused[REFUSE__COUNT] = {0};
    for (int i = 0; i < srv->num_workers; i++) {
        worker_stats_t *st = worker_stats(srv->workers[i]);
        atomic_ulong *fields[10] = {
            &st->accepted,     &st->deliveries, &st->bytes_written, &st->replayed,     &st->slow_disconnects,
            &st->streams_open, &st->requests,   &st->writes,        &st->answers_held, &st->lag_refusals};
        for (int k = 0; k < 10; k++)
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
           "# TYPE courant_writes_total counter\ncourant_writes_total %lu\n"
           "# TYPE courant_publish_answers_held_total counter\ncourant_publish_answers_held_total %lu\n"
           "# TYPE courant_publish_lag_refusals_total counter\ncourant_publish_lag_refusals_total %lu\n"
           "# TYPE courant_fanout_lag_seconds gauge\ncourant_fanout_lag_seconds %.6f\n"
           "# TYPE courant_events_replayed_total counter\ncourant_events_replayed_total %lu\n"
           "# TYPE courant_slow_subscriber_disconnects_total counter\n"
           "courant_slow_subscriber_disconnects_total %lu\n"
           "# TYPE courant_history_events gauge\ncourant_history_events %llu\n"
           "# TYPE courant_request_body_bytes gauge\ncourant_request_body_bytes %lld\n"
           "# TYPE courant_refused_requests_total counter\n",
           atomic_load(&srv->open_conns), sum[0], sum[5], sum[6], (unsigned long long)hs.published, sum[1],
           sum[2], sum[7], sum[8], sum[9], (double)worker_fanout_lag_ns(srv) / 1e9, sum[3], sum[4],
           (unsigned long long)hs.history_len, atomic_load(&srv->body_bytes));
    for (int k = 0; k < REFUSE__COUNT; k++)
        APPEND(body, cap, n, "courant_refused_requests_total{reason=\"%s\"} %lu\n", refusal_names[k],
               refused[k]);
}

static void journal_counters(server_t *srv, char *body, size_t cap, size_t *n)
{
    journal_stats_t js;
    journal_stats(srv->journal, &js);
    APPEND(body, cap, n, "# TYPE courant_journal_refused_total counter\ncourant_journal_refused_total %llu\n",
           (unsigned long long)js.refused);
    if (!strcmp(js.name, "store"))
        APPEND(body, cap, n,
               "# TYPE courant_store_commits_total counter\ncourant_store_commits_total %llu\n"
               "# TYPE courant_store_events_total counter\ncourant_store_events_total %llu\n"
               "# TYPE courant_store_failed_events_total counter\ncourant_store_failed_events_total %llu\n"
               "# TYPE courant_store_rows gauge\ncourant_store_rows %llu\n"
               "# TYPE courant_store_bad_rows_total counter\ncourant_store_bad_rows_total %llu\n"
               "# TYPE courant_store_healthy gauge\ncourant_store_healthy %d\n",
               (unsigned long long)js.groups, (unsigned long long)js.events, (unsigned long long)js.failed,
               (unsigned long long)js.rows, (unsigned long long)js.bad_records, js.up);
    if (!strcmp(js.name, "redis"))
        APPEND(
            body, cap, n,
            "# TYPE courant_backplane_up gauge\ncourant_backplane_up %d\n"
            "# TYPE courant_backplane_xadd_total counter\ncourant_backplane_xadd_total %llu\n"
            "# TYPE courant_backplane_xadd_failed_total counter\ncourant_backplane_xadd_failed_total %llu\n"
            "# TYPE courant_backplane_xread_total counter\ncourant_backplane_xread_total %llu\n"
            "# TYPE courant_backplane_bad_entries_total counter\ncourant_backplane_bad_entries_total %llu\n",
            js.up, (unsigned long long)js.events, (unsigned long long)js.failed,
            (unsigned long long)js.read_back, (unsigned long long)js.bad_records);
}

/* The per-client limit tables: keys held, and rate keys forgotten while
 * not yet refilled (a sign a table is too small). */
static void limit_counters(server_t *srv, char *body, size_t cap, size_t *n)
{
    size_t pk = 0, sk = 0;
    uint64_t pe = 0, se = 0;
    if (srv->publish_rate)
        ratelimit_stats(srv->publish_rate, &pk, &pe);
    if (srv->subscribe_rate)
        ratelimit_stats(srv->subscribe_rate, &sk, &se);
    APPEND(body, cap, n,
           "# TYPE courant_limit_keys gauge\n"
           "courant_limit_keys{table=\"connections_per_ip\"} %zu\n"
           "courant_limit_keys{table=\"publish_rate\"} %zu\n"
           "courant_limit_keys{table=\"subscribe_rate\"} %zu\n"
           "# TYPE courant_limit_evicted_total counter\n"
           "courant_limit_evicted_total{table=\"publish_rate\"} %llu\n"
           "courant_limit_evicted_total{table=\"subscribe_rate\"} %llu\n",
           srv->conns_per_ip ? ratelimit_counter_keys(srv->conns_per_ip) : 0, pk, sk, (unsigned long long)pe,
           (unsigned long long)se);
}

void metrics_handle(req_t *r, const request_t *in)
{
    server_t *srv = worker_server(r->conn->worker);
    char body[8192];
    size_t n = 0;
    worker_counters(srv, body, sizeof(body), &n);
    journal_counters(srv, body, sizeof(body), &n);
    limit_counters(srv, body, sizeof(body), &n);
    if (srv->subs)
        APPEND(body, sizeof(body), &n,
               "# TYPE courant_subscription_events_dropped_total counter\n"
               "courant_subscription_events_dropped_total %lu\n",
               subs_dropped_events(srv->subs));
    req_respond(r, 200, &in->cors, "text/plain; version=0.0.4", body, n);
}
