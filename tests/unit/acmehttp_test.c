/*
 * acmehttp_test.c - unit tests of src/acmehttp.c's redirect builder: which
 * Host values may go into a Location (a header-splitting or a foreign-port
 * trick must not), the port rule, and the length bound. The handler itself
 * is exercised end to end in tests/e2e/acme.test.mjs.
 */
#include "../../src/acmehttp.c"

#include "test.h"

static long redirect(const char *host, int port, const char *path, const char *query, char *out, size_t cap)
{
    return acmehttp__redirect(host, strlen(host), port, path, strlen(path), query, strlen(query), out, cap);
}

static void test_redirect(void)
{
    char out[REDIRECT_MAX];
    ASSERT(redirect("hub.courant.test", 443, "/events", "topic=a", out, sizeof(out)) > 0);
    ASSERT_STR_EQ(out, "https://hub.courant.test/events?topic=a");
    ASSERT(redirect("hub.courant.test:80", 8443, "/", "", out, sizeof(out)) > 0);
    ASSERT_STR_EQ(out, "https://hub.courant.test:8443/");
    ASSERT(redirect("[::1]:8080", 443, "/x", "", out, sizeof(out)) > 0);
    ASSERT_STR_EQ(out, "https://[::1]/x");
    ASSERT(redirect("127.0.0.1", 0, "/a%20b", "c=d&e", out, sizeof(out)) > 0);
    ASSERT_STR_EQ(out, "https://127.0.0.1/a%20b?c=d&e");
    const char *bad[] = {"",   ":80", "a b",  "a\r\nSet-Cookie: x", "evil.test/x", "a@b",    "[::1", "[zz]",
                         "[]", "a:",  "a:8o", "a:1234567",          "a\"b",        "a:80:90"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long n = redirect(bad[i], 443, "/", "", out, sizeof(out));
        if (n != -1)
            TEST_FAIL_AT("host \"%s\" accepted: %s", bad[i], out);
    }
    ASSERT_EQ(redirect("a.test", 443, "*", "", out, sizeof(out)), -1); /* not a path */
    ASSERT_EQ(redirect("a.test", 443, "", "", out, sizeof(out)), -1);
    ASSERT_EQ(redirect("a.test", 443, "/a\r\nX: y", "", out, sizeof(out)), -1);
    ASSERT_EQ(redirect("a.test", 443, "/", "a b", out, sizeof(out)), -1);
    ASSERT_EQ(redirect("a.test", 443, "/0123456789", "", out, 20), -1); /* does not fit */
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_redirect);
    TEST_MAIN_END();
}
