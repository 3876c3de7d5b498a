/*
 * demo.c - see demo.h.
 */
#include "demo.h"

#include "id.h"
#include "jwt.h"
#include "log.h"

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

char *demo_auth_init(config_t *cfg)
{
    if (cfg->publisher_jwt_key || cfg->publisher_jwt_key_file || cfg->subscriber_jwt_key ||
        cfg->subscriber_jwt_key_file || (cfg->jwt_alg && strcmp(cfg->jwt_alg, "HS256"))) {
        fprintf(stderr, "courant: --demo-auth makes its own HS256 keys: give it no key and no --jwt-alg\n");
        return NULL;
    }
    unsigned char raw[24];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        fprintf(stderr, "courant: --demo-auth: no randomness for the demo key\n");
        return NULL;
    }
    char secret[sizeof(raw) * 2 + 16];
    int n = snprintf(secret, sizeof(secret), "demo-only-");
    for (size_t i = 0; i < sizeof(raw); i++)
        n += snprintf(secret + n, sizeof(secret) - (size_t)n, "%02x", raw[i]);
    char claims[256];
    long long exp = (long long)time(NULL) + 86400;
    snprintf(claims, sizeof(claims), "{\"exp\":%lld,\"mercure\":{\"publish\":[\"*\"]}}", exp);
    char *pub = jwt_sign_hs(JWT_HS256, secret, (size_t)n, claims);
    snprintf(claims, sizeof(claims),
             "{\"exp\":%lld,\"mercure\":{\"subscribe\":[\"" DEMO_PRIVATE_TOPIC "{/id}\"],"
             "\"payload\":{\"user\":\"demo\"}}}",
             exp);
    char *sub = jwt_sign_hs(JWT_HS256, secret, (size_t)n, claims);
    /* The dashboard's (/admin/): signed with the subscriber key, which an
     * admin token may be (auth.h). Handed to anyone who asks: DEMO ONLY. */
    snprintf(claims, sizeof(claims), "{\"exp\":%lld,\"mercure\":{\"admin\":true}}", exp);
    char *admin = jwt_sign_hs(JWT_HS256, secret, (size_t)n, claims);
    size_t cap = 512 + (pub ? strlen(pub) : 0) + (sub ? strlen(sub) : 0) + (admin ? strlen(admin) : 0);
    char *json = pub && sub && admin ? malloc(cap) : NULL;
    if (json)
        snprintf(json, cap,
                 "{\"note\":\"DEMO ONLY: a random key made at start by --demo-auth; never use this in "
                 "production\","
                 "\"key\":\"%s\",\"publisher\":\"%s\",\"subscriber\":\"%s\",\"admin\":\"%s\","
                 "\"privateTopic\":\"" DEMO_PRIVATE_TOPIC "\"}",
                 secret, pub, sub, admin);
    free(pub);
    free(sub);
    free(admin);
    if (!json) {
        fprintf(stderr, "courant: out of memory\n");
        return NULL;
    }
    cfg->publisher_jwt_key = strdup(secret);
    cfg->subscriber_jwt_key = strdup(secret);
    cfg->anonymous = 1;
    return json;
}
