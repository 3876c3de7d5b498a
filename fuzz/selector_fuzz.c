/*
 * selector_fuzz.c - libFuzzer target for topic selectors (RFC 6570 URI
 * templates, exact topics, "*").
 *
 * Input: selector, then '\n'-separated topics (none after the selector: one
 * empty topic). The first topic is "the" topic of the properties below; all
 * of them are matched in turn against one selector, so its lazy DFA carries
 * states from topic to topic as in a worker.
 *
 * Properties (abort() on any violation):
 *   - compiling and matching never crash, and matching is deterministic:
 *     the answer uncached and twice through the cache (the DFA, the cache
 *     or a match) agree; selector_cache_known gives that answer or -1
 *     before, and the answer right after (topics the cache keeps);
 *   - a selector without '{' is exact: it matches the topic iff equal;
 *   - for a valid template, two expansions built here independently must
 *     match: every variable undefined (the literal skeleton), and the first
 *     variable of each expression set to "x" (the operator's prefix, then
 *     "name=" for ;, ? and &);
 *   - selector_is_valid_template agrees with what selector_try_new built;
 *   - differential: for every topic and both expansions, the lazy DFA
 *     (selector_match) answers what the plain NFA simulation does
 *     (selector_match_nfa): with the default cap, then capped at 3 states
 *     (a flush every state or two, the DFA kept), then at 3 to 6 states
 *     giving up at the first bad flush (often mid-topic) and retrying the
 *     DFA at the next match, each pass twice over the topics so that states
 *     built by one topic serve the next;
 *   - the work a match reports (selector_cache_work) is at most about
 *     states x topic length (selector.h): what a caller's budget relies on.
 */
#include "fuzz.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "selector.h"

static selector_cache_t *cache;

static int cached(selector_t *s, const char *t, size_t n)
{
    int a = selector_match(s, t, n);
    int k = selector_cache_known(cache, s, t, n);
    CHECK(k == -1 || k == a);
    CHECK(selector_cache_match(cache, s, t, n) == a);
    CHECK(selector_cache_match(cache, s, t, n) == a);
    /* right after a match, its answer is known: the DFA's way or the cache's entry */
    if (n <= 512)
        CHECK(selector_cache_known(cache, s, t, n) == a);
    return a;
}

/* Expands the template: with_x = 0, every variable undefined; 1, the first
 * variable of each expression is "x". Returns the length written to out. */
static size_t expand(const char *s, size_t len, int with_x, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        if (s[i] != '{') {
            out[n++] = s[i++];
            continue;
        }
        const char *close = memchr(s + i, '}', len - i);
        size_t j = i + 1, end = (size_t)(close - s);
        char op = strchr("+#./;?&", s[j]) ? s[j++] : 0;
        if (with_x) {
            if (op && op != '+')
                out[n++] = op;
            if (op == ';' || op == '?' || op == '&') {
                while (j < end && s[j] != ',' && s[j] != ':' && s[j] != '*')
                    out[n++] = s[j++];
                out[n++] = '=';
            }
            out[n++] = 'x';
        }
        i = end + 1;
    }
    return n;
}

#define MAX_TOPICS 16

/* Every topic against the DFA and the plain NFA, twice. */
static void differential(selector_t *s, char *const *t, const size_t *n, int count)
{
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < count; i++)
            CHECK(selector_match(s, t[i], n[i]) == selector_match_nfa(s, t[i], n[i]));
}

/* One match through a cache's work counter: at most the fixed costs, a
 * lookup, and per byte (and once more) every NFA state scanned, a set's
 * hash and the table step; a hit, at most a lookup and a DFA walk. */
static void work_bounded(selector_t *s, const char *t, size_t n)
{
    static selector_cache_t *c;
    if (!c)
        c = selector_cache_new(1);
    CHECK(c);
    uint64_t w0 = selector_cache_work(c), h0, h1, m0, m1, ns = (uint64_t)selector_num_states(s);
    selector_cache_stats(c, &h0, &m0);
    (void)selector_cache_match(c, s, t, n);
    selector_cache_stats(c, &h1, &m1);
    uint64_t w = selector_cache_work(c) - w0, walk = SELECTOR_WORK_MATCH + selector_len(s) / 16 + n;
    CHECK(w <= SELECTOR_WORK_HIT + walk + (n + 1) * (ns + (ns + 63) / 64 + 2));
    if (h1 > h0)
        CHECK(w <= SELECTOR_WORK_HIT + walk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cache)
        cache = selector_cache_new(64);
    const uint8_t *nl = memchr(data, '\n', size);
    size_t slen = nl ? (size_t)(nl - data) : size;
    size_t rest = nl ? size - slen - 1 : 0;
    char *sel = malloc(slen ? slen : 1), *topics = malloc(rest ? rest : 1);
    CHECK(sel && topics);
    memcpy(sel, data, slen);
    memcpy(topics, nl ? (const char *)nl + 1 : "", rest);
    /* The topics, each in a buffer of its own exact size: over-reads show. */
    char *t[MAX_TOPICS + 2];
    size_t tn[MAX_TOPICS + 2];
    int count = 0;
    for (size_t at = 0; count < MAX_TOPICS;) {
        const char *end = memchr(topics + at, '\n', rest - at);
        size_t n = end ? (size_t)(end - topics - at) : rest - at;
        CHECK(t[count] = malloc(n ? n : 1));
        memcpy(t[count], topics + at, n);
        tn[count++] = n;
        if (!end)
            break;
        at += n + 1;
    }
    char *topic = t[0];
    size_t tlen = tn[0];

    selector_t *s = selector_try_new(sel, slen);
    CHECK(s);
    CHECK(selector_len(s) == slen && memcmp(selector_text(s), sel, slen) == 0);
    int m = cached(s, topic, tlen);
    if (!memchr(sel, '{', slen) && selector_kind(s) == SELECTOR_EXACT)
        CHECK(m == (slen == tlen && memcmp(sel, topic, slen) == 0));
    if (selector_kind(s) == SELECTOR_ANY)
        CHECK(m);
    CHECK(selector_is_valid_template(sel, slen) == (selector_kind(s) == SELECTOR_TEMPLATE));
    if (selector_kind(s) == SELECTOR_TEMPLATE) {
        char *buf = malloc(slen * 3 + 4);
        CHECK(buf);
        for (int x = 0; x < 2; x++) {
            size_t n = expand(sel, slen, x, buf);
            char *exact = malloc(n ? n : 1); /* exact size: over-reads show */
            CHECK(exact);
            memcpy(exact, buf, n);
            CHECK(cached(s, exact, n));
            t[count] = exact;
            tn[count++] = n;
        }
        free(buf);
        for (int i = 0; i < count; i++)
            work_bounded(s, t[i], tn[i]);
        differential(s, t, tn, count);
        selector__dfa_limit(s, 3, SELECTOR__DFA_KEEP);
        differential(s, t, tn, count);
        selector__dfa_limit(s, 3 + (size ? data[size - 1] % 4 : 0), SELECTOR__DFA_EAGER);
        differential(s, t, tn, count);
    }
    selector_free(s);
    for (int i = 0; i < count; i++)
        free(t[i]);
    free(sel);
    free(topics);
    return 0;
}
