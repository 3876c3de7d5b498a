/*
 * acmewire.c - see acmewire.h.
 *
 * Every member is read through one of three checked copies (a URL, a
 * base64url string, a short printable string) into a fixed buffer; a member
 * that is present but malformed refuses the whole answer when we need it
 * (a URL we would POST to, a token we would serve) and is ignored when we
 * do not (a termsOfService link we only log). So the caller never sees a
 * half-checked value.
 */
#include "acmewire.h"

#include "jws.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ACME_JSON_DEPTH 16

static const char *const status_names[] = {
    [ACME_ST_UNKNOWN] = "unknown", [ACME_ST_PENDING] = "pending",
    [ACME_ST_READY] = "ready",     [ACME_ST_PROCESSING] = "processing",
    [ACME_ST_VALID] = "valid",     [ACME_ST_INVALID] = "invalid",
    [ACME_ST_EXPIRED] = "expired", [ACME_ST_DEACTIVATED] = "deactivated",
    [ACME_ST_REVOKED] = "revoked",
};

const char *acme_status_name(acme_status_t s)
{
    return (unsigned)s < sizeof(status_names) / sizeof(status_names[0]) ? status_names[s] : "unknown";
}

static acme_status_t status_of(const json_t *obj)
{
    const char *s = json_string_value(json_object_get(obj, "status"));
    for (size_t i = 1; s && i < sizeof(status_names) / sizeof(status_names[0]); i++)
        if (!strcmp(s, status_names[i]))
            return (acme_status_t)i;
    return ACME_ST_UNKNOWN;
}

int acmewire_url_ok(const char *s, size_t len)
{
    if (len <= 8 || len >= ACME_MAX_URL || strncasecmp(s, "https://", 8) != 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

int acmewire_b64url_ok(const char *s, size_t len, size_t max)
{
    if (len == 0 || len >= max)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_'))
            return 0;
    }
    return 1;
}

/* Copies the URL member `name` into out[ACME_MAX_URL]. Absent: "" and 0
 * (unless required); present and not a usable URL: -1. */
static int get_url(const json_t *obj, const char *name, char *out, int required)
{
    const json_t *v = json_object_get(obj, name);
    out[0] = 0;
    if (!v)
        return required ? -1 : 0;
    if (!json_is_string(v) || !acmewire_url_ok(json_string_value(v), json_string_length(v)))
        return -1;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

/* Printable ASCII (other bytes as '?'), cut to cap - 1. */
static void copy_printable(char *out, size_t cap, const char *s, size_t len)
{
    size_t n = len < cap - 1 ? len : cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f ? '?' : s[i];
    out[n] = 0;
}

/* Parses a JSON object answer; NULL with *why. */
static json_t *parse_object(const char *json, size_t len, const char **why)
{
    if (len > ACME_MAX_JSON) {
        *why = "the CA's answer is larger than 64 KiB";
        return NULL;
    }
    json_t *j = jws_json_try_parse(json, len, ACME_JSON_DEPTH);
    if (!json_is_object(j)) {
        json_decref(j);
        *why = "the CA's answer is not a JSON object";
        return NULL;
    }
    return j;
}

int acmewire_parse_directory(const char *json, size_t len, acme_directory_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    json_t *j = parse_object(json, len, why);
    if (!j)
        return -1;
    int rc = -1;
    if (get_url(j, "newNonce", out->new_nonce, 1) || get_url(j, "newAccount", out->new_account, 1) ||
        get_url(j, "newOrder", out->new_order, 1)) {
        *why = "the directory lacks an https newNonce, newAccount or newOrder URL";
        goto out;
    }
    const json_t *meta = json_object_get(j, "meta");
    if (json_is_object(meta)) {
        if (get_url(meta, "termsOfService", out->terms, 0))
            out->terms[0] = 0; /* only logged: a bad one is dropped, not fatal */
        out->eab_required = json_is_true(json_object_get(meta, "externalAccountRequired"));
    }
    rc = 0;
out:
    json_decref(j);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

int acmewire_parse_order(const char *json, size_t len, acme_order_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    json_t *j = parse_object(json, len, why);
    if (!j)
        return -1;
    int rc = -1;
    const json_t *az = json_object_get(j, "authorizations");
    out->status = status_of(j);
    if (out->status == ACME_ST_UNKNOWN) {
        *why = "the order has no known status";
    } else if (get_url(j, "finalize", out->finalize, 1)) {
        *why = "the order has no https finalize URL";
    } else if (get_url(j, "certificate", out->certificate, 0)) {
        *why = "the order's certificate URL is not https";
    } else if (!json_is_array(az) || json_array_size(az) == 0 || json_array_size(az) > ACME_MAX_AUTHZ) {
        *why = "the order's authorizations are not an array of 1 to 16 URLs";
    } else {
        size_t i = 0;
        for (; i < json_array_size(az); i++) {
            const json_t *u = json_array_get(az, i);
            if (!json_is_string(u) || !acmewire_url_ok(json_string_value(u), json_string_length(u)))
                break;
            memcpy(out->authz[i], json_string_value(u), json_string_length(u) + 1);
        }
        out->num_authz = i;
        if (i == json_array_size(az))
            rc = 0;
        else
            *why = "an authorization URL of the order is not https";
    }
    json_decref(j);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

static acme_chal_type_t chal_type(const char *s)
{
    if (s && !strcmp(s, "http-01"))
        return ACME_CHAL_HTTP01;
    if (s && !strcmp(s, "tls-alpn-01"))
        return ACME_CHAL_TLSALPN01;
    return ACME_CHAL_OTHER;
}

/* One member of "challenges"; -1 with *why when a type we answer is malformed. */
static int parse_challenge(const json_t *c, acme_challenge_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(c)) {
        *why = "a challenge is not a JSON object";
        return -1;
    }
    out->type = chal_type(json_string_value(json_object_get(c, "type")));
    out->status = status_of(c);
    const json_t *err = json_object_get(c, "error");
    const char *ed = json_string_value(json_object_get(err, "detail"));
    const char *et = json_string_value(json_object_get(err, "type"));
    if (ed || et) {
        char tmp[ACME_MAX_DETAIL];
        snprintf(tmp, sizeof(tmp), "%.180s (%.60s)", ed ? ed : "no detail", et ? et : "no type");
        copy_printable(out->error, sizeof(out->error), tmp, strlen(tmp));
    }
    if (out->type == ACME_CHAL_OTHER)
        return 0; /* never answered: its members do not matter */
    const json_t *tok = json_object_get(c, "token");
    if (get_url(c, "url", out->url, 1)) {
        *why = "a challenge has no https url";
        return -1;
    }
    if (!json_is_string(tok) ||
        !acmewire_b64url_ok(json_string_value(tok), json_string_length(tok), ACME_MAX_TOKEN)) {
        *why = "a challenge's token is not base64url of 1 to 255 bytes";
        return -1;
    }
    memcpy(out->token, json_string_value(tok), json_string_length(tok) + 1);
    return 0;
}

/* A DNS name as we would have asked for it: letters, digits, '-' and '.',
 * 1 to 253 bytes; lowercased into out. */
static int copy_dns_name(char *out, const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return -1;
        out[i] = c;
    }
    out[len] = 0;
    return 0;
}

int acmewire_parse_authz(const char *json, size_t len, acme_authz_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    json_t *j = parse_object(json, len, why);
    if (!j)
        return -1;
    int rc = -1;
    const json_t *id = json_object_get(j, "identifier"), *ch = json_object_get(j, "challenges");
    const json_t *type = json_object_get(id, "type"), *value = json_object_get(id, "value");
    out->status = status_of(j);
    out->wildcard = json_is_true(json_object_get(j, "wildcard"));
    if (out->status == ACME_ST_UNKNOWN) {
        *why = "the authorization has no known status";
    } else if (!json_is_string(type) || strcmp(json_string_value(type), "dns") != 0 ||
               !json_is_string(value) ||
               copy_dns_name(out->identifier, json_string_value(value), json_string_length(value))) {
        *why = "the authorization's identifier is not a DNS name";
    } else if (!json_is_array(ch) || json_array_size(ch) > ACME_MAX_CHALLENGES) {
        *why = "the authorization's challenges are not an array of at most 16";
    } else {
        rc = 0;
        for (size_t i = 0; rc == 0 && i < json_array_size(ch); i++)
            rc = parse_challenge(json_array_get(ch, i), &out->challenges[i], why);
        out->num_challenges = json_array_size(ch);
    }
    json_decref(j);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

int acmewire_parse_status(const char *json, size_t len, acme_status_t *out, const char **why)
{
    *out = ACME_ST_UNKNOWN;
    json_t *j = parse_object(json, len, why);
    if (!j)
        return -1;
    *out = status_of(j);
    json_decref(j);
    return 0;
}

int acmewire_parse_problem(const char *json, size_t len, acme_problem_t *out)
{
    const char *why;
    memset(out, 0, sizeof(*out));
    json_t *j = parse_object(json, len, &why);
    if (!j)
        return -1;
    const json_t *t = json_object_get(j, "type"), *d = json_object_get(j, "detail");
    if (json_is_string(t))
        copy_printable(out->type, sizeof(out->type), json_string_value(t), json_string_length(t));
    if (json_is_string(d))
        copy_printable(out->detail, sizeof(out->detail), json_string_value(d), json_string_length(d));
    json_decref(j);
    return 0;
}

/* ---- header lines ------------------------------------------------------------------ */

void acmewire_headers_reset(acme_headers_t *h)
{
    memset(h, 0, sizeof(*h));
    h->retry_after_s = -1;
}

/* Retry-After: delta-seconds or an HTTP-date (RFC 9110 10.2.3), as seconds
 * from now clamped to [0, 86400]; -1 if neither. */
static long retry_after(const char *v, size_t len, time_t now)
{
    if (len == 0 || len > 64)
        return -1;
    long s = 0;
    size_t i = 0;
    for (; i < len && v[i] >= '0' && v[i] <= '9'; i++)
        s = s < 86400 ? s * 10 + (v[i] - '0') : 86400;
    if (i == len)
        return s > 86400 ? 86400 : s;
    char date[65];
    memcpy(date, v, len);
    date[len] = 0;
    time_t t = curl_getdate(date, NULL);
    if (t == (time_t)-1)
        return -1;
    return t <= now ? 0 : t - now > 86400 ? 86400 : (long)(t - now);
}

void acmewire_header_line(acme_headers_t *h, const char *line, size_t len, time_t now)
{
    if (len >= 5 && !memcmp(line, "HTTP/", 5)) {
        acmewire_headers_reset(h); /* a new response (after 100 Continue) */
        return;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return;
    size_t nl = (size_t)(colon - line);
    const char *v = colon + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vl = (size_t)(end - v);
    if (nl == 12 && !strncasecmp(line, "replay-nonce", 12)) {
        h->nonce[0] = 0;
        if (acmewire_b64url_ok(v, vl, sizeof(h->nonce))) {
            memcpy(h->nonce, v, vl);
            h->nonce[vl] = 0;
        }
    } else if (nl == 8 && !strncasecmp(line, "location", 8)) {
        h->location[0] = 0;
        if (acmewire_url_ok(v, vl)) {
            memcpy(h->location, v, vl);
            h->location[vl] = 0;
        }
    } else if (nl == 11 && !strncasecmp(line, "retry-after", 11)) {
        h->retry_after_s = retry_after(v, vl, now);
    } else if (nl == 12 && !strncasecmp(line, "content-type", 12)) {
        size_t n = 0;
        for (; n < vl && n < sizeof(h->content_type) - 1 && v[n] != ';' && v[n] != ' '; n++)
            h->content_type[n] = (char)((v[n] >= 'A' && v[n] <= 'Z') ? v[n] - 'A' + 'a' : v[n]);
        h->content_type[n] = 0;
        copy_printable(h->content_type, sizeof(h->content_type), h->content_type, n);
    }
}

/* ---- the request ---------------------------------------------------------------------- */

char *acmewire_jws(EVP_PKEY *key, const char *jwk, const char *kid, const char *nonce, const char *url,
                   const char *payload)
{
    if (!key || !nonce || !url || (!jwk) == (!kid))
        return NULL;
    json_t *hdr = json_object(), *jwk_obj = NULL;
    char *hdr_text = NULL, *token = NULL, *out = NULL;
    if (jwk && !(jwk_obj = json_loads(jwk, JSON_REJECT_DUPLICATES, NULL)))
        goto done;
    if (!hdr || json_object_set_new(hdr, "alg", json_string("ES256")) ||
        json_object_set_new(hdr, "nonce", json_string(nonce)) ||
        json_object_set_new(hdr, "url", json_string(url)) ||
        (jwk_obj ? json_object_set(hdr, "jwk", jwk_obj) : json_object_set_new(hdr, "kid", json_string(kid))))
        goto done;
    if (!(hdr_text = json_dumps(hdr, JSON_COMPACT)))
        goto done;
    /* jws_sign gives the compact form B64(protected).B64(payload).B64(sig):
     * the flattened JSON serialization is the same three parts. */
    token =
        jws_sign(JWS_ES256, hdr_text, payload ? payload : "", payload ? strlen(payload) : 0, NULL, 0, key);
    if (!token)
        goto done;
    char *d1 = strchr(token, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d2)
        goto done;
    *d1 = *d2 = 0;
    size_t cap = strlen(token) + strlen(d1 + 1) + strlen(d2 + 1) + 64;
    if ((out = malloc(cap)))
        snprintf(out, cap, "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", token, d1 + 1,
                 d2 + 1);
done:
    free(token);
    free(hdr_text);
    json_decref(jwk_obj);
    json_decref(hdr);
    return out;
}
