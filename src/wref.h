/*
 * wref.h - a worker's reference to a shared event, counted without atomics.
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
 * Threads: a pool and its wrefs belong to one worker's thread.
 */
#ifndef COURANT_WREF_H
#define COURANT_WREF_H

#include "evbuf.h"

#include <stdint.h>

typedef struct wref {
    evbuf_t *ev;   /* owns one atomic reference */
    uint32_t refs; /* output queue items holding this wref (one thread) */
    uint8_t live;  /* made by the live fan-out, not a replay: its writes are timed
                      (worker.h, enqueue_written); 0 from wref_new */
} wref_t;

#define WREF_POOL_SIZE 256

typedef struct wref_pool {
    wref_t *spare[WREF_POOL_SIZE]; /* owns: wrefs ready for reuse */
    int count;                     /* entries of spare in use */
} wref_pool_t;

/* Storage provided by the caller; wref_pool_dispose frees the spares. */
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
 * wanted after all. */
void wref_release_unused(wref_pool_t *p, wref_t *r);

#endif
