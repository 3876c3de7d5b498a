/*
 * dialect.h - which Mercure protocol a request speaks, and the subscribe
 * parameters of either.
 *
 * courant serves both protocols on one endpoint, deciding per request:
 *
 *   classic  draft-dunglas-mercure-07, what deployed apps and the classic
 *            conformance suite speak: `topic` selectors (exact, "*", RFC 6570
 *            templates), `lastEventID`, `Last-Event-ID` in the answer, a
 *            `mercure` claim, the `authorization` query parameter and the
 *            `mercureAuthorization` cookie.
 *   v1       draft-dunglas-mercure-08 (Mercure 1.0): `match` (exact) and
 *            `match_urlpattern` matchers, `last_event_id`,
 *            `Mercure-Last-Event-ID`, RFC 9068 access tokens with
 *            `authorization_details`, the `__Secure-mercure_access_token`
 *            cookie, never a token in the URL.
 *
 * The rules (docs/MERCURE.md, "Two dialects on one endpoint"):
 *
 *   subscribe (GET, HEAD /.well-known/mercure)
 *       `topic` parameters and no `match*` one       classic
 *       `match*` parameters and no `topic` one        v1
 *       both                                          400 (DIALECT_MIXED)
 *       neither                                       400 (no selector), answered in
 *                                                     the token's dialect
 *   subscribe (QUERY, a form body)                    v1 (draft-08 only)
 *   publish (POST)                                    the token's: typ at+jwt or the
 *                                                     1.0 cookie -> v1, else classic
 *   subscriptions API
 *       /subscriptions/{exact|urlpattern}/...         v1
 *       /subscriptions/{anything else}/...            classic
 *       /subscriptions                                the token's
 *   /events (the seed's alias)                        classic
 *
 * A request's dialect then picks where its token may come from, how it is
 * validated, how errors are answered, and the shape of what is answered;
 * the token must be of the request's dialect (a typ at+jwt token on a
 * classic request is refused, a classic token on a v1 request fails the
 * typ check).
 *
 * Everything here is pure (no I/O, no shared state): any thread.
 */
#ifndef COURANT_DIALECT_H
#define COURANT_DIALECT_H

#include "grant.h"

#include <stddef.h>
#include <stdint.h>

typedef enum dialect {
    DIALECT_AUTO,    /* not fixed by the request: the token decides */
    DIALECT_CLASSIC, /* draft-07 */
    DIALECT_V1,      /* draft-08 */
    DIALECT_MIXED,   /* both dialects' subscribe parameters: refused (400) */
} dialect_t;

/* Selectors one subscribe may carry at most (EVBUF_MAX_TOPICS). */
#define DIALECT_MAX_SELECTORS 64

/* What a subscribe request asks for, in either dialect. Strings point into
 * the caller's scratch (decoded) and are valid as long as it is. */
typedef struct dialect_sub {
    dialect_t dialect;                       /* see the table above */
    const char *sel[DIALECT_MAX_SELECTORS];  /* selectors/matchers, in request order */
    size_t sel_len[DIALECT_MAX_SELECTORS];   /* their lengths */
    uint8_t sel_type[DIALECT_MAX_SELECTORS]; /* grant_match_type_t: TEMPLATE_OR_EXACT (classic
                                                 topic), EXACT or URLPATTERN (v1) */
    size_t num_sel;                          /* selectors found */
    const char *last_event_id;               /* lastEventID (classic) / last_event_id (v1), or NULL */
    size_t last_event_id_len;                /* its length */
    int token_in_url;                        /* an `authorization` or `access_token` parameter */
    const char *bad;                         /* NULL, or why the request is refused (400) */
} dialect_sub_t;

/* Parses a subscribe request's parameters: the query (qlen bytes), then,
 * for QUERY, the form body (blen bytes; body may be NULL). Both are
 * percent-decoded into `scratch`, which must hold qlen + blen bytes. At most
 * `max_selectors` (<= DIALECT_MAX_SELECTORS) selectors are accepted. A v1
 * `last_event_id` in the query wins over one in the body (draft-08,
 * "Subscription"). Fills *out; out->bad says why the request is malformed:
 * bad percent-encoding, too many selectors, an unknown `match*` parameter,
 * an empty selector, or a v1 matcher that is not valid UTF-8, holds a
 * control or format character, or passes GRANT_MAX_MATCHER_LEN. The
 * selectors' own syntax (URL patterns) is checked by whoever compiles them.
 * Pure. */
void dialect_parse_subscribe(const char *query, size_t qlen, const char *body, size_t blen,
                             size_t max_selectors, char *scratch, dialect_sub_t *out);

/* Is `name` (len bytes, decoded) in the reserved `match` namespace (equal to
 * or beginning with "match", ASCII case-insensitive)? */
int dialect_is_match_name(const char *name, size_t len);

/* The dialect of a subscriptions API path (path and len as sent, starting
 * with "/.well-known/mercure/subscriptions"): AUTO for the collection, V1
 * when the first segment after it is "exact" or "urlpattern", CLASSIC
 * otherwise. */
dialect_t dialect_of_subsapi_path(const char *path, size_t len);

/* Peeks at an unverified compact JWS: does its protected header say typ
 * "at+jwt" (or "application/at+jwt", case-insensitive)? Decodes the header
 * only (bounded by JWS_MAX_TOKEN); a malformed token is "no". Used to pick
 * the rules a token is then verified under, never to trust it. */
int dialect_token_is_v1(const char *token, size_t len);

/* Is a JOSE header's typ (NULL: absent) "at+jwt" or "application/at+jwt",
 * case-insensitive (RFC 9068 2.1, RFC 7515 4.1.9)? */
int dialect_typ_is_v1(const char *typ);

/* "classic", "v1" ... for logs. */
const char *dialect_name(dialect_t d);

#endif
