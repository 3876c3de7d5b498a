/*
 * regex.h - linear-time regular expressions for URL pattern components: an
 * expression tree built by the caller and by a parser for the subset of
 * JavaScript regular expression syntax (with the "v" flag, no other flag)
 * that URL patterns use in their regexp groups, compiled into a Thompson NFA
 * and matched by simulating it. There is no backtracking: a match costs at
 * most (subject length + 1) x (number of states) state visits, whatever the
 * expression, so a hostile pattern cannot make matching slow.
 *
 * Only whole-subject matching is offered (the expression is implicitly
 * anchored at both ends) and only the yes/no answer: no capture positions.
 * Greedy and lazy quantifiers therefore mean the same thing.
 *
 * Subjects are ASCII (URL components after canonicalization always are); a
 * byte >= 0x80 matches nothing. Character sets are sets of ASCII characters:
 * a code point above U+007F in an expression (say "\u00e9") is valid syntax
 * but can never match, and a negated set never contains one.
 *
 * The supported syntax (anything else is refused, see regex_parse):
 *   literals, escapes \t \n \v \f \r \0 \cX \xHH \uHHHH \u{H..} and escaped
 *   syntax characters; "."; \d \D \w \W \s \S; classes [...] and [^...] with
 *   ranges, nested classes and the v-flag set operations "&&" and "--";
 *   alternation; groups (?:...) and (?<name>...); quantifiers ? * + {n}
 *   {n,} {n,m} (greedy or lazy); the assertions ^ $ \b \B.
 * Refused as unsupported (valid JavaScript, not offered here): backreferences
 * (\1, \k<name>), lookahead and lookbehind, \p{...}, \q{...}, modifiers
 * (?i:...), non-ASCII group names, counts above REGEX_MAX_REPEAT.
 *
 * Threads: a builder belongs to one thread; a compiled regex_t is immutable
 * and may be matched from any number of threads at once.
 */
#ifndef COURANT_REGEX_H
#define COURANT_REGEX_H

#include <stddef.h>
#include <stdint.h>

#define REGEX_MAX_NODES 16384 /* expression tree nodes per builder */
#define REGEX_MAX_SETS 1024   /* distinct character sets per builder */
#define REGEX_MAX_DEPTH 32    /* nesting of groups and classes in parsed source */
#define REGEX_MAX_REPEAT 100  /* largest count in {n,m} */
#define REGEX_MAX_STATES 8192 /* hard ceiling for one NFA (callers pass less) */

/* A set of ASCII characters, bit c of w[c >> 6]. */
typedef struct regex_set {
    uint64_t w[2];
} regex_set_t;

typedef enum regex_assert {
    REGEX_BEGIN,
    REGEX_END,
    REGEX_WORD_BOUNDARY,
    REGEX_NOT_WORD_BOUNDARY
} regex_assert_t;

/* An expression tree under construction. Node ids are ints >= 0; a function
 * given -1 (an earlier failure) returns -1, so calls can be chained and the
 * failure checked once. */
typedef struct regex_builder regex_builder_t;

/* NULL when out of memory. */
regex_builder_t *regex_builder_new(void);
void regex_builder_free(regex_builder_t *b);

/* The reason of the first failure (static string), or NULL. A reason that
 * starts with "unsupported" names valid syntax this module does not offer;
 * any other names invalid syntax or a budget. */
const char *regex_builder_error(const regex_builder_t *b);

/* Nodes. Each returns the new node's id, or -1 (out of memory, a budget). */
int regex_lit(regex_builder_t *b, const char *s, size_t len);   /* these bytes, in order */
int regex_set(regex_builder_t *b, const regex_set_t *set);      /* one character of the set */
int regex_seq(regex_builder_t *b, const int *ids, int n);       /* each in turn (n = 0: empty) */
int regex_alt(regex_builder_t *b, const int *ids, int n);       /* any one of them (n >= 1) */
int regex_repeat(regex_builder_t *b, int id, int min, int max); /* max -1: unbounded */
int regex_assert(regex_builder_t *b, regex_assert_t kind);

/* Parses src[0..len) as the body of a JavaScript regular expression with the
 * "v" flag and returns the root of its tree, or -1 with the reason in
 * regex_builder_error. Group names are remembered across calls on one
 * builder: a name used twice is a syntax error, as in one JavaScript regexp. */
int regex_parse(regex_builder_t *b, const char *src, size_t len);

typedef struct regex regex_t;

/* Compiles the tree under `root` into an NFA of at most max_states states
 * (<= REGEX_MAX_STATES). NULL with the reason in regex_builder_error. The
 * builder can be freed afterwards. */
regex_t *regex_compile(regex_builder_t *b, int root, int max_states) __attribute__((warn_unused_result));
void regex_free(regex_t *r);

/* Number of NFA states. */
int regex_states(const regex_t *r);

/* Does s[0..len) match, as a whole? 1 or 0; -1 when out of memory; -2 when
 * the simulation passed max_steps state visits (0: no limit) and stopped.
 * If steps is not NULL, *steps receives the number of state visits made,
 * at most (len + 1) x regex_states without a limit. */
int regex_match(const regex_t *r, const char *s, size_t len, uint64_t max_steps, uint64_t *steps);

#endif
