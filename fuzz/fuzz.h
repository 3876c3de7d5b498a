/*
 * fuzz.h - what every libFuzzer target here shares: the entry point's
 * prototype and CHECK, which abort()s on a violated property so that a
 * finding is a real bug, not just a crash the sanitizers happened to see.
 */
#ifndef COURANT_FUZZ_H
#define COURANT_FUZZ_H

#include "config.h"
#include "evbuf.h"
#include "sse.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)  \
    do {             \
        if (!(cond)) \
            abort(); \
    } while (0)

/* ---- an encoded event must parse back as itself ------------------------- */

typedef struct fuzz_seen {
    int events;
    char id[2048];
    size_t id_len;
} fuzz_seen_t;

static inline void fuzz_on_event(void *ctx, const sse_event_t *ev)
{
    fuzz_seen_t *s = ctx;
    s->events++;
    CHECK(ev->last_id_len < sizeof(s->id));
    memcpy(s->id, ev->last_id, ev->last_id_len);
    s->id_len = ev->last_id_len;
}

/* The wire bytes of `ev` parse, with the project's WHATWG parser, into
 * exactly one event whose last event id is ev's id, fed whole and byte by
 * byte: so no data line can smuggle a second event or another id. */
static inline void fuzz_check_event_wire(const evbuf_t *ev)
{
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        fuzz_seen_t s = {0};
        sse_parser_callbacks_t cb = {.on_event = fuzz_on_event};
        sse_parser_t p;
        sse_parser_init(&p, &cb, &s, 0);
        if (bytewise) {
            for (uint32_t i = 0; i < ev->len; i++)
                CHECK(sse_parser_feed(&p, ev->bytes + i, 1) == 0);
        } else {
            CHECK(sse_parser_feed(&p, ev->bytes, ev->len) == 0);
        }
        sse_parser_dispose(&p);
        CHECK(s.events == 1);
        CHECK(s.id_len == ev->id_len && memcmp(s.id, ev->id, ev->id_len) == 0);
    }
}

/* ---- a configuration that parsed is within its documented bounds -------- */

/* What config_parse and config__parse_text promise of a config they
 * accepted, whatever the input: listen addresses that split into a host
 * and a port, and the floors and ceilings of the numeric options. */
static inline void fuzz_check_config(const config_t *c)
{
    CHECK(c->num_listen >= 1 && c->num_listen <= CONFIG_MAX_LISTEN);
    for (int i = 0; i < c->num_listen; i++) {
        char host[256];
        int port;
        CHECK(config_split_hostport(c->listen[i], host, sizeof(host), &port) == 0);
        CHECK(port >= 0 && port <= 65535);
    }
    CHECK(c->workers >= 1 && c->workers <= 256);
    CHECK(c->num_cors_origins >= 1);
    CHECK(c->max_header_bytes >= 256 && c->max_event_bytes >= 64 && c->max_pending_bytes >= 1024);
}

#endif
