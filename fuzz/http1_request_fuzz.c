/*
 * http1_request_fuzz.c - libFuzzer target for http1_parse_request() and the
 * header helpers.
 *
 * Checks properties, not just survival (abort() on any violation):
 *   - the result is a length <= the input, or one of the three errors;
 *   - every returned pointer lies inside the parsed head;
 *   - method and header names are non-empty tchar runs, the target has no
 *     SP/CTL/DEL, values hold no CTL but HTAB and no leading/trailing OWS,
 *     minor_version is 0 or 1, the framing rules hold (one valid
 *     Content-Length at most, never with Transfer-Encoding);
 *   - prefixes: the verdict depends only on the bytes seen. A proper prefix
 *     of a head that parses to n gives INCOMPLETE, any prefix >= n gives n
 *     and the same fields; for an error, prefixes give INCOMPLETE up to some
 *     point and that same error from there on.
 *   - splits: http1_parse_request_resume(), fed the same prefixes in
 *     increasing order (every byte boundary for small inputs), and again in
 *     random pieces, gives at every call exactly what the stateless parser
 *     gives on that prefix, fields included: so it reports each error at
 *     the same byte, never later. Every call gets a fresh copy of the
 *     prefix (the buffer moves between calls, as conn.c's realloc does).
 * Each parse gets an exact-size heap copy, so ASan flags any over-read.
 * The oracles below are written independently of src/http1.c.
 */
#include "fuzz.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

static int tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int within(const char *base, size_t n, const char *p, size_t len)
{
    return p >= base && p <= base + n && len <= (size_t)(base + n - p);
}

static int eq_ci(const char *p, size_t len, const char *lit)
{
    if (strlen(lit) != len)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char a = (unsigned char)p[i], b = (unsigned char)lit[i];
        if (a >= 'A' && a <= 'Z')
            a += 32;
        if (b >= 'A' && b <= 'Z')
            b += 32;
        if (a != b)
            return 0;
    }
    return 1;
}

static int has_substring_ci(const char *p, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    for (size_t i = 0; i + n <= len; i++)
        if (eq_ci(p + i, n, lit))
            return 1;
    return 0;
}

static void check_success(const char *buf, size_t size, ssize_t r, const http1_request_t *req)
{
    size_t n = (size_t)r;
    CHECK(n >= 14 && n <= size); /* "X / HTTP/1.1\n\n" is the shortest head */
    CHECK(req->method_len > 0 && within(buf, n, req->method, req->method_len));
    for (size_t i = 0; i < req->method_len; i++)
        CHECK(tchar((unsigned char)req->method[i]));
    CHECK(req->target_len > 0 && within(buf, n, req->target, req->target_len));
    for (size_t i = 0; i < req->target_len; i++) {
        unsigned char c = (unsigned char)req->target[i];
        CHECK(c > 0x20 && c != 0x7f);
    }
    CHECK(req->minor_version == 0 || req->minor_version == 1);
    CHECK(req->num_headers <= HTTP1_MAX_HEADERS);
    CHECK(buf[n - 1] == '\n');

    int cl = 0, te = 0;
    for (size_t h = 0; h < req->num_headers; h++) {
        const http1_header_t *f = &req->headers[h];
        CHECK(f->name_len > 0 && within(buf, n, f->name, f->name_len));
        CHECK(within(buf, n, f->value, f->value_len));
        CHECK(f->value > f->name + f->name_len); /* after the ':' */
        CHECK(f->name[f->name_len] == ':');
        for (size_t i = 0; i < f->name_len; i++)
            CHECK(tchar((unsigned char)f->name[i]));
        for (size_t i = 0; i < f->value_len; i++) {
            unsigned char c = (unsigned char)f->value[i];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (f->value_len) {
            CHECK(f->value[0] != ' ' && f->value[0] != '\t');
            CHECK(f->value[f->value_len - 1] != ' ' && f->value[f->value_len - 1] != '\t');
        }
        /* find_header finds this one or an earlier one of the same name. */
        char name[64];
        if (f->name_len < sizeof name) {
            memcpy(name, f->name, f->name_len);
            name[f->name_len] = '\0';
            const http1_header_t *g = http1_find_header(req, name);
            CHECK(g != NULL && g <= f && eq_ci(g->name, g->name_len, name));
            CHECK(http1_token_eq(f->name, f->name_len, name));
        }
        uint64_t v;
        int ok = http1_parse_content_length(f->value, f->value_len, &v) == 0;
        if (eq_ci(f->name, f->name_len, "content-length")) {
            cl++;
            CHECK(ok);
        }
        if (eq_ci(f->name, f->name_len, "transfer-encoding")) {
            te++;
            CHECK(http1_value_has_token(f->value, f->value_len, "chunked"));
        }
        if (ok) {
            for (size_t i = 0; i < f->value_len; i++)
                CHECK(f->value[i] >= '0' && f->value[i] <= '9');
        }
        /* A listed token is at least a substring of the value. */
        if (http1_value_has_token(f->value, f->value_len, "close"))
            CHECK(has_substring_ci(f->value, f->value_len, "close"));
    }
    CHECK(cl <= 1 && te <= 1 && !(cl && te));
    const http1_header_t *none = http1_find_header(req, "X-Absent-Zz");
    if (none)
        CHECK(eq_ci(none->name, none->name_len, "x-absent-zz"));
    CHECK(!(te && req->minor_version == 0));
}

static ssize_t parse_copy(const uint8_t *data, size_t k, http1_request_t *req, char **out)
{
    char *b = malloc(k ? k : 1);
    CHECK(b != NULL);
    memcpy(b, data, k);
    *out = b;
    return http1_parse_request(b, k, req);
}

/* The fields of two parses of the same bytes, at different addresses. */
static void require_same(const char *a, const http1_request_t *x, const char *b, const http1_request_t *y)
{
    CHECK(x->method - a == y->method - b && x->method_len == y->method_len);
    CHECK(x->target - a == y->target - b && x->target_len == y->target_len);
    CHECK(x->minor_version == y->minor_version && x->num_headers == y->num_headers);
    for (size_t i = 0; i < x->num_headers; i++) {
        const http1_header_t *f = &x->headers[i], *g = &y->headers[i];
        CHECK(f->name - a == g->name - b && f->name_len == g->name_len);
        CHECK(f->value - a == g->value - b && f->value_len == g->value_len);
    }
}

/* The resumable parser on buf[0..k) must agree with the stateless one's
 * verdict r (and fields, on success) there. */
static void check_resume(http1_head_scan_t *scan, const char *b, size_t k, ssize_t r,
                         const http1_request_t *req)
{
    static http1_request_t rreq;
    ssize_t rr = http1_parse_request_resume(scan, b, k, &rreq);
    CHECK(rr == r);
    if (r >= 0)
        require_same(b, req, b, &rreq);
}

static void check_prefix(const uint8_t *data, size_t size, size_t k, ssize_t full, const char *fbuf,
                         const http1_request_t *freq, int *error_seen, http1_head_scan_t *scan)
{
    static http1_request_t req;
    char *b;
    ssize_t r = parse_copy(data, k, &req, &b);
    check_resume(scan, b, k, r, &req);
    if (full >= 0) {
        if (k < (size_t)full) {
            CHECK(r == HTTP1_INCOMPLETE);
        } else {
            CHECK(r == full);
            require_same(fbuf, freq, b, &req);
        }
    } else if (full == HTTP1_INCOMPLETE) {
        CHECK(r == HTTP1_INCOMPLETE);
    } else if (r == full) {
        *error_seen = 1;
    } else {
        CHECK(r == HTTP1_INCOMPLETE && !*error_seen);
    }
    free(b);
}

/* The input in random pieces (sizes 1..2^j for a random j, so both many
 * tiny pieces and a few big ones happen), each call checked against the
 * stateless parse of the same prefix. At most 64 calls. */
static void check_random_splits(const uint8_t *data, size_t size, uint64_t seed)
{
    static http1_request_t req;
    http1_head_scan_t scan = {0};
    size_t k = 0;
    for (int calls = 0; calls < 64 && k < size; calls++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t limit = (size_t)1 << ((seed >> 33) % 12);
        k += 1 + (size_t)((seed >> 40) % limit);
        if (k > size || calls == 63)
            k = size;
        char *b;
        ssize_t r = parse_copy(data, k, &req, &b);
        check_resume(&scan, b, k, r, &req);
        free(b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static http1_request_t req; /* 1.6 KiB: keep it off the stack */
    char *buf;
    ssize_t r = parse_copy(data, size, &req, &buf);
    CHECK(r >= 0 || r == HTTP1_INCOMPLETE || r == HTTP1_MALFORMED || r == HTTP1_TOO_MANY_HEADERS);
    if (r >= 0)
        check_success(buf, size, r, &req);

    /* Prefixes, in increasing length (the error check needs the order): all
     * of them for small inputs, else 64 spread out plus the ones around r. */
    int error_seen = 0;
    http1_head_scan_t scan = {0};
    if (size <= 512) {
        for (size_t k = 0; k < size; k++)
            check_prefix(data, size, k, r, buf, &req, &error_seen, &scan);
    } else {
        size_t ks[67], nk = 0;
        for (size_t i = 0; i < 64; i++)
            ks[nk++] = size * i / 64;
        for (size_t j = 0; r > 0 && j < 3; j++)
            if ((size_t)r - 1 + j < size)
                ks[nk++] = (size_t)r - 1 + j;
        for (size_t i = 1; i < nk; i++) /* insertion sort: tiny array */
            for (size_t j = i; j > 0 && ks[j - 1] > ks[j]; j--) {
                size_t t = ks[j];
                ks[j] = ks[j - 1];
                ks[j - 1] = t;
            }
        for (size_t i = 0; i < nk; i++)
            check_prefix(data, size, ks[i], r, buf, &req, &error_seen, &scan);
    }
    /* The whole input last: the scan ends on the same verdict as the
     * stateless parse of everything. */
    check_resume(&scan, buf, size, r, &req);
    uint64_t seed = 1469598103934665603u;
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 1099511628211u;
    check_random_splits(data, size, seed);
    check_random_splits(data, size, seed ^ 0x5bd1e995u);
    free(buf);
    return 0;
}
