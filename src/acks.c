/*
 * acks.c - see acks.h.
 */
#include "acks.h"

#include <stdlib.h>
#include <string.h>

typedef struct ack_slot {
    acks_done_cb cb;    /* NULL when the slot is free */
    void *ctx;          /* borrows: the waiting request */
    void *data;         /* owns: kept for the answer (e.g. response fields) */
    uint32_t gen;       /* bumped each time the slot is released */
    uint32_t next_free; /* free list: index + 1 of the next free slot, 0 = end */
} ack_slot_t;

struct acks {
    ack_slot_t *slots; /* owns */
    uint32_t cap;      /* slots allocated */
    uint32_t free;     /* index + 1 of the first free slot, 0 = none */
    uint32_t used;     /* slots waited on */
};

acks_t *acks_new(void) { return calloc(1, sizeof(acks_t)); }

void acks_free(acks_t *a)
{
    if (!a)
        return;
    for (uint32_t i = 0; i < a->cap; i++)
        free(a->slots[i].data);
    free(a->slots);
    free(a);
}

static ack_slot_t *slot_of(acks_t *a, uint64_t token)
{
    uint32_t idx = (uint32_t)token - 1, gen = (uint32_t)(token >> 32);
    if (token == 0 || idx >= a->cap || a->slots[idx].gen != gen || !a->slots[idx].cb)
        return NULL;
    return &a->slots[idx];
}

static void slot_release(acks_t *a, ack_slot_t *s)
{
    free(s->data);
    s->data = NULL;
    s->cb = NULL;
    s->ctx = NULL;
    s->gen++;
    s->next_free = a->free;
    a->free = (uint32_t)(s - a->slots) + 1;
    a->used--;
}

static int grow(acks_t *a)
{
    uint32_t ncap = a->cap ? a->cap * 2 : 16;
    ack_slot_t *n = realloc(a->slots, ncap * sizeof(*n));
    if (!n)
        return -1;
    memset(n + a->cap, 0, (ncap - a->cap) * sizeof(*n));
    for (uint32_t i = ncap; i-- > a->cap;) {
        n[i].gen = 1;
        n[i].next_free = a->free;
        a->free = i + 1;
    }
    a->slots = n;
    a->cap = ncap;
    return 0;
}

uint64_t acks_try_wait(acks_t *a, acks_done_cb cb, void *ctx, void *data)
{
    if (!a->free && grow(a)) {
        free(data);
        return 0;
    }
    uint32_t idx = a->free - 1;
    ack_slot_t *s = &a->slots[idx];
    a->free = s->next_free;
    s->cb = cb;
    s->ctx = ctx;
    s->data = data;
    a->used++;
    return (uint64_t)s->gen << 32 | (idx + 1);
}

void acks_cancel(acks_t *a, uint64_t token)
{
    ack_slot_t *s = slot_of(a, token);
    if (s)
        slot_release(a, s);
}

void acks_complete(acks_t *a, uint64_t token, evbuf_t *ev, int ok)
{
    ack_slot_t *s = slot_of(a, token);
    if (!s)
        return; /* the waiter left meanwhile: nobody to answer */
    acks_done_cb cb = s->cb;
    void *ctx = s->ctx, *data = s->data;
    s->data = NULL; /* kept alive for the call, freed after it */
    slot_release(a, s);
    cb(ctx, data, ev, ok);
    free(data);
}

uint32_t acks_waiting(const acks_t *a) { return a->used; }
