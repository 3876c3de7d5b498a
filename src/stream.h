/*
 * stream.h - subscribers: an event stream and the topic selectors it listens
 * to; each worker's index from topics to streams; fan-out and replay.
 *
 * Per worker:
 *
 *   index.topics (strmap)                index.wildcard
 *     "https://ex.com/a" -> topic_subs     link <-> link ...         ("*")
 *                             head -> link <-> link <-> ...
 *                                      |        |
 *                                    req A    req B      (link.req borrows)
 *
 *   index.prefixes (strmap)               URI templates, by literal prefix
 *     "https://ex.com/books/" -> bucket -> tmpl <-> tmpl ...
 *                                           head -> link <-> link ...
 *
 * A stream owns one link per distinct selector (its `links[]`), and a link
 * lives in exactly one list: an exact topic's list, the "*" list, or the
 * list of one URI template. Templates are interned per worker (one compiled
 * template per distinct text, shared by the streams that subscribe with it
 * or hold it in their claim) and indexed by their literal prefix (the text
 * before the first '{', at most STREAM_PREFIX_MAX bytes), so an event only
 * runs the templates whose prefix its topic starts with: the cost of an
 * event follows the subscribers it can reach, not the number of templates
 * attackers interned. Each candidate costs one cached match (selector.h).
 *
 * Fan-out of one event costs one hash lookup per topic of the event, one
 * per distinct template prefix length (at most STREAM_PREFIX_MAX), plus one
 * step per matching subscriber: never a scan of all connections. A
 * subscriber matched by several selectors gets the event once (its
 * `last_seq` stamp).
 *
 * Replay (see hub.h, "Resume seam"): a new stream reads history in batches,
 * filtering them here, on its worker, never under the hub lock. A worker
 * spends at most STREAM_REPLAY_BUDGET per turn on replays, counted as one
 * per event checked plus one per STREAM_REPLAY_MATCH_WORK of matching work
 * (selector_cache_work): a subscriber's templates decide what checking one
 * event costs (up to states x topic length each, 30 us for a 400-state
 * template on a 31-byte topic), so counting events alone would let one
 * subscribe with costly templates hold its worker for a whole history. A
 * stream that is not caught up ignores live events (it will read them from
 * history) and continues next turn, where the budget ran out. --max-replay
 * bounds the events one subscribe replays: past it the stream ends and the
 * client resumes by reconnecting with the last id it got.
 *
 * Private updates: a stream keeps its token's subscribe selectors
 * (`claims`); a private event is delivered, live or replayed, only if one of
 * them matches one of the event's topics.
 *
 * Threads: everything here runs on the owning worker's thread.
 */
#ifndef COURANT_STREAM_H
#define COURANT_STREAM_H

#include "evbuf.h"
#include "req.h"

#include <stddef.h>
#include <stdint.h>

struct worker;
typedef struct stream_index stream_index_t;

#define STREAM_PREFIX_MAX 64        /* bytes of a template's literal prefix used as its index key */
#define STREAM_REPLAY_BATCH 256     /* events copied from the hub per read */
#define STREAM_REPLAY_BUDGET 4096   /* replay cost per worker turn: events checked + work / below */
#define STREAM_REPLAY_MATCH_WORK 64 /* selector_cache_work per unit: 4096 units ~ 1 ms of matching */

stream_index_t *stream_index_new(struct worker *w);
void stream_index_free(stream_index_t *idx); /* all streams must be detached */

/* What a new subscription asks for. Pointers are borrowed for the call. */
typedef struct stream_request {
    const char *const *selectors; /* exact topics, "*", or URI templates */
    const size_t *selector_lens;
    size_t num_selectors;
    const char *last_event_id; /* NULL: none sent */
    size_t last_event_id_len;
    const resp_hdrs_t *hdrs; /* fields for the response head (CORS), or NULL */
    char *const *claims;     /* the token's subscribe selectors (NUL-terminated), trusted */
    size_t num_claims;       /* 0: anonymous, or a token without the claim */
    int64_t token_exp_s;     /* the token's exp (epoch seconds): the stream ends then; 0 = none */
    const char *payload;     /* the token's mercure.payload (compact JSON), or NULL */
    int anonymous;           /* no token: its subscription events are rate-limited (subs.h) */
} stream_request_t;

/* Turns the request into a stream: checks the subscribe limits, answers the
 * head and a first comment at once, replays history after the last event id
 * (the first batch now, the rest in later turns) and registers the
 * selectors. On failure the request has been refused. */
void stream_start(req_t *r, const stream_request_t *sr);

/* Removes the stream from the index and frees it (req_on_abort calls this). */
void stream_detach(req_t *r);

/* Queues `ev` to every matching stream of this worker. */
void stream_fanout(struct worker *w, evbuf_t *ev);

/* Continues the replays in progress, within the turn's budget. */
void stream_replay_some(struct worker *w);
int stream_replay_pending(const stream_index_t *idx);

/* Periodic: heartbeat and end of life. */
void stream_on_tick(req_t *r, int64_t now_ms);

/* Shutdown: end this stream at a random moment within `spread_ms`. */
void stream_schedule_end(req_t *r, int64_t now_ms, int spread_ms);

/* For tests and /metrics. */
typedef struct stream_index_stats {
    size_t streams;          /* open streams */
    size_t templates;        /* interned templates */
    size_t prefix_lookups;   /* template buckets looked up by fan-out so far */
    size_t template_matches; /* template matches run by fan-out so far (cached or not) */
} stream_index_stats_t;
void stream_index_get_stats(const stream_index_t *idx, stream_index_stats_t *out);

#endif
