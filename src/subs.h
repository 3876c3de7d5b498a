/*
 * subs.h - active subscriptions (--subscriptions): the registry, the
 * subscription events and the documents of the subscriptions API, in the
 * dialect of each subscriber (dialect.h).
 *
 * Every (stream, distinct selector) pair is one subscription:
 *
 *   classic (draft-07, "Active Subscriptions")
 *     id         /.well-known/mercure/subscriptions/{topic}/{subscriber}
 *     document   JSON-LD: {"@context","id","type":"Subscription","topic",
 *                "subscriber","active","payload"?}; event without a type
 *   v1 (draft-08, "Subscription Events")
 *     id         /.well-known/mercure/subscriptions/{match_type}/{match}/{subscriber}
 *     document   JSON: {"id","type":"subscription","match_type","match",
 *                "subscriber","active","payload"?}; SSE event type "mercure"
 *   (topic, match and subscriber percent-encoded once, as RFC 6570 says)
 *
 *   subscriber urn:uuid:<UUIDv7> made when the stream opens (never from
 *              the client: draft-08 forbids it)
 *   payload    classic: the token's mercure.payload; v1: the payload of
 *              the first subscribe authorization detail matching the
 *              subscription's own matcher (computed by the caller)
 *
 * When a stream opens (closes) the hub publishes, for each of its selectors,
 * a PRIVATE update whose topic is that id and whose data is the document
 * with "active": true (false). The API answers the current ones, each
 * dialect its own: the documents and ids of the two differ, and an API
 * answer is the starting point for the events of the same dialect.
 *
 *   subs_t: mutex -> list of entries (all workers' subscriptions)
 *   stream_t.subs (subs_handle_t, owned by the stream) -> its entries
 *
 * Threads: every function is thread-safe; the registry's lock is held only
 * to link, unlink, or copy the pointers a render shows (with a reference on
 * their handles: the JSON is built after the lock is released), never while
 * publishing (hub_publish takes the
 * hub lock; the two are never nested).
 */
#ifndef COURANT_SUBS_H
#define COURANT_SUBS_H

#include "hub.h"
#include "journal.h"

#include <stddef.h>
#include <stdint.h>

typedef struct subs subs_t;
typedef struct subs_handle subs_handle_t;

/* Subscription events go through `journal` like any publish: they are
 * stored with --store and appended to the stream with --redis, so they are
 * in history wherever history is kept, in the one order of every other
 * event, and the lastEventID the API answers (the hub's newest event) can
 * be resumed from, after a restart too and on any node. The cost: one row
 * (or entry) per selector per stream opened or closed, trimmed by
 * --history like any event. Nobody waits for them: one the journal refuses
 * (queue full, Redis unreachable) is dropped, logged at debug (the journal
 * logs its outages). With a durable journal an event reaches the hub once
 * committed, so the API may list a subscription a moment before its event
 * is in history; resuming from that lastEventID then replays the event.
 * `hub` (borrowed) answers lastEventID. The registry itself stays per
 * node: the API lists this node's streams. */
/* `anon_rate`: subscription events of anonymous subscribers (no token)
 * per second, all together (--anonymous-subscription-rate; 0 = no cap).
 * Past it their events are not published (counted: subs_dropped_events):
 * connects and disconnects anyone can make cannot push real events out of
 * history faster than that. Events of subscribers with a token are never
 * dropped. */
subs_t *subs_new(hub_t *hub, journal_t *journal, long anon_rate);
void subs_free(subs_t *s); /* every handle must have been removed */

/* One subscription of a new stream. Strings are borrowed for the call. */
typedef struct subs_spec {
    const char *match;   /* the selector / matcher, as the client sent it */
    size_t len;          /* its length */
    uint8_t match_type;  /* grant_match_type_t: TEMPLATE_OR_EXACT (classic), EXACT or URLPATTERN (v1) */
    const char *payload; /* compact JSON, or NULL */
} subs_spec_t;

/* Registers a stream's distinct selectors and publishes "active": true
 * events, in the v1 or the classic shape. Returns the stream's handle, or
 * NULL if memory ran out (the stream then simply is not listed). */
subs_handle_t *subs_add(subs_t *s, int v1, const subs_spec_t *specs, size_t n, int anonymous);

/* Anonymous subscribers' events not published (over the budget). */
unsigned long subs_dropped_events(subs_t *s);

/* Unregisters and frees the handle; publishes "active": false events unless
 * `quiet` (shutdown: the workers that would receive them are going away). */
void subs_remove(subs_t *s, subs_handle_t *h, int quiet);

/* What an API request asks for; strings decoded, NULL = not in the path. */
typedef struct subs_query {
    int v1;                 /* which dialect's subscriptions and documents */
    const char *match_type; /* v1: "exact" or "urlpattern" */
    const char *match;      /* classic: the topic selector; v1: the matcher */
    const char *subscriber; /* a single subscription */
    const char *path;       /* the request path as sent (the collections' "id"), NUL-terminated */
} subs_query_t;

/* Renders the answer to GET .../subscriptions[/..]. Returns malloc'd JSON,
 * or NULL with *not_found set (a single subscription that does not exist)
 * or clear (out of memory). *last_event_id (malloc'd, the caller frees; may
 * be NULL on failure) is the hub's newest event id at render time, or
 * "earliest": classic puts it in the document (lastEventID), v1 in the
 * Link header. */
char *subs_try_render(subs_t *s, const subs_query_t *q, int *not_found, char **last_event_id);

/* Percent-encodes everything but RFC 3986 unreserved characters. `out`
 * holds 3 * len + 1 bytes. Returns the length. */
size_t subs_pct_encode(const char *in, size_t len, char *out);

#endif
