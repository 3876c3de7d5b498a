/*
 * cli_token.c - `courant token`: prints a Mercure JWT, for development.
 *
 *   courant token --key SECRET --publish '*' --subscribe 'https://ex.com/{id}' --exp 1h
 *   courant token --alg ES256 --key-file ec-private.pem --subscribe '*'
 *
 * The claims are {"exp":..., "mercure":{"publish":[...],"subscribe":[...],
 * "payload":...}}, built with jansson (so every selector is escaped
 * correctly). HS256/384/512 are signed by jwt.c's jwt_sign_hs (the same code
 * the demo tokens use); RS256 and ES256 with OpenSSL's EVP_DigestSign and a
 * PEM private key file, the ECDSA signature converted from DER to the JOSE
 * r||s form. Signing lives here rather than in jwt.c because only this
 * development tool signs with private keys; the server only verifies.
 *
 * A secret from --key-file loses its trailing newline, as the server's
 * --publisher-jwt-key-file does, so one file serves both.
 */
#include "cli.h"

#include "jwt.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_KEY_FILE (1 << 20)
#define MAX_SELECTORS 64 /* the server's JWT_MAX_SELECTORS: more would be refused */

static const cli_opt_t opts[] = {
    {"key", "SECRET", 0,
     "the HMAC secret (HS256/384/512); prefer --key-file, argv is visible to other users"},
    {"key-file", "PATH", 0,
     "a file holding the HMAC secret (its trailing newline is dropped), or the PEM private key for "
     "RS256/ES256"},
    {"alg", "ALG", 0, "HS256 (default), HS384, HS512, RS256 or ES256: the hub's --jwt-alg"},
    {"publish", "SELECTOR", 1, "a topic selector the token may publish to (mercure.publish)"},
    {"subscribe", "SELECTOR", 1,
     "a topic selector the token may receive private updates of (mercure.subscribe)"},
    {"exp", "DURATION", 0, "lifetime: 90s, 15m, 1h (default), 7d; 0 = a token that never expires"},
    {"payload", "JSON", 0, "any JSON value, as mercure.payload (shown in subscription events)"},
    {"admin", NULL, 0,
     "an admin token for the dashboard (mercure.admin: true; sign it with the hub's --admin-jwt-key or "
     "subscriber key)"},
};

/* The claims as compact JSON (caller frees), or NULL after an error. */
static char *build_claims(const cli_args_t *a)
{
    const char *sel[MAX_SELECTORS];
    int64_t exp = 3600;
    const char *exp_s = cli_get(a, "exp");
    if (exp_s && cli_parse_duration(exp_s, &exp)) {
        cli_error(a, "--exp wants a duration like 90s, 15m, 1h, 7d or 0, not \"%s\"", exp_s);
        return NULL;
    }
    json_t *root = json_object(), *mercure = json_object();
    json_object_set_new(root, "mercure", mercure);
    if (exp > 0)
        json_object_set_new(root, "exp", json_integer((json_int_t)time(NULL) + exp));
    static const char *const arrays[] = {"publish", "subscribe"};
    for (int k = 0; k < 2; k++) {
        size_t n = cli_get_all(a, arrays[k], sel, MAX_SELECTORS);
        if (n > MAX_SELECTORS) {
            cli_error(a, "at most %d --%s selectors (the hub refuses more)", MAX_SELECTORS, arrays[k]);
            json_decref(root);
            return NULL;
        }
        if (n == 0)
            continue;
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_string(sel[i]));
        json_object_set_new(mercure, arrays[k], arr);
    }
    if (cli_flag(a, "admin"))
        json_object_set_new(mercure, "admin", json_true());
    const char *payload = cli_get(a, "payload");
    if (payload) {
        json_error_t err;
        json_t *p = json_loads(payload, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
        if (!p) {
            cli_error(a, "--payload is not JSON: %s", err.text);
            json_decref(root);
            return NULL;
        }
        json_object_set_new(mercure, "payload", p);
    }
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

/* DER ECDSA-Sig-Value -> r||s, 32 bytes each (RFC 7518 3.4). */
static int ecdsa_der_to_jose(const unsigned char *der, size_t der_len, unsigned char out[64])
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (!sig)
        return -1;
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(sig, &r, &s);
    int ok = BN_bn2binpad(r, out, 32) == 32 && BN_bn2binpad(s, out + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    return ok ? 0 : -1;
}

/* Checks the PEM key fits the algorithm: RSA >= 2048 bits, or EC P-256. */
static const char *key_mismatch(EVP_PKEY *pk, jwt_alg_t alg)
{
    if (alg == JWT_RS256) {
        if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA)
            return "RS256 wants an RSA private key";
        if (EVP_PKEY_get_bits(pk) < 2048)
            return "RS256 wants an RSA key of at least 2048 bits (the hub refuses smaller ones)";
        return NULL;
    }
    char group[64] = "";
    size_t gl = 0;
    if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
        !EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), &gl) ||
        strcmp(group, "prime256v1"))
        return "ES256 wants an EC private key on P-256 (prime256v1)";
    return NULL;
}

/* header.payload signed with a PEM private key (RS256/ES256). */
static char *sign_pkey(const cli_args_t *a, jwt_alg_t alg, const char *pem, size_t pem_len,
                       const char *claims)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
    EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!pk) {
        cli_error(a, "--key-file is not a PEM private key (%s needs one)", jwt_alg_name(alg));
        return NULL;
    }
    const char *why = key_mismatch(pk, alg);
    if (why) {
        cli_error(a, "%s", why);
        EVP_PKEY_free(pk);
        return NULL;
    }
    char header[64];
    int hl = snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", jwt_alg_name(alg));
    size_t cl = strlen(claims);
    char *tok = malloc(((size_t)hl + cl) * 4 / 3 + 1024);
    unsigned char sig[1024], jose[64];
    size_t sig_len = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t n = 0;
    int ok = tok && md;
    if (ok) {
        n = jwt_b64url_encode((const unsigned char *)header, (size_t)hl, tok);
        tok[n++] = '.';
        n += jwt_b64url_encode((const unsigned char *)claims, cl, tok + n);
        ok = EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk) == 1 &&
             EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)tok, n) == 1;
    }
    if (ok && alg == JWT_ES256) {
        ok = ecdsa_der_to_jose(sig, sig_len, jose) == 0;
        memcpy(sig, jose, sizeof(jose));
        sig_len = sizeof(jose);
    }
    if (ok) {
        tok[n++] = '.';
        jwt_b64url_encode(sig, sig_len, tok + n);
    } else {
        cli_error(a, "signing failed");
        free(tok);
        tok = NULL;
    }
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    return tok;
}

static int run(const cli_args_t *a)
{
    jwt_alg_t alg = JWT_HS256;
    const char *alg_s = cli_get(a, "alg"), *key = cli_get(a, "key"), *key_file = cli_get(a, "key-file");
    if (alg_s && jwt_alg_parse(alg_s, &alg)) {
        cli_error(a, "--alg wants HS256, HS384, HS512, RS256 or ES256, not \"%s\"", alg_s);
        return 2;
    }
    int hmac = alg == JWT_HS256 || alg == JWT_HS384 || alg == JWT_HS512;
    if (!!key == !!key_file || (!hmac && key)) {
        cli_error(a,
                  hmac ? "give --key SECRET or --key-file PATH (one of them)"
                       : "%s signs with a private key: give --key-file PEM",
                  jwt_alg_name(alg));
        return 2;
    }
    char *claims = build_claims(a);
    if (!claims)
        return 2;
    size_t len = key ? strlen(key) : 0;
    char *material = key_file ? cli_read_file(key_file, MAX_KEY_FILE, &len) : NULL;
    char *tok = NULL;
    if (key_file && !material)
        cli_error(a, "cannot read --key-file %s: %s", key_file, strerror(errno));
    else if (hmac) {
        const char *secret = key ? key : material;
        while (key_file && len && (secret[len - 1] == '\n' || secret[len - 1] == '\r'))
            len--;
        if (len == 0)
            cli_error(a, "the secret is empty");
        else if (!(tok = jwt_sign_hs(alg, secret, len, claims)))
            cli_error(a, "signing failed");
    } else {
        tok = sign_pkey(a, alg, material, len, claims);
    }
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
             "[--exp DURATION] [--payload JSON] [--admin]",
    .description =
        "Signs {\"exp\":..., \"mercure\":{\"publish\":[...], \"subscribe\":[...], \"payload\":...}} "
        "with the key the hub verifies with (its --publisher-jwt-key / --subscriber-jwt-key, or "
        "the private half of an RS256/ES256 public key) and prints the token.",
    .opts = opts,
    .num_opts = sizeof(opts) / sizeof(opts[0]),
    .run = run,
};
