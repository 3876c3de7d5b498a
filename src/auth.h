/*
 * auth.h - who may publish and subscribe: the configured keys, where a
 * request's token is, and what a verified token grants, in the request's
 * dialect (dialect.h).
 *
 *   request ──(router)── dialect, token (auth_find_token)
 *                             │
 *   auth_check ── jws_try_verify: the role's static keys; v1 also the
 *                 --jwks-url keys (issuer-bound), poking the fetcher for
 *                 an unknown kid
 *              ── grant_try_from_classic (draft-07 `mercure` claim)
 *                 or grant_try_from_v1 (draft-08 access token: typ, iss,
 *                 aud, exp, authorization_details)
 *              -> grant_t, or a status and a reason; the caller answers
 *
 * Where the token may come from (only the winner is looked at: a bad header
 * token is refused even if a good cookie came with it):
 *   classic  Authorization: Bearer > ?authorization= > mercureAuthorization cookie
 *   v1       Authorization: Bearer > __Secure-mercure_access_token cookie;
 *            a token in the query is a 400 invalid_request (draft-08,
 *            "Presenting the Access Token")
 *   auto     (publish, the API's collection) header > query > the v1 cookie >
 *            the classic cookie, and the token's source and typ then fix the
 *            dialect: typ at+jwt or the v1 cookie -> v1, else classic
 *
 * Keys. Per role (publisher, subscriber) one static key from the
 * configuration: an HMAC secret, a PEM public key or certificate, or a JWK
 * (JSON), narrowed to --jwt-alg and bound to --jwt-issuer. Classic tokens
 * verify with the role's static key only, whatever its binding. v1 tokens
 * verify issuer-bound (draft-08, "Token Validation": only the keys of the
 * token's iss) against the role's static key and the keys of every
 * --jwks-url (trusted for both roles: an authorization server's tokens say
 * what they allow in authorization_details), within --access-token-algs.
 *
 * Answers (the callers'): classic keeps draft-07's (401 with a Bearer
 * challenge and no error code, 403); v1 follows RFC 6750 as draft-08 says:
 * 401 with a bare challenge when no token was presented, 401
 * error="invalid_token", 403 error="insufficient_scope", 400
 * error="invalid_request"; every challenge carries resource_metadata.
 *
 * Threads: an auth_t is built on the main thread (at start, or on SIGHUP by
 * reload.c) and read-only afterwards; any worker verifies with it
 * concurrently. The JWKS fetcher it borrows is thread-safe.
 */
#ifndef COURANT_AUTH_H
#define COURANT_AUTH_H

#include "config.h"
#include "dialect.h"
#include "grant.h"
#include "jwks.h"
#include "req.h"

typedef struct auth auth_t;

typedef enum auth_role { AUTH_PUBLISHER, AUTH_SUBSCRIBER, AUTH_ADMIN } auth_role_t;

typedef enum auth_status {
    AUTH_NO_TOKEN,    /* no token was presented */
    AUTH_VALID,       /* a token verified; the grant is filled */
    AUTH_INVALID,     /* a token was presented and refused (v1: invalid_token); *why says why */
    AUTH_NO_KEY,      /* no key verifies this role's tokens at all */
    AUTH_BAD_REQUEST, /* v1: the token's presentation is malformed (invalid_request, 400) */
} auth_status_t;

/* The v1 cookie, and the classic one. */
#define AUTH_COOKIE_V1 "__Secure-mercure_access_token"
#define AUTH_COOKIE_CLASSIC "mercureAuthorization"

/* Reads the keys the config names (files included), the v1 allow-list and
 * the resource identifier (config_resource_identifier). Prints a one-line
 * error and returns NULL if a key is unusable. Main thread. */
auth_t *auth_new(const config_t *cfg);
void auth_free(auth_t *a);

/* Lends the --jwks-url fetcher (owned by main, which outlives every auth_t)
 * to `a`. Main thread, before `a` is shared. NULL: none. */
void auth_set_jwks(auth_t *a, jwks_fetcher_t *f);
jwks_fetcher_t *auth_jwks(const auth_t *a);

/* Is any key able to verify this role's tokens (static or JWKS)? Without
 * one, the keyless policies apply (README, "Authorization"). */
int auth_has_key(const auth_t *a, auth_role_t role);

/* Can this role verify tokens of `d` (CLASSIC: a static key; V1: a static
 * key bound to --jwt-issuer, or --jwks-url)? For logs and the start-up line. */
int auth_accepts(const auth_t *a, auth_role_t role, dialect_t d);

/* The resource identifier (v1 aud) and the protected resource metadata URL
 * derived from it (RFC 9728), borrowed; NULL when unknown. */
const char *auth_resource(const auth_t *a);
const char *auth_metadata_url(const auth_t *a);

/* Finds the token by the rules above for the request's dialect
 * (in->dialect): points in->token into the request (or query_token, the
 * decoded `authorization` parameter, NULL if absent), sets in->token_from,
 * and for an AUTO request fixes in->dialect from the token's source and
 * typ (unverified: it only picks the rules the token is verified under).
 * An Authorization field that is not "Bearer <token>" sets token_len 0
 * (refused by auth_check). Returns 1 if a token was presented, 0 if none. */
int auth_find_token(request_t *in, const char *query_token, size_t query_len);

/* Verifies the request's token for `role` in its dialect and reads its
 * grant (GRANT_CLASSIC or GRANT_V1, as in->dialect says). On AUTH_VALID *g
 * is filled (grant_dispose); otherwise *g is empty and *why (static, never
 * quoting the token) says why for AUTH_INVALID and AUTH_BAD_REQUEST. A
 * JWS_ERR_NO_KEY from the JWKS keys pokes the fetcher (never waits for
 * it). Any worker thread. */
auth_status_t auth_check(const auth_t *a, auth_role_t role, const request_t *in, grant_t *g,
                         const char **why);

/* Adds the WWW-Authenticate challenge of a 401/403/400 answer: `Bearer
 * realm="mercure"`, then error="<error>" (v1 only: NULL for none), then
 * resource_metadata="<URL>" when the resource identifier is known. */
void auth_add_challenge(const auth_t *a, resp_hdrs_t *h, const char *error);

/* ---- the admin dashboard (dashboard.h) ----------------------------------------
 * An admin token is a JWT whose `mercure.admin` claim is true, signed with
 * --admin-jwt-key or with the subscriber key (so a hub with only a
 * subscriber key can still issue one). The claim is required with either
 * key: a deployment that reuses one secret for several roles does not turn
 * every token into an admin's. Verified the classic way (exp, nbf). */
typedef enum auth_admin {
    AUTH_ADMIN_OK,        /* an admin token; *exp_s filled (0 = no exp) */
    AUTH_ADMIN_NO_KEY,    /* neither an admin nor a subscriber key: nobody can be admin */
    AUTH_ADMIN_NO_TOKEN,  /* no token presented (401) */
    AUTH_ADMIN_INVALID,   /* a token no key verifies, or malformed (401, *why) */
    AUTH_ADMIN_NOT_ADMIN, /* a valid token without mercure.admin = true (403, *why) */
} auth_admin_t;

/* Checks the token the router found (in->token) for the dashboard. *why is
 * a static reason (never the token). Any worker thread. */
auth_admin_t auth_check_admin(const auth_t *a, const request_t *in, int64_t *exp_s, const char **why);

/* Finds the `authorization` query parameter, decoding into `scratch` (qlen
 * bytes). Returns 1 and points *tok into scratch; 0 if absent; -1 if the
 * query is malformed. */
int auth_query_token(const char *query, size_t qlen, char *scratch, const char **tok, size_t *len);

/* Is the request's Origin (or, lacking it, Referer's origin) one of `list`?
 * Used against CSRF when a cookie carries the token; "*" in the list is
 * never enough for that (it would turn the check off). */
int auth_origin_allowed(const request_t *in, char *const *list, int n);

/* Pure helper: does the `Cookie` header value hold `name`? Points into it. */
int auth_cookie_value(const char *hdr, size_t len, const char *name, const char **val, size_t *vlen);

#endif
