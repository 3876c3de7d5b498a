/*
 * upindex_test.c - unit tests of src/upindex.c: the bucket keys patterns get
 * (fixed host, literal path prefix, the "/" a following part takes), interning
 * and release, and the property the index exists for, checked against a
 * naive model: for every (pattern, topic) pair, if the pattern matches the
 * topic then the index offers the pattern as a candidate for the topic.
 */
#include "../../src/upindex.c"

#include "test.h"

#define BASE "https://hub.example/.well-known/mercure"

static urlpattern_t *P(const char *s)
{
    const char *why = NULL;
    urlpattern_t *p = urlpattern_try_new(s, strlen(s), BASE, &why);
    if (!p)
        TEST_FAIL_AT("pattern %s does not compile: %s", s, why ? why : "?");
    return p;
}

static void test_keys(void)
{
    static const struct {
        const char *pattern, *key;
    } cases[] = {
        {"https://example.com/books/:id", "hexample.com\n/books"},
        {"https://example.com/books/:id?", "hexample.com\n/books"},
        {"https://example.com/books", "hexample.com\n/books"},
        {"https://EXAMPLE.com/a/b/*", "hexample.com\n/a/b"},
        {"/.well-known/mercure/subscriptions/:t/:m/:s", "hhub.example\n/.well-known/mercure/subscriptions"},
        {"https://:sub.example.com/x", "*\n/x"},
        {"https://*.example.com/x/:y", "*\n/x"},
        {"https://example.com/(a|b)/x", "hexample.com\n"}, /* the "/" is the group's prefix */
        {"https://example.com/a{/foo}?/x", "hexample.com\n/a"},
        /* A relative "*" is a path pattern below the base's directory (a
         * subscriber's "*" never gets here: it is the wildcard). */
        {"*", "hhub.example\n/.well-known"},
    };
    char key[600];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        urlpattern_t *p = P(cases[i].pattern);
        if (!p)
            continue;
        size_t pl, kl = upindex__key(p, key, &pl);
        if (kl != strlen(cases[i].key) || memcmp(key, cases[i].key, kl))
            TEST_FAIL_AT("%s: key \"%.*s\", want \"%s\"", cases[i].pattern, (int)kl, key, cases[i].key);
        urlpattern_free(p);
    }
}

static void count_cb(upentry_t *e, void *ctx)
{
    (void)e;
    ++*(int *)ctx;
}

static void test_intern_release(void)
{
    upindex_t *x = upindex_new(BASE);
    ASSERT(x && upindex_new("not a url") == NULL);
    upentry_t *a = upindex_intern(x, P("https://ex.com/a/:id"));
    upentry_t *b = upindex_intern(x, P("https://ex.com/a/:id"));
    upentry_t *c = upindex_intern(x, P("https://ex.com/:x/1"));
    ASSERT(a && a == b && a->refs == 2 && c && c != a && a->id != c->id);
    ASSERT_UEQ(upindex_count(x), 2);
    ASSERT(upindex_find(x, "https://ex.com/a/:id", 20) == a);
    int n = 0;
    upindex_candidates(x, "https://ex.com/a/1", 18, count_cb, &n);
    ASSERT_EQ(n, 2);
    n = 0;
    upindex_candidates(x, "https://other.com/a/1", 21, count_cb, &n);
    ASSERT_EQ(n, 0);
    n = 0;
    ASSERT_UEQ(upindex_candidates(x, "http://[", 8, count_cb, &n), 0); /* not a URL: no lookup */
    upindex_release(x, a);
    upindex_release(x, a);
    upindex_release(x, c);
    ASSERT_UEQ(upindex_count(x), 0);
    upindex_free(x);
}

/* ---- the model: brute force over every pattern ---------------------------------------- */

typedef struct seen {
    upentry_t *want;
    int found;
} seen_t;

static void find_cb(upentry_t *e, void *ctx)
{
    seen_t *s = ctx;
    s->found |= e == s->want;
}

static void test_never_loses_a_match(void)
{
    static const char *const patterns[] = {
        "https://ex.com/books/:id",
        "https://ex.com/books/:id?",
        "https://ex.com/books{/:id}?",
        "https://ex.com/books/*",
        "https://ex.com/books/*?",
        "https://ex.com/shelf/:id+",
        "https://ex.com/shelf/:id*",
        "https://ex.com/:cat/:id",
        "https://ex.com/(books|shelf)/:id",
        "https://:host.com/books/:id",
        "https://ex.com/books/:id.json",
        "https://ex.com/a%20b/:x",
        "https://ex.com/é/:x",
        "https://ex.com/books/:id#frag",
        "https://ex.com/books/:id\\?q=:q",
        "http{s}?://ex.com/books/:id",
        "/books/:id",
        "/.well-known/mercure/subscriptions/:t/:m/:s",
        "/.well-known/mercure/subscriptions{/*}?",
        "urn\\:books\\:*",
        "https://ex.com",
        "https://ex.com/",
        "https://ex.com/books",
        "*",
        "https://ex.com:8443/books/:id",
        "https://[\\:\\:1]/x/:y",
    };
    static const char *const topics[] = {
        "https://ex.com/books/1",
        "https://ex.com/books",
        "https://ex.com/books/",
        "https://ex.com/books/1/2",
        "https://ex.com/shelf/1",
        "https://ex.com/shelf",
        "https://ex.com/shelf/1/2",
        "https://EX.com/books/1",
        "https://ex.com/Books/1",
        "https://ex.com/books/1.json",
        "https://ex.com/a%20b/x",
        "https://ex.com/a b/x",
        "https://ex.com/é/x",
        "https://ex.com/%C3%A9/x",
        "https://ex.com/books/1#frag",
        "https://ex.com/books/1?q=2",
        "http://ex.com/books/1",
        "https://ex.com:8443/books/1",
        "https://ex.com:443/books/1",
        "https://ex.com/./books/../books/1",
        "/books/1",
        "books/1",
        "../books/1",
        "//ex.com/books/1",
        "https://hub.example/books/1",
        "/.well-known/mercure/subscriptions",
        "/.well-known/mercure/subscriptions/exact/a/b",
        "urn:books:1",
        "urn:books",
        "mailto:a@ex.com",
        "https://ex.com",
        "https://ex.com/",
        "https://[::1]/x/1",
        "https://user:pw@ex.com/books/1",
        "",
        "*",
    };
    upindex_t *x = upindex_new(BASE);
    size_t np = sizeof(patterns) / sizeof(patterns[0]), nt = sizeof(topics) / sizeof(topics[0]);
    upentry_t *e[sizeof(patterns) / sizeof(patterns[0])];
    for (size_t i = 0; i < np; i++)
        e[i] = upindex_intern(x, P(patterns[i]));
    int matches = 0;
    for (size_t i = 0; i < np; i++) {
        if (!e[i])
            continue;
        for (size_t t = 0; t < nt; t++) {
            if (!urlpattern_match(e[i]->pat, topics[t], strlen(topics[t])))
                continue;
            matches++;
            seen_t s = {e[i], 0};
            upindex_candidates(x, topics[t], strlen(topics[t]), find_cb, &s);
            if (!s.found)
                TEST_FAIL_AT("%s matches %s but is no candidate for it", patterns[i], topics[t]);
        }
    }
    ASSERT(matches > 30); /* the table exercises matches, not only misses */
    for (size_t i = 0; i < np; i++)
        if (e[i])
            upindex_release(x, e[i]);
    upindex_free(x);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_keys);
    TEST_RUN(test_intern_release);
    TEST_RUN(test_never_loses_a_match);
    TEST_MAIN_END();
}
