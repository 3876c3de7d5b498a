/*
 * http1.c - HTTP/1.x request-head parser, chunked-body decoder, form parser.
 *
 * Why hand-written: the hub parses every request head of every subscriber and
 * publisher, so the parser must not allocate (a head is parsed straight out of
 * the connection's read buffer, all results borrow from it), must be
 * re-entrant (no state at all for heads; the caller-owned decoder struct for
 * chunked bodies), and must be strict: request smuggling lives in the places
 * where two parsers on the same path (a proxy in front of us, and us) disagree
 * about where a line, a header or a body ends. So wherever RFC 9112 lets a
 * recipient choose between tolerating and rejecting something that affects
 * framing, this file rejects it. Everything here is fuzzed (fuzz/http1_*).
 *
 * Grammar decisions for the request head (see http1.h for the grammar):
 *   - Line ends are CRLF or a bare LF (RFC 9112 §2.2 allows accepting LF, and
 *     LF is unambiguous: no proxy treats it as anything but a line end). A
 *     bare CR, one not followed by LF, is malformed: some implementations
 *     treat it as a line end and some as data, which is a smuggling vector.
 *   - One empty line before the request line is skipped (§2.2: some clients
 *     send CRLF after a POST body); a second one makes the method empty.
 *   - Method and field names are 1*tchar. Anything else (space, '/', '@',
 *     '"', CTLs, obs-text...) is malformed, so nothing can hide in a name.
 *   - Exactly one SP between the parts of the request line: "GET  /" is
 *     malformed (§3 permits lenient whitespace parsing; we don't).
 *   - The target is 1*(0x21-0x7e / 0x80-0xff): no CTL, SP or DEL. Its form
 *     (origin-form, absolute-form...) is the router's business.
 *   - The version is exactly "HTTP/1." DIGIT ("HTTP/1.10", "http/1.1",
 *     "HTTP/2.0" are malformed); 1.2-1.9 are reported as 1.1, the highest
 *     minor version we implement (RFC 9110 §2.5).
 *   - No whitespace between a field name and ':' (§5.1 MUST reject): a proxy
 *     may otherwise forward "Content-Length :" that we would honour.
 *   - No obs-fold: a field line starting with SP or HTAB is malformed (§5.2
 *     allows rejecting), and so is whitespace before the first field (§2.2).
 *   - Field values are *(VCHAR / SP / HTAB / obs-text): NUL, CR, LF and the
 *     other CTLs and DEL are malformed (§5.5 says MUST reject or replace CR,
 *     LF, NUL; replacing would make us disagree with whoever forwarded it).
 *   - More than HTTP1_MAX_HEADERS fields: HTTP1_TOO_MANY_HEADERS (431).
 *   - Framing checked once the head is complete (RFC 9112 §6): at most one
 *     Content-Length field, and its value must be 1*DIGIT without overflow
 *     (so "5, 5", "+5", " 5" or two fields all fail); never both
 *     Content-Length and Transfer-Encoding; no Transfer-Encoding in HTTP/1.0
 *     (§6.1); at most one Transfer-Encoding field, and its last coding must
 *     be "chunked" (§6.3: otherwise the body length is unknowable). Other
 *     codings before "chunked" are left to the caller (501).
 *
 * Chunked bodies: strict CRLF everywhere (a bare LF or bare CR in the chunk
 * framing is malformed: this is the "funky chunks" class of bugs, where
 * parsers disagree on where a chunk-size line ends); the size is 1*HEXDIG
 * with no sign, no "0x", no leading whitespace and no overflow of size_t;
 * after the size only BWS ";" extensions or CRLF may follow; an extension may
 * hold any byte but CTLs (HTAB allowed) and is skipped; the data must be
 * followed by exactly CRLF; trailer fields must be tchar-name ":" value lines
 * and are skipped. A size line (with extensions) is capped at
 * CHUNK_LINE_MAX bytes and the whole trailer section at CHUNK_TRAILER_MAX,
 * so a peer cannot make us spin over endless non-payload bytes.
 *
 * Forms: '&' separates pairs, the first '=' splits a pair, '+' is a space,
 * and '%' must be followed by two hex digits (WHATWG would pass "%zz" through
 * literally; we refuse it so that a typo in a topic is an error, not a silent
 * mismatch). The whole string is validated before the first callback, so a
 * caller sees either every pair or none. The decoding itself is
 * http1_pct_decode(), the one percent-decoder of the project (the router
 * decodes path segments with it too).
 *
 * Reads never go past buf + len; nothing here allocates or keeps state
 * outside the caller's structs.
 */
#include "http1.h"

#include <assert.h>
#include <string.h>

/* A chunk-size line, extensions included, longer than this is refused: real
 * clients send a few hex digits and no extensions at all. */
#define CHUNK_LINE_MAX 4096
/* The whole trailer section is capped too (we skip trailers anyway). */
#define CHUNK_TRAILER_MAX 8192

/* ---- character classes ---------------------------------------------------- */

/* tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 *         "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA   (RFC 9110 §5.6.2) */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return 1;
    default:
        return 0;
    }
}

/* VCHAR / obs-text: what a request-target may contain. */
static int is_target_char(unsigned char c) { return c > 0x20 && c != 0x7f; }

/* VCHAR / SP / HTAB / obs-text: what a field value (or a chunk extension) may
 * contain. Everything else is a CTL (NUL, CR, LF, DEL, ...). */
static int is_value_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

static int is_ows(unsigned char c) { return c == ' ' || c == '\t'; }

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* ---- request head --------------------------------------------------------- */

/* The head parser is a cursor over [p, end). Each helper advances *pp on
 * success and returns 0, or returns HTTP1_INCOMPLETE when it ran out of bytes
 * before it could decide, or HTTP1_MALFORMED. Deciding only on bytes already
 * seen is what makes a prefix of a request give INCOMPLETE and never a
 * different verdict. */

/* Consumes a line end: CRLF or a bare LF. A CR followed by anything else is a
 * bare CR, which is malformed. */
static int parse_eol(const char **pp, const char *end)
{
    const char *p = *pp;
    if (p == end)
        return HTTP1_INCOMPLETE;
    if (*p == '\n') {
        *pp = p + 1;
        return 0;
    }
    if (*p != '\r')
        return HTTP1_MALFORMED;
    if (end - p < 2)
        return HTTP1_INCOMPLETE;
    if (p[1] != '\n')
        return HTTP1_MALFORMED;
    *pp = p + 2;
    return 0;
}

/* Consumes 1*tchar; the byte after it is left for the caller to judge. */
static int parse_token(const char **pp, const char *end, const char **tok, size_t *tok_len)
{
    const char *p = *pp;
    while (p != end && is_tchar((unsigned char)*p))
        p++;
    if (p == end)
        return HTTP1_INCOMPLETE;
    if (p == *pp)
        return HTTP1_MALFORMED; /* empty method or field name */
    *tok = *pp;
    *tok_len = (size_t)(p - *pp);
    *pp = p;
    return 0;
}

/* Consumes exactly one SP. */
static int parse_sp(const char **pp, const char *end)
{
    if (*pp == end)
        return HTTP1_INCOMPLETE;
    if (**pp != ' ')
        return HTTP1_MALFORMED;
    (*pp)++;
    return 0;
}

static int parse_target(const char **pp, const char *end, http1_request_t *req)
{
    const char *p = *pp;
    while (p != end && is_target_char((unsigned char)*p))
        p++;
    if (p == end)
        return HTTP1_INCOMPLETE;
    if (p == *pp)
        return HTTP1_MALFORMED; /* missing target, or a second SP */
    req->target = *pp;
    req->target_len = (size_t)(p - *pp);
    *pp = p;
    return 0;
}

/* "HTTP/1." DIGIT, compared byte by byte so that a short buffer is
 * INCOMPLETE only while it is still a prefix of a valid version. */
static int parse_version(const char **pp, const char *end, http1_request_t *req)
{
    static const char prefix[] = "HTTP/1.";
    const char *p = *pp;
    for (size_t i = 0; i < sizeof prefix - 1; i++, p++) {
        if (p == end)
            return HTTP1_INCOMPLETE;
        if (*p != prefix[i])
            return HTTP1_MALFORMED;
    }
    if (p == end)
        return HTTP1_INCOMPLETE;
    if (*p < '0' || *p > '9')
        return HTTP1_MALFORMED;
    /* 1.2-1.9 are answered as 1.1 (RFC 9110 §2.5); "1.10" fails at the
     * line end check that follows. */
    req->minor_version = *p == '0' ? 0 : 1;
    *pp = p + 1;
    return 0;
}

static int parse_request_line(const char **pp, const char *end, http1_request_t *req)
{
    int r;
    if ((r = parse_token(pp, end, &req->method, &req->method_len)) != 0)
        return r;
    if ((r = parse_sp(pp, end)) != 0)
        return r;
    if ((r = parse_target(pp, end, req)) != 0)
        return r;
    if ((r = parse_sp(pp, end)) != 0)
        return r;
    if ((r = parse_version(pp, end, req)) != 0)
        return r;
    return parse_eol(pp, end);
}

/* field-value OWS line-end, after the ':' and the leading OWS. Trailing OWS is
 * trimmed by remembering where the last non-OWS byte was. */
static int parse_field_value(const char **pp, const char *end, http1_header_t *h)
{
    const char *p = *pp;
    while (p != end && is_ows((unsigned char)*p))
        p++;
    const char *start = p, *last = p; /* last: one past the last non-OWS byte */
    for (; p != end; p++) {
        unsigned char c = (unsigned char)*p;
        if (!is_value_char(c))
            break;
        if (!is_ows(c))
            last = p + 1;
    }
    if (p == end)
        return HTTP1_INCOMPLETE;
    if (*p != '\r' && *p != '\n')
        return HTTP1_MALFORMED; /* NUL, DEL or another CTL in the value */
    int r = parse_eol(&p, end);
    if (r != 0)
        return r;
    h->value = start;
    h->value_len = (size_t)(last - start);
    *pp = p;
    return 0;
}

static int parse_field_line(const char **pp, const char *end, http1_header_t *h)
{
    int r = parse_token(pp, end, &h->name, &h->name_len);
    if (r != 0)
        return r;
    if (**pp != ':')
        return HTTP1_MALFORMED; /* space before ':', or a non-tchar in the name */
    (*pp)++;
    return parse_field_value(pp, end, h);
}

/* Is the last element of a comma-separated list equal to `token`? */
static int last_list_element_is(const char *v, size_t len, const char *token)
{
    size_t end = len;
    while (end > 0 && (is_ows((unsigned char)v[end - 1]) || v[end - 1] == ','))
        end--; /* "chunked ," still ends in chunked: empty elements don't count */
    size_t start = end;
    while (start > 0 && v[start - 1] != ',')
        start--;
    while (start < end && is_ows((unsigned char)v[start]))
        start++;
    return http1_token_eq(v + start, end - start, token);
}

/* The message-framing rules of RFC 9112 §6, checked on the complete head so
 * that no caller can forget them (see the top of this file). */
static int check_framing(const http1_request_t *req)
{
    const http1_header_t *cl = NULL, *te = NULL;
    for (size_t i = 0; i < req->num_headers; i++) {
        const http1_header_t *h = &req->headers[i];
        if (http1_token_eq(h->name, h->name_len, "content-length")) {
            if (cl)
                return HTTP1_MALFORMED;
            cl = h;
        } else if (http1_token_eq(h->name, h->name_len, "transfer-encoding")) {
            if (te)
                return HTTP1_MALFORMED;
            te = h;
        }
    }
    if (cl) {
        uint64_t n;
        if (te || http1_parse_content_length(cl->value, cl->value_len, &n) != 0)
            return HTTP1_MALFORMED;
    }
    if (te) {
        if (req->minor_version == 0)
            return HTTP1_MALFORMED;
        if (!last_list_element_is(te->value, te->value_len, "chunked"))
            return HTTP1_MALFORMED;
    }
    return 0;
}

ssize_t http1_parse_request(const char *buf, size_t len, http1_request_t *req)
{
    if (len == 0)
        return HTTP1_INCOMPLETE; /* and buf may be NULL: no arithmetic on it */
    const char *p = buf, *end = buf + len;
    int r;

    req->num_headers = 0;
    /* RFC 9112 §2.2: ignore one empty line before the request line. */
    if (*p == '\r' || *p == '\n') {
        if ((r = parse_eol(&p, end)) != 0)
            return r;
    }
    if ((r = parse_request_line(&p, end, req)) != 0)
        return r;

    for (;;) {
        if (p == end)
            return HTTP1_INCOMPLETE;
        if (*p == '\r' || *p == '\n')
            break; /* the empty line that ends the head */
        if (is_ows((unsigned char)*p))
            return HTTP1_MALFORMED; /* obs-fold, or whitespace before field 1 */
        if (req->num_headers == HTTP1_MAX_HEADERS)
            return HTTP1_TOO_MANY_HEADERS;
        if ((r = parse_field_line(&p, end, &req->headers[req->num_headers])) != 0)
            return r;
        req->num_headers++;
    }
    if ((r = parse_eol(&p, end)) != 0)
        return r;
    if ((r = check_framing(req)) != 0)
        return r;
    return (ssize_t)(p - buf);
}

/* ---- the same grammar, one byte at a time ----------------------------------
 *
 * http1_parse_request_resume() runs this automaton over the bytes it has not
 * seen, and the stateless parser above once, on the whole head, when the
 * automaton reaches HS_DONE (which fills `req` and checks the framing). The
 * automaton must therefore stop at exactly the byte where the parser above
 * stops: each state below is annotated with the code it mirrors, and the
 * fuzz target (fuzz/http1_request_fuzz.c) compares the two at every prefix
 * of its inputs, over byte-by-byte and random splits.
 *
 * Why not save the parser's own progress (the element being parsed and the
 * fields found so far)? Its results are pointers, which a buffer that moves
 * (conn.c reallocs its read buffer) would leave dangling; offsets would
 * mean 1.6 KiB of state per connection. This state is 16 bytes, and the
 * second pass over a complete head is no worse than what any single read
 * of it costs. A stateless "where is the blank line?" scan in the manner
 * of picohttpparser's last_len would be cheaper still, but would find a
 * malformed request line only once the whole head had arrived. */
enum {
    HS_START = 0, /* first byte: CR/LF of the one skipped empty line, or the method */
    HS_LEAD_LF,   /* saw the CR of that empty line (parse_eol) */
    HS_METHOD0,   /* the method's first byte, after the empty line (parse_token) */
    HS_METHOD,    /* in the method: tchar, or the SP after it (parse_sp) */
    HS_TARGET0,   /* the target's first byte (parse_target: empty is malformed) */
    HS_TARGET,    /* in the target: target chars, or the SP after it */
    HS_VERSION,   /* in "HTTP/1." DIGIT, _version_i bytes matched (parse_version) */
    HS_RL_EOL,    /* after the version digit: CR or LF (parse_eol) */
    HS_RL_LF,     /* saw the CR ending the request line */
    HS_LINE,      /* start of a field line, or of the final empty line (the loop) */
    HS_NAME,      /* in a field name: tchar, or the ':' (parse_field_line) */
    HS_VALUE,     /* after the ':': OWS and value bytes up to CR or LF */
    HS_FIELD_LF,  /* saw the CR ending a field line */
    HS_END_LF,    /* saw the CR of the final empty line */
    HS_DONE,      /* the head is complete: _pos is its length */
};

#ifdef HTTP1_COUNT_SCAN
static uint64_t http1__scanned; /* bytes examined by resume (both passes), tests only */
#define COUNT_SCANNED(n) (http1__scanned += (n))
#else
#define COUNT_SCANNED(n) ((void)0)
#endif

/* One byte in state st: the next state, or an HTTP1_* error. */
static int hs_step(http1_head_scan_t *s, int st, unsigned char c)
{
    switch (st) {
    case HS_START:
        if (c == '\r')
            return HS_LEAD_LF;
        if (c == '\n')
            return HS_METHOD0;
        return is_tchar(c) ? HS_METHOD : HTTP1_MALFORMED;
    case HS_LEAD_LF:
    case HS_RL_LF:
        if (c != '\n')
            return HTTP1_MALFORMED; /* bare CR */
        return st == HS_LEAD_LF ? HS_METHOD0 : HS_LINE;
    case HS_METHOD0:
        return is_tchar(c) ? HS_METHOD : HTTP1_MALFORMED; /* empty method */
    case HS_METHOD:
        if (is_tchar(c))
            return HS_METHOD;
        return c == ' ' ? HS_TARGET0 : HTTP1_MALFORMED;
    case HS_TARGET0:
        return is_target_char(c) ? HS_TARGET : HTTP1_MALFORMED; /* empty, or a second SP */
    case HS_TARGET:
        if (is_target_char(c))
            return HS_TARGET;
        s->_version_i = 0;
        return c == ' ' ? HS_VERSION : HTTP1_MALFORMED;
    case HS_VERSION:
        if (s->_version_i < 7) {
            if (c != (unsigned char)"HTTP/1."[s->_version_i])
                return HTTP1_MALFORMED;
            s->_version_i++;
            return HS_VERSION;
        }
        return (c >= '0' && c <= '9') ? HS_RL_EOL : HTTP1_MALFORMED;
    case HS_RL_EOL:
        if (c == '\n')
            return HS_LINE;
        return c == '\r' ? HS_RL_LF : HTTP1_MALFORMED;
    case HS_LINE:
        if (c == '\r')
            return HS_END_LF;
        if (c == '\n')
            return HS_DONE;
        if (is_ows(c))
            return HTTP1_MALFORMED; /* obs-fold, or whitespace before field 1 */
        if (s->_num_headers == HTTP1_MAX_HEADERS)
            return HTTP1_TOO_MANY_HEADERS; /* checked before the name, as above */
        return is_tchar(c) ? HS_NAME : HTTP1_MALFORMED;
    case HS_NAME:
        if (is_tchar(c))
            return HS_NAME;
        return c == ':' ? HS_VALUE : HTTP1_MALFORMED;
    case HS_VALUE:
        if (is_value_char(c))
            return HS_VALUE;
        if (c == '\n') {
            s->_num_headers++;
            return HS_LINE;
        }
        return c == '\r' ? HS_FIELD_LF : HTTP1_MALFORMED; /* a CTL in the value */
    case HS_FIELD_LF:
        if (c != '\n')
            return HTTP1_MALFORMED;
        s->_num_headers++;
        return HS_LINE;
    case HS_END_LF:
        return c == '\n' ? HS_DONE : HTTP1_MALFORMED;
    default:
        return HTTP1_MALFORMED; /* a corrupt scan state */
    }
}

ssize_t http1_parse_request_resume(http1_head_scan_t *scan, const char *buf, size_t len, http1_request_t *req)
{
    if (scan->_error)
        return scan->_error;
    if (len < scan->_pos)
        *scan = (http1_head_scan_t){0}; /* not what the contract allows: start over */
    int st = scan->_state;
    size_t i = scan->_pos;
    /* The long runs (target, values) take the tight loop; everything else
     * goes through hs_step. */
    while (i < len && st != HS_DONE) {
        if (st == HS_VALUE) {
            while (i < len && is_value_char((unsigned char)buf[i]))
                i++;
            if (i == len)
                break;
        } else if (st == HS_TARGET) {
            while (i < len && is_target_char((unsigned char)buf[i]))
                i++;
            if (i == len)
                break;
        }
        st = hs_step(scan, st, (unsigned char)buf[i]);
        if (st < 0) {
            COUNT_SCANNED(i + 1 - scan->_pos);
            scan->_error = (int8_t)st;
            scan->_pos = i;
            return st;
        }
        i++;
    }
    COUNT_SCANNED(i - scan->_pos);
    scan->_pos = i;
    scan->_state = (uint8_t)st;
    if (st != HS_DONE)
        return HTTP1_INCOMPLETE;
    /* Complete: the stateless parser fills req and checks the framing. It
     * stops at the same byte (asserted: the two grammars must agree). */
    COUNT_SCANNED(i);
    ssize_t r = http1_parse_request(buf, i, req);
    assert(r == (ssize_t)i || r == HTTP1_MALFORMED);
    if (r < 0)
        scan->_error = (int8_t)r;
    return r;
}

/* ---- header helpers ------------------------------------------------------- */

int http1_token_eq(const char *p, size_t len, const char *lit)
{
    /* Walk both at once: p may hold NULs, lit ends at its first. */
    for (size_t i = 0; i < len; i++) {
        if (lit[i] == '\0')
            return 0;
        if (ascii_lower((unsigned char)p[i]) != ascii_lower((unsigned char)lit[i]))
            return 0;
    }
    return lit[len] == '\0';
}

const http1_header_t *http1_find_header(const http1_request_t *req, const char *name)
{
    for (size_t i = 0; i < req->num_headers; i++) {
        const http1_header_t *h = &req->headers[i];
        if (http1_token_eq(h->name, h->name_len, name))
            return h;
    }
    return NULL;
}

int http1_value_has_token(const char *v, size_t len, const char *token)
{
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t stop = i;
        while (start < stop && is_ows((unsigned char)v[start]))
            start++;
        while (stop > start && is_ows((unsigned char)v[stop - 1]))
            stop--;
        if (stop > start && http1_token_eq(v + start, stop - start, token))
            return 1;
        i++; /* past the ',' (or past len, which ends the loop) */
    }
    return 0;
}

int http1_parse_content_length(const char *v, size_t len, uint64_t *out)
{
    if (len == 0)
        return -1;
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < '0' || c > '9')
            return -1;
        unsigned d = c - '0';
        if (n > (UINT64_MAX - d) / 10)
            return -1;
        n = n * 10 + d;
    }
    *out = n;
    return 0;
}

/* ---- chunked transfer coding ---------------------------------------------- */

/* Decoder states. 0 must be the start (a zeroed decoder is a fresh one). */
enum {
    CH_SIZE = 0, /* in the hex digits of a chunk-size */
    CH_SIZE_BWS, /* whitespace after the size: only ';' may follow */
    CH_EXT,      /* in chunk extensions, skipped up to CR */
    CH_SIZE_LF,  /* saw the CR ending a size line */
    CH_DATA,     /* copying chunk data */
    CH_DATA_CR,  /* expecting the CR after chunk data */
    CH_DATA_LF,  /* expecting the LF after chunk data */
    CH_TRAILER,  /* at the start of a trailer line (or the final CRLF) */
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF, /* saw the CR ending a trailer line */
    CH_END_LF,     /* saw the CR of the final empty line */
    CH_DONE,       /* body complete */
    CH_ERROR,      /* malformed; stays so */
};

/* Result of feeding one framing byte. */
enum { STEP_OK, STEP_BAD, STEP_DONE };

static int step_size(http1_chunked_decoder_t *d, unsigned char c)
{
    int v = hex_value(c);
    if (v >= 0) {
        if (d->_bytes_left_in_chunk > (SIZE_MAX >> 4))
            return STEP_BAD; /* the size would overflow size_t */
        d->_bytes_left_in_chunk = (d->_bytes_left_in_chunk << 4) | (size_t)v;
        d->_hex_count++;
        return STEP_OK;
    }
    if (d->_hex_count == 0)
        return STEP_BAD; /* no digits: "\r\n", " 1", "-1", "0x1"... */
    if (is_ows(c))
        d->_state = CH_SIZE_BWS;
    else if (c == ';')
        d->_state = CH_EXT;
    else if (c == '\r')
        d->_state = CH_SIZE_LF;
    else
        return STEP_BAD; /* bare LF, or junk after the digits */
    return STEP_OK;
}

static int step_size_bws(http1_chunked_decoder_t *d, unsigned char c)
{
    if (is_ows(c))
        return STEP_OK;
    if (c != ';')
        return STEP_BAD; /* "1 \r\n", "1 2": whitespace only before an extension */
    d->_state = CH_EXT;
    return STEP_OK;
}

static int step_ext(http1_chunked_decoder_t *d, unsigned char c)
{
    if (c == '\r')
        d->_state = CH_SIZE_LF;
    else if (!is_value_char(c))
        return STEP_BAD; /* bare LF, NUL, other CTLs */
    return STEP_OK;
}

static int step_size_lf(http1_chunked_decoder_t *d, unsigned char c)
{
    if (c != '\n')
        return STEP_BAD;
    d->_hex_count = 0;
    d->_line_len = 0; /* from here on it counts the trailer section */
    d->_state = d->_bytes_left_in_chunk ? CH_DATA : CH_TRAILER;
    return STEP_OK;
}

static int step_data_crlf(http1_chunked_decoder_t *d, unsigned char c)
{
    if (d->_state == CH_DATA_CR) {
        if (c != '\r')
            return STEP_BAD; /* the data is longer than its size said */
        d->_state = CH_DATA_LF;
        return STEP_OK;
    }
    if (c != '\n')
        return STEP_BAD;
    d->_state = CH_SIZE;
    d->_line_len = 0; /* the next size line starts */
    return STEP_OK;
}

static int step_trailer(http1_chunked_decoder_t *d, unsigned char c)
{
    switch (d->_state) {
    case CH_TRAILER:
        if (c == '\r') {
            d->_state = CH_END_LF;
            return STEP_OK;
        }
        if (!is_tchar(c))
            return STEP_BAD; /* obs-fold, empty name, bare LF */
        d->_state = CH_TRAILER_NAME;
        return STEP_OK;
    case CH_TRAILER_NAME:
        if (c == ':')
            d->_state = CH_TRAILER_VALUE;
        else if (!is_tchar(c))
            return STEP_BAD;
        return STEP_OK;
    case CH_TRAILER_VALUE:
        if (c == '\r')
            d->_state = CH_TRAILER_LF;
        else if (!is_value_char(c))
            return STEP_BAD;
        return STEP_OK;
    case CH_TRAILER_LF:
        if (c != '\n')
            return STEP_BAD;
        d->_state = CH_TRAILER;
        return STEP_OK;
    default: /* CH_END_LF */
        if (c != '\n')
            return STEP_BAD;
        d->_state = CH_DONE;
        return STEP_DONE;
    }
}

/* Feeds one byte of chunk framing (anything but chunk data). */
static int chunk_step(http1_chunked_decoder_t *d, unsigned char c)
{
    if (++d->_line_len > (d->_state >= CH_TRAILER ? CHUNK_TRAILER_MAX : CHUNK_LINE_MAX))
        return STEP_BAD;
    switch (d->_state) {
    case CH_SIZE:
        return step_size(d, c);
    case CH_SIZE_BWS:
        return step_size_bws(d, c);
    case CH_EXT:
        return step_ext(d, c);
    case CH_SIZE_LF:
        return step_size_lf(d, c);
    case CH_DATA_CR:
    case CH_DATA_LF:
        return step_data_crlf(d, c);
    case CH_TRAILER:
    case CH_TRAILER_NAME:
    case CH_TRAILER_VALUE:
    case CH_TRAILER_LF:
    case CH_END_LF:
        return step_trailer(d, c);
    default:
        return STEP_BAD; /* a corrupt decoder */
    }
}

ssize_t http1_chunked_decode(http1_chunked_decoder_t *d, char *buf, size_t *len)
{
    size_t n = *len, src = 0, dst = 0;

    if (d->_state == CH_ERROR) {
        *len = 0;
        return HTTP1_MALFORMED;
    }
    if (d->_state == CH_DONE) {
        *len = 0; /* nothing more belongs to this body: all of it is left over */
        return (ssize_t)n;
    }
    while (src < n) {
        if (d->_state == CH_DATA) {
            size_t take = n - src;
            if (take > d->_bytes_left_in_chunk)
                take = d->_bytes_left_in_chunk;
            if (dst != src)
                memmove(buf + dst, buf + src, take);
            src += take;
            dst += take;
            d->_bytes_left_in_chunk -= take;
            if (d->_bytes_left_in_chunk == 0)
                d->_state = CH_DATA_CR;
            continue;
        }
        int r = chunk_step(d, (unsigned char)buf[src++]);
        if (r == STEP_BAD) {
            d->_state = CH_ERROR;
            *len = dst;
            return HTTP1_MALFORMED;
        }
        if (r == STEP_DONE) {
            /* The next pipelined request follows the payload directly. */
            if (dst != src)
                memmove(buf + dst, buf + src, n - src);
            *len = dst;
            return (ssize_t)(n - src);
        }
    }
    *len = dst;
    return HTTP1_INCOMPLETE;
}

/* ---- application/x-www-form-urlencoded ------------------------------------ */

/* Every '%' must start a two-hex-digit escape. Checked over the whole string
 * first so that no callback runs for a string that turns out malformed, and
 * so that the decoding below needs no error paths (nor can an escape ever
 * swallow a '&' or '=' separator). */
static int form_validate(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%')
            continue;
        if (len - i < 3 || hex_value((unsigned char)s[i + 1]) < 0 || hex_value((unsigned char)s[i + 2]) < 0)
            return -1;
        i += 2;
    }
    return 0;
}

ssize_t http1_pct_decode(const char *in, size_t len, char *out, int flags)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '+' && (flags & HTTP1_PCT_PLUS_SPACE)) {
            c = ' ';
        } else if (c == '%') {
            /* Both digits must be inside the input: len - i > 2. */
            int hi = len - i > 2 ? hex_value((unsigned char)in[i + 1]) : -1;
            int lo = len - i > 2 ? hex_value((unsigned char)in[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0' && (flags & HTTP1_PCT_REJECT_NUL))
            return -1;
        out[o++] = c; /* o <= i: in place, this never overwrites unread input */
    }
    return (ssize_t)o;
}

/* Decodes a part of an already validated form: cannot fail. */
static size_t form_decode(const char *s, size_t len, char *out)
{
    ssize_t n = http1_pct_decode(s, len, out, HTTP1_PCT_PLUS_SPACE);
    assert(n >= 0);
    return (size_t)n;
}

int http1_parse_form(const char *s, size_t len, char *scratch, http1_form_pair_cb cb, void *ctx)
{
    if (len == 0)
        return 0; /* s and scratch may be NULL */
    if (form_validate(s, len) != 0)
        return -1;
    const char *p = s, *end = s + len;
    for (;;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (!amp)
            amp = end;
        if (amp != p) { /* empty pairs ("&&") are skipped */
            const char *eq = memchr(p, '=', (size_t)(amp - p));
            const char *name_end = eq ? eq : amp;
            const char *val = eq ? eq + 1 : amp;
            /* Each pair is decoded at its own offset, so earlier pairs stay
             * intact: name, then value, right after it. */
            char *out = scratch + (p - s);
            size_t nl = form_decode(p, (size_t)(name_end - p), out);
            size_t vl = form_decode(val, (size_t)(amp - val), out + nl);
            int r = cb(ctx, out, nl, out + nl, vl);
            if (r != 0)
                return r;
        }
        if (amp == end)
            return 0;
        p = amp + 1;
    }
}
