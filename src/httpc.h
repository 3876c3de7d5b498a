/*
 * httpc.h - a small blocking HTTP/1.1 client, for the command-line tools
 * (courant pub, courant sub): one request per connection, plain TCP.
 *
 *   httpc_parse_url   "http://host[:port][/path][?query]" -> host, port, target
 *   httpc_open        resolve + connect (bounded in time)
 *   httpc_send        write a request (the caller formats it; httpc_format_request helps)
 *   httpc_read_head   read and parse the response head (status, headers)
 *   httpc_read_body   read the body as it arrives, whatever its framing:
 *                     Content-Length, chunked (http1_chunked_decode), or until close
 *   httpc_close
 *
 * The byte transport sits behind two function pointers in httpc_conn_t
 * (`_read`, `_write`): plain sockets today; HTTPS adds a TLS transport there
 * (an https:// URL is refused with a clear message until then) without
 * touching the framing code.
 *
 * Every wait is a poll() in slices of at most 200 ms, so a caller's cancel
 * flag (set by a SIGINT handler) ends any wait within 200 ms, and every
 * call is bounded by its timeout. Input is bounded too: a response head
 * past HTTPC_MAX_HEAD bytes is an error.
 *
 * The response-head parser (httpc_parse_head) is pure, allocates nothing and
 * points into the caller's buffer; it is fuzzed (fuzz/httpc_fuzz.c).
 *
 * Threads: a connection is used by one thread. No global state.
 */
#ifndef COURANT_HTTPC_H
#define COURANT_HTTPC_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http1.h"

#define HTTPC_MAX_HEAD 16384  /* response head bytes at most */
#define HTTPC_MAX_HEADERS 64  /* response header fields at most */
#define HTTPC_MAX_TARGET 8192 /* path + query at most */

enum {
    HTTPC_ERROR = -1,     /* I/O error, malformed response, or a limit passed; see `why` */
    HTTPC_TIMEOUT = -2,   /* nothing arrived (or could be sent) in time */
    HTTPC_CANCELLED = -3, /* *cancel became non-zero */
    HTTPC_INCOMPLETE = -4 /* httpc_parse_head: need more bytes */
};

typedef struct httpc_url {
    char host[256];                /* without brackets for IPv6 */
    int port;                      /* 80 when the URL gives none */
    char target[HTTPC_MAX_TARGET]; /* path and query, starts with '/' */
    char authority[300];           /* for the Host header: host[:port], IPv6 in brackets */
} httpc_url_t;

/* Parses an absolute http URL. Userinfo is refused (put tokens in
 * --token, not in URLs that end up in logs); a fragment is dropped. Returns
 * 0, or -1 with *why a static reason. Pure. */
int httpc_parse_url(const char *url, httpc_url_t *out, const char **why);

typedef struct httpc_header {
    const char *name; /* borrows */
    size_t name_len;
    const char *value; /* borrows; OWS trimmed */
    size_t value_len;
} httpc_header_t;

typedef struct httpc_head {
    int status;         /* 100..999 */
    int minor_version;  /* HTTP/1.x */
    const char *reason; /* borrows; may be empty */
    size_t reason_len;
    size_t num_headers;
    httpc_header_t headers[HTTPC_MAX_HEADERS];
} httpc_head_t;

/* Parses a response head from buf[0..len): status line, header fields, the
 * blank line (CRLF or bare LF line ends; no obs-fold; field names are
 * tokens; values have no control bytes but HTAB). Returns the head's length
 * once complete, HTTPC_INCOMPLETE, or HTTPC_ERROR (malformed, or too many
 * fields). Pointers in *h point into buf. Pure; any thread. */
ssize_t httpc_parse_head(const char *buf, size_t len, httpc_head_t *h);

/* Case-insensitive lookup; the first field with that name, or NULL. */
const httpc_header_t *httpc_find_header(const httpc_head_t *h, const char *name);

typedef enum httpc_framing {
    HTTPC_BODY_LENGTH,  /* Content-Length */
    HTTPC_BODY_CHUNKED, /* Transfer-Encoding: chunked */
    HTTPC_BODY_CLOSE,   /* until the server closes (SSE streams) */
} httpc_framing_t;

typedef struct httpc_conn {
    int fd;                        /* owns; -1 when closed */
    volatile sig_atomic_t *cancel; /* borrows; may be NULL: non-zero ends every wait */
    /* the transport: plain socket today, TLS later */
    ssize_t (*_read)(struct httpc_conn *c, char *buf, size_t len);
    ssize_t (*_write)(struct httpc_conn *c, const char *buf, size_t len);
    char *_buf; /* owns: bytes read past the head (and the head while reading it) */
    size_t _len, _cap;
    httpc_framing_t _framing;
    uint64_t _remaining;              /* HTTPC_BODY_LENGTH: body bytes still to read */
    http1_chunked_decoder_t _chunked; /* HTTPC_BODY_CHUNKED */
    int _body_done;                   /* the whole body was read */
    char *_head;                      /* owns: a copy of the response head, which head_out points into */
} httpc_conn_t;

/* Connects to u's host and port within timeout_ms. Returns 0, or -1 with a
 * reason written into why[0..cap) ("connection refused", ...). `cancel` may be NULL. */
int httpc_open(httpc_conn_t *c, const httpc_url_t *u, volatile sig_atomic_t *cancel, int timeout_ms,
               char *why, size_t cap);

/* Formats "METHOD target HTTP/1.1", Host, User-Agent, the caller's
 * `extra_headers` (already CRLF-terminated lines, or ""), Content-Length
 * when body_len > 0 or method is POST, and the blank line into a malloc'd
 * string (caller frees); the body is not included. NULL if out of memory. */
char *httpc_format_request(const char *method, const httpc_url_t *u, const char *extra_headers,
                           size_t body_len);

/* Writes all of buf. Returns 0, HTTPC_ERROR, HTTPC_TIMEOUT or HTTPC_CANCELLED. */
int httpc_send(httpc_conn_t *c, const char *buf, size_t len, int timeout_ms);

/* Reads the response head into *h (its pointers stay valid until
 * httpc_close) and sets up the body framing. Returns 0 or a negative
 * HTTPC_* code, with why[0..cap) filled on HTTPC_ERROR. */
int httpc_read_head(httpc_conn_t *c, httpc_head_t *h, int timeout_ms, char *why, size_t cap);

/* Reads body bytes into out[0..cap), cap > 0. Returns the count (> 0), 0 at the end
 * of the body (or when the server closed a close-delimited body), or a
 * negative HTTPC_* code. A timeout leaves the connection usable. */
ssize_t httpc_read_body(httpc_conn_t *c, char *out, size_t cap, int timeout_ms);

/* Reads the whole body into a malloc'd, NUL-terminated string of at most
 * `max` bytes (*out, caller frees; more is HTTPC_ERROR). Returns its length
 * or a negative HTTPC_* code. */
ssize_t httpc_read_all(httpc_conn_t *c, char **out, size_t max, int timeout_ms);

/* Closes the socket and frees the buffers; safe on a closed conn. */
void httpc_close(httpc_conn_t *c);

#endif
