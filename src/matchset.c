/*
 * matchset.c - see matchset.h.
 */
#include "matchset.h"

#include "selector.h"
#include "urlpattern.h"

#include <stdlib.h>
#include <string.h>

typedef struct one {
    const grant_matcher_t *g; /* borrows: text, type, wildcard */
    selector_t *sel;          /* owns: TEMPLATE_OR_EXACT (not "*") */
    urlpattern_t *pat;        /* owns: URLPATTERN (not "*") */
} one_t;

struct matchset {
    size_t n;  /* matchers */
    one_t v[]; /* in token order */
};

matchset_t *matchset_try_new(const grant_matcher_t *v, size_t n, const char *base_url, const char **why)
{
    matchset_t *m = calloc(1, sizeof(*m) + n * sizeof(one_t));
    if (!m) {
        *why = "out of memory";
        return NULL;
    }
    for (; m->n < n; m->n++) {
        one_t *o = &m->v[m->n];
        o->g = &v[m->n];
        if (o->g->wildcard || o->g->type == GRANT_MATCH_EXACT)
            continue;
        if (o->g->type == GRANT_MATCH_TEMPLATE_OR_EXACT) {
            if (!(o->sel = selector_try_new(o->g->text, o->g->len))) {
                *why = "out of memory";
                goto fail;
            }
        } else if (!(o->pat = urlpattern_try_new(o->g->text, o->g->len, base_url, why))) {
            goto fail;
        }
    }
    return m;
fail:
    matchset_free(m);
    return NULL;
}

void matchset_free(matchset_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        selector_free(m->v[i].sel);
        urlpattern_free(m->v[i].pat);
    }
    free(m);
}

int matchset_match_one(const matchset_t *m, size_t i, const char *topic, size_t len)
{
    const one_t *o = &m->v[i];
    if (o->g->wildcard)
        return 1;
    if (o->sel) /* the NFA: no DFA to build for a set matched a few times, and m stays const */
        return selector_match_nfa(o->sel, topic, len);
    if (o->pat)
        return urlpattern_match(o->pat, topic, len);
    return o->g->len == len && memcmp(o->g->text, topic, len) == 0;
}

long matchset_first(const matchset_t *m, const char *topic, size_t len)
{
    for (size_t i = 0; i < m->n; i++)
        if (matchset_match_one(m, i, topic, len))
            return (long)i;
    return -1;
}
