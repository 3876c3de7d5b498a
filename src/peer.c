/*
 * peer.c - see peer.h.
 *
 * Reading a header: its hops are collected left to right into a ring that
 * keeps the nearest PEER_MAX_HOPS (a fixed array on the stack, so a header
 * with 10,000 elements costs time linear in its length and no memory), then
 * walked right to left:
 *
 *   values  "a, b"  "c, d"        (two header fields: one list a, b, c, d)
 *   ring    [a][b][c][d]          (oldest dropped once PEER_MAX_HOPS are held)
 *   walk    d, c, b, a            while the hop is a trusted proxy
 *
 * X-Forwarded-For has no quoting, so an element that does not parse is just
 * a hop without an address and the rest of the list is still read. A
 * Forwarded header with broken syntax is refused whole: a client-written
 * unclosed quote on the left can swallow what our proxy appended on the
 * right, so no part of such a header can be trusted.
 *
 * Text addresses go through inet_pton(3) (glibc's refuses leading zeros in
 * IPv4, "1.2.3", and anything but one address), after our own length and
 * character checks, since the input is not NUL-terminated.
 */
#include "peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* The 12-byte prefix of IPv4-mapped IPv6 addresses (RFC 4291 2.5.5.2). */
static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Longest address text we accept: INET6_ADDRSTRLEN without the NUL. */
#define ADDR_TEXT_MAX (INET6_ADDRSTRLEN - 1)
/* Longest Forwarded for= value we look at: "[" v6 "]:" port, with room. */
#define NODE_TEXT_MAX 64

/* ---- addresses ----------------------------------------------------------- */

static void set_v4(peer_addr_t *out, const uint8_t v4[4])
{
    memcpy(out->b, v4_mapped_prefix, sizeof v4_mapped_prefix);
    memcpy(out->b + 12, v4, 4);
}

/* want: AF_INET, AF_INET6, or 0 for either (told apart by a ':'). */
static int parse_addr_family(const char *s, size_t len, int want, peer_addr_t *out)
{
    char text[ADDR_TEXT_MAX + 1];
    if (len == 0 || len > ADDR_TEXT_MAX || memchr(s, '\0', len) || memchr(s, '%', len))
        return -1; /* NUL would cut the copy short; '%' starts an IPv6 zone */
    memcpy(text, s, len);
    text[len] = '\0';
    int family = memchr(s, ':', len) ? AF_INET6 : AF_INET;
    if (want && family != want)
        return -1;
    if (family == AF_INET6)
        return inet_pton(AF_INET6, text, out->b) == 1 ? 0 : -1;
    uint8_t v4[4];
    if (inet_pton(AF_INET, text, v4) != 1)
        return -1;
    set_v4(out, v4);
    return 0;
}

int peer_addr_parse(const char *s, size_t len, peer_addr_t *out) { return parse_addr_family(s, len, 0, out); }

int peer_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, peer_addr_t *out)
{
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        set_v4(out, (const uint8_t *)&in->sin_addr);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(out->b, &in6->sin6_addr, 16);
        return 0;
    }
    return -1;
}

int peer_addr_is_v4(const peer_addr_t *a)
{
    return memcmp(a->b, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0;
}

int peer_addr_is_loopback(const peer_addr_t *a)
{
    static const uint8_t v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (peer_addr_is_v4(a))
        return a->b[12] == 127;
    return memcmp(a->b, v6_loopback, 16) == 0;
}

int peer_addr_equal(const peer_addr_t *a, const peer_addr_t *b) { return memcmp(a->b, b->b, 16) == 0; }

char *peer_addr_format(const peer_addr_t *a, char *buf, size_t cap)
{
    const char *r = peer_addr_is_v4(a) ? inet_ntop(AF_INET, a->b + 12, buf, (socklen_t)cap)
                                       : inet_ntop(AF_INET6, a->b, buf, (socklen_t)cap);
    if (!r && cap)
        buf[0] = '\0'; /* cap too small: an empty string, never garbage */
    return buf;
}

/* Zeroes the bits of b[0..16) past the first `bits`. */
static void mask_bits(uint8_t b[16], unsigned bits)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = bits > i * 8 ? bits - i * 8 : 0; /* bits of byte i to keep */
        if (keep < 8)
            b[i] &= (uint8_t)(0xff00u >> keep);
    }
}

void peer_addr_key(const peer_addr_t *a, unsigned v6_prefix, uint8_t key[PEER_KEY_LEN])
{
    int v4 = peer_addr_is_v4(a);
    key[0] = v4 ? 4 : 6;
    memcpy(key + 1, a->b, 16);
    if (!v4)
        mask_bits(key + 1, v6_prefix > 128 ? 128 : v6_prefix);
}

/* ---- CIDR ranges --------------------------------------------------------- */

/* 1*3DIGIT without leading zeros ("0" itself is fine); -1 if not. */
static int parse_prefix_len(const char *s, size_t len)
{
    if (len == 0 || len > 3 || (len > 1 && s[0] == '0'))
        return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int peer_cidr_parse(const char *s, size_t len, peer_cidr_t *out)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    peer_addr_t a;
    if (peer_addr_parse(s, alen, &a))
        return -1;
    /* The text decides the family of the prefix length: "::ffff:10.0.0.0/104"
     * counts over 128 bits, "10.0.0.0/8" over 32. */
    int v4 = memchr(s, ':', alen) == NULL;
    int bits = v4 ? 32 : 128;
    if (slash) {
        bits = parse_prefix_len(slash + 1, len - alen - 1);
        if (bits < 0 || bits > (v4 ? 32 : 128))
            return -1;
    }
    if (v4)
        bits += 96;
    peer_addr_t net = a;
    mask_bits(net.b, (unsigned)bits);
    if (!peer_addr_equal(&net, &a))
        return -1; /* host bits set: see peer.h */
    out->net = net;
    out->bits = (uint8_t)bits;
    return 0;
}

int peer_cidr_contains(const peer_cidr_t *c, const peer_addr_t *a)
{
    peer_addr_t m = *a;
    mask_bits(m.b, c->bits);
    return peer_addr_equal(&m, &c->net);
}

int peer_cidr_list_contains(const peer_cidr_t *list, size_t n, const peer_addr_t *a)
{
    for (size_t i = 0; i < n; i++)
        if (peer_cidr_contains(&list[i], a))
            return 1;
    return 0;
}

/* ---- the hops of a header ------------------------------------------------ */

typedef struct hop {
    peer_addr_t addr; /* valid if has_addr */
    int has_addr;     /* 0: "unknown", obfuscated, no for=, or not an address */
} hop_t;

typedef struct hops {
    hop_t ring[PEER_MAX_HOPS]; /* hop k (0 = farthest) is ring[k % PEER_MAX_HOPS] */
    size_t n;                  /* hops seen; only the last PEER_MAX_HOPS are held */
} hops_t;

static void hops_push(hops_t *h, const peer_addr_t *addr)
{
    hop_t *slot = &h->ring[h->n % PEER_MAX_HOPS];
    slot->has_addr = addr != NULL;
    if (addr)
        slot->addr = *addr;
    h->n++;
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* tchar (RFC 9110 5.6.2). */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A port after an address: 1*5DIGIT. */
static int is_port(const char *s, size_t len)
{
    if (len == 0 || len > 5)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!is_digit(s[i]))
            return 0;
    return 1;
}

/* Forwarded's obfport (RFC 7239 6.3): "_" 1*(ALPHA / DIGIT / "." / "_" / "-"). */
static int is_obfport(const char *s, size_t len)
{
    if (len < 2 || s[0] != '_')
        return 0;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (!(is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* "[" IPv6 "]" [ ":" port ]: 0 and *out, or -1. obf: obfport allowed. */
static int parse_bracketed(const char *s, size_t len, int obf, peer_addr_t *out)
{
    const char *close = memchr(s, ']', len);
    if (len < 2 || s[0] != '[' || !close)
        return -1;
    size_t alen = (size_t)(close - s) - 1, rest = len - alen - 2;
    if (parse_addr_family(s + 1, alen, AF_INET6, out))
        return -1;
    if (rest == 0)
        return 0;
    const char *port = close + 2;
    if (close[1] != ':' || !(is_port(port, rest - 1) || (obf && is_obfport(port, rest - 1))))
        return -1;
    return 0;
}

/* IPv4 [ ":" port ]: 0 and *out, or -1. */
static int parse_v4_port(const char *s, size_t len, int obf, peer_addr_t *out)
{
    const char *colon = memchr(s, ':', len);
    size_t alen = colon ? (size_t)(colon - s) : len;
    if (parse_addr_family(s, alen, AF_INET, out))
        return -1;
    if (!colon)
        return 0;
    size_t plen = len - alen - 1;
    return is_port(colon + 1, plen) || (obf && is_obfport(colon + 1, plen)) ? 0 : -1;
}

/* One X-Forwarded-For element, OWS already trimmed: an address, maybe with
 * a port, IPv6 maybe in brackets. */
static int parse_xff_element(const char *s, size_t len, peer_addr_t *out)
{
    if (len && s[0] == '[')
        return parse_bracketed(s, len, 0, out);
    const char *colon = memchr(s, ':', len);
    if (colon && memchr(colon + 1, ':', len - (size_t)(colon - s) - 1))
        return parse_addr_family(s, len, AF_INET6, out); /* two colons or more: bare IPv6 */
    return parse_v4_port(s, len, 0, out);
}

static void collect_xff(const peer_span_t *values, size_t nvalues, hops_t *h)
{
    for (size_t v = 0; v < nvalues; v++) {
        const char *p = values[v].p, *end = p + values[v].len;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *e = comma ? comma : end, *b = p;
            while (b < e && is_ows(*b))
                b++;
            while (e > b && is_ows(e[-1]))
                e--;
            if (e > b) { /* empty elements are skipped */
                peer_addr_t a;
                hops_push(h, parse_xff_element(b, (size_t)(e - b), &a) == 0 ? &a : NULL);
            }
            p = comma ? comma + 1 : end;
        }
    }
}

/* ---- Forwarded (RFC 7239) ------------------------------------------------ */

/* A Forwarded value being parsed: a cursor, and the for= node of the
 * current element, unquoted. */
typedef struct fwd {
    const char *p, *end;      /* borrows: the unread rest of one field value */
    char node[NODE_TEXT_MAX]; /* the element's for= value, quoted-pairs undone */
    size_t node_len;          /* its length, or NODE_TEXT_MAX + 1 if it did not fit */
    int has_for;              /* the element had a for= */
} fwd_t;

static void skip_ows(fwd_t *f)
{
    while (f->p < f->end && is_ows(*f->p))
        f->p++;
}

/* 1*tchar at the cursor; returns its length (0: none). */
static size_t take_token(fwd_t *f)
{
    const char *s = f->p;
    while (f->p < f->end && is_tchar((unsigned char)*f->p))
        f->p++;
    return (size_t)(f->p - s);
}

/* Appends one byte of a value to node (or marks it too long). */
static void node_put(fwd_t *f, char c, int keep)
{
    if (!keep)
        return;
    if (f->node_len < NODE_TEXT_MAX)
        f->node[f->node_len] = c;
    if (f->node_len <= NODE_TEXT_MAX)
        f->node_len++;
}

/* quoted-string (RFC 9110 5.6.4) at the cursor, which is at the '"'. */
static int take_quoted(fwd_t *f, int keep)
{
    f->p++;
    while (f->p < f->end) {
        unsigned char c = (unsigned char)*f->p++;
        if (c == '"')
            return 0;
        if (c == '\\') {
            if (f->p == f->end)
                return -1;
            c = (unsigned char)*f->p++;
            if (!(c == '\t' || (c >= 0x20 && c != 0x7f)))
                return -1;
        } else if (!(c == '\t' || (c >= 0x20 && c != 0x7f))) {
            return -1; /* a CTL in the string */
        }
        node_put(f, (char)c, keep);
    }
    return -1; /* unterminated */
}

/* forwarded-pair = token "=" value. */
static int take_pair(fwd_t *f)
{
    const char *name = f->p;
    size_t nlen = take_token(f);
    if (nlen == 0 || f->p == f->end || *f->p != '=')
        return -1;
    f->p++;
    int is_for = nlen == 3 && (name[0] | 0x20) == 'f' && (name[1] | 0x20) == 'o' && (name[2] | 0x20) == 'r';
    if (is_for) {
        if (f->has_for)
            return -1; /* RFC 7239 4: a parameter at most once per element */
        f->has_for = 1;
        f->node_len = 0;
    }
    if (f->p < f->end && *f->p == '"')
        return take_quoted(f, is_for);
    const char *v = f->p;
    size_t vlen = take_token(f);
    if (vlen == 0)
        return -1;
    for (size_t i = 0; i < vlen; i++)
        node_put(f, v[i], is_for);
    return 0;
}

/* The address in a for= node (RFC 7239 6): IPv4 or "[" IPv6 "]", with an
 * optional port or obfport; "unknown" and obfuscated names have none. */
static int node_addr(const fwd_t *f, peer_addr_t *out)
{
    if (!f->has_for || f->node_len > NODE_TEXT_MAX || f->node_len == 0)
        return -1;
    if (f->node[0] == '[')
        return parse_bracketed(f->node, f->node_len, 1, out);
    return parse_v4_port(f->node, f->node_len, 1, out);
}

/* forwarded-element = [ pair ] *( ";" [ pair ] ), with OWS around ';'. */
static int take_element(fwd_t *f, hops_t *h)
{
    f->has_for = 0;
    f->node_len = 0;
    for (;;) {
        skip_ows(f);
        if (f->p == f->end || *f->p == ',')
            break;
        if (*f->p != ';' && take_pair(f))
            return -1;
        skip_ows(f);
        if (f->p == f->end || *f->p == ',')
            break;
        if (*f->p != ';')
            return -1; /* "for=a b", "for=a=b" */
        f->p++;
    }
    peer_addr_t a;
    hops_push(h, node_addr(f, &a) == 0 ? &a : NULL);
    return 0;
}

static int collect_forwarded(const peer_span_t *values, size_t nvalues, hops_t *h)
{
    fwd_t f;
    for (size_t v = 0; v < nvalues; v++) {
        f.p = values[v].p;
        f.end = f.p + values[v].len;
        for (;;) {
            skip_ows(&f);
            if (f.p == f.end)
                break;
            if (*f.p == ',') { /* an empty element */
                f.p++;
                continue;
            }
            if (take_element(&f, h))
                return -1;
            if (f.p < f.end)
                f.p++; /* take_element stops at the end or at a ',' */
        }
    }
    return 0;
}

/* ---- the walk ------------------------------------------------------------ */

peer_source_t peer_client_addr(const peer_addr_t *sock, const peer_cidr_t *trusted, size_t ntrusted,
                               peer_header_t which, const peer_span_t *values, size_t nvalues,
                               peer_addr_t *client)
{
    *client = *sock;
    if (!peer_cidr_list_contains(trusted, ntrusted, sock))
        return PEER_SOURCE_SOCKET; /* the header, if any, is the client's own words */
    hops_t h;
    h.n = 0;
    if (which == PEER_HEADER_FORWARDED) {
        if (collect_forwarded(values, nvalues, &h))
            return PEER_SOURCE_MALFORMED;
    } else {
        collect_xff(values, nvalues, &h);
    }
    if (h.n == 0)
        return PEER_SOURCE_SOCKET;
    size_t oldest = h.n > PEER_MAX_HOPS ? h.n - PEER_MAX_HOPS : 0;
    for (size_t k = h.n; k-- > oldest;) {
        const hop_t *hop = &h.ring[k % PEER_MAX_HOPS];
        if (!hop->has_addr)
            return PEER_SOURCE_PROXY; /* *client: the last trusted hop */
        *client = hop->addr;
        if (!peer_cidr_list_contains(trusted, ntrusted, client))
            return PEER_SOURCE_HEADER;
    }
    if (oldest > 0)
        return PEER_SOURCE_PROXY; /* more trusted hops than we kept */
    return PEER_SOURCE_HEADER;    /* all trusted: the farthest one is the client */
}
