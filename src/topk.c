/*
 * topk.c - see topk.h.
 */
#include "topk.h"

#include <string.h>

void topk_init(topk_list_t *l) { l->n = 0; }

static int same_topic(const topk_entry_t *e, const char *topic, size_t len, int cut)
{
    return e->len == len && e->cut == cut && memcmp(e->topic, topic, len) == 0;
}

/* Moves entry i up while it beats the one above it (counts only grow here). */
static void rise(topk_list_t *l, size_t i)
{
    while (i > 0 && l->e[i].count > l->e[i - 1].count) {
        topk_entry_t t = l->e[i];
        l->e[i] = l->e[i - 1];
        l->e[i - 1] = t;
        i--;
    }
}

static size_t find(const topk_list_t *l, const char *topic, size_t len, int cut)
{
    for (size_t i = 0; i < l->n; i++)
        if (same_topic(&l->e[i], topic, len, cut))
            return i;
    return l->n;
}

/* Adds a new entry (not listed yet) if it fits or beats the last. */
static void enter(topk_list_t *l, const char *topic, size_t len, int cut, uint64_t count)
{
    size_t i = l->n < TOPK_KEEP ? l->n++ : TOPK_KEEP - 1;
    topk_entry_t *e = &l->e[i];
    e->count = count;
    e->len = (uint16_t)len;
    e->cut = (uint8_t)cut;
    memcpy(e->topic, topic, len);
    rise(l, i);
}

void topk_offer(topk_list_t *l, const char *topic, size_t len, uint64_t count)
{
    if (l->n == TOPK_KEEP && count <= l->e[TOPK_KEEP - 1].count)
        return; /* the common case, a topic with few subscribers: O(1) */
    int cut = len > TOPK_TOPIC_MAX;
    if (cut)
        len = TOPK_TOPIC_MAX;
    size_t i = find(l, topic, len, cut);
    if (i < l->n) { /* seen already in this scan: keep the larger count */
        if (count > l->e[i].count) {
            l->e[i].count = count;
            rise(l, i);
        }
        return;
    }
    enter(l, topic, len, cut, count);
}

void topk_merge(topk_list_t *into, const topk_list_t *from)
{
    for (size_t k = 0; k < from->n; k++) {
        const topk_entry_t *f = &from->e[k];
        size_t i = find(into, f->topic, f->len, f->cut);
        if (i < into->n) {
            into->e[i].count += f->count;
            rise(into, i);
        } else if (into->n < TOPK_KEEP || f->count > into->e[TOPK_KEEP - 1].count) {
            enter(into, f->topic, f->len, f->cut, f->count);
        }
    }
}

void topk_board_init(topk_board_t *b)
{
    pthread_mutex_init(&b->lock, NULL);
    topk_init(&b->list);
    b->updated_ms = 0;
}

void topk_board_dispose(topk_board_t *b) { pthread_mutex_destroy(&b->lock); }

void topk_board_publish(topk_board_t *b, const topk_list_t *l, int64_t now_ms)
{
    pthread_mutex_lock(&b->lock);
    b->list.n = l->n;
    memcpy(b->list.e, l->e, l->n * sizeof(l->e[0]));
    b->updated_ms = now_ms;
    pthread_mutex_unlock(&b->lock);
}

int64_t topk_board_read(topk_board_t *b, topk_list_t *out)
{
    pthread_mutex_lock(&b->lock);
    out->n = b->list.n;
    memcpy(out->e, b->list.e, b->list.n * sizeof(b->list.e[0]));
    int64_t at = b->updated_ms;
    pthread_mutex_unlock(&b->lock);
    return at;
}
