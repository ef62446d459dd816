/* bg-oci.h: the one entry point that turns an OCI image (a manifest and
 * the blobs it names) into a banger image. The registry client (image
 * pull) and the offline importer (image import --oci) both end here, so
 * an image is built, checked and stored one way whatever it came from. */
#pragma once

#include <gio/gio.h>

#include "bg-progress.h"

G_BEGIN_DECLS

typedef struct {
  const char *name;             /* banger image name to create */
  int         blobs_dirfd;      /* a directory holding sha256/<hex> blob files:
                                   an OCI layout's blobs/, or banger's blob
                                   cache $XDG_CACHE_HOME/banger/blobs */
  GBytes     *manifest;         /* the image manifest's bytes (digest already checked) */
  const char *manifest_digest;  /* "sha256:…" */
  const char *source;           /* what `image show` prints: "docker.io/library/debian:bookworm", "oci-layout:/path" */
  const char *kernel;           /* NULL: the default image's kernel */
  /* NULL, or called before a blob is first opened, to wait until it is in
   * blobs_dirfd: image pull applies each layer as soon as its blob is
   * fetched, while the next ones still arrive. FALSE: the import stops. */
  gboolean  (*wait_blob) (gpointer data, const char *digest, GError **error);
  gpointer    wait_data;
} BgOciImport;

/* Reads every blob it needs from blobs_dirfd (config and layers), checks
 * each blob's digest as it reads it, and leaves nothing behind on
 * failure. */
gboolean bg_oci_image_import (const BgOciImport *import,
                              BgProgress        *progress,
                              GError           **error);

G_END_DECLS
