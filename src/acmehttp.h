/*
 * acmehttp.h - what a --listen-http (cleartext) listener answers when
 * courant serves HTTPS: ACME HTTP-01 challenges, and a redirect to https
 * for everything else.
 *
 *   GET|HEAD /.well-known/acme-challenge/<token>
 *        a challenge being validated (acmechal.h)  -> 200 text/plain: the key authorization
 *        anything else                             -> 404
 *   any other request                              -> 308 Location: https://<host>[:port]<target>
 *                                                     (400 without a usable Host)
 *
 * The router hands a request here, at the head, when the connection is
 * cleartext and the server speaks TLS: nothing else of the hub is reachable
 * without TLS, so a token or an event never crosses the network in clear.
 * The redirect keeps the method (308), so a publisher that was pointed at
 * http:// gets to the right place with its body; the port is the first
 * HTTPS listener's, left out when it is 443.
 *
 * Threads: the request's worker.
 */
#ifndef COURANT_ACMEHTTP_H
#define COURANT_ACMEHTTP_H

#include "req.h"

#define ACMEHTTP_PREFIX "/.well-known/acme-challenge/"

/* Answers `in` on a cleartext listener of an HTTPS server (see above). */
void acmehttp_handle(req_t *r, const request_t *in);

/* Not part of the contract; visible for the tests and the fuzz target.
 * Writes "https://HOST[:PORT]PATH[?QUERY]" for a Host header value (a DNS
 * name, an IPv4 address or a [v6] literal, with an optional port that is
 * dropped) into out[cap]. Returns its length, or -1 for a Host value that
 * is not one of those or a result that does not fit. Pure. */
long acmehttp__redirect(const char *host, size_t host_len, int https_port, const char *path, size_t path_len,
                        const char *query, size_t query_len, char *out, size_t cap);

#endif
