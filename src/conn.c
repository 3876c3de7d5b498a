/*
 * conn.c - see conn.h for the budgets and lingering close.
 *
 * Edge-triggered epoll: every socket is registered once, for EPOLLIN |
 * EPOLLOUT | EPOLLRDHUP with EPOLLET, and never modified. `readable` and
 * `writable` remember readiness we have not used up yet; a read or write
 * that returns EAGAIN clears them. So changing interest costs no syscall.
 *
 * Transports with records (TLS, io.h) add two small things here, nothing
 * else: a write may wait for readability and a read for writability
 * (io_t.wants: the other readiness schedules the retry), and a record
 * interrupted by EAGAIN is offered again whole (io_t.min_offer overrides
 * the per-turn budget for that one writev).
 */
#include "conn.h"

#include "log.h"
#include "ratelimit.h"
#include "server.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONN_RBUF_INITIAL 4096

void conn_init(conn_t *c, worker_t *w, int fd, const conn_proto_t *proto, const struct sockaddr *peer,
               socklen_t peer_len, int peer_loopback)
{
    c->handle_kind = 0; /* HANDLE_CONN (worker.c) */
    c->state = CONN_OPEN;
    c->io = (io_t){&io_plain, fd, 0, 0, NULL};
    c->worker = w;
    c->proto = proto;
    c->peer_loopback = peer_loopback ? 1 : 0;
    outq_init(&c->out, worker__wrefs(w));
    c->turn = worker__turn(w);
    if (!peer || peer_addr_from_sockaddr(peer, peer_len, &c->peer))
        memset(&c->peer, 0, sizeof(c->peer));
}

/* The per-turn counters belong to the current turn. */
static void turn_sync(conn_t *c)
{
    uint32_t t = worker__turn(c->worker);
    if (c->turn != t) {
        c->turn = t;
        c->reads_this_turn = 0;
        c->written_this_turn = 0;
    }
}

/* ---- output -------------------------------------------------------------------- */

static void queued(conn_t *c)
{
    if (!c->in_flush_list) /* once per turn, not per event: no call per delivery */
        worker__schedule_flush(c->worker, c);
}

void conn_queue_static(conn_t *c, const char *s, size_t len)
{
    if (c->state == CONN_CLOSING)
        return;
    outq_push_static(&c->out, s, len);
    queued(c);
}

void conn_queue_heap(conn_t *c, char *p, size_t len)
{
    if (c->state == CONN_CLOSING) {
        free(p);
        return;
    }
    outq_push_heap(&c->out, p, len);
    queued(c);
}

/* Writes queued items while the socket takes them and the turn's budget
 * lasts. Returns the bytes written, or -1 on a socket error (the caller
 * decides whether it may close the conn now). Never calls back into the
 * protocol. */
static ssize_t write_queued(conn_t *c)
{
    turn_sync(c);
    size_t done = 0, writes = 0;
    while (!outq_empty(&c->out) && c->writable && c->written_this_turn < CONN_WRITE_CAP_PER_TURN) {
        struct iovec iov[CONN_IOV_MAX];
        size_t budget = CONN_WRITE_CAP_PER_TURN - c->written_this_turn;
        if (budget < c->io.min_offer)
            budget = c->io.min_offer; /* a TLS record to retry: the same bytes again */
        int n = outq_gather(&c->out, iov, CONN_IOV_MAX, budget);
        ssize_t w = io_writev(&c->io, iov, n);
        if (w < 0 && errno == EAGAIN) {
            c->writable = 0; /* EPOLLOUT (edge) will bring us back */
            break;
        }
        if (w < 0)
            return -1;
        outq_consume_notify(&c->out, (size_t)w, worker__event_written, c->worker); /* times live events */
        writes++;
        c->written_this_turn += (uint32_t)w;
        done += (size_t)w;
    }
    if (done) {
        worker_stats_t *st = worker_stats(c->worker);
        c->last_write_ms = worker__now_ms(c->worker); /* heartbeats: once per writev, not per event */
        atomic_fetch_add_explicit(&st->bytes_written, (unsigned long)done, memory_order_relaxed);
        atomic_fetch_add_explicit(&st->writes, (unsigned long)writes, memory_order_relaxed);
    }
    return (ssize_t)done;
}

/* Room for `len` more queued bytes within `cap`. The cap bounds what the
 * kernel would not take: before calling a subscriber slow, offer the socket
 * what is queued (a burst of events is queued before the turn's flush).
 * Errors are left to conn_flush, since closing here would free list nodes
 * the fan-out is walking. Returns 0, or -1 past the cap. */
static int room_for(conn_t *c, size_t len, size_t cap)
{
    if (c->state == CONN_CLOSING)
        return -1;
    if (c->out.bytes + len > cap && c->writable)
        (void)write_queued(c);
    return c->out.bytes + len > cap ? -1 : 0;
}

int conn_try_queue_event(conn_t *c, wref_t *r, const char *p, size_t len, size_t cap)
{
    if (room_for(c, len, cap))
        return -1;
    outq_push_event(&c->out, r, p, len);
    queued(c);
    return 0;
}

void conn_want_flush(conn_t *c)
{
    if (c->state == CONN_OPEN)
        worker__schedule_flush(c->worker, c);
}

int conn_try_queue_event_copy(conn_t *c, wref_t *r, const char *p, size_t len, size_t cap)
{
    if (room_for(c, len, cap))
        return -1;
    /* Copy only for a subscriber that keeps up: its queue is empty or ends
     * in the open block. One that fell behind gets evbuf slices, so it pins
     * at most the blocks of the batch it stalled in (wref.h, Memory). */
    wref_pool_t *pool = c->out.pool;
    wblock_t *b = NULL;
    const char *at = NULL;
    if (outq_empty(&c->out) || (pool->open && outq_tail_block(&c->out) == pool->open))
        at = wref_copy(pool, r, p, len, &b);
    if (at)
        outq_push_block(&c->out, b, at, len);
    else
        outq_push_event(&c->out, r, p, len);
    queued(c);
    return 0;
}

void conn_write_now(conn_t *c)
{
    if (c->state == CONN_CLOSING || outq_empty(&c->out))
        return;
    if (write_queued(c) < 0)
        conn_close(c, "write error");
}

/* ---- reading ---------------------------------------------------------------------- */

ssize_t conn_read(conn_t *c, char *buf, size_t cap, const char *eof_why)
{
    if (c->state == CONN_CLOSING || !c->readable)
        return 0;
    turn_sync(c);
    if (c->reads_this_turn >= CONN_READS_PER_TURN) {
        worker__schedule_read(c->worker, c); /* the socket may hold more: next turn */
        return 0;
    }
    c->reads_this_turn++;
    ssize_t n = io_read(&c->io, buf, cap);
    if (n > 0)
        return n;
    if (n < 0 && errno == EAGAIN) {
        c->readable = 0;
        return 0;
    }
    conn_close(c, n == 0 ? eof_why : "read error");
    return -1;
}

/* Grows the read buffer so that `want` more bytes fit, within `cap` bytes
 * in all. 0, or -1 when the cap or memory is exhausted. */
static int rbuf_reserve(conn_t *c, size_t want, size_t cap)
{
    if (c->rcap - c->rlen >= want)
        return 0;
    size_t need = (size_t)c->rlen + want, ncap = c->rcap ? c->rcap : CONN_RBUF_INITIAL;
    while (ncap < need)
        ncap *= 2;
    if (ncap > cap)
        ncap = cap;
    if (ncap <= c->rlen || ncap > UINT32_MAX)
        return -1;
    char *n = realloc(c->rbuf, ncap);
    if (!n)
        return -1;
    c->rbuf = n;
    c->rcap = (uint32_t)ncap;
    return 0;
}

ssize_t conn_read_rbuf(conn_t *c, size_t want, size_t cap, const char *eof_why)
{
    if (rbuf_reserve(c, want, cap))
        return -2;
    ssize_t n = conn_read(c, c->rbuf + c->rlen, c->rcap - c->rlen, eof_why);
    if (n > 0)
        c->rlen += (uint32_t)n;
    return n;
}

void conn_rbuf_consume(conn_t *c, size_t n)
{
    assert(n <= c->rlen);
    memmove(c->rbuf, c->rbuf + n, c->rlen - n);
    c->rlen -= (uint32_t)n;
}

void conn_rbuf_truncate(conn_t *c, size_t len)
{
    assert(len <= c->rlen);
    c->rlen = (uint32_t)len;
}

void conn_rbuf_release(conn_t *c)
{
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
}

/* Input after our side is shut is read and dropped until the peer closes,
 * CONN_DISCARD_BYTES per read: a client refused at its head may still send
 * a body of any size. 400 refused 1 MiB bodies cost 0.52 s of CPU in
 * 512-byte reads, 0.19 s in 4 KiB reads, 0.16 s in 16 KiB reads; but a
 * turn reads up to CONN_READS_PER_TURN of them per connection, and with 16
 * KiB the longest turn went from 3 to 10 ms: 4 KiB (64 KiB per connection
 * per turn) keeps turns near 5 ms. */
static void discard_lingering(conn_t *c)
{
    char sink[CONN_DISCARD_BYTES];
    while (conn_read(c, sink, sizeof(sink), "peer closed after the answer") > 0)
        ;
}

void conn_on_writable(conn_t *c)
{
    c->writable = 1;
    if (!outq_empty(&c->out))
        worker__schedule_flush(c->worker, c);
    if (c->io.wants & IO_READ_WANTS_WRITABLE) {
        /* A TLS read (a handshake step) waited for room to write: read
         * again, from the read-again list (never re-entered from here). */
        c->io.wants &= (uint8_t)~IO_READ_WANTS_WRITABLE;
        c->readable = 1;
        worker__schedule_read(c->worker, c);
    }
}

void conn_on_readable(conn_t *c)
{
    if (c->io.wants & IO_WRITE_WANTS_READABLE) {
        /* A TLS write waited for the peer's bytes: write again. */
        c->io.wants &= (uint8_t)~IO_WRITE_WANTS_READABLE;
        c->writable = 1;
        if (!outq_empty(&c->out))
            worker__schedule_flush(c->worker, c);
    }
    c->readable = 1;
    if (c->state == CONN_OPEN)
        c->proto->on_readable(c);
    else if (c->state == CONN_LINGER)
        discard_lingering(c);
}

/* ---- closing ------------------------------------------------------------------------ */

void conn_close(conn_t *c, const char *why)
{
    if (c->state == CONN_CLOSING)
        return;
    log_debug("fd %d closed: %s", c->io.fd, why);
    if (c->peer_counted) { /* --max-connections-per-ip */
        uint8_t key[PEER_KEY_LEN];
        peer_addr_key(&c->peer, 64, key);
        (void)ratelimit_counter_release(worker_server(c->worker)->conns_per_ip, key, sizeof(key));
        c->peer_counted = 0;
    }
    if (c->state == CONN_OPEN)
        c->proto->on_close(c);
    c->state = CONN_CLOSING;
    outq_dispose(&c->out);
    conn_rbuf_release(c);
    io_close(&c->io);
    worker__schedule_free(c->worker, c);
}

void conn_free(conn_t *c)
{
    assert(c->state == CONN_CLOSING);
    close(c->io.fd);
    free(c);
}

/* Ends our side and waits (briefly) for the peer to close its own. */
static void linger(conn_t *c)
{
    c->proto->on_close(c); /* the protocol is done: nothing more will be queued */
    c->state = CONN_LINGER;
    io_shutdown(&c->io);
    conn_rbuf_release(c);
    c->deadline_ms = worker__now_ms(c->worker) + CONN_LINGER_MS;
    discard_lingering(c); /* the peer may have closed already */
}

void conn_finish(conn_t *c)
{
    c->shut_after_flush = 1;
    if (outq_empty(&c->out) && c->state == CONN_OPEN)
        linger(c);
}

void conn_flush(conn_t *c)
{
    if (c->state == CONN_CLOSING)
        return;
    /* The queue may already be empty: written early (an answer, right after
     * its request; or a subscriber offered the socket before being called
     * slow). What follows a drained queue still has to happen here. */
    if (!outq_empty(&c->out) && write_queued(c) < 0) {
        conn_close(c, "write error");
        return;
    }
    if (!outq_empty(&c->out)) {
        if (c->writable)
            worker__schedule_flush(c->worker, c); /* budget spent: go on next turn */
        return;
    }
    if (c->state != CONN_OPEN)
        return;
    if (c->shut_after_flush)
        linger(c);
    else
        c->proto->on_drained(c);
}

/* ---- timers ------------------------------------------------------------------------ */

void conn_on_tick(conn_t *c, int64_t now_ms)
{
    if (c->state == CONN_LINGER) {
        if (now_ms >= c->deadline_ms)
            conn_close(c, "peer did not close after the answer");
    } else if (c->state == CONN_OPEN) {
        c->proto->on_tick(c, now_ms);
    }
}

void conn_on_stop(conn_t *c, int64_t now_ms, int spread_ms)
{
    if (c->state == CONN_OPEN)
        c->proto->on_stop(c, now_ms, spread_ms);
}
