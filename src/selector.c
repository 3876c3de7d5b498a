/*
 * selector.c - see selector.h for the matching rules.
 *
 * NFA layout: states[] in one allocation after the selector header. A state
 * has at most one consuming edge (a byte, or a class of bytes) to `next`,
 * and at most two epsilon edges. The builder keeps every state within those
 * limits by giving each run of value characters a state of its own (its
 * self-loop must not be shared with other edges). States 0 .. prefix_len
 * are the literal text before the first expression, one byte edge each,
 * no epsilon edges: a match compares those bytes with memcmp and runs the
 * automaton from state prefix_len.
 *
 * The lazy DFA (RE2's, in small): simulating the NFA costs one step per
 * live NFA state per topic byte, and a template of many adjacent reserved
 * expansions keeps ~300 alive ("{+a}{+b}...{+E}/never": 30 us per 31-byte
 * topic). But the set of live NFA states after a byte depends only on the
 * set before it and on the byte's class, so each template memoizes those
 * steps, built on demand as topics need them:
 *
 *   bclass[256]: byte -> class (bytes no edge tells apart share one; 2 to 20
 *                classes for real templates: each literal byte after the
 *                first expression, plus one per distinct mix of value sets)
 *   arena (one allocation, grown by doubling up to the cap):
 *     sets    [cap][words]  uint64  DFA state i = a set of NFA states
 *     hashes  [cap]         uint32  of each set
 *     trans   [cap][ncls]   int16   next DFA state, or DFA_UNKNOWN
 *     slots   [2 cap, pow2] int16   open-addressing table: set -> state
 *   state 0 (DFA_DEAD) is the empty set, state 1 (DFA_START) the closure of
 *   state prefix_len; a match with every step known is one table load per
 *   byte. An unknown step is one NFA step from the state's set (what every
 *   byte costs without the DFA), then a hash lookup: an existing state, or a
 *   new one.
 *
 * Bounded memory: the arena never exceeds DFA_MAX_BYTES (4 KiB). When it is
 * full, it is flushed (emptied, back to the dead and start states) and the
 * match goes on from the state it was building, as RE2 does. If flushes
 * keep coming without the states paying for themselves (fewer than
 * DFA_STEPS_PER_STATE table steps per state built, DFA_BAD_FLUSHES times in
 * a row), the template's topics do not fit any small DFA (a bounded run
 * after an unbounded one, "{+a}/{+b:16}", needs a state per subset of the
 * last 17 positions): the arena is freed and the template is simulated as
 * an NFA, on the DFA's preallocated sets, from the very state where the DFA
 * gave up; after 16 times the work giving up cost, spent as an NFA, the DFA
 * is tried again (topics change). Whatever path a match takes, the answer
 * is the NFA's; template_match (the plain simulation) stays as the
 * reference the tests and the fuzzer compare against.
 *
 * Memory per template: the NFA (12 bytes a state), its value classes (32
 * bytes each, one per operator its expressions use), then at the first match the DFA header and scratch (~600
 * bytes plus 4 set words and 2 bytes per NFA state) and its arena (at most
 * 4 KiB). At the limits (--max-templates-per-worker 10,000 templates of
 * --max-template-states 512), that is about 6 + 2 + 4 KiB per template: the
 * DFA at most doubles what the NFAs already cost.
 *
 * Threads: the DFA, its counters and its scratch sets are plain memory that
 * every match but selector_match_nfa writes, with no lock and no atomic
 * (a lock per match would cost what a warm match does). The DFA records
 * the thread that made it (`owner`, the address of a thread-local byte) and
 * every match through it asserts it runs there: a caller that shared a
 * template across workers would fail at once in any build with asserts,
 * not as a rare race. The NFA (states, classes, text) is written only by
 * selector_try_new, so selector_match_nfa reads it from any thread.
 */
#include "selector.h"

#include "siphash.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEMPLATE 2048 /* longer selectors are exact topics */
#define MAX_STATES 4096
#define MAX_CLASSES 64   /* distinct value classes: at most 16 (8 operators, exploded or not) */
#define MAX_VARIABLES 64 /* expansions built, two per variable (first or later one): 32 variables */
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

typedef struct dfa dfa_t;
static void dfa_free(dfa_t *d);

struct selector {
    uint64_t id;          /* unique for the process's life: the cache key */
    selector_kind_t kind; /* exact, "*" or template */
    size_t len;           /* bytes of text */
    char *text;           /* owns: the selector, NUL-terminated */
    nstate_t *states;     /* owns (TEMPLATE): states[0] starts, `accept` ends */
    int num_states;       /* in states (TEMPLATE) */
    int accept;           /* the accepting state (TEMPLATE) */
    cls_t *classes;       /* owns (TEMPLATE): the value classes edges refer to */
    int num_classes;      /* in classes */
    int prefix_len;       /* TEMPLATE: literal bytes before the first expression (= its state) */
    int dfa_limit;        /* TEMPLATE: DFA states at most (0: what DFA_MAX_BYTES holds); tests lower it */
    uint8_t dfa_mode;     /* TEMPLATE: SELECTOR__DFA_* (tests: flushes only, or eager fallbacks) */
    dfa_t *dfa;           /* owns (TEMPLATE): made at the first match; mutated by every match */
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
    int cls_key[MAX_CLASSES]; /* the (operator, explode) each class of cls was made for */
    int nvars;                /* variable expansions built so far (MAX_VARIABLES) */
    int failed;               /* out of room or memory: the selector becomes exact */
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
    if (b->nvars++ == MAX_VARIABLES) {
        b->failed = 1;
        return from;
    }
    /* Variables of one operator (and explode flag) share their class: a
     * DFA tells bytes apart by which classes hold them, and the 31
     * variables of "{+a}{+b}...{+E}" made 31 identical classes to test. */
    int key = (unsigned char)op * 2 + (v->explode != 0), c = 0;
    while (c < b->ncls && b->cls_key[c] != key)
        c++;
    if (c == b->ncls) {
        b->cls_key[c] = key;
        value_class(&b->cls[b->ncls++], op, v->explode);
    }
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
        /* The builder grew both arrays by doubling: give back the slack
         * (up to half the states, and most of MAX_CLASSES x 32 bytes), held
         * for as long as the template is. */
        nstate_t *st = realloc(b.st, (size_t)b.n * sizeof(*st));
        cls_t *cls = realloc(b.cls, (size_t)b.ncls * sizeof(*cls));
        sel->states = st ? st : b.st;
        sel->num_states = b.n;
        sel->accept = accept;
        sel->classes = cls ? cls : b.cls;
        sel->num_classes = b.ncls;
        sel->prefix_len = (int)((const char *)memchr(s, '{', len) - s);
        for (int k = 0; k < sel->prefix_len; k++) /* the chain a match skips with memcmp */
            assert(sel->states[k].edge == EDGE_BYTE && sel->states[k].next == k + 1 &&
                   sel->states[k].eps[0] < 0 && (unsigned char)s[k] == sel->states[k].byte);
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
    dfa_free(sel->dfa);
    free(sel->states);
    free(sel->classes);
    free(sel);
}

selector_kind_t selector_kind(const selector_t *sel) { return sel->kind; }
const char *selector_text(const selector_t *sel) { return sel->text; }
size_t selector_len(const selector_t *sel) { return sel->len; }
uint64_t selector_id(const selector_t *sel) { return sel->id; }
int selector_num_states(const selector_t *sel) { return sel->num_states; }

/* ---- the reference: plain NFA simulation ------------------------------------------ */

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

/* Simulates the NFA over `topic` from state 0, with no DFA and no shortcut:
 * selector_match_nfa (one-shot matches on any thread, and the reference the
 * DFA must agree with), and the path of last resort when the DFA cannot be
 * allocated. Reads only what selector_try_new wrote. Adds to *work the
 * states it scanned (one per active state per byte, plus the start's
 * closure) and SELECTOR_WORK_MATCH. Allocates its sets per call. */
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

int selector_match_nfa(const selector_t *sel, const char *topic, size_t len)
{
    uint64_t work = 0;
    if (sel->kind == SELECTOR_ANY)
        return 1;
    if (sel->kind == SELECTOR_EXACT)
        return len == sel->len && memcmp(topic, sel->text, len) == 0;
    return template_match(sel, topic, len, &work);
}

/* ---- NFA-state sets as bitsets (what a DFA state is made of) ---------------------- */

static int set_has(const uint64_t *set, int s) { return (set[s >> 6] >> (s & 63)) & 1; }
static void set_add(uint64_t *set, int s) { set[s >> 6] |= 1ull << (s & 63); }

/* Adds s and its epsilon closure. The set is its own mark: a state is pushed
 * at most once, so the stack never holds more than num_states entries. */
static void set_add_closure(const selector_t *sel, uint64_t *set, int s, int16_t *stack)
{
    if (set_has(set, s))
        return;
    set_add(set, s);
    int top = 0;
    stack[top++] = (int16_t)s;
    while (top) {
        const nstate_t *x = &sel->states[stack[--top]];
        for (int k = 0; k < 2; k++)
            if (x->eps[k] >= 0 && !set_has(set, x->eps[k])) {
                set_add(set, x->eps[k]);
                stack[top++] = (int16_t)x->eps[k];
            }
    }
}

/* One NFA step: adds to `to` (closed under epsilon) every state reached from
 * a state of `from` (closed) by consuming `ch`. Returns the states of `from`
 * scanned: the work units of this step, as the plain simulation counts. */
static uint64_t set_step(const selector_t *sel, const uint64_t *from, int words, unsigned char ch,
                         uint64_t *to, int16_t *stack)
{
    uint64_t scanned = 0;
    for (int w = 0; w < words; w++)
        for (uint64_t bits = from[w]; bits; bits &= bits - 1) {
            const nstate_t *st = &sel->states[w * 64 + __builtin_ctzll(bits)];
            scanned++;
            if ((st->edge == EDGE_BYTE && st->byte == ch) ||
                (st->edge == EDGE_CLASS && cls_has(&sel->classes[st->cls], ch)))
                set_add_closure(sel, to, st->next, stack);
        }
    return scanned;
}

/* ---- the lazy DFA ---------------------------------------------------------------- */

#define DFA_MAX_BYTES 4096        /* an arena's cap (see the top of this file) */
#define DFA_MIN_STATES 3          /* dead, start, and the one being built: always room */
#define DFA_FIRST_STATES 8        /* the arena's first size; it doubles up to the cap */
#define DFA_STEPS_PER_STATE 10    /* a flush below this many table steps per state built is bad */
#define DFA_BAD_FLUSHES 3         /* in a row: give up on the DFA, simulate the NFA */
#define DFA_RETRY_FACTOR 16       /* ... and try it again after 16 x what giving up cost, as NFA work */
#define DFA_DEAD 0                /* the empty set: no match whatever follows */
#define DFA_START 1               /* the closure of state prefix_len */
#define DFA_UNKNOWN ((int16_t)-1) /* a transition not computed yet */

struct dfa {
    uint8_t bclass[256]; /* byte -> its class: bytes no edge tells apart share one */
    int ncls;            /* classes: entries per transition row */
    int words;           /* uint64_t words per NFA-state set */
    int max_states;      /* the cap: the arena never holds more (DFA_MAX_BYTES, or dfa_limit) */
    int cap;             /* states the arena holds now (doubles up to max_states) */
    int n;               /* states built: DFA_DEAD, DFA_START, then the rest */
    uint32_t slot_mask;  /* slots - 1; slots >= 2 cap keeps the table at most half full */
    void *arena;         /* owns: the four arrays below in one block; NULL while nfa_only */
    uint64_t *sets;      /* in arena: [cap][words], state i's NFA states (closed) */
    uint32_t *hashes;    /* in arena: [cap], set_hash of each set */
    int16_t *trans;      /* in arena: [cap][ncls], the next state's row (id x ncls) or DFA_UNKNOWN */
    int16_t *slots;      /* in arena: [slot_mask + 1], state ids or -1: set -> state */
    uint64_t stepped;    /* table steps since the last flush */
    uint64_t built;      /* states built since the last flush */
    uint64_t flushes;    /* so far (tests) */
    uint32_t gave_up;    /* times the DFA gave up so far (tests) */
    uint8_t bad_flushes; /* bad flushes in a row */
    uint8_t nfa_only;    /* gave up: every match simulates the NFA on cur and nxt */
    uint64_t nfa_work;   /* work done as an NFA since giving up (DFA_RETRY_FACTOR) */
    uint8_t *rep;        /* in mem: [ncls], a byte of each class (what an NFA step tests) */
    uint64_t *start;     /* in mem: [words], DFA_START's set, kept across flushes */
    uint64_t *tmp;       /* in mem: [words], the set being built */
    uint64_t *cur, *nxt; /* in mem: [words] each, the NFA simulation's sets */
    int16_t *stack;      /* in mem: [num_states], the epsilon closure's work list */
    const void *owner;   /* the thread that made it (thread_token): the only one that may match */
    uint64_t mem[];      /* owns: the scratch above, allocated with the header */
};

/* A value unique to the calling thread while it lives (the address of a
 * thread-local byte): what dfa_t.owner holds. Cheaper than pthread_self()
 * and comparable with ==. */
static _Thread_local char thread_mark;
static const void *thread_token(void) { return &thread_mark; }

static void dfa_free(dfa_t *d)
{
    if (!d)
        return;
    free(d->arena);
    free(d);
}

/* Byte classes over the edges of states from `first` on (those before it are
 * the literal prefix, never in a DFA state): a literal byte is a class of
 * its own; the other bytes are grouped by which value classes hold them.
 * Fills d->bclass, returns the number of classes and their representatives
 * in rep[] (the lowest byte of each). */
static int byte_classes(const selector_t *sel, int first, uint8_t bclass[256], uint8_t rep[256])
{
    uint64_t used = 0, lit[4] = {0};
    for (int x = first; x < sel->num_states; x++) {
        const nstate_t *st = &sel->states[x];
        if (st->edge == EDGE_BYTE)
            lit[st->byte >> 6] |= 1ull << (st->byte & 63);
        else if (st->edge == EDGE_CLASS)
            used |= 1ull << st->cls; /* cls < MAX_CLASSES = 64 */
    }
    uint64_t masks[256]; /* the value-class mask of each non-literal class so far */
    int16_t mask_class[256];
    int nmasks = 0, ncls = 0;
    for (int b = 0; b < 256; b++) {
        if ((lit[b >> 6] >> (b & 63)) & 1) {
            rep[ncls] = (uint8_t)b;
            bclass[b] = (uint8_t)ncls++;
            continue;
        }
        uint64_t mask = 0;
        for (uint64_t u = used; u; u &= u - 1) {
            int c = __builtin_ctzll(u);
            if (cls_has(&sel->classes[c], (unsigned char)b))
                mask |= 1ull << c;
        }
        int k = 0;
        while (k < nmasks && masks[k] != mask)
            k++;
        if (k == nmasks) {
            masks[nmasks] = mask;
            mask_class[nmasks++] = (int16_t)ncls;
            rep[ncls++] = (uint8_t)b;
        }
        bclass[b] = (uint8_t)mask_class[k];
    }
    return ncls;
}

static uint32_t set_hash(const uint64_t *set, int words)
{
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (int w = 0; w < words; w++) {
        h = (h ^ set[w]) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    return (uint32_t)(h ^ (h >> 32));
}

/* The state whose set is `set`, or -1 with *slot the free slot to put it in. */
static int dfa_find(const dfa_t *d, const uint64_t *set, uint32_t h, uint32_t *slot)
{
    size_t bytes = (size_t)d->words * sizeof(uint64_t);
    for (uint32_t i = h & d->slot_mask;; i = (i + 1) & d->slot_mask) {
        int id = d->slots[i];
        if (id < 0) {
            *slot = i;
            return -1;
        }
        if (d->hashes[id] == h && memcmp(d->sets + (size_t)id * d->words, set, bytes) == 0)
            return id;
    }
}

/* Appends a state for `set` (not present; the arena has room), linked at `slot`. */
static int dfa_add(dfa_t *d, const uint64_t *set, uint32_t h, uint32_t slot)
{
    int id = d->n++;
    memcpy(d->sets + (size_t)id * d->words, set, (size_t)d->words * sizeof(uint64_t));
    d->hashes[id] = h;
    for (int c = 0; c < d->ncls; c++)
        d->trans[(size_t)id * d->ncls + c] = id == DFA_DEAD ? 0 : DFA_UNKNOWN; /* row 0: dead */
    d->slots[slot] = (int16_t)id;
    d->built++;
    return id;
}

static void dfa_put(dfa_t *d, const uint64_t *set)
{
    uint32_t h = set_hash(set, d->words), slot;
    int found = dfa_find(d, set, h, &slot);
    assert(found < 0);
    (void)found;
    dfa_add(d, set, h, slot);
}

/* Makes an arena of `cap` states and moves the built states into it. 0, or
 * -1 when out of memory (the old arena is kept). */
static int dfa_resize(dfa_t *d, int cap)
{
    uint32_t nslots = 4;
    while (nslots < 2 * (uint32_t)cap)
        nslots *= 2;
    size_t sets = (size_t)cap * d->words * sizeof(uint64_t), hashes = (size_t)cap * sizeof(uint32_t),
           trans = (size_t)cap * d->ncls * sizeof(int16_t);
    char *a = malloc(sets + hashes + trans + nslots * sizeof(int16_t));
    if (!a)
        return -1;
    uint64_t *nsets = (uint64_t *)a;
    uint32_t *nhashes = (uint32_t *)(a + sets);
    int16_t *ntrans = (int16_t *)(a + sets + hashes), *nslot = (int16_t *)(a + sets + hashes + trans);
    if (d->n) {
        memcpy(nsets, d->sets, (size_t)d->n * d->words * sizeof(uint64_t));
        memcpy(nhashes, d->hashes, (size_t)d->n * sizeof(uint32_t));
        memcpy(ntrans, d->trans, (size_t)d->n * d->ncls * sizeof(int16_t));
    }
    memset(nslot, 0xff, nslots * sizeof(int16_t)); /* -1: empty */
    for (int id = 0; id < d->n; id++) {
        uint32_t i = nhashes[id] & (nslots - 1);
        while (nslot[i] >= 0)
            i = (i + 1) & (nslots - 1);
        nslot[i] = (int16_t)id;
    }
    free(d->arena);
    d->arena = a;
    d->sets = nsets;
    d->hashes = nhashes;
    d->trans = ntrans;
    d->slots = nslot;
    d->slot_mask = nslots - 1;
    d->cap = cap;
    return 0;
}

/* Empties the arena back to the dead and start states (d->tmp, the set a
 * flush is making room for, is left alone). */
static void dfa_reset(dfa_t *d)
{
    d->n = 0;
    memset(d->slots, 0xff, (d->slot_mask + 1) * sizeof(int16_t));
    memset(d->cur, 0, (size_t)d->words * sizeof(uint64_t)); /* the NFA's set: free in DFA mode */
    dfa_put(d, d->cur);                                     /* DFA_DEAD */
    dfa_put(d, d->start);
    d->stepped = d->built = 0;
}

/* The DFA state cap for this template: what DFA_MAX_BYTES holds (a state
 * costs its set, hash, row and at most 4 slots of 2 bytes), or the test
 * hook's; transitions hold row offsets (id x ncls), which must fit int16. */
static int dfa_max_states(const selector_t *sel, int words, int ncls)
{
    size_t per_state =
        (size_t)words * sizeof(uint64_t) + sizeof(uint32_t) + (size_t)ncls * sizeof(int16_t) + 8;
    size_t n = DFA_MAX_BYTES / per_state;
    if (sel->dfa_limit)
        n = (size_t)sel->dfa_limit;
    if (n > (size_t)INT16_MAX / (size_t)ncls)
        n = (size_t)INT16_MAX / (size_t)ncls;
    return n < DFA_MIN_STATES ? DFA_MIN_STATES : (int)n;
}

/* Makes the template's DFA (its first match): classes, scratch, a first
 * arena with the dead and start states. NULL when out of memory. */
static dfa_t *dfa_new(selector_t *sel)
{
    uint8_t bclass[256], rep[256];
    int ncls = byte_classes(sel, sel->prefix_len, bclass, rep);
    int words = (sel->num_states + 63) / 64;
    size_t scratch =
        (size_t)4 * words * sizeof(uint64_t) + (size_t)sel->num_states * sizeof(int16_t) + (size_t)ncls;
    dfa_t *d = calloc(1, sizeof(*d) + scratch);
    if (!d)
        return NULL;
    memcpy(d->bclass, bclass, sizeof(bclass));
    d->ncls = ncls;
    d->words = words;
    d->start = d->mem;
    d->tmp = d->start + words;
    d->cur = d->tmp + words;
    d->nxt = d->cur + words;
    d->stack = (int16_t *)(d->nxt + words);
    d->rep = (uint8_t *)(d->stack + sel->num_states);
    memcpy(d->rep, rep, (size_t)ncls);
    set_add_closure(sel, d->start, sel->prefix_len, d->stack);
    d->owner = thread_token();
    d->max_states = dfa_max_states(sel, words, ncls);
    int first = d->max_states < DFA_FIRST_STATES ? d->max_states : DFA_FIRST_STATES;
    if (dfa_resize(d, first)) {
        free(d);
        return NULL;
    }
    dfa_reset(d);
    return d;
}

/* The arena is full and a new state is needed. Flushes it (1), or, when the
 * states built since the last flush were not used enough to pay for
 * themselves DFA_BAD_FLUSHES times in a row, gives up on the DFA for good:
 * frees the arena and returns 0 (the caller goes on as an NFA). */
static int dfa_flush(selector_t *sel, dfa_t *d)
{
    d->flushes++;
    if (d->stepped < DFA_STEPS_PER_STATE * d->built)
        d->bad_flushes++;
    else
        d->bad_flushes = 0;
    int give_up =
        sel->dfa_mode == SELECTOR__DFA_EAGER ? d->bad_flushes >= 1 : d->bad_flushes >= DFA_BAD_FLUSHES;
    if (give_up && sel->dfa_mode != SELECTOR__DFA_KEEP) {
        free(d->arena);
        d->arena = NULL;
        d->sets = NULL;
        d->hashes = NULL;
        d->trans = NULL;
        d->slots = NULL;
        d->n = d->cap = 0;
        d->nfa_only = 1;
        d->nfa_work = 0;
        d->gave_up++;
        return 0;
    }
    dfa_reset(d);
    return 1;
}

/* The state after `s` on a byte of class `c`, which is not known yet: one
 * NFA step from s's set into d->tmp, then an existing state or a new one
 * (growing the arena, or flushing it; after a flush s is gone, so the
 * transition is not recorded). Adds the step's work. Returns the state, or
 * -1 when the DFA gave up: d->tmp is then the set to go on from. */
static int dfa_build(selector_t *sel, dfa_t *d, int s, int c, uint64_t *work)
{
    memset(d->tmp, 0, (size_t)d->words * sizeof(uint64_t));
    *work += set_step(sel, d->sets + (size_t)s * d->words, d->words, d->rep[c], d->tmp, d->stack) +
             (uint64_t)d->words;
    uint32_t h = set_hash(d->tmp, d->words), slot;
    int t = dfa_find(d, d->tmp, h, &slot);
    if (t < 0) {
        if (d->n == d->cap) {
            int grown = d->cap < d->max_states &&
                        dfa_resize(d, d->cap * 2 < d->max_states ? d->cap * 2 : d->max_states) == 0;
            if (!grown) {
                if (!dfa_flush(sel, d))
                    return -1;
                s = -1;
            }
            dfa_find(d, d->tmp, h, &slot); /* the table moved; the set is not in it */
        }
        t = dfa_add(d, d->tmp, h, slot);
    }
    if (s >= 0)
        d->trans[(size_t)s * d->ncls + c] = (int16_t)(t * d->ncls);
    return t;
}

/* Simulates the NFA over topic[0..len) from the closed set `from`, on the
 * DFA's preallocated sets. Adds one unit per byte plus the states scanned. */
static int nfa_run(const selector_t *sel, dfa_t *d, const uint64_t *from, const char *topic, size_t len,
                   uint64_t *work)
{
    size_t bytes = (size_t)d->words * sizeof(uint64_t);
    uint64_t *cur = d->cur, *nxt = d->nxt, scanned = 0;
    memcpy(cur, from, bytes);
    for (size_t i = 0; i < len; i++) {
        memset(nxt, 0, bytes);
        scanned += 1 + set_step(sel, cur, d->words, (unsigned char)topic[i], nxt, d->stack);
        uint64_t *t = cur, any = 0;
        cur = nxt;
        nxt = t;
        for (int w = 0; w < d->words; w++)
            any |= cur[w];
        if (!any)
            break;
    }
    *work += scanned;
    return set_has(cur, sel->accept);
}

/* A match as an NFA, once the DFA gave up. Topics change (an attacker's
 * burst ends; the templates' usual topics come back), so after
 * DFA_RETRY_FACTOR times the work that giving up took (DFA_BAD_FLUSHES
 * arenas, each state one NFA step), spent as an NFA, the DFA gets a new
 * arena: if it still does not pay, it gives up again, at a cost of at most
 * 1/DFA_RETRY_FACTOR of the NFA work in between. */
static int nfa_mode(selector_t *sel, dfa_t *d, const char *topic, size_t len, uint64_t *work)
{
    uint64_t w0 = *work;
    int r = nfa_run(sel, d, d->start, topic, len, work);
    d->nfa_work += *work - w0;
    uint64_t fill = (uint64_t)d->max_states * (uint64_t)(sel->num_states + d->words + 1);
    if (sel->dfa_mode == SELECTOR__DFA_EAGER)
        fill = 0; /* the next match as an NFA retries */
    if (d->nfa_work >= DFA_RETRY_FACTOR * DFA_BAD_FLUSHES * fill &&
        dfa_resize(d, d->max_states < DFA_FIRST_STATES ? d->max_states : DFA_FIRST_STATES) == 0) {
        d->nfa_only = 0;
        d->bad_flushes = 0;
        dfa_reset(d);
    }
    return r;
}

/* Steps the DFA from the state whose row is *row over u[i..len), as far
 * as its transitions are known. Returns where it stopped: len; just past
 * the byte that led to the dead state; or at a byte whose transition is
 * unknown (*row: the state that byte leaves). The hot loop: two loads and
 * a compare per byte. */
static size_t dfa_scan(const dfa_t *d, const unsigned char *u, size_t i, size_t len, int *row)
{
    const uint8_t *bclass = d->bclass;
    const int16_t *trans = d->trans;
    int r = *row;
    for (; i < len; i++) {
        int t = trans[r + bclass[u[i]]];
        if (t == DFA_UNKNOWN)
            break;
        r = t;
        if (r == DFA_DEAD) {
            i++;
            break;
        }
    }
    *row = r;
    return i;
}

/* Matches a template: the literal prefix by memcmp, the rest through the
 * DFA (built as it goes), or the NFA once the DFA gave up. Adds its work to
 * *work (selector.h): SELECTOR_WORK_MATCH, one per 16 prefix bytes, one per
 * table step, and each NFA step taken (states scanned). */
static int dfa_match(selector_t *sel, const char *topic, size_t len, uint64_t *work)
{
    size_t p = (size_t)sel->prefix_len;
    *work += SELECTOR_WORK_MATCH + p / 16;
    if (len < p || memcmp(topic, sel->text, p) != 0)
        return 0;
    if (!sel->dfa) {
        *work += SELECTOR_WORK_DFA_NEW(sel->num_states);
        if (!(sel->dfa = dfa_new(sel)))
            return template_match(sel, topic, len, work); /* out of memory: the allocating path */
    }
    dfa_t *d = sel->dfa;
    assert(d->owner == thread_token()); /* one thread matches a template (selector.h, Threads) */
    assert(d->ncls > 0);                /* byte_classes makes one at least: rows are ncls wide */
    if (d->nfa_only)
        return nfa_mode(sel, d, topic + p, len - p, work);
    const unsigned char *u = (const unsigned char *)topic;
    int row = DFA_START * d->ncls; /* the current state's row: its id x ncls */
    for (size_t i = p;;) {
        size_t j = dfa_scan(d, u, i, len, &row);
        d->stepped += j - i;
        *work += j - i;
        if (j == len || row == DFA_DEAD)
            break;
        int t = dfa_build(sel, d, row / d->ncls, d->bclass[u[j]], work); /* the step at j */
        if (t < 0)
            return nfa_run(sel, d, d->tmp, topic + j + 1, len - j - 1, work);
        row = t * d->ncls;
        i = j + 1;
        d->stepped++;
        *work += 1;
    }
    return set_has(d->sets + (size_t)(row / d->ncls) * d->words, sel->accept); /* the dead set is empty */
}

/* The answer when the template's DFA already knows every step the topic
 * takes (nothing to build: no NFA step, no allocation), adding its work;
 * -1 when it does not (after a part of the walk, counted too), before the
 * template's first match, and once it simulates its NFA. */
static int dfa_known(selector_t *sel, const char *topic, size_t len, uint64_t *work)
{
    dfa_t *d = sel->dfa;
    if (!d || d->nfa_only)
        return -1;
    assert(d->owner == thread_token()); /* one thread matches a template (selector.h, Threads) */
    assert(d->ncls > 0);                /* byte_classes makes one at least: rows are ncls wide */
    size_t p = (size_t)sel->prefix_len;
    *work += SELECTOR_WORK_MATCH + p / 16;
    if (len < p || memcmp(topic, sel->text, p) != 0)
        return 0;
    int row = DFA_START * d->ncls;
    size_t j = dfa_scan(d, (const unsigned char *)topic, p, len, &row);
    d->stepped += j - p;
    *work += j - p;
    if (j < len && row != DFA_DEAD)
        return -1;
    return set_has(d->sets + (size_t)(row / d->ncls) * d->words, sel->accept);
}

int selector_match(selector_t *sel, const char *topic, size_t len)
{
    switch (sel->kind) {
    case SELECTOR_ANY:
        return 1;
    case SELECTOR_EXACT:
        return len == sel->len && memcmp(topic, sel->text, len) == 0;
    default: {
        uint64_t work = 0;
        return dfa_match(sel, topic, len, &work);
    }
    }
}

void selector__dfa_limit(selector_t *sel, int max_states, int mode)
{
    dfa_free(sel->dfa);
    sel->dfa = NULL;
    sel->dfa_limit = max_states;
    sel->dfa_mode = (uint8_t)mode;
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

/* Is (id, topic) in its slot? The result (0 or 1) or -1, counted as a hit
 * or a miss; *slot and *h for cache_put. */
static int cache_get(selector_cache_t *c, uint64_t id, const char *topic, size_t len, centry_t **slot,
                     uint32_t *h)
{
    centry_t *e = *slot = cache_slot(c, id, topic, len, h);
    c->work += SELECTOR_WORK_HIT;
    if (e->sel_id == id && e->hash == *h && e->len == len && memcmp(e->topic, topic, len) == 0) {
        c->hits++;
        return e->result;
    }
    c->misses++;
    return -1;
}

/* Records (id, topic) -> result in the slot cache_get found. */
static void cache_put(centry_t *e, uint64_t id, uint32_t h, const char *topic, size_t len, int result)
{
    char *copy = e->len >= len && e->topic ? e->topic : realloc(e->topic, len ? len : 1);
    if (!copy) {
        e->sel_id = 0; /* the old entry's buffer is still owned by e */
        return;
    }
    memcpy(copy, topic, len);
    *e = (centry_t){id, h, (uint32_t)len, (uint8_t)(result != 0), copy};
}

int selector_cache_lookup(selector_cache_t *c, uint64_t id, const char *topic, size_t len)
{
    if (!c || len > CACHE_MAX_TOPIC)
        return -1;
    centry_t *e;
    uint32_t h;
    return cache_get(c, id, topic, len, &e, &h);
}

void selector_cache_store(selector_cache_t *c, uint64_t id, const char *topic, size_t len, int result)
{
    if (!c || len > CACHE_MAX_TOPIC)
        return;
    uint32_t h;
    centry_t *e = cache_slot(c, id, topic, len, &h); /* before h is read */
    cache_put(e, id, h, topic, len, result);
}

/* A template's DFA that knows the way answers sooner than the cache could
 * hash the topic (31 table steps take ~40 ns, a keyed hash and a copy of
 * the topic more): the cache is for the matches that would build DFA
 * states or simulate the NFA, which it saves when a topic comes back. */
int selector_cache_match(selector_cache_t *c, selector_t *sel, const char *topic, size_t len)
{
    if (sel->kind != SELECTOR_TEMPLATE || !c)
        return selector_match(sel, topic, len);
    int r = dfa_known(sel, topic, len, &c->work);
    if (r >= 0)
        return r;
    if (len > CACHE_MAX_TOPIC) /* uncached, but its cost still counts */
        return dfa_match(sel, topic, len, &c->work);
    centry_t *e;
    uint32_t h;
    if ((r = cache_get(c, sel->id, topic, len, &e, &h)) >= 0)
        return r;
    r = dfa_match(sel, topic, len, &c->work);
    cache_put(e, sel->id, h, topic, len, r);
    return r;
}

int selector_cache_known(selector_cache_t *c, selector_t *sel, const char *topic, size_t len)
{
    if (sel->kind != SELECTOR_TEMPLATE)
        return selector_match(sel, topic, len);
    uint64_t uncounted = 0;
    int r = dfa_known(sel, topic, len, c ? &c->work : &uncounted);
    if (r >= 0)
        return r;
    return selector_cache_lookup(c, sel->id, topic, len); /* -1 when c is NULL or the topic long */
}
