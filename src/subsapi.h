/*
 * subsapi.h - GET /.well-known/mercure/subscriptions[/{topic}[/{subscriber}]]
 * (with --subscriptions): the active subscriptions as JSON-LD, to tokens
 * whose subscribe selectors match the URL (draft-dunglas-mercure-07,
 * "Active Subscriptions"). The documents come from subs.h.
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
