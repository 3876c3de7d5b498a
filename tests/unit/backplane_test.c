/*
 * backplane_test.c - the pure parts of src/backplane.c: the --redis URL and
 * stream entries parsed back into events (round trip from the fields the
 * publish side writes, and every refusal). The wire check they rely on is
 * wire_test.c's; the threads and Redis itself are tested end to end
 * (tests/e2e/redis.test.mjs).
 */
#include "../../src/backplane.c"

#include "test.h"
#include "wire.h"

/* ---- the URL ---------------------------------------------------------------- */

static void test_url(void)
{
    backplane_url_t u;
    const char *why = NULL;
    ASSERT_EQ(backplane__parse_url("redis://127.0.0.1:6380/2", &u, &why), 0);
    ASSERT_STR_EQ(u.host, "127.0.0.1");
    ASSERT_EQ(u.port, 6380);
    ASSERT_EQ(u.db, 2);
    ASSERT_STR_EQ(u.pass, "");
    ASSERT_EQ(backplane__parse_url("redis://localhost", &u, &why), 0);
    ASSERT_STR_EQ(u.host, "localhost");
    ASSERT_EQ(u.port, 6379);
    ASSERT_EQ(u.db, 0);
    ASSERT_EQ(backplane__parse_url("redis://:s3cr@t@h:1/", &u, &why), 0);
    ASSERT_STR_EQ(u.user, "");
    ASSERT_STR_EQ(u.pass, "s3cr@t");
    ASSERT_STR_EQ(u.host, "h");
    ASSERT_EQ(backplane__parse_url("redis://alice:pw@h:2", &u, &why), 0);
    ASSERT_STR_EQ(u.user, "alice");
    ASSERT_STR_EQ(u.pass, "pw");
    const char *bad[] = {
        "rediss://h:1",    "http://h",    "redis://",      "redis://:1",     "redis://h:0",
        "redis://h:65536", "redis://h:x", "redis://h:1/x", "redis://pw@h:1", "redis://h:1/99999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        if (backplane__parse_url(bad[i], &u, &why) != -1 || !why)
            TEST_FAIL_AT("accepted %s", bad[i]);
    }
}

/* ---- entries ---------------------------------------------------------------------- */

/* An entry [sid, [name, value, ...]] over borrowed strings. */
typedef struct fake {
    redisReply str[24], kv, top;
    redisReply *kvp[24], *topp[2];
} fake_t;

static redisReply *fake_entry(fake_t *f, const char *sid, const char *const *fields, size_t n)
{
    f->str[0] = (redisReply){.type = REDIS_REPLY_STRING, .str = (char *)sid, .len = strlen(sid)};
    for (size_t i = 0; i < n; i++) {
        f->str[i + 1] =
            (redisReply){.type = REDIS_REPLY_STRING, .str = (char *)fields[i], .len = strlen(fields[i])};
        f->kvp[i] = &f->str[i + 1];
    }
    f->kv = (redisReply){.type = REDIS_REPLY_ARRAY, .elements = n, .element = f->kvp};
    f->topp[0] = &f->str[0];
    f->topp[1] = &f->kv;
    f->top = (redisReply){.type = REDIS_REPLY_ARRAY, .elements = 2, .element = f->topp};
    return &f->top;
}

/* What the publish side writes (append_xadd) parses back to the same event. */
static void test_entry_round_trip(void)
{
    const char *topics[] = {"https://ex.com/a", "https://ex.com/b/{x}"};
    size_t lens[] = {strlen(topics[0]), strlen(topics[1])};
    evbuf_spec_t spec = {.id = "urn:uuid:1",
                         .id_len = 10,
                         .type = "t",
                         .type_len = 1,
                         .data = "d1\nd2",
                         .data_len = 5,
                         .retry = 50,
                         .topics = topics,
                         .topic_lens = lens,
                         .num_topics = 2,
                         .is_private = 1,
                         .published_ms = 1764000000123};
    evbuf_t *ev = evbuf_try_new(&spec);
    ASSERT(ev != NULL);
    char *joined = NULL;
    size_t cap = 0, tlen = 0;
    ASSERT_EQ(wire_join_topics(ev, &joined, &cap, &tlen), 0);
    ASSERT(tlen < cap);
    joined[tlen] = 0; /* wire_join_topics gives a length (hiredis takes lengths); it leaves room for this */
    char *wire = strndup(ev->bytes, ev->len);
    const char *fields[] = {"id", ev->id,          "topics", joined, "private", "1",
                            "ms", "1764000000123", "wire",   wire,   "later",   "ignored"};
    fake_t f;
    evbuf_t *back = NULL;
    char sid[BP_SID_MAX];
    const char *why = NULL;
    ASSERT_EQ(
        backplane__parse_entry(fake_entry(&f, "1764000000123-7", fields, 12), &back, sid, sizeof(sid), &why),
        0);
    ASSERT_STR_EQ(sid, "1764000000123-7");
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
    free(wire);
    free(joined);
    evbuf_unref(ev);
}

static void test_entry_refusals(void)
{
    const char *w = "id: x\ndata: a\n\n";
    char many[64 * 3 + 8];
    size_t k = 0;
    for (int i = 0; i < 65; i++) {
        many[k++] = 't';
        if (i < 64)
            many[k++] = '\n';
    }
    many[k] = 0;
    struct {
        const char *sid;
        const char *f[12];
        size_t n;
    } cases[] = {
        {"1-0", {"id", "x", "topics", "t", "private", "0", "ms", "1"}, 8}, /* no wire */
        {"1-0",
         {"id", "x", "id", "x", "topics", "t", "private", "0", "ms", "1", "wire", w},
         12}, /* id twice */
        {"1-0", {"id", "x", "topics", "t", "private", "2", "ms", "1", "wire", w}, 10},
        {"1-0", {"id", "x", "topics", "t", "private", "0", "ms", "-1", "wire", w}, 10},
        {"1-0", {"id", "x", "topics", "t", "private", "0", "ms", "", "wire", w}, 10},
        {"1-0", {"id", "x", "topics", "", "private", "0", "ms", "1", "wire", w}, 10},
        {"1-0", {"id", "x", "topics", "a\n\nb", "private", "0", "ms", "1", "wire", w}, 10},
        {"1-0", {"id", "x", "topics", "a\tb", "private", "0", "ms", "1", "wire", w}, 10},
        {"1-0", {"id", "x", "topics", many, "private", "0", "ms", "1", "wire", w}, 10},
        {"1-0", {"id", "y", "topics", "t", "private", "0", "ms", "1", "wire", w}, 10}, /* wire's id differs */
        {"1-0", {"id", "", "topics", "t", "private", "0", "ms", "1", "wire", w}, 10},
        {"1-0", {"id", "x", "topics", "t", "private", "0", "ms", "1", "wire"}, 9}, /* odd count */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_t f;
        evbuf_t *ev = (evbuf_t *)1;
        char sid[BP_SID_MAX];
        const char *why = NULL;
        int rc = backplane__parse_entry(fake_entry(&f, cases[i].sid, cases[i].f, cases[i].n), &ev, sid,
                                        sizeof(sid), &why);
        if (rc != -1 || ev != NULL || !why)
            TEST_FAIL_AT("case %zu accepted", i);
        else if (strcmp(sid, "1-0") != 0)
            TEST_FAIL_AT("case %zu: the stream id was not kept (\"%s\"), the reader could not move past it",
                         i, sid);
    }
    /* 64 topics is the limit, and fine. */
    many[k - 2] = 0;
    fake_t f;
    const char *ok[] = {"id", "x", "topics", many, "private", "0", "ms", "1", "wire", w};
    evbuf_t *ev = NULL;
    char sid[BP_SID_MAX];
    const char *why;
    ASSERT_EQ(backplane__parse_entry(fake_entry(&f, "2-0", ok, 10), &ev, sid, sizeof(sid), &why), 0);
    if (ev) {
        ASSERT_UEQ(ev->num_topics, 64);
        evbuf_unref(ev);
    }
    /* Not an entry at all: no stream id to move past. */
    redisReply nil = {.type = REDIS_REPLY_NIL};
    ASSERT_EQ(backplane__parse_entry(&nil, &ev, sid, sizeof(sid), &why), -1);
    ASSERT_STR_EQ(sid, "");
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_url);
    TEST_RUN(test_entry_round_trip);
    TEST_RUN(test_entry_refusals);
    TEST_MAIN_END();
}
