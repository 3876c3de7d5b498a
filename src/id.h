/*
 * id.h - event ids made by the hub: "urn:uuid:" and a UUIDv7 (RFC 9562).
 *
 * The first 48 bits are the Unix time in milliseconds and the next 12 a
 * counter within that millisecond (RFC 9562 method 1), so ids made by this
 * process sort in the order they were made; the last 62 bits are random, so
 * ids from several processes or restarts do not collide.
 * Threads: any (a mutex guards the counter).
 */
#ifndef COURANT_ID_H
#define COURANT_ID_H

#define ID_UUID_URN_LEN 45 /* "urn:uuid:" + 36 */

/* Writes a NUL-terminated id into out (ID_UUID_URN_LEN + 1 bytes). */
void id_new_uuid7(char *out);

#endif
