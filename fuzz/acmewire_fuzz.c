/*
 * acmewire_fuzz.c - libFuzzer target for what an ACME CA sends us
 * (src/acmewire.c). The first byte chooses the parser; the rest is the
 * answer, copied to the end of a heap block so ASan catches a read past it.
 *
 *   0: directory   1: order   2: authorization   3: status   4: problem
 *   5+: header lines (the rest split at '\n', each fed with its '\n')
 *
 * Properties (abort() on any violation):
 *   - every parser returns 0 or -1, and -1 comes with a reason and an
 *     emptied result;
 *   - every URL in a result is NUL-terminated inside its buffer and passes
 *     acmewire_url_ok (https, printable): nothing unchecked reaches libcurl;
 *   - tokens of answered challenges are base64url (they become a URL path
 *     and a certificate): nothing else reaches the router or the TLS layer;
 *   - identifiers are lowercase DNS characters; details and types printable;
 *   - order: 1..16 authorizations and a known status; authz: at most 16
 *     challenges;
 *   - header lines: a nonce is "" or base64url, a location "" or a good URL,
 *     Retry-After -1 or within [0, 86400], the media type lowercase printable.
 */
#include "acmewire.h"
#include "fuzz.h"

#include <string.h>

static void check_url(const char *u, size_t cap, int may_be_empty)
{
    size_t n = strnlen(u, cap);
    CHECK(n < cap);
    CHECK(n == 0 ? may_be_empty : acmewire_url_ok(u, n));
}

static void check_printable(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    CHECK(n < cap);
    for (size_t i = 0; i < n; i++)
        CHECK((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f);
}

static void check_empty(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            CHECK(0);
}

static void directory(const char *in, size_t len)
{
    acme_directory_t d;
    const char *why = NULL;
    if (acmewire_parse_directory(in, len, &d, &why)) {
        CHECK(why);
        check_empty(&d, sizeof(d));
        return;
    }
    check_url(d.new_nonce, sizeof(d.new_nonce), 0);
    check_url(d.new_account, sizeof(d.new_account), 0);
    check_url(d.new_order, sizeof(d.new_order), 0);
    check_url(d.terms, sizeof(d.terms), 1);
    CHECK(d.eab_required == 0 || d.eab_required == 1);
}

static void order(const char *in, size_t len)
{
    acme_order_t o;
    const char *why = NULL;
    if (acmewire_parse_order(in, len, &o, &why)) {
        CHECK(why && o.num_authz == 0 && o.status == ACME_ST_UNKNOWN);
        return;
    }
    CHECK(o.status != ACME_ST_UNKNOWN && o.num_authz >= 1 && o.num_authz <= ACME_MAX_AUTHZ);
    check_url(o.finalize, sizeof(o.finalize), 0);
    check_url(o.certificate, sizeof(o.certificate), 1);
    for (size_t i = 0; i < o.num_authz; i++)
        check_url(o.authz[i], sizeof(o.authz[i]), 0);
}

static void authz(const char *in, size_t len)
{
    acme_authz_t a;
    const char *why = NULL;
    if (acmewire_parse_authz(in, len, &a, &why)) {
        CHECK(why && a.num_challenges == 0 && a.identifier[0] == 0);
        return;
    }
    CHECK(a.status != ACME_ST_UNKNOWN && a.num_challenges <= ACME_MAX_CHALLENGES);
    size_t n = strnlen(a.identifier, sizeof(a.identifier));
    CHECK(n >= 1 && n <= 253);
    for (size_t i = 0; i < n; i++) {
        char c = a.identifier[i];
        CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.');
    }
    for (size_t i = 0; i < a.num_challenges; i++) {
        const acme_challenge_t *c = &a.challenges[i];
        check_printable(c->error, sizeof(c->error));
        if (c->type == ACME_CHAL_OTHER)
            continue;
        check_url(c->url, sizeof(c->url), 0);
        CHECK(acmewire_b64url_ok(c->token, strnlen(c->token, sizeof(c->token)), sizeof(c->token)));
    }
}

static void status_and_problem(const char *in, size_t len, int which)
{
    if (which == 3) {
        acme_status_t st;
        const char *why = NULL;
        int rc = acmewire_parse_status(in, len, &st, &why);
        CHECK(rc == 0 || (rc == -1 && why && st == ACME_ST_UNKNOWN));
        CHECK(strlen(acme_status_name(st)) > 0);
        return;
    }
    acme_problem_t p;
    if (acmewire_parse_problem(in, len, &p)) {
        check_empty(&p, sizeof(p));
        return;
    }
    check_printable(p.type, sizeof(p.type));
    check_printable(p.detail, sizeof(p.detail));
}

static void headers(const char *in, size_t len)
{
    acme_headers_t h;
    acmewire_headers_reset(&h);
    for (size_t start = 0; start < len;) {
        const char *nl = memchr(in + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - in) + 1 : len;
        acmewire_header_line(&h, in + start, end - start, 1764000000);
        start = end;
        size_t nn = strnlen(h.nonce, sizeof(h.nonce));
        CHECK(nn < sizeof(h.nonce) && (nn == 0 || acmewire_b64url_ok(h.nonce, nn, sizeof(h.nonce))));
        check_url(h.location, sizeof(h.location), 1);
        CHECK(h.retry_after_s == -1 || (h.retry_after_s >= 0 && h.retry_after_s <= 86400));
        check_printable(h.content_type, sizeof(h.content_type));
        for (const char *c = h.content_type; *c; c++)
            CHECK(!(*c >= 'A' && *c <= 'Z'));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > ACME_MAX_JSON + 2)
        return 0;
    size_t len = size - 1;
    char *in = malloc(len ? len : 1);
    CHECK(in);
    memcpy(in, data + 1, len);
    switch (data[0] % 6) {
    case 0:
        directory(in, len);
        break;
    case 1:
        order(in, len);
        break;
    case 2:
        authz(in, len);
        break;
    case 3:
    case 4:
        status_and_problem(in, len, data[0] % 6);
        break;
    default:
        headers(in, len);
        break;
    }
    free(in);
    return 0;
}
