/*
 * log_test.c - unit tests for src/log.c: the JSON escaping (byte cases,
 * invalid UTF-8, cut points, a reference check with jansson on many inputs)
 * and whole log lines in both formats, read back from a pipe.
 */
#include "../../src/log.c"

#include "test.h"

#include <fcntl.h>
#include <jansson.h>

/* Escapes s and compares with want. */
static void check_escape(const char *s, size_t len, const char *want)
{
    char out[512];
    size_t used = 0;
    size_t n = log_json_escape(s, len, out, sizeof(out), &used);
    ASSERT_MEM_STR(out, n, want);
    ASSERT_UEQ(used, len);
}

#define ESC(lit, want) check_escape((lit), sizeof(lit) - 1, (want))

static void test_escape_bytes(void)
{
    ESC("plain text", "plain text");
    ESC("a\"b\\c", "a\\\"b\\\\c");
    ESC("l1\nl2\r\t", "l1\\nl2\\r\\t");
    ESC("\x01\x1f\x7f", "\\u0001\\u001f\\u007f");
    ESC("nul\0byte", "nul\\u0000byte");
    ESC("", "");
    ESC("/ and < stay", "/ and < stay");
}

static void test_escape_utf8(void)
{
    ESC("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");        /* é € 😀 kept */
    ESC("\xff", "\\ufffd");                                  /* never valid */
    ESC("\xc3", "\\ufffd");                                  /* truncated sequence */
    ESC("\xc0\xaf", "\\ufffd\\ufffd");                       /* overlong '/' */
    ESC("\xe0\x80\xaf", "\\ufffd\\ufffd\\ufffd");            /* overlong, 3 bytes */
    ESC("\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd");            /* a UTF-16 surrogate */
    ESC("\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd"); /* past U+10FFFF */
    ESC("a\x80z", "a\\ufffdz");                              /* a lone continuation byte */
}

/* The output never ends inside an escape or a UTF-8 sequence, whatever the cap. */
static void test_escape_cut(void)
{
    const char in[] = "ab\"\n\x01\xc3\xa9\xff\xf0\x9f\x98\x80z";
    char full[256], out[256];
    size_t full_len = log_json_escape(in, sizeof(in) - 1, full, sizeof(full), NULL);
    for (size_t cap = 0; cap <= full_len; cap++) {
        size_t used;
        size_t n = log_json_escape(in, sizeof(in) - 1, out, cap, &used);
        ASSERT(n <= cap);
        /* a prefix of the full output, that is itself the full escape of in[0..used) */
        ASSERT(memcmp(out, full, n) == 0);
        char again[256];
        size_t m = log_json_escape(in, used, again, sizeof(again), NULL);
        ASSERT_UEQ(m, n);
        ASSERT(memcmp(again, out, n) == 0);
    }
}

/* Wrapped in quotes, the output parses as JSON; for valid UTF-8 without
 * replacement it decodes back to the input. Checked with jansson on random
 * byte strings biased towards the interesting bytes. */
static void test_escape_parses(void)
{
    static const unsigned char pool[] = {'a',  '"',  '\\', '\n', 0,    0x1f, 0x7f, 0xc3, 0xa9, 0xe2,
                                         0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80, 0xff, 0xed, 0xa0, ' '};
    unsigned seed = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        char in[32], out[32 * 6 + 3];
        size_t len = (size_t)(iter % 32);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (char)pool[(seed >> 16) % sizeof(pool)];
        }
        out[0] = '"';
        size_t n = log_json_escape(in, len, out + 1, sizeof(out) - 3, NULL);
        out[n + 1] = '"';
        json_error_t err;
        json_t *j = json_loadb(out, n + 2, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        if (!j) {
            TEST_FAIL_AT("iteration %d: not JSON: %s: %.*s", iter, err.text, (int)(n + 2), out);
            return;
        }
        out[n + 2] = 0;
        if (!strstr(out, "\\ufffd")) { /* nothing replaced: it decodes to the input */
            ASSERT_UEQ(json_string_length(j), len);
            ASSERT(memcmp(json_string_value(j), in, len) == 0);
        }
        json_decref(j);
    }
}

/* Runs fn with stderr redirected into a pipe; returns what was written. */
static size_t capture(void (*fn)(void), char *buf, size_t cap)
{
    int fds[2];
    if (pipe(fds))
        return 0;
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    ssize_t n = read(fds[0], buf, cap - 1);
    close(fds[0]);
    buf[n < 0 ? 0 : n] = 0;
    return n < 0 ? 0 : (size_t)n;
}

static void log_some(void)
{
    log_set_thread_name("w\"7");
    log_warn("peer sent \"%s\" and %s", "x\ny\x01", "caf\xc3\xa9\xff");
    log_debug("dropped: below the level");
    log_set_thread_name("main");
}

static void log_long(void)
{
    char big[3000];
    memset(big, '"', sizeof(big) - 1); /* every byte escaped: 2x */
    big[sizeof(big) - 1] = 0;
    log_error("%s", big);
}

static void test_json_line(void)
{
    char buf[16384];
    log_set_format(LOG_FORMAT_JSON);
    size_t n = capture(log_some, buf, sizeof(buf));
    ASSERT(n > 0 && buf[n - 1] == '\n');
    ASSERT(memchr(buf, '\n', n) == buf + n - 1); /* one line: the debug one is dropped */
    json_error_t err;
    json_t *j = json_loadb(buf, n, 0, &err);
    ASSERT(j != NULL);
    if (j) {
        ASSERT_STR_EQ(json_string_value(json_object_get(j, "level")), "warn");
        ASSERT_STR_EQ(json_string_value(json_object_get(j, "thread")), "w\"7");
        ASSERT_STR_EQ(json_string_value(json_object_get(j, "msg")),
                      "peer sent \"x\ny\x01\" and caf\xc3\xa9\xef\xbf\xbd");
        const char *ts = json_string_value(json_object_get(j, "ts"));
        ASSERT(ts && strlen(ts) == 24 && ts[10] == 'T' && ts[23] == 'Z');
        ASSERT_UEQ(json_object_size(j), 4);
        json_decref(j);
    }
    n = capture(log_long, buf, sizeof(buf)); /* cut to the message cap, still one valid object */
    j = json_loadb(buf, n, 0, &err);
    ASSERT(j != NULL);
    if (j) {
        ASSERT_UEQ(strlen(json_string_value(json_object_get(j, "msg"))), LOG_MSG_MAX - 1);
        json_decref(j);
    }
    log_set_format(LOG_FORMAT_TEXT);
}

static void test_text_line(void)
{
    char buf[4096];
    size_t n = capture(log_some, buf, sizeof(buf));
    ASSERT(n > 0 && memchr(buf, '\n', n) == buf + n - 1);
    ASSERT(strstr(buf, " warn  [w\"7] peer sent \"x y \" and caf") != NULL); /* controls blanked */
}

static void test_parse_names(void)
{
    log_format_t f;
    log_level_t l;
    ASSERT(log_parse_format("json", &f) == 0 && f == LOG_FORMAT_JSON);
    ASSERT(log_parse_format("text", &f) == 0 && f == LOG_FORMAT_TEXT);
    ASSERT(log_parse_format("JSON", &f) == -1);
    ASSERT(log_parse_level("warn", &l) == 0 && l == LOG_WARN);
    ASSERT(log_parse_level("verbose", &l) == -1);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_escape_bytes);
    TEST_RUN(test_escape_utf8);
    TEST_RUN(test_escape_cut);
    TEST_RUN(test_escape_parses);
    TEST_RUN(test_json_line);
    TEST_RUN(test_text_line);
    TEST_RUN(test_parse_names);
    TEST_MAIN_END();
}
