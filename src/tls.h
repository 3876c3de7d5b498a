/*
 * tls.h - HTTPS: TLS records under a connection (an io_ops_t over OpenSSL),
 * the server's certificate context and its reload, and the accept function
 * of TLS listeners.
 *
 *   listener (ctx = tls_server_t)
 *     tls_accept --> http1_accept (main's function pointer: allocates the conn)
 *                    SSL_new from the current SSL_CTX, installed as c->io
 *                    c->proto = the handshake protocol (inner proto saved)
 *     handshake (driven by readability, bounded by --header-timeout)
 *       --> ALPN "h2" and an h2 handler: on_alpn_h2(c) takes the conn over
 *       --> else the saved HTTP/1 protocol continues, reading through TLS
 *
 *   tls_server_t { lock; SSL_CTX *ctx (one ref); ticket keys[3] }
 *     every SSL holds its own reference to the SSL_CTX it was made from, so
 *     tls_server_reload swaps in a new context under the lock and drops
 *     the old one's reference: open connections keep theirs until they
 *     close, new handshakes use the new certificate.
 *
 * Protocol versions TLS 1.2 and 1.3 only; TLS 1.2 ciphers are Mozilla's
 * "intermediate" list (ECDHE/DHE with AES-GCM or ChaCha20-Poly1305), in the
 * server's order (ChaCha20 first for clients that prefer it). Resumption by
 * session tickets only (no server-side session cache: it would hold memory
 * per handshake, not per connection); the ticket keys are random per
 * process, rotated every hour, and the two before the current one still
 * decrypt, so a ticket lasts as long as the session timeout (2 h). They are
 * kept across certificate reloads.
 *
 * Memory: an idle TLS connection holds its SSL object (with the session and
 * the two record ciphers), no record buffers (SSL_MODE_RELEASE_BUFFERS);
 * records are written from one 16 KiB scratch buffer per worker thread:
 * writev gathers the iovecs into it, one record per SSL_write.
 *
 * Threads: tls_server_new/free/set_protocols on main before the workers
 * start (after they are joined for free); tls_server_reload on any thread
 * (main's SIGHUP); tls_accept and the io on the worker that owns the conn;
 * tls_get_stats anywhere.
 */
#ifndef COURANT_TLS_H
#define COURANT_TLS_H

#include "conn.h"
#include "io.h"
#include "worker.h"

#include <openssl/types.h>
#include <stddef.h>

typedef struct tls_server tls_server_t;

/* TLS-ALPN-01 (RFC 8737): for a handshake that offers ALPN "acme-tls/1"
 * with SNI `name`, the certificate and key to present instead of the
 * server's, each with a new reference the TLS layer drops; 0, or -1 when
 * there is no challenge for that name (the handshake then goes on as
 * usual). Called on a worker thread, during the handshake: it must not
 * block. */
typedef int (*tls_challenge_fn)(void *ctx, const char *name, X509 **cert, EVP_PKEY **key);

/* Called on the conn's worker thread once the handshake chose "h2", before
 * any application byte was read: the HTTP/2 server takes the conn over (it
 * was allocated by the HTTP/1 accept function; the HTTP/2 server sets
 * c->proto and c->proto_ctx, and the HTTP/1 protocol's on_close is not
 * called). Returns 0, or -1 to have the conn closed. */
typedef int (*tls_h2_fn)(struct conn *c);

/* Loads the certificate chain (PEM, leaf first) and the private key (PEM)
 * and checks that they match. Returns the context, or NULL with a one-line
 * reason in why[cap]. The paths are copied (tls_server_reload reads them
 * again). */
tls_server_t *tls_server_new(const char *cert_path, const char *key_path, char *why, size_t cap);

/* The same from PEM text in memory (a chain, leaf first, and its private
 * key), for certificates courant obtains itself (acme.h): `label` names it
 * in logs. tls_server_reload has no files to read for such a server and
 * returns 0 without a change; tls_server_use_pem replaces the pair. */
tls_server_t *tls_server_new_pem(const char *chain, size_t chain_len, const char *key, size_t key_len,
                                 const char *label, char *why, size_t cap);

/* Replaces the certificate and key with PEM text: on success new
 * handshakes use them (0), open connections keep theirs; else the old pair
 * stays (-1, why[cap]). Any thread (the ACME thread). */
int tls_server_use_pem(tls_server_t *t, const char *chain, size_t chain_len, const char *key, size_t key_len,
                       char *why, size_t cap) __attribute__((warn_unused_result));

/* Answers TLS-ALPN-01 challenges through `fn` (NULL: never; ALPN then never
 * selects "acme-tls/1"). A handshake that selected "acme-tls/1" is closed
 * once done: it carries no HTTP. Main, before the workers start. */
void tls_server_set_challenge(tls_server_t *t, tls_challenge_fn fn, void *ctx);

/* The protocols: `http1_accept` allocates every connection (and speaks
 * HTTP/1.1 after the handshake); `on_alpn_h2` takes over connections that
 * chose h2, NULL while there is no HTTP/2 server (then ALPN offers only
 * http/1.1). Main, before the workers start. */
void tls_server_set_protocols(tls_server_t *t, worker_accept_fn http1_accept, tls_h2_fn on_alpn_h2);

/* Reads the certificate and key files again; on success new handshakes use
 * them (returns 0), else the old pair stays in use and why[cap] says why
 * (returns -1). Any thread. */
int tls_server_reload(tls_server_t *t, char *why, size_t cap) __attribute__((warn_unused_result));

/* One line describing the current certificate (subject, notAfter) into
 * out[cap], for the start-up and reload logs. */
void tls_server_describe(tls_server_t *t, char *out, size_t cap);

/* Frees the context (after the workers are joined: no conn may use it). */
void tls_server_free(tls_server_t *t);

/* A listener's accept function (worker_accept_fn); `ctx` is the
 * tls_server_t. Returns the conn with the TLS io and the handshake
 * protocol installed, or NULL (out of memory; nothing was allocated). */
struct conn *tls_accept(worker_t *w, int fd, const struct sockaddr *peer, socklen_t len, int peer_loopback,
                        void *ctx);

/* The TLS transport (io.h). */
extern const io_ops_t io_tls;

/* Process-wide counters for /metrics (relaxed atomics). */
typedef struct tls_stats {
    unsigned long handshakes;   /* completed: full + resumed */
    unsigned long resumed;      /* completed with a session ticket */
    unsigned long failed;       /* handshakes that failed (garbage, plain HTTP, old versions...) */
    unsigned long records;      /* application-data SSL_write calls that succeeded (one record each) */
    unsigned long record_bytes; /* plaintext bytes in those records */
} tls_stats_t;

void tls_get_stats(tls_stats_t *out);

#endif
