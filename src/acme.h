/*
 * acme.h - automatic HTTPS: a certificate for --acme-domain names from an
 * ACME CA (RFC 8555), kept in a state directory and renewed in a
 * background thread.
 *
 *   main (start)                       acme thread                      workers
 *   ------------                       -----------                      -------
 *   acme_new: state dir (locked),      sleeps until the renewal time
 *     account key, stored certificate  (2/3 of the lifetime, jittered)
 *   acme_initial: the stored           order (libcurl, JWS ES256):
 *     certificate, or a bootstrap        newNonce, newAccount, newOrder,
 *     self-signed one  --> tls server    authorizations:
 *   acme_start  ---------------------->    provision answers ------------> acmechal: served by
 *                                          POST challenge, poll             tls (acme-tls/1) and
 *                                        finalize (CSR), poll, download     router (HTTP-01)
 *                                        check the chain, save (0600)
 *                                        install(ctx, chain, key) ------> main's function: the TLS
 *                                        failure: keep the old one,         context is swapped; open
 *                                          retry with backoff               connections keep theirs
 *
 * State directory (--acme-state-dir), one subdirectory per CA directory URL
 * (an account belongs to one CA), everything 0700/0600:
 *
 *   DIR/<host>_<path>/lock           flock: one courant per state at a time
 *   DIR/<host>_<path>/account.key    the account's P-256 key (PEM); created once, never replaced
 *   DIR/<host>_<path>/cert.key       the certificate's P-256 key (PEM)
 *   DIR/<host>_<path>/cert.pem       the chain the CA issued (leaf first)
 *
 * A restart finds cert.pem and cert.key; if they match, name every domain
 * and have not expired they are served at once and nothing is asked of the
 * CA until the renewal time. Otherwise courant serves a temporary
 * self-signed certificate for the names (never written to disk) and orders
 * one at once: the TLS listener must be up for TLS-ALPN-01 anyway, and the
 * hub stays reachable for clients that can wait.
 *
 * Everything the CA sends is parsed by acmewire and acmepki (bounded,
 * checked); the transport is libcurl, HTTPS only, no redirects, bodies cut
 * at 64 KiB, a timeout per request. A badNonce answer is retried with the
 * nonce it carries (up to 5 times); a failed order keeps the certificate in
 * use and is retried after 60 s, doubling up to an hour (or the CA's
 * Retry-After, if longer); each change of state (issued, failing, recovered)
 * is logged once, repeats at debug level.
 *
 * Threads: acme_new, acme_initial, acme_set_install, acme_start, acme_stop
 * and acme_free on the main thread; the install function is called on the
 * acme thread; acme_get_stats anywhere.
 */
#ifndef COURANT_ACME_H
#define COURANT_ACME_H

#include "acmechal.h"

#include <stddef.h>
#include <stdint.h>

#define ACME_MAX_DOMAINS 16
#define ACME_LETSENCRYPT "https://acme-v02.api.letsencrypt.org/directory"

typedef struct acme acme_t;

/* Which challenges to answer, in order of preference. */
typedef enum acme_challenges {
    ACME_USE_TLSALPN01 = 1, /* TLS-ALPN-01 on the TLS listeners (port 443 for a public CA) */
    ACME_USE_HTTP01 = 2,    /* HTTP-01 on the --listen-http listeners (port 80) */
} acme_challenges_t;

typedef struct acme_opts {
    const char *directory;      /* borrows (copied): the CA's directory URL, https:// */
    const char *const *domains; /* borrows (copied): names for one certificate, 1..ACME_MAX_DOMAINS */
    size_t num_domains;
    const char *email;     /* borrows (copied): contact, or NULL */
    const char *state_dir; /* borrows (copied): see above */
    const char *ca_file;   /* borrows (copied): PEM roots to verify the CA with; NULL = system store */
    int agree_tos;         /* the operator agreed to the CA's terms of service (required) */
    int challenges;        /* acme_challenges_t bits */
    int prefer_http01;     /* both allowed: try HTTP-01 first */
    long renew_before_s;   /* renew when this much is left; 0 = at 2/3 of the lifetime */
    int retry_min_s;       /* first retry after a failure; 0 = 60 */
    int retry_max_s;       /* longest backoff; 0 = 3600 */
    int timeout_ms;        /* one request to the CA; 0 = 30000 */
} acme_opts_t;

/* Installs a new certificate (PEM chain, leaf first, and its PEM key) into
 * the server; 0, or -1 with why[cap] (the old one stays). Called on the
 * acme thread. */
typedef int (*acme_install_fn)(void *ctx, const char *chain_pem, size_t chain_len, const char *key_pem,
                               size_t key_len, char *why, size_t cap);

/* Checks the options, creates and locks the state directory, loads (or
 * creates) the account key and loads the stored certificate if usable.
 * `chal` (borrowed) receives challenge answers. No network. Returns NULL
 * with a one-line reason in why[cap]. Main thread, before other threads
 * exist (initializes libcurl). */
acme_t *acme_new(const acme_opts_t *opts, acmechal_t *chal, char *why, size_t cap);

/* The certificate to serve from the start: the stored one, or (none
 * usable) a temporary self-signed one for the names. *chain and *key are
 * malloc'd PEM (the caller frees both); *bootstrap is 1 for the
 * temporary one. 0, or -1 with why[cap]. Main thread, before acme_start. */
int acme_initial(acme_t *a, char **chain, size_t *chain_len, char **key, size_t *key_len, int *bootstrap,
                 char *why, size_t cap);

/* Where new certificates go. Main thread, before acme_start. */
void acme_set_install(acme_t *a, acme_install_fn fn, void *ctx);

/* Starts the thread (which orders at once if no stored certificate was
 * usable). 0, or -1 with why[cap]. Main thread, once the listeners that
 * answer challenges are up. */
int acme_start(acme_t *a, char *why, size_t cap);

/* Stops and joins the thread; a transfer in flight is aborted. Main thread. */
void acme_stop(acme_t *a);

/* Stops if needed, frees everything, releases the state lock. NULL is a
 * no-op. Main thread. */
void acme_free(acme_t *a);

typedef struct acme_stats {
    uint64_t orders;   /* orders attempted */
    uint64_t issued;   /* certificates obtained and installed */
    uint64_t failures; /* orders that failed */
    int64_t not_after; /* UTC seconds: expiry of the certificate in use; 0 = bootstrap */
    int64_t renew_at;  /* UTC seconds: the next attempt */
} acme_stats_t;

/* Counters, for /metrics and tests. Any thread (relaxed atomics). */
void acme_get_stats(acme_t *a, acme_stats_t *out);

/* The default --acme-state-dir: "acme" beside the --store file if there is
 * one, else /var/lib/courant/acme. Into out[cap]; 0, or -1 if it does not
 * fit. Pure. */
int acme_default_state_dir(const char *store_path, char *out, size_t cap);

/* Not part of the contract; visible for the tests. The subdirectory name
 * for a directory URL: host, port and path with every byte outside
 * [A-Za-z0-9.-] as '_', at most 100 bytes. Pure. */
void acme__ca_dirname(const char *url, char *out, size_t cap);

/* Not part of the contract; visible for the tests. When to renew a
 * certificate valid from nb to na (UTC seconds): na - renew_before (0: at
 * 2/3 of the lifetime), minus `jitter` (0..1: a fraction of the allowed
 * jitter, min(lifetime/30, 1 day)), never sooner than a tenth of the
 * lifetime after nb. Pure. */
int64_t acme__renew_at(int64_t nb, int64_t na, long renew_before_s, double jitter);

#endif
