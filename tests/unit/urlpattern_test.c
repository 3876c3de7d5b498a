/*
 * urlpattern_test.c - unit tests for src/urlpattern.c (and, through it, the
 * modules it is built on: url, urlcanon, pattern, regex).
 *
 * Hand-written cases: the examples of draft-08 and of the URL Pattern
 * Standard, relative patterns and topics against the hub's URL, case
 * rules, refusals (invalid, unsupported, over budget), the linear-time bound
 * on hostile patterns (counted in state visits, not timed), unparseable
 * topics, and concurrent matching of one compiled pattern. The large-scale
 * checks are tests/e2e/urlpattern-diff.test.mjs (against the reference
 * implementation) and urlpattern-wpt.test.mjs (web-platform-tests).
 */
#include "test.h"

#include "../../src/urlpattern.c"

#include <pthread.h>

#define HUB "https://example.com/.well-known/mercure"

/* Compiles `pat` against the hub's URL; a failed compile fails the test. */
static urlpattern_t *compile(const char *pat)
{
    const char *why = NULL;
    urlpattern_t *p = urlpattern_try_new(pat, strlen(pat), HUB, &why);
    if (!p)
        TEST_FAIL_AT("pattern %s refused: %s", pat, why ? why : "?");
    return p;
}

static int m(const urlpattern_t *p, const char *topic)
{
    return p ? urlpattern_match(p, topic, strlen(topic)) : -1;
}

/* Asserts that pat matches every topic in yes[] and none in no[]. */
static void check(const char *pat, const char *const *yes, const char *const *no)
{
    urlpattern_t *p = compile(pat);
    for (; yes && *yes; yes++)
        if (m(p, *yes) != 1)
            TEST_FAIL_AT("%s should match %s", pat, *yes);
    for (; no && *no; no++)
        if (m(p, *no) != 0)
            TEST_FAIL_AT("%s should not match %s", pat, *no);
    urlpattern_free(p);
}

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Refused, with a reason starting with `prefix`. */
static void refused(const char *pat, const char *base, const char *prefix)
{
    const char *why = NULL;
    urlpattern_t *p = urlpattern_try_new(pat, strlen(pat), base, &why);
    if (p) {
        TEST_FAIL_AT("%s should be refused", pat);
        urlpattern_free(p);
        return;
    }
    if (!why || strncmp(why, prefix, strlen(prefix)) != 0)
        TEST_FAIL_AT("%s: reason \"%s\" does not start with \"%s\"", pat, why ? why : "(null)", prefix);
}

static void test_draft08_examples(void)
{
    check("https://example.com/books/:id",
          L("https://example.com/books/1", "https://example.com/books/abc?x=1#f"),
          L("https://example.com/books/1/2", "https://example.com/books/", "https://example.com/books",
            "http://example.com/books/1", "https://example.com:8443/books/1", "https://example.org/books/1"));
    check("https://example.com/bar/:id", L("https://example.com/bar/42"), L("https://example.com/foo/42"));
    check("https://example.com/users/42/*",
          L("https://example.com/users/42/", "https://example.com/users/42/books/1",
            "https://example.com/users/42/a?b"),
          L("https://example.com/users/43/x", "https://example.com/users/42"));
    /* the relative pattern of the draft, against the hub's own relative topics */
    check("/.well-known/mercure/subscriptions/exact/:topic/:subscriber",
          L("/.well-known/mercure/subscriptions/exact/https%3A%2F%2Fexample.com%2Ffoo/"
            "urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6",
            "https://example.com/.well-known/mercure/subscriptions/exact/a/b"),
          L("/.well-known/mercure/subscriptions/exact/a", "/.well-known/mercure/subscriptions/urlpattern/a/b",
            "https://other.example/.well-known/mercure/subscriptions/exact/a/b"));
    check("/.well-known/mercure/subscriptions/urlpattern/:selector/:subscriber",
          L("/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2F%3Aselector/"
            "urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6"),
          NULL);
}

static void test_standard_examples(void)
{
    check("https://example.com/:category/*",
          L("https://example.com/products/", "https://example.com/blog/our-greatest-product-ever"),
          L("https://example.com/", "http://example.com/products/",
            "https://example.com:8443/blog/our-greatest-product-ever"));
    check("http{s}?://{:subdomain.}?shop.example/products/:id([0-9]+)#reviews",
          L("https://shop.example/products/74205#reviews",
            "https://kathryn@voyager.shop.example/products/74656#reviews",
            "http://insecure.shop.example/products/1701#reviews"),
          L("https://shop.example/products/2000", "http://shop.example:8080/products/0#reviews",
            "https://nx.shop.example/products/01?speed=5#reviews",
            "https://shop.example/products/chair#reviews"));
    const char *why = NULL;
    urlpattern_t *p = urlpattern_try_new("../admin/*", 10, "https://discussion.example/forum/?page=2", &why);
    ASSERT(p != NULL);
    ASSERT_EQ(m(p, "https://discussion.example/admin/"), 1);
    ASSERT_EQ(m(p, "https://edd:librarian@discussion.example/admin/update?id=1"), 1);
    ASSERT_EQ(m(p, "https://discussion.example/forum/admin/"), 0);
    ASSERT_EQ(m(p, "http://discussion.example:8080/admin/update?id=1"), 0);
    urlpattern_free(p);
}

static void test_relative_patterns_and_topics(void)
{
    /* A relative pattern takes protocol, host and port from the hub's URL;
     * search and hash become wildcards, username and password too. */
    urlpattern_t *p = compile("/books/:id");
    if (p) {
        ASSERT_STR_EQ(urlpattern_component(p, URLPATTERN_PROTOCOL), "https");
        ASSERT_STR_EQ(urlpattern_component(p, URLPATTERN_HOSTNAME), "example.com");
        ASSERT_STR_EQ(urlpattern_component(p, URLPATTERN_PORT), "");
        ASSERT_STR_EQ(urlpattern_component(p, URLPATTERN_PATHNAME), "/books/:id");
        ASSERT_STR_EQ(urlpattern_component(p, URLPATTERN_SEARCH), "*");
        ASSERT_STR_EQ(urlpattern_component(p, URLPATTERN_USERNAME), "*");
    }
    ASSERT_EQ(m(p, "/books/1"), 1);                        /* relative topic, resolved too */
    ASSERT_EQ(m(p, "https://example.com/books/1?q#h"), 1); /* absolute topic */
    ASSERT_EQ(m(p, "books/1"), 0);                         /* /.well-known/books/1 */
    ASSERT_EQ(m(p, "//other.example/books/1"), 0);         /* another host */
    ASSERT_EQ(m(p, "/a/../books/1"), 1);                   /* dot segments go */
    ASSERT_EQ(m(p, "/books/%31"), 1);                      /* %31 stays %31: one segment */
    urlpattern_free(p);
    /* A path relative to the hub's path: resolved like a relative URL. */
    check("subscriptions/*", L("/.well-known/subscriptions/x"), L("/.well-known/mercure/subscriptions/x"));
    /* Each fixed piece is canonicalized alone: "./" then "*" is "/.well-known/"
     * then a "/" group, so the path needs an empty segment (the reference agrees). */
    check("./*", L("/.well-known//x"), L("/.well-known/x"));
    check("?q=:v", L(HUB "?q=1"), L(HUB "?q=", "/?q=1"));
    check("#:frag", L(HUB "#top"), L(HUB "#", "/x#top"));
    /* Without a base URL a relative pattern is an error. */
    refused("/books/:id", NULL, "relative pattern without a base URL");
    refused("https://x/", "not a url", "invalid base URL");
    /* An absolute pattern does not need one. */
    const char *why;
    urlpattern_t *q = urlpattern_try_new("https://example.com/*", 21, NULL, &why);
    ASSERT(q != NULL);
    ASSERT_EQ(m(q, "https://example.com/x"), 1);
    ASSERT_EQ(m(q, "/x"), 0); /* no base: a relative topic does not parse */
    urlpattern_free(q);
}

static void test_case_rules(void)
{
    /* Hosts are case-insensitive through URL canonicalization (IDNA too). */
    check("https://EXAMPLE.com/a", L("https://example.COM/a", "https://Example.Com/a"),
          L("https://example.com/A"));
    check("https://café.com/*",
          L("https://xn--caf-dma.com/x", "https://CAFÉ.com/x", "https://caf%C3%A9.com/x"),
          L("https://cafe.com/x"));
    check("https://xn--caf-dma.com/", L("https://café.com/"), NULL);
    check("https://ex%41mple.com/", L("https://example.com/"), NULL); /* percent-decoded like any host */
    /* Schemes are lowercased by the parser too. */
    check("HTTPS://example.com/", L("https://example.com/", "HtTpS://example.com/"), NULL);
    /* Everything else is case-sensitive: no ignoreCase. */
    check("https://example.com/Books/:id/?Q=:v#Top", L("https://example.com/Books/1/?Q=2#Top"),
          L("https://example.com/books/1/?Q=2#Top", "https://example.com/Books/1/?q=2#Top",
            "https://example.com/Books/1/?Q=2#top"));
    check("https://example.com/(a|b)", L("https://example.com/a"), L("https://example.com/A"));
}

static void test_canonical_components(void)
{
    struct {
        const char *pattern;
        urlpattern_component_t c;
        const char *want;
    } cases[] = {
        {"https://example.com:443/", URLPATTERN_PORT, ""},       /* default port */
        {"http://example.com:443/", URLPATTERN_PORT, "443"},     /* not http's */
        {"http{s}?://example.com:443/", URLPATTERN_PORT, "443"}, /* not a scheme: kept */
        {"https://example.com/a b/./c/../é", URLPATTERN_PATHNAME, "/a%20b/%C3%A9"},
        {"https://example.com/:id(\\d+)", URLPATTERN_PATHNAME, "/:id(\\d+)"},
        {"https://example.com/(.*)", URLPATTERN_PATHNAME, "/*"}, /* the full wildcard */
        {"https://example.com/([^\\/]+?)", URLPATTERN_PATHNAME, "/([^\\/]+?)"},
        {"https://example.com/{:a}b", URLPATTERN_PATHNAME, "/{:a}b"}, /* b would extend the name */
        {"https://example.com/?q=é#é", URLPATTERN_SEARCH, "q=%C3%A9"},
        {"https://example.com/?q=é#é", URLPATTERN_HASH, "%C3%A9"},
        {"https://[\\:\\:FFFF\\:1]/", URLPATTERN_HOSTNAME, "[\\:\\:ffff\\:1]"},
        {"https://u\\:p@example.com/", URLPATTERN_USERNAME, "u"}, /* ":p" unescaped is a group */
        {"https://u\\:p@example.com/", URLPATTERN_PASSWORD, "p"},
        {"https://u:p@example.com/", URLPATTERN_USERNAME, "u:p"},
        {"https://u:p@example.com/", URLPATTERN_PASSWORD, "*"},
        {"https://example.com", URLPATTERN_PATHNAME, "*"}, /* nothing after the host: any path */
        {"https://example.com?x", URLPATTERN_PATHNAME, "/"},
        {"urn\\:isbn\\:*", URLPATTERN_PROTOCOL, "urn"},
        {"urn\\:isbn\\:*", URLPATTERN_PATHNAME, "isbn\\:*"},
        {"foo://h/./a b", URLPATTERN_PATHNAME, "/a%20b"}, /* hierarchical non-special path */
        {"mailto\\:a b", URLPATTERN_PATHNAME, "a b"},     /* opaque path: only C0 is encoded */
        {"https://x/#a*#b", URLPATTERN_HASH, "a*#b"},     /* the parser keeps "#b" (a setter would not) */
        {"https://x/?a*\\?b", URLPATTERN_SEARCH, "a*\\?b"},
        {"https://x/##a", URLPATTERN_HASH,
         "a"}, /* but one leading "#" of the hash goes ("process a URLPatternInit") */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        urlpattern_t *p = compile(cases[i].pattern);
        if (p && strcmp(urlpattern_component(p, cases[i].c), cases[i].want) != 0)
            TEST_FAIL_AT("%s: component %d is \"%s\", want \"%s\"", cases[i].pattern, cases[i].c,
                         urlpattern_component(p, cases[i].c), cases[i].want);
        urlpattern_free(p);
    }
}

static void test_syntax(void)
{
    /* The "/" before a group is its prefix: optional or repeated with it. */
    check("https://example.com/x/:a?", L("https://example.com/x", "https://example.com/x/y"),
          L("https://example.com/x/", "https://example.com/x/y/z"));
    check("https://example.com/x/:a+", L("https://example.com/x/y", "https://example.com/x/y/z"),
          L("https://example.com/x", "https://example.com/x/"));
    check("https://example.com/x/:a*", L("https://example.com/x", "https://example.com/x/y/z"),
          L("https://example.com/x/", "https://example.com/xy"));
    check("https://example.com/:a?", NULL, L("https://example.com/")); /* a special URL's path is never "" */
    check("https://example.com/{x}?y", L("https://example.com/y", "https://example.com/xy"),
          L("https://example.com/xxy"));
    check("https://example.com/a{/x/:y}*", L("https://example.com/a", "https://example.com/a/x/1/x/2"),
          L("https://example.com/a/x/1/y/2", "https://example.com/a/x/"));
    check("https://example.com/\\:a\\*", L("https://example.com/:a*"), L("https://example.com/xa"));
    check("https://example.com/:name.html", L("https://example.com/index.html"),
          L("https://example.com/a/b.html"));
    check("https://*.example.com/", L("https://a.example.com/", "https://a.b.example.com/"),
          L("https://example.com/"));
    check("https://{:sub.}?example.com/", L("https://example.com/", "https://a.example.com/"),
          L("https://a.b.example.com/"));
    check("https://example.com:(80|443|8\\d+)/", L("https://example.com:8080/", "https://example.com:80/"),
          L("https://example.com/", "https://example.com:9000/"));
    /* regexp groups: the JavaScript subset */
    check("https://example.com/(\\d{2,3})", L("https://example.com/12", "https://example.com/123"),
          L("https://example.com/1", "https://example.com/1234"));
    check("https://example.com/([[a-z]--[aeiou]]+)", L("https://example.com/xyz"),
          L("https://example.com/xaz"));
    check("https://example.com/([\\w&&[^\\d]]+)", L("https://example.com/a_b"), L("https://example.com/a1"));
    check("https://example.com/((?:ab|cd)+?)", L("https://example.com/abcdab"), L("https://example.com/abc"));
    check("https://example.com/((?<word>\\w+)-\\w)", L("https://example.com/ab-c"),
          L("https://example.com/ab-"));
    check("https://example.com/(a\\b|c)", L("https://example.com/a", "https://example.com/c"), NULL);
    check("https://example.com/?(^x$)", L("https://example.com/?x"), NULL); /* ^ $ hold at the ends */
    check("https://example.com/(^x)", NULL, L("https://example.com/x"));    /* after "/": never */
    check("https://example.com/(\\x41\\u0042\\u{43})", L("https://example.com/ABC"), NULL);
    check("https://example.com/(.)", L("https://example.com/a", "https://example.com/%"),
          L("https://example.com/ab"));
    check("https://example.com/([^])", L("https://example.com/z"), L("https://example.com/"));
    check("https://example.com/([]|a)", L("https://example.com/a"), L("https://example.com/"));
    check("https://example.com/(\\u00e9)", NULL, L("https://example.com/é", "https://example.com/%C3%A9"));
}

static void test_refused_unsupported(void)
{
    const char *pats[] = {
        "https://example.com/(a)/(\\1)",       "https://example.com/((?<n>a)\\k<n>)",
        "https://example.com/((?=a)a)",        "https://example.com/((?!a)b)",
        "https://example.com/((?<=a)b)",       "https://example.com/((?<!a)b)",
        "https://example.com/(\\p{L})",        "https://example.com/([\\q{ab}])",
        "https://example.com/((?i:a))",        "https://example.com/(a{101})",
        "https://example.com/((?<\\u0061>b))",
    };
    for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++)
        refused(pats[i], HUB, "unsupported");
    const char *why = NULL;
    urlpattern_t *p = urlpattern_try_new("https://x/(a\0b)", sizeof("https://x/(a\0b)") - 1, HUB, &why);
    ASSERT(p == NULL && why && !strncmp(why, "unsupported", 11));
    urlpattern_free(p);
}

static void test_refused_invalid(void)
{
    const char *pats[] = {
        "https://example.com/(",
        "https://example.com/:",
        "https://example.com/{a",
        "https://example.com/(a)(",
        "https://ex ample.com/",
        "https://example.com/:a/:a",
        "https://example.com/(?a)",
        "https://example.com/((a))",
        "https://example.com/(a{2,1})",
        "https://example.com/([z-a])",
        "https://example.com/([a-])",
        "https://example.com/(a**)",
        "https://example.com/(])",
        "https://example.com/({)",
        "https://example.com/([(])",
        "https://example.com/(\\c)",
        "https://example.com/(\\e)",
        "https://example.com/([&&a])",
        "https://example.com:99999/",
        "https://example.com:8a/",
        "https://[::1/",
        "https://bad^host/",
        "https://example.com/((?<n>a)(?<n>b))",
        "https://example.com/\\",
        "https://example.com/{/(?<n>a)}+", /* the group is written twice: a duplicate name */
        "1x://example.com/",
        ".f://example.com/", /* not schemes */
    };
    for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
        const char *why = NULL;
        urlpattern_t *p = urlpattern_try_new(pats[i], strlen(pats[i]), HUB, &why);
        if (p)
            TEST_FAIL_AT("%s should be refused", pats[i]);
        else if (!why || !strncmp(why, "unsupported", 11))
            TEST_FAIL_AT("%s: refused as \"%s\", want invalid", pats[i], why ? why : "(null)");
        urlpattern_free(p);
    }
    refused("https://example.com/\xff", HUB, "pattern is not UTF-8");
}

static void test_budgets(void)
{
    char *big = malloc(URLPATTERN_MAX_PATTERN + 2);
    memset(big, 'a', URLPATTERN_MAX_PATTERN + 1);
    big[URLPATTERN_MAX_PATTERN + 1] = 0;
    memcpy(big, "https://x/", 10);
    refused(big, HUB, "pattern too long");
    big[URLPATTERN_MAX_PATTERN] = 0; /* exactly the limit: fixed text, fine */
    urlpattern_t *p = compile(big);
    urlpattern_free(p);
    free(big);
    /* {n,m} expands: 30 x 100 states are too many for one pattern. */
    char pat[1024] = "https://x/(";
    for (int i = 0; i < 30; i++)
        strcat(pat, "[^x]{0,100}");
    strcat(pat, "x)");
    refused(pat, HUB, "pattern too complex");
    /* Nested counted repetitions of nothing allocate no state but are bounded too. */
    refused("https://x/((?:(?:(?:(?:){100}){100}){100}){100})", HUB, "pattern too complex");
    /* A topic over the limit matches nothing, even "*". */
    p = compile("*://*");
    char *topic = malloc(URLPATTERN_MAX_TOPIC + 2);
    memset(topic, 'a', URLPATTERN_MAX_TOPIC + 1);
    memcpy(topic, "https://x/", 10);
    ASSERT_EQ(urlpattern_match(p, topic, URLPATTERN_MAX_TOPIC), 1);
    ASSERT_EQ(urlpattern_match(p, topic, URLPATTERN_MAX_TOPIC + 1), 0);
    free(topic);
    urlpattern_free(p);
}

/* Hostile patterns finish in linear time: asserted in state visits, with the
 * bound (component length + 1) x states, not in seconds. */
static void test_hostile_linear(void)
{
    const char *pats[] = {"https://x/(a+)+b", "https://x/((?:a|a)*)*b", "https://x/(a*a*a*a*a*a*a*a*a*a*b)",
                          "https://x/(.*a.*a.*a.*a.*a.*a.*a.*a.*a.*a.*b)", "https://x/((?:a?){30}a{30})"};
    char topic[4096];
    int n = snprintf(topic, sizeof(topic), "https://x/");
    memset(topic + n, 'a', sizeof(topic) - (size_t)n - 1);
    topic[sizeof(topic) - 1] = 0;
    size_t len = strlen(topic);
    for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
        urlpattern_t *p = compile(pats[i]);
        if (!p)
            continue;
        ASSERT_EQ(urlpattern_match(p, topic, len), 0);
        uint64_t steps = urlpattern__last_steps();
        uint64_t bound = (uint64_t)(len + 1) * (uint64_t)urlpattern_states(p);
        if (steps > bound || steps > URLPATTERN_MAX_STEPS + (uint64_t)urlpattern_states(p))
            TEST_FAIL_AT("%s: %ju state visits, over the bound %ju", pats[i], (uintmax_t)steps,
                         (uintmax_t)bound);
        urlpattern_free(p);
    }
    /* The step budget cuts a heavy pattern on a long topic short: no match,
     * and no more than the budget (plus one position's worth) spent. */
    char pat[2048] = "https://x/";
    for (int i = 0; i < 150; i++)
        snprintf(pat + strlen(pat), sizeof(pat) - strlen(pat), ":a%d*", i);
    urlpattern_t *p = compile(pat);
    if (p) {
        ASSERT_EQ(urlpattern_match(p, topic, len), 0);
        ASSERT(urlpattern__last_steps() <= URLPATTERN_MAX_STEPS + (uint64_t)urlpattern_states(p));
        ASSERT_EQ(m(p, "https://x/a/b/c"), 1); /* short topics still match */
    }
    urlpattern_free(p);
}

static void test_unparseable_topics(void)
{
    urlpattern_t *p = compile("*://*:*/*");
    if (!p)
        return;
    ASSERT_EQ(m(p, "https://x/"), 1);
    ASSERT_EQ(m(p, "https://exa mple.com/"), 0);
    ASSERT_EQ(m(p, "http://[::1/"), 0);
    ASSERT_EQ(m(p, "https://x:99999/"), 0);
    ASSERT_EQ(m(p, "https://xn--a/"), 0); /* invalid punycode */
    ASSERT_EQ(urlpattern_match(p, "https://x/\xff", 11), 0);
    ASSERT_EQ(urlpattern_match(p, "https://x/\0", 11), 1); /* NUL is percent-encoded, not an end */
    urlpattern_free(p);
    /* "*" and "" are relative references: resolved, they are paths. */
    check("/.well-known/*", L("*", ""), NULL);
}

static void test_dictionary_form(void)
{
    urlpattern_init_t in = {.value = {[URLPATTERN_PATHNAME] = "/foo/:bar"}};
    const char *why;
    urlpattern_t *p = urlpattern__try_new_init(&in, &why);
    ASSERT(p != NULL);
    if (!p)
        return;
    ASSERT_STR_EQ(urlpattern_component(p, URLPATTERN_PROTOCOL), "*");
    ASSERT_EQ(urlpattern_match(p, "ftp://a/foo/1", 13), 1);
    urlpattern_init_t input = {.value = {[URLPATTERN_PATHNAME] = "/foo/x"}};
    ASSERT_EQ(urlpattern__match_init(p, &input, NULL), 1);
    ASSERT_EQ(urlpattern__match_url(p, "/foo/x", 6, "https://h/", NULL), 1);
    urlpattern_free(p);
}

static void test_accessors(void)
{
    const char *src = "https://example.com/(\\d+)";
    urlpattern_t *p = compile(src);
    if (!p)
        return;
    ASSERT_STR_EQ(urlpattern_text(p), src);
    ASSERT_UEQ(urlpattern_len(p), strlen(src));
    ASSERT_EQ(urlpattern_has_regexp_groups(p), 1);
    ASSERT(urlpattern_states(p) > 0 && urlpattern_states(p) <= URLPATTERN_MAX_STATES);
    /* Recompiling the normalized components gives the same components. */
    char again[512];
    snprintf(again, sizeof(again), "%s://%s%s", urlpattern_component(p, URLPATTERN_PROTOCOL),
             urlpattern_component(p, URLPATTERN_HOSTNAME), urlpattern_component(p, URLPATTERN_PATHNAME));
    urlpattern_t *q = compile(again);
    if (q)
        for (int c = 0; c < URLPATTERN_COMPONENTS; c++)
            ASSERT_STR_EQ(urlpattern_component(q, c), urlpattern_component(p, c));
    urlpattern_free(q);
    urlpattern_free(p);
    urlpattern_t *r = compile("https://example.com/:id");
    ASSERT_EQ(urlpattern_has_regexp_groups(r), 0);
    urlpattern_free(r);
}

/* One compiled pattern, matched from several threads at once. */
typedef struct job {
    const urlpattern_t *p;
    int wrong;
} job_t;

static void *matcher(void *arg)
{
    job_t *j = arg;
    for (int i = 0; i < 2000; i++) {
        char t[64];
        snprintf(t, sizeof(t), "https://example.com/books/%d%s", i, i % 3 ? "" : "/x");
        if (urlpattern_match(j->p, t, strlen(t)) != (i % 3 != 0))
            j->wrong++;
    }
    return NULL;
}

static void test_threads(void)
{
    urlpattern_t *p = compile("https://example.com/books/(\\d+)");
    if (!p)
        return;
    pthread_t th[4];
    job_t jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job_t){p, 0};
        ASSERT_EQ(pthread_create(&th[i], NULL, matcher, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ASSERT_EQ(jobs[i].wrong, 0);
    }
    urlpattern_free(p);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_draft08_examples);
    TEST_RUN(test_standard_examples);
    TEST_RUN(test_relative_patterns_and_topics);
    TEST_RUN(test_case_rules);
    TEST_RUN(test_canonical_components);
    TEST_RUN(test_syntax);
    TEST_RUN(test_refused_unsupported);
    TEST_RUN(test_refused_invalid);
    TEST_RUN(test_budgets);
    TEST_RUN(test_hostile_linear);
    TEST_RUN(test_unparseable_topics);
    TEST_RUN(test_dictionary_form);
    TEST_RUN(test_accessors);
    TEST_RUN(test_threads);
    TEST_MAIN_END();
}
