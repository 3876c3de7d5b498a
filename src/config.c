/*
 * config.c - see config.h.
 *
 * One table describes every option: its name, the field it sets, how to
 * parse it, its bounds and its help text. --help, the environment and the
 * command line are all driven from that table, so they cannot disagree.
 */
#include "config.h"

#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COURANT_VERSION "0.1.0"

typedef enum opt_kind {
    OPT_FLAG,
    OPT_INT,
    OPT_LONG,
    OPT_SIZE,
    OPT_LIST,
    OPT_LEVEL,
    OPT_STRING,
    OPT_SYNC
} opt_kind_t;

typedef struct opt {
    const char *name; /* without the leading "--" */
    opt_kind_t kind;
    size_t offset;       /* of the field in config_t */
    size_t count_offset; /* OPT_LIST: of its int count in config_t */
    long long min, max;  /* bounds for numbers */
    const char *arg;     /* metavariable for --help */
    const char *help;
} opt_t;

#define F(field) offsetof(config_t, field)

static FILE *config_err; /* where one-line errors go; NULL = stderr */

static FILE *err_out(void) { return config_err ? config_err : stderr; }

void config__set_error_stream(FILE *f) { config_err = f; }

static const opt_t options[] = {
    {"listen", OPT_LIST, F(listen), F(num_listen), 0, CONFIG_MAX_LISTEN, "ADDR:PORT",
     "address to listen on, repeatable; IPv6 as [::1]:8000 (default: 127.0.0.1:8000 and [::1]:8000)"},
    {"workers", OPT_INT, F(workers), 0, 1, 256, "N", "event-loop threads (default: one per CPU)"},
    {"reuse-port", OPT_FLAG, F(reuse_port), 0, 0, 1, NULL,
     "share the listening port with other courant processes (SO_REUSEPORT); off: a busy port is an error"},
    {"demo", OPT_FLAG, F(demo), 0, 0, 1, NULL,
     "publish the server's time every second and serve the demo page at /"},
    {"demo-auth", OPT_FLAG, F(demo_auth), 0, 0, 1, NULL,
     "DEMO ONLY, with --demo: make a random HS256 key for publishers and subscribers and serve tokens at "
     "/demo/tokens.json"},
    {"max-connections", OPT_LONG, F(max_connections), 0, 1, 100000000, "N",
     "open connections at most; 503 past it (default: sized from the descriptor limit)"},
    {"header-timeout", OPT_INT, F(header_timeout_s), 0, 1, 3600, "SECONDS",
     "time allowed to send a request head (default 10)"},
    {"idle-timeout", OPT_INT, F(idle_timeout_s), 0, 1, 86400, "SECONDS",
     "idle keep-alive connections are closed after (default 60)"},
    {"max-header-bytes", OPT_SIZE, F(max_header_bytes), 0, 256, 1 << 20, "BYTES",
     "request line and headers at most; 431 past it (default 16384)"},
    {"max-event-bytes", OPT_SIZE, F(max_event_bytes), 0, 64, 64 << 20, "BYTES",
     "publish request body at most; 413 past it (default 1048576)"},
    {"history", OPT_LONG, F(history), 0, 0, 10000000, "N",
     "events kept in memory for Last-Event-ID resume (default 1000)"},
    {"history-age", OPT_INT, F(history_age_s), 0, 0, 100000000, "SECONDS",
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
     "0 = answer at once (default 50)"},
    {"publish-refuse-lag", OPT_INT, F(publish_refuse_lag_ms), 0, 0, 3600000, "MS",
     "past this fan-out lag, publishes are refused (503, Retry-After: 1) without being published, "
     "for publishers that do not wait for answers; 0 = never (default 2000)"},
    {"max-lifetime", OPT_INT, F(max_lifetime_s), 0, 0, 100000000, "SECONDS",
     "end streams after about this long, jittered; 0 = never (default 0)"},
    {"max-body-bytes-total", OPT_SIZE, F(max_body_bytes_total), 0, 1024, 1LL << 40, "BYTES",
     "request body bytes buffered by all connections together at most; 503 past it (default 67108864)"},
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
    {"anonymous-subscription-rate", OPT_LONG, F(anonymous_subscription_rate), 0, 0, 1000000, "N",
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
    {"cors-origin", OPT_LIST, F(cors_origins), F(num_cors_origins), 0, CONFIG_MAX_ORIGINS, "ORIGIN",
     "origin allowed to subscribe from a browser, repeatable, or * (default *); listed origins get "
     "credentials (cookies)"},
    {"publish-origin", OPT_LIST, F(publish_origins), F(num_publish_origins), 0, CONFIG_MAX_ORIGINS, "ORIGIN",
     "origin allowed to publish from a browser (CORS with credentials, and the cookie's CSRF check), "
     "repeatable, or *"},
    {"jwt-alg", OPT_STRING, F(jwt_alg), 0, 0, 0, "ALG",
     "JWT algorithm: HS256 (default), HS384, HS512, RS256, ES256"},
    {"publisher-jwt-key", OPT_STRING, F(publisher_jwt_key), 0, 0, 0, "KEY",
     "HMAC secret or PEM public key for publishers' tokens; without one, only loopback peers may publish"},
    {"publisher-jwt-key-file", OPT_STRING, F(publisher_jwt_key_file), 0, 0, 0, "PATH",
     "read the publisher key from a file"},
    {"subscriber-jwt-key", OPT_STRING, F(subscriber_jwt_key), 0, 0, 0, "KEY",
     "HMAC secret or PEM public key for subscribers' tokens; without one, anyone may subscribe (no private "
     "updates)"},
    {"subscriber-jwt-key-file", OPT_STRING, F(subscriber_jwt_key_file), 0, 0, 0, "PATH",
     "read the subscriber key from a file"},
    {"anonymous", OPT_FLAG, F(anonymous), 0, 0, 1, NULL,
     "with a subscriber key: also let in subscribers without a token (public updates only)"},
    {"subscriptions", OPT_FLAG, F(subscriptions), 0, 0, 1, NULL,
     "publish subscription events and serve /.well-known/mercure/subscriptions (needs a subscriber key)"},
    {"log-level", OPT_LEVEL, F(log_level), 0, 0, 0, "LEVEL", "debug, info, warn or error (default info)"},
    {"store", OPT_STRING, F(store_path), 0, 0, 0, "PATH",
     "keep history in this SQLite file: a publish is answered 200 only once committed, and history "
     "survives restarts and crashes (default: none, history in memory only)"},
    {"sync", OPT_SYNC, F(sync), 0, 0, 0, "MODE",
     "with --store: full = fsync every group commit (default); normal = fsync at checkpoints only "
     "(a power loss may take back recent events); off = never fsync (a power loss may also damage the file)"},
    {"redis", OPT_STRING, F(redis_url), 0, 0, 0, "URL",
     "share events and history with other courant nodes through a Redis Stream, "
     "redis://[:PASS@]HOST:PORT[/DB]: "
     "publish on any node, receive on all, resume anywhere (not with --store: Redis is then the history)"},
    {"redis-stream", OPT_STRING, F(redis_stream), 0, 0, 0, "KEY",
     "with --redis: the stream's key (default courant)"},
};

#define NUM_OPTIONS (sizeof(options) / sizeof(options[0]))

static void config_defaults(config_t *c)
{
    memset(c, 0, sizeof(*c));
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    c->workers = ncpu > 0 ? (int)ncpu : 1;
    c->header_timeout_s = 10;
    c->idle_timeout_s = 60;
    c->max_header_bytes = 16384;
    c->max_event_bytes = 1 << 20;
    c->history = 1000;
    c->heartbeat_s = 25;
    c->retry_ms = -1;
    c->max_pending_bytes = 4 << 20;
    c->fanout_batch_us = 5000;
    c->publish_wait_lag_ms = 50;
    c->publish_refuse_lag_ms = 2000;
    c->max_body_bytes_total = 64 << 20;
    c->max_stream_input_bytes = 4096;
    c->max_topics_per_subscribe = 64;
    c->max_templates_per_subscriber = 16;
    c->max_templates_per_worker = 10000;
    c->max_template_states = 512;
    c->max_replay = 10000;
    c->max_connections_per_ip = 1024;
    c->subscribe_rate = 10;
    c->anonymous_subscription_rate = 20;
    c->log_level = LOG_INFO;
    c->redis_stream = strdup("courant");
}

static void print_help(void)
{
    printf("courant " COURANT_VERSION " - a Server-Sent Events hub (Mercure protocol)\n\n"
           "usage: courant [options]\n\n");
    for (size_t i = 0; i < NUM_OPTIONS; i++) {
        const opt_t *o = &options[i];
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        printf("  %-28s %s\n", left, o->help);
    }
    printf("  %-28s %s\n  %-28s %s\n", "--help", "show this help", "--version", "show the version");
    printf("\nEvery option can also be set as COURANT_<NAME> (e.g. COURANT_LISTEN=0.0.0.0:8000,\n"
           "COURANT_DEMO=1); the command line wins. Repeatable options take a comma list.\n");
}

static const opt_t *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < NUM_OPTIONS; i++)
        if (strlen(options[i].name) == len && memcmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

static int parse_number(const opt_t *o, const char *v, long long *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < o->min || n > o->max) {
        fprintf(err_out(), "courant: --%s wants a whole number from %lld to %lld, not \"%s\"\n", o->name,
                o->min, o->max, v);
        return -1;
    }
    *out = n;
    return 0;
}

/* Appends one value to a list option. */
static int list_add(const opt_t *o, config_t *c, const char *v, size_t len)
{
    char **list = (char **)((char *)c + o->offset);
    int *count = (int *)((char *)c + o->count_offset);
    if (*count >= o->max) {
        fprintf(err_out(), "courant: --%s may be given at most %lld times\n", o->name, o->max);
        return -1;
    }
    if (len == 0) {
        fprintf(err_out(), "courant: --%s wants a value\n", o->name);
        return -1;
    }
    list[(*count)++] = strndup(v, len);
    return 0;
}

/* Sets an option from its text value. `from_env` splits lists on commas. */
static int set_option(config_t *c, const opt_t *o, const char *v, int from_env)
{
    void *field = (char *)c + o->offset;
    long long n;
    switch (o->kind) {
    case OPT_FLAG:
        if (!v || !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))
            *(int *)field = 1;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") || !*v)
            *(int *)field = 0;
        else {
            fprintf(err_out(), "courant: --%s is a flag; \"%s\" is not 0/1/true/false\n", o->name, v);
            return -1;
        }
        return 0;
    case OPT_INT:
        if (parse_number(o, v, &n))
            return -1;
        *(int *)field = (int)n;
        return 0;
    case OPT_LONG:
        if (parse_number(o, v, &n))
            return -1;
        *(long *)field = (long)n;
        return 0;
    case OPT_SIZE:
        if (parse_number(o, v, &n))
            return -1;
        *(size_t *)field = (size_t)n;
        return 0;
    case OPT_LEVEL: {
        log_level_t lv;
        if (log_parse_level(v, &lv)) {
            fprintf(err_out(), "courant: --%s wants debug, info, warn or error, not \"%s\"\n", o->name, v);
            return -1;
        }
        *(int *)field = (int)lv;
        return 0;
    }
    case OPT_STRING: {
        char **sp = field;
        if (!*v) {
            fprintf(err_out(), "courant: --%s wants a value\n", o->name);
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
        fprintf(err_out(), "courant: --%s wants full, normal or off, not \"%s\"\n", o->name, v);
        return -1;
    }
    case OPT_LIST:
        if (!from_env)
            return list_add(o, c, v, strlen(v));
        for (const char *p = v;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (list_add(o, c, p, len))
                return -1;
            if (!comma)
                return 0;
            p = comma + 1;
        }
    }
    return -1;
}

static void list_clear(config_t *c, const opt_t *o)
{
    char **list = (char **)((char *)c + o->offset);
    int *count = (int *)((char *)c + o->count_offset);
    for (int i = 0; i < *count; i++)
        free(list[i]);
    *count = 0;
}

static int apply_env(config_t *c)
{
    for (size_t i = 0; i < NUM_OPTIONS; i++) {
        char var[64] = "COURANT_";
        size_t k = strlen(var);
        for (const char *p = options[i].name; *p && k < sizeof(var) - 1; p++)
            var[k++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        var[k] = 0;
        const char *v = getenv(var);
        if (v && set_option(c, &options[i], v, 1)) {
            fprintf(err_out(), "courant: (from the environment variable %s)\n", var);
            return -1;
        }
    }
    return 0;
}

static int apply_argv(config_t *c, int argc, char **argv)
{
    int seen_list[NUM_OPTIONS] = {0}; /* the first command-line value replaces the env's */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help();
            return 1;
        }
        if (!strcmp(a, "--version")) {
            printf("courant " COURANT_VERSION "\n");
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
        if (!v && o->kind != OPT_FLAG) {
            if (i + 1 >= argc) {
                fprintf(err_out(), "courant: --%s wants a value (%s)\n", o->name, o->arg);
                return -1;
            }
            v = argv[++i];
        }
        if (o->kind == OPT_LIST && !seen_list[o - options]++)
            list_clear(c, o);
        if (set_option(c, o, v, 0))
            return -1;
    }
    return 0;
}

int config_parse(config_t *c, int argc, char **argv)
{
    config_defaults(c);
    int r = apply_env(c);
    if (r == 0)
        r = apply_argv(c, argc, argv);
    if (r == 0 && c->num_listen == 0) {
        c->listen[c->num_listen++] = strdup("127.0.0.1:8000");
        c->listen[c->num_listen++] = strdup("[::1]:8000");
    }
    if (r == 0 && c->num_cors_origins == 0)
        c->cors_origins[c->num_cors_origins++] = strdup("*");
    for (int i = 0; r == 0 && i < c->num_listen; i++) {
        char host[256];
        int port;
        if (config_split_hostport(c->listen[i], host, sizeof(host), &port)) {
            fprintf(err_out(),
                    "courant: --listen wants ADDR:PORT (e.g. 127.0.0.1:8000, [::1]:8000), not \"%s\"\n",
                    c->listen[i]);
            r = -1;
        }
    }
    return r;
}

void config_dispose(config_t *c)
{
    for (size_t i = 0; i < NUM_OPTIONS; i++) {
        if (options[i].kind == OPT_LIST) { /* every list, from the table */
            char **v = (char **)((char *)c + options[i].offset);
            int *n = (int *)((char *)c + options[i].count_offset);
            for (int k = 0; k < *n; k++)
                free(v[k]);
            *n = 0;
        } else if (options[i].kind == OPT_STRING) {
            char **sp = (char **)((char *)c + options[i].offset);
            free(*sp);
            *sp = NULL;
        }
    }
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
