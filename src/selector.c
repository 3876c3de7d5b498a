/*
 * selector.c - see selector.h for the matching rules.
 *
 * NFA layout: states[] in one allocation after the selector header. A state
 * has at most one consuming edge (a byte, or a class of bytes) to `next`,
 * and at most two epsilon edges. The builder keeps every state within those
 * limits by giving each run of value characters a state of its own (its
 * self-loop must not be shared with other edges).
 */
#include "selector.h"

#include "siphash.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEMPLATE 2048 /* longer selectors are exact topics */
#define MAX_STATES 4096
#define MAX_CLASSES 64
#define MAX_BOUNDED_PREFIX 16

enum { EDGE_NONE, EDGE_BYTE, EDGE_CLASS };

typedef struct nstate {
    uint8_t edge;   /* EDGE_* */
    uint8_t byte;   /* EDGE_BYTE */
    uint16_t cls;   /* EDGE_CLASS: index into classes */
    int32_t next;   /* target of the consuming edge */
    int32_t eps[2]; /* epsilon targets, -1 = none */
} nstate_t;

typedef struct cls {
    uint64_t bits[4];
} cls_t;

struct selector {
    uint64_t id; /* unique for the process's life: the cache key */
    selector_kind_t kind;
    size_t len;
    char *text;       /* owns: the selector, NUL-terminated */
    nstate_t *states; /* owns (TEMPLATE): states[0] starts, `accept` ends */
    int num_states, accept;
    cls_t *classes; /* owns (TEMPLATE) */
    int num_classes;
};

static atomic_uint_fast64_t next_id = 1;

/* ---- character classes (RFC 6570, 1.5 and 3.2.1) ------------------------------ */

static void cls_add(cls_t *c, unsigned char ch) { c->bits[ch >> 6] |= 1ull << (ch & 63); }
static int cls_has(const cls_t *c, unsigned char ch) { return (c->bits[ch >> 6] >> (ch & 63)) & 1; }
static void cls_add_str(cls_t *c, const char *s)
{
    while (*s)
        cls_add(c, (unsigned char)*s++);
}

static int is_alnum(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* The run of characters one variable's expansion may produce. */
static void value_class(cls_t *c, char op, int explode)
{
    memset(c, 0, sizeof(*c));
    for (int ch = 0; ch < 256; ch++)
        if (is_alnum((unsigned char)ch) || ch >= 0x80)
            cls_add(c, (unsigned char)ch);
    cls_add_str(c, "-._~%,"); /* unreserved, pct-encoded, list separator */
    if (op == '+' || op == '#')
        cls_add_str(c, ":/?#[]@!$&'()*+,;=");
    if (explode) {
        cls_add_str(c, "=");
        char sep[2] = {op == '.'                  ? '.'
                       : op == '/'                ? '/'
                       : op == ';'                ? ';'
                       : (op == '?' || op == '&') ? '&'
                                                  : ',',
                       0};
        cls_add_str(c, sep);
    }
}

/* ---- the builder ------------------------------------------------------------ */

typedef struct builder {
    nstate_t *st;
    int n, cap;
    cls_t *cls;
    int ncls;
    int failed; /* out of room or memory: the selector becomes exact */
} builder_t;

static int new_state(builder_t *b)
{
    if (b->n == MAX_STATES) {
        b->failed = 1;
        return 0;
    }
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 64;
        nstate_t *st = realloc(b->st, (size_t)cap * sizeof(*st));
        if (!st) {
            b->failed = 1;
            return 0;
        }
        b->st = st;
        b->cap = cap;
    }
    b->st[b->n] = (nstate_t){EDGE_NONE, 0, 0, -1, {-1, -1}};
    return b->n++;
}

static void eps(builder_t *b, int from, int to)
{
    if (b->failed)
        return;
    nstate_t *s = &b->st[from];
    if (s->eps[0] < 0)
        s->eps[0] = to;
    else if (s->eps[1] < 0)
        s->eps[1] = to;
    else
        b->failed = 1; /* a builder bug; never a crash */
}

static void consume(builder_t *b, int from, int edge, int arg, int to)
{
    if (b->failed)
        return;
    nstate_t *s = &b->st[from];
    if (s->edge != EDGE_NONE) {
        b->failed = 1;
        return;
    }
    s->edge = (uint8_t)edge;
    if (edge == EDGE_BYTE)
        s->byte = (uint8_t)arg;
    else
        s->cls = (uint16_t)arg;
    s->next = to;
}

/* Literal bytes from `from`; returns the state after them. */
static int literal(builder_t *b, int from, const char *s, size_t len)
{
    for (size_t i = 0; i < len && !b->failed; i++) {
        int to = new_state(b);
        consume(b, from, EDGE_BYTE, (unsigned char)s[i], to);
        from = to;
    }
    return from;
}

/* A run of class `c`, at most `max` long (0 = unbounded); returns the end. */
static int run(builder_t *b, int from, int c, int max)
{
    int end = new_state(b);
    if (max == 0 || max > MAX_BOUNDED_PREFIX) {
        int loop = new_state(b);
        eps(b, from, loop);
        eps(b, loop, end);
        consume(b, loop, EDGE_CLASS, c, loop);
        return end;
    }
    int cur = new_state(b);
    eps(b, from, cur);
    for (int i = 0; i < max && !b->failed; i++) {
        int nx = new_state(b);
        eps(b, cur, end);
        consume(b, cur, EDGE_CLASS, c, nx);
        cur = nx;
    }
    eps(b, cur, end);
    return end;
}

typedef struct varspec {
    const char *name;
    size_t name_len;
    int prefix;  /* :n, 0 = none */
    int explode; /* * */
} varspec_t;

static int named_op(char op) { return op == ';' || op == '?' || op == '&'; }

/* One variable's expansion, from `from`; returns the end state. */
static int variable(builder_t *b, int from, char op, const varspec_t *v)
{
    if (b->ncls == MAX_CLASSES) {
        b->failed = 1;
        return from;
    }
    int c = b->ncls++;
    value_class(&b->cls[c], op, v->explode);
    int start = new_state(b);
    eps(b, from, start);
    int at = start;
    if (named_op(op) && !v->explode) {
        at = literal(b, at, v->name, v->name_len);
        int end = new_state(b);
        if (op == ';')
            eps(b, at, end); /* ";name" for an empty value */
        int eq = literal(b, at, "=", 1);
        eps(b, run(b, eq, c, v->prefix), end);
        return end;
    }
    if (named_op(op)) /* exploded: "name=v;name=w" or "k=v&k2=w": names vary */
        return run(b, at, c, 0);
    return run(b, at, c, v->prefix);
}

static char op_prefix(char op) { return (op == '+' || op == 0) ? 0 : op; }
static char op_sep(char op)
{
    switch (op) {
    case '.':
        return '.';
    case '/':
        return '/';
    case ';':
        return ';';
    case '?':
    case '&':
        return '&';
    default:
        return ',';
    }
}

/* One expression from `a`; returns its end state. */
static int expression(builder_t *b, int a, char op, const varspec_t *vars, int n)
{
    int end = new_state(b);
    eps(b, a, end); /* every variable undefined: the expression vanishes */
    int p = a;
    if (op_prefix(op)) {
        p = new_state(b);
        consume(b, a, EDGE_BYTE, (unsigned char)op_prefix(op), p);
    }
    int f = new_state(b), s = new_state(b);
    eps(b, p, f);
    for (int i = 0; i < n && !b->failed; i++) {
        int f2 = new_state(b), s2 = new_state(b);
        /* first defined variable: no separator */
        int fv = new_state(b);
        eps(b, f, fv);
        eps(b, f, f2);
        eps(b, variable(b, fv, op, &vars[i]), s2);
        /* a later one: separator first */
        int sv = new_state(b);
        consume(b, s, EDGE_BYTE, (unsigned char)op_sep(op), sv);
        eps(b, s, s2);
        eps(b, variable(b, sv, op, &vars[i]), s2);
        f = f2;
        s = s2;
    }
    eps(b, s, end);
    return end;
}

/* ---- template parsing (RFC 6570, 2) ------------------------------------------ */

static int is_hex(unsigned char ch) { return is_alnum(ch) && (ch <= '9' || (ch | 32) <= 'f'); }

/* varname; returns its length, 0 if none. */
static size_t parse_varname(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char ch = (unsigned char)s[i];
        if (is_alnum(ch) || ch == '_') {
            i++;
        } else if (ch == '%' && i + 2 < len + 0 && is_hex((unsigned char)s[i + 1]) &&
                   is_hex((unsigned char)s[i + 2])) {
            i += 3;
        } else if (ch == '.' && i > 0 && i + 1 < len && s[i - 1] != '.' &&
                   (is_alnum((unsigned char)s[i + 1]) || s[i + 1] == '_' || s[i + 1] == '%')) {
            i++;
        } else {
            break;
        }
    }
    return i;
}

/* Parses the inside of "{...}" into op and vars; -1 if invalid. */
static int parse_expression(const char *s, size_t len, char *op, varspec_t *vars, int *n)
{
    size_t i = 0;
    *op = 0;
    *n = 0;
    if (len && strchr("+#./;?&", s[0])) {
        *op = s[0];
        i = 1;
    }
    for (;;) {
        if (*n == 16)
            return -1;
        varspec_t *v = &vars[(*n)++];
        memset(v, 0, sizeof(*v));
        v->name = s + i;
        v->name_len = parse_varname(s + i, len - i);
        if (!v->name_len)
            return -1;
        i += v->name_len;
        if (i < len && s[i] == '*') {
            v->explode = 1;
            i++;
        } else if (i < len && s[i] == ':') {
            size_t d = ++i;
            while (i < len && i - d < 4 && s[i] >= '0' && s[i] <= '9')
                v->prefix = v->prefix * 10 + (s[i++] - '0');
            if (i == d || s[d] == '0')
                return -1;
        }
        if (i == len)
            return 0;
        if (s[i++] != ',')
            return -1;
    }
}

/* Builds the NFA; 0, or -1 if `s` is not a template (or too big). */
static int compile(builder_t *b, const char *s, size_t len, int *accept)
{
    int at = new_state(b), expressions = 0;
    for (size_t i = 0; i < len && !b->failed;) {
        if (s[i] == '}')
            return -1;
        if (s[i] != '{') {
            at = literal(b, at, s + i, 1);
            i++;
            continue;
        }
        const char *close = memchr(s + i + 1, '}', len - i - 1);
        const char *open = memchr(s + i + 1, '{', len - i - 1);
        if (!close || (open && open < close))
            return -1;
        char op;
        varspec_t vars[16];
        int n;
        if (parse_expression(s + i + 1, (size_t)(close - s - i - 1), &op, vars, &n))
            return -1;
        at = expression(b, at, op, vars, n);
        expressions++;
        i = (size_t)(close - s) + 1;
    }
    *accept = at;
    return b->failed || expressions == 0 ? -1 : 0;
}

int selector_is_valid_template(const char *s, size_t len)
{
    if (len > MAX_TEMPLATE || !memchr(s, '{', len))
        return 0;
    builder_t b = {0};
    cls_t classes[MAX_CLASSES];
    b.cls = classes;
    int accept, ok = compile(&b, s, len, &accept) == 0;
    free(b.st);
    return ok;
}

selector_t *selector_try_new(const char *s, size_t len)
{
    selector_t *sel = calloc(1, sizeof(*sel));
    if (!sel || !(sel->text = malloc(len + 1))) {
        free(sel);
        return NULL;
    }
    memcpy(sel->text, s, len);
    sel->text[len] = 0;
    sel->len = len;
    sel->id = atomic_fetch_add(&next_id, 1);
    sel->kind = len == 1 && s[0] == '*' ? SELECTOR_ANY : SELECTOR_EXACT;
    if (sel->kind == SELECTOR_ANY || len > MAX_TEMPLATE || !memchr(s, '{', len))
        return sel;
    builder_t b = {0};
    b.cls = malloc(MAX_CLASSES * sizeof(cls_t));
    int accept;
    if (b.cls && compile(&b, s, len, &accept) == 0) {
        sel->kind = SELECTOR_TEMPLATE;
        sel->states = b.st;
        sel->num_states = b.n;
        sel->accept = accept;
        sel->classes = b.cls;
        sel->num_classes = b.ncls;
        return sel;
    }
    /* Not a template: an exact topic that happens to contain braces. */
    free(b.st);
    free(b.cls);
    return sel;
}

void selector_free(selector_t *sel)
{
    if (!sel)
        return;
    free(sel->text);
    free(sel->states);
    free(sel->classes);
    free(sel);
}

selector_kind_t selector_kind(const selector_t *sel) { return sel->kind; }
const char *selector_text(const selector_t *sel) { return sel->text; }
size_t selector_len(const selector_t *sel) { return sel->len; }
uint64_t selector_id(const selector_t *sel) { return sel->id; }
int selector_num_states(const selector_t *sel) { return sel->num_states; }

/* ---- simulation ---------------------------------------------------------------- */

typedef struct stateset {
    int32_t *list;
    int n;
    uint32_t *mark; /* mark[s] == gen: s is in this generation's set */
} stateset_t;

/* Adds s and its epsilon closure (iterative: no recursion depth to exploit). */
static void add_closure(const selector_t *sel, stateset_t *set, uint32_t gen, int s, int32_t *stack)
{
    int top = 0;
    stack[top++] = s;
    while (top) {
        int x = stack[--top];
        if (set->mark[x] == gen)
            continue;
        set->mark[x] = gen;
        set->list[set->n++] = x;
        for (int k = 0; k < 2; k++)
            if (sel->states[x].eps[k] >= 0 && set->mark[sel->states[x].eps[k]] != gen)
                stack[top++] = sel->states[x].eps[k];
    }
}

/* Simulates the NFA over `topic`; adds to *work the states it scanned (one
 * per active state per byte, plus the start's closure): the cost of this
 * match, which a caller bounding its time reads (selector_cache_work). */
static int template_match(const selector_t *sel, const char *topic, size_t len, uint64_t *work)
{
    int ns = sel->num_states;
    /* cur list, next list, marks, stack: each state at most once per generation;
     * the stack holds at most 2 pushes per state. */
    int32_t *mem = malloc((size_t)ns * (2 + 2 + 1) * sizeof(int32_t) + (size_t)ns * sizeof(uint32_t));
    if (!mem)
        return 0; /* out of memory: no match is the safe answer */
    stateset_t a = {mem, 0, NULL}, b = {mem + ns, 0, NULL};
    int32_t *stack = mem + 2 * ns;
    uint32_t *mark = (uint32_t *)(mem + 5 * ns);
    memset(mark, 0, (size_t)ns * sizeof(uint32_t));
    a.mark = b.mark = mark;
    uint32_t gen = 1;
    add_closure(sel, &a, gen, 0, stack);
    stateset_t *cur = &a, *nxt = &b;
    uint64_t scanned = (uint64_t)a.n;
    for (size_t i = 0; i < len && cur->n; i++) {
        unsigned char ch = (unsigned char)topic[i];
        nxt->n = 0;
        gen++;
        scanned += (uint64_t)cur->n;
        for (int k = 0; k < cur->n; k++) {
            const nstate_t *st = &sel->states[cur->list[k]];
            if ((st->edge == EDGE_BYTE && st->byte == ch) ||
                (st->edge == EDGE_CLASS && cls_has(&sel->classes[st->cls], ch)))
                add_closure(sel, nxt, gen, st->next, stack);
        }
        stateset_t *t = cur;
        cur = nxt;
        nxt = t;
    }
    int matched = 0;
    for (int k = 0; k < cur->n && !matched; k++)
        matched = cur->list[k] == sel->accept;
    free(mem);
    *work += SELECTOR_WORK_MATCH + scanned;
    return matched;
}

int selector_match(const selector_t *sel, const char *topic, size_t len)
{
    switch (sel->kind) {
    case SELECTOR_ANY:
        return 1;
    case SELECTOR_EXACT:
        return len == sel->len && memcmp(topic, sel->text, len) == 0;
    default: {
        uint64_t work = 0;
        return template_match(sel, topic, len, &work);
    }
    }
}

/* ---- the per-worker cache -------------------------------------------------------- */

#define CACHE_MAX_TOPIC 512 /* longer topics are matched uncached */

typedef struct centry {
    uint64_t sel_id; /* 0 = empty */
    uint32_t hash;
    uint32_t len;
    uint8_t result;
    char *topic; /* owns: a copy of the topic, len bytes */
} centry_t;

struct selector_cache {
    size_t mask;
    uint64_t hits, misses;
    uint64_t work; /* matching work done through this cache (selector_cache_work) */
    centry_t e[];
};

selector_cache_t *selector_cache_new(size_t entries)
{
    selector_cache_t *c = calloc(1, sizeof(*c) + entries * sizeof(centry_t));
    if (c)
        c->mask = entries - 1;
    return c;
}

void selector_cache_free(selector_cache_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i <= c->mask; i++)
        free(c->e[i].topic);
    free(c);
}

void selector_cache_stats(const selector_cache_t *c, uint64_t *hits, uint64_t *misses)
{
    *hits = c->hits;
    *misses = c->misses;
}

uint64_t selector_new_id(void) { return atomic_fetch_add(&next_id, 1); }

uint64_t selector_cache_work(const selector_cache_t *c) { return c->work; }

/* Keyed hash: topics come from clients, and with a public hash they could
 * pick topics that all evict each other's entries (every match then runs
 * the NFA). The matcher id is mixed in so that one topic tested against
 * many templates spreads over the cache too. */
static centry_t *cache_slot(selector_cache_t *c, uint64_t id, const char *topic, size_t len, uint32_t *h)
{
    uint64_t h64 = siphash_keyed(topic, len);
    *h = (uint32_t)h64;
    uint64_t mix = (h64 ^ (id * 0x9E3779B97F4A7C15ull));
    return &c->e[(mix ^ (mix >> 29)) & c->mask];
}

int selector_cache_lookup(selector_cache_t *c, uint64_t id, const char *topic, size_t len)
{
    if (!c || len > CACHE_MAX_TOPIC)
        return -1;
    uint32_t h;
    centry_t *e = cache_slot(c, id, topic, len, &h);
    if (e->sel_id == id && e->hash == h && e->len == len && memcmp(e->topic, topic, len) == 0) {
        c->hits++;
        c->work += SELECTOR_WORK_HIT;
        return e->result;
    }
    c->misses++;
    c->work += SELECTOR_WORK_HIT;
    return -1;
}

void selector_cache_store(selector_cache_t *c, uint64_t id, const char *topic, size_t len, int result)
{
    if (!c || len > CACHE_MAX_TOPIC)
        return;
    uint32_t h;
    centry_t *e = cache_slot(c, id, topic, len, &h);
    char *copy = e->len >= len && e->topic ? e->topic : realloc(e->topic, len ? len : 1);
    if (!copy) {
        e->sel_id = 0; /* the old entry's buffer is still owned by e */
        return;
    }
    memcpy(copy, topic, len);
    *e = (centry_t){id, h, (uint32_t)len, (uint8_t)(result != 0), copy};
}

int selector_cache_match(selector_cache_t *c, const selector_t *sel, const char *topic, size_t len)
{
    if (sel->kind != SELECTOR_TEMPLATE || !c)
        return selector_match(sel, topic, len);
    if (len > CACHE_MAX_TOPIC) /* uncached, but its cost still counts */
        return template_match(sel, topic, len, &c->work);
    int r = selector_cache_lookup(c, sel->id, topic, len);
    if (r >= 0)
        return r;
    r = template_match(sel, topic, len, &c->work);
    selector_cache_store(c, sel->id, topic, len, r);
    return r;
}
