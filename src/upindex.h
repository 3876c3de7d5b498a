/*
 * upindex.h - one worker's URL patterns (Mercure 1.0 `match_urlpattern`
 * subscriptions and `urlpattern` grants), interned and indexed so that an
 * event only runs the patterns it might match.
 *
 * A pattern that matches a topic must agree with it on two things we can
 * read without running it: the hostname, when the pattern's hostname is
 * fixed text, and the start of the pathname, up to the pattern's first
 * non-literal part. So patterns hang in buckets keyed by both:
 *
 *   buckets (strmap)
 *     "h" host "\n" path-prefix  -> entry <-> entry ...   fixed hostname
 *     "*"      "\n" path-prefix  -> entry <-> entry ...   any other hostname
 *
 *   "https://example.com/books/:id"  -> "hexample.com\n/books"
 *   "/.well-known/mercure/subscriptions/exact/:m/:s"
 *        (relative: the hub's host)  -> "h<hub host>\n/.well-known/mercure/subscriptions/exact"
 *   "https://:sub.example.com/:p"    -> "*\n"
 *
 * The path prefix is the literal text of the normalized pathname pattern
 * before its first special character (: * ( ) { } \ ? +), minus a trailing
 * "/" when a part follows (in "/books/:id?" the "/" belongs to the optional
 * part: "/books" matches), capped at UPINDEX_PREFIX_MAX bytes. A shorter
 * prefix only adds candidates, never loses a match.
 *
 * A topic is parsed as a URL once (relative to the hub's URL, as draft-08
 * says; a topic that does not parse matches no pattern), then looked up once
 * per prefix length in use in each family (at most 2 x (UPINDEX_PREFIX_MAX +
 * 1) lookups), and the entries of the buckets found are its candidates.
 *
 * Entries are refcounted (subscriptions and grants of this worker's streams
 * share one compiled pattern per text) and carry a process-unique id for
 * the worker's match cache (selector_cache_lookup). `head` and
 * `matched_seq` belong to the user (stream.c: the links subscribed with the
 * pattern, the last event it was delivered for).
 *
 * Threads: an index belongs to one worker; nothing here locks.
 */
#ifndef COURANT_UPINDEX_H
#define COURANT_UPINDEX_H

#include "urlpattern.h"

#include <stddef.h>
#include <stdint.h>

#define UPINDEX_PREFIX_MAX 64 /* bytes of a path prefix used in a bucket key */
#define UPINDEX_HOST_MAX 255  /* a longer fixed hostname is indexed as "any host" */

typedef struct upindex upindex_t;
typedef struct upbucket upbucket_t;

typedef struct upentry {
    struct upentry *prev, *next; /* the bucket's list */
    upbucket_t *bucket;          /* borrows: the bucket it hangs in */
    urlpattern_t *pat;           /* owns; its text is the key of the by-text map */
    uint64_t id;                 /* unique for the process's life: the match cache's key */
    uint32_t refs;               /* users: links, grants, in-flight holds */
    void *head;                  /* the user's (stream.c: links subscribed with this pattern) */
    uint64_t matched_seq;        /* the user's (stream.c: last event delivered for it) */
} upentry_t;

/* An index whose topics are resolved against base_url (NUL-terminated,
 * copied; the hub's resource identifier). NULL when out of memory or when
 * base_url does not parse as an absolute URL. */
upindex_t *upindex_new(const char *base_url);
void upindex_free(upindex_t *x); /* every entry must have been released */

/* The base URL, as given (borrowed). */
const char *upindex_base(const upindex_t *x);

/* The interned entry for this pattern text, or NULL. */
upentry_t *upindex_find(upindex_t *x, const char *text, size_t len);

/* Interns a compiled pattern (taking it over): the existing entry of the
 * same text (refs + 1; `pat` freed) or a new one (refs = 1). NULL when out
 * of memory (`pat` freed). */
upentry_t *upindex_intern(upindex_t *x, urlpattern_t *pat);

/* refs + 1 on an interned entry. */
void upindex_ref(upentry_t *e);

/* refs - 1; at 0 the entry leaves the index and is freed (its user's head
 * must be empty by then). */
void upindex_release(upindex_t *x, upentry_t *e);

/* Interned patterns. */
size_t upindex_count(const upindex_t *x);

typedef void (*upindex_candidate_cb)(upentry_t *e, void *ctx);

/* Calls cb for every entry that may match topic[0..len) (its buckets' keys
 * fit the topic). cb may not intern or release entries. Returns the number
 * of bucket lookups made (0 when the topic is not a URL). */
size_t upindex_candidates(upindex_t *x, const char *topic, size_t len, upindex_candidate_cb cb, void *ctx);

/* Not part of the contract; visible for the tests. The bucket key a pattern
 * goes in (out holds 2 + UPINDEX_HOST_MAX + UPINDEX_PREFIX_MAX bytes):
 * returns its length; *prefix_len is the path prefix's part of it. */
size_t upindex__key(const urlpattern_t *p, char *out, size_t *prefix_len);

#endif
