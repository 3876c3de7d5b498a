/*
 * jws.h - compact JWS verification (RFC 7515) and the keys it trusts.
 *
 * What a token allows is not this module's business (see grant.h): jws
 * answers "was this token signed by a key we trust, with an algorithm that
 * key may use?" and hands back the decoded header and claims.
 *
 *   token = BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature)
 *
 *   keyset (immutable, refcounted)           key (immutable, refcounted)
 *   +------+------+------+                   +-----------------------------+
 *   | refs | n    | keys | --> [k0][k1]..     | refs, algs (bit set), kid,  |
 *   +------+------+------+                   | issuer, EVP_PKEY or secret  |
 *                                            +-----------------------------+
 *   holder: { mutex, keyset* } -- acquire() = lock, ref, unlock
 *                                 swap()    = lock, replace, unlock, unref old
 *
 * Algorithms: HS256/384/512 (HMAC), RS256/384/512 (RSA PKCS#1 v1.5),
 * PS256/384/512 (RSA-PSS, MGF1 with the same hash, salt = hash length,
 * RFC 7518 3.5), ES256 and ES384 (ECDSA P-256/P-384, the JOSE r||s
 * encoding, RFC 7518 3.4) and EdDSA (Ed25519, RFC 8037). "none" is never
 * accepted. Each key carries the set of algorithms it may verify, derived
 * from its type and narrowed by configuration or by a JWK's "alg": an RSA,
 * EC or Ed25519 key can never verify an HS* token, an HMAC secret never an
 * asymmetric one (algorithm confusion, RFC 8725 2.1). The token's alg picks
 * nothing but a branch inside that set.
 *
 * Key selection: only keys whose algorithm set holds the token's alg (and the
 * caller's allow-list) are candidates. A token with a "kid" tries the keys
 * with that kid, then the keys that have no kid; a token without one tries
 * every candidate. At most JWS_MAX_TRIES keys are tried, so a forged token
 * costs at most that many signature checks. With `issuer_bound` (draft-08,
 * "Token Validation": keys bound to an issuer) the payload is decoded before
 * the signature check, only to read "iss", and only keys bound to exactly
 * that issuer are candidates: a token signed by one trusted issuer cannot be
 * accepted under another's identity. Key material in the token's header
 * (jwk, jku, x5u, x5c) is never used.
 *
 * Order of checks, cheapest and least trusting first:
 *   1. shape: length <= JWS_MAX_TOKEN, exactly two dots, base64url only
 *   2. header: a JSON object (depth-bounded, no duplicate members), alg a
 *      known name on the allow-list, no "crit", kid and typ strings if present
 *   3. (issuer_bound only) payload JSON, its "iss"
 *   4. key candidates, signature (constant-time compare for HMAC)
 *   5. payload: a JSON object, depth-bounded, no duplicate members
 * Reasons are static strings that never quote the token.
 *
 * Ownership and threads: keys and keysets are immutable once shared, so any
 * thread may verify with them concurrently (OpenSSL 3 allows concurrent
 * verification with one EVP_PKEY; each call makes its own context). Their
 * reference counts are atomic: a worker may hold the old set while the main
 * thread (SIGHUP) or the JWKS thread publishes a new one through a holder.
 * A verification allocates: two jansson documents and one small copy.
 */
#ifndef COURANT_JWS_H
#define COURANT_JWS_H

#include <jansson.h>
#include <openssl/types.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef enum jws_alg {
    JWS_HS256,
    JWS_HS384,
    JWS_HS512,
    JWS_RS256,
    JWS_RS384,
    JWS_RS512,
    JWS_PS256,
    JWS_PS384,
    JWS_PS512,
    JWS_ES256,
    JWS_ES384,
    JWS_EDDSA,
    JWS_ALG_COUNT
} jws_alg_t;

/* A set of algorithms, one bit per jws_alg_t. */
typedef uint32_t jws_algset_t;
#define JWS_ALG_BIT(a) ((jws_algset_t)1 << (a))
#define JWS_ALGS_HMAC (JWS_ALG_BIT(JWS_HS256) | JWS_ALG_BIT(JWS_HS384) | JWS_ALG_BIT(JWS_HS512))
#define JWS_ALGS_RSA                                                                                     \
    (JWS_ALG_BIT(JWS_RS256) | JWS_ALG_BIT(JWS_RS384) | JWS_ALG_BIT(JWS_RS512) | JWS_ALG_BIT(JWS_PS256) | \
     JWS_ALG_BIT(JWS_PS384) | JWS_ALG_BIT(JWS_PS512))
#define JWS_ALGS_ALL (JWS_ALG_BIT(JWS_ALG_COUNT) - 1)

/* Tokens longer than this are refused (they would not fit in a request head
 * of the default size either). */
#define JWS_MAX_TOKEN 8192
/* Header and payload JSON may nest at most this deep ({"a":[{}]} is 3). */
#define JWS_MAX_JSON_DEPTH 32
/* At most this many keys are tried for one token. */
#define JWS_MAX_TRIES 4
/* At most this many keys in one set (a union of several JWK Sets fits). */
#define JWS_KEYSET_MAX 1024
/* A kid or issuer longer than this is refused (keys) or never matches. */
#define JWS_MAX_ID 512

/* "ES256" (len bytes, exact, case-sensitive as RFC 7515 4.1.1 says) ->
 * JWS_ES256. Returns 0, or -1 for an unknown name (including "none"). */
int jws_alg_parse(const char *name, size_t len, jws_alg_t *out);
const char *jws_alg_name(jws_alg_t alg);

/* A comma-separated list ("ES256,EdDSA") into a set. Returns 0, or -1 with
 * *why set for an unknown or empty name. For --jwt-alg style options. */
int jws_algset_parse(const char *list, jws_algset_t *out, const char **why);

/* ---- keys ------------------------------------------------------------------ */

typedef struct jws_key jws_key_t;

typedef struct jws_key_params {
    jws_algset_t algs;  /* algorithms the key may verify; 0 = every one its type allows */
    const char *kid;    /* borrows (copied): key id, NULL = none */
    const char *issuer; /* borrows (copied): issuer the key is bound to, NULL = unbound */
} jws_key_params_t;

/* An HMAC secret (HS*). Any non-empty secret is accepted, as today; RFC
 * 7518 3.2 wants at least the hash size (32/48/64 bytes), which the caller
 * may warn about. `p` may be NULL (all HS*, no kid, unbound). Returns NULL
 * with *why (static) on a bad secret or parameter. Any thread. */
jws_key_t *jws_key_new_hmac(const jws_key_params_t *p, const void *secret, size_t len, const char **why);

/* A PEM public key (SubjectPublicKeyInfo) or certificate: RSA (>= 2048
 * bits), EC on P-256 or P-384, or Ed25519. Asking for an algorithm the key
 * cannot verify (HS256 for an RSA key, ES384 for a P-256 key) is refused. */
jws_key_t *jws_key_new_pem(const jws_key_params_t *p, const char *pem, size_t len, const char **why);

/* The same from an OpenSSL public key, which the new key owns on success;
 * on failure the caller keeps it. Used by jwks.c for JWK members. */
jws_key_t *jws_key_new_pkey(const jws_key_params_t *p, EVP_PKEY *pkey, const char **why);

/* Reference counting (atomic; any thread). unref frees at zero. */
jws_key_t *jws_key_ref(const jws_key_t *key);
void jws_key_unref(jws_key_t *key);

jws_algset_t jws_key_algs(const jws_key_t *key);
const char *jws_key_kid(const jws_key_t *key);    /* borrowed; NULL = none */
const char *jws_key_issuer(const jws_key_t *key); /* borrowed; NULL = unbound */

/* ---- key sets --------------------------------------------------------------- */

typedef struct jws_keyset jws_keyset_t;

/* An empty set with one reference, to be filled by jws_keyset_try_add and
 * then shared. NULL when out of memory. */
jws_keyset_t *jws_keyset_new(void);

/* Adds `key`, taking over the caller's reference in every case (on failure
 * the key is unreferenced). Only before the set is shared (the first ref or
 * holder swap freezes it; adding then is a bug and asserts). Returns 0, or
 * -1 with *why when the set is full or memory runs out. */
int jws_keyset_try_add(jws_keyset_t *ks, jws_key_t *key, const char **why)
    __attribute__((warn_unused_result));

/* Atomic reference counting; any thread. unref(NULL) is a no-op. */
jws_keyset_t *jws_keyset_ref(jws_keyset_t *ks);
void jws_keyset_unref(jws_keyset_t *ks);

size_t jws_keyset_count(const jws_keyset_t *ks);
/* The i-th key, borrowed from the set (take a ref to keep it longer). */
const jws_key_t *jws_keyset_get(const jws_keyset_t *ks, size_t i);

/* Holds the current set for many threads: a mutex held only to copy the
 * pointer and take (or swap) a reference, never during verification. */
typedef struct jws_keyset_holder {
    pthread_mutex_t lock; /* guards `set` (the pointer, not the set) */
    jws_keyset_t *set;    /* owns one reference; NULL = no set yet */
} jws_keyset_holder_t;

void jws_keyset_holder_init(jws_keyset_holder_t *h);
/* Drops the held reference. No other thread may use `h` any more. */
void jws_keyset_holder_dispose(jws_keyset_holder_t *h);
/* The current set with a reference the caller must drop (unref), or NULL
 * when none was ever swapped in. Any thread; never blocks for long. */
jws_keyset_t *jws_keyset_holder_acquire(jws_keyset_holder_t *h);
/* Publishes `ks` (taking over the caller's reference; NULL empties) and
 * drops the holder's reference to the previous set outside the lock. Threads
 * still verifying with the old set keep it alive until they unref. */
void jws_keyset_holder_swap(jws_keyset_holder_t *h, jws_keyset_t *ks);

/* ---- verification -------------------------------------------------------------- */

typedef struct jws_verify_opts {
    jws_algset_t algs; /* allow-list; 0 = whatever each key allows */
    int issuer_bound;  /* 1: only keys bound to the token's "iss" (draft-08) */
} jws_verify_opts_t;

typedef struct jws_verified {
    jws_alg_t alg;    /* the header's alg, which the key allowed */
    json_t *header;   /* owns: the protected header object */
    json_t *payload;  /* owns: the claims, a JSON object */
    const char *typ;  /* borrows header: "typ" or NULL */
    const char *kid;  /* borrows header: "kid" or NULL */
    char *key_issuer; /* owns: copy of the verifying key's issuer, NULL if unbound */
} jws_verified_t;

/* Return values of jws_try_verify besides 0. */
#define JWS_ERR_INVALID (-1) /* refused: malformed, alg, bad signature ... */
#define JWS_ERR_NO_KEY (-2)  /* no trusted key fits the kid/alg/issuer: a JWKS refresh may help */

/* Verifies `token` (len bytes, not NUL-terminated) with the keys of `ks`
 * (NULL or empty: JWS_ERR_NO_KEY). `opts` may be NULL (defaults: every
 * algorithm the keys allow, not issuer-bound). On 0, *out owns the decoded
 * header and payload (jws_verified_dispose); on failure *out is empty and
 * *why is a static reason that never quotes the token. Time claims are not
 * checked here (grant.c does). Pure apart from allocation; any thread. */
int jws_try_verify(const jws_keyset_t *ks, const char *token, size_t len, const jws_verify_opts_t *opts,
                   jws_verified_t *out, const char **why) __attribute__((warn_unused_result));

/* Frees what *v owns and empties it. Safe on an emptied struct. */
void jws_verified_dispose(jws_verified_t *v);

/* ---- signing (demo tokens, tests, fuzz round trips) ---------------------------- */

/* Signs `payload` (len bytes, any content) into a compact token, malloc'd,
 * NUL-terminated (caller frees). `header_json` is used verbatim (it should
 * name `alg`); NULL makes {"alg":"<alg>","typ":"JWT"}. HS* use `secret`,
 * the others `priv`, an OpenSSL private key of the matching type. NULL on
 * error (wrong key type, out of memory). Any thread. */
char *jws_sign(jws_alg_t alg, const char *header_json, const void *payload, size_t len, const void *secret,
               size_t secret_len, EVP_PKEY *priv);

/* ---- helpers shared with grant.c and jwks.c ----------------------------------- */

/* Base64url without padding into `out` (at least len*3/4+3 bytes). Returns
 * the decoded length, or -1 for a character outside the alphabet, padding,
 * an impossible length, or non-zero trailing bits (one encoding per value). */
long jws_b64url_decode(const char *in, size_t len, unsigned char *out);

/* Encodes without padding; `out` holds 4*ceil(len/3)+1 bytes and is
 * NUL-terminated. Returns the length written. */
size_t jws_b64url_encode(const unsigned char *in, size_t len, char *out);

/* Parses `len` bytes of JSON with jansson after checking that nothing nests
 * deeper than `max_depth`, refusing duplicate object members and "\u0000".
 * Returns the document (caller decrefs) or NULL. Any thread. */
json_t *jws_json_try_parse(const char *buf, size_t len, int max_depth) __attribute__((warn_unused_result));

#endif
