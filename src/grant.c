/*
 * grant.c - see grant.h.
 *
 * Both parsers work on a jansson document that jws.c already bounded (token
 * <= 8 KiB, depth <= 32) and fill a grant_t whose every string is a copy, so
 * the document can be freed right after. A refusal disposes whatever was
 * filled: callers never see half a grant.
 *
 * v1 authorization_details are read in two passes: the first only counts
 * (entries, Mercure details, topic matchers) and refuses past the limits
 * before any per-matcher work or allocation sized by the token; the second
 * validates and copies. Matcher arrays are allocated once at the counted
 * size: a detail granting both actions puts each matcher in both lists, and
 * neither list can exceed the total.
 */
#include "grant.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void grant_dispose(grant_t *g)
{
    for (size_t i = 0; i < g->num_publish; i++)
        free(g->publish[i].text);
    for (size_t i = 0; i < g->num_subscribe; i++)
        free(g->subscribe[i].text);
    for (size_t i = 0; i < g->num_payloads; i++)
        free(g->payloads[i]);
    free(g->publish);
    free(g->subscribe);
    free(g->payloads);
    free(g->payload);
    free(g->iss);
    free(g->sub);
    memset(g, 0, sizeof(*g));
}

/* Appends a copy of s to v (room reserved by the caller). */
static int push_matcher(grant_matcher_t *v, size_t *n, const char *s, size_t len, grant_match_type_t type,
                        const char *payload)
{
    char *t = malloc(len + 1);
    if (!t)
        return -1;
    memcpy(t, s, len);
    t[len] = 0;
    v[*n] = (grant_matcher_t){t, len, type, len == 1 && s[0] == '*', payload};
    ++*n;
    return 0;
}

/* ---- classic (draft-07) -------------------------------------------------------- */

/* An array of strings into matchers; -1 if it is not one. Reasons are the
 * ones src/jwt.c gave, so logs and tests read the same. */
static int take_selectors(const json_t *arr, grant_matcher_t **out, size_t *n_out, const char **why)
{
    if (!json_is_array(arr)) {
        *why = "mercure.publish/subscribe is not an array";
        return -1;
    }
    size_t n = json_array_size(arr);
    if (n > GRANT_MAX_MATCHERS) {
        *why = "too many selectors in a mercure claim";
        return -1;
    }
    if (!(*out = calloc(n ? n : 1, sizeof(**out)))) {
        *why = "out of memory";
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(arr, i);
        const char *v = json_string_value(s);
        size_t len = json_string_length(s);
        if (!json_is_string(s) || len == 0 || memchr(v, 0, len)) {
            *why = "a mercure selector is not a non-empty string";
            return -1;
        }
        if (push_matcher(*out, n_out, v, len, GRANT_MATCH_TEMPLATE_OR_EXACT, NULL)) {
            *why = "out of memory";
            return -1;
        }
    }
    return 0;
}

static int read_mercure_claim(const json_t *m, grant_t *out, const char **why)
{
    if (!json_is_object(m)) {
        *why = "the mercure claim is not an object";
        return -1;
    }
    const json_t *p = json_object_get(m, "publish");
    if (p && !json_is_null(p)) {
        out->has_publish = 1;
        if (take_selectors(p, &out->publish, &out->num_publish, why))
            return -1;
    }
    const json_t *s = json_object_get(m, "subscribe");
    if (s && !json_is_null(s)) {
        out->has_subscribe = 1;
        if (take_selectors(s, &out->subscribe, &out->num_subscribe, why))
            return -1;
    }
    const json_t *pl = json_object_get(m, "payload");
    if (pl && !(out->payload = json_dumps(pl, JSON_COMPACT | JSON_ENCODE_ANY))) {
        *why = "out of memory";
        return -1;
    }
    return 0;
}

/* A NumericDate (RFC 7519, 2): a JSON number; fractions are truncated.
 * *present tells whether the claim was there. */
static int read_time(const json_t *claims, const char *name, int64_t *out, int *present, const char **why)
{
    const json_t *t = json_object_get(claims, name);
    *out = 0;
    *present = t != NULL;
    if (!t)
        return 0;
    if (!json_is_number(t)) {
        *why = "exp or nbf is not a number";
        return -1;
    }
    double d = json_number_value(t);
    if (!(d > -1e15 && d < 1e15)) {
        *why = "exp or nbf is out of range";
        return -1;
    }
    *out = (int64_t)d;
    return 0;
}

int grant_try_from_classic(const json_t *claims, int64_t now, grant_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    out->dialect = GRANT_CLASSIC;
    if (!json_is_object(claims)) {
        *why = "the payload is not a JSON object";
        return GRANT_INVALID_TOKEN;
    }
    int64_t nbf = 0;
    int has_exp, has_nbf;
    const json_t *m = json_object_get(claims, "mercure");
    if (read_time(claims, "exp", &out->exp, &has_exp, why) || read_time(claims, "nbf", &nbf, &has_nbf, why)) {
        /* why set */
    } else if (has_exp && out->exp <= now) {
        *why = "expired (exp is in the past)";
    } else if (has_nbf && nbf > now) {
        *why = "not valid yet (nbf is in the future)";
    } else if (m && read_mercure_claim(m, out, why)) {
        /* why set */
    } else {
        return 0;
    }
    grant_dispose(out);
    return GRANT_INVALID_TOKEN;
}

/* ---- strings (draft-08, "Terminology") ------------------------------------------- */

/* Unicode general category Cf (Unicode 15.0), as inclusive ranges. */
static const uint32_t cf_ranges[][2] = {
    {0x00AD, 0x00AD},   {0x0600, 0x0605},   {0x061C, 0x061C},   {0x06DD, 0x06DD},   {0x070F, 0x070F},
    {0x0890, 0x0891},   {0x08E2, 0x08E2},   {0x180E, 0x180E},   {0x200B, 0x200F},   {0x202A, 0x202E},
    {0x2060, 0x2064},   {0x2066, 0x206F},   {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFB},   {0x110BD, 0x110BD},
    {0x110CD, 0x110CD}, {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0001, 0xE0001},
    {0xE0020, 0xE007F},
};

static int is_format_char(uint32_t cp)
{
    for (size_t i = 0; i < sizeof(cf_ranges) / sizeof(cf_ranges[0]); i++) {
        if (cp >= cf_ranges[i][0] && cp <= cf_ranges[i][1])
            return 1;
    }
    return 0;
}

/* Decodes one UTF-8 sequence at s (n bytes left): its length, or 0 if it is
 * malformed, overlong, a surrogate or past U+10FFFF. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (len == 0 || len > n || s[0] > 0xF4)
        return 0;
    uint32_t v = s[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

int grant_string_ok(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_next(p + i, len - i, &cp);
        if (n == 0 || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || is_format_char(cp))
            return 0;
        i += n;
    }
    return 1;
}

/* ---- v1 (draft-08) ------------------------------------------------------------------ */

static int str_eq(const json_t *s, const char *lit)
{
    size_t n = strlen(lit);
    return json_is_string(s) && json_string_length(s) == n && memcmp(json_string_value(s), lit, n) == 0;
}

/* RFC 9068 2.1 / RFC 7515 4.1.9: "at+jwt", or the same with the
 * "application/" prefix, compared case-insensitively. */
static int typ_ok(const char *typ)
{
    if (!typ)
        return 0;
    if (!strncasecmp(typ, "application/", 12))
        typ += 12;
    return !strcasecmp(typ, "at+jwt");
}

static int iss_ok(const json_t *iss, const grant_v1_params_t *p)
{
    for (size_t i = 0; i < p->num_issuers; i++) {
        if (p->issuers[i] && str_eq(iss, p->issuers[i]))
            return 1;
    }
    return 0;
}

/* 1 if aud holds the audience, 0 if not, -1 if aud is not a string or an
 * array of strings (RFC 7519 4.1.3). */
static int aud_has(const json_t *aud, const char *audience)
{
    if (json_is_string(aud))
        return audience && str_eq(aud, audience);
    if (!json_is_array(aud))
        return -1;
    int found = 0;
    for (size_t i = 0; i < json_array_size(aud); i++) {
        const json_t *a = json_array_get(aud, i);
        if (!json_is_string(a))
            return -1;
        found |= audience && str_eq(a, audience);
    }
    return found;
}

static char *dup_string(const json_t *s) { return strndup(json_string_value(s), json_string_length(s)); }

/* The registered claims: typ, iss, aud, exp, nbf, sub. */
static int check_registered(const char *typ, const json_t *c, const grant_v1_params_t *p, int64_t now,
                            grant_t *out, const char **why)
{
    const json_t *iss = json_object_get(c, "iss"), *sub = json_object_get(c, "sub");
    int64_t nbf;
    int has_exp, has_nbf;
    if (!typ_ok(typ))
        *why = "typ is not at+jwt (an RFC 9068 access token is required)";
    else if (!json_is_string(iss))
        *why = "iss is missing or not a string";
    else if (!iss_ok(iss, p))
        *why = "iss is not a trusted issuer (for this key)";
    else if (aud_has(json_object_get(c, "aud"), p->audience) != 1)
        *why = json_object_get(c, "aud") ? "aud does not name this hub (its resource identifier)"
                                         : "aud is missing";
    else if (read_time(c, "exp", &out->exp, &has_exp, why) || read_time(c, "nbf", &nbf, &has_nbf, why))
        ; /* why set */
    else if (!has_exp)
        *why = "exp is missing";
    else if (out->exp <= now - p->leeway_s)
        *why = "expired (exp is in the past)";
    else if (has_nbf && nbf > now + p->leeway_s)
        *why = "not valid yet (nbf is in the future)";
    else if (sub && !json_is_string(sub))
        *why = "sub is not a string";
    else if (!(out->iss = dup_string(iss)) || (sub && !(out->sub = dup_string(sub))))
        *why = "out of memory";
    else
        return 0;
    return -1;
}

/* First pass: the counts that bound the second. */
static int count_details(const json_t *ad, size_t *details, size_t *matchers, const char **why)
{
    *details = *matchers = 0;
    if (!json_is_array(ad)) {
        *why = "authorization_details is not an array";
        return -1;
    }
    if (json_array_size(ad) > GRANT_MAX_ENTRIES) {
        *why = "too many authorization_details entries";
        return -1;
    }
    for (size_t i = 0; i < json_array_size(ad); i++) {
        const json_t *e = json_array_get(ad, i);
        if (!json_is_object(e) || !json_is_string(json_object_get(e, "type"))) {
            *why = "an authorization_details entry is not an object with a string type (RFC 9396)";
            return -1;
        }
        if (!str_eq(json_object_get(e, "type"), GRANT_DETAIL_TYPE))
            continue; /* another API's detail: not ours to judge */
        ++*details;
        *matchers += json_array_size(json_object_get(e, "topics")); /* 0 if not an array */
    }
    if (*details > GRANT_MAX_DETAILS) {
        *why = "too many Mercure authorization details";
        return -1;
    }
    if (*matchers > GRANT_MAX_MATCHERS) {
        *why = "too many topic matchers in authorization_details";
        return -1;
    }
    return 0;
}

/* actions: a non-empty array of strings; unknown actions grant nothing. */
static int read_actions(const json_t *a, int *pub, int *sub, const char **why)
{
    *pub = *sub = 0;
    if (!json_is_array(a) || json_array_size(a) == 0) {
        *why = "a Mercure authorization detail has no actions (a non-empty array)";
        return -1;
    }
    for (size_t i = 0; i < json_array_size(a); i++) {
        const json_t *s = json_array_get(a, i);
        if (!json_is_string(s)) {
            *why = "an action is not a string";
            return -1;
        }
        *pub |= str_eq(s, "publish");
        *sub |= str_eq(s, "subscribe");
    }
    return 0;
}

/* One {match, match_type} object: its text and type, or -1 with *why. */
static int read_matcher(const json_t *t, const grant_v1_params_t *p, const char **text, size_t *len,
                        grant_match_type_t *type, const char **why)
{
    const json_t *m = json_object_get(t, "match"), *mt = json_object_get(t, "match_type");
    if (!json_is_object(t)) {
        *why = "a topic matcher is not an object";
        return -1;
    }
    if (!json_is_string(m) || json_string_length(m) == 0) {
        *why = "a topic matcher has no match (a non-empty string)";
        return -1;
    }
    *text = json_string_value(m);
    *len = json_string_length(m);
    if (*len > GRANT_MAX_MATCHER_LEN) {
        *why = "a topic matcher is too long";
        return -1;
    }
    if (!grant_string_ok(*text, *len)) {
        *why = "a topic matcher holds a control or format character";
        return -1;
    }
    if (!mt || str_eq(mt, "exact")) {
        *type = GRANT_MATCH_EXACT;
    } else if (str_eq(mt, "urlpattern")) {
        *type = GRANT_MATCH_URLPATTERN;
    } else {
        *why = json_is_string(mt) ? "unsupported match_type (want exact or urlpattern)"
                                  : "match_type is not a string";
        return -1;
    }
    /* "*" is recognized before the type: never compiled as a pattern. */
    int wildcard = *len == 1 && (*text)[0] == '*';
    if (*type == GRANT_MATCH_URLPATTERN && !wildcard && p->check_urlpattern &&
        p->check_urlpattern(p->check_ctx, *text, *len, why))
        return -1;
    return 0;
}

static int read_detail(const json_t *d, const grant_v1_params_t *p, grant_t *out, const char **why)
{
    int pub, sub;
    const json_t *topics = json_object_get(d, "topics"), *payload = json_object_get(d, "payload");
    if (read_actions(json_object_get(d, "actions"), &pub, &sub, why))
        return -1;
    if (!json_is_array(topics) || json_array_size(topics) == 0) {
        *why = "a Mercure authorization detail has no topics (a non-empty array)";
        return -1;
    }
    if (payload && !json_is_object(payload)) {
        *why = "an authorization detail payload is not a JSON object";
        return -1;
    }
    const char *pl = NULL;
    if (payload && sub) {
        char *s = json_dumps(payload, JSON_COMPACT);
        if (!s) {
            *why = "out of memory";
            return -1;
        }
        out->payloads[out->num_payloads++] = s;
        pl = s;
    }
    out->has_publish |= pub;
    out->has_subscribe |= sub;
    for (size_t i = 0; i < json_array_size(topics); i++) {
        const char *text;
        size_t len;
        grant_match_type_t type;
        if (read_matcher(json_array_get(topics, i), p, &text, &len, &type, why))
            return -1;
        if ((pub && push_matcher(out->publish, &out->num_publish, text, len, type, NULL)) ||
            (sub && push_matcher(out->subscribe, &out->num_subscribe, text, len, type, pl))) {
            *why = "out of memory";
            return -1;
        }
    }
    return 0;
}

static int read_details(const json_t *ad, const grant_v1_params_t *p, grant_t *out, const char **why)
{
    size_t details, matchers;
    if (count_details(ad, &details, &matchers, why))
        return -1;
    out->publish = calloc(matchers ? matchers : 1, sizeof(*out->publish));
    out->subscribe = calloc(matchers ? matchers : 1, sizeof(*out->subscribe));
    out->payloads = calloc(details ? details : 1, sizeof(*out->payloads));
    if (!out->publish || !out->subscribe || !out->payloads) {
        *why = "out of memory";
        return -1;
    }
    for (size_t i = 0; i < json_array_size(ad); i++) {
        const json_t *d = json_array_get(ad, i);
        if (str_eq(json_object_get(d, "type"), GRANT_DETAIL_TYPE) && read_detail(d, p, out, why))
            return -1;
    }
    return 0;
}

int grant_try_from_v1(const char *typ, const json_t *claims, const grant_v1_params_t *params, int64_t now,
                      grant_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    out->dialect = GRANT_V1;
    if (!json_is_object(claims)) {
        *why = "the payload is not a JSON object";
        return GRANT_INVALID_TOKEN;
    }
    const json_t *ad = json_object_get(claims, "authorization_details");
    if (check_registered(typ, claims, params, now, out, why) || (ad && read_details(ad, params, out, why))) {
        grant_dispose(out);
        return GRANT_INVALID_TOKEN;
    }
    return 0;
}
