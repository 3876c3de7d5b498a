/*
 * hub_test.c - history and reconciliation against a naive model: every
 * published event kept in a plain array; what a resume should replay is
 * computed from it by a linear scan, and compared with the hub's O(1) answer.
 * No workers are attached, so hub_publish only orders and records.
 */
#include "../../src/hub.c"

#include "test.h"

#include <stdio.h>

#define MAX_EVENTS 4000

typedef struct model_ev {
    char id[32];
    char topic[8];
    uint64_t seq;
    int is_private;
} model_ev_t;

static model_ev_t model[MAX_EVENTS];
static size_t model_n;

static void publish(hub_t *h, const char *id, const char *topic, int is_private)
{
    const char *topics[1] = {topic};
    size_t lens[1] = {strlen(topic)};
    evbuf_spec_t spec = {.id = id,
                         .id_len = strlen(id),
                         .data = "x",
                         .data_len = 1,
                         .retry = -1,
                         .topics = topics,
                         .topic_lens = lens,
                         .num_topics = 1,
                         .is_private = is_private};
    evbuf_t *ev = evbuf_try_new(&spec);
    ASSERT(ev != NULL);
    hub_publish(h, ev);
    model_ev_t *m = &model[model_n++];
    snprintf(m->id, sizeof(m->id), "%s", id);
    snprintf(m->topic, sizeof(m->topic), "%s", topic);
    m->seq = model_n;
    m->is_private = is_private;
}

static int match_topic(void *ctx, const evbuf_t *ev)
{
    const char *want = ctx;
    return !ev->is_private && (!strcmp(want, "*") || evbuf_has_topic(ev, want, strlen(want)));
}

/* What the model says a resume from `last` should replay (seqs), given the
 * history keeps the last `cap` events; returns -1 if the id is unknown. */
static long model_replay(const char *last, const char *topic, size_t cap, uint64_t *out)
{
    size_t first = model_n > cap ? model_n - cap : 0, from;
    if (!strcmp(last, "earliest")) {
        from = first;
    } else {
        size_t k = first;
        while (k < model_n && strcmp(model[k].id, last) != 0)
            k++; /* the OLDEST use still in history */
        if (k == model_n)
            return -1;
        from = k + 1;
    }
    long n = 0;
    for (size_t k = from; k < model_n; k++)
        if (!model[k].is_private && (!strcmp(topic, "*") || !strcmp(model[k].topic, topic)))
            out[n++] = model[k].seq;
    return n;
}

/* What a subscriber's replay collects: hub_try_resume, then hub_read in
 * small batches (7, so batch boundaries fall everywhere), filtering after
 * each read as the worker does. */
typedef struct collected {
    evbuf_t *events[MAX_EVENTS]; /* one reference each */
    size_t count;
    char *last_event_id;
    uint64_t newest; /* of the last read */
    int gap;
} collected_t;

static int collect(hub_t *h, const char *last, size_t last_len, const char *topic, collected_t *c)
{
    evbuf_t *buf[7];
    hub_batch_t b = {buf, 7, 0, 0, 0};
    uint64_t from;
    memset(c, 0, sizeof(*c));
    if (hub_try_resume(h, last, last_len, &from, &c->last_event_id, &b))
        return -1;
    for (;;) {
        for (size_t i = 0; i < b.count; i++) {
            from = b.events[i]->seq + 1;
            if (match_topic((void *)topic, b.events[i])) {
                evbuf_ref(b.events[i]);
                c->events[c->count++] = b.events[i];
            }
        }
        c->newest = b.newest;
        c->gap |= b.gap;
        size_t got = b.count;
        hub_batch_release(&b);
        if (got < b.max)
            return 0;
        hub_read(h, from, &b);
    }
}

static void collected_dispose(collected_t *c)
{
    for (size_t i = 0; i < c->count; i++)
        evbuf_unref(c->events[i]);
    free(c->last_event_id);
}

static void check_resume(hub_t *h, const char *last, const char *topic, size_t cap)
{
    static uint64_t want[MAX_EVENTS];
    static collected_t s;
    long n = model_replay(last, topic, cap, want);
    ASSERT_EQ(collect(h, last, strlen(last), topic, &s), 0);
    ASSERT_STR_EQ(s.last_event_id, n < 0 ? "earliest" : last);
    ASSERT_UEQ(s.newest, model_n);
    ASSERT(!s.gap);
    ASSERT_UEQ(s.count, n < 0 ? 0 : (size_t)n);
    for (size_t i = 0; i < s.count && (long)i < n; i++)
        if (s.events[i]->seq != want[i]) {
            TEST_FAIL_AT("resume from %s on %s: event %zu is seq %llu, want %llu", last, topic, i,
                         (unsigned long long)s.events[i]->seq, (unsigned long long)want[i]);
            break;
        }
    collected_dispose(&s);
}

static void test_no_id_means_no_header(void)
{
    model_n = 0;
    hub_t *h = hub_new(10, 0);
    publish(h, "a", "t", 0);
    static collected_t s;
    ASSERT_EQ(collect(h, NULL, 0, "t", &s), 0);
    ASSERT(s.last_event_id == NULL);
    ASSERT_UEQ(s.count, 0);
    ASSERT_UEQ(s.newest, 1);
    collected_dispose(&s);
    hub_free(h);
}

/* A reader that falls more than the history behind between two reads is
 * told (gap), never silently given a hole. */
static void test_gap_between_reads(void)
{
    model_n = 0;
    hub_t *h = hub_new(4, 0);
    publish(h, "a", "t", 0);
    evbuf_t *buf[2];
    hub_batch_t b = {buf, 2, 0, 0, 0};
    uint64_t from;
    char *lei;
    ASSERT_EQ(hub_try_resume(h, "earliest", 8, &from, &lei, &b), 0);
    ASSERT_UEQ(from, 1);
    ASSERT_UEQ(b.count, 1);
    ASSERT(!b.gap);
    hub_batch_release(&b);
    free(lei);
    for (int i = 0; i < 6; i++) /* seq 2..7: seq 2 and 3 are evicted */
        publish(h, "x", "t", 0);
    hub_read(h, 2, &b);
    ASSERT(b.gap);
    ASSERT_UEQ(b.count, 2);
    ASSERT_UEQ(b.events[0]->seq, 4);
    ASSERT_UEQ(b.newest, 7);
    hub_batch_release(&b);
    hub_read(h, 8, &b); /* caught up: nothing, no gap */
    ASSERT(!b.gap);
    ASSERT_UEQ(b.count, 0);
    hub_free(h);
}

/* Sinks: each publish posts to every sink under the lock, and wakes only
 * those that asked, after the lock is released. */
typedef struct fake_sink {
    int posts, wakes;
    hub_t *hub; /* to prove the lock is free when wake runs */
} fake_sink_t;

static int sink_post(void *ctx, evbuf_t *ev)
{
    fake_sink_t *f = ctx;
    (void)ev;                   /* a sink that kept it would take a reference */
    return f->posts++ % 2 == 0; /* "the inbox was empty" every other time */
}

static void sink_wake(void *ctx)
{
    fake_sink_t *f = ctx;
    hub_stats_t st;
    hub_get_stats(f->hub, &st); /* takes the hub lock: would deadlock if still held */
    f->wakes++;
}

static void test_sinks_wake_after_unlock(void)
{
    model_n = 0;
    hub_t *h = hub_new(10, 0);
    fake_sink_t a = {0, 0, h}, b = {0, 0, h};
    hub_sink_t sinks[2] = {{sink_post, sink_wake, &a}, {sink_post, sink_wake, &b}};
    ASSERT_EQ(hub_try_set_sinks(h, sinks, 2), 0);
    for (int i = 0; i < 5; i++)
        publish(h, "e", "t", 0);
    ASSERT_EQ(a.posts, 5);
    ASSERT_EQ(b.posts, 5);
    ASSERT_EQ(a.wakes, 3);
    ASSERT_EQ(b.wakes, 3);
    hub_free(h);
}

static void test_empty_history_is_earliest(void)
{
    model_n = 0;
    hub_t *h = hub_new(10, 0);
    check_resume(h, "earliest", "*", 10);
    check_resume(h, "nope", "*", 10);
    hub_free(h);
}

static void test_random_against_model(void)
{
    const size_t cap = 50;
    model_n = 0;
    hub_t *h = hub_new((long)cap, 0);
    unsigned seed = 7;
    const char *topics[] = {"a", "b", "c"};
    char id[32];
    for (int i = 0; i < 3000; i++) {
        seed = seed * 1103515245u + 12345u;
        /* about one id in five is reused, so duplicate chains form and age out */
        unsigned r = (seed >> 8) % 100;
        if (r < 20 && model_n > 0)
            snprintf(id, sizeof(id), "%s", model[(seed >> 4) % model_n].id);
        else
            snprintf(id, sizeof(id), "id-%d", i);
        publish(h, id, topics[(seed >> 12) % 3], ((seed >> 16) % 10) == 0);
        if (i % 7 == 0) {
            size_t back = (seed >> 3) % (cap + 20); /* sometimes already evicted */
            const char *last = back < model_n ? model[model_n - 1 - back].id : "earliest";
            check_resume(h, last, topics[(seed >> 5) % 3], cap);
            check_resume(h, last, "*", cap);
        }
        if (test__failed_current)
            break;
    }
    check_resume(h, "earliest", "*", cap);
    hub_stats_t st;
    hub_get_stats(h, &st);
    ASSERT_UEQ(st.history_len, cap);
    ASSERT_UEQ(st.published, model_n);
    hub_free(h);
}

static void test_history_zero_keeps_nothing(void)
{
    model_n = 0;
    hub_t *h = hub_new(0, 0);
    publish(h, "a", "t", 0);
    check_resume(h, "earliest", "t", 0);
    check_resume(h, "a", "t", 0); /* unknown: history is off */
    hub_free(h);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_no_id_means_no_header);
    TEST_RUN(test_gap_between_reads);
    TEST_RUN(test_sinks_wake_after_unlock);
    TEST_RUN(test_empty_history_is_earliest);
    TEST_RUN(test_random_against_model);
    TEST_RUN(test_history_zero_keeps_nothing);
    TEST_MAIN_END();
}
