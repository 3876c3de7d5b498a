/*
 * jwks_test.c - unit tests of src/jwks.c.
 *
 * Parser: keys from JWKs verify third-party tokens (RFC 7515 A.1-A.3, RFC
 * 8037 A.4, the Node-minted vectors); "alg", "use", "key_ops", "kid",
 * issuer binding and the allow-list; every malformed member skipped with its
 * reason; every set-level refusal; Cache-Control parsing.
 *
 * Fetcher, against a real HTTPS server on 127.0.0.1: `openssl s_server
 * -HTTP` serving a file that holds a whole HTTP response (so the test sets
 * Cache-Control), with a self-signed certificate the openssl CLI makes here.
 * In order: TLS is verified by default (a fetcher without the CA fails, one
 * with it succeeds); the initial fetch; refreshes driven by max-age (and none
 * while max-age is long); an unknown kid poke served at once, the next one
 * held to the rate limit and served at its end, a storm of pokes costing one
 * fetch; a bad body and a stopped server keep the last good keys, and the
 * fetcher recovers when the server returns. Every wait has a deadline; the
 * whole test takes about 15 s. Without the openssl CLI it skips.
 */
#include "../../src/jwks.c"

#include "jws_vectors.h"
#include "test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char RFC_PAYLOAD_B64[] =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

static const char RFC_RSA_N[] =
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-"
    "SFd2lZS-"
    "pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-"
    "UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-"
    "DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
static const char RFC_RS256_SIG[] =
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_"
    "O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZ"
    "cAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--"
    "xi12jzDwusC-"
    "eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_"
    "IoypGlUPQGe77Rw";
#define EC_X "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define EC_Y "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"

/* ---- parser ---------------------------------------------------------------------- */

typedef struct skips {
    int n;              /* members skipped */
    size_t index[8];    /* their indexes */
    const char *why[8]; /* their reasons */
} skips_t;

static void record_skip(void *ctx, size_t index, const char *why)
{
    skips_t *s = ctx;
    if (s->n < 8) {
        s->index[s->n] = index;
        s->why[s->n] = why;
    }
    s->n++;
}

static jws_keyset_t *parse(const char *json, const jwks_parse_opts_t *o, const char **why)
{
    jws_keyset_t *ks = NULL;
    if (jwks_try_parse(json, strlen(json), o, &ks, why))
        return NULL;
    return ks;
}

static int verify(const jws_keyset_t *ks, const char *tok, const jws_verify_opts_t *o, const char **why)
{
    jws_verified_t v;
    int rc = jws_try_verify(ks, tok, strlen(tok), o, &v, why);
    if (rc == 0)
        jws_verified_dispose(&v);
    return rc;
}

static void test_rfc_keys_as_jwks(void)
{
    char set[2048], tok[1024];
    snprintf(set, sizeof(set),
             "{\"keys\":["
             "{\"kty\":\"oct\",\"kid\":\"hs\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-"
             "1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"},"
             "{\"kty\":\"RSA\",\"kid\":\"rs\",\"use\":\"sig\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"AQAB\"},"
             "{\"kty\":\"EC\",\"kid\":\"es\",\"crv\":\"P-256\",\"x\":\"" EC_X "\",\"y\":\"" EC_Y "\","
             "\"key_ops\":[\"verify\"]},"
             "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}",
             RFC_RSA_N);
    const char *why = NULL;
    skips_t sk = {0};
    jwks_parse_opts_t o = {0, "https://as.example", record_skip, &sk};
    jws_keyset_t *ks = parse(set, &o, &why);
    if (!ks) {
        TEST_FAIL_AT("parse: %s", why);
        return;
    }
    ASSERT_EQ(sk.n, 0);
    ASSERT_UEQ(jws_keyset_count(ks), 4);
    ASSERT_STR_EQ(jws_key_kid(jws_keyset_get(ks, 1)), "rs");
    ASSERT_UEQ(jws_key_algs(jws_keyset_get(ks, 1)), JWS_ALG_BIT(JWS_RS256)); /* narrowed by alg */
    ASSERT_UEQ(jws_key_algs(jws_keyset_get(ks, 0)), JWS_ALGS_HMAC);
    ASSERT_STR_EQ(jws_key_issuer(jws_keyset_get(ks, 3)), "https://as.example");
    ASSERT(jws_key_kid(jws_keyset_get(ks, 3)) == NULL);
    snprintf(tok, sizeof(tok),
             "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.%s.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
             RFC_PAYLOAD_B64);
    ASSERT_EQ(verify(ks, tok, NULL, &why), 0);
    snprintf(tok, sizeof(tok), "eyJhbGciOiJSUzI1NiJ9.%s.%s", RFC_PAYLOAD_B64, RFC_RS256_SIG);
    ASSERT_EQ(verify(ks, tok, NULL, &why), 0);
    /* The same RSA key, narrowed to RS256, has nothing to say about PS256. */
    snprintf(tok, sizeof(tok), "eyJhbGciOiJQUzI1NiJ9.%s.%s", RFC_PAYLOAD_B64, RFC_RS256_SIG);
    ASSERT_EQ(verify(ks, tok, NULL, &why), JWS_ERR_NO_KEY);
    snprintf(tok, sizeof(tok),
             "eyJhbGciOiJFUzI1NiJ9.%s.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-"
             "F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-"
             "Kg6NU1Q",
             RFC_PAYLOAD_B64);
    ASSERT_EQ(verify(ks, tok, NULL, &why), 0);
    /* The RFC 8037 token's payload is text: its signature passes, then the claims check fails. */
    ASSERT_EQ(verify(ks,
                     "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
                     "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg",
                     NULL, &why),
              JWS_ERR_INVALID);
    ASSERT_STR_EQ(why, "the payload is not a JSON object");
    jws_keyset_unref(ks);

    /* The Node-made keys as JWKs (jwks_try_parse_key, one at a time). */
    jws_key_t *rsa = NULL, *p384 = NULL;
    ASSERT_EQ(jwks_try_parse_key(node_rsa_jwk, strlen(node_rsa_jwk), NULL, &rsa, &why), 0);
    ASSERT_EQ(jwks_try_parse_key(node_p384_jwk, strlen(node_p384_jwk), NULL, &p384, &why), 0);
    ks = jws_keyset_new();
    ASSERT_EQ(jws_keyset_try_add(ks, rsa, &why), 0);
    ASSERT_EQ(jws_keyset_try_add(ks, p384, &why), 0);
    for (size_t i = 0; i < sizeof(node_tokens) / sizeof(node_tokens[0]); i++) {
        if (verify(ks, node_tokens[i].token, NULL, &why) != 0)
            TEST_FAIL_AT("%s: %s", jws_alg_name(node_tokens[i].alg), why);
    }
    jws_keyset_unref(ks);
}

static void test_member_refusals(void)
{
    static const struct {
        const char *jwk, *why;
    } bad[] = {
        {"5", "a key is not a JSON object"},
        {"{\"n\":\"AQAB\"}", "kty is missing or unsupported (want RSA, EC, OKP or oct)"},
        {"{\"kty\":\"DSA\"}", "kty is missing or unsupported (want RSA, EC, OKP or oct)"},
        {"{\"kty\":\"oct\",\"k\":\"YQ\",\"use\":\"enc\"}", "use is not \"sig\""},
        {"{\"kty\":\"oct\",\"k\":\"YQ\",\"use\":5}", "use is not \"sig\""},
        {"{\"kty\":\"oct\",\"k\":\"YQ\",\"key_ops\":[\"sign\",\"encrypt\"]}",
         "key_ops does not allow verify"},
        {"{\"kty\":\"oct\",\"k\":\"YQ\",\"key_ops\":\"verify\"}", "key_ops does not allow verify"},
        {"{\"kty\":\"oct\",\"k\":\"YQ\",\"kid\":5}", "kid is not a string of 1 to 512 bytes"},
        {"{\"kty\":\"oct\",\"k\":\"YQ\",\"kid\":\"\"}", "kid is not a string of 1 to 512 bytes"},
        {"{\"kty\":\"oct\",\"k\":\"YQ\",\"alg\":\"RSA-OAEP\"}", "alg is not a supported signature algorithm"},
        {"{\"kty\":\"oct\",\"k\":\"YQ\",\"alg\":\"none\"}", "alg is not a supported signature algorithm"},
        {"{\"kty\":\"oct\",\"k\":\"YQ\",\"alg\":\"RS256\"}", "alg does not fit the key type"},
        {"{\"kty\":\"oct\",\"k\":\"Y+Q\"}", "an oct key needs a base64url k of at most 1024 bytes"},
        {"{\"kty\":\"oct\",\"k\":\"\"}", "an oct key needs a base64url k of at most 1024 bytes"},
        {"{\"kty\":\"RSA\",\"e\":\"AQAB\"}", "an RSA key needs base64url n (at most 8192 bits) and e"},
        {"{\"kty\":\"RSA\",\"n\":\"AQAB\"}", "an RSA key needs base64url n (at most 8192 bits) and e"},
        {"{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}", "an RSA key must have at least 2048 bits"},
        {"{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"d\":\"AQAB\"}",
         "private key members in a public JWK (d, p, q..): refused"},
        {"{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"" EC_X "\",\"y\":\"" EC_Y "\"}",
         "unsupported EC curve (want P-256 or P-384)"},
        {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" EC_X "\"}",
         "an EC key needs x and y of the curve's full size"},
        {"{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"" EC_X "\",\"y\":\"" EC_Y "\"}",
         "an EC key needs x and y of the curve's full size"},
        {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" EC_X
         "\",\"y\":\"x_FFzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}",
         "the EC point is not on the curve"},
        {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" EC_X "\",\"y\":\"" EC_Y "\",\"alg\":\"ES384\"}",
         "alg does not fit the key type"},
        {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" EC_X "\",\"y\":\"" EC_Y "\",\"d\":\"AA\"}",
         "private key members in a public JWK (d, p, q..): refused"},
        {"{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
         "unsupported OKP curve (want Ed25519)"},
        {"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR\"}",
         "an Ed25519 key needs a 32-byte x"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* In a set, after a good key: skipped with the reason, the set survives. */
        char set[1024];
        snprintf(set, sizeof(set), "{\"keys\":[{\"kty\":\"oct\",\"k\":\"YQ\"},%s]}", bad[i].jwk);
        skips_t sk = {0};
        jwks_parse_opts_t o = {0, NULL, record_skip, &sk};
        const char *why = NULL;
        jws_keyset_t *ks = parse(set, &o, &why);
        if (!ks || jws_keyset_count(ks) != 1 || sk.n != 1 || sk.index[0] != 1 ||
            strcmp(sk.why[0], bad[i].why))
            TEST_FAIL_AT("%s: set %p, %d skipped, \"%s\", want \"%s\"", bad[i].jwk, (void *)ks, sk.n,
                         sk.n ? sk.why[0] : "", bad[i].why);
        jws_keyset_unref(ks);
        /* Alone: an error. */
        jws_key_t *k = NULL;
        if (jwks_try_parse_key(bad[i].jwk, strlen(bad[i].jwk), NULL, &k, &why) != -1 || k)
            TEST_FAIL_AT("%s accepted alone", bad[i].jwk);
    }
    /* A 1024-bit RSA key (valid, too small) and an 8200-bit modulus (too long). */
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    BIGNUM *n = NULL;
    EVP_PKEY_get_bn_param(small, OSSL_PKEY_PARAM_RSA_N, &n);
    unsigned char nb[1100];
    char n64[1500], jwk[1700];
    int nl = BN_bn2bin(n, nb);
    jws_b64url_encode(nb, (size_t)nl, n64);
    snprintf(jwk, sizeof(jwk), "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}", n64);
    jws_key_t *k = NULL;
    const char *why = NULL;
    ASSERT_EQ(jwks_try_parse_key(jwk, strlen(jwk), NULL, &k, &why), -1);
    ASSERT_STR_EQ(why, "an RSA key must have at least 2048 bits");
    memset(nb, 0xff, sizeof(nb));
    jws_b64url_encode(nb, 1025, n64);
    snprintf(jwk, sizeof(jwk), "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}", n64);
    ASSERT_EQ(jwks_try_parse_key(jwk, strlen(jwk), NULL, &k, &why), -1);
    ASSERT_STR_EQ(why, "an RSA key needs base64url n (at most 8192 bits) and e");
    BN_free(n);
    EVP_PKEY_free(small);
    /* Degenerate exponents on a real modulus: OpenSSL's public check. */
    const char *exps[] = {"AQ", "Ag", "AAE"}; /* 1, 2 (even), 1 with a leading zero */
    for (size_t i = 0; i < 3; i++) {
        snprintf(jwk, sizeof(jwk), "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"}", RFC_RSA_N, exps[i]);
        if (jwks_try_parse_key(jwk, strlen(jwk), NULL, &k, &why) != -1)
            TEST_FAIL_AT("e=%s accepted", exps[i]);
        else
            ASSERT_STR_EQ(why, "the public key fails OpenSSL's validity check");
    }
}

static void test_set_refusals(void)
{
    const char *why = NULL;
    ASSERT(parse("nope", NULL, &why) == NULL);
    ASSERT_STR_EQ(why, "not a JWK Set (a JSON object with a \"keys\" array)");
    ASSERT(parse("[]", NULL, &why) == NULL);
    ASSERT(parse("{\"keys\":{}}", NULL, &why) == NULL);
    ASSERT(parse("{\"key\":[]}", NULL, &why) == NULL);
    ASSERT(parse("{\"keys\":[],\"keys\":[]}", NULL, &why) == NULL);
    ASSERT(parse("{\"keys\":[]}", NULL, &why) == NULL);
    ASSERT_STR_EQ(why, "no usable key in the JWK Set");
    ASSERT(parse("{\"keys\":[{\"kty\":\"oct\",\"k\":\"YQ\",\"use\":\"enc\"}]}", NULL, &why) == NULL);
    ASSERT_STR_EQ(why, "no usable key in the JWK Set");
    /* 64 keys fine, 65 refused. */
    static char big[8192];
    for (int n = 64; n <= 65; n++) {
        size_t l = (size_t)snprintf(big, sizeof(big), "{\"keys\":[");
        for (int i = 0; i < n; i++)
            l += (size_t)snprintf(big + l, sizeof(big) - l, "%s{\"kty\":\"oct\",\"k\":\"YQ\"}", i ? "," : "");
        snprintf(big + l, sizeof(big) - l, "]}");
        jws_keyset_t *ks = parse(big, NULL, &why);
        ASSERT_EQ(ks != NULL, n <= JWKS_MAX_KEYS);
        jws_keyset_unref(ks);
    }
    /* Over 256 KiB, before parsing. */
    size_t hl = JWKS_MAX_BYTES + 1;
    char *huge = malloc(hl + 1);
    memset(huge, ' ', hl);
    huge[hl] = 0;
    jws_keyset_t *ks = NULL;
    ASSERT_EQ(jwks_try_parse(huge, hl, NULL, &ks, &why), -1);
    ASSERT_STR_EQ(why, "the JWK Set is larger than 256 KiB");
    free(huge);
    /* The allow-list removes what it does not name. */
    char set[1024];
    snprintf(set, sizeof(set),
             "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"},{\"kty\":\"EC\",\"crv\":\"P-256\","
             "\"x\":\"" EC_X "\",\"y\":\"" EC_Y "\"}]}",
             RFC_RSA_N);
    skips_t sk = {0};
    jwks_parse_opts_t o = {JWS_ALG_BIT(JWS_ES256) | JWS_ALG_BIT(JWS_PS256), NULL, record_skip, &sk};
    ks = parse(set, &o, &why);
    ASSERT(ks && jws_keyset_count(ks) == 2 && sk.n == 0);
    ASSERT_UEQ(jws_key_algs(jws_keyset_get(ks, 0)), JWS_ALG_BIT(JWS_PS256));
    jws_keyset_unref(ks);
    o.algs = JWS_ALG_BIT(JWS_EDDSA);
    ASSERT(parse(set, &o, &why) == NULL);
    ASSERT_EQ(sk.n, 2);
    ASSERT_STR_EQ(sk.why[0], "none of the key's algorithms is allowed");
}

static void test_cache_control(void)
{
    struct {
        const char *v;
        long max_age;
        int no_cache;
    } cases[] = {
        {" max-age=600", 600, 0},
        {" public, max-age=60, must-revalidate\r\n", 60, 0},
        {" MAX-AGE=\"30\"", 30, 0},
        {" no-cache", -1, 1},
        {" no-store, max-age=5", 5, 1},
        {" s-maxage=5", -1, 0},
        {" max-age=abc", -1, 0},
        {" max-age=90, max-age=20", 20, 0},
        {" max-age=99999999999999999999", 1000000000, 0},
        {" private=\"max-age=3\", max-age=7", 7, 0},
        {"", -1, 0},
        {",,,", -1, 0},
        {" max-age", -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long ma = -1;
        int nc = 0;
        jwks__parse_cache_control(cases[i].v, strlen(cases[i].v), &ma, &nc);
        if (ma != cases[i].max_age || nc != cases[i].no_cache)
            TEST_FAIL_AT("\"%s\": max-age %ld no-cache %d, want %ld %d", cases[i].v, ma, nc, cases[i].max_age,
                         cases[i].no_cache);
    }
}

/* ---- fetcher against a real HTTPS server ----------------------------------------------- */

static char dir[64]; /* the server's directory: cert, key, jwks.json */
static char cert_path[128];
static int port;
static pid_t server_pid = -1;
static EVP_PKEY *ec_keys[6]; /* k0..k5, P-256 */

static int64_t now_ms(void) { return mono_ms(); }

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) || getsockname(s, (struct sockaddr *)&a, &al))
        return -1;
    close(s);
    return ntohs(a.sin_port);
}

static int can_connect(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(s);
    return ok;
}

static int start_server(void)
{
    char accept_arg[32];
    snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%d", port);
    server_pid = fork();
    if (server_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (chdir(dir))
            _exit(127);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("openssl", "openssl", "s_server", "-quiet", "-HTTP", "-accept", accept_arg, "-cert",
               "cert.pem", "-key", "key.pem", (char *)NULL);
        _exit(127);
    }
    for (int64_t end = now_ms() + 5000; now_ms() < end; usleep(20000)) {
        if (can_connect())
            return 0;
    }
    return -1;
}

static void stop_server(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
}

/* The JWK of ec_keys[i] with kid "k<i>". */
static void jwk_of(int i, char *out, size_t cap)
{
    unsigned char pt[65];
    size_t pl = 0;
    char x[48], y[48];
    EVP_PKEY_get_octet_string_param(ec_keys[i], OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &pl);
    jws_b64url_encode(pt + 1, 32, x);
    jws_b64url_encode(pt + 33, 32, y);
    snprintf(out, cap,
             "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k%d\",\"use\":\"sig\",\"x\":\"%s\",\"y\":\"%s\"}",
             i, x, y);
}

/* Serves a JWK Set of the keys in `mask` (bit i = k<i>), or `raw` as the body. */
static void serve(unsigned mask, const char *cache_control, const char *raw)
{
    char body[4096], jwk[256], resp[5000], path[128], tmp[128];
    size_t l = 0;
    if (raw) {
        l = (size_t)snprintf(body, sizeof(body), "%s", raw);
    } else {
        l = (size_t)snprintf(body, sizeof(body), "{\"keys\":[");
        for (int i = 0, first = 1; i < 6; i++) {
            if (!(mask & (1u << i)))
                continue;
            jwk_of(i, jwk, sizeof(jwk));
            l += (size_t)snprintf(body + l, sizeof(body) - l, "%s%s", first ? "" : ",", jwk);
            first = 0;
        }
        l += (size_t)snprintf(body + l, sizeof(body) - l, "]}");
    }
    int rl =
        snprintf(resp, sizeof(resp),
                 "HTTP/1.1 200 OK\r\nContent-Type: application/jwk-set+json\r\n%s%s%sContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n%s",
                 cache_control ? "Cache-Control: " : "", cache_control ? cache_control : "",
                 cache_control ? "\r\n" : "", l, body);
    snprintf(path, sizeof(path), "%s/jwks.json", dir);
    snprintf(tmp, sizeof(tmp), "%s/jwks.tmp", dir);
    FILE *f = fopen(tmp, "wb");
    fwrite(resp, 1, (size_t)rl, f);
    fclose(f);
    rename(tmp, path); /* s_server opens the file per request: never half written */
}

static int has_kid(jwks_fetcher_t *f, const char *kid)
{
    jws_keyset_t *ks = jwks_fetcher_keyset(f);
    int found = 0;
    for (size_t i = 0; ks && i < jws_keyset_count(ks); i++) {
        const char *k = jws_key_kid(jws_keyset_get(ks, i));
        found |= k && !strcmp(k, kid);
    }
    jws_keyset_unref(ks);
    return found;
}

/* Waits up to ms for kid to appear (want 1) or disappear (want 0). */
static int wait_kid(jwks_fetcher_t *f, const char *kid, int want, int ms)
{
    for (int64_t end = now_ms() + ms; now_ms() < end; usleep(20000)) {
        if (has_kid(f, kid) == want)
            return 1;
    }
    return has_kid(f, kid) == want;
}

static jwks_url_stats_t stats(jwks_fetcher_t *f)
{
    jwks_url_stats_t s;
    jwks_fetcher_stats(f, 0, &s);
    return s;
}

static int wait_fetches(jwks_fetcher_t *f, uint64_t n, int ms)
{
    for (int64_t end = now_ms() + ms; now_ms() < end; usleep(20000)) {
        if (stats(f).fetches >= n)
            return 1;
    }
    return stats(f).fetches >= n;
}

/* A token signed by ec_keys[i], kid k<i>, iss ISS; verified as a worker would. */
#define ISS "https://as.test"
static int token_verifies(jwks_fetcher_t *f, int i, int poke_if_unknown)
{
    char hdr[64], kid[8];
    snprintf(kid, sizeof(kid), "k%d", i);
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", kid);
    const char *claims = "{\"iss\":\"" ISS "\"}";
    char *tok = jws_sign(JWS_ES256, hdr, claims, strlen(claims), NULL, 0, ec_keys[i]);
    jws_keyset_t *ks = jwks_fetcher_keyset(f);
    jws_verify_opts_t o = {JWS_ALG_BIT(JWS_ES256), 1};
    const char *why;
    int rc = verify(ks, tok, &o, &why);
    jws_keyset_unref(ks);
    free(tok);
    if (rc == JWS_ERR_NO_KEY && poke_if_unknown)
        jwks_fetcher_poke(f);
    return rc == 0;
}

static int setup_server_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/courant-jwks-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir);
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem "
             "-out cert.pem -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -days 1 >/dev/null 2>&1",
             dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void cleanup_server_dir(void)
{
    const char *files[] = {"cert.pem", "key.pem", "jwks.json", "jwks.tmp"};
    char p[160];
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static jwks_fetcher_t *fetcher(const char *ca, int insecure)
{
    char url[64];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/jwks.json", port);
    const char *urls[] = {url}, *iss[] = {ISS};
    jwks_fetcher_opts_t o = {.ca_file = ca,
                             .insecure_tls = insecure,
                             .algs = JWS_ALG_BIT(JWS_ES256),
                             .min_ttl_s = 1,
                             .max_ttl_s = 3600,
                             .default_ttl_s = 3600,
                             .poke_interval_s = 2,
                             .retry_min_s = 1,
                             .timeout_ms = 2000};
    const char *why = NULL;
    jwks_fetcher_t *f = jwks_fetcher_new(urls, iss, 1, &o, &why);
    if (!f || jwks_fetcher_start(f, &why))
        TEST_FAIL_AT("fetcher: %s", why);
    return f;
}

static void test_fetcher_options(void)
{
    const char *why = NULL;
    const char *http[] = {"http://127.0.0.1/jwks.json"}, *https[] = {"https://as.test/jwks"}, *iss[] = {ISS},
               *empty[] = {""};
    ASSERT(jwks_fetcher_new(http, iss, 1, NULL, &why) == NULL);
    ASSERT_STR_EQ(why, "a JWK Set URL must start with https://");
    ASSERT(jwks_fetcher_new(https, empty, 1, NULL, &why) == NULL);
    ASSERT(jwks_fetcher_new(https, iss, 0, NULL, &why) == NULL);
    jwks_fetcher_opts_t o = {.min_ttl_s = 100, .max_ttl_s = 10};
    ASSERT(jwks_fetcher_new(https, iss, 1, &o, &why) == NULL);
    /* Built, never started: nothing published, poke and free are safe. */
    jwks_fetcher_t *f = jwks_fetcher_new(https, iss, 1, NULL, &why);
    ASSERT(f != NULL);
    ASSERT(jwks_fetcher_keyset(f) == NULL);
    jwks_fetcher_poke(f);
    jwks_url_stats_t s;
    ASSERT_EQ(jwks_fetcher_stats(f, 1, &s), -1);
    /* Base keys are published at once, with or without fetched ones. */
    jws_keyset_t *base = jws_keyset_new();
    jws_key_params_t p = {0, "static", NULL};
    ASSERT_EQ(jws_keyset_try_add(base, jws_key_new_hmac(&p, "s", 1, &why), &why), 0);
    jwks_fetcher_set_base(f, base);
    ASSERT(has_kid(f, "static"));
    jwks_fetcher_set_base(f, NULL);
    ASSERT(jwks_fetcher_keyset(f) == NULL);
    jwks_fetcher_free(f);
}

static void test_fetcher_https(void)
{
    if (system("openssl version >/dev/null 2>&1") != 0 || setup_server_dir()) {
        printf("ok - test_fetcher_https # SKIP the openssl command-line tool is missing\n");
        return;
    }
    for (int i = 0; i < 6; i++)
        ec_keys[i] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    port = free_port();
    serve(1u << 1, "public, max-age=1", NULL); /* k1, refetch every second */
    if (start_server()) {
        TEST_FAIL_AT("openssl s_server did not start on port %d", port);
        goto out;
    }

    /* TLS is verified: without our CA the fetch fails; insecure works. */
    jwks_fetcher_t *f = fetcher(NULL, 0);
    ASSERT_EQ(jwks_fetcher_wait_ready(f, 1500), 0);
    ASSERT(wait_fetches(f, 1, 3000));
    ASSERT(stats(f).failures >= 1 && !stats(f).ok);
    ASSERT(jwks_fetcher_keyset(f) == NULL);
    jwks_fetcher_free(f);
    f = fetcher(NULL, 1);
    ASSERT_EQ(jwks_fetcher_wait_ready(f, 5000), 1);
    jwks_fetcher_free(f);

    /* Initial fetch, then refreshes driven by max-age=1. */
    f = fetcher(cert_path, 0);
    ASSERT_EQ(jwks_fetcher_wait_ready(f, 5000), 1);
    ASSERT(token_verifies(f, 1, 0));
    ASSERT(!token_verifies(f, 2, 0));
    ASSERT_EQ(stats(f).keys, 1);
    ASSERT_EQ(stats(f).ttl_s, 1);
    ASSERT(wait_fetches(f, 3, 4000)); /* two more within ~2 s */
    ASSERT_UEQ(stats(f).changes, 1);  /* same body each time */
    serve((1u << 1) | (1u << 2), "max-age=1", NULL);
    ASSERT(wait_kid(f, "k2", 1, 3000));
    ASSERT(token_verifies(f, 2, 0));
    /* A long max-age: the next fetch drops k1, then no more fetches. */
    serve(1u << 2, "max-age=3600", NULL);
    ASSERT(wait_kid(f, "k1", 0, 3000));
    ASSERT_EQ(stats(f).ttl_s, 3600);
    uint64_t before = stats(f).fetches;
    usleep(1500 * 1000);
    ASSERT_UEQ(stats(f).fetches, before);

    /* An unknown kid pokes; the fetch comes at most poke_interval (2 s) after the last. */
    serve((1u << 2) | (1u << 3), "max-age=3600", NULL);
    ASSERT(!token_verifies(f, 3, 1));
    ASSERT(wait_kid(f, "k3", 1, 3500));
    ASSERT(token_verifies(f, 3, 0));
    /* Right after: a new kid waits for the interval, then is served. */
    before = stats(f).fetches;
    serve((1u << 2) | (1u << 3) | (1u << 4), "max-age=3600", NULL);
    for (int i = 0; i < 1000; i++) /* a storm of unknown kids: one fetch */
        (void)token_verifies(f, 4, 1);
    usleep(500 * 1000);
    ASSERT_UEQ(stats(f).fetches, before); /* rate-limited */
    ASSERT(!has_kid(f, "k4"));
    ASSERT(wait_kid(f, "k4", 1, 3000)); /* served at the end of the interval */
    usleep(300 * 1000);
    ASSERT_UEQ(stats(f).fetches, before + 1);

    /* A bad body keeps the last good keys. */
    serve(0, "max-age=1", "{\"not\":\"a jwk set\"}");
    (void)token_verifies(f, 5, 1); /* unknown k5: poke */
    uint64_t fails = stats(f).failures;
    for (int64_t end = now_ms() + 4000; now_ms() < end && stats(f).failures == fails;)
        usleep(20000);
    ASSERT(stats(f).failures > fails && !stats(f).ok);
    ASSERT(token_verifies(f, 2, 0) && token_verifies(f, 3, 0) && token_verifies(f, 4, 0));

    /* The server goes away: still the last good keys, failures counted. */
    stop_server();
    fails = stats(f).failures;
    for (int64_t end = now_ms() + 5000; now_ms() < end && stats(f).failures < fails + 2;)
        usleep(20000);
    ASSERT(stats(f).failures >= fails + 2); /* retried with backoff (1 s, 2 s) */
    ASSERT(token_verifies(f, 4, 0));

    /* It comes back with a new set: the fetcher recovers on its next retry. */
    serve(1u << 5, "max-age=3600", NULL);
    if (start_server()) {
        TEST_FAIL_AT("openssl s_server did not restart");
    } else {
        ASSERT(wait_kid(f, "k5", 1, 9000));
        ASSERT(stats(f).ok);
        ASSERT(token_verifies(f, 5, 0));
        ASSERT(!token_verifies(f, 4, 0)); /* the set was replaced, not merged */
    }
    jwks_fetcher_stop(f);
    jwks_fetcher_stop(f); /* twice is harmless */
    jwks_fetcher_free(f);
out:
    stop_server();
    cleanup_server_dir();
    for (int i = 0; i < 6; i++)
        EVP_PKEY_free(ec_keys[i]);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_WARN);
    TEST_RUN(test_rfc_keys_as_jwks);
    TEST_RUN(test_member_refusals);
    TEST_RUN(test_set_refusals);
    TEST_RUN(test_cache_control);
    TEST_RUN(test_fetcher_options);
    TEST_RUN(test_fetcher_https);
    TEST_MAIN_END();
}
