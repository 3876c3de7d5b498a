/*
 * log.h - levelled log lines on stderr.
 *
 * One line per call, written with a single write(2) so lines from several
 * threads never interleave:  2026-11-26T10:45:51.123Z warn [w1] message
 * Threads: any. The level is set once at start-up, before threads exist.
 */
#ifndef COURANT_LOG_H
#define COURANT_LOG_H

typedef enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

/* Messages below `level` are dropped. Call before starting threads. */
void log_set_level(log_level_t level);
log_level_t log_get_level(void);

/* Parses "debug", "info", "warn", "error"; returns 0 or -1. */
int log_parse_level(const char *s, log_level_t *out);

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

#endif
