/*
 * regex.c - see regex.h. Three parts: the expression tree (built by callers
 * and by the parser), the parser of JavaScript "v"-flag syntax, and the
 * Thompson NFA with its simulation.
 *
 * Tree: nodes live in one array and refer to each other by index. A LIT
 * holds bytes in `lits`, a SEQ or ALT its children's ids in `kids` (n-ary, so
 * a long pattern is a flat sequence rather than a deep chain: emitting it
 * recurses only as deep as groups nest, and groups nest at most
 * REGEX_MAX_DEPTH in parsed source).
 *
 * NFA: built backwards, each node emitted in front of the state that follows
 * it (its continuation), so no patch lists are needed:
 *
 *   a|b       SPLIT -> a -> next          x{2,}   x -> x -> L: SPLIT -> x -> L
 *                  \-> b -> next                                  \-> next
 *   x{0,2}    SPLIT -> x -> SPLIT -> x -> next
 *                 \-> next     \-> next
 *
 * A state consumes one byte (BYTE, SET), or moves without consuming (SPLIT,
 * and ASSERT when its condition holds at the current position), or
 * accepts (MATCH). Simulation keeps the set of consuming states reachable
 * after each byte; each state is visited at most once per position, which
 * is the linear bound regex.h promises. Emission is bounded too: it stops at
 * the caller's state budget, and counts its own calls so that repeating
 * something empty (which allocates no state) cannot spin.
 */
#include "regex.h"

#include <stdlib.h>
#include <string.h>

/* ---- the tree -------------------------------------------------------------------- */

enum { N_LIT, N_SET, N_SEQ, N_ALT, N_REPEAT, N_ASSERT };

typedef struct rnode {
    uint8_t kind;  /* N_* */
    uint8_t akind; /* N_ASSERT: regex_assert_t */
    int32_t a;     /* LIT: offset in lits; SET: set index; SEQ/ALT: offset in kids; REPEAT: child */
    int32_t n;     /* LIT: bytes; SEQ/ALT: children */
    int32_t min;   /* REPEAT */
    int32_t max;   /* REPEAT: -1 unbounded */
} rnode_t;

#define MAX_LITS (1 << 20)
#define MAX_KIDS (1 << 20)
#define MAX_NAMES 4096

struct regex_builder {
    rnode_t *nodes; /* owns */
    int nnodes, cap_nodes;
    regex_set_t *sets; /* owns */
    int nsets, cap_sets;
    int32_t *kids; /* owns: children lists of SEQ and ALT nodes */
    int nkids, cap_kids;
    char *lits; /* owns: bytes of LIT nodes */
    int nlits, cap_lits;
    int32_t *scratch; /* owns: the parser's stack of children being collected */
    int nscratch, cap_scratch;
    char names[MAX_NAMES]; /* group names seen, each NUL-terminated */
    int names_len;
    const char *why; /* the first failure's reason, static */
};

/* Grows *arr (elem bytes each) to hold need elements, up to max. */
static int grow(regex_builder_t *b, void **arr, int *cap, int need, size_t elem, int max)
{
    if (need <= *cap)
        return 0;
    if (need > max) {
        b->why = b->why ? b->why : "pattern too complex (expression size budget)";
        return -1;
    }
    int c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    if (c > max)
        c = max;
    void *p = realloc(*arr, (size_t)c * elem);
    if (!p) {
        b->why = b->why ? b->why : "out of memory";
        return -1;
    }
    *arr = p;
    *cap = c;
    return 0;
}

static int fail(regex_builder_t *b, const char *why)
{
    if (!b->why)
        b->why = why;
    return -1;
}

regex_builder_t *regex_builder_new(void) { return calloc(1, sizeof(regex_builder_t)); }

void regex_builder_free(regex_builder_t *b)
{
    if (!b)
        return;
    free(b->nodes);
    free(b->sets);
    free(b->kids);
    free(b->lits);
    free(b->scratch);
    free(b);
}

const char *regex_builder_error(const regex_builder_t *b) { return b->why; }

static int new_node(regex_builder_t *b, rnode_t n)
{
    if (b->why || grow(b, (void **)&b->nodes, &b->cap_nodes, b->nnodes + 1, sizeof(rnode_t), REGEX_MAX_NODES))
        return -1;
    b->nodes[b->nnodes] = n;
    return b->nnodes++;
}

int regex_lit(regex_builder_t *b, const char *s, size_t len)
{
    if (b->why || len > MAX_LITS ||
        grow(b, (void **)&b->lits, &b->cap_lits, b->nlits + (int)len, 1, MAX_LITS))
        return b->why ? -1 : fail(b, "pattern too complex (expression size budget)");
    if (len)
        memcpy(b->lits + b->nlits, s, len);
    b->nlits += (int)len;
    return new_node(b, (rnode_t){N_LIT, 0, b->nlits - (int32_t)len, (int32_t)len, 0, 0});
}

int regex_set(regex_builder_t *b, const regex_set_t *set)
{
    for (int i = 0; i < b->nsets; i++) /* small: most patterns use a handful */
        if (!memcmp(&b->sets[i], set, sizeof(*set)))
            return new_node(b, (rnode_t){N_SET, 0, i, 0, 0, 0});
    if (b->why || grow(b, (void **)&b->sets, &b->cap_sets, b->nsets + 1, sizeof(regex_set_t), REGEX_MAX_SETS))
        return -1;
    b->sets[b->nsets] = *set;
    return new_node(b, (rnode_t){N_SET, 0, b->nsets++, 0, 0, 0});
}

static int list_node(regex_builder_t *b, int kind, const int *ids, int n)
{
    if (b->why)
        return -1;
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= b->nnodes)
            return fail(b, "internal error: bad node");
    if (grow(b, (void **)&b->kids, &b->cap_kids, b->nkids + n, sizeof(int32_t), MAX_KIDS))
        return -1;
    for (int i = 0; i < n; i++)
        b->kids[b->nkids + i] = ids[i];
    b->nkids += n;
    return new_node(b, (rnode_t){(uint8_t)kind, 0, b->nkids - n, n, 0, 0});
}

int regex_seq(regex_builder_t *b, const int *ids, int n) { return list_node(b, N_SEQ, ids, n); }

int regex_alt(regex_builder_t *b, const int *ids, int n)
{
    return n == 1  ? ids[0]
           : n < 1 ? fail(b, "internal error: empty alternation")
                   : list_node(b, N_ALT, ids, n);
}

int regex_repeat(regex_builder_t *b, int id, int min, int max)
{
    if (id < 0)
        return -1;
    if (min > REGEX_MAX_REPEAT || max > REGEX_MAX_REPEAT)
        return fail(b, "unsupported: a repetition count above 100");
    return new_node(b, (rnode_t){N_REPEAT, 0, id, 0, min, max});
}

int regex_assert(regex_builder_t *b, regex_assert_t kind)
{
    return new_node(b, (rnode_t){N_ASSERT, (uint8_t)kind, 0, 0, 0, 0});
}

/* ---- character sets ------------------------------------------------------------------ */

static void set_add(regex_set_t *s, uint32_t c)
{
    if (c < 128)
        s->w[c >> 6] |= 1ull << (c & 63);
}

static void set_range(regex_set_t *s, uint32_t lo, uint32_t hi)
{
    for (uint32_t c = lo; c <= hi && c < 128; c++)
        set_add(s, c);
}

static int set_has(const regex_set_t *s, unsigned char c)
{
    return c < 128 && ((s->w[c >> 6] >> (c & 63)) & 1);
}

static void set_not(regex_set_t *s)
{
    s->w[0] = ~s->w[0];
    s->w[1] = ~s->w[1];
}

/* \d \w \s and their negations; "." (no "s" flag: not \n \r). */
static regex_set_t class_escape(char c)
{
    regex_set_t s = {{0, 0}};
    switch (c | 32) {
    case 'd':
        set_range(&s, '0', '9');
        break;
    case 'w':
        set_range(&s, '0', '9');
        set_range(&s, 'A', 'Z');
        set_range(&s, 'a', 'z');
        set_add(&s, '_');
        break;
    case 's':
        set_range(&s, '\t', '\r');
        set_add(&s, ' ');
        break;
    }
    if (c >= 'A' && c <= 'Z')
        set_not(&s);
    return s;
}

static regex_set_t dot_set(void)
{
    regex_set_t s = {{~0ull, ~0ull}};
    s.w[0] &= ~((1ull << '\n') | (1ull << '\r'));
    return s;
}

/* ---- the parser ---------------------------------------------------------------------- */

typedef struct rparser {
    regex_builder_t *b;
    const char *s; /* borrows: the source */
    size_t n, i;   /* its length, the read position */
    int depth;     /* groups and classes open */
} rparser_t;

static int peek(const rparser_t *p, size_t k) { return p->i + k < p->n ? (unsigned char)p->s[p->i + k] : -1; }

static int perr(rparser_t *p, const char *why) { return fail(p->b, why); }

static int push_scratch(rparser_t *p, int id)
{
    regex_builder_t *b = p->b;
    if (id < 0 || grow(b, (void **)&b->scratch, &b->cap_scratch, b->nscratch + 1, sizeof(int32_t), MAX_KIDS))
        return -1;
    b->scratch[b->nscratch++] = id;
    return 0;
}

static int hexv(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 32;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* n hex digits at the read position; -1 if not. */
static long hex_digits(rparser_t *p, int n)
{
    long v = 0;
    for (int k = 0; k < n; k++) {
        int d = hexv(peek(p, (size_t)k));
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    p->i += (size_t)n;
    return v;
}

/* After "\u": HHHH (joining a surrogate pair) or {H...}. */
static long unicode_escape(rparser_t *p)
{
    if (peek(p, 0) == '{') {
        p->i++;
        long v = 0;
        size_t start = p->i;
        while (hexv(peek(p, 0)) >= 0) {
            v = v * 16 + hexv(peek(p, 0));
            if (v > 0x10FFFF)
                return -1;
            p->i++;
        }
        if (p->i == start || peek(p, 0) != '}')
            return -1;
        p->i++;
        return v;
    }
    long v = hex_digits(p, 4);
    if (v >= 0xD800 && v <= 0xDBFF && peek(p, 0) == '\\' && peek(p, 1) == 'u') {
        size_t save = p->i;
        p->i += 2;
        long lo = hex_digits(p, 4);
        if (lo >= 0xDC00 && lo <= 0xDFFF)
            return 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
        p->i = save;
    }
    return v;
}

/* Is c (a byte, or -1 at the end) one of set's characters? */
static int in_str(const char *set, int c) { return c > 0 && strchr(set, c) != NULL; }

static int is_syntax_char(int c) { return in_str("^$\\.*+?()[]{}|/", c); }

/* A CharacterEscape after the backslash (read position on the letter):
 * the code point, or -1 (invalid; the reason is set). */
static long char_escape(rparser_t *p, int in_class)
{
    int c = peek(p, 0);
    p->i++;
    switch (c) {
    case 't':
        return '\t';
    case 'n':
        return '\n';
    case 'v':
        return '\v';
    case 'f':
        return '\f';
    case 'r':
        return '\r';
    case 'c': {
        int l = peek(p, 0);
        if ((l | 32) >= 'a' && (l | 32) <= 'z') {
            p->i++;
            return l % 32;
        }
        return perr(p, "invalid regexp: bad \\c escape");
    }
    case '0':
        if (peek(p, 0) >= '0' && peek(p, 0) <= '9')
            return perr(p, "invalid regexp: bad \\0 escape");
        return 0;
    case 'x': {
        long v = hex_digits(p, 2);
        return v < 0 ? perr(p, "invalid regexp: bad \\x escape") : v;
    }
    case 'u': {
        long v = unicode_escape(p);
        return v < 0 ? perr(p, "invalid regexp: bad \\u escape") : v;
    }
    }
    if (is_syntax_char(c))
        return c;
    if (in_class && c == 'b')
        return 8;
    if (in_class && in_str("&-!#%,:;<=>@`~", c))
        return c;
    return perr(p, "invalid regexp: bad escape");
}

/* A source character (UTF-8 decoded) at the read position. */
static long source_char(rparser_t *p)
{
    const unsigned char *u = (const unsigned char *)p->s + p->i;
    size_t left = p->n - p->i;
    if (u[0] < 0x80 || left < 2) {
        p->i++;
        return u[0];
    }
    int len = u[0] >= 0xF0 ? 4 : u[0] >= 0xE0 ? 3 : 2;
    if ((size_t)len > left)
        len = (int)left;
    long v = u[0] & (0x7F >> len);
    for (int k = 1; k < len; k++)
        v = (v << 6) | (u[k] & 0x3F);
    p->i += (size_t)len;
    return v;
}

static int parse_disjunction(rparser_t *p);
static int parse_class(rparser_t *p, regex_set_t *out);

/* A ClassSetCharacter: its code point, or -1. */
static long class_set_char(rparser_t *p)
{
    int c = peek(p, 0);
    if (c < 0)
        return perr(p, "invalid regexp: unterminated character class");
    if (c == '\\') {
        p->i++;
        if (peek(p, 0) < 0)
            return perr(p, "invalid regexp: \\ at end of pattern");
        return char_escape(p, 1);
    }
    if (in_str("()[]{}/-|", c))
        return perr(p, "invalid regexp: unescaped syntax character in class");
    if (peek(p, 1) == c && in_str("&!#$%*+,.:;<=>?@^`~", c))
        return perr(p, "invalid regexp: reserved double punctuator in class");
    return source_char(p);
}

/* One operand of a class ([nested], \d..., a character) or, when ranges
 * are allowed, a range a-z. */
static int class_operand(rparser_t *p, regex_set_t *out, int allow_range, int *was_range)
{
    *was_range = 0;
    memset(out, 0, sizeof(*out));
    int c = peek(p, 0);
    if (c == '[')
        return parse_class(p, out);
    if (c == '\\') {
        int e = peek(p, 1);
        if (in_str("dDwWsS", e)) {
            p->i += 2;
            *out = class_escape((char)e);
            return 0;
        }
        if (e == 'p' || e == 'P')
            return perr(p, "unsupported regexp feature: \\p{...} property escapes");
        if (e == 'q')
            return perr(p, "unsupported regexp feature: \\q{...} class strings");
    }
    long lo = class_set_char(p);
    if (lo < 0)
        return -1;
    if (allow_range && peek(p, 0) == '-' && peek(p, 1) != '-') {
        p->i++;
        long hi = class_set_char(p);
        if (hi < 0)
            return -1;
        if (lo > hi)
            return perr(p, "invalid regexp: range out of order in character class");
        set_range(out, (uint32_t)lo, (uint32_t)hi);
        *was_range = 1;
        return 0;
    }
    set_add(out, (uint32_t)lo);
    return 0;
}

static int at_op(const rparser_t *p, char op) { return peek(p, 0) == op && peek(p, 1) == op; }

/* ClassContents (v mode): a union, or an intersection / subtraction chain. */
static int class_contents(rparser_t *p, regex_set_t *acc)
{
    memset(acc, 0, sizeof(*acc));
    if (peek(p, 0) == ']')
        return 0;
    int range;
    if (class_operand(p, acc, 1, &range))
        return -1;
    if (at_op(p, '&') || at_op(p, '-')) {
        char op = (char)peek(p, 0);
        if (range)
            return perr(p, "invalid regexp: a range in a set operation");
        while (at_op(p, op)) {
            p->i += 2;
            if (op == '&' && peek(p, 0) == '&')
                return perr(p, "invalid regexp: &&& in class");
            regex_set_t x;
            if (class_operand(p, &x, 0, &range))
                return -1;
            acc->w[0] = op == '&' ? acc->w[0] & x.w[0] : acc->w[0] & ~x.w[0];
            acc->w[1] = op == '&' ? acc->w[1] & x.w[1] : acc->w[1] & ~x.w[1];
        }
        if (peek(p, 0) != ']')
            return perr(p, "invalid regexp: mixed set operations in class");
        return 0;
    }
    while (peek(p, 0) != ']') {
        regex_set_t x;
        if (class_operand(p, &x, 1, &range))
            return -1;
        acc->w[0] |= x.w[0];
        acc->w[1] |= x.w[1];
    }
    return 0;
}

static int parse_class(rparser_t *p, regex_set_t *out)
{
    p->i++; /* [ */
    if (++p->depth > REGEX_MAX_DEPTH)
        return perr(p, "pattern too complex (regexp nesting budget)");
    int negate = peek(p, 0) == '^';
    if (negate)
        p->i++;
    if (class_contents(p, out))
        return -1;
    if (peek(p, 0) != ']')
        return perr(p, "invalid regexp: unterminated character class");
    p->i++;
    p->depth--;
    if (negate)
        set_not(out);
    return 0;
}

/* "(?<name>": a group name, checked for duplicates on this builder. */
static int group_name(rparser_t *p)
{
    size_t start = p->i;
    while (peek(p, 0) >= 0 && peek(p, 0) != '>') {
        int c = peek(p, 0);
        if (c == '\\' || c >= 0x80)
            return perr(p, "unsupported regexp feature: escaped or non-ASCII group name");
        int ok = (c | 32) >= 'a' && (c | 32) <= 'z';
        ok |= c == '_' || c == '$' || (p->i > start && c >= '0' && c <= '9');
        if (!ok)
            return perr(p, "invalid regexp: bad group name");
        p->i++;
    }
    size_t len = p->i - start;
    if (len == 0 || peek(p, 0) != '>')
        return perr(p, "invalid regexp: bad group name");
    p->i++;
    regex_builder_t *b = p->b;
    for (int k = 0; k < b->names_len; k += (int)strlen(b->names + k) + 1)
        if (strlen(b->names + k) == len && memcmp(b->names + k, p->s + start, len) == 0)
            return perr(p, "invalid regexp: duplicate group name");
    if (b->names_len + (int)len + 1 > MAX_NAMES)
        return perr(p, "pattern too complex (group names budget)");
    memcpy(b->names + b->names_len, p->s + start, len);
    b->names_len += (int)len;
    b->names[b->names_len++] = 0;
    return 0;
}

/* After "(": the group's tree. */
static int parse_group(rparser_t *p)
{
    p->i++;
    if (peek(p, 0) == '?') {
        int c = peek(p, 1);
        if (c == ':') {
            p->i += 2;
        } else if (c == '=' || c == '!' || (c == '<' && (peek(p, 2) == '=' || peek(p, 2) == '!'))) {
            return perr(p, "unsupported regexp feature: lookahead or lookbehind");
        } else if (c == '<') {
            p->i += 2;
            if (group_name(p))
                return -1;
        } else if (c == '-' || ((c | 32) >= 'a' && (c | 32) <= 'z')) {
            return perr(p, "unsupported regexp feature: (?flags:...) modifiers");
        } else {
            return perr(p, "invalid regexp: bad group");
        }
    }
    if (++p->depth > REGEX_MAX_DEPTH)
        return perr(p, "pattern too complex (regexp nesting budget)");
    int id = parse_disjunction(p);
    if (id < 0)
        return -1;
    if (peek(p, 0) != ')')
        return perr(p, "invalid regexp: unterminated group");
    p->i++;
    p->depth--;
    return id;
}

/* An atom after a backslash (outside classes). */
static int atom_escape(rparser_t *p)
{
    p->i++;
    int c = peek(p, 0);
    if (c < 0)
        return perr(p, "invalid regexp: \\ at end of pattern");
    if (in_str("dDwWsS", c)) {
        p->i++;
        regex_set_t s = class_escape((char)c);
        return regex_set(p->b, &s);
    }
    if (c == 'p' || c == 'P')
        return perr(p, "unsupported regexp feature: \\p{...} property escapes");
    if (c == 'k' || (c >= '1' && c <= '9'))
        return perr(p, "unsupported regexp feature: backreferences");
    long cp = char_escape(p, 0);
    if (cp < 0)
        return -1;
    if (cp < 128) {
        char ch = (char)cp;
        return regex_lit(p->b, &ch, 1);
    }
    regex_set_t none = {{0, 0}}; /* a code point no ASCII subject contains */
    return regex_set(p->b, &none);
}

static int parse_atom(rparser_t *p)
{
    int c = peek(p, 0);
    switch (c) {
    case '.': {
        p->i++;
        regex_set_t s = dot_set();
        return regex_set(p->b, &s);
    }
    case '(':
        return parse_group(p);
    case '[': {
        regex_set_t s;
        if (parse_class(p, &s))
            return -1;
        return regex_set(p->b, &s);
    }
    case '\\':
        return atom_escape(p);
    case '*':
    case '+':
    case '?':
        return perr(p, "invalid regexp: nothing to repeat");
    case '{':
    case '}':
    case ']':
        return perr(p, "invalid regexp: lone quantifier bracket");
    case ')':
        return perr(p, "invalid regexp: unmatched )");
    }
    long cp = source_char(p);
    if (cp < 128) {
        char ch = (char)cp;
        return regex_lit(p->b, &ch, 1);
    }
    regex_set_t none = {{0, 0}};
    return regex_set(p->b, &none);
}

/* A decimal count at the read position, saturated; -1 if no digit. */
static long count(rparser_t *p)
{
    long v = -1;
    while (peek(p, 0) >= '0' && peek(p, 0) <= '9') {
        v = (v < 0 ? 0 : v) * 10 + (peek(p, 0) - '0');
        if (v > 1000000)
            v = 1000000;
        p->i++;
    }
    return v;
}

/* A {n}, {n,} or {n,m} quantifier at the read position: 1 and the counts,
 * 0 if the brace does not start one (the caller then fails). */
static int brace_quantifier(rparser_t *p, long *min, long *max)
{
    size_t save = p->i;
    p->i++;
    *min = count(p);
    *max = *min;
    if (*min >= 0 && peek(p, 0) == ',') {
        p->i++;
        *max = count(p);
    }
    if (*min >= 0 && peek(p, 0) == '}') {
        p->i++;
        return 1;
    }
    p->i = save;
    return 0;
}

static int parse_term(rparser_t *p)
{
    int c = peek(p, 0);
    if (c == '^' || c == '$') {
        p->i++;
        return regex_assert(p->b, c == '^' ? REGEX_BEGIN : REGEX_END);
    }
    if (c == '\\' && (peek(p, 1) == 'b' || peek(p, 1) == 'B')) {
        int word = peek(p, 1) == 'b';
        p->i += 2;
        return regex_assert(p->b, word ? REGEX_WORD_BOUNDARY : REGEX_NOT_WORD_BOUNDARY);
    }
    int atom = parse_atom(p);
    if (atom < 0)
        return -1;
    long min, max;
    c = peek(p, 0);
    if (c == '*' || c == '+' || c == '?') {
        p->i++;
        min = c == '+';
        max = c == '?' ? 1 : -1;
    } else if (c == '{') {
        if (!brace_quantifier(p, &min, &max))
            return perr(p, "invalid regexp: incomplete quantifier");
        if (max >= 0 && min > max)
            return perr(p, "invalid regexp: numbers out of order in quantifier");
    } else {
        return atom;
    }
    if (peek(p, 0) == '?')
        p->i++; /* lazy: the same language */
    return regex_repeat(p->b, atom, (int)min, (int)max);
}

static int parse_alternative(rparser_t *p)
{
    regex_builder_t *b = p->b;
    int mark = b->nscratch;
    while (peek(p, 0) >= 0 && peek(p, 0) != '|' && peek(p, 0) != ')')
        if (push_scratch(p, parse_term(p)))
            return -1;
    int id = regex_seq(b, b->scratch + mark, b->nscratch - mark);
    b->nscratch = mark;
    return id;
}

static int parse_disjunction(rparser_t *p)
{
    regex_builder_t *b = p->b;
    int mark = b->nscratch;
    for (;;) {
        if (push_scratch(p, parse_alternative(p)))
            return -1;
        if (peek(p, 0) != '|')
            break;
        p->i++;
    }
    int id = regex_alt(b, b->scratch + mark, b->nscratch - mark);
    b->nscratch = mark;
    return id;
}

int regex_parse(regex_builder_t *b, const char *src, size_t len)
{
    if (b->why)
        return -1;
    rparser_t p = {b, src, len, 0, 0};
    int id = parse_disjunction(&p);
    if (id >= 0 && p.i < len)
        return perr(&p, "invalid regexp: unmatched )");
    return id;
}

/* ---- the NFA ---------------------------------------------------------------------------- */

enum { S_BYTE, S_SET, S_SPLIT, S_ASSERT, S_MATCH };

typedef struct nstate {
    uint8_t op;   /* S_* */
    uint8_t arg;  /* S_BYTE: the byte; S_ASSERT: regex_assert_t */
    uint16_t set; /* S_SET: index into sets */
    int32_t out;  /* next state (consuming edge, or first epsilon edge) */
    int32_t out1; /* S_SPLIT: second epsilon edge */
} nstate_t;

struct regex {
    int nstates;
    int start;
    regex_set_t *sets; /* owns: copied from the builder */
    nstate_t *st;      /* owns */
};

typedef struct emitter {
    regex_builder_t *b;
    nstate_t *st; /* the states so far (owns until handed to regex_t) */
    int n, cap, max;
    long calls, max_calls; /* emit() calls: bounds work that allocates no state */
} emitter_t;

static int new_state(emitter_t *e, nstate_t s)
{
    if (e->n >= e->max)
        return fail(e->b, "pattern too complex (NFA state budget)");
    if (grow(e->b, (void **)&e->st, &e->cap, e->n + 1, sizeof(nstate_t), REGEX_MAX_STATES))
        return -1;
    e->st[e->n] = s;
    return e->n++;
}

static int emit(emitter_t *e, int id, int next);

/* x{min,max} in front of next. */
static int emit_repeat(emitter_t *e, const rnode_t *nd, int next)
{
    int t = next;
    if (nd->max < 0) {
        int loop = new_state(e, (nstate_t){S_SPLIT, 0, 0, -1, next});
        if (loop < 0)
            return -1;
        int body = emit(e, nd->a, loop);
        if (body < 0)
            return -1;
        e->st[loop].out = body;
        t = loop;
    } else {
        for (int k = 0; k < nd->max - nd->min; k++) {
            int s = new_state(e, (nstate_t){S_SPLIT, 0, 0, -1, next});
            if (s < 0)
                return -1;
            int body = emit(e, nd->a, t);
            if (body < 0)
                return -1;
            e->st[s].out = body;
            t = s;
        }
    }
    for (int k = 0; k < nd->min; k++)
        if ((t = emit(e, nd->a, t)) < 0)
            return -1;
    return t;
}

static int emit(emitter_t *e, int id, int next)
{
    if (++e->calls > e->max_calls)
        return fail(e->b, "pattern too complex (NFA state budget)");
    const rnode_t nd = e->b->nodes[id];
    switch (nd.kind) {
    case N_LIT:
        for (int k = nd.n - 1; k >= 0 && next >= 0; k--)
            next = new_state(e, (nstate_t){S_BYTE, (uint8_t)e->b->lits[nd.a + k], 0, next, -1});
        return next;
    case N_SET:
        return new_state(e, (nstate_t){S_SET, 0, (uint16_t)nd.a, next, -1});
    case N_SEQ:
        for (int k = nd.n - 1; k >= 0 && next >= 0; k--)
            next = emit(e, e->b->kids[nd.a + k], next);
        return next;
    case N_ALT: {
        int start = emit(e, e->b->kids[nd.a + nd.n - 1], next);
        for (int k = nd.n - 2; k >= 0 && start >= 0; k--) {
            int first = emit(e, e->b->kids[nd.a + k], next);
            start = first < 0 ? -1 : new_state(e, (nstate_t){S_SPLIT, 0, 0, first, start});
        }
        return start;
    }
    case N_REPEAT:
        return emit_repeat(e, &nd, next);
    default:
        return new_state(e, (nstate_t){S_ASSERT, nd.akind, 0, next, -1});
    }
}

regex_t *regex_compile(regex_builder_t *b, int root, int max_states)
{
    if (root < 0 || b->why)
        return NULL;
    if (max_states > REGEX_MAX_STATES)
        max_states = REGEX_MAX_STATES;
    emitter_t e = {b, NULL, 0, 0, max_states, 0, 16L * max_states + 64};
    int match = new_state(&e, (nstate_t){S_MATCH, 0, 0, -1, -1});
    int start = match < 0 ? -1 : emit(&e, root, match);
    regex_t *r = start < 0 ? NULL : calloc(1, sizeof(*r));
    if (r && b->nsets && !(r->sets = malloc((size_t)b->nsets * sizeof(regex_set_t)))) {
        free(r);
        r = NULL;
    }
    if (!r) {
        if (start >= 0)
            fail(b, "out of memory");
        free(e.st);
        return NULL;
    }
    if (b->nsets)
        memcpy(r->sets, b->sets, (size_t)b->nsets * sizeof(regex_set_t));
    r->st = e.st;
    r->nstates = e.n;
    r->start = start;
    return r;
}

void regex_free(regex_t *r)
{
    if (!r)
        return;
    free(r->sets);
    free(r->st);
    free(r);
}

int regex_states(const regex_t *r) { return r->nstates; }

/* ---- simulation --------------------------------------------------------------------------- */

static int is_word(int c)
{
    return c >= 0 && (((c | 32) >= 'a' && (c | 32) <= 'z') || (c >= '0' && c <= '9') || c == '_');
}

typedef struct sim {
    const regex_t *r;
    const unsigned char *s;
    size_t len;
    uint32_t *mark; /* mark[x] == gen: x visited at this position */
    int32_t *stack;
    uint64_t steps;
} sim_t;

static int assert_holds(const sim_t *m, int kind, size_t pos)
{
    int prev = pos > 0 ? m->s[pos - 1] : -1, next = pos < m->len ? m->s[pos] : -1;
    switch (kind) {
    case REGEX_BEGIN:
        return pos == 0;
    case REGEX_END:
        return pos == m->len;
    case REGEX_WORD_BOUNDARY:
        return is_word(prev) != is_word(next);
    default:
        return is_word(prev) == is_word(next);
    }
}

/* Adds x's epsilon closure at position pos to list (consuming states and
 * MATCH only); each state is marked once per position. */
static void closure(sim_t *m, int x, uint32_t gen, size_t pos, int32_t *list, int *n)
{
    int top = 0;
    if (m->mark[x] == gen)
        return;
    m->mark[x] = gen;
    m->stack[top++] = x;
    while (top) {
        const nstate_t *st = &m->r->st[m->stack[--top]];
        m->steps++;
        int outs[2] = {-1, -1};
        switch (st->op) {
        case S_SPLIT:
            outs[0] = st->out, outs[1] = st->out1;
            break;
        case S_ASSERT:
            if (assert_holds(m, st->arg, pos))
                outs[0] = st->out;
            break;
        default:
            list[(*n)++] = (int32_t)(st - m->r->st);
        }
        for (int k = 1; k >= 0; k--)
            if (outs[k] >= 0 && m->mark[outs[k]] != gen) {
                m->mark[outs[k]] = gen;
                m->stack[top++] = outs[k];
            }
    }
}

int regex_match(const regex_t *r, const char *s, size_t len, uint64_t max_steps, uint64_t *steps)
{
    int ns = r->nstates;
    int32_t small[4 * 256];
    int32_t *mem = ns <= 256 ? small : malloc((size_t)ns * 4 * sizeof(int32_t));
    if (!mem)
        return -1;
    int32_t *cur = mem, *nxt = mem + ns;
    sim_t m = {r, (const unsigned char *)s, len, (uint32_t *)(mem + 2 * ns), mem + 3 * ns, 0};
    memset(m.mark, 0, (size_t)ns * sizeof(uint32_t));
    uint32_t gen = 1;
    int ncur = 0, nnxt;
    closure(&m, r->start, gen, 0, cur, &ncur);
    int over = 0;
    for (size_t i = 0; i < len && ncur; i++) {
        if (max_steps && m.steps > max_steps) {
            over = 1;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        nnxt = 0;
        gen++;
        for (int k = 0; k < ncur; k++) {
            const nstate_t *st = &r->st[cur[k]];
            if ((st->op == S_BYTE && st->arg == c) || (st->op == S_SET && set_has(&r->sets[st->set], c)))
                closure(&m, st->out, gen, i + 1, nxt, &nnxt);
        }
        int32_t *t = cur;
        cur = nxt;
        nxt = t;
        ncur = nnxt;
    }
    int matched = over || (max_steps && m.steps > max_steps) ? -2 : 0;
    for (int k = 0; k < ncur && !matched; k++)
        matched = r->st[cur[k]].op == S_MATCH;
    if (steps)
        *steps = m.steps;
    if (mem != small)
        free(mem);
    return matched;
}
