/*
 * evbuf.h - one published event, serialized once, shared by everyone.
 *
 * An evbuf is a single heap allocation:
 *
 *   +-----------------+----------------------+------------------+----------+
 *   | struct evbuf    | hex\r\n encoded SSE bytes \r\n | id\0             | topic\0  |
 *   | refs, seq, ...  |      "id: ..\ndata: ..\n\n"    | (NUL-terminated) | topic\0..|
 *   +-----------------+-------------------------------+------------------+----------+
 *                      ^chunked ^bytes: the chunk framing (HTTP/1.1 streams) sits
 *                                around the same bytes, so both are zero-copy
 *
 * It is immutable once evbuf_try_new() returns, except for `seq` and
 * `hub_ns`, which the hub sets exactly once, under its lock, before anyone
 * else can see it.
 *
 * Reference counting across threads (the choice STYLE.md asks to write
 * down): `refs` is atomic, but it is touched only at thread boundaries,
 * never per subscriber. Holders of an atomic reference are: the publisher
 * until it hands the event over, the hub's history ring, and each worker's
 * inbox entry. Inside a worker, every subscriber queue that holds the event
 * points at a per-worker `wref` (see worker.h) with a plain integer count;
 * when that count falls to zero the worker drops its one atomic reference.
 * So a delivery to 10,000 subscribers costs two atomic operations per
 * worker, not 20,000.
 *
 * Threads: any thread may ref/unref; fields are read-only after publish.
 */
#ifndef COURANT_EVBUF_H
#define COURANT_EVBUF_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define EVBUF_MAX_TOPICS 64

typedef struct evbuf {
    atomic_uint refs;     /* holders across threads; the last unref frees */
    uint32_t len;         /* bytes of encoded SSE at `bytes` */
    uint64_t seq;         /* hub order, 1-based; 0 until published */
    int64_t published_ms; /* CLOCK_REALTIME at publish, for history age */
    int64_t hub_ns;       /* CLOCK_MONOTONIC when the hub ordered it (set with seq): the fan-out lag */
    uint16_t num_topics;  /* >= 1; topics[0] is the canonical topic */
    uint8_t is_private;   /* Mercure "private" update */
    const char *id;       /* points into the allocation; NUL-terminated */
    uint32_t id_len;
    const char **topics; /* points into the allocation: num_topics strings */
    const uint32_t *topic_lens;
    const char *bytes;    /* points into the allocation: the wire bytes */
    const char *chunked;  /* the same bytes framed as one HTTP/1.1 chunk: "<hex len>\r\n" bytes
                            "\r\n", contiguous around them, so chunked streams stay zero-copy */
    uint32_t chunked_len; /* bytes at `chunked` */
} evbuf_t;

/* What to build an event from. All pointers are borrowed for the call. */
typedef struct evbuf_spec {
    const char *id; /* required: the event id (already validated) */
    size_t id_len;
    const char *type; /* SSE event name, or NULL */
    size_t type_len;
    const char *data; /* payload, or NULL for none */
    size_t data_len;
    int64_t retry;             /* ms, or -1 */
    const char *const *topics; /* num_topics strings (not NUL-terminated) */
    const size_t *topic_lens;
    size_t num_topics;
    int is_private;
    const char *wire; /* already-encoded SSE bytes (an event loaded from the
                               store), used as they are; NULL: encode the fields */
    size_t wire_len;
    int64_t published_ms; /* CLOCK_REALTIME ms; 0 = now */
} evbuf_spec_t;

/* Builds the event with one allocation and refs = 1 (owned by the caller).
 * Returns NULL if memory runs out or the spec is out of bounds. */
evbuf_t *evbuf_try_new(const evbuf_spec_t *spec) __attribute__((warn_unused_result));

static inline void evbuf_ref(evbuf_t *e) { atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed); }

/* Drops one reference; frees the event when it was the last. */
void evbuf_unref(evbuf_t *e);

/* Does any of the event's topics equal `topic`? */
int evbuf_has_topic(const evbuf_t *e, const char *topic, size_t len);

#endif
