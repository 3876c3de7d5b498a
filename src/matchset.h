/*
 * matchset.h - a token's topic matchers, compiled once for a request: "does
 * any of them match this topic, and which one first?".
 *
 * One matcher per grant_matcher_t (grant.h), interpreted by its type:
 *
 *   "*" (any type)              every topic (draft-07 selector; draft-08
 *                               reserved wildcard, recognized before the type)
 *   GRANT_MATCH_TEMPLATE_OR_EXACT  draft-07 selector (selector.h): an RFC 6570
 *                               template, else the exact topic
 *   GRANT_MATCH_EXACT           draft-08 exact: byte for byte, never resolved
 *   GRANT_MATCH_URLPATTERN      draft-08 URL Pattern (urlpattern.h), relative
 *                               patterns and topics resolved against the
 *                               hub's URL (the resource identifier)
 *
 *   matchset: [n] { kind, text (borrowed), selector_t* | urlpattern_t* }
 *
 * Used where a token's grant is checked against a few topics: a publish
 * (every topic of the update), the subscriptions API (the requested path),
 * a v1 subscription's payload (the first subscribe detail matching its
 * matcher string). Streams keep their own interned, cached matchers
 * (stream.c): compiling per event would be too slow there.
 *
 * Cost: compiling is bounded by the grant's limits (GRANT_MAX_MATCHERS,
 * GRANT_MAX_MATCHER_LEN; classic selectors by the token size); a URL
 * pattern match by URLPATTERN_MAX_STEPS.
 *
 * Threads: a matchset belongs to its caller. Matching never mutates it
 * (templates run as NFAs, selector_match_nfa; URL patterns are immutable):
 * a set is matched a few times and freed, so a lazy DFA (selector.h) would
 * cost more to build than it saves.
 */
#ifndef COURANT_MATCHSET_H
#define COURANT_MATCHSET_H

#include "grant.h"

#include <stddef.h>

typedef struct matchset matchset_t;

/* Compiles the n matchers of v (borrowed: v must outlive the set), URL
 * patterns relative to base_url (NUL-terminated; NULL: relative patterns do
 * not compile). Returns the set (matchset_free), or NULL with *why: out of
 * memory, or a URL pattern that does not compile (grant.c checked them
 * already, so only memory should fail). Any thread. */
matchset_t *matchset_try_new(const grant_matcher_t *v, size_t n, const char *base_url, const char **why)
    __attribute__((warn_unused_result));

void matchset_free(matchset_t *m);

/* The index of the first matcher (in token order) that matches topic[0..len),
 * or -1 if none does. */
long matchset_first(const matchset_t *m, const char *topic, size_t len);

/* Does matcher i match topic[0..len)? */
int matchset_match_one(const matchset_t *m, size_t i, const char *topic, size_t len);

#endif
