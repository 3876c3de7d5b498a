/*
 * acmechal_test.c - unit tests of src/acmechal.c: answers published,
 * replaced, found (tokens exactly, names case-insensitively), the table's
 * bound, clearing, and references (ASan's leak check sees a lost one);
 * readers on other threads while the table changes.
 */
#include "../../src/acmechal.c"

#include "acmepki.h"
#include "test.h"

static void test_http01(void)
{
    acmechal_t *c = acmechal_new();
    char out[400];
    ASSERT_EQ(acmechal_http01(c, "tok", 3, out, sizeof(out)), -1);
    ASSERT_EQ(acmechal_set_http01(c, "tok", "tok.thumb"), 0);
    ASSERT_EQ(acmechal_http01(c, "tok", 3, out, sizeof(out)), 9);
    ASSERT_STR_EQ(out, "tok.thumb");
    ASSERT_EQ(acmechal_http01(c, "to", 2, out, sizeof(out)), -1); /* a prefix is not the token */
    ASSERT_EQ(acmechal_http01(c, "tokk", 4, out, sizeof(out)), -1);
    ASSERT_EQ(acmechal_http01(c, "TOK", 3, out, sizeof(out)), -1); /* tokens are case-sensitive */
    ASSERT_EQ(acmechal_http01(c, "tok", 3, out, 5), -1);           /* does not fit */
    ASSERT_EQ(acmechal_set_http01(c, "tok", "tok.other"), 0);      /* replaced, not added */
    ASSERT_EQ(acmechal_http01(c, "tok", 3, out, sizeof(out)), 9);
    ASSERT_STR_EQ(out, "tok.other");
    for (int i = 1; i < ACMECHAL_MAX; i++) {
        char t[16];
        snprintf(t, sizeof(t), "t%d", i);
        ASSERT_EQ(acmechal_set_http01(c, t, "x"), 0);
    }
    ASSERT_EQ(acmechal_set_http01(c, "one-too-many", "x"), -1);
    ASSERT_EQ(acmechal_set_http01(c, "", "x"), -1);
    char longtok[300];
    memset(longtok, 'a', 299);
    longtok[299] = 0;
    ASSERT_EQ(acmechal_set_http01(c, longtok, "x"), -1);
    acmechal_clear(c);
    ASSERT_EQ(acmechal_http01(c, "tok", 3, out, sizeof(out)), -1);
    ASSERT_EQ(acmechal_set_http01(c, "one-too-many", "x"), 0);
    acmechal_free(c);
}

static void test_tlsalpn01(void)
{
    acmechal_t *c = acmechal_new();
    EVP_PKEY *k = acmepki_new_key();
    unsigned char digest[32] = {1};
    const char *name = "hub.courant.test";
    X509 *x = acmepki_self_signed(k, &name, 1, 1, digest);
    X509 *got = NULL;
    EVP_PKEY *gk = NULL;
    ASSERT_EQ(acmechal_tlsalpn01(c, name, &got, &gk), -1);
    ASSERT(got == NULL && gk == NULL);
    ASSERT_EQ(acmechal_set_tlsalpn01(c, name, x, k), 0);
    ASSERT_EQ(acmechal_tlsalpn01(c, "HUB.Courant.Test", &got, &gk), 0);
    ASSERT(got == x && gk == k);
    X509_free(got); /* the reference the lookup gave */
    EVP_PKEY_free(gk);
    ASSERT_EQ(acmechal_tlsalpn01(c, "other.courant.test", &got, &gk), -1);
    ASSERT_EQ(acmechal_set_tlsalpn01(c, name, x, k), 0); /* replaced: the old references dropped */
    X509_free(x);                                        /* the table keeps its own */
    EVP_PKEY_free(k);
    ASSERT_EQ(acmechal_tlsalpn01(c, name, &got, &gk), 0);
    ASSERT(got != NULL);
    X509_free(got);
    EVP_PKEY_free(gk);
    acmechal_clear(c);
    ASSERT_EQ(acmechal_tlsalpn01(c, name, &got, &gk), -1);
    acmechal_free(c); /* nothing leaks (LeakSanitizer) */
}

typedef struct reader {
    acmechal_t *c;
    int found;
} reader_t;

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    char out[64];
    for (int i = 0; i < 20000; i++)
        if (acmechal_http01(r->c, "tok", 3, out, sizeof(out)) == 3 && !strcmp(out, "abc"))
            r->found++;
    return NULL;
}

static void test_threads(void)
{
    acmechal_t *c = acmechal_new();
    reader_t r = {c, 0};
    pthread_t t;
    pthread_create(&t, NULL, reader_main, &r);
    for (int i = 0; i < 2000; i++) {
        ASSERT_EQ(acmechal_set_http01(c, "tok", "abc"), 0);
        acmechal_clear(c);
    }
    ASSERT_EQ(acmechal_set_http01(c, "tok", "abc"), 0);
    pthread_join(t, NULL);
    ASSERT(r.found >= 0);
    acmechal_free(c);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_http01);
    TEST_RUN(test_tlsalpn01);
    TEST_RUN(test_threads);
    TEST_MAIN_END();
}
