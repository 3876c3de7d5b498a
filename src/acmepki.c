/*
 * acmepki.c - see acmepki.h.
 *
 * Only P-256: the account key signs ES256 JWS (the one algorithm every ACME
 * CA accepts besides RS256, with 64-byte signatures instead of 256), and
 * certificate keys are P-256 too (every client and CA supports it; a
 * handshake costs a fraction of an RSA-2048 one).
 *
 * The chain check reads PEM blocks one by one with PEM_read_bio (so a block
 * of another kind is refused, not skipped) and d2i_X509 each, requiring
 * the DER to be consumed exactly: what a CA sends is parsed as strictly as
 * a token from a client.
 */
#include "acmepki.h"

#include "jws.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACME_IDENTIFIER_OID "1.3.6.1.5.5.7.1.31" /* id-pe-acmeIdentifier, RFC 8737 6.1 */

EVP_PKEY *acmepki_new_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    ERR_clear_error();
    return k;
}

static int is_p256(EVP_PKEY *key)
{
    char group[32];
    size_t gl = 0;
    return key && EVP_PKEY_is_a(key, "EC") &&
           EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &gl) == 1 &&
           !strcmp(group, "prime256v1");
}

/* A memory BIO's contents as a malloc'd string. */
static char *bio_string(BIO *b, size_t *len)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) {
        memcpy(s, data, (size_t)n);
        s[n] = 0;
        if (len)
            *len = (size_t)n;
    }
    return s;
}

char *acmepki_key_pem(EVP_PKEY *key, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;
    if (b && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1)
        s = bio_string(b, len);
    BIO_free(b);
    ERR_clear_error();
    return s;
}

/* Never prompt: an encrypted key is refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

EVP_PKEY *acmepki_key_from_pem(const char *pem, size_t len)
{
    if (len > INT32_MAX)
        return NULL;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    if (k && !is_p256(k)) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    return k;
}

int acmepki_jwk(EVP_PKEY *key, char *out, size_t cap)
{
    BIGNUM *x = NULL, *y = NULL;
    unsigned char xb[32], yb[32];
    char xs[48], ys[48];
    int ok = is_p256(key) && EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
             EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1 && BN_bn2binpad(x, xb, 32) == 32 &&
             BN_bn2binpad(y, yb, 32) == 32;
    BN_free(x);
    BN_free(y);
    ERR_clear_error();
    if (!ok)
        return -1;
    jws_b64url_encode(xb, 32, xs);
    jws_b64url_encode(yb, 32, ys);
    int n = snprintf(out, cap, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", xs, ys);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

int acmepki_thumbprint(EVP_PKEY *key, char *out)
{
    char jwk[160];
    unsigned char d[32];
    unsigned int dl = 0;
    if (acmepki_jwk(key, jwk, sizeof(jwk)) || !EVP_Digest(jwk, strlen(jwk), d, &dl, EVP_sha256(), NULL))
        return -1;
    jws_b64url_encode(d, 32, out);
    return 0;
}

int acmepki_key_authorization(const char *token, const char *thumbprint, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s.%s", token, thumbprint);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* ---- names ------------------------------------------------------------------------ */

static GENERAL_NAMES *san_of(const char *const *names, size_t n)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    for (size_t i = 0; gens && i < n; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        if (!g || !s || !ASN1_STRING_set(s, names[i], (int)strlen(names[i]))) {
            GENERAL_NAME_free(g);
            ASN1_IA5STRING_free(s);
            goto fail;
        }
        GENERAL_NAME_set0_value(g, GEN_DNS, s);
        if (!sk_GENERAL_NAME_push(gens, g)) {
            GENERAL_NAME_free(g);
            goto fail;
        }
    }
    return gens;
fail:
    GENERAL_NAMES_free(gens);
    return NULL;
}

/* CN = the first name when it fits the 64 bytes X.520 allows; else none
 * (the SANs are what clients check). */
static X509_NAME *subject_of(const char *const *names, size_t n)
{
    X509_NAME *nm = X509_NAME_new();
    if (nm && n && strlen(names[0]) <= 64 &&
        !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)names[0], -1, -1, 0)) {
        X509_NAME_free(nm);
        return NULL;
    }
    return nm;
}

unsigned char *acmepki_csr_der(EVP_PKEY *key, const char *const *names, size_t n, size_t *len)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *nm = subject_of(names, n);
    GENERAL_NAMES *gens = n ? san_of(names, n) : NULL;
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *san = gens ? X509V3_EXT_i2d(NID_subject_alt_name, 0, gens) : NULL;
    unsigned char *der = NULL;
    int dl = -1;
    if (req && nm && san && exts && sk_X509_EXTENSION_push(exts, san)) {
        san = NULL; /* the stack owns it */
        if (X509_REQ_set_version(req, 0) && X509_REQ_set_subject_name(req, nm) &&
            X509_REQ_set_pubkey(req, key) && X509_REQ_add_extensions(req, exts) &&
            X509_REQ_sign(req, key, EVP_sha256()) > 0)
            dl = i2d_X509_REQ(req, &der);
    }
    X509_EXTENSION_free(san);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(gens);
    X509_NAME_free(nm);
    X509_REQ_free(req);
    ERR_clear_error();
    if (dl <= 0) {
        OPENSSL_free(der);
        return NULL;
    }
    /* OpenSSL's allocation into ours, so the caller frees it with free(). */
    unsigned char *copy = malloc((size_t)dl);
    if (copy)
        memcpy(copy, der, (size_t)dl);
    OPENSSL_free(der);
    *len = (size_t)dl;
    return copy;
}

/* ---- self-signed certificates ----------------------------------------------------- */

static int random_serial(X509 *x)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1)
        return 0;
    b[0] &= 0x7f; /* positive */
    b[0] |= 0x01; /* and never shorter than 16 bytes' worth */
    BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
    int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

/* The critical acmeIdentifier extension: an OCTET STRING holding the DER of
 * an OCTET STRING of the 32-byte digest (RFC 8737 3). */
static int add_acme_identifier(X509 *x, const unsigned char *digest)
{
    ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new(), *value = ASN1_OCTET_STRING_new();
    ASN1_OBJECT *oid = OBJ_txt2obj(ACME_IDENTIFIER_OID, 1);
    unsigned char *der = NULL;
    X509_EXTENSION *ext = NULL;
    int ok = 0;
    if (inner && value && oid && ASN1_OCTET_STRING_set(inner, digest, 32)) {
        int dl = i2d_ASN1_OCTET_STRING(inner, &der);
        if (dl > 0 && ASN1_OCTET_STRING_set(value, der, dl) &&
            (ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, value)) != NULL)
            ok = X509_add_ext(x, ext, -1) == 1;
    }
    X509_EXTENSION_free(ext);
    OPENSSL_free(der);
    ASN1_OBJECT_free(oid);
    ASN1_OCTET_STRING_free(inner);
    ASN1_OCTET_STRING_free(value);
    return ok;
}

X509 *acmepki_self_signed(EVP_PKEY *key, const char *const *names, size_t n, int days,
                          const unsigned char *acme_digest)
{
    if (n == 0 || (acme_digest && n != 1))
        return NULL;
    X509 *x = X509_new();
    X509_NAME *nm = subject_of(names, n);
    GENERAL_NAMES *gens = san_of(names, n);
    int ok = x && nm && gens && X509_set_version(x, 2) && random_serial(x) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
             X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) && X509_set_subject_name(x, nm) &&
             X509_set_issuer_name(x, nm) && X509_set_pubkey(x, key) &&
             X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1 &&
             (!acme_digest || add_acme_identifier(x, acme_digest)) && X509_sign(x, key, EVP_sha256()) > 0;
    GENERAL_NAMES_free(gens);
    X509_NAME_free(nm);
    ERR_clear_error();
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

char *acmepki_cert_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;
    if (b && PEM_write_bio_X509(b, x) == 1)
        s = bio_string(b, NULL);
    BIO_free(b);
    ERR_clear_error();
    return s;
}

/* ---- a chain from a CA --------------------------------------------------------------- */

static time_t asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return (time_t)-1;
    return timegm(&tm);
}

static void describe_leaf(X509 *leaf, acmepki_info_t *info)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    snprintf(info->serial, sizeof(info->serial), "%s", hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
    const X509_NAME *iss = X509_get_issuer_name(leaf);
    int i = X509_NAME_get_index_by_NID(iss, NID_commonName, -1);
    const ASN1_STRING *cn = i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(iss, i)) : NULL;
    size_t n = 0;
    if (cn) {
        const unsigned char *d = ASN1_STRING_get0_data(cn);
        int l = ASN1_STRING_length(cn);
        for (; n < (size_t)l && n < sizeof(info->issuer) - 1; n++)
            info->issuer[n] = d[n] < 0x20 || d[n] >= 0x7f ? '?' : (char)d[n];
    }
    info->issuer[n] = 0;
    info->self_signed = X509_NAME_cmp(X509_get_subject_name(leaf), iss) == 0;
}

/* Reads the next PEM block, which must be a CERTIFICATE. 1 with *out, 0 at
 * the end, -1 on anything else. */
static int next_cert(BIO *b, X509 **out)
{
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    *out = NULL;
    if (PEM_read_bio(b, &name, &header, &data, &len) != 1) {
        unsigned long e = ERR_peek_last_error();
        ERR_clear_error();
        return ERR_GET_REASON(e) == PEM_R_NO_START_LINE ? 0 : -1;
    }
    const unsigned char *p = data;
    if (!strcmp(name, "CERTIFICATE") && !header[0] && len > 0)
        *out = d2i_X509(NULL, &p, len);
    int whole = *out && p == data + len;
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    ERR_clear_error();
    if (!whole) {
        X509_free(*out);
        *out = NULL;
        return -1;
    }
    return 1;
}

int acmepki_check_chain(const char *pem, size_t len, EVP_PKEY *key, const char *const *names, size_t n,
                        acmepki_info_t *info, const char **why)
{
    acmepki_info_t local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof(*info));
    if (len == 0 || len > ACMEPKI_MAX_CHAIN) {
        *why = "the certificate chain is empty or larger than 64 KiB";
        return -1;
    }
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *leaf = NULL, *x = NULL;
    int r, rc = -1;
    *why = "the certificate chain is not PEM certificates";
    while (b && (r = next_cert(b, &x)) == 1) {
        if (++info->num_certs > ACMEPKI_MAX_CERTS) {
            X509_free(x);
            *why = "the certificate chain has more than 8 certificates";
            goto out;
        }
        if (!leaf)
            leaf = x;
        else
            X509_free(x);
    }
    if (!b || r < 0 || !leaf)
        goto out;
    info->not_before = asn1_to_time(X509_get0_notBefore(leaf));
    info->not_after = asn1_to_time(X509_get0_notAfter(leaf));
    describe_leaf(leaf, info);
    if (info->not_before == (time_t)-1 || info->not_after == (time_t)-1 ||
        info->not_after <= info->not_before) {
        *why = "the certificate's validity period is malformed";
        goto out;
    }
    if (key && EVP_PKEY_eq(X509_get0_pubkey(leaf), key) != 1) {
        *why = "the certificate is not for our key";
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (X509_check_host(leaf, names[i], strlen(names[i]),
                            X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_WILDCARDS, NULL) != 1) {
            *why = "the certificate does not name every domain";
            goto out;
        }
    }
    rc = 0;
out:
    X509_free(leaf);
    BIO_free(b);
    ERR_clear_error();
    if (rc)
        memset(info, 0, sizeof(*info));
    return rc;
}
