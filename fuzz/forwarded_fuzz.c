/*
 * forwarded_fuzz.c - libFuzzer target for src/peer.c: the client address
 * from X-Forwarded-For / Forwarded behind trusted proxies, CIDR ranges and
 * address text.
 *
 * The first byte picks what the rest is: 0 an X-Forwarded-For value, 1 a
 * Forwarded value, 2 a CIDR range, 3 an address (the byte's value mod 4).
 * In a header, '\n' separates field values (a request with the header
 * several times; a real value cannot hold a LF). Properties (abort() on
 * any violation):
 *   headers
 *   - from an untrusted socket peer the header is not read: SOCKET, and
 *     the client is the peer; with no trusted proxies likewise;
 *   - the result is one of the four sources; MALFORMED only for Forwarded;
 *     SOCKET and MALFORMED give the socket peer;
 *   - the fields are one list: the same values joined by ',' into one field
 *     give the same source and client (unless a field was malformed: an
 *     unclosed quote in one may close in the next once joined);
 *   - rightmost untrusted: one more field naming an untrusted address, as a
 *     proxy we trust would append it, makes that address the client (unless
 *     the header was MALFORMED already: then it still is);
 *   - prepending anything as an earlier field does not change a client
 *     that was found as an untrusted hop (the walk never got that far);
 *   - a client from the header, formatted and parsed again, is itself.
 *   ranges and addresses
 *   - what parses formats back to text that parses to the same value;
 *   - a range contains its network, not the address with the last prefix
 *     bit flipped, and does contain it with the last host bit flipped;
 *   - keys: an IPv4 key holds the whole address, an IPv6 key cut to /64
 *     is the same for every address of that /64.
 * Every text is an exact-size heap copy, so ASan flags any over-read.
 */
#include "fuzz.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer.h"

#define MAX_VALUES 8

static peer_cidr_t trusted[4];
static size_t ntrusted;

static void setup(void)
{
    static const char *const ranges[] = {"10.0.0.0/8", "::1/128", "fd00::/8", "192.168.0.0/16"};
    if (ntrusted)
        return;
    for (size_t i = 0; i < 4; i++)
        CHECK(peer_cidr_parse(ranges[i], strlen(ranges[i]), &trusted[i]) == 0);
    ntrusted = 4;
}

static peer_addr_t must_addr(const char *s)
{
    peer_addr_t a;
    CHECK(peer_addr_parse(s, strlen(s), &a) == 0);
    return a;
}

/* Splits text at '\n' into exact-size copies. */
static size_t split_values(const char *text, size_t len, peer_span_t *out, size_t cap)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= len && n < cap; i++) {
        if (i == len || text[i] == '\n') {
            char *copy = malloc(i - start ? i - start : 1);
            CHECK(copy != NULL);
            memcpy(copy, text + start, i - start);
            out[n++] = (peer_span_t){copy, i - start};
            start = i + 1;
        }
    }
    return n;
}

static void free_values(peer_span_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((void *)v[i].p);
}

static peer_source_t run(const peer_addr_t *sock, peer_header_t which, const peer_span_t *v, size_t n,
                         peer_addr_t *client)
{
    memset(client, 0xa5, sizeof *client);
    peer_source_t r = peer_client_addr(sock, trusted, ntrusted, which, v, n, client);
    CHECK(r == PEER_SOURCE_MALFORMED || r == PEER_SOURCE_SOCKET || r == PEER_SOURCE_HEADER ||
          r == PEER_SOURCE_PROXY);
    if (r == PEER_SOURCE_MALFORMED)
        CHECK(which == PEER_HEADER_FORWARDED);
    if (r == PEER_SOURCE_MALFORMED || r == PEER_SOURCE_SOCKET)
        CHECK(peer_addr_equal(client, sock));
    return r;
}

static void check_header(const char *text, size_t len, peer_header_t which)
{
    peer_span_t v[MAX_VALUES + 2];
    size_t n = split_values(text, len, v, MAX_VALUES);
    peer_addr_t sock = must_addr("10.0.0.2"), outsider = must_addr("203.0.113.1"), client, c2;

    /* Untrusted peer, or no trusted list: the header is not read. */
    CHECK(run(&outsider, which, v, n, &client) == PEER_SOURCE_SOCKET && peer_addr_equal(&client, &outsider));
    CHECK(peer_client_addr(&sock, trusted, 0, which, v, n, &client) == PEER_SOURCE_SOCKET);
    CHECK(peer_addr_equal(&client, &sock));

    peer_source_t r = run(&sock, which, v, n, &client);
    if (r == PEER_SOURCE_HEADER) {
        char buf[PEER_ADDR_STRLEN];
        peer_addr_format(&client, buf, sizeof buf);
        CHECK(peer_addr_equal(&client, (c2 = must_addr(buf), &c2)));
    }

    /* One list: joined with ',' into one field. */
    size_t jlen = len + 1;
    char *joined = malloc(jlen);
    CHECK(joined != NULL);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            joined[j++] = ',';
        memcpy(joined + j, v[i].p, v[i].len);
        j += v[i].len;
    }
    peer_span_t one = {joined, j};
    peer_source_t rj = run(&sock, which, &one, 1, &c2);
    if (r != PEER_SOURCE_MALFORMED) /* a quote left open in one field may close in the next once joined */
        CHECK(rj == r && peer_addr_equal(&c2, &client));
    free(joined);

    /* A trusted proxy appends the untrusted address it saw. */
    static const char xff_hop[] = "203.0.113.77", fwd_hop[] = "for=203.0.113.77";
    const char *hop = which == PEER_HEADER_FORWARDED ? fwd_hop : xff_hop;
    v[n] = (peer_span_t){hop, strlen(hop)};
    peer_source_t r2 = run(&sock, which, v, n + 1, &c2);
    if (r == PEER_SOURCE_MALFORMED) {
        CHECK(r2 == PEER_SOURCE_MALFORMED);
    } else {
        peer_addr_t want = must_addr("203.0.113.77");
        CHECK(r2 == PEER_SOURCE_HEADER && peer_addr_equal(&c2, &want));
    }

    /* Anything before an untrusted client changes nothing (XFF; for
     * Forwarded, a well-formed prefix). */
    if (r == PEER_SOURCE_HEADER && !peer_cidr_list_contains(trusted, ntrusted, &client)) {
        static const char xff_junk[] = "6.6.6.6, junk, [::1]:1",
                          fwd_junk[] = "for=6.6.6.6;by=x, for=\"[::1]\"";
        const char *junk = which == PEER_HEADER_FORWARDED ? fwd_junk : xff_junk;
        memmove(v + 1, v, n * sizeof *v);
        v[0] = (peer_span_t){junk, strlen(junk)};
        CHECK(run(&sock, which, v, n + 1, &c2) == PEER_SOURCE_HEADER && peer_addr_equal(&c2, &client));
        memmove(v, v + 1, n * sizeof *v);
    }
    free_values(v, n);
}

/* Flips bit i (0 = most significant) of a. */
static peer_addr_t flip(peer_addr_t a, unsigned i)
{
    a.b[i / 8] ^= (uint8_t)(0x80 >> (i % 8));
    return a;
}

static void check_cidr(const char *text, size_t len)
{
    peer_cidr_t c;
    if (peer_cidr_parse(text, len, &c) != 0)
        return;
    CHECK(c.bits <= 128);
    int v4 = peer_addr_is_v4(&c.net) && memchr(text, ':', len) == NULL;
    if (v4)
        CHECK(c.bits >= 96);
    char buf[PEER_ADDR_STRLEN + 8], addr[PEER_ADDR_STRLEN];
    peer_addr_format(&c.net, addr, sizeof addr);
    /* Back to text in the same family as the input. */
    if (v4)
        snprintf(buf, sizeof buf, "%s/%u", addr, c.bits - 96u);
    else if (peer_addr_is_v4(&c.net))
        snprintf(buf, sizeof buf, "::ffff:%s/%u", addr, c.bits);
    else
        snprintf(buf, sizeof buf, "%s/%u", addr, c.bits);
    peer_cidr_t back;
    CHECK(peer_cidr_parse(buf, strlen(buf), &back) == 0);
    CHECK(back.bits == c.bits && peer_addr_equal(&back.net, &c.net));
    CHECK(peer_cidr_contains(&c, &c.net));
    if (c.bits > 0) {
        peer_addr_t out = flip(c.net, c.bits - 1u);
        CHECK(!peer_cidr_contains(&c, &out));
    }
    if (c.bits < 128) {
        peer_addr_t host = flip(c.net, 127);
        CHECK(peer_cidr_contains(&c, &host));
    }
}

static void check_addr(const char *text, size_t len)
{
    peer_addr_t a;
    if (peer_addr_parse(text, len, &a) != 0)
        return;
    char buf[PEER_ADDR_STRLEN];
    peer_addr_format(&a, buf, sizeof buf);
    CHECK(strlen(buf) > 0 && strlen(buf) < PEER_ADDR_STRLEN);
    CHECK((strchr(buf, ':') == NULL) == (peer_addr_is_v4(&a) != 0));
    peer_addr_t back;
    CHECK(peer_addr_parse(buf, strlen(buf), &back) == 0 && peer_addr_equal(&a, &back));
    uint8_t k1[PEER_KEY_LEN], k2[PEER_KEY_LEN];
    peer_addr_key(&a, 64, k1);
    peer_addr_t other = a;
    other.b[15] ^= 1; /* same /64, and another IPv4 address */
    peer_addr_key(&other, 64, k2);
    if (peer_addr_is_v4(&a)) {
        CHECK(k1[0] == 4 && memcmp(k1 + 1, a.b, 16) == 0 && memcmp(k1, k2, PEER_KEY_LEN) != 0);
    } else {
        CHECK(k1[0] == 6 && memcmp(k1, k2, PEER_KEY_LEN) == 0);
        for (int i = 9; i < PEER_KEY_LEN; i++)
            CHECK(k1[i] == 0);
    }
    /* The loopback predicate agrees with the obvious definition. */
    static const uint8_t one[16] = {[15] = 1};
    int lo = peer_addr_is_v4(&a) ? a.b[12] == 127 : memcmp(a.b, one, 16) == 0;
    CHECK(peer_addr_is_loopback(&a) == lo);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size == 0)
        return 0;
    size_t len = size - 1;
    char *text = malloc(len ? len : 1);
    CHECK(text != NULL);
    memcpy(text, data + 1, len);
    switch (data[0] % 4) {
    case 0:
        check_header(text, len, PEER_HEADER_X_FORWARDED_FOR);
        break;
    case 1:
        check_header(text, len, PEER_HEADER_FORWARDED);
        break;
    case 2:
        check_cidr(text, len);
        break;
    default:
        check_addr(text, len);
        break;
    }
    free(text);
    return 0;
}
