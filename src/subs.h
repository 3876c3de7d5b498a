/*
 * subs.h - the Mercure subscriptions API (draft-dunglas-mercure-07,
 * "Active Subscriptions"), on with --subscriptions.
 *
 * Every (stream, topic selector) pair is one subscription:
 *
 *   id         /.well-known/mercure/subscriptions/{topic}/{subscriber}
 *              (topic and subscriber percent-encoded)
 *   subscriber urn:uuid:<UUIDv7> made when the stream opens
 *   payload    the subscriber token's mercure.payload claim, if any
 *
 * When a stream opens (closes) the hub publishes, for each of its selectors,
 * a PRIVATE update whose topic is that id and whose data is the JSON-LD
 * Subscription document with "active": true (false). GET on
 * /.well-known/mercure/subscriptions[/{topic}[/{subscriber}]] answers the
 * current ones (router.c authorizes the request).
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

/* Registers a stream's distinct selectors and publishes "active": true
 * events. `payload` is compact JSON or NULL. Returns the stream's handle,
 * or NULL if memory ran out (the stream then simply is not listed). */
subs_handle_t *subs_add(subs_t *s, const char *const *selectors, const size_t *lens, size_t n,
                        const char *payload, int anonymous);

/* Anonymous subscribers' events not published (over the budget). */
unsigned long subs_dropped_events(subs_t *s);

/* Unregisters and frees the handle; publishes "active": false events unless
 * `quiet` (shutdown: the workers that would receive them are going away). */
void subs_remove(subs_t *s, subs_handle_t *h, int quiet);

/* Renders the answer to GET .../subscriptions[/topic[/subscriber]]; `topic`
 * and `subscriber` are decoded (NULL = not in the path). Returns malloc'd
 * JSON, or NULL with *not_found set (a single subscription that does not
 * exist) or clear (out of memory). */
char *subs_try_render(subs_t *s, const char *topic, const char *subscriber, int *not_found);

/* Percent-encodes everything but RFC 3986 unreserved characters. `out`
 * holds 3 * len + 1 bytes. Returns the length. */
size_t subs_pct_encode(const char *in, size_t len, char *out);

#endif
