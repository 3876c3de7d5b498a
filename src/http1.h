/*
 * http1.h - HTTP/1.x request-head parser, chunked-body decoder, and
 * application/x-www-form-urlencoded parser.
 *
 * Hand-written, in the manner of picohttpparser. The head parser itself is
 * stateless; a head that arrives in pieces goes through
 * http1_parse_request_resume(), which keeps a 16-byte scan state so that
 * each byte is looked at once however the head is split (re-running the
 * stateless parser on every read costs O(n^2) for a head trickled in small
 * segments: 20 connections sending 256 KiB heads in 128-byte pieces cost
 * 3 s of CPU that way). Nothing here allocates. The head parser never writes into the input: every pointer it
 * returns points inside the caller's buffer, and stays valid as long as that
 * buffer does. (The chunked decoder, by design, rewrites its input in place.)
 *
 * Accepted grammar (RFC 9112, strict where laxness enables smuggling):
 *   request-head = [ CRLF ] request-line *( header-field ) CRLF
 *   request-line = method SP request-target SP "HTTP/1." DIGIT CRLF
 *   method       = 1*tchar
 *   target       = 1*(VCHAR except SP), i.e. bytes 0x21-0x7e and obs-text 0x80-0xff
 *   header-field = field-name ":" OWS field-value OWS CRLF
 *   field-name   = 1*tchar        (no space before ':', no obs-fold)
 *   field-value  = *(VCHAR / SP / HTAB / obs-text)   (no CR, LF, NUL, other CTLs)
 * A bare LF is accepted as a line end too (as most servers do); a bare CR is
 * malformed. Exactly one SP separates the request-line parts. One empty line
 * before the request line is skipped (RFC 9112 2.2). Leading/trailing OWS is
 * trimmed from values.
 *
 * Framing (RFC 9112 6) is checked too, once the head is complete, so that no
 * caller can forget it; each of these makes the head HTTP1_MALFORMED:
 *   - two or more Content-Length fields, or one whose value is not what
 *     http1_parse_content_length() accepts ("5, 5", "+5", "" ...);
 *   - both Content-Length and Transfer-Encoding;
 *   - Transfer-Encoding in an HTTP/1.0 request;
 *   - two or more Transfer-Encoding fields, or one whose last coding is not
 *     "chunked". (Codings before "chunked", e.g. "gzip, chunked", pass: the
 *     caller answers those 501.)
 * So after a successful parse: a Transfer-Encoding header means a chunked
 * body, else a Content-Length header gives the body length, else no body.
 *
 * Threads: no global state; any thread. A chunked decoder is used by one
 * thread at a time.
 */
#ifndef COURANT_HTTP1_H
#define COURANT_HTTP1_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP1_MAX_HEADERS 64

enum {
    HTTP1_INCOMPLETE = -2,       /* need more bytes */
    HTTP1_MALFORMED = -1,        /* answer 400 */
    HTTP1_TOO_MANY_HEADERS = -3, /* answer 431 */
};

typedef struct http1_header {
    const char *name; /* borrows from the input; as sent (case preserved) */
    size_t name_len;
    const char *value; /* borrows from the input; OWS trimmed */
    size_t value_len;
} http1_header_t;

typedef struct http1_request {
    const char *method; /* borrows */
    size_t method_len;
    const char *target; /* borrows: as sent (origin-form path plus optional
                           ?query is what the router expects; the parser
                           only checks the characters) */
    size_t target_len;
    int minor_version; /* 0 or 1 for HTTP/1.0 or HTTP/1.1; 1.2-1.9 read as
                           1, the highest we implement (RFC 9110 2.5) */
    size_t num_headers;
    http1_header_t headers[HTTP1_MAX_HEADERS];
} http1_request_t;

/* Parses a request head from buf[0..len). Returns the head's length in bytes
 * (through the blank line) when complete, or HTTP1_INCOMPLETE,
 * HTTP1_MALFORMED, HTTP1_TOO_MANY_HEADERS. On success `req` is filled; on
 * any other result its contents are unspecified. The verdict depends only on
 * the bytes seen: a prefix of a head gives HTTP1_INCOMPLETE, and once an
 * error is found every longer buffer gives that same error. Reads nothing
 * at or past buf + len; buf may be NULL when len is 0. The caller caps the
 * head size (keep reading while INCOMPLETE and below the cap, else 431). */
ssize_t http1_parse_request(const char *buf, size_t len, http1_request_t *req);

/* ---- a head arriving in pieces --------------------------------------------
 * The scan state of one request head: a byte-level automaton of the head
 * grammar above that remembers where it stopped. It holds no pointer, so the
 * caller may move or grow its buffer between calls. Zero it (= {0}) before
 * the first byte of each request head. */
typedef struct http1_head_scan {
    size_t _pos;           /* bytes of the head examined so far */
    uint16_t _num_headers; /* field lines completed so far */
    uint8_t _state;        /* see http1.c; 0 = nothing seen yet */
    uint8_t _version_i;    /* in the version: bytes of "HTTP/1." matched */
    int8_t _error;         /* 0, or the error found (it stays) */
} http1_head_scan_t;

/* Gives exactly what http1_parse_request(buf, len, req) gives (the same
 * return value; on success the same fields), but examines only the bytes
 * it has not examined in earlier calls with the same `scan`, plus, once,
 * the whole head when the blank line that ends it arrives: a head split
 * into any number of pieces costs O(its length) in total, and each call
 * O(new bytes) until the head is complete.
 *
 * So errors are reported at exactly the same prefix as the stateless
 * parser does: a malformed request line is MALFORMED as soon as its bad
 * byte arrives, TOO_MANY_HEADERS as soon as the first byte of field line
 * HTTP1_MAX_HEADERS + 1 does, framing errors (RFC 9112 6) once the head is
 * complete. An error sticks: later calls return it again at once.
 *
 * Between calls the caller may append bytes and may move the buffer
 * (realloc), but must not change the bytes already given: buf[0..len) of
 * each call must extend buf[0..len) of the previous one. (A shorter len
 * than before restarts the scan from byte 0: correct, just not cheap.)
 * `req` is written only when the result is a length (the head is
 * complete); it need not survive between calls. After a complete head,
 * zero `scan` again before parsing the next (pipelined) request, whose
 * bytes start at buf + the returned length. Reads nothing at or past
 * buf + len; buf may be NULL when len is 0. Threads: one `scan` per
 * request, used by one thread at a time. */
ssize_t http1_parse_request_resume(http1_head_scan_t *scan, const char *buf, size_t len,
                                   http1_request_t *req);

/* Case-insensitive lookup of a header; returns the first match or NULL. */
const http1_header_t *http1_find_header(const http1_request_t *req, const char *name);

/* Case-insensitive ASCII compare of a (ptr,len) with a NUL-terminated string. */
int http1_token_eq(const char *p, size_t len, const char *lit);

/* Does the comma-separated header value contain `token` (case-insensitive)?
 * Elements are split on ',', OWS-trimmed, empty ones ignored; parameters are
 * not parsed ("chunked;x=1" is not "chunked"). For Connection: close /
 * keep-alive / Upgrade. (For Transfer-Encoding, parse_request already made
 * sure "chunked" is the last coding.) */
int http1_value_has_token(const char *v, size_t len, const char *token);

/* Parses a Content-Length value: 1*DIGIT, no sign, no spaces, no overflow.
 * Returns 0 and sets *out, or -1. */
int http1_parse_content_length(const char *v, size_t len, uint64_t *out);

/* ---- chunked transfer coding (request bodies) ----------------------------
 * Incremental and in place, with the semantics of picohttpparser's
 * phr_decode_chunked. Start with a zeroed decoder (= {0}). Each call is given
 * only the bytes not given before, buf[0..*len) (they may be split anywhere,
 * even inside a size line or a CRLF); it moves the payload bytes among them
 * to the front of buf, sets *len to how many it produced, and returns:
 *   >= 0              the body is complete (the last-chunk, any trailers and
 *                     the final CRLF were consumed). The bytes after the body
 *                     (the start of the next pipelined request) have been
 *                     moved to buf + *len, right after the payload; the
 *                     return value is their count. 0 if there were none.
 *   HTTP1_INCOMPLETE  every input byte was consumed; call again with more.
 *   HTTP1_MALFORMED   bad chunk framing (see below) or a size that overflows
 *                     size_t. *len is the payload produced before the error;
 *                     the rest of buf is unspecified. Answer 400 and close.
 * Typical loop: the body so far is body[0..n); read new bytes into body + n,
 * set m to their count, r = http1_chunked_decode(&d, body + n, &m); n += m.
 * After completion or an error the decoder stays put: further calls return
 * all input as left over (after completion) or HTTP1_MALFORMED again.
 *
 * Accepted framing (RFC 9112 7.1, strict):
 *   chunk      = 1*HEXDIG [ *(SP/HTAB) ";" ext ] CRLF data CRLF
 *   last-chunk = 1*("0") [ *(SP/HTAB) ";" ext ] CRLF
 *   trailers   = *( 1*tchar ":" *(VCHAR / SP / HTAB / obs-text) CRLF ) CRLF
 * where ext is any bytes but CTLs (HTAB allowed), skipped unparsed. Line ends
 * must be CRLF: a bare LF or bare CR is malformed here (unlike in the head),
 * and so are leading whitespace, a sign or "0x" before the size, anything but
 * CRLF right after the data, obs-fold in trailers. Trailer fields are skipped.
 * Non-payload bytes are capped: 4096 per size line, 8192 for the trailers.
 * The chunk-size is not capped: the caller enforces its body-size limit on
 * the running payload total.
 */
typedef struct http1_chunked_decoder {
    size_t _bytes_left_in_chunk; /* payload bytes still to copy */
    int _state;                  /* see http1.c; 0 = expecting a size line */
    int _hex_count;              /* digits read in the current size line */
    size_t _line_len;            /* framing bytes in this size line / trailers */
} http1_chunked_decoder_t;

ssize_t http1_chunked_decode(http1_chunked_decoder_t *d, char *buf, size_t *len);

/* ---- percent-decoding and application/x-www-form-urlencoded -------------
 * Used for query strings, publish bodies and path segments. */

enum {
    HTTP1_PCT_PLUS_SPACE = 1, /* '+' decodes to a space (forms, queries), not in paths */
    HTTP1_PCT_REJECT_NUL = 2, /* a NUL result byte ("%00", or a raw NUL) is malformed: for
                                 results used as C strings */
};

/* Percent-decodes in[0..len) into out (RFC 3986 2.1): "%" HEXDIG HEXDIG
 * becomes that byte, either case; every other byte is copied, '+' turned
 * into a space if flags has HTTP1_PCT_PLUS_SPACE. Returns the decoded
 * length, never more than len; or -1 if a '%' is not followed by two hex
 * digits (WHATWG passes such a '%' through; we refuse it, so that a typo in
 * a topic is an error rather than a silent mismatch), or, with
 * HTTP1_PCT_REJECT_NUL, if the result would hold a NUL byte. out must hold len
 * bytes; it may be `in` itself (decoding in place is safe: the output never
 * overtakes the input). The result is not NUL-terminated. On -1 out holds
 * a partial result. in and out may be NULL when len is 0. Pure; any thread. */
ssize_t http1_pct_decode(const char *in, size_t len, char *out, int flags);

/* Calls `cb` for each name=value pair of a form/query string, in order
 * (pairs separated by '&'; the first '=' splits a pair; a pair without '='
 * has an empty value; "=v" has an empty name; empty pairs, as in "&&", are
 * skipped; repeated names are each delivered). Name and value are
 * percent-decoded ('+' means space) into `scratch`, which must hold at least
 * `len` bytes: each pair is decoded at its own offset in scratch (decoding
 * never grows), so the pointers of every pair stay valid as long as scratch
 * does (publish keeps all the fields at once). They are not NUL-terminated and may contain any byte, NUL
 * included. Returns 0; or -1 for a malformed escape (a '%' not followed by
 * two hex digits), in which case the whole string is refused before any
 * callback runs; or the first non-zero value `cb` returned, which stops the
 * walk (so a callback should not return -1 if it must tell the two apart).
 * Decoding is http1_pct_decode(..., HTTP1_PCT_PLUS_SPACE), so %00 gives a
 * NUL. s and scratch may be NULL when len is 0. */
typedef int (*http1_form_pair_cb)(void *ctx, const char *name, size_t name_len, const char *value,
                                  size_t value_len);
int http1_parse_form(const char *s, size_t len, char *scratch, http1_form_pair_cb cb, void *ctx);

#endif
