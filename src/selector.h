/*
 * selector.h - Mercure topic selectors: an exact topic, "*", or an RFC 6570
 * URI template (levels 1 to 4). A topic matches a template when some
 * expansion of the template, for some values of its variables, equals the
 * topic (draft-dunglas-mercure-07, "Topic selectors").
 *
 * A template is compiled once into a small NFA (Thompson construction):
 *
 *   "https://ex.com/books/{id}{?fmt}"
 *     h t t p s : / / ... b o o k s /  [run of value chars]  ( "?fmt=" [run] )?
 *
 * Each expression becomes: nothing (all variables undefined) | its operator's
 * prefix, then the defined variables in order joined by the operator's
 * separator; a variable is a run of the characters its expansion may produce
 * (unreserved and pct-encoded, plus reserved ones for "+" and "#", plus ","
 * for list values, plus the separator and "=" when exploded), preceded by
 * "name=" for the named operators ";", "?" and "&". A prefix modifier :n
 * bounds the run to n characters (n <= 16; longer prefixes are unbounded).
 * Bytes >= 0x80 are accepted in values because topics are IRIs, whose
 * non-ASCII characters a client may send unencoded.
 *
 * Matching: the literal text before the first expression is compared with
 * memcmp, the rest runs through a lazy DFA built from the NFA as topics need
 * it (subset construction on demand, as RE2 does; selector.c): once the
 * states a kind of topic visits are built, a match is one table load per
 * byte, whatever the template (the 31 reserved expansions of
 * "{+a}{+b}...{+E}/never" took 27 us per 31-byte topic as an NFA, 43 ns as
 * a DFA: bench/selector_bench.c, release build). Each template's DFA is capped at 4 KiB: when full it is flushed
 * and rebuilt; a template whose DFA keeps filling up without being reused
 * (a bounded run after an unbounded one, "{+a}/{+b:16}", against topics
 * with random parts) falls back to NFA simulation, and tries the DFA again
 * once the NFA has cost 16 times what giving up did. Every path gives
 * exactly the NFA's answer, in time O(topic length x states) at worst, with
 * no backtracking, so a hostile topic cannot make it slow; but a template
 * can still cost its NFA (selector_cache_work counts it).
 *
 * A selector containing "{" that is not a valid template is an exact topic.
 *
 * The match cache: fan-out asks "does template T match topic X" for every
 * template subscription on every event. When T's DFA already holds every
 * state X leads through, the DFA answers (faster than hashing X); otherwise
 * the answer is cached per worker in a bounded direct-mapped table keyed by
 * (selector id, topic), so a topic that comes back does not pay for DFA
 * states again, nor for the NFA of a template that gave up its DFA. Selector
 * ids are unique per compiled selector for the life of the process, so a
 * cached answer can never be read back for another selector.
 *
 * Threads: matching a template through selector_match, selector_cache_match
 * or selector_cache_known mutates it (its DFA grows), so a template is
 * matched that way by one thread only: the thread of its first such match,
 * which owns its DFA (asserted at every match: a pointer compare). Its other
 * readers (selector_match_nfa, selector_text, ...) do not mutate it and may
 * run on any thread. Exact and "*" selectors are never mutated. Every
 * caller keeps that by ownership: stream.c interns templates per worker
 * (its index) and matches them, for links and claims alike, on that
 * worker's thread only; matchset.c (a token's grant, per request) matches
 * with selector_match_nfa: a one-shot match does not pay for a DFA, and the
 * set stays const. A cache belongs to one worker. Selector ids come from an
 * atomic counter.
 */
#ifndef COURANT_SELECTOR_H
#define COURANT_SELECTOR_H

#include <stddef.h>
#include <stdint.h>

typedef enum selector_kind { SELECTOR_EXACT, SELECTOR_ANY, SELECTOR_TEMPLATE } selector_kind_t;

typedef struct selector selector_t;

/* Compiles `s` (not NUL-terminated). NULL only when out of memory. */
selector_t *selector_try_new(const char *s, size_t len) __attribute__((warn_unused_result));
void selector_free(selector_t *sel);

selector_kind_t selector_kind(const selector_t *sel);
const char *selector_text(const selector_t *sel); /* NUL-terminated, borrowed */
size_t selector_len(const selector_t *sel);
uint64_t selector_id(const selector_t *sel);
/* NFA states of a template (its matching cost per topic byte); 0 otherwise. */
int selector_num_states(const selector_t *sel);

/* Does `topic` match? Uncached. Allocates nothing once the template's DFA
 * holds the states the topic needs (its first match allocates the DFA, and
 * new states may grow it up to its cap). Mutates a template: only on the
 * thread that owns its DFA (see Threads). */
int selector_match(selector_t *sel, const char *topic, size_t len);

/* The same answer by plain NFA simulation, without the DFA: it never
 * mutates the selector, so any thread may call it, concurrently. For a
 * selector matched against a few topics and then freed (a token's grant,
 * matchset.c), where building DFA states would cost more than it saves;
 * and the reference the DFA is tested against. O(states x topic length);
 * allocates its state sets per call (0, no match, when out of memory). */
int selector_match_nfa(const selector_t *sel, const char *topic, size_t len);

/* Is `s` a valid RFC 6570 template with at least one expression? */
int selector_is_valid_template(const char *s, size_t len);

typedef struct selector_cache selector_cache_t;

/* entries: a power of two. NULL when out of memory. */
selector_cache_t *selector_cache_new(size_t entries);
void selector_cache_free(selector_cache_t *c);

/* selector_match through the cache (`c` may be NULL: uncached): the
 * template's DFA if it knows every step of the topic, else the cache, else
 * a match (building DFA states, or simulating the NFA) whose answer is
 * cached. Exact and "*" selectors never touch the cache. */
int selector_cache_match(selector_cache_t *c, selector_t *sel, const char *topic, size_t len);

/* The answer when it is known without matching: the template's DFA knows
 * every step of the topic, or the cache holds (selector, topic); -1
 * otherwise, having built and simulated nothing (a miss is counted). For a
 * caller whose matching budget is spent (stream.c): a warm template still
 * answers at about the cost of a cache lookup. Exact and "*" selectors
 * always answer. Its work (the DFA's walk, the lookup) counts as in
 * selector_cache_match. `c` may be NULL (the DFA only). */
int selector_cache_known(selector_cache_t *c, selector_t *sel, const char *topic, size_t len);

/* The same cache for other matchers (stream.c's URL patterns): ids come
 * from selector_new_id, the selectors' own id space, so an entry can never
 * be read back for a different matcher. lookup returns 1 or 0 when
 * (id, topic) is cached, -1 when it is not (counted as a miss); store
 * records a result (topics longer than 512 bytes are never cached). */
uint64_t selector_new_id(void);
int selector_cache_lookup(selector_cache_t *c, uint64_t id, const char *topic, size_t len);
void selector_cache_store(selector_cache_t *c, uint64_t id, const char *topic, size_t len, int result);

/* Hits and misses so far, for tests. */
void selector_cache_stats(const selector_cache_t *c, uint64_t *hits, uint64_t *misses);

/* The matching work done through `c` so far (never decreases), in units of
 * one NFA state scanned for one topic byte (a few ns). A template match
 * costs SELECTOR_WORK_MATCH, one per 16 bytes of the literal prefix, one per
 * topic byte through a known DFA transition, and for each transition the
 * DFA had to build, the NFA states it scanned (at most the template's
 * states) plus one per 64 of them (the set's hash); a template simulated as
 * an NFA costs the states scanned plus one per byte; a template's first
 * match past its prefix makes its DFA, SELECTOR_WORK_DFA_NEW more. So a
 * match costs at most about states x topic length, and about the topic
 * length once its DFA states are built. When the DFA does not know every step, the cache
 * is consulted: SELECTOR_WORK_HIT more (the keyed hash and compare), and
 * on a miss the match above (the DFA's walk so far counts too). A caller
 * that must bound its time per turn (replay, stream.c) reads it before and
 * after. Exact and "*" selectors add nothing. Same thread as the cache. */
uint64_t selector_cache_work(const selector_cache_t *c);

#define SELECTOR_WORK_HIT 8   /* a cache lookup, about as long as 8 state scans */
#define SELECTOR_WORK_MATCH 4 /* a match's fixed cost: its set-up, the answer's check (~10 ns) */
/* Making a template's DFA: its byte classes (a pass over the 256 bytes),
 * its start set, its allocations (measured: 1.8 us for 412 states). */
#define SELECTOR_WORK_DFA_NEW(states) (256 + 2 * (uint64_t)(states))

/* For tests and the fuzzer, not a contract. selector__dfa_limit: drops the
 * template's DFA and caps the next one at max_states (0: the default cap;
 * at least 3), so that flushes come early; mode SELECTOR__DFA_KEEP never
 * falls back to the NFA (flushes only), SELECTOR__DFA_EAGER falls back at
 * the first bad flush and retries the DFA at the next match (every path,
 * often). The DFA's next owner is the thread of the next match. */
#define SELECTOR__DFA_NORMAL 0
#define SELECTOR__DFA_KEEP 1
#define SELECTOR__DFA_EAGER 2
void selector__dfa_limit(selector_t *sel, int max_states, int mode);

#endif
