/*
 * log_json_fuzz.c - libFuzzer target for the JSON escaping of log lines and
 * `courant sub --json` (log_json_escape). Properties:
 *
 *  1. Wrapped in quotes, the output always parses as a JSON string
 *     (jansson, strict RFC 8259, valid UTF-8 required).
 *  2. When nothing was replaced by U+FFFD, it decodes to exactly the input.
 *  3. With a smaller cap the output is a prefix of the full output, ends
 *     on a whole escape (the escape of the input it says it consumed) and
 *     still parses.
 */
#include "fuzz.h"
#include "log.h"

#include <jansson.h>

static json_t *parse_quoted(const char *esc, size_t n)
{
    char *q = malloc(n + 2);
    CHECK(q);
    q[0] = '"';
    memcpy(q + 1, esc, n);
    q[n + 1] = '"';
    json_error_t err;
    json_t *j = json_loadb(q, n + 2, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    free(q);
    return j;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    const char *in = (const char *)data;
    size_t cap = size * 6 + 1, used;
    char *out = malloc(cap), *part = malloc(cap);
    CHECK(out && part);
    size_t n = log_json_escape(in, size, out, cap, &used);
    CHECK(used == size && n <= size * 6);
    json_t *j = parse_quoted(out, n);
    CHECK(j && json_is_string(j));
    if (!memmem(out, n, "\\ufffd", 6))
        CHECK(json_string_length(j) == size && memcmp(json_string_value(j), in, size) == 0);
    json_decref(j);

    size_t small = n / 2, used2;
    size_t m = log_json_escape(in, size, part, small, &used2);
    CHECK(m <= small && memcmp(part, out, m) == 0 && used2 <= size);
    CHECK(log_json_escape(in, used2, out, cap, NULL) == m);
    j = parse_quoted(part, m);
    CHECK(j);
    json_decref(j);
    free(out);
    free(part);
    return 0;
}
