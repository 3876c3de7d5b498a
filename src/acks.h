/*
 * acks.h - answers that wait for another thread: each worker's table of
 * requests whose outcome the journal (store, Redis) will post back.
 *
 *   publish (worker wK)                 journal thread               worker wK
 *   -------------------                 --------------               ---------
 *   token = acks_try_wait(cb, req) --> journal_try_submit(.., token)
 *   req waits (REQ_WAITING)             commit / XADD
 *                                       worker_post_ack(wK, token) --> inbox
 *                                                                      acks_complete(token)
 *                                                                        -> cb(req, ev, ok)
 *
 * The journal never holds a pointer to a request, only a token: the index
 * of a slot plus the slot's generation. A request whose peer goes away
 * cancels its slot (generation + 1), so a late ack is dropped on the
 * worker thread and never touches freed memory or answers another request.
 *
 *   slots[i] = { cb, ctx (borrows), data (owns), gen }   token = gen << 32 | i + 1
 *
 * Threads: a table belongs to one worker's thread.
 */
#ifndef COURANT_ACKS_H
#define COURANT_ACKS_H

#include "evbuf.h"

#include <stdint.h>

typedef struct acks acks_t;

/* Completion of a waiting request, on its worker's thread. `ev` is borrowed
 * for the call; `data` is what was given to acks_try_wait (freed after the
 * call returns). ok: the journal's verdict. */
typedef void (*acks_done_cb)(void *ctx, void *data, evbuf_t *ev, int ok);

acks_t *acks_new(void);
void acks_free(acks_t *a); /* frees every slot's data */

/* Takes a slot for `ctx`, keeping `data` (malloc'd, owned by the table from
 * now on, may be NULL). Returns the token, or 0 if memory runs out (data is
 * then freed). */
uint64_t acks_try_wait(acks_t *a, acks_done_cb cb, void *ctx, void *data) __attribute__((warn_unused_result));

/* The waiter is gone: a later completion for `token` is dropped. */
void acks_cancel(acks_t *a, uint64_t token);

/* Completes `token` (if still waited for): calls its callback once. */
void acks_complete(acks_t *a, uint64_t token, evbuf_t *ev, int ok);

/* Slots in use (for tests). */
uint32_t acks_waiting(const acks_t *a);

#endif
