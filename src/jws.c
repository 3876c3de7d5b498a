/*
 * jws.c - see jws.h.
 *
 * The decoded header, payload and signature of one token live in one stack
 * buffer of JWS_MAX_TOKEN bytes (base64url only shrinks), so the shape
 * checks allocate nothing. jansson documents are the only allocations of a
 * verification, plus the copy of the key's issuer handed back.
 *
 * Signatures: one EVP_MD_CTX per check, made and freed here, so keys stay
 * read-only and shareable. ECDSA signatures arrive as r||s (fixed width per
 * curve) and are re-encoded as the DER OpenSSL verifies; a wrong width is a
 * bad signature before any arithmetic. RSA-PSS uses the salt length of the
 * hash exactly (RSA_PSS_SALTLEN_DIGEST refuses any other on verify).
 */
#include "jws.h"

#include <assert.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What kind of material a key holds; decides which algorithms it may use. */
typedef enum key_kind { KIND_HMAC, KIND_RSA, KIND_EC256, KIND_EC384, KIND_ED25519 } key_kind_t;

struct jws_key {
    atomic_int refs;        /* owners: the builder, each set holding it */
    key_kind_t kind;        /* material type, fixed at creation */
    jws_algset_t algs;      /* algorithms this key may verify; a subset of its kind's */
    EVP_PKEY *pkey;         /* owns: public key; NULL for HMAC */
    char *kid;              /* owns: key id, NULL = none */
    char *issuer;           /* owns: bound issuer, NULL = unbound */
    size_t secret_len;      /* HMAC: bytes of secret */
    unsigned char secret[]; /* owns: HMAC secret, cleansed on free */
};

struct jws_keyset {
    atomic_int refs;   /* holders: the builder, each holder, each acquirer */
    atomic_int frozen; /* set once shared: adding after that is a bug */
    size_t n;          /* keys in use */
    size_t cap;        /* slots allocated in keys */
    jws_key_t **keys;  /* owns one reference per key */
};

static const char *const alg_names[JWS_ALG_COUNT] = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
                                                     "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"};

int jws_alg_parse(const char *name, size_t len, jws_alg_t *out)
{
    for (int i = 0; i < JWS_ALG_COUNT; i++) {
        if (strlen(alg_names[i]) == len && memcmp(name, alg_names[i], len) == 0) {
            *out = (jws_alg_t)i;
            return 0;
        }
    }
    return -1;
}

const char *jws_alg_name(jws_alg_t alg) { return (unsigned)alg < JWS_ALG_COUNT ? alg_names[alg] : "?"; }

int jws_algset_parse(const char *list, jws_algset_t *out, const char **why)
{
    jws_algset_t set = 0;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && p[0] == ' ')
            p++, n--;
        while (n && p[n - 1] == ' ')
            n--;
        jws_alg_t a;
        if (n == 0 || jws_alg_parse(p, n, &a)) {
            *why = "unknown algorithm (want HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, "
                   "ES256, ES384 or EdDSA)";
            return -1;
        }
        set |= JWS_ALG_BIT(a);
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = set;
    return 0;
}

static const EVP_MD *alg_md(jws_alg_t alg)
{
    switch (alg) {
    case JWS_HS384:
    case JWS_RS384:
    case JWS_PS384:
    case JWS_ES384:
        return EVP_sha384();
    case JWS_HS512:
    case JWS_RS512:
    case JWS_PS512:
        return EVP_sha512();
    case JWS_EDDSA:
        return NULL; /* Ed25519 hashes internally */
    default:
        return EVP_sha256();
    }
}

static int is_hmac(jws_alg_t alg) { return (JWS_ALG_BIT(alg) & JWS_ALGS_HMAC) != 0; }
static int is_pss(jws_alg_t alg) { return alg == JWS_PS256 || alg == JWS_PS384 || alg == JWS_PS512; }

static jws_algset_t kind_algs(key_kind_t kind)
{
    switch (kind) {
    case KIND_HMAC:
        return JWS_ALGS_HMAC;
    case KIND_RSA:
        return JWS_ALGS_RSA;
    case KIND_EC256:
        return JWS_ALG_BIT(JWS_ES256);
    case KIND_EC384:
        return JWS_ALG_BIT(JWS_ES384);
    case KIND_ED25519:
        return JWS_ALG_BIT(JWS_EDDSA);
    }
    return 0;
}

/* ---- keys -------------------------------------------------------------------------- */

static int copy_id(const char *s, char **out, const char **why)
{
    *out = NULL;
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (n == 0 || n > JWS_MAX_ID) {
        *why = "a kid or issuer is empty or longer than 512 bytes";
        return -1;
    }
    if (!(*out = strdup(s))) {
        *why = "out of memory";
        return -1;
    }
    return 0;
}

/* Allocates a key of `kind` with `extra` secret bytes; applies `p`. */
static jws_key_t *key_alloc(const jws_key_params_t *p, key_kind_t kind, size_t extra, const char **why)
{
    static const jws_key_params_t none = {0, NULL, NULL};
    if (!p)
        p = &none;
    jws_algset_t allowed = kind_algs(kind);
    if (p->algs & ~allowed) {
        *why = kind == KIND_HMAC ? "an HMAC secret can only verify HS256, HS384 or HS512"
                                 : "the key cannot verify the requested algorithm (RSA: RS*/PS*, "
                                   "P-256: ES256, P-384: ES384, Ed25519: EdDSA)";
        return NULL;
    }
    jws_key_t *k = calloc(1, sizeof(*k) + extra);
    if (!k) {
        *why = "out of memory";
        return NULL;
    }
    atomic_init(&k->refs, 1);
    k->kind = kind;
    k->algs = p->algs ? p->algs : allowed;
    if (copy_id(p->kid, &k->kid, why) || copy_id(p->issuer, &k->issuer, why)) {
        free(k->kid);
        free(k);
        return NULL;
    }
    return k;
}

jws_key_t *jws_key_new_hmac(const jws_key_params_t *p, const void *secret, size_t len, const char **why)
{
    if (len == 0) {
        *why = "the HMAC secret is empty";
        return NULL;
    }
    jws_key_t *k = key_alloc(p, KIND_HMAC, len, why);
    if (!k)
        return NULL;
    k->secret_len = len;
    memcpy(k->secret, secret, len);
    return k;
}

/* The kind of an OpenSSL public key, or -1 with *why if we cannot use it. */
static int pkey_kind(EVP_PKEY *pk, const char **why)
{
    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_RSA:
        if (EVP_PKEY_get_bits(pk) < 2048) {
            *why = "an RSA key must have at least 2048 bits";
            return -1;
        }
        return KIND_RSA;
    case EVP_PKEY_EC: {
        char group[64];
        size_t glen = 0;
        if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen))
            break;
        if (!strcmp(group, "prime256v1"))
            return KIND_EC256;
        if (!strcmp(group, "secp384r1"))
            return KIND_EC384;
        *why = "an EC key must be on P-256 (ES256) or P-384 (ES384)";
        return -1;
    }
    case EVP_PKEY_ED25519:
        return KIND_ED25519;
    default:
        break;
    }
    *why = "unsupported key type (want RSA, EC P-256/P-384 or Ed25519)";
    return -1;
}

jws_key_t *jws_key_new_pkey(const jws_key_params_t *p, EVP_PKEY *pkey, const char **why)
{
    int kind = pkey_kind(pkey, why);
    if (kind < 0)
        return NULL;
    jws_key_t *k = key_alloc(p, (key_kind_t)kind, 0, why);
    if (k)
        k->pkey = pkey;
    return k;
}

/* PEM public key, or a certificate's key (what people often have at hand). */
static EVP_PKEY *read_public_pem(const char *pem, size_t len)
{
    if (len > INT32_MAX)
        return NULL;
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

jws_key_t *jws_key_new_pem(const jws_key_params_t *p, const char *pem, size_t len, const char **why)
{
    EVP_PKEY *pk = read_public_pem(pem, len);
    if (!pk) {
        *why = "not a PEM public key or certificate";
        return NULL;
    }
    jws_key_t *k = jws_key_new_pkey(p, pk, why);
    if (!k)
        EVP_PKEY_free(pk);
    return k;
}

jws_key_t *jws_key_ref(const jws_key_t *key)
{
    jws_key_t *k = (jws_key_t *)key; /* the count is the one mutable part */
    int old = atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
    assert(old > 0);
    (void)old;
    return k;
}

void jws_key_unref(jws_key_t *key)
{
    if (!key || atomic_fetch_sub_explicit(&key->refs, 1, memory_order_acq_rel) != 1)
        return;
    EVP_PKEY_free(key->pkey);
    OPENSSL_cleanse(key->secret, key->secret_len);
    free(key->kid);
    free(key->issuer);
    free(key);
}

jws_algset_t jws_key_algs(const jws_key_t *key) { return key->algs; }
const char *jws_key_kid(const jws_key_t *key) { return key->kid; }
const char *jws_key_issuer(const jws_key_t *key) { return key->issuer; }

/* ---- key sets ---------------------------------------------------------------------- */

jws_keyset_t *jws_keyset_new(void)
{
    jws_keyset_t *ks = calloc(1, sizeof(*ks));
    if (ks)
        atomic_init(&ks->refs, 1);
    return ks;
}

int jws_keyset_try_add(jws_keyset_t *ks, jws_key_t *key, const char **why)
{
    assert(!atomic_load_explicit(&ks->frozen, memory_order_relaxed));
    if (ks->n == JWS_KEYSET_MAX) {
        *why = "too many keys in one set";
        jws_key_unref(key);
        return -1;
    }
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 4;
        jws_key_t **v = realloc(ks->keys, cap * sizeof(*v));
        if (!v) {
            *why = "out of memory";
            jws_key_unref(key);
            return -1;
        }
        ks->keys = v;
        ks->cap = cap;
    }
    ks->keys[ks->n++] = key;
    return 0;
}

jws_keyset_t *jws_keyset_ref(jws_keyset_t *ks)
{
    atomic_store_explicit(&ks->frozen, 1, memory_order_relaxed);
    int old = atomic_fetch_add_explicit(&ks->refs, 1, memory_order_relaxed);
    assert(old > 0);
    (void)old;
    return ks;
}

void jws_keyset_unref(jws_keyset_t *ks)
{
    if (!ks || atomic_fetch_sub_explicit(&ks->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < ks->n; i++)
        jws_key_unref(ks->keys[i]);
    free(ks->keys);
    free(ks);
}

size_t jws_keyset_count(const jws_keyset_t *ks) { return ks ? ks->n : 0; }

const jws_key_t *jws_keyset_get(const jws_keyset_t *ks, size_t i)
{
    assert(i < ks->n);
    return ks->keys[i];
}

void jws_keyset_holder_init(jws_keyset_holder_t *h)
{
    pthread_mutex_init(&h->lock, NULL);
    h->set = NULL;
}

void jws_keyset_holder_dispose(jws_keyset_holder_t *h)
{
    jws_keyset_unref(h->set);
    h->set = NULL;
    pthread_mutex_destroy(&h->lock);
}

jws_keyset_t *jws_keyset_holder_acquire(jws_keyset_holder_t *h)
{
    pthread_mutex_lock(&h->lock);
    jws_keyset_t *ks = h->set ? jws_keyset_ref(h->set) : NULL;
    pthread_mutex_unlock(&h->lock);
    return ks;
}

void jws_keyset_holder_swap(jws_keyset_holder_t *h, jws_keyset_t *ks)
{
    if (ks)
        atomic_store_explicit(&ks->frozen, 1, memory_order_relaxed);
    pthread_mutex_lock(&h->lock);
    jws_keyset_t *old = h->set;
    h->set = ks;
    pthread_mutex_unlock(&h->lock);
    jws_keyset_unref(old); /* may free: never under the lock */
}

/* ---- base64url and JSON -------------------------------------------------------------- */

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

long jws_b64url_decode(const char *in, size_t len, unsigned char *out)
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

size_t jws_b64url_encode(const unsigned char *in, size_t len, char *out)
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

/* Nesting depth of JSON text, counting brackets outside strings; stops
 * early past `max`. jansson's own limit (2048) is far above what a token
 * needs, and each level costs a recursion and an allocation. */
static int json_depth_ok(const char *buf, size_t len, int max)
{
    int depth = 0, in_str = 0, esc = 0;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return 0;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 1;
}

json_t *jws_json_try_parse(const char *buf, size_t len, int max_depth)
{
    if (!json_depth_ok(buf, len, max_depth))
        return NULL;
    /* No JSON_ALLOW_NUL: strings never hold a NUL, so strcmp is exact. */
    return json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
}

/* ---- signatures ------------------------------------------------------------------------ */

static size_t ec_coord_len(jws_alg_t alg) { return alg == JWS_ES384 ? 48 : 32; }

/* JOSE r||s (RFC 7518 3.4) into DER for OpenSSL; NULL if the width is wrong. */
static unsigned char *ecdsa_to_der(jws_alg_t alg, const unsigned char *sig, size_t sig_len, size_t *der_len)
{
    size_t half = ec_coord_len(alg);
    if (sig_len != 2 * half)
        return NULL;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *s = BN_bin2bn(sig + half, (int)half, NULL);
    unsigned char *der = NULL;
    if (es && r && s && ECDSA_SIG_set0(es, r, s)) {
        r = s = NULL; /* owned by es now */
        int n = i2d_ECDSA_SIG(es, &der);
        if (n <= 0)
            der = NULL;
        else
            *der_len = (size_t)n;
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return der;
}

/* RSA-PSS per RFC 7518 3.5: MGF1 with the same hash, salt = hash length. */
static int set_pss(EVP_PKEY_CTX *pctx, const EVP_MD *md)
{
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) > 0;
}

static int verify_hmac(const jws_key_t *key, jws_alg_t alg, const char *input, size_t ilen,
                       const unsigned char *sig, size_t sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (key->secret_len > INT32_MAX || !HMAC(alg_md(alg), key->secret, (int)key->secret_len,
                                             (const unsigned char *)input, ilen, mac, &mac_len))
        return 0;
    int ok = sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
    OPENSSL_cleanse(mac, sizeof(mac));
    return ok;
}

static int verify_pkey(const jws_key_t *key, jws_alg_t alg, const char *input, size_t ilen,
                       const unsigned char *sig, size_t sig_len)
{
    unsigned char *der = NULL;
    if (alg == JWS_ES256 || alg == JWS_ES384) {
        size_t der_len = 0;
        if (!(der = ecdsa_to_der(alg, sig, sig_len, &der_len)))
            return 0;
        sig = der;
        sig_len = der_len;
    }
    const EVP_MD *md = alg_md(alg);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = ctx && EVP_DigestVerifyInit(ctx, &pctx, md, NULL, key->pkey) == 1 &&
             (!is_pss(alg) || set_pss(pctx, md)) &&
             EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)input, ilen) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return ok;
}

static int verify_with(const jws_key_t *key, jws_alg_t alg, const char *input, size_t ilen,
                       const unsigned char *sig, size_t sig_len)
{
    assert(key->algs & JWS_ALG_BIT(alg));
    return key->kind == KIND_HMAC ? verify_hmac(key, alg, input, ilen, sig, sig_len)
                                  : verify_pkey(key, alg, input, ilen, sig, sig_len);
}

/* ---- verification ------------------------------------------------------------------------ */

void jws_verified_dispose(jws_verified_t *v)
{
    json_decref(v->header);
    json_decref(v->payload);
    free(v->key_issuer);
    memset(v, 0, sizeof(*v));
}

/* An optional string member: 0 and *out (NULL if absent), -1 if not a string. */
static int opt_string(json_t *obj, const char *name, const char **out)
{
    json_t *v = json_object_get(obj, name);
    *out = v ? json_string_value(v) : NULL;
    return v && !json_is_string(v) ? -1 : 0;
}

static int check_header(json_t *h, const jws_verify_opts_t *opts, jws_verified_t *out, const char **why)
{
    const char *alg_s = NULL;
    if (!json_is_object(h)) {
        *why = "malformed token (the header is not a JSON object)";
        return -1;
    }
    if (opt_string(h, "alg", &alg_s) || !alg_s) {
        *why = "the header has no alg";
        return -1;
    }
    if (!strcasecmp(alg_s, "none")) {
        *why = "alg none is never accepted";
        return -1;
    }
    if (jws_alg_parse(alg_s, json_string_length(json_object_get(h, "alg")), &out->alg)) {
        *why = "unsupported alg";
        return -1;
    }
    if (opts->algs && !(opts->algs & JWS_ALG_BIT(out->alg))) {
        *why = "alg differs from the configured --jwt-alg (not on the allow-list)";
        return -1;
    }
    /* RFC 7515 4.1.11: an extension we would have to understand; we know none. */
    if (json_object_get(h, "crit")) {
        *why = "crit header parameters are not supported";
        return -1;
    }
    if (opt_string(h, "kid", &out->kid) || opt_string(h, "typ", &out->typ)) {
        *why = "kid or typ in the header is not a string";
        return -1;
    }
    return 0;
}

/* Does `key` qualify for this token? pass 0: same kid; pass 1: kid-less keys. */
static int candidate(const jws_key_t *key, int pass, jws_alg_t alg, const char *kid, const char *iss)
{
    if (!(key->algs & JWS_ALG_BIT(alg)))
        return 0;
    if (iss && (!key->issuer || strcmp(key->issuer, iss) != 0))
        return 0;
    if (pass == 0)
        return kid && key->kid && !strcmp(key->kid, kid);
    return !key->kid || !kid;
}

/* Tries the candidates in order; the verifying key or NULL. *found tells
 * whether any key carried the token's kid. */
static const jws_key_t *find_signer(const jws_keyset_t *ks, const jws_verified_t *v, const char *iss,
                                    const char *input, size_t ilen, const unsigned char *sig, size_t sig_len,
                                    int *tried, int *kid_found)
{
    *tried = 0;
    *kid_found = 0;
    for (int pass = v->kid ? 0 : 1; pass < 2; pass++) {
        for (size_t i = 0; ks && i < ks->n && *tried < JWS_MAX_TRIES; i++) {
            const jws_key_t *k = ks->keys[i];
            if (!candidate(k, pass, v->alg, v->kid, iss))
                continue;
            *kid_found |= pass == 0;
            ++*tried;
            if (verify_with(k, v->alg, input, ilen, sig, sig_len))
                return k;
        }
    }
    return NULL;
}

/* Splits and decodes the three parts into buf; -1 with *why on bad shape. */
static int split_token(const char *token, size_t len, unsigned char *buf, size_t *hn, size_t *pn, size_t *sn,
                       size_t *signed_len, const char **why)
{
    if (len == 0 || len > JWS_MAX_TOKEN) {
        *why = len ? "token too long" : "empty token";
        return -1;
    }
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) {
        *why = "malformed token (not three dot-separated parts)";
        return -1;
    }
    size_t hl = (size_t)(d1 - token), pl = (size_t)(d2 - d1 - 1), sl = len - (size_t)(d2 + 1 - token);
    long h = jws_b64url_decode(token, hl, buf);
    long p = h < 0 ? -1 : jws_b64url_decode(d1 + 1, pl, buf + h);
    long s = p < 0 ? -1 : jws_b64url_decode(d2 + 1, sl, buf + h + p);
    if (s < 0 || h == 0 || p == 0) {
        *why = "malformed token (bad base64url)";
        return -1;
    }
    *hn = (size_t)h;
    *pn = (size_t)p;
    *sn = (size_t)s;
    *signed_len = (size_t)(d2 - token);
    return 0;
}

static json_t *parse_payload(const unsigned char *p, size_t n, const char **why)
{
    json_t *j = jws_json_try_parse((const char *)p, n, JWS_MAX_JSON_DEPTH);
    if (!json_is_object(j)) {
        json_decref(j);
        *why = "the payload is not a JSON object";
        return NULL;
    }
    return j;
}

int jws_try_verify(const jws_keyset_t *ks, const char *token, size_t len, const jws_verify_opts_t *opts,
                   jws_verified_t *out, const char **why)
{
    static const jws_verify_opts_t defaults = {0, 0};
    unsigned char buf[JWS_MAX_TOKEN];
    size_t hn, pn, sn, signed_len;
    memset(out, 0, sizeof(*out));
    if (!opts)
        opts = &defaults;
    if (split_token(token, len, buf, &hn, &pn, &sn, &signed_len, why))
        return JWS_ERR_INVALID;
    out->header = jws_json_try_parse((const char *)buf, hn, JWS_MAX_JSON_DEPTH);
    if (!out->header) {
        *why = "malformed token (the header is not JSON)";
        goto fail;
    }
    if (check_header(out->header, opts, out, why))
        goto fail;
    const char *iss = NULL;
    if (opts->issuer_bound) {
        if (!(out->payload = parse_payload(buf + hn, pn, why)))
            goto fail;
        if (opt_string(out->payload, "iss", &iss) || !iss) {
            *why = "the token has no iss (keys are bound to issuers)";
            goto fail;
        }
    }
    int tried, kid_found;
    const jws_key_t *k = find_signer(ks, out, iss, token, signed_len, buf + hn + pn, sn, &tried, &kid_found);
    if (!k) {
        /* A kid no key carries means the issuer rotated: the caller may ask
         * for a JWKS refresh. Failing with kid-less keys does not hide it. */
        int no_key = tried == 0 || (out->kid && !kid_found);
        if (!no_key)
            *why = "bad signature";
        else if (out->kid)
            *why = "no trusted key has the token's kid";
        else if (iss)
            *why = "no trusted key for the token's issuer and alg";
        else
            *why = "no trusted key for the token's alg";
        jws_verified_dispose(out);
        return no_key ? JWS_ERR_NO_KEY : JWS_ERR_INVALID;
    }
    if (!out->payload && !(out->payload = parse_payload(buf + hn, pn, why)))
        goto fail;
    if (k->issuer && !(out->key_issuer = strdup(k->issuer))) {
        *why = "out of memory";
        goto fail;
    }
    return 0;
fail:
    jws_verified_dispose(out);
    return JWS_ERR_INVALID;
}

/* ---- signing ---------------------------------------------------------------------------- */

/* DER ECDSA into r||s, each padded to the curve's width. */
static int der_to_jose(jws_alg_t alg, const unsigned char *der, size_t der_len, unsigned char *out)
{
    size_t half = ec_coord_len(alg);
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &der, (long)der_len);
    if (!es)
        return -1;
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    int ok =
        BN_bn2binpad(r, out, (int)half) == (int)half && BN_bn2binpad(s, out + half, (int)half) == (int)half;
    ECDSA_SIG_free(es);
    return ok ? 0 : -1;
}

/* Signature of input into sig (room for 1024 bytes); its length or -1. */
static long sign_input(jws_alg_t alg, const char *input, size_t ilen, const void *secret, size_t secret_len,
                       EVP_PKEY *priv, unsigned char *sig)
{
    if (is_hmac(alg)) {
        unsigned int n = 0;
        if (!secret || secret_len > INT32_MAX ||
            !HMAC(alg_md(alg), secret, (int)secret_len, (const unsigned char *)input, ilen, sig, &n))
            return -1;
        return (long)n;
    }
    const char *why;
    int kind = priv ? pkey_kind(priv, &why) : -1;
    if (kind < 0 || !(kind_algs((key_kind_t)kind) & JWS_ALG_BIT(alg)))
        return -1;
    unsigned char der[1024];
    size_t n = sizeof(der);
    const EVP_MD *md = alg_md(alg);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = ctx && EVP_DigestSignInit(ctx, &pctx, md, NULL, priv) == 1 &&
             (!is_pss(alg) || set_pss(pctx, md)) &&
             EVP_DigestSign(ctx, der, &n, (const unsigned char *)input, ilen) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    if (alg == JWS_ES256 || alg == JWS_ES384) {
        if (der_to_jose(alg, der, n, sig))
            return -1;
        return (long)(2 * ec_coord_len(alg));
    }
    memcpy(sig, der, n);
    return (long)n;
}

char *jws_sign(jws_alg_t alg, const char *header_json, const void *payload, size_t len, const void *secret,
               size_t secret_len, EVP_PKEY *priv)
{
    char hdr[64];
    if (!header_json) {
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", jws_alg_name(alg));
        header_json = hdr;
    }
    size_t hl = strlen(header_json);
    /* Each part encodes to at most 4*ceil(n/3) characters; the signature
     * (sign_input's 1024-byte buffer) to 1368; two dots and a NUL. */
    size_t cap = (hl + 2) / 3 * 4 + (len + 2) / 3 * 4 + 1368 + 3;
    char *tok = malloc(cap);
    unsigned char sig[1024];
    if (!tok)
        return NULL;
    size_t n = jws_b64url_encode((const unsigned char *)header_json, hl, tok);
    tok[n++] = '.';
    n += jws_b64url_encode(payload, len, tok + n);
    long sl = sign_input(alg, tok, n, secret, secret_len, priv, sig);
    if (sl < 0) {
        free(tok);
        return NULL;
    }
    tok[n++] = '.';
    jws_b64url_encode(sig, (size_t)sl, tok + n);
    OPENSSL_cleanse(sig, sizeof(sig));
    return tok;
}
