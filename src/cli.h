/*
 * cli.h - the development client built into the courant binary:
 *
 *   courant token ...   print a JWT for publishers/subscribers (cli_token.c)
 *   courant pub ...     publish one event, print its id (cli_pub.c)
 *   courant sub ...     subscribe and print events, resuming across
 *                       disconnects (cli_sub.c)
 *
 * main() dispatches on argv[1] before parsing server options, so the
 * commands never start, or link into, the server's machinery: they use
 * jwt.c (HS signing, base64url), sse.c (the stream parser), http1.c (the
 * chunked decoder, Content-Length) and httpc.c (a blocking HTTP client).
 *
 * This header is the contract of the CLI as one concept: the command table,
 * the argument parser all commands share, and small helpers. Each command
 * lives in its own file and exports only its cli_command_t, declared here.
 *
 * Each command describes its options in a table (cli_opt_t), which drives
 * its argument parsing, `courant CMD --help` and the COMMANDS section of the
 * man page (confdoc.c).
 *
 * Exit status of every command: 0 success, 1 failure (the hub refused,
 * could not be reached...), 2 bad usage. Errors are one line on stderr,
 * "courant CMD: ...". Threads: the main thread only.
 */
#ifndef COURANT_CLI_H
#define COURANT_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cli_opt {
    const char *name; /* without "--" */
    const char *arg;  /* metavariable; NULL for a flag */
    int repeatable;   /* may be given several times */
    const char *help;
} cli_opt_t;

typedef struct cli_given {
    const cli_opt_t *opt; /* borrows: from the command's table */
    const char *value;    /* borrows: from argv; NULL for a flag */
} cli_given_t;

typedef struct cli_args {
    const struct cli_command *cmd; /* borrows */
    cli_given_t *given;            /* owns the array: the options in argv order */
    int num_given;
} cli_args_t;

typedef struct cli_command {
    const char *name;        /* "token" */
    const char *summary;     /* one line, for --help and the man page */
    const char *usage;       /* "courant token --key KEY ..." */
    const char *description; /* a paragraph (may be NULL) */
    const cli_opt_t *opts;   /* borrows: static table */
    size_t num_opts;
    int (*run)(const cli_args_t *a); /* returns the exit status */
} cli_command_t;

extern const cli_command_t cli_token_command; /* cli_token.c */
extern const cli_command_t cli_pub_command;   /* cli_pub.c */
extern const cli_command_t cli_sub_command;   /* cli_sub.c */

/* The command called `name`, or NULL. */
const cli_command_t *cli_find(const char *name);

/* The commands, for the man page: i < cli_num_commands(). */
size_t cli_num_commands(void);
const cli_command_t *cli_command(size_t i);

/* Runs `cmd` with argv[1..argc) as its options (argv[0] is its name):
 * parses them against its table, answers --help, then calls cmd->run.
 * Returns the exit status. */
int cli_main(const cli_command_t *cmd, int argc, char **argv);

/* The last value of option `name`, or NULL if it was not given. */
const char *cli_get(const cli_args_t *a, const char *name);

/* Every value of option `name` in order, into out[0..cap); returns how many
 * were given (may exceed cap). */
size_t cli_get_all(const cli_args_t *a, const char *name, const char **out, size_t cap);

/* Was flag `name` given? */
int cli_flag(const cli_args_t *a, const char *name);

/* "courant CMD: <message>\n" on stderr. */
void cli_error(const cli_args_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a duration: a whole number with an optional unit s, m, h or d
 * ("90", "90s", "15m", "1h", "7d"). Returns 0 and the seconds, or -1. */
int cli_parse_duration(const char *s, int64_t *seconds);

/* Reads a whole file (at most `max` bytes) into a malloc'd NUL-terminated
 * buffer, or NULL with errno set (EFBIG when too large). "-" reads stdin. */
char *cli_read_file(const char *path, size_t max, size_t *len);

/* Set by SIGINT/SIGTERM once cli_catch_signals() ran: long waits end. */
extern volatile sig_atomic_t cli_interrupted;

/* Installs handlers for SIGINT and SIGTERM that set cli_interrupted (and
 * ignores SIGPIPE). */
void cli_catch_signals(void);

#endif
