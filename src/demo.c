/*
 * demo.c - see demo.h.
 */
#include "demo.h"

#include "id.h"
#include "grant.h"
#include "jws.h"
#include "log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int demo_publish_tick(journal_t *journal)
{
    char id[ID_UUID_URN_LEN + 1], now[64];
    /* The tick is aimed at a whole second; name that second. time(NULL)
     * reads the coarse clock, which can still say the previous second a
     * few ms after it turned, and two ticks then carried the same stamp
     * (eventsource.test.mjs caught it). Round the precise clock instead. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t t = ts.tv_sec + (ts.tv_nsec >= 500000000L ? 1 : 0);
    struct tm tm;
    localtime_r(&t, &tm);
    size_t n = strftime(now, sizeof(now), "%Y-%m-%d %H:%M:%S", &tm);
    id_new_uuid7(id);
    const char *topic = DEMO_CLOCK_TOPIC;
    size_t topic_len = strlen(topic);
    evbuf_spec_t spec = {
        .id = id,
        .id_len = strlen(id),
        .data = now,
        .data_len = n,
        .retry = -1,
        .topics = &topic,
        .topic_lens = &topic_len,
        .num_topics = 1,
    };
    evbuf_t *ev = evbuf_try_new(&spec);
    if (!ev) {
        log_warn("demo clock: out of memory");
        return -1;
    }
    const char *why;
    if (journal_try_submit(journal, ev, NULL, NULL, 0, &why) < 0) {
        log_debug("demo clock: tick not published: %s", why);
        evbuf_unref(ev);
        return -1;
    }
    return 0;
}

int demo_auth_init(config_t *cfg)
{
    if (cfg->publisher_jwt_key || cfg->publisher_jwt_key_file || cfg->subscriber_jwt_key ||
        cfg->subscriber_jwt_key_file || (cfg->jwt_alg && strcmp(cfg->jwt_alg, "HS256"))) {
        fprintf(stderr, "courant: --demo-auth makes its own HS256 keys: give it no key and no --jwt-alg\n");
        return -1;
    }
    unsigned char raw[24];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        fprintf(stderr, "courant: --demo-auth: no randomness for the demo key\n");
        return -1;
    }
    char secret[sizeof(raw) * 2 + 16];
    int n = snprintf(secret, sizeof(secret), "demo-only-");
    for (size_t i = 0; i < sizeof(raw); i++)
        n += snprintf(secret + n, sizeof(secret) - (size_t)n, "%02x", raw[i]);
    cfg->publisher_jwt_key = strdup(secret);
    cfg->subscriber_jwt_key = strdup(secret);
    if (!cfg->jwt_issuer)
        cfg->jwt_issuer = strdup(DEMO_ISSUER);
    cfg->anonymous = 1;
    if (!cfg->publisher_jwt_key || !cfg->subscriber_jwt_key || !cfg->jwt_issuer) {
        fprintf(stderr, "courant: out of memory\n");
        return -1;
    }
    return 0;
}

static char *sign(const char *secret, const char *header, const char *claims)
{
    return jws_sign(JWS_HS256, header, claims, strlen(claims), secret, strlen(secret), NULL);
}

/* A Mercure 1.0 access token granting `action` on the matchers (a JSON
 * array of topic matcher objects), with a payload for subscribers. */
static char *sign_v1(const config_t *cfg, long long exp, const char *action, const char *topics)
{
    json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:[{s:s, s:[s], s:o, s:{s:s}}]}", "iss",
                          cfg->jwt_issuer, "aud", config_resource_identifier(cfg), "sub", "demo", "client_id",
                          "courant-demo", "iat", exp - 86400, "exp", exp, "jti", "demo",
                          "authorization_details", "type", GRANT_DETAIL_TYPE, "actions", action, "topics",
                          json_loads(topics, 0, NULL), "payload", "user", "demo");
    char *claims = c ? json_dumps(c, JSON_COMPACT) : NULL;
    json_decref(c);
    char *tok =
        claims ? sign(cfg->publisher_jwt_key, "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", claims) : NULL;
    free(claims);
    return tok;
}

char *demo_auth_tokens(const config_t *cfg)
{
    const char *secret = cfg->publisher_jwt_key;
    char claims[256];
    long long exp = (long long)time(NULL) + 86400;
    snprintf(claims, sizeof(claims), "{\"exp\":%lld,\"mercure\":{\"publish\":[\"*\"]}}", exp);
    char *pub = sign(secret, NULL, claims);
    snprintf(claims, sizeof(claims),
             "{\"exp\":%lld,\"mercure\":{\"subscribe\":[\"" DEMO_PRIVATE_TOPIC "{/id}\"],"
             "\"payload\":{\"user\":\"demo\"}}}",
             exp);
    char *sub = sign(secret, NULL, claims);
    /* The dashboard's (/admin/): signed with the subscriber key, which an
     * admin token may be (auth.h). Handed to anyone who asks: DEMO ONLY. */
    snprintf(claims, sizeof(claims), "{\"exp\":%lld,\"mercure\":{\"admin\":true}}", exp);
    char *admin = sign(secret, NULL, claims);
    char *pub1 = sign_v1(cfg, exp, "publish", "[{\"match\":\"*\"}]");
    char *sub1 =
        sign_v1(cfg, exp, "subscribe",
                "[{\"match\":\"" DEMO_PRIVATE_TOPIC "/*\",\"match_type\":\"urlpattern\"},"
                "{\"match\":\"" DEMO_PRIVATE_TOPIC "\"},"
                "{\"match\":\"/.well-known/mercure/subscriptions/*\",\"match_type\":\"urlpattern\"}]");
    json_t *doc =
        pub && sub && admin && pub1 && sub1
            ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "note",
                        "DEMO ONLY: a random key made at start by --demo-auth; never use this in production",
                        "key", secret, "publisher", pub, "subscriber", sub, "admin", admin, "publisherV1",
                        pub1, "subscriberV1", sub1, "privateTopic", DEMO_PRIVATE_TOPIC, "resource",
                        config_resource_identifier(cfg))
            : NULL;
    char *json = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    free(pub);
    free(sub);
    free(admin);
    free(pub1);
    free(sub1);
    return json;
}
