/*
 * http1_chunked_fuzz.c - libFuzzer target for http1_chunked_decode().
 *
 * The input is a request body as it comes off the wire. It is decoded three
 * ways: whole; in two pieces cut at a point derived from the input (a hash,
 * so every input exercises a different cut); and one byte at a time. All
 * three must agree on the verdict (complete / incomplete / malformed), on
 * the payload, and when complete on the bytes after the body (the returned
 * tail of the last piece fed, plus whatever was never fed). Also checked on
 * every call: the payload produced never exceeds the bytes fed, and
 * payload + tail fit in the piece. Each piece is an exact-size heap buffer,
 * so ASan flags any access outside it. abort() on any violation.
 */
#include "fuzz.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

typedef struct outcome {
    ssize_t verdict; /* >= 0 normalised to 0: the tail count depends on cuts */
    char *payload;   /* size bytes at most */
    size_t payload_len;
    char *tail; /* bytes after the body */
    size_t tail_len;
} outcome_t;

/* A finished decoder given more bytes: after completion they are all left
 * over (none is payload, none is moved); after an error it stays malformed. */
static void after_end(http1_chunked_decoder_t *d, ssize_t verdict, const uint8_t *rest, size_t n)
{
    char *b = malloc(n);
    CHECK(b != NULL);
    memcpy(b, rest, n);
    size_t m = n;
    ssize_t r = http1_chunked_decode(d, b, &m);
    CHECK(m == 0);
    if (verdict >= 0)
        CHECK(r == (ssize_t)n && memcmp(b, rest, n) == 0);
    else
        CHECK(r == HTTP1_MALFORMED);
    free(b);
}

/* Feeds data[0..size) as pieces ending at cuts[0..ncuts) then at size. */
static void feed(const uint8_t *data, size_t size, const size_t *cuts, size_t ncuts, size_t step,
                 outcome_t *o)
{
    http1_chunked_decoder_t d = {0};
    o->payload = malloc(size + 1);
    o->tail = malloc(size + 1);
    CHECK(o->payload && o->tail);
    o->payload_len = o->tail_len = 0;
    o->verdict = HTTP1_INCOMPLETE;

    size_t start = 0, ci = 0;
    while (o->verdict == HTTP1_INCOMPLETE && start < size) {
        size_t stop;
        if (step)
            stop = start + step < size ? start + step : size;
        else
            stop = ci < ncuts ? cuts[ci++] : size;
        size_t fed = stop - start, m = fed;
        char *piece = malloc(fed ? fed : 1);
        CHECK(piece != NULL);
        memcpy(piece, data + start, fed);
        ssize_t r = http1_chunked_decode(&d, piece, &m);
        CHECK(r >= 0 || r == HTTP1_INCOMPLETE || r == HTTP1_MALFORMED);
        CHECK(m <= fed);
        if (r >= 0)
            CHECK((size_t)r <= fed - m);
        memcpy(o->payload + o->payload_len, piece, m);
        o->payload_len += m;
        if (r != HTTP1_INCOMPLETE && stop < size)
            after_end(&d, r, data + stop, size - stop);
        if (r >= 0) {
            memcpy(o->tail, piece + m, (size_t)r);
            memcpy(o->tail + r, data + stop, size - stop);
            o->tail_len = (size_t)r + (size - stop);
            o->verdict = 0;
        } else {
            o->verdict = r;
        }
        free(piece);
        start = stop;
    }
}

static void require_same(const outcome_t *a, const outcome_t *b)
{
    CHECK(a->verdict == b->verdict);
    CHECK(a->payload_len == b->payload_len);
    CHECK(memcmp(a->payload, b->payload, a->payload_len) == 0);
    CHECK(a->tail_len == b->tail_len);
    CHECK(memcmp(a->tail, b->tail, a->tail_len) == 0);
}

static void release(outcome_t *o)
{
    free(o->payload);
    free(o->tail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    outcome_t whole, two, bytes;
    feed(data, size, NULL, 0, 0, &whole);
    CHECK(whole.payload_len + whole.tail_len <= size);
    if (whole.verdict == 0) {
        CHECK(whole.payload_len + whole.tail_len < size); /* framing is >= 5 bytes */
        /* The tail is the input's own last bytes, unchanged. */
        CHECK(memcmp(whole.tail, data + size - whole.tail_len, whole.tail_len) == 0);
    }

    uint32_t h = 2166136261u; /* FNV-1a over the input picks the cut */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    size_t cut = size ? h % (size + 1) : 0;
    feed(data, size, &cut, 1, 0, &two);
    require_same(&whole, &two);

    feed(data, size, NULL, 0, 1, &bytes);
    require_same(&whole, &bytes);

    release(&whole);
    release(&two);
    release(&bytes);
    return 0;
}
