/*
 * assets.h - the demo page's files, embedded into the binary at build time
 * by tools/embed.c from web/ (the generated table is build/assets.c).
 */
#ifndef COURANT_ASSETS_H
#define COURANT_ASSETS_H

#include <stddef.h>

typedef struct asset {
    const char *path;         /* "/index.html" */
    const char *content_type; /* from the file's extension */
    const unsigned char *data;
    size_t len;
} asset_t;

extern const asset_t assets[];
extern const size_t num_assets;

/* The asset served at `path` ("/" means "/index.html"), or NULL. */
const asset_t *assets_find(const char *path, size_t len);

#endif
