/*
 * accesslog.c - see accesslog.h.
 *
 * A line is built on the stack (the target is at most ACCESSLOG_TARGET_MAX
 * bytes, escaped at most six-fold in JSON) and written with one write(2).
 */
#include "accesslog.h"

#include "http1.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int log_fd = -1; /* the descriptor lines go to; set once, then dup2()'d over */
static atomic_int log_on;      /* 0: no lines */

int accesslog_configure(const char *target, char *err, size_t cap)
{
    if (!target || !*target || !strcmp(target, "off")) {
        atomic_store_explicit(&log_on, 0, memory_order_relaxed);
        return 0;
    }
    int fd = !strcmp(target, "stderr") ? fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0)
                                       : open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err, cap, "--access-log: cannot open %s: %s", target, strerror(errno));
        return -1;
    }
    int cur = atomic_load(&log_fd);
    if (cur < 0) {
        atomic_store(&log_fd, fd);
    } else {
        /* Same number, new file: a worker writing now writes whole to one
         * of the two; closing and reopening could hand the number to a
         * client's socket in between. */
        if (dup3(fd, cur, O_CLOEXEC) < 0) {
            snprintf(err, cap, "--access-log: cannot switch to %s: %s", target, strerror(errno));
            close(fd);
            return -1;
        }
        close(fd);
    }
    atomic_store_explicit(&log_on, 1, memory_order_release); /* after log_fd: a reader that sees on sees it */
    return 0;
}

int accesslog_enabled(void) { return atomic_load_explicit(&log_on, memory_order_acquire); }

/* ---- queries ------------------------------------------------------------------ */

static int hexdig(char c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

/* Is every '%' of s[0..len) followed by two hex digits? */
static int well_formed(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == '%' && (i + 2 >= len || !hexdig(s[i + 1]) || !hexdig(s[i + 2])))
            return 0;
    return 1;
}

/* Does the raw (well-formed) name decode to `want`? A decoded byte takes at
 * most three raw ones, so longer names cannot, and need no decoding. */
static int name_is(const char *raw, size_t len, const char *want)
{
    size_t wl = strlen(want);
    char buf[64];
    if (len > wl * 3 || len > sizeof(buf))
        return 0;
    ssize_t n = http1_pct_decode(raw, len, buf, HTTP1_PCT_PLUS_SPACE);
    return n == (ssize_t)wl && memcmp(buf, want, wl) == 0;
}

/* Calls fn for each non-empty pair: raw pair, raw name. Stops when fn
 * returns non-zero. */
typedef int (*pair_fn)(void *ctx, const char *pair, size_t plen, const char *name, size_t nlen);

static void each_pair(const char *q, size_t len, pair_fn fn, void *ctx)
{
    const char *p = q, *end = q + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (!amp)
            amp = end;
        if (amp > p) {
            const char *eq = memchr(p, '=', (size_t)(amp - p));
            if (fn(ctx, p, (size_t)(amp - p), p, (size_t)((eq ? eq : amp) - p)))
                return;
        }
        p = amp + 1;
    }
}

typedef struct clean {
    char *out;
    size_t n, cap;
    int cut; /* a pair did not fit */
} clean_t;

static int clean_pair(void *ctx, const char *pair, size_t plen, const char *name, size_t nlen)
{
    clean_t *c = ctx;
    if (!well_formed(name, nlen) || name_is(name, nlen, "authorization"))
        return 0;
    size_t need = plen + (c->n ? 1 : 0);
    if (c->n + need > c->cap) {
        c->cut = 1;
        return 1; /* no room: stop here rather than log half a pair */
    }
    if (c->n)
        c->out[c->n++] = '&';
    memcpy(c->out + c->n, pair, plen);
    c->n += plen;
    return 0;
}

size_t accesslog_clean_query(const char *q, size_t len, char *out, size_t cap, int *cut)
{
    clean_t c = {out, 0, cap, 0};
    each_pair(q, len, clean_pair, &c);
    if (cut)
        *cut = c.cut;
    return c.n;
}

typedef struct count {
    const char *name;
    size_t n;
} count_t;

static int count_pair(void *ctx, const char *pair, size_t plen, const char *name, size_t nlen)
{
    (void)pair;
    (void)plen;
    count_t *c = ctx;
    c->n += well_formed(name, nlen) && name_is(name, nlen, c->name);
    return 0;
}

size_t accesslog_count_params(const char *q, size_t len, const char *name)
{
    count_t c = {name, 0};
    each_pair(q, len, count_pair, &c);
    return c.n;
}

/* ---- records -------------------------------------------------------------------- */

accesslog_rec_t *accesslog_rec_new(const char *method, size_t mlen, const char *path, size_t plen,
                                   const char *query, size_t qlen, const peer_addr_t *client,
                                   int64_t start_us)
{
    accesslog_rec_t *r = malloc(sizeof(*r) + ACCESSLOG_TARGET_MAX);
    if (!r)
        return NULL;
    r->start_us = start_us;
    r->bytes = 0;
    r->status = 0;
    r->topics = 0;
    if (client)
        peer_addr_format(client, r->client, sizeof(r->client));
    else
        strcpy(r->client, "-");
    if (mlen >= sizeof(r->method))
        mlen = sizeof(r->method) - 1;
    memcpy(r->method, method, mlen);
    r->method[mlen] = 0;
    const size_t room = ACCESSLOG_TARGET_MAX - 3; /* "..." marks a cut */
    size_t n = plen < room ? plen : room;
    int cut = plen > room;
    memcpy(r->target, path, n);
    if (qlen && !cut && n + 1 < room) {
        size_t k = accesslog_clean_query(query, qlen, r->target + n + 1, room - n - 1, &cut);
        if (k) {
            r->target[n] = '?';
            n += 1 + k;
        }
    } else if (qlen) {
        cut = 1;
    }
    if (cut) {
        memcpy(r->target + n, "...", 3);
        n += 3;
    }
    r->target_len = (uint16_t)n;
    return r;
}

/* Text form: bytes that could split or forge a line, or unbalance the
 * quotes around the target, are percent-encoded. */
static size_t text_target(const char *in, size_t len, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

static void write_line(const char *line, size_t len)
{
    int fd = atomic_load_explicit(&log_fd, memory_order_relaxed);
    ssize_t w;
    do
        w = write(fd, line, len);
    while (w < 0 && errno == EINTR);
}

void accesslog_rec_finish(accesslog_rec_t *rec, int64_t now_us)
{
    if (!rec)
        return;
    if (!accesslog_enabled()) {
        free(rec);
        return;
    }
    char ts[64], line[ACCESSLOG_TARGET_MAX * 6 + 512];
    log_timestamp(ts, sizeof(ts));
    int64_t us = rec->start_us && now_us > rec->start_us ? now_us - rec->start_us : 0;
    const char *thread = log_get_thread_name();
    size_t n;
    if (log_get_format() == LOG_FORMAT_JSON) {
        char method[sizeof(rec->method) * 6 + 1], target[ACCESSLOG_TARGET_MAX * 6 + 1], th[97];
        method[log_json_escape(rec->method, strlen(rec->method), method, sizeof(method) - 1, NULL)] = 0;
        target[log_json_escape(rec->target, rec->target_len, target, sizeof(target) - 1, NULL)] = 0;
        th[log_json_escape(thread, strlen(thread), th, sizeof(th) - 1, NULL)] = 0;
        n = (size_t)snprintf(line, sizeof(line),
                             "{\"ts\":\"%s\",\"level\":\"info\",\"thread\":\"%s\",\"msg\":\"access\","
                             "\"client\":\"%s\",\"method\":\"%s\",\"target\":\"%s\",\"status\":%u,"
                             "\"bytes\":%llu,\"ms\":%lld.%03lld,\"topics\":%u}\n",
                             ts, th, rec->client, method, target, rec->status, (unsigned long long)rec->bytes,
                             (long long)(us / 1000), (long long)(us % 1000), rec->topics);
    } else {
        char method[sizeof(rec->method) * 3 + 1], target[ACCESSLOG_TARGET_MAX * 3 + 1];
        method[text_target(rec->method, strlen(rec->method), method)] = 0;
        target[text_target(rec->target, rec->target_len, target)] = 0;
        n = (size_t)snprintf(line, sizeof(line),
                             "%s access [%s] %s \"%s %s\" %u bytes=%llu ms=%lld.%03lld topics=%u\n", ts,
                             thread, rec->client, method, target, rec->status, (unsigned long long)rec->bytes,
                             (long long)(us / 1000), (long long)(us % 1000), rec->topics);
    }
    if (n >= sizeof(line))
        n = sizeof(line) - 1;
    write_line(line, n);
    free(rec);
}
