/*
 * curlhttps.c - see curlhttps.h.
 */
#include "curlhttps.h"

void curlhttps_setup(CURL *c, const curlhttps_opts_t *o)
{
    o->errbuf[0] = 0;
    curl_easy_setopt(c, CURLOPT_URL, o->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(c, CURLOPT_USERAGENT, o->user_agent);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, o->headers);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, o->errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, o->on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, o->body_ctx);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, o->on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, o->header_ctx);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, o->on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, o->progress_ctx);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, o->max_bytes);
    if (o->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
    if (o->insecure_tls) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}
