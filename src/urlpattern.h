/*
 * urlpattern.h - URL patterns (WHATWG URL Pattern Standard,
 * https://urlpattern.spec.whatwg.org/) for Mercure's `urlpattern` matcher
 * type (draft-08, "URL Pattern"): the `match_urlpattern` subscribe
 * parameter and `match_type: "urlpattern"` in tokens.
 *
 * A pattern is given in the standard's constructor string form, absolute
 * ("https://example.com/books/:id") or relative ("/books/:id"), and
 * relative patterns and topics are resolved against the hub's URL (the
 * base URL, e.g. "https://example.com/.well-known/mercure"). An absolute
 * pattern (one with a protocol) is compiled without it, as draft-08 says
 * ("when evaluating a relative pattern ... use the hub's URL"): given a base,
 * the standard's constructor would also resolve an absolute pattern's
 * pathname when it does not start with "/", so "urn\:isbn\:*" would become
 * "/.well-known/isbn\:*" and match no URN.
 *
 *   pattern "/books/:id"  base "https://example.com/.well-known/mercure"
 *     protocol "https"  username "*"  password "*"  hostname "example.com"
 *     port ""  pathname "/books/:id"  search "*"  hash "*"
 *   matches "https://example.com/books/1", "/books/1", "/books/1?x#y";
 *   not "https://example.com/books/1/2" nor "https://example.com:8443/books/1".
 *
 * Compiling follows the standard: the constructor string parser splits the
 * pattern into eight component pattern strings, "process a URLPatternInit"
 * fills the missing ones from the base URL or with "*", and each component
 * is parsed (named groups ":name", regexp groups "(...)", "*" wildcards,
 * modifiers ? + *, "{...}" groups, escapes) with its fixed text canonicalized
 * as the URL parser would (src/url.h). ignoreCase is never enabled (draft-08
 * forbids it): hosts compare case-insensitively only because the URL parser
 * lowercases them, every other component is case-sensitive.
 *
 * Matching parses the topic as a URL relative to the base URL (a topic that
 * does not parse never matches) and matches each of its eight components
 * against the component's compiled form: nothing for "*", a byte comparison
 * for fixed text, else a Thompson NFA (src/regex.h) simulated in linear
 * time. No backtracking, so no pattern can make matching slow: one match
 * costs at most about URLPATTERN_MAX_STEPS state visits.
 *
 * Regexp groups accept the subset of JavaScript syntax regex.h documents;
 * valid JavaScript outside it (backreferences, lookaround, \p{...}, ...) is
 * refused with a reason starting with "unsupported", so the client gets a
 * 400 rather than a pattern that silently means something else. So is a NUL
 * character anywhere in a pattern (it could only ever match in a regexp
 * group, against a NUL no parsed URL contains).
 *
 * Budgets (a pattern or topic past them is refused / does not match):
 */
#ifndef COURANT_URLPATTERN_H
#define COURANT_URLPATTERN_H

#include <stddef.h>
#include <stdint.h>

/* Longest pattern accepted, in bytes. */
#define URLPATTERN_MAX_PATTERN 2048
/* NFA states of one pattern, all components together. */
#define URLPATTERN_MAX_STATES 4096
/* Longest topic matched, in bytes; a longer topic matches no URL pattern. */
#define URLPATTERN_MAX_TOPIC 4096
/* State visits one match may make, all components together: past it the
 * evaluation stops and the topic does not match (draft-08 allows an
 * implementation-defined evaluation cost limit). 2^20 visits took 3.2 ms
 * on the development machine (2 shared cores, -O2, an 800-state pattern
 * against a 4 KiB topic: 3 to 5 ns a visit). Ordinary patterns stay
 * far below it ("https://example.com/books/:id" against a 30-byte topic:
 * about 10 visits); the bound (component length + 1) x states only comes
 * near it for patterns of hundreds of states against kilobyte topics. */
#define URLPATTERN_MAX_STEPS (1u << 20)
/* The largest count in a {n,m} quantifier (REGEX_MAX_REPEAT). */
#define URLPATTERN_MAX_REPEAT 100

typedef struct urlpattern urlpattern_t;

/* Compiles pattern[0..len) (UTF-8, the constructor string form) relative to
 * base_url (NUL-terminated, NULL: none, then a relative pattern is an
 * error). Returns the compiled pattern (the caller frees it with
 * urlpattern_free), or NULL with a static reason in *why (if why is not
 * NULL): an invalid pattern, an invalid base URL, an unsupported regexp
 * feature (reason starts with "unsupported"), a budget, or out of memory.
 * Any thread. */
urlpattern_t *urlpattern_try_new(const char *pattern, size_t len, const char *base_url, const char **why)
    __attribute__((warn_unused_result));

void urlpattern_free(urlpattern_t *p);

/* Does topic[0..len) (UTF-8) match? 1 or 0; a topic that is not a URL
 * (relative to the base URL), is not UTF-8, is longer than
 * URLPATTERN_MAX_TOPIC or passes URLPATTERN_MAX_STEPS does not match, nor
 * does anything when out of memory. A compiled pattern is immutable: any
 * number of threads may match it at once. */
int urlpattern_match(const urlpattern_t *p, const char *topic, size_t len);

/* The pattern as given: NUL-terminated, owned by p. */
const char *urlpattern_text(const urlpattern_t *p);
size_t urlpattern_len(const urlpattern_t *p);

/* The eight components, in the standard's order. */
typedef enum urlpattern_component {
    URLPATTERN_PROTOCOL,
    URLPATTERN_USERNAME,
    URLPATTERN_PASSWORD,
    URLPATTERN_HOSTNAME,
    URLPATTERN_PORT,
    URLPATTERN_PATHNAME,
    URLPATTERN_SEARCH,
    URLPATTERN_HASH,
    URLPATTERN_COMPONENTS
} urlpattern_component_t;

/* A component's normalized pattern string (what the standard's URLPattern
 * getters return, e.g. "/books/:id"): NUL-terminated, owned by p. */
const char *urlpattern_component(const urlpattern_t *p, urlpattern_component_t c);

/* Does any component use a regexp group (the standard's "has regexp
 * groups")? */
int urlpattern_has_regexp_groups(const urlpattern_t *p);

/* Total NFA states of the pattern (at most URLPATTERN_MAX_STATES). */
int urlpattern_states(const urlpattern_t *p);

/* ---- for tests: the standard's dictionary forms -------------------------------- */

/* A URLPatternInit: each member absent (NULL) or a UTF-8 string. */
typedef struct urlpattern_init {
    const char *value[URLPATTERN_COMPONENTS]; /* borrows, NUL-terminated, NULL: absent */
    const char *base_url;                     /* borrows, NUL-terminated, NULL: absent */
} urlpattern_init_t;

/* urlpattern_try_new as JavaScript's `new URLPattern(pattern, baseURL)`:
 * the base URL applies to absolute patterns too. */
urlpattern_t *urlpattern__try_new_js(const char *pattern, size_t len, const char *base_url, const char **why)
    __attribute__((warn_unused_result));

/* Compiles a pattern from a dictionary, as `new URLPattern(init)` does
 * (tests: the web-platform-tests cases use this form). Like
 * urlpattern_try_new. */
urlpattern_t *urlpattern__try_new_init(const urlpattern_init_t *init, const char **why)
    __attribute__((warn_unused_result));

/* Matches a dictionary input, as `pattern.test(init)` does: 1 or 0 (0 too
 * when a component of the dictionary cannot be canonicalized). If seen is
 * not NULL and the input was processed, seen[c] receives each component
 * string matched (malloc'ed, the caller frees; NULL otherwise). */
int urlpattern__match_init(const urlpattern_t *p, const urlpattern_init_t *input, char **seen);

/* Matches a URL string relative to base_url (NULL: none), as
 * `pattern.test(url, baseURL)` does; unlike urlpattern_match, the pattern's
 * own base URL is not used. 1 or 0; `seen` as for urlpattern__match_init. */
int urlpattern__match_url(const urlpattern_t *p, const char *url, size_t len, const char *base_url,
                          char **seen);

/* The state visits made by the last urlpattern_match on this thread. */
uint64_t urlpattern__last_steps(void);

#endif
