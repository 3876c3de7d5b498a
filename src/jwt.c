/*
 * jwt.c - see jwt.h.
 *
 * Order of checks, cheapest and least trusting first, so that a forged token
 * never reaches the JSON parser with attacker-chosen claims:
 *
 *   1. shape: length cap, exactly two dots, base64url alphabet only
 *   2. header: a JSON object whose "alg" equals the key's algorithm
 *   3. signature over the first two parts (constant-time for HMAC)
 *   4. payload: a JSON object; exp/nbf numbers; the mercure claim's types
 *
 * The decoded parts live in one stack buffer sized by JWT_MAX_TOKEN.
 */
#include "jwt.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

struct jwt_key {
    jwt_alg_t alg;
    EVP_PKEY *pkey;         /* owns: RS256/ES256 public key, else NULL */
    size_t secret_len;      /* HS*: bytes of secret */
    unsigned char secret[]; /* owns: HS* shared secret */
};

static const char *const alg_names[] = {"HS256", "HS384", "HS512", "RS256", "ES256"};

int jwt_alg_parse(const char *name, jwt_alg_t *out)
{
    for (int i = 0; i < (int)(sizeof(alg_names) / sizeof(alg_names[0])); i++) {
        if (!strcmp(name, alg_names[i])) {
            *out = (jwt_alg_t)i;
            return 0;
        }
    }
    return -1;
}

const char *jwt_alg_name(jwt_alg_t alg) { return alg_names[alg]; }

static int is_hmac(jwt_alg_t alg) { return alg <= JWT_HS512; }

static const EVP_MD *alg_md(jwt_alg_t alg)
{
    switch (alg) {
    case JWT_HS384:
        return EVP_sha384();
    case JWT_HS512:
        return EVP_sha512();
    default:
        return EVP_sha256();
    }
}

/* PEM public key, or a certificate's key (what people often have at hand). */
static EVP_PKEY *read_public_pem(const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return NULL;
    EVP_PKEY *k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (!k) {
        (void)BIO_reset(bio);
        X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (cert) {
            k = X509_get_pubkey(cert);
            X509_free(cert);
        }
    }
    BIO_free(bio);
    return k;
}

static int key_fits_alg(EVP_PKEY *k, jwt_alg_t alg, const char **why)
{
    if (alg == JWT_RS256) {
        if (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA || EVP_PKEY_get_bits(k) < 2048) {
            *why = "RS256 wants an RSA public key of at least 2048 bits";
            return 0;
        }
        return 1;
    }
    char group[64];
    size_t glen = 0;
    if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
        !EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &glen) ||
        strcmp(group, "prime256v1") != 0) {
        *why = "ES256 wants an EC public key on P-256";
        return 0;
    }
    return 1;
}

jwt_key_t *jwt_key_new(jwt_alg_t alg, const char *material, size_t len, const char **why)
{
    if (is_hmac(alg)) {
        if (len == 0) {
            *why = "the HMAC secret is empty";
            return NULL;
        }
        jwt_key_t *key = malloc(sizeof(*key) + len);
        if (!key) {
            *why = "out of memory";
            return NULL;
        }
        key->alg = alg;
        key->pkey = NULL;
        key->secret_len = len;
        memcpy(key->secret, material, len);
        return key;
    }
    EVP_PKEY *k = read_public_pem(material, len);
    if (!k) {
        *why = "not a PEM public key or certificate";
        return NULL;
    }
    if (!key_fits_alg(k, alg, why)) {
        EVP_PKEY_free(k);
        return NULL;
    }
    jwt_key_t *key = calloc(1, sizeof(*key));
    if (!key) {
        EVP_PKEY_free(k);
        *why = "out of memory";
        return NULL;
    }
    key->alg = alg;
    key->pkey = k;
    return key;
}

void jwt_key_free(jwt_key_t *key)
{
    if (!key)
        return;
    EVP_PKEY_free(key->pkey);
    OPENSSL_cleanse(key->secret, key->secret_len);
    free(key);
}

jwt_alg_t jwt_key_alg(const jwt_key_t *key) { return key->alg; }

/* ---- base64url ---------------------------------------------------------- */

static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '-')
        return 62;
    if (ch == '_')
        return 63;
    return -1;
}

long jwt_b64url_decode(const char *in, size_t len, unsigned char *out)
{
    if (len % 4 == 1)
        return -1; /* no whole byte in a lone sextet */
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    /* Leftover bits must be zero: otherwise two encodings decode the same. */
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    return (long)n;
}

size_t jwt_b64url_encode(const unsigned char *in, size_t len, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[n++] = abc[(acc >> bits) & 63];
        }
    }
    if (bits)
        out[n++] = abc[(acc << (6 - bits)) & 63];
    out[n] = 0;
    return n;
}

/* ---- signatures ------------------------------------------------------------ */

static int verify_hmac(const jwt_key_t *key, const char *signed_part, size_t slen, const unsigned char *sig,
                       size_t sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(alg_md(key->alg), key->secret, (int)key->secret_len, (const unsigned char *)signed_part, slen,
              mac, &mac_len))
        return 0;
    return sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
}

/* JOSE ES256 signatures are r||s, 32 bytes each (RFC 7518, 3.4); OpenSSL
 * verifies DER, so the pair is re-encoded. */
static unsigned char *es256_to_der(const unsigned char *sig, size_t sig_len, int *der_len)
{
    if (sig_len != 64)
        return NULL;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL;
    if (es && r && s && ECDSA_SIG_set0(es, r, s)) {
        r = s = NULL; /* owned by es now */
        *der_len = i2d_ECDSA_SIG(es, &der);
        if (*der_len <= 0)
            der = NULL;
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return der;
}

static int verify_pkey(const jwt_key_t *key, const char *signed_part, size_t slen, const unsigned char *sig,
                       size_t sig_len)
{
    unsigned char *der = NULL;
    int der_len = 0;
    if (key->alg == JWT_ES256) {
        if (!(der = es256_to_der(sig, sig_len, &der_len)))
            return 0;
        sig = der;
        sig_len = (size_t)der_len;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key->pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)signed_part, slen) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return ok;
}

/* ---- claims ------------------------------------------------------------------ */

void jwt_claims_dispose(jwt_claims_t *c)
{
    for (size_t i = 0; i < c->num_publish; i++)
        free(c->publish[i]);
    for (size_t i = 0; i < c->num_subscribe; i++)
        free(c->subscribe[i]);
    free(c->publish);
    free(c->subscribe);
    free(c->payload);
    memset(c, 0, sizeof(*c));
}

/* An array of strings into a malloc'd vector; -1 if it is not one. */
static int take_selectors(json_t *arr, char ***out, size_t *n_out, const char **why)
{
    if (!json_is_array(arr)) {
        *why = "mercure.publish/subscribe is not an array";
        return -1;
    }
    size_t n = json_array_size(arr);
    if (n > JWT_MAX_SELECTORS) {
        *why = "too many selectors in a mercure claim";
        return -1;
    }
    char **v = calloc(n ? n : 1, sizeof(*v));
    if (!v) {
        *why = "out of memory";
        return -1;
    }
    *out = v; /* disposed by the caller on failure too */
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(arr, i);
        if (!json_is_string(s) || json_string_length(s) == 0 ||
            memchr(json_string_value(s), 0, json_string_length(s))) {
            *why = "a mercure selector is not a non-empty string";
            return -1;
        }
        if (!(v[i] = strdup(json_string_value(s)))) {
            *why = "out of memory";
            return -1;
        }
        *n_out = i + 1;
    }
    return 0;
}

static int read_mercure_claim(json_t *m, jwt_claims_t *out, const char **why)
{
    if (!json_is_object(m)) {
        *why = "the mercure claim is not an object";
        return -1;
    }
    json_t *p = json_object_get(m, "publish");
    if (p && !json_is_null(p)) {
        out->has_publish = 1;
        if (take_selectors(p, &out->publish, &out->num_publish, why))
            return -1;
    }
    json_t *s = json_object_get(m, "subscribe");
    if (s && !json_is_null(s)) {
        out->has_subscribe = 1;
        if (take_selectors(s, &out->subscribe, &out->num_subscribe, why))
            return -1;
    }
    json_t *pl = json_object_get(m, "payload");
    if (pl && !(out->payload = json_dumps(pl, JSON_COMPACT | JSON_ENCODE_ANY))) {
        *why = "out of memory";
        return -1;
    }
    return 0;
}

/* A NumericDate (RFC 7519, 2): a JSON number; fractions are truncated. */
static int read_time(json_t *payload, const char *name, int64_t *out, const char **why)
{
    json_t *t = json_object_get(payload, name);
    *out = 0;
    if (!t)
        return 0;
    if (!json_is_number(t)) {
        *why = "exp or nbf is not a number";
        return -1;
    }
    double d = json_number_value(t);
    if (!(d > -1e15 && d < 1e15)) {
        *why = "exp or nbf is out of range";
        return -1;
    }
    *out = (int64_t)d;
    return 0;
}

static int read_payload(const unsigned char *buf, size_t len, int64_t now_s, jwt_claims_t *out,
                        const char **why)
{
    json_t *root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        *why = "the payload is not a JSON object";
        return -1;
    }
    int64_t nbf = 0;
    int rc = -1;
    if (read_time(root, "exp", &out->exp, why) || read_time(root, "nbf", &nbf, why)) {
        /* why set */
    } else if (json_object_get(root, "exp") && out->exp <= now_s) {
        *why = "expired (exp is in the past)";
    } else if (json_object_get(root, "nbf") && nbf > now_s) {
        *why = "not valid yet (nbf is in the future)";
    } else if (json_object_get(root, "mercure") &&
               read_mercure_claim(json_object_get(root, "mercure"), out, why)) {
        /* why set */
    } else {
        if (!json_object_get(root, "exp"))
            out->exp = 0;
        rc = 0;
    }
    json_decref(root);
    return rc;
}

static int check_header(const jwt_key_t *key, const unsigned char *buf, size_t len, const char **why)
{
    json_t *h = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *alg = json_is_object(h) ? json_object_get(h, "alg") : NULL;
    int rc = -1;
    if (!json_is_string(alg))
        *why = "the header has no alg";
    else if (!strcmp(json_string_value(alg), "none") || !strcmp(json_string_value(alg), "None"))
        *why = "alg none is never accepted";
    else if (strcmp(json_string_value(alg), alg_names[key->alg]) != 0)
        *why = "alg differs from the configured --jwt-alg";
    else if (json_object_get(h, "crit"))
        *why = "crit header parameters are not supported";
    else
        rc = 0;
    json_decref(h);
    return rc;
}

int jwt_try_verify(const jwt_key_t *key, const char *token, size_t len, int64_t now_s, jwt_claims_t *out,
                   const char **why)
{
    memset(out, 0, sizeof(*out));
    if (len == 0 || len > JWT_MAX_TOKEN) {
        *why = len ? "token too long" : "empty token";
        return -1;
    }
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) {
        *why = "malformed token (not three dot-separated parts)";
        return -1;
    }
    size_t hlen = (size_t)(d1 - token), plen = (size_t)(d2 - d1 - 1), slen = len - (size_t)(d2 + 1 - token);
    unsigned char buf[JWT_MAX_TOKEN];
    long hn = jwt_b64url_decode(token, hlen, buf);
    long pn = hn < 0 ? -1 : jwt_b64url_decode(d1 + 1, plen, buf + hn);
    long sn = pn < 0 ? -1 : jwt_b64url_decode(d2 + 1, slen, buf + hn + pn);
    if (sn < 0 || hn == 0 || pn == 0) {
        *why = "malformed token (bad base64url)";
        return -1;
    }
    if (check_header(key, buf, (size_t)hn, why))
        return -1;
    const unsigned char *sig = buf + hn + pn;
    size_t signed_len = (size_t)(d2 - token);
    int ok = is_hmac(key->alg) ? verify_hmac(key, token, signed_len, sig, (size_t)sn)
                               : verify_pkey(key, token, signed_len, sig, (size_t)sn);
    if (!ok) {
        *why = "bad signature";
        return -1;
    }
    if (read_payload(buf + hn, (size_t)pn, now_s, out, why)) {
        jwt_claims_dispose(out);
        return -1;
    }
    return 0;
}

char *jwt_sign_hs(jwt_alg_t alg, const char *secret, size_t secret_len, const char *payload_json)
{
    if (!is_hmac(alg))
        return NULL;
    char header[64];
    int hl = snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg_names[alg]);
    size_t pl = strlen(payload_json);
    size_t cap = (size_t)(hl + pl) * 4 / 3 + 4 * EVP_MAX_MD_SIZE / 3 + 16;
    char *tok = malloc(cap);
    if (!tok)
        return NULL;
    size_t n = jwt_b64url_encode((const unsigned char *)header, (size_t)hl, tok);
    tok[n++] = '.';
    n += jwt_b64url_encode((const unsigned char *)payload_json, pl, tok + n);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(alg_md(alg), secret, (int)secret_len, (const unsigned char *)tok, n, mac, &mac_len)) {
        free(tok);
        return NULL;
    }
    tok[n++] = '.';
    jwt_b64url_encode(mac, mac_len, tok + n);
    return tok;
}
