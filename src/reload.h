/*
 * reload.h - SIGHUP: re-reading the configuration (argv, COURANT_*
 * variables and the --config file, as at start) into a running server,
 * without dropping a stream.
 *
 *   main thread (SIGHUP)                                   workers
 *   --------------------                                   -------
 *   config_parse -> fresh config      (errors: keep the old one, log them)
 *   config_diff: restart-only changes are logged, kept at their old values
 *   auth_new(fresh): keys re-read from their files (a bad key: keep the old)
 *   limits_try_new(fresh): rate tables, trusted proxies
 *   swap server_t.cfg, .auth, .limits (atomic pointers)   next request reads
 *   set the log level and format; TLS: re-read the pair    the new ones
 *   wait until every worker began a new turn  <--------    (turn counter)
 *   free the old config, keys and limits
 *
 * Nothing keeps a pointer to the config, the keys or the limits across a
 * worker turn, so once each worker has started a new turn no reader of the
 * old ones is left. Streams keep what they were given when they opened
 * (their token's claims), so a reload never touches an open stream.
 *
 * Threads: main thread only.
 */
#ifndef COURANT_RELOAD_H
#define COURANT_RELOAD_H

#include "config.h"
#include "server.h"

/* The rates and trusted proxies of `cfg`. NULL after printing a one-line
 * reason to stderr (a bad --trusted-proxy, out of memory). `keys`: room for
 * that many clients in each rate table. */
server_limits_t *limits_try_new(const config_t *cfg, size_t keys) __attribute__((warn_unused_result));
void limits_free(server_limits_t *l);

/* A function main gives to run after the swap (e.g. re-reading the TLS
 * certificate). */
typedef void (*reload_hook_fn)(void *ctx);

/* Re-reads the configuration and applies what can change live. `current`
 * is the running config (main keeps ownership of the one it started with;
 * configs made by earlier reloads are freed here once retired). Returns 0
 * when something was applied, 1 when nothing changed, -1 when the new
 * configuration was refused (the running one is kept; the reasons are
 * logged). */
int reload_apply(server_t *srv, int argc, char **argv, const config_t *started, reload_hook_fn hook,
                 void *hook_ctx);

/* At exit: frees the config the last reload installed, if any. */
void reload_dispose(server_t *srv, const config_t *started);

#endif
