/*
 * auth.c - see auth.h.
 *
 * Keys are immutable jws key sets, one per role, built once per auth_t (at
 * start and on every SIGHUP, so a rotated key file takes effect without
 * touching open streams: a stream keeps the grant it was admitted with,
 * never the key). The JWKS keys live in the fetcher's holder and are
 * acquired per verification (one mutex-protected pointer copy).
 *
 * The material of a static key says its type: "-----BEGIN" is PEM (a
 * public key or a certificate), "{" a JWK, anything else an HMAC secret. A
 * PEM is never used as an HMAC secret: that is the algorithm-confusion
 * attack (RFC 8725 2.1) in its purest form.
 */
#include "auth.h"

#include <jansson.h>
#include "url.h"
#include "urlpattern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_KEY_FILE (1 << 20)
#define METADATA_PREFIX "/.well-known/oauth-protected-resource"

struct auth {
    jws_keyset_t
        *keys[3]; /* owns a reference: [AUTH_PUBLISHER], [AUTH_SUBSCRIBER], [AUTH_ADMIN]; NULL = none */
    int bound[3]; /* the role's static key is bound to --jwt-issuer (verifies v1 tokens) */
    jws_algset_t v1_algs; /* --access-token-algs (allow-list for v1 tokens) */
    char *resource;       /* owns: the resource identifier (v1 aud), NULL = unknown */
    char *metadata_url;   /* owns: its RFC 9728 metadata URL, NULL = unknown */
    jwks_fetcher_t *jwks; /* borrows (main owns it): the --jwks-url keys, or NULL */
};

/* ---- keys ------------------------------------------------------------------------ */

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

/* RFC 7518 3.2: an HMAC key at least as long as the hash output of every
 * algorithm it may verify. A short shared secret can be brute-forced offline
 * from any one token. */
static size_t hmac_min_len(jws_algset_t algs)
{
    return algs & JWS_ALG_BIT(JWS_HS512) ? 64 : algs & JWS_ALG_BIT(JWS_HS384) ? 48 : 32;
}

static const char *first_alg_name(jws_algset_t algs)
{
    for (int i = 0; i < JWS_ALG_COUNT; i++)
        if (algs & JWS_ALG_BIT(i))
            return jws_alg_name((jws_alg_t)i);
    return "?";
}

/* One key from its material: PEM, JWK or HMAC secret. NULL after printing why. */
static jws_key_t *make_key(const char *m, size_t len, jws_algset_t algs, const char *issuer, const char *opt)
{
    jws_key_params_t p = {.algs = algs, .kid = NULL, .issuer = issuer};
    const char *why = NULL;
    jws_key_t *k = NULL;
    size_t skip = 0;
    while (skip < len && (m[skip] == ' ' || m[skip] == '\n' || m[skip] == '\r' || m[skip] == '\t'))
        skip++;
    if (len - skip >= 10 && !memcmp(m + skip, "-----BEGIN", 10)) {
        k = jws_key_new_pem(&p, m, len, &why);
    } else if (len - skip >= 1 && m[skip] == '{') {
        jwks_parse_opts_t o = {.algs = algs, .issuer = issuer};
        if (jwks_try_parse_key(m, len, &o, &k, &why))
            k = NULL;
    } else {
        if (!algs)
            algs = JWS_ALG_BIT(JWS_HS256); /* today's default */
        if (algs & ~JWS_ALGS_HMAC) {
            fprintf(stderr, "courant: --%s: --jwt-alg %s wants a PEM or JWK public key, not a secret\n", opt,
                    first_alg_name(algs & ~JWS_ALGS_HMAC));
            return NULL;
        }
        size_t min = hmac_min_len(algs);
        if (len < min) {
            fprintf(stderr,
                    "courant: --%s: an HMAC secret for %s must be at least %zu bytes (RFC 7518 3.2)\n", opt,
                    min == 64   ? "HS512"
                    : min == 48 ? "HS384"
                                : "HS256",
                    min);
            return NULL;
        }
        p.algs = algs;
        k = jws_key_new_hmac(&p, m, len, &why);
    }
    if (!k)
        fprintf(stderr, "courant: --%s: %s\n", opt, why ? why : "unusable key");
    return k;
}

static int load_key(auth_t *a, auth_role_t role, const config_t *cfg, jws_algset_t algs,
                    const char *inline_key, const char *path, const char *opt)
{
    if (!inline_key && !path)
        return 0;
    size_t len = 0;
    char *m = key_material(inline_key, path, opt, &len);
    if (!m)
        return -1;
    jws_key_t *k = make_key(m, len, algs, cfg->jwt_issuer, opt);
    memset(m, 0, len);
    free(m);
    if (!k)
        return -1;
    const char *why = NULL;
    if (!(a->keys[role] = jws_keyset_new()) || jws_keyset_try_add(a->keys[role], k, &why)) {
        fprintf(stderr, "courant: --%s: %s\n", opt, why ? why : "out of memory");
        return -1;
    }
    a->bound[role] = cfg->jwt_issuer != NULL;
    return 0;
}

/* scheme://authority of the resource identifier, then the metadata path
 * prefix, then its path (RFC 9728 3.1: the well-known segment goes between
 * the host and the path). */
static char *metadata_url_of(const char *resource)
{
    const char *sep = strstr(resource, "://");
    if (!sep)
        return NULL;
    const char *path = sep + 3 + strcspn(sep + 3, "/?#");
    size_t plen = strcspn(path, "?#");
    if (plen == 1 && path[0] == '/')
        plen = 0;
    size_t olen = (size_t)(path - resource), n = olen + sizeof(METADATA_PREFIX) + plen;
    char *u = malloc(n);
    if (u)
        snprintf(u, n, "%.*s%s%.*s", (int)olen, resource, METADATA_PREFIX, (int)plen, path);
    return u;
}

auth_t *auth_new(const config_t *cfg)
{
    const char *why = NULL;
    jws_algset_t algs = 0, v1 = 0;
    if (cfg->jwt_alg && jws_algset_parse(cfg->jwt_alg, &algs, &why)) {
        fprintf(stderr, "courant: --jwt-alg: %s (\"%s\")\n", why, cfg->jwt_alg);
        return NULL;
    }
    if (cfg->access_token_algs && jws_algset_parse(cfg->access_token_algs, &v1, &why)) {
        fprintf(stderr, "courant: --access-token-algs: %s (\"%s\")\n", why, cfg->access_token_algs);
        return NULL;
    }
    auth_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->v1_algs = v1 ? v1 : JWS_ALGS_ALL;
    const char *res = config_resource_identifier(cfg);
    url_t u;
    url_init(&u);
    int bad = res && (url_try_parse(res, strlen(res), NULL, &u) || !u.has_host);
    url_dispose(&u);
    if (res && (bad || !(a->resource = strdup(res)) || !(a->metadata_url = metadata_url_of(res)))) {
        fprintf(stderr, "courant: --resource-identifier: not an absolute URL with a host: %s\n", res);
        auth_free(a);
        return NULL;
    }
    if (load_key(a, AUTH_PUBLISHER, cfg, algs, cfg->publisher_jwt_key, cfg->publisher_jwt_key_file,
                 "publisher-jwt-key") ||
        load_key(a, AUTH_SUBSCRIBER, cfg, algs, cfg->subscriber_jwt_key, cfg->subscriber_jwt_key_file,
                 "subscriber-jwt-key") ||
        load_key(a, AUTH_ADMIN, cfg, algs, cfg->admin_jwt_key, cfg->admin_jwt_key_file, "admin-jwt-key")) {
        auth_free(a);
        return NULL;
    }
    return a;
}

void auth_free(auth_t *a)
{
    if (!a)
        return;
    jws_keyset_unref(a->keys[0]);
    jws_keyset_unref(a->keys[1]);
    jws_keyset_unref(a->keys[2]);
    free(a->resource);
    free(a->metadata_url);
    free(a);
}

void auth_set_jwks(auth_t *a, jwks_fetcher_t *f) { a->jwks = f; }
jwks_fetcher_t *auth_jwks(const auth_t *a) { return a->jwks; }

int auth_has_key(const auth_t *a, auth_role_t role) { return a && (a->keys[role] || a->jwks); }

int auth_accepts(const auth_t *a, auth_role_t role, dialect_t d)
{
    if (d == DIALECT_CLASSIC)
        return a->keys[role] != NULL;
    return a->resource && ((a->keys[role] && a->bound[role]) || a->jwks);
}

const char *auth_resource(const auth_t *a) { return a->resource; }
const char *auth_metadata_url(const auth_t *a) { return a->metadata_url; }

/* ---- finding the token ---------------------------------------------------------------- */

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

static int find_cookie(request_t *in, const char *name)
{
    const http1_header_t *ck = request_header(in, "cookie");
    if (ck && auth_cookie_value(ck->value, ck->value_len, name, &in->token, &in->token_len)) {
        in->token_from = REQ_TOKEN_COOKIE;
        return 1;
    }
    return 0;
}

int auth_find_token(request_t *in, const char *query_token, size_t query_len)
{
    dialect_t d = (dialect_t)in->dialect;
    in->token_from = REQ_TOKEN_NONE;
    in->token = NULL;
    in->token_len = 0;
    const http1_header_t *h = request_header(in, "authorization");
    if (h) {
        /* A present header wins even if it is not Bearer: the caller then
         * refuses it, rather than silently falling back to a weaker source.
         * The scheme is case-insensitive (RFC 9110 11.1). */
        if (h->value_len > 7 && http1_token_eq(h->value, 7, "Bearer ")) {
            in->token = h->value + 7;
            in->token_len = h->value_len - 7;
        } else {
            in->token = h->value;
        }
        in->token_from = REQ_TOKEN_HEADER;
        if (d == DIALECT_AUTO && in->token_len)
            in->dialect = dialect_token_is_v1(in->token, in->token_len) ? DIALECT_V1 : DIALECT_CLASSIC;
        return 1;
    }
    if (d == DIALECT_V1)
        return find_cookie(in, AUTH_COOKIE_V1);
    if (query_token) {
        in->token = query_token;
        in->token_len = query_len;
        in->token_from = REQ_TOKEN_QUERY;
        if (d == DIALECT_AUTO)
            in->dialect = DIALECT_CLASSIC;
        return 1;
    }
    if (d != DIALECT_CLASSIC && find_cookie(in, AUTH_COOKIE_V1)) {
        if (d == DIALECT_AUTO)
            in->dialect = DIALECT_V1;
        return 1;
    }
    if (find_cookie(in, AUTH_COOKIE_CLASSIC)) {
        if (d == DIALECT_AUTO)
            in->dialect = DIALECT_CLASSIC;
        return 1;
    }
    return 0;
}

/* ---- verifying ------------------------------------------------------------------------- */

/* The static key of the role, then (v1) the JWKS keys. A token no key
 * fits is JWS_ERR_NO_KEY; a bad signature from either set is reported over
 * a mere "no key" from the other. */
static int verify(const auth_t *a, auth_role_t role, int v1, const request_t *in, jws_verified_t *v,
                  const char **why)
{
    jws_verify_opts_t o = {.algs = v1 ? a->v1_algs : 0, .issuer_bound = v1};
    int rc = JWS_ERR_NO_KEY;
    *why = v1 ? "no key verifies Mercure 1.0 access tokens (--jwt-issuer or --jwks-url)"
              : "no key verifies draft-07 tokens for this role";
    if (a->keys[role] && (!v1 || a->bound[role]))
        rc = jws_try_verify(a->keys[role], in->token, in->token_len, &o, v, why);
    if (rc == JWS_ERR_NO_KEY && !v1 && a->keys[role])
        *why = "alg differs from the configured --jwt-alg (no key for the token's alg or kid)";
    if (rc != 0 && v1 && a->jwks) {
        jws_keyset_t *ks = jwks_fetcher_keyset(a->jwks);
        const char *why2 = "no JWK Set was fetched yet";
        int rc2 = ks ? jws_try_verify(ks, in->token, in->token_len, &o, v, &why2) : JWS_ERR_NO_KEY;
        jws_keyset_unref(ks);
        if (rc2 == 0 || rc == JWS_ERR_NO_KEY) {
            rc = rc2;
            *why = why2;
        }
        if (rc2 == JWS_ERR_NO_KEY)
            jwks_fetcher_poke(a->jwks); /* maybe a rotation: one atomic, never waits */
    }
    return rc;
}

/* grant.c's hook: a `urlpattern` matcher of a token must compile. */
static int check_pattern(void *ctx, const char *pattern, size_t len, const char **why)
{
    urlpattern_t *p = urlpattern_try_new(pattern, len, ctx, why);
    urlpattern_free(p);
    return p ? 0 : -1;
}

auth_status_t auth_check(const auth_t *a, auth_role_t role, const request_t *in, grant_t *g, const char **why)
{
    memset(g, 0, sizeof(*g));
    int v1 = in->dialect == DIALECT_V1;
    if (v1 && in->token_in_url) {
        /* Refused whether or not keys are configured: a token in a URL ends
         * up in logs and histories (draft-08, RFC 9700). */
        *why = "an access token in the URL is not accepted (Authorization header or cookie)";
        return AUTH_BAD_REQUEST;
    }
    if (!auth_has_key(a, role))
        return AUTH_NO_KEY;
    if (in->token_from == REQ_TOKEN_NONE)
        return AUTH_NO_TOKEN;
    if (in->token_len == 0) {
        *why = "the Authorization header is not \"Bearer <token>\"";
        return v1 ? AUTH_BAD_REQUEST : AUTH_INVALID;
    }
    jws_verified_t v;
    if (verify(a, role, v1, in, &v, why))
        return AUTH_INVALID;
    int64_t now = (int64_t)time(NULL);
    int rc;
    if (v1) {
        const char *issuers[1] = {v.key_issuer};
        grant_v1_params_t p = {
            .issuers = issuers,
            .num_issuers = v.key_issuer ? 1 : 0,
            .audience = a->resource,
            .check_urlpattern = check_pattern,
            .check_ctx = a->resource,
        };
        rc = grant_try_from_v1(v.typ, v.payload, &p, now, g, why);
    } else if (dialect_typ_is_v1(v.typ)) {
        *why = "a Mercure 1.0 access token (typ at+jwt) on a draft-07 request (subscribe with match=)";
        rc = GRANT_INVALID_TOKEN;
    } else {
        rc = grant_try_from_classic(v.payload, now, g, why);
    }
    jws_verified_dispose(&v);
    return rc ? AUTH_INVALID : AUTH_VALID;
}

/* ---- admin tokens ---------------------------------------------------------------- */

/* Does a verified payload grant the dashboard? {"mercure": {"admin": true}}:
 * exactly true, not a truthy string or number. */
static int claims_say_admin(const json_t *root)
{
    const json_t *m = json_is_object(root) ? json_object_get(root, "mercure") : NULL;
    return json_is_object(m) && json_is_true(json_object_get(m, "admin"));
}

auth_admin_t auth_check_admin(const auth_t *a, const request_t *in, int64_t *exp_s, const char **why)
{
    static const auth_role_t roles[] = {AUTH_ADMIN, AUTH_SUBSCRIBER};
    *exp_s = 0;
    if (!a->keys[AUTH_ADMIN] && !a->keys[AUTH_SUBSCRIBER])
        return AUTH_ADMIN_NO_KEY;
    if (in->token_from == REQ_TOKEN_NONE)
        return AUTH_ADMIN_NO_TOKEN;
    if (in->token_len == 0) {
        *why = "the Authorization header is not \"Bearer <token>\"";
        return AUTH_ADMIN_INVALID;
    }
    const char *first_why = NULL;
    int verified = 0;
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (!a->keys[roles[i]])
            continue;
        jws_verified_t v;
        const char *w = NULL;
        jws_verify_opts_t o = {.algs = 0, .issuer_bound = 0};
        if (jws_try_verify(a->keys[roles[i]], in->token, in->token_len, &o, &v, &w)) {
            if (!first_why)
                first_why = w;
            continue;
        }
        /* The classic claims' rules for exp and nbf; then the admin claim. */
        grant_t g;
        int bad = grant_try_from_classic(v.payload, (int64_t)time(NULL), &g, &w);
        int admin = !bad && claims_say_admin(v.payload);
        int64_t exp = bad ? 0 : g.exp;
        if (!bad)
            grant_dispose(&g);
        jws_verified_dispose(&v);
        if (bad) {
            if (!first_why)
                first_why = w;
            continue;
        }
        verified = 1;
        if (admin) {
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

void auth_add_challenge(const auth_t *a, resp_hdrs_t *h, const char *error)
{
    char v[1024];
    int n = snprintf(v, sizeof(v), "Bearer realm=\"mercure\"");
    if (error)
        n += snprintf(v + n, sizeof(v) - (size_t)n, ", error=\"%s\"", error);
    if (a && a->metadata_url && (size_t)n < sizeof(v) && strlen(a->metadata_url) < sizeof(v) - (size_t)n - 24)
        snprintf(v + n, sizeof(v) - (size_t)n, ", resource_metadata=\"%s\"", a->metadata_url);
    resp_hdrs_add(h, "WWW-Authenticate", v);
}

/* ---- helpers ------------------------------------------------------------------------------ */

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
