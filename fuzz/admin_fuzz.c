/*
 * admin_fuzz.c - libFuzzer target for the admin token check (auth.c,
 * auth_check_admin): the input is a token's claims, signed here with HS256
 * under the admin key or the subscriber key (the first byte chooses), or
 * under a key courant does not know.
 *
 * Properties (abort() on any violation):
 *   - AUTH_ADMIN_OK only for claims that an independent reading (jansson)
 *     finds to be an object whose "mercure" member is an object whose
 *     "admin" member is exactly true, signed by a key courant holds;
 *   - such claims, when jws verification and the classic claims' rules
 *     (exp, nbf) accept the token at all, are
 *     AUTH_ADMIN_OK: nothing else refuses an admin;
 *   - a token under an unknown key is never OK, and never NOT_ADMIN;
 *   - NOT_ADMIN only for a token some key verifies; *why is set on every
 *     refusal and never contains the token.
 */
#include "fuzz.h"

#include "auth.h"
#include "config.h"
#include "grant.h"
#include "jws.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ADMIN_KEY "admin-key-for-the-fuzz-target-0123456789"
#define SUB_KEY "subscriber-key-for-the-fuzz-target-01234"
#define OTHER_KEY "a-key-courant-does-not-hold-0123456789ab"

static auth_t *auth;

static int model_admin(const char *claims, size_t len)
{
    json_t *root = json_loadb(claims, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *m = json_is_object(root) ? json_object_get(root, "mercure") : NULL;
    int yes = json_is_object(m) && json_is_true(json_object_get(m, "admin"));
    json_decref(root);
    return yes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!auth) {
        config_t cfg;
        config_defaults(&cfg);
        cfg.admin_jwt_key = strdup(ADMIN_KEY);
        cfg.subscriber_jwt_key = strdup(SUB_KEY);
        auth = auth_new(&cfg);
        config_dispose(&cfg);
        CHECK(auth);
    }
    if (size < 1 || size > 4096)
        return 0;
    char *claims = malloc(size);
    CHECK(claims);
    memcpy(claims, data + 1, size - 1);
    claims[size - 1] = 0;
    if (strlen(claims) != size - 1) { /* a NUL inside: keep the claims a C string (the model reads it) */
        free(claims);
        return 0;
    }
    int which = data[0] % 3;
    const char *key = which == 0 ? ADMIN_KEY : which == 1 ? SUB_KEY : OTHER_KEY;
    char *tok = jws_sign(JWS_HS256, NULL, claims, size - 1, key, strlen(key), NULL);
    CHECK(tok);
    size_t tl = strlen(tok);
    char *hdr = malloc(tl + 7);
    CHECK(hdr);
    memcpy(hdr, "Bearer ", 7);
    memcpy(hdr + 7, tok, tl);
    http1_header_t h = {"authorization", 13, hdr, tl + 7};
    request_t in;
    memset(&in, 0, sizeof(in));
    in.headers = &h;
    in.num_headers = 1;
    in.token_from = REQ_TOKEN_HEADER;
    in.token = hdr + 7;
    in.token_len = tl;

    int64_t exp = -1;
    const char *why = NULL;
    auth_admin_t r = auth_check_admin(auth, &in, &exp, &why);
    int admin = model_admin(claims, size - 1);
    if (r == AUTH_ADMIN_OK)
        CHECK(admin && which != 2 && exp >= 0);
    else
        CHECK(why && !strstr(why, tok + tl - 10)); /* a reason, and never the token */
    if (which == 2)
        CHECK(r == AUTH_ADMIN_INVALID);
    if (r == AUTH_ADMIN_NOT_ADMIN)
        CHECK(which != 2 && !admin);
    if (admin && which != 2 && tl <= JWS_MAX_TOKEN) {
        /* jws's own rules and the classic claims' (exp, nbf, claim types)
         * may refuse it; nothing else may. */
        jws_key_params_t kp = {0};
        jws_key_t *k = jws_key_new_hmac(&kp, key, strlen(key), &why);
        jws_keyset_t *ks = jws_keyset_new();
        CHECK(k && ks && jws_keyset_try_add(ks, k, &why) == 0);
        jws_verify_opts_t o = {0};
        jws_verified_t v;
        if (jws_try_verify(ks, tok, tl, &o, &v, &why) == 0) {
            grant_t g;
            if (grant_try_from_classic(v.payload, (int64_t)time(NULL), &g, &why) == 0) {
                grant_dispose(&g);
                CHECK(r == AUTH_ADMIN_OK);
            }
            jws_verified_dispose(&v);
        }
        jws_keyset_unref(ks);
    }
    free(hdr);
    free(tok);
    free(claims);
    return 0;
}
