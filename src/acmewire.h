/*
 * acmewire.h - what an ACME CA (RFC 8555) sends us, parsed as hostile
 * input, and the signed requests we send it.
 *
 *   CA answer                      parser                    result (fixed-size, no pointers)
 *   ---------                      ------                    ------
 *   GET directory  (JSON)     -->  acmewire_parse_directory  acme_directory_t  newNonce, newAccount, newOrder, ToS
 *   order          (JSON)     -->  acmewire_parse_order      acme_order_t      status, finalize, authorizations[], certificate
 *   authorization  (JSON)     -->  acmewire_parse_authz      acme_authz_t      status, identifier, challenges[]
 *   account        (JSON)     -->  acmewire_parse_status     acme_status_t     (accounts and challenges: only "status")
 *   problem        (JSON)     -->  acmewire_parse_problem    acme_problem_t    type, detail (printable, cut)
 *   header lines              -->  acmewire_header_line      acme_headers_t    Replay-Nonce, Location, Retry-After,
 *                                                                              Content-Type
 *   request:  acmewire_jws: {"protected":B64(alg,nonce,url,jwk|kid),"payload":B64(..),"signature":B64(ES256 r||s)}
 *
 * Every parser takes (bytes, length), refuses more than ACME_MAX_JSON bytes,
 * JSON nested deeper than 16 or with duplicate members (jws_json_try_parse),
 * and copies only what it checked into fixed buffers: URLs must be https://
 * and printable (< ACME_MAX_URL bytes), tokens and nonces base64url, and
 * arrays are bounded (ACME_MAX_AUTHZ authorizations, ACME_MAX_CHALLENGES
 * challenges), so nothing a CA sends can make us allocate or loop beyond
 * those bounds. Unknown members are ignored (RFC 8555 7.1: clients MUST
 * ignore them). Reasons are static strings that never quote the input.
 *
 * Pure (no I/O, no globals); any thread. Allocation only inside jansson
 * and for acmewire_jws's result.
 */
#ifndef COURANT_ACMEWIRE_H
#define COURANT_ACMEWIRE_H

#include <openssl/types.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ACME_MAX_JSON (64 * 1024) /* bytes of one JSON answer */
#define ACME_MAX_URL 1024         /* bytes of a URL, NUL included */
#define ACME_MAX_TOKEN 256        /* bytes of a challenge token or a nonce, NUL included */
#define ACME_MAX_NAME 256         /* bytes of a domain name, NUL included */
#define ACME_MAX_AUTHZ 16         /* authorizations in an order (we never ask for more names) */
#define ACME_MAX_CHALLENGES 16    /* challenges in an authorization */
#define ACME_MAX_DETAIL 256       /* bytes kept of a problem's detail, NUL included */

typedef enum acme_status {
    ACME_ST_UNKNOWN, /* absent or a value RFC 8555 does not define */
    ACME_ST_PENDING,
    ACME_ST_READY,
    ACME_ST_PROCESSING,
    ACME_ST_VALID,
    ACME_ST_INVALID,
    ACME_ST_EXPIRED,
    ACME_ST_DEACTIVATED,
    ACME_ST_REVOKED,
} acme_status_t;

/* "pending" -> ACME_ST_PENDING ...; "unknown" for ACME_ST_UNKNOWN. Static. */
const char *acme_status_name(acme_status_t s);

typedef struct acme_directory {
    char new_nonce[ACME_MAX_URL];   /* newNonce */
    char new_account[ACME_MAX_URL]; /* newAccount */
    char new_order[ACME_MAX_URL];   /* newOrder */
    char terms[ACME_MAX_URL];       /* meta.termsOfService, "" if absent or not a printable URL */
    int eab_required;               /* meta.externalAccountRequired is true (we cannot serve it) */
} acme_directory_t;

typedef struct acme_order {
    acme_status_t status;
    char finalize[ACME_MAX_URL];
    char certificate[ACME_MAX_URL]; /* "" until the order is valid */
    size_t num_authz;
    char authz[ACME_MAX_AUTHZ][ACME_MAX_URL];
} acme_order_t;

typedef enum acme_chal_type {
    ACME_CHAL_OTHER, /* dns-01 and anything else: never answered */
    ACME_CHAL_HTTP01,
    ACME_CHAL_TLSALPN01,
} acme_chal_type_t;

typedef struct acme_challenge {
    acme_chal_type_t type;
    acme_status_t status;
    char url[ACME_MAX_URL];
    char token[ACME_MAX_TOKEN];  /* base64url; "" for types we do not answer */
    char error[ACME_MAX_DETAIL]; /* the CA's "error": "detail (type)", printable, cut; "" if none */
} acme_challenge_t;

typedef struct acme_authz {
    acme_status_t status;
    char identifier[ACME_MAX_NAME]; /* identifier.value of type "dns", lowercase */
    int wildcard;                   /* "wildcard": true */
    size_t num_challenges;
    acme_challenge_t challenges[ACME_MAX_CHALLENGES];
} acme_authz_t;

typedef struct acme_problem {
    char type[128];               /* e.g. "urn:ietf:params:acme:error:badNonce"; "" if absent */
    char detail[ACME_MAX_DETAIL]; /* printable ASCII (others as '?'), cut; "" if absent */
} acme_problem_t;

/* The fields of a response's header we use; acmewire_headers_reset before
 * each response (a 100 Continue's fields are forgotten). */
typedef struct acme_headers {
    char nonce[ACME_MAX_TOKEN];  /* Replay-Nonce, base64url; "" if absent or malformed */
    char location[ACME_MAX_URL]; /* Location, https:// and printable; "" otherwise */
    long retry_after_s;          /* Retry-After in seconds from `now` (0..86400), -1 if absent */
    char content_type[64];       /* media type, lowercase, without parameters */
} acme_headers_t;

int acmewire_parse_directory(const char *json, size_t len, acme_directory_t *out, const char **why)
    __attribute__((warn_unused_result));
int acmewire_parse_order(const char *json, size_t len, acme_order_t *out, const char **why)
    __attribute__((warn_unused_result));
int acmewire_parse_authz(const char *json, size_t len, acme_authz_t *out, const char **why)
    __attribute__((warn_unused_result));
/* The "status" member of an account or a challenge object (0, or -1 if the
 * answer is not a JSON object). */
int acmewire_parse_status(const char *json, size_t len, acme_status_t *out, const char **why)
    __attribute__((warn_unused_result));
/* A problem document (RFC 7807). 0, or -1 (not a JSON object: *out empty). */
int acmewire_parse_problem(const char *json, size_t len, acme_problem_t *out);

void acmewire_headers_reset(acme_headers_t *h);
/* One raw header line as libcurl gives it ("Name: value\r\n", or a status
 * line, which resets *h). `now` is the wall clock, for an HTTP-date
 * Retry-After. Lines we do not use are ignored. */
void acmewire_header_line(acme_headers_t *h, const char *line, size_t len, time_t now);

/* A URL we may send a request to: https://, printable ASCII, shorter than
 * ACME_MAX_URL. 1 or 0. */
int acmewire_url_ok(const char *s, size_t len);

/* base64url alphabet only, 1 to max-1 bytes. 1 or 0. */
int acmewire_b64url_ok(const char *s, size_t len, size_t max);

/* The JWS an ACME request carries (RFC 8555 6.2), flattened JSON
 * serialization, ES256 with `key` (a P-256 private key). The protected
 * header holds alg, nonce, url and either `jwk` (a JSON object text, for
 * newAccount) or `kid` (the account URL). `payload` NULL means POST-as-GET
 * (an empty payload). Returns a malloc'd NUL-terminated string (caller
 * frees), or NULL (bad arguments, out of memory). Any thread. */
char *acmewire_jws(EVP_PKEY *key, const char *jwk, const char *kid, const char *nonce, const char *url,
                   const char *payload);

#endif
