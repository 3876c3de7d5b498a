/*
 * peer_test.c - addresses, CIDR ranges, and the client address behind
 * trusted proxies from X-Forwarded-For and Forwarded (RFC 7239, with its
 * section 4 and 7 examples).
 *
 * Every text goes through an exact-size heap copy (no NUL after it), so
 * AddressSanitizer reports any read past the given length.
 */
#include "../../src/peer.c"

#include <sys/un.h>

#include "test.h"

static void *allocs[256];
static size_t nallocs;

static const char *exact(const char *s, size_t n)
{
    char *b = malloc(n ? n : 1);
    if (!b || nallocs == sizeof allocs / sizeof allocs[0])
        abort();
    memcpy(b, s, n);
    allocs[nallocs++] = b;
    return b;
}

static void release(void)
{
    while (nallocs)
        free(allocs[--nallocs]);
}

static int parse(const char *s, peer_addr_t *a) { return peer_addr_parse(exact(s, strlen(s)), strlen(s), a); }

static peer_addr_t addr(const char *s)
{
    peer_addr_t a;
    memset(&a, 0xee, sizeof a);
    if (parse(s, &a))
        TEST_FAIL_AT("does not parse: %s", s);
    return a;
}

static const char *fmt(const peer_addr_t *a)
{
    static char buf[4][PEER_ADDR_STRLEN];
    static int i;
    return peer_addr_format(a, buf[i++ & 3], PEER_ADDR_STRLEN);
}

/* ---- addresses ----------------------------------------------------------- */

static void test_addr_parse_format(void)
{
    static const char *const same[] = {"192.0.2.1", "0.0.0.0", "255.255.255.255", "2001:db8::1",
                                       "::1",       "::",      "fe80::1:2:3:4",   "2001:db8:0:1:1:1:1:1"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        peer_addr_t a = addr(same[i]);
        ASSERT_STR_EQ(fmt(&a), same[i]);
    }
    peer_addr_t a = addr("2001:DB8:0:0:0:0:0:1");
    ASSERT_STR_EQ(fmt(&a), "2001:db8::1");
    a = addr("::ffff:192.0.2.1"); /* mapped: the same client as the plain IPv4 */
    peer_addr_t b = addr("192.0.2.1");
    ASSERT(peer_addr_equal(&a, &b));
    ASSERT(peer_addr_is_v4(&a));
    ASSERT_STR_EQ(fmt(&a), "192.0.2.1");
    ASSERT(!peer_addr_is_v4((b = addr("::1"), &b)));

    static const char *const bad[] = {
        "",          "1.2.3",        "1.2.3.4.5",  "256.1.1.1", "01.2.3.4",
        "1.2.3.4 ",  " 1.2.3.4",     "1.2.3.4:80", "[::1]",     "fe80::1%eth0",
        "::1::",     "12345::",      "1.2.3.-4",   "localhost", "2001:db8::g",
        "1.2.3.4/8", "::ffff:1.2.3", "0x7f.0.0.1", ":::",       "1:2:3:4:5:6:7:8:9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i], &a) == 0)
            TEST_FAIL_AT("accepted: \"%s\"", bad[i]);
    }
    /* Not NUL-terminated, and a NUL inside: the length rules. */
    ASSERT_EQ(peer_addr_parse(exact("1.2.3.45", 7), 7, &a), 0);
    ASSERT_STR_EQ(fmt(&a), "1.2.3.4");
    ASSERT_EQ(peer_addr_parse(exact("1.2.3.4\0", 8), 8, &a), -1);
    char longer[80];
    memset(longer, '1', sizeof longer);
    ASSERT_EQ(peer_addr_parse(exact(longer, sizeof longer), sizeof longer, &a), -1);
    /* A buffer too small for the text: an empty string. */
    char tiny[4];
    a = addr("192.0.2.1");
    ASSERT_STR_EQ(peer_addr_format(&a, tiny, sizeof tiny), "");
    release();
}

static void test_loopback(void)
{
    static const char *const yes[] = {"127.0.0.1", "127.255.255.254", "::1", "::ffff:127.0.0.1", "127.1.2.3"};
    static const char *const no[] = {"128.0.0.1",       "126.255.255.255", "::2",     "::",      "0.0.0.0",
                                     "::ffff:10.0.0.1", "::127.0.0.1",     "fe80::1", "10.0.0.1"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        peer_addr_t a = addr(yes[i]);
        if (!peer_addr_is_loopback(&a))
            TEST_FAIL_AT("%s: not loopback", yes[i]);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        peer_addr_t a = addr(no[i]);
        if (peer_addr_is_loopback(&a))
            TEST_FAIL_AT("%s: loopback", no[i]);
    }
    release();
}

static void test_from_sockaddr(void)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(80)};
    inet_pton(AF_INET, "198.51.100.7", &in.sin_addr);
    peer_addr_t a;
    ASSERT_EQ(peer_addr_from_sockaddr((struct sockaddr *)&in, sizeof in, &a), 0);
    ASSERT_STR_EQ(fmt(&a), "198.51.100.7");
    ASSERT_EQ(peer_addr_from_sockaddr((struct sockaddr *)&in, sizeof in - 1, &a), -1);

    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:198.51.100.7", &in6.sin6_addr); /* a dual-stack socket's v4 peer */
    peer_addr_t b;
    ASSERT_EQ(peer_addr_from_sockaddr((struct sockaddr *)&in6, sizeof in6, &b), 0);
    ASSERT(peer_addr_equal(&a, &b));
    inet_pton(AF_INET6, "2001:db8::5", &in6.sin6_addr);
    ASSERT_EQ(peer_addr_from_sockaddr((struct sockaddr *)&in6, sizeof in6, &b), 0);
    ASSERT_STR_EQ(fmt(&b), "2001:db8::5");

    struct sockaddr_un un = {.sun_family = AF_UNIX};
    ASSERT_EQ(peer_addr_from_sockaddr((struct sockaddr *)&un, sizeof un, &a), -1);
}

static void test_key(void)
{
    uint8_t k1[PEER_KEY_LEN], k2[PEER_KEY_LEN];
    peer_addr_t a = addr("192.0.2.1"), b = addr("192.0.2.2");
    peer_addr_key(&a, 64, k1);
    peer_addr_key(&b, 64, k2);
    ASSERT_EQ(k1[0], 4);
    ASSERT(memcmp(k1, k2, PEER_KEY_LEN) != 0); /* IPv4: the whole address, always */
    ASSERT(memcmp(k1 + 13, "\xc0\x00\x02\x01", 4) == 0);

    a = addr("2001:db8:1:2:aaaa::1");
    b = addr("2001:db8:1:2:bbbb::2");
    peer_addr_key(&a, 64, k1);
    peer_addr_key(&b, 64, k2);
    ASSERT_EQ(k1[0], 6);
    ASSERT(memcmp(k1, k2, PEER_KEY_LEN) == 0); /* one /64, one client */
    b = addr("2001:db8:1:3::1");
    peer_addr_key(&b, 64, k2);
    ASSERT(memcmp(k1, k2, PEER_KEY_LEN) != 0);
    peer_addr_key(&a, 128, k1);
    ASSERT(memcmp(k1 + 1, a.b, 16) == 0);
    peer_addr_key(&a, 999, k2); /* clamped to 128 */
    ASSERT(memcmp(k1, k2, PEER_KEY_LEN) == 0);
    peer_addr_key(&a, 0, k1);
    ASSERT(k1[0] == 6 && memcmp(k1 + 1, (uint8_t[16]){0}, 16) == 0);
    /* ::ffff:0:0/96 cut at 64 is not any IPv4 key: the family byte differs. */
    a = addr("::ffff:0.0.0.0");
    peer_addr_key(&a, 64, k2);
    ASSERT(memcmp(k1, k2, PEER_KEY_LEN) != 0);
    release();
}

/* ---- CIDR ---------------------------------------------------------------- */

static int cidr(const char *s, peer_cidr_t *c) { return peer_cidr_parse(exact(s, strlen(s)), strlen(s), c); }

static int in(const char *range, const char *a)
{
    peer_cidr_t c;
    if (cidr(range, &c)) {
        TEST_FAIL_AT("range does not parse: %s", range);
        return -1;
    }
    peer_addr_t x = addr(a);
    return peer_cidr_contains(&c, &x);
}

static void test_cidr(void)
{
    ASSERT_EQ(in("10.0.0.0/8", "10.1.2.3"), 1);
    ASSERT_EQ(in("10.0.0.0/8", "::ffff:10.1.2.3"), 1);
    ASSERT_EQ(in("10.0.0.0/8", "11.0.0.0"), 0);
    ASSERT_EQ(in("10.0.0.0/8", "9.255.255.255"), 0);
    ASSERT_EQ(in("192.168.1.0/24", "192.168.1.255"), 1);
    ASSERT_EQ(in("192.168.1.0/24", "192.168.2.0"), 0);
    ASSERT_EQ(in("172.16.0.0/12", "172.31.255.255"), 1);
    ASSERT_EQ(in("172.16.0.0/12", "172.32.0.0"), 0);
    ASSERT_EQ(in("192.0.2.7", "192.0.2.7"), 1); /* a plain address is a host */
    ASSERT_EQ(in("192.0.2.7", "192.0.2.6"), 0);
    ASSERT_EQ(in("192.0.2.7/32", "192.0.2.7"), 1);
    ASSERT_EQ(in("0.0.0.0/0", "203.0.113.9"), 1);
    ASSERT_EQ(in("0.0.0.0/0", "::1"), 0); /* every IPv4 address, no IPv6 one */
    ASSERT_EQ(in("::/0", "::1"), 1);
    ASSERT_EQ(in("::/0", "203.0.113.9"), 1);
    ASSERT_EQ(in("::1/128", "::1"), 1);
    ASSERT_EQ(in("::1", "::1"), 1);
    ASSERT_EQ(in("::1", "127.0.0.1"), 0);
    ASSERT_EQ(in("2001:db8::/32", "2001:db8:ffff::1"), 1);
    ASSERT_EQ(in("2001:db8::/32", "2001:db9::"), 0);
    ASSERT_EQ(in("2001:db8::/33", "2001:db8:8000::"), 0);
    ASSERT_EQ(in("fc00::/7", "fdff::1"), 1);
    ASSERT_EQ(in("::ffff:10.0.0.0/104", "10.200.0.1"), 1); /* written as IPv6: /104 over 128 bits */

    static const char *const bad[] = {
        "10.0.0.1/8",    "10.0.0.0/33", "10.0.0.0/08", "10.0.0.0/",   "/8",      "10.0.0.0/8/",    "::/129",
        "10.0.0.0/-1",   "10.0.0.0/+8", "10.0.0.0 /8", "10.0.0.0/8 ", "::1/127", "2001:db8::1/32", "",
        "10.0.0.0/1000", "x/8",         "fd00::/7"};
    peer_cidr_t c;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cidr(bad[i], &c) == 0)
            TEST_FAIL_AT("accepted: \"%s\"", bad[i]);

    peer_cidr_t list[2];
    ASSERT_EQ(cidr("10.0.0.0/8", &list[0]), 0);
    ASSERT_EQ(cidr("::1", &list[1]), 0);
    peer_addr_t a = addr("::1"), b = addr("192.0.2.1");
    ASSERT(peer_cidr_list_contains(list, 2, &a));
    ASSERT(!peer_cidr_list_contains(list, 2, &b));
    ASSERT(!peer_cidr_list_contains(list, 0, &a));
    release();
}

/* ---- the client behind proxies ------------------------------------------- */

static peer_cidr_t trusted[3];
static const size_t ntrusted = 3;

/* Runs peer_client_addr over the given header values (NULL-terminated),
 * each an exact-size copy. */
static peer_source_t client_of(const char *sock, peer_header_t which, const char *const *vals,
                               peer_addr_t *out)
{
    peer_span_t spans[8];
    size_t n = 0;
    for (; vals && vals[n]; n++)
        spans[n] = (peer_span_t){exact(vals[n], strlen(vals[n])), strlen(vals[n])};
    peer_addr_t s = addr(sock);
    return peer_client_addr(&s, trusted, ntrusted, which, spans, n, out);
}

static void expect(int line, const char *sock, peer_header_t which, const char *const *vals,
                   peer_source_t src, const char *want)
{
    peer_addr_t got;
    peer_source_t r = client_of(sock, which, vals, &got);
    if (r != src || strcmp(fmt(&got), want) != 0)
        TEST_FAIL_AT("line %d: \"%s\": got %d %s, want %d %s", line, vals && vals[0] ? vals[0] : "(none)", r,
                     fmt(&got), src, want);
}

#define XFF(sock, value, src, want) \
    expect(__LINE__, sock, PEER_HEADER_X_FORWARDED_FOR, (const char *const[]){value, NULL}, src, want)
#define FWD(sock, value, src, want) \
    expect(__LINE__, sock, PEER_HEADER_FORWARDED, (const char *const[]){value, NULL}, src, want)

static void test_client_xff(void)
{
    /* Not from a trusted proxy: the header is the client's own words. */
    XFF("203.0.113.5", "1.2.3.4", PEER_SOURCE_SOCKET, "203.0.113.5");
    /* The picture in peer.h. */
    XFF("10.0.0.2", "6.6.6.6, 198.51.100.4, 10.0.0.7", PEER_SOURCE_HEADER, "198.51.100.4");
    XFF("10.0.0.2", "198.51.100.4", PEER_SOURCE_HEADER, "198.51.100.4");
    XFF("::1", "198.51.100.4", PEER_SOURCE_HEADER, "198.51.100.4");
    XFF("::ffff:10.9.9.9", "198.51.100.4", PEER_SOURCE_HEADER, "198.51.100.4");
    /* No header, or nothing in it: the proxy itself. */
    expect(__LINE__, "10.0.0.2", PEER_HEADER_X_FORWARDED_FOR, NULL, PEER_SOURCE_SOCKET, "10.0.0.2");
    XFF("10.0.0.2", "", PEER_SOURCE_SOCKET, "10.0.0.2");
    XFF("10.0.0.2", " , ,", PEER_SOURCE_SOCKET, "10.0.0.2");
    /* Every hop trusted: the farthest. */
    XFF("10.0.0.2", "10.0.0.3, 10.0.0.4", PEER_SOURCE_HEADER, "10.0.0.3");
    /* Garbage left of the client does not matter; right of it, it stops the walk. */
    XFF("10.0.0.2", "<script>, 198.51.100.4", PEER_SOURCE_HEADER, "198.51.100.4");
    XFF("10.0.0.2", "198.51.100.4, unknown", PEER_SOURCE_PROXY, "10.0.0.2");
    XFF("10.0.0.2", "198.51.100.4, garbage, 10.0.0.9", PEER_SOURCE_PROXY, "10.0.0.9");
    XFF("10.0.0.2", "198.51.100.4, 1.2.3.4:", PEER_SOURCE_PROXY, "10.0.0.2");
    XFF("10.0.0.2", "\"198.51.100.4\"", PEER_SOURCE_PROXY, "10.0.0.2");
    /* Forms of an element. */
    XFF("10.0.0.2", "[2001:db8::1]:443", PEER_SOURCE_HEADER, "2001:db8::1");
    XFF("10.0.0.2", "[2001:db8::3]", PEER_SOURCE_HEADER, "2001:db8::3");
    XFF("10.0.0.2", "2001:db8::2", PEER_SOURCE_HEADER, "2001:db8::2");
    XFF("10.0.0.2", "192.0.2.1:80", PEER_SOURCE_HEADER, "192.0.2.1");
    XFF("10.0.0.2", "\t192.0.2.1 ,\t", PEER_SOURCE_HEADER, "192.0.2.1");
    XFF("10.0.0.2", "198.51.100.4,, ,", PEER_SOURCE_HEADER, "198.51.100.4");
    XFF("10.0.0.2", "[1.2.3.4]", PEER_SOURCE_PROXY, "10.0.0.2");
    XFF("10.0.0.2", "[2001:db8::1]:", PEER_SOURCE_PROXY, "10.0.0.2");
    XFF("10.0.0.2", "[2001:db8::1]x", PEER_SOURCE_PROXY, "10.0.0.2");
    XFF("10.0.0.2", "[2001:db8::1", PEER_SOURCE_PROXY, "10.0.0.2");
    XFF("10.0.0.2", "192.0.2.1:123456", PEER_SOURCE_PROXY, "10.0.0.2");
    /* A mapped address in the header is matched as IPv4. */
    XFF("10.0.0.2", "198.51.100.4, ::ffff:10.0.0.5", PEER_SOURCE_HEADER, "198.51.100.4");
    /* Several fields: one list, in order. */
    expect(__LINE__, "10.0.0.2", PEER_HEADER_X_FORWARDED_FOR,
           (const char *const[]){"6.6.6.6, 198.51.100.4", "10.0.0.7", NULL}, PEER_SOURCE_HEADER,
           "198.51.100.4");
    expect(__LINE__, "10.0.0.2", PEER_HEADER_X_FORWARDED_FOR, (const char *const[]){"198.51.100.4", "", NULL},
           PEER_SOURCE_HEADER, "198.51.100.4");
    /* Without trusted proxies, the socket peer whatever the header says. */
    peer_addr_t s = addr("10.0.0.2"), got;
    peer_span_t v = {exact("1.2.3.4", 7), 7};
    ASSERT_EQ(peer_client_addr(&s, trusted, 0, PEER_HEADER_X_FORWARDED_FOR, &v, 1, &got), PEER_SOURCE_SOCKET);
    ASSERT(peer_addr_equal(&got, &s));
    release();
}

/* Hops past PEER_MAX_HOPS: the ring keeps the nearest ones. */
static void test_client_many_hops(void)
{
    char buf[2048];
    size_t n = (size_t)sprintf(buf, "198.51.100.4");
    for (int i = 1; i < PEER_MAX_HOPS; i++)
        n += (size_t)sprintf(buf + n, ", 10.0.0.%d", i);
    XFF("10.0.0.2", buf, PEER_SOURCE_HEADER, "198.51.100.4"); /* exactly PEER_MAX_HOPS: all kept */
    n += (size_t)sprintf(buf + n, ", 10.0.0.99");
    XFF("10.0.0.2", buf, PEER_SOURCE_PROXY, "10.0.0.1"); /* the client fell out of the ring */
    /* A long forged tail on the left costs nothing and changes nothing. */
    n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)sprintf(buf + n, "10.0.0.1, ");
    sprintf(buf + n, "198.51.100.4");
    XFF("10.0.0.2", buf, PEER_SOURCE_HEADER, "198.51.100.4");
    release();
}

static void test_client_forwarded(void)
{
    /* RFC 7239 section 4 and 7.1 examples. */
    FWD("10.0.0.2", "for=\"_gazonk\"", PEER_SOURCE_PROXY, "10.0.0.2");
    FWD("10.0.0.2", "For=\"[2001:db8:cafe::17]:4711\"", PEER_SOURCE_HEADER, "2001:db8:cafe::17");
    FWD("10.0.0.2", "for=192.0.2.60;proto=http;by=203.0.113.43", PEER_SOURCE_HEADER, "192.0.2.60");
    FWD("10.0.0.2", "for=192.0.2.43, for=198.51.100.17", PEER_SOURCE_HEADER, "198.51.100.17");
    FWD("10.0.0.2", "for=192.0.2.43, for=\"[2001:db8:cafe::17]\", for=unknown", PEER_SOURCE_PROXY,
        "10.0.0.2");
    /* Walking through trusted hops. */
    FWD("10.0.0.2", "for=198.51.100.17, for=10.0.0.7", PEER_SOURCE_HEADER, "198.51.100.17");
    FWD("10.0.0.2", "for=198.51.100.17;by=10.0.0.2, for=\"10.0.0.7:8080\"", PEER_SOURCE_HEADER,
        "198.51.100.17");
    FWD("10.0.0.2", "for=unknown, for=10.0.0.7", PEER_SOURCE_PROXY, "10.0.0.7");
    FWD("10.0.0.2", "for=\"10.0.0.7:_port\"", PEER_SOURCE_HEADER, "10.0.0.7"); /* obfport, all trusted */
    /* Elements without for=, and OWS / case / quoted-pairs. */
    FWD("10.0.0.2", "proto=https", PEER_SOURCE_PROXY, "10.0.0.2");
    FWD("10.0.0.2", ";", PEER_SOURCE_PROXY, "10.0.0.2");
    FWD("10.0.0.2", "for=192.0.2.1 ; proto=http , for=198.51.100.1", PEER_SOURCE_HEADER, "198.51.100.1");
    FWD("10.0.0.2", "FOR=192.0.2.1", PEER_SOURCE_HEADER, "192.0.2.1");
    FWD("10.0.0.2", "for=\"\\[2001:db8::9\\]\"", PEER_SOURCE_HEADER, "2001:db8::9");
    FWD("10.0.0.2", "by=\"a,b;c\";for=192.0.2.5", PEER_SOURCE_HEADER, "192.0.2.5"); /* , ; inside quotes */
    FWD("10.0.0.2", ", ,for=192.0.2.5,,", PEER_SOURCE_HEADER, "192.0.2.5");
    FWD("10.0.0.2", "", PEER_SOURCE_SOCKET, "10.0.0.2");
    /* Values that are not addresses: a hop without one. */
    FWD("10.0.0.2", "for=\"2001:db8::1\"", PEER_SOURCE_PROXY, "10.0.0.2"); /* IPv6 needs brackets */
    FWD("10.0.0.2", "for=\"[1.2.3.4]\"", PEER_SOURCE_PROXY, "10.0.0.2");
    FWD("10.0.0.2", "for=\"192.0.2.1:\"", PEER_SOURCE_PROXY, "10.0.0.2");
    FWD("10.0.0.2", "for=localhost", PEER_SOURCE_PROXY, "10.0.0.2");
    FWD("10.0.0.2",
        "for=\"[2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff]:"
        "65535xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
        PEER_SOURCE_PROXY, "10.0.0.2"); /* longer than any node */
    /* Broken syntax: refused whole, the client is the socket peer. */
    static const char *const bad[] = {"for=192.0.2.43;for=198.51.100.1",
                                      "for=\"192.0.2.43",
                                      "for=192.0.2.43 x",
                                      "for",
                                      "=192.0.2.43",
                                      "for=",
                                      "for=[::1]",
                                      "for=192.0.2.43:80",
                                      "for =192.0.2.43",
                                      "for= 192.0.2.43",
                                      "for=\"a\\",
                                      "for=\"a\x01\"",
                                      "for=\"a\"b",
                                      "by=\"x;for=192.0.2.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        FWD("10.0.0.2", bad[i], PEER_SOURCE_MALFORMED, "10.0.0.2");
    /* A client's unclosed quote swallows what the proxy appended. */
    FWD("10.0.0.2", "for=\"x, for=198.51.100.4", PEER_SOURCE_MALFORMED, "10.0.0.2");
    /* Not from a proxy: not even parsed. */
    FWD("203.0.113.5", "for=\"", PEER_SOURCE_SOCKET, "203.0.113.5");
    /* Several fields. */
    expect(__LINE__, "10.0.0.2", PEER_HEADER_FORWARDED,
           (const char *const[]){"for=6.6.6.6, for=198.51.100.4", "for=10.0.0.7", NULL}, PEER_SOURCE_HEADER,
           "198.51.100.4");
    release();
}

int main(void)
{
    TEST_MAIN_BEGIN();
    if (peer_cidr_parse("10.0.0.0/8", 10, &trusted[0]) || peer_cidr_parse("::1/128", 7, &trusted[1]) ||
        peer_cidr_parse("fd00::/8", 8, &trusted[2])) {
        printf("not ok - setup\n");
        return 1;
    }
    TEST_RUN(test_addr_parse_format);
    TEST_RUN(test_loopback);
    TEST_RUN(test_from_sockaddr);
    TEST_RUN(test_key);
    TEST_RUN(test_cidr);
    TEST_RUN(test_client_xff);
    TEST_RUN(test_client_many_hops);
    TEST_RUN(test_client_forwarded);
    TEST_MAIN_END();
}
