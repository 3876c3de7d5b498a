/*
 * config_test.c - unit tests for src/config.c: the configuration file
 * (syntax, lists, errors naming FILE:LINE), precedence between the file, the
 * environment and argv, config_diff, and the table's introspection.
 */
#include "../../src/config.c"
#include "store.h" /* the values --sync maps to */

#include "test.h"

/* Errors go to a temporary file, read back with last_error(). */
static FILE *errf;
static char errbuf[4096];

static const char *last_error(void)
{
    fflush(errf);
    rewind(errf);
    size_t got = fread(errbuf, 1, sizeof(errbuf) - 1, errf);
    errbuf[got] = 0;
    rewind(errf);
    if (ftruncate(fileno(errf), 0)) /* the next error starts an empty file */
        errbuf[0] = '?';
    return errbuf;
}

static int parse_text(config_t *c, const char *text)
{
    last_error();
    return config__parse_text(c, "t.conf", text, strlen(text));
}

static void test_file_syntax(void)
{
    config_t c;
    const char *text = "\xef\xbb\xbf# a comment\n"
                       "\n"
                       "   # indented comment\n"
                       "history = 5000\r\n"
                       "listen=127.0.0.1:9000\n"
                       "listen =  [::1]:9000   \n"
                       "\tdemo = true\n"
                       "log-format = json\n"
                       "publisher-jwt-key = se#cret = with spaces\n"
                       "sync = normal\n"
                       "reuse-port = false";
    ASSERT_EQ(parse_text(&c, text), 0);
    ASSERT_STR_EQ(last_error(), "");
    ASSERT_EQ(c.history, 5000);
    ASSERT_EQ(c.num_listen, 2);
    ASSERT_STR_EQ(c.listen[0], "127.0.0.1:9000");
    ASSERT_STR_EQ(c.listen[1], "[::1]:9000");
    ASSERT_EQ(c.listen_is_default, 0);
    ASSERT_EQ(c.demo, 1);
    ASSERT_EQ(c.log_format, LOG_FORMAT_JSON);
    ASSERT_STR_EQ(c.publisher_jwt_key, "se#cret = with spaces"); /* '#' and '=' in a value are the value */
    ASSERT_EQ(c.sync, STORE_SYNC_NORMAL);
    ASSERT_EQ(c.reuse_port, 0);
    ASSERT_EQ(c.num_cors_origins, 1); /* the default "*" */
    config_dispose(&c);

    ASSERT_EQ(parse_text(&c, ""), 0); /* an empty file: the defaults */
    ASSERT_EQ(c.listen_is_default, 1);
    ASSERT_EQ(c.num_listen, 2);
    ASSERT_EQ(c.history, 1000);
    config_dispose(&c);
}

/* Each bad file is refused with one line naming the file and the line. */
static void test_file_errors(void)
{
    static const struct {
        const char *text, *error;
    } cases[] = {
        {"history = 5\nfoo = 1\n", "courant: t.conf:2: unknown option foo\n"},
        {"\n\nhistory = x\n",
         "courant: t.conf:3: history wants a whole number from 0 to 10000000, not \"x\"\n"},
        {"demo = maybe\n",
         "courant: t.conf:1: demo is a flag; \"maybe\" is not true/false (or 1/0, yes/no, on/off)\n"},
        {"just a line\n", "courant: t.conf:1: expected name = value\n"},
        {"--listen = 1.2.3.4:5\n", "courant: t.conf:1: unknown option --listen\n"},
        {"config = other.conf\n",
         "courant: t.conf:1: config cannot be set inside a configuration file: config\n"},
        {"store =\n", "courant: t.conf:1: store wants a value\n"},
        {"log-level = loud\n",
         "courant: t.conf:1: log-level wants debug, info, warn or error, not \"loud\"\n"},
        {"listen = nope\n",
         "courant: --listen wants ADDR:PORT (e.g. 127.0.0.1:8000, [::1]:8000), not \"nope\"\n"},
        {"x\x01y = 1\n", "courant: t.conf:1: control character in the line\n"},
        {"store = a\rb\n", "courant: t.conf:1: control character in the line\n"},
        {"x\x7fy = 1\n", "courant: t.conf:1: unknown option x?y\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        config_t c;
        ASSERT_EQ(parse_text(&c, cases[i].text), -1);
        ASSERT_STR_EQ(last_error(), cases[i].error);
        config_dispose(&c);
    }
    config_t c;
    const char nul[] = "history = 5\nde\0mo = 1\n";
    last_error();
    ASSERT_EQ(config__parse_text(&c, "t.conf", nul, sizeof(nul) - 1), -1);
    ASSERT_STR_EQ(last_error(), "courant: t.conf:2: contains a NUL byte\n");
    config_dispose(&c);
    char *many = malloc(20 * 40);
    size_t k = 0;
    for (int i = 0; i < 20; i++) /* more listen lines than CONFIG_MAX_LISTEN */
        k += (size_t)sprintf(many + k, "listen = 127.0.0.1:%d\n", 9000 + i);
    ASSERT_EQ(parse_text(&c, many), -1);
    ASSERT_STR_EQ(last_error(), "courant: t.conf:9: listen may be given at most 8 times\n");
    config_dispose(&c);
    free(many);
}

/* Writes text to a temporary file; returns its path (static buffer). */
static const char *temp_file(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/courant-config-test.XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        return "/nonexistent";
    close(fd);
    return path;
}

/* argv > env > file > defaults, lists replaced as a whole per layer. */
static void test_precedence(void)
{
    const char *path = temp_file("history = 10\n"
                                 "heartbeat = 11\n"
                                 "retry = 12\n"
                                 "listen = 127.0.0.1:1001\n"
                                 "listen = 127.0.0.1:1002\n"
                                 "cors-origin = https://file.example\n");
    setenv("COURANT_CONFIG", path, 1);
    setenv("COURANT_HEARTBEAT", "21", 1);
    setenv("COURANT_RETRY", "22", 1);
    setenv("COURANT_CORS_ORIGIN", "https://a.example,https://b.example", 1);
    char *argv[] = {"courant", "--retry", "32", "--listen", "127.0.0.1:3001", NULL};
    config_t c;
    ASSERT_EQ(config_parse(&c, 5, argv), 0);
    ASSERT_STR_EQ(c.config_file, path);
    ASSERT_EQ(c.history, 10);     /* file only */
    ASSERT_EQ(c.heartbeat_s, 21); /* env over file */
    ASSERT_EQ(c.retry_ms, 32);    /* argv over env */
    ASSERT_EQ(c.num_listen, 1);   /* argv's list replaced the file's */
    ASSERT_STR_EQ(c.listen[0], "127.0.0.1:3001");
    ASSERT_EQ(c.num_cors_origins, 2); /* env's list replaced the file's */
    ASSERT_STR_EQ(c.cors_origins[1], "https://b.example");
    ASSERT(c.workers >= 1);
    config_dispose(&c);

    /* --config on the command line wins over COURANT_CONFIG */
    const char *other = temp_file("history = 77\n");
    char other_path[64];
    snprintf(other_path, sizeof(other_path), "%s", other);
    char *argv2[] = {"courant", "--config", other_path, NULL};
    ASSERT_EQ(config_parse(&c, 3, argv2), 0);
    ASSERT_EQ(c.history, 77);
    ASSERT_EQ(c.num_listen, 2); /* no list anywhere: the defaults */
    ASSERT_EQ(c.listen_is_default, 1);
    config_dispose(&c);
    unlink(other_path);

    /* an error in the file names it; --help still works with a bad file */
    const char *bad = temp_file("\nbogus = 1\n");
    char bad_path[64], want[160];
    snprintf(bad_path, sizeof(bad_path), "%s", bad);
    setenv("COURANT_CONFIG", bad_path, 1);
    last_error();
    char *argv3[] = {"courant", NULL};
    ASSERT_EQ(config_parse(&c, 1, argv3), -1);
    snprintf(want, sizeof(want), "courant: %s:2: unknown option bogus\n", bad_path);
    ASSERT_STR_EQ(last_error(), want);
    config_dispose(&c);
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    char *argv4[] = {"courant", "--version", NULL};
    int r = config_parse(&c, 2, argv4);
    fclose(stdout);
    stdout = saved;
    ASSERT_EQ(r, 1);
    config_dispose(&c);

    /* env errors name the variable */
    unsetenv("COURANT_CONFIG");
    setenv("COURANT_RETRY", "soon", 1);
    ASSERT_EQ(config_parse(&c, 1, argv3), -1);
    ASSERT_STR_EQ(last_error(),
                  "courant: COURANT_RETRY wants a whole number from -1 to 86400000, not \"soon\"\n");
    config_dispose(&c);
    char *argv5[] = {"courant", "--config", "/nonexistent/x.conf", NULL};
    unsetenv("COURANT_RETRY");
    ASSERT_EQ(config_parse(&c, 3, argv5), -1);
    ASSERT_STR_EQ(
        last_error(),
        "courant: cannot read the configuration file /nonexistent/x.conf: No such file or directory\n");
    config_dispose(&c);

    unlink(path);
    unlink(bad_path);
    unsetenv("COURANT_HEARTBEAT");
    unsetenv("COURANT_CORS_ORIGIN");
}

static void test_diff(void)
{
    config_t a, b;
    config_change_t ch[8];
    ASSERT_EQ(parse_text(&a, "history = 5\nlog-level = warn\n"), 0);
    ASSERT_EQ(parse_text(&b, "history = 5\nlog-level = warn\n"), 0);
    ASSERT_UEQ(config_diff(&a, &b, ch, 8), 0);
    config_dispose(&b);

    ASSERT_EQ(parse_text(&b, "history = 6\nlog-level = debug\ncors-origin = https://x.example\n"
                             "publisher-jwt-key = k\nlisten = 127.0.0.1:1\n"),
              0);
    size_t n = config_diff(&a, &b, ch, 8);
    ASSERT_UEQ(n, 5);
    const char *want[] = {"listen", "history", "cors-origin", "publisher-jwt-key", "log-level"};
    const int restart[] = {1, 1, 0, 0, 0};
    for (size_t i = 0; i < n && i < 5; i++) {
        ASSERT_STR_EQ(ch[i].name, want[i]);
        ASSERT_EQ(ch[i].restart, restart[i]);
    }
    ASSERT_UEQ(config_diff(&a, &b, ch, 2), 5); /* the count even when cap is smaller */
    config_dispose(&a);
    config_dispose(&b);

    /* lists compare element by element */
    ASSERT_EQ(parse_text(&a, "cors-origin = https://a\ncors-origin = https://b\n"), 0);
    ASSERT_EQ(parse_text(&b, "cors-origin = https://a\ncors-origin = https://c\n"), 0);
    ASSERT_UEQ(config_diff(&a, &b, ch, 8), 1);
    ASSERT_STR_EQ(ch[0].name, "cors-origin");
    config_dispose(&a);
    config_dispose(&b);
}

static void test_restart_flags(void)
{
    /* the brief's split: these cannot change live, these can */
    const char *never[] = {"listen", "workers", "store", "redis"};
    const char *live[] = {"publisher-jwt-key", "subscriber-jwt-key-file", "cors-origin",
                          "publish-origin",    "max-event-bytes",         "log-level",
                          "heartbeat"};
    for (size_t i = 0; i < config_num_options(); i++) {
        config_option_info_t o;
        config_option_info(i, &o);
        for (size_t k = 0; k < 4; k++)
            if (!strcmp(o.name, never[k]))
                ASSERT_EQ(o.restart, 1);
        for (size_t k = 0; k < 7; k++)
            if (!strcmp(o.name, live[k]))
                ASSERT_EQ(o.restart, 0);
    }
}

/* Every default the example file shows parses back to the same config. */
static void test_values_round_trip(void)
{
    config_t d, c;
    config_defaults(&d);
    char text[16384];
    size_t k = 0;
    for (size_t i = 0; i < config_num_options(); i++) {
        char v[256];
        config_option_info_t o;
        config_option_info(i, &o);
        for (size_t j = 0; config_option_value(&d, i, j, v, sizeof(v)); j++)
            k += (size_t)snprintf(text + k, sizeof(text) - k, "%s = %s\n", o.name, v);
    }
    ASSERT_EQ(parse_text(&c, text), 0);
    char v[64];
    size_t workers = 0;
    for (size_t i = 0; i < config_num_options(); i++) {
        config_option_info_t o;
        config_option_info(i, &o);
        if (!strcmp(o.name, "workers"))
            workers = i;
    }
    ASSERT_EQ(config_option_value(&d, workers, 0, v, sizeof(v)), 0); /* 0 = one per CPU: no value */
    d.workers = c.workers;                                           /* resolved from the CPU count */
    config_change_t ch[4];
    size_t n = config_diff(&d, &c, ch, 4);
    ASSERT_UEQ(n, 0);
    if (n)
        TEST_FAIL_AT("first difference: %s", ch[0].name);
    config_dispose(&d);
    config_dispose(&c);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    errf = tmpfile();
    config__set_error_stream(errf);
    for (char **e = environ; *e; e++) /* nothing from the caller's environment */
        if (!strncmp(*e, "COURANT_", 8)) {
            char name[128];
            snprintf(name, sizeof(name), "%.*s", (int)(strchr(*e, '=') - *e), *e);
            unsetenv(name);
            e = environ - 1;
        }
    TEST_RUN(test_file_syntax);
    TEST_RUN(test_file_errors);
    TEST_RUN(test_precedence);
    TEST_RUN(test_diff);
    TEST_RUN(test_restart_flags);
    TEST_RUN(test_values_round_trip);
    fclose(errf);
    TEST_MAIN_END();
}
