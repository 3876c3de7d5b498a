/*
 * jwks.c - see jwks.h.
 *
 * Parser: each JWK member becomes an OpenSSL public key through
 * EVP_PKEY_fromdata (RSA n/e, EC group + uncompressed point 04||x||y) or
 * EVP_PKEY_new_raw_public_key (Ed25519), then EVP_PKEY_public_check (the EC
 * point is on the curve and not the identity; RSA n and e are sane) before
 * jws_key_new_pkey binds it to its algorithms, kid and issuer. Base64url
 * members decode into stack buffers sized for the largest key we accept
 * (RSA 8192 bits), so a huge member is refused before any allocation.
 *
 * Fetcher: see the diagram in jwks.h. State per URL is touched only by the
 * fetcher thread, except `keys` (the last good set of that URL), which the
 * main thread also reads when jwks_fetcher_set_base rebuilds the union: it
 * is guarded by `lock`, as are `base` and `ready`. The union is published
 * through a jws_keyset_holder, whose own mutex is all a worker ever takes.
 * Pokes are an atomic flag plus an eventfd written only when the flag was
 * clear, so a burst of unknown-kid tokens costs one write(2) and one wake-up.
 */
#include "jwks.h"

#include "curlhttps.h"
#include "log.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Largest base64url member we decode: an RSA-8192 modulus (1024 bytes). */
#define MEMBER_MAX 1024
/* URLs per fetcher: 8 JWK Sets of 64 keys and the base keys fit a keyset. */
#define MAX_URLS 8

/* ---- parser --------------------------------------------------------------------- */

/* Decodes the base64url string member `name` into buf (MEMBER_MAX + 3
 * bytes). Returns its length, or -1 if missing, not a string, too long or
 * not base64url. */
static long b64_member(const json_t *jwk, const char *name, unsigned char *buf)
{
    const json_t *v = json_object_get(jwk, name);
    if (!json_is_string(v) || json_string_length(v) > (MEMBER_MAX * 4 + 2) / 3)
        return -1;
    long n = jws_b64url_decode(json_string_value(v), json_string_length(v), buf);
    return n > 0 ? n : -1;
}

static int has_any(const json_t *jwk, const char *const *names)
{
    for (; *names; names++) {
        if (json_object_get(jwk, *names))
            return 1;
    }
    return 0;
}

/* A public key from OSSL params; NULL on any failure or a failed check. */
static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
    EVP_PKEY *pk = NULL;
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pk;
}

static EVP_PKEY *rsa_key(const json_t *jwk, const char **why)
{
    unsigned char n[MEMBER_MAX + 3], e[MEMBER_MAX + 3];
    long nl = b64_member(jwk, "n", n), el = b64_member(jwk, "e", e);
    if (nl < 0 || el < 0 || el > 8) {
        *why = "an RSA key needs base64url n (at most 8192 bits) and e";
        return NULL;
    }
    BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        pk = pkey_fromdata("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    if (!pk)
        *why = "the RSA key is malformed";
    return pk;
}

static EVP_PKEY *ec_key(const json_t *jwk, const char **why)
{
    const json_t *crv = json_object_get(jwk, "crv");
    const char *group = NULL;
    size_t coord = 0;
    if (json_is_string(crv) && !strcmp(json_string_value(crv), "P-256"))
        group = "prime256v1", coord = 32;
    else if (json_is_string(crv) && !strcmp(json_string_value(crv), "P-384"))
        group = "secp384r1", coord = 48;
    if (!group) {
        *why = "unsupported EC curve (want P-256 or P-384)";
        return NULL;
    }
    unsigned char x[MEMBER_MAX + 3], y[MEMBER_MAX + 3], point[1 + 2 * 48];
    long xl = b64_member(jwk, "x", x), yl = b64_member(jwk, "y", y);
    if (xl != (long)coord || yl != (long)coord) {
        *why = "an EC key needs x and y of the curve's full size";
        return NULL;
    }
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, x, coord);
    memcpy(point + 1 + coord, y, coord);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * coord))
        pk = pkey_fromdata("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    if (!pk)
        *why = "the EC point is not on the curve";
    return pk;
}

static EVP_PKEY *okp_key(const json_t *jwk, const char **why)
{
    const json_t *crv = json_object_get(jwk, "crv");
    unsigned char x[MEMBER_MAX + 3];
    if (!json_is_string(crv) || strcmp(json_string_value(crv), "Ed25519") != 0) {
        *why = "unsupported OKP curve (want Ed25519)";
        return NULL;
    }
    if (b64_member(jwk, "x", x) != 32) {
        *why = "an Ed25519 key needs a 32-byte x";
        return NULL;
    }
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32);
    if (!pk)
        *why = "the Ed25519 key is malformed";
    return pk;
}

/* The algorithms a key type allows, before "alg" and the allow-list. */
static jws_algset_t type_algs(const char *kty, const json_t *jwk)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    if (!strcmp(kty, "RSA"))
        return JWS_ALGS_RSA;
    if (!strcmp(kty, "oct"))
        return JWS_ALGS_HMAC;
    if (!strcmp(kty, "EC") && crv)
        return !strcmp(crv, "P-256")   ? JWS_ALG_BIT(JWS_ES256)
               : !strcmp(crv, "P-384") ? JWS_ALG_BIT(JWS_ES384)
                                       : 0;
    if (!strcmp(kty, "OKP") && crv && !strcmp(crv, "Ed25519"))
        return JWS_ALG_BIT(JWS_EDDSA);
    return 0;
}

/* "use" must be "sig" if present; "key_ops" must hold "verify" if present. */
static int usable_for_signatures(const json_t *jwk, const char **why)
{
    const json_t *use = json_object_get(jwk, "use"), *ops = json_object_get(jwk, "key_ops");
    if (use && !(json_is_string(use) && !strcmp(json_string_value(use), "sig"))) {
        *why = "use is not \"sig\"";
        return 0;
    }
    if (!ops)
        return 1;
    for (size_t i = 0; json_is_array(ops) && i < json_array_size(ops); i++) {
        const json_t *op = json_array_get(ops, i);
        if (json_is_string(op) && !strcmp(json_string_value(op), "verify"))
            return 1;
    }
    *why = "key_ops does not allow verify";
    return 0;
}

/* kid and alg: the key's params (kid borrowed from jwk), or -1 with *why. */
static int key_params(const char *kty, const json_t *jwk, const jwks_parse_opts_t *o, jws_key_params_t *p,
                      const char **why)
{
    const json_t *kid = json_object_get(jwk, "kid"), *alg = json_object_get(jwk, "alg");
    memset(p, 0, sizeof(*p));
    if (kid &&
        (!json_is_string(kid) || json_string_length(kid) == 0 || json_string_length(kid) > JWS_MAX_ID)) {
        *why = "kid is not a string of 1 to 512 bytes";
        return -1;
    }
    p->kid = kid ? json_string_value(kid) : NULL;
    p->issuer = o->issuer;
    p->algs = type_algs(kty, jwk);
    if (!p->algs) { /* RSA and oct always have some: a curve we do not know */
        *why = !strcmp(kty, "EC") ? "unsupported EC curve (want P-256 or P-384)"
                                  : "unsupported OKP curve (want Ed25519)";
        return -1;
    }
    if (alg) {
        jws_alg_t a;
        if (!json_is_string(alg) || jws_alg_parse(json_string_value(alg), json_string_length(alg), &a)) {
            *why = "alg is not a supported signature algorithm";
            return -1;
        }
        if (!(p->algs & JWS_ALG_BIT(a))) {
            *why = "alg does not fit the key type";
            return -1;
        }
        p->algs = JWS_ALG_BIT(a);
    }
    if (o->algs)
        p->algs &= o->algs;
    if (!p->algs) {
        *why = "none of the key's algorithms is allowed";
        return -1;
    }
    return 0;
}

static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", NULL};

static int key_from_jwk(const json_t *jwk, const jwks_parse_opts_t *o, jws_key_t **out, const char **why)
{
    *out = NULL;
    const json_t *kty_j = json_object_get(jwk, "kty");
    const char *kty = json_string_value(kty_j);
    jws_key_params_t p;
    if (!json_is_object(jwk)) {
        *why = "a key is not a JSON object";
        return -1;
    }
    if (!kty || (strcmp(kty, "RSA") && strcmp(kty, "EC") && strcmp(kty, "OKP") && strcmp(kty, "oct"))) {
        *why = "kty is missing or unsupported (want RSA, EC, OKP or oct)";
        return -1;
    }
    if (!usable_for_signatures(jwk, why) || key_params(kty, jwk, o, &p, why))
        return -1;
    if (!strcmp(kty, "oct")) {
        unsigned char k[MEMBER_MAX + 3];
        long kl = b64_member(jwk, "k", k);
        if (kl < 0) {
            *why = "an oct key needs a base64url k of at most 1024 bytes";
            return -1;
        }
        *out = jws_key_new_hmac(&p, k, (size_t)kl, why);
        OPENSSL_cleanse(k, sizeof(k));
        return *out ? 0 : -1;
    }
    if (has_any(jwk, private_members)) {
        *why = "private key members in a public JWK (d, p, q..): refused";
        return -1;
    }
    EVP_PKEY *pk = !strcmp(kty, "RSA")  ? rsa_key(jwk, why)
                   : !strcmp(kty, "EC") ? ec_key(jwk, why)
                                        : okp_key(jwk, why);
    if (!pk)
        return -1;
    /* Type, size and curve first (the clearer reasons), then the math. */
    jws_key_t *k = jws_key_new_pkey(&p, pk, why);
    if (!k) {
        EVP_PKEY_free(pk);
        return -1;
    }
    EVP_PKEY_CTX *cctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    int checked = cctx && EVP_PKEY_public_check(cctx) == 1;
    EVP_PKEY_CTX_free(cctx);
    if (!checked) {
        *why = "the public key fails OpenSSL's validity check";
        jws_key_unref(k); /* frees pk */
        return -1;
    }
    *out = k;
    return 0;
}

static const jwks_parse_opts_t no_opts = {0, NULL, NULL, NULL};

int jwks_try_parse_key(const char *json, size_t len, const jwks_parse_opts_t *opts, jws_key_t **out,
                       const char **why)
{
    *out = NULL;
    if (len > JWKS_MAX_BYTES) {
        *why = "the JWK is larger than 256 KiB";
        return -1;
    }
    json_t *j = jws_json_try_parse(json, len, JWS_MAX_JSON_DEPTH);
    if (!j) {
        *why = "the JWK is not JSON";
        return -1;
    }
    int rc = key_from_jwk(j, opts ? opts : &no_opts, out, why);
    json_decref(j);
    return rc;
}

int jwks_try_parse(const char *json, size_t len, const jwks_parse_opts_t *opts, jws_keyset_t **out,
                   const char **why)
{
    *out = NULL;
    if (!opts)
        opts = &no_opts;
    if (len > JWKS_MAX_BYTES) {
        *why = "the JWK Set is larger than 256 KiB";
        return -1;
    }
    json_t *j = jws_json_try_parse(json, len, JWS_MAX_JSON_DEPTH);
    const json_t *keys = json_object_get(j, "keys");
    jws_keyset_t *ks = NULL;
    if (!json_is_object(j) || !json_is_array(keys)) {
        *why = "not a JWK Set (a JSON object with a \"keys\" array)";
    } else if (json_array_size(keys) > JWKS_MAX_KEYS) {
        *why = "the JWK Set has more than 64 keys";
    } else if (!(ks = jws_keyset_new())) {
        *why = "out of memory";
    } else {
        for (size_t i = 0; i < json_array_size(keys); i++) {
            jws_key_t *k;
            const char *skip = NULL;
            if (key_from_jwk(json_array_get(keys, i), opts, &k, &skip) == 0 &&
                jws_keyset_try_add(ks, k, &skip) == 0)
                continue;
            if (opts->on_skip)
                opts->on_skip(opts->ctx, i, skip);
        }
        if (jws_keyset_count(ks) > 0) {
            json_decref(j);
            *out = ks;
            return 0;
        }
        *why = "no usable key in the JWK Set";
    }
    jws_keyset_unref(ks);
    json_decref(j);
    return -1;
}

/* ---- fetcher ---------------------------------------------------------------------- */

enum url_state { URL_NEW, URL_OK, URL_FAILING };

typedef struct jwks_url {
    char *url;                    /* owns */
    char *issuer;                 /* owns: every key of this URL is bound to it */
    jws_keyset_t *keys;           /* owns: last good set, NULL = none yet; guarded by fetcher.lock */
    unsigned char digest[32];     /* SHA-256 of the last good body; fetcher thread */
    int64_t next_ms;              /* monotonic time of the next scheduled fetch; fetcher thread */
    int64_t last_attempt_ms;      /* monotonic start of the last attempt, 0 = never; fetcher thread */
    int poke_pending;             /* a poke waits for the interval to pass; fetcher thread */
    int backoff_s;                /* delay after the last failure, 0 after a success; fetcher thread */
    enum url_state state;         /* for logging each change once; fetcher thread */
    const char *last_why;         /* static reason of the last failure; fetcher thread */
    char errbuf[CURL_ERROR_SIZE]; /* libcurl's detail of the last failure; fetcher thread */
    atomic_uint_fast64_t fetches, failures, changes; /* jwks_url_stats_t; written by the fetcher thread */
    atomic_int ok, nkeys, ttl_s;                     /* idem */
} jwks_url_t;

struct jwks_fetcher {
    size_t n;                   /* URLs */
    jwks_url_t *urls;           /* owns: n of them */
    jwks_fetcher_opts_t o;      /* options with defaults applied; ca_file points at ca_file below */
    char *ca_file;              /* owns: copy of opts->ca_file, or NULL */
    int efd;                    /* eventfd: pokes and stop wake the thread; -1 before new succeeds */
    atomic_int poked;           /* a poke came since the thread last looked */
    atomic_int stopping;        /* stop asked: the thread exits, transfers abort */
    pthread_t thread;           /* valid while started */
    int started;                /* thread running (main thread only) */
    jws_keyset_holder_t holder; /* the published union */
    pthread_mutex_t lock;       /* guards urls[].keys, base, ready; never held during I/O */
    pthread_cond_t ready_cond;  /* signalled when `ready` grows (CLOCK_MONOTONIC) */
    jws_keyset_t *base;         /* owns: static keys in every union, or NULL */
    size_t ready;               /* URLs that have keys */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Adds references to every key of `from` to `to`; keys past the cap are
 * dropped with a warning (a misconfiguration, not an input). */
static void add_all(jws_keyset_t *to, const jws_keyset_t *from)
{
    for (size_t i = 0; from && i < jws_keyset_count(from); i++) {
        const char *why;
        if (jws_keyset_try_add(to, jws_key_ref(jws_keyset_get(from, i)), &why)) {
            log_warn("jwks: a key was left out of the trusted set: %s", why);
            return;
        }
    }
}

/* Builds the union of base and every URL's keys and publishes it. Caller
 * holds f->lock. */
static void publish_locked(jwks_fetcher_t *f)
{
    jws_keyset_t *ks = jws_keyset_new();
    if (!ks) {
        log_error("jwks: out of memory building the key set; the previous one stays");
        return;
    }
    add_all(ks, f->base);
    for (size_t i = 0; i < f->n; i++)
        add_all(ks, f->urls[i].keys);
    if (jws_keyset_count(ks) == 0) {
        jws_keyset_unref(ks);
        ks = NULL;
    }
    jws_keyset_holder_swap(&f->holder, ks);
}

/* libcurl allows global initialization only before threads exist. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static int opt_or(int v, int dflt) { return v > 0 ? v : dflt; }

jwks_fetcher_t *jwks_fetcher_new(const char *const *urls, const char *const *issuers, size_t n,
                                 const jwks_fetcher_opts_t *opts, const char **why)
{
    static const jwks_fetcher_opts_t none = {0};
    if (!opts)
        opts = &none;
    if (n == 0 || n > MAX_URLS) {
        *why = "give between 1 and 8 JWK Set URLs";
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!urls[i] || strncasecmp(urls[i], "https://", 8) != 0 || !urls[i][8]) {
            *why = "a JWK Set URL must start with https://";
            return NULL;
        }
        if (!issuers[i] || !issuers[i][0] || strlen(issuers[i]) > JWS_MAX_ID) {
            *why = "each JWK Set URL needs a trusted issuer (1 to 512 bytes)";
            return NULL;
        }
    }
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        *why = "libcurl failed to initialize";
        return NULL;
    }
    jwks_fetcher_t *f = calloc(1, sizeof(*f));
    if (!f || !(f->urls = calloc(n, sizeof(*f->urls)))) {
        free(f);
        *why = "out of memory";
        return NULL;
    }
    f->n = n;
    f->efd = -1;
    jws_keyset_holder_init(&f->holder);
    pthread_mutex_init(&f->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->ready_cond, &ca);
    pthread_condattr_destroy(&ca);
    f->o = *opts;
    f->o.min_ttl_s = opt_or(opts->min_ttl_s, 60);
    f->o.max_ttl_s = opt_or(opts->max_ttl_s, 86400);
    f->o.default_ttl_s = opt_or(opts->default_ttl_s, 300);
    f->o.poke_interval_s = opt_or(opts->poke_interval_s, 10);
    f->o.retry_min_s = opt_or(opts->retry_min_s, 5);
    f->o.timeout_ms = opt_or(opts->timeout_ms, 10000);
    int ok = f->o.max_ttl_s >= f->o.min_ttl_s;
    if (!ok)
        *why = "max_ttl_s is below min_ttl_s";
    if (ok && opts->ca_file && !(f->ca_file = strdup(opts->ca_file)))
        ok = 0, *why = "out of memory";
    f->o.ca_file = f->ca_file;
    for (size_t i = 0; ok && i < n; i++) {
        if (!(f->urls[i].url = strdup(urls[i])) || !(f->urls[i].issuer = strdup(issuers[i])))
            ok = 0, *why = "out of memory";
    }
    if (ok && (f->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        ok = 0, *why = "eventfd failed";
    if (!ok) {
        jwks_fetcher_free(f);
        return NULL;
    }
    return f;
}

void jwks_fetcher_set_base(jwks_fetcher_t *f, jws_keyset_t *base)
{
    pthread_mutex_lock(&f->lock);
    jws_keyset_t *old = f->base;
    f->base = base;
    publish_locked(f);
    pthread_mutex_unlock(&f->lock);
    jws_keyset_unref(old);
}

jws_keyset_t *jwks_fetcher_keyset(jwks_fetcher_t *f) { return jws_keyset_holder_acquire(&f->holder); }

void jwks_fetcher_poke(jwks_fetcher_t *f)
{
    if (atomic_exchange_explicit(&f->poked, 1, memory_order_acq_rel) == 0)
        (void)eventfd_write(f->efd, 1); /* EAGAIN only if the counter is full: already awake */
}

int jwks_fetcher_stats(jwks_fetcher_t *f, size_t i, jwks_url_stats_t *out)
{
    if (i >= f->n)
        return -1;
    jwks_url_t *u = &f->urls[i];
    out->fetches = atomic_load_explicit(&u->fetches, memory_order_relaxed);
    out->failures = atomic_load_explicit(&u->failures, memory_order_relaxed);
    out->changes = atomic_load_explicit(&u->changes, memory_order_relaxed);
    out->ok = atomic_load_explicit(&u->ok, memory_order_relaxed);
    out->keys = atomic_load_explicit(&u->nkeys, memory_order_relaxed);
    out->ttl_s = atomic_load_explicit(&u->ttl_s, memory_order_relaxed);
    return 0;
}

/* ---- one transfer ---- */

typedef struct transfer {
    jwks_fetcher_t *f; /* borrows: for `stopping` */
    char *body;        /* owns: response body, up to JWKS_MAX_BYTES */
    size_t len;        /* bytes in body */
    int too_big;       /* the body passed the cap (transfer aborted) */
    long max_age;      /* from Cache-Control, -1 = none */
    int no_cache;      /* Cache-Control no-cache or no-store */
} transfer_t;

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
    transfer_t *t = ctx;
    size_t n = size * nmemb;
    if (n > JWKS_MAX_BYTES - t->len) {
        t->too_big = 1;
        return 0; /* aborts with CURLE_WRITE_ERROR */
    }
    if (!t->body && !(t->body = malloc(JWKS_MAX_BYTES)))
        return 0;
    memcpy(t->body + t->len, p, n);
    t->len += n;
    return n;
}

/* RFC 9111 5.2; the contract is in jwks.h. */
void jwks__parse_cache_control(const char *v, size_t len, long *max_age, int *no_cache)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',' && v[i] != '=' && v[i] != ' ' && v[i] != '\t')
            i++;
        size_t nl = i - start;
        const char *name = v + start;
        long val = -1;
        if (i < len && v[i] == '=') {
            i++;
            int quoted = i < len && v[i] == '"';
            i += (size_t)quoted;
            if (i < len && v[i] >= '0' && v[i] <= '9') {
                val = 0;
                while (i < len && v[i] >= '0' && v[i] <= '9') {
                    val = val < 100000000 ? val * 10 + (v[i] - '0') : 1000000000; /* saturates */
                    i++;
                }
            }
            i += (size_t)(quoted && i < len && v[i] == '"');
        }
        while (i < len && v[i] != ',')
            i++; /* anything else up to the next directive */
        if (nl == 7 && !strncasecmp(name, "max-age", 7) && val >= 0 && (*max_age < 0 || val < *max_age))
            *max_age = val;
        else if ((nl == 8 && !strncasecmp(name, "no-cache", 8)) ||
                 (nl == 8 && !strncasecmp(name, "no-store", 8)))
            *no_cache = 1;
    }
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ctx)
{
    transfer_t *t = ctx;
    size_t n = size * nmemb;
    if (n >= 5 && !memcmp(p, "HTTP/", 5)) {
        t->max_age = -1; /* a new response (after 100 Continue): forget the last */
        t->no_cache = 0;
    } else if (n > 14 && !strncasecmp(p, "cache-control:", 14)) {
        jwks__parse_cache_control(p + 14, n - 14, &t->max_age, &t->no_cache);
    }
    return n;
}

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    transfer_t *t = ctx;
    return atomic_load_explicit(&t->f->stopping, memory_order_relaxed) ? 1 : 0;
}

/* GETs u->url into t. Returns 0 with a 200 body, or -1 with *why (static;
 * u->errbuf may hold libcurl's detail). */
static int http_get(jwks_fetcher_t *f, jwks_url_t *u, transfer_t *t, const char **why)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/jwk-set+json, application/json");
    if (!c || !hdrs) {
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(c);
        *why = "out of memory";
        return -1;
    }
    curlhttps_opts_t o = {
        .url = u->url,
        .timeout_ms = f->o.timeout_ms,
        .user_agent = "courant-jwks/1",
        .headers = hdrs,
        .errbuf = u->errbuf,
        .on_body = on_body,
        .body_ctx = t,
        .on_header = on_header,
        .header_ctx = t,
        .on_progress = on_progress,
        .progress_ctx = t,
        .max_bytes = JWKS_MAX_BYTES,
        .ca_file = f->o.ca_file,
        .insecure_tls = f->o.insecure_tls,
    };
    curlhttps_setup(c, &o);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    if (t->too_big || rc == CURLE_FILESIZE_EXCEEDED)
        *why = "the JWK Set is larger than 256 KiB";
    else if (rc != CURLE_OK)
        *why = curl_easy_strerror(rc); /* a static string */
    else if (status != 200)
        *why = "the HTTP status is not 200";
    else
        return 0;
    return -1;
}

typedef struct skip_ctx {
    const char *url; /* borrows: for the log line */
} skip_ctx_t;

static void on_skip(void *ctx, size_t index, const char *why)
{
    skip_ctx_t *s = ctx;
    log_info("jwks: %s: key %zu skipped: %s", s->url, index, why);
}

static int clamp_ttl(const jwks_fetcher_t *f, const transfer_t *t)
{
    long ttl = t->no_cache ? f->o.min_ttl_s : t->max_age >= 0 ? t->max_age : f->o.default_ttl_s;
    if (ttl < f->o.min_ttl_s)
        ttl = f->o.min_ttl_s;
    if (ttl > f->o.max_ttl_s)
        ttl = f->o.max_ttl_s;
    return (int)ttl;
}

/* Parses a new body into u->keys (publishing the union); 0, or -1 + *why. */
static int take_body(jwks_fetcher_t *f, jwks_url_t *u, const transfer_t *t, const char **why)
{
    unsigned char digest[32];
    unsigned int dl = 0;
    if (!EVP_Digest(t->body, t->len, digest, &dl, EVP_sha256(), NULL)) {
        *why = "out of memory";
        return -1;
    }
    if (u->keys && !memcmp(digest, u->digest, sizeof(digest)))
        return 0; /* same bytes, same keys */
    skip_ctx_t sc = {u->url};
    jwks_parse_opts_t po = {f->o.algs, u->issuer, on_skip, &sc};
    jws_keyset_t *ks;
    if (jwks_try_parse(t->body, t->len, &po, &ks, why))
        return -1;
    memcpy(u->digest, digest, sizeof(digest));
    atomic_store_explicit(&u->nkeys, (int)jws_keyset_count(ks), memory_order_relaxed);
    atomic_fetch_add_explicit(&u->changes, 1, memory_order_relaxed);
    pthread_mutex_lock(&f->lock);
    jws_keyset_t *old = u->keys;
    u->keys = ks;
    if (!old)
        f->ready++;
    publish_locked(f);
    pthread_cond_broadcast(&f->ready_cond);
    pthread_mutex_unlock(&f->lock);
    if (old)
        log_info("jwks: %s: key set changed, %zu keys", u->url, jws_keyset_count(ks));
    jws_keyset_unref(old);
    return 0;
}

static void log_outcome(jwks_url_t *u, int ok, const char *why, int delay_s)
{
    if (ok) {
        if (u->state == URL_FAILING)
            log_info("jwks: %s: fetched again, %d keys for issuer %s", u->url, atomic_load(&u->nkeys),
                     u->issuer);
        else if (u->state == URL_NEW)
            log_info("jwks: %s: %d keys for issuer %s, next fetch in %d s", u->url, atomic_load(&u->nkeys),
                     u->issuer, delay_s);
        u->state = URL_OK;
        return;
    }
    if (u->state != URL_FAILING || u->last_why != why)
        log_warn("jwks: %s: fetch failed: %s%s%s; %s; retry in %d s", u->url, why, u->errbuf[0] ? ": " : "",
                 u->errbuf, u->keys ? "keeping the last good keys" : "no keys for this issuer yet", delay_s);
    else
        log_debug("jwks: %s: still failing: %s; retry in %d s", u->url, why, delay_s);
    u->state = URL_FAILING;
    u->last_why = why;
}

static void fetch_one(jwks_fetcher_t *f, jwks_url_t *u)
{
    transfer_t t = {f, NULL, 0, 0, -1, 0};
    const char *why = NULL;
    u->last_attempt_ms = mono_ms();
    u->poke_pending = 0;
    int ok = http_get(f, u, &t, &why) == 0 && take_body(f, u, &t, &why) == 0;
    free(t.body);
    if (atomic_load_explicit(&f->stopping, memory_order_relaxed))
        return; /* an aborted transfer is not a failure worth a log line */
    int delay_s;
    if (ok) {
        delay_s = clamp_ttl(f, &t);
        u->backoff_s = 0;
    } else {
        u->backoff_s = u->backoff_s ? u->backoff_s * 2 : f->o.retry_min_s;
        if (u->backoff_s > f->o.max_ttl_s)
            u->backoff_s = f->o.max_ttl_s;
        delay_s = u->backoff_s;
        atomic_fetch_add_explicit(&u->failures, 1, memory_order_relaxed);
    }
    u->next_ms = u->last_attempt_ms + (int64_t)delay_s * 1000;
    atomic_store_explicit(&u->ok, ok, memory_order_relaxed);
    atomic_store_explicit(&u->ttl_s, delay_s, memory_order_relaxed);
    atomic_fetch_add_explicit(&u->fetches, 1, memory_order_relaxed);
    log_outcome(u, ok, why, delay_s);
}

/* When u is next due: its schedule, or earlier for a pending poke. */
static int64_t due_ms(const jwks_fetcher_t *f, const jwks_url_t *u)
{
    int64_t due = u->next_ms;
    if (u->poke_pending) {
        int64_t p = u->last_attempt_ms + (int64_t)f->o.poke_interval_s * 1000;
        if (p < due)
            due = p;
    }
    return due;
}

static void *fetcher_main(void *arg)
{
    jwks_fetcher_t *f = arg;
    log_set_thread_name("jwks");
    while (!atomic_load_explicit(&f->stopping, memory_order_acquire)) {
        if (atomic_exchange_explicit(&f->poked, 0, memory_order_acq_rel)) {
            for (size_t i = 0; i < f->n; i++)
                f->urls[i].poke_pending = 1;
        }
        int64_t next = INT64_MAX;
        for (size_t i = 0; i < f->n && !atomic_load(&f->stopping); i++) {
            jwks_url_t *u = &f->urls[i];
            if (due_ms(f, u) <= mono_ms())
                fetch_one(f, u);
            int64_t d = due_ms(f, u);
            next = d < next ? d : next;
        }
        int64_t wait = next - mono_ms();
        struct pollfd pfd = {f->efd, POLLIN, 0};
        if (wait > 0 && poll(&pfd, 1, wait > 60000 ? 60000 : (int)wait) > 0) {
            eventfd_t v;
            (void)eventfd_read(f->efd, &v);
        }
    }
    return NULL;
}

int jwks_fetcher_start(jwks_fetcher_t *f, const char **why)
{
    if (f->started)
        return 0;
    if (pthread_create(&f->thread, NULL, fetcher_main, f) != 0) {
        *why = "cannot start the JWKS thread";
        return -1;
    }
    f->started = 1;
    return 0;
}

int jwks_fetcher_wait_ready(jwks_fetcher_t *f, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&f->lock);
    while (f->ready < f->n && pthread_cond_timedwait(&f->ready_cond, &f->lock, &dl) != ETIMEDOUT)
        ;
    int all = f->ready == f->n;
    pthread_mutex_unlock(&f->lock);
    return all;
}

void jwks_fetcher_stop(jwks_fetcher_t *f)
{
    if (!f->started)
        return;
    atomic_store_explicit(&f->stopping, 1, memory_order_release);
    (void)eventfd_write(f->efd, 1);
    pthread_join(f->thread, NULL);
    f->started = 0;
}

void jwks_fetcher_free(jwks_fetcher_t *f)
{
    if (!f)
        return;
    jwks_fetcher_stop(f);
    for (size_t i = 0; i < f->n; i++) {
        free(f->urls[i].url);
        free(f->urls[i].issuer);
        jws_keyset_unref(f->urls[i].keys);
    }
    free(f->urls);
    free(f->ca_file);
    jws_keyset_unref(f->base);
    jws_keyset_holder_dispose(&f->holder);
    pthread_cond_destroy(&f->ready_cond);
    pthread_mutex_destroy(&f->lock);
    if (f->efd >= 0)
        close(f->efd);
    free(f);
}
