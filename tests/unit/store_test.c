/*
 * store_test.c - unit tests for src/store.c against real files in a
 * temporary directory: events survive a close and reopen byte for byte and
 * in order, completions come after the hub has the event, retention by
 * count and by age, the file stops growing, and the start-up refusals
 * (garbage, a lock held by another connection, a directory that is a file).
 *
 * The hub is real and has no workers, so hub_publish only records history:
 * that is how a test sees what was published, and in which order.
 */
#include "../../src/store.c"

#include "test.h"

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
    uint64_t tokens[4096];      /* completion order */
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
        .id = id, .id_len = strlen(id), .type = "t", .type_len = 1,
        .data = data, .data_len = (size_t)dn, .retry = i % 3 ? -1 : 1500,
        .topics = topics, .topic_lens = lens, .num_topics = i % 2 ? 2 : 1,
        .is_private = i % 5 == 0, .published_ms = published_ms,
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
static void submit_range(store_t *s, record_t *r, long i0, long n, int64_t published_ms, evbuf_t **copies)
{
    for (long i = i0; i < i0 + n; i++) {
        evbuf_t *ev = make_event(i, published_ms);
        if (copies) {
            evbuf_ref(ev);
            copies[i - i0] = ev;
        }
        ASSERT_EQ(store_try_submit(s, ev, on_done, r, (uint64_t)i + 1), 0);
    }
}

/* ---- tests ------------------------------------------------------------------ */

static void test_roundtrip_in_order(void)
{
    char path[512], why[512];
    path_in_tmp(path, sizeof(path), "roundtrip.db");
    remove_db(path);
    hub_t *hub = hub_new(1000, 0);
    store_t *s = store_open(path, STORE_SYNC_FULL, 1000, 0, why, sizeof(why));
    ASSERT(s != NULL);
    if (!s)
        return;
    record_t r;
    record_init(&r, hub);
    ASSERT_EQ(store_start(s, hub), 0);
    static evbuf_t *copies[300];
    submit_range(s, &r, 0, 300, 0, copies);
    record_wait(&r, 300);
    ASSERT_EQ(r.ok, 300);
    /* Completions in submit order, each after its event reached the hub. */
    for (size_t i = 0; i < 300; i++) {
        ASSERT_UEQ(r.tokens[i], i + 1);
        if (r.hub_published[i] < i + 1)
            TEST_FAIL_AT("completion %zu came before its event was published (hub had %ju)", i,
                         (uintmax_t)r.hub_published[i]);
    }
    store_stop(s);
    store_free(s);

    s = store_open(path, STORE_SYNC_FULL, 1000, 0, why, sizeof(why));
    ASSERT(s != NULL);
    loaded_t l = {.n = 0};
    ASSERT_EQ(store_load(s, collect, &l, why, sizeof(why)), 300);
    for (size_t i = 0; i < l.n && i < 300; i++)
        if (!same_event(l.evs[i], copies[i]))
            TEST_FAIL_AT("event %zu differs after reload (%s vs %s)", i, l.evs[i]->id, copies[i]->id);
    loaded_dispose(&l);
    for (size_t i = 0; i < 300; i++)
        evbuf_unref(copies[i]);
    store_free(s);
    hub_free(hub);
    record_dispose(&r);
}

static void test_retention_by_count_bounds_file(void)
{
    char path[512], why[512];
    path_in_tmp(path, sizeof(path), "count.db");
    remove_db(path);
    hub_t *hub = hub_new(50, 0);
    store_t *s = store_open(path, STORE_SYNC_OFF, 50, 0, why, sizeof(why));
    ASSERT(s != NULL);
    if (!s)
        return;
    record_t r;
    record_init(&r, hub);
    ASSERT_EQ(store_start(s, hub), 0);
    off_t size_after_first = 0;
    for (int round = 0; round < 20; round++) {
        submit_range(s, &r, round * 200L, 200, 0, NULL);
        record_wait(&r, (size_t)(round + 1) * 200);
        struct stat st;
        ASSERT_EQ(stat(path, &st), 0);
        if (round == 2)
            size_after_first = st.st_size;
        if (round > 2 && st.st_size > size_after_first * 2)
            TEST_FAIL_AT("file grows: %lld bytes after round %d, %lld after round 2", (long long)st.st_size,
                         round, (long long)size_after_first);
    }
    store_stop(s);
    store_stats_t ss;
    store_get_stats(s, &ss);
    ASSERT_UEQ(ss.rows, 50);
    store_free(s);
    s = store_open(path, STORE_SYNC_OFF, 50, 0, why, sizeof(why));
    ASSERT(s != NULL);
    loaded_t l = {.n = 0};
    ASSERT_EQ(store_load(s, collect, &l, why, sizeof(why)), 50);
    ASSERT_STR_EQ(l.n ? l.evs[0]->id : "", "id-3950");
    ASSERT_STR_EQ(l.n ? l.evs[l.n - 1]->id : "", "id-3999");
    loaded_dispose(&l);
    store_free(s);
    hub_free(hub);
    record_dispose(&r);
}

static void test_retention_by_age(void)
{
    char path[512], why[512];
    path_in_tmp(path, sizeof(path), "age.db");
    remove_db(path);
    hub_t *hub = hub_new(1000, 60);
    store_t *s = store_open(path, STORE_SYNC_OFF, 1000, 60, why, sizeof(why));
    ASSERT(s != NULL);
    if (!s)
        return;
    record_t r;
    record_init(&r, hub);
    ASSERT_EQ(store_start(s, hub), 0);
    submit_range(s, &r, 0, 20, realtime_ms() - 3600 * 1000, NULL); /* an hour old */
    record_wait(&r, 20);
    submit_range(s, &r, 20, 5, 0, NULL); /* fresh: this group's trim drops the old ones */
    record_wait(&r, 25);
    store_stop(s);
    store_stats_t ss;
    store_get_stats(s, &ss);
    ASSERT_UEQ(ss.rows, 5);
    store_free(s);
    /* Loading applies the age limit too, even to rows not yet trimmed. */
    s = store_open(path, STORE_SYNC_OFF, 1000, 60, why, sizeof(why));
    loaded_t l = {.n = 0};
    ASSERT_EQ(store_load(s, collect, &l, why, sizeof(why)), 5);
    ASSERT_STR_EQ(l.n ? l.evs[0]->id : "", "id-20");
    loaded_dispose(&l);
    store_free(s);
    hub_free(hub);
    record_dispose(&r);
}

static void test_idle_trim(void)
{
    char path[512], why[512];
    path_in_tmp(path, sizeof(path), "idle.db");
    remove_db(path);
    hub_t *hub = hub_new(1000, 2);
    store_t *s = store_open(path, STORE_SYNC_OFF, 1000, 2, why, sizeof(why));
    ASSERT(s != NULL);
    if (!s)
        return;
    record_t r;
    record_init(&r, hub);
    ASSERT_EQ(store_start(s, hub), 0);
    submit_range(s, &r, 0, 10, 0, NULL);
    record_wait(&r, 10);
    /* No publishes: the idle step (once a second) applies the 2 s limit. */
    store_stats_t ss = {0};
    for (int i = 0; i < 60; i++) {
        usleep(100 * 1000);
        store_get_stats(s, &ss);
        if (ss.rows == 0)
            break;
    }
    ASSERT_UEQ(ss.rows, 0);
    store_stop(s);
    store_free(s);
    hub_free(hub);
    record_dispose(&r);
}

static int match_all(void *ctx, const evbuf_t *ev)
{
    (void)ctx;
    (void)ev;
    return 1;
}

static void test_seq_continues_after_reopen(void)
{
    char path[512], why[512];
    path_in_tmp(path, sizeof(path), "seq.db");
    remove_db(path);
    for (int round = 0; round < 3; round++) {
        hub_t *hub = hub_new(1000, 0);
        store_t *s = store_open(path, STORE_SYNC_FULL, 1000, 0, why, sizeof(why));
        ASSERT(s != NULL);
        if (!s)
            return;
        loaded_t l = {.n = 0};
        ASSERT_EQ(store_load(s, collect, &l, why, sizeof(why)), round * 10);
        for (size_t i = 0; i < l.n; i++) {
            hub_load(hub, l.evs[i]); /* takes the reference */
        }
        l.n = 0;
        record_t r;
        record_init(&r, hub);
        ASSERT_EQ(store_start(s, hub), 0);
        submit_range(s, &r, round * 10L, 10, 0, NULL);
        record_wait(&r, 10);
        store_stop(s);
        /* The hub numbered loaded and new events in one sequence. */
        hub_snapshot_t snap;
        ASSERT_EQ(hub_try_snapshot(hub, "earliest", 8, match_all, NULL, &snap), 0);
        ASSERT_UEQ(snap.count, (size_t)(round + 1) * 10);
        for (size_t i = 0; i < snap.count; i++) {
            ASSERT_UEQ(snap.events[i]->seq, i + 1);
            char want[32];
            snprintf(want, sizeof(want), "id-%zu", i);
            ASSERT_STR_EQ(snap.events[i]->id, want);
        }
        hub_snapshot_dispose(&snap);
        store_free(s);
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
    store_t *s = store_open(path, STORE_SYNC_FULL, 10, 0, why, sizeof(why));
    ASSERT(s == NULL);
    if (!strstr(why, "not a database"))
        TEST_FAIL_AT("reason: %s", why);
    store_free(s);
}

static void test_refuses_second_opener(void)
{
    char path[512], why[512] = "";
    path_in_tmp(path, sizeof(path), "locked.db");
    remove_db(path);
    store_t *a = store_open(path, STORE_SYNC_FULL, 10, 0, why, sizeof(why));
    ASSERT(a != NULL);
    store_t *b = store_open(path, STORE_SYNC_FULL, 10, 0, why, sizeof(why));
    ASSERT(b == NULL);
    if (!strstr(why, "locked"))
        TEST_FAIL_AT("reason: %s", why);
    store_free(b);
    store_free(a);
    /* Once the first closes, the file is usable again. */
    b = store_open(path, STORE_SYNC_FULL, 10, 0, why, sizeof(why));
    ASSERT(b != NULL);
    store_free(b);
}

static void test_refuses_directory_that_is_a_file(void)
{
    char path[600], file[512], why[512] = "";
    path_in_tmp(file, sizeof(file), "plainfile");
    FILE *f = fopen(file, "w");
    fclose(f);
    snprintf(path, sizeof(path), "%s/x.db", file);
    store_t *s = store_open(path, STORE_SYNC_FULL, 10, 0, why, sizeof(why));
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
    store_t *s = store_open(path, STORE_SYNC_FULL, 10, 0, why, sizeof(why));
    ASSERT(s != NULL);
    if (!s)
        return;
    ASSERT_EQ(store_start(s, hub), 0);
    store_stop(s);
    evbuf_t *ev = make_event(1, 0);
    ASSERT_EQ(store_try_submit(s, ev, NULL, NULL, 0), -1);
    evbuf_unref(ev); /* refused: still ours */
    store_free(s);
    hub_free(hub);
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
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    TEST_MAIN_END();
}
