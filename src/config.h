/*
 * config.h - courant's options: command line, COURANT_* variables, a
 * configuration file, defaults.
 *
 * One table (config.c) describes every option; it drives the command line,
 * the environment, the file, --help, the man page and the example
 * configuration (confdoc.c), so they cannot disagree. Every option
 * --name-with-dashes can be given:
 *
 *   on the command line      --history 5000   or   --history=5000
 *   in the environment       COURANT_HISTORY=5000
 *   in the file (--config)   history = 5000
 *
 * Precedence, highest first: command line > environment > file > defaults.
 * A list option (--listen, --cors-origin, --publish-origin) given in a
 * layer replaces the lower layers' list as a whole; within a layer values
 * add up (repeat the option, repeat the key in the file, or give a comma
 * list in the environment).
 *
 * The file: one `name = value` per line, the names of the options without
 * "--"; blank lines and lines starting with '#' are ignored (a '#' after a
 * value is part of the value: secrets and URLs may contain one); spaces
 * around the name and the value are trimmed; flags take true/false (also
 * 1/0, yes/no, on/off). Its path comes from --config, else COURANT_CONFIG.
 * An error names the file and line: "courant: FILE:12: unknown option foo".
 *
 * Reloading (SIGHUP, wired by main): config_parse() builds a fresh config_t
 * from the same argv, environment and file, config_diff() says which
 * options differ and whether each can change in a running server (listen
 * addresses, workers, the store, Redis cannot; keys, origins, limits, the
 * log level can).
 *
 * Threads: a parsed config is built on the main thread and is read-only
 * afterwards, so every thread may read it without a lock. Parsing itself is
 * not thread-safe (getenv, the error stream).
 */
#ifndef COURANT_CONFIG_H
#define COURANT_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_LISTEN 8
#define CONFIG_MAX_ORIGINS 16
#define CONFIG_MAX_ACME_DOMAINS 16
#define CONFIG_MAX_JWKS 16

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
    size_t max_head_bytes_total;      /* bytes of unfinished request heads, all connections; 503 past it */
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
    char *trusted_proxy_header; /* owns: "forwarded" (default) or "x-forwarded-for" */
    int h2c;            /* HTTP/2 with prior knowledge on cleartext listeners (the preface is detected) */
    int h2_max_streams; /* HTTP/2: concurrent streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS) */
    char *cors_origins[CONFIG_MAX_ORIGINS]; /* owns; "*" = any origin */
    int num_cors_origins;
    char *publish_origins[CONFIG_MAX_ORIGINS]; /* owns: origins whose browsers may publish */
    int num_publish_origins;
    char *jwt_alg;             /* owns: algorithms of the static keys, a comma list; NULL = by key type */
    char *jwt_issuer;          /* owns: --jwt-issuer, the issuer the static keys are bound to (1.0) */
    char *resource_identifier; /* owns: --resource-identifier (1.0 aud, base URL); NULL = the listen URL,
                                      which main fills in once the socket is bound */
    char *jwks_urls[CONFIG_MAX_JWKS]; /* owns: --jwks-url values, "URL" or "ISSUER=URL" */
    int num_jwks_urls;
    char *jwks_ca_file;      /* owns: --jwks-ca-file, CA bundle for the JWKS servers; NULL = system */
    char *access_token_algs; /* owns: --access-token-algs, allow-list for 1.0 tokens; NULL = all */
    int max_urlpatterns_per_subscriber; /* distinct URL patterns in one subscribe request; 400 past it */
    int max_urlpatterns_per_worker;     /* distinct URL patterns interned per worker; 503 past it */
    int max_urlpattern_states;          /* NFA states of one client-given URL pattern; 400 past it */
    long match_turn_budget;  /* template and URL-pattern matching steps per worker turn before deferring */
    char *publisher_jwt_key; /* owns: HS secret or PEM; NULL = none */
    char *publisher_jwt_key_file;  /* owns: path of the same, read at start */
    char *subscriber_jwt_key;      /* owns: as above, for subscribers */
    char *subscriber_jwt_key_file; /* owns */
    char *admin_jwt_key;           /* owns: HS secret or PEM for admin tokens (the dashboard); NULL = none */
    char *admin_jwt_key_file;      /* owns: path of the same, read at start and on reload */
    int admin;                     /* serve the admin dashboard at /admin/ (also on with --demo) */
    char *access_log;              /* owns: --access-log: "stderr", a path, or NULL (off) */
    int anonymous;                 /* subscribers without a token are let in */
    int subscriptions;             /* publish subscription events, serve the API */
    int log_level;                 /* log_level_t */
    int log_format;                /* log_format_t: --log-format text|json */
    char *config_file;             /* owns; --config / COURANT_CONFIG: the file read, or NULL */
    int listen_is_default;         /* no --listen anywhere: the two loopback defaults ([::1] optional) */
    char *listen_url;              /* owns: not an option: main sets it once the first socket is bound,
                                      "http://HOST:PORT/.well-known/mercure"; a reload keeps it */
    char *store_path;              /* owns; --store: the SQLite file; NULL = memory-only history */
    int sync;                      /* store_sync_t: --sync full|normal|off */
    char *redis_url;               /* owns; --redis: redis://[:PASS@]HOST:PORT[/DB]; NULL = one node */
    char *redis_stream;            /* owns; --redis-stream: the stream's key (default "courant") */
    char *tls_cert;                /* owns; --tls-cert: PEM certificate chain; NULL = cleartext */
    char *tls_key;                 /* owns; --tls-key: PEM private key (goes with tls_cert) */
    /* Automatic HTTPS (acme.h) and the cleartext port beside it. */
    char *listen_http[CONFIG_MAX_LISTEN]; /* owns: --listen-http: HTTP-01 + redirects */
    int num_listen_http;
    char *acme_domains[CONFIG_MAX_ACME_DOMAINS]; /* owns: --acme-domain: the certificate's names */
    int num_acme_domains;
    char *acme_directory;   /* owns; --acme-directory: the CA (default Let's Encrypt) */
    char *acme_email;       /* owns; --acme-email: the account's contact, or NULL */
    char *acme_state_dir;   /* owns; --acme-state-dir, or NULL: beside --store, else /var/lib */
    char *acme_ca_file;     /* owns; --acme-ca-file: roots for the CA's HTTPS; NULL: system */
    int acme_agree_tos;     /* --acme-agree-tos: the CA's terms of service are agreed to */
    char *acme_challenge;   /* owns; --acme-challenge: auto, tls-alpn-01 or http-01 */
    long acme_renew_before; /* --acme-renew-before, seconds; 0 = at 2/3 of the lifetime */
} config_t;

/* Fills `c` from defaults, the configuration file, the environment and
 * argv (argv[0] is the program name), in that order of increasing
 * precedence. Returns 0; 1 if --help or --version was printed (exit 0);
 * -1 after printing a one-line error that names where the bad value came
 * from (the option, the variable, or FILE:LINE). `c` must be disposed in
 * every case. Calling it again with the same arguments (a reload) re-reads
 * the file and the environment into a fresh config. Main thread. */
int config_parse(config_t *c, int argc, char **argv);

/* Frees the strings `c` owns and empties its lists. */
void config_dispose(config_t *c);

/* The i-th --jwks-url (< num_jwks_urls): "ISSUER=URL", split at the first
 * "=https://" (an issuer holding that is not supported), or a bare URL whose
 * issuer is --jwt-issuer. Points *issuer (issuer_len bytes, not
 * NUL-terminated) and *url (NUL-terminated) into c. Returns 0, or -1 when
 * the URL has no issuer (a bare URL without --jwt-issuer). */
int config_jwks_url(const config_t *c, int i, const char **issuer, size_t *issuer_len, const char **url);

/* The hub's resource identifier (Mercure 1.0): --resource-identifier, else
 * the listen URL main recorded, else NULL (not bound yet). Borrowed. */
const char *config_resource_identifier(const config_t *c);

/* Fills `c` with the defaults alone, the lists' defaults included, for the
 * documents confdoc.c generates. `workers` is left 0 (one per CPU,
 * resolved by config_parse). Dispose it with config_dispose. */
void config_defaults(config_t *c);

/* ---- what differs between two configs (reload) ------------------------------ */

typedef struct config_change {
    const char *name; /* borrows (static): the option's name, without "--" */
    int restart;      /* 1: a running server cannot apply it (listen, workers, store, redis, ...) */
} config_change_t;

/* Compares every option of `a` and `b`. Writes the first `cap` differing
 * options to out[] in table order and returns how many differ in all (0:
 * identical). The caller applies the change only if no written entry has
 * `restart` set, or logs which ones wait for a restart. Never looks at
 * what a key file contains: a reload should re-read the key files whatever
 * config_diff says. Values are not reported, so nothing secret is logged.
 * Any thread, with both configs read-only. */
size_t config_diff(const config_t *a, const config_t *b, config_change_t *out, size_t cap);

/* A reload: gives `dst` (freshly parsed) the values `src` (the running
 * config) has for every option a running server cannot change, so that
 * what started with them keeps seeing them. 0, or -1 out of memory. */
int config_keep_restart_only(config_t *dst, const config_t *src);

/* Copies one option's value (by name, without "--") from src into dst.
 * 0, or -1 for an unknown name or out of memory. */
int config_copy_option(config_t *dst, const config_t *src, const char *name);

/* ---- the option table, for generated documents -------------------------------- */

typedef struct config_option_info {
    const char *name; /* without "--" */
    const char *arg;  /* metavariable ("N", "PATH"), NULL for flags */
    const char *help; /* one sentence or two, no trailing period */
    int is_flag;      /* takes true/false */
    int is_list;      /* repeatable */
    int restart;      /* cannot change in a running server */
} config_option_info_t;

/* Number of options in the table; options are numbered 0..n-1. */
size_t config_num_options(void);

/* Describes option `i` (< config_num_options()); strings are static. */
void config_option_info(size_t i, config_option_info_t *out);

/* Writes the k-th value of option `i` in `c` as the file would spell it
 * ("true", "5000", "json", "127.0.0.1:8000") into out[0..cap). Returns 1;
 * 0 if there is no k-th value, or the value means "not set / computed at
 * start" (a NULL string, workers 0). Secrets are written too: only call it
 * on defaults. */
int config_option_value(const config_t *c, size_t i, size_t k, char *out, size_t cap);

/* Test hook: send the one-line errors to `f` instead of stderr (the fuzz
 * target silences them). Not thread-safe; call before parsing. */
void config__set_error_stream(FILE *f);

/* Test hook (unit test, fuzz target): defaults, then `text` applied as if
 * it were the content of a configuration file called `name`, then the
 * lists' defaults; no environment, no argv. Returns 0 or -1 (error printed). */
int config__parse_text(config_t *c, const char *name, const char *text, size_t len);

/* Splits "host:port", "[v6]:port" or ":port"; host is copied into host_out
 * (empty for ":port"). Returns 0 or -1. */
int config_split_hostport(const char *s, char *host_out, size_t host_cap, int *port_out);

#endif
