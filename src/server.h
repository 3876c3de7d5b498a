/*
 * server.h - the state every worker shares: configuration, the hub, the
 * connection budget and the stop flag. Built by main before the workers
 * start; afterwards its plain fields are read-only and its atomics are the
 * only things written, so no lock is needed.
 */
#ifndef COURANT_SERVER_H
#define COURANT_SERVER_H

#include "config.h"
#include "auth.h"
#include "hub.h"

#include <stdatomic.h>

struct worker;

/* Refusal reasons counted for /metrics (refused_requests_total{reason=..}). */
typedef enum refusal {
    REFUSE_BAD_REQUEST,
    REFUSE_NOT_FOUND,
    REFUSE_METHOD,
    REFUSE_HEADERS_TOO_LARGE,
    REFUSE_BODY_TOO_LARGE,
    REFUSE_TIMEOUT,
    REFUSE_OVER_CAPACITY,
    REFUSE_FORBIDDEN,
    REFUSE_UNAVAILABLE,
    REFUSE_UNAUTHORIZED,
    REFUSE__COUNT
} refusal_t;

extern const char *const refusal_names[REFUSE__COUNT];

typedef struct server {
    const config_t *cfg;     /* borrows: lives as long as main */
    hub_t *hub;              /* borrows */
    struct journal *journal; /* borrows: where events go (journal.h): memory, --store or --redis */
    const auth_t *auth;      /* borrows: the JWT keys (auth.h); never NULL */
    const char *demo_tokens; /* borrows: --demo-auth's /demo/tokens.json, or NULL */
    struct subs *subs;       /* borrows: the subscriptions registry; NULL without --subscriptions */
    struct worker **workers; /* borrows: num_workers of them */
    int num_workers;
    long max_connections;   /* effective cap on open client connections */
    atomic_long open_conns; /* client connections open now, all workers */
    atomic_int stopping;    /* set once by main on SIGTERM/SIGINT */
    int64_t started_ms;     /* CLOCK_REALTIME at start */
} server_t;

#endif
