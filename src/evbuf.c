/*
 * evbuf.c - see evbuf.h for the layout and the reference-counting rules.
 */
#include "evbuf.h"

#include "sse.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

/* Room before the bytes for a chunk-size line: 8 hex digits (wire < 4 GiB)
 * and CRLF. */
#define EVBUF_CHUNK_HEAD 10

/* Frames bytes[0..len) as one chunk in place: the size line right before
 * them, CRLF right after (the allocation has room for both). */
static void frame_chunk(evbuf_t *e, char *bytes)
{
    char hex[9];
    int n = snprintf(hex, sizeof(hex), "%x", e->len);
    char *start = bytes - 2 - n;
    memcpy(start, hex, (size_t)n);
    memcpy(bytes - 2, "\r\n", 2);
    memcpy(bytes + e->len, "\r\n", 2);
    e->chunked = start;
    e->chunked_len = (uint32_t)n + 2 + e->len + 2;
}

evbuf_t *evbuf_try_new(const evbuf_spec_t *spec)
{
    if (spec->num_topics == 0 || spec->num_topics > EVBUF_MAX_TOPICS)
        return NULL;
    sse_fields_t f = {
        .id = spec->id,
        .id_len = spec->id_len,
        .event = spec->type,
        .event_len = spec->type_len,
        .data = spec->data,
        .data_len = spec->data_len,
        .retry = spec->retry,
    };
    size_t wire = spec->wire ? spec->wire_len : sse_encoded_size(&f);
    size_t strings = spec->id_len + 1;
    for (size_t i = 0; i < spec->num_topics; i++)
        strings += spec->topic_lens[i] + 1;
    size_t tables = spec->num_topics * (sizeof(char *) + sizeof(uint32_t));
    size_t total = align8(sizeof(evbuf_t)) + align8(tables) + EVBUF_CHUNK_HEAD + wire + 2 + strings;
    if (wire > UINT32_MAX || total > UINT32_MAX)
        return NULL;

    char *mem = malloc(total);
    if (!mem)
        return NULL;
    evbuf_t *e = (evbuf_t *)mem;
    char *p = mem + align8(sizeof(evbuf_t));
    const char **topics = (const char **)p;
    uint32_t *lens = (uint32_t *)(p + spec->num_topics * sizeof(char *));
    p += align8(tables);

    atomic_init(&e->refs, 1);
    e->seq = 0;
    e->hub_ns = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    e->published_ms =
        spec->published_ms ? spec->published_ms : (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    e->num_topics = (uint16_t)spec->num_topics;
    e->is_private = spec->is_private ? 1 : 0;
    p += EVBUF_CHUNK_HEAD;
    e->bytes = p;
    if (spec->wire) {
        memcpy(p, spec->wire, wire); /* loaded from the store: the bytes first published */
        e->len = (uint32_t)wire;
    } else {
        e->len = (uint32_t)sse_encode(p, &f);
    }
    assert(e->len == wire);
    frame_chunk(e, p);
    p += wire + 2;
    memcpy(p, spec->id, spec->id_len);
    p[spec->id_len] = 0;
    e->id = p;
    e->id_len = (uint32_t)spec->id_len;
    p += spec->id_len + 1;
    for (size_t i = 0; i < spec->num_topics; i++) {
        memcpy(p, spec->topics[i], spec->topic_lens[i]);
        p[spec->topic_lens[i]] = 0;
        topics[i] = p;
        lens[i] = (uint32_t)spec->topic_lens[i];
        p += spec->topic_lens[i] + 1;
    }
    e->topics = topics;
    e->topic_lens = lens;
    return e;
}

void evbuf_unref(evbuf_t *e)
{
    unsigned before = atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel);
    assert(before > 0);
    if (before == 1)
        free(e);
}

int evbuf_has_topic(const evbuf_t *e, const char *topic, size_t len)
{
    for (unsigned i = 0; i < e->num_topics; i++)
        if (e->topic_lens[i] == len && memcmp(e->topics[i], topic, len) == 0)
            return 1;
    return 0;
}
