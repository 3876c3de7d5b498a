/*
 * urlpattern_cli.c - a test driver for src/urlpattern.c and src/url.c: reads
 * one JSON request per line on stdin, writes one JSON answer per line on
 * stdout. tests/e2e/urlpattern-*.test.mjs run it against the reference
 * implementation (npm urlpattern-polyfill) and web-platform-tests data.
 *
 * Requests:
 *   {"pattern": "https://x/:id", "base": "https://hub/.well-known/mercure",
 *    "js_api": false,                 true: the base applies to absolute patterns too
 *    "topics": ["/a", ...],           Mercure matching: urlpattern_match
 *    "tests": [["https://x/1"], ["/1", "https://x"], [{"pathname": "/1"}]]}
 *                                     the JavaScript test(...) arguments
 *   {"pattern": {"pathname": "/:id", "baseURL": "..."}, "tests": [...]}
 *                                     the dictionary constructor
 *   {"url": "/a/../b", "base": "https://x/"}   URL parsing alone
 * Answers:
 *   {"ok": true, "components": {"protocol": ..., ...}, "has_regexp_groups": b,
 *    "states": n, "topics": [true, ...], "steps": [state visits per topic],
 *    "tests": [{"match": false, "inputs": {"protocol": ...}}, ...]}
 *   {"ok": false, "error": "reason"}
 *   {"ok": true, "url": {"protocol": ..., ...}} / {"ok": false} for "url"
 *
 * Built by the Makefile as build/asan/urlpattern_cli (the sanitizers watch
 * every case the differential tests throw at it).
 */
#include "url.h"
#include "urlpattern.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[URLPATTERN_COMPONENTS] = {"protocol", "username", "password", "hostname",
                                                         "port",     "pathname", "search",   "hash"};

static void init_from_json(json_t *o, urlpattern_init_t *in)
{
    memset(in, 0, sizeof(*in));
    for (int c = 0; c < URLPATTERN_COMPONENTS; c++)
        in->value[c] = json_string_value(json_object_get(o, names[c]));
    in->base_url = json_string_value(json_object_get(o, "baseURL"));
}

static json_t *url_answer(json_t *req)
{
    const char *s = json_string_value(json_object_get(req, "url"));
    const char *b = json_string_value(json_object_get(req, "base"));
    url_t base, u;
    url_init(&base);
    url_init(&u);
    json_t *ans;
    if ((b && url_try_parse(b, strlen(b), NULL, &base)) ||
        url_try_parse(s, strlen(s), b ? &base : NULL, &u)) {
        ans = json_pack("{s:b}", "ok", 0);
    } else {
        char port[12] = "";
        if (u.port >= 0)
            snprintf(port, sizeof(port), "%d", (int)u.port);
        ans = json_pack("{s:b, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}}", "ok", 1, "url", "protocol",
                        url_str_ptr(&u.scheme), "username", url_str_ptr(&u.username), "password",
                        url_str_ptr(&u.password), "hostname", u.has_host ? url_str_ptr(&u.host) : "", "port",
                        port, "pathname", url_str_ptr(&u.path), "search",
                        u.has_query ? url_str_ptr(&u.query) : "", "hash",
                        u.has_fragment ? url_str_ptr(&u.fragment) : "");
    }
    url_dispose(&u);
    url_dispose(&base);
    return ans;
}

/* One test(...) call: [string], [string, base] or [dict]: {"match": b,
 * "inputs": {component: string matched}} ("inputs" absent when the input did
 * not parse). */
static json_t *run_test(const urlpattern_t *p, json_t *args)
{
    json_t *a0 = json_array_get(args, 0);
    char *seen[URLPATTERN_COMPONENTS] = {0};
    int m;
    if (json_is_object(a0)) {
        urlpattern_init_t in;
        init_from_json(a0, &in);
        m = urlpattern__match_init(p, &in, seen);
    } else if (json_is_string(a0)) {
        m = urlpattern__match_url(p, json_string_value(a0), json_string_length(a0),
                                  json_string_value(json_array_get(args, 1)), seen);
    } else {
        return json_null();
    }
    json_t *ans = json_pack("{s:b}", "match", m == 1);
    if (seen[0]) {
        json_t *inputs = json_object();
        for (int c = 0; c < URLPATTERN_COMPONENTS; c++)
            json_object_set_new(inputs, names[c], json_string(seen[c] ? seen[c] : ""));
        json_object_set_new(ans, "inputs", inputs);
    }
    for (int c = 0; c < URLPATTERN_COMPONENTS; c++)
        free(seen[c]);
    return ans;
}

static json_t *pattern_answer(json_t *req)
{
    json_t *pat = json_object_get(req, "pattern");
    const char *base = json_string_value(json_object_get(req, "base"));
    const char *why = NULL;
    urlpattern_t *p;
    if (json_is_object(pat)) {
        urlpattern_init_t in;
        init_from_json(pat, &in);
        p = urlpattern__try_new_init(&in, &why);
    } else {
        p = (json_is_true(json_object_get(req, "js_api")) ? urlpattern__try_new_js : urlpattern_try_new)(
            json_string_value(pat), json_string_length(pat), base, &why);
    }
    if (!p)
        return json_pack("{s:b, s:s}", "ok", 0, "error", why ? why : "(no reason)");
    json_t *comps = json_object();
    for (int c = 0; c < URLPATTERN_COMPONENTS; c++)
        json_object_set_new(comps, names[c], json_string(urlpattern_component(p, (urlpattern_component_t)c)));
    json_t *topics = json_array(), *tests = json_array(), *steps = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(req, "topics"), i, v)
    {
        json_array_append_new(topics,
                              json_boolean(urlpattern_match(p, json_string_value(v), json_string_length(v))));
        json_array_append_new(steps, json_integer((json_int_t)urlpattern__last_steps()));
    }
    json_array_foreach(json_object_get(req, "tests"), i, v) json_array_append_new(tests, run_test(p, v));
    json_t *ans = json_pack("{s:b, s:o, s:b, s:i, s:o, s:o, s:o}", "ok", 1, "components", comps,
                            "has_regexp_groups", urlpattern_has_regexp_groups(p), "states",
                            urlpattern_states(p), "topics", topics, "tests", tests, "steps", steps);
    urlpattern_free(p);
    return ans;
}

int main(void)
{
    size_t cap = 1 << 20;
    char *line = malloc(cap);
    if (!line)
        return 1;
    while (fgets(line, (int)cap, stdin)) {
        json_error_t err;
        json_t *req = json_loads(line, JSON_ALLOW_NUL, &err), *ans;
        if (!req)
            ans = json_pack("{s:b, s:s}", "ok", 0, "error", "bad request JSON");
        else if (json_object_get(req, "url"))
            ans = url_answer(req);
        else
            ans = pattern_answer(req);
        char *out = json_dumps(ans, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (out) {
            puts(out);
            fflush(stdout);
        }
        free(out);
        json_decref(ans);
        json_decref(req);
    }
    free(line);
    return 0;
}
