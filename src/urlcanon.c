/*
 * urlcanon.c - the URL Pattern Standard's encoding callbacks ("canonicalize
 * a protocol", ... "canonicalize a hash"): see urlcanon.h.
 *
 * Each runs the URL parser (url.h) the way the standard says, on a dummy URL
 * ("https://dummy.invalid/") set up as the matching URL setter would, and
 * copies one component back out. Where the standard's text and every
 * implementation tested by web-platform-tests part ways, the comment at the
 * function says which way this goes and why.
 */
#include "urlcanon.h"

#include <stdio.h>
#include <string.h>

/* "https://dummy.invalid/", built rather than parsed: it is the same record. */
static int dummy_url(url_t *u)
{
    url_init(u);
    u->has_host = 1;
    return url_try_set_scheme(u, "https", 5) || url_str_append(&u->host, "dummy.invalid", 13) ||
           url_str_append(&u->path, "/", 1);
}

int urlcanon_protocol(void *ctx, const char *in, size_t len, url_str_t *out)
{
    url_str_reset(out);
    if (len == 0)
        return 0;
    url_str_t s = {0};
    url_t u;
    url_init(&u);
    int r = url_str_append(&s, in, len) || url_str_append(&s, "://dummy.invalid/", 17) ||
            url_try_parse(s.p, s.len, NULL, &u) || url_str_append(out, u.scheme.p, u.scheme.len);
    url_str_free(&s);
    url_dispose(&u);
    return r ? -1 : 0;
}

int urlcanon_username(void *ctx, const char *in, size_t len, url_str_t *out)
{
    url_t u;
    url_init(&u);
    int r = url_try_set_username(&u, in, len) ||
            (url_str_reset(out), url_str_append(out, u.username.p, u.username.len));
    url_dispose(&u);
    return r ? -1 : 0;
}

int urlcanon_password(void *ctx, const char *in, size_t len, url_str_t *out)
{
    url_t u;
    url_init(&u);
    int r = url_try_set_password(&u, in, len) ||
            (url_str_reset(out), url_str_append(out, u.password.p, u.password.len));
    url_dispose(&u);
    return r ? -1 : 0;
}

/* Runs the URL parser from `state` on a dummy URL prepared by the caller's
 * choice of `what`, and copies one component out. */
enum { OUT_HOST, OUT_PORT, OUT_PATH, OUT_QUERY, OUT_FRAGMENT };

static int canon_via_parser(const char *in, size_t len, url_state_t state, int what, const char *scheme,
                            url_str_t *out)
{
    url_str_reset(out);
    if (len == 0)
        return 0;
    url_t u;
    int r = dummy_url(&u);
    if (!r && scheme)
        r = url_try_set_scheme(&u, scheme, strlen(scheme));
    if (what == OUT_PATH || state == URL_STATE_OPAQUE_PATH)
        url_str_reset(&u.path);
    u.opaque_path = state == URL_STATE_OPAQUE_PATH;
    u.has_query = what == OUT_QUERY;
    u.has_fragment = what == OUT_FRAGMENT;
    if (!r)
        r = url_try_parse_override(&u, in, len, state);
    if (!r) {
        char port[12] = "";
        if (u.port >= 0)
            snprintf(port, sizeof(port), "%d", (int)u.port);
        switch (what) {
        case OUT_HOST:
            r = url_str_append(out, url_str_ptr(&u.host), u.has_host ? u.host.len : 0);
            break;
        case OUT_PORT:
            r = url_str_append(out, port, strlen(port));
            break;
        case OUT_PATH:
            r = url_str_append(out, url_str_ptr(&u.path), u.path.len);
            break;
        case OUT_QUERY:
            r = url_str_append(out, url_str_ptr(&u.query), u.query.len);
            break;
        default:
            r = url_str_append(out, url_str_ptr(&u.fragment), u.fragment.len);
        }
    }
    url_dispose(&u);
    return r ? -1 : 0;
}

int urlcanon_hostname(void *ctx, const char *in, size_t len, url_str_t *out)
{
    /* The hostname state stops at "/", "?", "#" and ":" and would keep what
     * came before; a hostname with those characters is an error instead (as
     * web-platform-tests expect of every implementation). An IPv6 address in
     * brackets is left to the host parser, which checks it whole. */
    for (size_t i = 0; i < len && in[0] != '[';) {
        uint32_t cp;
        i += url_utf8_decode(in + i, len - i, &cp);
        if (url_is_forbidden_host_cp(cp))
            return -1;
    }
    return canon_via_parser(in, len, URL_STATE_HOSTNAME, OUT_HOST, NULL, out);
}

int urlcanon_ipv6_hostname(void *ctx, const char *in, size_t len, url_str_t *out)
{
    url_str_reset(out);
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        int hex = (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'f');
        if (!hex && c != '[' && c != ']' && c != ':')
            return -1;
        c = c >= 'A' && c <= 'Z' ? (char)(c | 32) : c;
        if (url_str_append(out, &c, 1))
            return -1;
    }
    return 0;
}

/* ctx: the protocol (NUL-terminated) whose default port becomes "", or NULL.
 * The port state would stop at the first non-digit and keep the digits
 * before it ("80 " is 80); a port that is not all digits is an error
 * instead (web-platform-tests again). Without a protocol the dummy URL's
 * scheme is not special, so no port is anyone's default: read literally,
 * the standard's https dummy would turn the pattern "http{s}?://h:443" into
 * port "" (any default port), which neither the reference implementations
 * nor the standard's own default-port step (urlpattern "create") intend. */
int urlcanon_port(void *ctx, const char *in, size_t len, url_str_t *out)
{
    for (size_t i = 0; i < len; i++)
        if (in[i] < '0' || in[i] > '9')
            return -1;
    return canon_via_parser(in, len, URL_STATE_PORT, OUT_PORT, ctx ? ctx : "dummy", out);
}

int urlcanon_pathname(void *ctx, const char *in, size_t len, url_str_t *out)
{
    url_str_reset(out);
    if (len == 0)
        return 0;
    int leading = in[0] == '/';
    url_str_t s = {0};
    int r = url_str_append(&s, "/-", leading ? 0 : 2) || url_str_append(&s, in, len) ||
            canon_via_parser(s.p, s.len, URL_STATE_PATH_START, OUT_PATH, NULL, out);
    url_str_free(&s);
    if (!r && !leading) { /* drop the "/-" again ("/-/.." is "/": nothing is left) */
        size_t cut = out->len < 2 ? out->len : 2;
        memmove(out->p, out->p + cut, out->len - cut + 1);
        out->len -= (uint32_t)cut;
    }
    return r ? -1 : 0;
}

/* Text starting with "/" is a hierarchical path of a non-special URL
 * ("foo://host/./a" parses to path "/a"), so it is canonicalized as one:
 * dot segments removed, the path percent-encode set. The standard's opaque
 * path state would keep "/./a", which no such URL ever has; the reference
 * implementations parse "scheme:" + text instead, which gives the same
 * except for "//x", read as a host there and kept as a path here. */
int urlcanon_opaque_pathname(void *ctx, const char *in, size_t len, url_str_t *out)
{
    if (len && in[0] == '/')
        return canon_via_parser(in, len, URL_STATE_PATH_START, OUT_PATH, "dummy", out);
    return canon_via_parser(in, len, URL_STATE_OPAQUE_PATH, OUT_PATH, NULL, out);
}

int urlcanon_search(void *ctx, const char *in, size_t len, url_str_t *out)
{
    return canon_via_parser(in, len, URL_STATE_QUERY, OUT_QUERY, NULL, out);
}

int urlcanon_hash(void *ctx, const char *in, size_t len, url_str_t *out)
{
    return canon_via_parser(in, len, URL_STATE_FRAGMENT, OUT_FRAGMENT, NULL, out);
}
