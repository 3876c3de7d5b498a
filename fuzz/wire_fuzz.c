/*
 * wire_fuzz.c - libFuzzer target for src/wire.c, the check both journals
 * apply to a record they read back (a store row, a Redis stream entry).
 * It checks properties, and abort()s when one fails:
 *
 *  1. An accepted record is exactly one SSE event with the record's id: its
 *     wire bytes, fed to the WHATWG parser (sse.c) whole and byte by byte,
 *     dispatch exactly one event whose last id is the record's id; the
 *     event's id, private flag and published_ms are the record's, and its
 *     topics joined with '\n' give back the record's topics byte for byte.
 *  2. Split topics point inside the input, are non-empty, hold no control
 *     character, and joined with '\n' are the input.
 *  3. What a journal writes, it reads back: an event built from the input
 *     the way publish builds one (an id and topics without control
 *     characters, any data) decodes from its own record to the same bytes.
 *
 * Input: byte 0 = flags (bit 0 private, bits 1-2 choose published_ms:
 * 1764000000123, 0, -1, or 2^53), then fields separated by 0xff: id,
 * topics, wire (for 1 and 2), and the same id and topics with the wire
 * field taken as data for 3.
 */
#include "fuzz.h"
#include "wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    return 0;
}

static void check_topics(const char *t, size_t n)
{
    const char *topics[EVBUF_MAX_TOPICS];
    size_t lens[EVBUF_MAX_TOPICS], count = 0;
    if (wire_split_topics(t, n, topics, lens, &count))
        return;
    size_t k = 0; /* property 2 */
    CHECK(count >= 1 && count <= EVBUF_MAX_TOPICS);
    for (size_t i = 0; i < count; i++) {
        if (i) {
            CHECK(t[k] == '\n');
            k++;
        }
        CHECK(topics[i] == t + k && lens[i] > 0 && !has_control(topics[i], lens[i]));
        k += lens[i];
    }
    CHECK(k == n);
}

/* Property 1 for an event decoded from `r`. */
static void check_decoded(const wire_record_t *r, const evbuf_t *ev)
{
    CHECK(ev->id_len == r->id_len && memcmp(ev->id, r->id, r->id_len) == 0);
    CHECK(ev->is_private == r->is_private);
    if (r->published_ms)
        CHECK(ev->published_ms == r->published_ms);
    CHECK(ev->len == r->wire_len && memcmp(ev->bytes, r->wire, r->wire_len) == 0);
    char *joined = NULL;
    size_t cap = 0, len = 0;
    CHECK(wire_join_topics(ev, &joined, &cap, &len) == 0);
    CHECK(len == r->topics_len && memcmp(joined, r->topics, len) == 0);
    free(joined);
    fuzz_check_event_wire(ev);
}

/* Property 3: publish's kind of event, written and read back. */
static void round_trip(const char *id, size_t id_len, const char *t, size_t tn, const char *data, size_t dn,
                       int is_private)
{
    const char *topics[EVBUF_MAX_TOPICS];
    size_t lens[EVBUF_MAX_TOPICS], count = 0;
    if (id_len == 0 || id_len > WIRE_MAX_ID || has_control(id, id_len) ||
        wire_split_topics(t, tn, topics, lens, &count))
        return;
    evbuf_spec_t spec = {.id = id,
                         .id_len = id_len,
                         .type = is_private ? "t" : NULL,
                         .type_len = is_private ? 1 : 0,
                         .data = data,
                         .data_len = dn,
                         .retry = is_private ? 1500 : -1,
                         .topics = topics,
                         .topic_lens = lens,
                         .num_topics = count,
                         .is_private = is_private,
                         .published_ms = 1764000000123};
    evbuf_t *ev = evbuf_try_new(&spec);
    CHECK(ev);
    char *joined = NULL;
    size_t cap = 0, jlen = 0;
    CHECK(wire_join_topics(ev, &joined, &cap, &jlen) == 0);
    wire_record_t r = {.id = ev->id,
                       .id_len = ev->id_len,
                       .topics = joined,
                       .topics_len = jlen,
                       .is_private = ev->is_private,
                       .published_ms = ev->published_ms,
                       .wire = ev->bytes,
                       .wire_len = ev->len};
    evbuf_t *back = NULL;
    const char *why = NULL;
    CHECK(wire_try_decode(&r, &back, &why) == WIRE_OK);
    check_decoded(&r, back);
    evbuf_unref(back);
    free(joined);
    evbuf_unref(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t ms[] = {1764000000123, 0, -1, (int64_t)1 << 53};
    if (size < 1)
        return 0;
    const char *parts[3];
    size_t lens[3], start = 1;
    for (int n = 0; n < 2; n++) { /* id, topics: up to a 0xff each */
        const uint8_t *sep = memchr(data + start, 0xff, size - start);
        size_t end = sep ? (size_t)(sep - data) : size;
        parts[n] = (const char *)data + start;
        lens[n] = end - start;
        start = end < size ? end + 1 : size;
    }
    parts[2] = (const char *)data + start; /* wire: the rest, 0xff included */
    lens[2] = size - start;
    wire_record_t r = {.id = parts[0],
                       .id_len = lens[0],
                       .topics = parts[1],
                       .topics_len = lens[1],
                       .is_private = data[0] & 1,
                       .published_ms = ms[(data[0] >> 1) & 3],
                       .wire = parts[2],
                       .wire_len = lens[2]};
    evbuf_t *ev = NULL;
    const char *why = NULL;
    int rc = wire_try_decode(&r, &ev, &why);
    if (rc == WIRE_OK) {
        CHECK(ev && r.published_ms >= 0);
        check_decoded(&r, ev); /* property 1 */
        evbuf_unref(ev);
    } else {
        CHECK(!ev && why && rc == WIRE_BAD);
    }
    check_topics(parts[1], lens[1]);
    round_trip(parts[0], lens[0], parts[1], lens[1], parts[2], lens[2], data[0] & 1);
    return 0;
}
