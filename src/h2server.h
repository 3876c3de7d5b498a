/*
 * h2server.h - the HTTP/2 server protocol (RFC 9113) on a connection, with
 * Debian's libnghttp2 doing the framing, HPACK and flow control. Many
 * subscriptions and publishes share one connection; what each request
 * means is the router's (server_t.handler, req.h), exactly as for HTTP/1.
 *
 *   conn (conn.h) ----- proto_ctx ----> h2sess: nghttp2_session, its streams
 *                                         |
 *        +--------------------------------+----------------+
 *        v                                v                v
 *     h2stream {req_t, outq_t, head, body}   h2stream ...    (one per HTTP/2 stream)
 *        |  req_ops_t: respond, stream_begin, push, end, pending, reset
 *        |  out: payload bytes not yet framed: event slices (wref), comments
 *        v
 *     DATA frames: nghttp2 asks how much may go (flow control), we answer
 *     NGHTTP2_DATA_FLAG_NO_COPY and move the slices themselves (wref counts,
 *     never the bytes) behind a 9-byte frame header into the conn's output
 *     queue, which writev()s them: an event goes from the shared evbuf to the
 *     kernel untouched, as with HTTP/1.
 *
 * How a connection becomes HTTP/2 (who calls h2server_take_over):
 *   - h2c with prior knowledge (RFC 9113 3.3): the HTTP/1 server sees the
 *     client preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" as the first bytes of a
 *     cleartext connection and hands it over (--h2c, on by default; the
 *     preface is no valid HTTP/1 request, so HTTP/1 clients are unaffected).
 *     No "Upgrade: h2c" (RFC 9113 removed it; browsers never used it).
 *   - TLS with ALPN "h2": the TLS layer, once the handshake chose "h2".
 *   Both reach it through server_t.h2_take_over, set by main, so neither
 *   h1server nor tls includes this module.
 *
 * Flow control is the slow-subscriber policy: a stream whose window stays
 * closed keeps its backlog in its own outq; --max-pending-bytes applies per
 * stream (then the stream ends, is counted as a slow disconnect and is
 * reset if it still reads nothing), and never blocks the other streams.
 * Frames are produced only when the conn's queue has drained (the kernel
 * took everything), so one connection never queues more than
 * H2_SEND_HIGH framed bytes beyond the streams' own backlogs.
 *
 * Defences (each is one constant below, or an nghttp2 option): concurrent
 * streams (--h2-max-streams, REFUSED_STREAM past it), header list size
 * (--max-header-bytes, 431), fields per request, CONTINUATION frames per
 * header block, HPACK table size, SETTINGS entries, queued PING/SETTINGS
 * ACKs, client stream resets per second (rapid reset, CVE-2023-44487) and
 * control frames per second (PING/SETTINGS/PRIORITY/empty-DATA floods):
 * past a budget, GOAWAY ENHANCE_YOUR_CALM and close. Each session's nghttp2
 * memory is counted through a custom allocator and capped
 * (H2_SESSION_MEM_MAX). Reads are capped per turn by conn_read.
 *
 * Threads: everything runs on the connection's worker thread.
 */
#ifndef COURANT_H2SERVER_H
#define COURANT_H2SERVER_H

#include "conn.h"
#include "worker.h"

#include <stddef.h>

#define H2_SEND_HIGH (256u << 10)     /* framed bytes queued on a conn before we stop framing */
#define H2_SESSION_MEM_MAX (2u << 20) /* nghttp2's own memory per connection, at most */
#define H2_RESET_BURST 200            /* client RST_STREAMs allowed at once ... */
#define H2_RESET_RATE 50              /* ... and per second after that */
#define H2_CTRL_BURST 300             /* PING, SETTINGS, PRIORITY, empty DATA: at once ... */
#define H2_CTRL_RATE 100              /* ... and per second after that */
#define H2_MAX_FIELDS 64              /* header fields of one request (431 past it) */
#define H2_MAX_CONTINUATIONS 8        /* CONTINUATION frames after one HEADERS */
#define H2_HEADER_TABLE_SIZE 4096     /* HPACK dynamic table we decode with (SETTINGS) */
#define H2_DEFLATE_TABLE_SIZE 1024    /* HPACK dynamic table we encode with */
#define H2_MAX_OUTBOUND_ACK 1000 /* PING/SETTINGS ACKs queued unsent: nghttp2 backstop, ours trips first */
#define H2_RESPONSE_DEADLINE_MS 60000 /* a whole answer must be read within this */

/* Makes `c` an HTTP/2 connection. The caller is the protocol that owned it
 * (h1server on the preface, or the TLS layer after ALPN "h2") and holds no
 * request state any more: it must not touch its own state after the call,
 * and must return at once to the loop. Bytes already read (the preface
 * included, if read) are in c->rbuf: they are fed to the session first and
 * the read buffer is released. Sets c->proto and c->proto_ctx, sends our
 * SETTINGS, and reads on if the socket has more. Returns 0, or -1 when
 * memory runs out (nothing changed: the caller closes the conn). Worker
 * thread. Its type matches server_t.h2_take_over. */
int h2server_take_over(struct conn *c);

/* A listener's accept function (worker_accept_fn) for a socket that speaks
 * HTTP/2 from its first byte (h2c prior knowledge only, or a transport that
 * already negotiated "h2"); used by the fuzz target. */
struct conn *h2server_accept(worker_t *w, int fd, const struct sockaddr *peer, socklen_t len,
                             int peer_loopback, void *ctx);

/* What the connection holds, for tests and the fuzz target's properties. */
typedef struct h2server_stats {
    size_t streams;     /* open streams with a req */
    size_t ng_mem;      /* bytes nghttp2 holds for this session now */
    size_t ng_mem_peak; /* and at most so far */
    unsigned long calm; /* 1 if the session was ended for abuse (ENHANCE_YOUR_CALM) */
} h2server_stats_t;

/* Fills `out` for an HTTP/2 conn; returns -1 if `c` is not one. */
int h2server_get_stats(const struct conn *c, h2server_stats_t *out);

/* Feeds bytes as if read from the socket (the fuzz target; the socket is
 * not read). Returns 0, or -1 if the conn closed. */
int h2server__feed(struct conn *c, const char *p, size_t len);

/* The protocol table. */
extern const conn_proto_t h2server_proto;

#endif
