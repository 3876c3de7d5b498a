/*
 * config_fuzz.c - libFuzzer target for option parsing (config_parse). The
 * input is split on NUL bytes into argv. Properties (abort() on failure):
 *
 *  1. It answers: 0 (parsed), 1 (--help/--version printed) or -1 (a one-line
 *     error was printed); never anything else, never a crash.
 *  2. A parsed config is within its documented bounds: at least one listen
 *     address, each one splittable into host and port 0..65535; workers
 *     1..256; at least one CORS origin; limits positive.
 *  3. Everything it allocated is freed by config_dispose (LeakSanitizer).
 */
#include "fuzz.h"
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* --help writes a page and errors a line per run: send them nowhere,
     * but keep stderr itself for the fuzzer's and sanitizers' reports. */
    if (!freopen("/dev/null", "w", stdout))
        abort();
    FILE *null = fopen("/dev/null", "w");
    CHECK(null);
    config__set_error_stream(null);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *buf = malloc(size + 1);
    CHECK(buf);
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[66];
    int argc = 0;
    argv[argc++] = "courant";
    for (char *p = buf; p < buf + size && argc < 65; p += strlen(p) + 1)
        argv[argc++] = p;
    argv[argc] = NULL;

    config_t c;
    int r = config_parse(&c, argc, argv);
    CHECK(r == 0 || r == 1 || r == -1);
    if (r == 0)
        fuzz_check_config(&c);
    config_dispose(&c);
    free(buf);
    return 0;
}
