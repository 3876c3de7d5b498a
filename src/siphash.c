/*
 * siphash.c - see siphash.h.
 *
 * Written from the description in Aumasson and Bernstein, "SipHash: a fast
 * short-input PRF" (2012), section 2:
 *
 *   state     v0..v3, four 64-bit words, initialised from the key k0, k1
 *             XOR the constants "somepseudorandomlygeneratedbytes"
 *   message   cut into 8-byte little-endian words m; the last word holds
 *             the 0-7 left-over bytes and, in its top byte, len mod 256
 *   per word  v3 ^= m; c SipRounds; v0 ^= m
 *   finish    v2 ^= 0xff; d SipRounds; result v0 ^ v1 ^ v2 ^ v3
 *
 * with c = 1, d = 3 here. The unit test checks sip_hash() with c = 2,
 * d = 4 against the paper's SipHash-2-4 vectors and with c = 1, d = 3
 * against published SipHash-1-3 outputs, so the two variants share one
 * tested body.
 *
 * The process key lives in a static array written once (under
 * pthread_once, or by siphash_seed_set before threads exist) and only read
 * afterwards: pthread_once gives every later caller the happens-before edge
 * it needs to see the written key.
 */
#include "siphash.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static uint8_t process_key[SIPHASH_KEY_LEN]; /* written once, see above */
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;
static int seed_errno; /* 0 if process_key holds kernel randomness; set once under seed_once */

static inline uint64_t rotl(uint64_t x, unsigned b) { return (x << b) | (x >> (64 - b)); }

/* Bytes p[0..n), n <= 8, as a little-endian integer, whatever the host's
 * byte order (the reference reads words little-endian). */
static inline uint64_t load_le(const uint8_t *p, size_t n)
{
    uint64_t w = 0;
    for (size_t i = n; i > 0; i--)
        w = (w << 8) | p[i - 1];
    return w;
}

typedef struct sip_state {
    uint64_t v0, v1, v2, v3; /* the four state words of the paper */
} sip_state_t;

static inline void sip_round(sip_state_t *s)
{
    s->v0 += s->v1;
    s->v1 = rotl(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = rotl(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = rotl(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = rotl(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = rotl(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = rotl(s->v2, 32);
}

static inline void sip_absorb(sip_state_t *s, uint64_t m, int c_rounds)
{
    s->v3 ^= m;
    for (int i = 0; i < c_rounds; i++)
        sip_round(s);
    s->v0 ^= m;
}

/* SipHash-c-d. Static (not part of the contract) so that the unit test can
 * check the shared body against the paper's 2-4 vectors too. */
static inline uint64_t sip_hash(int c_rounds, int d_rounds, const uint8_t key[SIPHASH_KEY_LEN],
                                const void *data, size_t len)
{
    const uint64_t k0 = load_le(key, 8), k1 = load_le(key + 8, 8);
    sip_state_t s = {
        k0 ^ 0x736f6d6570736575ull, /* "somepseu" */
        k1 ^ 0x646f72616e646f6dull, /* "dorandom" */
        k0 ^ 0x6c7967656e657261ull, /* "lygenera" */
        k1 ^ 0x7465646279746573ull, /* "tedbytes" */
    };
    const uint8_t *p = data;
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m;
        memcpy(&m, p + i, 8); /* unaligned-safe; one load once optimized */
        sip_absorb(&s, le64toh(m), c_rounds);
    }
    /* The final word: the 0-7 remaining bytes, and the length's low byte on
     * top (len == 0 leaves p NULL-able: load_le reads nothing then). */
    uint64_t last = ((uint64_t)len << 56) | (len & 7 ? load_le(p + whole, len & 7) : 0);
    sip_absorb(&s, last, c_rounds);
    s.v2 ^= 0xff;
    for (int i = 0; i < d_rounds; i++)
        sip_round(&s);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

uint64_t siphash13(const uint8_t key[SIPHASH_KEY_LEN], const void *data, size_t len)
{
    return sip_hash(1, 3, key, data, len);
}

/* getrandom(2), or /dev/urandom where the syscall is missing (ENOSYS: a
 * kernel older than 3.17, or a seccomp filter). Returns 0 or an errno. */
static int fill_random(uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            break;
        }
    }
    if (got == n)
        return 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r > 0)
            got += (size_t)r;
        else if (!(r < 0 && errno == EINTR))
            break;
    }
    int err = got == n ? 0 : (errno ? errno : EIO);
    close(fd);
    return err;
}

static void seed_once_fn(void) { seed_errno = fill_random(process_key, sizeof process_key); }

int siphash_seed_init(void)
{
    pthread_once(&seed_once, seed_once_fn);
    if (seed_errno) {
        errno = seed_errno;
        return -1;
    }
    return 0;
}

void siphash_seed_set(const uint8_t key[SIPHASH_KEY_LEN])
{
    pthread_once(&seed_once, seed_once_fn); /* so a later lazy seeding cannot overwrite it */
    memcpy(process_key, key, SIPHASH_KEY_LEN);
    seed_errno = 0;
}

uint64_t siphash_keyed(const void *data, size_t len)
{
    pthread_once(&seed_once, seed_once_fn);
    if (seed_errno) {
        /* main checks siphash_seed_init() at start, so only a program that
         * skipped it can get here; a guessable key is not an option. */
        fprintf(stderr, "siphash: no randomness for the hash key: %s\n", strerror(seed_errno));
        abort();
    }
    return sip_hash(1, 3, process_key, data, len);
}
