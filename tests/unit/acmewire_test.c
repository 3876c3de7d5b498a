/*
 * acmewire_test.c - unit tests of src/acmewire.c: each parser on the shape
 * a CA really sends (pebble's and RFC 8555's examples) and on every way we
 * refuse it; header lines; the JWS of a request, verified back with the
 * project's own JWS verifier against the account key.
 */
#include "../../src/acmewire.c"

#include "acmepki.h"
#include "test.h"

#include <openssl/pem.h>

#define S(lit) lit, sizeof(lit) - 1

static void test_directory(void)
{
    acme_directory_t d;
    const char *why = NULL;
    ASSERT_EQ(
        acmewire_parse_directory(
            S("{\"keyChange\":\"https://ca.test/rollover-account-key\",\"meta\":{\"externalAccountRequired\":"
              "false,\"termsOfService\":\"data:text/plain,Do%20what%20thou%20wilt\"},\"newAccount\":\"https:/"
              "/"
              "ca.test/sign-me-up\",\"newNonce\":\"https://ca.test/nonce-plz\",\"newOrder\":\"https://"
              "ca.test/"
              "order-plz\",\"revokeCert\":\"https://ca.test/revoke-cert\"}"),
            &d, &why),
        0);
    ASSERT_STR_EQ(d.new_nonce, "https://ca.test/nonce-plz");
    ASSERT_STR_EQ(d.new_account, "https://ca.test/sign-me-up");
    ASSERT_STR_EQ(d.new_order, "https://ca.test/order-plz");
    ASSERT_STR_EQ(d.terms, ""); /* a data: URL is not https: dropped, not fatal */
    ASSERT_EQ(d.eab_required, 0);
    ASSERT_EQ(acmewire_parse_directory(
                  S("{\"newAccount\":\"https://a/1\",\"newNonce\":\"https://a/2\",\"newOrder\":"
                    "\"https://a/3\",\"meta\":{\"termsOfService\":\"https://a/tos\","
                    "\"externalAccountRequired\":true}}"),
                  &d, &why),
              0);
    ASSERT_STR_EQ(d.terms, "https://a/tos");
    ASSERT_EQ(d.eab_required, 1);
    /* refusals: a missing or cleartext URL, not an object, a duplicate member, too large */
    ASSERT_EQ(acmewire_parse_directory(S("{\"newAccount\":\"https://a/1\",\"newNonce\":\"https://a/2\"}"), &d,
                                       &why),
              -1);
    ASSERT(why && strstr(why, "newOrder"));
    ASSERT_STR_EQ(d.new_nonce, "");
    ASSERT_EQ(
        acmewire_parse_directory(
            S("{\"newAccount\":\"http://a/1\",\"newNonce\":\"https://a/2\",\"newOrder\":\"https://a/3\"}"),
            &d, &why),
        -1);
    ASSERT_EQ(
        acmewire_parse_directory(
            S("{\"newAccount\":\"https://a /1\",\"newNonce\":\"https://a/2\",\"newOrder\":\"https://a/3\"}"),
            &d, &why),
        -1);
    ASSERT_EQ(acmewire_parse_directory(S("[1,2]"), &d, &why), -1);
    ASSERT_EQ(
        acmewire_parse_directory(S("{\"newOrder\":\"https://a/3\",\"newOrder\":\"https://a/4\"}"), &d, &why),
        -1);
    char *big = malloc(ACME_MAX_JSON + 2);
    memset(big, ' ', ACME_MAX_JSON + 1);
    big[0] = '{', big[ACME_MAX_JSON] = '}';
    ASSERT_EQ(acmewire_parse_directory(big, ACME_MAX_JSON + 1, &d, &why), -1);
    ASSERT(strstr(why, "64 KiB"));
    free(big);
}

static void test_order(void)
{
    acme_order_t o;
    const char *why = NULL;
    ASSERT_EQ(acmewire_parse_order(
                  S("{\"status\":\"pending\",\"expires\":\"2026-12-05T13:44:27Z\",\"identifiers\":[{\"type\":"
                    "\"dns\","
                    "\"value\":\"hub.courant.test\"}],\"finalize\":\"https://ca.test/finalize-order/x\","
                    "\"authorizations\":[\"https://ca.test/authZ/a\",\"https://ca.test/authZ/b\"]}"),
                  &o, &why),
              0);
    ASSERT_EQ(o.status, ACME_ST_PENDING);
    ASSERT_UEQ(o.num_authz, 2);
    ASSERT_STR_EQ(o.authz[1], "https://ca.test/authZ/b");
    ASSERT_STR_EQ(o.finalize, "https://ca.test/finalize-order/x");
    ASSERT_STR_EQ(o.certificate, "");
    ASSERT_EQ(acmewire_parse_order(
                  S("{\"status\":\"valid\",\"finalize\":\"https://f\",\"authorizations\":[\"https://"
                    "a\"],\"certificate\":\"https://ca.test/certZ/1\"}"),
                  &o, &why),
              0);
    ASSERT_EQ(o.status, ACME_ST_VALID);
    ASSERT_STR_EQ(o.certificate, "https://ca.test/certZ/1");
    /* refusals */
    const char *bad[] = {
        "{\"status\":\"sleeping\",\"finalize\":\"https://f\",\"authorizations\":[\"https://a\"]}",
        "{\"status\":\"ready\",\"authorizations\":[\"https://a\"]}",
        "{\"status\":\"ready\",\"finalize\":\"https://f\",\"authorizations\":[]}",
        "{\"status\":\"ready\",\"finalize\":\"https://f\",\"authorizations\":[\"http://a\"]}",
        "{\"status\":\"ready\",\"finalize\":\"https://f\",\"authorizations\":[7]}",
        "{\"status\":\"ready\",\"finalize\":\"https://f\",\"authorizations\":[\"https://"
        "a\"],\"certificate\":3}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        ASSERT_EQ(acmewire_parse_order(bad[i], strlen(bad[i]), &o, &why), -1);
        ASSERT(why != NULL);
        ASSERT_UEQ(o.num_authz, 0);
    }
    /* 17 authorizations: more than we ever ask for */
    char many[2048] = "{\"status\":\"pending\",\"finalize\":\"https://f\",\"authorizations\":[";
    for (int i = 0; i < 17; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s\"https://a/%d\"", i ? "," : "", i);
    strcat(many, "]}");
    ASSERT_EQ(acmewire_parse_order(many, strlen(many), &o, &why), -1);
}

static void test_authz(void)
{
    acme_authz_t a;
    const char *why = NULL;
    ASSERT_EQ(
        acmewire_parse_authz(
            S("{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"Hub.Courant.TEST\"},"
              "\"challenges\":[{\"type\":\"dns-01\",\"url\":\"whatever\",\"token\":\"not "
              "checked\"},{\"type\":"
              "\"http-01\",\"url\":\"https://ca.test/chalZ/"
              "1\",\"token\":\"tok_1-A\",\"status\":\"pending\"},{"
              "\"type\":\"tls-alpn-01\",\"url\":\"https://ca.test/chalZ/2\",\"token\":\"tok2\",\"status\":"
              "\"invalid\",\"error\":{\"type\":\"urn:ietf:params:acme:error:unauthorized\",\"detail\":"
              "\"bad\\u0007"
              "cert\"}}],\"expires\":\"x\"}"),
            &a, &why),
        0);
    ASSERT_EQ(a.status, ACME_ST_PENDING);
    ASSERT_STR_EQ(a.identifier, "hub.courant.test");
    ASSERT_UEQ(a.num_challenges, 3);
    ASSERT_EQ(a.challenges[0].type, ACME_CHAL_OTHER);
    ASSERT_EQ(a.challenges[1].type, ACME_CHAL_HTTP01);
    ASSERT_STR_EQ(a.challenges[1].token, "tok_1-A");
    ASSERT_STR_EQ(a.challenges[1].url, "https://ca.test/chalZ/1");
    ASSERT_EQ(a.challenges[2].type, ACME_CHAL_TLSALPN01);
    ASSERT_EQ(a.challenges[2].status, ACME_ST_INVALID);
    ASSERT_STR_EQ(a.challenges[2].error, "bad?cert (urn:ietf:params:acme:error:unauthorized)");
    const char *bad[] = {
        /* a token we would serve must be base64url */
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.test\"},\"challenges\":[{"
        "\"type\":"
        "\"http-01\",\"url\":\"https://c\",\"token\":\"../../etc\"}]}",
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.test\"},\"challenges\":[{"
        "\"type\":"
        "\"tls-alpn-01\",\"url\":\"https://c\",\"token\":\"\"}]}",
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.test\"},\"challenges\":[{"
        "\"type\":"
        "\"http-01\",\"url\":\"http://c\",\"token\":\"t\"}]}",
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"ip\",\"value\":\"10.0.0.1\"},\"challenges\":[]}",
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a b\"},\"challenges\":[]}",
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.test\"},\"challenges\":{}}",
        "{\"identifier\":{\"type\":\"dns\",\"value\":\"a.test\"},\"challenges\":[]}",
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a.test\"},\"challenges\":[7]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        ASSERT_EQ(acmewire_parse_authz(bad[i], strlen(bad[i]), &a, &why), -1);
        ASSERT(why != NULL);
        ASSERT_STR_EQ(a.identifier, "");
    }
}

static void test_status_and_problem(void)
{
    acme_status_t st;
    const char *why;
    ASSERT_EQ(acmewire_parse_status(S("{\"status\":\"valid\",\"contact\":[]}"), &st, &why), 0);
    ASSERT_EQ(st, ACME_ST_VALID);
    ASSERT_EQ(acmewire_parse_status(S("{\"status\":5}"), &st, &why), 0);
    ASSERT_EQ(st, ACME_ST_UNKNOWN);
    ASSERT_EQ(acmewire_parse_status(S("\"valid\""), &st, &why), -1);
    ASSERT_STR_EQ(acme_status_name(ACME_ST_DEACTIVATED), "deactivated");
    ASSERT_STR_EQ(acme_status_name((acme_status_t)99), "unknown");

    acme_problem_t p;
    ASSERT_EQ(
        acmewire_parse_problem(S("{\"type\":\"urn:ietf:params:acme:error:badNonce\",\"detail\":\"JWS has an "
                                 "invalid anti-replay nonce\\n\\u001b[31m\",\"status\":400}"),
                               &p),
        0);
    ASSERT_STR_EQ(p.type, "urn:ietf:params:acme:error:badNonce");
    ASSERT_STR_EQ(p.detail,
                  "JWS has an invalid anti-replay nonce??[31m"); /* no terminal escapes reach the log */
    ASSERT_EQ(acmewire_parse_problem(S("not json"), &p), -1);
    ASSERT_STR_EQ(p.type, "");
    char longer[1200] = "{\"detail\":\"";
    memset(longer + 11, 'x', 1000);
    strcpy(longer + 1011, "\"}");
    ASSERT_EQ(acmewire_parse_problem(longer, strlen(longer), &p), 0);
    ASSERT_UEQ(strlen(p.detail), ACME_MAX_DETAIL - 1);
}

static void feed(acme_headers_t *h, const char *line, time_t now)
{
    acmewire_header_line(h, line, strlen(line), now);
}

static void test_headers(void)
{
    acme_headers_t h;
    time_t now = 1764000000; /* 2025-11-24 16:00:00 UTC */
    acmewire_headers_reset(&h);
    ASSERT_EQ(h.retry_after_s, -1);
    feed(&h, "HTTP/2 201 \r\n", now);
    feed(&h, "replay-nonce: HZWsA0G-h1JmFvOpbS9-rQ\r\n", now);
    feed(&h, "Location:https://ca.test/my-account/1\r\n", now);
    feed(&h, "Content-Type: Application/Problem+JSON; charset=utf-8\r\n", now);
    feed(&h, "Retry-After: 120\r\n", now);
    feed(&h, "Link: <https://ca.test/dir>;rel=\"index\"\r\n", now);
    ASSERT_STR_EQ(h.nonce, "HZWsA0G-h1JmFvOpbS9-rQ");
    ASSERT_STR_EQ(h.location, "https://ca.test/my-account/1");
    ASSERT_STR_EQ(h.content_type, "application/problem+json");
    ASSERT_EQ(h.retry_after_s, 120);
    /* malformed values are dropped, not half-kept */
    feed(&h, "Replay-Nonce: abc=def\r\n", now);
    feed(&h, "Location: http://ca.test/x\r\n", now);
    feed(&h, "Retry-After: soon\r\n", now);
    ASSERT_STR_EQ(h.nonce, "");
    ASSERT_STR_EQ(h.location, "");
    ASSERT_EQ(h.retry_after_s, -1);
    feed(&h, "Retry-After: 99999999999999999999\r\n", now);
    ASSERT_EQ(h.retry_after_s, 86400);
    feed(&h, "Retry-After: Mon, 24 Nov 2025 16:01:30 GMT\r\n", now);
    ASSERT_EQ(h.retry_after_s, 90);
    feed(&h, "Retry-After: Mon, 24 Nov 2025 15:00:00 GMT\r\n", now);
    ASSERT_EQ(h.retry_after_s, 0);
    char nonce[400] = "Replay-Nonce: ";
    memset(nonce + 14, 'a', 300);
    ASSERT(strlen(nonce) == 314);
    feed(&h, nonce, now);
    ASSERT_STR_EQ(h.nonce, ""); /* longer than a nonce may be */
    /* a new response forgets the previous one's fields */
    feed(&h, "Replay-Nonce: x\r\n", now);
    feed(&h, "HTTP/1.1 200 OK\r\n", now);
    ASSERT_STR_EQ(h.nonce, "");
    ASSERT_EQ(h.retry_after_s, -1);
    feed(&h, "no colon here", now);
    feed(&h, ":", now);
    ASSERT_STR_EQ(h.location, "");
}

/* The flattened JWS verifies with the account's public key and carries the
 * protected header RFC 8555 6.2 asks for. */
static void test_jws(void)
{
    EVP_PKEY *k = acmepki_new_key();
    char jwk[200];
    ASSERT(k && acmepki_jwk(k, jwk, sizeof(jwk)) == 0);
    char *body =
        acmewire_jws(k, jwk, NULL, "nonce-1", "https://ca.test/new-acct", "{\"termsOfServiceAgreed\":true}");
    ASSERT(body != NULL);
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    const char *prot = json_string_value(json_object_get(j, "protected"));
    const char *pay = json_string_value(json_object_get(j, "payload"));
    const char *sig = json_string_value(json_object_get(j, "signature"));
    ASSERT(prot && pay && sig);
    if (prot && pay && sig) {
        char token[4096];
        snprintf(token, sizeof(token), "%s.%s.%s", prot, pay, sig);
        BIO *b = BIO_new(BIO_s_mem());
        PEM_write_bio_PUBKEY(b, k);
        char *pem;
        long pl = BIO_get_mem_data(b, &pem);
        const char *why = NULL;
        jws_key_t *pub = jws_key_new_pem(NULL, pem, (size_t)pl, &why);
        jws_keyset_t *ks = jws_keyset_new();
        ASSERT(pub && ks && jws_keyset_try_add(ks, pub, &why) == 0);
        jws_verified_t v;
        ASSERT_EQ(jws_try_verify(ks, token, strlen(token), NULL, &v, &why), 0);
        ASSERT_EQ(v.alg, JWS_ES256);
        ASSERT_STR_EQ(json_string_value(json_object_get(v.header, "nonce")), "nonce-1");
        ASSERT_STR_EQ(json_string_value(json_object_get(v.header, "url")), "https://ca.test/new-acct");
        ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(v.header, "jwk"), "crv")), "P-256");
        ASSERT(json_object_get(v.header, "kid") == NULL);
        ASSERT(json_is_true(json_object_get(v.payload, "termsOfServiceAgreed")));
        jws_verified_dispose(&v);
        jws_keyset_unref(ks);
        BIO_free(b);
    }
    json_decref(j);
    free(body);
    /* POST-as-GET with a kid: empty payload, kid and no jwk */
    body = acmewire_jws(k, NULL, "https://ca.test/acct/7", "n2", "https://ca.test/order/1", NULL);
    j = body ? json_loads(body, 0, NULL) : NULL;
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "payload")), "");
    prot = json_string_value(json_object_get(j, "protected"));
    unsigned char hdr[512];
    long hl = prot ? jws_b64url_decode(prot, strlen(prot), hdr) : -1;
    ASSERT(hl > 0);
    if (hl > 0) {
        hdr[hl] = 0;
        ASSERT(strstr((char *)hdr, "\"kid\":\"https://ca.test/acct/7\"") && !strstr((char *)hdr, "jwk"));
    }
    json_decref(j);
    free(body);
    /* exactly one of jwk and kid */
    ASSERT(acmewire_jws(k, jwk, "https://k", "n", "https://u", NULL) == NULL);
    ASSERT(acmewire_jws(k, NULL, NULL, "n", "https://u", NULL) == NULL);
    EVP_PKEY_free(k);
}

static void test_checks(void)
{
    ASSERT_EQ(acmewire_url_ok(S("https://a")), 1);
    ASSERT_EQ(acmewire_url_ok(S("HTTPS://A/b?c=d")), 1);
    ASSERT_EQ(acmewire_url_ok(S("https://")), 0);
    ASSERT_EQ(acmewire_url_ok(S("http://a")), 0);
    ASSERT_EQ(acmewire_url_ok(S("https://a\r\nX: y")), 0);
    ASSERT_EQ(acmewire_url_ok(S("https://\xc3\xa9")), 0);
    ASSERT_EQ(acmewire_b64url_ok(S("aZ09-_"), 16), 1);
    ASSERT_EQ(acmewire_b64url_ok(S("a="), 16), 0);
    ASSERT_EQ(acmewire_b64url_ok(S(""), 16), 0);
    ASSERT_EQ(acmewire_b64url_ok(S("0123456789abcdef"), 16), 0); /* 16 bytes need a 17-byte buffer */
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_directory);
    TEST_RUN(test_order);
    TEST_RUN(test_authz);
    TEST_RUN(test_status_and_problem);
    TEST_RUN(test_headers);
    TEST_RUN(test_jws);
    TEST_RUN(test_checks);
    TEST_MAIN_END();
}
