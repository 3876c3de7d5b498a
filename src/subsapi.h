/*
 * subsapi.h - GET /.well-known/mercure/subscriptions[/..] (with
 * --subscriptions): the active subscriptions, to tokens whose subscribe
 * matchers match the requested path. Each dialect (dialect.h) has its own
 * paths and documents (subs.h):
 *
 *   classic  /subscriptions[/{topic}[/{subscriber}]]           JSON-LD, lastEventID inside
 *   v1       /subscriptions[/{match_type}/{match}[/{subscriber}]]  JSON, and
 *            Link: <resource>; rel="mercure"; last-event-id="..."; type="mercure";
 *                  content-type="application/json"
 *
 * The collection /subscriptions is answered in the token's dialect; a first
 * segment "exact" or "urlpattern" makes the path a v1 one (so a classic
 * subscription to the topic "exact" is not reachable by topic).
 *
 * Threads: the request's worker thread.
 */
#ifndef COURANT_SUBSAPI_H
#define COURANT_SUBSAPI_H

#include "req.h"

#include <stddef.h>

#define SUBSAPI_PATH "/.well-known/mercure/subscriptions"

/* Is `path` the API or below it? */
int subsapi_is_path(const char *path, size_t len);

void subsapi_handle(req_t *r, const request_t *in);

#endif
