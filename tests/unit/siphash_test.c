/*
 * siphash_test.c - SipHash against published outputs, and the process key.
 *
 * The shared body sip_hash(c, d, ...) is checked as SipHash-2-4 against
 * the vectors of the paper's reference (key 00..0f, message 00..len-1) and
 * as SipHash-1-3 against the reference implementation's -1-3 outputs (zero
 * key, same messages), for lengths that cover every tail size and several
 * whole words. Then: unaligned input, the lazy seeding racing from several
 * threads, and siphash_seed_set.
 */
#include "../../src/siphash.c"

#include "test.h"

/* SipHash-2-4, key 00 01 .. 0f, message 00 01 .. len-1 (the paper's
 * Appendix A vector is len 15). */
static const struct {
    size_t len;
    uint64_t out;
} v24[] = {
    {0, 0x726fdb47dd0e0e31ull},  {1, 0x74f839c593dc67fdull},  {7, 0xab0200f58b01d137ull},
    {8, 0x93f5f5799a932462ull},  {9, 0x9e0082df0ba9e4b0ull},  {15, 0xa129ca6149be45e5ull},
    {16, 0x3f2acc7f57c29bdbull}, {17, 0x699ae9f52cbe4794ull}, {63, 0x958a324ceb064572ull},
};

/* SipHash-1-3, zero key, message 00 01 .. len-1. */
static const uint64_t v13[] = {
    0xd1fba762150c532cull, 0x68a914128e01e473ull, 0x010bac45c41e3669ull, 0x4d4c9a4a8ef6e0adull,
    0x7cc43f98813e4dbdull, 0x5abe2169dff36275ull, 0xe3c25f87624f1cdbull, 0x2f098ab0c751325aull,
    0xead411e67ebe2eeaull, 0x75927f9d95124362ull, 0xaf9f77a65ab51a1dull, 0xfe64ce8b6617fcffull,
    0xa6baf4fb0f9fe1c2ull, 0xa0cf3211850f8e0dull, 0x7f86049379fbfe67ull, 0xf30eb725bb91c9eaull,
    0x8972188433a5c5b7ull, 0x4883c49a2c009c1dull, 0xadc2c0b63044067dull, 0x091f4a3329f87d19ull,
    0x639e355ae68c0100ull, 0xb17bef2cb5213239ull, 0xf8aeb1066236ccfeull,
};

static uint8_t msg[64];

static void test_siphash24_vectors(void)
{
    uint8_t key[16];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof v24 / sizeof v24[0]; i++) {
        uint64_t got = sip_hash(2, 4, key, msg, v24[i].len);
        if (got != v24[i].out)
            TEST_FAIL_AT("len %zu: %016jx, want %016jx", v24[i].len, (uintmax_t)got, (uintmax_t)v24[i].out);
    }
}

static void test_siphash13_vectors(void)
{
    static const uint8_t zero[16];
    for (size_t len = 0; len < sizeof v13 / sizeof v13[0]; len++) {
        uint64_t got = siphash13(zero, msg, len);
        if (got != v13[len])
            TEST_FAIL_AT("len %zu: %016jx, want %016jx", len, (uintmax_t)got, (uintmax_t)v13[len]);
    }
    ASSERT_UEQ(siphash13(zero, NULL, 0), v13[0]); /* NULL with len 0 is allowed */
}

/* The words are read with memcpy: any alignment gives the same hash. */
static void test_unaligned(void)
{
    static const uint8_t key[16] = "unaligned-input!";
    uint8_t buf[64 + 8];
    for (size_t off = 0; off < 8; off++) {
        memcpy(buf + off, msg, 64);
        for (size_t len = 0; len <= 64; len += 7)
            ASSERT_UEQ(siphash13(key, buf + off, len), siphash13(key, msg, len));
    }
}

/* Threads that hash before anyone seeded: the lazy seeding runs once and
 * all of them see the same key. */
#define RACERS 4
static uint64_t racer_out[RACERS];

static void *racer(void *arg)
{
    size_t i = (size_t)arg;
    racer_out[i] = siphash_keyed("topic", 5);
    return NULL;
}

static void test_lazy_seed_and_set(void)
{
    pthread_t t[RACERS];
    for (size_t i = 0; i < RACERS; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, racer, (void *)i), 0);
    for (size_t i = 0; i < RACERS; i++)
        pthread_join(t[i], NULL);
    for (size_t i = 1; i < RACERS; i++)
        ASSERT_UEQ(racer_out[i], racer_out[0]);
    /* Explicit init afterwards is a no-op that reports success. */
    ASSERT_EQ(siphash_seed_init(), 0);
    ASSERT_UEQ(siphash_keyed("topic", 5), racer_out[0]);
    ASSERT_UEQ(siphash_keyed("topic", 5), siphash13(process_key, "topic", 5));
    /* The key is random: not the all-zero key that an unseeded array
     * would hold (a 2^-64 chance of a false failure). */
    static const uint8_t zero[16];
    ASSERT(siphash_keyed("topic", 5) != siphash13(zero, "topic", 5));

    /* A fixed key gives reproducible hashes; a different key, others. */
    static const uint8_t fixed[16] = "0123456789abcdef";
    siphash_seed_set(fixed);
    ASSERT_UEQ(siphash_keyed("topic", 5), siphash13(fixed, "topic", 5));
    ASSERT(siphash_keyed("topic", 5) != racer_out[0]);
    ASSERT(siphash_keyed("topic", 5) != siphash_keyed("topid", 5));
    ASSERT(siphash_keyed("topic", 5) != siphash_keyed("topic", 4));
}

int main(void)
{
    TEST_MAIN_BEGIN();
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    TEST_RUN(test_siphash24_vectors);
    TEST_RUN(test_siphash13_vectors);
    TEST_RUN(test_unaligned);
    TEST_RUN(test_lazy_seed_and_set);
    TEST_MAIN_END();
}
