/*
 * selector_fuzz.c - libFuzzer target for topic selectors (RFC 6570 URI
 * templates, exact topics, "*").
 *
 * Input: selector, then a '\n', then a topic (no '\n': the topic is empty).
 *
 * Properties (abort() on any violation):
 *   - compiling and matching never crash, and matching is deterministic:
 *     uncached, cached (miss) and cached (hit) answers agree;
 *   - a selector without '{' is exact: it matches the topic iff equal;
 *   - for a valid template, two expansions built here independently must
 *     match: every variable undefined (the literal skeleton), and the first
 *     variable of each expression set to "x" (the operator's prefix, then
 *     "name=" for ;, ? and &);
 *   - selector_is_valid_template agrees with what selector_try_new built.
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
    CHECK(selector_cache_match(cache, s, t, n) == a);
    CHECK(selector_cache_match(cache, s, t, n) == a);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cache)
        cache = selector_cache_new(64);
    const uint8_t *nl = memchr(data, '\n', size);
    size_t slen = nl ? (size_t)(nl - data) : size;
    size_t tlen = nl ? size - slen - 1 : 0;
    char *sel = malloc(slen ? slen : 1), *topic = malloc(tlen ? tlen : 1);
    CHECK(sel && topic);
    memcpy(sel, data, slen);
    memcpy(topic, nl ? (const char *)nl + 1 : "", tlen);

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
            free(exact);
        }
        free(buf);
    }
    selector_free(s);
    free(sel);
    free(topic);
    return 0;
}
