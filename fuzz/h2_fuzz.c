/*
 * h2_fuzz.c - libFuzzer target for the HTTP/2 server (src/h2server.c) with
 * the real router, handlers, stream index and hub behind it.
 *
 * nghttp2 parses the frames; what is fuzzed is our side: its callbacks turn
 * header blocks into request_t views, collect bodies against the limits,
 * run the handlers (subscribe, publish, /healthz, /metrics, refusals),
 * handle resets and stream closes, and frame the answers and events
 * (NO_COPY DATA out of the streams' queues). Each input drives one
 * connection on a fresh worker over a socketpair:
 *
 *   byte 0, bit 0: prepend the client preface and an empty SETTINGS (so most
 *                  inputs get past the magic); bits 1-7: the split size
 *   the rest:      fed in pieces of that size; between pieces an event on
 *                  topic "a" is fanned out to whatever subscribed, and the
 *                  conn's queue is written to the socketpair and read back
 *
 * Properties checked (abort() on a violation), besides ASan/UBSan/LSan:
 *   - what the server writes is well-formed HTTP/2 framing: whole frames
 *     back to back, SETTINGS first, no frame type a server must not send
 *     (PUSH_PROMISE, or anything unknown), HEADERS/DATA/RST_STREAM never on
 *     stream 0 and only on odd (client) stream ids, SETTINGS/PING/GOAWAY only
 *     on stream 0, no frame payload over 16384 bytes (we never raise it);
 *   - bounded memory: nghttp2's bytes for the session never pass
 *     H2_SESSION_MEM_MAX, open streams never pass --h2-max-streams, and the
 *     request body budget returns to zero once the connection is gone;
 *   - closing the connection releases every stream: the worker's index is
 *     empty (worker_free asserts it) and LeakSanitizer sees nothing.
 *
 * H2_FUZZ_VERBOSE=1 prints each output frame, GOAWAY reasons and the
 * server's debug log (to see what a seed exercises).
 */
#include "fuzz.h"

#include "auth.h"
#include "config.h"
#include "conn.h"
#include "h2server.h"
#include "hub.h"
#include "journal.h"
#include "log.h"
#include "router.h"
#include "server.h"
#include "siphash.h"
#include "stream.h"
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static config_t cfg;
static server_t srv;

static void setup_once(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    char *argv[] = {"courant", "--workers", "1", "--max-event-bytes", "4096", "--h2-max-streams", "16", NULL};
    if (config_parse(&cfg, 7, argv))
        abort();
    log_set_level(getenv("H2_FUZZ_VERBOSE") ? LOG_DEBUG : LOG_ERROR + 1);
    if (siphash_seed_init())
        abort();
    srv.cfg = &cfg;
    srv.handler = &router_handler;
    srv.h2_take_over = h2server_take_over;
    srv.auth = auth_new(&cfg);
    srv.hub = hub_new(cfg.history, 0);
    srv.journal = srv.hub ? journal_new_memory(srv.hub) : NULL;
    srv.num_workers = 1;
    srv.max_connections = 100;
    static server_limits_t no_limits; /* no rates, no trusted proxies */
    srv.limits = &no_limits;
    if (!srv.auth || !srv.hub || !srv.journal)
        abort();
}

/* The server's output so far, checked frame by frame as it arrives. */
typedef struct out_walk {
    uint8_t buf[16384 + 9]; /* an incomplete frame waits here */
    size_t len;             /* bytes of buf */
    size_t frames;          /* frames seen */
} out_walk_t;

static void check_frame(out_walk_t *o, const uint8_t *hd)
{
    uint32_t len = (uint32_t)hd[0] << 16 | (uint32_t)hd[1] << 8 | hd[2];
    uint8_t type = hd[3];
    uint32_t id =
        ((uint32_t)hd[5] << 24 | (uint32_t)hd[6] << 16 | (uint32_t)hd[7] << 8 | hd[8]) & 0x7fffffffu;
    CHECK(len <= 16384);
    CHECK(type <= 9 && type != 5); /* no PUSH_PROMISE, nothing unknown */
    if (o->frames == 0)
        CHECK(type == 4 && !(hd[4] & 1)); /* our SETTINGS first */
    if (type == 0 || type == 1 || type == 3 || type == 9)
        CHECK(id != 0 && id % 2 == 1);
    if (type == 4 || type == 6 || type == 7)
        CHECK(id == 0);
    if (getenv("H2_FUZZ_VERBOSE"))
        fprintf(stderr, "  frame type %u flags %u stream %u len %u\n", type, hd[4], id, len);
    o->frames++;
}

/* Reads what the server wrote and walks its frames. */
static void drain_peer(int fd, out_walk_t *o)
{
    uint8_t tmp[65536];
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n <= 0)
            return;
        for (ssize_t i = 0; i < n;) {
            size_t take = (size_t)(n - i);
            size_t need = 9;
            if (o->len >= 9)
                need = 9 + ((size_t)o->buf[0] << 16 | (size_t)o->buf[1] << 8 | o->buf[2]);
            if (take > need - o->len)
                take = need - o->len;
            memcpy(o->buf + o->len, tmp + i, take);
            o->len += take;
            i += (ssize_t)take;
            if (o->len == 9)
                check_frame(o, o->buf);
            if (o->len >= 9 && o->len == 9 + ((size_t)o->buf[0] << 16 | (size_t)o->buf[1] << 8 | o->buf[2])) {
                if (getenv("H2_FUZZ_VERBOSE") && o->buf[3] == 7)
                    fprintf(stderr, "  GOAWAY: %.*s\n", (int)o->len - 17, (const char *)o->buf + 17);
                o->len = 0;
            }
        }
    }
}

static void check_bounds(conn_t *c)
{
    h2server_stats_t st;
    if (conn_is_closing(c) || h2server_get_stats(c, &st))
        return;
    CHECK(st.ng_mem_peak <= H2_SESSION_MEM_MAX);
    CHECK(st.streams <= (size_t)cfg.h2_max_streams + 1);
}

/* Writes the conn's queue (and whatever the session frames once it drains). */
static void flush(conn_t *c, int peer, out_walk_t *o)
{
    for (int i = 0; i < 64 && !conn_is_closing(c); i++) {
        c->writable = 1;
        conn_flush(c);
        drain_peer(peer, o);
        if (outq_empty(&c->out))
            break;
    }
}

static void fan_out(worker_t *w, uint32_t n)
{
    char id[32], data[24];
    snprintf(id, sizeof(id), "urn:fuzz:%u", n);
    snprintf(data, sizeof(data), "event %u", n);
    const char *topics[] = {"a"};
    size_t lens[] = {1};
    evbuf_spec_t spec = {.id = id,
                         .id_len = strlen(id),
                         .data = data,
                         .data_len = strlen(data),
                         .retry = -1,
                         .topics = topics,
                         .topic_lens = lens,
                         .num_topics = 1};
    evbuf_t *ev = evbuf_try_new(&spec);
    if (!ev)
        return;
    ev->seq = 1000000 + n; /* after anything replayed */
    stream_fanout(w, ev);
    evbuf_unref(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup_once();
    if (size < 1)
        return 0;
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
    int with_preface = data[0] & 1;
    size_t piece = (size_t)(data[0] >> 1) * 7 + 1;
    data++, size--;

    worker_t *w = worker_new(0, &srv, NULL, 0);
    CHECK(w);
    srv.workers = &w;
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    conn_t *c = h2server_accept(w, sv[0], NULL, 0, 1, NULL);
    CHECK(c);
    worker__link_conn(w, c);
    out_walk_t *o = calloc(1, sizeof(*o));
    CHECK(o);
    flush(c, sv[1], o);

    if (with_preface)
        h2server__feed(c, preface, sizeof(preface) - 1);
    uint32_t events = 0;
    for (size_t off = 0; off < size && !conn_is_closing(c) && c->state == CONN_OPEN; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        h2server__feed(c, (const char *)data + off, n);
        check_bounds(c);
        if (!conn_is_closing(c) && c->state == CONN_OPEN)
            fan_out(w, events++);
        flush(c, sv[1], o);
        check_bounds(c);
    }
    if (!conn_is_closing(c))
        conn_close(c, "fuzz input done");
    worker_free(w); /* frees the conn; asserts the stream index is empty */
    srv.workers = NULL;
    CHECK(atomic_load(&srv.body_bytes) == 0);
    if (getenv("H2_FUZZ_VERBOSE"))
        fprintf(stderr, "h2_fuzz: %zu bytes in, %zu frames out\n", size, o->frames);
    close(sv[1]);
    free(o);
    return 0;
}
