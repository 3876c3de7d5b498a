/*
 * discovery.c - see discovery.h.
 *
 * The document is rendered per request (a few hundred bytes of jansson):
 * the configuration it shows can change on SIGHUP, and a cached copy would
 * need the reload to know about it.
 */
#include "discovery.h"

#include "auth.h"
#include "config.h"
#include "conn.h"
#include "grant.h"
#include "server.h"
#include "worker.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

char *discovery_try_render(const struct auth *a, const struct config *cfg)
{
    const char *res = auth_resource(a);
    if (!res)
        return NULL;
    json_t *doc = json_pack("{s:s, s:[s], s:[s], s:s, s:[s,s]}", "resource", res,
                            "authorization_details_types_supported", GRANT_DETAIL_TYPE,
                            "bearer_methods_supported", "header", "mercure_cookie", AUTH_COOKIE_V1,
                            "mercure_matcher_types_supported", "exact", "urlpattern");
    if (!doc)
        return NULL;
    json_t *servers = json_array();
    for (int i = 0; servers && i < cfg->num_jwks_urls; i++) {
        const char *iss, *url;
        size_t il;
        if (!config_jwks_url(cfg, i, &iss, &il, &url))
            json_array_append_new(servers, json_stringn(iss, il));
    }
    if (servers && json_array_size(servers))
        json_object_set(doc, "authorization_servers", servers);
    json_decref(servers);
    if (cfg->subscriptions)
        json_object_set_new(doc, "mercure_subscriptions", json_true());
    char *out = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return out;
}

void discovery_handle(req_t *r, const request_t *in)
{
    server_t *srv = worker_server(r->conn->worker);
    char *doc = discovery_try_render(srv->auth, srv->cfg);
    if (!doc) {
        req_refuse(r, REFUSE_UNAVAILABLE, 503, &in->cors, "out of memory");
        return;
    }
    resp_hdrs_t h = in->cors;
    /* Public, and meant for clients on any origin (RFC 9728 3). */
    if (!request_header(in, "origin") || !h.n)
        resp_hdrs_add(&h, "Access-Control-Allow-Origin", "*");
    resp_hdrs_add(&h, "Cache-Control", "max-age=300");
    req_respond(r, 200, &h, "application/json", doc, strlen(doc));
    free(doc);
}
