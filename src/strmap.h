/*
 * strmap.h - a hash map from byte strings to pointers.
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones, so lookups stay short however many deletions happen). The map
 * BORROWS its keys: the caller keeps each key's bytes alive and unchanged
 * until it removes the entry (in courant the key always lives inside the
 * value it maps to, so that is natural). Load factor stays under 3/4.
 *
 * Keys may be chosen by anonymous clients (topics, event ids), so they are
 * hashed with SipHash-1-3 under a secret per-process key (siphash.h): a
 * client cannot build keys that pile up in one probe run.
 *
 * Threads: none of its own; the owner serializes access.
 */
#ifndef COURANT_STRMAP_H
#define COURANT_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct strmap_slot {
    const char *key; /* borrows; NULL = empty slot */
    uint32_t len;    /* key length in bytes (keys are capped well below 4 GiB) */
    uint32_t hash;   /* strmap_hash(key): the low 32 bits of the keyed SipHash */
    void *value;     /* borrows */
} strmap_slot_t;

typedef struct strmap {
    strmap_slot_t *slots; /* owns; NULL until the first insert */
    size_t cap;           /* power of two, or 0 */
    size_t count;         /* occupied slots */
} strmap_t;

void strmap_init(strmap_t *m);
void strmap_dispose(strmap_t *m);

/* The map's hash of a key: the low 32 bits of siphash_keyed(key, len). Any
 * thread. Stable for the life of the process, unpredictable outside it. */
uint32_t strmap_hash(const char *key, size_t len);

void *strmap_get(const strmap_t *m, const char *key, size_t len);

/* Inserts or replaces. Returns 0, or -1 if memory runs out (map unchanged). */
int strmap_try_put(strmap_t *m, const char *key, size_t len, void *value) __attribute__((warn_unused_result));

/* Removes the key if present; returns its value or NULL. */
void *strmap_remove(strmap_t *m, const char *key, size_t len);

#endif
