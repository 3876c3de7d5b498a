/*
 * accesslog_test.c - unit tests for src/accesslog.c: the query cleaner
 * (the authorization parameter under every spelling the hub decodes, with
 * malformed names, at the cap), the topic count, the record's target, and
 * whole lines in text and JSON read back from a file: fields, escaping, and
 * a model check that no kept pair decodes to `authorization`.
 */
#include "../../src/accesslog.c"

#include "test.h"

#include <jansson.h>

static void check_clean(const char *q, const char *want)
{
    char out[512];
    int cut = -1;
    size_t n = accesslog_clean_query(q, strlen(q), out, sizeof(out), &cut);
    ASSERT_MEM_STR(out, n, want);
    ASSERT_EQ(cut, 0);
}

static void test_clean_query(void)
{
    check_clean("topic=a&authorization=SECRET&topic=b", "topic=a&topic=b");
    check_clean("authorization=SECRET", "");
    check_clean("%61uthorization=SECRET&x=1", "x=1"); /* the hub decodes names: so do we */
    check_clean("AUTHORIZATION=kept&x=1",
                "AUTHORIZATION=kept&x=1");                     /* names are case-sensitive, as in the hub */
    check_clean("authorization+=kept", "authorization+=kept"); /* "authorization " is another name */
    check_clean("authorization", "");                          /* no '=': still that name */
    check_clean("a%zz=1&b=2", "b=2");                          /* a malformed name is dropped */
    check_clean("b=2&authori%7Aation=3", "b=2");               /* %7A is 'z': that is the name */
    check_clean("topic=%zz&authorization=S", "topic=%zz");     /* a malformed value is only logged */
    check_clean("&&topic=a&&", "topic=a");
    check_clean("", "");
    check_clean("%2561uthorization=kept", "%2561uthorization=kept"); /* decodes to "%61uthorization" */
}

static void test_clean_query_cap(void)
{
    char out[16];
    int cut = 0;
    size_t n = accesslog_clean_query("topic=aaaa&topic=bbbb&topic=cccc", 32, out, sizeof(out), &cut);
    ASSERT_MEM_STR(out, n, "topic=aaaa");
    ASSERT_EQ(cut, 1);
}

static void test_count_params(void)
{
    ASSERT_UEQ(accesslog_count_params("topic=a&topic=b&x=topic", 23, "topic"), 2);
    ASSERT_UEQ(accesslog_count_params("t%6Fpic=a&topic=b&topic", 23, "topic"), 3);
    ASSERT_UEQ(accesslog_count_params("to%zzpic=a", 10, "topic"), 0);
    ASSERT_UEQ(accesslog_count_params("", 0, "topic"), 0);
}

static void test_record_target(void)
{
    accesslog_rec_t *r = accesslog_rec_new("GET", 3, "/p", 2, "a=1&authorization=x", 19, NULL, 0);
    ASSERT(r != NULL);
    ASSERT_MEM_STR(r->target, r->target_len, "/p?a=1");
    ASSERT_STR_EQ(r->client, "-");
    free(r);
    r = accesslog_rec_new("GET", 3, "/p", 2, "authorization=x", 15, NULL, 0);
    ASSERT_MEM_STR(r->target, r->target_len, "/p"); /* nothing left: no '?' */
    free(r);
    char path[2000];
    memset(path, 'p', sizeof(path));
    path[0] = '/';
    r = accesslog_rec_new("AVERYVERYLONGMETHODNAME", 23, path, sizeof(path), "a=1", 3, NULL, 0);
    ASSERT_UEQ(r->target_len, ACCESSLOG_TARGET_MAX);
    ASSERT(!memcmp(r->target + ACCESSLOG_TARGET_MAX - 3, "...", 3));
    ASSERT_UEQ(strlen(r->method), sizeof(r->method) - 1);
    free(r);
}

/* Lines written to a file, read back. */
static char *lines_of(const char *file)
{
    FILE *f = fopen(file, "rb");
    static char buf[65536];
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return buf;
}

static void test_lines(void)
{
    char file[] = "/tmp/accesslog_test_XXXXXX";
    int fd = mkstemp(file);
    ASSERT(fd >= 0);
    close(fd);
    char err[256];
    ASSERT_EQ(accesslog_configure(file, err, sizeof(err)), 0);
    ASSERT(accesslog_enabled());
    peer_addr_t a;
    ASSERT_EQ(peer_addr_parse("192.0.2.7", 9, &a), 0);
    log_set_thread_name("w3");

    log_set_format(LOG_FORMAT_TEXT);
    accesslog_rec_t *r =
        accesslog_rec_new("GET", 3, "/x\"y\n", 5, "topic=a&authorization=SECRET", 28, &a, 1000);
    r->status = 200;
    r->bytes = 42;
    r->topics = 1;
    accesslog_rec_finish(r, 1000 + 5012113);
    char *text = lines_of(file);
    ASSERT(
        strstr(text, " access [w3] 192.0.2.7 \"GET /x%22y%0A?topic=a\" 200 bytes=42 ms=5012.113 topics=1\n"));
    ASSERT(!strstr(text, "SECRET"));

    ASSERT_EQ(accesslog_configure(file, err, sizeof(err)), 0); /* a reload: same fd, reopened */
    log_set_format(LOG_FORMAT_JSON);
    r = accesslog_rec_new("POST", 4, "/\xff\x01", 3, "", 0, &a, 0);
    r->status = 503;
    accesslog_rec_finish(r, 99);
    text = lines_of(file);
    char *last = strrchr(text, '{');
    ASSERT(last != NULL);
    json_error_t je;
    json_t *j = last ? json_loads(last, 0, &je) : NULL;
    ASSERT(j != NULL);
    if (j) {
        ASSERT_STR_EQ(json_string_value(json_object_get(j, "msg")), "access");
        ASSERT_STR_EQ(json_string_value(json_object_get(j, "thread")), "w3");
        ASSERT_STR_EQ(json_string_value(json_object_get(j, "method")), "POST");
        ASSERT_STR_EQ(json_string_value(json_object_get(j, "target")), "/\xef\xbf\xbd\x01");
        ASSERT_EQ(json_integer_value(json_object_get(j, "status")), 503);
        ASSERT(json_number_value(json_object_get(j, "ms")) == 0); /* start unknown */
        json_decref(j);
    }

    ASSERT_EQ(accesslog_configure("off", err, sizeof(err)), 0);
    ASSERT(!accesslog_enabled());
    size_t before = strlen(lines_of(file));
    accesslog_rec_finish(accesslog_rec_new("GET", 3, "/", 1, "", 0, NULL, 0), 0);
    ASSERT_UEQ(strlen(lines_of(file)), before);
    ASSERT_EQ(accesslog_configure("/nonexistent-dir/x", err, sizeof(err)), -1);
    ASSERT(strstr(err, "cannot open") != NULL);
    log_set_format(LOG_FORMAT_TEXT);
    unlink(file);
}

/* Model: for random queries over a small alphabet, every kept pair is an
 * input pair (in order) and none decodes to `authorization`. */
static void test_clean_model(void)
{
    static const char *const parts[] = {
        "authorization", "%61uthorization", "topic", "=", "&", "%", "%zz", "a", "%41", "+",
        "x=1",           "authorization="};
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int iter = 0; iter < 20000; iter++) {
        char q[256];
        size_t n = 0;
        for (int k = 0; k < 12; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            const char *p = parts[x % (sizeof(parts) / sizeof(parts[0]))];
            size_t l = strlen(p);
            if (n + l >= sizeof(q))
                break;
            memcpy(q + n, p, l);
            n += l;
        }
        char out[256];
        size_t m = accesslog_clean_query(q, n, out, sizeof(out), NULL);
        /* every pair of out */
        size_t from = 0;
        const char *search = q;
        size_t left = n;
        while (from < m) {
            const char *amp = memchr(out + from, '&', m - from);
            size_t plen = amp ? (size_t)(amp - out - from) : m - from;
            const char *pair = out + from;
            const char *eq = memchr(pair, '=', plen);
            size_t nlen = eq ? (size_t)(eq - pair) : plen;
            ASSERT(well_formed(pair, nlen));
            ASSERT(!name_is(pair, nlen, "authorization"));
            const char *hit = memmem(search, left, pair, plen); /* in order, as sent */
            ASSERT(hit != NULL);
            if (!hit)
                break;
            left -= (size_t)(hit + plen - search);
            search = hit + plen;
            from += plen + 1;
        }
    }
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_clean_query);
    TEST_RUN(test_clean_query_cap);
    TEST_RUN(test_count_params);
    TEST_RUN(test_record_target);
    TEST_RUN(test_lines);
    TEST_RUN(test_clean_model);
    TEST_MAIN_END();
}
