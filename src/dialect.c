/*
 * dialect.c - see dialect.h.
 *
 * The subscribe parameters are read with the one form decoder
 * (http1_parse_form): the query and the body go through the same callback,
 * so the draft's "union of the two" is simply both walks into one struct.
 */
#include "dialect.h"

#include "http1.h"
#include "jws.h"

#include <string.h>
#include <strings.h>

typedef struct walk {
    dialect_sub_t *out;
    size_t max;    /* selectors accepted */
    int has_topic; /* a classic `topic` parameter was seen */
    int has_match; /* a v1 `match*` parameter was seen */
    int v1_lei;    /* last_event_id already taken (the query's wins) */
    const char *classic_lei;
    size_t classic_lei_len;
} walk_t;

static int name_is(const char *n, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(n, lit, len) == 0;
}

int dialect_is_match_name(const char *name, size_t len)
{
    return len >= 5 && strncasecmp(name, "match", 5) == 0;
}

static int add_selector(walk_t *w, const char *v, size_t vl, grant_match_type_t type)
{
    dialect_sub_t *o = w->out;
    if (o->num_sel == w->max) {
        o->bad = "too many topic selectors (--max-topics-per-subscribe)";
        return 1;
    }
    if (vl == 0 || memchr(v, 0, vl)) {
        o->bad = type == GRANT_MATCH_TEMPLATE_OR_EXACT ? "empty or invalid topic selector"
                                                       : "empty or invalid topic matcher";
        return 1;
    }
    if (type != GRANT_MATCH_TEMPLATE_OR_EXACT) {
        if (vl > GRANT_MAX_MATCHER_LEN) {
            o->bad = "a topic matcher is too long (at most 2048 bytes)";
            return 1;
        }
        if (!grant_string_ok(v, vl)) {
            o->bad = "a topic matcher is not UTF-8 or holds a control or format character";
            return 1;
        }
    }
    o->sel[o->num_sel] = v;
    o->sel_len[o->num_sel] = vl;
    o->sel_type[o->num_sel++] = (uint8_t)type;
    return 0;
}

static int on_pair(void *ctx, const char *n, size_t nl, const char *v, size_t vl)
{
    walk_t *w = ctx;
    dialect_sub_t *o = w->out;
    if (name_is(n, nl, "topic")) {
        w->has_topic = 1;
        return add_selector(w, v, vl, GRANT_MATCH_TEMPLATE_OR_EXACT);
    }
    if (dialect_is_match_name(n, nl)) {
        /* The suffix is case-sensitive and canonical: "Match" or
         * "match_URLPattern" name no matcher type we support. */
        w->has_match = 1;
        if (name_is(n, nl, "match") || name_is(n, nl, "match_exact"))
            return add_selector(w, v, vl, GRANT_MATCH_EXACT);
        if (name_is(n, nl, "match_urlpattern"))
            return add_selector(w, v, vl, GRANT_MATCH_URLPATTERN);
        o->bad = "unknown matcher type parameter (the match namespace is reserved: use match, match_exact "
                 "or match_urlpattern)";
        return 1;
    }
    if (name_is(n, nl, "last_event_id")) {
        if (!w->v1_lei) {
            w->v1_lei = 1;
            o->last_event_id = v;
            o->last_event_id_len = vl;
        }
    } else if ((name_is(n, nl, "lastEventID") || name_is(n, nl, "lastEventId")) && vl && !w->classic_lei) {
        /* lastEventId: event-source-polyfill's spelling of the parameter */
        w->classic_lei = v;
        w->classic_lei_len = vl;
    } else if (name_is(n, nl, "authorization") || name_is(n, nl, "access_token")) {
        o->token_in_url = 1;
    }
    return 0;
}

void dialect_parse_subscribe(const char *query, size_t qlen, const char *body, size_t blen,
                             size_t max_selectors, char *scratch, dialect_sub_t *out)
{
    memset(out, 0, sizeof(*out));
    walk_t w = {.out = out,
                .max = max_selectors < DIALECT_MAX_SELECTORS ? max_selectors : DIALECT_MAX_SELECTORS};
    int r = http1_parse_form(query, qlen, scratch, on_pair, &w);
    if (r == 0 && body)
        r = http1_parse_form(body, blen, scratch + qlen, on_pair, &w);
    if (r < 0)
        out->bad = body ? "malformed query string or form body" : "malformed query string";
    /* The dialect, from what was read (all of it unless refused early), so
     * that a refusal is answered in it too. */
    if (w.has_topic && (w.has_match || body)) {
        /* A QUERY subscribe is Mercure 1.0 only: draft-07 has no body. */
        out->dialect = DIALECT_MIXED;
        if (!out->bad)
            out->bad = w.has_match
                           ? "topic (Mercure draft-07) and match (Mercure 1.0) parameters in one request"
                           : "topic (Mercure draft-07) parameters in a QUERY subscribe (Mercure 1.0: match)";
    } else if (w.has_match || body) {
        out->dialect = DIALECT_V1;
    } else if (w.has_topic) {
        out->dialect = DIALECT_CLASSIC;
    } else {
        out->dialect = DIALECT_AUTO;
    }
    if (out->dialect == DIALECT_CLASSIC) {
        out->last_event_id = w.classic_lei;
        out->last_event_id_len = w.classic_lei_len;
    } else if (out->dialect == DIALECT_AUTO && !w.v1_lei) {
        out->last_event_id = w.classic_lei;
        out->last_event_id_len = w.classic_lei_len;
    }
}

dialect_t dialect_of_subsapi_path(const char *path, size_t len)
{
    static const char api[] = "/.well-known/mercure/subscriptions";
    size_t n = sizeof(api) - 1;
    if (len <= n + 1 || memcmp(path, api, n) != 0 || path[n] != '/')
        return DIALECT_AUTO;
    const char *seg = path + n + 1;
    const char *slash = memchr(seg, '/', len - n - 1);
    size_t sl = slash ? (size_t)(slash - seg) : len - n - 1;
    if (name_is(seg, sl, "exact") || name_is(seg, sl, "urlpattern"))
        return DIALECT_V1;
    return DIALECT_CLASSIC;
}

int dialect_token_is_v1(const char *token, size_t len)
{
    if (len > JWS_MAX_TOKEN)
        return 0;
    const char *dot = memchr(token, '.', len);
    if (!dot || dot == token)
        return 0;
    unsigned char hdr[JWS_MAX_TOKEN];
    long hn = jws_b64url_decode(token, (size_t)(dot - token), hdr);
    if (hn <= 0)
        return 0;
    json_t *h = jws_json_try_parse((const char *)hdr, (size_t)hn, JWS_MAX_JSON_DEPTH);
    int v1 = h && dialect_typ_is_v1(json_string_value(json_object_get(h, "typ")));
    json_decref(h);
    return v1;
}

int dialect_typ_is_v1(const char *typ)
{
    if (!typ)
        return 0;
    if (!strncasecmp(typ, "application/", 12))
        typ += 12;
    return !strcasecmp(typ, "at+jwt");
}

const char *dialect_name(dialect_t d)
{
    switch (d) {
    case DIALECT_CLASSIC:
        return "classic";
    case DIALECT_V1:
        return "v1";
    case DIALECT_MIXED:
        return "mixed";
    case DIALECT_AUTO:
        break;
    }
    return "auto";
}
