/*
 * publish_fuzz.c - libFuzzer target for the Mercure publish form
 * (publish_parse_form: form decoding, validation, event encoding). It checks
 * properties and abort()s when one fails:
 *
 *  1. Refusal is total: no event comes back with a status, and every
 *     refusal names a 4xx/5xx status and a reason.
 *  2. An accepted event is safe on the wire: its id holds no CR, LF or NUL
 *     (no field injection), it has 1..64 topics, none empty, none in the
 *     hub's reserved namespace once resolved (publish_topic_is_reserved),
 *     and its type is not "mercure" (both dialects: one hub serves both).
 *  3. Draft-07 (first input byte even): no topic contains
 *     "/.well-known/mercure". Mercure 1.0 (odd): every topic, the id and
 *     the type are UTF-8 without control or format characters, no topic is
 *     "*", the id neither starts with "#" nor is "earliest".
 *  4. The wire bytes parse back, with the project's WHATWG parser, into
 *     exactly one event whose last event id is the event's id: so no data
 *     line can smuggle a second event or an id.
 */
#include "fuzz.h"
#include "evbuf.h"
#include "grant.h"
#include "publish.h"
#include "sse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *reason = NULL;
    int status = 0;
    int v1 = size > 0 && (data[0] & 1);
    publish_rules_t rules = {.v1 = v1, .hub_url = "https://hub.example/.well-known/mercure"};
    if (size > 0)
        data++, size--;
    evbuf_t *ev = publish_parse_form((const char *)data, size, &rules, &status, &reason);
    if (!ev) {
        CHECK(reason && status >= 400 && status < 600);
        return 0;
    }
    CHECK(ev->id_len > 0);
    for (uint32_t i = 0; i < ev->id_len; i++)
        CHECK(ev->id[i] != '\r' && ev->id[i] != '\n' && ev->id[i] != 0);
    CHECK(ev->num_topics >= 1 && ev->num_topics <= EVBUF_MAX_TOPICS);
    for (unsigned i = 0; i < ev->num_topics; i++) {
        const char *t = ev->topics[i];
        size_t tl = ev->topic_lens[i];
        CHECK(tl > 0);
        CHECK(!publish_topic_is_reserved(t, tl, rules.hub_url));
        if (v1)
            CHECK(grant_string_ok(t, tl) && !(tl == 1 && t[0] == '*'));
        else
            CHECK(!memmem(t, tl, "/.well-known/mercure", 20));
    }
    /* Only the event field starts a line with "event:" (data lines start
     * with "data: "), so this finds type=mercure and nothing else. */
    CHECK(!(ev->len >= 15 && !memcmp(ev->bytes, "event: mercure\n", 15)) &&
          !memmem(ev->bytes, ev->len, "\nevent: mercure\n", 16));
    if (v1) {
        CHECK(grant_string_ok(ev->id, ev->id_len) && ev->id[0] != '#');
        CHECK(!(ev->id_len == 8 && !memcmp(ev->id, "earliest", 8)));
    }
    fuzz_check_event_wire(ev);
    evbuf_unref(ev);
    return 0;
}
