/*
 * acme.c - see acme.h for the design; here, the order as the thread runs
 * it, and the choices.
 *
 *   run_order:  directory -> newAccount (jwk; Location = kid) -> newOrder (kid)
 *               for each authorization: valid? next : provision, POST {}, poll
 *               poll the order until ready -> finalize (CSR of a new key)
 *               poll until valid -> POST-as-GET the certificate -> check -> save -> install
 *
 * Every request but the directory and newNonce is a JWS POST (RFC 8555
 * 6.2); reads are POST-as-GET (empty payload). The nonce of each answer is
 * kept for the next request; badNonce is retried with the nonce it brought.
 * Polls sleep for the CA's Retry-After (1 to 10 s, default 1 s) and give up
 * after ACME_POLL_S; the thread's sleeps wake at once on acme_stop, and the
 * transfer in flight aborts through libcurl's progress callback.
 *
 * The account is looked up with newAccount at every order (it answers 200
 * with the same URL for a known key) rather than cached on disk: an order is
 * rare, and nothing can go stale. The account key itself is never replaced:
 * a key that exists but does not load stops courant with a message, since a
 * new key would be a new account.
 *
 * Files are written to NAME.tmp (0600), fsynced, renamed, and the directory
 * fsynced, so a crash leaves the old file or the new one. cert.key is
 * written before cert.pem; a crash between the two leaves a pair that does
 * not match, which the next start ignores (it orders again).
 *
 * State touched by the thread only: the current certificate, the schedule,
 * the per-order buffers. Shared: `stopping` (atomic), the stats (atomics),
 * the install function (set before the thread starts).
 */
#include "acme.h"

#include "acmepki.h"
#include "acmewire.h"
#include "buildinfo.h"
#include "curlhttps.h"
#include "jws.h"
#include "log.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ACME_POLL_S 120         /* an authorization or order must settle within this */
#define ACME_NONCE_TRIES 5      /* badNonce answers in a row before giving up */
#define ACME_KEY_FILE_MAX 16384 /* bytes of a PEM key file we read */
#define ACME_BOOTSTRAP_DAYS 7   /* validity of the temporary self-signed certificate */
#define ACME_MIN_VALID_S 60     /* a stored certificate closer than this to expiry is not used */
#define WHY_CAP 512

enum acme_state { ACME_NEW, ACME_OK, ACME_FAILING };

typedef struct response {
    long status;      /* HTTP status, 0 before an answer */
    char *body;       /* owns: up to ACME_MAX_JSON bytes, NUL-terminated */
    size_t len;       /* bytes in body */
    int too_big;      /* the body passed the cap (transfer aborted) */
    acme_headers_t h; /* the fields we use */
} response_t;

struct acme {
    /* options, copied; read-only once the thread runs */
    char *directory;                 /* owns */
    char *email;                     /* owns, or NULL */
    char *state_dir;                 /* owns */
    char *ca_file;                   /* owns, or NULL */
    char *domains[ACME_MAX_DOMAINS]; /* owns: lowercase */
    size_t num_domains;
    int challenges;               /* acme_challenges_t bits */
    int prefer_http01;            /* try HTTP-01 before TLS-ALPN-01 */
    long renew_before_s;          /* 0 = at 2/3 of the lifetime */
    int retry_min_s, retry_max_s; /* backoff bounds */
    int timeout_ms;               /* per request */
    char cadir[PATH_MAX - 64];    /* state_dir/<ca>: where the files are (room left for names) */
    int lock_fd;                  /* holds the flock on cadir/lock; -1 = none */
    acmechal_t *chal;             /* borrows: where challenge answers go */
    acme_install_fn install;      /* main's: swaps the TLS context */
    void *install_ctx;            /* borrows: for install */
    EVP_PKEY *account_key;        /* owns */
    char jwk[160];                /* the account key's public JWK */
    char thumbprint[ACMEPKI_THUMBPRINT_LEN + 1];
    /* the stored certificate found by acme_new, handed to main by acme_initial */
    char *stored_chain, *stored_key; /* owns until acme_initial, then NULL */
    size_t stored_chain_len, stored_key_len;
    /* schedule (acme thread once started) */
    acmepki_info_t current; /* the CA certificate in use; valid if have_cert */
    int have_cert;          /* 0: the bootstrap certificate is in use */
    int64_t due;            /* UTC seconds of the next order */
    int backoff_s;          /* last failure's delay; 0 after a success */
    enum acme_state state;  /* for logging each change once */
    char last_why[WHY_CAP]; /* the last failure, to log a repeat at debug level */
    /* one order (acme thread) */
    CURL *curl;                   /* owns: one handle per order, connections reused */
    acme_directory_t dir;         /* the CA's directory */
    char nonce[ACME_MAX_TOKEN];   /* the next request's nonce, "" = fetch one */
    char kid[ACME_MAX_URL];       /* the account URL */
    char order_url[ACME_MAX_URL]; /* the order's Location */
    acme_order_t order;           /* the last order object read */
    acme_authz_t authz;           /* the authorization being worked on */
    char why[WHY_CAP];            /* the failure of the order in progress */
    long ca_retry_after_s;        /* Retry-After of the failing answer, -1 = none */
    char errbuf[CURL_ERROR_SIZE]; /* libcurl's detail of the last transfer */
    /* thread */
    pthread_t thread;     /* valid while started */
    int started;          /* main thread only */
    atomic_int stopping;  /* acme_stop asked */
    pthread_mutex_t lock; /* with cond: interruptible sleeps */
    pthread_cond_t cond;  /* signalled by acme_stop (CLOCK_MONOTONIC) */
    /* stats (relaxed atomics, written by the thread) */
    atomic_uint_fast64_t orders, issued, failures;
    atomic_llong not_after, renew_at;
};

/* ---- small helpers ------------------------------------------------------------------ */

static int64_t now_s(void) { return (int64_t)time(NULL); }

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int stopping(acme_t *a) { return atomic_load_explicit(&a->stopping, memory_order_acquire); }

/* Sleeps ms or until acme_stop; -1 if stopping. */
static int nap(acme_t *a, int64_t ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&a->lock);
    while (!stopping(a) && pthread_cond_timedwait(&a->cond, &a->lock, &dl) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&a->lock);
    return stopping(a) ? -1 : 0;
}

static void fmt_time(int64_t t, char *out, size_t cap)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm) || !strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(out, cap, "?");
}

static void fmt_delay(int64_t s, char *out, size_t cap)
{
    if (s < 120)
        snprintf(out, cap, "%lld s", (long long)s);
    else if (s < 2 * 3600)
        snprintf(out, cap, "%lld min", (long long)(s / 60));
    else if (s < 2 * 86400)
        snprintf(out, cap, "%lld h", (long long)(s / 3600));
    else
        snprintf(out, cap, "%lld days", (long long)(s / 86400));
}

static double random_unit(void)
{
    uint32_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        return 0.5;
    return (double)r / 4294967296.0;
}

int acme_default_state_dir(const char *store_path, char *out, size_t cap)
{
    int n;
    const char *slash = store_path ? strrchr(store_path, '/') : NULL;
    if (!store_path)
        n = snprintf(out, cap, "/var/lib/courant/acme");
    else if (!slash)
        n = snprintf(out, cap, "acme");
    else if (slash == store_path)
        n = snprintf(out, cap, "/acme");
    else
        n = snprintf(out, cap, "%.*s/acme", (int)(slash - store_path), store_path);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

void acme__ca_dirname(const char *url, char *out, size_t cap)
{
    if (!strncasecmp(url, "https://", 8))
        url += 8;
    size_t n = 0;
    for (; *url && n < cap - 1 && n < 100; url++) {
        char c = *url;
        out[n++] =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-'
                ? c
                : '_';
    }
    while (n > 0 && out[n - 1] == '_') /* a trailing slash says nothing */
        n--;
    out[n] = 0;
    if (n == 0 || !strcmp(out, ".") || !strcmp(out, ".."))
        snprintf(out, cap, "ca");
}

int64_t acme__renew_at(int64_t nb, int64_t na, long renew_before_s, double jitter)
{
    int64_t life = na - nb;
    if (life <= 0)
        return nb;
    int64_t at = renew_before_s > 0 ? na - renew_before_s : nb + life / 3 * 2;
    int64_t max_jitter = life / 30 < 86400 ? life / 30 : 86400;
    if (jitter < 0)
        jitter = 0;
    if (jitter > 1)
        jitter = 1;
    at -= (int64_t)(jitter * (double)max_jitter);
    /* Never sooner than a tenth of the lifetime: a --acme-renew-before as
     * long as the lifetime must not renew in a loop. */
    int64_t floor = nb + life / 10;
    return at < floor ? floor : at;
}

/* ---- files -------------------------------------------------------------------------- */

/* Reads a whole file of at most `max` bytes; NULL with errno (ENOENT: none). */
static char *read_small_file(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        errno = EFBIG;
        goto out;
    }
    size_t n = 0, want = (size_t)st.st_size;
    if (!(buf = malloc(want + 1)))
        goto out;
    while (n < want) {
        ssize_t r = read(fd, buf + n, want - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            buf = NULL;
            errno = EIO;
            goto out;
        }
        n += (size_t)r;
    }
    buf[n] = 0;
    *len = n;
out:;
    int e = errno;
    close(fd);
    errno = e;
    return buf;
}

/* path.tmp (0600) -> fsync -> rename -> fsync the directory. 0, or -1. */
static int write_file_atomic(const char *dir, const char *name, const char *data, size_t len)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name) >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    size_t n = 0;
    int ok = fchmod(fd, 0600) == 0;
    while (ok && n < len) {
        ssize_t w = write(fd, data + n, len - n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            ok = 0;
        else
            n += (size_t)w;
    }
    ok = ok && fsync(fd) == 0;
    int e = errno;
    close(fd);
    if (!ok || rename(tmp, path)) {
        e = ok ? errno : e;
        unlink(tmp);
        errno = e;
        return -1;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* mkdir -p with 0700 for what we create. */
static int make_dirs(const char *path)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0700) && errno != EEXIST)
                return -1;
            *s = c;
            if (!c)
                break;
        }
    }
    struct stat st;
    if (stat(p, &st) || !S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* ---- options ------------------------------------------------------------------------ */

/* A DNS name we can order: lowercase letters, digits, '-' and '.', labels
 * of 1 to 63 bytes not starting or ending with '-', at most 253 bytes, not
 * an IPv4 address, no wildcard. Lowercased into out. */
static int domain_ok(const char *d, char *out, const char **why)
{
    size_t len = strlen(d), label = 0;
    int letters = 0;
    *why = "is not a DNS name (letters, digits, '-' and '.' only; no wildcard, no IP address)";
    if (len == 0 || len > 253 || d[0] == '.' || d[len - 1] == '.')
        return -1;
    for (size_t i = 0; i <= len; i++) {
        char c = d[i];
        if (c == '.' || c == 0) {
            if (label == 0 || label > 63 || out[i - 1] == '-' || out[i - label] == '-')
                return -1;
            label = 0;
            out[i] = c;
            continue;
        }
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return -1;
        letters |= (c >= 'a' && c <= 'z') || c == '-';
        out[i] = c;
        label++;
    }
    return letters ? 0 : -1;
}

static int email_ok(const char *e)
{
    size_t n = strlen(e);
    if (n < 3 || n > 254 || !strchr(e, '@'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)e[i] <= 0x20 || (unsigned char)e[i] >= 0x7f || e[i] == ',' || e[i] == '"')
            return 0;
    return 1;
}

/* ---- the account key and the stored certificate --------------------------------------- */

static void warn_if_readable(const char *path)
{
    struct stat st;
    if (!stat(path, &st) && (st.st_mode & 077))
        log_warn("acme: %s can be read by other users (mode %03o); chmod 600 it", path,
                 (unsigned)(st.st_mode & 0777));
}

static int load_account_key(acme_t *a, char *why, size_t cap)
{
    char path[PATH_MAX];
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/account.key", a->cadir);
    char *pem = read_small_file(path, ACME_KEY_FILE_MAX, &len);
    if (pem) {
        a->account_key = acmepki_key_from_pem(pem, len);
        OPENSSL_cleanse(pem, len);
        free(pem);
        if (!a->account_key) {
            snprintf(why, cap,
                     "%s is not a P-256 PEM private key; courant never replaces an account key: move it "
                     "away to create a new account",
                     path);
            return -1;
        }
        warn_if_readable(path);
        return 0;
    }
    if (errno != ENOENT) {
        snprintf(why, cap, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char *out = NULL;
    if (!(a->account_key = acmepki_new_key()) || !(out = acmepki_key_pem(a->account_key, &len)) ||
        write_file_atomic(a->cadir, "account.key", out, len)) {
        snprintf(why, cap, "cannot create the account key %s: %s", path,
                 out ? strerror(errno) : "OpenSSL failed");
        if (out)
            OPENSSL_cleanse(out, len);
        free(out);
        return -1;
    }
    OPENSSL_cleanse(out, len);
    free(out);
    log_info("acme: created the account key %s", path);
    return 0;
}

/* cert.pem and cert.key, if they are usable now; a reason is logged if not. */
static void load_stored(acme_t *a)
{
    char cpath[PATH_MAX], kpath[PATH_MAX];
    size_t clen = 0, klen = 0;
    snprintf(cpath, sizeof(cpath), "%s/cert.pem", a->cadir);
    snprintf(kpath, sizeof(kpath), "%s/cert.key", a->cadir);
    char *chain = read_small_file(cpath, ACMEPKI_MAX_CHAIN, &clen);
    char *key = chain ? read_small_file(kpath, ACME_KEY_FILE_MAX, &klen) : NULL;
    EVP_PKEY *k = key ? acmepki_key_from_pem(key, klen) : NULL;
    acmepki_info_t info;
    const char *why = NULL;
    if (!chain) {
        log_info("acme: no stored certificate in %s yet", a->cadir);
    } else if (!k) {
        log_warn("acme: %s is missing or not a P-256 key; ordering a new certificate", kpath);
    } else if (acmepki_check_chain(chain, clen, k, (const char *const *)a->domains, a->num_domains, &info,
                                   &why)) {
        log_info("acme: the stored certificate is not usable (%s); ordering a new one", why);
    } else if (info.self_signed || info.not_after < now_s() + ACME_MIN_VALID_S) {
        log_info("acme: the stored certificate has expired; ordering a new one");
    } else {
        warn_if_readable(kpath);
        a->stored_chain = chain, a->stored_chain_len = clen;
        a->stored_key = key, a->stored_key_len = klen;
        a->current = info;
        a->have_cert = 1;
        chain = key = NULL;
    }
    EVP_PKEY_free(k);
    free(chain);
    if (key)
        OPENSSL_cleanse(key, klen);
    free(key);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static int copy_opts(acme_t *a, const acme_opts_t *o, char *why, size_t cap)
{
    const char *bad;
    if (!o->directory || !acmewire_url_ok(o->directory, strlen(o->directory))) {
        snprintf(why, cap, "--acme-directory must be an https:// URL");
        return -1;
    }
    if (o->num_domains == 0 || o->num_domains > ACME_MAX_DOMAINS) {
        snprintf(why, cap, "give 1 to %d --acme-domain names", ACME_MAX_DOMAINS);
        return -1;
    }
    if (!o->agree_tos) {
        snprintf(
            why, cap,
            "--acme-domain needs --acme-agree-tos: courant creates an account with the CA (%s), which "
            "means agreeing to its terms of service (Let's Encrypt: https://letsencrypt.org/repository/)",
            o->directory);
        return -1;
    }
    if (o->email && !email_ok(o->email)) {
        snprintf(why, cap, "--acme-email \"%.100s\" is not an e-mail address", o->email);
        return -1;
    }
    if (!(o->challenges & (ACME_USE_TLSALPN01 | ACME_USE_HTTP01))) {
        snprintf(why, cap, "no ACME challenge type to answer");
        return -1;
    }
    for (size_t i = 0; i < o->num_domains; i++) {
        if (!(a->domains[i] = calloc(1, strlen(o->domains[i]) + 1)))
            goto oom;
        a->num_domains++;
        if (domain_ok(o->domains[i], a->domains[i], &bad)) {
            snprintf(why, cap, "--acme-domain \"%.100s\" %s", o->domains[i], bad);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(a->domains[j], a->domains[i])) {
                snprintf(why, cap, "--acme-domain %s is given twice", a->domains[i]);
                return -1;
            }
        }
    }
    if (!(a->directory = strdup(o->directory)) || !(a->state_dir = strdup(o->state_dir)) ||
        (o->email && !(a->email = strdup(o->email))) || (o->ca_file && !(a->ca_file = strdup(o->ca_file))))
        goto oom;
    a->challenges = o->challenges;
    a->prefer_http01 = o->prefer_http01;
    a->renew_before_s = o->renew_before_s > 0 ? o->renew_before_s : 0;
    a->retry_min_s = o->retry_min_s > 0 ? o->retry_min_s : 60;
    a->retry_max_s = o->retry_max_s > 0 ? o->retry_max_s : 3600;
    a->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
    return 0;
oom:
    snprintf(why, cap, "out of memory");
    return -1;
}

/* Creates DIR and DIR/<ca>, and takes the lock. */
static int open_state(acme_t *a, char *why, size_t cap)
{
    char sub[128], lock[PATH_MAX];
    acme__ca_dirname(a->directory, sub, sizeof(sub));
    if ((size_t)snprintf(a->cadir, sizeof(a->cadir), "%s/%s", a->state_dir, sub) >= sizeof(a->cadir) ||
        make_dirs(a->cadir)) {
        snprintf(why, cap, "cannot create the ACME state directory %s: %s (set --acme-state-dir)", a->cadir,
                 strerror(errno));
        return -1;
    }
    if ((size_t)snprintf(lock, sizeof(lock), "%s/lock", a->cadir) >= sizeof(lock)) {
        snprintf(why, cap, "the ACME state directory's path is too long");
        return -1;
    }
    a->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (a->lock_fd < 0) {
        snprintf(why, cap, "cannot open %s: %s", lock, strerror(errno));
        return -1;
    }
    if (flock(a->lock_fd, LOCK_EX | LOCK_NB)) {
        snprintf(why, cap, "%s",
                 errno == EWOULDBLOCK
                     ? "another courant manages the certificates in this ACME state directory"
                     : strerror(errno));
        return -1;
    }
    return 0;
}

acme_t *acme_new(const acme_opts_t *o, acmechal_t *chal, char *why, size_t cap)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        snprintf(why, cap, "libcurl failed to initialize");
        return NULL;
    }
    acme_t *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    a->lock_fd = -1;
    a->chal = chal;
    pthread_mutex_init(&a->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (copy_opts(a, o, why, cap) || open_state(a, why, cap) || load_account_key(a, why, cap))
        goto fail;
    if (acmepki_jwk(a->account_key, a->jwk, sizeof(a->jwk)) ||
        acmepki_thumbprint(a->account_key, a->thumbprint)) {
        snprintf(why, cap, "cannot compute the account key's JWK");
        goto fail;
    }
    load_stored(a);
    a->due = a->have_cert ? acme__renew_at(a->current.not_before, a->current.not_after, a->renew_before_s,
                                           random_unit())
                          : now_s();
    atomic_store(&a->not_after, a->have_cert ? (long long)a->current.not_after : 0);
    atomic_store(&a->renew_at, (long long)a->due);
    return a;
fail:
    acme_free(a);
    return NULL;
}

int acme_initial(acme_t *a, char **chain, size_t *chain_len, char **key, size_t *key_len, int *bootstrap,
                 char *why, size_t cap)
{
    char until[64], in[32];
    if (a->stored_chain) {
        *chain = a->stored_chain, *chain_len = a->stored_chain_len;
        *key = a->stored_key, *key_len = a->stored_key_len;
        a->stored_chain = a->stored_key = NULL;
        *bootstrap = 0;
        fmt_time(a->current.not_after, until, sizeof(until));
        fmt_delay(a->due - now_s(), in, sizeof(in));
        log_info("acme: serving the stored certificate for %s (issuer %s, serial %s), valid until %s; "
                 "renewal in %s",
                 a->domains[0], a->current.issuer, a->current.serial, until, in);
        return 0;
    }
    EVP_PKEY *k = acmepki_new_key();
    X509 *x =
        k ? acmepki_self_signed(k, (const char *const *)a->domains, a->num_domains, ACME_BOOTSTRAP_DAYS, NULL)
          : NULL;
    *chain = x ? acmepki_cert_pem(x) : NULL;
    *key = *chain ? acmepki_key_pem(k, key_len) : NULL;
    X509_free(x);
    EVP_PKEY_free(k);
    if (!*key) {
        free(*chain);
        *chain = NULL;
        snprintf(why, cap, "cannot make the temporary self-signed certificate");
        return -1;
    }
    *chain_len = strlen(*chain);
    *bootstrap = 1;
    log_warn("acme: no certificate for %s yet: serving a temporary self-signed one until the CA issues one",
             a->domains[0]);
    return 0;
}

void acme_set_install(acme_t *a, acme_install_fn fn, void *ctx)
{
    a->install = fn;
    a->install_ctx = ctx;
}

/* ---- one request ------------------------------------------------------------------------ */

static void response_dispose(response_t *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
    acmewire_headers_reset(&r->h);
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
    response_t *r = ctx;
    size_t n = size * nmemb;
    if (n > ACME_MAX_JSON - r->len) {
        r->too_big = 1;
        return 0; /* aborts the transfer */
    }
    if (!r->body && !(r->body = malloc(ACME_MAX_JSON + 1)))
        return 0;
    memcpy(r->body + r->len, p, n);
    r->len += n;
    r->body[r->len] = 0;
    return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ctx)
{
    response_t *r = ctx;
    acmewire_header_line(&r->h, p, size * nmemb, time(NULL));
    return size * nmemb;
}

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    return stopping(ctx) ? 1 : 0;
}

/* One HTTP exchange: method "GET", "HEAD" or "POST" (a JWS body). 0 with
 * any status, or -1 with a->why (no answer: network, TLS, too large). */
static int http(acme_t *a, const char *method, const char *url, const char *body, const char *accept,
                response_t *r, const char *what)
{
    response_dispose(r);
    CURL *c = a->curl;
    char ua[96], acc[96];
    snprintf(ua, sizeof(ua), "courant/%s (ACME client)", courant_version());
    snprintf(acc, sizeof(acc), "Accept: %s", accept ? accept : "application/json");
    struct curl_slist *hdrs = curl_slist_append(NULL, acc);
    if (hdrs && body)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/jose+json");
    if (!hdrs) {
        snprintf(a->why, sizeof(a->why), "%s: out of memory", what);
        return -1;
    }
    curl_easy_reset(c); /* keeps the connection cache */
    curlhttps_opts_t o = {
        .url = url,
        .timeout_ms = a->timeout_ms,
        .user_agent = ua,
        .headers = hdrs,
        .errbuf = a->errbuf,
        .on_body = on_body,
        .body_ctx = r,
        .on_header = on_header,
        .header_ctx = r,
        .on_progress = on_progress,
        .progress_ctx = a,
        .max_bytes = ACME_MAX_JSON,
        .ca_file = a->ca_file,
    };
    curlhttps_setup(c, &o);
    if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    if (r->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(a->why, sizeof(a->why), "%s: the CA's answer is larger than 64 KiB", what);
        return -1;
    }
    if (rc != CURLE_OK) {
        snprintf(a->why, sizeof(a->why), "%s: %s%s%s", what, curl_easy_strerror(rc), a->errbuf[0] ? ": " : "",
                 a->errbuf);
        return -1;
    }
    if (!r->body && !(r->body = calloc(1, 1))) { /* an empty body reads as "" */
        snprintf(a->why, sizeof(a->why), "%s: out of memory", what);
        return -1;
    }
    return 0;
}

/* An error answer into a->why: the problem's type and detail if it has one. */
static void problem_why(acme_t *a, const char *what, const response_t *r)
{
    acme_problem_t p;
    a->ca_retry_after_s = r->h.retry_after_s;
    if (acmewire_parse_problem(r->body, r->len, &p) == 0 && (p.type[0] || p.detail[0]))
        snprintf(a->why, sizeof(a->why), "%s: HTTP %ld, %s: %s", what, r->status, p.type, p.detail);
    else
        snprintf(a->why, sizeof(a->why), "%s: HTTP %ld", what, r->status);
}

static int fetch_nonce(acme_t *a, response_t *r)
{
    if (http(a, "HEAD", a->dir.new_nonce, NULL, NULL, r, "newNonce"))
        return -1;
    if (r->status != 200 && r->status != 204) {
        problem_why(a, "newNonce", r);
        return -1;
    }
    if (!r->h.nonce[0]) {
        snprintf(a->why, sizeof(a->why), "newNonce: no usable Replay-Nonce in the answer");
        return -1;
    }
    memcpy(a->nonce, r->h.nonce, sizeof(a->nonce));
    return 0;
}

/* A JWS POST (payload NULL: POST-as-GET), signed with the jwk (newAccount)
 * or the kid; badNonce answers are retried. 0 with a status < 400, or -1
 * with a->why. */
static int post(acme_t *a, const char *url, const char *payload, int use_jwk, const char *accept,
                response_t *r, const char *what)
{
    for (int attempt = 0; attempt < ACME_NONCE_TRIES; attempt++) {
        if (!a->nonce[0] && fetch_nonce(a, r))
            return -1;
        char *jws = acmewire_jws(a->account_key, use_jwk ? a->jwk : NULL, use_jwk ? NULL : a->kid, a->nonce,
                                 url, payload);
        a->nonce[0] = 0; /* a nonce is good for one request */
        if (!jws) {
            snprintf(a->why, sizeof(a->why), "%s: cannot sign the request", what);
            return -1;
        }
        int rc = http(a, "POST", url, jws, accept, r, what);
        free(jws);
        if (rc)
            return -1;
        if (r->h.nonce[0])
            memcpy(a->nonce, r->h.nonce, sizeof(a->nonce));
        if (r->status >= 200 && r->status < 400)
            return 0;
        acme_problem_t p;
        if (acmewire_parse_problem(r->body, r->len, &p) == 0 &&
            !strcmp(p.type, "urn:ietf:params:acme:error:badNonce")) {
            log_debug("acme: %s: the CA refused our nonce; retrying with a new one", what);
            continue;
        }
        problem_why(a, what, r);
        return -1;
    }
    snprintf(a->why, sizeof(a->why), "%s: the CA refused %d nonces in a row", what, ACME_NONCE_TRIES);
    return -1;
}

/* Waits before the next poll: the CA's Retry-After (1..10 s) or 1 s. -1
 * when stopping or past the deadline. */
static int poll_wait(acme_t *a, const response_t *r, int64_t deadline_ms, const char *what)
{
    long s = r->h.retry_after_s >= 1 ? (r->h.retry_after_s > 10 ? 10 : r->h.retry_after_s) : 1;
    if (mono_ms() + s * 1000 > deadline_ms) {
        snprintf(a->why, sizeof(a->why), "%s: still not settled after %d s", what, ACME_POLL_S);
        return -1;
    }
    if (nap(a, s * 1000)) {
        snprintf(a->why, sizeof(a->why), "stopping");
        return -1;
    }
    return 0;
}

/* ---- the order ---------------------------------------------------------------------------- */

static int get_directory(acme_t *a, response_t *r)
{
    const char *bad;
    if (http(a, "GET", a->directory, NULL, NULL, r, "directory"))
        return -1;
    if (r->status != 200) {
        problem_why(a, "directory", r);
        return -1;
    }
    if (acmewire_parse_directory(r->body, r->len, &a->dir, &bad)) {
        snprintf(a->why, sizeof(a->why), "directory %s: %s", a->directory, bad);
        return -1;
    }
    if (a->dir.eab_required) {
        snprintf(a->why, sizeof(a->why),
                 "the CA requires external account binding, which courant does not support");
        return -1;
    }
    return 0;
}

static int get_account(acme_t *a, response_t *r)
{
    json_t *p = json_pack("{s:b}", "termsOfServiceAgreed", 1);
    char mailto[300];
    if (p && a->email) {
        snprintf(mailto, sizeof(mailto), "mailto:%s", a->email);
        json_object_set_new(p, "contact", json_pack("[s]", mailto));
    }
    char *payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (!payload) {
        snprintf(a->why, sizeof(a->why), "newAccount: out of memory");
        return -1;
    }
    int rc = post(a, a->dir.new_account, payload, 1, NULL, r, "newAccount");
    free(payload);
    if (rc)
        return -1;
    acme_status_t st;
    const char *bad;
    if (!r->h.location[0]) {
        snprintf(a->why, sizeof(a->why), "newAccount: no https Location (account URL) in the answer");
        return -1;
    }
    if (acmewire_parse_status(r->body, r->len, &st, &bad) || st != ACME_ST_VALID) {
        snprintf(a->why, sizeof(a->why), "newAccount: the account is %s", bad ? bad : acme_status_name(st));
        return -1;
    }
    if (r->status == 201)
        log_info("acme: account created with %s%s%s", a->directory,
                 a->dir.terms[0] ? "; terms of service: " : "", a->dir.terms);
    memcpy(a->kid, r->h.location, sizeof(a->kid));
    return 0;
}

static int new_order(acme_t *a, response_t *r)
{
    json_t *ids = json_array();
    for (size_t i = 0; ids && i < a->num_domains; i++)
        json_array_append_new(ids, json_pack("{s:s,s:s}", "type", "dns", "value", a->domains[i]));
    json_t *p = ids ? json_pack("{s:o}", "identifiers", ids) : NULL;
    char *payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (!payload) {
        snprintf(a->why, sizeof(a->why), "newOrder: out of memory");
        return -1;
    }
    int rc = post(a, a->dir.new_order, payload, 0, NULL, r, "newOrder");
    free(payload);
    const char *bad;
    if (rc)
        return -1;
    if (!r->h.location[0]) {
        snprintf(a->why, sizeof(a->why), "newOrder: no https Location (order URL) in the answer");
        return -1;
    }
    memcpy(a->order_url, r->h.location, sizeof(a->order_url));
    if (acmewire_parse_order(r->body, r->len, &a->order, &bad)) {
        snprintf(a->why, sizeof(a->why), "newOrder: %s", bad);
        return -1;
    }
    if (a->order.num_authz > a->num_domains) {
        snprintf(a->why, sizeof(a->why), "newOrder: %zu authorizations for %zu names", a->order.num_authz,
                 a->num_domains);
        return -1;
    }
    return 0;
}

static int get_authz(acme_t *a, const char *url, response_t *r)
{
    const char *bad;
    if (post(a, url, NULL, 0, NULL, r, "authorization"))
        return -1;
    if (acmewire_parse_authz(r->body, r->len, &a->authz, &bad)) {
        snprintf(a->why, sizeof(a->why), "authorization: %s", bad);
        return -1;
    }
    for (size_t i = 0; i < a->num_domains; i++)
        if (!strcmp(a->domains[i], a->authz.identifier) && !a->authz.wildcard)
            return 0;
    snprintf(a->why, sizeof(a->why), "authorization: for %s, a name we did not order", a->authz.identifier);
    return -1;
}

/* The challenge we answer, in order of preference; NULL if none fits. */
static const acme_challenge_t *pick_challenge(acme_t *a)
{
    acme_chal_type_t order[2] = {ACME_CHAL_TLSALPN01, ACME_CHAL_HTTP01};
    if (a->prefer_http01)
        order[0] = ACME_CHAL_HTTP01, order[1] = ACME_CHAL_TLSALPN01;
    for (int k = 0; k < 2; k++) {
        int allowed = order[k] == ACME_CHAL_TLSALPN01 ? (a->challenges & ACME_USE_TLSALPN01)
                                                      : (a->challenges & ACME_USE_HTTP01);
        for (size_t i = 0; allowed && i < a->authz.num_challenges; i++)
            if (a->authz.challenges[i].type == order[k])
                return &a->authz.challenges[i];
    }
    return NULL;
}

/* Publishes the answer to `ch` for the authorization's name. */
static int provision(acme_t *a, const acme_challenge_t *ch)
{
    char keyauth[ACME_MAX_TOKEN + ACMEPKI_THUMBPRINT_LEN + 2];
    if (acmepki_key_authorization(ch->token, a->thumbprint, keyauth, sizeof(keyauth))) {
        snprintf(a->why, sizeof(a->why), "the challenge token is too long");
        return -1;
    }
    if (ch->type == ACME_CHAL_HTTP01) {
        if (!acmechal_set_http01(a->chal, ch->token, keyauth))
            return 0;
        snprintf(a->why, sizeof(a->why), "too many challenges at once");
        return -1;
    }
    unsigned char digest[32];
    unsigned int dl = 0;
    const char *name = a->authz.identifier;
    EVP_PKEY *k = NULL;
    X509 *x = NULL;
    int rc = -1;
    if (EVP_Digest(keyauth, strlen(keyauth), digest, &dl, EVP_sha256(), NULL) && (k = acmepki_new_key()) &&
        (x = acmepki_self_signed(k, &name, 1, 1, digest)))
        rc = acmechal_set_tlsalpn01(a->chal, name, x, k);
    X509_free(x);
    EVP_PKEY_free(k);
    if (rc)
        snprintf(a->why, sizeof(a->why), "cannot make the TLS-ALPN-01 certificate for %s", name);
    return rc;
}

/* One authorization until it is valid. */
static int authorize(acme_t *a, const char *url, response_t *r)
{
    if (get_authz(a, url, r))
        return -1;
    if (a->authz.status == ACME_ST_VALID)
        return 0; /* the CA remembers an earlier validation */
    if (a->authz.status != ACME_ST_PENDING) {
        snprintf(a->why, sizeof(a->why), "authorization for %s is %s", a->authz.identifier,
                 acme_status_name(a->authz.status));
        return -1;
    }
    const acme_challenge_t *pick = pick_challenge(a);
    if (!pick) {
        snprintf(a->why, sizeof(a->why),
                 "the CA offers %s no challenge courant can answer (tls-alpn-01 on the TLS port; http-01 "
                 "needs --listen-http)",
                 a->authz.identifier);
        return -1;
    }
    acme_challenge_t ch = *pick; /* a->authz is overwritten by the polls */
    const char *type = ch.type == ACME_CHAL_HTTP01 ? "http-01" : "tls-alpn-01";
    char name[ACME_MAX_NAME];
    memcpy(name, a->authz.identifier, sizeof(name));
    if (provision(a, &ch) || post(a, ch.url, "{}", 0, NULL, r, "challenge"))
        return -1;
    log_info("acme: %s: answering %s", name, type);
    for (int64_t deadline = mono_ms() + ACME_POLL_S * 1000;;) {
        if (poll_wait(a, r, deadline, "authorization") || get_authz(a, url, r))
            return -1;
        if (a->authz.status == ACME_ST_VALID)
            return 0;
        if (a->authz.status != ACME_ST_PENDING) {
            const char *err = "";
            for (size_t i = 0; i < a->authz.num_challenges; i++)
                if (!strcmp(a->authz.challenges[i].url, ch.url))
                    err = a->authz.challenges[i].error;
            snprintf(a->why, sizeof(a->why), "%s: %s validation failed (authorization %s)%s%s", name, type,
                     acme_status_name(a->authz.status), err[0] ? ": " : "", err);
            return -1;
        }
    }
}

/* Reads the order again until it leaves `from` (pending/processing). */
static int poll_order(acme_t *a, acme_status_t from, response_t *r)
{
    const char *bad;
    for (int64_t deadline = mono_ms() + ACME_POLL_S * 1000; a->order.status == from;) {
        if (poll_wait(a, r, deadline, "order") || post(a, a->order_url, NULL, 0, NULL, r, "order"))
            return -1;
        if (acmewire_parse_order(r->body, r->len, &a->order, &bad)) {
            snprintf(a->why, sizeof(a->why), "order: %s", bad);
            return -1;
        }
    }
    return 0;
}

/* Finalizes with a CSR of *cert_key (a new key, made here). */
static int finalize(acme_t *a, EVP_PKEY **cert_key, response_t *r)
{
    size_t dl = 0;
    unsigned char *der = NULL;
    char *b64 = NULL, *payload = NULL;
    const char *bad;
    int rc = -1;
    if (!(*cert_key = acmepki_new_key()) ||
        !(der = acmepki_csr_der(*cert_key, (const char *const *)a->domains, a->num_domains, &dl)) ||
        !(b64 = malloc(dl / 3 * 4 + 8))) {
        snprintf(a->why, sizeof(a->why), "cannot make the certificate request");
        goto out;
    }
    jws_b64url_encode(der, dl, b64);
    json_t *p = json_pack("{s:s}", "csr", b64);
    payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (!payload) {
        snprintf(a->why, sizeof(a->why), "finalize: out of memory");
        goto out;
    }
    if (post(a, a->order.finalize, payload, 0, NULL, r, "finalize"))
        goto out;
    if (acmewire_parse_order(r->body, r->len, &a->order, &bad)) {
        snprintf(a->why, sizeof(a->why), "finalize: %s", bad);
        goto out;
    }
    rc = 0;
out:
    free(payload);
    free(b64);
    free(der);
    return rc;
}

/* Saves and installs the chain; a->current describes it after. */
static int take_certificate(acme_t *a, const char *chain, size_t len, EVP_PKEY *cert_key,
                            const acmepki_info_t *info)
{
    char install_why[WHY_CAP] = "no install function";
    size_t kl = 0;
    char *kpem = acmepki_key_pem(cert_key, &kl);
    int rc = -1;
    if (!kpem) {
        snprintf(a->why, sizeof(a->why), "cannot encode the certificate key");
    } else if (write_file_atomic(a->cadir, "cert.key", kpem, kl) ||
               write_file_atomic(a->cadir, "cert.pem", chain, len)) {
        snprintf(a->why, sizeof(a->why), "cannot save the certificate in %.300s: %s", a->cadir,
                 strerror(errno));
    } else if (!a->install ||
               a->install(a->install_ctx, chain, len, kpem, kl, install_why, sizeof(install_why))) {
        snprintf(a->why, sizeof(a->why), "cannot install the new certificate: %.400s", install_why);
    } else {
        a->current = *info;
        a->have_cert = 1;
        rc = 0;
    }
    if (kpem)
        OPENSSL_cleanse(kpem, kl);
    free(kpem);
    return rc;
}

static int order_certificate(acme_t *a, response_t *r)
{
    EVP_PKEY *cert_key = NULL;
    const char *bad;
    acmepki_info_t info;
    int rc = -1;
    if (get_directory(a, r) || get_account(a, r) || new_order(a, r))
        goto out;
    for (size_t i = 0; i < a->order.num_authz; i++) {
        char url[ACME_MAX_URL];
        memcpy(url, a->order.authz[i], sizeof(url)); /* a->order is read again below */
        if (authorize(a, url, r))
            goto out;
    }
    acmechal_clear(a->chal); /* validated: the answers are not needed any more */
    if (a->order.status == ACME_ST_PENDING && poll_order(a, ACME_ST_PENDING, r))
        goto out;
    if (a->order.status == ACME_ST_READY && finalize(a, &cert_key, r))
        goto out;
    if (a->order.status == ACME_ST_PROCESSING && poll_order(a, ACME_ST_PROCESSING, r))
        goto out;
    if (a->order.status != ACME_ST_VALID || !a->order.certificate[0] || !cert_key) {
        snprintf(a->why, sizeof(a->why), "the order is %s, not valid with a certificate",
                 acme_status_name(a->order.status));
        goto out;
    }
    if (post(a, a->order.certificate, NULL, 0, "application/pem-certificate-chain", r, "certificate"))
        goto out;
    if (acmepki_check_chain(r->body, r->len, cert_key, (const char *const *)a->domains, a->num_domains, &info,
                            &bad)) {
        snprintf(a->why, sizeof(a->why), "certificate: %s", bad);
        goto out;
    }
    rc = take_certificate(a, r->body, r->len, cert_key, &info);
out:
    acmechal_clear(a->chal);
    EVP_PKEY_free(cert_key);
    return rc;
}

/* ---- the thread ------------------------------------------------------------------------------ */

static void log_outcome(acme_t *a, int ok, int was_bootstrap)
{
    char until[64], in[32];
    int64_t now = now_s();
    fmt_delay(a->due - now, in, sizeof(in));
    if (ok) {
        fmt_time(a->current.not_after, until, sizeof(until));
        log_info(
            "acme: certificate %s for %s (%zu name%s) from %s, serial %s, valid until %s; new handshakes "
            "use it; renewal in %s",
            was_bootstrap ? "issued" : "renewed", a->domains[0], a->num_domains,
            a->num_domains == 1 ? "" : "s", a->current.issuer, a->current.serial, until, in);
        a->state = ACME_OK;
        a->last_why[0] = 0;
        return;
    }
    const char *keeping =
        a->have_cert ? "keeping the current certificate" : "still serving the temporary one";
    if (a->state != ACME_FAILING || strcmp(a->last_why, a->why) != 0)
        log_warn("acme: %s failed: %s; %s; retry in %s", was_bootstrap ? "issuance" : "renewal", a->why,
                 keeping, in);
    else
        log_debug("acme: still failing: %s; retry in %s", a->why, in);
    a->state = ACME_FAILING;
    snprintf(a->last_why, sizeof(a->last_why), "%s", a->why);
}

static void run_order(acme_t *a)
{
    response_t r = {0};
    int was_bootstrap = !a->have_cert;
    a->why[0] = 0;
    a->nonce[0] = 0;
    a->ca_retry_after_s = -1;
    atomic_fetch_add_explicit(&a->orders, 1, memory_order_relaxed);
    log_info("acme: ordering a certificate for %s%s from %s", a->domains[0],
             a->num_domains > 1 ? " and others" : "", a->directory);
    if (!(a->curl = curl_easy_init())) {
        snprintf(a->why, sizeof(a->why), "libcurl: out of memory");
    } else if (order_certificate(a, &r) == 0) {
        a->backoff_s = 0;
        a->due =
            acme__renew_at(a->current.not_before, a->current.not_after, a->renew_before_s, random_unit());
        atomic_fetch_add_explicit(&a->issued, 1, memory_order_relaxed);
        atomic_store_explicit(&a->not_after, (long long)a->current.not_after, memory_order_relaxed);
        atomic_store_explicit(&a->renew_at, (long long)a->due, memory_order_relaxed);
        log_outcome(a, 1, was_bootstrap);
        goto out;
    }
    if (stopping(a))
        goto out; /* an aborted order is not a failure worth a log line */
    a->backoff_s = a->backoff_s ? a->backoff_s * 2 : a->retry_min_s;
    if (a->backoff_s > a->retry_max_s)
        a->backoff_s = a->retry_max_s;
    long delay = a->ca_retry_after_s > a->backoff_s ? a->ca_retry_after_s : a->backoff_s;
    a->due = now_s() + delay;
    atomic_fetch_add_explicit(&a->failures, 1, memory_order_relaxed);
    atomic_store_explicit(&a->renew_at, (long long)a->due, memory_order_relaxed);
    log_outcome(a, 0, was_bootstrap);
out:
    response_dispose(&r);
    curl_easy_cleanup(a->curl);
    a->curl = NULL;
}

static void *acme_main(void *arg)
{
    acme_t *a = arg;
    log_set_thread_name("acme");
    while (!stopping(a)) {
        int64_t left = a->due - now_s();
        if (left > 0) {
            /* Wall-clock deadline, slept in slices: a clock change or a
             * suspended machine is noticed within a minute. */
            (void)nap(a, left > 60 ? 60000 : left * 1000);
            continue;
        }
        run_order(a);
    }
    return NULL;
}

int acme_start(acme_t *a, char *why, size_t cap)
{
    if (a->started)
        return 0;
    if (pthread_create(&a->thread, NULL, acme_main, a) != 0) {
        snprintf(why, cap, "cannot start the ACME thread");
        return -1;
    }
    a->started = 1;
    return 0;
}

void acme_stop(acme_t *a)
{
    if (!a->started)
        return;
    pthread_mutex_lock(&a->lock);
    atomic_store_explicit(&a->stopping, 1, memory_order_release);
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    a->started = 0;
}

void acme_free(acme_t *a)
{
    if (!a)
        return;
    acme_stop(a);
    for (size_t i = 0; i < a->num_domains; i++)
        free(a->domains[i]);
    free(a->directory);
    free(a->email);
    free(a->state_dir);
    free(a->ca_file);
    EVP_PKEY_free(a->account_key);
    free(a->stored_chain);
    if (a->stored_key)
        OPENSSL_cleanse(a->stored_key, a->stored_key_len);
    free(a->stored_key);
    if (a->lock_fd >= 0)
        close(a->lock_fd); /* releases the flock */
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void acme_get_stats(acme_t *a, acme_stats_t *out)
{
    out->orders = atomic_load_explicit(&a->orders, memory_order_relaxed);
    out->issued = atomic_load_explicit(&a->issued, memory_order_relaxed);
    out->failures = atomic_load_explicit(&a->failures, memory_order_relaxed);
    out->not_after = atomic_load_explicit(&a->not_after, memory_order_relaxed);
    out->renew_at = atomic_load_explicit(&a->renew_at, memory_order_relaxed);
}
