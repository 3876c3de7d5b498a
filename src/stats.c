/*
 * stats.c - see stats.h.
 */
#include "stats.h"

#include "hub.h"
#include "server.h"
#include "worker.h"

#include <string.h>

static uint64_t load(const atomic_ulong *a) { return atomic_load_explicit(a, memory_order_relaxed); }

static void add_worker(worker_t *w, stats_t *out, stats_worker_t *mine)
{
    worker_stats_t *st = worker_stats(w);
    out->accepted += load(&st->accepted);
    out->deliveries += load(&st->deliveries);
    out->bytes_written += load(&st->bytes_written);
    out->replayed += load(&st->replayed);
    out->slow_disconnects += load(&st->slow_disconnects);
    out->writes += load(&st->writes);
    out->answers_held += load(&st->answers_held);
    out->lag_refusals += load(&st->lag_refusals);
    out->h2_connections += load(&st->h2_connections);
    out->h2_streams += load(&st->h2_streams);
    out->h2_calm += load(&st->h2_calm);
    out->subscribers += load(&st->streams_open);
    out->requests += load(&st->requests);
    for (int k = 0; k < REFUSE__COUNT; k++)
        out->refused[k] += load(&st->refused[k]);
    histo_add_to(&st->publish_enqueue, &out->publish_enqueue);
    histo_add_to(&st->enqueue_written, &out->enqueue_written);
    if (mine) {
        mine->turns = worker_turns(w);
        mine->busy_us = load(&st->busy_us);
        mine->conns = load(&st->conns_open);
        mine->subscribers = load(&st->streams_open);
        mine->deliveries = load(&st->deliveries);
        mine->bytes_written = load(&st->bytes_written);
    }
}

void stats_collect(server_t *srv, stats_t *out, stats_worker_t *per_worker)
{
    memset(out, 0, sizeof(*out));
    out->num_workers = srv->num_workers;
    out->open_conns = atomic_load_explicit(&srv->open_conns, memory_order_relaxed);
    out->body_bytes = atomic_load_explicit(&srv->body_bytes, memory_order_relaxed);
    out->head_bytes = atomic_load_explicit(&srv->head_bytes, memory_order_relaxed);
    out->fanout_lag_ns = worker_fanout_lag_ns(srv);
    for (int i = 0; i < srv->num_workers; i++)
        add_worker(srv->workers[i], out, per_worker ? &per_worker[i] : NULL);
    hub_stats_t hs;
    hub_get_stats(srv->hub, &hs);
    out->published = hs.published;
    out->history_len = hs.history_len;
    journal_stats(srv->journal, &out->journal);
}
