/*
 * jwks.h - JSON Web Key Sets (RFC 7517): a pure parser into jws keys, and a
 * fetcher that keeps the sets of trusted issuers fresh over HTTPS.
 *
 * Parser. {"keys":[{"kty":..,"kid"?:..,"alg"?:..,"use"?:..,..},..]}
 *   kty "RSA"  n, e        (n >= 2048 bits)        RS256..PS512
 *   kty "EC"   crv, x, y   (P-256: ES256, P-384: ES384; the point is checked)
 *   kty "OKP"  crv, x      (Ed25519: EdDSA)
 *   kty "oct"  k           (HMAC: HS256..HS512)
 * "alg", if present, narrows the key to that one algorithm (RFC 7517 4.4);
 * a key whose "use" is not "sig", whose "key_ops" lacks "verify", or whose
 * members are missing, malformed or unsupported is skipped, with a reason
 * through the `on_skip` callback (RFC 7517 5: "SHOULD ignore JWKs ... not
 * understood"). Private members (d, p, q..) next to a public key are a
 * publisher's mistake we refuse to build on: that key is skipped too. A set
 * that is not an object with a "keys" array, is too large, or leaves no
 * usable key is refused as a whole.
 *
 * Fetcher. One background thread serves every --jwks-url (one URL per
 * trusted issuer, each key bound to its URL's issuer):
 *
 *   workers --poke()--> atomic flag + eventfd --> fetcher thread
 *                                                  |  per URL: due time,
 *                                                  |  libcurl GET (HTTPS only,
 *                                                  |  timeouts, size cap),
 *                                                  |  parse, union of all URLs'
 *                                                  v  keys (+ base keys)
 *   workers <--keyset()-- jws_keyset_holder (mutex: pointer copy + ref)
 *
 * A URL is fetched again when its Cache-Control max-age runs out (clamped to
 * [min_ttl, max_ttl], default_ttl when absent, min_ttl for no-cache or
 * no-store), and early when a worker pokes (a token carried a kid no key
 * has), at most once per poke_interval per URL: a poke inside the interval
 * is remembered and served at its end. A failed fetch (network, TLS, status
 * not 200, bad JSON, no usable key) keeps the last good keys and is retried
 * with a backoff from retry_min to max_ttl; each change of state (first
 * success, key set changed, failing, recovered) is logged once, repeats at
 * debug level. No I/O ever happens on a caller's thread.
 *
 * The URLs come from the operator, not from tokens, so they are trusted
 * (no SSRF guard); only https is allowed and redirects are not followed.
 */
#ifndef COURANT_JWKS_H
#define COURANT_JWKS_H

#include "jws.h"

#include <stddef.h>
#include <stdint.h>

/* Bytes of one JWK Set (parser input and fetch body cap). */
#define JWKS_MAX_BYTES (256 * 1024)
/* Members of "keys" looked at (usable or not); more refuses the set. */
#define JWKS_MAX_KEYS 64

/* ---- parser ------------------------------------------------------------------ */

/* Told about each member skipped: its index in "keys" and a static reason.
 * Never given the member's content, which may hold anything. */
typedef void (*jwks_skip_cb)(void *ctx, size_t index, const char *why);

typedef struct jwks_parse_opts {
    jws_algset_t algs;    /* keys only get algorithms in this set; 0 = all. A key left with none is skipped */
    const char *issuer;   /* borrows: every key is bound to it (copied); NULL = unbound */
    jwks_skip_cb on_skip; /* NULL = silent */
    void *ctx;            /* for on_skip */
} jwks_parse_opts_t;

/* Parses a JWK Set (`len` bytes of JSON) into a new key set (one reference,
 * not yet shared). `opts` may be NULL. Returns 0, or -1 with *why (static)
 * and *out NULL. Pure apart from allocation; any thread. */
int jwks_try_parse(const char *json, size_t len, const jwks_parse_opts_t *opts, jws_keyset_t **out,
                   const char **why) __attribute__((warn_unused_result));

/* One JWK (not a set), for keys given in configuration. Same member rules;
 * what would be skipped in a set is an error here. */
int jwks_try_parse_key(const char *json, size_t len, const jwks_parse_opts_t *opts, jws_key_t **out,
                       const char **why) __attribute__((warn_unused_result));

/* ---- fetcher ------------------------------------------------------------------ */

typedef struct jwks_fetcher jwks_fetcher_t;

typedef struct jwks_fetcher_opts {
    const char *ca_file; /* borrows (copied): PEM CA bundle to verify servers with; NULL = system store */
    int insecure_tls;    /* 1: do not verify the server's certificate. Tests only: never in production */
    jws_algset_t algs;   /* as jwks_parse_opts_t.algs */
    int min_ttl_s;       /* lower clamp of max-age; 0 = 60 */
    int max_ttl_s;       /* upper clamp, and the longest retry backoff; 0 = 86400 */
    int default_ttl_s;   /* without max-age; 0 = 300 */
    int poke_interval_s; /* at most one poke-driven fetch per URL per interval; 0 = 10 */
    int retry_min_s;     /* first retry after a failure, doubling; 0 = 5 */
    int timeout_ms;      /* whole transfer, connection included; 0 = 10000 */
} jwks_fetcher_opts_t;

/* Builds a fetcher for n URLs, urls[i] trusted for issuers[i] (both
 * borrowed, copied). `opts` may be NULL. Nothing is fetched yet. Returns
 * NULL with *why for a URL that is not https://, an empty issuer, or bad
 * options. Main thread, before other threads exist (initializes libcurl). */
jwks_fetcher_t *jwks_fetcher_new(const char *const *urls, const char *const *issuers, size_t n,
                                 const jwks_fetcher_opts_t *opts, const char **why);

/* Keys that every published set also holds (static keys from the
 * configuration, so one set serves a request); `base` may be NULL. Takes
 * over the caller's reference. Call before start, or later from the main
 * thread (SIGHUP): the next published set includes them at once. */
void jwks_fetcher_set_base(jwks_fetcher_t *f, jws_keyset_t *base);

/* Starts the thread, which fetches every URL at once. Returns 0, or -1 with
 * *why. Main thread. */
int jwks_fetcher_start(jwks_fetcher_t *f, const char **why);

/* Waits until every URL has been fetched successfully once, or timeout_ms
 * passed. Returns 1 if all are ready, 0 otherwise. Main thread (start-up). */
int jwks_fetcher_wait_ready(jwks_fetcher_t *f, int timeout_ms);

/* The current union of keys with a reference (jws_keyset_unref), or NULL
 * when nothing was fetched and there are no base keys. Any thread. */
jws_keyset_t *jwks_fetcher_keyset(jwks_fetcher_t *f);

/* Asks for an early refresh (a token had an unknown kid). Never blocks,
 * never does I/O; many pokes coalesce into one wake-up. Any thread. */
void jwks_fetcher_poke(jwks_fetcher_t *f);

/* Stops and joins the thread (an in-flight transfer is aborted). Main thread. */
void jwks_fetcher_stop(jwks_fetcher_t *f);

/* Stops if needed and frees everything. NULL is a no-op. Main thread. */
void jwks_fetcher_free(jwks_fetcher_t *f);

typedef struct jwks_url_stats {
    uint64_t fetches;  /* attempts finished, successful or not */
    uint64_t failures; /* attempts that kept the previous keys */
    uint64_t changes;  /* successful fetches whose body differed from the last good one */
    int ok;            /* the last attempt succeeded */
    int keys;          /* usable keys in the last good set; 0 = none yet */
    int ttl_s;         /* seconds until the next scheduled fetch after the last attempt */
} jwks_url_stats_t;

/* Counters of URL i, for /metrics and tests. Returns 0, or -1 if i >= n.
 * Any thread (relaxed atomics: each field is exact, the set is not a snapshot). */
int jwks_fetcher_stats(jwks_fetcher_t *f, size_t i, jwks_url_stats_t *out);

/* Not part of the contract; visible for the tests and the fuzz target.
 * Reads Cache-Control directives (RFC 9111 5.2) from a header value: max-age=N
 * (N may be quoted; saturates at 1e9; the smallest of several wins) into
 * *max_age (left alone if absent), no-cache or no-store into *no_cache; names
 * are case-insensitive, other directives ignored. Pure; any thread. */
void jwks__parse_cache_control(const char *v, size_t len, long *max_age, int *no_cache);

#endif
