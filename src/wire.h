/*
 * wire.h - an event as a journal writes it down and reads it back.
 *
 * Every durable journal (journal.h: the SQLite store, the Redis stream)
 * keeps the same five things per event, and rebuilds the event from them:
 *
 *   id        the event id                     "urn:uuid:0193..."
 *   topics    the topics joined by '\n'        "https://ex.com/a\nurn:alt"
 *   private   the Mercure private flag         0 / 1
 *   ms        published_ms (CLOCK_REALTIME)    1764000000123
 *   wire      the encoded SSE bytes, as they   "id: urn:uuid:0193...\n
 *             are delivered                     data: hello\n\n"
 *
 * '\n' can join topics because a topic holds no control character
 * (publish.c refuses them), so splitting gives back the very same list.
 *
 * What comes back is hostile input, whatever the journal: a file someone
 * edited, a stream another program appends to. wire_try_decode checks every
 * field before an event is built, and both journals use it, so a record the
 * hub would deliver has passed the same check wherever it was read: above
 * all, the wire bytes are exactly one SSE event whose id line is the
 * record's id, so a client resuming from that id resumes where it thinks.
 *
 * Pure functions: no state, any thread.
 */
#ifndef COURANT_WIRE_H
#define COURANT_WIRE_H

#include "evbuf.h"

#include <stddef.h>
#include <stdint.h>

#define WIRE_MAX_BYTES (64u << 20) /* a record's wire bytes at most (--max-event-bytes' cap) */
#define WIRE_MAX_ID 1024           /* an id's bytes at most (publish.c's limit) */

/* One record read back from a journal. Every pointer is borrowed for the
 * call and need not be NUL-terminated. */
typedef struct wire_record {
    const char *id;
    size_t id_len;
    const char *topics; /* joined by '\n' */
    size_t topics_len;
    int is_private;       /* 0 or 1 */
    int64_t published_ms; /* >= 0 */
    const char *wire;
    size_t wire_len;
} wire_record_t;

/* wire_try_decode's outcomes. */
#define WIRE_OK 0
#define WIRE_BAD (-1)   /* not a courant event: skip it (count it, log it) */
#define WIRE_NOMEM (-2) /* the record may be fine, memory ran out */

/* Checks the record and builds its event (refs = 1, owned by the caller)
 * in *out. Returns WIRE_OK, or WIRE_BAD / WIRE_NOMEM with *out = NULL and
 * *why set to a static one-line reason. */
int wire_try_decode(const wire_record_t *r, evbuf_t **out, const char **why)
    __attribute__((warn_unused_result));

/* Checks that `wire` is exactly one event as sse_encode writes it, whose
 * id line is `id`: "id: ID\n", then only "event: ", "retry: " or "data: "
 * lines, at least one "data: " line (without one a client dispatches
 * nothing), then one blank line that ends it; no CR anywhere, no NUL but in
 * a data line (sse_encode keeps a payload's NUL, a client reads it as a
 * character). Returns 0 or -1. (Was backplane__check_wire, which refused
 * every NUL, so an event whose data held one was acknowledged and then
 * never delivered with --redis; the store's loader applies it too.) */
int wire_check(const char *wire, size_t wire_len, const char *id, size_t id_len);

/* Joins the topics of `ev` with '\n' into *buf, grown with realloc as
 * needed (the caller owns *buf and frees it; *cap is its size). The result
 * is *len bytes, not NUL-terminated, but *cap > *len always, so the caller
 * may terminate it. Returns 0, or -1 if memory runs out. */
int wire_join_topics(const evbuf_t *ev, char **buf, size_t *cap, size_t *len);

/* Splits '\n'-joined topics into pointers into `t` (nothing is copied):
 * at most EVBUF_MAX_TOPICS, each non-empty and free of control characters.
 * Returns 0 with *count set, or -1. */
int wire_split_topics(const char *t, size_t n, const char **topics, size_t *lens, size_t *count);

#endif
