/*
 * cli_pub.c - `courant pub`: publishes one event and prints its id.
 *
 *   courant pub --url http://127.0.0.1:8000 --topic https://ex.com/books/1 --data '{"x":1}'
 *
 * The request is the Mercure publish form (topic repeated, data, id, type,
 * retry, private=on), percent-encoded here, POSTed with
 * "Authorization: Bearer" when a token is given. A URL without a path gets
 * /.well-known/mercure. 200: the body (the event id) goes to stdout; any
 * other status is an error line with the status and the hub's reason.
 */
#include "cli.h"

#include "httpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOPICS 64
#define MAX_DATA (64u << 20) /* --data - reads stdin up to this */
#define MAX_ANSWER (64 << 10)

static const cli_opt_t opts[] = {
    {"url", "URL", 0, "the hub: http://HOST:PORT[/.well-known/mercure] (https later)"},
    {"topic", "TOPIC", 1, "the event's topic; the first is its id topic, more are alternate topics"},
    {"data", "DATA", 0, "the payload; - reads it from stdin"},
    {"id", "ID", 0, "the event id (default: the hub makes a UUIDv7)"},
    {"type", "TYPE", 0, "the event type (SSE event: field)"},
    {"retry", "MS", 0, "the reconnection delay subscribers should use"},
    {"private", NULL, 0, "a private update: only subscribers whose token allows the topic receive it"},
    {"token", "JWT", 0, "a publisher token (see courant token); sent as Authorization: Bearer"},
    {"token-file", "PATH", 0, "read the token from a file (keeps it out of the process list)"},
    {"timeout", "SECONDS", 0, "give up after this long (default 10)"},
};

/* A growable string. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf_t;

static int sb_put(sbuf_t *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *t = realloc(b->s, cap);
        if (!t)
            return -1;
        b->s = t;
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = 0;
    return 0;
}

/* Appends "&name=value" with the value percent-encoded (RFC 3986 unreserved kept). */
static int form_add(sbuf_t *b, const char *name, const char *v, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    if ((b->len && sb_put(b, "&", 1)) || sb_put(b, name, strlen(name)) || sb_put(b, "=", 1))
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-._~", c)) {
            if (sb_put(b, (const char *)&c, 1))
                return -1;
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            if (sb_put(b, e, 3))
                return -1;
        }
    }
    return 0;
}

/* The token from --token or --token-file, checked to be one header-safe
 * word. Returns 0 (*tok NULL: none), or -1 after an error. *owned is what to free. */
static int get_token(const cli_args_t *a, const char **tok, char **owned)
{
    const char *t = cli_get(a, "token"), *f = cli_get(a, "token-file");
    *tok = NULL;
    *owned = NULL;
    if (t && f) {
        cli_error(a, "give --token or --token-file, not both");
        return -1;
    }
    if (f) {
        size_t len;
        if (!(*owned = cli_read_file(f, 64 << 10, &len))) {
            cli_error(a, "cannot read --token-file %s: %s", f, strerror(errno));
            return -1;
        }
        while (len && ((*owned)[len - 1] == '\n' || (*owned)[len - 1] == '\r' || (*owned)[len - 1] == ' '))
            (*owned)[--len] = 0;
        t = *owned;
    }
    if (!t)
        return 0;
    for (const char *p = t; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            cli_error(a, "the token contains a space or a control character");
            return -1;
        }
    *tok = t;
    return 0;
}

static int build_form(const cli_args_t *a, sbuf_t *form, const char *data, size_t data_len)
{
    const char *topics[MAX_TOPICS];
    size_t nt = cli_get_all(a, "topic", topics, MAX_TOPICS);
    if (nt == 0 || nt > MAX_TOPICS) {
        cli_error(a, nt ? "at most %d --topic" : "--topic is required", MAX_TOPICS);
        return -1;
    }
    for (size_t i = 0; i < nt; i++)
        if (form_add(form, "topic", topics[i], strlen(topics[i])))
            return -1;
    if (form_add(form, "data", data, data_len))
        return -1;
    static const char *const fields[] = {"id", "type", "retry"};
    for (int i = 0; i < 3; i++) {
        const char *v = cli_get(a, fields[i]);
        if (v && form_add(form, fields[i], v, strlen(v)))
            return -1;
    }
    if (cli_flag(a, "private") && form_add(form, "private", "on", 2))
        return -1;
    return 0;
}

/* Sends the form and prints the answer. Returns the exit status. */
static int post(const cli_args_t *a, const httpc_url_t *u, const char *token, const sbuf_t *form,
                int timeout_ms)
{
    char why[256], extra[(64 << 10) + 128]; /* a --token-file token is at most 64 KiB */
    snprintf(extra, sizeof(extra), "Content-Type: application/x-www-form-urlencoded\r\n%s%s%s",
             token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "");
    httpc_conn_t c;
    if (httpc_open(&c, u, &cli_interrupted, timeout_ms, why, sizeof(why))) {
        cli_error(a, "%s", why);
        httpc_close(&c);
        return 1;
    }
    char *req = httpc_format_request("POST", u, extra, form->len);
    httpc_head_t h;
    char *body = NULL;
    int rc = 1;
    if (!req || httpc_send(&c, req, strlen(req), timeout_ms) ||
        httpc_send(&c, form->s, form->len, timeout_ms))
        cli_error(a, "cannot send the request to %s: %s", u->authority, strerror(errno));
    else if (httpc_read_head(&c, &h, timeout_ms, why, sizeof(why)))
        cli_error(a, "%s: %s", u->authority, why);
    else if (httpc_read_all(&c, &body, MAX_ANSWER, timeout_ms) < 0)
        cli_error(a, "%s: the answer's body could not be read", u->authority);
    else {
        size_t bl = strlen(body);
        while (bl && (body[bl - 1] == '\n' || body[bl - 1] == '\r'))
            body[--bl] = 0;
        if (h.status == 200) {
            printf("%s\n", body);
            rc = 0;
        } else {
            for (char *p = body; *p; p++) /* one line */
                if ((unsigned char)*p < 0x20)
                    *p = ' ';
            cli_error(a, "%d %.*s: %.500s", h.status, (int)h.reason_len, h.reason, body);
        }
    }
    free(body);
    free(req);
    httpc_close(&c);
    return rc;
}

static int run(const cli_args_t *a)
{
    const char *url = cli_get(a, "url"), *data = cli_get(a, "data"), *why;
    const char *timeout_s = cli_get(a, "timeout");
    int64_t timeout = 10;
    if (!url || !data) {
        cli_error(a, "--url and --data are required (try courant pub --help)");
        return 2;
    }
    if (timeout_s && (cli_parse_duration(timeout_s, &timeout) || timeout < 1 || timeout > 3600)) {
        cli_error(a, "--timeout wants 1 to 3600 seconds, not \"%s\"", timeout_s);
        return 2;
    }
    httpc_url_t *u = malloc(sizeof(*u));
    if (!u || httpc_parse_url(url, u, &why)) {
        cli_error(a, "--url %s: %s", url, u ? why : "out of memory");
        free(u);
        return 2;
    }
    if (!strcmp(u->target, "/"))
        strcpy(u->target, "/.well-known/mercure");
    size_t data_len = strlen(data);
    char *stdin_data = NULL;
    if (!strcmp(data, "-")) {
        if (!(stdin_data = cli_read_file("-", MAX_DATA, &data_len))) {
            cli_error(a, "cannot read the data from stdin: %s", strerror(errno));
            free(u);
            return 1;
        }
        data = stdin_data;
    }
    const char *token;
    char *token_owned;
    sbuf_t form = {0};
    int rc = 2;
    if (get_token(a, &token, &token_owned) == 0 && build_form(a, &form, data, data_len) == 0) {
        cli_catch_signals();
        rc = post(a, u, token, &form, (int)timeout * 1000);
    }
    free(form.s);
    free(token_owned);
    free(stdin_data);
    free(u);
    return rc;
}

const cli_command_t cli_pub_command = {
    .name = "pub",
    .summary = "publish one event and print its id",
    .usage = "courant pub --url URL --topic TOPIC... --data DATA [--id ID] [--type TYPE] [--retry MS] "
             "[--private] [--token JWT|--token-file PATH]",
    .description = "POSTs a Mercure publish form. Exit status 0 and the event id on stdout when the hub "
                   "answers 200; otherwise 1 and the status with the hub's reason on stderr.",
    .opts = opts,
    .num_opts = sizeof(opts) / sizeof(opts[0]),
    .run = run,
};
