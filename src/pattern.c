/*
 * pattern.c - URL Pattern pattern strings: tokenizer, parser into a part
 * list, and normalized pattern string generation; see pattern.h.
 *
 * Each function follows the standard's algorithm of the same name, step by
 * step; byte offsets stand in for code point positions (every offset is at
 * a code point boundary, so substrings are the same).
 */
#include "pattern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>

/* ---- tokenizing ------------------------------------------------------------------ */

int pattern_is_name_cp(uint32_t cp, int first)
{
    if (cp < 0x80) {
        int alpha = ((cp | 32) >= 'a' && (cp | 32) <= 'z') || cp == '$' || cp == '_';
        return alpha || (!first && cp >= '0' && cp <= '9');
    }
    if (first)
        return u_hasBinaryProperty((UChar32)cp, UCHAR_ID_START);
    return cp == 0x200C || cp == 0x200D || u_hasBinaryProperty((UChar32)cp, UCHAR_ID_CONTINUE);
}

typedef struct tokenizer {
    const char *in; /* borrows */
    size_t len;
    int lenient;
    pattern_token_t *tok; /* owns until returned */
    int n, cap;
    size_t index;      /* start of the token being read */
    size_t next_index; /* after the code point just read */
    uint32_t cp;       /* the code point just read */
    const char *why;
} tokenizer_t;

static void next_cp(tokenizer_t *t)
{
    t->next_index += url_utf8_decode(t->in + t->next_index, t->len - t->next_index, &t->cp);
}

static void seek_cp(tokenizer_t *t, size_t at)
{
    t->next_index = at;
    next_cp(t);
}

static int add_token(tokenizer_t *t, int type, size_t next_pos, size_t value_pos, size_t value_len)
{
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 32;
        pattern_token_t *p = realloc(t->tok, (size_t)cap * sizeof(*p));
        if (!p) {
            t->why = "out of memory";
            return -1;
        }
        t->tok = p;
        t->cap = cap;
    }
    t->tok[t->n++] =
        (pattern_token_t){(uint8_t)type, (uint32_t)t->index, (uint32_t)value_pos, (uint32_t)value_len};
    t->index = next_pos;
    return 0;
}

static int add_default(tokenizer_t *t, int type)
{
    return add_token(t, type, t->next_index, t->index, t->next_index - t->index);
}

/* The standard's "process a tokenizing error". */
static int token_error(tokenizer_t *t, size_t next_pos, size_t value_pos, const char *why)
{
    if (!t->lenient) {
        t->why = why;
        return -1;
    }
    return add_token(t, TOK_INVALID_CHAR, next_pos, value_pos, next_pos - value_pos);
}

/* After ":" at t->index: a name token, or an error. */
static int tokenize_name(tokenizer_t *t)
{
    size_t start = t->next_index, pos = start;
    while (pos < t->len) {
        seek_cp(t, pos);
        if (!pattern_is_name_cp(t->cp, pos == start))
            break;
        pos = t->next_index;
    }
    if (pos <= start)
        return token_error(t, start, t->index, "invalid pattern: \":\" without a group name");
    return add_token(t, TOK_NAME, pos, start, pos - start);
}

/* After "(" at t->index: a regexp token, or an error. */
static int tokenize_regexp(tokenizer_t *t)
{
    int depth = 1;
    size_t start = t->next_index, pos = start;
    const char *why = NULL;
    while (pos < t->len) {
        seek_cp(t, pos);
        if (t->cp >= 0x80) {
            why = "invalid pattern: non-ASCII character in a regexp group";
            break;
        }
        if (pos == start && t->cp == '?') {
            why = "invalid pattern: a regexp group cannot start with \"?\"";
            break;
        }
        if (t->cp == '\\') {
            if (t->next_index == t->len) {
                why = "invalid pattern: \"\\\" at the end of a regexp group";
                break;
            }
            next_cp(t);
            if (t->cp >= 0x80) {
                why = "invalid pattern: non-ASCII character in a regexp group";
                break;
            }
            pos = t->next_index;
            continue;
        }
        if (t->cp == ')') {
            if (--depth == 0) {
                pos = t->next_index;
                break;
            }
        } else if (t->cp == '(') {
            depth++;
            if (t->next_index == t->len) {
                why = "invalid pattern: unterminated regexp group";
                break;
            }
            size_t tmp = t->next_index;
            next_cp(t);
            if (t->cp != '?') {
                why = "invalid pattern: capturing groups are not allowed inside a regexp group";
                break;
            }
            t->next_index = tmp;
        }
        pos = t->next_index;
    }
    if (why)
        return token_error(t, start, t->index, why);
    if (depth != 0)
        return token_error(t, start, t->index, "invalid pattern: unterminated regexp group");
    if (pos - start - 1 == 0)
        return token_error(t, start, t->index, "invalid pattern: empty regexp group");
    return add_token(t, TOK_REGEXP, pos, start, pos - start - 1);
}

int pattern_tokenize(const char *in, size_t len, int lenient, pattern_token_t **tokens, int *ntokens,
                     const char **why)
{
    tokenizer_t t = {.in = in, .len = len, .lenient = lenient};
    int r = 0;
    while (r == 0 && t.index < len) {
        seek_cp(&t, t.index);
        switch (t.cp) {
        case '*':
            r = add_default(&t, TOK_ASTERISK);
            break;
        case '+':
        case '?':
            r = add_default(&t, TOK_OTHER_MODIFIER);
            break;
        case '\\':
            if (t.index == len - 1) {
                r = token_error(&t, t.next_index, t.index, "invalid pattern: \"\\\" at the end");
                break;
            }
            size_t escaped = t.next_index;
            next_cp(&t);
            r = add_token(&t, TOK_ESCAPED_CHAR, t.next_index, escaped, t.next_index - escaped);
            break;
        case '{':
            r = add_default(&t, TOK_OPEN);
            break;
        case '}':
            r = add_default(&t, TOK_CLOSE);
            break;
        case ':':
            r = tokenize_name(&t);
            break;
        case '(':
            r = tokenize_regexp(&t);
            break;
        default:
            r = add_default(&t, TOK_CHAR);
        }
    }
    if (r == 0)
        r = add_token(&t, TOK_END, t.index, t.index, 0);
    if (r) {
        free(t.tok);
        *why = t.why;
        return -1;
    }
    *tokens = t.tok;
    *ntokens = t.n;
    return 0;
}

/* ---- parsing ------------------------------------------------------------------------ */

typedef struct pparser {
    const char *in; /* borrows: the pattern string */
    pattern_token_t *tok;
    int ntok, index;
    const pattern_options_t *opt;
    pattern_encode_cb encode;
    void *ctx;
    url_str_t segment_re; /* the segment wildcard regexp, "[^\/]+?" and the like */
    pattern_part_t *parts;
    int nparts, cap;
    url_str_t pending; /* the pending fixed value */
    int next_numeric;  /* the next numeric name */
    const char *why;
} pparser_t;

static const pattern_token_t *try_consume(pparser_t *p, int type)
{
    if (p->index >= p->ntok || p->tok[p->index].type != type)
        return NULL;
    return &p->tok[p->index++];
}

static const pattern_token_t *try_modifier(pparser_t *p)
{
    const pattern_token_t *t = try_consume(p, TOK_OTHER_MODIFIER);
    return t ? t : try_consume(p, TOK_ASTERISK);
}

static const pattern_token_t *try_regexp_or_wildcard(pparser_t *p, const pattern_token_t *name)
{
    const pattern_token_t *t = try_consume(p, TOK_REGEXP);
    return !name && !t ? try_consume(p, TOK_ASTERISK) : t;
}

static int append_value(url_str_t *s, const pparser_t *p, const pattern_token_t *t)
{
    return url_str_append(s, p->in + t->value, t->value_len);
}

/* The standard's "consume text": chars and escaped chars, concatenated. */
static int consume_text(pparser_t *p, url_str_t *out)
{
    const pattern_token_t *t;
    while ((t = try_consume(p, TOK_CHAR)) || (t = try_consume(p, TOK_ESCAPED_CHAR)))
        if (append_value(out, p, t))
            return -1;
    return 0;
}

static pattern_part_t *new_part(pparser_t *p)
{
    if (p->nparts == p->cap) {
        int cap = p->cap ? p->cap * 2 : 8;
        pattern_part_t *np = realloc(p->parts, (size_t)cap * sizeof(*np));
        if (!np)
            return NULL;
        p->parts = np;
        p->cap = cap;
    }
    pattern_part_t *part = &p->parts[p->nparts++];
    memset(part, 0, sizeof(*part));
    return part;
}

static int encode(pparser_t *p, const url_str_t *in, url_str_t *out)
{
    if (p->encode(p->ctx, url_str_ptr(in), in->len, out)) {
        p->why = "invalid pattern: text that cannot be part of this URL component";
        return -1;
    }
    return 0;
}

static int maybe_add_pending(pparser_t *p)
{
    if (p->pending.len == 0)
        return 0;
    pattern_part_t *part = new_part(p);
    if (!part || encode(p, &p->pending, &part->value))
        return -1;
    url_str_reset(&p->pending);
    part->type = PART_FIXED;
    part->modifier = MOD_NONE;
    return 0;
}

static int modifier_of(const pparser_t *p, const pattern_token_t *t)
{
    if (!t)
        return MOD_NONE;
    char c = p->in[t->value];
    return c == '?' ? MOD_OPTIONAL : c == '*' ? MOD_ZERO_OR_MORE : MOD_ONE_OR_MORE;
}

static int str_is(const url_str_t *s, const char *lit)
{
    return s->len == strlen(lit) && memcmp(url_str_ptr(s), lit, s->len) == 0;
}

/* The standard's "add a part". */
static int add_part(pparser_t *p, const url_str_t *prefix, const pattern_token_t *name_tok,
                    const pattern_token_t *re_tok, const url_str_t *suffix, const pattern_token_t *mod_tok)
{
    int modifier = modifier_of(p, mod_tok);
    if (!name_tok && !re_tok && modifier == MOD_NONE)
        return url_str_append(&p->pending, url_str_ptr(prefix), prefix->len);
    if (maybe_add_pending(p))
        return -1;
    if (!name_tok && !re_tok) {
        if (prefix->len == 0)
            return 0;
        pattern_part_t *part = new_part(p);
        if (!part || encode(p, prefix, &part->value))
            return -1;
        part->type = PART_FIXED;
        part->modifier = (uint8_t)modifier;
        return 0;
    }
    url_str_t value = {0};
    int type = PART_REGEXP, r = -1;
    if (!re_tok) {
        if (url_str_append(&value, p->segment_re.p, p->segment_re.len))
            goto out;
    } else if (re_tok->type == TOK_ASTERISK) {
        if (url_str_append(&value, ".*", 2))
            goto out;
    } else if (append_value(&value, p, re_tok)) {
        goto out;
    }
    if (value.len == p->segment_re.len && memcmp(value.p, p->segment_re.p, value.len) == 0) {
        type = PART_SEGMENT;
        url_str_reset(&value);
    } else if (str_is(&value, ".*")) {
        type = PART_FULL;
        url_str_reset(&value);
    }
    pattern_part_t *part = new_part(p);
    if (!part)
        goto out;
    part->type = (uint8_t)type;
    part->modifier = (uint8_t)modifier;
    part->value = value;
    value = (url_str_t){0};
    if (name_tok) {
        if (append_value(&part->name, p, name_tok))
            goto out;
    } else {
        char num[16];
        int n = snprintf(num, sizeof(num), "%d", p->next_numeric++);
        if (url_str_append(&part->name, num, (size_t)n))
            goto out;
    }
    for (int i = 0; i < p->nparts - 1; i++)
        if (p->parts[i].name.len == part->name.len && part->name.len &&
            memcmp(p->parts[i].name.p, part->name.p, part->name.len) == 0) {
            p->why = "invalid pattern: duplicate group name";
            goto out;
        }
    if (encode(p, prefix, &part->prefix) || encode(p, suffix, &part->suffix))
        goto out;
    r = 0;
out:
    url_str_free(&value);
    return r;
}

/* One iteration of the standard's parse loop. */
static int parse_step(pparser_t *p)
{
    const pattern_token_t *ch = try_consume(p, TOK_CHAR);
    const pattern_token_t *name = try_consume(p, TOK_NAME);
    const pattern_token_t *re = try_regexp_or_wildcard(p, name);
    url_str_t prefix = {0}, suffix = {0};
    int r = -1;
    if (name || re) {
        if (ch && append_value(&prefix, p, ch))
            goto out;
        if (prefix.len && !(prefix.len == 1 && p->opt->prefix && prefix.p[0] == p->opt->prefix)) {
            if (url_str_append(&p->pending, prefix.p, prefix.len))
                goto out;
            url_str_reset(&prefix);
        }
        if (maybe_add_pending(p))
            goto out;
        r = add_part(p, &prefix, name, re, &suffix, try_modifier(p));
        goto out;
    }
    const pattern_token_t *fixed = ch ? ch : try_consume(p, TOK_ESCAPED_CHAR);
    if (fixed) {
        r = append_value(&p->pending, p, fixed);
        goto out;
    }
    if (try_consume(p, TOK_OPEN)) {
        if (consume_text(p, &prefix))
            goto out;
        name = try_consume(p, TOK_NAME);
        re = try_regexp_or_wildcard(p, name);
        if (consume_text(p, &suffix))
            goto out;
        if (!try_consume(p, TOK_CLOSE)) {
            p->why = "invalid pattern: \"{\" without a matching \"}\"";
            goto out;
        }
        r = add_part(p, &prefix, name, re, &suffix, try_modifier(p));
        goto out;
    }
    if (maybe_add_pending(p))
        goto out;
    if (!try_consume(p, TOK_END)) {
        p->why =
            "invalid pattern: unexpected character (a modifier with nothing to modify, or a stray \"}\")";
        goto out;
    }
    r = 0;
out:
    url_str_free(&prefix);
    url_str_free(&suffix);
    if (r && !p->why)
        p->why = "out of memory";
    return r;
}

/* "[^" + the escaped delimiter + "]+?". */
static int segment_wildcard(const pattern_options_t *opt, url_str_t *out)
{
    if (url_str_append(out, "[^", 2))
        return -1;
    if (opt->delimiter && strchr(".+*?^${}()[]|/\\", opt->delimiter) && url_str_append(out, "\\", 1))
        return -1;
    if (opt->delimiter && url_str_append(out, &opt->delimiter, 1))
        return -1;
    return url_str_append(out, "]+?", 3);
}

int pattern_parse(const char *in, size_t len, const pattern_options_t *opt, pattern_encode_cb enc, void *ctx,
                  pattern_part_t **parts, int *nparts, const char **why)
{
    pparser_t p = {.in = in, .opt = opt, .encode = enc, .ctx = ctx};
    int r = -1;
    if (pattern_tokenize(in, len, 0, &p.tok, &p.ntok, why))
        return -1;
    if (segment_wildcard(opt, &p.segment_re)) {
        p.why = "out of memory";
        goto out;
    }
    while (p.index < p.ntok)
        if (parse_step(&p))
            goto out;
    r = 0;
out:
    free(p.tok);
    url_str_free(&p.segment_re);
    url_str_free(&p.pending);
    if (r) {
        pattern_parts_free(p.parts, p.nparts);
        *why = p.why;
        return -1;
    }
    *parts = p.parts;
    *nparts = p.nparts;
    return 0;
}

void pattern_parts_free(pattern_part_t *parts, int nparts)
{
    for (int i = 0; i < nparts; i++) {
        url_str_free(&parts[i].value);
        url_str_free(&parts[i].name);
        url_str_free(&parts[i].prefix);
        url_str_free(&parts[i].suffix);
    }
    free(parts);
}

/* ---- generating a pattern string ------------------------------------------------------ */

int pattern_escape(const char *in, size_t len, url_str_t *out)
{
    for (size_t i = 0; i < len; i++) {
        if (strchr("+*?:{}()\\", in[i]) && in[i] && url_str_append(out, "\\", 1))
            return -1;
        if (url_str_append(out, in + i, 1))
            return -1;
    }
    return 0;
}

static const char *modifier_str(int m)
{
    return m == MOD_ZERO_OR_MORE ? "*" : m == MOD_OPTIONAL ? "?" : m == MOD_ONE_OR_MORE ? "+" : "";
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int first_is_name_cp(const url_str_t *s)
{
    if (s->len == 0)
        return 0;
    uint32_t cp;
    url_utf8_decode(s->p, s->len, &cp);
    return pattern_is_name_cp(cp, 0);
}

/* Does this group need "{...}" around it to read back as the same part? */
static int needs_grouping(const pattern_part_t *parts, int nparts, int i, const pattern_options_t *opt)
{
    const pattern_part_t *part = &parts[i], *prev = i > 0 ? &parts[i - 1] : NULL;
    const pattern_part_t *next = i + 1 < nparts ? &parts[i + 1] : NULL;
    int custom_name = !is_digit(part->name.p[0]);
    if (part->suffix.len)
        return 1;
    if (part->prefix.len && !(part->prefix.len == 1 && opt->prefix && part->prefix.p[0] == opt->prefix))
        return 1;
    if (custom_name && part->type == PART_SEGMENT && part->modifier == MOD_NONE && next &&
        !next->prefix.len && !next->suffix.len) {
        if (next->type == PART_FIXED ? first_is_name_cp(&next->value) : is_digit(next->name.p[0]))
            return 1;
    }
    if (!part->prefix.len && prev && prev->type == PART_FIXED && prev->value.len && opt->prefix &&
        prev->value.p[prev->value.len - 1] == opt->prefix)
        return 1;
    return 0;
}

static int generate_group(const pattern_part_t *parts, int nparts, int i, const pattern_options_t *opt,
                          url_str_t *out)
{
    const pattern_part_t *part = &parts[i], *prev = i > 0 ? &parts[i - 1] : NULL;
    int custom_name = !is_digit(part->name.p[0]);
    int grouping = needs_grouping(parts, nparts, i, opt);
    if (grouping && url_str_append(out, "{", 1))
        return -1;
    if (pattern_escape(url_str_ptr(&part->prefix), part->prefix.len, out))
        return -1;
    if (custom_name && (url_str_append(out, ":", 1) || url_str_append(out, part->name.p, part->name.len)))
        return -1;
    if (part->type == PART_REGEXP) {
        if (url_str_append(out, "(", 1) || url_str_append(out, url_str_ptr(&part->value), part->value.len) ||
            url_str_append(out, ")", 1))
            return -1;
    } else if (part->type == PART_SEGMENT && !custom_name) {
        url_str_t re = {0};
        int r = segment_wildcard(opt, &re) || url_str_append(out, "(", 1) ||
                url_str_append(out, re.p, re.len) || url_str_append(out, ")", 1);
        url_str_free(&re);
        if (r)
            return -1;
    } else if (part->type == PART_FULL) {
        int star = !custom_name && (!prev || prev->type == PART_FIXED || prev->modifier != MOD_NONE ||
                                    grouping || part->prefix.len);
        if (url_str_append(out, star ? "*" : "(.*)", star ? 1 : 4))
            return -1;
    }
    if (part->type == PART_SEGMENT && custom_name && first_is_name_cp(&part->suffix) &&
        url_str_append(out, "\\", 1))
        return -1;
    if (pattern_escape(url_str_ptr(&part->suffix), part->suffix.len, out))
        return -1;
    if (grouping && url_str_append(out, "}", 1))
        return -1;
    const char *m = modifier_str(part->modifier);
    return url_str_append(out, m, strlen(m));
}

int pattern_generate(const pattern_part_t *parts, int nparts, const pattern_options_t *opt, url_str_t *out)
{
    url_str_reset(out);
    if (url_str_append(out, "", 0))
        return -1;
    for (int i = 0; i < nparts; i++) {
        const pattern_part_t *part = &parts[i];
        if (part->type != PART_FIXED) {
            if (generate_group(parts, nparts, i, opt, out))
                return -1;
            continue;
        }
        if (part->modifier == MOD_NONE) {
            if (pattern_escape(url_str_ptr(&part->value), part->value.len, out))
                return -1;
            continue;
        }
        const char *m = modifier_str(part->modifier);
        if (url_str_append(out, "{", 1) || pattern_escape(url_str_ptr(&part->value), part->value.len, out) ||
            url_str_append(out, "}", 1) || url_str_append(out, m, strlen(m)))
            return -1;
    }
    return 0;
}
