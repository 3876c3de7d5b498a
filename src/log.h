/*
 * log.h - levelled log lines on stderr, as text or as JSON.
 *
 * One line per call, written with a single write(2) so lines from several
 * threads never interleave. Two formats (--log-format):
 *
 *   text  2026-11-26T10:45:51.123Z warn  [w1] message
 *   json  {"ts":"2026-11-26T10:45:51.123Z","level":"warn","thread":"w1","msg":"message"}
 *
 * In text, control bytes in the message become spaces (a peer's bytes must
 * not forge a line). In JSON every string is escaped (RFC 8259: quote,
 * backslash, control bytes as \n, \t or \u00XX) and bytes that are not
 * valid UTF-8 become U+FFFD, so every line is one valid JSON object that a
 * collector (journald, Loki, Elasticsearch) can parse. A message is cut at
 * about 1 KiB, never in the middle of an escape or a UTF-8 sequence.
 *
 * Callers never log tokens or keys (a log line says why a token was refused,
 * never the token).
 *
 * Threads: any. The level and format are set at start-up, and may be
 * changed later by a configuration reload while other threads log (they
 * are relaxed atomics: a line is written whole in the old or the new way).
 */
#ifndef COURANT_LOG_H
#define COURANT_LOG_H

#include <stddef.h>

typedef enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;
typedef enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON } log_format_t;

/* Messages below `level` are dropped. Any thread. */
void log_set_level(log_level_t level);
log_level_t log_get_level(void);

/* Parses "debug", "info", "warn", "error"; returns 0 or -1. */
int log_parse_level(const char *s, log_level_t *out);

/* Text (the default) or JSON lines. Any thread. */
void log_set_format(log_format_t format);

/* Parses "text", "json"; returns 0 or -1. */
int log_parse_format(const char *s, log_format_t *out);

/* The format in force (the access log follows it). Any thread. */
log_format_t log_get_format(void);

/* The calling thread's name, as its log lines carry it ("main", "w0"). */
const char *log_get_thread_name(void);

/* The time now as a log line stamps it, "2026-11-26T10:45:51.123Z" (UTC),
 * NUL-terminated in out (cap >= 32). Returns its length. Any thread. */
size_t log_timestamp(char *out, size_t cap);

/* Names the calling thread in its log lines ("main", "w0", ...). */
void log_set_thread_name(const char *name);

void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...)                       \
    do {                                     \
        if (log_get_level() <= LOG_DEBUG)    \
            log_msg(LOG_DEBUG, __VA_ARGS__); \
    } while (0)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Writes in[0..len) as the inside of a JSON string (no quotes) into out,
 * at most `cap` bytes, stopping before the first character whose escape
 * would not fit whole. Invalid UTF-8 becomes \ufffd. Returns the bytes
 * written; *consumed (if not NULL) gets how many input bytes they cover.
 * Pure, any thread; also used by `courant sub --json`. */
size_t log_json_escape(const char *in, size_t len, char *out, size_t cap, size_t *consumed);

#endif
