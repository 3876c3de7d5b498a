/*
 * url.h - the WHATWG URL Standard's basic URL parser, the part of it that URL
 * pattern matching needs: parse a URL string (absolute, or relative to a
 * parsed base URL), and run the parser from one state ("state override") to
 * canonicalize a single component, as the URL Pattern Standard's encoding
 * callbacks do (https://url.spec.whatwg.org/#concept-basic-url-parser).
 *
 * A parsed URL is a record of separately owned strings, each already in the
 * serialized form the URL Pattern Standard matches against:
 *
 *   "https://u:p@EXAMPLE.com:8443/a/./b/../c?q=1#top"
 *     scheme "https"  username "u"  password "p"  host "example.com"
 *     port 8443  path "/a/c"  query "q=1"  fragment "top"
 *
 * The path is kept serialized: a list path is "" (no segment) or "/" before
 * every segment ("/a/c" is the list « a, c »; "/" is « "" »); an opaque path
 * (e.g. "mailto:x", "urn:a:b") is the string itself, with opaque_path set.
 * Hosts are serialized too: a domain (lowercased, IDNA ToASCII), an IPv4
 * address in dotted decimal, an IPv6 address in brackets and compressed form,
 * an opaque host (non-special schemes), or the empty host.
 *
 * Every output string is ASCII: the parser percent-encodes every byte >= 0x80
 * it copies, and hosts go through IDNA. Input must be valid UTF-8 (a URL
 * string is a string of Unicode scalar values); anything else is a failure.
 *
 * Non-ASCII domains use ICU's UTS #46 implementation (libicu, Debian's
 * libicu-dev) with the options the URL Standard's "domain to ASCII" names:
 * nontransitional, CheckBidi, CheckJoiners, no STD3 rules, hyphen and DNS
 * length errors ignored. ASCII domains without an "xn--" label never reach
 * ICU (they are only lowercased, as the standard allows).
 *
 * Validation errors that the standard says do not fail parsing are ignored.
 * The parser follows the URL Standard as implemented by the reference this
 * project tests against (Node.js 20, ada 2.9): "^" in a path and a space
 * before "?" in an opaque path are left as they are.
 *
 * Memory: each string grows on the heap and is capped at URL_MAX_LEN bytes
 * (a longer result fails); url_dispose frees them. No global state but the
 * ICU UTS #46 object, opened once (pthread_once) and immutable after.
 *
 * Threads: every function is reentrant; a url_t belongs to its caller.
 */
#ifndef COURANT_URL_H
#define COURANT_URL_H

#include <stddef.h>
#include <stdint.h>

/* The longest string any component may grow to, in bytes. */
#define URL_MAX_LEN (64 * 1024)

/* A growable byte string, NUL-terminated when p is not NULL. */
typedef struct url_str {
    char *p;      /* owns: the bytes, NULL while empty and never allocated */
    uint32_t len; /* bytes used, not counting the NUL */
    uint32_t cap; /* bytes allocated */
} url_str_t;

/* A URL record (https://url.spec.whatwg.org/#concept-url). */
typedef struct url {
    url_str_t scheme;     /* lowercase ASCII, never empty once parsed */
    url_str_t username;   /* percent-encoded (userinfo set) */
    url_str_t password;   /* percent-encoded (userinfo set) */
    url_str_t host;       /* serialized host; meaningful when has_host */
    url_str_t path;       /* serialized path (see above) */
    url_str_t query;      /* meaningful when has_query */
    url_str_t fragment;   /* meaningful when has_fragment */
    int32_t port;         /* 0..65535, or -1 for null */
    uint8_t has_host;     /* 0: the host is null */
    uint8_t opaque_path;  /* 1: path is an opaque path string */
    uint8_t has_query;    /* 0: the query is null */
    uint8_t has_fragment; /* 0: the fragment is null */
} url_t;

/* States the parser can be started in (the standard's "state override"),
 * for canonicalizing one component of an existing URL. */
typedef enum url_state {
    URL_STATE_NONE = 0,    /* no override: parse a whole URL string */
    URL_STATE_HOSTNAME,    /* the hostname setter */
    URL_STATE_PORT,        /* the port setter */
    URL_STATE_PATH_START,  /* the pathname setter (url's path emptied first) */
    URL_STATE_OPAQUE_PATH, /* URL Pattern's opaque pathname canonicalization */
    URL_STATE_QUERY,       /* the search setter (url's query set to "") */
    URL_STATE_FRAGMENT,    /* the hash setter (url's fragment set to "") */
} url_state_t;

/* An empty record (every string empty, host/query/fragment null, port
 * null). Cannot fail. */
void url_init(url_t *u);

/* Frees every string of u; u may be url_init()ed again. */
void url_dispose(url_t *u);

/* Parses in[0..len) as a URL string, relative to base (NULL: no base), into
 * out, which must be url_init()ed (and is reset first). 0 on success; -1 if
 * the standard says failure, the input is not UTF-8 or a component would
 * pass URL_MAX_LEN, or on out of memory: out is then empty. */
int url_try_parse(const char *in, size_t len, const url_t *base, url_t *out)
    __attribute__((warn_unused_result));

/* Runs the basic URL parser on in[0..len) with u as the URL being modified
 * and `state` as the state override (not URL_STATE_NONE). The caller sets up
 * u as the standard's setter would (e.g. empties the path). 0, or -1 on
 * failure (u may then be partly modified). */
int url_try_parse_override(url_t *u, const char *in, size_t len, url_state_t state)
    __attribute__((warn_unused_result));

/* The standard's username / password setters: percent-encode in[0..len)
 * with the userinfo percent-encode set into u. 0, or -1 (not UTF-8, too
 * long, out of memory). */
int url_try_set_username(url_t *u, const char *in, size_t len) __attribute__((warn_unused_result));
int url_try_set_password(url_t *u, const char *in, size_t len) __attribute__((warn_unused_result));

/* Sets u's scheme to s[0..len) (lowercase ASCII expected). 0, or -1. */
int url_try_set_scheme(url_t *u, const char *s, size_t len) __attribute__((warn_unused_result));

/* Is s[0..len) a special scheme (ftp, file, http, https, ws, wss)? */
int url_is_special_scheme(const char *s, size_t len);

/* The default port of a special scheme, or -1 (file, or not special). */
int url_default_port(const char *s, size_t len);

/* Is the code point c a forbidden host code point (URL Standard)? */
int url_is_forbidden_host_cp(uint32_t c);

/* The host parser: parses in[0..len) (not UTF-8 checked by the caller) as a
 * host, opaque when not_special, and writes its serialization to out (reset
 * first). 0, or -1 on failure. */
int url_try_parse_host(const char *in, size_t len, int not_special, url_str_t *out)
    __attribute__((warn_unused_result));

/* Is in[0..len) valid UTF-8 (no surrogates, no overlongs, <= U+10FFFF)? */
int url_is_utf8(const char *in, size_t len);

/* Decodes one UTF-8 code point at s[0..len) (valid UTF-8 assumed, len > 0);
 * returns its length in bytes and stores the code point in *cp. */
size_t url_utf8_decode(const char *s, size_t len, uint32_t *cp);

/* String helpers for users of url_str_t: append, reset, free. Appends fail
 * (-1) past URL_MAX_LEN or when out of memory. */
int url_str_append(url_str_t *s, const char *p, size_t len) __attribute__((warn_unused_result));
void url_str_reset(url_str_t *s);
void url_str_free(url_str_t *s);

/* The component's bytes, "" when never allocated (never NULL). */
static inline const char *url_str_ptr(const url_str_t *s) { return s->p ? s->p : ""; }

#endif
