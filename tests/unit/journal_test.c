/*
 * journal_test.c - src/journal.c, the machinery every durable journal
 * shares, driven through a backend implemented here (a journal_backend_t
 * is our own interface: this is a third backend, in memory, whose commits
 * the test can hold, fail or slow down). What is checked:
 *
 *   grouping    everything submitted while a group commits is the next group
 *   order       done callbacks in submit order, each after its event reached
 *               the hub when the journal publishes, never on the submitter's
 *               thread; only what the backend made durable is published
 *   refusals    the backend's own (down), a full queue (JOURNAL_MAX_QUEUE),
 *               before start and after stop; the reference stays the caller's
 *   stop        drains the queue: every event taken is committed and completed
 *   idle        called when nothing comes, at the pace the backend asks
 *   memory      the memory journal publishes at once and never calls done
 *
 * The hub is real and has no workers, so hub_publish only records history.
 */
#include "../../src/journal.c"

#include "test.h"

#include <stdio.h>

#define MAX_EVENTS (JOURNAL_MAX_QUEUE + 16)
#define MAX_GROUPS 4096

/* ---- the test's backend ------------------------------------------------------------ */

typedef struct fake {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int gate_closed;     /* commit_group waits while set */
    int in_commit;       /* a commit is waiting at the gate */
    int fail_odd;        /* ok[i] = 0 for odd tokens */
    int down;            /* refuses() says so */
    int idle_ms;         /* what idle returns */
    int commit_sleep_us; /* each commit takes this long */
    size_t groups;       /* commit_group calls */
    size_t group_sizes[MAX_GROUPS];
    size_t idles;             /* idle calls */
    size_t backups;           /* backup calls */
    size_t committed;         /* events seen by commit_group */
    size_t committed_at_stop; /* `committed` when ops->stop ran */
    int stopped, freed;
} fake_t;

static void fake_init(fake_t *f)
{
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    f->idle_ms = 1000;
}

static void fake_dispose(fake_t *f)
{
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->cond);
}

static void fake_gate(fake_t *f, int closed)
{
    pthread_mutex_lock(&f->lock);
    f->gate_closed = closed;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

/* Waits until a commit is held at the closed gate. */
static void fake_wait_in_commit(fake_t *f)
{
    pthread_mutex_lock(&f->lock);
    while (!f->in_commit)
        pthread_cond_wait(&f->cond, &f->lock);
    pthread_mutex_unlock(&f->lock);
}

static long fake_load(void *self, hub_t *hub, char *why, size_t cap)
{
    (void)self;
    (void)hub;
    (void)why;
    (void)cap;
    return 0;
}

static int fake_commit(void *self, evbuf_t *const *evs, size_t n, int *ok)
{
    fake_t *f = self;
    pthread_mutex_lock(&f->lock);
    f->in_commit = 1;
    pthread_cond_broadcast(&f->cond);
    while (f->gate_closed)
        pthread_cond_wait(&f->cond, &f->lock);
    f->in_commit = 0;
    if (f->groups < MAX_GROUPS)
        f->group_sizes[f->groups] = n;
    f->groups++;
    f->committed += n;
    int fail_odd = f->fail_odd, sleep_us = f->commit_sleep_us;
    pthread_mutex_unlock(&f->lock);
    for (size_t i = 0; i < n; i++) {
        unsigned long k = strtoul(evs[i]->id + 3, NULL, 10); /* "ev-K" */
        ok[i] = !(fail_odd && k % 2);
    }
    if (sleep_us)
        usleep((useconds_t)sleep_us);
    return f->idle_ms;
}

static int fake_idle(void *self)
{
    fake_t *f = self;
    pthread_mutex_lock(&f->lock);
    f->idles++;
    int ms = f->idle_ms;
    pthread_mutex_unlock(&f->lock);
    return ms;
}

static const char *fake_refuses(void *self)
{
    fake_t *f = self;
    pthread_mutex_lock(&f->lock);
    int down = f->down;
    pthread_mutex_unlock(&f->lock);
    return down ? "the fake is down" : NULL;
}

static void fake_backup(void *self)
{
    fake_t *f = self;
    pthread_mutex_lock(&f->lock);
    f->backups++;
    pthread_mutex_unlock(&f->lock);
}

static void fake_stats(void *self, journal_stats_t *out)
{
    (void)self;
    out->rows = 42;
}

static void fake_stop(void *self)
{
    fake_t *f = self;
    pthread_mutex_lock(&f->lock);
    f->stopped = 1;
    f->committed_at_stop = f->committed;
    pthread_mutex_unlock(&f->lock);
}

static void fake_free(void *self) { ((fake_t *)self)->freed = 1; }

static journal_backend_t fake_ops(int publishes)
{
    return (journal_backend_t){
        .name = "fake",
        .thread_name = "fake",
        .publishes = publishes,
        .busy_reason = "the fake is busy",
        .failed_reason = "the fake failed",
        .load = fake_load,
        .refuses = fake_refuses,
        .commit_group = fake_commit,
        .idle = fake_idle,
        .backup = fake_backup,
        .stats = fake_stats,
        .stop = fake_stop,
        .free = fake_free,
    };
}

/* ---- completions ---------------------------------------------------------------------- */

typedef struct record {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t done, ok;
    uint64_t *tokens;        /* completion order */
    uint64_t *hub_published; /* the hub's published count at each completion */
    int *oks;                /* each completion's ok */
    int on_submitter;        /* a completion ran on the submitting thread */
    pthread_t submitter;
    hub_t *hub;
} record_t;

static void record_init(record_t *r, hub_t *hub)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->tokens = calloc(MAX_EVENTS, sizeof(*r->tokens));
    r->hub_published = calloc(MAX_EVENTS, sizeof(*r->hub_published));
    r->oks = calloc(MAX_EVENTS, sizeof(*r->oks));
    r->submitter = pthread_self();
    r->hub = hub;
}

static void record_dispose(record_t *r)
{
    free(r->tokens);
    free(r->hub_published);
    free(r->oks);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
}

static void on_done(void *ctx, uint64_t token, evbuf_t *ev, int ok)
{
    record_t *r = ctx;
    hub_stats_t hs;
    hub_get_stats(r->hub, &hs);
    (void)ev;
    pthread_mutex_lock(&r->lock);
    if (r->done < MAX_EVENTS) {
        r->tokens[r->done] = token;
        r->hub_published[r->done] = hs.published;
        r->oks[r->done] = ok;
    }
    r->done++;
    r->ok += ok ? 1 : 0;
    r->on_submitter |= pthread_equal(pthread_self(), r->submitter);
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void record_wait(record_t *r, size_t n)
{
    pthread_mutex_lock(&r->lock);
    while (r->done < n)
        pthread_cond_wait(&r->cond, &r->lock);
    pthread_mutex_unlock(&r->lock);
}

static size_t record_done(record_t *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->done;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static evbuf_t *make_event(unsigned long k)
{
    char id[32];
    snprintf(id, sizeof(id), "ev-%lu", k);
    const char *topic = "https://example.com/t";
    size_t tl = strlen(topic);
    evbuf_spec_t spec = {.id = id,
                         .id_len = strlen(id),
                         .data = "x",
                         .data_len = 1,
                         .retry = -1,
                         .topics = &topic,
                         .topic_lens = &tl,
                         .num_topics = 1};
    evbuf_t *ev = evbuf_try_new(&spec);
    if (!ev)
        abort();
    return ev;
}

/* Submits events k0..k0+n-1 with token k + 1; all must be taken. */
static void submit_range(journal_t *j, record_t *r, unsigned long k0, unsigned long n)
{
    for (unsigned long k = k0; k < k0 + n; k++) {
        const char *why = NULL;
        evbuf_t *ev = make_event(k);
        int rc = journal_try_submit(j, ev, on_done, r, k + 1, &why);
        if (rc != JOURNAL_PENDING) {
            TEST_FAIL_AT("submit %lu: %d (%s)", k, rc, why ? why : "");
            evbuf_unref(ev);
            return;
        }
    }
}

/* A started journal over the fake, with a hub and a recorder. */
typedef struct fixture {
    fake_t fake;
    journal_backend_t ops;
    hub_t *hub;
    journal_t *j;
    record_t rec;
} fixture_t;

static void fixture_start(fixture_t *fx, int publishes)
{
    fake_init(&fx->fake);
    fx->ops = fake_ops(publishes);
    fx->hub = hub_new(100000, 0);
    fx->j = journal_new(&fx->ops, &fx->fake, fx->hub);
    record_init(&fx->rec, fx->hub);
    char why[64];
    ASSERT_EQ(journal_load(fx->j, why, sizeof(why)), 0);
    ASSERT_EQ(journal_start(fx->j), 0);
}

static void fixture_end(fixture_t *fx)
{
    journal_stop(fx->j);
    journal_free(fx->j);
    ASSERT(fx->fake.freed);
    hub_free(fx->hub);
    record_dispose(&fx->rec);
    fake_dispose(&fx->fake);
}

/* ---- tests ---------------------------------------------------------------------------- */

/* Whatever arrives while a group commits is the next group, whole. */
static void test_grouping(void)
{
    fixture_t fx;
    fixture_start(&fx, 1);
    fake_gate(&fx.fake, 1);
    submit_range(fx.j, &fx.rec, 0, 1);
    fake_wait_in_commit(&fx.fake); /* group 1 = {ev-0}, held at the gate */
    submit_range(fx.j, &fx.rec, 1, 500);
    fake_gate(&fx.fake, 0);
    record_wait(&fx.rec, 501);
    ASSERT_UEQ(fx.fake.groups, 2);
    ASSERT_UEQ(fx.fake.group_sizes[0], 1);
    ASSERT_UEQ(fx.fake.group_sizes[1], 500);
    journal_stats_t js;
    journal_stats(fx.j, &js);
    ASSERT_STR_EQ(js.name, "fake");
    ASSERT_UEQ(js.groups, 2);
    ASSERT_UEQ(js.events, 501);
    ASSERT_UEQ(js.failed, 0);
    ASSERT_UEQ(js.rows, 42); /* the backend's part */
    fixture_end(&fx);
}

/* done in submit order, after hub_publish of its event, off the submitter's
 * thread; a failed event is completed with ok = 0 and not published. */
static void test_order_and_outcomes(void)
{
    fixture_t fx;
    fixture_start(&fx, 1);
    fx.fake.fail_odd = 1;
    fx.fake.commit_sleep_us = 200; /* several groups of several events */
    for (unsigned long k = 0; k < 3000; k += 100) {
        submit_range(fx.j, &fx.rec, k, 100);
        usleep(50);
    }
    record_wait(&fx.rec, 3000);
    size_t published_before = 0;
    for (size_t i = 0; i < 3000; i++) {
        ASSERT_UEQ(fx.rec.tokens[i], i + 1);
        int want_ok = (i % 2) == 0;
        if (fx.rec.oks[i] != want_ok)
            TEST_FAIL_AT("event %zu completed with ok = %d", i, fx.rec.oks[i]);
        /* ok events 0, 2, .., i are in the hub when i completes */
        size_t want = i / 2 + 1;
        if (fx.rec.hub_published[i] < want)
            TEST_FAIL_AT("completion %zu came before its event was published (hub had %ju, want %zu)", i,
                         (uintmax_t)fx.rec.hub_published[i], want);
        published_before = fx.rec.hub_published[i];
    }
    (void)published_before;
    ASSERT(!fx.rec.on_submitter);
    hub_stats_t hs;
    hub_get_stats(fx.hub, &hs);
    ASSERT_UEQ(hs.published, 1500);
    journal_stats_t js;
    journal_stats(fx.j, &js);
    ASSERT_UEQ(js.events, 1500);
    ASSERT_UEQ(js.failed, 1500);
    ASSERT(fx.fake.groups > 1);
    fixture_end(&fx);
}

/* A backend that fans out by itself (redis): the journal publishes nothing. */
static void test_backend_that_publishes_itself(void)
{
    fixture_t fx;
    fixture_start(&fx, 0);
    submit_range(fx.j, &fx.rec, 0, 50);
    record_wait(&fx.rec, 50);
    ASSERT_UEQ(fx.rec.ok, 50);
    hub_stats_t hs;
    hub_get_stats(fx.hub, &hs);
    ASSERT_UEQ(hs.published, 0);
    fixture_end(&fx);
}

/* JOURNAL_MAX_QUEUE events wait; the next is refused with the backend's
 * reason and stays the caller's; everything taken completes. */
static void test_refused_when_full(void)
{
    fixture_t fx;
    fixture_start(&fx, 1);
    fake_gate(&fx.fake, 1);
    submit_range(fx.j, &fx.rec, 0, 1);
    fake_wait_in_commit(&fx.fake);
    submit_range(fx.j, &fx.rec, 1, JOURNAL_MAX_QUEUE);
    evbuf_t *ev = make_event(999999);
    const char *why = NULL;
    ASSERT_EQ(journal_try_submit(fx.j, ev, on_done, &fx.rec, 7, &why), -1);
    ASSERT_STR_EQ(why, "the fake is busy");
    ASSERT_EQ(atomic_load(&ev->refs), 1);                                   /* not taken */
    ASSERT_EQ(journal_try_submit(fx.j, ev, on_done, &fx.rec, 7, &why), -1); /* still full */
    fake_gate(&fx.fake, 0);
    record_wait(&fx.rec, JOURNAL_MAX_QUEUE + 1);
    ASSERT_UEQ(fx.fake.group_sizes[1], JOURNAL_MAX_QUEUE);
    /* Room again. */
    ASSERT_EQ(journal_try_submit(fx.j, ev, on_done, &fx.rec, 8, &why), JOURNAL_PENDING);
    record_wait(&fx.rec, JOURNAL_MAX_QUEUE + 2);
    journal_stats_t js;
    journal_stats(fx.j, &js);
    ASSERT_UEQ(js.refused, 2);
    ASSERT_UEQ(js.events, JOURNAL_MAX_QUEUE + 2);
    fixture_end(&fx);
}

/* The backend's own refusal, and the journal's before start and after stop. */
static void test_other_refusals(void)
{
    fake_t f;
    fake_init(&f);
    journal_backend_t ops = fake_ops(1);
    hub_t *hub = hub_new(10, 0);
    journal_t *j = journal_new(&ops, &f, hub);
    evbuf_t *ev = make_event(1);
    const char *why = NULL;
    ASSERT_EQ(journal_try_submit(j, ev, NULL, NULL, 0, &why), -1); /* not started */
    ASSERT(why != NULL);
    ASSERT_EQ(journal_start(j), 0);
    f.down = 1;
    why = NULL;
    ASSERT_EQ(journal_try_submit(j, ev, NULL, NULL, 0, &why), -1);
    ASSERT_STR_EQ(why, "the fake is down");
    f.down = 0;
    journal_stop(j);
    why = NULL;
    ASSERT_EQ(journal_try_submit(j, ev, NULL, NULL, 0, &why), -1); /* stopped */
    ASSERT(why != NULL);
    ASSERT_EQ(atomic_load(&ev->refs), 1);
    evbuf_unref(ev);
    journal_stats_t js;
    journal_stats(j, &js);
    ASSERT_UEQ(js.refused, 3);
    ASSERT_UEQ(f.committed, 0);
    journal_free(j);
    hub_free(hub);
    fake_dispose(&f);
}

/* Stop drains: every event taken before it is committed and completed,
 * then the backend's stop runs, after the last commit. */
static void test_stop_drains(void)
{
    fixture_t fx;
    fixture_start(&fx, 1);
    fake_gate(&fx.fake, 1);
    submit_range(fx.j, &fx.rec, 0, 1);
    fake_wait_in_commit(&fx.fake);
    submit_range(fx.j, &fx.rec, 1, 2000);
    ASSERT_UEQ(record_done(&fx.rec), 0);
    fake_gate(&fx.fake, 0);
    journal_stop(fx.j); /* returns once drained */
    ASSERT_UEQ(record_done(&fx.rec), 2001);
    ASSERT_UEQ(fx.rec.ok, 2001);
    ASSERT(fx.fake.stopped);
    ASSERT_UEQ(fx.fake.committed_at_stop, 2001);
    journal_stop(fx.j); /* twice is harmless (main's error path does it) */
    fixture_end(&fx);
}

/* Nothing to do: idle runs at the pace the backend asks; a backup request
 * reaches the backend between groups. */
static void test_idle_and_backup(void)
{
    fixture_t fx;
    fake_init(&fx.fake);
    fx.fake.idle_ms = 40;
    fx.ops = fake_ops(1);
    fx.hub = hub_new(10, 0);
    fx.j = journal_new(&fx.ops, &fx.fake, fx.hub);
    record_init(&fx.rec, fx.hub);
    ASSERT_EQ(journal_start(fx.j), 0);
    usleep(420 * 1000);
    pthread_mutex_lock(&fx.fake.lock);
    size_t idles = fx.fake.idles;
    pthread_mutex_unlock(&fx.fake.lock);
    if (idles < 6 || idles > 13)
        TEST_FAIL_AT("idle ran %zu times in 420 ms at 40 ms each (want about 11)", idles);
    journal_request_backup(fx.j);
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&fx.fake.lock);
        size_t b = fx.fake.backups;
        pthread_mutex_unlock(&fx.fake.lock);
        if (b)
            break;
        usleep(5000);
    }
    ASSERT_UEQ(fx.fake.backups, 1);
    fixture_end(&fx);
}

/* The memory journal: hub_publish at once, in the caller's thread; done
 * is never called. */
static void test_memory_journal(void)
{
    hub_t *hub = hub_new(10, 0);
    journal_t *j = journal_new_memory(hub);
    ASSERT(j != NULL);
    ASSERT(journal_is_memory(j));
    record_t r;
    record_init(&r, hub);
    char why[64];
    ASSERT_EQ(journal_load(j, why, sizeof(why)), 0);
    ASSERT_EQ(journal_start(j), 0);
    const char *no = NULL;
    ASSERT_EQ(journal_try_submit(j, make_event(1), on_done, &r, 1, &no), JOURNAL_PUBLISHED);
    hub_stats_t hs;
    hub_get_stats(hub, &hs);
    ASSERT_UEQ(hs.published, 1);
    ASSERT_UEQ(record_done(&r), 0);
    journal_request_backup(j); /* logs that there is nothing to back up */
    journal_stats_t js;
    journal_stats(j, &js);
    ASSERT_STR_EQ(js.name, "memory");
    ASSERT_EQ(js.up, 1);
    journal_stop(j);
    journal_free(j);
    hub_free(hub);
    record_dispose(&r);
}

/* Many threads submitting at once (TSan's case): each one's events
 * complete in its own submit order, nothing lost. */
typedef struct submitter {
    journal_t *j;
    record_t *rec;
    unsigned long base;
} submitter_t;

static void *submit_thread(void *arg)
{
    submitter_t *s = arg;
    for (unsigned long k = 0; k < 2000; k++) {
        evbuf_t *ev = make_event(s->base + k);
        const char *why;
        if (journal_try_submit(s->j, ev, on_done, s->rec, s->base + k + 1, &why) != JOURNAL_PENDING)
            evbuf_unref(ev);
    }
    return NULL;
}

static void test_concurrent_submitters(void)
{
    fixture_t fx;
    fixture_start(&fx, 1);
    pthread_t t[4];
    submitter_t s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = (submitter_t){fx.j, &fx.rec, (unsigned long)i * 100000};
        pthread_create(&t[i], NULL, submit_thread, &s[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    record_wait(&fx.rec, 8000);
    int64_t last[4] = {-1, -1, -1, -1};
    for (size_t i = 0; i < 8000; i++) {
        int64_t tok = (int64_t)fx.rec.tokens[i] - 1;
        int who = (int)(tok / 100000);
        if (tok < 0 || who > 3 || tok <= last[who])
            TEST_FAIL_AT("completion %zu: token %jd out of order", i, (intmax_t)tok);
        else
            last[who] = tok;
    }
    ASSERT_UEQ(fx.rec.ok, 8000);
    fixture_end(&fx);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_grouping);
    TEST_RUN(test_order_and_outcomes);
    TEST_RUN(test_backend_that_publishes_itself);
    TEST_RUN(test_refused_when_full);
    TEST_RUN(test_other_refusals);
    TEST_RUN(test_stop_drains);
    TEST_RUN(test_idle_and_backup);
    TEST_RUN(test_memory_journal);
    TEST_RUN(test_concurrent_submitters);
    TEST_MAIN_END();
}
