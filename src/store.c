/*
 * store.c - see store.h for the design: SQLite in WAL mode, one store
 * thread, group commits, fan-out after commit.
 *
 * Why SQLite and not LMDB (both are Debian packages; bench/store/ measures
 * them, README.md has the numbers): a WAL commit costs one fsync where
 * LMDB's costs two (data pages, then the meta page), which wins at the
 * small groups a hub mostly sees; a file of garbage is reported as "not a
 * database" instead of being mapped; a full disk is an error code, not a
 * map that must be sized in advance; its exclusive locking mode refuses a
 * second courant by itself; and `sqlite3 FILE .backup` is a safe online
 * backup that every admin already has.
 *
 *   queue (under lock)            the store thread's group
 *   +-----+-----+-----+           +-----+-----+-----+-----+
 *   | p0  | p1  | ... |  --swap-> | p0  | p1  | ... | pn  |  BEGIN .. COMMIT
 *   +-----+-----+-----+           +-----+-----+-----+-----+
 *   pending: ev (owns one ref), done + ctx + token (the completion)
 */
#include "store.h"

#include "log.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STORE_IDLE_WAKE_MS 1000   /* retention runs at least this often */
#define STORE_IDLE_TRIM_STEP 4096 /* rows deleted at most per idle step */
#define STORE_TRIM_SLACK 64       /* rows deleted per group beyond 2 per insert */
#define STORE_WAL_LIMIT (4 << 20) /* WAL file truncated to this after checkpoints */
#define STORE_VACUUM_PAGES 256    /* free pages given back per idle step */

typedef struct pending {
    evbuf_t *ev;        /* owns one reference */
    store_done_cb done; /* NULL: nobody waits */
    void *ctx;          /* borrows: passed to done */
    uint64_t token;
} pending_t;

struct store {
    sqlite3 *db;              /* owns; main thread until store_start, then the store thread */
    sqlite3_stmt *ins;        /* owns: INSERT one event */
    sqlite3_stmt *trim_count; /* owns: DELETE the oldest rows past --history */
    sqlite3_stmt *trim_age;   /* owns: DELETE the oldest rows past --history-age */
    sqlite3_stmt *oldest;     /* owns: published_ms of the oldest row */
    hub_t *hub;               /* borrows: set by store_start */
    char *path;               /* owns: the file, for backups and log lines */
    long history;             /* rows kept at most */
    int64_t max_age_ms;       /* 0 = no age limit */
    int64_t last_seq;         /* store thread: seq of the newest row */
    int64_t rows;             /* store thread: rows in the table */
    char *scratch;            /* owns: store thread, the joined topics of one event */
    size_t scratch_cap;

    pthread_t thread;
    int started;          /* main thread: the thread runs */
    pthread_mutex_t lock; /* guards queue, len, cap, stopping */
    pthread_cond_t wake;  /* signalled when the queue goes non-empty or on stop */
    pending_t *queue;     /* owns */
    size_t len, cap;
    int stopping;
    int backup_requested; /* SIGUSR1: copy the file at the next chance */

    atomic_ulong commits, events, failed, rows_seen;
    atomic_int healthy;
};

int store_parse_sync(const char *v, store_sync_t *out)
{
    if (!strcmp(v, "full"))
        *out = STORE_SYNC_FULL;
    else if (!strcmp(v, "normal"))
        *out = STORE_SYNC_NORMAL;
    else if (!strcmp(v, "off"))
        *out = STORE_SYNC_OFF;
    else
        return -1;
    return 0;
}

static int64_t realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes "what: sqlite's message (the OS error)" into the reason buffer. */
static void set_reason(store_t *s, char *buf, size_t cap, const char *what)
{
    int sys = s->db ? sqlite3_system_errno(s->db) : 0;
    const char *msg = s->db ? sqlite3_errmsg(s->db) : "out of memory";
    if (sys)
        snprintf(buf, cap, "%s: %s (%s)", what, msg, strerror(sys));
    else
        snprintf(buf, cap, "%s: %s", what, msg);
}

static int exec(store_t *s, const char *sql)
{
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* Runs a one-row statement and copies its first column as text. */
static int query_text(store_t *s, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, cap, "%s", t ? (const char *)t : "");
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

static int64_t query_int(store_t *s, const char *sql)
{
    char buf[32];
    return query_text(s, sql, buf, sizeof(buf)) ? -1 : strtoll(buf, NULL, 10);
}

static const char *const sync_pragma[] = {
    [STORE_SYNC_FULL] = "PRAGMA synchronous=FULL",
    [STORE_SYNC_NORMAL] = "PRAGMA synchronous=NORMAL",
    [STORE_SYNC_OFF] = "PRAGMA synchronous=OFF",
};

/* Settings that must come before the first write. auto_vacuum only takes on
 * a new file; journal_mode=WAL is the first statement that reads the file,
 * so it is where garbage ("not a database") and another process's lock
 * ("database is locked") show up. */
static int configure(store_t *s, store_sync_t sync, char *reason, size_t cap)
{
    char mode[16] = "";
    if (exec(s, "PRAGMA locking_mode=EXCLUSIVE") || exec(s, "PRAGMA auto_vacuum=INCREMENTAL") ||
        query_text(s, "PRAGMA journal_mode=WAL", mode, sizeof(mode))) {
        if (sqlite3_errcode(s->db) == SQLITE_BUSY)
            snprintf(reason, cap, "it is in use by another process (database is locked)");
        else
            set_reason(s, reason, cap, "cannot set it up");
        return -1;
    }
    if (strcmp(mode, "wal") != 0) {
        snprintf(reason, cap, "cannot switch it to WAL mode (got \"%s\"): is the directory writable?", mode);
        return -1;
    }
    char limit[64];
    snprintf(limit, sizeof(limit), "PRAGMA journal_size_limit=%d", STORE_WAL_LIMIT);
    if (exec(s, sync_pragma[sync]) || exec(s, limit)) {
        set_reason(s, reason, cap, "cannot configure it");
        return -1;
    }
    return 0;
}

/* Creates the table and writes one row, so a read-only file, a full disk or
 * a lock held elsewhere is found now, not at the first publish. */
static int prove_writable(store_t *s, char *reason, size_t cap)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "BEGIN IMMEDIATE;"
             "CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY, published_ms INTEGER NOT NULL,"
             " id TEXT NOT NULL, topics TEXT NOT NULL, private INTEGER NOT NULL, wire BLOB NOT NULL);"
             "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v);"
             "INSERT OR REPLACE INTO meta(k, v) VALUES ('opened_ms', %lld);"
             "COMMIT;",
             (long long)realtime_ms());
    if (exec(s, sql) == 0)
        return 0;
    if (sqlite3_errcode(s->db) == SQLITE_BUSY)
        snprintf(reason, cap, "it is in use by another process (database is locked)");
    else
        set_reason(s, reason, cap, "cannot write to it");
    if (!sqlite3_get_autocommit(s->db))
        exec(s, "ROLLBACK");
    return -1;
}

static int check_integrity(store_t *s, char *reason, size_t cap)
{
    char res[200] = "";
    if (query_text(s, "PRAGMA quick_check", res, sizeof(res))) {
        set_reason(s, reason, cap, "cannot check it");
        return -1;
    }
    if (strcmp(res, "ok") != 0) {
        snprintf(reason, cap, "it is damaged (quick_check: %s)", res);
        return -1;
    }
    return 0;
}

static int prepare_all(store_t *s)
{
    return sqlite3_prepare_v2(s->db,
                              "INSERT INTO events(published_ms, id, topics, private, wire)"
                              " VALUES (?1, ?2, ?3, ?4, ?5)",
                              -1, &s->ins, NULL) != SQLITE_OK ||
                   sqlite3_prepare_v2(s->db,
                                      "DELETE FROM events WHERE seq IN"
                                      " (SELECT seq FROM events WHERE seq <= ?1 ORDER BY seq LIMIT ?2)",
                                      -1, &s->trim_count, NULL) != SQLITE_OK ||
                   /* Only the ?2 oldest rows are looked at, so a step is bounded
            * even if published_ms is not monotonic (a clock step). */
                   sqlite3_prepare_v2(s->db,
                                      "DELETE FROM events WHERE seq IN"
                                      " (SELECT seq FROM events ORDER BY seq LIMIT ?2) AND published_ms < ?1",
                                      -1, &s->trim_age, NULL) != SQLITE_OK ||
                   sqlite3_prepare_v2(s->db, "SELECT published_ms FROM events ORDER BY seq LIMIT 1", -1,
                                      &s->oldest, NULL) != SQLITE_OK
               ? -1
               : 0;
}

store_t *store_open(const char *path, store_sync_t sync, long history, int history_age_s, char *reason,
                    size_t cap)
{
    store_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(reason, cap, "out of memory");
        return NULL;
    }
    s->history = history;
    s->max_age_ms = (int64_t)history_age_s * 1000;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&s->healthy, 1);
    if (!(s->path = strdup(path))) {
        snprintf(reason, cap, "out of memory");
        goto fail;
    }
    int rc =
        sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        set_reason(s, reason, cap, "cannot open it");
        goto fail;
    }
    /* SQLite quietly falls back to read-only when it cannot open the file
     * for writing (permissions, a read-only mount): say so plainly. */
    if (sqlite3_db_readonly(s->db, "main") == 1) {
        snprintf(reason, cap, "it is read-only (file permissions, or a read-only file system)");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 0); /* a lock held elsewhere is an answer, not a wait */
    if (configure(s, sync, reason, cap) || prove_writable(s, reason, cap) || check_integrity(s, reason, cap))
        goto fail;
    if (prepare_all(s)) {
        set_reason(s, reason, cap, "cannot prepare its statements");
        goto fail;
    }
    s->last_seq = query_int(s, "SELECT coalesce(max(seq), 0) FROM events");
    s->rows = query_int(s, "SELECT count(*) FROM events");
    if (s->last_seq < 0 || s->rows < 0) {
        set_reason(s, reason, cap, "cannot read it");
        goto fail;
    }
    atomic_store(&s->rows_seen, (unsigned long)s->rows);
    return s;
fail:
    store_free(s);
    return NULL;
}

/* ---- loading ----------------------------------------------------------------- */

/* Splits "a\nb\nc" into topic pointers into `t` (which it modifies). */
static size_t split_topics(char *t, const char **topics, size_t *lens)
{
    size_t n = 0;
    for (char *p = t; n < EVBUF_MAX_TOPICS;) {
        char *nl = strchr(p, '\n');
        topics[n] = p;
        lens[n++] = nl ? (size_t)(nl - p) : strlen(p);
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

/* Rebuilds one event from a row: id, topics, private, wire bytes. */
static evbuf_t *row_to_event(sqlite3_stmt *st)
{
    const char *id = (const char *)sqlite3_column_text(st, 1);
    const char *tj = (const char *)sqlite3_column_text(st, 2);
    const void *wire = sqlite3_column_blob(st, 4);
    size_t wire_len = (size_t)sqlite3_column_bytes(st, 4);
    if (!id || !tj || !wire)
        return NULL;
    char *t = strdup(tj);
    if (!t)
        return NULL;
    const char *topics[EVBUF_MAX_TOPICS];
    size_t lens[EVBUF_MAX_TOPICS];
    evbuf_spec_t spec = {
        .id = id,
        .id_len = strlen(id),
        .wire = wire,
        .wire_len = wire_len,
        .published_ms = sqlite3_column_int64(st, 0),
        .topics = topics,
        .topic_lens = lens,
        .num_topics = split_topics(t, topics, lens),
        .is_private = sqlite3_column_int(st, 3),
        .retry = -1,
    };
    evbuf_t *ev = evbuf_try_new(&spec);
    free(t);
    return ev;
}

long store_load(store_t *s, store_load_cb cb, void *ctx, char *reason, size_t cap)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT published_ms, id, topics, private, wire FROM"
                           " (SELECT * FROM events WHERE published_ms >= ?1 ORDER BY seq DESC LIMIT ?2)"
                           " ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK) {
        set_reason(s, reason, cap, "cannot read its history");
        return -1;
    }
    sqlite3_bind_int64(st, 1, s->max_age_ms ? realtime_ms() - s->max_age_ms : INT64_MIN);
    sqlite3_bind_int64(st, 2, s->history);
    long n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        evbuf_t *ev = row_to_event(st);
        if (!ev) {
            snprintf(reason, cap, "cannot rebuild an event of its history (damaged row, or out of memory)");
            sqlite3_finalize(st);
            return -1;
        }
        cb(ctx, ev);
        n++;
    }
    if (rc != SQLITE_DONE) {
        set_reason(s, reason, cap, "cannot read its history");
        n = -1;
    }
    sqlite3_finalize(st);
    return n;
}

/* ---- the store thread: one group ------------------------------------------------ */

/* Joins the event's topics with '\n' into s->scratch. */
static const char *join_topics(store_t *s, const evbuf_t *ev, size_t *len)
{
    size_t need = 1;
    for (unsigned i = 0; i < ev->num_topics; i++)
        need += ev->topic_lens[i] + 1;
    if (need > s->scratch_cap) {
        char *n = realloc(s->scratch, need);
        if (!n)
            return NULL;
        s->scratch = n;
        s->scratch_cap = need;
    }
    size_t k = 0;
    for (unsigned i = 0; i < ev->num_topics; i++) {
        if (i)
            s->scratch[k++] = '\n';
        memcpy(s->scratch + k, ev->topics[i], ev->topic_lens[i]);
        k += ev->topic_lens[i];
    }
    *len = k;
    return s->scratch;
}

static int insert_event(store_t *s, const evbuf_t *ev)
{
    size_t tlen;
    const char *topics = join_topics(s, ev, &tlen);
    if (!topics)
        return -1;
    sqlite3_bind_int64(s->ins, 1, ev->published_ms);
    sqlite3_bind_text(s->ins, 2, ev->id, (int)ev->id_len, SQLITE_STATIC);
    sqlite3_bind_text(s->ins, 3, topics, (int)tlen, SQLITE_STATIC);
    sqlite3_bind_int(s->ins, 4, ev->is_private);
    sqlite3_bind_blob(s->ins, 5, ev->bytes, (int)ev->len, SQLITE_STATIC);
    int rc = sqlite3_step(s->ins);
    sqlite3_reset(s->ins);
    sqlite3_clear_bindings(s->ins);
    if (rc != SQLITE_DONE)
        return -1;
    s->last_seq = sqlite3_last_insert_rowid(s->db);
    s->rows++;
    return 0;
}

static int run_delete(store_t *s, sqlite3_stmt *st, int64_t bound, long limit)
{
    sqlite3_bind_int64(st, 1, bound);
    sqlite3_bind_int64(st, 2, limit);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -1;
    s->rows -= sqlite3_changes(s->db);
    return 0;
}

/* Deletes at most `limit` rows past the count limit and `limit` past the
 * age limit, oldest first: retention catches up over a few groups instead
 * of stalling one. Inside the caller's transaction. */
static int trim_step(store_t *s, long limit)
{
    if (s->rows > s->history && run_delete(s, s->trim_count, s->last_seq - s->history, limit))
        return -1;
    if (s->max_age_ms && s->rows > 0 && run_delete(s, s->trim_age, realtime_ms() - s->max_age_ms, limit))
        return -1;
    return 0;
}

static int commit_group(store_t *s, pending_t *batch, size_t n)
{
    int64_t last_seq = s->last_seq, rows = s->rows;
    int ok = exec(s, "BEGIN IMMEDIATE") == 0;
    for (size_t i = 0; ok && i < n; i++)
        ok = insert_event(s, batch[i].ev) == 0;
    ok = ok && trim_step(s, (long)(2 * n + STORE_TRIM_SLACK)) == 0;
    ok = ok && exec(s, "COMMIT") == 0;
    if (ok)
        return 0;
    /* A failed COMMIT (disk full, I/O error) may leave the transaction
     * open: roll it back so the next group starts clean. */
    int code = sqlite3_extended_errcode(s->db);
    int sys = sqlite3_system_errno(s->db);
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", sqlite3_errmsg(s->db));
    if (!sqlite3_get_autocommit(s->db))
        exec(s, "ROLLBACK");
    s->last_seq = last_seq;
    s->rows = rows;
    if (atomic_exchange(&s->healthy, 0))
        log_warn(
            "store: commit of %zu events failed: %s%s%s (code %d); publishes get 503 until it works again", n,
            msg, sys ? ", " : "", sys ? strerror(sys) : "", code);
    return -1;
}

/* Commits one group, then publishes and completes every event in it. */
static void process_group(store_t *s, pending_t *batch, size_t n)
{
    int ok = commit_group(s, batch, n) == 0;
    if (ok) {
        if (!atomic_exchange(&s->healthy, 1))
            log_info("store: commits work again");
        atomic_fetch_add(&s->commits, 1);
        atomic_fetch_add(&s->events, n);
        atomic_store(&s->rows_seen, (unsigned long)s->rows);
        /* Fan-out strictly after COMMIT, in commit order. */
        for (size_t i = 0; i < n; i++) {
            evbuf_ref(batch[i].ev);
            hub_publish(s->hub, batch[i].ev);
        }
    } else {
        atomic_fetch_add(&s->failed, n);
    }
    for (size_t i = 0; i < n; i++) {
        if (batch[i].done)
            batch[i].done(batch[i].ctx, batch[i].token, batch[i].ev, ok);
        evbuf_unref(batch[i].ev);
    }
}

/* No publishes for a while: apply the age limit and give free pages back. */
static void idle_step(store_t *s)
{
    int need = s->rows > s->history;
    if (!need && s->max_age_ms && s->rows > 0) {
        need = sqlite3_step(s->oldest) == SQLITE_ROW &&
               sqlite3_column_int64(s->oldest, 0) < realtime_ms() - s->max_age_ms;
        sqlite3_reset(s->oldest);
    }
    if (!need)
        return;
    int64_t rows = s->rows;
    if (exec(s, "BEGIN IMMEDIATE") || trim_step(s, STORE_IDLE_TRIM_STEP) || exec(s, "COMMIT")) {
        if (!sqlite3_get_autocommit(s->db))
            exec(s, "ROLLBACK");
        s->rows = rows;
        log_debug("store: retention step failed: %s", sqlite3_errmsg(s->db));
        return;
    }
    atomic_store(&s->rows_seen, (unsigned long)s->rows);
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%d)", STORE_VACUUM_PAGES);
    exec(s, sql); /* best effort: freed pages are reused anyway */
}

/* Copies the committed state to PATH.backup (through a temporary file and
 * rename, so PATH.backup is always a complete copy). Store thread. */
static void backup(store_t *s)
{
    size_t n = strlen(s->path) + 16;
    char *tmp = malloc(n), *dst = malloc(n);
    sqlite3 *d = NULL;
    int rc = SQLITE_NOMEM;
    if (tmp && dst) {
        snprintf(tmp, n, "%s.backup.tmp", s->path);
        snprintf(dst, n, "%s.backup", s->path);
        unlink(tmp);
        rc = sqlite3_open_v2(tmp, &d, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    }
    if (rc == SQLITE_OK) {
        sqlite3_backup *b = sqlite3_backup_init(d, "main", s->db, "main");
        rc = b ? sqlite3_backup_step(b, -1) : sqlite3_errcode(d);
        if (b)
            sqlite3_backup_finish(b);
    }
    const char *why = rc == SQLITE_DONE ? NULL : d ? sqlite3_errmsg(d) : sqlite3_errstr(rc);
    char msg[256] = "";
    if (why)
        snprintf(msg, sizeof(msg), "%s", why);
    sqlite3_close(d);
    if (rc == SQLITE_DONE && rename(tmp, dst) != 0) {
        rc = SQLITE_IOERR;
        snprintf(msg, sizeof(msg), "rename: %s", strerror(errno));
    }
    if (rc == SQLITE_DONE) {
        log_info("store: backup written to %s", dst);
    } else {
        log_warn("store: backup of %s failed: %s", s->path, msg);
        if (tmp)
            unlink(tmp);
    }
    free(tmp);
    free(dst);
}

void store_request_backup(store_t *s)
{
    pthread_mutex_lock(&s->lock);
    s->backup_requested = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

static void *store_main(void *arg)
{
    store_t *s = arg;
    log_set_thread_name("store");
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (s->backup_requested) {
            s->backup_requested = 0;
            pthread_mutex_unlock(&s->lock);
            backup(s);
            pthread_mutex_lock(&s->lock);
            continue;
        }
        if (s->len == 0) {
            if (s->stopping)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += STORE_IDLE_WAKE_MS / 1000;
            if (pthread_cond_timedwait(&s->wake, &s->lock, &ts) == ETIMEDOUT && s->len == 0) {
                pthread_mutex_unlock(&s->lock);
                idle_step(s);
                pthread_mutex_lock(&s->lock);
            }
            continue;
        }
        pending_t *batch = s->queue;
        size_t n = s->len;
        s->queue = NULL;
        s->len = s->cap = 0;
        pthread_mutex_unlock(&s->lock);
        process_group(s, batch, n);
        free(batch);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int store_start(store_t *s, hub_t *hub)
{
    s->hub = hub;
    int r = pthread_create(&s->thread, NULL, store_main, s);
    if (r) {
        log_error("cannot start the store thread: %s", strerror(r));
        return -1;
    }
    s->started = 1;
    return 0;
}

int store_try_submit(store_t *s, evbuf_t *ev, store_done_cb done, void *ctx, uint64_t token)
{
    pthread_mutex_lock(&s->lock);
    if (s->stopping || s->len >= STORE_MAX_QUEUE) {
        pthread_mutex_unlock(&s->lock);
        return -1;
    }
    if (s->len == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        pending_t *n = realloc(s->queue, ncap * sizeof(*n));
        if (!n) {
            pthread_mutex_unlock(&s->lock);
            return -1;
        }
        s->queue = n;
        s->cap = ncap;
    }
    s->queue[s->len++] = (pending_t){ev, done, ctx, token};
    if (s->len == 1)
        pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void store_stop(store_t *s)
{
    if (!s || !s->started)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    s->started = 0;
}

void store_free(store_t *s)
{
    if (!s)
        return;
    assert(!s->started);
    for (size_t i = 0; i < s->len; i++) { /* only if never started */
        if (s->queue[i].done)
            s->queue[i].done(s->queue[i].ctx, s->queue[i].token, s->queue[i].ev, 0);
        evbuf_unref(s->queue[i].ev);
    }
    free(s->queue);
    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->trim_count);
    sqlite3_finalize(s->trim_age);
    sqlite3_finalize(s->oldest);
    sqlite3_close(s->db); /* also checkpoints the WAL and releases the lock */
    free(s->scratch);
    free(s->path);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void store_get_stats(store_t *s, store_stats_t *out)
{
    out->commits = atomic_load(&s->commits);
    out->events = atomic_load(&s->events);
    out->failed = atomic_load(&s->failed);
    out->rows = atomic_load(&s->rows_seen);
    out->healthy = atomic_load(&s->healthy);
}
