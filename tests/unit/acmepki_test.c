/*
 * acmepki_test.c - unit tests of src/acmepki.c: the JWK and thumbprint of a
 * fixed key against values computed independently (openssl ec -text, then
 * SHA-256 and base64url outside OpenSSL's JWK code: there is none); the
 * TLS-ALPN-01 certificate's extension byte for byte; the CSR read back and
 * verified; the chain check on good chains and on each refusal.
 */
#include "../../src/acmepki.c"

#include "test.h"

/* A P-256 key made once with `openssl genpkey`; its JWK and RFC 7638
 * thumbprint were computed with Python's hashlib and base64 from the
 * public point printed by `openssl ec -text`. */
static const char FIXED_KEY[] = "-----BEGIN PRIVATE KEY-----\n"
                                "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJ0xpQWqY4y6rg3mp\n"
                                "MyWUeUKWbIWocmT7nBh/ucueYOyhRANCAARswskD97FAXOZenYWUv+nqmL5Smifa\n"
                                "np0mkW20Inji8k+EtTkXJKRCJ6Mzj7y2NXy3LtMcJUwUCAXFnhxYOHAe\n"
                                "-----END PRIVATE KEY-----\n";
static const char FIXED_JWK[] =
    "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"bMLJA_exQFzmXp2FlL_p6pi-Upon2p6dJpFttCJ44vI\","
    "\"y\":\"T4S1ORckpEInozOPvLY1fLcu0xwlTBQIBcWeHFg4cB4\"}";
static const char FIXED_THUMBPRINT[] = "z0zhMFt-vjqjB2HfgMb1zTfkPHsZVayej_fEkpEVqFo";

static void test_jwk_thumbprint(void)
{
    EVP_PKEY *k = acmepki_key_from_pem(FIXED_KEY, sizeof(FIXED_KEY) - 1);
    ASSERT(k != NULL);
    char jwk[200], tp[ACMEPKI_THUMBPRINT_LEN + 1], ka[128];
    ASSERT_EQ(acmepki_jwk(k, jwk, sizeof(jwk)), 0);
    ASSERT_STR_EQ(jwk, FIXED_JWK);
    ASSERT_EQ(acmepki_thumbprint(k, tp), 0);
    ASSERT_STR_EQ(tp, FIXED_THUMBPRINT);
    ASSERT_EQ(acmepki_jwk(k, jwk, 50), -1); /* does not fit */
    ASSERT_EQ(acmepki_key_authorization("tok", tp, ka, sizeof(ka)), 0);
    ASSERT_STR_EQ(ka, "tok.z0zhMFt-vjqjB2HfgMb1zTfkPHsZVayej_fEkpEVqFo");
    ASSERT_EQ(acmepki_key_authorization("tok", tp, ka, 20), -1);
    EVP_PKEY_free(k);
}

static void test_key_pem(void)
{
    EVP_PKEY *k = acmepki_new_key();
    size_t len = 0;
    char *pem = acmepki_key_pem(k, &len);
    ASSERT(pem && len == strlen(pem) && strstr(pem, "BEGIN PRIVATE KEY"));
    EVP_PKEY *back = pem ? acmepki_key_from_pem(pem, len) : NULL;
    ASSERT(back && EVP_PKEY_eq(k, back) == 1);
    EVP_PKEY_free(back);
    free(pem);
    EVP_PKEY_free(k);
    /* not P-256: an RSA key, a P-384 key, garbage */
    EVP_PKEY *rsa = EVP_RSA_gen(2048), *p384 = EVP_EC_gen("P-384");
    char *r = acmepki_key_pem(rsa, &len);
    ASSERT(r && acmepki_key_from_pem(r, len) == NULL);
    free(r);
    r = acmepki_key_pem(p384, &len);
    ASSERT(r && acmepki_key_from_pem(r, len) == NULL);
    free(r);
    ASSERT(acmepki_key_from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 60) ==
           NULL);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p384);
}

static void test_csr(void)
{
    EVP_PKEY *k = acmepki_new_key();
    const char *names[] = {"hub.courant.test", "www.courant.test"};
    size_t len = 0;
    unsigned char *der = acmepki_csr_der(k, names, 2, &len);
    ASSERT(der && len > 100);
    const unsigned char *p = der;
    X509_REQ *req = der ? d2i_X509_REQ(NULL, &p, (long)len) : NULL;
    ASSERT(req && p == der + len);
    if (req) {
        ASSERT_EQ(X509_REQ_verify(req, k), 1);
        STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
        GENERAL_NAMES *gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
        ASSERT(gens && sk_GENERAL_NAME_num(gens) == 2);
        for (int i = 0; gens && i < 2; i++) {
            GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
            ASSERT_EQ(g->type, GEN_DNS);
            ASSERT_MEM_STR(ASN1_STRING_get0_data(g->d.dNSName), ASN1_STRING_length(g->d.dNSName), names[i]);
        }
        GENERAL_NAMES_free(gens);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        X509_REQ_free(req);
    }
    free(der);
    EVP_PKEY_free(k);
}

/* RFC 8737 3: one dNSName, and the critical acmeIdentifier extension whose
 * value is the DER OCTET STRING (04 20) of SHA-256(key authorization). */
static void test_tls_alpn_certificate(void)
{
    EVP_PKEY *k = acmepki_new_key();
    unsigned char digest[32];
    for (int i = 0; i < 32; i++)
        digest[i] = (unsigned char)(i * 7);
    const char *name = "hub.courant.test";
    X509 *x = acmepki_self_signed(k, &name, 1, 1, digest);
    ASSERT(x != NULL);
    if (x) {
        ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
        int at = X509_get_ext_by_OBJ(x, oid, -1);
        ASSERT(at >= 0);
        X509_EXTENSION *ext = X509_get_ext(x, at);
        ASSERT_EQ(X509_EXTENSION_get_critical(ext), 1);
        const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(ext);
        ASSERT_EQ(ASN1_STRING_length(v), 34);
        const unsigned char *d = ASN1_STRING_get0_data(v);
        ASSERT(d[0] == 0x04 && d[1] == 0x20 && !memcmp(d + 2, digest, 32));
        ASSERT_EQ(X509_check_host(x, name, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL), 1);
        ASSERT_EQ(X509_verify(x, k), 1);
        ASN1_OBJECT_free(oid);
        X509_free(x);
    }
    const char *two[] = {"a.test", "b.test"};
    ASSERT(acmepki_self_signed(k, two, 2, 1, digest) == NULL); /* one name only */
    EVP_PKEY_free(k);
}

/* A chain: leaf for `names` signed by a throwaway root, as PEM. */
static char *make_chain(EVP_PKEY *leaf_key, const char *const *names, size_t n, int with_root,
                        X509 **leaf_out)
{
    EVP_PKEY *root_key = acmepki_new_key();
    const char *root_name = "courant test root";
    X509 *root = acmepki_self_signed(root_key, &root_name, 1, 2, NULL);
    X509 *leaf = acmepki_self_signed(leaf_key, names, n, 2, NULL);
    X509_NAME *rn = X509_NAME_new();
    X509_NAME_add_entry_by_txt(rn, "CN", MBSTRING_ASC, (const unsigned char *)"Test Intermediate", -1, -1, 0);
    X509_set_issuer_name(leaf, rn); /* issued by someone else: not our bootstrap */
    X509_sign(leaf, root_key, EVP_sha256());
    char *a = acmepki_cert_pem(leaf), *b = acmepki_cert_pem(root);
    char *out = malloc(strlen(a) + strlen(b) + 1);
    strcpy(out, a);
    if (with_root)
        strcat(out, b);
    free(a);
    free(b);
    X509_NAME_free(rn);
    X509_free(root);
    EVP_PKEY_free(root_key);
    if (leaf_out)
        *leaf_out = leaf;
    else
        X509_free(leaf);
    return out;
}

static void test_check_chain(void)
{
    EVP_PKEY *k = acmepki_new_key(), *other = acmepki_new_key();
    const char *names[] = {"hub.courant.test", "www.courant.test"};
    X509 *leaf = NULL;
    char *chain = make_chain(k, names, 2, 1, &leaf);
    acmepki_info_t info;
    const char *why = NULL;
    ASSERT_EQ(acmepki_check_chain(chain, strlen(chain), k, names, 2, &info, &why), 0);
    ASSERT_UEQ(info.num_certs, 2);
    ASSERT_STR_EQ(info.issuer, "Test Intermediate");
    ASSERT_EQ(info.self_signed, 0);
    ASSERT(info.not_after - info.not_before == 2 * 86400 + 3600);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
    char *hex = BN_bn2hex(bn);
    ASSERT_STR_EQ(info.serial, hex);
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(leaf);
    /* refusals, each with its reason */
    ASSERT_EQ(acmepki_check_chain(chain, strlen(chain), other, names, 2, &info, &why), -1);
    ASSERT_STR_EQ(why, "the certificate is not for our key");
    ASSERT_EQ(info.num_certs, 0);
    const char *more[] = {"hub.courant.test", "api.courant.test"};
    ASSERT_EQ(acmepki_check_chain(chain, strlen(chain), k, more, 2, &info, &why), -1);
    ASSERT_STR_EQ(why, "the certificate does not name every domain");
    ASSERT_EQ(acmepki_check_chain("garbage", 7, k, names, 2, &info, &why), -1);
    ASSERT_EQ(acmepki_check_chain("", 0, k, names, 2, &info, &why), -1);
    /* a private key block in the chain is refused, not skipped */
    size_t kl = 0;
    char *kpem = acmepki_key_pem(k, &kl);
    char *mixed = malloc(strlen(chain) + kl + 1);
    strcpy(mixed, chain);
    strcat(mixed, kpem);
    ASSERT_EQ(acmepki_check_chain(mixed, strlen(mixed), k, names, 2, &info, &why), -1);
    free(mixed);
    free(kpem);
    /* a truncated chain */
    ASSERT_EQ(acmepki_check_chain(chain, strlen(chain) - 40, k, names, 2, &info, &why), -1);
    /* nine certificates */
    size_t cl = strlen(chain);
    char *nine = malloc(cl * 5 + 1);
    nine[0] = 0;
    for (int i = 0; i < 5; i++)
        strcat(nine, chain); /* 10 certificates */
    ASSERT_EQ(acmepki_check_chain(nine, strlen(nine), k, names, 2, &info, &why), -1);
    ASSERT_STR_EQ(why, "the certificate chain has more than 8 certificates");
    free(nine);
    /* our own bootstrap certificate is recognized as such */
    X509 *self = acmepki_self_signed(k, names, 2, 7, NULL);
    char *sp = acmepki_cert_pem(self);
    ASSERT_EQ(acmepki_check_chain(sp, strlen(sp), k, names, 2, &info, &why), 0);
    ASSERT_EQ(info.self_signed, 1);
    free(sp);
    X509_free(self);
    free(chain);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_jwk_thumbprint);
    TEST_RUN(test_key_pem);
    TEST_RUN(test_csr);
    TEST_RUN(test_tls_alpn_certificate);
    TEST_RUN(test_check_chain);
    TEST_MAIN_END();
}
