/*
 * topk_test.c - unit tests for src/topk.c against a naive model: offering
 * many topics keeps exactly the TOPK_KEEP largest (ties aside), sorted;
 * a topic offered twice keeps the larger count; long topics are cut and
 * marked; merging two workers' lists adds counts; the board copies.
 */
#include "../../src/topk.c"

#include "test.h"

#include <stdio.h>

static int sorted(const topk_list_t *l)
{
    for (size_t i = 1; i < l->n; i++)
        if (l->e[i].count > l->e[i - 1].count)
            return 0;
    return 1;
}

static void test_keeps_the_largest(void)
{
    topk_list_t l;
    topk_init(&l);
    /* counts 1..500 in a scrambled order: the 32 largest are 469..500. */
    for (unsigned i = 0; i < 500; i++) {
        unsigned c = (i * 7919u) % 500u + 1;
        char name[32];
        int n = snprintf(name, sizeof(name), "topic-%u", c);
        topk_offer(&l, name, (size_t)n, c);
    }
    ASSERT_UEQ(l.n, TOPK_KEEP);
    ASSERT(sorted(&l));
    for (size_t i = 0; i < l.n; i++) {
        ASSERT_UEQ(l.e[i].count, 500 - i);
        char want[32];
        int n = snprintf(want, sizeof(want), "topic-%zu", 500 - i);
        ASSERT_MEM_STR(l.e[i].topic, l.e[i].len, want);
        (void)n;
    }
}

static void test_seen_twice_keeps_the_larger(void)
{
    topk_list_t l;
    topk_init(&l);
    topk_offer(&l, "a", 1, 5);
    topk_offer(&l, "b", 1, 7);
    topk_offer(&l, "a", 1, 9); /* moved by a resize, seen again with a new count */
    topk_offer(&l, "b", 1, 3);
    ASSERT_UEQ(l.n, 2);
    ASSERT_MEM_STR(l.e[0].topic, l.e[0].len, "a");
    ASSERT_UEQ(l.e[0].count, 9);
    ASSERT_UEQ(l.e[1].count, 7);
}

static void test_long_topics_cut(void)
{
    char big[300];
    memset(big, 'x', sizeof(big));
    topk_list_t l;
    topk_init(&l);
    topk_offer(&l, big, sizeof(big), 4);
    topk_offer(&l, big, TOPK_TOPIC_MAX, 2); /* exactly the kept bytes: a different topic */
    ASSERT_UEQ(l.n, 2);
    ASSERT_UEQ(l.e[0].len, TOPK_TOPIC_MAX);
    ASSERT_EQ(l.e[0].cut, 1);
    ASSERT_EQ(l.e[1].cut, 0);
}

static void test_merge_adds(void)
{
    topk_list_t w0, w1, all;
    topk_init(&w0);
    topk_init(&w1);
    topk_init(&all);
    topk_offer(&w0, "hot", 3, 10);
    topk_offer(&w0, "cold", 4, 1);
    topk_offer(&w1, "warm", 4, 6);
    topk_offer(&w1, "hot", 3, 2);
    topk_merge(&all, &w0);
    topk_merge(&all, &w1);
    ASSERT_UEQ(all.n, 3);
    ASSERT_MEM_STR(all.e[0].topic, all.e[0].len, "hot");
    ASSERT_UEQ(all.e[0].count, 12);
    ASSERT_MEM_STR(all.e[1].topic, all.e[1].len, "warm");
    ASSERT_MEM_STR(all.e[2].topic, all.e[2].len, "cold");
    ASSERT(sorted(&all));
}

static void test_board(void)
{
    topk_board_t b;
    topk_board_init(&b);
    topk_list_t l, out;
    topk_init(&l);
    ASSERT_EQ(topk_board_read(&b, &out), 0); /* never published */
    ASSERT_UEQ(out.n, 0);
    topk_offer(&l, "t", 1, 3);
    topk_board_publish(&b, &l, 1234);
    topk_offer(&l, "u", 1, 4); /* the worker goes on; the board keeps its copy */
    ASSERT_EQ(topk_board_read(&b, &out), 1234);
    ASSERT_UEQ(out.n, 1);
    ASSERT_MEM_STR(out.e[0].topic, out.e[0].len, "t");
    topk_board_dispose(&b);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_keeps_the_largest);
    TEST_RUN(test_seen_twice_keeps_the_larger);
    TEST_RUN(test_long_topics_cut);
    TEST_RUN(test_merge_adds);
    TEST_RUN(test_board);
    TEST_MAIN_END();
}
