/*
 * httpc.c - see httpc.h.
 *
 * The response-head grammar mirrors http1.c's request grammar (CRLF or bare
 * LF line ends, a bare CR is malformed, no obs-fold, token field names,
 * values without control bytes), so the two parsers agree on what a line
 * is. It is written to be re-run on the growing buffer: every byte read is
 * guarded by NEED, which answers "incomplete" at the end of the input, so a
 * prefix of a valid head is never an error.
 *
 * Buffers: one read buffer of HTTPC_MAX_HEAD + 4 KiB per connection, kept
 * until close; the head is copied once (so its pointers survive body reads).
 */
#include "httpc.h"

#include "buildinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_CAP (HTTPC_MAX_HEAD + 4096)
#define SLICE_MS 200 /* longest poll() between two looks at *cancel */

/* ---- URL ------------------------------------------------------------------------ */

static int is_host_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

int httpc_parse_url(const char *url, httpc_url_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    if (!strncasecmp(url, "https://", 8)) {
        *why = "https:// is not supported yet (plain http:// only, until courant speaks TLS)";
        return -1;
    }
    if (strncasecmp(url, "http://", 7) != 0) {
        *why = "the URL must start with http://";
        return -1;
    }
    const char *a = url + 7, *a_end = a + strcspn(a, "/?#");
    if (memchr(a, '@', (size_t)(a_end - a))) {
        *why = "user:password@ in the URL is not supported (use --token)";
        return -1;
    }
    const char *h = a, *h_end, *port = NULL;
    if (*a == '[') {
        h = a + 1;
        h_end = memchr(h, ']', (size_t)(a_end - h));
        if (!h_end || !memchr(h, ':', (size_t)(h_end - h))) {
            *why = "bad IPv6 address in the URL (write it as [::1])";
            return -1;
        }
        for (const char *p = h; p < h_end; p++)
            if (!(is_host_char((unsigned char)*p) || *p == ':' || *p == '%')) {
                *why = "bad IPv6 address in the URL";
                return -1;
            }
        if (h_end + 1 < a_end) {
            if (h_end[1] != ':') {
                *why = "unexpected characters after the IPv6 address";
                return -1;
            }
            port = h_end + 2;
        }
    } else {
        h_end = memchr(a, ':', (size_t)(a_end - a));
        if (h_end)
            port = h_end + 1;
        else
            h_end = a_end;
        for (const char *p = h; p < h_end; p++)
            if (!is_host_char((unsigned char)*p)) {
                *why = "bad host name in the URL";
                return -1;
            }
    }
    size_t hlen = (size_t)(h_end - h);
    if (hlen == 0 || hlen >= sizeof(out->host)) {
        *why = hlen ? "host name too long" : "the URL has no host";
        return -1;
    }
    memcpy(out->host, h, hlen);
    out->port = 80;
    if (port) {
        long n = 0;
        if (port == a_end || a_end - port > 5) {
            *why = "bad port in the URL";
            return -1;
        }
        for (const char *p = port; p < a_end; p++) {
            if (*p < '0' || *p > '9') {
                *why = "bad port in the URL";
                return -1;
            }
            n = n * 10 + (*p - '0');
        }
        if (n < 1 || n > 65535) {
            *why = "bad port in the URL";
            return -1;
        }
        out->port = (int)n;
    }
    int v6 = memchr(out->host, ':', hlen) != NULL;
    if (out->port == 80)
        snprintf(out->authority, sizeof(out->authority), v6 ? "[%s]" : "%s", out->host);
    else
        snprintf(out->authority, sizeof(out->authority), v6 ? "[%s]:%d" : "%s:%d", out->host, out->port);
    const char *t = a_end, *t_end = t + strcspn(t, "#");
    size_t k = 0;
    if (*t != '/')
        out->target[k++] = '/';
    if ((size_t)(t_end - t) + k >= sizeof(out->target)) {
        *why = "the URL is too long";
        return -1;
    }
    for (const char *p = t; p < t_end; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f) {
            *why = "the URL contains a space or a control character (percent-encode it)";
            return -1;
        }
        out->target[k++] = *p;
    }
    out->target[k] = 0;
    return 0;
}

/* ---- the response head ------------------------------------------------------------- */

static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_value_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

#define NEED()                       \
    do {                             \
        if (p == end)                \
            return HTTPC_INCOMPLETE; \
    } while (0)

/* A line end at *pp: CRLF or LF. Returns 1 (consumed), 0 (not one) or an HTTPC_* code. */
static int eol(const char **pp, const char *end)
{
    const char *p = *pp;
    NEED();
    if (*p == '\n') {
        *pp = p + 1;
        return 1;
    }
    if (*p != '\r')
        return 0;
    p++;
    NEED();
    if (*p != '\n')
        return HTTPC_ERROR; /* a bare CR */
    *pp = p + 1;
    return 1;
}

/* The rest of a line at *pp: field-value characters (the reason phrase, a
 * field's value), then its CRLF or LF. Returns 0 with *pp past the line end
 * and *text_end at the CR or LF, or an HTTPC_* code (a character a value
 * may not hold, a bare CR, no line end yet). */
static int rest_of_line(const char **pp, const char *end, const char **text_end)
{
    const char *p = *pp;
    for (;;) {
        NEED();
        if (*p == '\r' || *p == '\n')
            break;
        if (!is_value_char((unsigned char)*p))
            return HTTPC_ERROR;
        p++;
    }
    *text_end = p;
    int r = eol(&p, end); /* never 0: p is at a CR or LF */
    if (r != 1)
        return r == 0 ? HTTPC_ERROR : r;
    *pp = p;
    return 0;
}

static int parse_status_line(const char **pp, const char *end, httpc_head_t *h)
{
    static const char lit[] = "HTTP/1.";
    const char *p = *pp;
    for (size_t i = 0; i < sizeof(lit) - 1; i++, p++) {
        NEED();
        if (*p != lit[i])
            return HTTPC_ERROR;
    }
    NEED();
    if (*p < '0' || *p > '9')
        return HTTPC_ERROR;
    h->minor_version = *p++ - '0';
    NEED();
    if (*p++ != ' ')
        return HTTPC_ERROR;
    h->status = 0;
    for (int i = 0; i < 3; i++, p++) {
        NEED();
        if (*p < '0' || *p > '9')
            return HTTPC_ERROR;
        h->status = h->status * 10 + (*p - '0');
    }
    if (h->status < 100)
        return HTTPC_ERROR;
    NEED();
    if (*p == ' ')
        p++;
    h->reason = p;
    const char *r_end;
    int r = rest_of_line(&p, end, &r_end);
    if (r)
        return r;
    h->reason_len = (size_t)(r_end - h->reason);
    *pp = p;
    return 0;
}

static int parse_field(const char **pp, const char *end, httpc_header_t *f)
{
    const char *p = *pp;
    f->name = p;
    for (;;) {
        NEED();
        if (*p == ':')
            break;
        if (!is_tchar((unsigned char)*p))
            return HTTPC_ERROR; /* includes SP before ':' and obs-fold */
        p++;
    }
    f->name_len = (size_t)(p - f->name);
    if (f->name_len == 0)
        return HTTPC_ERROR;
    p++;
    for (;;) {
        NEED();
        if (*p != ' ' && *p != '\t')
            break;
        p++;
    }
    f->value = p;
    const char *v_end;
    int r = rest_of_line(&p, end, &v_end);
    if (r)
        return r;
    while (v_end > f->value && (v_end[-1] == ' ' || v_end[-1] == '\t'))
        v_end--;
    f->value_len = (size_t)(v_end - f->value);
    *pp = p;
    return 0;
}

ssize_t httpc_parse_head(const char *buf, size_t len, httpc_head_t *h)
{
    const char *p = buf, *end = buf + len;
    h->num_headers = 0;
    int r = parse_status_line(&p, end, h);
    if (r)
        return r;
    for (;;) {
        r = eol(&p, end);
        if (r == 1)
            return p - buf;
        if (r < 0)
            return r;
        if (h->num_headers == HTTPC_MAX_HEADERS)
            return HTTPC_ERROR;
        r = parse_field(&p, end, &h->headers[h->num_headers]);
        if (r)
            return r;
        h->num_headers++;
    }
}

const httpc_header_t *httpc_find_header(const httpc_head_t *h, const char *name)
{
    for (size_t i = 0; i < h->num_headers; i++)
        if (http1_token_eq(h->headers[i].name, h->headers[i].name_len, name))
            return &h->headers[i];
    return NULL;
}

/* ---- waiting and the plain transport ------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for `events`: 0, or HTTPC_TIMEOUT / HTTPC_CANCELLED / HTTPC_ERROR. */
static int wait_fd(httpc_conn_t *c, short events, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        if (c->cancel && *c->cancel)
            return HTTPC_CANCELLED;
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return HTTPC_TIMEOUT;
        struct pollfd pfd = {.fd = c->fd, .events = events};
        int n = poll(&pfd, 1, left < SLICE_MS ? (int)left : SLICE_MS);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return HTTPC_ERROR;
    }
}

static ssize_t plain_read(httpc_conn_t *c, char *buf, size_t len) { return recv(c->fd, buf, len, 0); }

static ssize_t plain_write(httpc_conn_t *c, const char *buf, size_t len)
{
    return send(c->fd, buf, len, MSG_NOSIGNAL);
}

/* ---- connecting ------------------------------------------------------------------------ */

static int connect_one(httpc_conn_t *c, const struct addrinfo *ai, int timeout_ms)
{
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return -1;
    int r = wait_fd(c, POLLOUT, timeout_ms);
    if (r == HTTPC_TIMEOUT)
        errno = ETIMEDOUT;
    else if (r == HTTPC_CANCELLED)
        errno = ECANCELED;
    if (r)
        return -1;
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
        errno = err ? err : errno;
        return -1;
    }
    return 0;
}

int httpc_open(httpc_conn_t *c, const httpc_url_t *u, volatile sig_atomic_t *cancel, int timeout_ms,
               char *why, size_t cap)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->cancel = cancel;
    c->_read = plain_read;
    c->_write = plain_write;
    if (!(c->_buf = malloc(BUF_CAP))) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    c->_cap = BUF_CAP;
    char port[8];
    snprintf(port, sizeof(port), "%d", u->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int gai = getaddrinfo(u->host, port, &hints, &res);
    if (gai) {
        snprintf(why, cap, "cannot resolve %s: %s", u->host, gai_strerror(gai));
        return -1;
    }
    int err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (connect_one(c, ai, timeout_ms) == 0) {
            freeaddrinfo(res);
            return 0;
        }
        err = errno;
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        if (err == ECANCELED)
            break;
    }
    freeaddrinfo(res);
    snprintf(why, cap, "cannot connect to %s: %s", u->authority, strerror(err));
    return -1;
}

char *httpc_format_request(const char *method, const httpc_url_t *u, const char *extra_headers,
                           size_t body_len)
{
    char *s = NULL;
    int with_length = body_len > 0 || !strcmp(method, "POST");
    char length[48] = "";
    if (with_length)
        snprintf(length, sizeof(length), "Content-Length: %zu\r\n", body_len);
    if (asprintf(&s, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: courant/%s\r\n%s%s\r\n", method, u->target,
                 u->authority, courant_version(), extra_headers, length) < 0)
        return NULL;
    return s;
}

int httpc_send(httpc_conn_t *c, const char *buf, size_t len, int timeout_ms)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = c->_write(c, buf + off, len - off);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return HTTPC_ERROR;
        int r = wait_fd(c, POLLOUT, timeout_ms);
        if (r)
            return r;
    }
    return 0;
}

/* ---- reading ------------------------------------------------------------------------------ */

/* Reads what is available into the buffer's free space (waiting for it).
 * Returns bytes read, 0 at EOF, or a negative HTTPC_* code. */
static ssize_t fill(httpc_conn_t *c, int timeout_ms)
{
    for (;;) {
        ssize_t n = c->_read(c, c->_buf + c->_len, c->_cap - c->_len);
        if (n >= 0) {
            c->_len += (size_t)n;
            return n;
        }
        if (errno != EAGAIN && errno != EINTR)
            return HTTPC_ERROR;
        int r = wait_fd(c, POLLIN, timeout_ms);
        if (r)
            return r;
    }
}

/* The last coding of a Transfer-Encoding value is "chunked". */
static int is_chunked(const httpc_header_t *te)
{
    const char *v = te->value, *comma = v;
    for (const char *p = v; p < v + te->value_len; p++)
        if (*p == ',')
            comma = p + 1;
    while (comma < v + te->value_len && (*comma == ' ' || *comma == '\t'))
        comma++;
    return http1_token_eq(comma, (size_t)(v + te->value_len - comma), "chunked");
}

static int set_framing(httpc_conn_t *c, const httpc_head_t *h, char *why, size_t cap)
{
    const httpc_header_t *te = httpc_find_header(h, "Transfer-Encoding");
    const httpc_header_t *cl = httpc_find_header(h, "Content-Length");
    if ((h->status >= 100 && h->status < 200) || h->status == 204 || h->status == 304) {
        c->_framing = HTTPC_BODY_LENGTH;
        c->_body_done = 1;
    } else if (te) {
        if (!is_chunked(te)) {
            snprintf(why, cap, "unsupported Transfer-Encoding");
            return HTTPC_ERROR;
        }
        c->_framing = HTTPC_BODY_CHUNKED;
    } else if (cl) {
        if (http1_parse_content_length(cl->value, cl->value_len, &c->_remaining)) {
            snprintf(why, cap, "malformed Content-Length");
            return HTTPC_ERROR;
        }
        c->_framing = HTTPC_BODY_LENGTH;
        c->_body_done = c->_remaining == 0;
    } else {
        c->_framing = HTTPC_BODY_CLOSE;
    }
    return 0;
}

int httpc_read_head(httpc_conn_t *c, httpc_head_t *h, int timeout_ms, char *why, size_t cap)
{
    for (;;) {
        ssize_t hl = httpc_parse_head(c->_buf, c->_len, h);
        if (hl == HTTPC_ERROR) {
            snprintf(why, cap, "malformed response head");
            return HTTPC_ERROR;
        }
        if (hl > 0) {
            if (!(c->_head = malloc((size_t)hl))) {
                snprintf(why, cap, "out of memory");
                return HTTPC_ERROR;
            }
            memcpy(c->_head, c->_buf, (size_t)hl);
            (void)httpc_parse_head(c->_head, (size_t)hl, h); /* point into the copy */
            c->_len -= (size_t)hl;
            memmove(c->_buf, c->_buf + hl, c->_len);
            return set_framing(c, h, why, cap);
        }
        if (c->_len >= HTTPC_MAX_HEAD) {
            snprintf(why, cap, "response head larger than %d bytes", HTTPC_MAX_HEAD);
            return HTTPC_ERROR;
        }
        ssize_t n = fill(c, timeout_ms);
        if (n == 0) {
            snprintf(why, cap, "the server closed the connection before answering");
            return HTTPC_ERROR;
        }
        if (n < 0) {
            snprintf(why, cap, "%s", n == HTTPC_TIMEOUT ? "no answer in time" : strerror(errno));
            return (int)n;
        }
    }
}

/* Moves up to `cap` buffered bytes into out. */
static size_t take(httpc_conn_t *c, char *out, size_t cap)
{
    size_t n = c->_len < cap ? c->_len : cap;
    memcpy(out, c->_buf, n);
    c->_len -= n;
    memmove(c->_buf, c->_buf + n, c->_len);
    return n;
}

ssize_t httpc_read_body(httpc_conn_t *c, char *out, size_t cap, int timeout_ms)
{
    while (!c->_body_done && cap > 0) {
        if (c->_len > 0) {
            if (c->_framing == HTTPC_BODY_LENGTH) {
                size_t n = take(c, out, c->_remaining < cap ? (size_t)c->_remaining : cap);
                c->_remaining -= n;
                c->_body_done = c->_remaining == 0;
                return (ssize_t)n;
            }
            if (c->_framing == HTTPC_BODY_CLOSE)
                return (ssize_t)take(c, out, cap);
            size_t n = take(c, out, cap);
            ssize_t r = http1_chunked_decode(&c->_chunked, out, &n);
            if (r == HTTP1_MALFORMED)
                return HTTPC_ERROR;
            if (r >= 0)
                c->_body_done = 1; /* bytes after the body are ignored: one request per connection */
            if (n > 0)
                return (ssize_t)n;
            continue;
        }
        ssize_t n = fill(c, timeout_ms);
        if (n == 0) {
            if (c->_framing != HTTPC_BODY_CLOSE)
                return HTTPC_ERROR; /* closed in the middle of a framed body */
            c->_body_done = 1;
        } else if (n < 0) {
            return n;
        }
    }
    return 0;
}

ssize_t httpc_read_all(httpc_conn_t *c, char **out, size_t max, int timeout_ms)
{
    size_t len = 0, cap = 4096;
    char *s = malloc(cap + 1);
    if (!s)
        return HTTPC_ERROR;
    for (;;) {
        if (len == cap) {
            if (c->_body_done)
                break;
            if (cap >= max) {
                free(s);
                return HTTPC_ERROR;
            }
            cap = cap * 2 > max ? max : cap * 2;
            char *t = realloc(s, cap + 1);
            if (!t) {
                free(s);
                return HTTPC_ERROR;
            }
            s = t;
        }
        ssize_t n = httpc_read_body(c, s + len, cap - len, timeout_ms);
        if (n < 0) {
            free(s);
            return n;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    s[len] = 0;
    *out = s;
    return (ssize_t)len;
}

void httpc_close(httpc_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->_buf);
    free(c->_head);
    c->_buf = c->_head = NULL;
    c->_len = c->_cap = 0;
}
