/*
 * topk.h - the most-subscribed topics: a small sorted list, and a board
 * through which one thread publishes its list to the others.
 *
 *   worker thread, on its tick while someone watches the dashboard
 *     stream_scan_topics(w, .., budget)       at most `budget` index slots a tick
 *        -> topk_offer(&scan, topic, subscribers)     O(1) for a topic too small
 *     the scan wrapped around -> topk_board_publish(&board, &scan); start over
 *
 *   any thread (the dashboard's snapshot)
 *     topk_board_read(&board[w], &copy) per worker    (mutex: one memcpy)
 *     topk_merge(&all, &copy)                         (no lock)
 *
 *   topk_list_t  n <= TOPK_KEEP entries, sorted by count, largest first
 *   +-------+-----+-----+-----------------------------+
 *   | count | len | cut | topic[TOPK_TOPIC_MAX] bytes |  x TOPK_KEEP
 *   +-------+-----+-----+-----------------------------+
 *
 * Memory is fixed: a list is about 4.5 KiB whatever the index holds; topics
 * longer than TOPK_TOPIC_MAX keep their first bytes and say so (`cut`), so
 * two long topics sharing that prefix count as one (a display, not an
 * accounting). Each worker keeps more entries (TOPK_KEEP) than the
 * dashboard shows (10), so the sum over workers of a topic spread evenly
 * is exact unless it ranks below TOPK_KEEP on some worker.
 *
 * A topic offered twice in one scan (an index resize between two ticks
 * moved it past the cursor) keeps the larger count rather than doubling.
 *
 * Threads: a list belongs to whoever holds it; a board's list is read and
 * written under its mutex, held only for one copy (bounded, nothing a
 * client controls).
 */
#ifndef COURANT_TOPK_H
#define COURANT_TOPK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define TOPK_KEEP 32       /* entries per list */
#define TOPK_TOPIC_MAX 120 /* bytes of a topic kept */

typedef struct topk_entry {
    uint64_t count;             /* subscribers */
    uint16_t len;               /* bytes of topic in use (<= TOPK_TOPIC_MAX) */
    uint8_t cut;                /* the topic was longer: these are its first bytes */
    char topic[TOPK_TOPIC_MAX]; /* not NUL-terminated; any bytes (escape when rendering) */
} topk_entry_t;

typedef struct topk_list {
    size_t n;                  /* entries in use */
    topk_entry_t e[TOPK_KEEP]; /* sorted by count, largest first */
} topk_list_t;

void topk_init(topk_list_t *l);

/* Counts `topic` (len bytes) with `count` subscribers: it enters the list if
 * there is room or it beats the smallest entry. O(1) when it does not
 * enter; O(TOPK_KEEP) otherwise. A topic already listed keeps the larger
 * of its two counts. */
void topk_offer(topk_list_t *l, const char *topic, size_t len, uint64_t count);

/* Adds `from`'s entries into `into`: counts of the same topic add up (two
 * workers' subscribers); the rest enter as topk_offer would. */
void topk_merge(topk_list_t *into, const topk_list_t *from);

/* One thread's last complete list, for the others. */
typedef struct topk_board {
    pthread_mutex_t lock; /* guards list and updated_ms; held for one copy */
    topk_list_t list;     /* the last published list */
    int64_t updated_ms;   /* monotonic ms of the last publish; 0 = never */
} topk_board_t;

void topk_board_init(topk_board_t *b);
void topk_board_dispose(topk_board_t *b);
void topk_board_publish(topk_board_t *b, const topk_list_t *l, int64_t now_ms);
/* Copies the board's list into *out; returns its updated_ms. */
int64_t topk_board_read(topk_board_t *b, topk_list_t *out);

#endif
