/*
 * auth.h - who may publish and subscribe: the configured JWT keys, finding a
 * request's token, and the rights its `mercure` claim grants.
 *
 * Token sources, in the precedence draft-dunglas-mercure-07 gives
 * ("Authorization"): the `Authorization: Bearer` header wins over the
 * `authorization` query parameter, which wins over the `mercureAuthorization`
 * cookie. Only the winner is looked at: a bad header token is refused even
 * if a good cookie came with it.
 *
 * Policy (see README, "Authorization"):
 *   publish    with --publisher-jwt-key: a valid token whose mercure.publish
 *              selectors match EVERY topic of the update (else 401/403);
 *              without one: loopback peers only, as before.
 *   subscribe  with --subscriber-jwt-key: a valid token, or none at all when
 *              --anonymous; private updates only to subscribers whose
 *              mercure.subscribe matches one of the update's topics.
 *              Without one: anyone, and private updates reach nobody.
 *
 * Threads: built on the main thread at start, read-only afterwards.
 */
#ifndef COURANT_AUTH_H
#define COURANT_AUTH_H

#include "config.h"
#include "jwt.h"
#include "req.h"

typedef struct auth auth_t;

typedef enum auth_role { AUTH_PUBLISHER, AUTH_SUBSCRIBER, AUTH_ADMIN } auth_role_t;

typedef enum auth_status {
    AUTH_NO_TOKEN, /* no token was presented */
    AUTH_VALID,    /* a token verified; claims filled */
    AUTH_INVALID,  /* a token was presented and refused; *why says why */
    AUTH_NO_KEY,   /* this role has no key configured */
} auth_status_t;

/* Reads the keys the config names (files included). Prints a one-line error
 * and returns NULL if a key is unusable. Main thread. */
auth_t *auth_new(const config_t *cfg);
void auth_free(auth_t *a);

int auth_has_key(const auth_t *a, auth_role_t role);

/* The token the request presents, by precedence. `query_token` is the
 * already-decoded `authorization` query parameter (NULL if absent). Points
 * *tok into the request (or query_token) and sets *from. Returns 1 if a
 * token was presented (*tok_len may be 0 for an Authorization field that is
 * not "Bearer <token>": the caller refuses it), 0 if none. */
int auth_find_token(const request_t *in, const char *query_token, size_t query_len, const char **tok,
                    size_t *tok_len, req_token_from_t *from);

/* Verifies the token the router found (in->token, in->token_from) for
 * `role`. Claims are owned by the caller on AUTH_VALID
 * (jwt_claims_dispose); on AUTH_INVALID *why is a static reason to log and
 * answer (never the token). The caller answers: auth writes nothing. */
auth_status_t auth_check(const auth_t *a, auth_role_t role, const request_t *in, jwt_claims_t *claims,
                         const char **why);

/* ---- the admin dashboard (dashboard.h) ----------------------------------------
 * An admin token is a JWT whose `mercure.admin` claim is true, signed with
 * --admin-jwt-key or with the subscriber key (so a hub with only a
 * subscriber key can still issue one). The claim is required with either
 * key: a deployment that reuses one secret for several roles does not turn
 * every token into an admin's. Kept apart from auth_check so that moving
 * verification to jws.c only swaps how the claims are read
 * (payload_says_admin in auth.c). */
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

/* Adds the challenge a 401 answer carries (WWW-Authenticate). */
void auth_add_challenge(resp_hdrs_t *h);

/* Is the request's Origin (or, lacking it, Referer's origin) one of `list`?
 * Used against CSRF when a cookie carries the token; "*" in the list is
 * never enough for that (it would turn the check off). */
int auth_origin_allowed(const request_t *in, char *const *list, int n);

/* Pure helper: does the `Cookie` header value hold `name`? Points into it. */
int auth_cookie_value(const char *hdr, size_t len, const char *name, const char **val, size_t *vlen);

#endif
