/*
 * reload.c - see reload.h.
 */
#include "reload.h"

#include "auth.h"
#include "log.h"
#include "ratelimit.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RELOAD_QUIESCE_MS 3000 /* a worker is never busier than this in one turn */

server_limits_t *limits_try_new(const config_t *cfg, size_t keys)
{
    server_limits_t *l = calloc(1, sizeof(*l));
    if (!l || (cfg->num_trusted_proxies &&
               !(l->trusted = calloc((size_t)cfg->num_trusted_proxies, sizeof(peer_cidr_t))))) {
        fprintf(stderr, "courant: out of memory for the limits\n");
        limits_free(l);
        return NULL;
    }
    for (int i = 0; i < cfg->num_trusted_proxies; i++, l->num_trusted++) {
        if (peer_cidr_parse(cfg->trusted_proxies[i], strlen(cfg->trusted_proxies[i]), &l->trusted[i])) {
            fprintf(
                stderr,
                "courant: --trusted-proxy wants an address or a CIDR range (host bits zero), not \"%s\"\n",
                cfg->trusted_proxies[i]);
            limits_free(l);
            return NULL;
        }
    }
    const char *hdr = cfg->trusted_proxy_header ? cfg->trusted_proxy_header : "forwarded";
    if (!strcmp(hdr, "forwarded") || !strcmp(hdr, "x-forwarded-for")) {
        l->trusted_header = hdr[0] == 'f' ? PEER_HEADER_FORWARDED : PEER_HEADER_X_FORWARDED_FOR;
    } else {
        fprintf(stderr, "courant: --trusted-proxy-header wants forwarded or x-forwarded-for, not \"%s\"\n",
                hdr);
        limits_free(l);
        return NULL;
    }
    /* Past `keys` clients, the least recently seen bucket is forgotten:
     * never more memory. */
    if ((cfg->publish_rate && !(l->publish_rate = ratelimit_new((uint32_t)cfg->publish_rate, 1000,
                                                                (uint32_t)cfg->publish_rate * 2, keys))) ||
        (cfg->subscribe_rate &&
         !(l->subscribe_rate = ratelimit_new((uint32_t)cfg->subscribe_rate, 1000,
                                             (uint32_t)cfg->subscribe_rate * 2, keys)))) {
        fprintf(stderr, "courant: out of memory for the rate-limit tables\n");
        limits_free(l);
        return NULL;
    }
    return l;
}

void limits_free(server_limits_t *l)
{
    if (!l)
        return;
    ratelimit_free(l->publish_rate);
    ratelimit_free(l->subscribe_rate);
    free(l->trusted);
    free(l);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until every worker has begun a new turn: then none of them still
 * holds a pointer read before the swap. Returns 0, or -1 past
 * RELOAD_QUIESCE_MS (the caller then keeps the old objects alive). */
static int wait_for_new_turns(server_t *srv)
{
    uint32_t seen[256];
    int n = srv->num_workers < 256 ? srv->num_workers : 256;
    for (int i = 0; i < n; i++) {
        seen[i] = worker_turns(srv->workers[i]);
        worker_wake(srv->workers[i]); /* an idle worker sleeps in epoll_wait */
    }
    for (long waited = 0; waited < RELOAD_QUIESCE_MS; waited += 2) {
        int all = 1;
        for (int i = 0; i < n && all; i++)
            all = worker_turns(srv->workers[i]) != seen[i];
        if (all)
            return 0;
        sleep_ms(2);
    }
    return -1;
}

/* Logs which options changed: the ones applied, and the ones that need a
 * restart (names only: values may be secrets). Returns how many changed. */
static size_t log_changes(const config_t *cur, const config_t *fresh)
{
    config_change_t ch[128];
    size_t n = config_diff(cur, fresh, ch, 128);
    char live[1024] = "", restart[1024] = "";
    for (size_t i = 0; i < n && i < 128; i++) {
        char *dst = ch[i].restart ? restart : live;
        size_t used = strlen(dst);
        snprintf(dst + used, sizeof(live) - used, "%s--%s", used ? ", " : "", ch[i].name);
    }
    if (*restart)
        log_warn("SIGHUP: not applied, a restart is needed: %s", restart);
    log_info("SIGHUP: configuration re-read; %s%s", *live ? "applied: " : "no live option changed", live);
    return n;
}

/* --demo-auth made its keys at start: a reload keeps them. */
static int keep_demo_keys(config_t *fresh, const config_t *cur)
{
    if (!cur->demo_auth)
        return 0;
    return config_copy_option(fresh, cur, "publisher-jwt-key") ||
           config_copy_option(fresh, cur, "subscriber-jwt-key") ||
           config_copy_option(fresh, cur, "anonymous") || config_copy_option(fresh, cur, "jwt-issuer");
}

static void free_config(config_t *c, const config_t *started)
{
    if (c && c != started) {
        config_dispose(c);
        free(c);
    }
}

int reload_apply(server_t *srv, int argc, char **argv, const config_t *started, reload_hook_fn hook,
                 void *hook_ctx)
{
    const config_t *cur = srv->cfg;
    config_t *fresh = calloc(1, sizeof(*fresh));
    if (!fresh || config_parse(fresh, argc, argv) != 0) {
        log_warn("SIGHUP: the configuration could not be read (see above); keeping the running one");
        if (fresh)
            config_dispose(fresh);
        free(fresh);
        return -1;
    }
    size_t changed = log_changes(cur, fresh);
    auth_t *auth = NULL;
    server_limits_t *limits = NULL;
    size_t keys = srv->max_connections < 65536 ? 65536 : (size_t)srv->max_connections;
    if (config_keep_restart_only(fresh, cur) || keep_demo_keys(fresh, cur) || !(auth = auth_new(fresh)) ||
        !(limits = limits_try_new(fresh, keys))) {
        log_warn("SIGHUP: the new keys or limits are unusable (see above); keeping the running ones");
        auth_free(auth);
        free_config(fresh, started);
        return -1;
    }
    auth_set_jwks(auth, auth_jwks(srv->auth)); /* the fetcher outlives every auth_t */
    config_t *old_cfg = (config_t *)cur;
    auth_t *old_auth = (auth_t *)srv->auth;
    server_limits_t *old_limits = (server_limits_t *)srv->limits;
    atomic_store(&srv->cfg, fresh);
    atomic_store(&srv->auth, auth);
    atomic_store(&srv->limits, limits);
    ratelimit_counter_set_max(srv->conns_per_ip, fresh->max_connections_per_ip
                                                     ? (uint32_t)fresh->max_connections_per_ip
                                                     : UINT32_MAX);
    log_set_level((log_level_t)fresh->log_level);
    log_set_format((log_format_t)fresh->log_format);
    if (hook)
        hook(hook_ctx);
    if (wait_for_new_turns(srv)) {
        log_warn("SIGHUP: a worker did not turn within %d ms; the old configuration stays allocated",
                 RELOAD_QUIESCE_MS);
        return 0;
    }
    free_config(old_cfg, started);
    auth_free(old_auth);
    limits_free(old_limits);
    return changed ? 0 : 1;
}

void reload_dispose(server_t *srv, const config_t *started) { free_config((config_t *)srv->cfg, started); }
