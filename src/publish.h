/*
 * publish.h - POST /.well-known/mercure: the Mercure publish form, in the
 * dialect of the publisher's token (dialect.h: typ at+jwt or the v1 cookie
 * -> Mercure 1.0, anything else -> draft-07).
 *
 * Fields (application/x-www-form-urlencoded): topic (1+, the first is the
 * canonical topic, the rest alternates), data, id, type, retry, private.
 * The form is checked whole before anything is published: a bad form
 * publishes nothing.
 *
 * Rules of both dialects (one hub serves both: what one dialect's publisher
 * sends reaches the other's subscribers):
 *   - a topic in the hub's reserved namespace: its path, resolved against
 *     the hub's URL (dot segments removed, unreserved %XX decoded), equal to
 *     /.well-known/mercure (or the resource identifier's path) or below it,
 *     so that nobody forges subscription events; draft-07 also refuses any
 *     topic containing /.well-known/mercure (403), draft-08 answers 400;
 *   - type=mercure (draft-08 reserves it for the hub's own events, which a
 *     v1 subscriber may listen to whatever the publisher's dialect): 400;
 *   - control characters in topic, id or type; an id starting with "#" or
 *     equal to "earliest"; a retry that is not digits: 400.
 * Mercure 1.0 adds: a topic exactly "*" (400); UTF-8 for every field and no
 * C1 or Unicode format (Cf) character in topic, id or type (400); past a
 * limit (topics, id length) 413 instead of 400.
 *
 * Who may publish (decided at the head, before any body byte is read):
 *   with a publisher key  a valid token whose publish grant (classic
 *   (or --jwks-url)       mercure.publish, v1 authorization_details) matches
 *                         EVERY topic (else 401/403, v1 with RFC 6750
 *                         challenges); a token in a cookie only with an
 *                         Origin in --publish-origin (CSRF), never "*"
 *   without one           loopback peers only, and only requests that no
 *                         browser or proxy relayed: no Origin other than the
 *                         request's own host, no Sec-Fetch-Site: cross-site,
 *                         no Forwarded, X-Forwarded-For or Via. So a fresh
 *                         install is not an open relay for browser tabs,
 *                         DNS-rebinding pages, or a reverse proxy on the host.
 *
 * The answer: 200 text/plain; charset=utf-8 with the id, once the journal
 * took the event (the store committed it, Redis appended it); the request
 * waits for that through the worker's ack table (acks.h).
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

/* How a form is checked. */
typedef struct publish_rules {
    int v1;              /* Mercure 1.0 rules (above) */
    const char *hub_url; /* the hub's URL (resource identifier): relative topics resolve against it
                            for the reserved-namespace test; NULL: http://localhost/.well-known/mercure */
} publish_rules_t;

/* Parses and validates a publish form into a new event (refs = 1, owned by
 * the caller). `rules` NULL: draft-07 with the defaults. On failure returns
 * NULL and sets *status (an HTTP status) and *reason (a static string) for
 * the answer. Pure apart from allocation: the fuzz target calls it directly. */
evbuf_t *publish_parse_form(const char *body, size_t len, const publish_rules_t *rules, int *status,
                            const char **reason);

/* Does `topic` address the hub's reserved namespace (the rule above: its
 * path, resolved against hub_url, is the hub's path or below it)? A topic
 * that is not a URL reference does not. Pure; for the tests and the fuzz
 * target too. */
int publish_topic_is_reserved(const char *topic, size_t len, const char *hub_url);

#endif
