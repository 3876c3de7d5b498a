/*
 * upindex_fuzz.c - libFuzzer target for src/upindex.c, the index that lets
 * fan-out skip URL patterns an event cannot match. The input is a pattern
 * (up to the first newline) and topics (one per following line). The one
 * property that matters, checked for every topic (abort() on violation):
 *
 *   if the pattern matches the topic (urlpattern_match, relative to the
 *   hub's URL), the index offers it as a candidate for that topic
 *
 * so the index can only save work, never lose a delivery. Also: its bucket
 * key starts with "h" or "*" and holds one newline; interning the same text
 * twice gives the same entry; a few fixed patterns share the index so that
 * buckets of several prefix lengths are looked up; releasing everything
 * leaves it empty (upindex_free asserts that).
 */
#include "fuzz.h"

#include "upindex.h"

#define BASE "https://hub.example/.well-known/mercure"

typedef struct seen {
    const upentry_t *want;
    int found;
} seen_t;

static void on_candidate(upentry_t *e, void *ctx)
{
    seen_t *s = ctx;
    s->found |= e == s->want;
}

static const char *const others[] = {"https://ex.com/books/:id", "/rel/:x", "https://*.ex.com/*",
                                     "urn\\:a\\:*"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    size_t plen = nl ? (size_t)(nl - in) : size;
    urlpattern_t *p = urlpattern_try_new(in, plen, BASE, NULL);
    if (!p)
        return 0;
    upindex_t *x = upindex_new(BASE);
    CHECK(x);
    upentry_t *o[4];
    for (int i = 0; i < 4; i++)
        CHECK((o[i] = upindex_intern(x, urlpattern_try_new(others[i], strlen(others[i]), BASE, NULL))));
    char key[2 + UPINDEX_HOST_MAX + UPINDEX_PREFIX_MAX];
    size_t pl, kl = upindex__key(p, key, &pl);
    CHECK(kl >= 2 && (key[0] == 'h' || key[0] == '*') && memchr(key, '\n', kl) && pl <= UPINDEX_PREFIX_MAX);
    upentry_t *e = upindex_intern(x, p);
    CHECK(e);
    upentry_t *again = upindex_intern(x, urlpattern_try_new(in, plen, BASE, NULL));
    CHECK(again == e && e->refs >= 2);
    for (const char *t = nl ? nl + 1 : in + size; t < in + size;) {
        const char *end = memchr(t, '\n', (size_t)(in + size - t));
        size_t tl = end ? (size_t)(end - t) : (size_t)(in + size - t);
        if (urlpattern_match(e->pat, t, tl)) {
            seen_t s = {e, 0};
            upindex_candidates(x, t, tl, on_candidate, &s);
            CHECK(s.found);
        }
        t += tl + 1;
    }
    upindex_release(x, again);
    upindex_release(x, e);
    for (int i = 0; i < 4; i++)
        upindex_release(x, o[i]);
    CHECK(upindex_count(x) == 0);
    upindex_free(x);
    return 0;
}
