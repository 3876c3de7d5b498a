/*
 * dialect_fuzz.c - libFuzzer target for src/dialect.c: the subscribe
 * parameters of both dialects (query, and a QUERY body after the first NUL
 * byte of the input), the subscriptions API path, and the typ peek of an
 * unverified token. Properties (abort() on any violation):
 *
 *   1. Every selector and the last event id point inside the scratch buffer
 *      (decoded), never past what was decoded; at most max selectors.
 *   2. The dialect agrees with the selectors: classic selectors only in a
 *      CLASSIC answer, v1 matchers only in a V1 one; MIXED always refused;
 *      a body makes it V1 or MIXED; no selector and no refusal means AUTO
 *      (GET) or V1 (QUERY).
 *   3. An accepted v1 matcher is non-empty UTF-8 without control or format
 *      characters and at most GRANT_MAX_MATCHER_LEN bytes.
 *   4. The same input split anywhere between query and body gives the same
 *      selectors when no body was used (parsing is a pure function).
 *   5. The API path and the typ peek never crash (ASan) and the typ peek
 *      only says yes to a header whose typ it can show.
 */
#include "fuzz.h"

#include "dialect.h"
#include "grant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nul = memchr(in, 0, size);
    size_t qlen = nul ? (size_t)(nul - in) : size;
    const char *body = nul ? nul + 1 : NULL;
    size_t blen = nul ? size - qlen - 1 : 0;
    size_t max = size ? (size_t)(data[0] % 70) : 64;
    char *scratch = malloc(size + 1), *scratch2 = malloc(size + 1);
    CHECK(scratch && scratch2);
    dialect_sub_t s;
    dialect_parse_subscribe(in, qlen, body, blen, max, scratch, &s);
    CHECK(s.num_sel <= max && s.num_sel <= DIALECT_MAX_SELECTORS);
    for (size_t i = 0; i < s.num_sel; i++) {
        CHECK(s.sel[i] >= scratch && s.sel[i] + s.sel_len[i] <= scratch + qlen + blen);
        CHECK(s.sel_len[i] > 0 && !memchr(s.sel[i], 0, s.sel_len[i]));
        if (s.sel_type[i] == GRANT_MATCH_TEMPLATE_OR_EXACT) {
            CHECK(s.dialect == DIALECT_CLASSIC || s.dialect == DIALECT_MIXED);
        } else {
            CHECK(s.dialect == DIALECT_V1 || s.dialect == DIALECT_MIXED);
            CHECK(s.sel_len[i] <= GRANT_MAX_MATCHER_LEN && grant_string_ok(s.sel[i], s.sel_len[i]));
        }
    }
    if (s.last_event_id)
        CHECK(s.last_event_id >= scratch && s.last_event_id + s.last_event_id_len <= scratch + qlen + blen);
    if (s.dialect == DIALECT_MIXED)
        CHECK(s.bad != NULL);
    if (body)
        CHECK(s.dialect == DIALECT_V1 || s.dialect == DIALECT_MIXED);
    if (!s.bad && s.num_sel == 0)
        CHECK(s.dialect == (body ? DIALECT_V1 : DIALECT_AUTO));
    /* Pure: the same query parses the same way again (into another buffer). */
    if (!body) {
        dialect_sub_t t;
        dialect_parse_subscribe(in, qlen, NULL, 0, max, scratch2, &t);
        CHECK(t.dialect == s.dialect && t.num_sel == s.num_sel && !t.bad == !s.bad);
        for (size_t i = 0; i < s.num_sel; i++)
            CHECK(t.sel_len[i] == s.sel_len[i] && !memcmp(t.sel[i], s.sel[i], s.sel_len[i]) &&
                  t.sel_type[i] == s.sel_type[i]);
    }
    (void)dialect_of_subsapi_path(in, qlen);
    if (dialect_token_is_v1(in, qlen))
        CHECK(qlen > 0 && memchr(in, '.', qlen));
    free(scratch);
    free(scratch2);
    return 0;
}
