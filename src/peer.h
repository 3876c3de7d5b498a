/*
 * peer.h - who the client is: IP addresses, CIDR ranges, trusted proxies and
 * the Forwarded / X-Forwarded-For headers they add.
 *
 * Per-client limits (connections per IP, publish and subscribe rates) need
 * the client's address. Without a proxy in front that is the socket's peer.
 * Behind proxies, the socket peer is the nearest proxy, and each proxy
 * appends the address it received the request from to a header. Everything
 * in that header left of what our own proxies appended was written by the
 * client and is worth nothing: a client that could pick its own address
 * would get a fresh limit per request. So the header is read from the right
 * (the nearest hop) and only while the hop is a proxy we trust (the
 * "rightmost untrusted" rule):
 *
 *   client --> proxy A (10.0.0.7) --> proxy B (10.0.0.2) --> courant
 *                        socket peer: 10.0.0.2 (B, trusted: read the header)
 *   X-Forwarded-For: 6.6.6.6, 198.51.100.4, 10.0.0.7
 *                    ^forged   ^what A saw   ^what B saw (trusted: go on)
 *                              = the client (not trusted: stop here)
 *
 * Addresses: every address is held as 16 bytes, IPv4 as IPv4-mapped IPv6
 * (::ffff:a.b.c.d), so one comparison serves both families, and the mapped
 * peer a dual-stack socket reports is the same client as the plain IPv4
 * one. A CIDR's prefix length counts over those 128 bits (10.0.0.0/8 is
 * held as ::ffff:10.0.0.0/104).
 *
 * Which header: a proxy appends to one header (nginx, HAProxy and most load
 * balancers to X-Forwarded-For; some to RFC 7239 Forwarded) and passes the
 * other through as the client wrote it. Reading the wrong one lets the
 * client choose its address, so the operator says which one its proxies
 * write (PEER_HEADER_*); the other is ignored.
 *
 * Nothing here allocates or keeps state: pure functions, any thread. The
 * cost of reading a header is linear in its length (a head is capped by
 * --max-header-bytes), plus one trusted-list scan per hop walked.
 */
#ifndef COURANT_PEER_H
#define COURANT_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" and a NUL. */
#define PEER_ADDR_STRLEN 46
/* A rate-limit key: a family byte (4 or 6) and the 16 address bytes. */
#define PEER_KEY_LEN 17
/* Hops of a header remembered (the nearest ones); more proxies in a row than
 * this is not a real deployment. */
#define PEER_MAX_HOPS 32

typedef struct peer_addr {
    uint8_t b[16]; /* network byte order; IPv4 as ::ffff:a.b.c.d */
} peer_addr_t;

typedef struct peer_cidr {
    peer_addr_t net; /* the network, host bits zero */
    uint8_t bits;    /* prefix length over the 128-bit form (IPv4 /n is 96 + n) */
} peer_cidr_t;

/* Parses an IPv4 dotted quad ("192.0.2.1", no leading zeros) or an IPv6
 * address ("2001:db8::1", "::ffff:192.0.2.1"; no brackets, no zone "%eth0")
 * from s[0..len), which need not be NUL-terminated. Returns 0 or -1. */
int peer_addr_parse(const char *s, size_t len, peer_addr_t *out) __attribute__((warn_unused_result));

/* The address of an AF_INET or AF_INET6 socket address (accept(2)'s, or
 * getpeername(2)'s). Returns 0, or -1 for another family or a short len. */
int peer_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, peer_addr_t *out)
    __attribute__((warn_unused_result));

/* Writes the address as text into buf (cap >= PEER_ADDR_STRLEN for any
 * address): IPv4 (and IPv4-mapped) as a dotted quad, IPv6 in RFC 5952 form.
 * Returns buf. */
char *peer_addr_format(const peer_addr_t *a, char *buf, size_t cap);

int peer_addr_is_v4(const peer_addr_t *a);       /* an IPv4(-mapped) address */
int peer_addr_is_loopback(const peer_addr_t *a); /* 127.0.0.0/8 (mapped too) or ::1 */
int peer_addr_equal(const peer_addr_t *a, const peer_addr_t *b);

/* The key under which a client is counted (ratelimit.h): family, then the
 * address with an IPv6 one cut to its first v6_prefix bits (0-128; IPv4
 * addresses are always kept whole). Whoever holds one IPv6 address usually
 * holds its whole /64, so counting full IPv6 addresses would hand out 2^64
 * limits per client: the caller should pass 64. */
void peer_addr_key(const peer_addr_t *a, unsigned v6_prefix, uint8_t key[PEER_KEY_LEN]);

/* Parses "10.0.0.0/8", "2001:db8::/32", "::1/128", or a plain address (a
 * host: /32 or /128) from s[0..len) (for --trusted-proxy). The prefix
 * length is decimal without sign or leading zeros, at most 32 for IPv4 and
 * 128 for IPv6. A network with host bits set ("10.0.0.1/8") is refused,
 * not silently widened: it is most likely a typo for a narrower range, and
 * trusting too much is the dangerous direction. Returns 0 or -1. */
int peer_cidr_parse(const char *s, size_t len, peer_cidr_t *out) __attribute__((warn_unused_result));

/* Is a inside c? An IPv4 range contains the IPv4-mapped form of its
 * addresses (which is the only form peer_addr_t has). */
int peer_cidr_contains(const peer_cidr_t *c, const peer_addr_t *a);

/* Is a inside any of list[0..n)? Linear in n (the operator's list). */
int peer_cidr_list_contains(const peer_cidr_t *list, size_t n, const peer_addr_t *a);

/* Which header the trusted proxies append to. */
typedef enum peer_header {
    PEER_HEADER_X_FORWARDED_FOR, /* X-Forwarded-For: 203.0.113.7, 10.0.0.1 */
    PEER_HEADER_FORWARDED,       /* Forwarded: for=203.0.113.7;proto=https, for="[2001:db8::1]:80" */
} peer_header_t;

/* One field value of that header, as the request had it (a request may
 * carry the header several times; their values form one list in order). */
typedef struct peer_span {
    const char *p; /* borrows; need not be NUL-terminated */
    size_t len;
} peer_span_t;

/* Where peer_client_addr() found the client. */
typedef enum peer_source {
    PEER_SOURCE_MALFORMED = -1, /* Forwarded whose syntax is broken (an unclosed quote, a pair
                                   without '=', a parameter twice in an element...): nothing in
                                   it can be relied on; the client is the socket peer */
    PEER_SOURCE_SOCKET = 0,     /* the socket peer is not a trusted proxy, or it sent no header */
    PEER_SOURCE_HEADER = 1,     /* the nearest hop that is not a trusted proxy, or else the
                                   farthest hop of the header (every hop trusted) */
    PEER_SOURCE_PROXY = 2,      /* the walk reached a hop with no usable address ("unknown", an
                                   obfuscated "_id", a missing for=, garbage, or past
                                   PEER_MAX_HOPS trusted hops): the client is the last trusted
                                   proxy, which is accountable for it */
} peer_source_t;

/* The client's address for a request that came from `sock` (the socket
 * peer), given the trusted proxies trusted[0..ntrusted) and the values of
 * the header `which` (values[0..nvalues), in the order of the request).
 * If sock is not trusted, or ntrusted is 0, the client is sock and the
 * header is not even read. Otherwise the header's hops are walked from the
 * nearest (the last element of the last value) while they are trusted;
 * see peer_source_t for where the walk can end. Empty list elements
 * ("a, , b") are skipped, as RFC 9110 5.6.1 asks.
 *
 * X-Forwarded-For elements may be an IPv4 address, an IPv6 address, either
 * with a port ("192.0.2.1:443", "[2001:db8::1]:443") or "[2001:db8::1]";
 * anything else is a hop without an address. Forwarded is parsed as RFC
 * 7239 says (token or quoted-string values, quoted-pairs, parameter names
 * in any case, OWS tolerated around ',' and ';'); only for= is used.
 *
 * Writes the client to *client (always, also when MALFORMED) and returns
 * where it came from. Linear in the header's length; reads only
 * values[i].p[0..len). */
peer_source_t peer_client_addr(const peer_addr_t *sock, const peer_cidr_t *trusted, size_t ntrusted,
                               peer_header_t which, const peer_span_t *values, size_t nvalues,
                               peer_addr_t *client);

#endif
