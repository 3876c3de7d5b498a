/*
 * buildinfo.h - what this binary is: its version.
 *
 * The version is fixed at build time by scripts/version.sh (git describe, or
 * the VERSION file in a release tarball) into the generated build/version.h,
 * which only src/buildinfo.c includes: a new commit recompiles one file and
 * relinks, nothing else. The function keeps the name courant_version() (not
 * buildinfo_version) because it is the program's version, shown by
 * --version, the start-up log line, the CLI's User-Agent and /metrics'
 * courant_build_info.
 */
#ifndef COURANT_BUILDINFO_H
#define COURANT_BUILDINFO_H

/* The version string, e.g. "0.1.0", "0.1.0-3-gabc1234-dirty". Static storage;
 * any thread. */
const char *courant_version(void);

#endif
