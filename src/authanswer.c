/*
 * authanswer.c - see authanswer.h.
 */
#include "authanswer.h"

#include "dialect.h"

void authanswer_refuse(req_t *r, const request_t *in, const auth_t *a, auth_status_t st, const char *why,
                       const char *missing)
{
    resp_hdrs_t h = in->cors;
    int v1 = in->dialect == DIALECT_V1;
    if (v1 && st == AUTH_BAD_REQUEST) {
        auth_add_challenge(a, &h, "invalid_request");
        req_refuse(r, REFUSE_BAD_REQUEST, 400, &h, why);
        return;
    }
    auth_add_challenge(a, &h, v1 && st == AUTH_INVALID ? "invalid_token" : NULL);
    req_refuse(r, REFUSE_UNAUTHORIZED, 401, &h, st == AUTH_INVALID || st == AUTH_BAD_REQUEST ? why : missing);
}

void authanswer_forbid(req_t *r, const request_t *in, const auth_t *a, const char *why)
{
    resp_hdrs_t h = in->cors;
    if (in->dialect == DIALECT_V1)
        auth_add_challenge(a, &h, "insufficient_scope");
    req_refuse(r, REFUSE_FORBIDDEN, 403, &h, why);
}
