/*
 * metrics.c - see metrics.h.
 */
#include "metrics.h"

#include "acme.h"
#include "buildinfo.h"
#include "conn.h"
#include "ratelimit.h"
#include "server.h"
#include "stats.h"
#include "subs.h"
#include "tls.h"
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

static void worker_counters(const stats_t *st, char *body, size_t cap, size_t *n)
{
    APPEND(body, cap, n,
           "# TYPE courant_connections_open gauge\ncourant_connections_open %lld\n"
           "# TYPE courant_connections_accepted_total counter\ncourant_connections_accepted_total %llu\n"
           "# TYPE courant_subscribers_open gauge\ncourant_subscribers_open %llu\n"
           "# TYPE courant_requests_total counter\ncourant_requests_total %llu\n"
           "# TYPE courant_events_published_total counter\ncourant_events_published_total %llu\n"
           "# TYPE courant_deliveries_total counter\ncourant_deliveries_total %llu\n"
           "# TYPE courant_bytes_written_total counter\ncourant_bytes_written_total %llu\n"
           "# TYPE courant_writes_total counter\ncourant_writes_total %llu\n"
           "# TYPE courant_publish_answers_held_total counter\ncourant_publish_answers_held_total %llu\n"
           "# TYPE courant_publish_lag_refusals_total counter\ncourant_publish_lag_refusals_total %llu\n"
           "# TYPE courant_fanout_lag_seconds gauge\ncourant_fanout_lag_seconds %.6f\n"
           "# TYPE courant_events_replayed_total counter\ncourant_events_replayed_total %llu\n"
           "# TYPE courant_slow_subscriber_disconnects_total counter\n"
           "courant_slow_subscriber_disconnects_total %llu\n"
           "# TYPE courant_history_events gauge\ncourant_history_events %llu\n"
           "# TYPE courant_request_body_bytes gauge\ncourant_request_body_bytes %lld\n"
           "# TYPE courant_request_head_bytes gauge\ncourant_request_head_bytes %lld\n"
           "# TYPE courant_refused_requests_total counter\n",
           (long long)st->open_conns, (unsigned long long)st->accepted, (unsigned long long)st->subscribers,
           (unsigned long long)st->requests, (unsigned long long)st->published,
           (unsigned long long)st->deliveries, (unsigned long long)st->bytes_written,
           (unsigned long long)st->writes, (unsigned long long)st->answers_held,
           (unsigned long long)st->lag_refusals, (double)st->fanout_lag_ns / 1e9,
           (unsigned long long)st->replayed, (unsigned long long)st->slow_disconnects,
           (unsigned long long)st->history_len, (long long)st->body_bytes, (long long)st->head_bytes);
    for (int k = 0; k < REFUSE__COUNT; k++)
        APPEND(body, cap, n, "courant_refused_requests_total{reason=\"%s\"} %llu\n", refusal_names[k],
               (unsigned long long)st->refused[k]);
    APPEND(body, cap, n,
           "# TYPE courant_h2_connections_total counter\ncourant_h2_connections_total %llu\n"
           "# TYPE courant_h2_streams_total counter\ncourant_h2_streams_total %llu\n"
           "# TYPE courant_h2_enhance_your_calm_total counter\ncourant_h2_enhance_your_calm_total %llu\n",
           (unsigned long long)st->h2_connections, (unsigned long long)st->h2_streams,
           (unsigned long long)st->h2_calm);
}

/* The latency histograms (worker.h): fixed buckets, summed over workers. */
static void latency_histograms(const stats_t *st, char *body, size_t cap, size_t *n)
{
    if (*n < cap)
        *n += histo_render_prom(&st->publish_enqueue, "courant_publish_enqueue_seconds", body + *n, cap - *n);
    if (*n < cap)
        *n += histo_render_prom(&st->enqueue_written, "courant_enqueue_written_seconds", body + *n, cap - *n);
}

static void journal_counters(const journal_stats_t *js, char *body, size_t cap, size_t *n)
{
    APPEND(body, cap, n,
           "# TYPE courant_journal_refused_total counter\ncourant_journal_refused_total %llu\n"
           "# TYPE courant_journal_queued gauge\ncourant_journal_queued %llu\n",
           (unsigned long long)js->refused, (unsigned long long)js->queued);
    if (!strcmp(js->name, "store"))
        APPEND(body, cap, n,
               "# TYPE courant_store_commits_total counter\ncourant_store_commits_total %llu\n"
               "# TYPE courant_store_events_total counter\ncourant_store_events_total %llu\n"
               "# TYPE courant_store_failed_events_total counter\ncourant_store_failed_events_total %llu\n"
               "# TYPE courant_store_rows gauge\ncourant_store_rows %llu\n"
               "# TYPE courant_store_bad_rows_total counter\ncourant_store_bad_rows_total %llu\n"
               "# TYPE courant_store_healthy gauge\ncourant_store_healthy %d\n",
               (unsigned long long)js->groups, (unsigned long long)js->events, (unsigned long long)js->failed,
               (unsigned long long)js->rows, (unsigned long long)js->bad_records, js->up);
    if (!strcmp(js->name, "redis"))
        APPEND(
            body, cap, n,
            "# TYPE courant_backplane_up gauge\ncourant_backplane_up %d\n"
            "# TYPE courant_backplane_xadd_total counter\ncourant_backplane_xadd_total %llu\n"
            "# TYPE courant_backplane_xadd_failed_total counter\ncourant_backplane_xadd_failed_total %llu\n"
            "# TYPE courant_backplane_xread_total counter\ncourant_backplane_xread_total %llu\n"
            "# TYPE courant_backplane_bad_entries_total counter\ncourant_backplane_bad_entries_total %llu\n",
            js->up, (unsigned long long)js->events, (unsigned long long)js->failed,
            (unsigned long long)js->read_back, (unsigned long long)js->bad_records);
}

/* The per-client limit tables: keys held, and rate keys forgotten while
 * not yet refilled (a sign a table is too small). */
static void limit_counters(server_t *srv, char *body, size_t cap, size_t *n)
{
    size_t pk = 0, sk = 0;
    uint64_t pe = 0, se = 0;
    const server_limits_t *lim = srv->limits;
    if (lim->publish_rate)
        ratelimit_stats(lim->publish_rate, &pk, &pe);
    if (lim->subscribe_rate)
        ratelimit_stats(lim->subscribe_rate, &sk, &se);
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
    char body[16384];
    size_t n = 0;
    stats_t st;
    stats_collect(srv, &st, NULL); /* every lock is released before rendering */
    APPEND(body, sizeof(body), &n, "# TYPE courant_build_info gauge\ncourant_build_info{version=\"%s\"} 1\n",
           courant_version()); /* version.sh allows only [A-Za-z0-9.+~-]: nothing to escape */
    worker_counters(&st, body, sizeof(body), &n);
    latency_histograms(&st, body, sizeof(body), &n);
    journal_counters(&st.journal, body, sizeof(body), &n);
    limit_counters(srv, body, sizeof(body), &n);
    if (srv->tls) {
        tls_stats_t ts;
        tls_get_stats(&ts);
        APPEND(
            body, sizeof(body), &n,
            "# TYPE courant_tls_handshakes_total counter\ncourant_tls_handshakes_total %lu\n"
            "# TYPE courant_tls_resumed_total counter\ncourant_tls_resumed_total %lu\n"
            "# TYPE courant_tls_handshake_failures_total counter\ncourant_tls_handshake_failures_total %lu\n"
            "# TYPE courant_tls_records_total counter\ncourant_tls_records_total %lu\n"
            "# TYPE courant_tls_record_bytes_total counter\ncourant_tls_record_bytes_total %lu\n",
            ts.handshakes, ts.resumed, ts.failed, ts.records, ts.record_bytes);
    }
    if (srv->acme) {
        acme_stats_t as;
        acme_get_stats(srv->acme, &as);
        APPEND(body, sizeof(body), &n,
               "# TYPE courant_acme_orders_total counter\ncourant_acme_orders_total %llu\n"
               "# TYPE courant_acme_issued_total counter\ncourant_acme_issued_total %llu\n"
               "# TYPE courant_acme_failures_total counter\ncourant_acme_failures_total %llu\n"
               "# TYPE courant_acme_certificate_expiry_seconds "
               "gauge\ncourant_acme_certificate_expiry_seconds %lld\n"
               "# TYPE courant_acme_next_attempt_seconds gauge\ncourant_acme_next_attempt_seconds %lld\n",
               (unsigned long long)as.orders, (unsigned long long)as.issued, (unsigned long long)as.failures,
               (long long)as.not_after, (long long)as.renew_at);
    }
    if (srv->subs)
        APPEND(body, sizeof(body), &n,
               "# TYPE courant_subscription_events_dropped_total counter\n"
               "courant_subscription_events_dropped_total %lu\n",
               subs_dropped_events(srv->subs));
    req_respond(r, 200, &in->cors, "text/plain; version=0.0.4", body, n);
}
