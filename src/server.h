/*
 * server.h - the state every worker shares: configuration, the hub, the
 * journal, the connection and body budgets, and the stop flag. Built by
 * main before the workers start; afterwards its plain fields are read-only
 * and its atomics are the only things written, so no lock is needed.
 *
 * Only forward declarations here: a module includes the headers of what it
 * actually uses (STYLE: no umbrella header).
 */
#ifndef COURANT_SERVER_H
#define COURANT_SERVER_H

#include "config.h"
#include "req.h"

#include <stdatomic.h>
#include <stdint.h>

struct worker;
struct hub;
struct store;
struct backplane;
struct auth;
struct subs;
struct tls_server;

typedef struct server {
    const config_t *cfg;          /* borrows: lives as long as main */
    struct hub *hub;              /* borrows */
    struct store *store;          /* borrows; NULL without --store (memory-only history) */
    struct backplane *backplane;  /* borrows; NULL without --redis (one node) */
    const struct auth *auth;      /* borrows: the JWT keys (auth.h); never NULL */
    const char *demo_tokens;      /* borrows: --demo-auth's /demo/tokens.json, or NULL */
    struct subs *subs;            /* borrows: the subscriptions registry; NULL without --subscriptions */
    struct tls_server *tls;       /* borrows: the certificate context; NULL without --tls-cert (cleartext) */
    const req_handler_t *handler; /* borrows: what answers requests (router.c), for every protocol */
    struct worker **workers;      /* borrows: num_workers of them */
    int num_workers;
    long max_connections;    /* effective cap on open client connections */
    atomic_long open_conns;  /* client connections open now, all workers */
    atomic_llong body_bytes; /* request body bytes buffered now, all workers (--max-body-bytes-total) */
    atomic_int stopping;     /* set once by main on SIGTERM/SIGINT */
    int64_t started_ms;      /* CLOCK_REALTIME at start */
} server_t;

#endif
