/*
 * jws_fuzz.c - libFuzzer target for jws_try_verify() and base64url.
 *
 * Properties (abort() on any violation):
 *   - the input as a token, against a key set with HMAC (with and without
 *     kid, one issuer-bound), P-256 and Ed25519 keys, with and without
 *     issuer binding: the answer is 0, JWS_ERR_INVALID or JWS_ERR_NO_KEY with
 *     a reason, *out is empty on refusal; a success (a forged HMAC: never in
 *     practice) has an object payload and an alg the verifying key allows;
 *   - base64url: decode(encode(input)) is the input, the length is exact;
 *   - the input as a payload, signed with the kid'd HMAC key: verification
 *     never fails for a shape, header, key or signature reason, and succeeds
 *     exactly when the input parses as a JSON object within the depth bound,
 *     giving back that object; one changed signature character always gives
 *     "bad signature";
 *   - the input as a header, signed with the same key: accepted only with
 *     alg HS256 in it (the key allows nothing else), never "bad signature".
 * The input is copied into an exact-size heap buffer so ASan flags over-reads.
 */
#include "fuzz.h"
#include "jws.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char secret[] = "fuzz-secret";
static jws_keyset_t *keys;

static void add(jws_keyset_t *ks, jws_key_t *k)
{
    const char *why;
    CHECK(k && jws_keyset_try_add(ks, k, &why) == 0);
}

static void init(void)
{
    const char *why;
    keys = jws_keyset_new();
    jws_key_params_t kid = {JWS_ALG_BIT(JWS_HS256), "k1", NULL}, bound = {0, "k2", "https://iss.example"};
    add(keys, jws_key_new_hmac(&kid, secret, sizeof(secret) - 1, &why));
    add(keys, jws_key_new_hmac(&bound, "other", 5, &why));
    add(keys, jws_key_new_hmac(NULL, "third", 5, &why));
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    add(keys, jws_key_new_pkey(NULL, ec, &why));
    add(keys, jws_key_new_pkey(NULL, ed, &why));
}

static void check_result(int rc, const jws_verified_t *v, const char *why)
{
    CHECK(rc == 0 || rc == JWS_ERR_INVALID || rc == JWS_ERR_NO_KEY);
    if (rc) {
        CHECK(why && !v->header && !v->payload && !v->key_issuer);
        return;
    }
    CHECK(json_is_object(v->header) && json_is_object(v->payload));
    CHECK((unsigned)v->alg < JWS_ALG_COUNT);
}

static void as_token(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    CHECK(in);
    memcpy(in, data, size);
    for (int bound = 0; bound < 2; bound++) {
        jws_verify_opts_t o = {0, bound};
        jws_verified_t v;
        const char *why = NULL;
        int rc = jws_try_verify(keys, in, size, &o, &v, &why);
        check_result(rc, &v, why);
        jws_verified_dispose(&v);
    }
    free(in);
}

static void b64_roundtrip(const uint8_t *data, size_t size)
{
    char *enc = malloc(size * 4 / 3 + 4);
    unsigned char *dec = malloc(size + 3);
    CHECK(enc && dec);
    size_t n = jws_b64url_encode(data, size, enc);
    CHECK(n == (size * 8 + 5) / 6 && enc[n] == 0);
    CHECK(jws_b64url_decode(enc, n, dec) == (long)size && memcmp(dec, data, size) == 0);
    free(enc);
    free(dec);
}

static int is_shape_reason(const char *why)
{
    return !strncmp(why, "malformed", 9) || !strncmp(why, "alg", 3) || !strncmp(why, "no trusted", 10) ||
           !strcmp(why, "bad signature") || !strcmp(why, "token too long") || !strncmp(why, "kid", 3);
}

static void as_payload(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 4096)
        return;
    const char *hdr = "{\"alg\":\"HS256\",\"kid\":\"k1\"}";
    char *tok = jws_sign(JWS_HS256, hdr, data, size, secret, sizeof(secret) - 1, NULL);
    CHECK(tok);
    size_t tl = strlen(tok);
    jws_verified_t v;
    const char *why = NULL;
    int rc = jws_try_verify(keys, tok, tl, NULL, &v, &why);
    json_t *expect = jws_json_try_parse((const char *)data, size, JWS_MAX_JSON_DEPTH);
    if (json_is_object(expect)) {
        CHECK(rc == 0 && json_equal(expect, v.payload));
        CHECK(v.alg == JWS_HS256 && v.kid && !strcmp(v.kid, "k1") && v.key_issuer == NULL);
    } else {
        CHECK(rc == JWS_ERR_INVALID && !strcmp(why, "the payload is not a JSON object"));
    }
    check_result(rc, &v, why);
    CHECK(rc == 0 || !is_shape_reason(why));
    json_decref(expect);
    jws_verified_dispose(&v);
    /* One changed character of the signature (not the last, whose padding
     * bits decoding requires to be zero). */
    tok[tl - 2] = tok[tl - 2] == 'A' ? 'B' : 'A';
    rc = jws_try_verify(keys, tok, tl, NULL, &v, &why);
    CHECK(rc == JWS_ERR_INVALID && !strcmp(why, "bad signature"));
    free(tok);
}

static void as_header(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 2048 || memchr(data, 0, size))
        return;
    char *hdr = malloc(size + 1);
    CHECK(hdr);
    memcpy(hdr, data, size);
    hdr[size] = 0;
    char *tok = jws_sign(JWS_HS256, hdr, "{}", 2, secret, sizeof(secret) - 1, NULL);
    CHECK(tok);
    jws_verified_t v;
    const char *why = NULL;
    int rc = jws_try_verify(keys, tok, strlen(tok), NULL, &v, &why);
    check_result(rc, &v, why);
    if (rc == 0)
        CHECK(v.alg == JWS_HS256 && !strcmp(json_string_value(json_object_get(v.header, "alg")), "HS256"));
    /* A model of the verdict from the header alone. Keys: k1 (HS256, kid
     * k1, the signer), k2 (HS*, kid k2), and kid-less HS* (third), ES256 and
     * EdDSA keys. Accepted iff alg is HS256, no crit, typ a string if
     * present, kid absent or "k1". "bad signature" iff some key was tried and
     * the kid (if any) was found: no kid and an alg another key allows, or
     * kid k2 with an HS* alg. */
    json_t *h = jws_json_try_parse(hdr, size, JWS_MAX_JSON_DEPTH);
    const json_t *kid_j = json_object_get(h, "kid"), *typ = json_object_get(h, "typ");
    const char *alg = json_string_value(json_object_get(h, "alg")), *kid = json_string_value(kid_j);
    int hs = alg && (!strcmp(alg, "HS256") || !strcmp(alg, "HS384") || !strcmp(alg, "HS512"));
    int others = alg && (!strcmp(alg, "HS384") || !strcmp(alg, "HS512") || !strcmp(alg, "ES256") ||
                         !strcmp(alg, "EdDSA"));
    int well_formed =
        json_is_object(h) && !json_object_get(h, "crit") && (!typ || json_is_string(typ)) && (!kid_j || kid);
    CHECK((rc == 0) == (well_formed && alg && !strcmp(alg, "HS256") && (!kid || !strcmp(kid, "k1"))));
    if (well_formed && rc)
        CHECK(!strcmp(why, "bad signature") == ((!kid && others) || (kid && !strcmp(kid, "k2") && hs)));
    json_decref(h);
    jws_verified_dispose(&v);
    free(tok);
    free(hdr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!keys)
        init();
    as_token(data, size);
    b64_roundtrip(data, size);
    as_payload(data, size);
    as_header(data, size);
    return 0;
}
