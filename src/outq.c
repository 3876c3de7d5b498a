/*
 * outq.c - see outq.h.
 */
#include "outq.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void outq_init(outq_t *q, wref_pool_t *pool)
{
    memset(q, 0, sizeof(*q));
    q->items = q->inline_items;
    q->cap = OUTQ_INLINE;
    q->pool = pool;
}

static void item_release(outq_t *q, outq_item_t *it)
{
    if (it->kind == OUTQ_HEAP)
        free((void *)it->ptr);
    else if (it->kind == OUTQ_EVENT)
        wref_unref(q->pool, it->wref);
    else if (it->kind == OUTQ_BLOCK)
        wblock_unref(q->pool, it->block);
}

/* Back to the inline slots, so a queue grown by a burst costs nothing once
 * it is written. */
static void shrink_if_empty(outq_t *q)
{
    if (q->count)
        return;
    q->head = 0;
    q->off = 0;
    if (q->items != q->inline_items) {
        free(q->items);
        q->items = q->inline_items;
        q->cap = OUTQ_INLINE;
    }
}

void outq_dispose(outq_t *q)
{
    for (uint32_t i = 0; i < q->count; i++)
        item_release(q, &q->items[q->head + i]);
    q->count = 0;
    q->bytes = 0;
    shrink_if_empty(q);
}

/* Makes room for one more item at the tail. */
static outq_item_t *push_slot(outq_t *q)
{
    assert(q->items && q->cap >= OUTQ_INLINE); /* outq_init ran */
    if (q->head + q->count == q->cap) {
        if (q->head > 0) {
            memmove(q->items, q->items + q->head, q->count * sizeof(*q->items));
            q->head = 0;
        } else {
            /* From the one inline slot straight to 8: a queue that grows is
             * an answer (head and body) or a burst, which grows further. */
            uint32_t ncap = q->cap < 8 ? 8 : q->cap * 2;
            outq_item_t *n = q->items == q->inline_items ? malloc(ncap * sizeof(*n))
                                                         : realloc(q->items, ncap * sizeof(*n));
            if (!n)
                abort();
            if (q->items == q->inline_items)
                memcpy(n, q->inline_items, sizeof(q->inline_items));
            q->items = n;
            q->cap = ncap;
        }
    }
    return &q->items[q->head + q->count++];
}

static void push(outq_t *q, const char *p, size_t len, outq_kind_t kind, wref_t *r)
{
    assert(len <= UINT32_MAX);
    if (len == 0) { /* nothing to write: an empty item would never be consumed */
        outq_item_t tmp = {p, 0, kind, {r}};
        item_release(q, &tmp);
        return;
    }
    outq_item_t *it = push_slot(q);
    *it = (outq_item_t){p, (uint32_t)len, kind, {r}};
    q->bytes += len;
}

void outq_push_static(outq_t *q, const char *s, size_t len) { push(q, s, len, OUTQ_STATIC, NULL); }

void outq_push_heap(outq_t *q, char *p, size_t len) { push(q, p, len, OUTQ_HEAP, NULL); }

void outq_push_event(outq_t *q, wref_t *r, const char *p, size_t len)
{
    wref_ref(r);
    push(q, p, len, OUTQ_EVENT, r);
}

void outq__push_block_item(outq_t *q, wblock_t *b, const char *p, size_t len)
{
    if (len == 0)
        return;
    wblock_ref(b);
    outq_item_t *it = push_slot(q);
    *it = (outq_item_t){p, (uint32_t)len, OUTQ_BLOCK, {.block = b}};
    q->bytes += len;
}

int outq_gather(const outq_t *q, struct iovec *iov, int max, size_t budget)
{
    int n = 0;
    size_t total = 0;
    for (uint32_t i = 0; i < q->count && n < max && total < budget; i++) {
        const outq_item_t *it = &q->items[q->head + i];
        size_t off = i == 0 ? q->off : 0;
        size_t len = it->len - off;
        if (len > budget - total)
            len = budget - total;
        iov[n].iov_base = (void *)(it->ptr + off);
        iov[n].iov_len = len;
        total += len;
        n++;
    }
    return n;
}

void outq_consume(outq_t *q, size_t n) { outq_consume_notify(q, n, NULL, NULL); }

void outq_consume_notify(outq_t *q, size_t n, outq_written_cb written, void *ctx)
{
    assert(n <= q->bytes);
    q->bytes -= n;
    while (n) {
        outq_item_t *it = &q->items[q->head];
        size_t left = it->len - q->off;
        if (n < left) {
            q->off += (uint32_t)n;
            return;
        }
        n -= left;
        if (written && (it->kind == OUTQ_EVENT || it->kind == OUTQ_BLOCK))
            written(ctx, it);
        item_release(q, it);
        q->head++;
        q->count--;
        q->off = 0;
    }
    shrink_if_empty(q);
}
