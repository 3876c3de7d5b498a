/*
 * config.h - courant's options, from the command line and COURANT_* variables.
 *
 * Every option --name-with-dashes can also be given as the environment
 * variable COURANT_NAME_WITH_DASHES; the command line wins. Repeatable
 * options (--listen, --cors-origin) take a comma-separated list from the
 * environment. The parsed config is built once on the main thread and is
 * read-only afterwards, so every thread may read it without a lock.
 */
#ifndef COURANT_CONFIG_H
#define COURANT_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_LISTEN 8
#define CONFIG_MAX_ORIGINS 16

typedef struct config {
    char *listen[CONFIG_MAX_LISTEN]; /* owns: "host:port" strings */
    int num_listen;
    int workers;                      /* event-loop threads; default: CPU count */
    int reuse_port;                   /* share the port with other courant processes */
    int demo;                         /* publish the clock and serve the demo page */
    int demo_auth;                    /* DEMO ONLY: random HS256 keys, tokens at /demo/tokens.json */
    long max_connections;             /* 0 = size from the descriptor limit */
    int header_timeout_s;             /* a request head must arrive within this */
    int idle_timeout_s;               /* an idle keep-alive connection is closed after */
    size_t max_header_bytes;          /* request line + headers; 431 past it */
    size_t max_event_bytes;           /* publish body; 413 past it */
    long history;                     /* events kept for resume (count) */
    int history_age_s;                /* and no older than this; 0 = no age limit */
    int heartbeat_s;                  /* comment on idle streams; 0 = off */
    long retry_ms;                    /* retry: hint sent on stream start; -1 = none */
    size_t max_pending_bytes;         /* queued output per subscriber before it is dropped */
    int fanout_batch_us;              /* a worker gathers a burst this long before fanning out; 0 = never */
    int publish_wait_lag_ms;          /* publish answers wait while the fan-out lags more; 0 = never */
    int publish_refuse_lag_ms;        /* publishes are refused (503) while it lags more; 0 = never */
    int max_lifetime_s;               /* streams end after this, jittered; 0 = never */
    size_t max_body_bytes_total;      /* request body bytes buffered by all connections; 503 past it */
    size_t max_stream_input_bytes;    /* bytes a subscriber may send after its request; closed past it */
    int max_topics_per_subscribe;     /* topic selectors in one subscribe request; 400 past it */
    int max_templates_per_subscriber; /* distinct URI templates in one subscribe request; 400 past it */
    int max_templates_per_worker;     /* distinct URI templates interned per worker; 503 past it */
    int max_template_states;          /* NFA states of one client-given URI template; 400 past it */
    long max_replay; /* events one subscribe replays; then it resumes by reconnecting; 0 = no cap */
    long max_connections_per_ip; /* open connections per client address; 0 = no cap */
    long publish_rate;           /* publishes per second per token (or client without one); 0 = no cap */
    long subscribe_rate;         /* subscribes per second per client address; 0 = no cap */
    long
        anonymous_subscription_rate; /* subscription events of anonymous subscribers per second; 0 = no cap */
    int limit_loopback;              /* the per-client limits apply to loopback clients too */
    char *trusted_proxies[CONFIG_MAX_ORIGINS]; /* owns: CIDRs whose Forwarded/X-Forwarded-For is believed */
    int num_trusted_proxies;
    char *trusted_proxy_header;             /* owns: "forwarded" (default) or "x-forwarded-for" */
    char *cors_origins[CONFIG_MAX_ORIGINS]; /* owns; "*" = any origin */
    int num_cors_origins;
    char *publish_origins[CONFIG_MAX_ORIGINS]; /* owns: origins whose browsers may publish */
    int num_publish_origins;
    char *jwt_alg;                 /* owns: HS256 (default), HS384, HS512, RS256, ES256 */
    char *publisher_jwt_key;       /* owns: HS secret or PEM; NULL = none */
    char *publisher_jwt_key_file;  /* owns: path of the same, read at start */
    char *subscriber_jwt_key;      /* owns: as above, for subscribers */
    char *subscriber_jwt_key_file; /* owns */
    int anonymous;                 /* subscribers without a token are let in */
    int subscriptions;             /* publish subscription events, serve the API */
    int log_level;                 /* log_level_t */
    char *store_path;              /* owns; --store: the SQLite file; NULL = memory-only history */
    int sync;                      /* store_sync_t: --sync full|normal|off */
    char *redis_url;               /* owns; --redis: redis://[:PASS@]HOST:PORT[/DB]; NULL = one node */
    char *redis_stream;            /* owns; --redis-stream: the stream's key (default "courant") */
} config_t;

/* Fills `c` from defaults, the environment and argv. Returns 0; 1 if --help or
 * --version was printed (exit 0); -1 after printing a one-line error. */
int config_parse(config_t *c, int argc, char **argv);

/* Frees the strings `c` owns. */
void config_dispose(config_t *c);

/* Test hook: send the one-line errors to `f` instead of stderr (the fuzz
 * target silences them). Not thread-safe; call before parsing. */
void config__set_error_stream(FILE *f);

/* Splits "host:port", "[v6]:port" or ":port"; host is copied into host_out
 * (empty for ":port"). Returns 0 or -1. */
int config_split_hostport(const char *s, char *host_out, size_t host_cap, int *port_out);

#endif
