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
 *   index.upats (upindex.h)               URL patterns (Mercure 1.0), by fixed
 *     "hex.com\n/books" -> entry <-> ...   hostname and literal path prefix
 *                            head -> link <-> link ...
 *
 * A stream owns one link per distinct selector (its `links[]`), and a link
 * lives in exactly one list: an exact topic's list, the "*" list, the list
 * of one URI template, or the list of one URL pattern. Selectors are typed
 * (grant.h): a classic `topic` is "*", an RFC 6570 template, or an exact
 * topic; a v1 `match` is an exact topic (even with braces in it), a
 * `match_urlpattern` a URL pattern; "*" is the wildcard in every type.
 * Exact topics of both dialects share one index, so does "*".
 *
 * Templates are interned per worker (one compiled template per distinct
 * text, shared by the streams that subscribe with it or hold it in their
 * claim) and indexed by their literal prefix (the text before the first
 * '{', at most STREAM_PREFIX_MAX bytes), so an event only runs the
 * templates whose prefix its topic starts with: the cost of an event
 * follows the subscribers it can reach, not the number of templates
 * attackers interned. Each candidate costs one cached match (selector.h).
 * URL patterns are interned and indexed the same way (upindex.h), and
 * matched through the same cache.
 *
 * Fan-out of one event costs one hash lookup per topic of the event, one
 * per distinct template prefix length (at most STREAM_PREFIX_MAX), with URL
 * patterns one URL parse per topic and one lookup per pattern prefix length
 * in use, plus one step per matching subscriber: never a scan of all
 * connections. A subscriber matched by several selectors gets the event
 * once (its `last_seq` stamp).
 *
 * Matching budget: a worker evaluates at most --match-turn-budget steps
 * of matching per turn that the cache cannot answer (URI templates and URL
 * patterns, fan-out and replay together; 1 Mi steps by default, about 4
 * ms). A template's steps are what selector_cache_work counts: one per
 * topic byte once its lazy DFA knows the way, the NFA states scanned while
 * it builds DFA states or simulates a template that gave its DFA up. A
 * spent budget still lets a known answer through (the template's warm DFA,
 * a cached one: selector_cache_known, about a lookup's cost). When a turn's
 * budget is spent, the subscribers an
 * event would still have to be matched for are not dropped: they are
 * deferred, i.e. put into replay from that event on (below), and read it
 * from history in a later turn, in order, within later budgets. A template
 * or pattern whose subscribers are all replaying is not matched live at
 * all. So hostile selectors slow down their own subscribers (and those
 * sharing their selectors), never a worker's turn.
 *
 * Replay (see hub.h, "Resume seam"): a new stream reads history in batches,
 * filtering them here, on its worker, never under the hub lock. A worker
 * spends at most STREAM_REPLAY_BUDGET per turn on replays, counted as one
 * per event checked plus one per STREAM_REPLAY_MATCH_WORK of matching work
 * (selector_cache_work): a subscriber's templates decide what checking one
 * event costs (up to states x topic length each while their DFAs are cold
 * or given up, 30 us for a 400-state template on a 31-byte topic; about
 * the topic length once warm), so counting events alone would let one
 * subscribe with costly templates hold its worker for a whole history. A
 * stream that is not caught up ignores live events (it will read them from
 * history) and continues next turn, where the budget ran out. --max-replay
 * bounds the events one subscribe replays: past it the stream ends and the
 * client resumes by reconnecting with the last id it got.
 *
 * Private updates: a stream keeps its token's subscribe matchers (`claims`:
 * the classic mercure.subscribe selectors, or the v1 authorization_details
 * subscribe matchers); a private event is delivered, live or replayed, only
 * if one of them matches one of the event's topics. An anonymous stream has
 * none: it never sees a private event, whatever dialect published it.
 *
 * Threads: everything here runs on the owning worker's thread. That is
 * also what makes the interned templates safe: matching one grows its lazy
 * DFA (selector.h, Threads), and only this worker ever matches it.
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

struct grant;

/* What a new subscription asks for. Pointers are borrowed for the call. */
typedef struct stream_request {
    const char *const *selectors;  /* topic selectors / matchers, as the client sent them */
    const size_t *selector_lens;   /* their lengths */
    const uint8_t *selector_types; /* grant_match_type_t of each (grant.h) */
    size_t num_selectors;
    const char *last_event_id; /* NULL: none sent */
    size_t last_event_id_len;
    int v1;                      /* Mercure 1.0 request: Mercure-Last-Event-ID, v1 subscription events */
    const resp_hdrs_t *hdrs;     /* fields for the response head (CORS), or NULL */
    const struct grant *grant;   /* the token's grant (its subscribe matchers, exp, payload), or NULL */
    const char *const *payloads; /* v1: each selector's payload (compact JSON) or NULL; classic: NULL */
    int anonymous;               /* no token: its subscription events are rate-limited (subs.h) */
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

/* The dashboard's top topics (topk.h): visits the exact-topic entries of
 * the index in slot order from `cursor`, at most `budget` slots, calling
 * visit(ctx, topic, len, subscribers on this worker). Returns the cursor to
 * continue from next time, or 0 when this pass reached the end. Entries
 * added, removed or moved by a resize between two calls may be missed or
 * seen twice: a picture, not an account. Worker thread. */
typedef void (*stream_topic_cb)(void *ctx, const char *topic, size_t len, uint32_t subscribers);
size_t stream_scan_topics(struct worker *w, size_t cursor, size_t budget, stream_topic_cb visit, void *ctx);

/* For tests and /metrics. */
typedef struct stream_index_stats {
    size_t streams;          /* open streams */
    size_t templates;        /* interned templates */
    size_t prefix_lookups;   /* template buckets looked up by fan-out so far */
    size_t template_matches; /* template matches run by fan-out so far (cached or not) */
    size_t urlpatterns;      /* interned URL patterns */
    size_t urlpattern_evals; /* URL-pattern matches evaluated (not answered by the cache) so far */
    size_t deferred;         /* streams put into replay because a turn's matching budget was spent */
    size_t budget_spent;     /* turns whose matching budget ran out */
} stream_index_stats_t;
void stream_index_get_stats(const stream_index_t *idx, stream_index_stats_t *out);

#endif
