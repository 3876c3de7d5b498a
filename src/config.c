/*
 * config.c - see config.h.
 *
 * One table describes every option: its name, the field it sets, how to
 * parse it, its bounds, whether a running server can change it, and its
 * help text. The command line, the environment, the configuration file,
 * --help, the man page and the example file are all driven from it.
 *
 * Parsing is layered, lowest precedence first:
 *
 *   defaults -> file (--config / COURANT_CONFIG) -> COURANT_* -> argv -> finish
 *
 * Each layer writes over the fields the one before it wrote; a list option's
 * first value in a layer empties the list first (so the command line's
 * --listen replaces the file's, and the file's listen lines add up). argv is
 * walked twice: a first pass only checks its shape and finds --help,
 * --version and --config (so `courant --help` works whatever the file
 * says, and the file is known before the environment is applied), the
 * second applies it. `finish` fills the lists nobody set with their defaults
 * and checks what needs every layer (listen addresses).
 *
 * Bounds on what a file may make us spend: 1 MiB per file, 64 KiB per line.
 * A line may hold no control byte but tab (a stray CR from a mixed-up line
 * ending would otherwise become part of a value, a secret's for instance).
 */
#include "config.h"

#include "buildinfo.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_FILE_MAX (1 << 20) /* bytes; a config file past this is refused */
#define CONFIG_LINE_MAX (64 << 10)

typedef enum opt_kind {
    OPT_FLAG,
    OPT_INT,
    OPT_LONG,
    OPT_SIZE,
    OPT_LIST,
    OPT_LEVEL,
    OPT_STRING,
    OPT_SYNC,
    OPT_FORMAT, /* log_format_t */
} opt_kind_t;

/* Or'ed into an option's kind: a running server cannot apply a new value
 * (sockets are bound, threads started, files opened, rings sized at start).
 * Everything else (keys, origins, limits, timeouts, the log level) can be
 * reloaded. A bit in the kind column rather than a column of its own, so
 * that the rows of options that can change stay as they were. */
#define OPT_RESTART 0x100u
#define OPT_KIND(o) ((opt_kind_t)((o)->kind & 0xffu))

typedef struct opt {
    const char *name;    /* without the leading "--" */
    unsigned kind;       /* opt_kind_t, | OPT_RESTART */
    size_t offset;       /* of the field in config_t */
    size_t count_offset; /* OPT_LIST: of its int count in config_t */
    long long min, max;  /* bounds for numbers; OPT_LIST: max = most values */
    const char *arg;     /* metavariable for --help */
    const char *help;
} opt_t;

#define F(field) offsetof(config_t, field)

static FILE *config_err; /* where one-line errors go; NULL = stderr */

static FILE *err_out(void) { return config_err ? config_err : stderr; }

void config__set_error_stream(FILE *f) { config_err = f; }

static const opt_t options[] = {
    {"config", OPT_STRING | OPT_RESTART, F(config_file), 0, 0, 0, "FILE",
     "read options from this file (name = value lines, # comments); the environment and the command line "
     "override it"},
    {"listen", OPT_LIST | OPT_RESTART, F(listen), F(num_listen), 0, CONFIG_MAX_LISTEN, "ADDR:PORT",
     "address to listen on, repeatable; IPv6 as [::1]:8000 (default: 127.0.0.1:8000 and [::1]:8000)"},
    {"workers", OPT_INT | OPT_RESTART, F(workers), 0, 1, 256, "N",
     "event-loop threads (default: one per CPU)"},
    {"reuse-port", OPT_FLAG | OPT_RESTART, F(reuse_port), 0, 0, 1, NULL,
     "share the listening port with other courant processes (SO_REUSEPORT); off: a busy port is an error"},
    {"demo", OPT_FLAG | OPT_RESTART, F(demo), 0, 0, 1, NULL,
     "publish the server's time every second and serve the demo page at /"},
    {"demo-auth", OPT_FLAG | OPT_RESTART, F(demo_auth), 0, 0, 1, NULL,
     "DEMO ONLY, with --demo: make a random HS256 key for publishers and subscribers and serve tokens at "
     "/demo/tokens.json"},
    {"max-connections", OPT_LONG | OPT_RESTART, F(max_connections), 0, 1, 100000000, "N",
     "open connections at most; 503 past it (default: sized from the descriptor limit)"},
    {"header-timeout", OPT_INT, F(header_timeout_s), 0, 1, 3600, "SECONDS",
     "time allowed to send a request head (default 10)"},
    {"idle-timeout", OPT_INT, F(idle_timeout_s), 0, 1, 86400, "SECONDS",
     "idle keep-alive connections are closed after (default 60)"},
    {"max-header-bytes", OPT_SIZE, F(max_header_bytes), 0, 256, 1 << 20, "BYTES",
     "request line and headers at most; 431 past it (default 16384)"},
    {"max-event-bytes", OPT_SIZE, F(max_event_bytes), 0, 64, 64 << 20, "BYTES",
     "publish request body at most; 413 past it (default 1048576)"},
    {"history", OPT_LONG | OPT_RESTART, F(history), 0, 0, 10000000, "N",
     "events kept in memory for Last-Event-ID resume (default 1000)"},
    {"history-age", OPT_INT | OPT_RESTART, F(history_age_s), 0, 0, 100000000, "SECONDS",
     "and no older than this; 0 = no age limit (default 0)"},
    {"heartbeat", OPT_INT, F(heartbeat_s), 0, 0, 3600, "SECONDS",
     "comment line on idle streams; 0 = off (default 25)"},
    {"retry", OPT_LONG, F(retry_ms), 0, -1, 86400000, "MS",
     "retry: hint sent when a stream starts; -1 = none (default -1)"},
    {"max-pending-bytes", OPT_SIZE, F(max_pending_bytes), 0, 1024, 1 << 30, "BYTES",
     "output queued for one subscriber at most; a slower one is disconnected (default 4194304)"},
    {"fanout-batch-us", OPT_INT, F(fanout_batch_us), 0, 0, 1000000, "US",
     "under a burst, a worker gathers published events for up to this long (or 128 events) before "
     "writing them to its subscribers, so one write carries many; the first event after a quiet spell "
     "goes out at once; 0 = write every loop turn (default 5000)"},
    {"publish-wait-lag", OPT_INT, F(publish_wait_lag_ms), 0, 0, 3600000, "MS",
     "pace publishers: while the fan-out lags more than this behind (the oldest event a worker has "
     "not written yet is older), publish answers wait, so publishers slow down to what subscribers "
     "take; lower keeps latency under a burst low, higher lets more events share each write; "
     "0 = answer at once (default 5)"},
    {"publish-refuse-lag", OPT_INT, F(publish_refuse_lag_ms), 0, 0, 3600000, "MS",
     "past this fan-out lag, publishes are refused (503, Retry-After: 1) without being published, "
     "for publishers that do not wait for answers; 0 = never (default 2000)"},
    {"max-lifetime", OPT_INT, F(max_lifetime_s), 0, 0, 100000000, "SECONDS",
     "end streams after about this long, jittered; 0 = never (default 0)"},
    {"max-body-bytes-total", OPT_SIZE, F(max_body_bytes_total), 0, 1024, 1LL << 40, "BYTES",
     "request body bytes buffered by all connections together at most; 503 past it (default 67108864)"},
    {"max-head-bytes-total", OPT_SIZE, F(max_head_bytes_total), 0, 1024, 1LL << 40, "BYTES",
     "bytes of unfinished request heads buffered by all connections together at most; 503 past it "
     "(default 67108864)"},
    {"max-stream-input-bytes", OPT_SIZE, F(max_stream_input_bytes), 0, 0, 1 << 30, "BYTES",
     "bytes a subscriber may send after its request before it is closed (default 4096)"},
    {"max-topics-per-subscribe", OPT_INT, F(max_topics_per_subscribe), 0, 1, 64, "N",
     "topic selectors in one subscribe request at most; 400 past it (default 64)"},
    {"max-templates-per-subscriber", OPT_INT, F(max_templates_per_subscriber), 0, 0, 64, "N",
     "distinct URI templates in one subscribe request at most; 400 past it (default 16)"},
    {"max-templates-per-worker", OPT_INT, F(max_templates_per_worker), 0, 0, 10000000, "N",
     "distinct URI templates held by one worker at most; 503 past it (default 10000)"},
    {"max-template-states", OPT_INT, F(max_template_states), 0, 8, 4096, "N",
     "NFA states of one client-given URI template at most (its matching cost); 400 past it (default 512)"},
    {"max-urlpatterns-per-subscriber", OPT_INT, F(max_urlpatterns_per_subscriber), 0, 0, 64, "N",
     "distinct URL patterns (match_urlpattern) in one subscribe request at most; 400 past it (default 16)"},
    {"max-urlpatterns-per-worker", OPT_INT, F(max_urlpatterns_per_worker), 0, 0, 10000000, "N",
     "distinct URL patterns held by one worker at most; 503 past it (default 10000)"},
    {"max-urlpattern-states", OPT_INT, F(max_urlpattern_states), 0, 8, 4096, "N",
     "NFA states of one client-given URL pattern at most (its matching cost); 400 past it (default 512)"},
    {"match-turn-budget", OPT_LONG, F(match_turn_budget), 0, 1, 1000000000, "STEPS",
     "matching steps (URI templates and URL patterns, uncached) one worker spends per turn; past it the "
     "subscribers still to match read the event from history in a later turn, in order (default 1048576, "
     "about 4 ms)"},
    {"max-replay", OPT_LONG, F(max_replay), 0, 0, 100000000, "N",
     "events one subscribe replays from history at most; the client then resumes by reconnecting; "
     "0 = no cap (default 10000)"},
    {"max-connections-per-ip", OPT_LONG, F(max_connections_per_ip), 0, 0, 100000000, "N",
     "open connections per client address (IPv6: per /64) at most; 429 past it; loopback and "
     "--trusted-proxy peers are exempt; 0 = no cap (default 1024)"},
    {"publish-rate", OPT_LONG, F(publish_rate), 0, 0, 1000000, "N",
     "publishes per second per token (or per client address without one), bursts of 2N; 429 past it; "
     "0 = no cap (default 0)"},
    {"subscribe-rate", OPT_LONG, F(subscribe_rate), 0, 0, 1000000, "N",
     "subscribes per second per client address, bursts of 2N; 429 past it; 0 = no cap (default 10)"},
    {"anonymous-subscription-rate", OPT_LONG | OPT_RESTART, F(anonymous_subscription_rate), 0, 0, 1000000,
     "N",
     "with --subscriptions: subscription events of anonymous subscribers per second, all together "
     "(bursts of 5N); past it they are not published, so anonymous connects cannot flush history; "
     "0 = no cap (default 20)"},
    {"limit-loopback", OPT_FLAG, F(limit_loopback), 0, 0, 1, NULL,
     "apply the per-client limits to loopback clients too (by default the host's own backends are exempt)"},
    {"trusted-proxy", OPT_LIST, F(trusted_proxies), F(num_trusted_proxies), 0, CONFIG_MAX_ORIGINS, "CIDR",
     "a reverse proxy whose client-address header is believed (repeatable): behind it, limits and the "
     "keyless-publish rule see the client, not the proxy"},
    {"trusted-proxy-header", OPT_STRING, F(trusted_proxy_header), 0, 0, 0, "NAME",
     "the header those proxies write: forwarded (RFC 7239, default) or x-forwarded-for"},
    {"h2c", OPT_FLAG, F(h2c), 0, 0, 1, NULL,
     "HTTP/2 with prior knowledge (h2c) on the cleartext listeners: a connection that opens with the "
     "HTTP/2 preface speaks HTTP/2; --h2c=0 turns it off (default on)"},
    {"h2-max-streams", OPT_INT, F(h2_max_streams), 0, 1, 1000, "N",
     "HTTP/2: concurrent streams per connection (subscriptions and requests); more are refused "
     "(default 100)"},
    {"cors-origin", OPT_LIST, F(cors_origins), F(num_cors_origins), 0, CONFIG_MAX_ORIGINS, "ORIGIN",
     "origin allowed to subscribe from a browser, repeatable, or * (default *); listed origins get "
     "credentials (cookies)"},
    {"publish-origin", OPT_LIST, F(publish_origins), F(num_publish_origins), 0, CONFIG_MAX_ORIGINS, "ORIGIN",
     "origin allowed to publish from a browser (CORS with credentials, and the cookie's CSRF check), "
     "repeatable, or *"},
    {"jwt-alg", OPT_STRING, F(jwt_alg), 0, 0, 0, "ALGS",
     "algorithms the configured keys verify, a comma list of HS256, HS384, HS512, RS256, RS384, RS512, "
     "PS256, PS384, PS512, ES256, ES384, EdDSA (default: HS256 for a secret, every algorithm of its type "
     "for a PEM or JWK public key)"},
    {"jwt-issuer", OPT_STRING, F(jwt_issuer), 0, 0, 0, "ISS",
     "Mercure 1.0: the issuer (iss) the configured keys are bound to; without it only --jwks-url keys "
     "verify 1.0 access tokens"},
    {"resource-identifier", OPT_STRING | OPT_RESTART, F(resource_identifier), 0, 0, 0, "URL",
     "Mercure 1.0: the hub's resource identifier, required in access tokens' aud and the base URL of "
     "relative URL patterns and topics (default: the first listen address, "
     "http://HOST:PORT/.well-known/mercure; set it behind a proxy)"},
    {"jwks-url", OPT_LIST | OPT_RESTART, F(jwks_urls), F(num_jwks_urls), 0, CONFIG_MAX_JWKS, "URL",
     "Mercure 1.0: fetch the JWK Set of a trusted issuer over HTTPS (repeatable, one per issuer), given as "
     "ISSUER=URL, or a bare URL for --jwt-issuer; its keys verify access tokens whose iss is that issuer; "
     "refreshed as Cache-Control says and when a token names an unknown kid"},
    {"jwks-ca-file", OPT_STRING | OPT_RESTART, F(jwks_ca_file), 0, 0, 0, "PATH",
     "CA certificates (PEM) to verify the --jwks-url servers with (default: the system's)"},
    {"access-token-algs", OPT_STRING, F(access_token_algs), 0, 0, 0, "ALGS",
     "Mercure 1.0: the algorithms accepted in access tokens, a comma list (default: every supported one, "
     "each key still verifying only its own)"},
    {"publisher-jwt-key", OPT_STRING, F(publisher_jwt_key), 0, 0, 0, "KEY",
     "HMAC secret or PEM public key for publishers' tokens; without one, only loopback peers may publish"},
    {"publisher-jwt-key-file", OPT_STRING, F(publisher_jwt_key_file), 0, 0, 0, "PATH",
     "read the publisher key from a file"},
    {"subscriber-jwt-key", OPT_STRING, F(subscriber_jwt_key), 0, 0, 0, "KEY",
     "HMAC secret or PEM public key for subscribers' tokens; without one, anyone may subscribe (no private "
     "updates)"},
    {"subscriber-jwt-key-file", OPT_STRING, F(subscriber_jwt_key_file), 0, 0, 0, "PATH",
     "read the subscriber key from a file"},
    {"admin", OPT_FLAG, F(admin), 0, 0, 1, NULL,
     "serve the live admin dashboard at /admin/ (on anyway with --demo); its data needs an admin token: "
     "a JWT whose mercure.admin claim is true, signed with --admin-jwt-key or the subscriber key"},
    {"admin-jwt-key", OPT_STRING, F(admin_jwt_key), 0, 0, 0, "KEY",
     "HMAC secret or PEM public key for admin tokens (the dashboard), with --jwt-alg"},
    {"admin-jwt-key-file", OPT_STRING, F(admin_jwt_key_file), 0, 0, 0, "PATH",
     "read the admin key from a file"},
    {"anonymous", OPT_FLAG, F(anonymous), 0, 0, 1, NULL,
     "with a subscriber key: also let in subscribers without a token (public updates only)"},
    {"subscriptions", OPT_FLAG | OPT_RESTART, F(subscriptions), 0, 0, 1, NULL,
     "publish subscription events and serve /.well-known/mercure/subscriptions (needs a subscriber key)"},
    {"log-level", OPT_LEVEL, F(log_level), 0, 0, 0, "LEVEL", "debug, info, warn or error (default info)"},
    {"log-format", OPT_FORMAT, F(log_format), 0, 0, 0, "FORMAT",
     "text (default), or json: one JSON object per line with ts, level, thread and msg"},
    {"access-log", OPT_STRING, F(access_log), 0, 0, 0, "TARGET",
     "one line per request or per stream end (client, method, target without tokens, status, bytes, "
     "duration, topics), in the --log-format: stderr, or a file appended to and re-opened on SIGHUP "
     "(default: off)"},
    {"store", OPT_STRING | OPT_RESTART, F(store_path), 0, 0, 0, "PATH",
     "keep history in this SQLite file: a publish is answered 200 only once committed, and history "
     "survives restarts and crashes (default: none, history in memory only)"},
    {"sync", OPT_SYNC | OPT_RESTART, F(sync), 0, 0, 0, "MODE",
     "with --store: full = fsync every group commit (default); normal = fsync at checkpoints only "
     "(a power loss may take back recent events); off = never fsync (a power loss may also damage the file)"},
    {"redis", OPT_STRING | OPT_RESTART, F(redis_url), 0, 0, 0, "URL",
     "share events and history with other courant nodes through a Redis Stream, "
     "redis://[:PASS@]HOST:PORT[/DB]: "
     "publish on any node, receive on all, resume anywhere (not with --store: Redis is then the history)"},
    {"redis-stream", OPT_STRING | OPT_RESTART, F(redis_stream), 0, 0, 0, "KEY",
     "with --redis: the stream's key (default courant)"},
    {"tls-cert", OPT_STRING, F(tls_cert), 0, 0, 0, "FILE",
     "serve HTTPS on every --listen address with this PEM certificate chain (leaf first; with --tls-key); "
     "SIGHUP reloads it"},
    {"tls-key", OPT_STRING, F(tls_key), 0, 0, 0, "FILE", "the PEM private key of --tls-cert"},
    {"listen-http", OPT_LIST | OPT_RESTART, F(listen_http), F(num_listen_http), 0, CONFIG_MAX_LISTEN,
     "ADDR:PORT",
     "with HTTPS (--tls-cert or --acme-domain): also listen in cleartext here, repeatable, answering only "
     "ACME "
     "HTTP-01 challenges and redirecting every other request to https (e.g. 0.0.0.0:80)"},
    {"acme-domain", OPT_LIST | OPT_RESTART, F(acme_domains), F(num_acme_domains), 0, CONFIG_MAX_ACME_DOMAINS,
     "NAME",
     "obtain and renew a certificate for this name from an ACME CA (automatic HTTPS), repeatable: one "
     "certificate names them all; every --listen address serves HTTPS (not with --tls-cert)"},
    {"acme-directory", OPT_STRING | OPT_RESTART, F(acme_directory), 0, 0, 0, "URL",
     "the ACME CA's directory (default Let's Encrypt's production one, "
     "https://acme-v02.api.letsencrypt.org/directory; staging: "
     "https://acme-staging-v02.api.letsencrypt.org/directory)"},
    {"acme-agree-tos", OPT_FLAG | OPT_RESTART, F(acme_agree_tos), 0, 0, 1, NULL,
     "agree to the ACME CA's terms of service, which creating an account requires (needed with "
     "--acme-domain)"},
    {"acme-email", OPT_STRING | OPT_RESTART, F(acme_email), 0, 0, 0, "ADDRESS",
     "contact address given to the ACME CA for the account (expiry and policy notices; optional)"},
    {"acme-state-dir", OPT_STRING | OPT_RESTART, F(acme_state_dir), 0, 0, 0, "DIR",
     "where the ACME account key and the certificate are kept (0700, keys 0600), so a restart does not "
     "order again (default: acme/ beside the --store file, else /var/lib/courant/acme)"},
    {"acme-ca-file", OPT_STRING | OPT_RESTART, F(acme_ca_file), 0, 0, 0, "FILE",
     "PEM root certificates to verify the ACME CA's HTTPS with, instead of the system's (a test or "
     "private CA)"},
    {"acme-challenge", OPT_STRING | OPT_RESTART, F(acme_challenge), 0, 0, 0, "TYPE",
     "which ACME challenge to answer: tls-alpn-01 (on the HTTPS port, 443 for a public CA), http-01 (on "
     "--listen-http, port 80), or auto: tls-alpn-01, else http-01 when --listen-http is set (default auto)"},
    {"acme-renew-before", OPT_LONG | OPT_RESTART, F(acme_renew_before), 0, 0, 100000000, "SECONDS",
     "renew the certificate when less than this is left; 0 = after two thirds of its lifetime, jittered "
     "(default 0)"},
};

#define NUM_OPTIONS (sizeof(options) / sizeof(options[0]))

/* Where the values being applied come from: one layer of the parse. Errors
 * name the option as the user wrote it there. */
typedef struct layer {
    const char *file;                     /* borrows: the config file; NULL for argv and env */
    int line;                             /* file: 1-based line being applied */
    const char *var;                      /* env: the variable being applied */
    unsigned char list_seen[NUM_OPTIONS]; /* a list option already has a value from this layer */
} layer_t;

/* Prints "courant: <where><option as written> <message>" on one line. */
static void opt_error(const layer_t *l, const opt_t *o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void opt_error(const layer_t *l, const opt_t *o, const char *fmt, ...)
{
    FILE *f = err_out();
    if (l->file)
        fprintf(f, "courant: %s:%d: %s ", l->file, l->line, o->name);
    else if (l->var)
        fprintf(f, "courant: %s ", l->var);
    else
        fprintf(f, "courant: --%s ", o->name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
}

static void init_defaults(config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->workers = 0; /* one per CPU, resolved in finish() */
    c->header_timeout_s = 10;
    c->idle_timeout_s = 60;
    c->max_header_bytes = 16384;
    c->max_event_bytes = 1 << 20;
    c->history = 1000;
    c->heartbeat_s = 25;
    c->retry_ms = -1;
    c->max_pending_bytes = 4 << 20;
    c->fanout_batch_us = 5000;
    c->publish_wait_lag_ms = 5;
    c->publish_refuse_lag_ms = 2000;
    c->max_body_bytes_total = 64 << 20;
    c->max_head_bytes_total = 64 << 20;
    c->max_stream_input_bytes = 4096;
    c->max_topics_per_subscribe = 64;
    c->max_templates_per_subscriber = 16;
    c->max_templates_per_worker = 10000;
    c->max_template_states = 512;
    c->max_urlpatterns_per_subscriber = 16;
    c->max_urlpatterns_per_worker = 10000;
    c->max_urlpattern_states = 512;
    c->match_turn_budget = 1L << 20;
    c->max_replay = 10000;
    c->max_connections_per_ip = 1024;
    c->subscribe_rate = 10;
    c->anonymous_subscription_rate = 20;
    c->h2c = 1;
    c->h2_max_streams = 100;
    c->log_level = LOG_INFO;
    c->log_format = LOG_FORMAT_TEXT;
    c->redis_stream = strdup("courant");
    c->acme_directory = strdup("https://acme-v02.api.letsencrypt.org/directory");
    c->acme_challenge = strdup("auto");
}

/* The lists' defaults, for those no layer set. */
static void default_lists(config_t *c)
{
    c->listen_is_default = c->num_listen == 0;
    if (c->num_listen == 0) {
        c->listen[c->num_listen++] = strdup("127.0.0.1:8000");
        c->listen[c->num_listen++] = strdup("[::1]:8000");
    }
    if (c->num_cors_origins == 0)
        c->cors_origins[c->num_cors_origins++] = strdup("*");
}

void config_defaults(config_t *c)
{
    init_defaults(c);
    default_lists(c);
}

static void print_help(void)
{
    printf("courant %s - a Server-Sent Events hub (Mercure protocol)\n\n"
           "usage: courant [options]\n"
           "       courant token|pub|sub [options]   (development client; courant token --help)\n\n",
           courant_version());
    for (size_t i = 0; i < NUM_OPTIONS; i++) {
        const opt_t *o = &options[i];
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        printf("  %-28s %s\n", left, o->help);
    }
    printf("  %-28s %s\n  %-28s %s\n", "--help", "show this help", "--version", "show the version");
    printf("  %-28s %s\n  %-28s %s\n", "--help-man", "print the man page (roff)", "--help-config",
           "print an example configuration file");
    printf("\nEvery option can also be set as COURANT_<NAME> (e.g. COURANT_LISTEN=0.0.0.0:8000,\n"
           "COURANT_DEMO=1; repeatable options take a comma list) or in the --config file\n"
           "(listen = 0.0.0.0:8000). Precedence: command line > environment > file > defaults.\n");
}

static const opt_t *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < NUM_OPTIONS; i++)
        if (strlen(options[i].name) == len && memcmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

static int parse_number(const layer_t *l, const opt_t *o, const char *v, long long *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < o->min || n > o->max) {
        opt_error(l, o, "wants a whole number from %lld to %lld, not \"%s\"", o->min, o->max, v);
        return -1;
    }
    *out = n;
    return 0;
}

static void list_clear(config_t *c, const opt_t *o)
{
    char **list = (char **)((char *)c + o->offset);
    int *count = (int *)((char *)c + o->count_offset);
    for (int i = 0; i < *count; i++) {
        free(list[i]);
        list[i] = NULL;
    }
    *count = 0;
}

/* Appends one value to a list option; its first value in a layer first
 * empties what lower layers set. */
static int list_add(layer_t *l, const opt_t *o, config_t *c, const char *v, size_t len)
{
    char **list = (char **)((char *)c + o->offset);
    int *count = (int *)((char *)c + o->count_offset);
    if (!l->list_seen[o - options]) {
        l->list_seen[o - options] = 1;
        list_clear(c, o);
    }
    if (*count >= o->max) {
        opt_error(l, o, "may be given at most %lld times", o->max);
        return -1;
    }
    if (len == 0) {
        opt_error(l, o, "wants a value");
        return -1;
    }
    if (!(list[*count] = strndup(v, len)))
        return -1;
    (*count)++;
    return 0;
}

/* Sets an option from its text value (NULL: a flag given without one).
 * Lists from the environment are split on commas. */
static int set_option(layer_t *l, config_t *c, const opt_t *o, const char *v)
{
    void *field = (char *)c + o->offset;
    long long n;
    switch (OPT_KIND(o)) {
    case OPT_FLAG:
        if (!v || !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))
            *(int *)field = 1;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") || !*v)
            *(int *)field = 0;
        else {
            opt_error(l, o, "is a flag; \"%s\" is not true/false (or 1/0, yes/no, on/off)", v);
            return -1;
        }
        return 0;
    case OPT_INT:
        if (parse_number(l, o, v, &n))
            return -1;
        *(int *)field = (int)n;
        return 0;
    case OPT_LONG:
        if (parse_number(l, o, v, &n))
            return -1;
        *(long *)field = (long)n;
        return 0;
    case OPT_SIZE:
        if (parse_number(l, o, v, &n))
            return -1;
        *(size_t *)field = (size_t)n;
        return 0;
    case OPT_LEVEL: {
        log_level_t lv;
        if (log_parse_level(v, &lv)) {
            opt_error(l, o, "wants debug, info, warn or error, not \"%s\"", v);
            return -1;
        }
        *(int *)field = (int)lv;
        return 0;
    }
    case OPT_FORMAT: {
        log_format_t fmt;
        if (log_parse_format(v, &fmt)) {
            opt_error(l, o, "wants text or json, not \"%s\"", v);
            return -1;
        }
        *(int *)field = (int)fmt;
        return 0;
    }
    case OPT_STRING: {
        char **sp = field;
        if (!*v) {
            opt_error(l, o, "wants a value");
            return -1;
        }
        free(*sp);
        *sp = strdup(v);
        return *sp ? 0 : -1;
    }
    case OPT_SYNC: {
        /* The values of store_sync_t, in its order (config sits below the
         * store in the layers, so it names them itself). */
        static const char *const modes[] = {"full", "normal", "off"};
        for (int i = 0; i < 3; i++) {
            if (!strcmp(v, modes[i])) {
                *(int *)field = i;
                return 0;
            }
        }
        opt_error(l, o, "wants full, normal or off, not \"%s\"", v);
        return -1;
    }
    case OPT_LIST:
        if (!l->var)
            return list_add(l, o, c, v, strlen(v));
        for (const char *p = v;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (list_add(l, o, c, p, len))
                return -1;
            if (!comma)
                return 0;
            p = comma + 1;
        }
    }
    return -1;
}

/* ---- the file ------------------------------------------------------------------ */

static int is_blank(char ch) { return ch == ' ' || ch == '\t'; }

/* Reads the whole file into a NUL-terminated heap buffer (caller frees).
 * Returns NULL after printing why. */
static char *read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(err_out(), "courant: cannot read the configuration file %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(CONFIG_FILE_MAX + 1);
    size_t len = buf ? fread(buf, 1, CONFIG_FILE_MAX + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!buf || err || len > CONFIG_FILE_MAX) {
        fprintf(err_out(), "courant: cannot read the configuration file %s: %s\n", path,
                !buf  ? "out of memory"
                : err ? "read error"
                      : "larger than 1 MiB");
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    *len_out = len;
    return buf;
}

/* Applies one line (NUL-terminated, without its line end). */
static int apply_line(layer_t *l, config_t *c, char *s)
{
    while (is_blank(*s))
        s++;
    if (*s == 0 || *s == '#')
        return 0;
    char *eq = strchr(s, '=');
    if (!eq) {
        /* The line is not echoed: it may be a secret pasted on its own. */
        fprintf(err_out(), "courant: %s:%d: expected name = value\n", l->file, l->line);
        return -1;
    }
    char *name_end = eq;
    while (name_end > s && is_blank(name_end[-1]))
        name_end--;
    char *v = eq + 1;
    while (is_blank(*v))
        v++;
    char *v_end = v + strlen(v);
    while (v_end > v && is_blank(v_end[-1]))
        v_end--;
    *v_end = 0;
    size_t name_len = (size_t)(name_end - s);
    const opt_t *o = find_option(s, name_len);
    if (!o || !strcmp(o->name, "config")) {
        char shown[64];
        size_t k = 0;
        for (size_t i = 0; i < name_len && k < sizeof(shown) - 1; i++) /* printable, bounded */
            shown[k++] = (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f ? '?' : s[i];
        shown[k] = 0;
        fprintf(err_out(), "courant: %s:%d: %s %s\n", l->file, l->line,
                o ? "config cannot be set inside a configuration file:" : "unknown option", shown);
        return -1;
    }
    return set_option(l, c, o, v);
}

static int finish(config_t *c);

/* Applies a whole file's text; buf[len] must be writable (lines are cut in
 * place). `path` names it in errors. */
static int apply_text(config_t *c, const char *path, char *buf, size_t len)
{
    layer_t l = {.file = path};
    int r = 0;
    char *p = buf;
    if (len >= 3 && !memcmp(p, "\xef\xbb\xbf", 3)) /* a UTF-8 BOM some editors write */
        p += 3;
    while (r == 0 && p < buf + len) {
        l.line++;
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        char *end = nl ? nl : buf + len;
        if (memchr(p, 0, (size_t)(end - p))) {
            fprintf(err_out(), "courant: %s:%d: contains a NUL byte\n", path, l.line);
            return -1;
        }
        if (end - p > CONFIG_LINE_MAX) {
            fprintf(err_out(), "courant: %s:%d: line longer than 64 KiB\n", path, l.line);
            return -1;
        }
        *end = 0;
        char *line_end = end;
        if (line_end > p && line_end[-1] == '\r') /* CRLF files */
            *--line_end = 0;
        for (const char *q = p; q < line_end; q++) {
            if ((unsigned char)*q < 0x20 && *q != '\t') { /* a stray CR would end up inside a value */
                fprintf(err_out(), "courant: %s:%d: control character in the line\n", path, l.line);
                return -1;
            }
        }
        r = apply_line(&l, c, p);
        p = end + 1;
    }
    return r;
}

static int apply_file(config_t *c, const char *path)
{
    size_t len;
    char *buf = read_file(path, &len);
    if (!buf)
        return -1;
    int r = apply_text(c, path, buf, len);
    free(buf);
    return r;
}

int config__parse_text(config_t *c, const char *name, const char *text, size_t len)
{
    init_defaults(c);
    if (len > CONFIG_FILE_MAX) {
        fprintf(err_out(), "courant: cannot read the configuration file %s: larger than 1 MiB\n", name);
        return -1;
    }
    char *buf = malloc(len + 1);
    if (!buf)
        return -1;
    memcpy(buf, text, len);
    buf[len] = 0;
    int r = apply_text(c, name, buf, len);
    free(buf);
    return r ? r : finish(c);
}

/* ---- the environment and argv ----------------------------------------------------- */

static void env_name(const opt_t *o, char *var, size_t cap)
{
    size_t k = (size_t)snprintf(var, cap, "COURANT_");
    for (const char *p = o->name; *p && k < cap - 1; p++)
        var[k++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    var[k] = 0;
}

static int apply_env(config_t *c)
{
    layer_t l = {0};
    for (size_t i = 0; i < NUM_OPTIONS; i++) {
        if (!strcmp(options[i].name, "config"))
            continue; /* read before the file, by config_parse */
        char var[64];
        env_name(&options[i], var, sizeof(var));
        const char *v = getenv(var);
        l.var = var;
        if (v && set_option(&l, c, &options[i], v))
            return -1;
    }
    return 0;
}

/* Walks argv. With apply = 0 it only checks the shape (known options, values
 * present), prints --help/--version (returns 1) and finds --config (the last
 * one wins) into *config_path; with apply = 1 it sets the options. */
static int walk_argv(config_t *c, int argc, char **argv, int apply, const char **config_path)
{
    layer_t l = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!apply && (!strcmp(a, "--help") || !strcmp(a, "-h"))) {
            print_help();
            return 1;
        }
        if (!apply && !strcmp(a, "--version")) {
            printf("courant %s\n", courant_version());
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(err_out(), "courant: unexpected argument \"%s\" (try --help)\n", a);
            return -1;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        const opt_t *o = find_option(name, eq ? (size_t)(eq - name) : strlen(name));
        if (!o) {
            fprintf(err_out(), "courant: unknown option \"%s\" (try --help)\n", a);
            return -1;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v && OPT_KIND(o) != OPT_FLAG) {
            if (i + 1 >= argc) {
                fprintf(err_out(), "courant: --%s wants a value (%s)\n", o->name, o->arg);
                return -1;
            }
            v = argv[++i];
        }
        if (!apply && !strcmp(o->name, "config"))
            *config_path = v;
        if (apply && set_option(&l, c, o, v))
            return -1;
    }
    return 0;
}

/* What needs every layer: lists' defaults, workers, listen addresses. */
static int finish(config_t *c)
{
    default_lists(c);
    if (c->workers == 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = ncpu < 1 ? 1 : ncpu > 256 ? 256 : (int)ncpu;
    }
    for (int i = 0; i < c->num_listen; i++) {
        char host[256];
        int port;
        if (config_split_hostport(c->listen[i], host, sizeof(host), &port)) {
            fprintf(err_out(),
                    "courant: --listen wants ADDR:PORT (e.g. 127.0.0.1:8000, [::1]:8000), not \"%s\"\n",
                    c->listen[i]);
            return -1;
        }
    }
    for (int i = 0; i < c->num_listen_http; i++) {
        char host[256];
        int port;
        if (config_split_hostport(c->listen_http[i], host, sizeof(host), &port)) {
            fprintf(err_out(), "courant: --listen-http wants ADDR:PORT (e.g. 0.0.0.0:80), not \"%s\"\n",
                    c->listen_http[i]);
            return -1;
        }
    }
    return 0;
}

int config_parse(config_t *c, int argc, char **argv)
{
    init_defaults(c);
    const char *path = NULL;
    int r = walk_argv(c, argc, argv, 0, &path);
    if (r)
        return r;
    if (!path) {
        path = getenv("COURANT_CONFIG");
        if (path && !*path)
            path = NULL;
    }
    if (path && !(c->config_file = strdup(path)))
        return -1;
    if (path && apply_file(c, c->config_file))
        return -1;
    if (apply_env(c) || walk_argv(c, argc, argv, 1, NULL))
        return -1;
    return finish(c);
}

int config_jwks_url(const config_t *c, int i, const char **issuer, size_t *issuer_len, const char **url)
{
    const char *v = c->jwks_urls[i];
    const char *sep = strstr(v, "=https://");
    if (sep) {
        *issuer = v;
        *issuer_len = (size_t)(sep - v);
        *url = sep + 1;
        return *issuer_len ? 0 : -1;
    }
    *url = v;
    *issuer = c->jwt_issuer;
    *issuer_len = c->jwt_issuer ? strlen(c->jwt_issuer) : 0;
    return c->jwt_issuer ? 0 : -1;
}

const char *config_resource_identifier(const config_t *c)
{
    return c->resource_identifier ? c->resource_identifier : c->listen_url;
}

void config_dispose(config_t *c)
{
    free(c->listen_url);
    c->listen_url = NULL;
    for (size_t i = 0; i < NUM_OPTIONS; i++) {
        const opt_t *o = &options[i];
        if (OPT_KIND(o) == OPT_LIST)
            list_clear(c, o);
        else if (OPT_KIND(o) == OPT_STRING) {
            char **sp = (char **)((char *)c + o->offset);
            free(*sp);
            *sp = NULL;
        }
    }
}

/* ---- comparing two configs ----------------------------------------------------------- */

static int str_eq(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

static int option_equal(const opt_t *o, const config_t *a, const config_t *b)
{
    const char *fa = (const char *)a + o->offset, *fb = (const char *)b + o->offset;
    switch (OPT_KIND(o)) {
    case OPT_FLAG:
    case OPT_INT:
    case OPT_LEVEL:
    case OPT_SYNC:
    case OPT_FORMAT:
        return *(const int *)fa == *(const int *)fb;
    case OPT_LONG:
        return *(const long *)fa == *(const long *)fb;
    case OPT_SIZE:
        return *(const size_t *)fa == *(const size_t *)fb;
    case OPT_STRING:
        return str_eq(*(char *const *)fa, *(char *const *)fb);
    case OPT_LIST: {
        int na = *(const int *)((const char *)a + o->count_offset);
        int nb = *(const int *)((const char *)b + o->count_offset);
        if (na != nb)
            return 0;
        for (int i = 0; i < na; i++)
            if (!str_eq(((char *const *)fa)[i], ((char *const *)fb)[i]))
                return 0;
        return 1;
    }
    }
    return 0;
}

size_t config_diff(const config_t *a, const config_t *b, config_change_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < NUM_OPTIONS; i++) {
        if (option_equal(&options[i], a, b))
            continue;
        if (n < cap)
            out[n] =
                (config_change_t){.name = options[i].name, .restart = (options[i].kind & OPT_RESTART) != 0};
        n++;
    }
    return n;
}

/* Copies option `o`'s value from src into dst (dst's own value freed). */
static int copy_option(const opt_t *o, config_t *dst, const config_t *src)
{
    char *fd = (char *)dst + o->offset;
    const char *fs = (const char *)src + o->offset;
    switch (OPT_KIND(o)) {
    case OPT_FLAG:
    case OPT_INT:
    case OPT_LEVEL:
    case OPT_SYNC:
    case OPT_FORMAT:
        *(int *)fd = *(const int *)fs;
        return 0;
    case OPT_LONG:
        *(long *)fd = *(const long *)fs;
        return 0;
    case OPT_SIZE:
        *(size_t *)fd = *(const size_t *)fs;
        return 0;
    case OPT_STRING: {
        const char *v = *(char *const *)fs;
        char *copy = v ? strdup(v) : NULL;
        if (v && !copy)
            return -1;
        free(*(char **)fd);
        *(char **)fd = copy;
        return 0;
    }
    case OPT_LIST: {
        list_clear(dst, o);
        int n = *(const int *)((const char *)src + o->count_offset);
        for (int i = 0; i < n; i++) {
            if (!(((char **)fd)[i] = strdup(((char *const *)fs)[i])))
                return -1;
            (*(int *)((char *)dst + o->count_offset))++;
        }
        return 0;
    }
    }
    return 0;
}

int config_keep_restart_only(config_t *dst, const config_t *src)
{
    for (size_t i = 0; i < NUM_OPTIONS; i++)
        if ((options[i].kind & OPT_RESTART) && copy_option(&options[i], dst, src))
            return -1;
    dst->listen_is_default = src->listen_is_default;
    free(dst->listen_url);
    dst->listen_url = src->listen_url ? strdup(src->listen_url) : NULL;
    return src->listen_url && !dst->listen_url ? -1 : 0;
}

int config_copy_option(config_t *dst, const config_t *src, const char *name)
{
    for (size_t i = 0; i < NUM_OPTIONS; i++)
        if (!strcmp(options[i].name, name))
            return copy_option(&options[i], dst, src);
    return -1;
}

/* ---- the table, for generated documents ---------------------------------------------- */

size_t config_num_options(void) { return NUM_OPTIONS; }

void config_option_info(size_t i, config_option_info_t *out)
{
    const opt_t *o = &options[i];
    *out = (config_option_info_t){.name = o->name,
                                  .arg = o->arg,
                                  .help = o->help,
                                  .is_flag = OPT_KIND(o) == OPT_FLAG,
                                  .is_list = OPT_KIND(o) == OPT_LIST,
                                  .restart = (o->kind & OPT_RESTART) != 0};
}

int config_option_value(const config_t *c, size_t i, size_t k, char *out, size_t cap)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    static const char *const formats[] = {"text", "json"};
    static const char *const syncs[] = {"full", "normal", "off"};
    const opt_t *o = &options[i];
    const char *f = (const char *)c + o->offset;
    long long n;
    const char *s = NULL;
    if (k > 0 && OPT_KIND(o) != OPT_LIST)
        return 0;
    switch (OPT_KIND(o)) {
    case OPT_FLAG:
        s = *(const int *)f ? "true" : "false";
        break;
    case OPT_INT:
        n = *(const int *)f;
        goto number;
    case OPT_LONG:
        n = *(const long *)f;
        goto number;
    case OPT_SIZE:
        n = (long long)*(const size_t *)f;
    number:
        if (n < o->min || n > o->max) /* 0 = computed at start (workers, max-connections) */
            return 0;
        snprintf(out, cap, "%lld", n);
        return 1;
    case OPT_LEVEL:
        s = levels[*(const int *)f & 3];
        break;
    case OPT_FORMAT:
        s = formats[*(const int *)f & 1];
        break;
    case OPT_SYNC:
        s = syncs[*(const int *)f % 3];
        break;
    case OPT_STRING:
        s = *(char *const *)f;
        break;
    case OPT_LIST:
        if ((int)k >= *(const int *)((const char *)c + o->count_offset))
            return 0;
        s = ((char *const *)f)[k];
        break;
    }
    if (!s)
        return 0;
    snprintf(out, cap, "%s", s);
    return 1;
}

int config_split_hostport(const char *s, char *host_out, size_t host_cap, int *port_out)
{
    const char *colon;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        hlen = (size_t)(close - s - 1);
        s++;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return -1; /* a bare IPv6 address needs brackets */
        hlen = (size_t)(colon - s);
    }
    if (hlen >= host_cap)
        return -1;
    memcpy(host_out, s, hlen);
    host_out[hlen] = 0;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
        return -1;
    *port_out = (int)port;
    return 0;
}
