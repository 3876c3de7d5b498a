/*
 * publish.h - POST /.well-known/mercure: the Mercure publish form.
 *
 * Fields (application/x-www-form-urlencoded): topic (1+, the first is the
 * canonical topic, the rest alternates), data, id, type, retry, private.
 * The form is checked whole before anything is published: a bad form
 * publishes nothing. Threads: the connection's worker thread.
 */
#ifndef COURANT_PUBLISH_H
#define COURANT_PUBLISH_H

#include "conn.h"
#include "evbuf.h"
#include "http1.h"

/* Answers the request: 200 with the event id, or an error. Authorization
 * (auth.h) first: with a publisher key, a token whose mercure.publish
 * selectors match every topic; without one, loopback peers only. `query`
 * is the request target's query string (for the `authorization` parameter).
 * The event goes to the journal (journal.h). With --store or --redis the
 * answer comes later: the conn waits in CONN_RESPOND (reading nothing more)
 * and publish_on_stored answers once the event is committed (and, with
 * --store, handed to the hub) or was refused. */
void publish_handle(conn_t *c, const http1_request_t *req, const char *query, size_t qlen, char *body,
                    size_t body_len, const char *cors_headers);

/* Worker thread: the journal's answer for a publish waiting on `c`: 200
 * with the id of `ev` (borrowed) when `ok`, else 503 with the journal's
 * reason (journal_failure_reason). */
void publish_on_stored(conn_t *c, const evbuf_t *ev, int ok, const char *cors_headers);

/* Parses and validates a publish form into a new event (refs = 1, owned by
 * the caller). On failure returns NULL and sets *status / *reason (static
 * strings) for the HTTP answer. Pure apart from allocation: the fuzz target
 * calls it directly. */
evbuf_t *publish_parse_form(const char *body, size_t len, const char **status, const char **reason);

#endif
