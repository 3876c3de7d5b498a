/*
 * id.c - see id.h.
 */
#include "id.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t id_last_ms; /* guarded by id_lock */
static uint32_t id_counter; /* guarded by id_lock: 12 bits used */

static uint64_t random64(void)
{
    /* A per-thread xorshift seeded once from the kernel: ids need
     * uniqueness, not secrecy, and a syscall per id would cost more. */
    static __thread uint64_t state;
    while (state == 0) {
        if (getrandom(&state, sizeof(state), 0) != sizeof(state))
            state = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&state;
    }
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

void id_new_uuid7(char *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    pthread_mutex_lock(&id_lock);
    if (ms <= id_last_ms) {
        /* Same millisecond (or the clock stepped back): count on, and carry
         * into the timestamp when the 12-bit counter is spent. */
        ms = id_last_ms;
        if (++id_counter > 0xfff) {
            ms++;
            id_counter = 0;
        }
    } else {
        id_counter = 0;
    }
    id_last_ms = ms;
    uint32_t counter = id_counter;
    pthread_mutex_unlock(&id_lock);

    uint64_t r = random64();
    uint8_t b[16];
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70 | (counter >> 8));
    b[7] = (uint8_t)counter;
    b[8] = (uint8_t)(0x80 | ((r >> 56) & 0x3f));
    for (int i = 9; i < 16; i++)
        b[i] = (uint8_t)(r >> (8 * (15 - i)));
    snprintf(out, ID_UUID_URN_LEN + 1,
             "urn:uuid:%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}
