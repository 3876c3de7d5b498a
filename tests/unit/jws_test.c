/*
 * jws_test.c - unit tests of src/jws.c.
 *
 * Third-party signatures first: RFC 7515 A.1 (HS256), A.2 (RS256), A.3
 * (ES256), RFC 8037 A.4 (Ed25519, which our signer must also reproduce
 * byte for byte: Ed25519 is deterministic), and tokens minted by Node.js for
 * RS384/RS512/PS256/PS384/PS512/ES384 (jws_vectors.h). Then keys generated
 * here with OpenSSL for every algorithm, signed and verified, tampered with;
 * every refusal by reason; kid and issuer key selection; the bound on keys
 * tried; and a key set swapped while four threads verify (ASan sees any use
 * after free; the expected answer is checked against the set each thread
 * actually holds).
 */
#include "../../src/jws.c"

#include "jws_vectors.h"
#include "test.h"

#include <openssl/param_build.h>

static const char RFC_PAYLOAD_B64[] =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

/* ---- helpers ------------------------------------------------------------------ */

static long b64(const char *s, unsigned char *out) { return jws_b64url_decode(s, strlen(s), out); }

static jws_keyset_t *set_of(jws_key_t *k)
{
    const char *why;
    jws_keyset_t *ks = jws_keyset_new();
    if (jws_keyset_try_add(ks, k, &why))
        TEST_FAIL_AT("try_add: %s", why);
    return ks;
}

static int verify(const jws_keyset_t *ks, const char *tok, const jws_verify_opts_t *o, jws_verified_t *v,
                  const char **why)
{
    return jws_try_verify(ks, tok, strlen(tok), o, v, why);
}

/* Verifies and drops the result; returns the code and leaves *why. */
static int check(const jws_keyset_t *ks, const char *tok, const jws_verify_opts_t *o, const char **why)
{
    jws_verified_t v;
    int rc = verify(ks, tok, o, &v, why);
    if (rc == 0)
        jws_verified_dispose(&v);
    else if (v.header || v.payload || v.key_issuer)
        TEST_FAIL_AT("a refused verification left something in *out");
    return rc;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pk = NULL;
    if (EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return pk;
}

static EVP_PKEY *rsa_pub(const char *n64, const char *e64)
{
    unsigned char n[600], e[8];
    long nl = b64(n64, n), el = b64(e64, e);
    BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be);
    EVP_PKEY *pk = from_params("RSA", bld);
    BN_free(bn);
    BN_free(be);
    return pk;
}

static EVP_PKEY *p256_pub(const char *x64, const char *y64)
{
    unsigned char pt[65 + 3];
    pt[0] = 4;
    b64(x64, pt + 1);
    b64(y64, pt + 33);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 65);
    return from_params("EC", bld);
}

static jws_key_t *key_from_pkey(EVP_PKEY *pk, const jws_key_params_t *p)
{
    const char *why = NULL;
    jws_key_t *k = pk ? jws_key_new_pkey(p, pk, &why) : NULL;
    if (!k) {
        TEST_FAIL_AT("key: %s", why ? why : "no EVP_PKEY");
        EVP_PKEY_free(pk);
    }
    return k;
}

/* The public half of a private key, through PEM as an operator gives it. */
static jws_key_t *public_key_of(EVP_PKEY *priv, const jws_key_params_t *p, const char **why)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, priv);
    char *pem;
    long n = BIO_get_mem_data(b, &pem);
    jws_key_t *k = jws_key_new_pem(p, pem, (size_t)n, why);
    BIO_free(b);
    return k;
}

static char *sign_json(jws_alg_t alg, const char *hdr, const char *payload, const void *secret,
                       EVP_PKEY *priv)
{
    return jws_sign(alg, hdr, payload, strlen(payload), secret, secret ? strlen(secret) : 0, priv);
}

/* ---- base64url, names, JSON ---------------------------------------------------- */

static void test_b64url(void)
{
    unsigned char out[16];
    ASSERT_EQ(jws_b64url_decode("", 0, out), 0);
    ASSERT_EQ(jws_b64url_decode("QQ", 2, out), 1);
    ASSERT_EQ(out[0], 'A');
    ASSERT_EQ(jws_b64url_decode("QR", 2, out), -1);   /* non-zero trailing bits */
    ASSERT_EQ(jws_b64url_decode("Q", 1, out), -1);    /* impossible length */
    ASSERT_EQ(jws_b64url_decode("QQ==", 4, out), -1); /* padding */
    ASSERT_EQ(jws_b64url_decode("a+b/", 4, out), -1); /* plain base64 alphabet */
    ASSERT_EQ(jws_b64url_decode("-_-_", 4, out), 3);
    char enc[8];
    ASSERT_UEQ(jws_b64url_encode((const unsigned char *)"\xfb\xff", 2, enc), 3);
    ASSERT_STR_EQ(enc, "-_8");
}

static void test_alg_names(void)
{
    for (int a = 0; a < JWS_ALG_COUNT; a++) {
        jws_alg_t got;
        const char *n = jws_alg_name((jws_alg_t)a);
        ASSERT_EQ(jws_alg_parse(n, strlen(n), &got), 0);
        ASSERT_EQ(got, a);
    }
    jws_alg_t a;
    ASSERT_EQ(jws_alg_parse("none", 4, &a), -1);
    ASSERT_EQ(jws_alg_parse("es256", 5, &a), -1); /* case-sensitive */
    ASSERT_EQ(jws_alg_parse("ES256K", 6, &a), -1);
    ASSERT_EQ(jws_alg_parse("ES2", 3, &a), -1);
    jws_algset_t set;
    const char *why;
    ASSERT_EQ(jws_algset_parse("ES256, EdDSA,RS256", &set, &why), 0);
    ASSERT_UEQ(set, JWS_ALG_BIT(JWS_ES256) | JWS_ALG_BIT(JWS_EDDSA) | JWS_ALG_BIT(JWS_RS256));
    ASSERT_EQ(jws_algset_parse("ES256,,RS256", &set, &why), -1);
    ASSERT_EQ(jws_algset_parse("none", &set, &why), -1);
    ASSERT_EQ(jws_algset_parse("", &set, &why), -1);
}

static void test_json_limits(void)
{
    char deep[2 * 40 + 1];
    for (int depth = 31; depth <= 33; depth++) {
        int n = 0;
        for (int i = 0; i < depth; i++)
            deep[n++] = '[';
        for (int i = 0; i < depth; i++)
            deep[n++] = ']';
        json_t *j = jws_json_try_parse(deep, (size_t)n, JWS_MAX_JSON_DEPTH);
        ASSERT_EQ(j != NULL, depth <= JWS_MAX_JSON_DEPTH);
        json_decref(j);
    }
    /* Brackets inside strings, escaped quotes included, do not count. */
    const char *s = "{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[\"}";
    json_t *j = jws_json_try_parse(s, strlen(s), 2);
    ASSERT(j != NULL);
    json_decref(j);
    ASSERT(jws_json_try_parse("{\"a\":1,\"a\":2}", 13, 4) == NULL);   /* duplicate member */
    ASSERT(jws_json_try_parse("{\"a\":\"\\u0000\"}", 14, 4) == NULL); /* NUL in a string */
    ASSERT(jws_json_try_parse("{} x", 4, 4) == NULL);                 /* trailing bytes */
}

/* ---- third-party vectors ------------------------------------------------------------ */

static void test_rfc7515_a1_hs256(void)
{
    unsigned char k[80];
    long kl =
        b64("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow", k);
    const char *why = NULL;
    jws_keyset_t *ks = set_of(jws_key_new_hmac(NULL, k, (size_t)kl, &why));
    char tok[512];
    snprintf(tok, sizeof(tok),
             "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.%s.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
             RFC_PAYLOAD_B64);
    jws_verified_t v;
    ASSERT_EQ(verify(ks, tok, NULL, &v, &why), 0);
    ASSERT_EQ(v.alg, JWS_HS256);
    ASSERT_STR_EQ(v.typ, "JWT");
    ASSERT(v.kid == NULL && v.key_issuer == NULL);
    ASSERT_STR_EQ(json_string_value(json_object_get(v.payload, "iss")), "joe");
    ASSERT_EQ(json_integer_value(json_object_get(v.payload, "exp")), 1300819380);
    jws_verified_dispose(&v);
    /* Our signer gives the same MAC over the same input. */
    unsigned char mac[32];
    unsigned int ml = 0;
    char input[256];
    snprintf(input, sizeof(input), "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.%s", RFC_PAYLOAD_B64);
    HMAC(EVP_sha256(), k, (int)kl, (const unsigned char *)input, strlen(input), mac, &ml);
    ASSERT(verify_hmac(jws_keyset_get(ks, 0), JWS_HS256, input, strlen(input), mac, ml));
    jws_keyset_unref(ks);
}

static void test_rfc7515_a2_rs256(void)
{
    jws_keyset_t *ks = set_of(key_from_pkey(
        rsa_pub("ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-"
                "4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-"
                "yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-"
                "bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-"
                "KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-"
                "DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
                "AQAB"),
        NULL));
    char tok[1024];
    snprintf(
        tok, sizeof(tok),
        "eyJhbGciOiJSUzI1NiJ9.%s.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-"
        "0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_"
        "nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--"
        "xi12jzDwusC-"
        "eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_"
        "IoypGlUPQGe77Rw",
        RFC_PAYLOAD_B64);
    const char *why = NULL;
    ASSERT_EQ(check(ks, tok, NULL, &why), 0);
    /* The same signature presented as PS256 is not a PSS signature. */
    char *ps = strstr(tok, ".");
    char forged[1024];
    snprintf(forged, sizeof(forged), "eyJhbGciOiJQUzI1NiJ9%s", ps);
    ASSERT_EQ(check(ks, forged, NULL, &why), JWS_ERR_INVALID);
    ASSERT_STR_EQ(why, "bad signature");
    jws_keyset_unref(ks);
}

static void test_rfc7515_a3_es256(void)
{
    jws_keyset_t *ks = set_of(key_from_pkey(p256_pub("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                                                     "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"),
                                            NULL));
    char tok[512];
    snprintf(tok, sizeof(tok),
             "eyJhbGciOiJFUzI1NiJ9.%s.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-"
             "F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-"
             "Kg6NU1Q",
             RFC_PAYLOAD_B64);
    const char *why = NULL;
    ASSERT_EQ(check(ks, tok, NULL, &why), 0);
    /* Swapping r and s, or sending DER, is a bad signature. */
    unsigned char sig[70];
    ASSERT_EQ(
        b64("DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q", sig),
        64);
    unsigned char swapped[64];
    memcpy(swapped, sig + 32, 32);
    memcpy(swapped + 32, sig, 32);
    char input[256];
    snprintf(input, sizeof(input), "eyJhbGciOiJFUzI1NiJ9.%s", RFC_PAYLOAD_B64);
    const jws_key_t *k = jws_keyset_get(ks, 0);
    ASSERT(verify_with(k, JWS_ES256, input, strlen(input), sig, 64));
    ASSERT(!verify_with(k, JWS_ES256, input, strlen(input), swapped, 64));
    size_t dl = 0;
    unsigned char *der = ecdsa_to_der(JWS_ES256, sig, 64, &dl);
    ASSERT(der && !verify_with(k, JWS_ES256, input, strlen(input), der, dl));
    ASSERT(!verify_with(k, JWS_ES256, input, strlen(input), sig, 63));
    OPENSSL_free(der);
    jws_keyset_unref(ks);
}

static void test_rfc8037_a4_ed25519(void)
{
    unsigned char x[40], d[40];
    ASSERT_EQ(b64("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", x), 32);
    ASSERT_EQ(b64("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A", d), 32);
    jws_keyset_t *ks =
        set_of(key_from_pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32), NULL));
    const char *tok =
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
    /* The payload is text, not claims: the signature passes, the payload
     * check refuses; a bad signature would have said so first. */
    const char *why = NULL;
    ASSERT_EQ(check(ks, tok, NULL, &why), JWS_ERR_INVALID);
    ASSERT_STR_EQ(why, "the payload is not a JSON object");
    unsigned char sig[70];
    ASSERT_EQ(b64(strrchr(tok, '.') + 1, sig), 64);
    const char *input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    ASSERT(verify_with(jws_keyset_get(ks, 0), JWS_EDDSA, input, strlen(input), sig, 64));
    sig[10] ^= 1;
    ASSERT(!verify_with(jws_keyset_get(ks, 0), JWS_EDDSA, input, strlen(input), sig, 64));
    /* Ed25519 is deterministic: our signer must give the RFC's token. */
    EVP_PKEY *priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d, 32);
    char *mine = jws_sign(JWS_EDDSA, "{\"alg\":\"EdDSA\"}", "Example of Ed25519 signing", 26, NULL, 0, priv);
    ASSERT_STR_EQ(mine, tok);
    free(mine);
    EVP_PKEY_free(priv);
    jws_keyset_unref(ks);
}

static void test_node_vectors(void)
{
    const char *why = NULL;
    jws_key_t *rsa = jws_key_new_pem(NULL, node_rsa_pem, strlen(node_rsa_pem), &why);
    jws_key_t *p384 = jws_key_new_pem(NULL, node_p384_pem, strlen(node_p384_pem), &why);
    ASSERT(rsa && p384);
    ASSERT_UEQ(jws_key_algs(rsa), JWS_ALGS_RSA);
    ASSERT_UEQ(jws_key_algs(p384), JWS_ALG_BIT(JWS_ES384));
    jws_keyset_t *ks = set_of(rsa);
    ASSERT_EQ(jws_keyset_try_add(ks, p384, &why), 0);
    for (size_t i = 0; i < sizeof(node_tokens) / sizeof(node_tokens[0]); i++) {
        jws_verified_t v;
        int rc = verify(ks, node_tokens[i].token, NULL, &v, &why);
        if (rc != 0) {
            TEST_FAIL_AT("%s: %s", jws_alg_name(node_tokens[i].alg), why);
            continue;
        }
        ASSERT_EQ(v.alg, node_tokens[i].alg);
        ASSERT_STR_EQ(json_string_value(json_object_get(v.payload, "sub")), "node");
        jws_verified_dispose(&v);
        /* Restricted to another algorithm, the same key refuses it. */
        jws_verify_opts_t only = {JWS_ALG_BIT(JWS_RS256), 0};
        ASSERT_EQ(check(ks, node_tokens[i].token, &only, &why), JWS_ERR_INVALID);
        ASSERT_STR_EQ(why, "alg differs from the configured --jwt-alg (not on the allow-list)");
    }
    jws_keyset_unref(ks);
}

/* ---- every algorithm, keys made here -------------------------------------------------- */

typedef struct alg_case {
    jws_alg_t alg;
    EVP_PKEY **priv; /* NULL for HMAC */
} alg_case_t;

static EVP_PKEY *rsa_priv, *p256_priv, *p384_priv, *ed_priv;

static void make_keys(void)
{
    rsa_priv = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    p256_priv = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    p384_priv = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    ed_priv = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    ASSERT(rsa_priv && p256_priv && p384_priv && ed_priv);
}

static const alg_case_t cases[] = {
    {JWS_HS256, NULL},      {JWS_HS384, NULL},       {JWS_HS512, NULL},       {JWS_RS256, &rsa_priv},
    {JWS_RS384, &rsa_priv}, {JWS_RS512, &rsa_priv},  {JWS_PS256, &rsa_priv},  {JWS_PS384, &rsa_priv},
    {JWS_PS512, &rsa_priv}, {JWS_ES256, &p256_priv}, {JWS_ES384, &p384_priv}, {JWS_EDDSA, &ed_priv},
};

static const char secret[] = "a-shared-secret-of-at-least-64-bytes-for-hs512-0123456789abcdefghij";

static void test_every_alg(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const alg_case_t *c = &cases[i];
        const char *name = jws_alg_name(c->alg), *why = NULL;
        jws_key_params_t p = {0, "k1", NULL};
        jws_key_t *k =
            c->priv ? public_key_of(*c->priv, &p, &why) : jws_key_new_hmac(&p, secret, strlen(secret), &why);
        if (!k) {
            TEST_FAIL_AT("%s: key: %s", name, why);
            continue;
        }
        jws_keyset_t *ks = set_of(k);
        char hdr[64];
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"k1\"}", name);
        char *tok =
            sign_json(c->alg, hdr, "{\"sub\":\"x\"}", c->priv ? NULL : secret, c->priv ? *c->priv : NULL);
        if (!tok) {
            TEST_FAIL_AT("%s: signing failed", name);
            jws_keyset_unref(ks);
            continue;
        }
        jws_verified_t v;
        if (verify(ks, tok, NULL, &v, &why) != 0) {
            TEST_FAIL_AT("%s: %s", name, why);
        } else {
            ASSERT_EQ(v.alg, c->alg);
            ASSERT_STR_EQ(v.kid, "k1");
            jws_verified_dispose(&v);
        }
        /* Every single-character change of the signature is refused. */
        size_t tl = strlen(tok), sig_at = (size_t)(strrchr(tok, '.') - tok) + 1;
        for (size_t j = sig_at; j + 1 < tl; j += 7) {
            char saved = tok[j];
            tok[j] = saved == 'A' ? 'B' : 'A';
            int rc = check(ks, tok, NULL, &why);
            if (rc != JWS_ERR_INVALID || strcmp(why, "bad signature"))
                TEST_FAIL_AT("%s: signature byte %zu changed: rc %d, %s", name, j - sig_at, rc, why);
            tok[j] = saved;
        }
        /* A changed payload under the old signature too. */
        char *dot = strchr(tok, '.');
        dot[1] = dot[1] == 'e' ? 'f' : 'e';
        ASSERT_EQ(check(ks, tok, NULL, &why), JWS_ERR_INVALID);
        /* A truncated signature. */
        tok[tl - 4] = 0;
        ASSERT_EQ(check(ks, tok, NULL, &why), JWS_ERR_INVALID);
        free(tok);
        jws_keyset_unref(ks);
    }
}

/* Signing refuses a key of the wrong type; verification never mixes them. */
static void test_algorithm_confusion(void)
{
    const char *why = NULL;
    ASSERT(sign_json(JWS_ES256, NULL, "{}", NULL, rsa_priv) == NULL);
    ASSERT(sign_json(JWS_ES384, NULL, "{}", NULL, p256_priv) == NULL);
    ASSERT(sign_json(JWS_RS256, NULL, "{}", NULL, ed_priv) == NULL);
    ASSERT(sign_json(JWS_HS256, NULL, "{}", NULL, NULL) == NULL);
    /* The classic attack: the RSA public key's PEM used as an HMAC secret. */
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, rsa_priv);
    char *pem;
    long pl = BIO_get_mem_data(b, &pem);
    char *secret_pem = strndup(pem, (size_t)pl);
    jws_keyset_t *ks = set_of(jws_key_new_pem(NULL, pem, (size_t)pl, &why));
    BIO_free(b);
    char *tok = sign_json(JWS_HS256, NULL, "{\"admin\":true}", secret_pem, NULL);
    ASSERT_EQ(check(ks, tok, NULL, &why), JWS_ERR_NO_KEY);
    ASSERT_STR_EQ(why, "no trusted key for the token's alg");
    free(tok);
    /* And an RS256 header over that HMAC. */
    tok = sign_json(JWS_HS256, "{\"alg\":\"RS256\"}", "{\"admin\":true}", secret_pem, NULL);
    ASSERT_EQ(check(ks, tok, NULL, &why), JWS_ERR_INVALID);
    ASSERT_STR_EQ(why, "bad signature");
    free(tok);
    free(secret_pem);
    jws_keyset_unref(ks);
    /* An HMAC key refuses asymmetric tokens the same way. */
    ks = set_of(jws_key_new_hmac(NULL, "s", 1, &why));
    tok = sign_json(JWS_ES256, NULL, "{}", NULL, p256_priv);
    ASSERT_EQ(check(ks, tok, NULL, &why), JWS_ERR_NO_KEY);
    free(tok);
    jws_keyset_unref(ks);
}

/* RFC 7518 3.5: the PSS salt is as long as the hash, nothing else. A valid
 * PSS signature with the longest salt must still be refused. */
static void test_pss_salt_length(void)
{
    const char *why = NULL;
    jws_keyset_t *ks = set_of(public_key_of(rsa_priv, NULL, &why));
    char input[128], tok[1024];
    unsigned char sig[512];
    size_t sl = sizeof(sig);
    snprintf(input, sizeof(input), "eyJhbGciOiJQUzI1NiJ9.e30"); /* {"alg":"PS256"}.{} */
    for (int salt = 0; salt < 2; salt++) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        sl = sizeof(sig);
        ASSERT(EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, rsa_priv) == 1);
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt ? RSA_PSS_SALTLEN_MAX : RSA_PSS_SALTLEN_DIGEST);
        ASSERT(EVP_DigestSign(ctx, sig, &sl, (const unsigned char *)input, strlen(input)) == 1);
        EVP_MD_CTX_free(ctx);
        size_t n = (size_t)snprintf(tok, sizeof(tok), "%s.", input);
        jws_b64url_encode(sig, sl, tok + n);
        ASSERT_EQ(check(ks, tok, NULL, &why), salt ? JWS_ERR_INVALID : 0);
    }
    jws_keyset_unref(ks);
}

/* ---- refusals ----------------------------------------------------------------------- */

/* A token with this header and payload, HS256-signed with `secret`. */
static char *hs(const char *hdr, const char *payload)
{
    return sign_json(JWS_HS256, hdr, payload, secret, NULL);
}

static void test_refusals(void)
{
    const char *why = NULL;
    jws_keyset_t *ks = set_of(jws_key_new_hmac(NULL, secret, strlen(secret), &why));
    jws_verify_opts_t hs256 = {JWS_ALG_BIT(JWS_HS256), 0};
    struct {
        const char *hdr, *payload, *why;
    } bad[] = {
        {"{\"alg\":\"none\"}", "{}", "alg none is never accepted"},
        {"{\"alg\":\"None\"}", "{}", "alg none is never accepted"},
        {"{\"alg\":\"NONE\"}", "{}", "alg none is never accepted"},
        {"{\"alg\":\"HS1\"}", "{}", "unsupported alg"},
        {"{\"alg\":\"hs256\"}", "{}", "unsupported alg"},
        {"{\"alg\":\"HS512\"}", "{}", "alg differs from the configured --jwt-alg (not on the allow-list)"},
        {"{\"alg\":256}", "{}", "the header has no alg"},
        {"{\"typ\":\"JWT\"}", "{}", "the header has no alg"},
        {"[\"HS256\"]", "{}", "malformed token (the header is not a JSON object)"},
        {"{\"alg\":\"HS256\"", "{}", "malformed token (the header is not JSON)"},
        {"{\"alg\":\"HS256\",\"alg\":\"HS256\"}", "{}", "malformed token (the header is not JSON)"},
        {"{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", "{}",
         "crit header parameters are not supported"},
        {"{\"alg\":\"HS256\",\"kid\":7}", "{}", "kid or typ in the header is not a string"},
        {"{\"alg\":\"HS256\",\"typ\":null}", "{}", "kid or typ in the header is not a string"},
        {"{\"alg\":\"HS256\"}", "[]", "the payload is not a JSON object"},
        {"{\"alg\":\"HS256\"}", "{\"a\":1,\"a\":2}", "the payload is not a JSON object"},
        {"{\"alg\":\"HS256\"}", "{\"a\":1e999}", "the payload is not a JSON object"},
        {"{\"alg\":\"HS256\"}", "{\"a\":\"\\u0000\"}", "the payload is not a JSON object"},
        {"{\"alg\":\"HS256\"}", "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
         "the payload is not a JSON object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *t = hs(bad[i].hdr, bad[i].payload);
        int rc = check(ks, t, &hs256, &why);
        if (rc != JWS_ERR_INVALID || strcmp(why, bad[i].why))
            TEST_FAIL_AT("case %zu (%s %s): rc %d, \"%s\", want \"%s\"", i, bad[i].hdr, bad[i].payload, rc,
                         why, bad[i].why);
        free(t);
    }
    /* Header key material is never used: a jwk header changes nothing. */
    char *t =
        sign_json(JWS_HS256, "{\"alg\":\"HS256\",\"jwk\":{\"kty\":\"oct\",\"k\":\"YQ\"}}", "{}", "a", NULL);
    ASSERT_EQ(check(ks, t, &hs256, &why), JWS_ERR_INVALID);
    ASSERT_STR_EQ(why, "bad signature");
    free(t);
    /* Shapes. */
    struct {
        const char *tok, *why;
    } shapes[] = {
        {"", "empty token"},
        {"abc", "malformed token (not three dot-separated parts)"},
        {"eyJhbGciOiJIUzI1NiJ9.e30", "malformed token (not three dot-separated parts)"},
        {"eyJhbGciOiJIUzI1NiJ9.e30.e30.e30", "malformed token (not three dot-separated parts)"},
        {"eyJhbGciOiJIUzI1NiJ9.e30!.abc", "malformed token (bad base64url)"},
        {"eyJhbGciOiJIUzI1NiJ9.e30=.abc", "malformed token (bad base64url)"},
        {".e30.abc", "malformed token (bad base64url)"},
        {"eyJhbGciOiJIUzI1NiJ9..abc", "malformed token (bad base64url)"},
        {"eyJhbGciOiJIUzI1NiJ9.e30.a", "malformed token (bad base64url)"},
        {"eyJhbGciOiJub25lIn0.e30.", "alg none is never accepted"},
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        int rc = check(ks, shapes[i].tok, NULL, &why);
        if (rc != JWS_ERR_INVALID || strcmp(why, shapes[i].why))
            TEST_FAIL_AT("shape %zu: rc %d, \"%s\", want \"%s\"", i, rc, why, shapes[i].why);
    }
    char big[JWS_MAX_TOKEN + 2];
    memset(big, 'A', sizeof(big));
    jws_verified_t v;
    ASSERT_EQ(jws_try_verify(ks, big, sizeof(big), NULL, &v, &why), JWS_ERR_INVALID);
    ASSERT_STR_EQ(why, "token too long");
    /* No key set at all: NO_KEY, never a crash. */
    t = hs("{\"alg\":\"HS256\"}", "{}");
    ASSERT_EQ(check(NULL, t, NULL, &why), JWS_ERR_NO_KEY);
    free(t);
    jws_keyset_unref(ks);
}

/* ---- key selection ------------------------------------------------------------------- */

static jws_key_t *hkey(const char *s, const char *kid, const char *iss)
{
    const char *why;
    jws_key_params_t p = {0, kid, iss};
    jws_key_t *k = jws_key_new_hmac(&p, s, strlen(s), &why);
    if (!k)
        TEST_FAIL_AT("hkey: %s", why);
    return k;
}

static char *hs_kid(const char *s, const char *kid, const char *payload)
{
    char hdr[128];
    if (kid)
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"HS256\",\"kid\":\"%s\"}", kid);
    else
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"HS256\"}");
    return sign_json(JWS_HS256, hdr, payload, s, NULL);
}

static void expect(const jws_keyset_t *ks, char *tok, const jws_verify_opts_t *o, int want,
                   const char *want_why, int line)
{
    const char *why = "";
    int rc = check(ks, tok, o, &why);
    if (rc != want || (want_why && strcmp(why, want_why)))
        fprintf(stderr, "  line %d: rc %d (%s), want %d (%s)\n", line, rc, why, want,
                want_why ? want_why : "-"),
            test__failed_current++;
    free(tok);
}
#define EXPECT(ks, tok, o, want, why) expect(ks, tok, o, want, why, __LINE__)

static void test_kid_selection(void)
{
    const char *why;
    jws_keyset_t *ks = set_of(hkey("sa", "a", NULL));
    ASSERT_EQ(jws_keyset_try_add(ks, hkey("sb", "b", NULL), &why), 0);
    ASSERT_EQ(jws_keyset_try_add(ks, hkey("sn", NULL, NULL), &why), 0);
    EXPECT(ks, hs_kid("sb", "b", "{}"), NULL, 0, NULL);
    EXPECT(ks, hs_kid("sn", "c", "{}"), NULL, 0, NULL); /* a kid-less key accepts any kid */
    EXPECT(ks, hs_kid("sx", "c", "{}"), NULL, JWS_ERR_NO_KEY, "no trusted key has the token's kid");
    EXPECT(ks, hs_kid("sb", "a", "{}"), NULL, JWS_ERR_INVALID, "bad signature"); /* kid a, b's secret */
    EXPECT(ks, hs_kid("sb", NULL, "{}"), NULL, 0, NULL);                         /* no kid: tries them all */
    EXPECT(ks, hs_kid("sx", NULL, "{}"), NULL, JWS_ERR_INVALID, "bad signature");
    jws_keyset_unref(ks);

    /* At most JWS_MAX_TRIES keys per token. */
    ks = jws_keyset_new();
    char s[16], kid[16];
    for (int i = 0; i < 10; i++) {
        snprintf(s, sizeof(s), "s%d", i);
        snprintf(kid, sizeof(kid), "k%d", i);
        ASSERT_EQ(jws_keyset_try_add(ks, hkey(s, kid, NULL), &why), 0);
    }
    EXPECT(ks, hs_kid("s3", NULL, "{}"), NULL, 0, NULL); /* the 4th key is tried */
    EXPECT(ks, hs_kid("s4", NULL, "{}"), NULL, JWS_ERR_INVALID, "bad signature");
    EXPECT(ks, hs_kid("s9", "k9", "{}"), NULL, 0, NULL); /* its kid finds it at once */
    jws_keyset_unref(ks);
}

static void test_issuer_binding(void)
{
    const char *why;
    jws_keyset_t *ks = set_of(hkey("sa", NULL, "https://a.example"));
    ASSERT_EQ(jws_keyset_try_add(ks, hkey("sb", "kb", "https://b.example"), &why), 0);
    ASSERT_EQ(jws_keyset_try_add(ks, hkey("su", NULL, NULL), &why), 0);
    jws_verify_opts_t bound = {0, 1};
    const char *pa = "{\"iss\":\"https://a.example\"}", *pb = "{\"iss\":\"https://b.example\"}";
    jws_verified_t v;
    char *t = hs_kid("sa", NULL, pa);
    ASSERT_EQ(verify(ks, t, &bound, &v, &why), 0);
    ASSERT_STR_EQ(v.key_issuer, "https://a.example");
    jws_verified_dispose(&v);
    free(t);
    /* b's key cannot sign for a, even with b's kid; a's cannot sign for b. */
    EXPECT(ks, hs_kid("sb", NULL, pa), &bound, JWS_ERR_INVALID, "bad signature");
    EXPECT(ks, hs_kid("sb", "kb", pa), &bound, JWS_ERR_NO_KEY, "no trusted key has the token's kid");
    EXPECT(ks, hs_kid("sa", NULL, pb), &bound, JWS_ERR_INVALID, "bad signature");
    EXPECT(ks, hs_kid("sb", "kb", pb), &bound, 0, NULL);
    /* The unbound key never verifies when issuers are bound. */
    EXPECT(ks, hs_kid("su", NULL, "{\"iss\":\"https://u.example\"}"), &bound, JWS_ERR_NO_KEY,
           "no trusted key for the token's issuer and alg");
    EXPECT(ks, hs_kid("su", NULL, "{}"), &bound, JWS_ERR_INVALID,
           "the token has no iss (keys are bound to issuers)");
    EXPECT(ks, hs_kid("sa", NULL, "{\"iss\":1}"), &bound, JWS_ERR_INVALID,
           "the token has no iss (keys are bound to issuers)");
    EXPECT(ks, hs_kid("sa", NULL, "[1]"), &bound, JWS_ERR_INVALID, "the payload is not a JSON object");
    /* Not bound: any key, and the key's issuer is still reported. */
    t = hs_kid("su", NULL, pa);
    ASSERT_EQ(verify(ks, t, NULL, &v, &why), 0);
    ASSERT(v.key_issuer == NULL);
    jws_verified_dispose(&v);
    free(t);
    jws_keyset_unref(ks);
}

static void test_key_params(void)
{
    const char *why = NULL;
    jws_key_params_t rs = {JWS_ALG_BIT(JWS_RS256), NULL, NULL}, hs = {JWS_ALG_BIT(JWS_HS256), NULL, NULL},
                     es384 = {JWS_ALG_BIT(JWS_ES384), NULL, NULL};
    ASSERT(jws_key_new_hmac(&rs, "s", 1, &why) == NULL);
    ASSERT(jws_key_new_hmac(NULL, "", 0, &why) == NULL);
    ASSERT(public_key_of(rsa_priv, &hs, &why) == NULL);
    ASSERT(public_key_of(p256_priv, &es384, &why) == NULL);
    ASSERT(public_key_of(ed_priv, &rs, &why) == NULL);
    jws_key_t *k = public_key_of(rsa_priv, &rs, &why);
    ASSERT(k && jws_key_algs(k) == JWS_ALG_BIT(JWS_RS256));
    jws_key_unref(k);
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    ASSERT(public_key_of(small, NULL, &why) == NULL);
    ASSERT_STR_EQ(why, "an RSA key must have at least 2048 bits");
    EVP_PKEY_free(small);
    EVP_PKEY *p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    ASSERT(public_key_of(p521, NULL, &why) == NULL);
    EVP_PKEY_free(p521);
    ASSERT(jws_key_new_pem(NULL, "nope", 4, &why) == NULL);
    jws_key_params_t empty_kid = {0, "", NULL};
    ASSERT(jws_key_new_hmac(&empty_kid, "s", 1, &why) == NULL);
    char long_iss[JWS_MAX_ID + 2];
    memset(long_iss, 'i', sizeof(long_iss) - 1);
    long_iss[sizeof(long_iss) - 1] = 0;
    jws_key_params_t li = {0, NULL, long_iss};
    ASSERT(jws_key_new_hmac(&li, "s", 1, &why) == NULL);
    /* A certificate works as well as a bare public key. */
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, p256_priv);
    X509_sign(x, p256_priv, EVP_sha256());
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *pem;
    long pl = BIO_get_mem_data(b, &pem);
    k = jws_key_new_pem(NULL, pem, (size_t)pl, &why);
    ASSERT(k && jws_key_algs(k) == JWS_ALG_BIT(JWS_ES256));
    jws_key_unref(k);
    BIO_free(b);
    X509_free(x);
}

/* ---- a key set swapped under concurrent verification ---------------------------------- */

typedef struct swap_ctx {
    jws_keyset_holder_t holder;
    char *tok_a, *tok_b;  /* signed with key a / key b */
    atomic_int stop;      /* main asks the verifiers to end */
    atomic_long verified; /* verifications done, all threads */
    atomic_int wrong;     /* answers that disagree with the set held */
} swap_ctx_t;

static int set_has_kid(const jws_keyset_t *ks, const char *kid)
{
    for (size_t i = 0; i < jws_keyset_count(ks); i++) {
        if (!strcmp(jws_key_kid(jws_keyset_get(ks, i)), kid))
            return 1;
    }
    return 0;
}

static void *verifier(void *arg)
{
    swap_ctx_t *c = arg;
    while (!atomic_load(&c->stop)) {
        jws_keyset_t *ks = jws_keyset_holder_acquire(&c->holder);
        const char *why;
        int a = check(ks, c->tok_a, NULL, &why) == 0, b = check(ks, c->tok_b, NULL, &why) == 0;
        if (a != (ks && set_has_kid(ks, "a")) || b != (ks && set_has_kid(ks, "b")))
            atomic_fetch_add(&c->wrong, 1);
        jws_keyset_unref(ks);
        atomic_fetch_add(&c->verified, 2);
    }
    return NULL;
}

static void test_keyset_swap_threads(void)
{
    static swap_ctx_t c;
    jws_keyset_holder_init(&c.holder);
    jws_key_t *ka = hkey("secret-a", "a", NULL), *kb = hkey("secret-b", "b", NULL);
    c.tok_a = hs_kid("secret-a", "a", "{}");
    c.tok_b = hs_kid("secret-b", "b", "{}");
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, verifier, &c);
    const char *why;
    for (int round = 0; round < 3000; round++) {
        jws_keyset_t *ks = jws_keyset_new();
        if (round % 3 != 1 && jws_keyset_try_add(ks, jws_key_ref(ka), &why))
            TEST_FAIL_AT("add a");
        if (round % 3 != 0 && jws_keyset_try_add(ks, jws_key_ref(kb), &why))
            TEST_FAIL_AT("add b");
        jws_keyset_holder_swap(&c.holder, round % 7 == 6 ? (jws_keyset_unref(ks), NULL) : ks);
        if (round % 100 == 0)
            usleep(100);
    }
    atomic_store(&c.stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ASSERT_EQ(atomic_load(&c.wrong), 0);
    ASSERT(atomic_load(&c.verified) > 100);
    jws_keyset_holder_dispose(&c.holder);
    jws_key_unref(ka);
    jws_key_unref(kb);
    free(c.tok_a);
    free(c.tok_b);
}

static void test_keyset_refs(void)
{
    const char *why;
    jws_keyset_t *ks = jws_keyset_new();
    jws_key_t *k = hkey("s", "k", NULL);
    ASSERT_EQ(jws_keyset_try_add(ks, jws_key_ref(k), &why), 0);
    jws_keyset_holder_t h;
    jws_keyset_holder_init(&h);
    ASSERT(jws_keyset_holder_acquire(&h) == NULL);
    jws_keyset_holder_swap(&h, ks);
    jws_keyset_t *got = jws_keyset_holder_acquire(&h);
    ASSERT(got == ks && jws_keyset_count(got) == 1);
    jws_keyset_holder_swap(&h, NULL); /* the holder lets go; we still hold it */
    ASSERT_STR_EQ(jws_key_kid(jws_keyset_get(got, 0)), "k");
    jws_keyset_unref(got);
    jws_keyset_holder_dispose(&h);
    jws_key_unref(k); /* the last reference */
    /* A full set refuses more and releases what it refused. */
    ks = jws_keyset_new();
    for (int i = 0; i < JWS_KEYSET_MAX; i++)
        ASSERT_EQ(jws_keyset_try_add(ks, hkey("s", NULL, NULL), &why), 0);
    ASSERT_EQ(jws_keyset_try_add(ks, hkey("s", NULL, NULL), &why), -1);
    jws_keyset_unref(ks);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    make_keys();
    TEST_RUN(test_b64url);
    TEST_RUN(test_alg_names);
    TEST_RUN(test_json_limits);
    TEST_RUN(test_rfc7515_a1_hs256);
    TEST_RUN(test_rfc7515_a2_rs256);
    TEST_RUN(test_rfc7515_a3_es256);
    TEST_RUN(test_rfc8037_a4_ed25519);
    TEST_RUN(test_node_vectors);
    TEST_RUN(test_every_alg);
    TEST_RUN(test_algorithm_confusion);
    TEST_RUN(test_pss_salt_length);
    TEST_RUN(test_refusals);
    TEST_RUN(test_kid_selection);
    TEST_RUN(test_issuer_binding);
    TEST_RUN(test_key_params);
    TEST_RUN(test_keyset_refs);
    TEST_RUN(test_keyset_swap_threads);
    EVP_PKEY_free(rsa_priv);
    EVP_PKEY_free(p256_priv);
    EVP_PKEY_free(p384_priv);
    EVP_PKEY_free(ed_priv);
    TEST_MAIN_END();
}
