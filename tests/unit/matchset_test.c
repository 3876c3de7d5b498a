/*
 * matchset_test.c - unit tests of src/matchset.c: each matcher type as a
 * token's grant means it (draft-07 selectors with templates; draft-08 exact
 * byte for byte, URL patterns resolved against the hub's URL; "*" in every
 * type), and the first match in token order.
 */
#include "../../src/matchset.c"

#include "test.h"

#define BASE "https://hub.example/.well-known/mercure"

static grant_matcher_t M(const char *text, grant_match_type_t type)
{
    return (grant_matcher_t){(char *)text, strlen(text), type, !strcmp(text, "*"), NULL};
}

static long first(const matchset_t *m, const char *topic) { return matchset_first(m, topic, strlen(topic)); }

static void test_types(void)
{
    grant_matcher_t v[] = {
        M("https://ex.com/{id}", GRANT_MATCH_TEMPLATE_OR_EXACT), /* 0: a template */
        M("https://ex.com/x/{id}", GRANT_MATCH_EXACT),           /* 1: exact, braces and all */
        M("/rel/:id", GRANT_MATCH_URLPATTERN),                   /* 2: relative pattern */
        M("urn:exact", GRANT_MATCH_TEMPLATE_OR_EXACT),           /* 3: draft-07 exact */
        M("https://ex.com/p/:id", GRANT_MATCH_URLPATTERN),       /* 4 */
    };
    const char *why = NULL;
    matchset_t *m = matchset_try_new(v, 5, BASE, &why);
    ASSERT(m != NULL);
    ASSERT_EQ(first(m, "https://ex.com/1"), 0);
    ASSERT_EQ(first(m, "https://ex.com/x/{id}"), 1);
    ASSERT_EQ(first(m, "https://ex.com/x/1"), -1);
    ASSERT_EQ(first(m, "/rel/1"), 2);
    ASSERT_EQ(first(m, "https://hub.example/rel/2"), 2);
    ASSERT_EQ(first(m, "https://other.example/rel/2"), -1);
    ASSERT_EQ(first(m, "urn:exact"), 3);
    ASSERT_EQ(first(m, "https://ex.com/p/9"), 4); /* {id} expands to no "/" */
    ASSERT_EQ(first(m, "https://ex.com/p"), 0);   /* the template, first in token order */
    ASSERT(matchset_match_one(m, 4, "https://ex.com/p/9", 18));
    ASSERT(!matchset_match_one(m, 4, "https://ex.com/q/9", 18));
    matchset_free(m);
    grant_matcher_t w[] = {M("urn:a", GRANT_MATCH_EXACT), M("*", GRANT_MATCH_URLPATTERN)};
    m = matchset_try_new(w, 2, BASE, &why);
    ASSERT(m && first(m, "anything at all") == 1 && first(m, "urn:a") == 0);
    matchset_free(m);
    grant_matcher_t bad[] = {M("/x/(", GRANT_MATCH_URLPATTERN)};
    ASSERT(matchset_try_new(bad, 1, BASE, &why) == NULL && why);
    m = matchset_try_new(NULL, 0, BASE, &why);
    ASSERT(m && first(m, "x") == -1);
    matchset_free(m);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_types);
    TEST_MAIN_END();
}
