/*
 * siphash.h - SipHash-1-3, the keyed hash for every table whose keys a client
 * chooses (topics, event ids, template match cache, rate-limit keys).
 *
 * Why keyed: an unkeyed hash (courant used 32-bit FNV-1a) lets an anonymous
 * client compute, offline, as many keys as it likes that share one bucket;
 * 60,000 such topics took 9 s to insert into a linear-probing map instead of
 * 0.03 s. With a secret 128-bit key drawn from the kernel at start, the
 * client cannot predict which keys collide, so chains stay as short as for
 * random keys whatever it sends.
 *
 * Why SipHash-1-3 and not -2-4: the -1-3 variant (one compression round per
 * 8-byte word, three finalization rounds) is what Redis's dict.c and Rust's
 * HashMap use for hash tables: about twice as fast on short keys, and no
 * practical attack against it as a hash-flooding defence is known. We need
 * flooding resistance, not a MAC.
 *
 * The process key: one, shared by all threads, drawn once with getrandom(2).
 * main calls siphash_seed_init() before starting any thread (so a failure is
 * a clean start-up error); anything that hashes before that (the unit tests,
 * the fuzz targets) seeds it lazily through pthread_once. Because the key
 * is written exactly once, under pthread_once, readers need no lock.
 * Tests that need reproducible hashes install a fixed key with
 * siphash_seed_set() before they fill any table.
 */
#ifndef COURANT_SIPHASH_H
#define COURANT_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_LEN 16

/* SipHash-1-3 of data[0..len) under `key` (16 bytes, read as two
 * little-endian 64-bit words, as in the reference). Pure; any thread. data
 * may be NULL when len is 0. */
uint64_t siphash13(const uint8_t key[SIPHASH_KEY_LEN], const void *data, size_t len);

/* Draws the process key from getrandom(2) (falling back to /dev/urandom),
 * exactly once however many times it is called, from whatever thread.
 * Returns 0, or -1 with errno set if no randomness could be had; main
 * refuses to start then. Call it before starting threads. */
int siphash_seed_init(void);

/* Tests only: installs a fixed process key, replacing the random one. Every
 * table filled before the call becomes unreadable (its entries hash
 * elsewhere now), so call it first, before any other thread runs. */
void siphash_seed_set(const uint8_t key[SIPHASH_KEY_LEN]);

/* SipHash-1-3 of data[0..len) under the process key, seeding it first if
 * nobody did (and aborting with a message if the kernel gives no
 * randomness at all: hashing client bytes with a guessable key is the bug
 * this module exists to prevent). Any thread. */
uint64_t siphash_keyed(const void *data, size_t len);

#endif
