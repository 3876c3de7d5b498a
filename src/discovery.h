/*
 * discovery.h - GET /.well-known/oauth-protected-resource/.well-known/mercure:
 * the hub's OAuth 2.0 Protected Resource Metadata (RFC 9728), as draft-08
 * ("Protected Resource Metadata") describes it:
 *
 *   {"resource": "<--resource-identifier>",
 *    "authorization_servers": ["<issuer of each --jwks-url>", ...],   (if any)
 *    "authorization_details_types_supported":
 *        ["https://mercure.rocks/authorization-detail"],
 *    "bearer_methods_supported": ["header"],
 *    "mercure_cookie": "__Secure-mercure_access_token",
 *    "mercure_matcher_types_supported": ["exact", "urlpattern"],
 *    "mercure_subscriptions": true}                                    (--subscriptions)
 *
 * A client finds it from the resource_metadata parameter of every
 * WWW-Authenticate challenge courant sends (auth.h). Its presence also tells
 * clients that the hub speaks Mercure 1.0 (draft-08, "version detection");
 * courant speaks draft-07 on the same endpoint too (dialect.h).
 *
 * Threads: the request's worker thread.
 */
#ifndef COURANT_DISCOVERY_H
#define COURANT_DISCOVERY_H

#include "req.h"

void discovery_handle(req_t *r, const request_t *in);

/* The document for the running configuration, malloc'd (NULL: out of
 * memory, or no resource identifier). For the handler and tests. */
struct auth;
struct config;
char *discovery_try_render(const struct auth *a, const struct config *cfg);

#endif
