/*
 * log.c - see log.h.
 *
 * A line is built on the stack and written in one call. The message is
 * formatted first into `msg` (LOG_MSG_MAX bytes, longer ones are cut); the
 * text format then copies it with control bytes blanked, the JSON format
 * escapes it into a line buffer sized for the worst case (every byte
 * becoming a six-byte \u00XX escape), so a JSON line is never cut inside
 * its closing "}". Cost: about 8 KiB of stack per call, on threads that
 * have the default 8 MiB.
 */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_MSG_MAX 1024 /* message bytes kept, before escaping */

/* Relaxed atomics, so that a configuration reload may change them while
 * other threads log (a plain int would be a data race); on x86 a relaxed
 * load is a plain load. */
static _Atomic int log_level = LOG_INFO;
static _Atomic int log_format = LOG_FORMAT_TEXT;
static __thread char log_thread_name[16] = "main";

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};
static const char *const log_format_names[] = {"text", "json"};

void log_set_level(log_level_t level) { atomic_store_explicit(&log_level, (int)level, memory_order_relaxed); }

log_level_t log_get_level(void)
{
    return (log_level_t)atomic_load_explicit(&log_level, memory_order_relaxed);
}

int log_parse_level(const char *s, log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, log_level_names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    }
    return -1;
}

void log_set_format(log_format_t format)
{
    atomic_store_explicit(&log_format, (int)format, memory_order_relaxed);
}

int log_parse_format(const char *s, log_format_t *out)
{
    for (int i = 0; i < 2; i++) {
        if (strcmp(s, log_format_names[i]) == 0) {
            *out = (log_format_t)i;
            return 0;
        }
    }
    return -1;
}

log_format_t log_get_format(void)
{
    return (log_format_t)atomic_load_explicit(&log_format, memory_order_relaxed);
}

const char *log_get_thread_name(void) { return log_thread_name; }

size_t log_timestamp(char *out, size_t cap)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

void log_set_thread_name(const char *name) { snprintf(log_thread_name, sizeof(log_thread_name), "%s", name); }

/* Length of the valid UTF-8 sequence at p[0..n), or 0 if there is none
 * (overlong forms, surrogates and code points past U+10FFFF are invalid). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* UTF-16 surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* past U+10FFFF */
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return len;
}

size_t log_json_escape(const char *in, size_t len, char *out, size_t cap, size_t *consumed)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0, o = 0;
    while (i < len) {
        char esc[8];
        const char *src = esc;
        size_t n, step = 1;
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            n = 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        } else if (c < 0x80) {
            src = (const char *)p + i;
            n = 1;
        } else if ((step = utf8_len(p + i, len - i)) > 0) {
            src = (const char *)p + i;
            n = step;
        } else {
            src = "\\ufffd";
            n = 6;
            step = 1;
        }
        if (o + n > cap)
            break;
        memcpy(out + o, src, n);
        o += n;
        i += step;
    }
    if (consumed)
        *consumed = i;
    return o;
}

/* Appends a NUL-terminated string to line[*n..cap), cut at cap. */
static void append(char *line, size_t *n, size_t cap, const char *s)
{
    size_t l = strlen(s);
    if (l > cap - *n)
        l = cap - *n;
    memcpy(line + *n, s, l);
    *n += l;
}

static void write_line(const char *line, size_t len)
{
    ssize_t w;
    do
        w = write(STDERR_FILENO, line, len);
    while (w < 0 && errno == EINTR);
}

void log_msg(log_level_t level, const char *fmt, ...)
{
    if (level < log_get_level())
        return;
    int saved_errno = errno;
    char msg[LOG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t mlen = m < 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;

    char ts[64]; /* room for any int the compiler imagines in a field */
    log_timestamp(ts, sizeof(ts));

    /* Worst case: every message byte a 6-byte escape, plus the frame. */
    char line[LOG_MSG_MAX * 6 + 256];
    size_t n = 0;
    if (atomic_load_explicit(&log_format, memory_order_relaxed) == LOG_FORMAT_JSON) {
        append(line, &n, sizeof(line), "{\"ts\":\"");
        append(line, &n, sizeof(line), ts);
        append(line, &n, sizeof(line), "\",\"level\":\"");
        append(line, &n, sizeof(line), log_level_names[level]);
        append(line, &n, sizeof(line), "\",\"thread\":\"");
        n += log_json_escape(log_thread_name, strlen(log_thread_name), line + n, 96, NULL);
        append(line, &n, sizeof(line), "\",\"msg\":\"");
        n += log_json_escape(msg, mlen, line + n, sizeof(line) - n - 3, NULL);
        append(line, &n, sizeof(line), "\"}\n");
    } else {
        n = (size_t)snprintf(line, sizeof(line), "%s %-5s [%s] ", ts, log_level_names[level],
                             log_thread_name);
        /* Control bytes from peers must not forge log lines. */
        for (size_t i = 0; i < mlen; i++)
            line[n++] = (unsigned char)msg[i] < 0x20 ? ' ' : msg[i];
        line[n++] = '\n';
    }
    write_line(line, n);
    errno = saved_errno;
}
