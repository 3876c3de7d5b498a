/*
 * sse.h - the text/event-stream format: an encoder and a streaming parser.
 *
 * Encoder. An event is serialized once, when it is published, into bytes
 * that go unchanged to every subscriber:
 *
 *     id: <id>\n            only if an id is given
 *     event: <type>\n       only if a type is given
 *     retry: <ms>\n         only if retry >= 0
 *     data: <line 1>\n      one data line per line of the payload: the payload
 *     data: <line 2>\n      is split on CR, LF and CRLF, so empty lines and
 *     \n                    leading spaces survive; empty data is "data: \n"
 *
 * CR, LF and NUL are removed from `id` and `event` so that no value can end
 * its line early and inject a field (callers should refuse such values first;
 * this is the last line of defence). The encoder allocates nothing: ask
 * sse_encoded_size() for the exact size, then sse_encode() into a buffer of
 * that size.
 *
 * Parser. A push parser that follows the WHATWG HTML "event stream
 * interpretation" rules exactly: CR, LF or CRLF end a line (a CRLF split
 * across two feeds counts once); a leading UTF-8 BOM is skipped; lines
 * starting with ':' are comments; a field without ':' has an empty value; one
 * space after the ':' is stripped; `data` values are joined with LF; an `id`
 * containing NUL is ignored; `retry` is honoured only when all ASCII digits;
 * a blank line dispatches the event (not when the data buffer is empty); the
 * last event id persists across events. Unknown fields are ignored.
 * The parser works on bytes: it does not replace invalid UTF-8 with U+FFFD
 * as a browser would, so such bytes reach the callbacks unchanged.
 * Comments are not part of the spec's model; on_comment gets the text after
 * the ':' with one leading space stripped (as for field values), so what
 * sse_encode_comment() wrote reads back unchanged.
 *
 * Ownership: the parser owns its buffers (heap, grown as needed up to
 * max_bytes, kept until dispose); the pointers passed to callbacks are valid only during the call.
 * The strings in an sse_event_t are also NUL-terminated (they may contain
 * NULs of their own); a comment's text is not. Callbacks must not feed or
 * dispose the parser that calls them.
 * Threads: a parser is used by one thread at a time; the encoder is pure.
 */
#ifndef COURANT_SSE_H
#define COURANT_SSE_H

#include <stddef.h>
#include <stdint.h>

/* ---- encoder ------------------------------------------------------------- */

typedef struct sse_fields {
    const char *id; /* borrows; NULL = no id line */
    size_t id_len;
    const char *event; /* borrows; NULL = no event line */
    size_t event_len;
    const char *data; /* borrows; NULL = no data lines (a bare "\n" event) */
    size_t data_len;
    int64_t retry; /* milliseconds; < 0 = no retry line */
} sse_fields_t;

/* Exact number of bytes sse_encode() will write for `f`. */
size_t sse_encoded_size(const sse_fields_t *f);

/* Writes the event into `out` (sse_encoded_size(f) bytes); returns the count. */
size_t sse_encode(char *out, const sse_fields_t *f);

/* A comment line ": text\n" (no blank line after it: comments don't dispatch).
 * CR/LF in text are removed. Returns bytes written; `out` must hold
 * sse_comment_size(len). */
size_t sse_comment_size(size_t text_len);
size_t sse_encode_comment(char *out, const char *text, size_t text_len);

/* ---- parser -------------------------------------------------------------- */

typedef struct sse_event {
    const char *type; /* "message" when the stream gave no event field */
    size_t type_len;
    const char *data; /* data lines joined with LF, no trailing LF */
    size_t data_len;
    const char *last_id; /* the last event id at dispatch (may be empty) */
    size_t last_id_len;
} sse_event_t;

typedef struct sse_parser_callbacks {
    void (*on_event)(void *ctx, const sse_event_t *ev);          /* required */
    void (*on_retry)(void *ctx, uint64_t ms);                    /* optional */
    void (*on_comment)(void *ctx, const char *text, size_t len); /* optional */
} sse_parser_callbacks_t;

typedef struct sse_parser {
    sse_parser_callbacks_t cb;
    void *ctx;        /* borrows: passed back to the callbacks */
    size_t max_bytes; /* cap on a line and on an event's data */
    /* private state below, see sse.c */
    char *_line; /* owns: the current incomplete line */
    size_t _line_len, _line_cap;
    char *_data; /* owns: the data buffer */
    size_t _data_len, _data_cap;
    char *_type; /* owns: the event type buffer */
    size_t _type_len, _type_cap;
    char *_id; /* owns: the last event id */
    size_t _id_len, _id_cap;
    int _last_was_cr; /* the previous byte was CR: a following LF is eaten */
    int _bom_state;   /* 0: at start, 1-2: inside a BOM, 3: past it */
    int _failed;      /* a feed returned -1: every later feed does too */
} sse_parser_t;

/* Prepares `p`. max_bytes bounds each internal buffer: the longest line and
 * the longest data of one event, in bytes (0 means 16 MiB; values above
 * SIZE_MAX / 4 are lowered to it). */
void sse_parser_init(sse_parser_t *p, const sse_parser_callbacks_t *cb, void *ctx, size_t max_bytes);

/* Feeds bytes; calls the callbacks for every complete event/comment/retry,
 * in stream order (a retry is reported when its line ends, not at dispatch).
 * Returns 0, or -1 when a line or a buffer passes max_bytes or memory runs
 * out (the stream should then be dropped; the parser stays safe to dispose). */
int sse_parser_feed(sse_parser_t *p, const char *buf, size_t len) __attribute__((warn_unused_result));

/* Frees the parser's buffers. */
void sse_parser_dispose(sse_parser_t *p);

#endif
