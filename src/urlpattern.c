/*
 * urlpattern.c - see urlpattern.h. The standard's algorithms in the order a
 * pattern meets them:
 *
 *   constructor string --parse a constructor string--> init (8 strings, some absent)
 *   init + base URL    --process a URLPatternInit-->    processed init ("*" where absent)
 *   each component     --parse a pattern string (pattern.c), encoding
 *                        callbacks (canonicalize_*)-->  part list
 *   part list          --expression tree, Thompson NFA (regex.c)--> component_t
 *
 * A component that is a lone full wildcard ("*") is never evaluated, and one
 * that is only fixed text is a byte comparison: most patterns ("https://
 * example.com/books/:id") have one NFA, for the pathname.
 *
 * Memory per compiled pattern: the source text, the base URL record, eight
 * pattern strings and the NFAs (16 bytes a state), a few KiB for typical
 * patterns, 64 KiB at most for the NFAs. Matching allocates the parsed topic
 * and, for NFAs over 256 states, the simulation's state lists.
 */
#include "urlpattern.h"

#include "pattern.h"
#include "regex.h"
#include "url.h"
#include "urlcanon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(URLPATTERN_MAX_REPEAT == REGEX_MAX_REPEAT, "urlpattern.h documents regex.h's repeat budget");
_Static_assert(URLPATTERN_MAX_STATES <= REGEX_MAX_STATES, "a pattern's state budget fits one NFA's ceiling");

enum { C_ANY, C_EXACT, C_NFA };

typedef struct component {
    url_str_t pattern;  /* owns: the normalized pattern string */
    uint8_t kind;       /* C_ANY: always matches; C_EXACT: equals `exact`; C_NFA: `re` */
    uint8_t has_regexp; /* a regexp group was used */
    url_str_t exact;    /* owns (C_EXACT): the canonical fixed text */
    regex_t *re;        /* owns (C_NFA) */
} component_t;

struct urlpattern {
    char *text; /* owns: the pattern as given, NUL-terminated */
    size_t len; /* its length */
    url_t base; /* owns: the parsed base URL (when has_base) */
    int has_base;
    component_t c[URLPATTERN_COMPONENTS];
    int states; /* NFA states, all components */
};

/* A URLPatternInit being processed: each member absent or a string. */
typedef struct init {
    url_str_t v[URLPATTERN_COMPONENTS]; /* owns */
    uint8_t has[URLPATTERN_COMPONENTS];
} init_t;

static void init_free(init_t *in)
{
    for (int i = 0; i < URLPATTERN_COMPONENTS; i++)
        url_str_free(&in->v[i]);
}

static int init_set(init_t *in, int c, const char *s, size_t len)
{
    url_str_reset(&in->v[c]);
    in->has[c] = 1;
    return url_str_append(&in->v[c], s, len);
}

static __thread uint64_t last_steps;

uint64_t urlpattern__last_steps(void) { return last_steps; }

/* ---- compiling a component ------------------------------------------------------------ */

static const pattern_options_t default_options = {0, 0};
static const pattern_options_t hostname_options = {'.', 0};
static const pattern_options_t pathname_options = {'/', '/'};

static void modifier_counts(int m, int *min, int *max)
{
    *min = m == MOD_NONE || m == MOD_ONE_OR_MORE;
    *max = m == MOD_NONE || m == MOD_OPTIONAL ? 1 : -1;
}

static int lit(regex_builder_t *b, const url_str_t *s) { return regex_lit(b, url_str_ptr(s), s->len); }

/* The expression of one group's own match: segment, full wildcard or regexp. */
static int group_node(regex_builder_t *b, const pattern_part_t *part, const pattern_options_t *opt)
{
    regex_set_t set = {{~0ull, ~0ull}};
    switch (part->type) {
    case PART_SEGMENT:
        if (opt->delimiter)
            set.w[(unsigned char)opt->delimiter >> 6] &= ~(1ull << (opt->delimiter & 63));
        return regex_repeat(b, regex_set(b, &set), 1, -1);
    case PART_FULL:
        set.w[0] &= ~((1ull << '\n') | (1ull << '\r'));
        return regex_repeat(b, regex_set(b, &set), 0, -1);
    default:
        return regex_parse(b, url_str_ptr(&part->value), part->value.len);
    }
}

/* One part, as the standard's "generate a regular expression" writes it. */
static int part_node(regex_builder_t *b, const pattern_part_t *part, const pattern_options_t *opt)
{
    int min, max;
    modifier_counts(part->modifier, &min, &max);
    if (part->type == PART_FIXED)
        return part->modifier == MOD_NONE ? lit(b, &part->value)
                                          : regex_repeat(b, lit(b, &part->value), min, max);
    int g = group_node(b, part, opt);
    if (!part->prefix.len && !part->suffix.len)
        return part->modifier == MOD_NONE ? g : regex_repeat(b, g, min, max);
    if (part->modifier == MOD_NONE || part->modifier == MOD_OPTIONAL) {
        int s[3] = {lit(b, &part->prefix), g, lit(b, &part->suffix)};
        int seq = regex_seq(b, s, 3);
        return part->modifier == MOD_NONE ? seq : regex_repeat(b, seq, 0, 1);
    }
    /* prefix (g (suffix prefix g)*) suffix, optional as a whole for "*".
     * The standard writes the regexp twice: parse it twice too, so that a
     * named group in it is a duplicate name, the error JavaScript reports. */
    int again[3] = {lit(b, &part->suffix), lit(b, &part->prefix), group_node(b, part, opt)};
    int s[4] = {lit(b, &part->prefix), g, regex_repeat(b, regex_seq(b, again, 3), 0, -1),
                lit(b, &part->suffix)};
    int seq = regex_seq(b, s, 4);
    return part->modifier == MOD_ZERO_OR_MORE ? regex_repeat(b, seq, 0, 1) : seq;
}

static int build_nfa(component_t *c, const pattern_part_t *parts, int n, const pattern_options_t *opt,
                     int *budget, const char **why)
{
    regex_builder_t *b = regex_builder_new();
    int *ids = malloc((size_t)(n ? n : 1) * sizeof(int));
    int root = -1;
    if (b && ids) {
        for (int i = 0; i < n; i++)
            ids[i] = part_node(b, &parts[i], opt);
        root = regex_seq(b, ids, n);
        c->re = regex_compile(b, root, *budget);
    }
    if (!c->re)
        *why = b && regex_builder_error(b) ? regex_builder_error(b) : "out of memory";
    else
        *budget -= regex_states(c->re);
    free(ids);
    regex_builder_free(b);
    return c->re ? 0 : -1;
}

/* The standard's "compile a component", with `budget` NFA states left. */
static int compile_component(component_t *c, const url_str_t *value, pattern_encode_cb cb, void *ctx,
                             const pattern_options_t *opt, int *budget, const char **why)
{
    pattern_part_t *parts;
    int n;
    if (pattern_parse(url_str_ptr(value), value->len, opt, cb, ctx, &parts, &n, why))
        return -1;
    int r = 0;
    if (pattern_generate(parts, n, opt, &c->pattern)) {
        *why = "out of memory";
        r = -1;
    }
    int fixed = 1;
    for (int i = 0; i < n; i++) {
        c->has_regexp |= parts[i].type == PART_REGEXP;
        fixed &= parts[i].type == PART_FIXED && parts[i].modifier == MOD_NONE;
    }
    if (r) {
    } else if (n == 1 && parts[0].type == PART_FULL && !parts[0].prefix.len && !parts[0].suffix.len) {
        c->kind = C_ANY; /* ".*" with any modifier: every component string (none has \n or \r) */
    } else if (fixed) {
        c->kind = C_EXACT;
        for (int i = 0; i < n && !r; i++)
            r = url_str_append(&c->exact, url_str_ptr(&parts[i].value), parts[i].value.len);
        if (r || url_str_append(&c->exact, "", 0)) {
            *why = "out of memory";
            r = -1;
        }
    } else {
        c->kind = C_NFA;
        r = build_nfa(c, parts, n, opt, budget, why);
    }
    pattern_parts_free(parts, n);
    return r;
}

static void component_free(component_t *c)
{
    url_str_free(&c->pattern);
    url_str_free(&c->exact);
    regex_free(c->re);
    memset(c, 0, sizeof(*c));
}

/* 1, 0, or -1 (out of memory or the step budget). */
static int component_match(const component_t *c, const char *s, size_t len, uint64_t *steps)
{
    if (c->kind == C_ANY)
        return 1;
    if (c->kind == C_EXACT)
        return len == c->exact.len && memcmp(s, url_str_ptr(&c->exact), len) == 0;
    uint64_t used = 0;
    uint64_t left = *steps < URLPATTERN_MAX_STEPS ? URLPATTERN_MAX_STEPS - *steps : 1;
    int r = regex_match(c->re, s, len, left, &used);
    *steps += used;
    return r < 0 ? -1 : r;
}

/* The standard's "protocol component matches a special scheme". */
static int matches_special_scheme(const component_t *c)
{
    static const char *const schemes[] = {"ftp", "file", "http", "https", "ws", "wss"};
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        uint64_t steps = 0;
        if (component_match(c, schemes[i], strlen(schemes[i]), &steps) == 1)
            return 1;
    }
    return 0;
}

/* ---- the constructor string parser -------------------------------------------------------- */

enum {
    CS_INIT,
    CS_PROTOCOL,
    CS_AUTHORITY,
    CS_USERNAME,
    CS_PASSWORD,
    CS_HOSTNAME,
    CS_PORT,
    CS_PATHNAME,
    CS_SEARCH,
    CS_HASH,
    CS_DONE
};

/* The component a state fills, or -1. */
static int cs_component(int state)
{
    static const int map[] = {-1,
                              URLPATTERN_PROTOCOL,
                              -1,
                              URLPATTERN_USERNAME,
                              URLPATTERN_PASSWORD,
                              URLPATTERN_HOSTNAME,
                              URLPATTERN_PORT,
                              URLPATTERN_PATHNAME,
                              URLPATTERN_SEARCH,
                              URLPATTERN_HASH,
                              -1};
    return map[state];
}

typedef struct csparser {
    const char *in;       /* borrows: the constructor string */
    pattern_token_t *tok; /* owns: lenient tokens */
    int ntok;
    init_t *result; /* borrows: what is being filled */
    int component_start, token_index, token_increment, group_depth, ipv6_depth;
    int protocol_special; /* "protocol matches a special scheme flag" */
    int state;            /* CS_* */
    int failed;           /* out of memory, or the protocol did not compile */
    const char *why;
} csparser_t;

static const pattern_token_t *safe_token(const csparser_t *p, int i)
{
    return &p->tok[i < p->ntok ? i : p->ntok - 1];
}

static int nonspecial_char(const csparser_t *p, int i, char c)
{
    const pattern_token_t *t = safe_token(p, i);
    if (t->value_len != 1 || p->in[t->value] != c)
        return 0;
    return t->type == TOK_CHAR || t->type == TOK_ESCAPED_CHAR || t->type == TOK_INVALID_CHAR;
}

static int is_search_prefix(const csparser_t *p)
{
    if (nonspecial_char(p, p->token_index, '?'))
        return 1;
    const pattern_token_t *t = &p->tok[p->token_index];
    if (t->value_len != 1 || p->in[t->value] != '?')
        return 0;
    if (p->token_index == 0)
        return 1;
    int prev = safe_token(p, p->token_index - 1)->type;
    return !(prev == TOK_NAME || prev == TOK_REGEXP || prev == TOK_CLOSE || prev == TOK_ASTERISK);
}

static int is_pathname_start(const csparser_t *p) { return nonspecial_char(p, p->token_index, '/'); }
static int is_hash_prefix(const csparser_t *p) { return nonspecial_char(p, p->token_index, '#'); }
static int is_colon(const csparser_t *p) { return nonspecial_char(p, p->token_index, ':'); }
static int is_at(const csparser_t *p) { return nonspecial_char(p, p->token_index, '@'); }

/* The standard's "make a component string": input from the component's start
 * token to the current token. */
static int make_component(csparser_t *p, url_str_t *out)
{
    uint32_t from = safe_token(p, p->component_start)->index, to = p->tok[p->token_index].index;
    url_str_reset(out);
    return url_str_append(out, p->in + from, to - from);
}

static void cs_set(csparser_t *p, int c, const char *s)
{
    if (!p->result->has[c] && init_set(p->result, c, s, strlen(s)))
        p->failed = 1;
}

static void change_state(csparser_t *p, int next, int skip)
{
    int s = p->state, c = cs_component(s);
    if (c >= 0) {
        p->result->has[c] = 1;
        if (make_component(p, &p->result->v[c]))
            p->failed = 1;
    }
    if (s != CS_INIT && next != CS_DONE) {
        int before_host = s == CS_PROTOCOL || s == CS_AUTHORITY || s == CS_USERNAME || s == CS_PASSWORD;
        if (before_host && (next == CS_PORT || next == CS_PATHNAME || next == CS_SEARCH || next == CS_HASH))
            cs_set(p, URLPATTERN_HOSTNAME, "");
        int before_path = before_host || s == CS_HOSTNAME || s == CS_PORT;
        if (before_path && (next == CS_SEARCH || next == CS_HASH))
            cs_set(p, URLPATTERN_PATHNAME, p->protocol_special ? "/" : "");
        if ((before_path || s == CS_PATHNAME) && next == CS_HASH)
            cs_set(p, URLPATTERN_SEARCH, "");
    }
    p->state = next;
    p->token_index += skip;
    p->component_start = p->token_index;
    p->token_increment = 0;
}

static void rewind_to(csparser_t *p, int state)
{
    p->token_index = p->component_start;
    p->token_increment = 0;
    p->state = state;
}

static void compute_protocol_special(csparser_t *p)
{
    url_str_t proto = {0};
    component_t c = {0};
    int budget = URLPATTERN_MAX_STATES;
    if (make_component(p, &proto) ||
        compile_component(&c, &proto, urlcanon_protocol, NULL, &default_options, &budget, &p->why))
        p->failed = 1;
    else
        p->protocol_special = matches_special_scheme(&c);
    component_free(&c);
    url_str_free(&proto);
}

/* One token in the state machine of "parse a constructor string". */
static void cs_step(csparser_t *p)
{
    switch (p->state) {
    case CS_INIT:
        if (is_colon(p))
            rewind_to(p, CS_PROTOCOL);
        break;
    case CS_PROTOCOL:
        if (is_colon(p)) {
            compute_protocol_special(p);
            int next = CS_PATHNAME, skip = 1;
            if (nonspecial_char(p, p->token_index + 1, '/') && nonspecial_char(p, p->token_index + 2, '/'))
                next = CS_AUTHORITY, skip = 3;
            else if (p->protocol_special)
                next = CS_AUTHORITY;
            change_state(p, next, skip);
        }
        break;
    case CS_AUTHORITY:
        if (is_at(p))
            rewind_to(p, CS_USERNAME);
        else if (is_pathname_start(p) || is_search_prefix(p) || is_hash_prefix(p))
            rewind_to(p, CS_HOSTNAME);
        break;
    case CS_USERNAME:
        if (is_colon(p))
            change_state(p, CS_PASSWORD, 1);
        else if (is_at(p))
            change_state(p, CS_HOSTNAME, 1);
        break;
    case CS_PASSWORD:
        if (is_at(p))
            change_state(p, CS_HOSTNAME, 1);
        break;
    case CS_HOSTNAME:
        if (nonspecial_char(p, p->token_index, '['))
            p->ipv6_depth++;
        else if (nonspecial_char(p, p->token_index, ']'))
            p->ipv6_depth--;
        else if (is_colon(p) && p->ipv6_depth == 0)
            change_state(p, CS_PORT, 1);
        else if (is_pathname_start(p))
            change_state(p, CS_PATHNAME, 0);
        else if (is_search_prefix(p))
            change_state(p, CS_SEARCH, 1);
        else if (is_hash_prefix(p))
            change_state(p, CS_HASH, 1);
        break;
    case CS_PORT:
        if (is_pathname_start(p))
            change_state(p, CS_PATHNAME, 0);
        else if (is_search_prefix(p))
            change_state(p, CS_SEARCH, 1);
        else if (is_hash_prefix(p))
            change_state(p, CS_HASH, 1);
        break;
    case CS_PATHNAME:
        if (is_search_prefix(p))
            change_state(p, CS_SEARCH, 1);
        else if (is_hash_prefix(p))
            change_state(p, CS_HASH, 1);
        break;
    case CS_SEARCH:
        if (is_hash_prefix(p))
            change_state(p, CS_HASH, 1);
        break;
    default: /* CS_HASH: nothing */
        break;
    }
}

/* At the end token: 1 to go on (the parser rewound), 0 when done. */
static int cs_end(csparser_t *p)
{
    if (p->state == CS_INIT) {
        /* No protocol: a relative pattern, starting at the pathname, search or hash. */
        rewind_to(p, CS_INIT);
        if (is_hash_prefix(p))
            change_state(p, CS_HASH, 1);
        else if (is_search_prefix(p))
            change_state(p, CS_SEARCH, 1);
        else
            change_state(p, CS_PATHNAME, 0);
        return 1;
    }
    if (p->state == CS_AUTHORITY) {
        rewind_to(p, CS_HOSTNAME); /* no "@": no username or password */
        return 1;
    }
    change_state(p, CS_DONE, 0);
    return 0;
}

/* The standard's "parse a constructor string" into result. */
static int parse_constructor_string(const char *in, size_t len, init_t *result, const char **why)
{
    csparser_t p = {.in = in, .result = result};
    if (pattern_tokenize(in, len, 1, &p.tok, &p.ntok, why))
        return -1;
    while (p.token_index < p.ntok && !p.failed) {
        p.token_increment = 1;
        const pattern_token_t *t = &p.tok[p.token_index];
        if (t->type == TOK_END) {
            if (!cs_end(&p))
                break;
        } else if (t->type == TOK_OPEN) {
            p.group_depth++;
        } else if (p.group_depth > 0 && t->type != TOK_CLOSE) {
            /* inside "{...}": no component boundary */
        } else {
            if (p.group_depth > 0)
                p.group_depth--;
            cs_step(&p);
        }
        p.token_index += p.token_increment;
    }
    if (!p.failed && result->has[URLPATTERN_HOSTNAME] && !result->has[URLPATTERN_PORT])
        cs_set(&p, URLPATTERN_PORT, "");
    free(p.tok);
    if (p.failed)
        *why = p.why ? p.why : "out of memory";
    return p.failed ? -1 : 0;
}

/* ---- processing a URLPatternInit ------------------------------------------------------------ */

enum { TYPE_PATTERN, TYPE_URL };

/* The standard's "process a base URL string": pattern text is escaped. */
static int base_string(url_str_t *out, const char *s, size_t len, int type)
{
    url_str_reset(out);
    return type == TYPE_PATTERN ? pattern_escape(s, len, out) || url_str_append(out, "", 0)
                                : url_str_append(out, s, len);
}

static int is_absolute_pathname(const url_str_t *s, int type)
{
    const char *p = url_str_ptr(s);
    if (s->len == 0)
        return 0;
    if (p[0] == '/')
        return 1;
    if (type == TYPE_URL || s->len < 2)
        return 0;
    return (p[0] == '\\' || p[0] == '{') && p[1] == '/';
}

/* Fills result from the base URL where init leaves components out (only
 * those "less specific" than what init gives). */
static int inherit_from_base(const url_t *b, const init_t *in, init_t *out, int type)
{
    const uint8_t *h = in->has;
    int proto = h[URLPATTERN_PROTOCOL], host = proto || h[URLPATTERN_HOSTNAME],
        port = host || h[URLPATTERN_PORT];
    int path = port || h[URLPATTERN_PATHNAME], search = path || h[URLPATTERN_SEARCH];
    int r = 0;
    if (!proto) {
        r |= base_string(&out->v[URLPATTERN_PROTOCOL], b->scheme.p, b->scheme.len, type);
        out->has[URLPATTERN_PROTOCOL] = 1;
    }
    if (type != TYPE_PATTERN && !port && !h[URLPATTERN_USERNAME]) {
        r |= base_string(&out->v[URLPATTERN_USERNAME], url_str_ptr(&b->username), b->username.len, type);
        out->has[URLPATTERN_USERNAME] = 1;
    }
    if (type != TYPE_PATTERN && !port && !h[URLPATTERN_USERNAME] && !h[URLPATTERN_PASSWORD]) {
        r |= base_string(&out->v[URLPATTERN_PASSWORD], url_str_ptr(&b->password), b->password.len, type);
        out->has[URLPATTERN_PASSWORD] = 1;
    }
    if (!host) {
        r |= base_string(&out->v[URLPATTERN_HOSTNAME], url_str_ptr(&b->host), b->has_host ? b->host.len : 0,
                         type);
        out->has[URLPATTERN_HOSTNAME] = 1;
    }
    if (!port) {
        char s[12] = "";
        if (b->port >= 0)
            snprintf(s, sizeof(s), "%d", (int)b->port);
        r |= init_set(out, URLPATTERN_PORT, s, strlen(s));
    }
    if (!path) {
        r |= base_string(&out->v[URLPATTERN_PATHNAME], url_str_ptr(&b->path), b->path.len, type);
        out->has[URLPATTERN_PATHNAME] = 1;
    }
    if (!search) {
        r |= base_string(&out->v[URLPATTERN_SEARCH], url_str_ptr(&b->query), b->has_query ? b->query.len : 0,
                         type);
        out->has[URLPATTERN_SEARCH] = 1;
    }
    if (!search && !h[URLPATTERN_HASH]) {
        r |= base_string(&out->v[URLPATTERN_HASH], url_str_ptr(&b->fragment),
                         b->has_fragment ? b->fragment.len : 0, type);
        out->has[URLPATTERN_HASH] = 1;
    }
    return r ? -1 : 0;
}

/* value without one leading (or trailing) character c, if there. */
static void strip(const url_str_t *v, char c, int trailing, const char **s, size_t *len)
{
    *s = url_str_ptr(v);
    *len = v->len;
    if (*len && !trailing && (*s)[0] == c)
        (*s)++, (*len)--;
    else if (*len && trailing && (*s)[*len - 1] == c)
        (*len)--;
}

/* One component given by init: stripped, and canonicalized for URLs. */
static int process_component(int c, const url_str_t *v, const url_str_t *proto, int type, url_str_t *out)
{
    static const pattern_encode_cb canon[] = {urlcanon_protocol, urlcanon_username, urlcanon_password,
                                              urlcanon_hostname, urlcanon_port,     NULL,
                                              urlcanon_search,   urlcanon_hash};
    const char *s;
    size_t len;
    strip(v,
          c == URLPATTERN_PROTOCOL ? ':'
          : c == URLPATTERN_SEARCH ? '?'
                                   : '#',
          c == URLPATTERN_PROTOCOL, &s, &len);
    if (c != URLPATTERN_PROTOCOL && c != URLPATTERN_SEARCH && c != URLPATTERN_HASH)
        s = url_str_ptr(v), len = v->len;
    if (type == TYPE_PATTERN) {
        url_str_reset(out);
        return url_str_append(out, s, len);
    }
    if (c == URLPATTERN_PATHNAME) {
        const char *pr = url_str_ptr(proto);
        int special = proto->len == 0 || url_is_special_scheme(pr, proto->len);
        return (special ? urlcanon_pathname : urlcanon_opaque_pathname)(NULL, s, len, out);
    }
    return canon[c](c == URLPATTERN_PORT ? (void *)url_str_ptr(proto) : NULL, s, len, out);
}

/* The standard's "process a URLPatternInit" (type TYPE_PATTERN: the values
 * are pattern strings; TYPE_URL: URL components to canonicalize). out starts
 * empty (pattern) or with every component "" (URL). */
static int process_init(const init_t *in, const char *base_url, int type, init_t *out, const char **why)
{
    url_t base;
    url_init(&base);
    int r = -1;
    *why = "invalid URL component";
    if (base_url) {
        if (url_try_parse(base_url, strlen(base_url), NULL, &base)) {
            *why = "invalid base URL";
            goto out;
        }
        if (inherit_from_base(&base, in, out, type))
            goto out;
    }
    for (int c = 0; c < URLPATTERN_COMPONENTS; c++) {
        if (!in->has[c])
            continue;
        url_str_t v = {0};
        const url_str_t *src = &in->v[c];
        if (c == URLPATTERN_PATHNAME && base_url && !base.opaque_path && !is_absolute_pathname(src, type)) {
            /* A relative pathname: the base's path up to its last "/", then it. */
            url_str_t bp = {0};
            int e = base_string(&bp, url_str_ptr(&base.path), base.path.len, type);
            const char *slash = bp.len ? strrchr(bp.p, '/') : NULL;
            if (!e && slash)
                e = url_str_append(&v, bp.p, (size_t)(slash - bp.p) + 1);
            e = e || url_str_append(&v, url_str_ptr(src), src->len);
            url_str_free(&bp);
            if (e) {
                url_str_free(&v);
                goto out;
            }
            src = &v;
        }
        int e = process_component(c, src, &out->v[URLPATTERN_PROTOCOL], type, &out->v[c]);
        url_str_free(&v);
        out->has[c] = 1;
        if (e)
            goto out;
    }
    r = 0;
out:
    url_dispose(&base);
    return r;
}

/* ---- creating a pattern ---------------------------------------------------------------------- */

static int hostname_is_ipv6(const url_str_t *v)
{
    const char *s = url_str_ptr(v);
    return v->len >= 2 && (s[0] == '[' || ((s[0] == '{' || s[0] == '\\') && s[1] == '['));
}

/* The standard's "create" from a processed init; fills p->c. */
static int compile_all(urlpattern_t *p, init_t *in, const char **why)
{
    for (int c = 0; c < URLPATTERN_COMPONENTS; c++)
        if (!in->has[c] && init_set(in, c, "*", 1))
            return -1;
    const url_str_t *proto = &in->v[URLPATTERN_PROTOCOL], *port = &in->v[URLPATTERN_PORT];
    int def = url_default_port(url_str_ptr(proto), proto->len);
    char defs[12];
    snprintf(defs, sizeof(defs), "%d", def);
    if (url_is_special_scheme(url_str_ptr(proto), proto->len) && def >= 0 && port->len == strlen(defs) &&
        memcmp(port->p, defs, port->len) == 0)
        url_str_reset(&in->v[URLPATTERN_PORT]);
    int budget = URLPATTERN_MAX_STATES;
    component_t *c = p->c;
    if (compile_component(&c[0], &in->v[0], urlcanon_protocol, NULL, &default_options, &budget, why) ||
        compile_component(&c[1], &in->v[1], urlcanon_username, NULL, &default_options, &budget, why) ||
        compile_component(&c[2], &in->v[2], urlcanon_password, NULL, &default_options, &budget, why) ||
        compile_component(&c[3], &in->v[3],
                          hostname_is_ipv6(&in->v[3]) ? urlcanon_ipv6_hostname : urlcanon_hostname, NULL,
                          &hostname_options, &budget, why) ||
        compile_component(&c[4], &in->v[4], urlcanon_port, NULL, &default_options, &budget, why))
        return -1;
    int special = matches_special_scheme(&c[0]);
    if (compile_component(&c[5], &in->v[5], special ? urlcanon_pathname : urlcanon_opaque_pathname, NULL,
                          special ? &pathname_options : &default_options, &budget, why) ||
        compile_component(&c[6], &in->v[6], urlcanon_search, NULL, &default_options, &budget, why) ||
        compile_component(&c[7], &in->v[7], urlcanon_hash, NULL, &default_options, &budget, why))
        return -1;
    p->states = URLPATTERN_MAX_STATES - budget;
    return 0;
}

/* Checks that s[0..len) is UTF-8 and within the pattern budget. */
static int check_text(const char *s, size_t len, const char **why)
{
    if (len > URLPATTERN_MAX_PATTERN) {
        *why = "pattern too long";
        return -1;
    }
    if (!url_is_utf8(s, len)) {
        *why = "pattern is not UTF-8";
        return -1;
    }
    /* Only a regexp group could keep a raw NUL (fixed text is percent-encoded),
     * where it could only match a NUL no URL component contains; refused so
     * that every pattern string stays a C string. */
    if (memchr(s, 0, len)) {
        *why = "unsupported: a NUL character in a pattern";
        return -1;
    }
    return 0;
}

/* pattern_base: the base URL the standard's "create" gets (NULL: none);
 * topic_base: the one relative topics are resolved against. */
static urlpattern_t *create(const char *text, size_t len, const init_t *init, const char *pattern_base,
                            const char *topic_base, const char **why)
{
    urlpattern_t *p = calloc(1, sizeof(*p));
    init_t processed = {0};
    if (!p || !(p->text = malloc(len + 1))) {
        *why = "out of memory";
        goto fail;
    }
    memcpy(p->text, text, len);
    p->text[len] = 0;
    p->len = len;
    url_init(&p->base);
    if (topic_base) {
        if (url_try_parse(topic_base, strlen(topic_base), NULL, &p->base)) {
            *why = "invalid base URL";
            goto fail;
        }
        p->has_base = 1;
    }
    if (process_init(init, pattern_base, TYPE_PATTERN, &processed, why) || compile_all(p, &processed, why))
        goto fail;
    init_free(&processed);
    return p;
fail:
    init_free(&processed);
    urlpattern_free(p);
    return NULL;
}

/* js_api: the JavaScript constructor's rule (the base URL applies to every
 * pattern) rather than draft-08's (only to relative ones). */
static urlpattern_t *try_new(const char *pattern, size_t len, const char *base_url, int js_api,
                             const char **why)
{
    const char *dummy;
    why = why ? why : &dummy;
    *why = "out of memory";
    if (check_text(pattern, len, why))
        return NULL;
    init_t init = {0};
    urlpattern_t *p = NULL;
    if (parse_constructor_string(pattern, len, &init, why) == 0) {
        int absolute = init.has[URLPATTERN_PROTOCOL];
        if (!base_url && !absolute)
            *why = "relative pattern without a base URL";
        else
            p = create(pattern, len, &init, absolute && !js_api ? NULL : base_url, base_url, why);
    }
    init_free(&init);
    return p;
}

urlpattern_t *urlpattern_try_new(const char *pattern, size_t len, const char *base_url, const char **why)
{
    return try_new(pattern, len, base_url, 0, why);
}

urlpattern_t *urlpattern__try_new_js(const char *pattern, size_t len, const char *base_url, const char **why)
{
    return try_new(pattern, len, base_url, 1, why);
}

urlpattern_t *urlpattern__try_new_init(const urlpattern_init_t *in, const char **why)
{
    init_t init = {0};
    urlpattern_t *p = NULL;
    size_t total = 0;
    *why = "out of memory";
    for (int c = 0; c < URLPATTERN_COMPONENTS; c++) {
        if (!in->value[c])
            continue;
        size_t n = strlen(in->value[c]);
        total += n;
        if (check_text(in->value[c], n, why) || init_set(&init, c, in->value[c], n))
            goto out;
    }
    if (total > URLPATTERN_MAX_PATTERN) {
        *why = "pattern too long";
        goto out;
    }
    p = create("", 0, &init, in->base_url, in->base_url, why);
out:
    init_free(&init);
    return p;
}

void urlpattern_free(urlpattern_t *p)
{
    if (!p)
        return;
    for (int c = 0; c < URLPATTERN_COMPONENTS; c++)
        component_free(&p->c[c]);
    url_dispose(&p->base);
    free(p->text);
    free(p);
}

const char *urlpattern_text(const urlpattern_t *p) { return p->text; }
size_t urlpattern_len(const urlpattern_t *p) { return p->len; }
int urlpattern_states(const urlpattern_t *p) { return p->states; }

const char *urlpattern_component(const urlpattern_t *p, urlpattern_component_t c)
{
    return url_str_ptr(&p->c[c].pattern);
}

int urlpattern_has_regexp_groups(const urlpattern_t *p)
{
    for (int c = 0; c < URLPATTERN_COMPONENTS; c++)
        if (p->c[c].has_regexp)
            return 1;
    return 0;
}

/* ---- matching ------------------------------------------------------------------------------------ */

/* Copies the component strings out for tests (see urlpattern__match_init). */
static void report_seen(const url_str_t *v, char **seen)
{
    for (int c = 0; seen && c < URLPATTERN_COMPONENTS; c++)
        seen[c] = strndup(url_str_ptr(&v[c]), v[c].len);
}

/* Matches eight component strings; 1 or 0 (a budget or memory failure is 0). */
static int match_components(const urlpattern_t *p, const url_str_t *v, char **seen)
{
    report_seen(v, seen);
    uint64_t steps = 0;
    int r = 1;
    for (int c = 0; c < URLPATTERN_COMPONENTS && r == 1; c++)
        r = component_match(&p->c[c], url_str_ptr(&v[c]), v[c].len, &steps);
    last_steps = steps;
    return r == 1;
}

/* Matches a parsed URL: its components as the standard serializes them. */
static int match_url(const urlpattern_t *p, const url_t *u, char **seen)
{
    url_str_t v[URLPATTERN_COMPONENTS] = {0};
    char port[12] = "";
    if (u->port >= 0)
        snprintf(port, sizeof(port), "%d", (int)u->port);
    v[URLPATTERN_PROTOCOL] = u->scheme;
    v[URLPATTERN_USERNAME] = u->username;
    v[URLPATTERN_PASSWORD] = u->password;
    if (u->has_host)
        v[URLPATTERN_HOSTNAME] = u->host;
    v[URLPATTERN_PORT] = (url_str_t){port, (uint32_t)strlen(port), sizeof(port)};
    v[URLPATTERN_PATHNAME] = u->path;
    if (u->has_query)
        v[URLPATTERN_SEARCH] = u->query;
    if (u->has_fragment)
        v[URLPATTERN_HASH] = u->fragment;
    return match_components(p, v, seen); /* v borrows u's strings: nothing to free */
}

int urlpattern_match(const urlpattern_t *p, const char *topic, size_t len)
{
    last_steps = 0;
    if (len > URLPATTERN_MAX_TOPIC)
        return 0;
    url_t u;
    url_init(&u);
    int r = url_try_parse(topic, len, p->has_base ? &p->base : NULL, &u) == 0 && match_url(p, &u, NULL);
    url_dispose(&u);
    return r;
}

int urlpattern__match_url(const urlpattern_t *p, const char *s, size_t len, const char *base_url, char **seen)
{
    url_t base, u;
    url_init(&base);
    url_init(&u);
    int r = 0;
    if (!base_url || url_try_parse(base_url, strlen(base_url), NULL, &base) == 0)
        r = url_try_parse(s, len, base_url ? &base : NULL, &u) == 0 && match_url(p, &u, seen);
    url_dispose(&u);
    url_dispose(&base);
    return r;
}

int urlpattern__match_init(const urlpattern_t *p, const urlpattern_init_t *input, char **seen)
{
    init_t in = {0}, out = {0};
    const char *why;
    int r = 0;
    for (int c = 0; c < URLPATTERN_COMPONENTS; c++) {
        if (init_set(&out, c, "", 0))
            goto done;
        if (input->value[c] && (!url_is_utf8(input->value[c], strlen(input->value[c])) ||
                                init_set(&in, c, input->value[c], strlen(input->value[c]))))
            goto done;
    }
    if (process_init(&in, input->base_url, TYPE_URL, &out, &why) == 0)
        r = match_components(p, out.v, seen);
done:
    init_free(&in);
    init_free(&out);
    return r;
}
