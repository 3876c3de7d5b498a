/*
 * wref.c - see wref.h.
 */
#include "wref.h"

#include <assert.h>
#include <stdlib.h>

void wref_pool_init(wref_pool_t *p) { p->count = 0; }

void wref_pool_dispose(wref_pool_t *p)
{
    while (p->count)
        free(p->spare[--p->count]);
}

wref_t *wref_new(wref_pool_t *p, evbuf_t *ev)
{
    wref_t *r = p->count ? p->spare[--p->count] : malloc(sizeof(*r));
    if (!r)
        abort();
    evbuf_ref(ev);
    r->ev = ev;
    r->refs = 0;
    r->live = 0;
    return r;
}

void wref_release_unused(wref_pool_t *p, wref_t *r)
{
    assert(r->refs == 0);
    evbuf_unref(r->ev);
    r->ev = NULL;
    if (p->count < WREF_POOL_SIZE)
        p->spare[p->count++] = r;
    else
        free(r);
}

void wref_unref(wref_pool_t *p, wref_t *r)
{
    assert(r->refs > 0);
    if (--r->refs == 0)
        wref_release_unused(p, r);
}
