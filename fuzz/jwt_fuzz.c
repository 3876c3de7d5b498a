/*
 * jwt_fuzz.c - libFuzzer target for jwt_try_verify() and base64url.
 *
 * Properties (abort() on any violation):
 *   - the input as a token never crashes the verifier; when it verifies
 *     (only possible by forging HMAC, i.e. never in practice) the claims
 *     respect their caps;
 *   - base64url: decode(encode(input)) gives back the input;
 *   - round trip: the input as a payload, signed with the key, never fails
 *     for a reason about the token's shape, header or signature; flipping
 *     a bit of its signature always makes it fail with "bad signature";
 *   - a verified token's selectors are non-empty strings, at most 64.
 * The input is copied into an exact-size heap buffer so ASan flags over-reads.
 */
#include "fuzz.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"

static const char secret[] = "fuzz-secret";
static jwt_key_t *key;

static void check_claims(const jwt_claims_t *c)
{
    CHECK(c->num_publish <= JWT_MAX_SELECTORS && c->num_subscribe <= JWT_MAX_SELECTORS);
    for (size_t i = 0; i < c->num_publish; i++)
        CHECK(c->publish[i] && c->publish[i][0]);
    for (size_t i = 0; i < c->num_subscribe; i++)
        CHECK(c->subscribe[i] && c->subscribe[i][0]);
}

static void b64_roundtrip(const uint8_t *data, size_t size)
{
    char *enc = malloc(size * 4 / 3 + 4);
    unsigned char *dec = malloc(size + 3);
    CHECK(enc && dec);
    size_t n = jwt_b64url_encode(data, size, enc);
    CHECK(n == (size * 8 + 5) / 6);
    CHECK(jwt_b64url_decode(enc, n, dec) == (long)size && memcmp(dec, data, size) == 0);
    free(enc);
    free(dec);
}

static void signed_roundtrip(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 2048 || memchr(data, 0, size))
        return;
    char *payload = malloc(size + 1);
    CHECK(payload);
    memcpy(payload, data, size);
    payload[size] = 0;
    char *tok = jwt_sign_hs(JWT_HS256, secret, sizeof(secret) - 1, payload);
    CHECK(tok);
    size_t tl = strlen(tok);
    jwt_claims_t c;
    const char *why = NULL;
    if (jwt_try_verify(key, tok, tl, 1700000000, &c, &why) == 0) {
        check_claims(&c);
        jwt_claims_dispose(&c);
    } else {
        CHECK(strcmp(why, "bad signature") && strncmp(why, "malformed", 9) && strncmp(why, "alg", 3));
    }
    /* Flip one bit of the last-but-one signature character (the last one
     * carries padding bits that decoding requires to be zero). */
    tok[tl - 2] = tok[tl - 2] == 'A' ? 'B' : 'A';
    CHECK(jwt_try_verify(key, tok, tl, 1700000000, &c, &why) == -1);
    CHECK(!strcmp(why, "bad signature"));
    free(tok);
    free(payload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!key) {
        const char *why;
        key = jwt_key_new(JWT_HS256, secret, sizeof(secret) - 1, &why);
        CHECK(key);
    }
    char *in = malloc(size ? size : 1);
    CHECK(in);
    memcpy(in, data, size);
    jwt_claims_t c;
    const char *why = NULL;
    if (jwt_try_verify(key, in, size, 1700000000, &c, &why) == 0) {
        check_claims(&c);
        jwt_claims_dispose(&c);
    } else {
        CHECK(why && c.publish == NULL && c.subscribe == NULL && c.payload == NULL);
    }
    free(in);
    b64_roundtrip(data, size);
    signed_roundtrip(data, size);
    return 0;
}
