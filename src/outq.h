/*
 * outq.h - a FIFO of byte ranges waiting to be written, without copies.
 *
 *   outq_t ----> items[head .. head+count)     (inline[1] until it grows)
 *                  | STATIC: a string constant (borrowed)
 *                  | HEAP:   a malloc'd buffer (owned, freed once written)
 *                  | EVENT:  a slice of a shared event (borrows one count
 *                  |         of a wref, dropped once written)
 *                  | BLOCK:  a slice of the worker's back-to-back copies of
 *                  |         events (wref.h; one count of the block); a
 *                  |         slice that continues the tail item's bytes in
 *                  |         the same block extends it instead of adding one
 *                  v
 *             gathered into iovecs and written with writev (or handed to a
 *             TLS or HTTP/2 layer, which reads the same iovecs)
 *
 * Nothing is ever copied per subscriber: an event's bytes go from the evbuf
 * to the kernel as they are. The first item lives inside the queue, so an
 * idle subscriber, or one that gets an event at a time, costs no heap
 * array; a queue that grows (an answer's head and body, a burst) goes back
 * to its inline slot once written (the bench saw RSS stay up otherwise).
 * One slot, not two: the second cost every connection 24 bytes (33 bytes
 * of RSS per idle subscriber with malloc's rounding, 7 %), while an
 * answer's heap array is one malloc and free beside its syscalls.
 *
 * Used by a connection (its wire bytes) and, with HTTP/2, by each stream
 * (its payload bytes, framed when the session writes them).
 *
 * Threads: a queue belongs to its worker's thread.
 */
#ifndef COURANT_OUTQ_H
#define COURANT_OUTQ_H

#include "wref.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef enum outq_kind { OUTQ_STATIC, OUTQ_HEAP, OUTQ_EVENT, OUTQ_BLOCK } outq_kind_t;

typedef struct outq_item {
    const char *ptr; /* STATIC: borrows; HEAP: owns (free); EVENT: inside wref->ev; BLOCK: inside block */
    uint32_t len;    /* bytes */
    uint32_t kind;   /* outq_kind_t */
    union {
        wref_t *wref;    /* EVENT: borrows one count of wref->refs */
        wblock_t *block; /* BLOCK: borrows one count of block->refs */
    };
} outq_item_t;

#define OUTQ_INLINE 1

typedef struct outq {
    outq_item_t *items; /* points at inline_items or a heap array (owned) */
    uint32_t head;      /* index of the oldest item */
    uint32_t count;     /* items queued */
    uint32_t cap;       /* slots in items */
    uint32_t off;       /* bytes of items[head] already written */
    size_t bytes;       /* bytes queued and not yet written */
    wref_pool_t *pool;  /* borrows: where EVENT items return their wref counts */
    outq_item_t inline_items[OUTQ_INLINE];
} outq_t;

/* Storage provided by the caller (embedded in a conn or a stream). */
void outq_init(outq_t *q, wref_pool_t *pool);

/* Releases every queued item (HEAP freed, EVENT counts dropped). The queue
 * is empty and reusable afterwards. */
void outq_dispose(outq_t *q);

/* Appends an item. Ownership of a HEAP pointer passes to the queue; an
 * EVENT item takes one count of `r` (the caller does not). Aborts only if a
 * tiny allocation fails: the depth is bounded by --max-pending-bytes. */
void outq_push_static(outq_t *q, const char *s, size_t len);
void outq_push_heap(outq_t *q, char *p, size_t len);
void outq_push_event(outq_t *q, wref_t *r, const char *p, size_t len);

/* Appends a slice of a block (wref_copy): extends the tail item when the
 * slice continues it in the same block (98 % of the deliveries of a burst:
 * inline), else adds an item taking one count of `b`. */
void outq__push_block_item(outq_t *q, wblock_t *b, const char *p, size_t len);
static inline void outq_push_block(outq_t *q, wblock_t *b, const char *p, size_t len)
{
    outq_item_t *t = q->count ? &q->items[q->head + q->count - 1] : NULL;
    if (t && t->kind == OUTQ_BLOCK && t->ptr + t->len == p && t->block == b && len <= UINT32_MAX - t->len) {
        t->len += (uint32_t)len; /* the same iovec grows: no item, no count */
        q->bytes += len;
        return;
    }
    outq__push_block_item(q, b, p, len);
}

/* The block whose slice ends the queue, or NULL (empty, or another kind). */
static inline wblock_t *outq_tail_block(const outq_t *q)
{
    const outq_item_t *t = q->count ? &q->items[q->head + q->count - 1] : NULL;
    return t && t->kind == OUTQ_BLOCK ? t->block : NULL;
}

/* Fills up to `max` iovecs with the oldest queued bytes, at most `budget`
 * bytes in all (the last iovec may be cut). Returns the number filled. */
int outq_gather(const outq_t *q, struct iovec *iov, int max, size_t budget);

/* The first `n` bytes were written: pops whole items, keeps the offset of a
 * partial one. */
void outq_consume(outq_t *q, size_t n);

/* The same, calling written(ctx, item) for each EVENT or BLOCK item whose
 * last byte was among them, before its count is dropped (the write latency,
 * worker.h). `written` must not touch the queue. */
typedef void (*outq_written_cb)(void *ctx, const outq_item_t *it);
void outq_consume_notify(outq_t *q, size_t n, outq_written_cb written, void *ctx);

static inline int outq_empty(const outq_t *q) { return q->count == 0; }

#endif
