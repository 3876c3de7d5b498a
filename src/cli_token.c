/*
 * cli_token.c - `courant token`: prints a Mercure token, for development.
 *
 *   courant token --key SECRET --publish '*' --subscribe 'https://ex.com/{id}' --exp 1h
 *   courant token --alg ES256 --key-file ec-private.pem --subscribe '*'
 *   courant token --v1 --issuer https://app.example --audience https://hub.example/.well-known/mercure \
 *                 --key SECRET --subscribe 'https://ex.com/books/:id' --match-type urlpattern
 *
 * Draft-07 (default): {"exp":..., "mercure":{"publish":[...],"subscribe":[...],
 * "payload":...}} with typ JWT. With --v1, a Mercure 1.0 access token
 * (RFC 9068, typ at+jwt): {"iss","aud","sub","client_id","iat","exp","jti",
 * "authorization_details":[{"type":"https://mercure.rocks/authorization-detail",
 * "actions":["publish"|"subscribe"],"topics":[{"match","match_type"}],
 * "payload"?}]}. Claims are built with jansson (so every selector is
 * escaped correctly) and signed by jws.c's jws_sign, the same code the demo
 * tokens use: HMAC with the secret, the others with a PEM private key.
 *
 * A secret from --key-file loses its trailing newline, as the server's
 * --publisher-jwt-key-file does, so one file serves both.
 */
#include "cli.h"

#include "grant.h"
#include "jws.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_KEY_FILE (1 << 20)
#define MAX_SELECTORS GRANT_MAX_MATCHERS /* the hub refuses more */

static const cli_opt_t opts[] = {
    {"key", "SECRET", 0,
     "the HMAC secret (HS256/384/512); prefer --key-file, argv is visible to other users"},
    {"key-file", "PATH", 0,
     "a file holding the HMAC secret (its trailing newline is dropped), or the PEM private key for the "
     "other algorithms"},
    {"alg", "ALG", 0,
     "HS256 (default), HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA"},
    {"publish", "SELECTOR", 1, "a topic selector the token may publish to"},
    {"subscribe", "SELECTOR", 1, "a topic selector the token may receive private updates of"},
    {"exp", "DURATION", 0,
     "lifetime: 90s, 15m, 1h (default), 7d; 0 = a token that never expires (draft-07 only)"},
    {"payload", "JSON", 0,
     "any JSON value (draft-07: mercure.payload; 1.0: an object, the subscribe detail's)"},
    {"v1", NULL, 0, "a Mercure 1.0 access token (typ at+jwt, authorization_details) instead of draft-07"},
    {"issuer", "ISS", 0, "1.0: iss, the hub's --jwt-issuer"},
    {"audience", "URL", 0, "1.0: aud, the hub's --resource-identifier"},
    {"subject", "SUB", 0, "1.0: sub (default: courant-cli)"},
    {"match-type", "TYPE", 0, "1.0: exact (default) or urlpattern, for every selector"},
    {"admin", NULL, 0,
     "an admin token for the dashboard (mercure.admin: true; sign it with the hub's --admin-jwt-key or "
     "subscriber key)"},
};

static int read_exp(const cli_args_t *a, int64_t *exp)
{
    *exp = 3600;
    const char *exp_s = cli_get(a, "exp");
    if (exp_s && cli_parse_duration(exp_s, exp)) {
        cli_error(a, "--exp wants a duration like 90s, 15m, 1h, 7d or 0, not \"%s\"", exp_s);
        return -1;
    }
    return 0;
}

static json_t *read_payload(const cli_args_t *a, int want_object)
{
    const char *payload = cli_get(a, "payload");
    if (!payload)
        return NULL;
    json_error_t err;
    json_t *p = json_loads(payload, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
    if (!p)
        cli_error(a, "--payload is not JSON: %s", err.text);
    else if (want_object && !json_is_object(p)) {
        cli_error(a, "--payload must be a JSON object for a 1.0 token");
        json_decref(p);
        p = NULL;
    }
    return p;
}

/* --publish / --subscribe values: at most MAX_SELECTORS. -1 after an error. */
static long selectors(const cli_args_t *a, const char *name, const char **sel)
{
    size_t n = cli_get_all(a, name, sel, MAX_SELECTORS);
    if (n > MAX_SELECTORS) {
        cli_error(a, "at most %d --%s selectors (the hub refuses more)", MAX_SELECTORS, name);
        return -1;
    }
    return (long)n;
}

/* Draft-07 claims as compact JSON (caller frees), or NULL after an error. */
static char *build_classic(const cli_args_t *a)
{
    const char *sel[MAX_SELECTORS];
    int64_t exp;
    if (read_exp(a, &exp))
        return NULL;
    json_t *root = json_object(), *mercure = json_object();
    json_object_set_new(root, "mercure", mercure);
    if (exp > 0)
        json_object_set_new(root, "exp", json_integer((json_int_t)time(NULL) + exp));
    static const char *const arrays[] = {"publish", "subscribe"};
    for (int k = 0; k < 2; k++) {
        long n = selectors(a, arrays[k], sel);
        if (n < 0) {
            json_decref(root);
            return NULL;
        }
        if (n == 0)
            continue;
        json_t *arr = json_array();
        for (long i = 0; i < n; i++)
            json_array_append_new(arr, json_string(sel[i]));
        json_object_set_new(mercure, arrays[k], arr);
    }
    if (cli_flag(a, "admin"))
        json_object_set_new(mercure, "admin", json_true());
    if (cli_get(a, "payload")) {
        json_t *p = read_payload(a, 0);
        if (!p) {
            json_decref(root);
            return NULL;
        }
        json_object_set_new(mercure, "payload", p);
    }
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

/* One Mercure authorization detail for `action` on the selectors. */
static json_t *detail(const char *action, const char **sel, long n, const char *match_type, json_t *payload)
{
    json_t *topics = json_array();
    for (long i = 0; i < n; i++)
        json_array_append_new(topics, json_pack("{s:s, s:s}", "match", sel[i], "match_type", match_type));
    json_t *d =
        json_pack("{s:s, s:[s], s:o}", "type", GRANT_DETAIL_TYPE, "actions", action, "topics", topics);
    if (d && payload)
        json_object_set(d, "payload", payload);
    return d;
}

/* Mercure 1.0 access token claims (caller frees), or NULL after an error. */
static char *build_v1(const cli_args_t *a)
{
    const char *iss = cli_get(a, "issuer"), *aud = cli_get(a, "audience"), *mt = cli_get(a, "match-type");
    const char *sub = cli_get(a, "subject");
    int64_t exp;
    if (!iss || !aud) {
        cli_error(a,
                  "--v1 wants --issuer (the hub's --jwt-issuer) and --audience (its --resource-identifier)");
        return NULL;
    }
    if (mt && strcmp(mt, "exact") && strcmp(mt, "urlpattern")) {
        cli_error(a, "--match-type wants exact or urlpattern, not \"%s\"", mt);
        return NULL;
    }
    if (read_exp(a, &exp))
        return NULL;
    if (exp <= 0) {
        cli_error(a, "a 1.0 access token must expire (RFC 9068): give --exp a duration");
        return NULL;
    }
    const char *pub[MAX_SELECTORS], *subs[MAX_SELECTORS];
    long np = selectors(a, "publish", pub), ns = selectors(a, "subscribe", subs);
    json_t *payload = cli_get(a, "payload") ? read_payload(a, 1) : NULL;
    if (np < 0 || ns < 0 || (cli_get(a, "payload") && !payload)) {
        json_decref(payload);
        return NULL;
    }
    unsigned char rnd[16];
    char jti[64];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        memset(rnd, 0, sizeof(rnd));
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
    json_int_t now = (json_int_t)time(NULL);
    json_t *details = json_array();
    if (np)
        json_array_append_new(details, detail("publish", pub, np, mt ? mt : "exact", NULL));
    if (ns)
        json_array_append_new(details, detail("subscribe", subs, ns, mt ? mt : "exact", payload));
    json_decref(payload);
    json_t *root = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:o}", "iss", iss, "aud", aud, "sub",
                             sub ? sub : "courant-cli", "client_id", "courant-cli", "iat", now, "exp",
                             now + (json_int_t)exp, "jti", jti, "authorization_details", details);
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return s;
}

/* Why the key cannot sign alg, or NULL. */
static const char *key_mismatch(EVP_PKEY *pk, jws_alg_t alg)
{
    int id = EVP_PKEY_get_base_id(pk);
    if (alg <= JWS_PS512 && id != EVP_PKEY_RSA)
        return "wants an RSA private key";
    if (alg == JWS_EDDSA && id != EVP_PKEY_ED25519)
        return "wants an Ed25519 private key";
    if (alg == JWS_ES256 || alg == JWS_ES384) {
        char group[64] = "";
        size_t gl = 0;
        const char *want = alg == JWS_ES256 ? "prime256v1" : "secp384r1";
        if (id != EVP_PKEY_EC || !EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), &gl) ||
            strcmp(group, want))
            return alg == JWS_ES256 ? "wants an EC private key on P-256 (prime256v1)"
                                    : "wants an EC private key on P-384 (secp384r1)";
    }
    if (id == EVP_PKEY_RSA && EVP_PKEY_get_bits(pk) < 2048)
        return "wants an RSA key of at least 2048 bits (the hub refuses smaller ones)";
    return NULL;
}

static EVP_PKEY *read_private_key(const cli_args_t *a, jws_alg_t alg, const char *pem, size_t pem_len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
    EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!pk)
        cli_error(a, "--key-file is not a PEM private key (%s needs one)", jws_alg_name(alg));
    else if (key_mismatch(pk, alg)) {
        cli_error(a, "%s %s", jws_alg_name(alg), key_mismatch(pk, alg));
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    return pk;
}

static char *sign(const cli_args_t *a, jws_alg_t alg, const char *material, size_t len, int from_file,
                  const char *claims)
{
    char header[64];
    snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"%s\"}", jws_alg_name(alg),
             cli_flag(a, "v1") ? "at+jwt" : "JWT");
    if (alg <= JWS_HS512) {
        while (from_file && len && (material[len - 1] == '\n' || material[len - 1] == '\r'))
            len--;
        if (len == 0) {
            cli_error(a, "the secret is empty");
            return NULL;
        }
        char *tok = jws_sign(alg, header, claims, strlen(claims), material, len, NULL);
        if (!tok)
            cli_error(a, "signing failed");
        return tok;
    }
    EVP_PKEY *pk = read_private_key(a, alg, material, len);
    if (!pk)
        return NULL;
    char *tok = jws_sign(alg, header, claims, strlen(claims), NULL, 0, pk);
    if (!tok)
        cli_error(a, "signing failed");
    EVP_PKEY_free(pk);
    return tok;
}

static int run(const cli_args_t *a)
{
    jws_alg_t alg = JWS_HS256;
    const char *alg_s = cli_get(a, "alg"), *key = cli_get(a, "key"), *key_file = cli_get(a, "key-file");
    if (alg_s && jws_alg_parse(alg_s, strlen(alg_s), &alg)) {
        cli_error(
            a,
            "--alg wants HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or "
            "EdDSA, not \"%s\"",
            alg_s);
        return 2;
    }
    int hmac = alg <= JWS_HS512;
    if (!!key == !!key_file || (!hmac && key)) {
        cli_error(a,
                  hmac ? "give --key SECRET or --key-file PATH (one of them)"
                       : "%s signs with a private key: give --key-file PEM",
                  jws_alg_name(alg));
        return 2;
    }
    char *claims = cli_flag(a, "v1") ? build_v1(a) : build_classic(a);
    if (!claims)
        return 2;
    size_t len = key ? strlen(key) : 0;
    char *material = key_file ? cli_read_file(key_file, MAX_KEY_FILE, &len) : NULL;
    char *tok = NULL;
    if (key_file && !material)
        cli_error(a, "cannot read --key-file %s: %s", key_file, strerror(errno));
    else
        tok = sign(a, alg, key ? key : material, len, key_file != NULL, claims);
    if (material) {
        memset(material, 0, len);
        free(material);
    }
    free(claims);
    if (!tok)
        return 1;
    printf("%s\n", tok);
    free(tok);
    return 0;
}

const cli_command_t cli_token_command = {
    .name = "token",
    .summary = "print a JWT for publishing or subscribing (development)",
    .usage = "courant token --key SECRET|--key-file PATH [--alg ALG] [--publish SEL]... [--subscribe SEL]... "
             "[--exp DURATION] [--payload JSON] [--admin] [--v1 --issuer ISS --audience URL [--subject SUB] "
             "[--match-type TYPE]]",
    .description =
        "Signs {\"exp\":..., \"mercure\":{\"publish\":[...], \"subscribe\":[...], \"payload\":...}} "
        "(or, with --v1, a Mercure 1.0 access token with authorization_details) "
        "with the key the hub verifies with (its --publisher-jwt-key / --subscriber-jwt-key, or "
        "the private half of a public key) and prints the token.",
    .opts = opts,
    .num_opts = sizeof(opts) / sizeof(opts[0]),
    .run = run,
};
