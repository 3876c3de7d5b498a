/*
 * store_test.c - unit tests for src/store.c, run as the journal main runs
 * it (store_open, journal_load, journal_start, journal_try_submit, ...),
 * against real files in a temporary directory: events survive a close and
 * reopen byte for byte and in order, completions come after the hub has
 * the event, retention by count and by age, the file stops growing, the
 * start-up refusals (garbage, a lock held by another connection, a
 * directory that is a file), and damaged rows skipped at load.
 *
 * The hub is real and has no workers, so hub_publish only records history:
 * that is how a test sees what was published, and in which order.
 */
#include "../../src/store.c"

#include "test.h"

#include <pthread.h>
#include <sys/stat.h>

static char tmpdir[] = "/tmp/courant-store-test.XXXXXX";

static void path_in_tmp(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void remove_db(const char *path)
{
    char p[600];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

/* ---- completions, recorded on the store thread -------------------------------- */

typedef struct record {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t done, ok;
    uint64_t tokens[4096];        /* completion order */
    uint64_t hub_published[4096]; /* hub's published count when each completed */
    hub_t *hub;
} record_t;

static void record_init(record_t *r, hub_t *hub)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->hub = hub;
}

static void record_dispose(record_t *r)
{
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
}

static void on_done(void *ctx, uint64_t token, evbuf_t *ev, int ok)
{
    record_t *r = ctx;
    hub_stats_t hs;
    hub_get_stats(r->hub, &hs);
    pthread_mutex_lock(&r->lock);
    if (r->done < 4096) {
        r->tokens[r->done] = token;
        r->hub_published[r->done] = hs.published;
    }
    r->done++;
    r->ok += ok ? 1 : 0;
    (void)ev;
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

static evbuf_t *make_event(long i, int64_t published_ms)
{
    char id[64], data[64];
    snprintf(id, sizeof(id), "id-%ld", i);
    int dn = snprintf(data, sizeof(data), "payload %ld\nline two", i);
    const char *topics[2] = {"https://example.com/a", "urn:alt"};
    size_t lens[2] = {strlen(topics[0]), strlen(topics[1])};
    evbuf_spec_t spec = {
        .id = id,
        .id_len = strlen(id),
        .type = "t",
        .type_len = 1,
        .data = data,
        .data_len = (size_t)dn,
        .retry = i % 3 ? -1 : 1500,
        .topics = topics,
        .topic_lens = lens,
        .num_topics = i % 2 ? 2 : 1,
        .is_private = i % 5 == 0,
        .published_ms = published_ms,
    };
    evbuf_t *ev = evbuf_try_new(&spec);
    if (!ev)
        abort();
    return ev;
}

/* ---- loading into a plain array (the model) ---------------------------------------- */

typedef struct loaded {
    evbuf_t *evs[4096];
    size_t n;
} loaded_t;

static void collect(void *ctx, evbuf_t *ev)
{
    loaded_t *l = ctx;
    if (l->n < 4096)
        l->evs[l->n++] = ev;
    else
        evbuf_unref(ev);
}

static void loaded_dispose(loaded_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        evbuf_unref(l->evs[i]);
    l->n = 0;
}

static int same_event(const evbuf_t *a, const evbuf_t *b)
{
    if (a->len != b->len || memcmp(a->bytes, b->bytes, a->len) || strcmp(a->id, b->id) ||
        a->num_topics != b->num_topics || a->is_private != b->is_private ||
        a->published_ms != b->published_ms)
        return 0;
    for (unsigned i = 0; i < a->num_topics; i++)
        if (a->topic_lens[i] != b->topic_lens[i] || memcmp(a->topics[i], b->topics[i], a->topic_lens[i]))
            return 0;
    return 1;
}

/* Submits n events i0..i0+n-1 to a started store; keeps a copy of each. */
static void submit_range(journal_t *j, record_t *r, long i0, long n, int64_t published_ms, evbuf_t **copies)
{
    for (long i = i0; i < i0 + n; i++) {
        evbuf_t *ev = make_event(i, published_ms);
        if (copies) {
            evbuf_ref(ev);
            copies[i - i0] = ev;
        }
        const char *why = NULL;
        ASSERT_EQ(journal_try_submit(j, ev, on_done, r, (uint64_t)i + 1, &why), JOURNAL_PENDING);
    }
}

static journal_stats_t stats_of(journal_t *j)
{
    journal_stats_t js;
    journal_stats(j, &js);
    return js;
}

/* ---- tests ------------------------------------------------------------------ */

/* A running store on a fresh file in the temp dir, with its hub and the
 * recorder of its completions: what most tests start from. */
typedef struct fixture {
    char path[512];
    long history;
    int age_s;
    hub_t *hub;
    journal_t *store;
    record_t rec;
} fixture_t;

static int fixture_start(fixture_t *fx, const char *name, store_sync_t sync, long history, int age_s)
{
    char why[512];
    path_in_tmp(fx->path, sizeof(fx->path), name);
    remove_db(fx->path);
    fx->history = history;
    fx->age_s = age_s;
    fx->hub = hub_new(history, age_s);
    fx->store = store_open(fx->path, sync, history, age_s, fx->hub, why, sizeof(why));
    ASSERT(fx->store != NULL);
    if (!fx->store) {
        hub_free(fx->hub);
        return -1;
    }
    record_init(&fx->rec, fx->hub);
    ASSERT_EQ(journal_load(fx->store, why, sizeof(why)), 0);
    ASSERT_EQ(journal_start(fx->store), 0);
    return 0;
}

/* Stops and closes the store (releasing its exclusive lock, so the file can
 * be opened again) and returns the rows it kept. */
static uint64_t fixture_stop(fixture_t *fx)
{
    journal_stop(fx->store);
    journal_stats_t js = stats_of(fx->store);
    journal_free(fx->store);
    fx->store = NULL;
    return js.rows;
}

static void fixture_end(fixture_t *fx)
{
    journal_free(fx->store);
    hub_free(fx->hub);
    record_dispose(&fx->rec);
}

/* Opens the file again (as a restart does) and loads its history into `l`
 * (the loader main's journal_load runs, into an array instead of a hub). */
static long fixture_reload(fixture_t *fx, loaded_t *l)
{
    char why[512];
    store_t *s = open_file(fx->path, STORE_SYNC_OFF, fx->history, fx->age_s, why, sizeof(why));
    ASSERT(s != NULL);
    if (!s)
        return -1;
    long n = load_rows(s, collect, l, why, sizeof(why));
    close_file(s);
    return n;
}

static void test_roundtrip_in_order(void)
{
    fixture_t fx;
    if (fixture_start(&fx, "roundtrip.db", STORE_SYNC_FULL, 1000, 0))
        return;
    static evbuf_t *copies[300];
    submit_range(fx.store, &fx.rec, 0, 300, 0, copies);
    record_wait(&fx.rec, 300);
    ASSERT_EQ(fx.rec.ok, 300);
    /* Completions in submit order, each after its event reached the hub. */
    for (size_t i = 0; i < 300; i++) {
        ASSERT_UEQ(fx.rec.tokens[i], i + 1);
        if (fx.rec.hub_published[i] < i + 1)
            TEST_FAIL_AT("completion %zu came before its event was published (hub had %ju)", i,
                         (uintmax_t)fx.rec.hub_published[i]);
    }
    fixture_stop(&fx);
    loaded_t l = {.n = 0};
    ASSERT_EQ(fixture_reload(&fx, &l), 300);
    for (size_t i = 0; i < l.n && i < 300; i++)
        if (!same_event(l.evs[i], copies[i]))
            TEST_FAIL_AT("event %zu differs after reload (%s vs %s)", i, l.evs[i]->id, copies[i]->id);
    loaded_dispose(&l);
    for (size_t i = 0; i < 300; i++)
        evbuf_unref(copies[i]);
    fixture_end(&fx);
}

static void test_retention_by_count_bounds_file(void)
{
    fixture_t fx;
    if (fixture_start(&fx, "count.db", STORE_SYNC_OFF, 50, 0))
        return;
    off_t size_after_first = 0;
    for (int round = 0; round < 20; round++) {
        submit_range(fx.store, &fx.rec, round * 200L, 200, 0, NULL);
        record_wait(&fx.rec, (size_t)(round + 1) * 200);
        struct stat st;
        ASSERT_EQ(stat(fx.path, &st), 0);
        if (round == 2)
            size_after_first = st.st_size;
        if (round > 2 && st.st_size > size_after_first * 2)
            TEST_FAIL_AT("file grows: %lld bytes after round %d, %lld after round 2", (long long)st.st_size,
                         round, (long long)size_after_first);
    }
    ASSERT_UEQ(fixture_stop(&fx), 50);
    loaded_t l = {.n = 0};
    ASSERT_EQ(fixture_reload(&fx, &l), 50);
    ASSERT_STR_EQ(l.n ? l.evs[0]->id : "", "id-3950");
    ASSERT_STR_EQ(l.n ? l.evs[l.n - 1]->id : "", "id-3999");
    loaded_dispose(&l);
    fixture_end(&fx);
}

static void test_retention_by_age(void)
{
    fixture_t fx;
    if (fixture_start(&fx, "age.db", STORE_SYNC_OFF, 1000, 60))
        return;
    submit_range(fx.store, &fx.rec, 0, 20, realtime_ms() - 3600 * 1000, NULL); /* an hour old */
    record_wait(&fx.rec, 20);
    submit_range(fx.store, &fx.rec, 20, 5, 0, NULL); /* fresh: this group's trim drops the old ones */
    record_wait(&fx.rec, 25);
    ASSERT_UEQ(fixture_stop(&fx), 5);
    /* Loading applies the age limit too, even to rows not yet trimmed. */
    loaded_t l = {.n = 0};
    ASSERT_EQ(fixture_reload(&fx, &l), 5);
    ASSERT_STR_EQ(l.n ? l.evs[0]->id : "", "id-20");
    loaded_dispose(&l);
    fixture_end(&fx);
}

static void test_idle_trim(void)
{
    fixture_t fx;
    if (fixture_start(&fx, "idle.db", STORE_SYNC_OFF, 1000, 2))
        return;
    submit_range(fx.store, &fx.rec, 0, 10, 0, NULL);
    record_wait(&fx.rec, 10);
    /* No publishes: the idle step (once a second) applies the 2 s limit. */
    journal_stats_t js = {0};
    for (int i = 0; i < 60; i++) {
        usleep(100 * 1000);
        js = stats_of(fx.store);
        if (js.rows == 0)
            break;
    }
    ASSERT_UEQ(js.rows, 0);
    fixture_stop(&fx);
    fixture_end(&fx);
}

static void test_seq_continues_after_reopen(void)
{
    char path[512], why[512];
    path_in_tmp(path, sizeof(path), "seq.db");
    remove_db(path);
    for (int round = 0; round < 3; round++) {
        hub_t *hub = hub_new(1000, 0);
        journal_t *s = store_open(path, STORE_SYNC_FULL, 1000, 0, hub, why, sizeof(why));
        ASSERT(s != NULL);
        if (!s)
            return;
        ASSERT_EQ(journal_load(s, why, sizeof(why)), round * 10); /* into the hub, with hub_load */
        record_t r;
        record_init(&r, hub);
        ASSERT_EQ(journal_start(s), 0);
        submit_range(s, &r, round * 10L, 10, 0, NULL);
        record_wait(&r, 10);
        journal_stop(s);
        /* The hub numbered loaded and new events in one sequence. */
        evbuf_t *evs[512];
        hub_batch_t snap = {evs, 512, 0, 0, 0};
        uint64_t from;
        char *lei;
        ASSERT_EQ(hub_try_resume(hub, "earliest", 8, &from, &lei, &snap), 0);
        free(lei);
        ASSERT_UEQ(snap.count, (size_t)(round + 1) * 10);
        for (size_t i = 0; i < snap.count; i++) {
            ASSERT_UEQ(snap.events[i]->seq, i + 1);
            char want[32];
            snprintf(want, sizeof(want), "id-%zu", i);
            ASSERT_STR_EQ(snap.events[i]->id, want);
        }
        hub_batch_release(&snap);
        journal_free(s);
        hub_free(hub);
        record_dispose(&r);
    }
}

static void test_refuses_garbage(void)
{
    char path[512], why[512] = "";
    path_in_tmp(path, sizeof(path), "garbage.db");
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 8192; i++)
        fputc((i * 7919) & 0xff, f);
    fclose(f);
    journal_t *s = store_open(path, STORE_SYNC_FULL, 10, 0, NULL, why, sizeof(why));
    ASSERT(s == NULL);
    if (!strstr(why, "not a database"))
        TEST_FAIL_AT("reason: %s", why);
    journal_free(s);
}

static void test_refuses_second_opener(void)
{
    char path[512], why[512] = "";
    path_in_tmp(path, sizeof(path), "locked.db");
    remove_db(path);
    journal_t *a = store_open(path, STORE_SYNC_FULL, 10, 0, NULL, why, sizeof(why));
    ASSERT(a != NULL);
    journal_t *b = store_open(path, STORE_SYNC_FULL, 10, 0, NULL, why, sizeof(why));
    ASSERT(b == NULL);
    if (!strstr(why, "locked"))
        TEST_FAIL_AT("reason: %s", why);
    journal_free(b);
    journal_free(a);
    /* Once the first closes, the file is usable again. */
    b = store_open(path, STORE_SYNC_FULL, 10, 0, NULL, why, sizeof(why));
    ASSERT(b != NULL);
    journal_free(b);
}

static void test_refuses_directory_that_is_a_file(void)
{
    char path[600], file[512], why[512] = "";
    path_in_tmp(file, sizeof(file), "plainfile");
    FILE *f = fopen(file, "w");
    fclose(f);
    snprintf(path, sizeof(path), "%s/x.db", file);
    journal_t *s = store_open(path, STORE_SYNC_FULL, 10, 0, NULL, why, sizeof(why));
    ASSERT(s == NULL);
    if (!strstr(why, "Not a directory"))
        TEST_FAIL_AT("reason: %s", why);
}

static void test_parse_sync(void)
{
    store_sync_t m;
    ASSERT_EQ(store_parse_sync("full", &m), 0);
    ASSERT_EQ(m, STORE_SYNC_FULL);
    ASSERT_EQ(store_parse_sync("normal", &m), 0);
    ASSERT_EQ(m, STORE_SYNC_NORMAL);
    ASSERT_EQ(store_parse_sync("off", &m), 0);
    ASSERT_EQ(m, STORE_SYNC_OFF);
    ASSERT_EQ(store_parse_sync("FULL", &m), -1);
    ASSERT_EQ(store_parse_sync("", &m), -1);
}

static void test_submit_after_stop_is_refused(void)
{
    char path[512], why[512];
    path_in_tmp(path, sizeof(path), "stopped.db");
    remove_db(path);
    hub_t *hub = hub_new(10, 0);
    journal_t *s = store_open(path, STORE_SYNC_FULL, 10, 0, hub, why, sizeof(why));
    ASSERT(s != NULL);
    if (!s)
        return;
    ASSERT_EQ(journal_start(s), 0);
    journal_stop(s);
    evbuf_t *ev = make_event(1, 0);
    const char *no = NULL;
    ASSERT_EQ(journal_try_submit(s, ev, NULL, NULL, 0, &no), -1);
    ASSERT(no != NULL);
    evbuf_unref(ev); /* refused: still ours */
    journal_free(s);
    hub_free(hub);
}

/* Runs SQL on the file with a connection of its own (the store is closed,
 * so its exclusive lock is released), as someone editing the file would. */
static void edit_file(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        TEST_FAIL_AT("%s: %s", sql, err ? err : "?");
    sqlite3_free(err);
    sqlite3_close(db);
}

/* Rows the Redis journal would refuse as stream entries are refused by the
 * store's loader too (wire_try_decode): skipped, counted, and the rest of
 * history loads, byte for byte and in order. */
static void test_damaged_rows_are_skipped(void)
{
    fixture_t fx;
    if (fixture_start(&fx, "damaged.db", STORE_SYNC_OFF, 1000, 0))
        return;
    static evbuf_t *copies[10];
    submit_range(fx.store, &fx.rec, 0, 10, 0, copies); /* rows seq 1..10 = id-0..id-9 */
    record_wait(&fx.rec, 10);
    fixture_stop(&fx);
    edit_file(fx.path, "UPDATE events SET wire = CAST('garbage' AS BLOB) WHERE seq = 3;" /* not SSE */
                       "UPDATE events SET id = 'id-other' WHERE seq = 5;" /* the wire's id line says id-4 */
                       "UPDATE events SET topics = 'a' || char(10) || char(10) || 'b' WHERE seq = 7;"
                       "UPDATE events SET wire = CAST('id: id-7' || char(10) || 'data: a' || char(10) ||"
                       " char(10) || 'id: x' || char(10) || 'data: b' || char(10) || char(10) AS BLOB)"
                       " WHERE seq = 8;" /* two events: the second would move a client's Last-Event-ID */
                       "UPDATE events SET private = 'yes' WHERE seq = 9;");
    loaded_t l = {.n = 0};
    ASSERT_EQ(fixture_reload(&fx, &l), 5);
    const int kept[] = {0, 1, 3, 5, 9};
    for (size_t i = 0; i < l.n && i < 5; i++)
        if (!same_event(l.evs[i], copies[kept[i]]))
            TEST_FAIL_AT("loaded event %zu is %s, want id-%d as it was stored", i, l.evs[i]->id, kept[i]);
    loaded_dispose(&l);
    /* As main loads it: into the hub, with the skipped rows counted. */
    char why[512];
    hub_t *hub = hub_new(1000, 0);
    journal_t *j = store_open(fx.path, STORE_SYNC_OFF, 1000, 0, hub, why, sizeof(why));
    ASSERT(j != NULL);
    if (j) {
        ASSERT_EQ(journal_load(j, why, sizeof(why)), 5);
        ASSERT_UEQ(stats_of(j).bad_records, 5);
        hub_stats_t hs;
        hub_get_stats(hub, &hs);
        ASSERT_UEQ(hs.history_len, 5);
        journal_free(j);
    }
    hub_free(hub);
    for (size_t i = 0; i < 10; i++)
        evbuf_unref(copies[i]);
    fixture_end(&fx);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    TEST_RUN(test_parse_sync);
    TEST_RUN(test_roundtrip_in_order);
    TEST_RUN(test_seq_continues_after_reopen);
    TEST_RUN(test_retention_by_count_bounds_file);
    TEST_RUN(test_retention_by_age);
    TEST_RUN(test_idle_trim);
    TEST_RUN(test_refuses_garbage);
    TEST_RUN(test_refuses_second_opener);
    TEST_RUN(test_refuses_directory_that_is_a_file);
    TEST_RUN(test_submit_after_stop_is_refused);
    TEST_RUN(test_damaged_rows_are_skipped);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    TEST_MAIN_END();
}
