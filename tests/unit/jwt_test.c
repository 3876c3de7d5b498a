/*
 * jwt_test.c - unit tests of src/jwt.c: base64url edge cases, the header's
 * alg rules, time claims, the mercure claim's shapes, and an RFC 7515
 * appendix A.1 HS256 vector (a third-party signature, not ours).
 */
#include "../../src/jwt.c"

#include "test.h"

static const char secret[] = "unit-secret";

static int verify(jwt_key_t *k, const char *tok, int64_t now, jwt_claims_t *c, const char **why)
{
    return jwt_try_verify(k, tok, strlen(tok), now, c, why);
}

static void test_b64url(void)
{
    unsigned char out[16];
    ASSERT_EQ(jwt_b64url_decode("", 0, out), 0);
    ASSERT_EQ(jwt_b64url_decode("QQ", 2, out), 1);
    ASSERT_EQ(out[0], 'A');
    ASSERT_EQ(jwt_b64url_decode("QR", 2, out), -1);   /* non-zero padding bits */
    ASSERT_EQ(jwt_b64url_decode("Q", 1, out), -1);    /* impossible length */
    ASSERT_EQ(jwt_b64url_decode("QQ==", 4, out), -1); /* padding is not base64url */
    ASSERT_EQ(jwt_b64url_decode("a+b/", 4, out), -1); /* plain base64 alphabet */
    ASSERT_EQ(jwt_b64url_decode("-_-_", 4, out), 3);
}

static void test_rfc7515_a1_vector(void)
{
    /* RFC 7515, A.1: HS256 with the JWK "k" below. */
    const char *k64 =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    unsigned char kb[128];
    long kl = jwt_b64url_decode(k64, strlen(k64), kb);
    ASSERT(kl == 64);
    const char *why = NULL;
    jwt_key_t *k = jwt_key_new(JWT_HS256, (const char *)kb, (size_t)kl, &why);
    const char *tok =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    jwt_claims_t c;
    ASSERT_EQ(verify(k, tok, 1300819379, &c, &why), 0);
    ASSERT_EQ(c.exp, 1300819380);
    jwt_claims_dispose(&c);
    ASSERT_EQ(verify(k, tok, 1300819380, &c, &why), -1); /* exp is exclusive */
    ASSERT(!strcmp(why, "expired (exp is in the past)"));
    jwt_key_free(k);
}

static void test_claims_and_refusals(void)
{
    const char *why = NULL;
    jwt_key_t *k = jwt_key_new(JWT_HS256, secret, strlen(secret), &why);
    jwt_claims_t c;
    char *t =
        jwt_sign_hs(JWT_HS256, secret, strlen(secret),
                    "{\"exp\":2000,\"nbf\":1000,\"mercure\":{\"publish\":[\"a\",\"b\"],\"subscribe\":[],"
                    "\"payload\":{\"u\":1}}}");
    ASSERT_EQ(verify(k, t, 1500, &c, &why), 0);
    ASSERT_UEQ(c.num_publish, 2);
    ASSERT(c.has_subscribe && c.num_subscribe == 0);
    ASSERT(c.payload && !strcmp(c.payload, "{\"u\":1}"));
    jwt_claims_dispose(&c);
    ASSERT_EQ(verify(k, t, 999, &c, &why), -1);
    ASSERT(strstr(why, "nbf") != NULL);
    free(t);
    /* A token signed for HS512 is refused by an HS256 key, before crypto. */
    t = jwt_sign_hs(JWT_HS512, secret, strlen(secret), "{}");
    ASSERT_EQ(verify(k, t, 0, &c, &why), -1);
    ASSERT(!strcmp(why, "alg differs from the configured --jwt-alg"));
    free(t);
    /* alg none, even with an empty signature. */
    ASSERT_EQ(verify(k, "eyJhbGciOiJub25lIn0.e30.", 0, &c, &why), -1);
    ASSERT(!strcmp(why, "alg none is never accepted"));
    const char *bad_payloads[] = {"[]",
                                  "{\"exp\":\"x\"}",
                                  "{\"mercure\":1}",
                                  "{\"mercure\":{\"publish\":[1]}}",
                                  "{\"mercure\":{\"subscribe\":[\"\"]}}",
                                  "{\"a\":1,\"a\":2}"};
    for (size_t i = 0; i < sizeof(bad_payloads) / sizeof(bad_payloads[0]); i++) {
        t = jwt_sign_hs(JWT_HS256, secret, strlen(secret), bad_payloads[i]);
        ASSERT_EQ(verify(k, t, 0, &c, &why), -1);
        ASSERT(c.publish == NULL && c.subscribe == NULL);
        free(t);
    }
    jwt_key_free(k);
}

static void test_key_checks(void)
{
    const char *why = NULL;
    ASSERT(jwt_key_new(JWT_HS256, "", 0, &why) == NULL);
    ASSERT(jwt_key_new(JWT_RS256, "nope", 4, &why) == NULL);
    jwt_alg_t a;
    ASSERT_EQ(jwt_alg_parse("ES256", &a), 0);
    ASSERT_EQ(a, JWT_ES256);
    ASSERT_EQ(jwt_alg_parse("none", &a), -1);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_b64url);
    TEST_RUN(test_rfc7515_a1_vector);
    TEST_RUN(test_claims_and_refusals);
    TEST_RUN(test_key_checks);
    TEST_MAIN_END();
}
