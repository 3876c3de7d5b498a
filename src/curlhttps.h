/*
 * curlhttps.h - a libcurl easy handle set up the way courant's background
 * HTTPS clients want it: the JWKS fetcher (jwks.c) and the ACME client
 * (acme.c). Both talk to a server the operator named, from a thread of
 * their own, and both want the same fence around each transfer:
 *
 *   https only            a key set or a certificate order over cleartext
 *                         could be rewritten on the way
 *   no redirects          the URL is the operator's (or the CA's, which
 *                         ACME's Location headers carry as data)
 *   no signals            libcurl runs off the main thread (CURLOPT_NOSIGNAL)
 *   a whole-transfer timeout, a body-size cap (CURLOPT_MAXFILESIZE_LARGE,
 *                         and the caller's body callback enforces it too,
 *                         as a server may send no Content-Length)
 *   a progress callback   polled by libcurl, so the caller can cancel a
 *                         transfer when the server stops
 *   libcurl's detail      in the caller's CURL_ERROR_SIZE buffer
 *
 * What differs stays with the caller: the body and header callbacks (the
 * ACME client reads Replay-Nonce and Location, the fetcher Cache-Control),
 * the request's header lines, the method and body, how a failure is
 * reported. Before this module each caller set the same fifteen options in
 * its own copy.
 *
 * Threads: any thread, on a handle that thread owns. Stateless.
 */
#ifndef COURANT_CURLHTTPS_H
#define COURANT_CURLHTTPS_H

#include <curl/curl.h>

typedef struct curlhttps_opts {
    const char *url;                    /* borrows: https:// URL to fetch */
    long timeout_ms;                    /* the whole transfer, connection included */
    const char *user_agent;             /* borrows: User-Agent value */
    struct curl_slist *headers;         /* borrows: extra request header lines, or NULL */
    char *errbuf;                       /* borrows: CURL_ERROR_SIZE bytes, cleared here, filled on failure */
    curl_write_callback on_body;        /* the response body, a piece at a time */
    void *body_ctx;                     /* borrows: on_body's context */
    curl_write_callback on_header;      /* each response header line */
    void *header_ctx;                   /* borrows: on_header's context */
    curl_xferinfo_callback on_progress; /* non-zero aborts the transfer */
    void *progress_ctx;                 /* borrows: on_progress's context */
    curl_off_t max_bytes;               /* body bytes at most */
    const char *ca_file; /* borrows: PEM roots to verify the server with; NULL = system store */
    int insecure_tls;    /* 1: do not verify the server's certificate (tests only) */
} curlhttps_opts_t;

/* Sets c's options from o (the table in the file comment), on a handle
 * that is new or was curl_easy_reset. Nothing is copied that libcurl does
 * not copy itself: url, user_agent and ca_file are (libcurl copies
 * strings); headers, errbuf and the contexts must live until the transfer
 * ends. The caller adds the method and body, and performs. */
void curlhttps_setup(CURL *c, const curlhttps_opts_t *o);

#endif
