/*
 * grant.h - what a verified token allows, whatever the dialect that said so.
 *
 * jws.c proves who signed a token; this module reads its claims into one
 * protocol-free shape that publish and subscribe code can match topics
 * against. Two parsers fill it; which one applies is the caller's choice
 * (per request dialect), never the token's:
 *
 *   classic (draft-dunglas-mercure-07, "Authorization")
 *     {"exp":..,"nbf":..,"mercure":{"publish":[sel..],"subscribe":[sel..],
 *                                   "payload":<any JSON>}}
 *     exp and nbf optional; selectors are "*", exact topics or RFC 6570
 *     templates (GRANT_MATCH_TEMPLATE_OR_EXACT); a present but empty array
 *     sets has_* with no matchers.
 *
 *   v1 (draft-dunglas-mercure-08, "Token Validation", "Authorization
 *   Details"): an RFC 9068 access token
 *     header typ "at+jwt" (or "application/at+jwt", case-insensitive)
 *     {"iss":..,"aud":..|[..],"exp":..,"nbf"?:..,"sub"?:..,
 *      "authorization_details":[
 *        {"type":"https://mercure.rocks/authorization-detail",
 *         "actions":["publish"|"subscribe"|<ignored>..],
 *         "topics":[{"match":"..","match_type"?:"exact"|"urlpattern"}..],
 *         "payload"?:{..}},
 *        {"type":"<another API's type>", ..}   (ignored)
 *      ]}
 *     iss, aud and exp required; one bad Mercure entry invalidates the whole
 *     token (no partial acceptance).
 *
 *   grant_t
 *   +-----+---------------+-------------------------------+
 *   | exp | publish[]     | {text, len, type, wildcard}   |  owned strings
 *   |     | subscribe[]   | {.., payload -> payloads[i]}  |  payload borrowed
 *   |     | payload (classic), payloads[] (v1), iss, sub   |  from the grant
 *   +-----+------------------------------------------------+
 *
 * Errors and RFC 6750: every refusal here is a defect of the presented token,
 * answered 401 with `WWW-Authenticate: Bearer error="invalid_token"` in the v1
 * dialect: draft-08 says so for failed validation and for malformed,
 * unparsable or over-limit authorization details ("reported as invalid_token
 * rather than invalid_request"). `invalid_request` (400) belongs to the
 * token's presentation (an Authorization header that is not "Bearer <token>",
 * a token in the URL), which the caller sees before any parsing; a valid
 * token that lacks a grant is the caller's 403 `insufficient_scope`. The
 * classic dialect keeps today's answers (401 for any refusal, no error code).
 * grant_try_* therefore return GRANT_INVALID_TOKEN or 0, and *why.
 *
 * Threads: pure functions; a grant_t belongs to whoever filled it.
 */
#ifndef COURANT_GRANT_H
#define COURANT_GRANT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Selectors per classic claim array, and matchers per v1 token (summed over
 * its Mercure details, before splitting into publish and subscribe). */
#define GRANT_MAX_MATCHERS 64
/* Mercure authorization details per v1 token, and entries of any type. */
#define GRANT_MAX_DETAILS 16
#define GRANT_MAX_ENTRIES 64
/* Bytes of one v1 matcher (classic selectors are bounded by the token). */
#define GRANT_MAX_MATCHER_LEN 2048

/* The draft-08 authorization detail type, compared byte by byte. */
#define GRANT_DETAIL_TYPE "https://mercure.rocks/authorization-detail"

typedef enum grant_dialect {
    GRANT_CLASSIC, /* draft-07 `mercure` claim */
    GRANT_V1,      /* draft-08 access token with authorization_details */
} grant_dialect_t;

typedef enum grant_match_type {
    GRANT_MATCH_TEMPLATE_OR_EXACT, /* classic selector: "*", exact, or RFC 6570 template */
    GRANT_MATCH_EXACT,             /* v1 "exact": byte-for-byte */
    GRANT_MATCH_URLPATTERN,        /* v1 "urlpattern": WHATWG URL Pattern */
} grant_match_type_t;

typedef struct grant_matcher {
    char *text;              /* owns: NUL-terminated, no NUL inside */
    size_t len;              /* bytes of text */
    grant_match_type_t type; /* how text is interpreted */
    int wildcard;            /* text is exactly "*": matches every topic, whatever the type */
    const char *payload;     /* borrows the grant: v1 subscribe matchers, their detail's payload
                                (compact JSON) or NULL; always NULL for publish and classic */
} grant_matcher_t;

typedef struct grant {
    grant_dialect_t dialect;    /* which parser filled it */
    int64_t exp;                /* seconds since the epoch; 0 = none (classic only) */
    int has_publish;            /* classic: mercure.publish present; v1: a detail grants publish */
    int has_subscribe;          /* classic: mercure.subscribe present; v1: a detail grants subscribe */
    grant_matcher_t *publish;   /* owns: num_publish matchers, token order */
    size_t num_publish;         /* <= GRANT_MAX_MATCHERS */
    grant_matcher_t *subscribe; /* owns: num_subscribe matchers, token order (payload lookup: first match) */
    size_t num_subscribe;       /* <= GRANT_MAX_MATCHERS */
    char *payload;              /* owns: classic mercure.payload as compact JSON, or NULL */
    char **payloads;            /* owns: v1 detail payloads (compact JSON), num_payloads of them */
    size_t num_payloads;        /* v1 details that carried a payload */
    char *iss;                  /* owns: v1 iss (trusted, checked), NULL in classic */
    char *sub;                  /* owns: v1 sub if present, else NULL */
} grant_t;

/* Return value of the parsers on refusal: answer 401 invalid_token (v1). */
#define GRANT_INVALID_TOKEN (-1)

/* Draft-07 rules, exactly as src/jwt.c applied them: exp and nbf optional
 * numbers (exp <= now: expired; nbf > now: not valid yet); a `mercure`
 * claim, if present, an object whose `publish`/`subscribe` (null = absent)
 * are arrays of at most 64 non-empty strings; `payload` any JSON. `claims`
 * is borrowed (jws_verified_t.payload). Returns 0 and fills *out (owner
 * disposes), or GRANT_INVALID_TOKEN with *why and *out empty. */
int grant_try_from_classic(const json_t *claims, int64_t now, grant_t *out, const char **why)
    __attribute__((warn_unused_result));

/* Optional check of a `urlpattern` matcher's syntax (the URL Pattern
 * compiler, when there is one): 0 if valid, -1 with *why. */
typedef int (*grant_urlpattern_check_cb)(void *ctx, const char *pattern, size_t len, const char **why);

typedef struct grant_v1_params {
    const char *const *issuers; /* borrows: `iss` must equal one exactly; normally the verifying
                                   key's bound issuer (jws_verified_t.key_issuer) */
    size_t num_issuers;         /* 0: every token is refused (no trusted issuer) */
    const char *audience;       /* borrows: the hub's resource identifier, required in `aud` */
    int64_t leeway_s;           /* clock skew tolerated on exp and nbf; 0 = none */
    grant_urlpattern_check_cb check_urlpattern; /* NULL: only the generic matcher checks */
    void *check_ctx;                            /* passed to check_urlpattern */
} grant_v1_params_t;

/* Draft-08 rules. `typ` is the JWS header's typ (jws_verified_t.typ, NULL if
 * absent), `claims` the verified payload (borrowed). Checks, in order: typ
 * at+jwt; iss present and trusted; aud (string or array of strings) holds
 * the audience; exp present and > now - leeway; nbf if present <= now +
 * leeway; sub a string if present; authorization_details, if present, an
 * array of objects with a string `type`, the Mercure ones fully validated:
 * actions a non-empty array of strings (unknown ones ignored), topics a
 * non-empty array of {match: non-empty string without control or format
 * characters, match_type: "exact" (default) | "urlpattern"}, payload an
 * object if present; counts within the GRANT_MAX_* limits. Returns 0 and
 * fills *out, or GRANT_INVALID_TOKEN with *why (static) and *out empty. */
int grant_try_from_v1(const char *typ, const json_t *claims, const grant_v1_params_t *params, int64_t now,
                      grant_t *out, const char **why) __attribute__((warn_unused_result));

/* Frees what *g owns and empties it. Safe on an emptied grant. */
void grant_dispose(grant_t *g);

/* Is `s` (len bytes) an acceptable v1 matcher or topic string: UTF-8, no C0,
 * C1, DEL or Unicode format (Cf) character (draft-08, "Terminology")? */
int grant_string_ok(const char *s, size_t len);

#endif
