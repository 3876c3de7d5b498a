/*
 * acmepki.h - the keys and certificates of automatic HTTPS (OpenSSL):
 * ECDSA P-256 keys as PEM, the account's JWK and its thumbprint (RFC 7638),
 * key authorizations (RFC 8555 8.1), the CSR of an order, self-signed
 * certificates (the bootstrap one, and the TLS-ALPN-01 one with its
 * acmeIdentifier extension, RFC 8737 3), and the check of a certificate
 * chain a CA sent (hostile input: bounded, parsed, matched to our key and
 * names).
 *
 *   account key --> JWK {"crv","kty","x","y"} --> SHA-256 --> thumbprint (43 chars)
 *   token "." thumbprint = key authorization
 *     HTTP-01:     served as is at /.well-known/acme-challenge/<token>
 *     TLS-ALPN-01: SHA-256(key authorization) in a critical extension
 *                  1.3.6.1.5.5.7.1.31 (OCTET STRING) of a self-signed
 *                  certificate whose only SAN is the name
 *
 * Pure (no I/O but what a caller passes in, no globals); any thread.
 * Objects returned are new: the caller frees them (EVP_PKEY_free,
 * X509_free, free for strings and DER).
 */
#ifndef COURANT_ACMEPKI_H
#define COURANT_ACMEPKI_H

#include <openssl/types.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ACMEPKI_MAX_CHAIN (64 * 1024) /* bytes of a PEM chain we accept from a CA */
#define ACMEPKI_MAX_CERTS 8           /* certificates in that chain */
#define ACMEPKI_THUMBPRINT_LEN 43     /* base64url of 32 bytes */

/* A new ECDSA P-256 key, or NULL. */
EVP_PKEY *acmepki_new_key(void);

/* The private key as unencrypted PKCS#8 PEM (malloc'd, NUL-terminated;
 * *len without the NUL), or NULL. */
char *acmepki_key_pem(EVP_PKEY *key, size_t *len);

/* A P-256 private key from PEM (never prompts for a passphrase); NULL for
 * anything else. */
EVP_PKEY *acmepki_key_from_pem(const char *pem, size_t len);

/* The public JWK of a P-256 key with its members in lexicographic order and
 * no spaces (RFC 7638's input): {"crv":"P-256","kty":"EC","x":"..","y":".."}
 * into out[cap]. 0, or -1. */
int acmepki_jwk(EVP_PKEY *key, char *out, size_t cap);

/* The JWK thumbprint (RFC 7638, SHA-256, base64url) into
 * out[ACMEPKI_THUMBPRINT_LEN + 1]. 0, or -1. */
int acmepki_thumbprint(EVP_PKEY *key, char *out);

/* token "." thumbprint into out[cap]. 0, or -1 if it does not fit. */
int acmepki_key_authorization(const char *token, const char *thumbprint, char *out, size_t cap);

/* A DER CSR (PKCS#10) for `names` (SANs; the subject CN is the first name
 * if it fits 64 bytes), signed with `key` (SHA-256). malloc'd, *len bytes;
 * NULL on error. */
unsigned char *acmepki_csr_der(EVP_PKEY *key, const char *const *names, size_t n, size_t *len);

/* A self-signed certificate for `names` (SANs) with `key`, valid from an
 * hour ago for `days`; with `acme_digest` (32 bytes: SHA-256 of a key
 * authorization) it carries the critical acmeIdentifier extension and must
 * name exactly one name (RFC 8737). NULL on error. */
X509 *acmepki_self_signed(EVP_PKEY *key, const char *const *names, size_t n, int days,
                          const unsigned char *acme_digest);

/* The certificate as PEM (malloc'd, NUL-terminated), or NULL. */
char *acmepki_cert_pem(X509 *x);

typedef struct acmepki_info {
    time_t not_before; /* the leaf's validity, UTC seconds */
    time_t not_after;  /* > not_before */
    char serial[64];   /* the leaf's serial in hex, for logs */
    char issuer[128];  /* the leaf's issuer CN (or the whole name), printable, for logs */
    size_t num_certs;  /* leaf + intermediates */
    int self_signed;   /* issuer == subject: our bootstrap certificate, never a CA's */
} acmepki_info_t;

/* Checks a PEM certificate chain (leaf first) from a CA or from disk: at
 * most ACMEPKI_MAX_CHAIN bytes and ACMEPKI_MAX_CERTS certificates, nothing
 * but certificates; the leaf's public key is `key`'s (when key != NULL) and
 * its SANs cover every one of `names`; notAfter after notBefore. Fills
 * *info (may be NULL). 0, or -1 with *why (static). Does not check the
 * signatures (we trust the CA we asked over HTTPS; a renewal replaces it) or
 * the time (the caller compares info with its clock). */
int acmepki_check_chain(const char *pem, size_t len, EVP_PKEY *key, const char *const *names, size_t n,
                        acmepki_info_t *info, const char **why) __attribute__((warn_unused_result));

#endif
