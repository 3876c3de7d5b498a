/*
 * publish.h - POST /.well-known/mercure: the Mercure publish form.
 *
 * Fields (application/x-www-form-urlencoded): topic (1+, the first is the
 * canonical topic, the rest alternates), data, id, type, retry, private.
 * The form is checked whole before anything is published: a bad form
 * publishes nothing.
 *
 * Who may publish (decided at the head, before any body byte is read):
 *   with a publisher key  a valid token whose mercure.publish selectors
 *                         match EVERY topic (else 401/403); a token in a
 *                         cookie only with an Origin in --publish-origin
 *                         (CSRF), never "*"
 *   without one           loopback peers only, and only requests that no
 *                         browser or proxy relayed: no Origin other than the
 *                         request's own host, no Sec-Fetch-Site: cross-site,
 *                         no Forwarded, X-Forwarded-For or Via. So a fresh
 *                         install is not an open relay for browser tabs,
 *                         DNS-rebinding pages, or a reverse proxy on the host.
 *
 * The answer: 200 with the id once the journal took the event (the store
 * committed it, Redis appended it); the request waits for that through the
 * worker's ack table (acks.h).
 *
 * Threads: the request's worker thread.
 */
#ifndef COURANT_PUBLISH_H
#define COURANT_PUBLISH_H

#include "evbuf.h"
#include "req.h"

/* At the head: applies the policy above. Returns the body bytes a publish
 * may send (--max-event-bytes), or -1 after refusing. */
long publish_on_head(req_t *r, request_t *in);

/* The whole request: authorizes again (the claims are needed for the
 * topics), parses, submits, and answers (now or once the journal has). */
void publish_handle(req_t *r, request_t *in);

/* Parses and validates a publish form into a new event (refs = 1, owned by
 * the caller). On failure returns NULL and sets *status (an HTTP status) and
 * *reason (a static string) for the answer. Pure apart from allocation: the
 * fuzz target calls it directly. */
evbuf_t *publish_parse_form(const char *body, size_t len, int *status, const char **reason);

#endif
