/*
 * upindex.c - see upindex.h.
 */
#include "upindex.h"

#include "selector.h"
#include "strmap.h"
#include "url.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX (2 + UPINDEX_HOST_MAX + UPINDEX_PREFIX_MAX)

struct upbucket {
    upentry_t *head;     /* borrows: entries with this key */
    uint32_t count;      /* entries in the list */
    uint32_t prefix_len; /* bytes of the key's path prefix */
    uint8_t any_host;    /* the key's family: 1 = "*", 0 = a fixed hostname */
    uint32_t len;        /* of key */
    char key[];          /* owns: the map's key, NUL-terminated */
};

struct upindex {
    char *base_text;                           /* owns: the base URL as given */
    url_t base;                                /* owns: the base URL, parsed once */
    strmap_t by_text;                          /* pattern text -> upentry_t* (owned) */
    strmap_t buckets;                          /* key -> upbucket_t* (owned) */
    uint32_t plens[2][UPINDEX_PREFIX_MAX + 1]; /* buckets per [family][path prefix length] */
    size_t count;                              /* interned entries */
};

upindex_t *upindex_new(const char *base_url)
{
    upindex_t *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    url_init(&x->base);
    if (!(x->base_text = strdup(base_url)) || url_try_parse(base_url, strlen(base_url), NULL, &x->base)) {
        url_dispose(&x->base);
        free(x->base_text);
        free(x);
        return NULL;
    }
    strmap_init(&x->by_text);
    strmap_init(&x->buckets);
    return x;
}

void upindex_free(upindex_t *x)
{
    if (!x)
        return;
    assert(x->count == 0 && x->by_text.count == 0 && x->buckets.count == 0);
    strmap_dispose(&x->by_text);
    strmap_dispose(&x->buckets);
    url_dispose(&x->base);
    free(x->base_text);
    free(x);
}

const char *upindex_base(const upindex_t *x) { return x->base_text; }
size_t upindex_count(const upindex_t *x) { return x->count; }

/* Characters that end the literal text of a normalized component pattern:
 * parts (":name", "(regexp)", "*", "{...}"), modifiers, and escapes (an
 * escaped literal would need unescaping to compare: stopping is simpler). */
static int is_special(char c) { return c && strchr(":*(){}\\?+", c) != NULL; }

size_t upindex__key(const urlpattern_t *p, char *out, size_t *prefix_len)
{
    const char *host = urlpattern_component(p, URLPATTERN_HOSTNAME);
    const char *path = urlpattern_component(p, URLPATTERN_PATHNAME);
    size_t hl = strlen(host), n = 0;
    int fixed = hl <= UPINDEX_HOST_MAX;
    for (size_t i = 0; fixed && i < hl; i++)
        fixed = !is_special(host[i]);
    if (fixed) {
        out[n++] = 'h';
        memcpy(out + n, host, hl);
        n += hl;
    } else {
        out[n++] = '*';
    }
    out[n++] = '\n';
    size_t pl = 0;
    while (path[pl] && !is_special(path[pl]))
        pl++;
    /* A part after "/" takes the "/" as its prefix (optional with "?" or
     * "*"): "/books/:id?" matches "/books". */
    if (path[pl] && pl && path[pl - 1] == '/')
        pl--;
    if (pl > UPINDEX_PREFIX_MAX)
        pl = UPINDEX_PREFIX_MAX;
    memcpy(out + n, path, pl);
    *prefix_len = pl;
    return n + pl;
}

upentry_t *upindex_find(upindex_t *x, const char *text, size_t len)
{
    return strmap_get(&x->by_text, text, len);
}

static upbucket_t *bucket_acquire(upindex_t *x, const char *key, size_t len, size_t prefix_len)
{
    upbucket_t *b = strmap_get(&x->buckets, key, len);
    if (b)
        return b;
    if (!(b = calloc(1, sizeof(*b) + len + 1)))
        return NULL;
    b->len = (uint32_t)len;
    b->prefix_len = (uint32_t)prefix_len;
    b->any_host = key[0] == '*';
    memcpy(b->key, key, len);
    if (strmap_try_put(&x->buckets, b->key, len, b)) {
        free(b);
        return NULL;
    }
    x->plens[b->any_host][prefix_len]++;
    return b;
}

static void bucket_release_if_empty(upindex_t *x, upbucket_t *b)
{
    if (b->count)
        return;
    strmap_remove(&x->buckets, b->key, b->len);
    x->plens[b->any_host][b->prefix_len]--;
    free(b);
}

upentry_t *upindex_intern(upindex_t *x, urlpattern_t *pat)
{
    upentry_t *e = upindex_find(x, urlpattern_text(pat), urlpattern_len(pat));
    if (e) {
        urlpattern_free(pat);
        e->refs++;
        return e;
    }
    char key[KEY_MAX];
    size_t pl, kl = upindex__key(pat, key, &pl);
    upbucket_t *b = bucket_acquire(x, key, kl, pl);
    if (!b || !(e = calloc(1, sizeof(*e))) ||
        strmap_try_put(&x->by_text, urlpattern_text(pat), urlpattern_len(pat), e)) {
        free(e);
        if (b)
            bucket_release_if_empty(x, b);
        urlpattern_free(pat);
        return NULL;
    }
    e->pat = pat;
    e->id = selector_new_id();
    e->refs = 1;
    e->bucket = b;
    e->next = b->head;
    if (b->head)
        b->head->prev = e;
    b->head = e;
    b->count++;
    x->count++;
    return e;
}

void upindex_ref(upentry_t *e)
{
    assert(e->refs > 0);
    e->refs++;
}

void upindex_release(upindex_t *x, upentry_t *e)
{
    assert(e && e->refs > 0);
    if (--e->refs)
        return;
    assert(e->head == NULL);
    strmap_remove(&x->by_text, urlpattern_text(e->pat), urlpattern_len(e->pat));
    upbucket_t *b = e->bucket;
    if (e->prev)
        e->prev->next = e->next;
    else
        b->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    b->count--;
    bucket_release_if_empty(x, b);
    x->count--;
    urlpattern_free(e->pat);
    free(e);
}

/* The buckets of one family whose key fits: one lookup per prefix length in use. */
static size_t visit_family(upindex_t *x, int any_host, const char *head, size_t hl, const char *path,
                           size_t pl, upindex_candidate_cb cb, void *ctx)
{
    char key[KEY_MAX];
    size_t lookups = 0, max = pl < UPINDEX_PREFIX_MAX ? pl : UPINDEX_PREFIX_MAX;
    memcpy(key, head, hl);
    for (size_t l = 0; l <= max; l++) {
        if (!x->plens[any_host][l])
            continue;
        memcpy(key + hl, path, l);
        lookups++;
        upbucket_t *b = strmap_get(&x->buckets, key, hl + l);
        for (upentry_t *e = b ? b->head : NULL; e; e = e->next)
            cb(e, ctx);
    }
    return lookups;
}

size_t upindex_candidates(upindex_t *x, const char *topic, size_t len, upindex_candidate_cb cb, void *ctx)
{
    if (x->count == 0 || len > URLPATTERN_MAX_TOPIC)
        return 0;
    url_t u;
    url_init(&u);
    if (url_try_parse(topic, len, &x->base, &u)) {
        url_dispose(&u);
        return 0; /* not a URL: no URL pattern matches it (draft-08) */
    }
    const char *path = url_str_ptr(&u.path);
    size_t pl = u.path.len, lookups = 0;
    size_t hl = u.has_host ? u.host.len : 0;
    if (hl <= UPINDEX_HOST_MAX) {
        char head[2 + UPINDEX_HOST_MAX];
        head[0] = 'h';
        memcpy(head + 1, url_str_ptr(&u.host), hl);
        head[1 + hl] = '\n';
        lookups += visit_family(x, 0, head, hl + 2, path, pl, cb, ctx);
    }
    lookups += visit_family(x, 1, "*\n", 2, path, pl, cb, ctx);
    url_dispose(&u);
    return lookups;
}
