/*
 * cli_test.c - unit tests for src/cli.c: the argument parser every command
 * shares (forms, repeatable options, usage errors) and durations.
 */
#include "../../src/cli.c"

#include "test.h"

static const cli_opt_t opts[] = {
    {"url", "URL", 0, "u"},
    {"topic", "T", 1, "t"},
    {"private", NULL, 0, "p"},
};

static const cli_args_t *seen; /* what run() was given, for the test to look at */
static int seen_topics;

static int run_capture(const cli_args_t *a)
{
    const char *t[4];
    seen = a;
    seen_topics = (int)cli_get_all(a, "topic", t, 4);
    if (!cli_get(a, "url") || strcmp(cli_get(a, "url"), "http://x") || seen_topics != 3 ||
        strcmp(t[0], "a") || strcmp(t[1], "b=c") || strcmp(t[2], "--d") || !cli_flag(a, "private"))
        return 42;
    return 7;
}

static const cli_command_t cmd = {
    .name = "test", .summary = "s", .usage = "u", .opts = opts, .num_opts = 3, .run = run_capture};

static int call(int argc, char **argv)
{
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w");
    int r = cli_main(&cmd, argc, argv);
    fclose(stderr);
    stderr = saved;
    return r;
}

static void test_args(void)
{
    char *ok[] = {"test",        "--url",     "http://x", "--topic", "a",
                  "--topic=b=c", "--private", "--topic",  "--d",     NULL};
    ASSERT_EQ(call(9, ok), 7); /* run's status is the exit status */
    char *unknown[] = {"test", "--nope", NULL};
    ASSERT_EQ(call(2, unknown), 2);
    char *positional[] = {"test", "word", NULL};
    ASSERT_EQ(call(2, positional), 2);
    char *missing[] = {"test", "--url", NULL};
    ASSERT_EQ(call(2, missing), 2);
    char *twice[] = {"test", "--url", "a", "--url", "b", NULL};
    ASSERT_EQ(call(5, twice), 2); /* not repeatable */
    char *flagval[] = {"test", "--private=yes", NULL};
    ASSERT_EQ(call(2, flagval), 2);
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    char *help[] = {"test", "--url", "x", "--help", NULL};
    int r = call(4, help);
    fclose(stdout);
    stdout = saved;
    ASSERT_EQ(r, 0);
}

static void test_duration(void)
{
    int64_t s;
    ASSERT(cli_parse_duration("90", &s) == 0 && s == 90);
    ASSERT(cli_parse_duration("90s", &s) == 0 && s == 90);
    ASSERT(cli_parse_duration("15m", &s) == 0 && s == 900);
    ASSERT(cli_parse_duration("1h", &s) == 0 && s == 3600);
    ASSERT(cli_parse_duration("7d", &s) == 0 && s == 604800);
    ASSERT(cli_parse_duration("0", &s) == 0 && s == 0);
    static const char *const bad[] = {
        "", "h", "-1", "+5", " 5", "\t5", "5x", "5hh", "1.5h", "99999999999999999999", "9999999999999999d"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cli_parse_duration(bad[i], &s) == 0)
            TEST_FAIL_AT("accepted \"%s\"", bad[i]);
}

static void test_commands(void)
{
    ASSERT(cli_find("token") == &cli_token_command);
    ASSERT(cli_find("pub") == &cli_pub_command);
    ASSERT(cli_find("sub") == &cli_sub_command);
    ASSERT(cli_find("serve") == NULL);
    ASSERT_UEQ(cli_num_commands(), 3);
    for (size_t i = 0; i < cli_num_commands(); i++) {
        const cli_command_t *c = cli_command(i);
        ASSERT(c->name && c->summary && c->usage && c->run && c->num_opts > 0);
        for (size_t k = 0; k < c->num_opts; k++) /* every option appears in the usage line */
            ASSERT(strstr(c->usage, c->opts[k].name) != NULL || !strcmp(c->opts[k].name, "timeout"));
    }
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_args);
    TEST_RUN(test_duration);
    TEST_RUN(test_commands);
    TEST_MAIN_END();
}
