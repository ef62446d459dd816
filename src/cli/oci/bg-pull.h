/* bg-pull.h: `banger image pull`: a reference resolved to a linux/amd64
 * image manifest, its blobs fetched into the blob cache (only those not
 * there yet), and the image made by bg_oci_image_import(). */
#pragma once

#include <gio/gio.h>

#include "bg-blob-cache.h"
#include "bg-progress.h"
#include "bg-registry-module.h"

G_BEGIN_DECLS

typedef struct {
  const char         *ref;       /* as the user wrote it */
  const char         *name;      /* NULL: made from the reference */
  const char         *kernel;    /* NULL: the default image's */
  const char * const *insecure;  /* banger.conf's [registry] insecure */
} BgOciPullOptions;

typedef struct {
  char    *name;
  char    *source;           /* the full reference: "docker.io/library/debian:bookworm" */
  char    *manifest_digest;
  guint    layers;
  guint64  size;             /* the layers' compressed bytes */
  guint    fetched;          /* blobs fetched (the rest were in the cache) */
  guint64  fetched_bytes;
  gboolean up_to_date;       /* the image was already this manifest: nothing done */
  gboolean insecure;         /* fetched over plain HTTP */
  GBytes  *manifest;         /* the image manifest (linux/amd64's, of an index) */
  char   **blobs;            /* every blob the image uses: index, manifest, config, layers */
  BgBlobCache *cache;        /* open (shared) until the image is made */
  const BgRegistryModule *api; /* the registry module; NULL until loaded */
  BgRegistry  *registry;
  BgRegistryFetch *fetch;    /* the blobs the cache lacked, still arriving; NULL: none */
} BgOciPullResult;

BgOciPullResult *bg_oci_pull_begin       (const BgOciPullOptions *options,
                                          BgProgress             *progress,
                                          GError                **error);
BgOciPullResult *bg_oci_pull_fetch       (const BgOciPullOptions *options,
                                          BgProgress             *progress,
                                          GError                **error);
BgOciPullResult *bg_oci_pull             (const BgOciPullOptions *options,
                                          BgProgress             *progress,
                                          GError                **error);
void             bg_oci_pull_result_free (BgOciPullResult        *result);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgOciPullResult, bg_oci_pull_result_free)

G_END_DECLS
