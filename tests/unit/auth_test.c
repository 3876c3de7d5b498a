/*
 * auth_test.c - unit tests of src/auth.c: keys from their material (HMAC
 * secret, PEM, JWK) narrowed by --jwt-alg and bound to --jwt-issuer, the
 * RFC 7518 secret length, the metadata URL, where each dialect finds the
 * token (header > query > cookie, per dialect), and auth_check's verdicts
 * for tokens of both dialects, including a token of the other dialect.
 */
#include "../../src/auth.c"

#include "test.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#define SECRET "0123456789abcdef0123456789abcdef-auth-test"
#define ISS "https://app.example"
#define RES "https://hub.example/.well-known/mercure"

static config_t cfg_with(const char *alg, const char *key, const char *issuer)
{
    config_t c;
    config_defaults(&c);
    c.jwt_alg = alg ? strdup(alg) : NULL;
    c.publisher_jwt_key = key ? strdup(key) : NULL;
    c.subscriber_jwt_key = key ? strdup(key) : NULL;
    c.jwt_issuer = issuer ? strdup(issuer) : NULL;
    c.resource_identifier = strdup(RES);
    return c;
}

static auth_t *make(const char *alg, const char *key, const char *issuer)
{
    config_t c = cfg_with(alg, key, issuer);
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w"); /* refusals print one line each */
    auth_t *a = auth_new(&c);
    fclose(stderr);
    stderr = saved;
    config_dispose(&c);
    return a;
}

static char *pem_of(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, k);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *out = strndup(p, (size_t)n);
    BIO_free(b);
    return out;
}

static void test_keys(void)
{
    auth_t *a = make(NULL, SECRET, NULL);
    ASSERT(a && auth_has_key(a, AUTH_PUBLISHER) && auth_accepts(a, AUTH_PUBLISHER, DIALECT_CLASSIC));
    ASSERT(!auth_accepts(a, AUTH_PUBLISHER, DIALECT_V1)); /* unbound: no 1.0 tokens */
    auth_free(a);
    a = make(NULL, SECRET, ISS);
    ASSERT(a && auth_accepts(a, AUTH_SUBSCRIBER, DIALECT_V1));
    ASSERT_STR_EQ(auth_resource(a), RES);
    ASSERT_STR_EQ(auth_metadata_url(a),
                  "https://hub.example/.well-known/oauth-protected-resource/.well-known/mercure");
    auth_free(a);
    ASSERT(make("HS512", SECRET, NULL) == NULL);  /* 42 bytes < 64 */
    ASSERT(make("HS256", "short", NULL) == NULL); /* < 32 */
    ASSERT(make("RS256", SECRET, NULL) == NULL);  /* a secret is not an RSA key */
    ASSERT(make("XX256", SECRET, NULL) == NULL);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    char *pem = pem_of(ec);
    a = make(NULL, pem, ISS); /* every algorithm of its type: ES256 */
    ASSERT(a && jws_key_algs(jws_keyset_get(a->keys[0], 0)) == JWS_ALG_BIT(JWS_ES256));
    auth_free(a);
    ASSERT(make("RS256", pem, NULL) == NULL); /* an EC key for RS256 */
    ASSERT(make("HS256", pem, NULL) == NULL); /* never a PEM as an HMAC secret */
    free(pem);
    EVP_PKEY_free(ec);
    const char *jwk =
        "{\"kty\":\"oct\",\"k\":\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\",\"alg\":\"HS256\"}";
    a = make(NULL, jwk, ISS);
    ASSERT(a && jws_key_issuer(jws_keyset_get(a->keys[1], 0)) &&
           !strcmp(jws_key_issuer(jws_keyset_get(a->keys[1], 0)), ISS));
    auth_free(a);
    /* Path and no path in the resource identifier. */
    char *m = metadata_url_of("https://h.example");
    ASSERT_STR_EQ(m, "https://h.example/.well-known/oauth-protected-resource");
    free(m);
    m = metadata_url_of("http://127.0.0.1:8000/hub/.well-known/mercure?x#y");
    ASSERT_STR_EQ(m, "http://127.0.0.1:8000/.well-known/oauth-protected-resource/hub/.well-known/mercure");
    free(m);
    ASSERT(metadata_url_of("no scheme") == NULL);
}

/* ---- requests -------------------------------------------------------------------------- */

static http1_header_t hdrs[4];

static request_t req(dialect_t d, const char *authz, const char *cookie)
{
    request_t in;
    memset(&in, 0, sizeof(in));
    size_t n = 0;
    if (authz)
        hdrs[n++] = (http1_header_t){"Authorization", 13, authz, strlen(authz)};
    if (cookie)
        hdrs[n++] = (http1_header_t){"Cookie", 6, cookie, strlen(cookie)};
    in.headers = hdrs;
    in.num_headers = n;
    in.dialect = (uint8_t)d;
    return in;
}

static void test_find_token(void)
{
    const char *both = "mercureAuthorization=C; __Secure-mercure_access_token=V";
    request_t in = req(DIALECT_CLASSIC, NULL, both);
    ASSERT(auth_find_token(&in, "Q", 1) && in.token_from == REQ_TOKEN_QUERY); /* query > cookie */
    in = req(DIALECT_CLASSIC, NULL, both);
    ASSERT(auth_find_token(&in, NULL, 0) && in.token_from == REQ_TOKEN_COOKIE);
    ASSERT_MEM_STR(in.token, in.token_len, "C");
    in = req(DIALECT_V1, NULL, both);
    ASSERT(auth_find_token(&in, "Q", 1) && in.token_from == REQ_TOKEN_COOKIE); /* no query token in 1.0 */
    ASSERT_MEM_STR(in.token, in.token_len, "V");
    in = req(DIALECT_V1, "Bearer H", both);
    ASSERT(auth_find_token(&in, NULL, 0) && in.token_from == REQ_TOKEN_HEADER); /* header > cookie */
    ASSERT_MEM_STR(in.token, in.token_len, "H");
    in = req(DIALECT_V1, "bearer H", NULL); /* the scheme is case-insensitive */
    ASSERT(auth_find_token(&in, NULL, 0) && in.token_len == 1);
    in = req(DIALECT_V1, "Basic abc", both);
    ASSERT(auth_find_token(&in, NULL, 0) && in.token_from == REQ_TOKEN_HEADER && in.token_len == 0);
    in = req(DIALECT_V1, NULL, "mercureAuthorization=C");
    ASSERT(!auth_find_token(&in, NULL, 0));
    in = req(DIALECT_CLASSIC, NULL, "__Secure-mercure_access_token=V");
    ASSERT(!auth_find_token(&in, NULL, 0));
    /* AUTO (a publish): the source fixes the dialect. */
    in = req(DIALECT_AUTO, NULL, both);
    ASSERT(auth_find_token(&in, NULL, 0) && in.dialect == DIALECT_V1);
    in = req(DIALECT_AUTO, NULL, "mercureAuthorization=C");
    ASSERT(auth_find_token(&in, NULL, 0) && in.dialect == DIALECT_CLASSIC);
    in = req(DIALECT_AUTO, NULL, both);
    ASSERT(auth_find_token(&in, "Q", 1) && in.dialect == DIALECT_CLASSIC && in.token_from == REQ_TOKEN_QUERY);
    in = req(DIALECT_AUTO, NULL, NULL);
    ASSERT(!auth_find_token(&in, NULL, 0) && in.dialect == DIALECT_AUTO);
}

/* ---- verification ----------------------------------------------------------------------- */

static char *hs(const char *header, const char *claims)
{
    return jws_sign(JWS_HS256, header, claims, strlen(claims), SECRET, strlen(SECRET), NULL);
}

static auth_status_t check(auth_t *a, dialect_t d, const char *tok, grant_t *g, const char **why)
{
    char authz[4096];
    snprintf(authz, sizeof(authz), "Bearer %s", tok);
    request_t in = req(d, authz, NULL);
    auth_find_token(&in, NULL, 0);
    return auth_check(a, AUTH_SUBSCRIBER, &in, g, why);
}

static void test_check(void)
{
    auth_t *a = make(NULL, SECRET, ISS);
    grant_t g;
    const char *why = NULL;
    char claims[512];
    long long exp = (long long)time(NULL) + 60;
    snprintf(
        claims, sizeof(claims),
        "{\"iss\":\"" ISS "\",\"aud\":\"" RES
        "\",\"exp\":%lld,\"authorization_details\":[{\"type\":\"" GRANT_DETAIL_TYPE
        "\",\"actions\":[\"subscribe\"],\"topics\":[{\"match\":\"/b/:id\",\"match_type\":\"urlpattern\"}]}]}",
        exp);
    char *v1 = hs("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", claims);
    char *classic = hs(NULL, "{\"mercure\":{\"subscribe\":[\"*\"]}}");
    ASSERT_EQ(check(a, DIALECT_V1, v1, &g, &why), AUTH_VALID);
    ASSERT(g.dialect == GRANT_V1 && g.num_subscribe == 1 && g.subscribe[0].type == GRANT_MATCH_URLPATTERN);
    grant_dispose(&g);
    ASSERT_EQ(check(a, DIALECT_AUTO, v1, &g, &why), AUTH_VALID); /* the typ decides */
    ASSERT(g.dialect == GRANT_V1);
    grant_dispose(&g);
    ASSERT_EQ(check(a, DIALECT_CLASSIC, v1, &g, &why), AUTH_INVALID); /* a 1.0 token, draft-07 request */
    ASSERT(strstr(why, "at+jwt") != NULL);
    ASSERT_EQ(check(a, DIALECT_CLASSIC, classic, &g, &why), AUTH_VALID);
    ASSERT(g.dialect == GRANT_CLASSIC);
    grant_dispose(&g);
    ASSERT_EQ(check(a, DIALECT_V1, classic, &g, &why), AUTH_INVALID); /* typ */
    /* A pattern that does not compile invalidates the token. */
    snprintf(
        claims, sizeof(claims),
        "{\"iss\":\"" ISS "\",\"aud\":\"" RES
        "\",\"exp\":%lld,\"authorization_details\":[{\"type\":\"" GRANT_DETAIL_TYPE
        "\",\"actions\":[\"subscribe\"],\"topics\":[{\"match\":\"/b/(\",\"match_type\":\"urlpattern\"}]}]}",
        exp);
    char *badpat = hs("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", claims);
    ASSERT_EQ(check(a, DIALECT_V1, badpat, &g, &why), AUTH_INVALID);
    /* Presentation: not Bearer, and a token in the URL, are 1.0's invalid_request. */
    request_t in = req(DIALECT_V1, "Basic x", NULL);
    auth_find_token(&in, NULL, 0);
    ASSERT_EQ(auth_check(a, AUTH_SUBSCRIBER, &in, &g, &why), AUTH_BAD_REQUEST);
    in = req(DIALECT_CLASSIC, "Basic x", NULL);
    auth_find_token(&in, NULL, 0);
    ASSERT_EQ(auth_check(a, AUTH_SUBSCRIBER, &in, &g, &why), AUTH_INVALID);
    in = req(DIALECT_V1, NULL, NULL);
    in.token_in_url = 1;
    ASSERT_EQ(auth_check(a, AUTH_SUBSCRIBER, &in, &g, &why), AUTH_BAD_REQUEST);
    in = req(DIALECT_V1, NULL, NULL);
    ASSERT_EQ(auth_check(a, AUTH_SUBSCRIBER, &in, &g, &why), AUTH_NO_TOKEN);
    auth_free(a);
    /* Unbound keys verify draft-07 tokens only. */
    a = make(NULL, SECRET, NULL);
    ASSERT_EQ(check(a, DIALECT_V1, v1, &g, &why), AUTH_INVALID);
    ASSERT_EQ(check(a, DIALECT_CLASSIC, classic, &g, &why), AUTH_VALID);
    grant_dispose(&g);
    auth_free(a);
    a = make(NULL, NULL, NULL);
    ASSERT_EQ(check(a, DIALECT_CLASSIC, classic, &g, &why), AUTH_NO_KEY);
    auth_free(a);
    free(v1);
    free(classic);
    free(badpat);
}

/* Static PEM keys of every asymmetric family verify tokens of both dialects. */
static void test_algorithms(void)
{
    static const struct {
        jws_alg_t alg;
        const char *kind; /* "RSA", "ED25519", or a curve */
    } cases[] = {{JWS_RS256, "RSA"},   {JWS_RS512, "RSA"},   {JWS_PS256, "RSA"},    {JWS_PS384, "RSA"},
                 {JWS_ES256, "P-256"}, {JWS_ES384, "P-384"}, {JWS_EDDSA, "ED25519"}};
    long long exp = (long long)time(NULL) + 60;
    char v1claims[512];
    snprintf(v1claims, sizeof(v1claims),
             "{\"iss\":\"" ISS "\",\"aud\":\"" RES "\",\"exp\":%lld,\"authorization_details\":[]}", exp);
    const char *classic = "{\"mercure\":{\"subscribe\":[\"*\"]}}";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EVP_PKEY *k = !strcmp(cases[i].kind, "RSA")       ? EVP_RSA_gen(2048)
                      : !strcmp(cases[i].kind, "ED25519") ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                                                          : EVP_EC_gen(cases[i].kind);
        char *pem = pem_of(k);
        auth_t *a = make(NULL, pem, ISS);
        char h[96];
        snprintf(h, sizeof(h), "{\"alg\":\"%s\",\"typ\":\"at+jwt\"}", jws_alg_name(cases[i].alg));
        char *t1 = jws_sign(cases[i].alg, h, v1claims, strlen(v1claims), NULL, 0, k);
        char *t0 = jws_sign(cases[i].alg, NULL, classic, strlen(classic), NULL, 0, k);
        grant_t g;
        const char *why = NULL;
        if (!a || !t1 || !t0 || check(a, DIALECT_V1, t1, &g, &why) != AUTH_VALID)
            TEST_FAIL_AT("%s: 1.0 token: %s", jws_alg_name(cases[i].alg), why ? why : "setup");
        else
            grant_dispose(&g);
        if (a && t0 && check(a, DIALECT_CLASSIC, t0, &g, &why) != AUTH_VALID)
            TEST_FAIL_AT("%s: draft-07 token: %s", jws_alg_name(cases[i].alg), why ? why : "?");
        else if (a && t0)
            grant_dispose(&g);
        free(t0);
        free(t1);
        free(pem);
        auth_free(a);
        EVP_PKEY_free(k);
    }
}

static void test_challenge(void)
{
    auth_t *a = make(NULL, SECRET, ISS);
    resp_hdrs_t h;
    resp_hdrs_init(&h);
    auth_add_challenge(a, &h, "invalid_token");
    size_t pos = 0;
    const char *v, *name = resp_hdrs_next(&h, &pos, &v);
    ASSERT_STR_EQ(name, "WWW-Authenticate");
    ASSERT_STR_EQ(
        v, "Bearer realm=\"mercure\", error=\"invalid_token\", resource_metadata=\"https://hub.example/"
           ".well-known/oauth-protected-resource/.well-known/mercure\"");
    auth_free(a);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_keys);
    TEST_RUN(test_find_token);
    TEST_RUN(test_check);
    TEST_RUN(test_algorithms);
    TEST_RUN(test_challenge);
    TEST_MAIN_END();
}
