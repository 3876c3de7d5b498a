/*
 * selector_test.c - unit tests of src/selector.c: RFC 6570 matching by
 * operator, invalid templates as exact topics, bounded prefixes, and the
 * match cache against the uncached answer (a naive model).
 */
#include "../../src/selector.c"

#include "test.h"

static int m(const char *sel, const char *topic)
{
    selector_t *s = selector_try_new(sel, strlen(sel));
    int r = selector_match(s, topic, strlen(topic));
    selector_free(s);
    return r;
}

static void test_exact_and_star(void)
{
    ASSERT(m("urn:a", "urn:a"));
    ASSERT(!m("urn:a", "urn:ab"));
    ASSERT(!m("urn:a", ""));
    ASSERT(m("*", "anything"));
    ASSERT(m("*", ""));
}

static void test_simple_expressions(void)
{
    ASSERT(m("https://ex.com/b/{id}", "https://ex.com/b/1"));
    ASSERT(m("https://ex.com/b/{id}", "https://ex.com/b/"));
    ASSERT(m("https://ex.com/b/{id}", "https://ex.com/b/a%20b"));
    ASSERT(m("https://ex.com/b/{id}", "https://ex.com/b/1,2")); /* a list value */
    ASSERT(!m("https://ex.com/b/{id}", "https://ex.com/b/1/2"));
    ASSERT(!m("https://ex.com/b/{id}", "https://ex.com/c/1"));
    ASSERT(m("{a}{b}", "xy"));
    ASSERT(m("https://ex.com/{a,b}", "https://ex.com/x,y"));
}

static void test_operators(void)
{
    ASSERT(m("https://ex.com/{+p}", "https://ex.com/a/b?c=d#e"));
    ASSERT(m("x{#f}", "x#a/b"));
    ASSERT(m("x{#f}", "x"));
    ASSERT(m("x{.e}", "x.json"));
    ASSERT(m("x{.e}", "x.a.b")); /* "." is unreserved: the value "a.b" */
    ASSERT(!m("x{.e}", "x.a/b"));
    ASSERT(m("x{.e*}", "x.a.b"));
    ASSERT(m("x{/a,b}", "x/1/2"));
    ASSERT(m("x{/a,b}", "x/1"));
    ASSERT(!m("x{/a,b}", "x/1/2/3"));
    ASSERT(m("x{/a*}", "x/1/2/3"));
    ASSERT(m("x{;a,b}", "x;a=1;b=2"));
    ASSERT(m("x{;a,b}", "x;a;b=2"));
    ASSERT(!m("x{;a,b}", "x;c=1"));
    ASSERT(m("x{?a,b}", "x?a=1&b=2"));
    ASSERT(m("x{?a,b}", "x?b=2"));
    ASSERT(!m("x{?a,b}", "x?b=2&a=1")); /* expansion keeps the order */
    ASSERT(m("x{?a}{&b}", "x?a=1&b=2"));
    ASSERT(m("x{&b}", "x&b=1"));
}

static void test_prefix_modifier(void)
{
    ASSERT(m("x/{a:3}", "x/abc"));
    ASSERT(m("x/{a:3}", "x/ab"));
    ASSERT(!m("x/{a:3}", "x/abcd"));
    ASSERT(m("x/{a:100}", "x/abcdefghijklmnopqrstuvwxyz")); /* long prefixes unbounded */
}

static void test_invalid_templates_are_exact(void)
{
    const char *bad[] = {"x/{",    "x/}",     "x/{}",        "x/{a",    "x/{a b}",
                         "x/{=a}", "x/{a:0}", "x/{a:12345}", "x/{{a}}", "x/{a,}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        selector_t *s = selector_try_new(bad[i], strlen(bad[i]));
        ASSERT_EQ(selector_kind(s), SELECTOR_EXACT);
        ASSERT(selector_match(s, bad[i], strlen(bad[i])));
        ASSERT(!selector_match(s, "x/a", 3));
        ASSERT(!selector_is_valid_template(bad[i], strlen(bad[i])));
        selector_free(s);
    }
}

static void test_cache_agrees_and_hits(void)
{
    selector_cache_t *c = selector_cache_new(64);
    const char *sels[] = {"https://ex.com/b/{id}", "https://ex.com/{+p}", "x{?a,b}", "urn:a", "*"};
    const char *topics[] = {"https://ex.com/b/1", "https://ex.com/b/1/2", "x?a=1", "urn:a", "x?b=1&a=2", ""};
    selector_t *s[5];
    for (int i = 0; i < 5; i++)
        s[i] = selector_try_new(sels[i], strlen(sels[i]));
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 5; i++)
            for (int k = 0; k < 6; k++)
                ASSERT_EQ(selector_cache_match(c, s[i], topics[k], strlen(topics[k])),
                          selector_match(s[i], topics[k], strlen(topics[k])));
    uint64_t hits, misses;
    selector_cache_stats(c, &hits, &misses);
    ASSERT(hits > 0);
    ASSERT_UEQ(hits + misses, 3 * 3 * 6); /* only the three templates use the cache */
    /* A new selector with the same text never reads an old selector's entry. */
    selector_t *again = selector_try_new(sels[0], strlen(sels[0]));
    ASSERT(selector_id(again) != selector_id(s[0]));
    selector_free(again);
    for (int i = 0; i < 5; i++)
        selector_free(s[i]);
    selector_cache_free(c);
}

static void test_hostile_topic_is_linear(void)
{
    /* Many adjacent expressions against a long topic of separators: the NFA
     * simulation visits each state once per byte, no backtracking. */
    const char *sel = "{a}{b}{c}{d}{e}{f}{g}{h}{i}{j}{k}{l}{m}{n}{o}{p}!";
    size_t n = 100000;
    char *topic = malloc(n);
    memset(topic, ',', n);
    selector_t *s = selector_try_new(sel, strlen(sel));
    ASSERT_EQ(selector_kind(s), SELECTOR_TEMPLATE);
    ASSERT(!selector_match(s, topic, n));
    topic[n - 1] = '!';
    ASSERT(selector_match(s, topic, n));
    selector_free(s);
    free(topic);
}

/* The work counter a replay budget reads: hits and exact selectors are
 * cheap, a miss costs its simulation (states scanned per byte), so a
 * template whose NFA keeps many states alive counts as what it costs; long
 * topics bypass the cache but still count. */
static void test_cache_work(void)
{
    selector_cache_t *c = selector_cache_new(64);
    ASSERT_UEQ(selector_cache_work(c), 0);
    const char *topic = "https://ex.com/books/12345";
    size_t tl = strlen(topic);
    selector_t *exact = selector_try_new("urn:a", 5), *star = selector_try_new("*", 1);
    (void)selector_cache_match(c, exact, topic, tl);
    (void)selector_cache_match(c, star, topic, tl);
    ASSERT_UEQ(selector_cache_work(c), 0);

    selector_t *cheap = selector_try_new("https://ex.com/books/{id}", 25);
    ASSERT(selector_cache_match(c, cheap, topic, tl));
    uint64_t miss = selector_cache_work(c);
    /* the matching run keeps at least one state alive per byte */
    ASSERT(miss >= SELECTOR_WORK_HIT + SELECTOR_WORK_MATCH + tl);
    ASSERT(selector_cache_match(c, cheap, topic, tl));
    ASSERT_UEQ(selector_cache_work(c) - miss, SELECTOR_WORK_HIT);

    const char *costly = "{+a}{+b}{+c}{+d}{+e}{+f}{+g}{+h}{+i}{+j}{+k}{+l}{+m}{+n}{+o}{+p}/never";
    selector_t *wide = selector_try_new(costly, strlen(costly));
    ASSERT_EQ(selector_kind(wide), SELECTOR_TEMPLATE);
    uint64_t w0 = selector_cache_work(c);
    ASSERT(!selector_cache_match(c, wide, topic, tl));
    uint64_t wide_work = selector_cache_work(c) - w0;
    ASSERT(wide_work > 10 * miss);
    ASSERT(wide_work <=
           SELECTOR_WORK_HIT + SELECTOR_WORK_MATCH + (uint64_t)selector_num_states(wide) * (tl + 1));

    /* Longer than the cache keeps: uncached, counted every time. */
    char long_topic[1000];
    memset(long_topic, 'a', sizeof(long_topic));
    uint64_t l0 = selector_cache_work(c);
    (void)selector_cache_match(c, wide, long_topic, sizeof(long_topic));
    uint64_t l1 = selector_cache_work(c);
    (void)selector_cache_match(c, wide, long_topic, sizeof(long_topic));
    ASSERT(l1 - l0 > sizeof(long_topic));
    ASSERT_UEQ(selector_cache_work(c) - l1, l1 - l0);

    selector_free(exact);
    selector_free(star);
    selector_free(cheap);
    selector_free(wide);
    selector_cache_free(c);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_exact_and_star);
    TEST_RUN(test_simple_expressions);
    TEST_RUN(test_operators);
    TEST_RUN(test_prefix_modifier);
    TEST_RUN(test_invalid_templates_are_exact);
    TEST_RUN(test_cache_agrees_and_hits);
    TEST_RUN(test_cache_work);
    TEST_RUN(test_hostile_topic_is_linear);
    TEST_MAIN_END();
}
