/*
 * tls.c - see tls.h for the design; here, the details that were choices.
 *
 * Handshake as a protocol. tls_accept lets the HTTP/1 accept function
 * allocate the conn (so its memory is the protocol's, as for cleartext),
 * then replaces c->proto with tls_handshake_proto and keeps the HTTP/1
 * table in the per-conn state. The handshake protocol drives
 * SSL_do_handshake on readability (a WANT_WRITE waits for writability
 * through io_t.wants) and, once done, puts back the HTTP/1 protocol, or
 * hands the conn to the h2 handler, and lets it read what already came. So
 * HTTP/1 and HTTP/2 never see a connection in its handshake, and a client
 * that never finishes one is closed by the handshake's own tick at the
 * deadline HTTP/1's accept set (--header-timeout), with no answer (there is
 * no TLS to answer in).
 *
 *   per conn:  io.ctx --> tls_conn_t { SSL *ssl; inner proto; server }   (owns the SSL)
 *   SSL --> SSL_CTX (a reference) --> tls_server_t (app data; borrowed)
 *
 * Writing. OpenSSL has no writev: the iovecs are copied into a 16 KiB
 * scratch buffer that belongs to the worker thread (thread-local: one per
 * worker, not one per connection), one record per SSL_write (partial-write
 * mode). When the socket is full, SSL_write keeps the encrypted record and
 * wants to be called again with the same bytes: we return EAGAIN, the
 * queue is not consumed, and the next writev gathers the same bytes again
 * from the same output queue into the scratch buffer, which may have served
 * other connections in between; SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER allows
 * the buffer to move, io_t.min_offer makes the conn offer at least the
 * record's length even when its turn's budget is nearly spent.
 *
 * Errors. The thread's OpenSSL error queue is cleared before every call
 * (SSL_get_error reads it, and other code on the thread, the JWT
 * verification, uses libcrypto too). A failed handshake is a debug line
 * and a counter, never a warning: port scanners and plain-HTTP clients
 * would flood the log.
 */
#include "tls.h"

#include "log.h"

#include <errno.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#define TLS_RECORD 16384                 /* plaintext bytes in a full record */
#define TLS_TICKET_ROTATE_S 3600         /* a new ticket key every hour */
#define TLS_TICKET_KEYS 3                /* the current one, and two that still decrypt */
#define TLS_SESSION_TIMEOUT_S (2 * 3600) /* a ticket's lifetime (OpenSSL's default, stated) */

/* Mozilla's "intermediate" configuration (v5.7): its TLS 1.2 ciphers and
 * its TLS 1.3 order (AES-128 first: as strong in practice, and cheaper). */
static const char tls12_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
static const char tls13_suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
static const char tls_groups[] = "X25519:P-256:P-384";

typedef struct ticket_key {
    unsigned char name[16]; /* sent in the ticket: which key encrypted it */
    unsigned char aes[32];  /* AES-256-CBC key */
    unsigned char hmac[32]; /* HMAC-SHA256 key */
} ticket_key_t;

struct tls_server {
    pthread_mutex_t lock;               /* guards ctx, keys, num_keys, rotated_at */
    SSL_CTX *ctx;                       /* owns one reference; new handshakes use it */
    ticket_key_t keys[TLS_TICKET_KEYS]; /* [0] encrypts new tickets; all decrypt */
    int num_keys;                       /* keys in use */
    int64_t rotated_at;                 /* CLOCK_MONOTONIC seconds of keys[0] */
    char *cert_path;                    /* owns: --tls-cert, read again by reload; NULL: PEM in memory */
    char *key_path;                     /* owns: --tls-key; NULL likewise */
    char *label;                        /* owns: what describe calls the certificate (its path, or a label) */
    int lock_made;                      /* `lock` was initialized (for free after a failed new) */
    worker_accept_fn http1_accept;      /* allocates every conn; read-only once workers run */
    tls_h2_fn on_alpn_h2;               /* NULL: ALPN offers only http/1.1 */
    tls_challenge_fn challenge; /* TLS-ALPN-01 answers (acme); NULL: none; read-only once workers run */
    void *challenge_ctx;        /* borrows: for challenge */
};

/* The per-connection state behind io.ctx. */
typedef struct tls_conn {
    SSL *ssl;                  /* owns */
    const conn_proto_t *inner; /* borrows: the protocol that allocated the conn (HTTP/1) */
    tls_server_t *server;      /* borrows: outlives every conn */
} tls_conn_t;

static struct {
    atomic_ulong handshakes, resumed, failed, records, record_bytes;
} stats;

/* The worker's scratch for gathering a record (thread-local: one per
 * worker thread, 16 KiB; the other threads never touch theirs). */
static _Thread_local unsigned char scratch[TLS_RECORD];

static const conn_proto_t tls_handshake_proto;

_Static_assert(TLS_RECORD <= UINT16_MAX, "io_t.min_offer holds a record's length");

static void count(atomic_ulong *c, unsigned long n) { atomic_fetch_add_explicit(c, n, memory_order_relaxed); }

static int64_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

/* The last OpenSSL error as text (and the queue emptied). */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "unknown error";
}

/* ---- session tickets --------------------------------------------------------------- */

static int new_key(ticket_key_t *k)
{
    return RAND_bytes(k->name, sizeof(k->name)) == 1 && RAND_bytes(k->aes, sizeof(k->aes)) == 1 &&
                   RAND_bytes(k->hmac, sizeof(k->hmac)) == 1
               ? 0
               : -1;
}

/* Under t->lock: a new current key once an hour, the oldest dropped. */
static void rotate_keys(tls_server_t *t)
{
    int64_t now = mono_s();
    if (t->num_keys && now - t->rotated_at < TLS_TICKET_ROTATE_S)
        return;
    ticket_key_t k;
    if (new_key(&k))
        return; /* keep the old keys rather than none */
    memmove(&t->keys[1], &t->keys[0], sizeof(t->keys[0]) * (TLS_TICKET_KEYS - 1));
    t->keys[0] = k;
    if (t->num_keys < TLS_TICKET_KEYS)
        t->num_keys++;
    OPENSSL_cleanse(&k, sizeof(k));
    t->rotated_at = now;
}

/* OpenSSL's ticket callback: enc = 1 picks the current key for a new
 * ticket; else finds the key a ticket names. Returns 1 (use it), 2 (it
 * decrypts, but issue a fresh ticket under the current key), 0 (unknown
 * key: a full handshake), -1 (error). The key is copied out under the
 * lock; the crypto runs outside it. */
static int ticket_cb(SSL *s, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    tls_server_t *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(s));
    ticket_key_t k;
    int found = -1;
    pthread_mutex_lock(&t->lock);
    rotate_keys(t);
    if (enc) {
        if (t->num_keys)
            found = 0;
    } else {
        for (int i = 0; i < t->num_keys && found < 0; i++)
            if (!memcmp(t->keys[i].name, name, 16))
                found = i;
    }
    if (found >= 0)
        k = t->keys[found];
    pthread_mutex_unlock(&t->lock);
    if (found < 0)
        return enc ? -1 : 0;
    int ok;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac)),
                           OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (enc) {
        memcpy(name, k.name, 16);
        ok = RAND_bytes(iv, 16) == 1 && EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) == 1 &&
             EVP_MAC_CTX_set_params(hctx, params) == 1;
    } else {
        ok = EVP_MAC_CTX_set_params(hctx, params) == 1 &&
             EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) == 1;
    }
    OPENSSL_cleanse(&k, sizeof(k));
    if (!ok)
        return -1;
    return enc || found == 0 ? 1 : 2;
}

/* ---- the context ------------------------------------------------------------------- */

/* ALPN: h2 when an HTTP/2 server is wired and the client offers it, else
 * http/1.1; a client offering neither goes on without ALPN (HTTP/1.1). */
/* "acme-tls/1" among the client's protocols: the TLS-ALPN-01 certificate
 * for its SNI name replaces the server's on this SSL (the certificate is
 * chosen after ALPN, in the same ClientHello processing). 1 if selected. */
static int alpn_acme(SSL *s, tls_server_t *t, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned inlen)
{
    const char *sni = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
    for (unsigned i = 0; t->challenge && sni && i < inlen; i += 1u + in[i]) {
        if (in[i] != 10 || i + 11 > inlen || memcmp(in + i + 1, "acme-tls/1", 10) != 0)
            continue;
        X509 *x = NULL;
        EVP_PKEY *k = NULL;
        if (t->challenge(t->challenge_ctx, sni, &x, &k))
            return 0;
        int ok = SSL_use_cert_and_key(s, x, k, NULL, 1) == 1;
        X509_free(x);
        EVP_PKEY_free(k);
        ERR_clear_error();
        if (ok) {
            *out = in + i + 1;
            *outlen = 10;
        }
        return ok;
    }
    return 0;
}

static int alpn_cb(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                   unsigned inlen, void *arg)
{
    tls_server_t *t = arg;
    if (t->challenge && alpn_acme(s, t, out, outlen, in, inlen))
        return SSL_TLSEXT_ERR_OK;
    static const unsigned char with_h2[] = "\x02h2\x08http/1.1", h1_only[] = "\x08http/1.1";
    const unsigned char *ours = t->on_alpn_h2 ? with_h2 : h1_only;
    unsigned ours_len = t->on_alpn_h2 ? sizeof(with_h2) - 1 : sizeof(h1_only) - 1;
    unsigned char *sel;
    unsigned char sel_len;
    if (SSL_select_next_proto(&sel, &sel_len, ours, ours_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    *outlen = sel_len;
    return SSL_TLSEXT_ERR_OK;
}

/* A file we cannot open is reported with errno's words, before OpenSSL's
 * less helpful ones. */
static int readable_file(const char *what, const char *path, char *why, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, cap, "cannot read %s %s: %s", what, path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

/* Versions, ciphers, modes, tickets and ALPN of every context; 0, or -1
 * with why[cap]. */
static int configure_ctx(tls_server_t *t, SSL_CTX *ctx, char *why, size_t cap)
{
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) || !SSL_CTX_set_cipher_list(ctx, tls12_ciphers) ||
        !SSL_CTX_set_ciphersuites(ctx, tls13_suites) || !SSL_CTX_set1_groups_list(ctx, tls_groups) ||
        !SSL_CTX_set_dh_auto(ctx, 1)) {
        snprintf(why, cap, "cannot configure TLS: %s", ssl_reason());
        return -1;
    }
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
                                 SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Idle connections hold no record buffers; a record may be retried
     * from another buffer holding the same bytes; one record per write. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_AUTO_RETRY);
    SSL_CTX_set_read_ahead(ctx, 1); /* one read(2) per record, not two (header, then body) */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_timeout(ctx, TLS_SESSION_TIMEOUT_S);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"courant", 7);
    SSL_CTX_set_app_data(ctx, t);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, t);
    return 0;
}

/* Never prompt for a passphrase: an encrypted key in memory is refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* Builds a context from PEM text (chain leaf first, then the key); NULL
 * with why[cap] on failure. */
static SSL_CTX *load_ctx_pem(tls_server_t *t, const char *chain, size_t chain_len, const char *key,
                             size_t key_len, char *why, size_t cap)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    BIO *kb = key_len <= INT_MAX ? BIO_new_mem_buf(key, (int)key_len) : NULL;
    BIO *cb = chain_len <= INT_MAX ? BIO_new_mem_buf(chain, (int)chain_len) : NULL;
    EVP_PKEY *pk = kb ? PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL) : NULL;
    X509 *leaf = cb ? PEM_read_bio_X509(cb, NULL, no_passphrase, NULL) : NULL;
    int ok =
        ctx && pk && leaf && SSL_CTX_use_PrivateKey(ctx, pk) == 1 && SSL_CTX_use_certificate(ctx, leaf) == 1;
    for (X509 *x; ok && (x = PEM_read_bio_X509(cb, NULL, no_passphrase, NULL)) != NULL;) {
        if (SSL_CTX_add0_chain_cert(ctx, x) != 1) { /* takes x on success */
            X509_free(x);
            ok = 0;
        }
    }
    ERR_clear_error(); /* the end of the chain reads as an error */
    ok = ok && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(pk);
    X509_free(leaf);
    BIO_free(kb);
    BIO_free(cb);
    if (!ok) {
        snprintf(why, cap, "%s: the certificate chain or its key does not load, or they do not match",
                 t->label);
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (configure_ctx(t, ctx, why, cap)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Builds a context from the files; NULL with why[cap] on failure. */
static SSL_CTX *load_ctx(tls_server_t *t, char *why, size_t cap)
{
    if (readable_file("--tls-cert", t->cert_path, why, cap) ||
        readable_file("--tls-key", t->key_path, why, cap))
        return NULL;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(why, cap, "cannot make a TLS context: %s", ssl_reason());
        return NULL;
    }
    /* The key first: loading the certificate after it drops a key that does
     * not match, so the check below can say so in plain words. */
    if (SSL_CTX_use_PrivateKey_file(ctx, t->key_path, SSL_FILETYPE_PEM) != 1) {
        snprintf(why, cap, "--tls-key %s: not a usable PEM private key (%s)", t->key_path, ssl_reason());
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_path) != 1) {
        snprintf(why, cap, "--tls-cert %s: not a PEM certificate chain (%s)", t->cert_path, ssl_reason());
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(why, cap, "--tls-key %s does not match the certificate in --tls-cert %s", t->key_path,
                 t->cert_path);
        ERR_clear_error();
        goto fail;
    }
    if (configure_ctx(t, ctx, why, cap))
        goto fail;
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* A private key that others can read is worth a warning (not a refusal:
 * the operator may know better, e.g. a group that only courant is in). */
static void check_key_mode(const char *path)
{
    struct stat st;
    if (!stat(path, &st) && (st.st_mode & 077))
        log_warn("--tls-key %s can be read by other users (mode %03o); chmod 600 it", path,
                 (unsigned)(st.st_mode & 0777));
}

/* What both constructors share: the label, the lock, the ticket keys. */
static tls_server_t *server_alloc(const char *label, char *why, size_t cap)
{
    tls_server_t *t = calloc(1, sizeof(*t));
    if (!t || !(t->label = strdup(label))) {
        snprintf(why, cap, "out of memory");
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->lock, NULL);
    t->lock_made = 1;
    rotate_keys(t);
    if (!t->num_keys) {
        snprintf(why, cap, "no randomness for the session ticket keys");
        tls_server_free(t);
        return NULL;
    }
    return t;
}

tls_server_t *tls_server_new(const char *cert_path, const char *key_path, char *why, size_t cap)
{
    tls_server_t *t = server_alloc(cert_path, why, cap);
    if (!t)
        return NULL;
    if (!(t->cert_path = strdup(cert_path)) || !(t->key_path = strdup(key_path))) {
        snprintf(why, cap, "out of memory");
        goto fail;
    }
    if (!(t->ctx = load_ctx(t, why, cap)))
        goto fail;
    check_key_mode(key_path);
    return t;
fail:
    tls_server_free(t);
    return NULL;
}

tls_server_t *tls_server_new_pem(const char *chain, size_t chain_len, const char *key, size_t key_len,
                                 const char *label, char *why, size_t cap)
{
    tls_server_t *t = server_alloc(label, why, cap);
    if (t && !(t->ctx = load_ctx_pem(t, chain, chain_len, key, key_len, why, cap))) {
        tls_server_free(t);
        return NULL;
    }
    return t;
}

void tls_server_set_challenge(tls_server_t *t, tls_challenge_fn fn, void *ctx)
{
    t->challenge = fn;
    t->challenge_ctx = ctx;
}

/* Swaps in a context that loaded; the old one lives on in its connections. */
static void swap_ctx(tls_server_t *t, SSL_CTX *ctx)
{
    pthread_mutex_lock(&t->lock);
    SSL_CTX *old = t->ctx;
    t->ctx = ctx;
    pthread_mutex_unlock(&t->lock);
    SSL_CTX_free(old); /* connections made from it hold their own references */
}

int tls_server_use_pem(tls_server_t *t, const char *chain, size_t chain_len, const char *key, size_t key_len,
                       char *why, size_t cap)
{
    SSL_CTX *ctx = load_ctx_pem(t, chain, chain_len, key, key_len, why, cap);
    if (!ctx)
        return -1;
    swap_ctx(t, ctx);
    return 0;
}

void tls_server_set_protocols(tls_server_t *t, worker_accept_fn http1_accept, tls_h2_fn on_alpn_h2)
{
    t->http1_accept = http1_accept;
    t->on_alpn_h2 = on_alpn_h2;
}

int tls_server_reload(tls_server_t *t, char *why, size_t cap)
{
    if (!t->cert_path)
        return 0; /* PEM in memory: its owner replaces it (tls_server_use_pem) */
    SSL_CTX *ctx = load_ctx(t, why, cap);
    if (!ctx)
        return -1;
    check_key_mode(t->key_path);
    swap_ctx(t, ctx);
    return 0;
}

void tls_server_describe(tls_server_t *t, char *out, size_t cap)
{
    pthread_mutex_lock(&t->lock);
    SSL_CTX *ctx = t->ctx;
    SSL_CTX_up_ref(ctx);
    pthread_mutex_unlock(&t->lock);
    X509 *x = SSL_CTX_get0_certificate(ctx);
    char subject[256] = "?", until[64] = "?";
    if (x) {
        X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
        BIO *b = BIO_new(BIO_s_mem());
        if (b && ASN1_TIME_print(b, X509_get0_notAfter(x)) == 1) {
            int n = BIO_read(b, until, sizeof(until) - 1);
            until[n > 0 ? n : 0] = 0;
        }
        BIO_free(b);
    }
    snprintf(out, cap, "certificate %s, subject %s, valid until %s", t->label, subject, until);
    SSL_CTX_free(ctx);
    ERR_clear_error();
}

void tls_server_free(tls_server_t *t)
{
    if (!t)
        return;
    if (t->lock_made)
        pthread_mutex_destroy(&t->lock);
    SSL_CTX_free(t->ctx);
    OPENSSL_cleanse(t->keys, sizeof(t->keys));
    free(t->cert_path);
    free(t->key_path);
    free(t->label);
    free(t);
}

void tls_get_stats(tls_stats_t *out)
{
    out->handshakes = atomic_load_explicit(&stats.handshakes, memory_order_relaxed);
    out->resumed = atomic_load_explicit(&stats.resumed, memory_order_relaxed);
    out->failed = atomic_load_explicit(&stats.failed, memory_order_relaxed);
    out->records = atomic_load_explicit(&stats.records, memory_order_relaxed);
    out->record_bytes = atomic_load_explicit(&stats.record_bytes, memory_order_relaxed);
}

/* ---- the transport (io_ops_t) -------------------------------------------------------- */

static ssize_t tls_read(io_t *io, char *buf, size_t cap)
{
    tls_conn_t *tc = io->ctx;
    ERR_clear_error();
    int n = SSL_read(tc->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
    if (n > 0)
        return n;
    switch (SSL_get_error(tc->ssl, n)) {
    case SSL_ERROR_ZERO_RETURN: /* close_notify, or an EOF without one (IGNORE_UNEXPECTED_EOF) */
        return 0;
    case SSL_ERROR_WANT_READ:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        io->wants |= IO_READ_WANTS_WRITABLE;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_SYSCALL:
        if (errno == 0 || errno == EAGAIN)
            errno = ECONNRESET;
        ERR_clear_error();
        return -1;
    default:
        log_debug("fd %d: TLS read failed: %s", io->fd, ssl_reason());
        errno = EPROTO;
        return -1;
    }
}

/* Copies up to TLS_RECORD bytes starting `skip` bytes into the iovecs into
 * the scratch buffer; at most `want` bytes when want > 0. Returns the bytes
 * copied. */
static size_t gather(const struct iovec *iov, int iovcnt, size_t skip, size_t want)
{
    size_t cap = want && want < TLS_RECORD ? want : TLS_RECORD, len = 0;
    for (int i = 0; i < iovcnt && len < cap; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        size_t take = l - skip < cap - len ? l - skip : cap - len;
        memcpy(scratch + len, (const char *)iov[i].iov_base + skip, take);
        len += take;
        skip = 0;
    }
    return len;
}

static ssize_t tls_writev(io_t *io, const struct iovec *iov, int iovcnt)
{
    tls_conn_t *tc = io->ctx;
    size_t done = 0;
    for (;;) {
        /* A record interrupted last time is offered again with the same
         * bytes (the queue was not consumed): exactly its length. */
        size_t len = gather(iov, iovcnt, done, done ? 0 : io->min_offer);
        if (len == 0)
            break;
        ERR_clear_error();
        int n = SSL_write(tc->ssl, scratch, (int)len);
        if (n > 0) {
            io->min_offer = 0;
            count(&stats.records, 1);
            count(&stats.record_bytes, (unsigned long)n);
            done += (size_t)n; /* n < len when the peer asked for small records */
            continue;
        }
        int e = SSL_get_error(tc->ssl, n);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            io->min_offer = (uint16_t)len; /* len <= TLS_RECORD */
            if (e == SSL_ERROR_WANT_READ)
                io->wants |= IO_WRITE_WANTS_READABLE;
            if (done)
                return (ssize_t)done;
            errno = EAGAIN;
            return -1;
        }
        if (done)
            return (ssize_t)done; /* the error comes again on the next call */
        if (e == SSL_ERROR_SYSCALL && errno != 0 && errno != EAGAIN) {
            ERR_clear_error();
            return -1;
        }
        log_debug("fd %d: TLS write failed: %s", io->fd, ssl_reason());
        errno = EPIPE;
        return -1;
    }
    return (ssize_t)done;
}

static int tls_shutdown(io_t *io)
{
    tls_conn_t *tc = io->ctx;
    /* close_notify, best effort (a full socket drops it: the peer sees the
     * end of the stream anyway), then the TCP half-close. */
    if (SSL_is_init_finished(tc->ssl)) {
        ERR_clear_error();
        (void)SSL_shutdown(tc->ssl);
        ERR_clear_error();
    }
    return shutdown(io->fd, SHUT_WR);
}

static void tls_close(io_t *io)
{
    tls_conn_t *tc = io->ctx;
    if (!tc)
        return;
    SSL_free(tc->ssl);
    free(tc);
    io->ctx = NULL;
}

const io_ops_t io_tls = {"tls", tls_read, tls_writev, tls_shutdown, tls_close};

/* ---- accepting, and the handshake as a protocol ---------------------------------------- */

struct conn *tls_accept(worker_t *w, int fd, const struct sockaddr *peer, socklen_t len, int peer_loopback,
                        void *ctx)
{
    tls_server_t *t = ctx;
    tls_conn_t *tc = calloc(1, sizeof(*tc));
    if (!tc)
        return NULL;
    pthread_mutex_lock(&t->lock);
    SSL_CTX *sctx = t->ctx;
    SSL_CTX_up_ref(sctx);
    pthread_mutex_unlock(&t->lock);
    tc->ssl = SSL_new(sctx); /* takes its own reference */
    SSL_CTX_free(sctx);
    /* Everything that can fail comes before the conn exists: the worker
     * closes fd when we return NULL. */
    if (!tc->ssl || SSL_set_fd(tc->ssl, fd) != 1) {
        ERR_clear_error();
        SSL_free(tc->ssl);
        free(tc);
        return NULL;
    }
    SSL_set_accept_state(tc->ssl);
    conn_t *c = t->http1_accept(w, fd, peer, len, peer_loopback, NULL);
    if (!c) {
        SSL_free(tc->ssl);
        free(tc);
        return NULL;
    }
    tc->inner = c->proto;
    tc->server = t;
    c->io = (io_t){&io_tls, fd, 0, 0, tc};
    c->proto = &tls_handshake_proto;
    return c;
}

/* The handshake is done: the conn goes to its protocol, which reads what
 * may already be here. */
static void handshake_done(conn_t *c, tls_conn_t *tc)
{
    count(&stats.handshakes, 1);
    if (SSL_session_reused(tc->ssl))
        count(&stats.resumed, 1);
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(tc->ssl, &alpn, &alpn_len);
    log_debug("fd %d: TLS %s %s%s, ALPN %.*s", c->io.fd, SSL_get_version(tc->ssl),
              SSL_get_cipher_name(tc->ssl), SSL_session_reused(tc->ssl) ? " (resumed)" : "",
              alpn ? (int)alpn_len : 4, alpn ? (const char *)alpn : "none");
    c->proto = tc->inner;
    if (alpn_len == 10 && !memcmp(alpn, "acme-tls/1", 10)) {
        /* RFC 8737 3: a validation handshake carries no application data. */
        c->proto = &tls_handshake_proto; /* its on_close frees what the HTTP/1 conn holds */
        conn_close(c, "TLS-ALPN-01 challenge answered");
        return;
    }
    if (alpn_len == 2 && !memcmp(alpn, "h2", 2) && tc->server->on_alpn_h2) {
        if (tc->server->on_alpn_h2(c)) {
            c->proto = &tls_handshake_proto; /* its on_close frees what the HTTP/1 conn holds */
            conn_close(c, "HTTP/2 could not take the connection");
            return;
        }
    }
    if (c->readable && c->state == CONN_OPEN)
        c->proto->on_readable(c);
}

static void hs_on_readable(conn_t *c)
{
    tls_conn_t *tc = c->io.ctx;
    ERR_clear_error();
    int r = SSL_do_handshake(tc->ssl);
    if (r == 1) {
        handshake_done(c, tc);
        return;
    }
    int e = SSL_get_error(tc->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        c->readable = 0; /* the socket is drained: its next edge brings us back */
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        c->io.wants |= IO_READ_WANTS_WRITABLE; /* conn.c reads again once writable */
        c->writable = 0;
        return;
    }
    count(&stats.failed, 1);
    log_debug("fd %d: TLS handshake failed: %s", c->io.fd,
              e == SSL_ERROR_SYSCALL ? "connection reset or closed" : ssl_reason());
    ERR_clear_error();
    conn_close(c, "TLS handshake failed");
}

static void hs_on_drained(conn_t *c) { (void)c; /* nothing is queued before the handshake */ }

static void hs_on_tick(conn_t *c, int64_t now_ms)
{
    if (now_ms >= c->deadline_ms) { /* set by the HTTP/1 accept: --header-timeout */
        count(&stats.failed, 1);
        conn_close(c, "TLS handshake not done within --header-timeout");
    }
}

static void hs_on_stop(conn_t *c, int64_t now_ms, int spread_ms)
{
    (void)now_ms;
    (void)spread_ms;
    conn_close(c, "shutting down");
}

static void hs_on_close(conn_t *c)
{
    tls_conn_t *tc = c->io.ctx;
    if (tc && tc->inner)
        tc->inner->on_close(c); /* what the protocol that allocated the conn holds */
}

static const conn_proto_t tls_handshake_proto = {"tls-handshake", hs_on_readable, hs_on_drained,
                                                 hs_on_tick,      hs_on_stop,     hs_on_close};
