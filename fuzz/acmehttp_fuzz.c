/*
 * acmehttp_fuzz.c - libFuzzer target for the redirect the --listen-http
 * port builds from a client's Host, path and query
 * (acmehttp__redirect). Input: host '\n' path '\n' query; the first byte
 * also picks the HTTPS port (443 or another).
 *
 * Properties (abort() on any violation): a Location is built or refused
 * (-1); a built one starts with "https://", holds only visible ASCII (no
 * header splitting, no space), has exactly the length returned, ends with
 * the path and query given, names no port but the HTTPS one, and its host
 * part is the Host's without its port.
 */
#include "acmehttp.h"
#include "fuzz.h"

#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    int port = data[0] & 1 ? 443 : 8443;
    char *in = malloc(size);
    CHECK(in);
    memcpy(in, data + 1, size - 1);
    size_t len = size - 1;
    const char *host = in, *path = "/", *query = "";
    size_t hl = len, pl = 1, ql = 0;
    char *nl = memchr(in, '\n', len);
    if (nl) {
        hl = (size_t)(nl - in);
        path = nl + 1;
        pl = len - hl - 1;
        char *nl2 = memchr(path, '\n', pl);
        if (nl2) {
            query = nl2 + 1;
            ql = pl - (size_t)(nl2 - path) - 1;
            pl = (size_t)(nl2 - path);
        }
    }
    char out[2048];
    long n = acmehttp__redirect(host, hl, port, path, pl, query, ql, out, sizeof(out));
    if (n >= 0) {
        CHECK((size_t)n == strlen(out) && !strncmp(out, "https://", 8));
        for (long i = 0; i < n; i++)
            CHECK((unsigned char)out[i] > 0x20 && (unsigned char)out[i] < 0x7f);
        size_t tail = pl + (ql ? ql + 1 : 0);
        CHECK((size_t)n >= 8 + tail && !memcmp(out + n - tail, path, pl));
        if (ql)
            CHECK(out[n - tail + pl] == '?' && !memcmp(out + n - ql, query, ql));
        /* the authority: the Host's host part, then ":8443" or nothing */
        size_t auth = (size_t)n - 8 - tail;
        char want_port[8] = "";
        if (port != 443)
            snprintf(want_port, sizeof(want_port), ":%d", port);
        size_t wp = strlen(want_port);
        CHECK(auth > wp && !memcmp(out + 8 + auth - wp, want_port, wp));
        CHECK(auth - wp <= hl && !memcmp(out + 8, host, auth - wp));
        CHECK(auth - wp == hl || host[auth - wp] == ':');
    }
    free(in);
    return 0;
}
