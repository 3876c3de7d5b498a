/*
 * fuzz.h - what every libFuzzer target here shares: the entry point's
 * prototype and CHECK, which abort()s on a violated property so that a
 * finding is a real bug, not just a crash the sanitizers happened to see.
 */
#ifndef COURANT_FUZZ_H
#define COURANT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            abort();                                                           \
    } while (0)

#endif
