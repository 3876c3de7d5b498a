/*
 * wire.c - see wire.h: the checks every journal applies to what it reads
 * back, and the topic join both write with.
 */
#include "wire.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static int has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    return 0;
}

static int line_is(const char *l, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && memcmp(l, prefix, k) == 0;
}

int wire_check(const char *w, size_t n, const char *id, size_t id_len)
{
    /* "id: ID\n" first: it is what resume and the id index go by. */
    if (n < 4 + id_len + 2 || memcmp(w, "id: ", 4) || memcmp(w + 4, id, id_len) || w[4 + id_len] != '\n')
        return -1;
    if (memchr(w, '\r', n) || w[n - 1] != '\n' || w[n - 2] != '\n')
        return -1;
    /* Then whole lines of the other fields up to the one blank line at the
     * end: a blank line before it would be a second event, another id:
     * line would change the id a client resumes from. */
    size_t i = 4 + id_len + 1;
    int data = 0; /* without a data line a client dispatches nothing (courant always writes one) */
    while (i < n - 1) {
        const char *nl = memchr(w + i, '\n', n - i);
        size_t len = (size_t)(nl - (w + i));
        if (len == 0)
            return -1;
        int is_data = line_is(w + i, len, "data: ");
        data |= is_data;
        if (!is_data && !line_is(w + i, len, "event: ") && !line_is(w + i, len, "retry: "))
            return -1;
        /* NUL only inside data, where the encoder keeps it (a publish may
         * carry %00) and a client reads it as a character; the encoder
         * strips it from the other fields, where it would make a parser
         * ignore the field. */
        if (!is_data && memchr(w + i, '\0', len))
            return -1;
        i += len + 1;
    }
    return i == n - 1 && data ? 0 : -1;
}

int wire_join_topics(const evbuf_t *ev, char **buf, size_t *cap, size_t *len)
{
    const unsigned nt = ev->num_topics; /* read once: the analyzer cannot know it is constant */
    size_t need = 1;
    for (unsigned i = 0; i < nt; i++)
        need += (size_t)ev->topic_lens[i] + 1; /* at most 64 x 4 GiB: no overflow */
    assert(need >= 1);
    if (need > *cap || !*buf) {
        char *n = realloc(*buf, need);
        if (!n)
            return -1;
        *buf = n;
        *cap = need;
    }
    size_t k = 0;
    for (unsigned i = 0; i < nt; i++) {
        if (i)
            (*buf)[k++] = '\n';
        memcpy(*buf + k, ev->topics[i], ev->topic_lens[i]);
        k += ev->topic_lens[i];
    }
    *len = k;
    return 0;
}

int wire_split_topics(const char *t, size_t n, const char **topics, size_t *lens, size_t *count)
{
    *count = 0;
    if (n == 0)
        return -1; /* no topic at all (and t may be NULL: memchr must not see it) */
    for (size_t i = 0;;) {
        const char *nl = memchr(t + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (t + i)) : n - i;
        if (*count == EVBUF_MAX_TOPICS || len == 0 || has_control(t + i, len))
            return -1;
        topics[*count] = t + i;
        lens[(*count)++] = len;
        if (!nl)
            return 0;
        i += len + 1;
    }
}

int wire_try_decode(const wire_record_t *r, evbuf_t **out, const char **why)
{
    *out = NULL;
    if (r->id_len == 0 || r->id_len > WIRE_MAX_ID || has_control(r->id, r->id_len)) {
        *why = "bad id";
        return WIRE_BAD;
    }
    if (r->is_private != 0 && r->is_private != 1) {
        *why = "bad private flag";
        return WIRE_BAD;
    }
    if (r->published_ms < 0) {
        *why = "bad ms";
        return WIRE_BAD;
    }
    if (r->wire_len > WIRE_MAX_BYTES || wire_check(r->wire, r->wire_len, r->id, r->id_len)) {
        *why = "the wire bytes are not one SSE event with that id";
        return WIRE_BAD;
    }
    const char *topics[EVBUF_MAX_TOPICS];
    size_t lens[EVBUF_MAX_TOPICS], n;
    if (wire_split_topics(r->topics, r->topics_len, topics, lens, &n)) {
        *why = "bad topics";
        return WIRE_BAD;
    }
    evbuf_spec_t spec = {
        .id = r->id,
        .id_len = r->id_len,
        .wire = r->wire,
        .wire_len = r->wire_len,
        .published_ms = r->published_ms, /* the publisher's clock: --history-age ages it alike everywhere */
        .topics = topics,
        .topic_lens = lens,
        .num_topics = n,
        .is_private = r->is_private,
        .retry = -1,
    };
    if (!(*out = evbuf_try_new(&spec))) {
        *why = "out of memory";
        return WIRE_NOMEM;
    }
    return WIRE_OK;
}
