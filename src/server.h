/*
 * server.h - the state every worker shares: configuration, the hub, the
 * journal, the connection and body budgets, and the stop flag. Built by
 * main before the workers start; afterwards its plain fields are read-only
 * and its atomics are the only things written, so no lock is needed.
 *
 * Only forward declarations here: a module includes the headers of what it
 * actually uses (STYLE: no umbrella header).
 *
 * Reload (SIGHUP): the config, the keys and the limits are atomic pointers.
 * Main builds new ones, swaps the pointers, then waits until every worker
 * has begun a new turn (worker_turns) before freeing the old ones: nothing
 * keeps a pointer to them across turns, so no reader is left. A reader
 * takes the pointer once per use (an atomic load, a plain mov on x86).
 */
#ifndef COURANT_SERVER_H
#define COURANT_SERVER_H

#include "config.h"
#include "peer.h"
#include "req.h"

#include <stdatomic.h>
#include <stdint.h>

struct worker;
struct hub;
struct journal;
struct auth;
struct subs;
struct dashboard;
struct ratelimit;
struct ratelimit_counter;
struct conn;
struct tls_server;
struct acme;
struct acmechal;

/* The per-client rates and the trusted proxies, built from the config and
 * swapped as a whole by a reload. */
typedef struct server_limits {
    struct ratelimit *publish_rate;   /* owns: --publish-rate per token or client, or NULL */
    struct ratelimit *subscribe_rate; /* owns: --subscribe-rate per client, or NULL */
    peer_cidr_t *trusted;             /* owns: --trusted-proxy ranges */
    size_t num_trusted;
    peer_header_t trusted_header; /* which header those proxies write (--trusted-proxy-header) */
} server_limits_t;

typedef struct server {
    _Atomic(const config_t *) cfg;     /* borrows: the running config; a reload swaps it (see below) */
    struct hub *hub;                   /* borrows */
    struct journal *journal;           /* borrows: where events go (journal.h): memory, --store or --redis */
    _Atomic(const struct auth *) auth; /* borrows: the JWT keys (auth.h); never NULL; a reload swaps it */
    const char *demo_tokens;           /* borrows: --demo-auth's /demo/tokens.json, or NULL */
    struct subs *subs;                 /* borrows: the subscriptions registry; NULL without --subscriptions */
    struct tls_server *tls;     /* borrows: the certificate context; NULL without --tls-cert (cleartext) */
    struct acmechal *acme_chal; /* borrows: ACME HTTP-01 answers (--acme-domain), or NULL */
    struct acme *acme;          /* borrows: the ACME client (--acme-domain), or NULL: /metrics reads it */
    int https_port;             /* with TLS: the first HTTPS listener's port, for --listen-http's redirects */
    struct dashboard *dashboard;  /* borrows: the admin dashboard's state (dashboard.h); always made */
    const req_handler_t *handler; /* borrows: what answers requests (router.c), for every protocol */
    /* Makes a connection HTTP/2 (h2server_take_over; see h2server.h), for the
     * protocols below it: h1server on the h2c preface, tls after ALPN "h2".
     * Set by main; NULL: no HTTP/2. */
    int (*h2_take_over)(struct conn *c);
    struct worker **workers; /* borrows: num_workers of them */
    /* borrows: called by every worker on its tick (every 250 ms), on that
     * worker's thread; NULL = none. main sets it to the admin dashboard's
     * (dashboard.h: its feeds and its top-topics scan) before the workers start. */
    void (*worker_tick)(void *ctx, struct worker *w, int64_t now_ms);
    void *worker_tick_ctx;                        /* borrows: passed to worker_tick */
    struct ratelimit_counter *conns_per_ip;       /* owns (main frees): --max-connections-per-ip, or NULL */
    _Atomic(const struct server_limits *) limits; /* borrows: rates and trusted proxies; a reload swaps it */
    int num_workers;
    long max_connections;    /* effective cap on open client connections */
    atomic_long open_conns;  /* client connections open now, all workers */
    atomic_llong body_bytes; /* request body bytes buffered now, all workers (--max-body-bytes-total) */
    atomic_llong
        head_bytes;      /* read buffers of unfinished request heads, all workers (--max-head-bytes-total) */
    atomic_int stopping; /* set once by main on SIGTERM/SIGINT */
    int64_t started_ms;  /* CLOCK_REALTIME at start */
} server_t;

#endif
