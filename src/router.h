/*
 * router.h - what courant answers to each request: the route table, CORS,
 * preflights, /healthz, the demo page and its tokens, and the hand-off to
 * the handlers (subscribe, publish, subsapi, metrics).
 *
 *   GET  /                      demo page (with --demo), /app.js, /style.css
 *   GET  /events                the seed's stream: the demo clock, or ?topic=
 *   GET  /.well-known/mercure   Mercure subscribe (subscribe.h)
 *   POST /.well-known/mercure   Mercure publish (publish.h)
 *   GET  /.well-known/mercure/subscriptions[/..]  (subsapi.h, --subscriptions)
 *   GET  /demo/tokens.json      --demo-auth's tokens
 *   GET  /healthz               liveness: "ok"
 *   GET  /metrics               Prometheus text format (metrics.h)
 *   OPTIONS *                   CORS preflight
 * HEAD is answered like GET, without a body.
 *
 * Decide at the head (req_handler_t.on_head): the route is found, the
 * method checked, the token located (header > query > cookie) and, for a
 * publish, authorized, all before any body byte is read; only the publish
 * route accepts a body.
 *
 * Threads: called on the request's worker thread.
 */
#ifndef COURANT_ROUTER_H
#define COURANT_ROUTER_H

#include "req.h"

/* The handler every protocol server calls (main puts it in server_t). */
extern const req_handler_t router_handler;

#endif
