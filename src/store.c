/*
 * store.c - see store.h for the design: SQLite in WAL mode behind the
 * journal (journal.c runs the thread, groups and completes; this file
 * commits a group, loads, trims and backs up).
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
 *   the journal's group (borrowed)     the file
 *   +-----+-----+-----+-----+          BEGIN IMMEDIATE
 *   | e0  | e1  | ... | en  |  ------>  INSERT e0 .. en (seq = rowid)
 *   +-----+-----+-----+-----+          DELETE <= 2n + 64 oldest past retention
 *   ok[0..n] = 1 if COMMIT worked      COMMIT (fsync per --sync)
 */
#include "store.h"

#include "log.h"
#include "wire.h"

#include <assert.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
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

typedef struct store {
    sqlite3 *db;              /* owns; main thread until journal_start, then the journal thread */
    sqlite3_stmt *ins;        /* owns: INSERT one event */
    sqlite3_stmt *trim_count; /* owns: DELETE the oldest rows past --history */
    sqlite3_stmt *trim_age;   /* owns: DELETE the oldest rows past --history-age */
    sqlite3_stmt *oldest;     /* owns: published_ms of the oldest row */
    char *path;               /* owns: the file, for backups and log lines */
    store_sync_t sync;        /* --sync, for the start-up log line */
    long history;             /* rows kept at most */
    int64_t max_age_ms;       /* 0 = no age limit */
    int64_t last_seq;         /* journal thread: seq of the newest row */
    int64_t rows;             /* journal thread: rows in the table */
    char *scratch;            /* owns: journal thread, the joined topics of one event */
    size_t scratch_cap;       /* bytes at scratch */

    atomic_ulong rows_seen; /* rows after the last commit or trim, for /metrics */
    atomic_ulong bad_rows;  /* rows skipped at load: they fail wire_try_decode */
    atomic_int healthy;     /* the last commit succeeded */
} store_t;

static void close_file(store_t *s);

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

/* Opens and checks the file (store_open's work, without the journal). */
static store_t *open_file(const char *path, store_sync_t sync, long history, int history_age_s, char *reason,
                          size_t cap)
{
    store_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(reason, cap, "out of memory");
        return NULL;
    }
    s->sync = sync;
    s->history = history;
    s->max_age_ms = (int64_t)history_age_s * 1000;
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
    close_file(s);
    return NULL;
}

/* ---- loading ----------------------------------------------------------------- */

/* Reads column `col` of the current row as bytes. Returns 0, or -1 when
 * SQLite ran out of memory converting it (a NULL or empty value is not an
 * error: it comes back as "" and the record check refuses it). */
static int column_bytes(store_t *s, sqlite3_stmt *st, int col, int blob, const char **p, size_t *n)
{
    int type = sqlite3_column_type(st, col); /* before any conversion, which makes it undefined */
    const void *v = blob ? sqlite3_column_blob(st, col) : (const void *)sqlite3_column_text(st, col);
    *n = (size_t)sqlite3_column_bytes(st, col);
    if (!v && type != SQLITE_NULL && sqlite3_errcode(s->db) == SQLITE_NOMEM)
        return -1;
    *p = v ? v : "";
    if (!v)
        *n = 0;
    return 0;
}

/* Rebuilds one event from a row (published_ms, id, topics, private, wire),
 * with the same checks as a Redis entry (wire.h). Returns WIRE_OK,
 * WIRE_BAD or WIRE_NOMEM. */
static int row_to_event(store_t *s, sqlite3_stmt *st, evbuf_t **out, const char **why)
{
    /* What we write: integers for published_ms and private. Anything else
     * ("1" as text, a blob) is not our row. */
    int ints = sqlite3_column_type(st, 0) == SQLITE_INTEGER && sqlite3_column_type(st, 3) == SQLITE_INTEGER;
    wire_record_t r = {
        .published_ms = sqlite3_column_int64(st, 0),
        .is_private = sqlite3_column_int(st, 3),
    };
    if (!ints) {
        *out = NULL;
        *why = "published_ms or private is not an integer";
        return WIRE_BAD;
    }
    if (column_bytes(s, st, 1, 0, &r.id, &r.id_len) || column_bytes(s, st, 2, 0, &r.topics, &r.topics_len) ||
        column_bytes(s, st, 4, 1, &r.wire, &r.wire_len)) {
        *out = NULL;
        *why = "out of memory";
        return WIRE_NOMEM;
    }
    return wire_try_decode(&r, out, why);
}

/* Calls `cb` with each retained event (the last `history`, none older than
 * the age limit), oldest first; each event is new (refs = 1) and owned by
 * the callee. A row that is not a courant event is skipped, counted in
 * bad_rows and logged (the first one with its seq and reason). Main thread,
 * before journal_start. Returns the number loaded, or -1 with a reason (a
 * read error: the file is damaged; or out of memory). */
typedef void (*load_cb)(void *ctx, evbuf_t *ev);
static long load_rows(store_t *s, load_cb cb, void *ctx, char *reason, size_t cap)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT published_ms, id, topics, private, wire, seq FROM"
                           " (SELECT * FROM events WHERE published_ms >= ?1 ORDER BY seq DESC LIMIT ?2)"
                           " ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK) {
        set_reason(s, reason, cap, "cannot read its history");
        return -1;
    }
    sqlite3_bind_int64(st, 1, s->max_age_ms ? realtime_ms() - s->max_age_ms : INT64_MIN);
    sqlite3_bind_int64(st, 2, s->history);
    long n = 0, bad = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        evbuf_t *ev;
        const char *why;
        int got = row_to_event(s, st, &ev, &why);
        if (got == WIRE_NOMEM) {
            snprintf(reason, cap, "cannot rebuild its history: out of memory");
            sqlite3_finalize(st);
            return -1;
        }
        if (got == WIRE_BAD) {
            if (bad++ == 0)
                log_warn("store %s: skipped row seq %lld: %s (it stays in the file; further skips are only "
                         "counted)",
                         s->path, (long long)sqlite3_column_int64(st, 5), why);
            continue;
        }
        cb(ctx, ev);
        n++;
    }
    if (rc != SQLITE_DONE) {
        set_reason(s, reason, cap, "cannot read its history");
        n = -1;
    }
    sqlite3_finalize(st);
    atomic_fetch_add(&s->bad_rows, (unsigned long)bad);
    return n;
}

static void load_into_hub(void *hub, evbuf_t *ev) { hub_load(hub, ev); }

/* journal_backend_t.load: the history into the hub, and one line saying so. */
static long store_load(void *self, hub_t *hub, char *why, size_t cap)
{
    static const char *const sync_names[] = {"full", "normal", "off"};
    store_t *s = self;
    unsigned long bad = atomic_load(&s->bad_rows);
    long n = load_rows(s, load_into_hub, hub, why, cap);
    bad = atomic_load(&s->bad_rows) - bad;
    if (n >= 0 && bad)
        log_info("store %s: %ld events of history loaded, %lu damaged rows skipped, --sync %s", s->path, n,
                 bad, sync_names[s->sync]);
    else if (n >= 0)
        log_info("store %s: %ld events of history loaded, --sync %s", s->path, n, sync_names[s->sync]);
    return n;
}

/* ---- the journal thread: one group --------------------------------------------- */

static int insert_event(store_t *s, const evbuf_t *ev)
{
    size_t tlen;
    if (wire_join_topics(ev, &s->scratch, &s->scratch_cap, &tlen))
        return -1;
    const char *topics = s->scratch;
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

static int commit_group(store_t *s, evbuf_t *const *evs, size_t n)
{
    int64_t last_seq = s->last_seq, rows = s->rows;
    int ok = exec(s, "BEGIN IMMEDIATE") == 0;
    for (size_t i = 0; ok && i < n; i++)
        ok = insert_event(s, evs[i]) == 0;
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

/* journal_backend_t.commit_group: all or nothing. The journal publishes
 * and completes. */
static int store_commit(void *self, evbuf_t *const *evs, size_t n, int *ok)
{
    store_t *s = self;
    int committed = commit_group(s, evs, n) == 0;
    if (committed) {
        if (!atomic_exchange(&s->healthy, 1))
            log_info("store: commits work again");
        atomic_store(&s->rows_seen, (unsigned long)s->rows);
    }
    for (size_t i = 0; i < n; i++)
        ok[i] = committed;
    return STORE_IDLE_WAKE_MS;
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
 * rename, so PATH.backup is always a complete copy). Journal thread. */
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

/* ---- the journal's view of the store ---------------------------------------------------- */

static void close_file(store_t *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->trim_count);
    sqlite3_finalize(s->trim_age);
    sqlite3_finalize(s->oldest);
    sqlite3_close(s->db); /* also checkpoints the WAL and releases the lock */
    free(s->scratch);
    free(s->path);
    free(s);
}

static int store_idle(void *self)
{
    idle_step(self);
    return STORE_IDLE_WAKE_MS;
}

static void store_backup(void *self) { backup(self); }

static void store_stats(void *self, journal_stats_t *out)
{
    store_t *s = self;
    out->up = atomic_load(&s->healthy);
    out->rows = atomic_load(&s->rows_seen);
    out->bad_records = atomic_load(&s->bad_rows);
}

static void store_close(void *self) { close_file(self); }

static const journal_backend_t store_backend = {
    .name = "store",
    .thread_name = "store",
    .publishes = 1,
    .busy_reason = "the store has too many publishes waiting; retry later",
    .failed_reason = "the event could not be stored, so it was not published; retry later",
    .load = store_load,
    .commit_group = store_commit,
    .idle = store_idle,
    .backup = store_backup,
    .stats = store_stats,
    .free = store_close,
};

journal_t *store_open(const char *path, store_sync_t sync, long history, int history_age_s, hub_t *hub,
                      char *reason, size_t cap)
{
    store_t *s = open_file(path, sync, history, history_age_s, reason, cap);
    if (!s)
        return NULL;
    journal_t *j = journal_new(&store_backend, s, hub);
    if (!j)
        snprintf(reason, cap, "out of memory");
    return j;
}
