/*
 * url_host.c - the URL Standard's host parser (https://url.spec.whatwg.org/
 * #host-parsing), part of the url module (url.h): IPv6 and IPv4 addresses,
 * opaque hosts, and domains through IDNA.
 *
 * It is a file of its own because it is the one part of URL parsing that is
 * not the state machine: number syntax for addresses, and the bridge to ICU
 * for internationalized domain names. ICU's UTS #46 object is opened once
 * for the process (pthread_once) and is immutable afterwards, so any thread
 * may convert through it; it is never closed (one small allocation held for
 * the process's life, as ICU's own caches are).
 */
#include "url.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unicode/uidna.h>

int url_is_forbidden_host_cp(uint32_t c)
{
    switch (c) {
    case 0x00:
    case '\t':
    case '\n':
    case '\r':
    case ' ':
    case '#':
    case '/':
    case ':':
    case '<':
    case '>':
    case '?':
    case '@':
    case '[':
    case '\\':
    case ']':
    case '^':
    case '|':
        return 1;
    default:
        return 0;
    }
}

static int forbidden_domain_cp(uint32_t c)
{
    return url_is_forbidden_host_cp(c) || c <= 0x1F || c == '%' || c == 0x7F;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 32;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* ---- IPv6 (https://url.spec.whatwg.org/#concept-ipv6-parser) --------------------- */

static int ipv6_parse(const char *s, size_t n, uint16_t addr[8])
{
    memset(addr, 0, 8 * sizeof(uint16_t));
    int piece = 0, compress = -1;
    size_t p = 0;
    if (p < n && s[p] == ':') {
        if (p + 1 >= n || s[p + 1] != ':')
            return -1;
        p += 2;
        compress = ++piece;
    }
    while (p < n) {
        if (piece == 8)
            return -1;
        if (s[p] == ':') {
            if (compress >= 0)
                return -1;
            p++;
            compress = ++piece;
            continue;
        }
        unsigned value = 0, length = 0;
        while (length < 4 && p < n && hexval((unsigned char)s[p]) >= 0) {
            value = value * 16 + (unsigned)hexval((unsigned char)s[p]);
            p++, length++;
        }
        if (p < n && s[p] == '.') {
            if (length == 0)
                return -1;
            p -= length;
            if (piece > 6)
                return -1;
            int seen = 0;
            while (p < n) {
                int ipv4 = -1;
                if (seen > 0) {
                    if (s[p] == '.' && seen < 4)
                        p++;
                    else
                        return -1;
                }
                if (p >= n || s[p] < '0' || s[p] > '9')
                    return -1;
                while (p < n && s[p] >= '0' && s[p] <= '9') {
                    int d = s[p] - '0';
                    if (ipv4 == -1)
                        ipv4 = d;
                    else if (ipv4 == 0)
                        return -1;
                    else
                        ipv4 = ipv4 * 10 + d;
                    if (ipv4 > 255)
                        return -1;
                    p++;
                }
                addr[piece] = (uint16_t)(addr[piece] * 0x100 + ipv4);
                seen++;
                if (seen == 2 || seen == 4)
                    piece++;
            }
            if (seen != 4)
                return -1;
            break;
        }
        if (p < n && s[p] == ':') {
            p++;
            if (p >= n)
                return -1;
        } else if (p < n) {
            return -1;
        }
        addr[piece++] = (uint16_t)value;
    }
    if (compress >= 0) {
        int swaps = piece - compress;
        piece = 7;
        while (piece != 0 && swaps > 0) {
            uint16_t t = addr[piece];
            addr[piece] = addr[compress + swaps - 1];
            addr[compress + swaps - 1] = t;
            piece--, swaps--;
        }
    } else if (piece != 8) {
        return -1;
    }
    return 0;
}

/* "[" compressed hex pieces "]": the first longest run of 2+ zero pieces is "::". */
static int ipv6_serialize(const uint16_t a[8], url_str_t *out)
{
    int best = -1, best_len = 1;
    for (int i = 0; i < 8;) {
        int j = i;
        while (j < 8 && a[j] == 0)
            j++;
        if (j - i > best_len)
            best = i, best_len = j - i;
        i = j > i ? j : i + 1;
    }
    char buf[48];
    size_t n = 0;
    buf[n++] = '[';
    int ignore0 = 0;
    for (int i = 0; i < 8; i++) {
        if (ignore0 && a[i] == 0)
            continue;
        ignore0 = 0;
        if (best == i) {
            buf[n++] = ':';
            if (i == 0)
                buf[n++] = ':';
            ignore0 = 1;
            continue;
        }
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%x", a[i]);
        if (i != 7)
            buf[n++] = ':';
    }
    buf[n++] = ']';
    return url_str_append(out, buf, n);
}

/* ---- IPv4 (https://url.spec.whatwg.org/#concept-ipv4-parser) --------------------- */

/* Parses one part; returns 0 and the value (saturated past 2^32), or -1. */
static int ipv4_number(const char *s, size_t n, uint64_t *out)
{
    if (n == 0)
        return -1;
    int radix = 10;
    if (n >= 2 && s[0] == '0' && (s[1] | 32) == 'x') {
        s += 2, n -= 2, radix = 16;
    } else if (n >= 2 && s[0] == '0') {
        s++, n--, radix = 8;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int d = hexval((unsigned char)s[i]);
        if (d < 0 || d >= radix)
            return -1;
        if (v <= 0xFFFFFFFFull)
            v = v * (uint64_t)radix + (uint64_t)d;
    }
    *out = v;
    return 0;
}

/* The standard's "ends in a number" checker. */
static int ends_in_number(const char *s, size_t n)
{
    if (n && s[n - 1] == '.')
        n--; /* "a.1." ends in a number, "." does not */
    size_t start = n;
    while (start > 0 && s[start - 1] != '.')
        start--;
    const char *last = s + start;
    size_t len = n - start;
    if (len == 0)
        return 0;
    int digits = 1;
    for (size_t i = 0; i < len; i++)
        digits &= last[i] >= '0' && last[i] <= '9';
    if (digits)
        return 1;
    uint64_t v;
    return ipv4_number(last, len, &v) == 0;
}

static int ipv4_parse(const char *s, size_t n, url_str_t *out)
{
    uint64_t nums[4];
    int count = 0;
    if (n && s[n - 1] == '.')
        n--; /* one trailing dot is allowed */
    for (size_t i = 0; i <= n;) {
        const char *dot = memchr(s + i, '.', n - i);
        size_t end = dot ? (size_t)(dot - s) : n;
        if (count == 4 || ipv4_number(s + i, end - i, &nums[count]))
            return -1;
        count++;
        i = end + 1;
        if (!dot)
            break;
    }
    for (int i = 0; i < count - 1; i++)
        if (nums[i] > 255)
            return -1;
    if (nums[count - 1] >= (1ull << (8 * (5 - count))))
        return -1;
    uint64_t v = nums[count - 1];
    for (int i = 0; i < count - 1; i++)
        v += nums[i] << (8 * (3 - i));
    char buf[16];
    int len = snprintf(buf, sizeof(buf), "%u.%u.%u.%u", (unsigned)(v >> 24) & 255, (unsigned)(v >> 16) & 255,
                       (unsigned)(v >> 8) & 255, (unsigned)v & 255);
    return url_str_append(out, buf, (size_t)len);
}

/* ---- domains ------------------------------------------------------------------------ */

static UIDNA *uts46;
static pthread_once_t uts46_once = PTHREAD_ONCE_INIT;

static void uts46_open(void)
{
    UErrorCode err = U_ZERO_ERROR;
    uts46 = uidna_openUTS46(UIDNA_CHECK_BIDI | UIDNA_CHECK_CONTEXTJ | UIDNA_NONTRANSITIONAL_TO_ASCII, &err);
    if (U_FAILURE(err))
        uts46 = NULL;
}

/* Errors the URL Standard's "domain to ASCII" does not check
 * (CheckHyphens and VerifyDnsLength are false). */
#define IGNORED_IDNA_ERRORS                                                                    \
    (UIDNA_ERROR_EMPTY_LABEL | UIDNA_ERROR_LABEL_TOO_LONG | UIDNA_ERROR_DOMAIN_NAME_TOO_LONG | \
     UIDNA_ERROR_LEADING_HYPHEN | UIDNA_ERROR_TRAILING_HYPHEN | UIDNA_ERROR_HYPHEN_3_4)

/* Does some label of s[0..n) start with "xn--" (any case)? */
static int has_ace_label(const char *s, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++)
        if ((i == 0 || s[i - 1] == '.') && (s[i] | 32) == 'x' && (s[i + 1] | 32) == 'n' && s[i + 2] == '-' &&
            s[i + 3] == '-')
            return 1;
    return 0;
}

static int domain_to_ascii(const char *s, size_t n, url_str_t *out)
{
    int ascii = 1;
    for (size_t i = 0; i < n; i++)
        ascii &= (unsigned char)s[i] < 0x80;
    url_str_reset(out);
    if (ascii && !has_ace_label(s, n)) {
        for (size_t i = 0; i < n; i++) {
            char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] | 32) : s[i];
            if (url_str_append(out, &c, 1))
                return -1;
        }
    } else {
        pthread_once(&uts46_once, uts46_open);
        if (!uts46 || n > INT32_MAX / 4)
            return -1;
        char buf[1024];
        UErrorCode err = U_ZERO_ERROR;
        UIDNAInfo info = UIDNA_INFO_INITIALIZER;
        int32_t len = uidna_nameToASCII_UTF8(uts46, s, (int32_t)n, buf, sizeof(buf), &info, &err);
        if (U_FAILURE(err) || len >= (int32_t)sizeof(buf) || (info.errors & ~IGNORED_IDNA_ERRORS))
            return -1;
        if (url_str_append(out, buf, (size_t)len))
            return -1;
    }
    if (out->len == 0)
        return -1;
    for (uint32_t i = 0; i < out->len; i++)
        if (forbidden_domain_cp((unsigned char)out->p[i]))
            return -1;
    return 0;
}

/* ---- the host parser ------------------------------------------------------------------ */

static int opaque_host(const char *s, size_t n, url_str_t *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80 && url_is_forbidden_host_cp(c))
            return -1;
        if (c < 0x20 || c > 0x7E) {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            if (url_str_append(out, e, 3))
                return -1;
        } else if (url_str_append(out, (const char *)&c, 1)) {
            return -1;
        }
    }
    return 0;
}

int url_try_parse_host(const char *in, size_t len, int not_special, url_str_t *out)
{
    url_str_reset(out);
    if (len && in[0] == '[') {
        uint16_t a[8];
        if (in[len - 1] != ']' || ipv6_parse(in + 1, len - 2, a))
            return -1;
        return ipv6_serialize(a, out);
    }
    if (not_special)
        return opaque_host(in, len, out);
    if (len == 0)
        return -1;
    /* Percent-decode, then the result must be UTF-8 (decoding would map
     * anything else to U+FFFD, which IDNA refuses anyway). */
    url_str_t dec = {0};
    int r = -1;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%' && i + 2 < len && hexval((unsigned char)in[i + 1]) >= 0 &&
            hexval((unsigned char)in[i + 2]) >= 0) {
            c = (char)(hexval((unsigned char)in[i + 1]) * 16 + hexval((unsigned char)in[i + 2]));
            i += 2;
        }
        if (url_str_append(&dec, &c, 1))
            goto done;
    }
    if (!url_is_utf8(url_str_ptr(&dec), dec.len))
        goto done;
    url_str_t ascii = {0};
    if (domain_to_ascii(url_str_ptr(&dec), dec.len, &ascii) == 0) {
        if (ends_in_number(ascii.p, ascii.len))
            r = ipv4_parse(ascii.p, ascii.len, out);
        else
            r = url_str_append(out, ascii.p, ascii.len);
    }
    url_str_free(&ascii);
done:
    url_str_free(&dec);
    return r;
}
