/*
 * buildinfo.c - see buildinfo.h. The only includer of the generated
 * build/version.h (found through -I build), so a version change costs one
 * compilation.
 */
#include "buildinfo.h"

#include "version.h"

const char *courant_version(void) { return COURANT_VERSION_STRING; }
