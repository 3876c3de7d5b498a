/*
 * backplane_fuzz.c - libFuzzer target for what src/backplane.c parses: the
 * stream entries read back from Redis (XREAD / XREVRANGE replies) and the
 * --redis URL. It checks properties, and abort()s when one fails:
 *
 *  1. An accepted entry is exactly one SSE event with the entry's id: its
 *     wire bytes, fed to the WHATWG parser (sse.c) whole and byte by byte,
 *     dispatch exactly one event whose last id is the entry's id; the
 *     event's id, topics and private flag are the entry's fields.
 *  2. The stream id copied out is NUL-terminated, fits its buffer and is
 *     the entry's first element whenever that is a string that fits.
 *  3. A URL that parses has a host and a port in 1..65535.
 *
 * Input, first byte:
 *   even: RESP bytes, fed to hiredis' reply reader; every reply is walked as
 *         an XREAD reply, as a list of entries, and as one entry;
 *   odd:  fields separated by 0xff: stream id, then name/value pairs, made
 *         into an entry directly (reaches the field checks faster);
 *   and the whole input (after the byte) is also tried as a URL.
 */
#include "fuzz.h"
#include "backplane.h"
#include "sse.h"

#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const redisReply *field(const redisReply *kv, const char *name)
{
    for (size_t i = 0; i + 1 < kv->elements; i += 2)
        if (kv->element[i]->type == REDIS_REPLY_STRING && kv->element[i]->len == strlen(name) &&
            memcmp(kv->element[i]->str, name, kv->element[i]->len) == 0)
            return kv->element[i + 1];
    return NULL;
}

static void try_entry(const redisReply *e)
{
    evbuf_t *ev = NULL;
    char sid[64];
    const char *why = NULL;
    int rc = backplane__parse_entry(e, &ev, sid, sizeof(sid), &why);
    CHECK(memchr(sid, 0, sizeof(sid)) != NULL); /* property 2 */
    if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 && e->element[0]->type == REDIS_REPLY_STRING &&
        sid[0])
        CHECK(strlen(sid) == e->element[0]->len && memcmp(sid, e->element[0]->str, e->element[0]->len) == 0);
    if (rc) {
        CHECK(ev == NULL && why != NULL);
        return;
    }
    CHECK(ev != NULL);
    const redisReply *kv = e->element[1];
    const redisReply *id = field(kv, "id"), *topics = field(kv, "topics"), *priv = field(kv, "private");
    CHECK(id && topics && priv);
    CHECK(ev->id_len == id->len && memcmp(ev->id, id->str, id->len) == 0);
    CHECK(ev->is_private == (priv->str[0] == '1'));
    size_t k = 0; /* topics joined by '\n' give back the field */
    for (unsigned i = 0; i < ev->num_topics; i++) {
        if (i)
            CHECK(k < topics->len && topics->str[k++] == '\n');
        CHECK(k + ev->topic_lens[i] <= topics->len &&
              memcmp(topics->str + k, ev->topics[i], ev->topic_lens[i]) == 0);
        k += ev->topic_lens[i];
    }
    CHECK(k == topics->len);
    fuzz_check_event_wire(ev);
    evbuf_unref(ev);
}

/* Walks a reply every way the reader might meet it. */
static void walk(const redisReply *r)
{
    try_entry(r);
    if (r->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < r->elements; i++)
        try_entry(r->element[i]); /* XREVRANGE: a list of entries */
    if (r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
        r->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
        const redisReply *entries = r->element[0]->element[1]; /* XREAD: [[key, entries]] */
        for (size_t i = 0; i < entries->elements; i++)
            try_entry(entries->element[i]);
    }
}

/* hiredis 0.14 allocates an array's element table from the count it reads
 * ("*1000000000" is 8 GB), before any element arrives; later versions cap
 * it (maxelements). That is the library's, and Redis is a server we run, so
 * counts of 7 digits or more are skipped rather than reported as OOM. */
static int huge_count(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (d[i] != '*' && d[i] != '$')
            continue;
        size_t k = i + 1 + (i + 1 < n && d[i + 1] == '-');
        size_t digits = 0;
        while (k + digits < n && d[k + digits] >= '0' && d[k + digits] <= '9')
            digits++;
        if (digits >= 7)
            return 1;
    }
    return 0;
}

static void resp_mode(const uint8_t *data, size_t size)
{
    if (huge_count(data, size))
        return;
    redisReader *rd = redisReaderCreate();
    CHECK(rd);
    if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK) {
        for (int n = 0; n < 16; n++) {
            void *reply = NULL;
            if (redisReaderGetReply(rd, &reply) != REDIS_OK || !reply)
                break;
            walk(reply);
            freeReplyObject(reply);
        }
    }
    redisReaderFree(rd);
}

#define MAX_PARTS 16

static void fields_mode(const uint8_t *data, size_t size)
{
    redisReply parts[MAX_PARTS], *ptrs[MAX_PARTS];
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= size && n < MAX_PARTS; i++) {
        if (i == size || data[i] == 0xff) {
            parts[n] =
                (redisReply){.type = REDIS_REPLY_STRING, .str = (char *)data + start, .len = i - start};
            ptrs[n] = &parts[n];
            n++;
            start = i + 1;
        }
    }
    if (n < 1)
        return;
    redisReply kv = {.type = REDIS_REPLY_ARRAY, .elements = n - 1, .element = ptrs + 1};
    redisReply *pair[2] = {&parts[0], &kv};
    redisReply entry = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = pair};
    try_entry(&entry);
}

static void url_mode(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    CHECK(s);
    memcpy(s, data, size);
    s[size] = 0;
    backplane_url_t u;
    const char *why = NULL;
    if (backplane__parse_url(s, &u, &why) == 0) { /* property 3 */
        CHECK(u.host[0] != 0);
        CHECK(u.port >= 1 && u.port <= 65535);
        CHECK(memchr(u.host, 0, sizeof(u.host)) && memchr(u.pass, 0, sizeof(u.pass)));
    } else {
        CHECK(why != NULL);
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        fields_mode(data + 1, size - 1);
    else
        resp_mode(data + 1, size - 1);
    url_mode(data + 1, size - 1);
    return 0;
}
