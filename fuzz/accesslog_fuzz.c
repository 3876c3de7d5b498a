/*
 * accesslog_fuzz.c - libFuzzer target for the access log's query cleaner
 * and topic counter (accesslog_clean_query, accesslog_count_params) and the
 * record's target (accesslog_rec_new): a client's query string goes into a
 * log line, so no token may survive it.
 *
 * Properties (abort() on any violation):
 *   - no kept pair has a name that percent-decodes (as the hub decodes it to
 *     find the token: http1_pct_decode with '+' as space) to
 *     `authorization`, and every kept name is well-formed percent-encoding;
 *   - kept pairs are input pairs, byte for byte, in input order, joined by
 *     '&'; with room enough, every well-formed pair not named
 *     `authorization` is kept (nothing else is lost);
 *   - with a smaller cap the output fits it, is a prefix of the full output
 *     ending at a pair boundary, and `cut` says whether it is shorter;
 *   - when the hub's form parser accepts the query, the topic count equals
 *     the number of pairs it delivers named `topic`;
 *   - a record's target holds the path's first bytes and no authorization
 *     pair, and never passes ACCESSLOG_TARGET_MAX.
 * The first input byte picks the small cap; the rest is the query (and the
 * path, for the record). Buffers are exact-size heap copies (ASan).
 */
#include "fuzz.h"

#include "accesslog.h"
#include "http1.h"

#include <stdlib.h>
#include <string.h>

static int hexd(char c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

static int name_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '%' && (i + 2 >= n || !hexd(s[i + 1]) || !hexd(s[i + 2])))
            return 0;
    return 1;
}

/* Decodes a (well-formed) name the hub's way and compares. */
static int decodes_to(const char *s, size_t n, const char *want)
{
    char *buf = malloc(n ? n : 1);
    CHECK(buf);
    ssize_t m = http1_pct_decode(s, n, buf, HTTP1_PCT_PLUS_SPACE);
    int eq = m == (ssize_t)strlen(want) && memcmp(buf, want, (size_t)m) == 0;
    free(buf);
    return eq;
}

static size_t name_len(const char *pair, size_t plen)
{
    const char *eq = memchr(pair, '=', plen);
    return eq ? (size_t)(eq - pair) : plen;
}

/* The output the cleaner must give, built pair by pair: what to keep. */
static size_t expected(const char *q, size_t len, char *out)
{
    size_t n = 0;
    const char *p = q, *end = q + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        size_t plen = (size_t)((amp ? amp : end) - p);
        size_t nl = name_len(p, plen);
        if (plen && name_ok(p, nl) && !decodes_to(p, nl, "authorization")) {
            if (n)
                out[n++] = '&';
            memcpy(out + n, p, plen);
            n += plen;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return n;
}

static void check_pairs(const char *out, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const char *amp = memchr(out + i, '&', n - i);
        size_t plen = (size_t)((amp ? amp : out + n) - (out + i));
        CHECK(plen > 0); /* no empty pair, no trailing '&' */
        size_t nl = name_len(out + i, plen);
        CHECK(name_ok(out + i, nl));
        CHECK(!decodes_to(out + i, nl, "authorization"));
        i += plen + 1;
    }
}

typedef struct topics {
    size_t n;
} topics_t;

static int on_pair(void *ctx, const char *name, size_t nl, const char *value, size_t vl)
{
    (void)value;
    (void)vl;
    topics_t *t = ctx;
    t->n += nl == 5 && !memcmp(name, "topic", 5);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t small = data[0];
    size_t len = size - 1;
    char *q = malloc(len ? len : 1);
    char *full = malloc(len + 1), *want = malloc(len + 1), *part = malloc(small ? small : 1);
    CHECK(q && full && want && part);
    memcpy(q, data + 1, len);

    int cut = -1;
    size_t n = accesslog_clean_query(q, len, full, len + 1, &cut);
    CHECK(cut == 0);
    check_pairs(full, n);
    size_t w = expected(q, len, want);
    CHECK(w == n && memcmp(want, full, n) == 0);

    size_t m = accesslog_clean_query(q, len, part, small, &cut);
    CHECK(m <= small && m <= n && memcmp(part, full, m) == 0);
    CHECK(m == 0 || m == n || full[m] == '&'); /* ends at a pair boundary */
    CHECK(cut == (m < n));

    char *scratch = malloc(len ? len : 1);
    CHECK(scratch);
    topics_t t = {0};
    if (http1_parse_form(q, len, scratch, on_pair, &t) == 0)
        CHECK(accesslog_count_params(q, len, "topic") == t.n);
    free(scratch);

    /* The record: the first half as the path, the rest as the query. */
    size_t plen = len / 2;
    accesslog_rec_t *r = accesslog_rec_new("GET", 3, q, plen, q + plen, len - plen, NULL, 0);
    if (r) {
        CHECK(r->target_len <= ACCESSLOG_TARGET_MAX);
        size_t keep = plen < ACCESSLOG_TARGET_MAX - 3 ? plen : ACCESSLOG_TARGET_MAX - 3;
        CHECK(memcmp(r->target, q, keep) == 0);
        if (r->target_len > keep && r->target[keep] == '?') {
            /* Whole, the logged query is the cleaned query; otherwise it is
             * a prefix of it ending in the cut mark. A query that itself
             * ends in "..." is not a cut, so tell them apart by content. */
            size_t qend = r->target_len;
            size_t qn = accesslog_clean_query(q + plen, len - plen, want, len + 1, NULL);
            int whole = qend - keep - 1 == qn && memcmp(r->target + keep + 1, want, qn) == 0;
            if (!whole) {
                CHECK(qend >= keep + 4 && !memcmp(r->target + qend - 3, "...", 3));
                qend -= 3; /* the cut mark */
            }
            check_pairs(r->target + keep + 1, qend - keep - 1);
        }
        free(r);
    }
    free(q);
    free(full);
    free(want);
    free(part);
    return 0;
}
