/*
 * strmap.c - see strmap.h.
 *
 * Hashing: SipHash-1-3 under the process key (siphash.h), truncated to the
 * 32 bits a slot keeps. Keys are topics and event ids that anonymous
 * clients choose, and with linear probing an unkeyed hash is a
 * denial-of-service: 60,000 topics built to collide under the FNV-1a we
 * used before took 9 s to insert (every insert walks the whole run), against
 * 0.03 s for ordinary ones. tests/unit/strmap_test.c builds such a family
 * and counts the probes under both hashes.
 *
 * Why 32 bits in the slot, not the full 64: the slot stays 24 bytes (the map
 * sits on the idle-subscriber path); 32 bits index up to 4 G slots and make
 * a false hash match, which only costs one memcmp, a 1-in-4-billion event.
 *
 * Build with STRMAP_COUNT_PROBES defined (the unit test does) and every
 * slot examined by a lookup or insert is counted in strmap__probes, so
 * tests can assert on work done rather than on seconds.
 */
#include "strmap.h"

#include "siphash.h"

#include <stdlib.h>
#include <string.h>

void strmap_init(strmap_t *m) { memset(m, 0, sizeof(*m)); }

void strmap_dispose(strmap_t *m)
{
    free(m->slots);
    strmap_init(m);
}

#ifdef STRMAP_COUNT_PROBES
static uint64_t strmap__probes; /* slots examined by find_slot, tests only */
#define COUNT_PROBE() (strmap__probes++)
#else
#define COUNT_PROBE() ((void)0)
#endif

uint32_t strmap_hash(const char *key, size_t len) { return (uint32_t)siphash_keyed(key, len); }

static size_t find_slot(const strmap_t *m, const char *key, size_t len, uint32_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const strmap_slot_t *s = &m->slots[i];
        COUNT_PROBE();
        if (!s->key || (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0))
            return i;
    }
}

void *strmap_get(const strmap_t *m, const char *key, size_t len)
{
    if (!m->count)
        return NULL;
    size_t i = find_slot(m, key, len, strmap_hash(key, len));
    return m->slots[i].key ? m->slots[i].value : NULL;
}

static int grow(strmap_t *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 8;
    strmap_slot_t *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return -1;
    strmap_t old = *m;
    m->slots = ns;
    m->cap = ncap;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].key)
            m->slots[find_slot(m, old.slots[i].key, old.slots[i].len, old.slots[i].hash)] = old.slots[i];
    free(old.slots);
    return 0;
}

/* strmap_try_put with the hash given (the unit test feeds FNV-1a through
 * it to measure what the old hash cost). */
static int put_hashed(strmap_t *m, const char *key, size_t len, uint32_t h, void *value)
{
    if ((m->count + 1) * 4 > m->cap * 3 && grow(m))
        return -1;
    size_t i = find_slot(m, key, len, h);
    if (!m->slots[i].key)
        m->count++;
    m->slots[i] = (strmap_slot_t){key, (uint32_t)len, h, value};
    return 0;
}

int strmap_try_put(strmap_t *m, const char *key, size_t len, void *value)
{
    return put_hashed(m, key, len, strmap_hash(key, len), value);
}

void *strmap_remove(strmap_t *m, const char *key, size_t len)
{
    if (!m->count)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = find_slot(m, key, len, strmap_hash(key, len));
    if (!m->slots[i].key)
        return NULL;
    void *value = m->slots[i].value;
    /* Backward-shift: pull later members of the probe run into the hole
     * when their home slot is not between the hole and where they sit. */
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        int movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = NULL;
    m->count--;
    return value;
}
