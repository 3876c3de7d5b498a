/*
 * stream.h - subscribers: an open text/event-stream response and the topic
 * selectors it listens to; and each worker's index from topic to streams.
 *
 * Per worker:
 *
 *   stream_index.topics (strmap)          stream_index.wildcard
 *     "https://ex.com/a" -> topic_subs      link <-> link <-> ...   ("*")
 *                            head -> link <-> link <-> ...
 *                                     |        |
 *                                   conn A   conn B      (link.conn borrows)
 *
 * A stream owns one link per distinct selector (its `links[]`), and a link
 * lives in exactly one list: an exact topic's list in the hash map, the
 * "*" list, or the list of one URI template (selector.h). Templates are
 * interned per worker (one compiled template per distinct text, shared by
 * the streams that subscribe with it or hold it in their claim), and each
 * event costs one cached match per (distinct template, topic), then a walk
 * of the matching templates' links.
 *
 * Private updates: a stream keeps its token's mercure.subscribe selectors
 * (`claims`); a private event is delivered, live or replayed, only if one
 * of them matches one of the event's topics. A topic_subs exists while at least one
 * link hangs from it, and owns the topic string, so N subscribers of one
 * topic on a worker store the topic once.
 *
 * Fan-out of one event costs one hash lookup per topic of the event plus
 * one step per matching subscriber: never a scan of all connections. A
 * subscriber matched by several selectors gets the event once (its
 * `last_seq` stamp), and only events with seq > `start_seq` go live (the
 * resume seam, see hub.h).
 *
 * Threads: everything here runs on the owning worker's thread.
 */
#ifndef COURANT_STREAM_H
#define COURANT_STREAM_H

#include "conn.h"
#include "evbuf.h"

#include <stddef.h>
#include <stdint.h>

typedef struct stream_index stream_index_t;

stream_index_t *stream_index_new(void);
void stream_index_free(stream_index_t *idx); /* all streams must be detached */

/* What a new subscription asks for. Pointers are borrowed for the call. */
typedef struct stream_request {
    const char *const *selectors; /* exact topics, "*", or URI templates */
    const size_t *selector_lens;
    size_t num_selectors;
    const char *last_event_id; /* NULL: none sent */
    size_t last_event_id_len;
    const char *cors_headers; /* "" or header lines ending in CRLF */
    char *const *claims;      /* the token's mercure.subscribe selectors (NUL-terminated) */
    size_t num_claims;        /* 0: anonymous, or a token without the claim */
    int64_t token_exp_s;      /* the token's exp (epoch seconds): the stream ends then; 0 = none */
    const char *payload;      /* the token's mercure.payload (compact JSON), or NULL */
} stream_request_t;

/* Turns the conn into a stream: answers the headers and a first comment at
 * once, replays history after the last event id, and registers the
 * selectors. On failure the conn has been answered with an error. */
void stream_start(conn_t *c, const stream_request_t *req);

/* Removes the stream from the index and frees it (conn_close calls this). */
void stream_detach(conn_t *c);

/* The worker's bounded (template, topic) match cache (worker thread only). */
struct selector_cache *stream_match_cache(worker_t *w);

/* Queues `ev` to every matching stream of this worker (worker thread). */
void stream_fanout(worker_t *w, evbuf_t *ev);

/* Periodic: heartbeat and end of life. */
void stream_on_tick(conn_t *c, int64_t now_ms);

/* Shutdown: end this stream at a random moment within `spread_ms`. */
void stream_schedule_end(conn_t *c, int64_t now_ms, int spread_ms);

#endif
