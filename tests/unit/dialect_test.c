/*
 * dialect_test.c - unit tests of src/dialect.c: which protocol a subscribe
 * speaks (topic / match* / both / neither / QUERY), the reserved match
 * namespace, value checks, last_event_id precedence (header handled by the
 * caller; query over body here), the subscriptions API paths, and the typ
 * peek of an unverified token.
 */
#include "../../src/dialect.c"

#include "test.h"

static char scratch[8192];

static void parse(const char *q, const char *body, size_t max, dialect_sub_t *out)
{
    dialect_parse_subscribe(q, strlen(q), body, body ? strlen(body) : 0, max, scratch, out);
}

static void test_dialects(void)
{
    dialect_sub_t s;
    parse("topic=a&topic=https%3A%2F%2Fex.com%2F%7Bid%7D&lastEventID=x", NULL, 64, &s);
    ASSERT(!s.bad && s.dialect == DIALECT_CLASSIC && s.num_sel == 2);
    ASSERT_MEM_STR(s.sel[1], s.sel_len[1], "https://ex.com/{id}");
    ASSERT_EQ(s.sel_type[0], GRANT_MATCH_TEMPLATE_OR_EXACT);
    ASSERT_MEM_STR(s.last_event_id, s.last_event_id_len, "x");

    parse("match=a&match_exact=b&match_urlpattern=%2Fc%2F%3Aid&last_event_id=y&lastEventID=z", NULL, 64, &s);
    ASSERT(!s.bad && s.dialect == DIALECT_V1 && s.num_sel == 3);
    ASSERT_EQ(s.sel_type[0], GRANT_MATCH_EXACT);
    ASSERT_EQ(s.sel_type[1], GRANT_MATCH_EXACT);
    ASSERT_EQ(s.sel_type[2], GRANT_MATCH_URLPATTERN);
    ASSERT_MEM_STR(s.sel[2], s.sel_len[2], "/c/:id");
    ASSERT_MEM_STR(s.last_event_id, s.last_event_id_len, "y"); /* v1 ignores lastEventID */

    parse("topic=a&last_event_id=y", NULL, 64, &s);
    ASSERT(s.dialect == DIALECT_CLASSIC && s.last_event_id == NULL); /* classic ignores last_event_id */

    parse("match=a&topic=b", NULL, 64, &s);
    ASSERT(s.bad && s.dialect == DIALECT_MIXED);

    parse("foo=bar", NULL, 64, &s);
    ASSERT(!s.bad && s.dialect == DIALECT_AUTO && s.num_sel == 0);

    parse("", "", 64, &s); /* a QUERY with an empty body */
    ASSERT(!s.bad && s.dialect == DIALECT_V1 && s.num_sel == 0);

    parse("", "topic=a", 64, &s); /* QUERY is 1.0 only */
    ASSERT(s.bad && s.dialect == DIALECT_MIXED);
}

static void test_match_namespace(void)
{
    static const char *const bad[] = {"match_regex=a",      "Match=a",          "MATCH_exact=a", "matches=a",
                                      "match_URLPattern=a", "match%5Fexact2=a", "matchx=a"};
    dialect_sub_t s;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parse(bad[i], NULL, 64, &s);
        if (!s.bad)
            TEST_FAIL_AT("accepted: %s", bad[i]);
    }
    parse("m%61tch=a", NULL, 64, &s); /* the decoded name counts */
    ASSERT(!s.bad && s.dialect == DIALECT_V1 && s.num_sel == 1);
    ASSERT(dialect_is_match_name("MaTcHing", 8) && !dialect_is_match_name("matc", 4) &&
           !dialect_is_match_name("xmatch", 6));
}

static void test_values(void)
{
    static const char *const bad[] = {
        "match=",    "match",        "match=a%01b", "match=a%C2%85b", "match=a%E2%80%AEb",
        "match=%FF", "match=%C0%80", "topic=",      "topic=a%00b",    "match=a%zzb"};
    dialect_sub_t s;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parse(bad[i], NULL, 64, &s);
        if (!s.bad)
            TEST_FAIL_AT("accepted: %s", bad[i]);
    }
    char q[4200] = "match=";
    memset(q + 6, 'x', GRANT_MAX_MATCHER_LEN);
    q[6 + GRANT_MAX_MATCHER_LEN] = 0;
    parse(q, NULL, 64, &s);
    ASSERT(!s.bad);
    strcat(q, "x");
    parse(q, NULL, 64, &s);
    ASSERT(s.bad != NULL);
    /* Classic selectors have no such limit (the head size bounds them) and
     * no Unicode rules (draft-07 has none). */
    parse("topic=%E2%80%AE", NULL, 64, &s);
    ASSERT(!s.bad && s.num_sel == 1);
}

static void test_limits_and_union(void)
{
    dialect_sub_t s;
    parse("match=a&match=b&match=c", NULL, 2, &s);
    ASSERT(s.bad && strstr(s.bad, "too many"));
    ASSERT(s.dialect == DIALECT_V1); /* still known, for the answer */
    parse("match=a&last_event_id=q", "match=b&last_event_id=body", 64, &s);
    ASSERT(!s.bad && s.num_sel == 2);
    ASSERT_MEM_STR(s.sel[1], s.sel_len[1], "b");
    ASSERT_MEM_STR(s.last_event_id, s.last_event_id_len, "q"); /* the query wins */
    parse("match=a", "last_event_id=body", 64, &s);
    ASSERT_MEM_STR(s.last_event_id, s.last_event_id_len, "body");
    parse("match=a&authorization=t", NULL, 64, &s);
    ASSERT(s.token_in_url);
    parse("match=a&access_token=t", NULL, 64, &s);
    ASSERT(s.token_in_url);
}

static void test_subsapi_paths(void)
{
    static const struct {
        const char *path;
        dialect_t want;
    } cases[] = {
        {"/.well-known/mercure/subscriptions", DIALECT_AUTO},
        {"/.well-known/mercure/subscriptions/", DIALECT_AUTO},
        {"/.well-known/mercure/subscriptions/exact", DIALECT_V1},
        {"/.well-known/mercure/subscriptions/exact/a%2Fb", DIALECT_V1},
        {"/.well-known/mercure/subscriptions/urlpattern/x/y", DIALECT_V1},
        {"/.well-known/mercure/subscriptions/exactly/x", DIALECT_CLASSIC},
        {"/.well-known/mercure/subscriptions/https%3A%2F%2Fex.com", DIALECT_CLASSIC},
        {"/.well-known/mercure/subscriptions/Exact/x", DIALECT_CLASSIC},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (dialect_of_subsapi_path(cases[i].path, strlen(cases[i].path)) != cases[i].want)
            TEST_FAIL_AT("%s: want %s", cases[i].path, dialect_name(cases[i].want));
}

static char *tok(const char *header)
{
    static char out[256];
    size_t n = jws_b64url_encode((const unsigned char *)header, strlen(header), out);
    strcpy(out + n, ".e30.sig");
    return out;
}

static void test_typ_peek(void)
{
    ASSERT(dialect_token_is_v1(tok("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}"),
                               strlen(tok("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}"))));
    const char *t = tok("{\"alg\":\"ES256\",\"typ\":\"application/AT+JWT\"}");
    ASSERT(dialect_token_is_v1(t, strlen(t)));
    t = tok("{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
    ASSERT(!dialect_token_is_v1(t, strlen(t)));
    t = tok("{\"alg\":\"HS256\"}");
    ASSERT(!dialect_token_is_v1(t, strlen(t)));
    t = tok("{\"typ\":7}");
    ASSERT(!dialect_token_is_v1(t, strlen(t)));
    t = tok("not json");
    ASSERT(!dialect_token_is_v1(t, strlen(t)));
    ASSERT(!dialect_token_is_v1("", 0) && !dialect_token_is_v1(".x.y", 4) &&
           !dialect_token_is_v1("%%.x.y", 6));
    ASSERT(dialect_typ_is_v1("at+JWT") && !dialect_typ_is_v1("application/jwt") && !dialect_typ_is_v1(NULL) &&
           !dialect_typ_is_v1("at+jwt2"));
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_dialects);
    TEST_RUN(test_match_namespace);
    TEST_RUN(test_values);
    TEST_RUN(test_limits_and_union);
    TEST_RUN(test_subsapi_paths);
    TEST_RUN(test_typ_peek);
    TEST_MAIN_END();
}
