/*
 * strmap_test.c - the hash map against a naive model (a plain array), over
 * random puts, gets and removes on a small key space so that probe runs,
 * wrap-around and backward-shift deletion all get exercised.
 */
#include "../../src/strmap.c"

#include "test.h"

#define KEYS 300

static char keys[KEYS][16];

static void test_basic(void)
{
    strmap_t m;
    strmap_init(&m);
    ASSERT(strmap_get(&m, "a", 1) == NULL);
    ASSERT(strmap_remove(&m, "a", 1) == NULL);
    int one = 1, two = 2;
    ASSERT_EQ(strmap_try_put(&m, "a", 1, &one), 0);
    ASSERT_EQ(strmap_try_put(&m, "ab", 2, &two), 0);
    ASSERT(strmap_get(&m, "a", 1) == &one);
    ASSERT(strmap_get(&m, "ab", 2) == &two);
    ASSERT(strmap_get(&m, "abc", 2) == &two);       /* length bounds the key */
    ASSERT_EQ(strmap_try_put(&m, "a", 1, &two), 0); /* replace */
    ASSERT(strmap_get(&m, "a", 1) == &two);
    ASSERT_UEQ(m.count, 2);
    ASSERT(strmap_remove(&m, "a", 1) == &two);
    ASSERT(strmap_get(&m, "a", 1) == NULL);
    ASSERT_UEQ(m.count, 1);
    strmap_dispose(&m);
}

static void test_against_model(void)
{
    void *model[KEYS] = {0};
    strmap_t m;
    strmap_init(&m);
    unsigned seed = 12345;
    size_t live = 0;
    for (int step = 0; step < 200000; step++) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)((seed >> 8) % KEYS);
        int op = (int)((seed >> 20) % 3);
        size_t len = strlen(keys[k]);
        if (op == 0) {
            void *v = (void *)(uintptr_t)(step + 1);
            ASSERT_EQ(strmap_try_put(&m, keys[k], len, v), 0);
            live += model[k] == NULL;
            model[k] = v;
        } else if (op == 1) {
            ASSERT(strmap_remove(&m, keys[k], len) == model[k]);
            live -= model[k] != NULL;
            model[k] = NULL;
        }
        if (strmap_get(&m, keys[k], len) != model[k]) {
            TEST_FAIL_AT("step %d key %s: map and model disagree", step, keys[k]);
            break;
        }
        if (step % 9973 == 0) {
            for (int j = 0; j < KEYS; j++)
                ASSERT(strmap_get(&m, keys[j], strlen(keys[j])) == model[j]);
            ASSERT_UEQ(m.count, live);
            ASSERT(m.count * 4 <= m.cap * 3); /* load factor */
        }
    }
    strmap_dispose(&m);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    for (int i = 0; i < KEYS; i++)
        snprintf(keys[i], sizeof(keys[i]), "topic/%d", i * 7);
    TEST_RUN(test_basic);
    TEST_RUN(test_against_model);
    TEST_MAIN_END();
}
