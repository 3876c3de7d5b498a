/*
 * cli.c - see cli.h: the command table, argument parsing, helpers.
 *
 * Arguments are "--name VALUE", "--name=VALUE" or "--flag", checked against
 * the command's table; anything else is a usage error (exit 2) naming the
 * bad argument. Values are borrowed from argv, nothing is copied.
 */
#include "cli.h"

#include "buildinfo.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_command_t *const commands[] = {&cli_token_command, &cli_pub_command, &cli_sub_command};

#define NUM_COMMANDS (sizeof(commands) / sizeof(commands[0]))

volatile sig_atomic_t cli_interrupted;

const cli_command_t *cli_find(const char *name)
{
    for (size_t i = 0; i < NUM_COMMANDS; i++)
        if (!strcmp(commands[i]->name, name))
            return commands[i];
    return NULL;
}

size_t cli_num_commands(void) { return NUM_COMMANDS; }

const cli_command_t *cli_command(size_t i) { return commands[i]; }

static void print_help(const cli_command_t *cmd)
{
    printf("courant %s - %s (courant %s)\n\nusage: %s\n\n", cmd->name, cmd->summary, courant_version(),
           cmd->usage);
    if (cmd->description)
        printf("%s\n\n", cmd->description);
    for (size_t i = 0; i < cmd->num_opts; i++) {
        const cli_opt_t *o = &cmd->opts[i];
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        printf("  %-24s %s%s\n", left, o->help, o->repeatable ? " (repeatable)" : "");
    }
    printf("  %-24s %s\n", "--help", "show this help");
}

static const cli_opt_t *find_opt(const cli_command_t *cmd, const char *name, size_t len)
{
    for (size_t i = 0; i < cmd->num_opts; i++)
        if (strlen(cmd->opts[i].name) == len && !memcmp(cmd->opts[i].name, name, len))
            return &cmd->opts[i];
    return NULL;
}

/* Fills a from argv. Returns 0, 1 (--help printed) or 2 (usage error printed). */
static int parse_args(const cli_command_t *cmd, int argc, char **argv, cli_args_t *a)
{
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            print_help(cmd);
            return 1;
        }
        if (strncmp(s, "--", 2) != 0) {
            cli_error(a, "unexpected argument \"%s\" (try courant %s --help)", s, cmd->name);
            return 2;
        }
        const char *name = s + 2, *eq = strchr(name, '=');
        const cli_opt_t *o = find_opt(cmd, name, eq ? (size_t)(eq - name) : strlen(name));
        if (!o) {
            cli_error(a, "unknown option \"%s\" (try courant %s --help)", s, cmd->name);
            return 2;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (o->arg && !v) {
            if (i + 1 >= argc) {
                cli_error(a, "--%s wants a value (%s)", o->name, o->arg);
                return 2;
            }
            v = argv[++i];
        } else if (!o->arg && v) {
            cli_error(a, "--%s takes no value", o->name);
            return 2;
        }
        if (!o->repeatable && cli_get(a, o->name)) {
            cli_error(a, "--%s may be given once", o->name);
            return 2;
        }
        a->given[a->num_given++] = (cli_given_t){.opt = o, .value = v};
    }
    return 0;
}

int cli_main(const cli_command_t *cmd, int argc, char **argv)
{
    cli_args_t a = {.cmd = cmd, .given = calloc((size_t)argc + 1, sizeof(cli_given_t))};
    if (!a.given) {
        fprintf(stderr, "courant %s: out of memory\n", cmd->name);
        return 1;
    }
    int r = parse_args(cmd, argc, argv, &a);
    if (r == 0)
        r = cmd->run(&a);
    else if (r == 1)
        r = 0;
    free(a.given);
    return r;
}

const char *cli_get(const cli_args_t *a, const char *name)
{
    for (int i = a->num_given - 1; i >= 0; i--)
        if (!strcmp(a->given[i].opt->name, name))
            return a->given[i].value ? a->given[i].value : "";
    return NULL;
}

size_t cli_get_all(const cli_args_t *a, const char *name, const char **out, size_t cap)
{
    size_t n = 0;
    for (int i = 0; i < a->num_given; i++) {
        if (strcmp(a->given[i].opt->name, name))
            continue;
        if (n < cap)
            out[n] = a->given[i].value;
        n++;
    }
    return n;
}

int cli_flag(const cli_args_t *a, const char *name) { return cli_get(a, name) != NULL; }

void cli_error(const cli_args_t *a, const char *fmt, ...)
{
    fprintf(stderr, "courant %s: ", a->cmd->name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_parse_duration(const char *s, int64_t *seconds)
{
    if (*s < '0' || *s > '9') /* no sign, no leading space (strtoll would take them) */
        return -1;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno)
        return -1;
    long long unit = 1;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        unit = 60, end++;
    else if (*end == 'h')
        unit = 3600, end++;
    else if (*end == 'd')
        unit = 86400, end++;
    if (*end || n > INT64_MAX / unit / 2) /* /2: room to add it to the current time */
        return -1;
    *seconds = n * unit;
    return 0;
}

char *cli_read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int err = ferror(f);
    if (f != stdin)
        fclose(f);
    if (!buf || err || n > max) {
        free(buf);
        errno = !buf ? ENOMEM : err ? EIO : EFBIG;
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static void on_signal(int sig)
{
    (void)sig;
    cli_interrupted = 1;
}

void cli_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: blocking calls return EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
