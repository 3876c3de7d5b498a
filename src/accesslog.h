/*
 * accesslog.h - one line per request, or per event stream when it ends
 * (--access-log): who asked what, the status, the bytes, how long it took
 * and how many topics it named. Off by default.
 *
 *   text  2026-11-26T10:45:51.123Z access [w1] 127.0.0.1 "GET /events?topic=a" 200 bytes=1234 ms=5012.113 topics=1
 *   json  {"ts":"2026-11-26T10:45:51.123Z","level":"info","thread":"w1","msg":"access",
 *          "client":"127.0.0.1","method":"GET","target":"/events?topic=a","status":200,
 *          "bytes":1234,"ms":5012.113,"topics":1}
 *
 * The form follows --log-format; the text form percent-encodes control
 * bytes, '"' and '\' in the target, so a peer cannot forge or split a line,
 * and the JSON form escapes every string (log_json_escape).
 *
 * Never a token. A token travels in the Authorization header, in the
 * `authorization` query parameter, or in a cookie. Header fields and
 * cookies are never logged; the query is logged without every pair whose
 * name, percent-decoded as the hub decodes it to find the token, is
 * `authorization` (so `%61uthorization=...` goes too), and without every
 * pair whose name is not well-formed percent-encoding (the hub refuses such
 * a query, but it may still hold a token).
 *
 * What a line counts:
 *   status    the answer's status; a stream's 200; 499 when the client went
 *             away before an answer (as nginx says it)
 *   bytes     the answer's body, or the event-stream bytes queued for the
 *             client (events, comments, heartbeats: no HTTP framing)
 *   ms        from the turn that completed the request head to the answer
 *             being queued, or to the stream's end
 *   topics    `topic` parameters of the query (subscribe) or of the form
 *             (publish), counted with the same decoding
 *
 * Record lifetime: the router makes a record at the head (accesslog_rec_new)
 * when the log is on, the request (req.c) adds the status and bytes, and
 * the line is written and the record freed when the answer is queued, or
 * when the stream or the connection ends (accesslog_rec_finish).
 *
 * Output: stderr or a file opened with O_APPEND, one write(2) per line (so
 * lines of several workers never interleave). A reload (SIGHUP) re-opens the
 * file (log rotation) by dup2() onto the same descriptor number, so a worker
 * writing at that moment writes whole to the old or the new file, never to
 * a descriptor number reused by something else.
 *
 * Threads: accesslog_configure on the main thread (start, reload); the rest
 * on any thread; a record belongs to its request's worker.
 */
#ifndef COURANT_ACCESSLOG_H
#define COURANT_ACCESSLOG_H

#include "peer.h"

#include <stddef.h>
#include <stdint.h>

#define ACCESSLOG_TARGET_MAX 1024 /* bytes of path and query logged; more is cut ("...") */

typedef struct accesslog_rec {
    int64_t start_us;              /* monotonic us: the head was complete; 0 = unknown */
    uint64_t bytes;                /* body bytes, or event-stream bytes queued */
    uint16_t status;               /* 0 until answered */
    uint16_t topics;               /* topic parameters named (capped) */
    char client[PEER_ADDR_STRLEN]; /* the client's address as text */
    char method[16];               /* NUL-terminated, cut */
    uint16_t target_len;           /* bytes of target */
    char target[];                 /* path, then '?' and the cleaned query if any; not NUL-terminated */
} accesslog_rec_t;

/* Main thread: "" / NULL / "off" turns the log off; "stderr", or a path
 * (created 0640 if missing, appended to), turns it on; called again (a
 * reload), it re-opens. Returns 0; or -1 with a one-line reason in err
 * (the log keeps its previous state). */
int accesslog_configure(const char *target, char *err, size_t cap);

/* Is the log on? Any thread (an acquire load: a plain load on x86). */
int accesslog_enabled(void);

/* A record for a request whose head is complete (method, path and query as
 * sent; query without its '?'). `client` may be NULL ("-"). Returns NULL
 * when memory runs out (the request then goes unlogged). */
accesslog_rec_t *accesslog_rec_new(const char *method, size_t mlen, const char *path, size_t plen,
                                   const char *query, size_t qlen, const peer_addr_t *client,
                                   int64_t start_us);

/* Writes the record's line (if the log is on) with the duration up to
 * `now_us` (monotonic), and frees it. NULL is ignored. */
void accesslog_rec_finish(accesslog_rec_t *rec, int64_t now_us);

/* ---- pure helpers (also fuzzed) ---- */

/* Copies the pairs of query q[0..len) that may be logged into out, joined
 * by '&', at most `cap` bytes (a pair that does not fit ends the copy and
 * sets *cut, if cut is not NULL). Returns the bytes written. Drops pairs
 * whose decoded name is `authorization` and pairs whose name is malformed;
 * empty pairs vanish. Each pair kept is copied as sent. */
size_t accesslog_clean_query(const char *q, size_t len, char *out, size_t cap, int *cut);

/* Counts the pairs of a query or form whose decoded name is `name`. */
size_t accesslog_count_params(const char *q, size_t len, const char *name);

#endif
