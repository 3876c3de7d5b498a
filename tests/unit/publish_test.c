/*
 * publish_test.c - unit tests of the publish form rules in src/publish.c:
 * the reserved-namespace test (resolution, dot segments, unreserved
 * percent-decoding, any scheme or authority, a resource identifier with
 * another path), and the form's statuses in each dialect.
 */
#include "../../src/publish.c"

#include "test.h"

#define HUB "https://hub.example/.well-known/mercure"

static int reserved(const char *t, const char *hub) { return publish_topic_is_reserved(t, strlen(t), hub); }

static void test_reserved(void)
{
    static const char *const yes[] = {
        "/.well-known/mercure",
        "/.well-known/mercure/",
        "/.well-known/mercure/subscriptions/exact/a/b",
        "https://hub.example/.well-known/mercure/x",
        "https://other.example/.well-known/mercure/x",
        "http://other.example:8080/.well-known/mercure",
        "/.well-known/%6Dercure/subscriptions",
        "/.well-known/%6dercure",
        "/%2Ewell-known/mercure",
        "/.well-known/x/../mercure/s",
        "/.well-known/x/%2e%2E/mercure/s",
        "/a/./b/../../.well-known/mercure",
        "mercure/x", /* relative to the hub's directory: /.well-known/mercure/x */
        "./mercure",
        "?q", /* the hub URL itself with a query */
        "",   /* the hub URL itself */
        "#frag",
        "ftp://x/.well-known/mercure",
        "mailto:/.well-known/mercure",
    };
    static const char *const no[] = {
        "/.well-known/mercurex",
        "/x/.well-known/mercure",
        "/.well-known/%2Fmercure", /* "/" is reserved, not unreserved: stays encoded */
        "/.well-known/Mercure",
        "urn:.well-known:mercure",
        "urn:x/.well-known/mercure", /* an opaque path */
        "https://ex.com/books/1",
        "http://[", /* not a URL reference */
        "https://ex.com/%2e%2e/.well-known%2Fmercure",
    };
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!reserved(yes[i], HUB))
            TEST_FAIL_AT("not reserved: \"%s\"", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (reserved(no[i], HUB))
            TEST_FAIL_AT("reserved: \"%s\"", no[i]);
    /* A hub behind a path prefix: its own path is reserved too (and courant's). */
    ASSERT(reserved("/hub/.well-known/mercure/x", "https://ex.com/hub/.well-known/mercure"));
    ASSERT(reserved("/.well-known/mercure/x", "https://ex.com/hub/.well-known/mercure"));
    ASSERT(!reserved("/hub/x", "https://ex.com/hub/.well-known/mercure"));
    ASSERT(reserved("/.well-known/mercure", NULL)); /* the default base */
}

/* The status of a publish form (0 when accepted). */
static int form_status(const char *body, int v1)
{
    publish_rules_t rules = {.v1 = v1, .hub_url = HUB};
    int status = 0;
    const char *reason = NULL;
    evbuf_t *ev = publish_parse_form(body, strlen(body), &rules, &status, &reason);
    if (ev) {
        evbuf_unref(ev);
        return 0;
    }
    if (!reason)
        TEST_FAIL_AT("a refusal without a reason: %s", body);
    return status;
}

static void test_form_rules(void)
{
    static const struct {
        const char *body;
        int classic, v1; /* statuses: 0 = accepted */
    } cases[] = {
        {"topic=a&data=x&id=i&type=t&retry=5&private=on&other=ignored", 0, 0},
        {"data=x", 400, 400},
        {"topic=", 400, 400},
        {"topic=*", 0, 400},
        {"topic=https%3A%2F%2Fx%2Fy%2F.well-known%2Fmercure%2Fz", 403, 0}, /* draft-08: the path is /y/... */
        {"topic=https%3A%2F%2Fx%2F.well-known%2Fmercure%2Fz", 403, 400},
        {"topic=%2F.well-known%2Fx%2F..%2Fmercure", 403, 400},
        {"topic=a&type=mercure", 400, 400},
        {"topic=a&type=Mercure", 0, 0},
        {"topic=a&id=%23x", 400, 400},
        {"topic=a&id=earliest", 400, 400},
        {"topic=a&id=", 0, 0}, /* empty: one is generated */
        {"topic=a%0Ab", 400, 400},
        {"topic=a%C2%85b", 0, 400},    /* C1: draft-08 only */
        {"topic=a%E2%80%8Bb", 0, 400}, /* ZERO WIDTH SPACE (Cf) */
        {"topic=a%FF", 0, 400},        /* not UTF-8 */
        {"topic=a&id=a%C2%85", 0, 400},
        {"topic=a&type=a%E2%80%AE", 0, 400},
        {"topic=a&data=%FF", 0, 400},
        {"topic=a&retry=12a", 400, 400},
        {"topic=a&retry=", 0, 0},
        {"topic=a&data=1&data=2", 400, 400},
        {"topic=%zz", 400, 400},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int c = form_status(cases[i].body, 0), v = form_status(cases[i].body, 1);
        if (c != cases[i].classic || v != cases[i].v1)
            TEST_FAIL_AT("%s: classic %d (want %d), v1 %d (want %d)", cases[i].body, c, cases[i].classic, v,
                         cases[i].v1);
    }
    char many[2048] = "";
    for (int i = 0; i < 65; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%stopic=t%d", i ? "&" : "", i);
    ASSERT_EQ(form_status(many, 0), 400);
    ASSERT_EQ(form_status(many, 1), 413);
    char longid[1100] = "topic=a&id=";
    memset(longid + 11, 'x', 1025);
    longid[11 + 1025] = 0;
    ASSERT_EQ(form_status(longid, 0), 400);
    ASSERT_EQ(form_status(longid, 1), 413);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_reserved);
    TEST_RUN(test_form_rules);
    TEST_MAIN_END();
}
