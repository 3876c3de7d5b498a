/*
 * publish_fuzz.c - libFuzzer target for the Mercure publish form
 * (publish_parse_form: form decoding, validation, event encoding). It checks
 * properties and abort()s when one fails:
 *
 *  1. Refusal is total: no event comes back with a status, and every
 *     refusal names a 4xx/5xx status and a reason.
 *  2. An accepted event is safe on the wire: its id holds no CR, LF or NUL
 *     (no field injection), it has 1..64 topics, none empty, none holding
 *     "/.well-known/mercure".
 *  3. The wire bytes parse back, with the project's WHATWG parser, into
 *     exactly one event whose last event id is the event's id: so no data
 *     line can smuggle a second event or an id.
 */
#include "fuzz.h"
#include "evbuf.h"
#include "publish.h"
#include "sse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *reason = NULL;
    int status = 0;
    evbuf_t *ev = publish_parse_form((const char *)data, size, &status, &reason);
    if (!ev) {
        CHECK(reason && status >= 400 && status < 600);
        return 0;
    }
    CHECK(ev->id_len > 0);
    for (uint32_t i = 0; i < ev->id_len; i++)
        CHECK(ev->id[i] != '\r' && ev->id[i] != '\n' && ev->id[i] != 0);
    CHECK(ev->num_topics >= 1 && ev->num_topics <= EVBUF_MAX_TOPICS);
    for (unsigned i = 0; i < ev->num_topics; i++) {
        CHECK(ev->topic_lens[i] > 0);
        CHECK(!memmem(ev->topics[i], ev->topic_lens[i], "/.well-known/mercure", 20));
    }
    fuzz_check_event_wire(ev);
    evbuf_unref(ev);
    return 0;
}
