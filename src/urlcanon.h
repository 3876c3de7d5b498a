/*
 * urlcanon.h - canonicalization of URL component text, as the URL Pattern
 * Standard's encoding callbacks define it (https://urlpattern.spec.whatwg.org/
 * #canon-encoding-callbacks): the fixed text of a component pattern, and the
 * values of a dictionary input, become what the URL parser would produce:
 *
 *   protocol "HTTPS" -> "https"     hostname "EXAMPLE.com" -> "example.com"
 *   pathname "/a b/./c" -> "/a%20b/c"   search "q=é" -> "q=%C3%A9"
 *
 * Every function has the pattern_encode_cb shape (pattern.h): ctx, the text
 * in[0..len) (UTF-8), out (reset first); 0, or -1 if the text cannot be that
 * component (an invalid pattern), is too long, or memory ran out. An empty
 * text is returned as is. ctx is unused except by urlcanon_port, where it is
 * the protocol (NUL-terminated) whose default port the port may be, or NULL.
 *
 * Threads: pure functions, any thread.
 */
#ifndef COURANT_URLCANON_H
#define COURANT_URLCANON_H

#include "url.h"

#include <stddef.h>

int urlcanon_protocol(void *ctx, const char *in, size_t len, url_str_t *out);
int urlcanon_username(void *ctx, const char *in, size_t len, url_str_t *out);
int urlcanon_password(void *ctx, const char *in, size_t len, url_str_t *out);
/* A hostname other than a bracketed IPv6 pattern; forbidden host code points
 * are an error (rather than the end of the host, as in the URL parser). */
int urlcanon_hostname(void *ctx, const char *in, size_t len, url_str_t *out);
/* A hostname pattern that is an IPv6 address ("[" first): hex digits, "[",
 * "]" and ":" only, lowercased. */
int urlcanon_ipv6_hostname(void *ctx, const char *in, size_t len, url_str_t *out);
/* ASCII digits only; ctx: see above. */
int urlcanon_port(void *ctx, const char *in, size_t len, url_str_t *out);
/* The path of a special URL (text may be a piece of it, not starting with "/"). */
int urlcanon_pathname(void *ctx, const char *in, size_t len, url_str_t *out);
/* The path of a URL with a non-special scheme. */
int urlcanon_opaque_pathname(void *ctx, const char *in, size_t len, url_str_t *out);
int urlcanon_search(void *ctx, const char *in, size_t len, url_str_t *out);
int urlcanon_hash(void *ctx, const char *in, size_t len, url_str_t *out);

#endif
