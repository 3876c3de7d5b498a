/*
 * authanswer.h - the answers a handler gives when auth.h refuses a request,
 * in the request's dialect (auth.h, "Answers (the callers')"):
 *
 *   decision (auth_check)       classic (draft-07)          v1 (draft-08, RFC 6750)
 *   AUTH_NO_TOKEN / NO_KEY      401 Bearer                  401 Bearer (bare)
 *   AUTH_INVALID                401 Bearer                  401 error="invalid_token"
 *   AUTH_BAD_REQUEST            (never: v1 only)            400 error="invalid_request"
 *   no matching grant           403                         403 error="insufficient_scope"
 *
 * auth decides and says why; it never writes an answer (the policy layer
 * sits below the handlers and knows nothing of req_refuse's counters). The
 * handlers that check a token (publish, subscribe, subsapi) answered the
 * same decisions the same way in three copies; this is the one copy, at the
 * handler layer, so a change to the challenges is made once.
 *
 * Threads: the request's worker thread. Allocates nothing; the answer is
 * sent (or queued) by req_refuse before these return.
 */
#ifndef COURANT_AUTHANSWER_H
#define COURANT_AUTHANSWER_H

#include "auth.h"
#include "req.h"

/* Refuses a request whose token auth_check did not accept (st is any status
 * but AUTH_VALID): 401 with a challenge, or v1's 400 invalid_request. The
 * reason is `why` (auth_check's, static) for AUTH_INVALID and
 * AUTH_BAD_REQUEST, else `missing` (static), which says what token the
 * route needs. The CORS headers of `in` go with the answer. */
void authanswer_refuse(req_t *r, const request_t *in, const auth_t *a, auth_status_t st, const char *why,
                       const char *missing);

/* Refuses a valid token that does not allow the request: 403, with an
 * insufficient_scope challenge in v1, `why` (static) as the reason. */
void authanswer_forbid(req_t *r, const request_t *in, const auth_t *a, const char *why);

#endif
