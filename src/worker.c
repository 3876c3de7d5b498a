/*
 * worker.c - see worker.h for the turn of the loop and the inbox.
 */
#include "worker.h"

#include "acks.h"
#include "conn.h"
#include "log.h"
#include "peer.h"
#include "ratelimit.h"
#include "server.h"
#include "stream.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WORKER_MAX_LISTEN 16
#define WORKER_EPOLL_BATCH 256
#define WORKER_TICK_MS 250
/* A turn that accepts also reads and answers each new connection's request
 * (first_read: TCP_DEFER_ACCEPT means its bytes are there), so this bounds
 * the work a connection flood puts in one turn, ahead of the inbox. 64, not
 * 256: an honest publish-to-delivery under a 64-way subscribe flood (ASan,
 * one worker, tests/e2e/hostile.test.mjs "hash flooding") went from a max of
 * 140-410 ms to 60-77 ms, for connects/s at N=1,000 within this machine's
 * noise (medians of 7 alternating runs: 22.5k against 24.6k). */
#define WORKER_ACCEPT_PER_TURN 64
#define WORKER_DRAIN_SPREAD_MS 1000 /* shutdown closes streams over this window */
#define WORKER_STOP_GRACE_MS 4000   /* then whatever is left is closed */
#define WORKER_FLUSH_PASSES 4
/* Conns flushed between two looks at new requests (poll_requests): one
 * epoll_wait(0) per 64 writevs (+1.5 % syscalls) keeps publishers answered
 * while a fan-out writes to thousands of subscribers. */
#define WORKER_FLUSH_SLICE 64
#define WORKER_BATCH_EVENTS 128     /* a gathered inbox this full is fanned out at once */
#define WORKER_HELD_POLL_NS 1000000 /* a worker holding answers checks the lag every 1 ms */

/* What an epoll event's data.ptr points at; conn_t starts with the same int. */
enum { HANDLE_CONN, HANDLE_LISTENER, HANDLE_INBOX };

/* A publish answer held by pacing: completed through the ack table. */
typedef struct held {
    uint64_t token; /* the ack slot (acks.h) */
    evbuf_t *ev;    /* owns one reference: the answer names its id */
} held_t;

/* One inbox entry: an event to fan out, or the journal's answer to a publish. */
typedef struct inbox_msg {
    evbuf_t *ev;    /* owns one reference */
    uint64_t token; /* 0: fan `ev` out; else the ack token of a waiting publish */
    int ok;         /* acks: 1 accepted by the journal, 0 not */
} inbox_msg_t;

typedef struct listener {
    int handle_kind;         /* HANDLE_LISTENER */
    int fd;                  /* owns */
    worker_accept_fn accept; /* the protocol its connections speak */
    worker_refuse_fn refuse; /* its over-capacity answer, or NULL */
    void *ctx;               /* borrows: for accept */
} listener_t;

struct worker {
    int index;
    server_t *srv; /* borrows */
    pthread_t thread;
    int epfd;              /* owns */
    int inbox_handle_kind; /* HANDLE_INBOX: its address is the epoll tag */
    int evfd;              /* owns: the inbox doorbell */
    listener_t listeners[WORKER_MAX_LISTEN];
    int num_listeners;

    pthread_mutex_t inbox_lock; /* guards inbox, inbox_len, inbox_cap */
    inbox_msg_t *inbox;         /* owns; events in seq order, each ack after its event */
    size_t inbox_len, inbox_cap;

    atomic_llong busy_since_ns; /* hub_ns of the oldest event posted here and not yet written
                                   (taken, fanned out, flushed), 0 if none: the fan-out lag.
                                   Written under inbox_lock; read by any thread */
    atomic_llong pass_ns;       /* how long the last turn that took the inbox spent taking,
                                   fanning out and writing it: the lag a worker that keeps up
                                   still shows (pacing counts only the lag beyond it) */
    uint8_t inbox_rung;         /* the doorbell rang: the inbox may hold messages not yet taken */
    int64_t last_take_ns;       /* CLOCK_MONOTONIC when the inbox was last taken (fan-out batching) */
    int64_t take_due_ns;        /* 0, or when the gathered inbox must be taken at the latest */
    int64_t batch_ns;           /* --fanout-batch-us in ns; 0 = take the inbox every turn */

    acks_t *acks; /* owns: publishes waiting for the journal, or held by pacing */
    held_t *held; /* owns: publish answers held while the fan-out lags (pacing) */
    size_t num_held, cap_held;
    int64_t now_ms;   /* CLOCK_MONOTONIC at the start of the turn */
    int64_t now_us;   /* the same, in microseconds */
    int64_t write_us; /* CLOCK_MONOTONIC us, read once per turn before the flush: the write
                         latency's "now" (worker__event_written) */
    atomic_uint turn; /* turns so far (per-turn budgets; read by a reload) */
    int64_t next_tick_ms;
    int64_t stop_deadline_ms; /* 0 until stopping */
    conn_t *conns;            /* owns: every open connection (list) */
    size_t num_conns;
    conn_t *flush_list;      /* borrows: conns with output to write, FIFO */
    conn_t *flush_tail;      /* borrows: last of flush_list (valid when it is non-NULL) */
    conn_t *read_list;       /* borrows: conns to read again next turn (budget spent) */
    conn_t *free_list;       /* owns: conns closed this turn */
    stream_index_t *streams; /* owns */
    wref_pool_t wrefs;       /* spare wrefs: no malloc per event */
    worker_stats_t stats;
    unsigned drop_log_budget; /* rate-limits the over-capacity log line */
};

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t monotonic_us(void) { return monotonic_ns() / 1000; }

/* The turn's clock: both units from one read. */
static void clock_turn(worker_t *w)
{
    w->now_us = monotonic_us();
    w->now_ms = w->now_us / 1000;
    w->write_us = w->now_us;
}

worker_t *worker_new(int index, server_t *srv, const worker_listener_t *listeners, int num_listeners)
{
    worker_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->index = index;
    w->srv = srv;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->inbox_handle_kind = HANDLE_INBOX;
    wref_pool_init(&w->wrefs);
    w->streams = stream_index_new(w);
    w->acks = acks_new();
    pthread_mutex_init(&w->inbox_lock, NULL);
    if (w->epfd < 0 || w->evfd < 0 || !w->streams || !w->acks || num_listeners > WORKER_MAX_LISTEN)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->inbox_handle_kind};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev))
        goto fail;
    for (int i = 0; i < num_listeners; i++) {
        listener_t *l = &w->listeners[w->num_listeners++];
        *l = (listener_t){HANDLE_LISTENER, listeners[i].fd, listeners[i].accept, listeners[i].refuse,
                          listeners[i].ctx};
        ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = l};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev))
            goto fail;
    }
    clock_turn(w);
    w->batch_ns = (int64_t)srv->cfg->fanout_batch_us * 1000;
    w->drop_log_budget = 1;
    return w;
fail:
    log_error("worker %d: cannot set up its event loop: %s", index, strerror(errno));
    worker_free(w);
    return NULL;
}

static void flush_pass(worker_t *w);
static void read_again(worker_t *w);

static void free_closed(worker_t *w)
{
    while (w->free_list) {
        conn_t *c = w->free_list;
        w->free_list = c->flush_next;
        conn_free(c);
    }
}

void worker_free(worker_t *w)
{
    if (!w)
        return;
    while (w->conns)
        conn_close(w->conns, "worker freed");
    while (w->flush_list)
        flush_pass(w);
    read_again(w);
    free_closed(w);
    for (size_t i = 0; i < w->inbox_len; i++)
        evbuf_unref(w->inbox[i].ev);
    free(w->inbox);
    for (size_t i = 0; i < w->num_held; i++)
        evbuf_unref(w->held[i].ev);
    free(w->held);
    acks_free(w->acks);
    for (int i = 0; i < w->num_listeners; i++)
        if (w->listeners[i].fd >= 0)
            close(w->listeners[i].fd);
    stream_index_free(w->streams);
    wref_pool_dispose(&w->wrefs);
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->evfd >= 0)
        close(w->evfd);
    pthread_mutex_destroy(&w->inbox_lock);
    free(w);
}

/* ---- accessors --------------------------------------------------------------- */

worker_stats_t *worker_stats(worker_t *w) { return &w->stats; }
int worker_index(const worker_t *w) { return w->index; }
server_t *worker_server(worker_t *w) { return w->srv; }
struct stream_index *worker__streams(worker_t *w) { return w->streams; }
struct acks *worker__acks(worker_t *w) { return w->acks; }
wref_pool_t *worker__wrefs(worker_t *w) { return &w->wrefs; }
int64_t worker__now_ms(const worker_t *w) { return w->now_ms; }
int64_t worker__now_us(const worker_t *w) { return w->now_us; }

static void record_written(void *wp, int64_t hub_ns)
{
    worker_t *w = wp;
    if (hub_ns) /* 0: loaded from the store at start */
        histo_record(&w->stats.enqueue_written, w->write_us - hub_ns / 1000);
}

void worker__event_written(void *wp, const outq_item_t *it)
{
    if (it->kind == OUTQ_BLOCK) /* only live events are copied (wref.h) */
        wblock_each_event(it->block, it->ptr, it->len, record_written, wp);
    else if (it->wref->live)
        record_written(wp, it->wref->ev->hub_ns);
}
uint32_t worker__turn(const worker_t *w) { return atomic_load_explicit(&w->turn, memory_order_relaxed); }
uint32_t worker_turns(worker_t *w) { return atomic_load_explicit(&w->turn, memory_order_acquire); }

/* ---- lists -------------------------------------------------------------------- */

void worker__schedule_flush(worker_t *w, conn_t *c)
{
    if (c->in_flush_list || c->state == CONN_CLOSING)
        return;
    /* FIFO: a publisher's answer, queued while reading its request, is
     * written before the subscriber writes the turn's fan-out queued later
     * (LIFO made the publisher wait behind every subscriber, which slowed it
     * down and kept the fan-out batches small). */
    c->in_flush_list = 1;
    c->flush_next = NULL;
    if (w->flush_list)
        w->flush_tail->flush_next = c;
    else
        w->flush_list = c;
    w->flush_tail = c;
}

void worker__schedule_read(worker_t *w, conn_t *c)
{
    if (c->in_read_list || c->state == CONN_CLOSING)
        return;
    c->in_read_list = 1;
    c->read_next = w->read_list;
    w->read_list = c;
}

void worker__link_conn(worker_t *w, conn_t *c)
{
    c->prev = NULL;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->num_conns++;
    atomic_store_explicit(&w->stats.conns_open, w->num_conns, memory_order_relaxed);
}

void worker__schedule_free(worker_t *w, conn_t *c)
{
    /* Unlink from the open list now; the memory waits for the end of turn. */
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    w->num_conns--;
    atomic_store_explicit(&w->stats.conns_open, w->num_conns, memory_order_relaxed);
    atomic_fetch_sub_explicit(&w->srv->open_conns, 1, memory_order_relaxed);
    /* A conn on the flush or read list is skipped there (CLOSING) and
     * then moved to the free list by whichever list lets go of it last. */
    if (!c->in_flush_list && !c->in_read_list) {
        c->flush_next = w->free_list;
        w->free_list = c;
    }
}

/* A closed conn leaves a list: free it once no list holds it. */
static void release_from_lists(worker_t *w, conn_t *c)
{
    if (c->state == CONN_CLOSING && !c->in_flush_list && !c->in_read_list) {
        c->flush_next = w->free_list;
        w->free_list = c;
    }
}

/* ---- inbox --------------------------------------------------------------------- */

/* Pushes a message; returns 1 when a wake-up is due: the inbox was empty,
 * or it just filled a batch (a worker gathering a batch sleeps until its
 * deadline otherwise; see take_inbox_if_due). */
static int inbox_push(worker_t *w, evbuf_t *ev, uint64_t token, int ok)
{
    pthread_mutex_lock(&w->inbox_lock);
    if (w->inbox_len == w->inbox_cap) {
        size_t ncap = w->inbox_cap ? w->inbox_cap * 2 : 64;
        inbox_msg_t *n = realloc(w->inbox, ncap * sizeof(*n));
        if (!n)
            abort(); /* the inbox is drained every turn; this is 24 bytes/event */
        w->inbox = n;
        w->inbox_cap = ncap;
    }
    evbuf_ref(ev);
    if (!token && !atomic_load_explicit(&w->busy_since_ns, memory_order_relaxed))
        atomic_store_explicit(&w->busy_since_ns, ev->hub_ns, memory_order_relaxed);
    int wake = w->inbox_len == 0 || w->inbox_len + 1 == WORKER_BATCH_EVENTS;
    w->inbox[w->inbox_len++] = (inbox_msg_t){ev, token, ok};
    pthread_mutex_unlock(&w->inbox_lock);
    return wake;
}

int worker_post(worker_t *w, evbuf_t *ev) { return inbox_push(w, ev, 0, 0); }

void worker_post_ack(void *worker, uint64_t token, evbuf_t *ev, int ok)
{
    assert(token != 0);
    if (inbox_push(worker, ev, token, ok))
        worker_wake(worker);
}

void worker_wake(worker_t *w)
{
    uint64_t one = 1;
    ssize_t r;
    do
        r = write(w->evfd, &one, sizeof(one));
    while (r < 0 && errno == EINTR);
}

/* The doorbell: remember that the inbox has messages; take_inbox_if_due
 * decides when to take them. */
static void on_doorbell(worker_t *w)
{
    uint64_t junk;
    while (read(w->evfd, &junk, sizeof(junk)) < 0 && errno == EINTR)
        ;
    w->inbox_rung = 1;
}

/* Takes the whole inbox in one lock, then fans out without holding it. */
static void take_inbox(worker_t *w, int64_t now_ns)
{
    pthread_mutex_lock(&w->inbox_lock);
    inbox_msg_t *batch = w->inbox;
    size_t n = w->inbox_len;
    w->inbox = NULL;
    w->inbox_len = w->inbox_cap = 0;
    pthread_mutex_unlock(&w->inbox_lock);
    w->inbox_rung = 0;
    w->take_due_ns = 0;
    w->last_take_ns = now_ns;
    for (size_t i = 0; i < n; i++) {
        if (batch[i].token)
            acks_complete(w->acks, batch[i].token, batch[i].ev, batch[i].ok);
        else
            stream_fanout(w, batch[i].ev);
        evbuf_unref(batch[i].ev);
    }
    free(batch);
}

/* Fan-out batching (--fanout-batch-us). Writing an event to a subscriber
 * costs a writev, about 4 us of kernel time on loopback whatever it
 * carries; a batch of k events costs 4 us + k x 35 ns per subscriber (a
 * measured microbenchmark: 128 events of 166 bytes went out at 36 ns each
 * in one writev, 3.6 us each one by one). So under a burst a worker gathers
 * what is published for up to --fanout-batch-us, or until
 * WORKER_BATCH_EVENTS wait, before taking the inbox; the first event after
 * a quiet spell (nothing taken for that long) goes out at once, so a
 * trickle of events pays no delay. Measured at N=1,000 with 8 publishers:
 * 23 events per writev and 250 us of CPU per 1,000 deliveries when taking
 * the inbox every turn, 100 and 97 us with 10 ms. */
static void take_inbox_if_due(worker_t *w)
{
    if (!w->inbox_rung)
        return;
    int64_t now = monotonic_ns();
    if (w->batch_ns && !w->stop_deadline_ms && now - w->last_take_ns < w->batch_ns) {
        pthread_mutex_lock(&w->inbox_lock);
        size_t n = w->inbox_len;
        pthread_mutex_unlock(&w->inbox_lock);
        if (n > 0 && n < WORKER_BATCH_EVENTS) {
            w->take_due_ns = w->last_take_ns + w->batch_ns;
            return;
        }
    }
    take_inbox(w, now);
}

/* ---- publish pacing ---------------------------------------------------------------- */

/* After the turn's flush: what was taken is written; the worker is busy
 * again only with what waits in its inbox (its oldest event's hub_ns). */
static void settle_busy(worker_t *w)
{
    if (!atomic_load_explicit(&w->busy_since_ns, memory_order_relaxed))
        return;
    int64_t since = 0;
    pthread_mutex_lock(&w->inbox_lock);
    for (size_t i = 0; i < w->inbox_len && !since; i++)
        if (!w->inbox[i].token)
            since = w->inbox[i].ev->hub_ns;
    atomic_store_explicit(&w->busy_since_ns, since, memory_order_relaxed);
    pthread_mutex_unlock(&w->inbox_lock);
}

int64_t worker_fanout_lag_ns(struct server *srv)
{
    int64_t oldest = 0;
    for (int i = 0; i < srv->num_workers; i++) {
        int64_t b = atomic_load_explicit(&srv->workers[i]->busy_since_ns, memory_order_relaxed);
        if (b && (!oldest || b < oldest))
            oldest = b;
    }
    return oldest ? monotonic_ns() - oldest : 0;
}

int64_t worker_pacing_lag_ns(struct server *srv)
{
    int64_t now = monotonic_ns(), worst = 0;
    for (int i = 0; i < srv->num_workers; i++) {
        worker_t *w = srv->workers[i];
        int64_t b = atomic_load_explicit(&w->busy_since_ns, memory_order_relaxed);
        if (!b)
            continue;
        int64_t long_pass = atomic_load_explicit(&w->pass_ns, memory_order_relaxed) - w->batch_ns;
        int64_t beyond = now - b - (long_pass > 0 ? long_pass : 0);
        if (beyond > worst)
            worst = beyond;
    }
    return worst;
}

int worker__hold_answer(worker_t *w, uint64_t token, evbuf_t *ev)
{
    if (w->num_held == w->cap_held) {
        size_t ncap = w->cap_held ? w->cap_held * 2 : 16;
        held_t *n = realloc(w->held, ncap * sizeof(*n));
        if (!n)
            return -1;
        w->held = n;
        w->cap_held = ncap;
    }
    evbuf_ref(ev);
    w->held[w->num_held++] = (held_t){token, ev};
    atomic_fetch_add_explicit(&w->stats.answers_held, 1, memory_order_relaxed);
    return 0;
}

/* Held answers go out, in the order they were held, once the fan-out lag
 * is back under --publish-wait-lag (or the server stops). */
static void release_held(worker_t *w)
{
    if (!w->num_held)
        return;
    int64_t bound = (int64_t)w->srv->cfg->publish_wait_lag_ms * 1000000;
    if (!w->stop_deadline_ms && worker_pacing_lag_ns(w->srv) > bound)
        return;
    held_t *held = w->held;
    size_t n = w->num_held;
    w->held = NULL;
    w->num_held = w->cap_held = 0;
    for (size_t i = 0; i < n; i++) {
        acks_complete(w->acks, held[i].token, held[i].ev, 1); /* dropped if its peer left */
        evbuf_unref(held[i].ev);
    }
    free(held);
}

/* ---- accepting ------------------------------------------------------------------ */

static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

/* A fresh socket refused at accept: answered (best effort), closed, counted,
 * and logged at most once per tick. */
static void refuse_at_accept(worker_t *w, listener_t *l, int fd, int status, refusal_t why, const char *what)
{
    if (l->refuse)
        l->refuse(fd, status);
    close(fd);
    atomic_fetch_add_explicit(&w->stats.refused[why], 1, memory_order_relaxed);
    if (w->drop_log_budget) {
        w->drop_log_budget = 0; /* one line per tick at most */
        log_warn("refused a connection: %s", what);
    }
}

/* --max-connections-per-ip, at accept (only the socket peer is known then):
 * loopback peers (unless --limit-loopback) and trusted proxies, whose
 * connections carry many clients, are not counted. Returns 0 (counted in
 * *counted, or exempt) or the status to refuse with. */
static int count_peer(worker_t *w, const struct sockaddr_storage *ss, socklen_t sl, int loopback,
                      int *counted)
{
    server_t *srv = w->srv;
    peer_addr_t pa;
    *counted = 0;
    if (!srv->conns_per_ip || (loopback && !srv->cfg->limit_loopback) ||
        peer_addr_from_sockaddr((const struct sockaddr *)ss, sl, &pa) ||
        peer_cidr_list_contains(srv->limits->trusted, srv->limits->num_trusted, &pa))
        return 0;
    uint8_t key[PEER_KEY_LEN];
    peer_addr_key(&pa, 64, key);
    int r = ratelimit_counter_try_acquire(srv->conns_per_ip, key, sizeof(key));
    if (r == RATELIMIT_OK)
        *counted = 1;
    return r == RATELIMIT_OK ? 0 : r == RATELIMIT_LIMITED ? 429 : 503;
}

/* The listeners accept a connection once its first bytes are there
 * (TCP_DEFER_ACCEPT, main.c): read and answer the request now, before the
 * socket joins epoll, instead of one loop turn later. A fresh socket is
 * writable. Reading before EPOLL_CTL_ADD loses nothing: the edge-triggered
 * ADD reports readiness that exists at that moment. (Without the deferred
 * accept, 70 % of these reads found nothing yet, and the 4 KiB read buffers
 * they allocated left the idle RSS at 1.2 instead of 0.44 KiB/subscriber.) */
static void first_read(conn_t *c)
{
    c->writable = 1;
    conn_on_readable(c);
}

static void accept_some(worker_t *w, listener_t *l)
{
    for (int i = 0; i < WORKER_ACCEPT_PER_TURN; i++) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN)
                log_warn("accept failed: %s", strerror(errno));
            return;
        }
        long open = atomic_fetch_add_explicit(&w->srv->open_conns, 1, memory_order_relaxed);
        if (open >= w->srv->max_connections) {
            atomic_fetch_sub_explicit(&w->srv->open_conns, 1, memory_order_relaxed);
            refuse_at_accept(w, l, fd, 503, REFUSE_OVER_CAPACITY, "--max-connections reached");
            continue;
        }
        int loopback = is_loopback(&ss), counted;
        int status = count_peer(w, &ss, sl, loopback, &counted);
        if (status) {
            atomic_fetch_sub_explicit(&w->srv->open_conns, 1, memory_order_relaxed);
            refuse_at_accept(w, l, fd, status, status == 429 ? REFUSE_RATE_LIMITED : REFUSE_OVER_CAPACITY,
                             status == 429 ? "a client address is at --max-connections-per-ip"
                                           : "no room to count one more client address");
            continue;
        }
        /* TCP_NODELAY comes from the listener (main.c). */
        conn_t *c = l->accept(w, fd, (struct sockaddr *)&ss, sl, loopback, l->ctx);
        if (!c) {
            log_warn("cannot take a connection: out of memory");
            close(fd);
            atomic_fetch_sub_explicit(&w->srv->open_conns, 1, memory_order_relaxed);
            if (counted) {
                peer_addr_t pa;
                uint8_t key[PEER_KEY_LEN];
                if (!peer_addr_from_sockaddr((struct sockaddr *)&ss, sl, &pa)) {
                    peer_addr_key(&pa, 64, key);
                    (void)ratelimit_counter_release(w->srv->conns_per_ip, key, sizeof(key));
                }
            }
            continue;
        }
        c->peer_counted = (uint8_t)counted;
        worker__link_conn(w, c);
        atomic_fetch_add_explicit(&w->stats.accepted, 1, memory_order_relaxed);
        first_read(c);
        if (c->state == CONN_CLOSING)
            continue;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev)) {
            log_warn("cannot take a connection: %s", strerror(errno));
            conn_close(c, "epoll_ctl failed"); /* unlinks, counts, frees at end of turn */
        }
    }
}

/* ---- the turn ------------------------------------------------------------------- */

static void handle_event(worker_t *w, struct epoll_event *e);

/* In the middle of a long flush: connections that became readable since
 * the turn began (a publisher's next request) are read and answered now,
 * not after thousands of subscribers were written. The listener and the
 * doorbell are level-triggered: they are left for the next turn. */
static void poll_requests(worker_t *w)
{
    struct epoll_event events[64];
    int n = epoll_wait(w->epfd, events, 64, 0);
    for (int i = 0; i < n; i++)
        if (*(int *)events[i].data.ptr == HANDLE_CONN)
            handle_event(w, &events[i]);
}

static void flush_pass(worker_t *w)
{
    unsigned flushed = 0;
    /* conn_flush may re-schedule (budget spent) or close: take the list first. */
    conn_t *list = w->flush_list;
    w->flush_list = NULL;
    while (list) {
        conn_t *c = list;
        list = c->flush_next;
        c->in_flush_list = 0;
        if (c->state == CONN_CLOSING) {
            release_from_lists(w, c);
            continue;
        }
        /* If this closes it, schedule_free sees in_flush_list == 0 and
         * puts it on the free list itself (unless the read list holds it). */
        conn_flush(c);
        if (++flushed % WORKER_FLUSH_SLICE == 0 && list)
            poll_requests(w);
    }
}

/* Writes for every conn with queued output. A write can queue more (a
 * pipelined request answered once the previous response is out), so a few
 * passes run; whatever is still listed after them (a conn past its per-turn
 * budget) is written next turn, which then does not sleep in epoll_wait. */
static void flush_all(worker_t *w)
{
    for (int pass = 0; pass < WORKER_FLUSH_PASSES && w->flush_list; pass++)
        flush_pass(w);
}

/* Connections whose read budget ran out last turn read again now. */
static void read_again(worker_t *w)
{
    conn_t *list = w->read_list;
    w->read_list = NULL;
    while (list) {
        conn_t *c = list;
        list = c->read_next;
        c->in_read_list = 0;
        if (c->state == CONN_CLOSING)
            release_from_lists(w, c);
        else if (c->readable)
            conn_on_readable(c);
    }
}

static void begin_stop(worker_t *w)
{
    w->stop_deadline_ms = w->now_ms + WORKER_STOP_GRACE_MS;
    for (int i = 0; i < w->num_listeners; i++) {
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listeners[i].fd, NULL);
        close(w->listeners[i].fd);
        w->listeners[i].fd = -1;
    }
    for (conn_t *c = w->conns, *next; c; c = next) {
        next = c->next;
        conn_on_stop(c, w->now_ms, WORKER_DRAIN_SPREAD_MS);
    }
    log_debug("worker %d stopping: %zu connections to drain", w->index, w->num_conns);
}

static void tick(worker_t *w)
{
    w->drop_log_budget = 1;
    for (conn_t *c = w->conns, *next; c; c = next) {
        next = c->next;
        conn_on_tick(c, w->now_ms);
    }
    if (w->srv->worker_tick) /* the admin dashboard (dashboard.h), set by main */
        w->srv->worker_tick(w->srv->worker_tick_ctx, w, w->now_ms);
}

static void handle_event(worker_t *w, struct epoll_event *e)
{
    int kind = *(int *)e->data.ptr;
    if (kind == HANDLE_LISTENER) {
        accept_some(w, e->data.ptr);
        return;
    }
    if (kind == HANDLE_INBOX) {
        on_doorbell(w);
        return;
    }
    conn_t *c = e->data.ptr;
    if (c->state == CONN_CLOSING)
        return; /* closed earlier in this batch; freed at the end of the turn */
    if (e->events & EPOLLOUT)
        conn_on_writable(c);
    if (e->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        conn_on_readable(c);
}

/* Is work left over for the next turn (then epoll_wait must not sleep)? */
static int work_pending(const worker_t *w)
{
    return w->flush_list || w->read_list || stream_replay_pending(w->streams);
}

/* How long epoll_wait may sleep: until the next tick, or the gathered
 * inbox's deadline; not at all with work left over. */
static struct timespec turn_timeout(const worker_t *w)
{
    int64_t ns = work_pending(w) ? 0 : (w->next_tick_ms - w->now_ms) * 1000000;
    if (w->num_held && ns > WORKER_HELD_POLL_NS)
        ns = WORKER_HELD_POLL_NS; /* the lag falls on other workers too: look again soon */
    if (w->take_due_ns) {
        int64_t left = w->take_due_ns - monotonic_ns();
        if (left < ns)
            ns = left;
    }
    if (ns < 0)
        ns = 0;
    return (struct timespec){ns / 1000000000, ns % 1000000000};
}

/* epoll_pwait2 (Linux 5.11) takes the batching deadline to the
 * microsecond; where it is missing (older kernels, valgrind) epoll_wait
 * rounds it up to the millisecond. */
static int wait_events(worker_t *w, struct epoll_event *events)
{
    static atomic_int no_pwait2;
    struct timespec t = turn_timeout(w);
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        int n = epoll_pwait2(w->epfd, events, WORKER_EPOLL_BATCH, &t, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store_explicit(&no_pwait2, 1, memory_order_relaxed);
    }
    int ms = (int)(t.tv_sec * 1000 + (t.tv_nsec + 999999) / 1000000);
    return epoll_wait(w->epfd, events, WORKER_EPOLL_BATCH, ms);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    char name[16];
    snprintf(name, sizeof(name), "w%d", w->index);
    log_set_thread_name(name);
    struct epoll_event events[WORKER_EPOLL_BATCH];
    clock_turn(w);
    w->next_tick_ms = w->now_ms + WORKER_TICK_MS;
    for (;;) {
        int n = wait_events(w, events);
        clock_turn(w);
        atomic_fetch_add_explicit(&w->turn, 1, memory_order_release);
        if (n < 0 && errno != EINTR) {
            log_error("epoll_wait: %s", strerror(errno));
            break;
        }
        read_again(w);
        for (int i = 0; i < n; i++)
            handle_event(w, &events[i]);
        int64_t took_at = w->last_take_ns;
        take_inbox_if_due(w);
        stream_replay_some(w);
        w->write_us = monotonic_us(); /* once per turn: the fan-out above may have taken a while */
        flush_all(w);
        if (w->last_take_ns != took_at) /* took the inbox: how long taking and writing it took */
            atomic_store_explicit(&w->pass_ns, monotonic_ns() - w->last_take_ns, memory_order_relaxed);
        settle_busy(w);
        release_held(w);
        if (!w->stop_deadline_ms && atomic_load(&w->srv->stopping))
            begin_stop(w);
        if (w->now_ms >= w->next_tick_ms) {
            w->next_tick_ms = w->now_ms + WORKER_TICK_MS;
            tick(w);
            flush_all(w);
        }
        free_closed(w);
        /* Busy time: one more clock read per turn, none per event. */
        int64_t busy = monotonic_us() - w->now_us;
        atomic_store_explicit(&w->stats.busy_us,
                              atomic_load_explicit(&w->stats.busy_us, memory_order_relaxed) +
                                  (unsigned long)(busy > 0 ? busy : 0),
                              memory_order_relaxed);
        if (w->stop_deadline_ms && (w->num_conns == 0 || w->now_ms >= w->stop_deadline_ms))
            break;
    }
    while (w->conns)
        conn_close(w->conns, "server stopped");
    flush_all(w);
    read_again(w);
    free_closed(w);
    return NULL;
}

int worker_start(worker_t *w)
{
    int r = pthread_create(&w->thread, NULL, worker_main, w);
    if (r)
        log_error("cannot start worker %d: %s", w->index, strerror(r));
    return r ? -1 : 0;
}

void worker_join(worker_t *w) { pthread_join(w->thread, NULL); }
