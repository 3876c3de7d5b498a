/*
 * wref.h - a worker's reference to a shared event, counted without atomics,
 * and the worker's back-to-back copies of the events it fans out.
 *
 *   evbuf (atomic refs: history, inboxes, one per worker that queued it)
 *     ^
 *     | one atomic reference
 *   wref {ev, refs}  <--- output queue items on this worker (plain count)
 *
 * Subscriber queues on one worker point at one wref per event, whose plain
 * `refs` counts them; the wref holds the worker's one atomic reference on
 * the evbuf (see evbuf.h). So a delivery to 10,000 subscribers costs two
 * atomic operations per worker, not 20,000. Spare wrefs are kept in a small
 * pool so that fan-out allocates nothing per event.
 *
 * Back-to-back copies (wblock). An evbuf is its own allocation, so a
 * subscriber's k queued events are k iovecs, and the kernel pays per
 * iovec: 128 events of 166 bytes cost 70 ns each in one writev of 128
 * iovecs, 36 ns each as one contiguous iovec (loopback, measured). So a
 * live fan-out copies each event's bytes once per worker, the first time a
 * subscriber takes it, at the end of the pool's open block:
 *
 *   open block:  [ ev 41 chunk | ev 42 chunk | ev 43 chunk | ...free... ]
 *                  ^ subscriber A: one item, ev 41..43 (merged, outq.h)
 *                                ^ subscriber B (topic of 42 only): one item
 *
 * Events of one batch land next to each other, and a subscriber that takes
 * several of them in a row queues one slice (outq merges adjacent slices of
 * one block). The copy is once per worker and event, never per subscriber
 * (the floor of bench/floor.c copies the same way). A block is freed when
 * its last slice is written (`refs`), and the pool keeps a few spares.
 *
 * Memory: a block is pinned by every queue holding a slice of it, so a slow
 * subscriber could pin many blocks for a few bytes each. conn.c therefore
 * copies only for a subscriber whose queue is empty or ends in the open
 * block (it keeps up); one that falls behind queues plain evbuf slices, so
 * it pins at most the blocks of the batch it stalled in.
 *
 * Threads: a pool, its wrefs and its blocks belong to one worker's thread.
 */
#ifndef COURANT_WREF_H
#define COURANT_WREF_H

#include "evbuf.h"

#include <stddef.h>
#include <stdint.h>

#define WBLOCK_SIZE (64u << 10) /* bytes of one block: 390 events of 166 bytes */
#define WBLOCK_COPY_MAX \
    4096                /* larger events are queued as evbuf slices (the iovec is
                                   then a small part of their cost) */
#define WBLOCK_SPARES 4 /* freed blocks kept for reuse */
#define WBLOCK_EVENTS \
    512 /* copies one block holds at most (its event table: 6 KiB, 9 % of the data); past it, \
           a new block */

/* A run of copied event bytes, and where each copy ends with its event's
 * post time: a queue item merges the slices of several events, and the
 * write latency (worker.h, enqueue_written) is per event. */
typedef struct wblock {
    uint32_t refs;       /* output queue items pointing into it, + 1 while it is the pool's open block */
    uint32_t len;        /* bytes of data in use */
    uint32_t num_events; /* copies in data, in order */
    uint32_t ev_end[WBLOCK_EVENTS];   /* offset just past copy i */
    int64_t ev_hub_ns[WBLOCK_EVENTS]; /* its event's evbuf_t.hub_ns */
    char data[];                      /* WBLOCK_SIZE bytes */
} wblock_t;

typedef struct wref {
    evbuf_t *ev;          /* owns one atomic reference */
    uint32_t refs;        /* output queue items holding this wref (one thread) */
    uint8_t live;         /* made by the live fan-out, not a replay: its writes are timed
                             (worker.h, enqueue_written), and it is worth a copy (replays, one
                             subscriber each, are not); 0 from wref_new */
    wblock_t *copy;       /* borrows: the block holding this event's copy, or NULL; valid
                             during the fan-out of its event (the block may go after it) */
    const char *copy_at;  /* the copy inside copy->data */
    const char *copy_src; /* what was copied (inside ev): another range is not copied */
    uint32_t copy_len;    /* its bytes */
} wref_t;

#define WREF_POOL_SIZE 256

typedef struct wref_pool {
    wref_t *spare[WREF_POOL_SIZE];         /* owns: wrefs ready for reuse */
    int count;                             /* entries of spare in use */
    wblock_t *open;                        /* owns one count: the block copies go to, or NULL */
    wblock_t *spare_blocks[WBLOCK_SPARES]; /* owns: freed blocks ready for reuse */
    int num_spare_blocks;
} wref_pool_t;

/* Storage provided by the caller; wref_pool_dispose frees the spares and
 * the open block (every queue must have released its items first). */
void wref_pool_init(wref_pool_t *p);
void wref_pool_dispose(wref_pool_t *p);

/* A wref with refs = 0 holding a new atomic reference on `ev`. Aborts if 16
 * bytes cannot be had (nothing else would work either). */
wref_t *wref_new(wref_pool_t *p, evbuf_t *ev);

/* Takes one count (a queue item now points at it). */
static inline void wref_ref(wref_t *r) { r->refs++; }

/* Drops one count; at zero the atomic reference is dropped and the wref
 * returns to the pool. */
void wref_unref(wref_pool_t *p, wref_t *r);

/* Frees a wref that nobody counted (refs == 0), e.g. an event no subscriber
 * wanted after all. Its copy, if any, lives on in its block. */
void wref_release_unused(wref_pool_t *p, wref_t *r);

/* The copy of bytes[0..len) of r's event in the pool's open block, made at
 * the first call. Returns the copy and its block (the caller takes a count
 * with wblock_ref), or NULL when it is not copied: not a fan-out wref, len
 * > WBLOCK_COPY_MAX, another range of the event was copied already (two
 * framings on one worker), or memory ran out. The caller then queues the
 * evbuf bytes instead. */
const char *wref__copy_new(wref_pool_t *p, wref_t *r, const char *bytes, size_t len, wblock_t **block);
static inline const char *wref_copy(wref_pool_t *p, wref_t *r, const char *bytes, size_t len,
                                    wblock_t **block)
{
    if (r->copy && r->copy_src == bytes && r->copy_len == len) { /* every subscriber after the first */
        *block = r->copy;
        return r->copy_at;
    }
    return wref__copy_new(p, r, bytes, len, block);
}

static inline void wblock_ref(wblock_t *b) { b->refs++; }

/* Calls fn(ctx, hub_ns) for each event whose copy ends inside b's bytes
 * [p, p + len): the events a written queue item delivered. */
void wblock_each_event(const wblock_t *b, const char *p, size_t len, void (*fn)(void *ctx, int64_t hub_ns),
                       void *ctx);

/* Drops one count; at zero the block is freed or kept as a spare. */
void wblock_unref(wref_pool_t *p, wblock_t *b);

#endif
