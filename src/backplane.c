/*
 * backplane.c - see backplane.h: a Redis Stream shared by every node, the
 * journal's thread sending pipelined XADD groups (commit_group) and one
 * reader thread of our own (XREAD BLOCK).
 *
 *   the journal's group (borrowed)   the publish connection
 *   +-----+-----+-----+              append n XADDs, send them in one write,
 *   | e0  | e1  | ... |  --------->  then read n replies: ok[i] = a stream id
 *   +-----+-----+-----+
 *
 * Why hiredis' blocking API on threads of our own, not its async API on the
 * workers' loops: the publish path is the journal's (a queue, a thread, acks
 * through the worker inboxes), the reader must hand entries to the hub in
 * stream order from exactly one place, and neither thread ever stalls a
 * worker. Pipelining gives the group commit: whatever arrives while one
 * group's replies are awaited goes into the next, one round trip per group.
 *
 * Why the publisher does not hand its own event to the hub: ordering. If
 * each node fanned its own publishes out at once and others' as read, two
 * nodes would see two orders, and a Last-Event-ID would mean different
 * things on each. Reading everything back costs the publishing node one
 * Redis round trip of latency on delivery, not on the 200.
 */
#include "backplane.h"

#include "log.h"
#include "wire.h"

#include <assert.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BP_CONNECT_TIMEOUT_MS 1000
#define BP_COMMAND_TIMEOUT_MS 3000 /* a dead peer is found by then */
#define BP_BLOCK_MS 500            /* XREAD BLOCK: also how fast the reader sees stop */
#define BP_READ_COUNT 1000         /* entries per XREAD at most */
#define BP_BACKOFF_MIN_MS 100
#define BP_BACKOFF_MAX_MS 2000
#define BP_PING_IDLE_MS 1000 /* an idle publish connection is checked this often */
#define BP_SID_MAX 64        /* "ms-seq" stream ids: 2 x 20 digits + '-' */

typedef struct backplane {
    backplane_url_t url; /* the parsed --redis URL */
    char *key;           /* owns: the stream's key */
    char maxlen[24];     /* MAXLEN ~ argument, as text */
    long history;        /* entries loaded at start */
    hub_t *hub;          /* borrows */

    pthread_t read_thread;
    int read_started;     /* main thread: the reader runs */
    pthread_mutex_t lock; /* guards stopping */
    pthread_cond_t wake;  /* broadcast on stop: ends the reader's naps */
    int stopping;         /* bp_stop: the reader exits */

    redisContext *pub;         /* owns: journal thread (main before journal_start) */
    int pub_backoff_ms;        /* journal thread: the wait after the next failed connect */
    int64_t pub_retry_at;      /* journal thread: CLOCK_MONOTONIC ms of the next connect try */
    char *scratch;             /* owns: journal thread, the joined topics of one XADD */
    size_t scratch_cap;        /* bytes at scratch */
    redisContext *rd;          /* owns: reader thread (main before journal_start) */
    char last_sid[BP_SID_MAX]; /* reader: the newest stream id handed to the hub */
    int loaded;                /* reader: history has been loaded into the hub */
    long loaded_n;             /* events load_history put into the hub, for journal_load */

    atomic_int pub_up, read_up; /* each connection works */
    /* The reader has loaded history (set once, never cleared). Publishes
     * wait for it: an entry added before the load would be loaded into
     * history, not read live, so this node's subscribers would miss it. */
    atomic_int history_ready;
    pthread_mutex_t state_lock; /* guards reported, ever_up: the log lines */
    int reported;               /* the state last logged: -1 none yet, 0 down, 1 up */
    int ever_up;                /* connected at least once: "reconnected" from then on */

    atomic_ulong xread, bad; /* entries handed to the hub; entries skipped */
} backplane_t;

static void backplane_free(backplane_t *b);

/* ---- the URL ------------------------------------------------------------------------ */

static int copy_part(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return -1;
    memcpy(dst, s, n);
    dst[n] = 0;
    return 0;
}

static int parse_num(const char *s, size_t n, long lo, long hi, int *out)
{
    long v = 0;
    if (n == 0 || n > 10)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

int backplane__parse_url(const char *url, backplane_url_t *u, const char **why)
{
    memset(u, 0, sizeof(*u));
    u->port = 6379;
    const char *p = url;
    if (strncmp(p, "redis://", 8) != 0) {
        *why = strncmp(p, "rediss://", 9) == 0 ? "TLS (rediss://) is not supported"
                                               : "it must start with redis://";
        return -1;
    }
    p += 8;
    const char *end = p + strlen(p);
    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *auth_end = slash ? slash : end;
    const char *at = NULL;
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@')
            at = q; /* the last '@': a password may contain one */
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon || copy_part(u->user, sizeof(u->user), p, (size_t)(colon - p)) ||
            copy_part(u->pass, sizeof(u->pass), colon + 1, (size_t)(at - colon - 1))) {
            *why = "credentials must be :PASSWORD@ or USER:PASSWORD@";
            return -1;
        }
        p = at + 1;
    }
    const char *colon = memchr(p, ':', (size_t)(auth_end - p));
    const char *host_end = colon ? colon : auth_end;
    if (host_end == p || copy_part(u->host, sizeof(u->host), p, (size_t)(host_end - p))) {
        *why = "it has no host (redis://HOST:PORT)";
        return -1;
    }
    if (colon && parse_num(colon + 1, (size_t)(auth_end - colon - 1), 1, 65535, &u->port)) {
        *why = "the port must be a number from 1 to 65535";
        return -1;
    }
    if (slash && slash + 1 < end && parse_num(slash + 1, (size_t)(end - slash - 1), 0, 1 << 20, &u->db)) {
        *why = "the database must be a number (redis://HOST:PORT/DB)";
        return -1;
    }
    return 0;
}

/* ---- entries: our fields, and their checks -------------------------------------------- */

static int has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    return 0;
}

typedef struct entry_fields {
    const redisReply *id, *topics, *priv, *ms, *wire;
} entry_fields_t;

static int str_is(const redisReply *r, const char *s)
{
    return r->type == REDIS_REPLY_STRING && r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

/* Picks our fields out of [f1, v1, f2, v2, ...]; unknown ones are ignored
 * (a later version may add some), a repeated one is refused. */
static const char *find_fields(const redisReply *kv, entry_fields_t *f)
{
    memset(f, 0, sizeof(*f));
    if (kv->type != REDIS_REPLY_ARRAY || kv->elements % 2)
        return "the fields are not name/value pairs";
    for (size_t i = 0; i < kv->elements; i += 2) {
        const redisReply *n = kv->element[i], *v = kv->element[i + 1];
        if (v->type != REDIS_REPLY_STRING)
            return "a field's value is not a string";
        const redisReply **slot = str_is(n, "id")        ? &f->id
                                  : str_is(n, "topics")  ? &f->topics
                                  : str_is(n, "private") ? &f->priv
                                  : str_is(n, "ms")      ? &f->ms
                                  : str_is(n, "wire")    ? &f->wire
                                                         : NULL;
        if (slot && *slot)
            return "a field is given twice";
        if (slot)
            *slot = v;
    }
    if (!f->id || !f->topics || !f->priv || !f->ms || !f->wire)
        return "a field is missing (id, topics, private, ms, wire)";
    return NULL;
}

static int parse_ms(const redisReply *r, int64_t *out)
{
    if (r->len == 0 || r->len > 15)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < r->len; i++) {
        if (r->str[i] < '0' || r->str[i] > '9')
            return -1;
        v = v * 10 + (r->str[i] - '0');
    }
    *out = v;
    return 0;
}

/* The Redis spelling of wire.h's record: private and ms are text here. */
static const char *entry_to_event(const entry_fields_t *f, evbuf_t **out)
{
    if (!(f->priv->len == 1 && (f->priv->str[0] == '0' || f->priv->str[0] == '1')))
        return "bad private flag";
    wire_record_t r = {
        .id = f->id->str,
        .id_len = f->id->len,
        .topics = f->topics->str,
        .topics_len = f->topics->len,
        .is_private = f->priv->str[0] == '1',
        .wire = f->wire->str,
        .wire_len = f->wire->len,
    };
    if (parse_ms(f->ms, &r.published_ms))
        return "bad ms";
    const char *why;
    return wire_try_decode(&r, out, &why) == WIRE_OK ? NULL : why;
}

int backplane__parse_entry(const redisReply *e, evbuf_t **out, char *sid, size_t sid_cap, const char **why)
{
    *out = NULL;
    if (sid_cap)
        sid[0] = 0;
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING) {
        *why = "not an [id, fields] entry";
        return -1;
    }
    const redisReply *s = e->element[0];
    if (s->len == 0 || s->len >= sid_cap || has_control(s->str, s->len) || memchr(s->str, ' ', s->len)) {
        *why = "bad stream id";
        return -1;
    }
    memcpy(sid, s->str, s->len);
    sid[s->len] = 0;
    entry_fields_t f;
    if ((*why = find_fields(e->element[1], &f)) || (*why = entry_to_event(&f, out)))
        return -1;
    return 0;
}

/* ---- state and its log lines ---------------------------------------------------------- */

/* Logs the combined state when it changes: up only when both connections
 * work. One line per change, never one per attempt. */
static void state_changed(backplane_t *b, const char *why)
{
    int up = atomic_load(&b->pub_up) && atomic_load(&b->read_up);
    pthread_mutex_lock(&b->state_lock);
    if (up != b->reported) {
        if (up)
            log_info("backplane: %s redis %s:%d stream %s%s", b->ever_up ? "reconnected to" : "connected to",
                     b->url.host, b->url.port, b->key,
                     b->ever_up ? "; reading on after the last entry seen" : "");
        else if (b->reported == 1)
            log_warn("backplane: lost redis %s:%d (%s): subscribers are still served, publishes get 503; "
                     "reconnecting",
                     b->url.host, b->url.port, why ? why : "?");
        else
            log_warn("backplane: redis %s:%d unreachable (%s): subscribers are served, publishes get 503 "
                     "until it answers; retrying",
                     b->url.host, b->url.port, why ? why : "?");
        b->ever_up |= up;
        b->reported = up;
    }
    pthread_mutex_unlock(&b->state_lock);
}

/* ---- connections ---------------------------------------------------------------------- */

static struct timeval tv_ms(int ms) { return (struct timeval){ms / 1000, (ms % 1000) * 1000}; }

/* Sends one command built from argv; returns the reply or NULL (I/O error,
 * c->errstr says why). */
static redisReply *command(redisContext *c, int argc, const char **argv)
{
    return redisCommandArgv(c, argc, argv, NULL);
}

static int reply_ok(redisReply *r)
{
    int ok = r && r->type != REDIS_REPLY_ERROR;
    if (r)
        freeReplyObject(r);
    return ok;
}

/* Connects, authenticates and selects the database. Returns the context
 * or NULL with a reason in `why` (static or in `buf`). */
static redisContext *connect_redis(backplane_t *b, char *buf, size_t cap, const char **why)
{
    redisContext *c = redisConnectWithTimeout(b->url.host, b->url.port, tv_ms(BP_CONNECT_TIMEOUT_MS));
    if (!c || c->err) {
        snprintf(buf, cap, "%s", c ? c->errstr : "out of memory");
        *why = buf;
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv_ms(BP_COMMAND_TIMEOUT_MS));
    char db[16];
    snprintf(db, sizeof(db), "%d", b->url.db);
    const char *auth1[] = {"AUTH", b->url.pass}, *auth2[] = {"AUTH", b->url.user, b->url.pass};
    const char *sel[] = {"SELECT", db};
    if (b->url.pass[0] && !reply_ok(b->url.user[0] ? command(c, 3, auth2) : command(c, 2, auth1))) {
        *why = "AUTH failed";
    } else if (b->url.db && !reply_ok(command(c, 2, sel))) {
        *why = "SELECT failed";
    } else {
        return c;
    }
    if (c->err) {
        snprintf(buf, cap, "%s", c->errstr);
        *why = buf;
    }
    redisFree(c);
    return NULL;
}

/* ---- loading history ------------------------------------------------------------------ */

/* XREVRANGE KEY + - COUNT history: the newest entries, newest first; they
 * go to the hub oldest first. The reader continues after the newest. */
static int load_history(backplane_t *b, redisContext *c, char *buf, size_t cap, const char **why)
{
    char count[24];
    snprintf(count, sizeof(count), "%ld", b->history > 0 ? b->history : 1);
    const char *argv[] = {"XREVRANGE", b->key, "+", "-", "COUNT", count};
    redisReply *r = command(c, 6, argv);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        snprintf(buf, cap, "XREVRANGE: %s",
                 !r                             ? c->errstr
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "unexpected reply");
        *why = buf;
        if (r)
            freeReplyObject(r);
        return -1;
    }
    snprintf(b->last_sid, sizeof(b->last_sid), "0-0");
    long loaded = 0, bad = 0;
    for (size_t i = r->elements; i-- > 0;) {
        evbuf_t *ev;
        char sid[BP_SID_MAX];
        const char *bad_why;
        int rc = backplane__parse_entry(r->element[i], &ev, sid, sizeof(sid), &bad_why);
        if (sid[0])
            snprintf(b->last_sid, sizeof(b->last_sid), "%s", sid);
        if (rc) {
            bad++;
            continue;
        }
        if (b->history > 0) {
            hub_load(b->hub, ev);
            loaded++;
            b->loaded_n++;
        } else {
            evbuf_unref(ev);
        }
    }
    freeReplyObject(r);
    atomic_fetch_add(&b->bad, (unsigned long)bad);
    log_info("backplane: %ld events of history loaded from redis stream %s%s%s, reading after %s", loaded,
             b->key, bad ? " (entries skipped: not courant events: " : "", bad ? "some)" : "", b->last_sid);
    b->loaded = 1;
    atomic_store(&b->history_ready, 1);
    return 0;
}

/* ---- sleeping: woken early by stop ---------------------------------------------------- */

/* Waits up to `ms` or until stop. Returns 1 if stopping. */
static int nap(backplane_t *b, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&b->lock);
    while (!b->stopping && pthread_cond_timedwait(&b->wake, &b->lock, &ts) != ETIMEDOUT)
        ;
    int stop = b->stopping;
    pthread_mutex_unlock(&b->lock);
    return stop;
}

static int next_backoff(int ms) { return ms * 2 > BP_BACKOFF_MAX_MS ? BP_BACKOFF_MAX_MS : ms * 2; }

/* ---- the publish side, on the journal thread -------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Appends one XADD to the connection's output buffer (nothing is sent yet). */
static int append_xadd(backplane_t *b, const evbuf_t *ev)
{
    size_t tlen;
    if (wire_join_topics(ev, &b->scratch, &b->scratch_cap, &tlen))
        return -1;
    char ms[24];
    snprintf(ms, sizeof(ms), "%lld", (long long)ev->published_ms);
    const char *argv[] = {"XADD", b->key, "MAXLEN", "~",        b->maxlen, "*",
                          "id",   ev->id, "topics", b->scratch, "private", ev->is_private ? "1" : "0",
                          "ms",   ms,     "wire",   ev->bytes};
    size_t lens[] = {4, strlen(b->key), 6, 1,      strlen(b->maxlen), 1, 2, ev->id_len, 6, tlen, 7, 1,
                     2, strlen(ms),     4, ev->len};
    return redisAppendCommandArgv(b->pub, 16, argv, lens) == REDIS_OK ? 0 : -1;
}

/* Sends the group in one pipeline and sets each event's outcome from its
 * XADD reply. Returns -1 if the connection broke (every answer not read is
 * then unknown, so 503). */
static int send_group(backplane_t *b, evbuf_t *const *evs, size_t n, int *ok)
{
    size_t appended = 0;
    while (appended < n && append_xadd(b, evs[appended]) == 0)
        appended++;
    int broken = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (i < appended && !broken && redisGetReply(b->pub, (void **)&r) != REDIS_OK)
            broken = 1;
        ok[i] = r && r->type == REDIS_REPLY_STRING;
        if (r && !ok[i] && i == 0)
            log_warn("backplane: XADD refused: %s",
                     r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        if (r)
            freeReplyObject(r);
    }
    if (appended < n && !broken)
        log_warn("backplane: out of memory building XADD commands: %zu publishes get 503", n - appended);
    return broken ? -1 : 0;
}

/* The publish connection broke: free it; the next idle call reconnects at
 * once, then backs off. */
static void pub_lost(backplane_t *b)
{
    char why[160];
    snprintf(why, sizeof(why), "%s", b->pub->errstr[0] ? b->pub->errstr : "connection closed");
    redisFree(b->pub);
    b->pub = NULL;
    b->pub_backoff_ms = BP_BACKOFF_MIN_MS;
    b->pub_retry_at = mono_ms();
    atomic_store(&b->pub_up, 0);
    state_changed(b, why);
}

/* ms until the next connect try, while disconnected. */
static int until_retry(const backplane_t *b)
{
    int64_t left = b->pub_retry_at - mono_ms();
    return left > 0 ? (int)left : 0;
}

/* journal_backend_t.commit_group. While disconnected the group fails at
 * once (submits are refused then, but some may have slipped in just
 * before the loss): nothing waits for Redis. */
static int bp_commit(void *self, evbuf_t *const *evs, size_t n, int *ok)
{
    backplane_t *b = self;
    if (!b->pub)
        return until_retry(b); /* ok[] stays 0 */
    if (send_group(b, evs, n, ok)) {
        pub_lost(b);
        return 0;
    }
    return BP_PING_IDLE_MS;
}

/* journal_backend_t.idle: connected, PING (so an outage is seen without a
 * publish); not connected, one connect try once its backoff is over. */
static int bp_idle(void *self)
{
    backplane_t *b = self;
    if (b->pub) {
        const char *ping[] = {"PING"};
        redisReply *r = command(b->pub, 1, ping);
        if (r) {
            freeReplyObject(r);
            return BP_PING_IDLE_MS;
        }
        pub_lost(b);
    }
    if (until_retry(b) > 0)
        return until_retry(b);
    char buf[256];
    const char *why;
    if (!(b->pub = connect_redis(b, buf, sizeof(buf), &why))) {
        state_changed(b, why);
        b->pub_retry_at = mono_ms() + b->pub_backoff_ms;
        b->pub_backoff_ms = next_backoff(b->pub_backoff_ms);
        return until_retry(b);
    }
    b->pub_backoff_ms = BP_BACKOFF_MIN_MS;
    atomic_store(&b->pub_up, 1);
    state_changed(b, NULL);
    return BP_PING_IDLE_MS;
}

/* journal_backend_t.refuses: not connected, 503 now, never a publish that
 * waits for Redis. */
static const char *bp_refuses(void *self)
{
    backplane_t *b = self;
    if (!atomic_load(&b->history_ready))
        return "this node has not loaded its history from redis yet, so nothing was published; retry later";
    return atomic_load(&b->pub_up) ? NULL : "redis is unreachable, so nothing was published; retry later";
}

/* ---- the reader thread ---------------------------------------------------------------- */

/* Hands every entry of an XREAD reply to the hub, in stream order. Returns
 * -1 if the reply is not an XREAD reply. */
static int deliver(backplane_t *b, const redisReply *r)
{
    if (r->type == REDIS_REPLY_NIL)
        return 0; /* BLOCK timed out: nothing new */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 || r->element[0]->type != REDIS_REPLY_ARRAY ||
        r->element[0]->elements != 2 || r->element[0]->element[1]->type != REDIS_REPLY_ARRAY)
        return -1;
    const redisReply *entries = r->element[0]->element[1];
    for (size_t i = 0; i < entries->elements; i++) {
        evbuf_t *ev;
        char sid[BP_SID_MAX];
        const char *why;
        int rc = backplane__parse_entry(entries->element[i], &ev, sid, sizeof(sid), &why);
        if (sid[0])
            memcpy(b->last_sid, sid, sizeof(sid));
        if (rc) {
            if (atomic_fetch_add(&b->bad, 1) == 0 || !sid[0])
                log_warn("backplane: skipped stream entry %s: %s", sid[0] ? sid : "(no id)", why);
            if (!sid[0])
                return -1; /* cannot move past it: reconnect and read again */
            continue;
        }
        atomic_fetch_add(&b->xread, 1);
        hub_publish(b->hub, ev);
    }
    return 0;
}

/* "ms-seq" to a comparable pair; 0 on success. */
static int parse_sid(const char *s, uint64_t *ms, uint64_t *seq)
{
    char *end;
    errno = 0;
    *ms = strtoull(s, &end, 10);
    if (errno || end == s || *end != '-')
        return -1;
    const char *q = end + 1;
    *seq = strtoull(q, &end, 10);
    return errno || end == q || *end ? -1 : 0;
}

/* After a reconnect: if the stream's oldest entry is newer than the last
 * one this node saw, entries in between may be gone (trimmed by MAXLEN
 * while this node could not read, or Redis lost its data): say so once per
 * reconnect, since subscribers on this node may miss them. */
static void check_continuity(backplane_t *b)
{
    uint64_t lm, ls, fm, fs;
    if (parse_sid(b->last_sid, &lm, &ls) || (lm == 0 && ls == 0))
        return;
    const char *argv[] = {"XRANGE", b->key, "-", "+", "COUNT", "1"};
    redisReply *r = command(b->rd, 6, argv);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 2 && r->element[0]->element[0]->type == REDIS_REPLY_STRING &&
        parse_sid(r->element[0]->element[0]->str, &fm, &fs) == 0 && (fm > lm || (fm == lm && fs > ls + 1)))
        log_warn("backplane: the stream's oldest entry is %s, this node last read %s: entries in between may "
                 "have been trimmed (--history) or lost by Redis, and were not delivered here",
                 r->element[0]->element[0]->str, b->last_sid);
    else if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 0)
        log_warn("backplane: the stream is empty, this node last read %s: Redis lost its data (run it with "
                 "appendonly yes); acknowledged events this node had not read yet, if any, are lost",
                 b->last_sid);
    if (r)
        freeReplyObject(r);
}

static void read_lost(backplane_t *b, const char *reason)
{
    char why[160]; /* the reason may be the context's own errstr: copy it first */
    snprintf(why, sizeof(why), "%s", reason);
    redisFree(b->rd);
    b->rd = NULL;
    atomic_store(&b->read_up, 0);
    state_changed(b, why);
}

static void *read_main(void *arg)
{
    backplane_t *b = arg;
    log_set_thread_name("bp-read");
    int backoff = BP_BACKOFF_MIN_MS;
    char block[16], count[16];
    snprintf(block, sizeof(block), "%d", BP_BLOCK_MS);
    snprintf(count, sizeof(count), "%d", BP_READ_COUNT);
    for (;;) {
        pthread_mutex_lock(&b->lock);
        int stop = b->stopping;
        pthread_mutex_unlock(&b->lock);
        if (stop)
            break;
        if (!b->rd) {
            char buf[256];
            const char *why;
            int was_loaded = b->loaded;
            if (!(b->rd = connect_redis(b, buf, sizeof(buf), &why)) ||
                (!b->loaded && load_history(b, b->rd, buf, sizeof(buf), &why))) {
                if (b->rd) {
                    redisFree(b->rd);
                    b->rd = NULL;
                }
                state_changed(b, why);
                if (nap(b, backoff))
                    break;
                backoff = next_backoff(backoff);
                continue;
            }
            backoff = BP_BACKOFF_MIN_MS;
            if (was_loaded)
                check_continuity(b);
            atomic_store(&b->read_up, 1);
            state_changed(b, NULL);
        }
        const char *argv[] = {"XREAD", "COUNT", count, "BLOCK", block, "STREAMS", b->key, b->last_sid};
        redisReply *r = command(b->rd, 8, argv);
        if (!r) {
            read_lost(b, b->rd->errstr[0] ? b->rd->errstr : "connection closed");
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR || deliver(b, r)) {
            log_warn("backplane: XREAD: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            freeReplyObject(r);
            read_lost(b, "XREAD failed");
            nap(b, backoff);
            backoff = next_backoff(backoff);
            continue;
        }
        freeReplyObject(r);
    }
    return NULL;
}

/* ---- the journal's view of the backplane ------------------------------------------------- */

/* journal_backend_t.load: one try now, so that a reachable Redis's history
 * is in the hub before the first subscriber arrives; an unreachable one is
 * the threads' job. Never fails: courant serves subscribers meanwhile. */
static long bp_load(void *self, hub_t *hub, char *reason, size_t cap)
{
    backplane_t *b = self;
    (void)reason;
    (void)cap;
    b->hub = hub;
    char buf[256];
    const char *why = NULL;
    if ((b->rd = connect_redis(b, buf, sizeof(buf), &why)) &&
        load_history(b, b->rd, buf, sizeof(buf), &why) == 0 &&
        (b->pub = connect_redis(b, buf, sizeof(buf), &why))) {
        atomic_store(&b->read_up, 1);
        atomic_store(&b->pub_up, 1);
        state_changed(b, NULL);
        return b->loaded_n;
    }
    redisFree(b->rd);
    b->rd = NULL;
    state_changed(b, why);
    return 0;
}

/* journal_backend_t.start: the reader thread (the journal's thread is the
 * publish side). */
static int bp_start(void *self, hub_t *hub)
{
    backplane_t *b = self;
    b->hub = hub;
    int r = pthread_create(&b->read_thread, NULL, read_main, b);
    if (r) {
        log_error("cannot start the backplane reader thread: %s", strerror(r));
        return -1;
    }
    b->read_started = 1;
    return 0;
}

/* journal_backend_t.stop: after the journal thread sent what was queued. */
static void bp_stop(void *self)
{
    backplane_t *b = self;
    pthread_mutex_lock(&b->lock);
    b->stopping = 1;
    pthread_cond_broadcast(&b->wake);
    pthread_mutex_unlock(&b->lock);
    if (b->read_started)
        pthread_join(b->read_thread, NULL);
    b->read_started = 0;
}

static void backplane_free(backplane_t *b)
{
    if (!b)
        return;
    assert(!b->read_started);
    redisFree(b->pub);
    redisFree(b->rd);
    free(b->scratch);
    free(b->key);
    pthread_cond_destroy(&b->wake);
    pthread_mutex_destroy(&b->lock);
    pthread_mutex_destroy(&b->state_lock);
    free(b);
}

static void bp_free(void *self) { backplane_free(self); }

static void bp_stats(void *self, journal_stats_t *out)
{
    backplane_t *b = self;
    out->up = atomic_load(&b->pub_up) && atomic_load(&b->read_up);
    out->read_back = atomic_load(&b->xread);
    out->bad_records = atomic_load(&b->bad);
}

static const journal_backend_t redis_backend = {
    .name = "redis",
    .thread_name = "bp-pub",
    .publishes = 0, /* the reader hands every node the stream's order, its own publishes included */
    .busy_reason = "too many publishes wait for redis, so nothing was published; retry later",
    .failed_reason = "redis did not confirm the event (it may or may not be published); retry later",
    .load = bp_load,
    .start = bp_start,
    .refuses = bp_refuses,
    .commit_group = bp_commit,
    .idle = bp_idle,
    .stats = bp_stats,
    .stop = bp_stop,
    .free = bp_free,
};

journal_t *backplane_open(const char *url, const char *key, long history, hub_t *hub, char *reason,
                          size_t cap)
{
    backplane_t *b = calloc(1, sizeof(*b));
    const char *why = NULL;
    if (!b) {
        snprintf(reason, cap, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&b->lock, NULL);
    pthread_mutex_init(&b->state_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->wake, &ca);
    pthread_condattr_destroy(&ca);
    b->reported = -1;
    b->hub = hub;
    b->history = history;
    b->pub_backoff_ms = BP_BACKOFF_MIN_MS;
    snprintf(b->maxlen, sizeof(b->maxlen), "%ld",
             history > BACKPLANE_MIN_MAXLEN ? history : BACKPLANE_MIN_MAXLEN);
    if (backplane__parse_url(url, &b->url, &why)) {
        snprintf(reason, cap, "%s", why);
        backplane_free(b);
        return NULL;
    }
    if (!(b->key = strdup(key))) {
        snprintf(reason, cap, "out of memory");
        backplane_free(b);
        return NULL;
    }
    journal_t *j = journal_new(&redis_backend, b, hub);
    if (!j)
        snprintf(reason, cap, "out of memory");
    return j;
}
