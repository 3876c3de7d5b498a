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

static void check_resume(hub_t *h, const char *last, const char *topic, size_t cap)
{
    static uint64_t want[MAX_EVENTS];
    long n = model_replay(last, topic, cap, want);
    hub_snapshot_t s;
    ASSERT_EQ(hub_try_snapshot(h, last, strlen(last), match_topic, (void *)topic, &s), 0);
    ASSERT_STR_EQ(s.last_event_id, n < 0 ? "earliest" : last);
    ASSERT_UEQ(s.start_seq, model_n);
    ASSERT_UEQ(s.count, n < 0 ? 0 : (size_t)n);
    for (size_t i = 0; i < s.count && (long)i < n; i++)
        if (s.events[i]->seq != want[i]) {
            TEST_FAIL_AT("resume from %s on %s: event %zu is seq %llu, want %llu", last, topic, i,
                         (unsigned long long)s.events[i]->seq, (unsigned long long)want[i]);
            break;
        }
    hub_snapshot_dispose(&s);
}

static void test_no_id_means_no_header(void)
{
    model_n = 0;
    hub_t *h = hub_new(10, 0);
    publish(h, "a", "t", 0);
    hub_snapshot_t s;
    ASSERT_EQ(hub_try_snapshot(h, NULL, 0, match_topic, "t", &s), 0);
    ASSERT(s.last_event_id == NULL);
    ASSERT_UEQ(s.count, 0);
    ASSERT_UEQ(s.start_seq, 1);
    hub_snapshot_dispose(&s);
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
    TEST_RUN(test_empty_history_is_earliest);
    TEST_RUN(test_random_against_model);
    TEST_RUN(test_history_zero_keeps_nothing);
    TEST_MAIN_END();
}
