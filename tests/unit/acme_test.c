/*
 * acme_test.c - unit tests of src/acme.c without a CA (the order itself is
 * tested end to end against pebble in tests/e2e/acme.test.mjs): the
 * renewal schedule, names of state subdirectories, option checks, and the
 * state directory: created 0700, the account key created 0600 once and
 * reused, a key that does not load refused (never replaced), the lock, a
 * stored certificate used or ignored, the bootstrap certificate.
 */
#include "../../src/acme.c"

#include "test.h"

#include <sys/wait.h>

static void test_renew_at(void)
{
    int64_t nb = 1000000, day = 86400;
    /* 90 days: two thirds is day 60; jitter at most one day earlier */
    ASSERT_EQ(acme__renew_at(nb, nb + 90 * day, 0, 0), nb + 60 * day);
    ASSERT_EQ(acme__renew_at(nb, nb + 90 * day, 0, 1), nb + 59 * day);
    int64_t j = acme__renew_at(nb, nb + 90 * day, 0, 0.5);
    ASSERT(j > nb + 59 * day && j < nb + 60 * day);
    /* short lifetimes: jitter is at most a thirtieth of it */
    ASSERT_EQ(acme__renew_at(nb, nb + 30, 0, 0), nb + 20);
    ASSERT_EQ(acme__renew_at(nb, nb + 30, 0, 1), nb + 19);
    /* --acme-renew-before counts back from expiry, floored at a tenth of the lifetime */
    ASSERT_EQ(acme__renew_at(nb, nb + 90 * day, 30 * day, 0), nb + 60 * day);
    ASSERT_EQ(acme__renew_at(nb, nb + 90 * day, 89 * day, 0), nb + 9 * day);
    ASSERT_EQ(acme__renew_at(nb, nb + 90 * day, 1000 * day, 0), nb + 9 * day);
    ASSERT_EQ(acme__renew_at(nb, nb, 0, 0), nb);                       /* malformed: now */
    ASSERT_EQ(acme__renew_at(nb, nb + 90 * day, 0, 7), nb + 59 * day); /* jitter clamped */
}

static void test_names(void)
{
    char out[128];
    acme__ca_dirname("https://acme-v02.api.letsencrypt.org/directory", out, sizeof(out));
    ASSERT_STR_EQ(out, "acme-v02.api.letsencrypt.org_directory");
    acme__ca_dirname("https://127.0.0.1:14000/dir", out, sizeof(out));
    ASSERT_STR_EQ(out, "127.0.0.1_14000_dir");
    acme__ca_dirname("https://[::1]:14000/", out, sizeof(out));
    ASSERT_STR_EQ(out, "___1__14000");
    acme__ca_dirname("https://../..", out, sizeof(out));
    ASSERT(!strchr(out, '/'));
    acme__ca_dirname("https://", out, sizeof(out));
    ASSERT_STR_EQ(out, "ca");
    char longurl[400] = "https://";
    memset(longurl + 8, 'a', 300);
    acme__ca_dirname(longurl, out, sizeof(out));
    ASSERT_UEQ(strlen(out), 100);

    ASSERT_EQ(acme_default_state_dir(NULL, out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "/var/lib/courant/acme");
    ASSERT_EQ(acme_default_state_dir("/var/lib/courant/courant.db", out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "/var/lib/courant/acme");
    ASSERT_EQ(acme_default_state_dir("data/x.db", out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "data/acme");
    ASSERT_EQ(acme_default_state_dir("x.db", out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "acme");
    ASSERT_EQ(acme_default_state_dir("/x.db", out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "/acme");
    ASSERT_EQ(acme_default_state_dir("/a/b.db", out, 4), -1);
}

static void test_domain_and_email(void)
{
    char out[300];
    const char *why;
    const char *good[] = {"hub.courant.test", "A-1.Example.ORG", "x", "xn--bcher-kva.example"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ASSERT_EQ(domain_ok(good[i], out, &why), 0);
    ASSERT_EQ(domain_ok("A-1.Example.ORG", out, &why), 0);
    ASSERT_STR_EQ(out, "a-1.example.org");
    const char *bad[] = {"",        ".a",       "a.",  "a..b",     "*.a.test",     "-a.test",
                         "a-.test", "10.0.0.1", "a b", "a_b.test", "\xc3\xa9.test"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ASSERT_EQ(domain_ok(bad[i], out, &why), -1);
    char label[80];
    memset(label, 'a', 64);
    strcpy(label + 64, ".test");
    ASSERT_EQ(domain_ok(label, out, &why), -1);
    ASSERT_EQ(email_ok("ops@courant.test"), 1);
    ASSERT_EQ(email_ok("ops"), 0);
    ASSERT_EQ(email_ok("a b@c"), 0);
    ASSERT_EQ(email_ok("a@b,c@d"), 0);
}

static char tmpdir[256];

static acme_t *new_acme(const char *state, const char *const *domains, size_t n, char *why, size_t cap)
{
    acme_opts_t o = {.directory = "https://127.0.0.1:14000/dir",
                     .domains = domains,
                     .num_domains = n,
                     .state_dir = state,
                     .agree_tos = 1,
                     .challenges = ACME_USE_TLSALPN01};
    return acme_new(&o, NULL, why, cap);
}

static int file_mode(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (int)(st.st_mode & 0777);
}

static void test_options(void)
{
    char why[512];
    const char *d[] = {"hub.courant.test"};
    acme_opts_t o = {.directory = "https://ca.test/dir",
                     .domains = d,
                     .num_domains = 1,
                     .state_dir = tmpdir,
                     .challenges = ACME_USE_TLSALPN01};
    ASSERT(acme_new(&o, NULL, why, sizeof(why)) == NULL);
    ASSERT(strstr(why, "--acme-agree-tos"));
    o.agree_tos = 1;
    o.directory = "http://ca.test/dir";
    ASSERT(acme_new(&o, NULL, why, sizeof(why)) == NULL);
    ASSERT(strstr(why, "https://"));
    o.directory = "https://ca.test/dir";
    o.email = "not an address";
    ASSERT(acme_new(&o, NULL, why, sizeof(why)) == NULL);
    o.email = NULL;
    const char *twice[] = {"a.test", "A.TEST"};
    o.domains = twice;
    o.num_domains = 2;
    ASSERT(acme_new(&o, NULL, why, sizeof(why)) == NULL);
    ASSERT(strstr(why, "twice"));
    o.num_domains = 0;
    ASSERT(acme_new(&o, NULL, why, sizeof(why)) == NULL);
    o.domains = d;
    o.num_domains = 1;
    o.challenges = 0;
    ASSERT(acme_new(&o, NULL, why, sizeof(why)) == NULL);
}

static void test_state_dir(void)
{
    char why[512], state[300], cadir[400], path[500];
    const char *d[] = {"hub.courant.test"};
    snprintf(state, sizeof(state), "%s/deep/state", tmpdir);
    snprintf(cadir, sizeof(cadir), "%s/127.0.0.1_14000_dir", state);
    acme_t *a = new_acme(state, d, 1, why, sizeof(why));
    ASSERT(a != NULL);
    if (!a) {
        fprintf(stderr, "  %s\n", why);
        return;
    }
    ASSERT_EQ(file_mode(state), 0700);
    ASSERT_EQ(file_mode(cadir), 0700);
    snprintf(path, sizeof(path), "%s/account.key", cadir);
    ASSERT_EQ(file_mode(path), 0600);
    char jwk[160];
    snprintf(jwk, sizeof(jwk), "%s", a->jwk);
    /* the lock: a second one on the same state is refused */
    acme_t *b = new_acme(state, d, 1, why, sizeof(why));
    ASSERT(b == NULL && strstr(why, "another courant"));
    /* no certificate yet: the bootstrap, self-signed for the names, due now */
    char *chain = NULL, *key = NULL;
    size_t cl = 0, kl = 0;
    int boot = 0;
    ASSERT_EQ(acme_initial(a, &chain, &cl, &key, &kl, &boot, why, sizeof(why)), 0);
    ASSERT_EQ(boot, 1);
    ASSERT(a->due <= now_s());
    acmepki_info_t info;
    const char *bad;
    EVP_PKEY *k = key ? acmepki_key_from_pem(key, kl) : NULL;
    ASSERT(k && acmepki_check_chain(chain, cl, k, d, 1, &info, &bad) == 0 && info.self_signed);
    acme_stats_t st;
    acme_get_stats(a, &st);
    ASSERT_EQ(st.not_after, 0);
    /* store a "CA" certificate for the names (self-signed by another name: not ours) */
    const char *other = "Some CA";
    X509 *x = acmepki_self_signed(k, d, 1, 30, NULL);
    X509_NAME *iss = X509_NAME_new();
    X509_NAME_add_entry_by_txt(iss, "CN", MBSTRING_ASC, (const unsigned char *)other, -1, -1, 0);
    X509_set_issuer_name(x, iss);
    X509_sign(x, k, EVP_sha256());
    char *pem = acmepki_cert_pem(x);
    ASSERT_EQ(write_file_atomic(a->cadir, "cert.pem", pem, strlen(pem)), 0);
    ASSERT_EQ(write_file_atomic(a->cadir, "cert.key", key, kl), 0);
    snprintf(path, sizeof(path), "%s/cert.pem", cadir);
    ASSERT_EQ(file_mode(path), 0600);
    acme_free(a);
    free(chain);
    free(key);

    /* a restart: the same account key, the stored certificate, renewal in about 20 days */
    a = new_acme(state, d, 1, why, sizeof(why));
    ASSERT(a != NULL);
    if (a) {
        ASSERT_STR_EQ(a->jwk, jwk);
        ASSERT_EQ(acme_initial(a, &chain, &cl, &key, &kl, &boot, why, sizeof(why)), 0);
        ASSERT_EQ(boot, 0);
        ASSERT(chain && !strcmp(chain, pem));
        ASSERT(a->due > now_s() + 18 * 86400 && a->due < now_s() + 21 * 86400);
        acme_get_stats(a, &st);
        ASSERT(st.not_after > now_s() + 29 * 86400);
        free(chain);
        free(key);
        acme_free(a);
    }
    /* another name: the stored certificate does not cover it, so a bootstrap */
    const char *d2[] = {"hub.courant.test", "api.courant.test"};
    a = new_acme(state, d2, 2, why, sizeof(why));
    ASSERT(a != NULL);
    if (a) {
        ASSERT_EQ(acme_initial(a, &chain, &cl, &key, &kl, &boot, why, sizeof(why)), 0);
        ASSERT_EQ(boot, 1);
        free(chain);
        free(key);
        acme_free(a);
    }
    /* an account key that does not load is refused, and left in place */
    snprintf(path, sizeof(path), "%s/account.key", cadir);
    FILE *f = fopen(path, "w");
    fputs("not a key\n", f);
    fclose(f);
    a = new_acme(state, d, 1, why, sizeof(why));
    ASSERT(a == NULL && strstr(why, "never replaces an account key"));
    size_t len = 0;
    char *still = read_small_file(path, 100, &len);
    ASSERT(still && !strcmp(still, "not a key\n"));
    free(still);
    X509_NAME_free(iss);
    X509_free(x);
    EVP_PKEY_free(k);
    free(pem);
}

static void test_state_dir_unusable(void)
{
    char why[512], state[300];
    const char *d[] = {"hub.courant.test"};
    snprintf(state, sizeof(state), "%s/file", tmpdir);
    FILE *f = fopen(state, "w");
    fclose(f);
    acme_t *a = new_acme(state, d, 1, why, sizeof(why));
    ASSERT(a == NULL && strstr(why, "cannot create the ACME state directory"));
}

int main(void)
{
    TEST_MAIN_BEGIN();
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/courant-acme-test-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    TEST_RUN(test_renew_at);
    TEST_RUN(test_names);
    TEST_RUN(test_domain_and_email);
    TEST_RUN(test_options);
    TEST_RUN(test_state_dir);
    TEST_RUN(test_state_dir_unusable);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    TEST_MAIN_END();
}
