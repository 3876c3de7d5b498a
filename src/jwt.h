/*
 * jwt.h - verifying the JWS compact tokens Mercure publishers and
 * subscribers present (draft-dunglas-mercure-07, "Authorization").
 *
 *   token = BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature)
 *
 *   header  {"alg":"HS256",...}      alg MUST equal the configured one
 *   payload {"exp":..,"nbf":..,"mercure":{"publish":[..],"subscribe":[..],
 *                                         "payload":<any JSON>}}
 *
 * The algorithm is chosen by configuration, never by the token: a token whose
 * `alg` differs from the key's (including "none") is refused before any
 * cryptography, which is what stops algorithm confusion (an RSA public key
 * used as an HMAC secret). Signatures are checked with OpenSSL's libcrypto
 * (HMAC, RSA PKCS#1 v1.5, ECDSA P-256 with the JOSE r||s encoding), claims
 * are read with libjansson.
 *
 * Ownership: a jwt_key_t is built once at start and is read-only afterwards,
 * so every worker may verify with it concurrently (OpenSSL 3 allows
 * concurrent verification with one EVP_PKEY; each call makes its own ctx).
 * jwt_claims_t owns its strings until jwt_claims_dispose().
 */
#ifndef COURANT_JWT_H
#define COURANT_JWT_H

#include <stddef.h>
#include <stdint.h>

typedef enum jwt_alg { JWT_HS256, JWT_HS384, JWT_HS512, JWT_RS256, JWT_ES256 } jwt_alg_t;

typedef struct jwt_key jwt_key_t;

/* Tokens longer than this are refused as malformed (they would also not fit
 * in a request head of the default size). */
#define JWT_MAX_TOKEN 8192
/* At most this many selectors per claim array: a token is input too. */
#define JWT_MAX_SELECTORS 64

/* "HS256" -> JWT_HS256. Returns 0, or -1 for an unknown name. */
int jwt_alg_parse(const char *name, jwt_alg_t *out);
const char *jwt_alg_name(jwt_alg_t alg);

/* Makes a verification key: for HS* `material` is the shared secret bytes,
 * for RS256/ES256 a PEM public key (SubjectPublicKeyInfo) or certificate.
 * Returns NULL and sets *why (static string) if it is unusable, e.g. an
 * ES256 key that is not on P-256. Main thread, at start. */
jwt_key_t *jwt_key_new(jwt_alg_t alg, const char *material, size_t len, const char **why);
void jwt_key_free(jwt_key_t *key);
jwt_alg_t jwt_key_alg(const jwt_key_t *key);

typedef struct jwt_claims {
    int64_t exp;       /* seconds since the epoch; 0 = no exp claim */
    int has_publish;   /* mercure.publish was present (maybe empty) */
    int has_subscribe; /* mercure.subscribe was present (maybe empty) */
    char **publish;    /* owns: num_publish NUL-terminated selectors */
    size_t num_publish;
    char **subscribe; /* owns: num_subscribe NUL-terminated selectors */
    size_t num_subscribe;
    char *payload; /* owns: mercure.payload as compact JSON, or NULL */
} jwt_claims_t;

/* Verifies `token` (not NUL-terminated) with `key` at time `now_s` (seconds
 * since the epoch) and fills *out. Returns 0; or -1 with *why set to a
 * static reason ("bad signature", "expired", ...) that never quotes the
 * token, and *out left empty. Pure apart from allocation; any thread. */
int jwt_try_verify(const jwt_key_t *key, const char *token, size_t len, int64_t now_s, jwt_claims_t *out,
                   const char **why) __attribute__((warn_unused_result));

/* Frees what *c owns and empties it. */
void jwt_claims_dispose(jwt_claims_t *c);

/* Base64url (no padding) decoding into `out` (at least len*3/4+3 bytes).
 * Returns the decoded length, or -1 if `in` has a character outside the
 * base64url alphabet, padding, or an impossible length. */
long jwt_b64url_decode(const char *in, size_t len, unsigned char *out);

/* Encoding without padding, for tests and the demo; `out` holds
 * 4*ceil(len/3)+1 bytes, NUL-terminated. Returns the length. */
size_t jwt_b64url_encode(const unsigned char *in, size_t len, char *out);

/* Signs header.payload with an HS* secret and writes the compact token into
 * a malloc'd string (caller frees). For the demo tokens and the fuzz target's
 * round trip. NULL if out of memory or the algorithm is not HS*. */
char *jwt_sign_hs(jwt_alg_t alg, const char *secret, size_t secret_len, const char *payload_json);

#endif
