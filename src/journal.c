/*
 * journal.c - see journal.h: the queue, the journal thread and the
 * completions that every durable journal shares; the backends (store.c,
 * backplane.c) only commit, load, idle and report.
 *
 *   queue (under lock)                  the journal thread's group
 *   evs:     +-----+-----+-----+        +-----+-----+-----+-----+
 *            | e0  | e1  | ... | -swap-> | e0  | e1  | ... | en  |  ops->commit_group(evs, n, ok)
 *   waiters: +-----+-----+-----+        +-----+-----+-----+-----+
 *            | w0  | w1  | ... | -swap-> | w0  | w1  | ... | wn  |  done(ctx, token, e_i, ok_i)
 *            +-----+-----+-----+        +-----+-----+-----+-----+
 *   evs[i] owns one reference; waiters[i] = {done, ctx, token}.
 *
 * Two parallel arrays rather than one array of structs, so that a group's
 * events go to the backend as they are, with no copy per group.
 *
 * The swap is the whole of the grouping: the thread takes the arrays and
 * leaves empty ones, so submitters never wait for a commit, and a group is
 * exactly what arrived while the previous one was being committed.
 *
 * The memory journal is the same object with no backend: submit calls
 * hub_publish directly (the hub has its own lock), so the default path
 * costs what it cost before there were journals.
 */
#include "journal.h"

#include "log.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JOURNAL_FIRST_CAP 64 /* queue slots at the first push after a swap */

typedef struct waiter {
    journal_done_cb done; /* NULL: nobody waits */
    void *ctx;            /* borrows: passed to done */
    uint64_t token;       /* passed to done */
} waiter_t;

struct journal {
    const journal_backend_t *ops; /* NULL: the memory journal */
    void *self;                   /* owns: the backend's state (ops->free) */
    hub_t *hub;                   /* borrows */

    pthread_t thread;
    int started;          /* main thread: the journal thread runs */
    pthread_mutex_t lock; /* guards everything from here to full_warned */
    pthread_cond_t wake;  /* signalled: queue went non-empty, stop, backup */
    evbuf_t **evs;        /* owns: one reference per queued event */
    waiter_t *waiters;    /* owns: parallel to evs */
    size_t len;           /* queued events */
    size_t cap;           /* slots in evs and in waiters */
    int accepting;        /* between journal_start and journal_stop */
    int stopping;         /* journal_stop: drain, then exit */
    int backup_requested; /* SIGUSR1: ops->backup at the next chance */
    int full_warned;      /* "queue full" logged since the queue was last empty */

    int *ok;       /* owns: journal thread, one outcome per event of a group */
    size_t ok_cap; /* ints at ok */

    atomic_ulong groups, events, failed, refused; /* journal_stats_t */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static journal_t *alloc_journal(const journal_backend_t *ops, void *self, hub_t *hub)
{
    journal_t *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->ops = ops;
    j->self = self;
    j->hub = hub;
    pthread_mutex_init(&j->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->wake, &ca);
    pthread_condattr_destroy(&ca);
    return j;
}

journal_t *journal_new(const journal_backend_t *ops, void *self, hub_t *hub)
{
    assert(ops && ops->commit_group && ops->idle && ops->load && ops->stats && ops->free);
    journal_t *j = alloc_journal(ops, self, hub);
    if (!j)
        ops->free(self);
    return j;
}

journal_t *journal_new_memory(hub_t *hub) { return alloc_journal(NULL, NULL, hub); }

int journal_is_memory(const journal_t *j) { return j->ops == NULL; }

const char *journal_failure_reason(const journal_t *j)
{
    return j->ops ? j->ops->failed_reason : "the event was not published; retry later";
}

long journal_load(journal_t *j, char *why, size_t cap)
{
    return j->ops ? j->ops->load(j->self, j->hub, why, cap) : 0;
}

/* ---- submitting ------------------------------------------------------------------------ */

/* Makes room for one more event. Under the lock. Returns 0 or -1. */
static int grow(journal_t *j)
{
    if (j->len < j->cap)
        return 0;
    size_t ncap = j->cap ? j->cap * 2 : JOURNAL_FIRST_CAP;
    evbuf_t **e = realloc(j->evs, ncap * sizeof(*e));
    if (!e)
        return -1;
    j->evs = e; /* kept even if the next fails: it is only bigger */
    waiter_t *w = realloc(j->waiters, ncap * sizeof(*w));
    if (!w)
        return -1;
    j->waiters = w;
    j->cap = ncap;
    return 0;
}

int journal_try_submit(journal_t *j, evbuf_t *ev, journal_done_cb done, void *ctx, uint64_t token,
                       const char **why)
{
    if (!j->ops) {
        hub_publish(j->hub, ev);
        return JOURNAL_PUBLISHED;
    }
    const char *no = j->ops->refuses ? j->ops->refuses(j->self) : NULL;
    int warn_full = 0;
    if (!no) {
        pthread_mutex_lock(&j->lock);
        if (!j->accepting) {
            no = "courant is not accepting events now (starting or stopping); retry later";
        } else if (j->len >= JOURNAL_MAX_QUEUE) {
            no = j->ops->busy_reason;
            warn_full = !j->full_warned;
            j->full_warned = 1;
        } else if (grow(j)) {
            no = "out of memory";
        } else {
            j->evs[j->len] = ev;
            j->waiters[j->len] = (waiter_t){done, ctx, token};
            if (++j->len == 1)
                pthread_cond_signal(&j->wake);
        }
        pthread_mutex_unlock(&j->lock);
    }
    if (!no)
        return JOURNAL_PENDING;
    atomic_fetch_add(&j->refused, 1);
    if (warn_full)
        log_warn("%s: %d events wait for the journal: new ones get 503 until it catches up", j->ops->name,
                 JOURNAL_MAX_QUEUE);
    *why = no;
    return -1;
}

/* ---- the journal thread ----------------------------------------------------------------- */

/* Commits one group, hands what is durable to the hub when the journal
 * publishes, then completes each event in queue order. Returns the
 * backend's idle wait. */
static int process_group(journal_t *j, evbuf_t **evs, waiter_t *waiters, size_t n)
{
    if (n > j->ok_cap) {
        int *ok = realloc(j->ok, n * sizeof(*ok));
        if (ok) {
            j->ok = ok;
            j->ok_cap = n;
        }
    }
    int wait = 0;
    int tried = n <= j->ok_cap; /* else: no room for the outcomes, every event fails */
    if (tried) {
        memset(j->ok, 0, n * sizeof(*j->ok));
        wait = j->ops->commit_group(j->self, evs, n, j->ok);
    } else {
        log_warn("%s: out of memory: %zu events get 503", j->ops->name, n);
    }
    size_t good = 0;
    for (size_t i = 0; tried && i < n; i++)
        good += j->ok[i] ? 1 : 0;
    /* Counted before any answer leaves, so /metrics agrees with the 200s. */
    if (good)
        atomic_fetch_add(&j->groups, 1);
    atomic_fetch_add(&j->events, good);
    atomic_fetch_add(&j->failed, n - good);
    /* Fan-out strictly after the commit, in queue order; answers after. */
    for (size_t i = 0; good && j->ops->publishes && i < n; i++) {
        if (j->ok[i]) {
            evbuf_ref(evs[i]);
            hub_publish(j->hub, evs[i]);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (waiters[i].done)
            waiters[i].done(waiters[i].ctx, waiters[i].token, evs[i], tried && j->ok[i]);
        evbuf_unref(evs[i]);
    }
    return wait;
}

/* Waits on the condition until `deadline` (CLOCK_MONOTONIC ms). Locked. */
static void wait_until(journal_t *j, int64_t deadline)
{
    struct timespec ts = {(time_t)(deadline / 1000), (long)(deadline % 1000) * 1000000L};
    pthread_cond_timedwait(&j->wake, &j->lock, &ts);
}

static void *journal_main(void *arg)
{
    journal_t *j = arg;
    log_set_thread_name(j->ops->thread_name);
    int64_t idle_at = mono_ms(); /* the backend's first idle call comes at once (redis: connect) */
    pthread_mutex_lock(&j->lock);
    for (;;) {
        if (j->backup_requested) {
            j->backup_requested = 0;
            pthread_mutex_unlock(&j->lock);
            j->ops->backup(j->self);
            pthread_mutex_lock(&j->lock);
            continue;
        }
        if (j->len == 0) {
            j->full_warned = 0; /* caught up: a new overload is worth a new line */
            if (j->stopping)
                break;
            if (mono_ms() < idle_at) {
                wait_until(j, idle_at);
                continue; /* woken: by work, stop, backup, the deadline, or spuriously */
            }
            pthread_mutex_unlock(&j->lock);
            int wait = j->ops->idle(j->self);
            idle_at = mono_ms() + wait;
            pthread_mutex_lock(&j->lock);
            continue;
        }
        evbuf_t **evs = j->evs;
        waiter_t *waiters = j->waiters;
        size_t n = j->len;
        j->evs = NULL;
        j->waiters = NULL;
        j->len = j->cap = 0;
        pthread_mutex_unlock(&j->lock);
        int wait = process_group(j, evs, waiters, n);
        idle_at = mono_ms() + wait;
        free(evs);
        free(waiters);
        pthread_mutex_lock(&j->lock);
    }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

/* ---- the rest of the contract --------------------------------------------------------- */

int journal_start(journal_t *j)
{
    if (!j->ops)
        return 0;
    int r = pthread_create(&j->thread, NULL, journal_main, j);
    if (r) {
        log_error("cannot start the %s thread: %s", j->ops->name, strerror(r));
        return -1;
    }
    j->started = 1;
    pthread_mutex_lock(&j->lock);
    j->accepting = 1;
    pthread_mutex_unlock(&j->lock);
    return j->ops->start ? j->ops->start(j->self, j->hub) : 0;
}

void journal_request_backup(journal_t *j)
{
    if (!j->ops || !j->ops->backup) {
        log_warn("SIGUSR1: the %s journal keeps no file: there is nothing to back up (only --store has one)",
                 j->ops ? j->ops->name : "memory");
        return;
    }
    pthread_mutex_lock(&j->lock);
    j->backup_requested = 1;
    pthread_cond_signal(&j->wake);
    pthread_mutex_unlock(&j->lock);
}

void journal_stop(journal_t *j)
{
    if (!j || !j->ops)
        return;
    pthread_mutex_lock(&j->lock);
    j->accepting = 0;
    j->stopping = 1;
    pthread_cond_signal(&j->wake);
    pthread_mutex_unlock(&j->lock);
    if (j->started)
        pthread_join(j->thread, NULL);
    j->started = 0;
    if (j->ops->stop)
        j->ops->stop(j->self);
}

void journal_free(journal_t *j)
{
    if (!j)
        return;
    assert(!j->started);
    for (size_t i = 0; i < j->len; i++) { /* never started: nothing was taken, but be exact */
        if (j->waiters[i].done)
            j->waiters[i].done(j->waiters[i].ctx, j->waiters[i].token, j->evs[i], 0);
        evbuf_unref(j->evs[i]);
    }
    free(j->evs);
    free(j->waiters);
    free(j->ok);
    if (j->ops)
        j->ops->free(j->self);
    pthread_cond_destroy(&j->wake);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

void journal_stats(journal_t *j, journal_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->name = j->ops ? j->ops->name : "memory";
    out->up = 1;
    if (j->ops)
        j->ops->stats(j->self, out);
    out->groups = atomic_load(&j->groups);
    out->events = atomic_load(&j->events);
    out->failed = atomic_load(&j->failed);
    out->refused = atomic_load(&j->refused);
    if (j->ops) { /* the queue lock, for one number */
        pthread_mutex_lock(&j->lock);
        out->queued = j->len;
        pthread_mutex_unlock(&j->lock);
    }
}
