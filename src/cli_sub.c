/*
 * cli_sub.c - `courant sub`: subscribes and prints events, reconnecting.
 *
 *   courant sub --url http://127.0.0.1:8000 --topic 'https://ex.com/books/{id}'
 *
 * Like an EventSource: the stream is parsed by sse.c's WHATWG parser; the
 * last event id seen is sent as Last-Event-ID on every reconnection, so the
 * hub replays what was missed (no gap, no duplicate); the server's retry:
 * sets the reconnection delay. Unlike a browser it backs off when
 * reconnecting keeps failing (the delay doubles up to 30 s, reset once a
 * stream opens), and gives up on answers that retrying cannot fix (400,
 * 401, 403, 404: exit 1). 5xx, 429, a refused connection, a closed or
 * silent stream (nothing for 90 s, when the hub's heartbeat is 25 s) are
 * retried. SIGINT/SIGTERM end it within 200 ms (exit 0).
 *
 * Output, one block per event, flushed at once (so it can be piped):
 *
 *   id:   urn:uuid:...          (omitted when the stream has given no id)
 *   type: message
 *   data: first line
 *         second line
 *                               (blank line)
 *
 * or with --json one object per line: {"id":"...","type":"...","data":"..."}.
 * Diagnostics (reconnections, a hub that lost the resume point) go to stderr.
 */
#include "cli.h"

#include "httpc.h"
#include "log.h"
#include "sse.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TOPICS 64
#define MAX_EVENT (16u << 20) /* one event's data at most */
#define IDLE_MS 90000         /* a stream silent this long is presumed dead */
#define CONNECT_MS 5000
#define DEFAULT_RETRY_MS 1000 /* before the hub says otherwise (browsers: about 3 s) */
#define MAX_BACKOFF_MS 30000
#define MAX_RETRY_MS 600000 /* a hub's retry: above this is capped */

static const cli_opt_t opts[] = {
    {"url", "URL", 0, "the hub: http://HOST:PORT[/.well-known/mercure] (https later)"},
    {"topic", "SELECTOR", 1, "a topic or URI template to receive"},
    {"token", "JWT", 0, "a subscriber token (see courant token); sent as Authorization: Bearer"},
    {"last-event-id", "ID", 0, "start after this event (earliest: all the hub's history)"},
    {"count", "N", 0, "exit after N events"},
    {"json", NULL, 0, "print one JSON object per event and line"},
};

typedef enum { SESSION_RETRY, SESSION_DONE, SESSION_FATAL } session_t;

typedef struct sub {
    const cli_args_t *a; /* borrows */
    httpc_url_t *u;      /* owns */
    const char *token;   /* borrows from argv; NULL = none */
    char *last_id;       /* owns: the id to resume after; NULL = none yet */
    long count;          /* exit after this many events; 0 = never */
    long received;       /* events printed */
    int json;            /* --json */
    long retry_ms;       /* reconnection delay: the hub's retry:, or DEFAULT_RETRY_MS */
    char why[512];       /* why the last session ended, for the reconnect line */
} sub_t;

static void print_json_string(const char *s, size_t len)
{
    char buf[4096];
    putchar('"');
    while (len > 0) {
        size_t used;
        size_t n = log_json_escape(s, len, buf, sizeof(buf), &used);
        fwrite(buf, 1, n, stdout);
        s += used;
        len -= used;
    }
    putchar('"');
}

static void print_event(sub_t *s, const sse_event_t *ev)
{
    if (s->json) {
        fputs("{\"id\":", stdout);
        print_json_string(ev->last_id, ev->last_id_len);
        fputs(",\"type\":", stdout);
        print_json_string(ev->type, ev->type_len);
        fputs(",\"data\":", stdout);
        print_json_string(ev->data, ev->data_len);
        fputs("}\n", stdout);
    } else {
        if (ev->last_id_len)
            printf("id:   %.*s\n", (int)ev->last_id_len, ev->last_id);
        printf("type: %.*s\ndata: ", (int)ev->type_len, ev->type);
        for (size_t i = 0; i < ev->data_len; i++) {
            putchar(ev->data[i]);
            if (ev->data[i] == '\n')
                fputs("      ", stdout);
        }
        fputs("\n\n", stdout);
    }
    fflush(stdout);
}

static void on_event(void *ctx, const sse_event_t *ev)
{
    sub_t *s = ctx;
    if (s->count && s->received >= s->count)
        return; /* past --count within one read: not printed */
    if (ev->last_id_len && (!s->last_id || strcmp(s->last_id, ev->last_id))) {
        free(s->last_id);
        s->last_id = strndup(ev->last_id, ev->last_id_len);
    }
    print_event(s, ev);
    s->received++;
}

static void on_retry(void *ctx, uint64_t ms)
{
    sub_t *s = ctx;
    s->retry_ms = ms > MAX_RETRY_MS ? MAX_RETRY_MS : (long)ms;
}

/* Appends ?topic=...&topic=... to the URL's target. */
static int add_topics(sub_t *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *topics[MAX_TOPICS];
    size_t n = cli_get_all(s->a, "topic", topics, MAX_TOPICS);
    if (n == 0 || n > MAX_TOPICS) {
        cli_error(s->a, n ? "at most %d --topic" : "--topic is required", MAX_TOPICS);
        return -1;
    }
    char *t = s->u->target;
    size_t k = strlen(t), cap = sizeof(s->u->target);
    for (size_t i = 0; i < n; i++) {
        if (k + 7 >= cap)
            goto too_long;
        k += (size_t)snprintf(t + k, cap - k, "%ctopic=", strchr(t, '?') ? '&' : '?');
        for (const unsigned char *p = (const unsigned char *)topics[i]; *p; p++) {
            if (k + 4 >= cap)
                goto too_long;
            if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                strchr("-._~", *p)) {
                t[k++] = (char)*p;
            } else {
                t[k++] = '%';
                t[k++] = hex[*p >> 4];
                t[k++] = hex[*p & 15];
            }
        }
        t[k] = 0;
    }
    return 0;
too_long:
    cli_error(s->a, "the topics make the URL longer than %d bytes", HTTPC_MAX_TARGET);
    return -1;
}

/* Reads the stream until it ends, --count is reached, or a signal. */
static session_t stream(sub_t *s, httpc_conn_t *c)
{
    sse_parser_t p;
    sse_parser_callbacks_t cb = {.on_event = on_event, .on_retry = on_retry};
    sse_parser_init(&p, &cb, s, MAX_EVENT);
    static char buf[65536];
    session_t r = SESSION_RETRY;
    for (;;) {
        ssize_t n = httpc_read_body(c, buf, sizeof(buf), IDLE_MS);
        if (n > 0 && sse_parser_feed(&p, buf, (size_t)n)) {
            snprintf(s->why, sizeof(s->why), "an event larger than %u bytes", MAX_EVENT);
            break;
        }
        if (s->count && s->received >= s->count) {
            r = SESSION_DONE;
            break;
        }
        if (n > 0)
            continue;
        if (n == HTTPC_CANCELLED)
            r = SESSION_DONE;
        snprintf(s->why, sizeof(s->why), "%s",
                 n == 0               ? "the hub closed the stream"
                 : n == HTTPC_TIMEOUT ? "nothing received for 90 s"
                 : n == HTTPC_ERROR   ? "the stream broke"
                                      : "interrupted");
        break;
    }
    sse_parser_dispose(&p);
    return r;
}

/* The request head: GET with the resume point and the token. */
static char *request(sub_t *s)
{
    char extra[(64 << 10) + 512];
    int n = snprintf(extra, sizeof(extra), "Accept: text/event-stream\r\nCache-Control: no-cache\r\n");
    if (s->last_id && strlen(s->last_id) < 4096 && !strpbrk(s->last_id, "\r\n"))
        n += snprintf(extra + n, sizeof(extra) - (size_t)n, "Last-Event-ID: %s\r\n", s->last_id);
    if (s->token)
        snprintf(extra + n, sizeof(extra) - (size_t)n, "Authorization: Bearer %s\r\n", s->token);
    return httpc_format_request("GET", s->u, extra, 0);
}

/* Warns when the hub could not resume where asked (its answer's
 * Last-Event-ID is "earliest" though we sent an id). */
static void check_resume(sub_t *s, const httpc_head_t *h)
{
    const httpc_header_t *echo = httpc_find_header(h, "Last-Event-ID");
    if (s->last_id && strcmp(s->last_id, "earliest") && echo &&
        http1_token_eq(echo->value, echo->value_len, "earliest"))
        fprintf(stderr,
                "courant sub: the hub no longer has the events after %s (history expired, or it restarted "
                "without --store): some may have been missed\n",
                s->last_id);
}

/* One connection. *opened is set once the hub answered 200. */
static session_t session(sub_t *s, int *opened)
{
    httpc_conn_t c;
    httpc_head_t h;
    session_t r = SESSION_RETRY;
    char *req = NULL, *body = NULL;
    *opened = 0;
    if (httpc_open(&c, s->u, &cli_interrupted, CONNECT_MS, s->why, sizeof(s->why)))
        goto out;
    if (!(req = request(s)) || httpc_send(&c, req, strlen(req), CONNECT_MS)) {
        snprintf(s->why, sizeof(s->why), "cannot send the request: %s", strerror(errno));
        goto out;
    }
    if (httpc_read_head(&c, &h, CONNECT_MS, s->why, sizeof(s->why)))
        goto out;
    if (h.status != 200) {
        ssize_t bl = httpc_read_all(&c, &body, 4096, CONNECT_MS);
        for (ssize_t i = 0; i < bl; i++)
            if ((unsigned char)body[i] < 0x20)
                body[i] = ' ';
        snprintf(s->why, sizeof(s->why), "%d %.*s: %s", h.status, (int)h.reason_len, h.reason,
                 bl > 0 ? body : "(no reason given)");
        if (h.status != 408 && h.status != 429 && h.status < 500)
            r = SESSION_FATAL;
        goto out;
    }
    *opened = 1;
    check_resume(s, &h);
    r = stream(s, &c);
out:
    free(body);
    free(req);
    httpc_close(&c);
    return r;
}

/* Sleeps ms, in slices, unless interrupted. */
static void pause_ms(long ms)
{
    while (ms > 0 && !cli_interrupted) {
        int slice = ms < 200 ? (int)ms : 200;
        poll(NULL, 0, slice);
        ms -= slice;
    }
}

static int run(const cli_args_t *a)
{
    sub_t s = {
        .a = a, .token = cli_get(a, "token"), .json = cli_flag(a, "json"), .retry_ms = DEFAULT_RETRY_MS};
    const char *url = cli_get(a, "url"), *count = cli_get(a, "count"), *lei = cli_get(a, "last-event-id"),
               *why;
    if (!url) {
        cli_error(a, "--url is required (try courant sub --help)");
        return 2;
    }
    if (count) {
        char *end;
        s.count = strtol(count, &end, 10);
        if (*end || end == count || s.count < 1) {
            cli_error(a, "--count wants a positive number, not \"%s\"", count);
            return 2;
        }
    }
    if (s.token && strpbrk(s.token, " \t\r\n")) {
        cli_error(a, "the token contains a space or a line break");
        return 2;
    }
    int rc = 2;
    s.u = malloc(sizeof(*s.u));
    if (!s.u || httpc_parse_url(url, s.u, &why)) {
        cli_error(a, "--url %s: %s", url, s.u ? why : "out of memory");
        goto out;
    }
    if (!strcmp(s.u->target, "/"))
        strcpy(s.u->target, "/.well-known/mercure");
    if (add_topics(&s))
        goto out;
    if (lei && *lei)
        s.last_id = strdup(lei);
    cli_catch_signals();
    for (int fails = 0;;) {
        int opened;
        session_t r = session(&s, &opened);
        if (r == SESSION_DONE || cli_interrupted) {
            rc = 0;
            break;
        }
        if (r == SESSION_FATAL) {
            cli_error(a, "%s", s.why);
            rc = 1;
            break;
        }
        fails = opened ? 0 : fails + 1;
        long delay = s.retry_ms;
        for (int i = 1; i < fails && delay < MAX_BACKOFF_MS; i++) /* retry, 2x, 4x ... */
            delay *= 2;
        if (fails && delay > MAX_BACKOFF_MS)
            delay = MAX_BACKOFF_MS;
        fprintf(stderr, "courant sub: %s; reconnecting in %.1f s%s%s\n", s.why, delay / 1000.0,
                s.last_id ? " after " : "", s.last_id ? s.last_id : "");
        pause_ms(delay);
    }
out:
    free(s.last_id);
    free(s.u);
    return rc;
}

const cli_command_t cli_sub_command = {
    .name = "sub",
    .summary = "subscribe and print events, resuming after disconnects",
    .usage =
        "courant sub --url URL --topic SELECTOR... [--token JWT] [--last-event-id ID] [--count N] [--json]",
    .description =
        "Prints one block per event (id, type, data). Reconnects when the stream ends, with the last "
        "event id as Last-Event-ID so nothing is missed, after the hub's retry: delay (doubling up to "
        "30 s while reconnecting fails). Exits on SIGINT, after --count events, or with status 1 "
        "when the hub refuses the subscription (400, 401, 403, 404).",
    .opts = opts,
    .num_opts = sizeof(opts) / sizeof(opts[0]),
    .run = run,
};
