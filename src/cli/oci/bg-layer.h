/* bg-layer.h: applying an image layer (a tar, gzip- or zstd-compressed or
 * not) onto a tree, as a container runtime would: whiteouts and opaque
 * directories, hard links, symlinks, modes with setuid bits, owners.
 *
 * A layer is untrusted: every entry is resolved beneath the tree's
 * directory fd with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so
 * no name, symlink or hard link planted by an earlier entry or layer
 * makes it write outside the tree; its sizes are bounded before data is
 * written; its digests are checked as it streams. Owners are applied as
 * given: run it as root of a user namespace (banger-layer-apply under
 * `unshare --map-auto --map-root-user`) so they land in the subordinate
 * range. */
#pragma once

#include <gio/gio.h>

#include "bg-oci-manifest.h"

G_BEGIN_DECLS

/* How far a compressed layer may expand: RATIO times its size, at least
 * FLOOR, never more than MAX (a gzip bomb stops here). */
#define BG_LAYER_EXPAND_RATIO  100
#define BG_LAYER_EXPAND_FLOOR  (G_GUINT64_CONSTANT (1) << 30)
#define BG_LAYER_EXPAND_MAX    (G_GUINT64_CONSTANT (64) << 30)

typedef struct {
  const char        *digest;       /* the blob's digest: checked, and names the layer in errors */
  const char        *diff_id;      /* the uncompressed tar's digest; NULL: not checked */
  guint64            size;         /* the blob's declared size, checked exactly */
  BgOciCompression   compression;
} BgLayerSpec;

typedef struct {
  guint64 entries;
  guint64 bytes;            /* uncompressed bytes read */
  guint64 devices_skipped;  /* device nodes: devtmpfs makes them at boot */
  guint64 xattrs;           /* extended attributes applied (pax SCHILY.xattr.*) */
  guint64 xattrs_skipped;   /* trusted.*, security.* but capability, system.*, on links, or unsupported here */
} BgLayerStats;

guint64  bg_layer_expand_limit  (const BgLayerSpec  *layer);
/* A tar header's numeric field (octal or base-256), and its checksum. */
gboolean bg_layer_parse_number  (const guint8       *field,
                                 gsize               len,
                                 guint64            *out);
gboolean bg_layer_check_header  (const guint8       *block);
gboolean bg_layer_apply         (int                 tree_dirfd,
                                 int                 blob_fd,
                                 const BgLayerSpec  *layer,
                                 BgLayerStats       *stats,
                                 GError            **error);

G_END_DECLS

G_BEGIN_DECLS

/* In the user's own namespace (bg-layer-spawn.c). */
char   **bg_layer_mapped_argv   (const char * const  *argv);
gboolean bg_layer_apply_mapped  (int                 tree_dirfd,
                                 int                 blob_fd,
                                 const BgLayerSpec  *layer,
                                 BgLayerStats       *stats,
                                 GError            **error);

G_END_DECLS
