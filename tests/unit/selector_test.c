/*
 * selector_test.c - unit tests of src/selector.c: RFC 6570 matching by
 * operator, invalid templates as exact topics, bounded prefixes, the
 * match cache against the uncached answer (a naive model), and the lazy
 * DFA against the plain NFA simulation (the reference): agreement over
 * many templates and topics, flushes and the NFA fallback under a tiny
 * cap, its cost in work units, its memory bound; which path answers
 * through the cache (a warm DFA, else the cache, else a match) and what
 * each costs; the DFA's owner thread.
 */
#include "../../src/selector.c"

#include "test.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Variables of one operator share one value class (what the DFA's byte
 * classes are computed from); the limit on variables is unchanged (it was
 * one class per expansion built, two per variable): 32 make a template, 33
 * an exact topic. */
static void test_value_classes_shared(void)
{
    const char *costly = "{+a}{+b}{+c}{+d}{+e}{+f}{+g}{+h}/x{y}{.z*}{.w*}{/v}";
    selector_t *s = selector_try_new(costly, strlen(costly));
    ASSERT_EQ(selector_kind(s), SELECTOR_TEMPLATE);
    ASSERT_EQ(s->num_classes, 4); /* "+", "", "." exploded, "/" */
    ASSERT(selector_match(s, "a/b/c/x1.e.f=g/h", 16));
    ASSERT(!selector_match(s, "a/b/c/x1/h/i", 12));
    selector_free(s);
    char big[33 * 5 + 1];
    for (int vars = 32; vars <= 33; vars++) {
        size_t n = 0;
        for (int v = 0; v < vars; v++)
            n += (size_t)snprintf(big + n, sizeof(big) - n, "{v%d}", v);
        s = selector_try_new(big, n);
        ASSERT_EQ(selector_kind(s), vars == 32 ? SELECTOR_TEMPLATE : SELECTOR_EXACT);
        ASSERT_EQ(selector_is_valid_template(big, n), vars == 32);
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
    /* Only the three templates use the cache, and only while their DFAs
     * lack a state a topic needs: in the first round. */
    ASSERT(misses > 0);
    ASSERT(hits + misses <= 3 * 6);

    /* A template that gave up its DFA (a tiny cap, topics that need a new
     * state at nearly every byte) is simulated as an NFA: the cache saves
     * that when a topic comes back. */
    selector_t *h = selector_try_new("{+a}/{+b:16}!", 13);
    selector__dfa_limit(h, 3, SELECTOR__DFA_NORMAL);
    char t[40];
    for (int i = 0; i < 100 && !(h->dfa && h->dfa->nfa_only); i++) {
        for (int k = 0; k < 40; k++)
            t[k] = "/ab"[(i * 7 + k * k) % 3];
        (void)selector_match(h, t, sizeof(t));
    }
    ASSERT(h->dfa->nfa_only);
    uint64_t w0 = selector_cache_work(c), hits0, misses0;
    selector_cache_stats(c, &hits0, &misses0);
    int r = selector_cache_match(c, h, t, sizeof(t));
    uint64_t w1 = selector_cache_work(c);
    ASSERT_EQ(selector_cache_match(c, h, t, sizeof(t)), r);
    ASSERT_EQ(r, selector_match_nfa(h, t, sizeof(t)));
    ASSERT(w1 - w0 > SELECTOR_WORK_HIT + 2 * sizeof(t)); /* NFA steps: several states alive */
    ASSERT_UEQ(selector_cache_work(c) - w1, SELECTOR_WORK_HIT);
    selector_cache_stats(c, &hits, &misses);
    ASSERT_UEQ(hits, hits0 + 1);
    ASSERT_UEQ(misses, misses0 + 1);
    selector_free(h);
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

/* The work counter a replay budget reads: exact selectors cost nothing, a
 * warm DFA one unit per byte, a miss what it did (table steps, and the NFA
 * states scanned to build the DFA states it needed), so a template whose
 * NFA keeps many states alive counts as what it costs until its DFA is
 * built; long topics bypass the cache but still count. */
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
    /* at least the fixed costs, making the DFA, and one table step per
     * byte after the prefix */
    ASSERT(miss >= SELECTOR_WORK_HIT + SELECTOR_WORK_MATCH + SELECTOR_WORK_DFA_NEW(cheap->num_states) + 5);
    /* again: the DFA knows the way (no hash): the fixed cost, one unit for
     * the 21-byte prefix, a step per digit */
    ASSERT(selector_cache_match(c, cheap, topic, tl));
    ASSERT_UEQ(selector_cache_work(c) - miss, SELECTOR_WORK_MATCH + 1 + 5);

    const char *costly = "{+a}{+b}{+c}{+d}{+e}{+f}{+g}{+h}{+i}{+j}{+k}{+l}{+m}{+n}{+o}{+p}/never";
    selector_t *wide = selector_try_new(costly, strlen(costly));
    ASSERT_EQ(selector_kind(wide), SELECTOR_TEMPLATE);
    uint64_t w0 = selector_cache_work(c);
    ASSERT(!selector_cache_match(c, wide, topic, tl));
    uint64_t wide_work = selector_cache_work(c) - w0 - SELECTOR_WORK_DFA_NEW(wide->num_states);
    /* the first match builds its DFA states: NFA steps over ~200 states */
    ASSERT(wide_work > 10 * (miss - SELECTOR_WORK_DFA_NEW(cheap->num_states)));
    ASSERT(wide_work <=
           SELECTOR_WORK_HIT + SELECTOR_WORK_MATCH + (uint64_t)(selector_num_states(wide) + 2) * (tl + 1));

    /* Longer than the cache keeps: uncached, counted every time; once the
     * DFA has its states, one unit per byte. */
    char long_topic[1000];
    memset(long_topic, 'a', sizeof(long_topic));
    uint64_t l0 = selector_cache_work(c);
    (void)selector_cache_match(c, wide, long_topic, sizeof(long_topic));
    uint64_t l1 = selector_cache_work(c);
    (void)selector_cache_match(c, wide, long_topic, sizeof(long_topic));
    uint64_t l2 = selector_cache_work(c);
    (void)selector_cache_match(c, wide, long_topic, sizeof(long_topic));
    ASSERT(l1 - l0 >= sizeof(long_topic));
    ASSERT_UEQ(l2 - l1, SELECTOR_WORK_MATCH + sizeof(long_topic));
    ASSERT_UEQ(selector_cache_work(c) - l2, l2 - l1);

    selector_free(exact);
    selector_free(star);
    selector_free(cheap);
    selector_free(wide);
    selector_cache_free(c);
}

/* ---- the lazy DFA against the plain NFA ------------------------------------------ */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* A random topic the template matches: a random walk through its NFA from
 * the start to the accepting state (a byte of the class on a class edge).
 * Returns its length, or -1 if the walk did not get there within `max`. */
static int random_expansion(const selector_t *s, char *out, int max)
{
    int x = 0, n = 0;
    for (int steps = 0; steps < 20 * max; steps++) {
        const nstate_t *st = &s->states[x];
        if (x == s->accept && rnd(4) == 0)
            return n;
        int opts = (st->eps[0] >= 0) + (st->eps[1] >= 0) + (st->edge != EDGE_NONE);
        if (!opts)
            return x == s->accept ? n : -1;
        int k = (int)rnd((uint32_t)opts);
        if (st->edge != EDGE_NONE && k == opts - 1) {
            if (n == max)
                return -1;
            int ch = st->byte;
            if (st->edge == EDGE_CLASS)
                do
                    ch = (int)rnd(256);
                while (!cls_has(&s->classes[st->cls], (unsigned char)ch));
            out[n++] = (char)ch;
            x = st->next;
        } else {
            x = st->eps[k];
        }
    }
    return -1;
}

/* Topics for a template: its random expansions, the same mutated (a byte
 * changed, removed or added: near misses), and random strings over the
 * template's own bytes. */
static int make_topic(const selector_t *s, char *out, int max)
{
    int n;
    switch (rnd(3)) {
    case 0:
        if ((n = random_expansion(s, out, max)) >= 0)
            return n;
        /* fall through */
    case 1:
        if ((n = random_expansion(s, out, max - 1)) > 0) {
            int at = (int)rnd((uint32_t)n);
            switch (rnd(3)) {
            case 0:
                out[at] = s->text[rnd((uint32_t)s->len)];
                break;
            case 1:
                memmove(out + at, out + at + 1, (size_t)(n - at - 1));
                n--;
                break;
            default:
                memmove(out + at + 1, out + at, (size_t)(n - at));
                out[at] = "/,=&?.;#a%"[rnd(10)];
                n++;
            }
            return n;
        }
        /* fall through */
    default:
        n = (int)rnd((uint32_t)max + 1);
        for (int i = 0; i < n; i++)
            out[i] = rnd(8) ? s->text[rnd((uint32_t)s->len)] : (char)rnd(256);
        return n;
    }
}

static const char *const dfa_templates[] = {
    "https://example.com/books/{id}",
    "https://ex.com/{+path}",
    "https://ex.com/{a}/{b}{?x,y,z}",
    "https://ex.com/users/{user}/books/{book}{?fields,page}{#frag}",
    "x{;a,b}{&c}{#f}{.e}",
    "x{.e*}{/p*}{;m*}{?q*}{&r*}",
    "{a}{b}{c}{d}{e}{f}{g}{h}!",
    "{+a}{+b}{+c}{+d}{+e}{+f}{+g}{+h}{+i}{+j}{+k}{+l}{+m}{+n}{+o}{+p}{+q}{+r}{+s}{+t}{+u}{+v}{+w}{+x}{+y}"
    "{+z}{+A}{+B}{+C}{+D}{+E}/never-0",
    "{+a}/{+b:16}!",
    "{+a}x{+b:5}y{#c:3}",
    "{a:3}{b:2},{c:16}",
    "/{x:1}{y:2}{z:3}/",
    "urn:{a}:{b}:{c}",
    "{+a},{b}",
    "a{/x,y,z}b{.u,v}c",
    "{?a,b,c}{&d,e}",
    "{;a*,b,c:2}",
    "{#a,b*}",
    "caf\xc3\xa9/{name}/\xe2\x82\xac{+x}",
    "%20{x}%41",
    "{x}{x}{x}",
    "http://h/{a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p}",
};

/* Compares the DFA (as built, then capped tight: flushes, fallback) with
 * the plain NFA over many topics per template. Returns matches seen. */
static long dfa_agrees(selector_t *s, int topics, int max_len)
{
    char buf[256];
    long matched = 0;
    int failed = 0;
    for (int i = 0; i < topics; i++) {
        int n = make_topic(s, buf, max_len);
        int want = selector_match_nfa(s, buf, (size_t)n);
        int got = selector_match(s, buf, (size_t)n);
        if (got != want && failed++ < 3) /* the first few tell the story */
            TEST_FAIL_AT("%s (DFA cap %d, mode %d) on \"%.*s\": DFA %d, NFA %d", s->text, s->dfa_limit,
                         s->dfa_mode, n, buf, got, want);
        matched += want;
    }
    return matched;
}

static void test_dfa_agrees_with_nfa(void)
{
    long matched = 0, total = 0;
    for (size_t t = 0; t < sizeof(dfa_templates) / sizeof(dfa_templates[0]); t++) {
        selector_t *s = selector_try_new(dfa_templates[t], strlen(dfa_templates[t]));
        ASSERT_EQ(selector_kind(s), SELECTOR_TEMPLATE);
        for (int cap = 0; cap < 4; cap++) {
            /* the default cap; then 3 states with flushes only, 5 with the
             * fallback allowed, 3 with fallbacks and retries at every turn */
            static const int limits[] = {0, 3, 5, 3};
            static const int modes[] = {SELECTOR__DFA_NORMAL, SELECTOR__DFA_KEEP, SELECTOR__DFA_NORMAL,
                                        SELECTOR__DFA_EAGER};
            selector__dfa_limit(s, limits[cap], modes[cap]);
            matched += dfa_agrees(s, 2000, 120);
            total += 2000;
        }
        selector_free(s);
    }
    /* Both answers were well represented. */
    ASSERT(matched > total / 5);
    ASSERT(matched < total * 4 / 5);
}

/* A tiny cap forces flushes (the DFA goes on from the state being built);
 * a template whose topics never stay in a few states falls back to the NFA,
 * from the byte where the DFA gave up, with the same answers, and tries the
 * DFA again later. */
static void test_dfa_flush_and_fallback(void)
{
    const char *costly = dfa_templates[7];
    selector_t *s = selector_try_new(costly, strlen(costly));
    selector__dfa_limit(s, 3, SELECTOR__DFA_KEEP);
    ASSERT(dfa_agrees(s, 3000, 200) > 0);
    ASSERT(s->dfa->flushes > 10);
    ASSERT(!s->dfa->nfa_only);
    ASSERT(s->dfa->n <= 3);

    /* flushes with the fallback allowed: short random topics build a state
     * for nearly every byte, so the DFA gives up (and retries later) */
    selector__dfa_limit(s, 3, SELECTOR__DFA_NORMAL);
    (void)dfa_agrees(s, 3000, 64);
    ASSERT(s->dfa->gave_up >= 1);
    ASSERT(s->dfa->flushes >= DFA_BAD_FLUSHES * s->dfa->gave_up);
    ASSERT(!s->dfa->nfa_only || s->dfa->arena == NULL);
    selector_free(s);

    /* The default cap: "{+a}/{+b:16}!" needs a DFA state per set of '/'
     * positions among the last 17 bytes; random topics over "/a" fill any
     * small DFA. */
    const char *hostile = "{+a}/{+b:16}!";
    s = selector_try_new(hostile, strlen(hostile));
    char topic[65];
    int agreed = 1;
    for (int i = 0; i < 4000 && !(i >= 2000 && s->dfa->nfa_only); i++) {
        for (int k = 0; k < 64; k++)
            topic[k] = rnd(2) ? '/' : 'a';
        topic[64] = '!';
        int n = 48 + (int)rnd(17);
        agreed &=
            selector_match(s, topic + 65 - n, (size_t)n) == selector_match_nfa(s, topic + 65 - n, (size_t)n);
    }
    ASSERT(agreed);
    ASSERT(s->dfa->nfa_only);
    ASSERT(s->dfa->arena == NULL);
    uint32_t gave_up = s->dfa->gave_up;
    ASSERT(gave_up >= 1);
    ASSERT_UEQ(s->dfa->flushes, DFA_BAD_FLUSHES * gave_up);

    /* Topics that a small DFA serves well: once the NFA has cost
     * DFA_RETRY_FACTOR times what giving up did, the DFA is back, and
     * stays (no more flushes), with the same answers. */
    int retried_after = -1;
    for (int i = 0; i < 100000 && retried_after < 0; i++) {
        memset(topic, 'a', sizeof(topic));
        topic[i % 64] = '/';
        agreed &= selector_match(s, topic, sizeof(topic)) == selector_match_nfa(s, topic, sizeof(topic));
        if (!s->dfa->nfa_only)
            retried_after = i;
    }
    ASSERT(retried_after > 100); /* not at once: the NFA work comes first */
    for (int i = 0; i < 1000; i++) {
        memset(topic, 'a', sizeof(topic));
        topic[i % 64] = '/';
        topic[(i * 7) % 64] = '!';
        agreed &= selector_match(s, topic, sizeof(topic)) == selector_match_nfa(s, topic, sizeof(topic));
    }
    ASSERT(agreed);
    ASSERT(!s->dfa->nfa_only);
    ASSERT(s->dfa->arena != NULL);
    ASSERT_UEQ(s->dfa->gave_up, gave_up);
    ASSERT_UEQ(s->dfa->flushes, DFA_BAD_FLUSHES * gave_up);
    selector_free(s);
}

/* The point of the DFA: the costly unprefixed template (31 reserved
 * expansions, ~300 NFA states alive per byte) against 10,000 fresh 31-byte
 * topics costs about one unit per byte once its few states are built, and
 * the DFA stays small; the plain simulation costs ~9,000 per topic. */
static void test_dfa_cost(void)
{
    const char *costly = dfa_templates[7];
    selector_t *s = selector_try_new(costly, strlen(costly));
    selector_cache_t *c = selector_cache_new(64);
    char topic[48];
    for (int i = 0; i < 100; i++) { /* warm-up */
        snprintf(topic, sizeof(topic), "https://honest.example/i/%06u", (unsigned)i % 1000000);
        (void)selector_cache_match(c, s, topic, 31);
    }
    void *arena = s->dfa->arena;
    uint64_t w0 = selector_cache_work(c);
    for (int i = 100; i < 10100; i++) {
        snprintf(topic, sizeof(topic), "https://honest.example/i/%06u", (unsigned)i % 1000000);
        ASSERT(!selector_cache_match(c, s, topic, 31));
    }
    uint64_t per_match = (selector_cache_work(c) - w0) / 10000;
    ASSERT(per_match <= SELECTOR_WORK_MATCH + 31); /* the DFA knew the way: no cache lookup */
    ASSERT(s->dfa->arena == arena);                /* nothing allocated after the warm-up */
    ASSERT(s->dfa->n <= 12);
    ASSERT_UEQ(s->dfa->flushes, 0);

    uint64_t nfa = 0;
    ASSERT(!template_match(s, topic, 31, &nfa));
    ASSERT(nfa > 100 * per_match);

    /* Random topics of value characters (every topic a new string, every
     * byte class): still a handful of states. */
    uint64_t w1 = selector_cache_work(c);
    for (int i = 0; i < 10000; i++) {
        for (int k = 0; k < 31; k++)
            topic[k] = "abc/-0123456789nevr.:?=&%"[rnd(25)];
        (void)selector_cache_match(c, s, topic, 31);
    }
    ASSERT((selector_cache_work(c) - w1) / 10000 <= SELECTOR_WORK_HIT + SELECTOR_WORK_MATCH + 40);
    ASSERT(s->dfa->n <= 16);
    selector_cache_free(c);
    selector_free(s);
}

/* Whatever the template and the topics, a DFA's arena stays within
 * DFA_MAX_BYTES, the largest templates included. */
static void test_dfa_memory_bound(void)
{
    /* ~500 states and ~60 byte classes: five pairs of bounded reserved
     * runs, each followed by twelve literal bytes no other pair is */
    const char *lits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!$'()";
    char big[512];
    size_t n = 0;
    for (int v = 0; v < 5; v++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "{+a%d:16,b%d:16}%.12s", v, v, lits + 12 * v);
    selector_t *s = selector_try_new(big, n);
    ASSERT_EQ(selector_kind(s), SELECTOR_TEMPLATE);
    ASSERT(selector_num_states(s) > 400);
    (void)dfa_agrees(s, 10, 200);
    ASSERT(s->dfa->ncls > 50);
    for (size_t t = 0; t < sizeof(dfa_templates) / sizeof(dfa_templates[0]) + 1; t++) {
        selector_t *x = t ? selector_try_new(dfa_templates[t - 1], strlen(dfa_templates[t - 1])) : s;
        (void)dfa_agrees(x, 500, 200);
        dfa_t *d = x->dfa;
        size_t per_state = (size_t)d->words * 8 + 4 + (size_t)d->ncls * 2;
        ASSERT(d->max_states >= DFA_MIN_STATES);
        ASSERT((size_t)d->max_states * per_state + (d->slot_mask + 1) * 2 <= DFA_MAX_BYTES ||
               d->max_states == DFA_MIN_STATES);
        if (d->arena)
            ASSERT((size_t)d->cap * per_state + (d->slot_mask + 1) * 2 <= DFA_MAX_BYTES);
        if (t)
            selector_free(x);
    }
    selector_free(s);
}

/* ---- the cache with the DFA: which path answers, what it costs ---------------------- */

typedef struct probe {
    uint64_t work, hits, misses; /* what one call added */
} probe_t;

static int probed(selector_cache_t *c, selector_t *s, const char *t, size_t n, int known_only, probe_t *p)
{
    uint64_t w0 = selector_cache_work(c), h0, m0, h1, m1;
    selector_cache_stats(c, &h0, &m0);
    int r = known_only ? selector_cache_known(c, s, t, n) : selector_cache_match(c, s, t, n);
    selector_cache_stats(c, &h1, &m1);
    *p = (probe_t){selector_cache_work(c) - w0, h1 - h0, m1 - m0};
    return r;
}

/* A warm DFA answers without the cache (no hash, no hit, no miss), fresh
 * topics included; a cold template or a step the DFA lacks goes through
 * the cache (a miss, then the match stored); a template whose DFA was
 * flushed or given up finds a topic that comes back in the cache (a hit).
 * selector_cache_known gives the same answers where one is known, else -1
 * without building or simulating anything. */
static void test_cache_paths(void)
{
    selector_cache_t *c = selector_cache_new(256);
    const char *tx = "https://ex.com/b/{id}";
    selector_t *s = selector_try_new(tx, strlen(tx));
    size_t p = 17; /* "https://ex.com/b/", compared by memcmp */
    ASSERT_UEQ((size_t)s->prefix_len, p);
    probe_t pr;

    /* cold: no DFA yet, so known_only cannot answer, builds nothing */
    ASSERT_EQ(probed(c, s, "https://ex.com/b/1", 18, 1, &pr), -1);
    ASSERT(s->dfa == NULL);
    ASSERT_UEQ(pr.misses, 1);
    ASSERT_UEQ(pr.work, SELECTOR_WORK_HIT);
    /* the first match: a miss, then the DFA's first states (start, and
     * within a value: both of its steps), the answer cached */
    ASSERT_EQ(probed(c, s, "https://ex.com/b/12", 19, 0, &pr), 1);
    ASSERT_UEQ(pr.misses, 1);
    ASSERT_UEQ(pr.hits, 0);
    ASSERT(pr.work > SELECTOR_WORK_HIT + SELECTOR_WORK_MATCH + 1);
    ASSERT(s->dfa != NULL && s->dfa->n > 2);
    /* warm: that topic and fresh ones of the same shape, by the DFA alone:
     * the fixed cost, one unit per 16 prefix bytes, one per byte after it */
    static const char *const fresh[] = {"https://ex.com/b/1", "https://ex.com/b/2", "https://ex.com/b/12345",
                                        "https://ex.com/b/x-y_z.9"};
    for (int known_only = 0; known_only < 2; known_only++)
        for (size_t i = 0; i < sizeof(fresh) / sizeof(fresh[0]); i++) {
            size_t n = strlen(fresh[i]);
            ASSERT_EQ(probed(c, s, fresh[i], n, known_only, &pr), 1);
            ASSERT_UEQ(pr.hits + pr.misses, 0);
            ASSERT_UEQ(pr.work, SELECTOR_WORK_MATCH + p / 16 + n - p);
        }
    /* a step the DFA has not built ('/' after the value): known_only walks
     * to it and gives up (twice: it built nothing); a match builds it, and
     * caches the answer */
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(probed(c, s, "https://ex.com/b/1/2", 20, 1, &pr), -1);
        ASSERT_UEQ(pr.misses, 1);
        ASSERT_UEQ(pr.work, SELECTOR_WORK_MATCH + p / 16 + 1 + SELECTOR_WORK_HIT);
    }
    ASSERT_EQ(probed(c, s, "https://ex.com/b/1/2", 20, 0, &pr), 0);
    ASSERT_UEQ(pr.misses, 1);
    /* ... after which the DFA knows it: no cache */
    ASSERT_EQ(probed(c, s, "https://ex.com/b/7/8", 20, 0, &pr), 0);
    ASSERT_UEQ(pr.hits + pr.misses, 0);
    /* a topic outside the literal prefix: by memcmp, no cache either */
    ASSERT_EQ(probed(c, s, "https://ex.org/b/1", 18, 0, &pr), 0);
    ASSERT_UEQ(pr.hits + pr.misses, 0);
    ASSERT_UEQ(pr.work, SELECTOR_WORK_MATCH + p / 16);
    selector_free(s);

    /* Flushed: the costly template under a 3-state cap (flushes only) never
     * holds every state of an honest topic at once, so a topic that comes
     * back is a hit, costing a lookup and a partial walk. */
    const char *costly = dfa_templates[7];
    s = selector_try_new(costly, strlen(costly));
    selector__dfa_limit(s, 3, SELECTOR__DFA_KEEP);
    const char *t1 = "https://honest.example/i/000001", *t2 = "urn:x:y/z";
    ASSERT_EQ(probed(c, s, t1, 31, 0, &pr), 0);
    ASSERT_UEQ(pr.misses, 1);
    ASSERT(s->dfa->flushes > 0);
    ASSERT_EQ(probed(c, s, t2, 9, 0, &pr), 0);
    ASSERT_EQ(probed(c, s, t1, 31, 0, &pr), 0);
    ASSERT_UEQ(pr.hits, 1);
    ASSERT_UEQ(pr.misses, 0);
    ASSERT(pr.work <= SELECTOR_WORK_HIT + SELECTOR_WORK_MATCH + 31);
    ASSERT_EQ(probed(c, s, t1, 31, 1, &pr), 0); /* known: from the cache */
    ASSERT_UEQ(pr.hits, 1);

    /* Given up (the fallback at the first bad flush): every match is an
     * NFA simulation, the cache serves topics that come back. */
    selector__dfa_limit(s, 3, SELECTOR__DFA_EAGER);
    char t[40];
    for (int i = 0; i < 100 && !(s->dfa && s->dfa->nfa_only); i++) {
        snprintf(t, sizeof(t), "https://honest.example/i/%06d", i);
        (void)selector_cache_match(c, s, t, 31);
    }
    ASSERT(s->dfa->nfa_only);
    snprintf(t, sizeof(t), "https://honest.example/j/%06d", 1);
    ASSERT_EQ(probed(c, s, t, 31, 1, &pr), -1); /* not known, not simulated */
    ASSERT_UEQ(pr.work, SELECTOR_WORK_HIT);
    /* the match may retry the DFA (EAGER: at once), whose first steps
     * then cost NFA steps too: either way, states x bytes */
    ASSERT_EQ(probed(c, s, t, 31, 0, &pr), 0);
    ASSERT_UEQ(pr.misses, 1);
    ASSERT(pr.work > 31 * 10);
    /* EAGER gives up again at its first bad flush: the cache answers */
    for (int i = 0; i < 100 && !s->dfa->nfa_only; i++) {
        snprintf(t, sizeof(t), "https://honest.example/k/%06d", i);
        (void)selector_cache_match(c, s, t, 31);
    }
    ASSERT(s->dfa->nfa_only);
    ASSERT_EQ(probed(c, s, t, 31, 0, &pr), 0);
    ASSERT_UEQ(pr.hits, 1);
    ASSERT_UEQ(pr.work, SELECTOR_WORK_HIT);

    /* Longer than the cache keeps (512): never cached, never a hit or a
     * miss; known_only answers only from a DFA that knows the way. */
    selector__dfa_limit(s, 0, SELECTOR__DFA_NORMAL);
    char long_topic[600];
    memset(long_topic, 'a', sizeof(long_topic));
    ASSERT_EQ(probed(c, s, long_topic, sizeof(long_topic), 1, &pr), -1);
    ASSERT_UEQ(pr.hits + pr.misses, 0);
    ASSERT_EQ(probed(c, s, long_topic, sizeof(long_topic), 0, &pr), 0);
    ASSERT_UEQ(pr.hits + pr.misses, 0);
    ASSERT_EQ(probed(c, s, long_topic, sizeof(long_topic), 1, &pr), 0);
    ASSERT_UEQ(pr.work, SELECTOR_WORK_MATCH + sizeof(long_topic));

    /* Without a cache, known_only is the DFA alone; exact and "*" always
     * answer, from no cache. */
    ASSERT_EQ(selector_cache_known(NULL, s, long_topic, sizeof(long_topic)), 0);
    ASSERT_EQ(selector_cache_known(NULL, s, t1, 31), -1);
    selector_t *exact = selector_try_new("urn:a", 5), *star = selector_try_new("*", 1);
    ASSERT_EQ(probed(c, exact, "urn:a", 5, 1, &pr), 1);
    ASSERT_UEQ(pr.work + pr.hits + pr.misses, 0);
    ASSERT_EQ(probed(c, exact, "urn:b", 5, 1, &pr), 0);
    ASSERT_EQ(probed(c, star, "urn:b", 5, 1, &pr), 1);
    ASSERT_UEQ(pr.work + pr.hits + pr.misses, 0);
    selector_free(exact);
    selector_free(star);
    selector_free(s);
    selector_cache_free(c);
}

/* What a caller's budget relies on (selector.h, selector_cache_work): over
 * every test template, random topics and every DFA regime (the default
 * cap, flushes only, eager fallbacks), one match through the cache never
 * reports more than about states x topic length (the fixed costs, a
 * lookup, and per byte each NFA state scanned, a set's hash and a step),
 * and the same topic again, about its length (a DFA walk, or a lookup
 * after a partial walk). And what the work says is what was done: a warm
 * template reports one unit per byte, not its states. */
static void test_work_bounds(void)
{
    selector_cache_t *c = selector_cache_new(1024);
    char buf[256];
    int bad = 0;
    for (size_t i = 0; i < sizeof(dfa_templates) / sizeof(dfa_templates[0]); i++) {
        selector_t *s = selector_try_new(dfa_templates[i], strlen(dfa_templates[i]));
        uint64_t ns = (uint64_t)selector_num_states(s), words = (ns + 63) / 64, p = (uint64_t)s->prefix_len;
        static const int limits[] = {0, 3, 4};
        static const int modes[] = {SELECTOR__DFA_NORMAL, SELECTOR__DFA_KEEP, SELECTOR__DFA_EAGER};
        for (int regime = 0; regime < 3; regime++) {
            selector__dfa_limit(s, limits[regime], modes[regime]);
            for (int k = 0; k < 1000; k++) {
                uint64_t n = (uint64_t)make_topic(s, buf, 200);
                int fresh = s->dfa == NULL; /* this match may make the DFA */
                probe_t first, again;
                int r = probed(c, s, buf, n, 0, &first);
                int r2 = probed(c, s, buf, n, 0, &again);
                uint64_t cold = SELECTOR_WORK_HIT + 2 * (SELECTOR_WORK_MATCH + p / 16) +
                                (n + 1) * (ns + words + 2) + (fresh ? SELECTOR_WORK_DFA_NEW(ns) : 0);
                uint64_t warm = SELECTOR_WORK_HIT + SELECTOR_WORK_MATCH + p / 16 + n;
                if ((first.work > cold || again.work > warm || r != r2 ||
                     r != selector_match_nfa(s, buf, n)) &&
                    bad++ < 3)
                    TEST_FAIL_AT(
                        "%s (regime %d) on \"%.*s\": work %llu (bound %llu), again %llu (bound %llu), "
                        "answers %d %d",
                        s->text, regime, (int)n, buf, (unsigned long long)first.work,
                        (unsigned long long)cold, (unsigned long long)again.work, (unsigned long long)warm, r,
                        r2);
            }
        }
        selector_free(s);
    }
    ASSERT_EQ(bad, 0);

    /* The costly template, warm, against fresh honest topics: one unit a
     * byte; its plain NFA, ~300 states a byte. */
    const char *costly = dfa_templates[7];
    selector_t *s = selector_try_new(costly, strlen(costly));
    char t[40];
    for (int i = 0; i < 20; i++) {
        snprintf(t, sizeof(t), "https://honest.example/i/%06d", i);
        (void)selector_cache_match(c, s, t, 31);
    }
    probe_t pr;
    snprintf(t, sizeof(t), "https://honest.example/i/%06d", 999999);
    ASSERT_EQ(probed(c, s, t, 31, 0, &pr), 0);
    ASSERT_UEQ(pr.work, SELECTOR_WORK_MATCH + 31);
    uint64_t nfa = 0;
    (void)template_match(s, t, 31, &nfa);
    ASSERT(nfa > 100 * pr.work);
    ASSERT(nfa <= SELECTOR_WORK_MATCH + 32 * (uint64_t)selector_num_states(s));
    selector_free(s);
    selector_cache_free(c);
}

/* ---- threads: the DFA's owner ------------------------------------------------------- */

typedef struct thread_arg {
    selector_t *sel;
    const char *topic;
    int result;
} thread_arg_t;

static void *match_nfa_thread(void *p)
{
    thread_arg_t *a = p;
    a->result = selector_match_nfa(a->sel, a->topic, strlen(a->topic));
    return NULL;
}

static void *match_dfa_thread(void *p)
{
    thread_arg_t *a = p;
    a->result = selector_match(a->sel, a->topic, strlen(a->topic));
    return NULL;
}

/* selector_match_nfa reads a template from any thread while its owner
 * matches it; a selector_match on another thread than the DFA's owner
 * fails its assert (in a child process: it aborts). */
static void test_dfa_owner_thread(void)
{
    const char *tx = "https://ex.com/{+path}";
    selector_t *s = selector_try_new(tx, strlen(tx));
    ASSERT(selector_match(s, "https://ex.com/a/b", 18));
    ASSERT(s->dfa->owner == thread_token());
    thread_arg_t a = {s, "https://ex.com/c/d", -1};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, match_nfa_thread, &a), 0);
    for (int i = 0; i < 1000; i++) /* concurrently: the owner grows the DFA */
        ASSERT(selector_match(s, "https://ex.com/x?y=z", 20));
    ASSERT_EQ(pthread_join(th, NULL), 0);
    ASSERT_EQ(a.result, 1);

    /* A template first matched on a thread belongs to it: that thread may
     * go on matching it (the same token), and no other. */
    selector_t *mine = selector_try_new(tx, strlen(tx));
    thread_arg_t b = {mine, "https://ex.com/e", -1};
    ASSERT_EQ(pthread_create(&th, NULL, match_dfa_thread, &b), 0);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    ASSERT_EQ(b.result, 1);
    ASSERT(mine->dfa->owner != thread_token());
    selector_free(mine);

#ifndef NDEBUG /* the owner check is an assert */
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        /* the child: its main thread is not the DFA's owner either */
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2);
        thread_arg_t x = {s, "https://ex.com/f", -1};
        pthread_t t2;
        if (pthread_create(&t2, NULL, match_dfa_thread, &x) == 0)
            pthread_join(t2, NULL);
        _exit(0); /* the assert did not fire */
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
#endif
    selector_free(s);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_exact_and_star);
    TEST_RUN(test_simple_expressions);
    TEST_RUN(test_operators);
    TEST_RUN(test_prefix_modifier);
    TEST_RUN(test_invalid_templates_are_exact);
    TEST_RUN(test_value_classes_shared);
    TEST_RUN(test_cache_agrees_and_hits);
    TEST_RUN(test_cache_work);
    TEST_RUN(test_hostile_topic_is_linear);
    TEST_RUN(test_dfa_agrees_with_nfa);
    TEST_RUN(test_dfa_flush_and_fallback);
    TEST_RUN(test_dfa_cost);
    TEST_RUN(test_dfa_memory_bound);
    TEST_RUN(test_cache_paths);
    TEST_RUN(test_work_bounds);
    TEST_RUN(test_dfa_owner_thread);
    TEST_MAIN_END();
}
