/*
 * url.c - the WHATWG basic URL parser; see url.h for the contract.
 *
 * The parser is the standard's state machine, one `case` per state, in the
 * standard's order and with its step numbering in mind, so that it can be
 * read against https://url.spec.whatwg.org/#concept-basic-url-parser. It
 * walks bytes, not code points: input is checked to be UTF-8 first, and every
 * byte of a non-ASCII code point is in every percent-encode set, so encoding
 * byte by byte gives the code point's UTF-8 percent-encoding. The only place
 * that needs code points is the host parser (IDNA), which decodes.
 *
 * Hosts (domains, IPv4, IPv6, opaque hosts) are parsed in url_host.c.
 */
#include "url.h"

#include <stdlib.h>
#include <string.h>

/* ---- strings ------------------------------------------------------------------- */

int url_str_append(url_str_t *s, const char *p, size_t len)
{
    if (len > URL_MAX_LEN || s->len + len > URL_MAX_LEN)
        return -1;
    if (s->len + len + 1 > s->cap) {
        uint32_t cap = s->cap ? s->cap : 32;
        while (cap < s->len + len + 1)
            cap *= 2;
        char *np = realloc(s->p, cap);
        if (!np)
            return -1;
        s->p = np;
        s->cap = cap;
    }
    if (len)
        memcpy(s->p + s->len, p, len);
    s->len += (uint32_t)len;
    s->p[s->len] = 0;
    return 0;
}

static int str_putc(url_str_t *s, char c) { return url_str_append(s, &c, 1); }

void url_str_reset(url_str_t *s)
{
    s->len = 0;
    if (s->p)
        s->p[0] = 0;
}

void url_str_free(url_str_t *s)
{
    free(s->p);
    *s = (url_str_t){0};
}

static int str_set(url_str_t *s, const char *p, size_t len)
{
    url_str_reset(s);
    return url_str_append(s, p, len);
}

static int str_eq(const url_str_t *s, const char *lit)
{
    size_t n = strlen(lit);
    return s->len == n && memcmp(url_str_ptr(s), lit, n) == 0;
}

/* ---- UTF-8 ---------------------------------------------------------------------- */

size_t url_utf8_decode(const char *s, size_t len, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] < 0x80 || len < 2) {
        *cp = u[0];
        return 1;
    }
    if (u[0] < 0xE0) {
        *cp = ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
        return 2;
    }
    if (u[0] < 0xF0 || len < 4) {
        *cp = ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) | ((uint32_t)(u[2] & 0x3F) << 6) |
          (u[3] & 0x3F);
    return 4;
}

int url_is_utf8(const char *in, size_t len)
{
    const unsigned char *s = (const unsigned char *)in;
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t n;
        uint32_t min;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 2, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4, min = 0x10000;
        } else {
            return 0;
        }
        if (i + n > len)
            return 0;
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        uint32_t cp;
        url_utf8_decode(in + i, n, &cp);
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n;
    }
    return 1;
}

/* ---- percent-encode sets (https://url.spec.whatwg.org/#percent-encoded-bytes) -- */

enum { SET_C0, SET_FRAGMENT, SET_QUERY, SET_SPECIAL_QUERY, SET_PATH, SET_USERINFO };

static int in_set(unsigned char c, int set)
{
    if (c < 0x20 || c > 0x7E)
        return 1; /* the C0 control percent-encode set, in every other */
    switch (set) {
    case SET_C0:
        return 0;
    case SET_FRAGMENT:
        return c == ' ' || c == '"' || c == '<' || c == '>' || c == '`';
    case SET_QUERY:
        return c == ' ' || c == '"' || c == '#' || c == '<' || c == '>';
    case SET_SPECIAL_QUERY:
        return in_set(c, SET_QUERY) || c == '\'';
    case SET_PATH:
        return in_set(c, SET_QUERY) || c == '?' || c == '`' || c == '{' || c == '}';
    default: /* SET_USERINFO */
        return in_set(c, SET_PATH) || c == '/' || c == ':' || c == ';' || c == '=' || c == '@' ||
               (c >= '[' && c <= '^') || c == '|';
    }
}

/* Appends byte c, percent-encoded if it is in `set`. */
static int put_encoded(url_str_t *s, unsigned char c, int set)
{
    if (!in_set(c, set))
        return str_putc(s, (char)c);
    static const char hex[] = "0123456789ABCDEF";
    char e[3] = {'%', hex[c >> 4], hex[c & 15]};
    return url_str_append(s, e, 3);
}

static int put_encoded_all(url_str_t *s, const char *p, size_t len, int set)
{
    for (size_t i = 0; i < len; i++)
        if (put_encoded(s, (unsigned char)p[i], set))
            return -1;
    return 0;
}

/* ---- schemes -------------------------------------------------------------------- */

static const struct {
    const char *name;
    int port;
} special[] = {{"ftp", 21}, {"file", -1}, {"http", 80}, {"https", 443}, {"ws", 80}, {"wss", 443}};

static int special_index(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        if (strlen(special[i].name) == len && memcmp(special[i].name, s, len) == 0)
            return (int)i;
    return -1;
}

int url_is_special_scheme(const char *s, size_t len) { return special_index(s, len) >= 0; }

int url_default_port(const char *s, size_t len)
{
    int i = special_index(s, len);
    return i < 0 ? -1 : special[i].port;
}

/* ---- the record ------------------------------------------------------------------- */

void url_init(url_t *u)
{
    memset(u, 0, sizeof(*u));
    u->port = -1;
}

void url_dispose(url_t *u)
{
    url_str_free(&u->scheme);
    url_str_free(&u->username);
    url_str_free(&u->password);
    url_str_free(&u->host);
    url_str_free(&u->path);
    url_str_free(&u->query);
    url_str_free(&u->fragment);
    url_init(u);
}

static void url_reset(url_t *u)
{
    url_str_reset(&u->scheme);
    url_str_reset(&u->username);
    url_str_reset(&u->password);
    url_str_reset(&u->host);
    url_str_reset(&u->path);
    url_str_reset(&u->query);
    url_str_reset(&u->fragment);
    u->port = -1;
    u->has_host = u->opaque_path = u->has_query = u->has_fragment = 0;
}

static int url_special(const url_t *u)
{
    return url_is_special_scheme(url_str_ptr(&u->scheme), u->scheme.len);
}

static int includes_credentials(const url_t *u) { return u->username.len || u->password.len; }

int url_try_set_username(url_t *u, const char *in, size_t len)
{
    if (!url_is_utf8(in, len))
        return -1;
    url_str_reset(&u->username);
    return put_encoded_all(&u->username, in, len, SET_USERINFO);
}

int url_try_set_password(url_t *u, const char *in, size_t len)
{
    if (!url_is_utf8(in, len))
        return -1;
    url_str_reset(&u->password);
    return put_encoded_all(&u->password, in, len, SET_USERINFO);
}

int url_try_set_scheme(url_t *u, const char *s, size_t len) { return str_set(&u->scheme, s, len); }

/* ---- paths -------------------------------------------------------------------------- */

static int is_alpha(int c) { return (c | 32) >= 'a' && (c | 32) <= 'z'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* A Windows drive letter: an ASCII alpha then ':' or '|' (normalized: ':'). */
static int is_drive(const char *s, size_t len, int normalized)
{
    return len == 2 && is_alpha((unsigned char)s[0]) && (s[1] == ':' || (!normalized && s[1] == '|'));
}

/* Does s[0..len) start with a Windows drive letter? */
static int starts_with_drive(const char *s, size_t len)
{
    if (len < 2 || !is_drive(s, 2, 0))
        return 0;
    return len == 2 || s[2] == '/' || s[2] == '\\' || s[2] == '?' || s[2] == '#';
}

/* The first segment of a list path, and whether the list has exactly one. */
static size_t first_segment(const url_t *u, const char **seg, int *only)
{
    const char *p = url_str_ptr(&u->path);
    const char *slash = u->path.len > 1 ? memchr(p + 1, '/', u->path.len - 1) : NULL;
    *seg = p + 1;
    *only = slash == NULL;
    return slash ? (size_t)(slash - p - 1) : u->path.len - 1;
}

/* The standard's "shorten a URL's path". */
static void shorten_path(url_t *u)
{
    if (u->path.len == 0)
        return;
    const char *seg;
    int only;
    size_t n = first_segment(u, &seg, &only);
    if (str_eq(&u->scheme, "file") && only && is_drive(seg, n, 1))
        return;
    const char *p = u->path.p;
    size_t i = u->path.len;
    while (i > 0 && p[i - 1] != '/')
        i--;
    u->path.len = (uint32_t)(i - 1);
    u->path.p[u->path.len] = 0;
}

static int path_push(url_t *u, const char *seg, size_t len)
{
    return str_putc(&u->path, '/') || url_str_append(&u->path, seg, len);
}

static int lower_eq(const char *s, size_t len, const char *lit)
{
    if (strlen(lit) != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((s[i] >= 'A' && s[i] <= 'Z' ? s[i] | 32 : s[i]) != lit[i])
            return 0;
    return 1;
}

static int single_dot(const char *s, size_t len) { return lower_eq(s, len, ".") || lower_eq(s, len, "%2e"); }

static int double_dot(const char *s, size_t len)
{
    return lower_eq(s, len, "..") || lower_eq(s, len, ".%2e") || lower_eq(s, len, "%2e.") ||
           lower_eq(s, len, "%2e%2e");
}

/* ---- the state machine ---------------------------------------------------------------- */

enum {
    S_SCHEME_START = 100,
    S_SCHEME,
    S_NO_SCHEME,
    S_SPECIAL_RELATIVE_OR_AUTHORITY,
    S_PATH_OR_AUTHORITY,
    S_RELATIVE,
    S_RELATIVE_SLASH,
    S_SPECIAL_AUTHORITY_SLASHES,
    S_SPECIAL_AUTHORITY_IGNORE_SLASHES,
    S_AUTHORITY,
    S_HOST,
    S_FILE,
    S_FILE_SLASH,
    S_FILE_HOST,
    S_PATH,
};

typedef struct parser {
    const char *in; /* borrows: the input, tabs and newlines removed */
    ptrdiff_t n;    /* its length */
    ptrdiff_t p;    /* the pointer: index of c, n for EOF */
    const url_t *base;
    url_t *url;
    int state;
    int override; /* the state override, or 0 */
    url_str_t buf;
    int at_sign_seen, inside_brackets, password_token_seen;
    long port_value; /* the port state's digits so far (its buffer) */
    int port_digits; /* the port state has seen a digit */
} parser_t;

#define EOF_C (-1)

static int remaining_starts(const parser_t *ps, char c)
{
    return ps->p + 1 < ps->n && ps->in[ps->p + 1] == c;
}

static int copy_str(url_str_t *dst, const url_str_t *src) { return str_set(dst, url_str_ptr(src), src->len); }

/* Copies the base's username, password, host and port into url. */
static int copy_authority(url_t *u, const url_t *b)
{
    u->has_host = b->has_host;
    u->port = b->port;
    return copy_str(&u->username, &b->username) || copy_str(&u->password, &b->password) ||
           copy_str(&u->host, &b->host);
}

static int copy_path_query(url_t *u, const url_t *b)
{
    u->opaque_path = b->opaque_path;
    u->has_query = b->has_query;
    return copy_str(&u->path, &b->path) || copy_str(&u->query, &b->query);
}

/* Enters the query state with an empty query. */
static int start_query(parser_t *ps)
{
    url_str_reset(&ps->url->query);
    ps->url->has_query = 1;
    ps->state = URL_STATE_QUERY;
    return 0;
}

static int start_fragment(parser_t *ps)
{
    url_str_reset(&ps->url->fragment);
    ps->url->has_fragment = 1;
    ps->state = URL_STATE_FRAGMENT;
    return 0;
}

/* Return codes of one step: go on, stop with success, stop with failure. */
enum { GO = 0, DONE = 1, FAIL = -1 };

static int st_scheme(parser_t *ps, int c)
{
    url_t *u = ps->url;
    if (ps->state == S_SCHEME_START) {
        if (c != EOF_C && is_alpha(c)) {
            ps->state = S_SCHEME;
            return str_putc(&ps->buf, (char)(c | 32)) ? FAIL : GO;
        }
        ps->state = S_NO_SCHEME;
        ps->p--;
        return GO;
    }
    if (c != EOF_C && (is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.'))
        return str_putc(&ps->buf, (char)(is_alpha(c) ? c | 32 : c)) ? FAIL : GO;
    if (c != ':') {
        url_str_reset(&ps->buf);
        ps->state = S_NO_SCHEME;
        ps->p = -1;
        return GO;
    }
    if (copy_str(&u->scheme, &ps->buf))
        return FAIL;
    url_str_reset(&ps->buf);
    if (str_eq(&u->scheme, "file")) {
        ps->state = S_FILE;
    } else if (url_special(u) && ps->base && ps->base->scheme.len == u->scheme.len &&
               memcmp(ps->base->scheme.p, u->scheme.p, u->scheme.len) == 0) {
        ps->state = S_SPECIAL_RELATIVE_OR_AUTHORITY;
    } else if (url_special(u)) {
        ps->state = S_SPECIAL_AUTHORITY_SLASHES;
    } else if (remaining_starts(ps, '/')) {
        ps->state = S_PATH_OR_AUTHORITY;
        ps->p++;
    } else {
        u->opaque_path = 1;
        url_str_reset(&u->path);
        ps->state = URL_STATE_OPAQUE_PATH;
    }
    return GO;
}

static int st_no_scheme(parser_t *ps, int c)
{
    const url_t *b = ps->base;
    url_t *u = ps->url;
    if (!b || (b->opaque_path && c != '#'))
        return FAIL;
    if (b->opaque_path) {
        if (copy_str(&u->scheme, &b->scheme) || copy_path_query(u, b))
            return FAIL;
        return start_fragment(ps);
    }
    ps->state = str_eq(&b->scheme, "file") ? S_FILE : S_RELATIVE;
    ps->p--;
    return GO;
}

static int st_relative(parser_t *ps, int c)
{
    const url_t *b = ps->base;
    url_t *u = ps->url;
    if (!b)
        return FAIL; /* reached only with a base (no scheme state); for the analyzer */
    if (copy_str(&u->scheme, &b->scheme))
        return FAIL;
    if (c == '/' || (url_special(u) && c == '\\')) {
        ps->state = S_RELATIVE_SLASH;
        return GO;
    }
    if (copy_authority(u, b) || copy_path_query(u, b))
        return FAIL;
    if (c == '?')
        return start_query(ps);
    if (c == '#')
        return start_fragment(ps);
    if (c != EOF_C) {
        u->has_query = 0;
        url_str_reset(&u->query);
        shorten_path(u);
        ps->state = S_PATH;
        ps->p--;
    }
    return GO;
}

static int st_relative_slash(parser_t *ps, int c)
{
    url_t *u = ps->url;
    if (!ps->base)
        return FAIL; /* as in st_relative */
    if (url_special(u) && (c == '/' || c == '\\')) {
        ps->state = S_SPECIAL_AUTHORITY_IGNORE_SLASHES;
    } else if (c == '/') {
        ps->state = S_AUTHORITY;
    } else {
        if (copy_authority(u, ps->base))
            return FAIL;
        ps->state = S_PATH;
        ps->p--;
    }
    return GO;
}

/* Splits the buffered "user:pass" (seen before an '@') into url. */
static int take_userinfo(parser_t *ps)
{
    url_t *u = ps->url;
    if (ps->at_sign_seen) {
        url_str_t t = {0};
        if (url_str_append(&t, "%40", 3) || url_str_append(&t, url_str_ptr(&ps->buf), ps->buf.len)) {
            url_str_free(&t);
            return FAIL;
        }
        url_str_free(&ps->buf);
        ps->buf = t;
    }
    ps->at_sign_seen = 1;
    for (uint32_t i = 0; i < ps->buf.len; i++) {
        unsigned char ch = (unsigned char)ps->buf.p[i];
        if (ch == ':' && !ps->password_token_seen) {
            ps->password_token_seen = 1;
            continue;
        }
        if (put_encoded(ps->password_token_seen ? &u->password : &u->username, ch, SET_USERINFO))
            return FAIL;
    }
    url_str_reset(&ps->buf);
    return GO;
}

static int st_authority(parser_t *ps, int c)
{
    if (c == '@')
        return take_userinfo(ps);
    if (c == EOF_C || c == '/' || c == '?' || c == '#' || (url_special(ps->url) && c == '\\')) {
        if (ps->at_sign_seen && ps->buf.len == 0)
            return FAIL;
        ps->p -= (ptrdiff_t)ps->buf.len + 1;
        url_str_reset(&ps->buf);
        ps->state = S_HOST;
        return GO;
    }
    return str_putc(&ps->buf, (char)c) ? FAIL : GO;
}

static int st_host(parser_t *ps, int c)
{
    url_t *u = ps->url;
    if (ps->override && str_eq(&u->scheme, "file")) {
        ps->p--;
        ps->state = S_FILE_HOST;
        return GO;
    }
    if (c == ':' && !ps->inside_brackets) {
        if (ps->buf.len == 0 || ps->override == URL_STATE_HOSTNAME)
            return FAIL;
        if (url_try_parse_host(url_str_ptr(&ps->buf), ps->buf.len, !url_special(u), &u->host))
            return FAIL;
        u->has_host = 1;
        url_str_reset(&ps->buf);
        ps->state = URL_STATE_PORT;
        return GO;
    }
    if (c == EOF_C || c == '/' || c == '?' || c == '#' || (url_special(u) && c == '\\')) {
        ps->p--;
        if (url_special(u) && ps->buf.len == 0)
            return FAIL;
        if (ps->override && ps->buf.len == 0 && (includes_credentials(u) || u->port >= 0))
            return FAIL;
        if (url_try_parse_host(url_str_ptr(&ps->buf), ps->buf.len, !url_special(u), &u->host))
            return FAIL;
        u->has_host = 1;
        url_str_reset(&ps->buf);
        ps->state = URL_STATE_PATH_START;
        return ps->override ? DONE : GO;
    }
    if (c == '[')
        ps->inside_brackets = 1;
    if (c == ']')
        ps->inside_brackets = 0;
    return str_putc(&ps->buf, (char)c) ? FAIL : GO;
}

static int st_port(parser_t *ps, int c)
{
    url_t *u = ps->url;
    if (c != EOF_C && is_digit(c)) {
        /* The value saturates past 65535 instead of overflowing (leading
         * zeros are allowed, so the digit count says nothing). */
        if (ps->port_value <= 65535)
            ps->port_value = ps->port_value * 10 + (c - '0');
        ps->port_digits = 1;
        return GO;
    }
    if (c == EOF_C || c == '/' || c == '?' || c == '#' || (url_special(u) && c == '\\') || ps->override) {
        if (ps->port_digits) {
            if (ps->port_value > 65535)
                return FAIL;
            int def = url_default_port(url_str_ptr(&u->scheme), u->scheme.len);
            u->port = ps->port_value == def ? -1 : (int32_t)ps->port_value;
            ps->port_value = ps->port_digits = 0;
            if (ps->override)
                return DONE;
        }
        if (ps->override)
            return FAIL;
        ps->state = URL_STATE_PATH_START;
        ps->p--;
        return GO;
    }
    return FAIL;
}

static int st_file(parser_t *ps, int c)
{
    url_t *u = ps->url;
    const url_t *b = ps->base;
    if (str_set(&u->scheme, "file", 4))
        return FAIL;
    url_str_reset(&u->host);
    u->has_host = 1;
    if (c == '/' || c == '\\') {
        ps->state = S_FILE_SLASH;
        return GO;
    }
    if (b && str_eq(&b->scheme, "file")) {
        u->has_host = b->has_host;
        if (copy_str(&u->host, &b->host) || copy_path_query(u, b))
            return FAIL;
        if (c == '?')
            return start_query(ps);
        if (c == '#')
            return start_fragment(ps);
        if (c != EOF_C) {
            u->has_query = 0;
            url_str_reset(&u->query);
            if (!starts_with_drive(ps->in + ps->p, (size_t)(ps->n - ps->p)))
                shorten_path(u);
            else
                url_str_reset(&u->path);
            ps->state = S_PATH;
            ps->p--;
        }
        return GO;
    }
    ps->state = S_PATH;
    ps->p--;
    return GO;
}

static int st_file_slash(parser_t *ps, int c)
{
    url_t *u = ps->url;
    const url_t *b = ps->base;
    if (c == '/' || c == '\\') {
        ps->state = S_FILE_HOST;
        return GO;
    }
    if (b && str_eq(&b->scheme, "file")) {
        u->has_host = b->has_host;
        if (copy_str(&u->host, &b->host))
            return FAIL;
        if (!starts_with_drive(ps->in + ps->p, (size_t)(ps->n - ps->p)) && b->path.len) {
            const char *seg;
            int only;
            size_t n = first_segment(b, &seg, &only);
            if (is_drive(seg, n, 1) && path_push(u, seg, n))
                return FAIL;
        }
    }
    ps->state = S_PATH;
    ps->p--;
    return GO;
}

static int st_file_host(parser_t *ps, int c)
{
    url_t *u = ps->url;
    if (!(c == EOF_C || c == '/' || c == '\\' || c == '?' || c == '#'))
        return str_putc(&ps->buf, (char)c) ? FAIL : GO;
    ps->p--;
    if (!ps->override && is_drive(url_str_ptr(&ps->buf), ps->buf.len, 0)) {
        ps->state = S_PATH; /* the drive letter quirk: buf is kept for the path state */
        return GO;
    }
    if (ps->buf.len == 0) {
        url_str_reset(&u->host);
        u->has_host = 1;
        if (ps->override)
            return DONE;
        ps->state = URL_STATE_PATH_START;
        return GO;
    }
    if (url_try_parse_host(ps->buf.p, ps->buf.len, !url_special(u), &u->host))
        return FAIL;
    u->has_host = 1;
    if (str_eq(&u->host, "localhost"))
        url_str_reset(&u->host);
    if (ps->override)
        return DONE;
    url_str_reset(&ps->buf);
    ps->state = URL_STATE_PATH_START;
    return GO;
}

static int st_path_start(parser_t *ps, int c)
{
    url_t *u = ps->url;
    if (url_special(u)) {
        ps->state = S_PATH;
        if (c != '/' && c != '\\')
            ps->p--;
    } else if (!ps->override && c == '?') {
        return start_query(ps);
    } else if (!ps->override && c == '#') {
        return start_fragment(ps);
    } else if (c != EOF_C) {
        ps->state = S_PATH;
        if (c != '/')
            ps->p--;
    } else if (ps->override && !u->has_host) {
        return path_push(u, "", 0) ? FAIL : GO;
    }
    return GO;
}

static int st_path(parser_t *ps, int c)
{
    url_t *u = ps->url;
    int slash = c == '/' || (url_special(u) && c == '\\');
    if (!(c == EOF_C || slash || (!ps->override && (c == '?' || c == '#'))))
        return put_encoded(&ps->buf, (unsigned char)c, SET_PATH) ? FAIL : GO;
    const char *b = url_str_ptr(&ps->buf);
    size_t n = ps->buf.len;
    if (double_dot(b, n)) {
        shorten_path(u);
        if (!slash && path_push(u, "", 0))
            return FAIL;
    } else if (single_dot(b, n)) {
        if (!slash && path_push(u, "", 0))
            return FAIL;
    } else {
        if (str_eq(&u->scheme, "file") && u->path.len == 0 && is_drive(b, n, 0) && ps->buf.p)
            ps->buf.p[1] = ':'; /* a drive letter (n == 2, so buf.p is allocated) */
        if (path_push(u, b, n))
            return FAIL;
    }
    url_str_reset(&ps->buf);
    if (c == '?')
        return start_query(ps);
    if (c == '#')
        return start_fragment(ps);
    return GO;
}

static int st_opaque_path(parser_t *ps, int c)
{
    if (c == '?')
        return start_query(ps);
    if (c == '#')
        return start_fragment(ps);
    if (c != EOF_C)
        return put_encoded(&ps->url->path, (unsigned char)c, SET_C0) ? FAIL : GO;
    return GO;
}

static int st_query(parser_t *ps, int c)
{
    url_t *u = ps->url;
    if ((!ps->override && c == '#') || c == EOF_C) {
        int set = url_special(u) ? SET_SPECIAL_QUERY : SET_QUERY;
        if (put_encoded_all(&u->query, url_str_ptr(&ps->buf), ps->buf.len, set))
            return FAIL;
        url_str_reset(&ps->buf);
        if (c == '#')
            return start_fragment(ps);
        return GO;
    }
    return str_putc(&ps->buf, (char)c) ? FAIL : GO;
}

static int step(parser_t *ps, int c)
{
    switch (ps->state) {
    case S_SCHEME_START:
    case S_SCHEME:
        return st_scheme(ps, c);
    case S_NO_SCHEME:
        return st_no_scheme(ps, c);
    case S_SPECIAL_RELATIVE_OR_AUTHORITY:
        if (c == '/' && remaining_starts(ps, '/')) {
            ps->state = S_SPECIAL_AUTHORITY_IGNORE_SLASHES;
            ps->p++;
        } else {
            ps->state = S_RELATIVE;
            ps->p--;
        }
        return GO;
    case S_PATH_OR_AUTHORITY:
        if (c == '/') {
            ps->state = S_AUTHORITY;
        } else {
            ps->state = S_PATH;
            ps->p--;
        }
        return GO;
    case S_RELATIVE:
        return st_relative(ps, c);
    case S_RELATIVE_SLASH:
        return st_relative_slash(ps, c);
    case S_SPECIAL_AUTHORITY_SLASHES:
        ps->state = S_SPECIAL_AUTHORITY_IGNORE_SLASHES;
        if (c == '/' && remaining_starts(ps, '/'))
            ps->p++;
        else
            ps->p--;
        return GO;
    case S_SPECIAL_AUTHORITY_IGNORE_SLASHES:
        if (c != '/' && c != '\\') {
            ps->state = S_AUTHORITY;
            ps->p--;
        }
        return GO;
    case S_AUTHORITY:
        return st_authority(ps, c);
    case S_HOST:
    case URL_STATE_HOSTNAME:
        return st_host(ps, c);
    case URL_STATE_PORT:
        return st_port(ps, c);
    case S_FILE:
        return st_file(ps, c);
    case S_FILE_SLASH:
        return st_file_slash(ps, c);
    case S_FILE_HOST:
        return st_file_host(ps, c);
    case URL_STATE_PATH_START:
        return st_path_start(ps, c);
    case S_PATH:
        return st_path(ps, c);
    case URL_STATE_OPAQUE_PATH:
        return st_opaque_path(ps, c);
    case URL_STATE_QUERY:
        return st_query(ps, c);
    case URL_STATE_FRAGMENT:
        if (c != EOF_C)
            return put_encoded(&ps->url->fragment, (unsigned char)c, SET_FRAGMENT) ? FAIL : GO;
        return GO;
    default:
        return FAIL;
    }
}

/* Runs the machine over in[0..len) (already cleaned); 0 or -1. */
static int run(parser_t *ps)
{
    for (ps->p = 0;; ps->p++) {
        int c = ps->p < ps->n ? (unsigned char)ps->in[ps->p] : EOF_C;
        int r = step(ps, c);
        if (r == FAIL)
            return -1;
        if (r == DONE || ps->p >= ps->n)
            return 0;
    }
}

/* Copies in without ASCII tab or newline, and (whole-URL parsing only)
 * without leading and trailing C0 controls and spaces. */
static char *clean_input(const char *in, size_t len, int trim, size_t *out_len)
{
    if (trim) {
        while (len && (unsigned char)in[0] <= 0x20)
            in++, len--;
        while (len && (unsigned char)in[len - 1] <= 0x20)
            len--;
    }
    char *s = malloc(len + 1);
    if (!s)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (in[i] != '\t' && in[i] != '\n' && in[i] != '\r')
            s[n++] = in[i];
    s[n] = 0;
    *out_len = n;
    return s;
}

static int parse(url_t *u, const char *in, size_t len, const url_t *base, int state, int override)
{
    if (!url_is_utf8(in, len) || len > URL_MAX_LEN)
        return -1;
    size_t n;
    char *clean = clean_input(in, len, !override, &n);
    if (!clean)
        return -1;
    parser_t ps = {
        .in = clean, .n = (ptrdiff_t)n, .base = base, .url = u, .state = state, .override = override};
    int r = run(&ps);
    url_str_free(&ps.buf);
    free(clean);
    return r;
}

int url_try_parse(const char *in, size_t len, const url_t *base, url_t *out)
{
    url_reset(out);
    if (parse(out, in, len, base, S_SCHEME_START, 0) == 0)
        return 0;
    url_reset(out);
    return -1;
}

int url_try_parse_override(url_t *u, const char *in, size_t len, url_state_t state)
{
    if (state == URL_STATE_NONE)
        return -1;
    return parse(u, in, len, NULL, state, state);
}
