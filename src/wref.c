/*
 * wref.c - see wref.h.
 */
#include "wref.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void wref_pool_init(wref_pool_t *p) { memset(p, 0, sizeof(*p)); }

void wref_pool_dispose(wref_pool_t *p)
{
    while (p->count)
        free(p->spare[--p->count]);
    if (p->open) {
        wblock_t *b = p->open;
        p->open = NULL;
        assert(b->refs == 1); /* only the pool's count: every queue let go */
        wblock_unref(p, b);
    }
    while (p->num_spare_blocks)
        free(p->spare_blocks[--p->num_spare_blocks]);
}

wref_t *wref_new(wref_pool_t *p, evbuf_t *ev)
{
    wref_t *r = p->count ? p->spare[--p->count] : malloc(sizeof(*r));
    if (!r)
        abort();
    evbuf_ref(ev);
    *r = (wref_t){.ev = ev};
    return r;
}

void wref_release_unused(wref_pool_t *p, wref_t *r)
{
    assert(r->refs == 0);
    evbuf_unref(r->ev);
    r->ev = NULL;
    r->copy = NULL;
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

void wblock_unref(wref_pool_t *p, wblock_t *b)
{
    assert(b->refs > 0);
    if (--b->refs)
        return;
    if (p->num_spare_blocks < WBLOCK_SPARES)
        p->spare_blocks[p->num_spare_blocks++] = b;
    else
        free(b);
}

/* A fresh open block with room for `len` bytes, or NULL. */
static wblock_t *open_block(wref_pool_t *p)
{
    if (p->open) {
        wblock_t *old = p->open;
        p->open = NULL;
        wblock_unref(p, old); /* the pool's count; queues may still hold slices */
    }
    wblock_t *b =
        p->num_spare_blocks ? p->spare_blocks[--p->num_spare_blocks] : malloc(sizeof(wblock_t) + WBLOCK_SIZE);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = 0;
    b->num_events = 0;
    p->open = b;
    return b;
}

void wblock_each_event(const wblock_t *b, const char *p, size_t len, void (*fn)(void *ctx, int64_t hub_ns),
                       void *ctx)
{
    uint32_t start = (uint32_t)(p - b->data), end = start + (uint32_t)len;
    /* The first copy ending after `start` (ev_end grows): binary search. */
    uint32_t lo = 0, hi = b->num_events;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (b->ev_end[mid] <= start)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (uint32_t i = lo; i < b->num_events && b->ev_end[i] <= end; i++)
        fn(ctx, b->ev_hub_ns[i]);
}

const char *wref__copy_new(wref_pool_t *p, wref_t *r, const char *bytes, size_t len, wblock_t **block)
{
    if (r->copy)
        return NULL; /* another range of the event was copied (wref_copy checked this one) */
    if (!r->live || len > WBLOCK_COPY_MAX)
        return NULL;
    wblock_t *b = p->open;
    if ((!b || WBLOCK_SIZE - b->len < len || b->num_events == WBLOCK_EVENTS) && !(b = open_block(p)))
        return NULL;
    char *at = b->data + b->len;
    memcpy(at, bytes, len);
    b->len += (uint32_t)len;
    b->ev_end[b->num_events] = b->len;
    b->ev_hub_ns[b->num_events++] = r->ev->hub_ns;
    r->copy = b;
    r->copy_at = at;
    r->copy_src = bytes;
    r->copy_len = (uint32_t)len;
    *block = b;
    return at;
}
