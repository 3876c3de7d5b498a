/*
 * confdoc.h - documents generated from the option tables: the man page
 * courant(1) and the example configuration file.
 *
 * Both are written from config.c's option table (names, metavariables,
 * help, defaults) and the CLI's command tables (cli.h), so they cannot
 * drift from --help: `courant --help-man` and `courant --help-config` print
 * them; the Makefile turns them into build/courant.1 and
 * build/courant.conf.example, which `make install` and `make deb` install,
 * and tests/e2e/docs.test.sh checks that every option of --help is in both.
 *
 * Threads: main thread, before anything starts (it reads the defaults).
 */
#ifndef COURANT_CONFDOC_H
#define COURANT_CONFDOC_H

#include <stdio.h>

/* Writes the man page, in roff (man macros), to f. */
void confdoc_write_man(FILE *f);

/* Writes an example configuration file to f: a header explaining the
 * format and precedence, then every option, its help as a comment and its
 * default as a commented-out line ("#history = 1000"). */
void confdoc_write_example(FILE *f);

#endif
