/*
 * h1server.h - the HTTP/1.x server protocol: framing of requests and
 * answers on a connection (conn.h), one request at a time, keep-alive and
 * pipelining, "100 Continue", request bodies (Content-Length or chunked),
 * and event-stream responses. What a request means is the router's
 * (server_t.handler, req.h).
 *
 * A connection's life:
 *
 *   accept -> READ_HEAD --(head complete: handler->on_head decides)--> READ_BODY
 *                 ^                                                     |
 *                 |                          (whole request: on_request)v
 *                 +---- answer written, keep-alive ---------------- RESPOND
 *                                                                       |
 *                                              req_try_stream_begin --> STREAM --> linger, close
 *
 * Decide at the head: the router routes and authorizes as soon as the head
 * is complete, before any body byte is buffered and before "100 Continue"
 * is sent; it says how many body bytes the route takes (only publishing
 * takes any). A larger body is refused with 413 without reading it. Body
 * bytes buffered by all connections together are capped by
 * --max-body-bytes-total (503 past it), so many slow uploads cannot bloat
 * the process.
 *
 * The request head is parsed incrementally: the bytes already scanned are
 * not scanned again when more arrive, so a head costs time linear in its
 * length however it is split.
 *
 * A stream reads nothing more, but its peer may send at most
 * --max-stream-input-bytes after its request (then it is closed): a client
 * that keeps writing cannot make its worker read forever.
 *
 * Memory: a connection is one allocation (the conn, its one req, a few
 * flags); the state of a request being read (and its buffer) exists only
 * while it is read, so an idle subscriber holds neither.
 *
 * Threads: everything runs on the connection's worker thread.
 */
#ifndef COURANT_H1SERVER_H
#define COURANT_H1SERVER_H

#include "conn.h"
#include "worker.h"

/* A listener's accept function (worker_accept_fn) for cleartext HTTP/1.x. */
struct conn *h1server_accept(worker_t *w, int fd, const struct sockaddr *peer, socklen_t len,
                             int peer_loopback, void *ctx);

/* A listener's refuse function (worker_refuse_fn): a 503 or 429 with
 * Retry-After on a fresh socket, best effort. */
void h1server_refuse_at_accept(int fd, int status);

/* The protocol table. */
extern const conn_proto_t h1server_proto;

#endif
