/*
 * urlpattern_fuzz.c - libFuzzer target for URL patterns (src/urlpattern.c)
 * and the URL parser under them (src/url.c).
 *
 * Input: a pattern, then '\n', then a topic (no '\n': the topic is empty).
 *
 * Properties (abort() on any violation):
 *   - compiling and matching never crash or leak, under the budgets: a
 *     compiled pattern has at most URLPATTERN_MAX_STATES states, a refused
 *     one has a reason, and one match makes at most URLPATTERN_MAX_STEPS
 *     state visits (plus one position's worth);
 *   - matching is deterministic (twice the same answer);
 *   - normalization is stable and keeps the meaning: the eight normalized
 *     component pattern strings, compiled again (dictionary form), give the
 *     same strings and match the topic as the pattern does. Except where the
 *     standard itself is not stable: fixed text the URL parser reduces to
 *     nothing (a lone tab or CR, "{s/../}?") leaves an empty part with no
 *     pattern string form ("" or "{}?"); without it, neighbouring text merges
 *     and is canonicalized as one piece, which can change the meaning
 *     ("/{s/../}?../x" requires a literal "/../x", "/../x" is "/x"). An
 *     empty group "{}" in the pattern splits text the same way and leaves
 *     nothing. Such patterns (a tab or CR, or "{}" in the pattern or in a
 *     normalized string) are skipped.
 *   - the URL parser round-trips: a topic that parses, serialized (the URL
 *     Standard's serializer, written here) and parsed again, gives the same
 *     record.
 */
#include "fuzz.h"
#include "url.h"
#include "urlpattern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HUB "https://example.com/.well-known/mercure"

/* The URL serializer (https://url.spec.whatwg.org/#concept-url-serializer). */
static int serialize(const url_t *u, url_str_t *out)
{
    int r = url_str_append(out, url_str_ptr(&u->scheme), u->scheme.len) || url_str_append(out, ":", 1);
    if (u->has_host) {
        r |= url_str_append(out, "//", 2);
        if (u->username.len || u->password.len) {
            r |= url_str_append(out, url_str_ptr(&u->username), u->username.len);
            if (u->password.len)
                r |= url_str_append(out, ":", 1) || url_str_append(out, u->password.p, u->password.len);
            r |= url_str_append(out, "@", 1);
        }
        r |= url_str_append(out, url_str_ptr(&u->host), u->host.len);
        if (u->port >= 0) {
            char port[12];
            int n = snprintf(port, sizeof(port), ":%d", (int)u->port);
            r |= url_str_append(out, port, (size_t)n);
        }
    } else if (!u->opaque_path && u->path.len > 1 && u->path.p[1] == '/') {
        r |= url_str_append(out, "/.", 2); /* a path starting with an empty segment */
    }
    r |= url_str_append(out, url_str_ptr(&u->path), u->path.len);
    if (u->has_query)
        r |= url_str_append(out, "?", 1) || url_str_append(out, url_str_ptr(&u->query), u->query.len);
    if (u->has_fragment)
        r |= url_str_append(out, "#", 1) || url_str_append(out, url_str_ptr(&u->fragment), u->fragment.len);
    return r ? -1 : 0;
}

static int same_str(const url_str_t *a, const url_str_t *b)
{
    return a->len == b->len && memcmp(url_str_ptr(a), url_str_ptr(b), a->len) == 0;
}

static void check_url_roundtrip(const char *topic, size_t len)
{
    url_t base, u, again;
    url_init(&base);
    url_init(&u);
    url_init(&again);
    CHECK(url_try_parse(HUB, strlen(HUB), NULL, &base) == 0);
    if (url_try_parse(topic, len, &base, &u) == 0) {
        url_str_t s = {0};
        /* (a topic near URL_MAX_LEN may serialize a little longer than that) */
        if (serialize(&u, &s) || s.len > URL_MAX_LEN) {
            url_str_free(&s);
            goto out;
        }
        CHECK(url_try_parse(url_str_ptr(&s), s.len, NULL, &again) == 0);
        CHECK(same_str(&u.scheme, &again.scheme) && same_str(&u.username, &again.username));
        CHECK(same_str(&u.password, &again.password) && u.has_host == again.has_host);
        CHECK(same_str(&u.host, &again.host) && u.port == again.port && same_str(&u.path, &again.path));
        CHECK(u.opaque_path == again.opaque_path && u.has_query == again.has_query);
        CHECK(same_str(&u.query, &again.query) && u.has_fragment == again.has_fragment);
        CHECK(same_str(&u.fragment, &again.fragment));
        for (uint32_t i = 0; i < s.len; i++) /* every component is ASCII */
            CHECK((unsigned char)s.p[i] < 0x80);
        url_str_free(&s);
    }
out:
    url_dispose(&again);
    url_dispose(&u);
    url_dispose(&base);
}

/* p's normalized components compiled again (dictionary form), or NULL:
 * the normalized text can pass a budget, and a few normalized forms do not
 * compile (an escaped "\\[" hostname normalizes to "[", which is then not an
 * IPv6 pattern: the same in the standard). A dictionary drops
 * one trailing ":" of the protocol and one leading "?" or "#" of the search
 * and hash: each gets one to drop. */
static urlpattern_t *renormalize(const urlpattern_t *p)
{
    urlpattern_init_t in = {0};
    char *wrapped[URLPATTERN_COMPONENTS] = {0};
    for (int c = 0; c < URLPATTERN_COMPONENTS; c++) {
        const char *v = urlpattern_component(p, (urlpattern_component_t)c);
        CHECK(asprintf(&wrapped[c], "%s%s%s",
                       c == URLPATTERN_SEARCH ? "?"
                       : c == URLPATTERN_HASH ? "#"
                                              : "",
                       v, c == URLPATTERN_PROTOCOL ? ":" : "") >= 0);
        in.value[c] = wrapped[c];
    }
    const char *why = NULL;
    urlpattern_t *q = urlpattern__try_new_init(&in, &why);
    CHECK(q || why);
    for (int c = 0; c < URLPATTERN_COMPONENTS; c++)
        free(wrapped[c]);
    return q;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t plen = nl ? (size_t)(nl - data) : size;
    size_t tlen = nl ? size - plen - 1 : 0;
    char *pat = malloc(plen ? plen : 1), *topic = malloc(tlen ? tlen : 1); /* exact sizes: over-reads show */
    CHECK(pat && topic);
    memcpy(pat, data, plen);
    memcpy(topic, nl ? (const char *)nl + 1 : "", tlen);

    check_url_roundtrip(topic, tlen);

    const char *why = NULL;
    urlpattern_t *p = urlpattern_try_new(pat, plen, HUB, &why);
    if (!p) {
        CHECK(why != NULL);
        goto out;
    }
    CHECK(urlpattern_len(p) == plen && memcmp(urlpattern_text(p), pat, plen) == 0);
    CHECK(urlpattern_states(p) >= 0 && urlpattern_states(p) <= URLPATTERN_MAX_STATES);
    int m = urlpattern_match(p, topic, tlen);
    CHECK(m == 0 || m == 1);
    CHECK(urlpattern__last_steps() <= URLPATTERN_MAX_STEPS + (uint64_t)urlpattern_states(p));
    CHECK(urlpattern_match(p, topic, tlen) == m);

    /* Normalized again: the same strings, the same language. */
    int stable = !memchr(pat, '\t', plen) && !memchr(pat, '\r', plen) && !memmem(pat, plen, "{}", 2);
    for (int c = 0; c < URLPATTERN_COMPONENTS; c++)
        stable &= strstr(urlpattern_component(p, (urlpattern_component_t)c), "{}") == NULL;
    urlpattern_t *q = stable ? renormalize(p) : NULL;
    if (q) {
        for (int c = 0; c < URLPATTERN_COMPONENTS; c++)
            CHECK(strcmp(urlpattern_component(q, (urlpattern_component_t)c),
                         urlpattern_component(p, (urlpattern_component_t)c)) == 0);
        /* q has no base URL: compare on the topic as an absolute URL */
        CHECK(urlpattern__match_url(p, topic, tlen, NULL, NULL) ==
              urlpattern__match_url(q, topic, tlen, NULL, NULL));
    }
    urlpattern_free(q);
    urlpattern_free(p);
out:
    free(pat);
    free(topic);
    return 0;
}
