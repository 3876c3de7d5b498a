/*
 * config_file_fuzz.c - libFuzzer target for the configuration file parser
 * (config__parse_text: the text of a --config file). Properties (abort() on
 * failure):
 *
 *  1. It answers 0 (parsed) or -1 (one error line, silenced here); never a
 *     crash, never anything else.
 *  2. A parsed config is within its documented bounds (as config_fuzz.c).
 *  3. Round trip: every option's value, written back as "name = value"
 *     lines (as the example file writes them), parses into a config that
 *     config_diff finds identical; and a config is identical to itself.
 *  4. Everything is freed by config_dispose (LeakSanitizer).
 */
#include "config.h"
#include "fuzz.h"

#include <stdio.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    FILE *null = fopen("/dev/null", "w");
    CHECK(null);
    config__set_error_stream(null);
    return 0;
}

/* Writes every value of c as config-file lines into a malloc'd string. */
static char *serialize(const config_t *c, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap), v[8192];
    CHECK(s);
    for (size_t i = 0; i < config_num_options(); i++) {
        config_option_info_t o;
        config_option_info(i, &o);
        if (!strcmp(o.name, "config"))
            continue;
        for (size_t k = 0; config_option_value(c, i, k, v, sizeof(v)); k++) {
            size_t need = strlen(o.name) + strlen(v) + 8;
            if (n + need > cap) {
                cap = (n + need) * 2;
                s = realloc(s, cap);
                CHECK(s);
            }
            n += (size_t)snprintf(s + n, cap - n, "%s = %s\n", o.name, v);
        }
    }
    *len = n;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    config_t c;
    int r = config__parse_text(&c, "fuzz.conf", (const char *)data, size);
    CHECK(r == 0 || r == -1);
    if (r == 0) {
        fuzz_check_config(&c);
        config_change_t ch[1];
        CHECK(config_diff(&c, &c, ch, 1) == 0);
        size_t len;
        char *text = serialize(&c, &len);
        config_t again;
        int r2 = config__parse_text(&again, "again.conf", text, len);
        CHECK(r2 == 0);
        again.workers = c.workers; /* "one per CPU" is not written back */
        CHECK(config_diff(&c, &again, ch, 1) == 0);
        config_dispose(&again);
        free(text);
    }
    config_dispose(&c);
    return 0;
}
