/*
 * subscribe.h - GET /.well-known/mercure (and the seed's /events): turns a
 * request into an event stream.
 *
 *   ?topic=SEL (repeatable)  exact topics, "*", or RFC 6570 URI templates
 *   Last-Event-ID / ?lastEventID=   resume after that event
 *   a subscriber token (header > query > cookie): private updates
 *
 * It reads the query, applies the subscribe policy (auth.h: a valid token,
 * or none with --anonymous or without a subscriber key) and hands over to
 * stream_start, which checks the selector limits, answers and registers.
 *
 * Threads: the request's worker thread.
 */
#ifndef COURANT_SUBSCRIBE_H
#define COURANT_SUBSCRIBE_H

#include "req.h"

/* events_alias: GET /events, where no topic means the demo clock. */
void subscribe_handle(req_t *r, const request_t *in, int events_alias);

#endif
