/*
 * demo.h - the demo clock: the seed article's server time, once a second.
 *
 * With --demo, main publishes one event per second on DEMO_CLOCK_TOPIC,
 * carrying the server's local time as "2026-11-26 10:45:51" (the seed's Go
 * server's format). GET /events without a topic subscribes to it.
 * Threads: called by main's thread; publishing is thread-safe.
 */
#ifndef COURANT_DEMO_H
#define COURANT_DEMO_H

#include "config.h"
#include "journal.h"

#define DEMO_CLOCK_TOPIC "urn:courant:clock"
#define DEMO_PRIVATE_TOPIC "https://example.com/demo/private"

#define DEMO_ISSUER "urn:courant:demo"

/* --demo-auth (DEMO ONLY): makes a random HS256 secret, sets it as both the
 * publisher and the subscriber key in `cfg` (which must name no key of its
 * own), binds it to --jwt-issuer (DEMO_ISSUER unless one is given) and
 * turns --anonymous on, so the page's anonymous panels still work. Returns
 * 0, or -1 after printing why. Main thread, before auth_new(). */
int demo_auth_init(config_t *cfg);

/* The tokens GET /demo/tokens.json serves, signed with the key
 * demo_auth_init made, lasting a day: malloc'd JSON {"note", "key",
 * "publisher", "subscriber" (draft-07), "publisherV1", "subscriberV1"
 * (Mercure 1.0 access tokens: typ at+jwt, iss, aud = the resource
 * identifier, authorization_details), "privateTopic", "resource"}. NULL
 * when out of memory. Main thread, once the resource identifier is known
 * (after binding). */
char *demo_auth_tokens(const config_t *cfg);

/* Publishes one clock event through the journal, like any event (with
 * --store it is stored and published once committed; with --redis every
 * node ticks, each tick an event of its own in the shared stream). Nobody
 * waits for it. Returns 0, or -1 if memory runs out (logged) or the journal
 * refuses it (logged at debug: the journal logs its outages itself). */
int demo_publish_tick(journal_t *journal);

#endif
