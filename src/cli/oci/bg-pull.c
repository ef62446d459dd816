/* bg-pull.c: `banger image pull`: the blobs fetched (bg-pull-fetch.c),
 * then the image made from them by the one OCI importer, then the blobs
 * it uses recorded, so `image rm` knows which it may free. */
#include "bg-pull.h"

#include "bg-oci.h"

BgOciPullResult *
bg_oci_pull (const BgOciPullOptions *o,
             BgProgress             *progress,
             GError                **error)
{
  g_autoptr(BgOciPullResult) result = bg_oci_pull_fetch (o, progress, error);

  if (result == NULL)
    return NULL;
  if (result->up_to_date)
    return g_steal_pointer (&result);
  if (!bg_oci_image_import (&(BgOciImport) { result->name, bg_blob_cache_dirfd (result->cache), result->manifest,
                                             result->manifest_digest, result->source, o->kernel },
                            progress, error))
    return NULL;
  /* The cache is still locked shared: no prune ran since the fetch. */
  if (!bg_blob_cache_set_root (result->cache, result->name,
                               &(BgBlobRoot) { result->source, result->manifest_digest, result->blobs }, error))
    return NULL;
  return g_steal_pointer (&result);
}
