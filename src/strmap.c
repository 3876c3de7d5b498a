/*
 * strmap.c - see strmap.h.
 */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

void strmap_init(strmap_t *m) { memset(m, 0, sizeof(*m)); }

void strmap_dispose(strmap_t *m)
{
    free(m->slots);
    strmap_init(m);
}

/* FNV-1a: short keys, no adversary gains much since probing is bounded by
 * the load factor and keys come from authorized publishers or subscribers. */
uint32_t strmap_hash(const char *key, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 16777619u;
    }
    return h;
}

static size_t find_slot(const strmap_t *m, const char *key, size_t len, uint32_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const strmap_slot_t *s = &m->slots[i];
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

int strmap_try_put(strmap_t *m, const char *key, size_t len, void *value)
{
    if ((m->count + 1) * 4 > m->cap * 3 && grow(m))
        return -1;
    uint32_t h = strmap_hash(key, len);
    size_t i = find_slot(m, key, len, h);
    if (!m->slots[i].key)
        m->count++;
    m->slots[i] = (strmap_slot_t){key, (uint32_t)len, h, value};
    return 0;
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
