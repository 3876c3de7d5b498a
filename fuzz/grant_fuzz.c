/*
 * grant_fuzz.c - libFuzzer target for grant_try_from_classic() and
 * grant_try_from_v1(): the input is a claims JSON text, read by both.
 *
 * Properties (abort() on any violation):
 *   - a refusal has a reason and leaves the grant empty;
 *   - classic: at most 64 selectors per array, each a non-empty string with
 *     no NUL whose len is its strlen, wildcard iff "*", no payload pointers;
 *     mercure.payload, if any, is JSON that parses back;
 *   - v1: iss is one of the trusted issuers, exp is in the future, at most
 *     64 matchers per list, each non-empty, at most 2048 bytes, passing
 *     grant_string_ok, typed exact or urlpattern, wildcard iff "*"; publish
 *     matchers carry no payload, subscribe payloads point into the grant's
 *     own payloads and parse as objects; has_* agree with the lists;
 *   - v1 with a typ other than at+jwt is always refused;
 *   - while src/jwt.c exists: the classic verdict, reason and contents equal
 *     jwt_try_verify's on the same claims (differential).
 */
#include "fuzz.h"
#include "grant.h"
#include "jws.h"

#if __has_include("jwt.h")
#include "jwt.h"
#define DIFFERENTIAL 1
#endif

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1700000000

static const char *const issuers[] = {"https://a.example", "https://b.example"};

static void check_matchers(const grant_matcher_t *m, size_t n, int v1)
{
    CHECK(n <= GRANT_MAX_MATCHERS);
    for (size_t i = 0; i < n; i++) {
        CHECK(m[i].text && m[i].len > 0 && strlen(m[i].text) == m[i].len);
        CHECK(m[i].wildcard == (m[i].len == 1 && m[i].text[0] == '*'));
        if (v1) {
            CHECK(m[i].len <= GRANT_MAX_MATCHER_LEN && grant_string_ok(m[i].text, m[i].len));
            CHECK(m[i].type == GRANT_MATCH_EXACT || m[i].type == GRANT_MATCH_URLPATTERN);
        } else {
            CHECK(m[i].type == GRANT_MATCH_TEMPLATE_OR_EXACT && !m[i].payload);
        }
    }
}

static void check_empty(const grant_t *g)
{
    CHECK(!g->publish && !g->subscribe && !g->payload && !g->payloads && !g->iss && !g->sub);
    CHECK(!g->num_publish && !g->num_subscribe && !g->num_payloads);
}

static void check_classic(const json_t *claims)
{
    grant_t g;
    const char *why = NULL;
    if (grant_try_from_classic(claims, NOW, &g, &why)) {
        CHECK(why);
        check_empty(&g);
        return;
    }
    CHECK(g.dialect == GRANT_CLASSIC && (g.exp == 0 || g.exp > NOW));
    check_matchers(g.publish, g.num_publish, 0);
    check_matchers(g.subscribe, g.num_subscribe, 0);
    CHECK(g.has_publish || g.num_publish == 0);
    CHECK(g.has_subscribe || g.num_subscribe == 0);
    if (g.payload) {
        json_t *p = json_loads(g.payload, JSON_DECODE_ANY, NULL);
        CHECK(p);
        json_decref(p);
    }
    grant_dispose(&g);
}

static int owned_payload(const grant_t *g, const char *p)
{
    for (size_t i = 0; i < g->num_payloads; i++) {
        if (g->payloads[i] == p)
            return 1;
    }
    return 0;
}

static void check_v1(const json_t *claims)
{
    grant_v1_params_t p = {issuers, 2, "https://hub.example", 0, NULL, NULL};
    grant_t g;
    const char *why = NULL;
    CHECK(grant_try_from_v1("JWT", claims, &p, NOW, &g, &why) == GRANT_INVALID_TOKEN);
    check_empty(&g);
    if (grant_try_from_v1("at+jwt", claims, &p, NOW, &g, &why)) {
        CHECK(why);
        check_empty(&g);
        return;
    }
    CHECK(g.dialect == GRANT_V1 && g.exp > NOW && g.payload == NULL);
    CHECK(g.iss && (!strcmp(g.iss, issuers[0]) || !strcmp(g.iss, issuers[1])));
    check_matchers(g.publish, g.num_publish, 1);
    check_matchers(g.subscribe, g.num_subscribe, 1);
    CHECK(g.has_publish == (g.num_publish > 0) && g.has_subscribe == (g.num_subscribe > 0));
    CHECK(g.num_payloads <= GRANT_MAX_DETAILS);
    for (size_t i = 0; i < g.num_publish; i++)
        CHECK(g.publish[i].payload == NULL);
    for (size_t i = 0; i < g.num_subscribe; i++) {
        if (!g.subscribe[i].payload)
            continue;
        CHECK(owned_payload(&g, g.subscribe[i].payload));
        json_t *o = json_loads(g.subscribe[i].payload, 0, NULL);
        CHECK(json_is_object(o));
        json_decref(o);
    }
    grant_dispose(&g);
}

#ifdef DIFFERENTIAL
/* The claims text (parsed fine by jws) through src/jwt.c and through
 * jws + grant: same verdict, same reason, same contents. */
static void differential(const char *text, size_t len, const json_t *claims)
{
    static jwt_key_t *key;
    const char *why_old = NULL, *why_new = NULL;
    if (!key)
        CHECK((key = jwt_key_new(JWT_HS256, "k", 1, &why_old)));
    if (memchr(text, 0, len))
        return; /* jwt_sign_hs takes a C string */
    char *s = strndup(text, len);
    char *tok = jwt_sign_hs(JWT_HS256, "k", 1, s);
    CHECK(s && tok);
    jwt_claims_t old;
    int rc_old = jwt_try_verify(key, tok, strlen(tok), NOW, &old, &why_old);
    grant_t g;
    int rc_new = json_is_object(claims) ? grant_try_from_classic(claims, NOW, &g, &why_new) : -1;
    if (!json_is_object(claims))
        why_new = "the payload is not a JSON object";
    if (strlen(tok) > 8192) { /* jwt.c's token cap, which jws shares: not a claims matter */
        CHECK(rc_old == -1);
        if (rc_new == 0)
            grant_dispose(&g);
        goto out;
    }
    CHECK((rc_old == 0) == (rc_new == 0));
    if (rc_old) {
        CHECK(!strcmp(why_old, why_new));
        goto out;
    }
    CHECK(old.exp == g.exp && old.has_publish == g.has_publish && old.has_subscribe == g.has_subscribe);
    CHECK(old.num_publish == g.num_publish && old.num_subscribe == g.num_subscribe);
    for (size_t i = 0; i < g.num_publish; i++)
        CHECK(!strcmp(old.publish[i], g.publish[i].text));
    for (size_t i = 0; i < g.num_subscribe; i++)
        CHECK(!strcmp(old.subscribe[i], g.subscribe[i].text));
    CHECK((old.payload == NULL) == (g.payload == NULL) && (!g.payload || !strcmp(old.payload, g.payload)));
    jwt_claims_dispose(&old);
    grant_dispose(&g);
out:
    free(tok);
    free(s);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    char *in = malloc(size ? size : 1);
    CHECK(in);
    memcpy(in, data, size);
    json_t *claims = jws_json_try_parse(in, size, JWS_MAX_JSON_DEPTH);
    if (claims) {
        check_classic(claims);
        check_v1(claims);
#ifdef DIFFERENTIAL
        differential(in, size, claims);
#endif
    }
    json_decref(claims);
    free(in);
    return 0;
}
