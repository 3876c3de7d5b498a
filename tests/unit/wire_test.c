/*
 * wire_test.c - src/wire.c, the checks both journals apply to what they
 * read back: the wire check (moved here from backplane_test.c with
 * backplane__check_wire), topics joined and split back, and
 * wire_try_decode's round trip and every refusal.
 */
#include "../../src/wire.c"

#include "sse.h"
#include "test.h"

/* ---- the wire check ------------------------------------------------------------- */

static size_t encode(char *out, const char *id, const char *type, const char *data, int64_t retry)
{
    sse_fields_t f = {.id = id,
                      .id_len = strlen(id),
                      .event = type,
                      .event_len = type ? strlen(type) : 0,
                      .data = data,
                      .data_len = data ? strlen(data) : 0,
                      .retry = retry};
    ASSERT(sse_encoded_size(&f) < 512);
    return sse_encode(out, &f);
}

static void test_check_wire(void)
{
    char w[512];
    size_t n = encode(w, "a1", NULL, "hello", -1);
    ASSERT_EQ(wire_check(w, n, "a1", 2), 0);
    ASSERT_EQ(wire_check(w, n, "a2", 2), -1); /* another id */
    ASSERT_EQ(wire_check(w, n, "a", 1), -1);
    ASSERT_EQ(wire_check(w, n - 1, "a1", 2), -1); /* no blank line */
    n = encode(w, "x", "ping", "l1\nl2\r\n\nl4", 3000);
    ASSERT_EQ(wire_check(w, n, "x", 1), 0);
    n = encode(w, "x", NULL, "", -1);
    ASSERT_EQ(wire_check(w, n, "x", 1), 0);
    const char *bad[] = {
        "id: x\ndata: a\n\nid: y\ndata: b\n\n", /* two events */
        "id: x\ndata: a\nid: y\n\n",            /* a second id line */
        "id: x\nevent: e\n\n",                  /* no data line: nothing dispatches */
        "id: x\ndata: a\r\n\n",                 /* CR */
        "id: x\n: comment\ndata: a\n\n",        /* a comment */
        "id: x\ndata:a\n\n",                    /* not as the encoder writes it */
        "id: x\n\n",
        "id: x",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (wire_check(bad[i], strlen(bad[i]), "x", 1) != -1)
            TEST_FAIL_AT("accepted wire #%zu", i);
    /* NUL: kept by the encoder in data (a publish may carry %00), where a
     * client reads it as a character; never elsewhere. */
    char nul[] = "id: x\ndata: a\0b\n\n";
    ASSERT_EQ(wire_check(nul, sizeof(nul) - 1, "x", 1), 0);
    sse_fields_t f = {
        .id = "x", .id_len = 1, .event = "t\0y", .event_len = 3, .data = "a\0b", .data_len = 3, .retry = -1};
    n = sse_encode(w, &f);
    ASSERT(memchr(w, 0, n) != NULL);
    ASSERT_EQ(wire_check(w, n, "x", 1), 0); /* the encoder's own output, NUL and all */
    char nul_event[] = "id: x\nevent: a\0b\ndata: a\n\n";
    ASSERT_EQ(wire_check(nul_event, sizeof(nul_event) - 1, "x", 1), -1);
    char nul_retry[] = "id: x\nretry: 1\0\ndata: a\n\n";
    ASSERT_EQ(wire_check(nul_retry, sizeof(nul_retry) - 1, "x", 1), -1);
}

/* ---- topics ----------------------------------------------------------------------- */

static evbuf_t *event_with_topics(const char *const *topics, size_t n, const char *id, int is_private)
{
    size_t lens[EVBUF_MAX_TOPICS];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(topics[i]);
    evbuf_spec_t spec = {.id = id,
                         .id_len = strlen(id),
                         .type = "t",
                         .type_len = 1,
                         .data = "d1\nd2",
                         .data_len = 5,
                         .retry = 50,
                         .topics = topics,
                         .topic_lens = lens,
                         .num_topics = n,
                         .is_private = is_private,
                         .published_ms = 1764000000123};
    return evbuf_try_new(&spec);
}

static void test_topics_join_and_split(void)
{
    const char *topics[] = {"https://ex.com/a", "urn:b", "https://ex.com/c/{x}"};
    evbuf_t *ev = event_with_topics(topics, 3, "id-1", 0);
    ASSERT(ev != NULL);
    if (!ev)
        return;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    ASSERT_EQ(wire_join_topics(ev, &buf, &cap, &len), 0);
    ASSERT(len < cap);
    ASSERT_MEM_STR(buf, len, "https://ex.com/a\nurn:b\nhttps://ex.com/c/{x}");
    const char *back[EVBUF_MAX_TOPICS];
    size_t lens[EVBUF_MAX_TOPICS], n = 0;
    ASSERT_EQ(wire_split_topics(buf, len, back, lens, &n), 0);
    ASSERT_UEQ(n, 3);
    for (size_t i = 0; i < n && i < 3; i++)
        ASSERT_MEM_STR(back[i], lens[i], topics[i]);
    /* The buffer is reused and grows only when needed. */
    const char *one[] = {"x"};
    evbuf_t *small = event_with_topics(one, 1, "id-2", 0);
    char *before = buf;
    ASSERT_EQ(wire_join_topics(small, &buf, &cap, &len), 0);
    ASSERT(buf == before);
    ASSERT_MEM_STR(buf, len, "x");
    evbuf_unref(small);
    free(buf);
    evbuf_unref(ev);

    const char *bad[] = {"", "a\n", "\na", "a\n\nb", "a\tb", "a\x7f"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (wire_split_topics(bad[i], strlen(bad[i]), back, lens, &n) != -1)
            TEST_FAIL_AT("accepted topics #%zu", i);
    ASSERT_EQ(wire_split_topics(NULL, 0, back, lens, &n), -1);
    char many[65 * 2];
    for (int i = 0; i < 65; i++) {
        many[2 * i] = 't';
        many[2 * i + 1] = '\n';
    }
    ASSERT_EQ(wire_split_topics(many, 64 * 2 - 1, back, lens, &n), 0); /* 64: the limit */
    ASSERT_UEQ(n, 64);
    ASSERT_EQ(wire_split_topics(many, 65 * 2 - 1, back, lens, &n), -1);
}

/* ---- decoding a record ------------------------------------------------------------------ */

static wire_record_t record_of(const evbuf_t *ev, const char *joined, size_t jlen)
{
    return (wire_record_t){.id = ev->id,
                           .id_len = ev->id_len,
                           .topics = joined,
                           .topics_len = jlen,
                           .is_private = ev->is_private,
                           .published_ms = ev->published_ms,
                           .wire = ev->bytes,
                           .wire_len = ev->len};
}

static void test_decode_round_trip(void)
{
    const char *topics[] = {"https://ex.com/a", "https://ex.com/b/{x}"};
    evbuf_t *ev = event_with_topics(topics, 2, "urn:uuid:1", 1);
    ASSERT(ev != NULL);
    if (!ev)
        return;
    char *joined = NULL;
    size_t cap = 0, jlen = 0;
    ASSERT_EQ(wire_join_topics(ev, &joined, &cap, &jlen), 0);
    wire_record_t r = record_of(ev, joined, jlen);
    evbuf_t *back = NULL;
    const char *why = NULL;
    ASSERT_EQ(wire_try_decode(&r, &back, &why), WIRE_OK);
    ASSERT(back != NULL);
    if (back) {
        ASSERT_MEM_STR(back->id, back->id_len, "urn:uuid:1");
        ASSERT_UEQ(back->num_topics, 2);
        ASSERT_MEM_STR(back->topics[1], back->topic_lens[1], "https://ex.com/b/{x}");
        ASSERT_EQ(back->is_private, 1);
        ASSERT_EQ(back->published_ms, 1764000000123);
        ASSERT_UEQ(back->len, ev->len);
        ASSERT(memcmp(back->bytes, ev->bytes, ev->len) == 0);
        evbuf_unref(back);
    }
    free(joined);
    evbuf_unref(ev);
}

static void test_decode_refusals(void)
{
    const char *w = "id: x\ndata: a\n\n";
    const wire_record_t good = {.id = "x",
                                .id_len = 1,
                                .topics = "t",
                                .topics_len = 1,
                                .is_private = 0,
                                .published_ms = 1,
                                .wire = w,
                                .wire_len = strlen(w)};
    evbuf_t *ev = NULL;
    const char *why = NULL;
    ASSERT_EQ(wire_try_decode(&good, &ev, &why), WIRE_OK);
    if (ev)
        evbuf_unref(ev);
    char long_id[WIRE_MAX_ID + 2];
    memset(long_id, 'i', sizeof(long_id));
    wire_record_t cases[9];
    for (size_t i = 0; i < 9; i++)
        cases[i] = good;
    cases[0].id_len = 0; /* no id */
    cases[1].id = "y";   /* the wire's id line says x */
    cases[2].id = "x\n"; /* control character */
    cases[2].id_len = 2;
    cases[3].id = long_id; /* too long */
    cases[3].id_len = sizeof(long_id);
    cases[4].is_private = 2;
    cases[5].published_ms = -1;
    cases[6].topics = "a\n\nb"; /* an empty topic */
    cases[6].topics_len = 4;
    cases[7].wire = "id: x\ndata: a\n\nid: y\ndata: b\n\n"; /* two events */
    cases[7].wire_len = strlen(cases[7].wire);
    cases[8].wire_len = 0; /* nothing */
    for (size_t i = 0; i < 9; i++) {
        ev = (evbuf_t *)1;
        why = NULL;
        if (wire_try_decode(&cases[i], &ev, &why) != WIRE_BAD || ev != NULL || !why)
            TEST_FAIL_AT("case %zu accepted", i);
    }
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_check_wire);
    TEST_RUN(test_topics_join_and_split);
    TEST_RUN(test_decode_round_trip);
    TEST_RUN(test_decode_refusals);
    TEST_MAIN_END();
}
