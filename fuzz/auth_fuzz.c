/*
 * auth_fuzz.c - libFuzzer target for the token finders of auth.c: the
 * Cookie header parser and the `authorization` query parameter.
 *
 * Properties (abort() on any violation):
 *   - a found cookie value lies inside the header, contains no ';', and is
 *     preceded by "mercureAuthorization=" at a pair boundary;
 *   - the query finder agrees with http1_parse_form: -1 exactly when the form
 *     parser refuses the string, and a found value lies inside the scratch;
 *   - neither ever reads outside its exact-size heap input (ASan).
 */
#include "fuzz.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

static int count_pair(void *ctx, const char *n, size_t nl, const char *v, size_t vl)
{
    (void)n, (void)nl, (void)v, (void)vl;
    ++*(int *)ctx;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    CHECK(in);
    memcpy(in, data, size);
    const char *v = NULL;
    size_t vl = 0;
    const char *name = "mercureAuthorization";
    if (auth_cookie_value(in, size, name, &v, &vl)) {
        CHECK(v >= in && v + vl <= in + size);
        CHECK(!memchr(v, ';', vl));
        const char *eq = v - 1;
        if (*eq == '"') /* a DQUOTE-wrapped value */
            eq--;
        CHECK(*eq == '=' && eq - in >= 20 && !memcmp(eq - 20, name, 20));
        CHECK(eq - 20 == in || eq[-21] == ' ' || eq[-21] == ';');
    }
    char *scratch = malloc(size ? size : 1), *scratch2 = malloc(size ? size : 1);
    CHECK(scratch && scratch2);
    const char *tok = NULL;
    size_t tl = 0;
    int r = auth_query_token(in, size, scratch, &tok, &tl);
    int pairs = 0;
    int fr = http1_parse_form(in, size, scratch2, count_pair, &pairs);
    CHECK((r < 0) == (fr < 0));
    if (r == 1)
        CHECK(tok >= scratch && tok + tl <= scratch + size && pairs > 0);
    free(scratch);
    free(scratch2);
    free(in);
    return 0;
}
