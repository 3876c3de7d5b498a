/*
 * acmechal.h - the answers to ACME challenges that are being validated
 * right now, shared between the ACME thread that provisions them and the
 * workers that serve them.
 *
 *   acme thread                          workers
 *   -----------                          -------
 *   acmechal_set_http01(token, keyauth)  router: GET /.well-known/acme-challenge/<token>
 *                                          -> acmechal_http01() -> 200 keyauth, or 404
 *   acmechal_set_tlsalpn01(name, cert,   tls: a handshake offering ALPN "acme-tls/1" with
 *                          key)            SNI <name> -> acmechal_tlsalpn01() -> that
 *                                          certificate instead of the server's
 *   acmechal_clear()                     (the order is done, valid or not)
 *
 *   acmechal_t { mutex; http[ACMECHAL_MAX] {token, keyauth};
 *                alpn[ACMECHAL_MAX] {name, X509 *, EVP_PKEY *} }
 *
 * At most ACMECHAL_MAX of each (one per name of an order): a lookup is a
 * scan of at most 16 short strings under a mutex that is held only to copy
 * a string or take references, never during I/O or crypto. Lookups are
 * rare (a CA's validation requests), so the lock costs nothing on the
 * request path: router and TLS consult it only for the challenge path and
 * the "acme-tls/1" protocol, which no ordinary client uses.
 *
 * Threads: any thread for every function; acmechal_free once no other
 * thread can call it (after the workers are joined).
 */
#ifndef COURANT_ACMECHAL_H
#define COURANT_ACMECHAL_H

#include <openssl/types.h>
#include <stddef.h>

#define ACMECHAL_MAX 16

typedef struct acmechal acmechal_t;

acmechal_t *acmechal_new(void);
void acmechal_free(acmechal_t *c);

/* Publishes the HTTP-01 answer for `token` (copied; replaces one with the
 * same token). 0, or -1 when the table is full or a string is too long. */
int acmechal_set_http01(acmechal_t *c, const char *token, const char *key_authorization);

/* Publishes the TLS-ALPN-01 certificate for `name` (case-insensitive; the
 * table takes its own references to cert and key). 0, or -1 when full. */
int acmechal_set_tlsalpn01(acmechal_t *c, const char *name, X509 *cert, EVP_PKEY *key);

/* Forgets every answer. */
void acmechal_clear(acmechal_t *c);

/* The key authorization for `token` (len bytes, not NUL-terminated) into
 * out[cap]; returns its length, or -1 if the token is unknown (or out is
 * too small). */
long acmechal_http01(acmechal_t *c, const char *token, size_t len, char *out, size_t cap);

/* The TLS-ALPN-01 certificate and key for SNI `name`, with a new reference
 * each (the caller frees both). 0, or -1 if there is none. */
int acmechal_tlsalpn01(acmechal_t *c, const char *name, X509 **cert, EVP_PKEY **key);

#endif
