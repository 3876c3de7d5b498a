/*
 * auth.c - see auth.h.
 */
#include "auth.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COOKIE_NAME "mercureAuthorization"
#define MAX_KEY_FILE (1 << 20)

struct auth {
    jwt_key_t *keys[3]; /* owns: [AUTH_PUBLISHER], [AUTH_SUBSCRIBER], [AUTH_ADMIN]; NULL = none */
};

/* The key's bytes: inline, or the file's content. malloc'd; NULL on error. */
static char *key_material(const char *inline_key, const char *path, const char *opt, size_t *len)
{
    if (inline_key && path) {
        fprintf(stderr, "courant: give --%s or --%s-file, not both\n", opt, opt);
        return NULL;
    }
    if (inline_key) {
        *len = strlen(inline_key);
        return strdup(inline_key);
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "courant: --%s-file: cannot open %s\n", opt, path);
        return NULL;
    }
    char *buf = malloc(MAX_KEY_FILE);
    size_t n = buf ? fread(buf, 1, MAX_KEY_FILE, f) : 0;
    fclose(f);
    if (!buf || n == 0 || n == MAX_KEY_FILE) {
        fprintf(stderr, "courant: --%s-file: %s is empty or larger than 1 MiB\n", opt, path);
        free(buf);
        return NULL;
    }
    /* An HMAC secret in a file usually ends with a newline the editor added. */
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    *len = n;
    return buf;
}

static int load_key(auth_t *a, auth_role_t role, jwt_alg_t alg, const char *inline_key, const char *path,
                    const char *opt)
{
    if (!inline_key && !path)
        return 0;
    size_t len = 0;
    char *m = key_material(inline_key, path, opt, &len);
    if (!m)
        return -1;
    const char *why = NULL;
    /* RFC 7518 3.2: an HMAC key at least as long as the hash output. A short
     * shared secret can be brute-forced offline from any one token. */
    size_t min = alg == JWT_HS256 ? 32 : alg == JWT_HS384 ? 48 : alg == JWT_HS512 ? 64 : 0;
    if (len < min) {
        memset(m, 0, len);
        free(m);
        fprintf(stderr, "courant: --%s: an %s secret must be at least %zu bytes (RFC 7518 3.2)\n", opt,
                jwt_alg_name(alg), min);
        return -1;
    }
    a->keys[role] = jwt_key_new(alg, m, len, &why);
    memset(m, 0, len);
    free(m);
    if (!a->keys[role]) {
        fprintf(stderr, "courant: --%s: %s (for --jwt-alg %s)\n", opt, why, jwt_alg_name(alg));
        return -1;
    }
    return 0;
}

auth_t *auth_new(const config_t *cfg)
{
    jwt_alg_t alg = JWT_HS256;
    if (cfg->jwt_alg && jwt_alg_parse(cfg->jwt_alg, &alg)) {
        fprintf(stderr, "courant: --jwt-alg wants HS256, HS384, HS512, RS256 or ES256, not \"%s\"\n",
                cfg->jwt_alg);
        return NULL;
    }
    auth_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    if (load_key(a, AUTH_PUBLISHER, alg, cfg->publisher_jwt_key, cfg->publisher_jwt_key_file,
                 "publisher-jwt-key") ||
        load_key(a, AUTH_SUBSCRIBER, alg, cfg->subscriber_jwt_key, cfg->subscriber_jwt_key_file,
                 "subscriber-jwt-key") ||
        load_key(a, AUTH_ADMIN, alg, cfg->admin_jwt_key, cfg->admin_jwt_key_file, "admin-jwt-key")) {
        auth_free(a);
        return NULL;
    }
    return a;
}

void auth_free(auth_t *a)
{
    if (!a)
        return;
    jwt_key_free(a->keys[0]);
    jwt_key_free(a->keys[1]);
    jwt_key_free(a->keys[2]);
    free(a);
}

int auth_has_key(const auth_t *a, auth_role_t role) { return a && a->keys[role] != NULL; }

int auth_cookie_value(const char *hdr, size_t len, const char *name, const char **val, size_t *vlen)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < len;) {
        while (i < len && (hdr[i] == ' ' || hdr[i] == ';'))
            i++;
        const char *semi = memchr(hdr + i, ';', len - i);
        size_t end = semi ? (size_t)(semi - hdr) : len;
        if (end - i > nl && hdr[i + nl] == '=' && memcmp(hdr + i, name, nl) == 0) {
            *val = hdr + i + nl + 1;
            *vlen = end - i - nl - 1;
            while (*vlen && (*val)[*vlen - 1] == ' ')
                (*vlen)--;
            /* RFC 6265 allows a DQUOTE-wrapped value. */
            if (*vlen >= 2 && (*val)[0] == '"' && (*val)[*vlen - 1] == '"') {
                (*val)++;
                *vlen -= 2;
            }
            return 1;
        }
        i = end;
    }
    return 0;
}

int auth_find_token(const request_t *in, const char *query_token, size_t query_len, const char **tok,
                    size_t *tok_len, req_token_from_t *from)
{
    *from = REQ_TOKEN_NONE;
    const http1_header_t *h = request_header(in, "authorization");
    if (h) {
        /* A present header wins even if it is not Bearer: the caller then
         * refuses it, rather than silently falling back to a weaker source. */
        if (h->value_len > 7 && http1_token_eq(h->value, 7, "Bearer ")) {
            *tok = h->value + 7;
            *tok_len = h->value_len - 7;
        } else {
            *tok = h->value;
            *tok_len = 0;
        }
        *from = REQ_TOKEN_HEADER;
        return 1;
    }
    if (query_token) {
        *tok = query_token;
        *tok_len = query_len;
        *from = REQ_TOKEN_QUERY;
        return 1;
    }
    const http1_header_t *ck = request_header(in, "cookie");
    if (ck && auth_cookie_value(ck->value, ck->value_len, COOKIE_NAME, tok, tok_len)) {
        *from = REQ_TOKEN_COOKIE;
        return 1;
    }
    return 0;
}

auth_status_t auth_check(const auth_t *a, auth_role_t role, const request_t *in, jwt_claims_t *claims,
                         const char **why)
{
    memset(claims, 0, sizeof(*claims));
    if (!auth_has_key(a, role))
        return AUTH_NO_KEY;
    if (in->token_from == REQ_TOKEN_NONE)
        return AUTH_NO_TOKEN;
    if (in->token_len == 0) {
        *why = "the Authorization header is not \"Bearer <token>\"";
        return AUTH_INVALID;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (jwt_try_verify(a->keys[role], in->token, in->token_len, (int64_t)ts.tv_sec, claims, why))
        return AUTH_INVALID;
    return AUTH_VALID;
}

/* ---- admin tokens ---------------------------------------------------------------- */

/* Does a verified payload grant the dashboard? {"mercure": {"admin": true}}:
 * exactly true, not a truthy string or number. This part stays when
 * verification moves to jws.c, whose jws_verified_t carries the payload
 * already parsed. */
static int claims_say_admin(const json_t *root)
{
    const json_t *m = json_is_object(root) ? json_object_get(root, "mercure") : NULL;
    return json_is_object(m) && json_is_true(json_object_get(m, "admin"));
}

/* jwt.c keeps only the claims it knows: read the payload of a token it
 * verified once more (bounded: JWT_MAX_TOKEN). Goes away with jws.c. */
static int payload_says_admin(const char *tok, size_t len)
{
    const char *dot1 = memchr(tok, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok)) : NULL;
    if (!dot2 || len > JWT_MAX_TOKEN)
        return 0;
    size_t plen = (size_t)(dot2 - dot1 - 1);
    unsigned char *buf = malloc(plen * 3 / 4 + 3);
    long n = buf ? jwt_b64url_decode(dot1 + 1, plen, buf) : -1;
    json_t *root = n >= 0 ? json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL) : NULL;
    int admin = root && claims_say_admin(root);
    json_decref(root);
    free(buf);
    return admin;
}

auth_admin_t auth_check_admin(const auth_t *a, const request_t *in, int64_t *exp_s, const char **why)
{
    static const auth_role_t roles[] = {AUTH_ADMIN, AUTH_SUBSCRIBER};
    *exp_s = 0;
    if (!auth_has_key(a, AUTH_ADMIN) && !auth_has_key(a, AUTH_SUBSCRIBER))
        return AUTH_ADMIN_NO_KEY;
    if (in->token_from == REQ_TOKEN_NONE)
        return AUTH_ADMIN_NO_TOKEN;
    if (in->token_len == 0) {
        *why = "the Authorization header is not \"Bearer <token>\"";
        return AUTH_ADMIN_INVALID;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const char *first_why = NULL;
    int verified = 0;
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (!auth_has_key(a, roles[i]))
            continue;
        jwt_claims_t claims;
        const char *w = NULL;
        if (jwt_try_verify(a->keys[roles[i]], in->token, in->token_len, (int64_t)ts.tv_sec, &claims, &w)) {
            if (!first_why)
                first_why = w;
            continue;
        }
        verified = 1;
        int64_t exp = claims.exp;
        jwt_claims_dispose(&claims);
        if (payload_says_admin(in->token, in->token_len)) {
            *exp_s = exp;
            return AUTH_ADMIN_OK;
        }
    }
    if (verified) {
        *why = "the token's mercure.admin claim is not true";
        return AUTH_ADMIN_NOT_ADMIN;
    }
    *why = first_why ? first_why : "invalid token";
    return AUTH_ADMIN_INVALID;
}

typedef struct qtok {
    const char *v;
    size_t len;
    int found;
} qtok_t;

static int on_query_pair(void *ctx, const char *n, size_t nl, const char *v, size_t vl)
{
    qtok_t *q = ctx;
    if (!q->found && nl == 13 && !memcmp(n, "authorization", 13)) {
        q->v = v;
        q->len = vl;
        q->found = 1;
    }
    return 0;
}

int auth_query_token(const char *query, size_t qlen, char *scratch, const char **tok, size_t *len)
{
    qtok_t q = {NULL, 0, 0};
    if (http1_parse_form(query, qlen, scratch, on_query_pair, &q) < 0)
        return -1;
    *tok = q.v;
    *len = q.len;
    return q.found;
}

void auth_add_challenge(resp_hdrs_t *h) { resp_hdrs_add(h, "WWW-Authenticate", "Bearer realm=\"mercure\""); }

/* The origin part (scheme://host[:port]) of a Referer. */
static size_t referer_origin_len(const char *v, size_t len)
{
    const char *sep = len > 8 ? memmem(v, len, "://", 3) : NULL;
    if (!sep)
        return 0;
    const char *host = sep + 3;
    const char *slash = memchr(host, '/', len - (size_t)(host - v));
    return slash ? (size_t)(slash - v) : len;
}

int auth_origin_allowed(const request_t *in, char *const *list, int n)
{
    const http1_header_t *h = request_header(in, "origin");
    const char *o = NULL;
    size_t olen = 0;
    if (h && !(h->value_len == 4 && !memcmp(h->value, "null", 4))) {
        o = h->value;
        olen = h->value_len;
    } else if ((h = request_header(in, "referer"))) {
        o = h->value;
        olen = referer_origin_len(h->value, h->value_len);
    }
    for (int i = 0; i < n; i++)
        if (o && olen && strlen(list[i]) == olen && !memcmp(list[i], o, olen))
            return 1;
    return 0;
}
