/*
 * worker.c - see worker.h for the turn of the loop and the inbox.
 */
#include "worker.h"

#include "conn.h"
#include "log.h"
#include "publish.h"
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

#define WORKER_MAX_LISTEN 8
#define WORKER_EPOLL_BATCH 256
#define WORKER_TICK_MS 250
#define WORKER_ACCEPT_PER_TURN 256
#define WORKER_DRAIN_SPREAD_MS 1000 /* shutdown closes streams over this window */
#define WORKER_STOP_GRACE_MS 4000   /* then whatever is left is closed */
#define WORKER_WREF_CACHE 256

/* What an epoll event's data.ptr points at; conn_t starts with the same int. */
enum { HANDLE_CONN, HANDLE_LISTENER, HANDLE_INBOX };

/* One inbox entry: an event to fan out, or the store's answer to a publish. */
typedef struct inbox_msg {
    evbuf_t *ev;    /* owns one reference */
    uint64_t token; /* 0: fan `ev` out; else the ack token of a waiting publish */
    int ok;         /* acks: 1 committed, 0 not stored */
} inbox_msg_t;

/* A publish waiting for the store (see worker.h). Worker thread only. */
typedef struct ack_slot {
    struct conn *conn;  /* borrows: the waiting conn; NULL when the slot is free */
    char *headers;      /* owns: extra header lines for the answer (CORS) */
    uint32_t gen;       /* bumped each time the slot is released */
    uint32_t next_free; /* free list: index + 1 of the next free slot, 0 = end */
} ack_slot_t;

typedef struct listener {
    int handle_kind; /* HANDLE_LISTENER */
    int fd;          /* owns */
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

    ack_slot_t *acks;   /* owns: worker thread only */
    uint32_t acks_cap;  /* slots allocated */
    uint32_t acks_free; /* index + 1 of the first free slot, 0 = none */

    int64_t now_ms; /* CLOCK_MONOTONIC at the start of the turn */
    int64_t next_tick_ms;
    int64_t stop_deadline_ms; /* 0 until stopping */
    conn_t *conns;            /* owns: every open connection (list) */
    size_t num_conns;
    conn_t *flush_list;                    /* borrows: conns with output to write, FIFO */
    conn_t *flush_tail;                    /* borrows: last of flush_list (valid when it is non-NULL) */
    conn_t *free_list;                     /* owns: conns closed this turn */
    stream_index_t *streams;               /* owns */
    wref_t *wref_cache[WORKER_WREF_CACHE]; /* owns: spare wrefs, no malloc per event */
    int wref_cached;
    worker_stats_t stats;
    unsigned drop_log_budget; /* rate-limits the over-capacity log line */
};

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

worker_t *worker_new(int index, server_t *srv, const int *listen_fds, int num_listen)
{
    worker_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->index = index;
    w->srv = srv;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->inbox_handle_kind = HANDLE_INBOX;
    w->streams = stream_index_new();
    pthread_mutex_init(&w->inbox_lock, NULL);
    if (w->epfd < 0 || w->evfd < 0 || !w->streams || num_listen > WORKER_MAX_LISTEN)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->inbox_handle_kind};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev))
        goto fail;
    for (int i = 0; i < num_listen; i++) {
        listener_t *l = &w->listeners[w->num_listeners++];
        l->handle_kind = HANDLE_LISTENER;
        l->fd = listen_fds[i];
        ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = l};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev))
            goto fail;
    }
    w->now_ms = monotonic_ms();
    w->drop_log_budget = 1;
    return w;
fail:
    log_error("worker %d: cannot set up its event loop: %s", index, strerror(errno));
    worker_free(w);
    return NULL;
}

void worker_free(worker_t *w)
{
    if (!w)
        return;
    while (w->conns)
        conn_close(w->conns, "worker freed");
    while (w->flush_list) {
        conn_t *c = w->flush_list;
        w->flush_list = c->flush_next;
        c->flush_next = w->free_list;
        w->free_list = c;
    }
    while (w->free_list) {
        conn_t *c = w->free_list;
        w->free_list = c->flush_next;
        conn_free(c);
    }
    for (size_t i = 0; i < w->inbox_len; i++)
        evbuf_unref(w->inbox[i].ev);
    free(w->inbox);
    for (uint32_t i = 0; i < w->acks_cap; i++)
        free(w->acks[i].headers);
    free(w->acks);
    for (int i = 0; i < w->wref_cached; i++)
        free(w->wref_cache[i]);
    for (int i = 0; i < w->num_listeners; i++)
        if (w->listeners[i].fd >= 0)
            close(w->listeners[i].fd);
    stream_index_free(w->streams);
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
int64_t worker__now_ms(const worker_t *w) { return w->now_ms; }

/* ---- wrefs -------------------------------------------------------------------- */

wref_t *worker__wref_new(worker_t *w, evbuf_t *ev)
{
    wref_t *r = w->wref_cached ? w->wref_cache[--w->wref_cached] : malloc(sizeof(*r));
    if (!r)
        abort(); /* 16 bytes: if this fails nothing else will work either */
    evbuf_ref(ev);
    r->ev = ev;
    r->refs = 0;
    return r;
}

void worker__wref_unref_empty(worker_t *w, wref_t *r)
{
    assert(r->refs == 0);
    evbuf_unref(r->ev);
    if (w->wref_cached < WORKER_WREF_CACHE)
        w->wref_cache[w->wref_cached++] = r;
    else
        free(r);
}

void worker__wref_unref(worker_t *w, wref_t *r)
{
    assert(r->refs > 0);
    if (--r->refs == 0)
        worker__wref_unref_empty(w, r);
}

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
    atomic_fetch_sub_explicit(&w->srv->open_conns, 1, memory_order_relaxed);
    /* A conn on the flush list is skipped there (CLOSING) and then moved. */
    if (!c->in_flush_list) {
        c->flush_next = w->free_list;
        w->free_list = c;
    }
}

/* ---- inbox --------------------------------------------------------------------- */

static void inbox_push(worker_t *w, evbuf_t *ev, uint64_t token, int ok)
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
    int was_empty = w->inbox_len == 0;
    w->inbox[w->inbox_len++] = (inbox_msg_t){ev, token, ok};
    pthread_mutex_unlock(&w->inbox_lock);
    if (was_empty)
        worker_wake(w);
}

void worker_post(worker_t *w, evbuf_t *ev) { inbox_push(w, ev, 0, 0); }

void worker_post_ack(void *worker, uint64_t token, evbuf_t *ev, int ok)
{
    assert(token != 0);
    inbox_push(worker, ev, token, ok);
}

/* ---- publishes waiting for the store --------------------------------------------- */

static ack_slot_t *ack_slot_of(worker_t *w, uint64_t token)
{
    uint32_t idx = (uint32_t)token - 1, gen = (uint32_t)(token >> 32);
    if (idx >= w->acks_cap || w->acks[idx].gen != gen || !w->acks[idx].conn)
        return NULL;
    return &w->acks[idx];
}

static void ack_slot_release(worker_t *w, ack_slot_t *a)
{
    free(a->headers);
    a->headers = NULL;
    a->conn = NULL;
    a->gen++;
    a->next_free = w->acks_free;
    w->acks_free = (uint32_t)(a - w->acks) + 1;
}

uint64_t worker__ack_wait(worker_t *w, conn_t *c, const char *headers)
{
    if (!w->acks_free) {
        uint32_t ncap = w->acks_cap ? w->acks_cap * 2 : 16;
        ack_slot_t *n = realloc(w->acks, ncap * sizeof(*n));
        if (!n)
            return 0;
        memset(n + w->acks_cap, 0, (ncap - w->acks_cap) * sizeof(*n));
        for (uint32_t i = ncap; i-- > w->acks_cap;) {
            n[i].gen = 1;
            n[i].next_free = w->acks_free;
            w->acks_free = i + 1;
        }
        w->acks = n;
        w->acks_cap = ncap;
    }
    char *h = strdup(headers);
    if (!h)
        return 0;
    uint32_t idx = w->acks_free - 1;
    ack_slot_t *a = &w->acks[idx];
    w->acks_free = a->next_free;
    a->conn = c;
    a->headers = h;
    return (uint64_t)a->gen << 32 | (idx + 1);
}

void worker__ack_cancel(worker_t *w, uint64_t token)
{
    ack_slot_t *a = ack_slot_of(w, token);
    if (a)
        ack_slot_release(w, a);
}

/* The store answered: reply to the conn if it is still waiting. */
static void ack_complete(worker_t *w, uint64_t token, evbuf_t *ev, int ok)
{
    ack_slot_t *a = ack_slot_of(w, token);
    if (!a)
        return; /* the conn closed meanwhile: nobody to answer */
    conn_t *c = a->conn;
    char *headers = a->headers;
    a->headers = NULL;
    ack_slot_release(w, a);
    assert(c->ack_token == token && c->state == CONN_RESPOND);
    c->ack_token = 0;
    publish_on_stored(c, ev, ok, headers);
    free(headers);
}

void worker_wake(worker_t *w)
{
    uint64_t one = 1;
    ssize_t r;
    do
        r = write(w->evfd, &one, sizeof(one));
    while (r < 0 && errno == EINTR);
}

/* Takes the whole inbox in one lock, then fans out without holding it. */
static void drain_inbox(worker_t *w)
{
    uint64_t junk;
    while (read(w->evfd, &junk, sizeof(junk)) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&w->inbox_lock);
    inbox_msg_t *batch = w->inbox;
    size_t n = w->inbox_len;
    w->inbox = NULL;
    w->inbox_len = w->inbox_cap = 0;
    pthread_mutex_unlock(&w->inbox_lock);
    for (size_t i = 0; i < n; i++) {
        if (batch[i].token)
            ack_complete(w, batch[i].token, batch[i].ev, batch[i].ok);
        else
            stream_fanout(w, batch[i].ev);
        evbuf_unref(batch[i].ev);
    }
    free(batch);
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

static const char over_capacity[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 41\r\n"
    "Connection: close\r\nRetry-After: 1\r\n\r\nserver is at --max-connections; retry.\r\n\n";

static void refuse_over_capacity(worker_t *w, int fd)
{
    /* Best effort on a fresh socket: the send buffer is empty, so it fits. */
    ssize_t r = send(fd, over_capacity, sizeof(over_capacity) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)r;
    close(fd);
    atomic_fetch_add_explicit(&w->stats.refused[REFUSE_OVER_CAPACITY], 1, memory_order_relaxed);
    if (w->drop_log_budget) {
        w->drop_log_budget = 0; /* one line per tick at most */
        log_warn("refused a connection: --max-connections (%ld) reached", w->srv->max_connections);
    }
}

static void accept_some(worker_t *w, listener_t *l)
{
    for (int i = 0; i < WORKER_ACCEPT_PER_TURN; i++) {
        struct sockaddr_storage ss = {0};
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
            refuse_over_capacity(w, fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn_t *c = conn_new(w, fd, is_loopback(&ss));
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
        ev.data.ptr = c;
        if (!c || epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev)) {
            log_warn("cannot take a connection: %s", c ? strerror(errno) : "out of memory");
            free(c);
            close(fd);
            atomic_fetch_sub_explicit(&w->srv->open_conns, 1, memory_order_relaxed);
            continue;
        }
        c->next = w->conns;
        if (w->conns)
            w->conns->prev = c;
        w->conns = c;
        w->num_conns++;
        atomic_fetch_add_explicit(&w->stats.accepted, 1, memory_order_relaxed);
    }
}

/* ---- the turn ------------------------------------------------------------------- */

#define WORKER_FLUSH_PASSES 4

static void flush_pass(worker_t *w);

/* Writes for every conn with queued output. A write can queue more (a
 * pipelined request answered once the previous response is out), so a few
 * passes run; whatever is still listed after them (a conn past its per-turn
 * budget) is written next turn, which then does not sleep in epoll_wait. */
static void flush_all(worker_t *w)
{
    for (int pass = 0; pass < WORKER_FLUSH_PASSES && w->flush_list; pass++)
        flush_pass(w);
}

static void flush_pass(worker_t *w)
{
    /* conn_flush may re-schedule (budget spent) or close: take the list first. */
    conn_t *list = w->flush_list;
    w->flush_list = NULL;
    while (list) {
        conn_t *c = list;
        list = c->flush_next;
        c->in_flush_list = 0;
        if (c->state == CONN_CLOSING) {
            c->flush_next = w->free_list; /* deferred from worker__schedule_free */
            w->free_list = c;
            continue;
        }
        /* If this closes it, schedule_free sees in_flush_list == 0 and
         * puts it on the free list itself. */
        conn_flush(c);
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
        if (c->state == CONN_STREAM)
            stream_schedule_end(c, w->now_ms, WORKER_DRAIN_SPREAD_MS);
        else if (c->state == CONN_READ_HEAD && !c->got_bytes)
            conn_close(c, "shutting down");
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
}

static void handle_event(worker_t *w, struct epoll_event *e)
{
    int kind = *(int *)e->data.ptr;
    if (kind == HANDLE_LISTENER) {
        accept_some(w, e->data.ptr);
        return;
    }
    if (kind == HANDLE_INBOX) {
        drain_inbox(w);
        return;
    }
    conn_t *c = e->data.ptr;
    if (c->state == CONN_CLOSING)
        return; /* closed earlier in this batch; freed at the end of the turn */
    if (e->events & EPOLLOUT) {
        c->writable = 1;
        if (c->outq_count)
            worker__schedule_flush(w, c);
    }
    if (e->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        conn_on_readable(c);
}

static void free_closed(worker_t *w)
{
    while (w->free_list) {
        conn_t *c = w->free_list;
        w->free_list = c->flush_next;
        conn_free(c);
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    char name[16];
    snprintf(name, sizeof(name), "w%d", w->index);
    log_set_thread_name(name);
    struct epoll_event events[WORKER_EPOLL_BATCH];
    w->now_ms = monotonic_ms();
    w->next_tick_ms = w->now_ms + WORKER_TICK_MS;
    for (;;) {
        int timeout = w->flush_list ? 0 : (int)(w->next_tick_ms - w->now_ms);
        int n = epoll_wait(w->epfd, events, WORKER_EPOLL_BATCH, timeout < 0 ? 0 : timeout);
        w->now_ms = monotonic_ms();
        if (n < 0 && errno != EINTR) {
            log_error("epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++)
            handle_event(w, &events[i]);
        flush_all(w);
        if (!w->stop_deadline_ms && atomic_load(&w->srv->stopping))
            begin_stop(w);
        if (w->now_ms >= w->next_tick_ms) {
            w->next_tick_ms = w->now_ms + WORKER_TICK_MS;
            tick(w);
            flush_all(w);
        }
        free_closed(w);
        if (w->stop_deadline_ms && (w->num_conns == 0 || w->now_ms >= w->stop_deadline_ms))
            break;
    }
    while (w->conns)
        conn_close(w->conns, "server stopped");
    flush_all(w);
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
