/*
 * pattern.h - URL Pattern "pattern strings" (https://urlpattern.spec.whatwg.org/
 * #pattern-strings): the path-to-regexp-like syntax of one URL component
 * pattern, such as "/books/:id(\\d+)?" or "{:sub.}?example.com".
 *
 * Three algorithms of the standard live here:
 *   - tokenize: a pattern string into tokens (also used, with the lenient
 *     policy, by the constructor string parser in urlpattern.c);
 *   - parse a pattern string: tokens into a part list, each part a fixed
 *     text, a regexp group, a segment wildcard (":name") or a full wildcard
 *     ("*"), with an optional prefix and suffix and a modifier (? * +). The
 *     fixed text is canonicalized through the caller's encoding callback;
 *   - generate a pattern string: a part list back into its normalized form
 *     (what the URLPattern getters return).
 *
 *   "/books/:id?"  ->  [ fixed "/books" ] [ segment "id", prefix "/", optional ]
 *
 * Offsets are byte offsets into the (UTF-8) input; code points matter only
 * for group names, which follow JavaScript identifiers (ICU's ID_Start and
 * ID_Continue properties, plus "$", "_", ZWNJ and ZWJ).
 *
 * Threads: pure functions; the results belong to the caller.
 */
#ifndef COURANT_PATTERN_H
#define COURANT_PATTERN_H

#include "url.h"

#include <stddef.h>
#include <stdint.h>

typedef enum pattern_token_type {
    TOK_INVALID_CHAR,   /* lenient policy only: a character that cannot start a token */
    TOK_OPEN,           /* { */
    TOK_CLOSE,          /* } */
    TOK_REGEXP,         /* (...): value is what is inside the parentheses */
    TOK_NAME,           /* :name: value is the name */
    TOK_CHAR,           /* any other character */
    TOK_ESCAPED_CHAR,   /* \c: value is c */
    TOK_OTHER_MODIFIER, /* ? or + */
    TOK_ASTERISK,       /* * */
    TOK_END,            /* the end of the input */
} pattern_token_type_t;

typedef struct pattern_token {
    uint8_t type;       /* pattern_token_type_t */
    uint32_t index;     /* byte offset of the token in the input */
    uint32_t value;     /* byte offset of its value */
    uint32_t value_len; /* the value's length in bytes */
} pattern_token_t;

/* Tokenizes in[0..len) (valid UTF-8). Strict: an invalid sequence fails;
 * lenient: it becomes TOK_INVALID_CHAR. The array ends with a TOK_END token
 * and is the caller's to free(). 0, or -1 with a static reason in *why. */
int pattern_tokenize(const char *in, size_t len, int lenient, pattern_token_t **tokens, int *ntokens,
                     const char **why) __attribute__((warn_unused_result));

/* Is cp a valid group name code point (first: the first of the name)? */
int pattern_is_name_cp(uint32_t cp, int first);

typedef enum pattern_part_type { PART_FIXED, PART_REGEXP, PART_SEGMENT, PART_FULL } pattern_part_type_t;
typedef enum pattern_modifier {
    MOD_NONE,
    MOD_OPTIONAL,
    MOD_ZERO_OR_MORE,
    MOD_ONE_OR_MORE
} pattern_modifier_t;

typedef struct pattern_part {
    uint8_t type;     /* pattern_part_type_t */
    uint8_t modifier; /* pattern_modifier_t */
    url_str_t value;  /* owns: FIXED: the encoded text; REGEXP: the regexp source */
    url_str_t name;   /* owns: the group's name (digits for unnamed groups); empty for FIXED */
    url_str_t prefix; /* owns: encoded text before the group */
    url_str_t suffix; /* owns: encoded text after the group */
} pattern_part_t;

/* The standard's "options": delimiter and prefix code points, 0 for none. */
typedef struct pattern_options {
    char delimiter; /* "/" for pathnames, "." for hostnames */
    char prefix;    /* "/" for pathnames */
} pattern_options_t;

/* An encoding callback: canonicalizes in[0..len) (fixed text of the
 * pattern) into out (reset by the callee). 0, or -1 if the text cannot be
 * part of this component (the pattern is then invalid). */
typedef int (*pattern_encode_cb)(void *ctx, const char *in, size_t len, url_str_t *out);

/* Parses the pattern string in[0..len) (valid UTF-8) into a part list (an
 * array the caller releases with pattern_parts_free). 0, or -1 with a static
 * reason in *why. */
int pattern_parse(const char *in, size_t len, const pattern_options_t *opt, pattern_encode_cb encode,
                  void *ctx, pattern_part_t **parts, int *nparts, const char **why)
    __attribute__((warn_unused_result));

void pattern_parts_free(pattern_part_t *parts, int nparts);

/* Writes the normalized pattern string of a part list to out (reset
 * first). 0, or -1 when out of memory / too long. */
int pattern_generate(const pattern_part_t *parts, int nparts, const pattern_options_t *opt, url_str_t *out)
    __attribute__((warn_unused_result));

/* Escapes in[0..len) as pattern text (the standard's "escape a pattern
 * string": a backslash before + * ? : { } ( ) \), appending to out. */
int pattern_escape(const char *in, size_t len, url_str_t *out) __attribute__((warn_unused_result));

#endif
