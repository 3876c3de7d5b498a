/*
 * grant_test.c - unit tests of src/grant.c.
 *
 * Classic (draft-07): every rule src/jwt.c applies, and a differential run
 * against src/jwt.c itself (still in the tree until the auth rewrite lands):
 * the same claims signed with jwt_sign_hs and verified by jwt_try_verify, or
 * read by jws + grant_try_from_classic, must give the same verdict, reason,
 * exp, selectors and payload.
 *
 * v1 (draft-08): every registered-claim check (typ, iss, aud, exp, nbf,
 * sub) and every authorization_details error case, with the rule that one
 * bad Mercure entry invalidates the token; matcher types, the wildcard,
 * payload binding, limits; the UTF-8 / control / format character check.
 */
#include "../../src/grant.c"

#include "jws.h"
#include "test.h"

/* The differential needs src/jwt.c, which goes away when auth.c moves to
 * jws + grant; the test then compiles out rather than breaking the build. */
#if __has_include("jwt.h")
#include "jwt.h"
#define DIFFERENTIAL 1
#endif

#define NOW 1700000000

static json_t *J(const char *s)
{
    json_t *j = jws_json_try_parse(s, strlen(s), JWS_MAX_JSON_DEPTH);
    if (!j)
        TEST_FAIL_AT("test JSON does not parse: %s", s);
    return j;
}

static int classic(const char *claims, int64_t now, grant_t *g, const char **why)
{
    json_t *j = J(claims);
    int rc = grant_try_from_classic(j, now, g, why);
    json_decref(j);
    return rc;
}

/* ---- classic ----------------------------------------------------------------------- */

static void test_classic_claims(void)
{
    grant_t g;
    const char *why = NULL;
    ASSERT_EQ(classic("{\"exp\":2000,\"nbf\":1000,\"mercure\":{\"publish\":[\"a\",\"*\"],\"subscribe\":[],"
                      "\"payload\":{\"u\":1}}}",
                      1500, &g, &why),
              0);
    ASSERT_EQ(g.dialect, GRANT_CLASSIC);
    ASSERT_EQ(g.exp, 2000);
    ASSERT(g.has_publish && g.has_subscribe);
    ASSERT_UEQ(g.num_publish, 2);
    ASSERT_UEQ(g.num_subscribe, 0);
    ASSERT_STR_EQ(g.publish[0].text, "a");
    ASSERT_UEQ(g.publish[0].len, 1);
    ASSERT_EQ(g.publish[0].type, GRANT_MATCH_TEMPLATE_OR_EXACT);
    ASSERT(!g.publish[0].wildcard && g.publish[1].wildcard);
    ASSERT(g.publish[0].payload == NULL);
    ASSERT_STR_EQ(g.payload, "{\"u\":1}");
    ASSERT(g.iss == NULL && g.sub == NULL);
    grant_dispose(&g);
    ASSERT(g.publish == NULL && g.num_publish == 0);
    grant_dispose(&g); /* twice is harmless */

    ASSERT_EQ(classic("{\"exp\":2000}", 1999, &g, &why), 0);
    grant_dispose(&g);
    ASSERT_EQ(classic("{\"exp\":2000}", 2000, &g, &why), GRANT_INVALID_TOKEN); /* exp is exclusive */
    ASSERT_STR_EQ(why, "expired (exp is in the past)");
    ASSERT_EQ(classic("{\"nbf\":1000}", 999, &g, &why), GRANT_INVALID_TOKEN);
    ASSERT_STR_EQ(why, "not valid yet (nbf is in the future)");
    ASSERT_EQ(classic("{\"nbf\":1000}", 1000, &g, &why), 0);
    grant_dispose(&g);
    /* No exp, no mercure claim: valid, grants nothing, exp 0. */
    ASSERT_EQ(classic("{}", NOW, &g, &why), 0);
    ASSERT(!g.has_publish && !g.has_subscribe && g.exp == 0 && g.payload == NULL);
    grant_dispose(&g);
    /* null means absent; a fractional exp is truncated. */
    ASSERT_EQ(
        classic("{\"exp\":2000.9,\"mercure\":{\"publish\":null,\"subscribe\":[\"x\"]}}", 1000, &g, &why), 0);
    ASSERT(!g.has_publish && g.has_subscribe && g.exp == 2000);
    grant_dispose(&g);
    /* payload may be any JSON, even a scalar or null. */
    ASSERT_EQ(classic("{\"mercure\":{\"payload\":null}}", NOW, &g, &why), 0);
    ASSERT_STR_EQ(g.payload, "null");
    grant_dispose(&g);
    ASSERT_EQ(classic("{\"mercure\":{\"payload\":\"s\"}}", NOW, &g, &why), 0);
    ASSERT_STR_EQ(g.payload, "\"s\"");
    grant_dispose(&g);
}

static void test_classic_refusals(void)
{
    struct {
        const char *claims, *why;
    } bad[] = {
        {"{\"exp\":\"x\"}", "exp or nbf is not a number"},
        {"{\"nbf\":true}", "exp or nbf is not a number"},
        {"{\"exp\":1e16}", "exp or nbf is out of range"},
        {"{\"exp\":-1e16}", "exp or nbf is out of range"},
        {"{\"mercure\":1}", "the mercure claim is not an object"},
        {"{\"mercure\":[]}", "the mercure claim is not an object"},
        {"{\"mercure\":{\"publish\":\"*\"}}", "mercure.publish/subscribe is not an array"},
        {"{\"mercure\":{\"subscribe\":5}}", "mercure.publish/subscribe is not an array"},
        {"{\"mercure\":{\"publish\":[1]}}", "a mercure selector is not a non-empty string"},
        {"{\"mercure\":{\"subscribe\":[\"\"]}}", "a mercure selector is not a non-empty string"},
        {"{\"mercure\":{\"publish\":[\"a\",null]}}", "a mercure selector is not a non-empty string"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        grant_t g;
        const char *why = NULL;
        int rc = classic(bad[i].claims, NOW, &g, &why);
        if (rc != GRANT_INVALID_TOKEN || strcmp(why, bad[i].why))
            TEST_FAIL_AT("%s: rc %d \"%s\", want \"%s\"", bad[i].claims, rc, why, bad[i].why);
        ASSERT(g.publish == NULL && g.subscribe == NULL && g.payload == NULL);
    }
    /* 64 selectors are fine, 65 are not. */
    char buf[1024];
    for (int n = 64; n <= 65; n++) {
        size_t l = (size_t)snprintf(buf, sizeof(buf), "{\"mercure\":{\"publish\":[");
        for (int i = 0; i < n; i++)
            l += (size_t)snprintf(buf + l, sizeof(buf) - l, "%s\"t%d\"", i ? "," : "", i);
        snprintf(buf + l, sizeof(buf) - l, "]}}");
        grant_t g;
        const char *why = NULL;
        ASSERT_EQ(classic(buf, NOW, &g, &why), n == 64 ? 0 : GRANT_INVALID_TOKEN);
        if (n == 64)
            ASSERT_STR_EQ(g.publish[63].text, "t63");
        grant_dispose(&g);
    }
    /* Not an object at all (a caller passing something else). */
    json_t *arr = json_array();
    grant_t g;
    const char *why;
    ASSERT_EQ(grant_try_from_classic(arr, NOW, &g, &why), GRANT_INVALID_TOKEN);
    json_decref(arr);
}

#ifdef DIFFERENTIAL
/* The same verdict as src/jwt.c for each claims text. */
static void differential(const char *claims, int64_t now)
{
    static const char secret[] = "differential";
    jwt_key_t *jk = NULL;
    const char *why_old = NULL, *why_new = NULL;
    jk = jwt_key_new(JWT_HS256, secret, strlen(secret), &why_old);
    char *tok = jwt_sign_hs(JWT_HS256, secret, strlen(secret), claims);
    jwt_claims_t old;
    int rc_old = jwt_try_verify(jk, tok, strlen(tok), now, &old, &why_old);

    jws_keyset_t *ks = jws_keyset_new();
    jws_verify_opts_t o = {JWS_ALG_BIT(JWS_HS256), 0};
    jws_verified_t v;
    grant_t g;
    if (jws_keyset_try_add(ks, jws_key_new_hmac(NULL, secret, strlen(secret), &why_new), &why_new))
        TEST_FAIL_AT("keyset");
    int rc_new = jws_try_verify(ks, tok, strlen(tok), &o, &v, &why_new);
    if (rc_new == 0) {
        rc_new = grant_try_from_classic(v.payload, now, &g, &why_new);
        jws_verified_dispose(&v);
    }
    if ((rc_old == 0) != (rc_new == 0) || (rc_old && strcmp(why_old, why_new))) {
        TEST_FAIL_AT("%s: jwt.c %d \"%s\", grant %d \"%s\"", claims, rc_old, rc_old ? why_old : "", rc_new,
                     rc_new ? why_new : "");
    } else if (rc_old == 0) {
        ASSERT_EQ(old.exp, g.exp);
        ASSERT_EQ(old.has_publish, g.has_publish);
        ASSERT_EQ(old.has_subscribe, g.has_subscribe);
        ASSERT_UEQ(old.num_publish, g.num_publish);
        ASSERT_UEQ(old.num_subscribe, g.num_subscribe);
        for (size_t i = 0; i < old.num_publish && i < g.num_publish; i++)
            ASSERT_STR_EQ(old.publish[i], g.publish[i].text);
        for (size_t i = 0; i < old.num_subscribe && i < g.num_subscribe; i++)
            ASSERT_STR_EQ(old.subscribe[i], g.subscribe[i].text);
        ASSERT((old.payload == NULL) == (g.payload == NULL));
        if (old.payload && g.payload)
            ASSERT_STR_EQ(old.payload, g.payload);
        jwt_claims_dispose(&old);
        grant_dispose(&g);
    }
    free(tok);
    jwt_key_free(jk);
    jws_keyset_unref(ks);
}

static void test_classic_same_as_jwt_c(void)
{
    static const char *const corpus[] = {
        "{}",
        "[]",
        "1",
        "{\"a\":1,\"a\":2}",
        "{\"exp\":1700000001}",
        "{\"exp\":1700000000}",
        "{\"exp\":1699999999.99}",
        "{\"exp\":\"1700000001\"}",
        "{\"exp\":null}",
        "{\"exp\":1e15}",
        "{\"exp\":1e300}",
        "{\"nbf\":1700000000}",
        "{\"nbf\":1700000001}",
        "{\"nbf\":-5,\"exp\":1800000000}",
        "{\"exp\":\"x\",\"mercure\":1}",
        "{\"exp\":1,\"mercure\":1}",
        "{\"mercure\":null}",
        "{\"mercure\":{}}",
        "{\"mercure\":{\"publish\":[]}}",
        "{\"mercure\":{\"publish\":[\"*\"],\"subscribe\":[\"https://ex.com/{id}\",\"urn:a\"]}}",
        "{\"mercure\":{\"publish\":[\"a\"],\"subscribe\":\"b\"}}",
        "{\"mercure\":{\"publish\":[\"\\u00e9t\\u00e9\",\"a\\nb\"]}}",
        "{\"mercure\":{\"payload\":{\"user\":\"https://ex.com/u/1\",\"groups\":[1,2,{\"x\":null}]}}}",
        "{\"mercure\":{\"payload\":[1,2.5,true,false,null,\"\\\"\"]}}",
        "{\"mercure\":{\"payload\":1.0}}",
        "{\"mercure\":{\"publish\":[\"a\"],\"extra\":{\"publish\":5}}}",
        "{\"iss\":\"x\",\"aud\":5,\"mercure\":{\"subscribe\":[\"*\"]}}",
    };
    for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++)
        differential(corpus[i], NOW);
    /* Selector counts around the limit. */
    char buf[1200];
    for (int n = 63; n <= 66; n++) {
        size_t l = (size_t)snprintf(buf, sizeof(buf), "{\"mercure\":{\"subscribe\":[");
        for (int i = 0; i < n; i++)
            l += (size_t)snprintf(buf + l, sizeof(buf) - l, "%s\"s%d\"", i ? "," : "", i);
        snprintf(buf + l, sizeof(buf) - l, "]}}");
        differential(buf, NOW);
    }
}
#endif

/* ---- v1 --------------------------------------------------------------------------------- */

#define ISS "https://issuer.example"
#define AUD "https://hub.example/.well-known/mercure"
#define TYPE "\"type\":\"" GRANT_DETAIL_TYPE "\""

static const char *const issuers[] = {"https://other.example", ISS};

static int v1p(const char *typ, const char *claims, const grant_v1_params_t *p, grant_t *g, const char **why)
{
    json_t *j = J(claims);
    int rc = grant_try_from_v1(typ, j, p, NOW, g, why);
    json_decref(j);
    if (rc && (g->publish || g->subscribe || g->payloads || g->iss || g->sub))
        TEST_FAIL_AT("a refused grant kept memory");
    return rc;
}

static int v1(const char *claims, grant_t *g, const char **why)
{
    grant_v1_params_t p = {issuers, 2, AUD, 0, NULL, NULL};
    return v1p("at+jwt", claims, &p, g, why);
}

/* Registered claims with `ad` as the authorization_details value ("" = none). */
static char *with_details(const char *ad)
{
    static char buf[16384];
    snprintf(buf, sizeof(buf), "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%d,\"sub\":\"u1\"%s%s}",
             NOW + 60, ad[0] ? ",\"authorization_details\":" : "", ad);
    return buf;
}

static void test_v1_valid(void)
{
    grant_t g;
    const char *why = NULL;
    const char *ad =
        "[{" TYPE ",\"actions\":[\"subscribe\"],\"topics\":[{\"match\":\"https://ex.com/a\"}],"
        "\"payload\":{\"p\":1}},"
        "{\"type\":\"https://other.api/detail\",\"actions\":5,\"topics\":\"whatever\"},"
        "{" TYPE ",\"actions\":[\"publish\",\"subscribe\",\"future-action\"],"
        "\"topics\":[{\"match\":\"https://ex.com/b/:id\",\"match_type\":\"urlpattern\"},"
        "{\"match\":\"*\"}]},"
        "{" TYPE ",\"actions\":[\"subscribe\"],\"topics\":[{\"match\":\"urn:c\",\"match_type\":\"exact\"}],"
        "\"payload\":{\"p\":3,\"nested\":[true]}},"
        "{" TYPE ",\"actions\":[\"publish\"],\"topics\":[{\"match\":\"urn:d\"}],\"payload\":{\"unused\":1}}]";
    if (v1(with_details(ad), &g, &why) != 0) {
        TEST_FAIL_AT("refused: %s", why);
        return;
    }
    ASSERT_EQ(g.dialect, GRANT_V1);
    ASSERT_EQ(g.exp, NOW + 60);
    ASSERT_STR_EQ(g.iss, ISS);
    ASSERT_STR_EQ(g.sub, "u1");
    ASSERT(g.has_publish && g.has_subscribe && g.payload == NULL);
    ASSERT_UEQ(g.num_publish, 3);
    ASSERT_STR_EQ(g.publish[0].text, "https://ex.com/b/:id");
    ASSERT_EQ(g.publish[0].type, GRANT_MATCH_URLPATTERN);
    ASSERT(g.publish[1].wildcard && g.publish[1].type == GRANT_MATCH_EXACT);
    ASSERT_STR_EQ(g.publish[2].text, "urn:d");
    for (size_t i = 0; i < g.num_publish; i++)
        ASSERT(g.publish[i].payload == NULL);
    /* Subscribe matchers in token order, each with its detail's payload. */
    ASSERT_UEQ(g.num_subscribe, 4);
    ASSERT_STR_EQ(g.subscribe[0].text, "https://ex.com/a");
    ASSERT_EQ(g.subscribe[0].type, GRANT_MATCH_EXACT);
    ASSERT_STR_EQ(g.subscribe[0].payload, "{\"p\":1}");
    ASSERT(g.subscribe[1].payload == NULL && g.subscribe[2].payload == NULL);
    ASSERT(g.subscribe[2].wildcard);
    ASSERT_STR_EQ(g.subscribe[3].payload, "{\"p\":3,\"nested\":[true]}");
    ASSERT_UEQ(g.num_payloads, 2); /* the publish-only payload is not kept */
    grant_dispose(&g);

    /* No authorization_details: valid, grants nothing. */
    ASSERT_EQ(v1(with_details(""), &g, &why), 0);
    ASSERT(!g.has_publish && !g.has_subscribe && g.num_publish == 0 && g.num_subscribe == 0);
    grant_dispose(&g);
    /* Only other APIs' details, or only unknown actions: the same. */
    ASSERT_EQ(v1(with_details("[{\"type\":\"x\"}]"), &g, &why), 0);
    ASSERT(!g.has_publish && !g.has_subscribe);
    grant_dispose(&g);
    ASSERT_EQ(
        v1(with_details("[{" TYPE ",\"actions\":[\"read\"],\"topics\":[{\"match\":\"a\"}]}]"), &g, &why), 0);
    ASSERT(!g.has_publish && !g.has_subscribe && g.num_publish == 0 && g.num_subscribe == 0);
    grant_dispose(&g);
    ASSERT_EQ(v1(with_details("[]"), &g, &why), 0);
    grant_dispose(&g);
}

static void test_v1_registered_claims(void)
{
    grant_v1_params_t p = {issuers, 2, AUD, 0, NULL, NULL};
    char c[1024];
    grant_t g;
    const char *why = NULL;
    /* typ */
    const char *typ_ok_[] = {"at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"};
    const char *typ_bad[] = {NULL,          "JWT",    "", "at+jwt; charset=x", "application/jwt",
                             "text/at+jwt", "at+jwt2"};
    snprintf(c, sizeof(c), "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%d}", NOW + 1);
    for (size_t i = 0; i < 4; i++) {
        ASSERT_EQ(v1p(typ_ok_[i], c, &p, &g, &why), 0);
        grant_dispose(&g);
    }
    for (size_t i = 0; i < sizeof(typ_bad) / sizeof(typ_bad[0]); i++) {
        ASSERT_EQ(v1p(typ_bad[i], c, &p, &g, &why), GRANT_INVALID_TOKEN);
        ASSERT_STR_EQ(why, "typ is not at+jwt (an RFC 9068 access token is required)");
    }
    struct {
        const char *claims, *why;
    } bad[] = {
        {"{\"aud\":\"" AUD "\",\"exp\":%d}", "iss is missing or not a string"},
        {"{\"iss\":7,\"aud\":\"" AUD "\",\"exp\":%d}", "iss is missing or not a string"},
        {"{\"iss\":\"https://evil.example\",\"aud\":\"" AUD "\",\"exp\":%d}",
         "iss is not a trusted issuer (for this key)"},
        {"{\"iss\":\"https://issuer.example/\",\"aud\":\"" AUD "\",\"exp\":%d}",
         "iss is not a trusted issuer (for this key)"},
        {"{\"iss\":\"" ISS "\",\"exp\":%d}", "aud is missing"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"https://other-hub\",\"exp\":%d}",
         "aud does not name this hub (its resource identifier)"},
        {"{\"iss\":\"" ISS "\",\"aud\":[],\"exp\":%d}",
         "aud does not name this hub (its resource identifier)"},
        {"{\"iss\":\"" ISS "\",\"aud\":[\"a\",\"b\"],\"exp\":%d}",
         "aud does not name this hub (its resource identifier)"},
        {"{\"iss\":\"" ISS "\",\"aud\":[\"" AUD "\",5],\"exp\":%d}",
         "aud does not name this hub (its resource identifier)"},
        {"{\"iss\":\"" ISS "\",\"aud\":{\"a\":\"" AUD "\"},\"exp\":%d}",
         "aud does not name this hub (its resource identifier)"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"x\":%d}", "exp is missing"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":\"%d\"}", "exp or nbf is not a number"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%d,\"nbf\":[]}", "exp or nbf is not a number"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%d0000000}", "exp or nbf is out of range"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%d,\"sub\":5}", "sub is not a string"},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%d,\"authorization_details\":{}}",
         "authorization_details is not an array"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(c, sizeof(c), bad[i].claims, NOW + 60);
        int rc = v1p("at+jwt", c, &p, &g, &why);
        if (rc != GRANT_INVALID_TOKEN || strcmp(why, bad[i].why))
            TEST_FAIL_AT("%s: rc %d \"%s\", want \"%s\"", c, rc, why, bad[i].why);
    }
    /* aud as an array that holds the audience; the second trusted issuer. */
    snprintf(c, sizeof(c), "{\"iss\":\"" ISS "\",\"aud\":[\"x\",\"" AUD "\"],\"exp\":%d}", NOW + 1);
    ASSERT_EQ(v1p("at+jwt", c, &p, &g, &why), 0);
    grant_dispose(&g);
    /* exp is exclusive; nbf inclusive; leeway widens both. */
    snprintf(c, sizeof(c), "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%d}", NOW);
    ASSERT_EQ(v1p("at+jwt", c, &p, &g, &why), GRANT_INVALID_TOKEN);
    ASSERT_STR_EQ(why, "expired (exp is in the past)");
    p.leeway_s = 5;
    ASSERT_EQ(v1p("at+jwt", c, &p, &g, &why), 0);
    grant_dispose(&g);
    snprintf(c, sizeof(c), "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%d,\"nbf\":%d}", NOW + 60,
             NOW + 5);
    ASSERT_EQ(v1p("at+jwt", c, &p, &g, &why), 0);
    grant_dispose(&g);
    p.leeway_s = 0;
    ASSERT_EQ(v1p("at+jwt", c, &p, &g, &why), GRANT_INVALID_TOKEN);
    ASSERT_STR_EQ(why, "not valid yet (nbf is in the future)");
    snprintf(c, sizeof(c), "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%d,\"nbf\":%d}", NOW + 60, NOW);
    ASSERT_EQ(v1p("at+jwt", c, &p, &g, &why), 0);
    grant_dispose(&g);
    /* No trusted issuer, or no audience configured: nothing passes. */
    snprintf(c, sizeof(c), "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%d}", NOW + 60);
    grant_v1_params_t none = {issuers, 0, AUD, 0, NULL, NULL}, noaud = {issuers, 2, NULL, 0, NULL, NULL};
    ASSERT_EQ(v1p("at+jwt", c, &none, &g, &why), GRANT_INVALID_TOKEN);
    ASSERT_EQ(v1p("at+jwt", c, &noaud, &g, &why), GRANT_INVALID_TOKEN);
}

static int urlpattern_check(void *ctx, const char *pattern, size_t len, const char **why)
{
    ++*(int *)ctx;
    if (memchr(pattern, '(', len)) {
        *why = "the URL pattern does not compile";
        return -1;
    }
    return 0;
}

static void test_v1_details_refusals(void)
{
#define D(rest) "[{" TYPE "," rest "}]"
#define OKD "{" TYPE ",\"actions\":[\"publish\"],\"topics\":[{\"match\":\"urn:ok\"}]}"
    struct {
        const char *ad, *why;
    } bad[] = {
        {"5", "authorization_details is not an array"},
        {"[5]", "an authorization_details entry is not an object with a string type (RFC 9396)"},
        {"[{}]", "an authorization_details entry is not an object with a string type (RFC 9396)"},
        {"[{\"type\":5}]", "an authorization_details entry is not an object with a string type (RFC 9396)"},
        {"[" OKD ",null]", "an authorization_details entry is not an object with a string type (RFC 9396)"},
        {D("\"topics\":[{\"match\":\"a\"}]"),
         "a Mercure authorization detail has no actions (a non-empty array)"},
        {D("\"actions\":[],\"topics\":[{\"match\":\"a\"}]"),
         "a Mercure authorization detail has no actions (a non-empty array)"},
        {D("\"actions\":\"publish\",\"topics\":[{\"match\":\"a\"}]"),
         "a Mercure authorization detail has no actions (a non-empty array)"},
        {D("\"actions\":[\"publish\",7],\"topics\":[{\"match\":\"a\"}]"), "an action is not a string"},
        {D("\"actions\":[\"publish\"]"), "a Mercure authorization detail has no topics (a non-empty array)"},
        {D("\"actions\":[\"publish\"],\"topics\":[]"),
         "a Mercure authorization detail has no topics (a non-empty array)"},
        {D("\"actions\":[\"publish\"],\"topics\":{\"match\":\"a\"}"),
         "a Mercure authorization detail has no topics (a non-empty array)"},
        {D("\"actions\":[\"publish\"],\"topics\":[\"urn:legacy\"]"), "a topic matcher is not an object"},
        {D("\"actions\":[\"publish\"],\"topics\":[null]"), "a topic matcher is not an object"},
        {D("\"actions\":[\"publish\"],\"topics\":[{\"match_type\":\"exact\"}]"),
         "a topic matcher has no match (a non-empty string)"},
        {D("\"actions\":[\"publish\"],\"topics\":[{\"match\":\"\"}]"),
         "a topic matcher has no match (a non-empty string)"},
        {D("\"actions\":[\"publish\"],\"topics\":[{\"match\":5}]"),
         "a topic matcher has no match (a non-empty string)"},
        {D("\"actions\":[\"publish\"],\"topics\":[{\"match\":\"a\\u0001b\"}]"),
         "a topic matcher holds a control or format character"},
        {D("\"actions\":[\"publish\"],\"topics\":[{\"match\":\"a\\nb\"}]"),
         "a topic matcher holds a control or format character"},
        {D("\"actions\":[\"publish\"],\"topics\":[{\"match\":\"a\\u007fb\"}]"),
         "a topic matcher holds a control or format character"},
        {D("\"actions\":[\"publish\"],\"topics\":[{\"match\":\"a\\u0085b\"}]"),
         "a topic matcher holds a control or format character"},
        {D("\"actions\":[\"publish\"],\"topics\":[{\"match\":\"a\\u200bb\"}]"),
         "a topic matcher holds a control or format character"},
        {D("\"actions\":[\"publish\"],\"topics\":[{\"match\":\"\\ufeffa\"}]"),
         "a topic matcher holds a control or format character"},
        {D("\"actions\":[\"publish\"],\"topics\":[{\"match\":\"a\\udb40\\udc01\"}]"),
         "a topic matcher holds a control or format character"},
        {D("\"actions\":[\"publish\"],\"topics\":[{\"match\":\"a\",\"match_type\":\"regex\"}]"),
         "unsupported match_type (want exact or urlpattern)"},
        {D("\"actions\":[\"publish\"],\"topics\":[{\"match\":\"a\",\"match_type\":\"EXACT\"}]"),
         "unsupported match_type (want exact or urlpattern)"},
        {D("\"actions\":[\"publish\"],\"topics\":[{\"match\":\"a\",\"match_type\":\"\"}]"),
         "unsupported match_type (want exact or urlpattern)"},
        {D("\"actions\":[\"publish\"],\"topics\":[{\"match\":\"a\",\"match_type\":null}]"),
         "match_type is not a string"},
        {D("\"actions\":[\"publish\"],\"topics\":[{\"match\":\"a\",\"match_type\":[\"exact\"]}]"),
         "match_type is not a string"},
        {D("\"actions\":[\"subscribe\"],\"topics\":[{\"match\":\"a\"}],\"payload\":[1]"),
         "an authorization detail payload is not a JSON object"},
        {D("\"actions\":[\"subscribe\"],\"topics\":[{\"match\":\"a\"}],\"payload\":\"x\""),
         "an authorization detail payload is not a JSON object"},
        {D("\"actions\":[\"subscribe\"],\"topics\":[{\"match\":\"a\"}],\"payload\":null"),
         "an authorization detail payload is not a JSON object"},
        {D("\"actions\":[\"publish\"],\"topics\":[{\"match\":\"a\",\"match_type\":\"urlpattern\"}]}," OKD
           ",{" TYPE
           ",\"actions\":[\"publish\"],\"topics\":[{\"match\":\"(x\",\"match_type\":\"urlpattern\"}]"),
         "the URL pattern does not compile"},
    };
    grant_v1_params_t p = {issuers, 2, AUD, 0, urlpattern_check, NULL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int calls = 0;
        grant_t g;
        const char *why = NULL;
        p.check_ctx = &calls;
        /* The bad entry after a good one: the whole token is refused. */
        char ad[4096];
        if (bad[i].ad[0] == '[' && bad[i].ad[1] == '{')
            snprintf(ad, sizeof(ad), "[" OKD ",%s", bad[i].ad + 1);
        else
            snprintf(ad, sizeof(ad), "%s", bad[i].ad);
        int rc = v1p("at+jwt", with_details(ad), &p, &g, &why);
        if (rc != GRANT_INVALID_TOKEN || strcmp(why, bad[i].why))
            TEST_FAIL_AT("%s: rc %d \"%s\", want \"%s\"", ad, rc, why, bad[i].why);
        if (rc == 0)
            grant_dispose(&g);
    }
    /* The pattern check sees urlpattern matchers only, never "*". */
    int calls = 0;
    grant_t g;
    const char *why;
    p.check_ctx = &calls;
    ASSERT_EQ(
        v1p("at+jwt",
            with_details(
                D("\"actions\":[\"subscribe\"],\"topics\":[{\"match\":\"*\",\"match_type\":\"urlpattern\"},"
                  "{\"match\":\"/a/:b\",\"match_type\":\"urlpattern\"},{\"match\":\"(exact)\"}]")),
            &p, &g, &why),
        0);
    ASSERT_EQ(calls, 1);
    ASSERT(g.subscribe[0].wildcard && g.subscribe[0].type == GRANT_MATCH_URLPATTERN);
    grant_dispose(&g);
#undef D
#undef OKD
}

static void test_v1_limits(void)
{
    static char ad[14000];
    grant_t g;
    const char *why = NULL;
    /* Details: 16 fine, 17 refused. */
    for (int n = 16; n <= 17; n++) {
        size_t l = (size_t)snprintf(ad, sizeof(ad), "[");
        for (int i = 0; i < n; i++)
            l += (size_t)snprintf(ad + l, sizeof(ad) - l,
                                  "%s{" TYPE ",\"actions\":[\"publish\"],\"topics\":[{\"match\":\"t%d\"}]}",
                                  i ? "," : "", i);
        snprintf(ad + l, sizeof(ad) - l, "]");
        int rc = v1(with_details(ad), &g, &why);
        ASSERT_EQ(rc, n <= GRANT_MAX_DETAILS ? 0 : GRANT_INVALID_TOKEN);
        if (rc)
            ASSERT_STR_EQ(why, "too many Mercure authorization details");
        grant_dispose(&g);
    }
    /* Matchers summed over details: 64 fine, 65 refused (two details). */
    for (int n = 64; n <= 65; n++) {
        size_t l = (size_t)snprintf(ad, sizeof(ad),
                                    "[{" TYPE ",\"actions\":[\"publish\",\"subscribe\"],\"topics\":[");
        for (int i = 0; i < 32; i++)
            l += (size_t)snprintf(ad + l, sizeof(ad) - l, "%s{\"match\":\"a%d\"}", i ? "," : "", i);
        l +=
            (size_t)snprintf(ad + l, sizeof(ad) - l, "]},{" TYPE ",\"actions\":[\"subscribe\"],\"topics\":[");
        for (int i = 0; i < n - 32; i++)
            l += (size_t)snprintf(ad + l, sizeof(ad) - l, "%s{\"match\":\"b%d\"}", i ? "," : "", i);
        snprintf(ad + l, sizeof(ad) - l, "]}]");
        int rc = v1(with_details(ad), &g, &why);
        ASSERT_EQ(rc, n <= GRANT_MAX_MATCHERS ? 0 : GRANT_INVALID_TOKEN);
        if (rc == 0) {
            ASSERT_UEQ(g.num_publish, 32);
            ASSERT_UEQ(g.num_subscribe, 64);
        } else {
            ASSERT_STR_EQ(why, "too many topic matchers in authorization_details");
        }
        grant_dispose(&g);
    }
    /* Entries of any type: 64 fine, 65 refused. */
    for (int n = 64; n <= 65; n++) {
        size_t l = (size_t)snprintf(ad, sizeof(ad), "[");
        for (int i = 0; i < n; i++)
            l += (size_t)snprintf(ad + l, sizeof(ad) - l, "%s{\"type\":\"x\"}", i ? "," : "");
        snprintf(ad + l, sizeof(ad) - l, "]");
        ASSERT_EQ(v1(with_details(ad), &g, &why), n <= GRANT_MAX_ENTRIES ? 0 : GRANT_INVALID_TOKEN);
        grant_dispose(&g);
    }
    /* Matcher length: 2048 fine, 2049 refused. */
    for (int n = 2048; n <= 2049; n++) {
        size_t l = (size_t)snprintf(ad, sizeof(ad),
                                    "[{" TYPE ",\"actions\":[\"publish\"],\"topics\":[{\"match\":\"");
        memset(ad + l, 'm', (size_t)n);
        snprintf(ad + l + n, sizeof(ad) - l - (size_t)n, "\"}]}]");
        int rc = v1(with_details(ad), &g, &why);
        ASSERT_EQ(rc, n <= GRANT_MAX_MATCHER_LEN ? 0 : GRANT_INVALID_TOKEN);
        if (rc == 0)
            ASSERT_UEQ(g.publish[0].len, 2048);
        grant_dispose(&g);
    }
}

static void test_string_ok(void)
{
    struct {
        const char *s;
        int ok;
    } cases[] = {
        {"https://example.com/books/1", 1},
        {"urn:\xc3\xa9t\xc3\xa9", 1}, /* é */
        {"\xf0\x9f\x98\x80", 1},      /* U+1F600 */
        {"\xe2\x80\x8a", 1},          /* U+200A hair space: Zs, allowed */
        {"\xe2\x80\x8b", 0},          /* U+200B zero width space: Cf */
        {"\xe2\x80\xae", 0},          /* U+202E right-to-left override */
        {"\xef\xbb\xbf", 0},          /* U+FEFF */
        {"\xf3\xa0\x80\x81", 0},      /* U+E0001 language tag */
        {"\xc2\xad", 0},              /* U+00AD soft hyphen */
        {"\xc2\x85", 0},              /* U+0085: C1 */
        {"\xc2\xa0", 1},              /* U+00A0 */
        {"a\x7f", 0},                 /* DEL */
        {"a\tb", 0},                  /* C0 */
        {"\xc0\x80", 0},              /* overlong NUL */
        {"\xe0\x80\xaf", 0},          /* overlong '/' */
        {"\xed\xa0\x80", 0},          /* surrogate */
        {"\xf4\x90\x80\x80", 0},      /* past U+10FFFF */
        {"\xf5\x80\x80\x80", 0},      /* invalid lead */
        {"\xc3", 0},                  /* truncated */
        {"\x80", 0},                  /* lone continuation */
        {"\xe2\x82", 0},              /* truncated 3-byte */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (grant_string_ok(cases[i].s, strlen(cases[i].s)) != cases[i].ok)
            TEST_FAIL_AT("case %zu: want %d", i, cases[i].ok);
    }
    ASSERT_EQ(grant_string_ok("a\0b", 3), 0); /* an embedded NUL */
    ASSERT_EQ(grant_string_ok("", 0), 1);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_classic_claims);
    TEST_RUN(test_classic_refusals);
#ifdef DIFFERENTIAL
    TEST_RUN(test_classic_same_as_jwt_c);
#endif
    TEST_RUN(test_v1_valid);
    TEST_RUN(test_v1_registered_claims);
    TEST_RUN(test_v1_details_refusals);
    TEST_RUN(test_v1_limits);
    TEST_RUN(test_string_ok);
    TEST_MAIN_END();
}
