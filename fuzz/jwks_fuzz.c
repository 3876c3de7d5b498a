/*
 * jwks_fuzz.c - libFuzzer target for jwks_try_parse(), jwks_try_parse_key()
 * and the Cache-Control parser of the fetcher.
 *
 * Properties (abort() on any violation):
 *   - a set: refused with a reason and no set, or a set of 1 to 64 keys in
 *     which every member of "keys" is either a key or exactly one skip
 *     callback (in index order); each key bound to the issuer, with a
 *     non-empty algorithm set inside the allow-list, a kid that is the
 *     member's own (1 to 512 bytes) or none;
 *   - the same set parsed with the allow-list {ES256, EdDSA}: never more
 *     keys than without it, and only those algorithms;
 *   - one JWK: a key, or a reason; a key from a lone member agrees with the
 *     set made of that member;
 *   - Cache-Control: max-age is -1 or within [0, 1e9], no-cache 0 or 1.
 */
#include "fuzz.h"
#include "jwks.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ISS "https://as.example"

typedef struct seen {
    size_t skipped;    /* callbacks */
    size_t last_index; /* index of the last one, for the order */
} seen_t;

static void on_skip_cb(void *ctx, size_t index, const char *why)
{
    seen_t *s = ctx;
    CHECK(why && (s->skipped == 0 || index > s->last_index));
    s->last_index = index;
    s->skipped++;
}

static size_t check_set(const char *in, size_t size, jws_algset_t algs)
{
    seen_t seen = {0, 0};
    jwks_parse_opts_t o = {algs, ISS, on_skip_cb, &seen};
    jws_keyset_t *ks = NULL;
    const char *why = NULL;
    if (jwks_try_parse(in, size, &o, &ks, &why)) {
        CHECK(why && !ks);
        return 0;
    }
    json_t *j = jws_json_try_parse(in, size, JWS_MAX_JSON_DEPTH);
    CHECK(j);
    size_t members = json_array_size(json_object_get(j, "keys")), n = jws_keyset_count(ks);
    CHECK(n >= 1 && n <= JWKS_MAX_KEYS && n + seen.skipped == members);
    for (size_t i = 0; i < n; i++) {
        const jws_key_t *k = jws_keyset_get(ks, i);
        CHECK(jws_key_algs(k) != 0 && (!algs || (jws_key_algs(k) & ~algs) == 0));
        CHECK(jws_key_issuer(k) && !strcmp(jws_key_issuer(k), ISS));
        const char *kid = jws_key_kid(k);
        CHECK(!kid || (strlen(kid) >= 1 && strlen(kid) <= JWS_MAX_ID));
    }
    json_decref(j);
    jws_keyset_unref(ks);
    return n;
}

/* jwks.c's reason for a key that fails EVP_PKEY_public_check. */
#define RANDOM_CHECK "the public key fails OpenSSL's validity check"

static void remember_skip(void *ctx, size_t index, const char *why)
{
    (void)index;
    *(const char **)ctx = why;
}

/* A lone member gives a key iff the set of that member gives one key. */
static void check_single(const char *in, size_t size)
{
    jws_key_t *k = NULL;
    const char *why = NULL;
    int rc = jwks_try_parse_key(in, size, NULL, &k, &why);
    CHECK(rc == 0 ? k != NULL : (why && !k));
    if (size > 4096)
        goto out;
    char *set = malloc(size + 16);
    CHECK(set);
    memcpy(set, "{\"keys\":[", 9);
    memcpy(set + 9, in, size);
    memcpy(set + 9 + size, "]}", 2);
    jws_keyset_t *ks = NULL;
    const char *why2 = NULL, *skipped = NULL;
    jwks_parse_opts_t o = {0, NULL, remember_skip, &skipped};
    json_t *alone = jws_json_try_parse(in, size, JWS_MAX_JSON_DEPTH);
    int set_rc = alone ? jwks_try_parse(set, size + 11, &o, &ks, &why2) : -1;
    /* OpenSSL's RSA public check (SP 800-56B) runs Miller-Rabin with random
     * bases: a modulus with a factor that a base can hit passes or fails by
     * chance, so the two parses may disagree on such a key; on nothing else. */
    int chance = (rc != 0 && !strcmp(why, RANDOM_CHECK)) || (skipped && !strcmp(skipped, RANDOM_CHECK));
    /* Only when the member is one JSON value (not "1],[2"), at depth <= 30. */
    if (chance) {
        /* either answer is right */
    } else if (alone && set_rc == 0) {
        CHECK(rc == 0 && jws_keyset_count(ks) == 1);
        CHECK(jws_key_algs(jws_keyset_get(ks, 0)) == jws_key_algs(k));
    } else if (alone) {
        json_t *shallow = jws_json_try_parse(in, size, JWS_MAX_JSON_DEPTH - 2); /* fits in the set */
        CHECK(rc != 0 || !shallow);
        json_decref(shallow);
    }
    json_decref(alone);
    jws_keyset_unref(ks);
    free(set);
out:
    jws_key_unref(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > JWKS_MAX_BYTES + 1)
        return 0;
    char *in = malloc(size ? size : 1);
    CHECK(in);
    memcpy(in, data, size);
    size_t all = check_set(in, size, 0);
    size_t some = check_set(in, size, JWS_ALG_BIT(JWS_ES256) | JWS_ALG_BIT(JWS_EDDSA));
    CHECK(some <= all);
    check_single(in, size);
    long max_age = -1;
    int no_cache = 0;
    jwks__parse_cache_control(in, size, &max_age, &no_cache);
    CHECK(max_age >= -1 && max_age <= 1000000000 && (no_cache == 0 || no_cache == 1));
    free(in);
    return 0;
}
