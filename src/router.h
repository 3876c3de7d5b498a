/*
 * router.h - what courant answers to each request: the routes, CORS, the
 * demo page, /healthz, /metrics, and the hand-off to streams and publishing.
 *
 * Threads: called on the connection's worker thread.
 */
#ifndef COURANT_ROUTER_H
#define COURANT_ROUTER_H

#include "conn.h"
#include "http1.h"

/* Handles one complete request. `body` (body_len bytes) lives in the conn's
 * read buffer and is valid for the call. The router leaves the conn in
 * CONN_RESPOND (a response queued), CONN_STREAM, or CONN_CLOSING. */
void router_handle(conn_t *c, const http1_request_t *req, char *body, size_t body_len);

/* The CORS header lines for this request's Origin (or ""), into buf. */
const char *router_cors_headers(const server_t *srv, const http1_request_t *req, char *buf, size_t cap);

#endif
