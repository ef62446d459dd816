/* bg-pull.c: `banger image pull`: the blobs fetched (bg-pull-fetch.c)
 * and, as each arrives, applied by the one OCI importer, which makes the
 * image; then the blobs it uses recorded, so `image rm` knows which it
 * may free. */
#include "bg-pull.h"

#include "bg-oci.h"

typedef struct {
  BgOciPullResult *result;
  BgProgress      *progress;
} Waiter;

/* The importer's wait for a blob: shown as a step of its own only when
 * the blob is not in yet, so the steps say where a pull waited. */
static gboolean
wait_for_blob (gpointer     data,
               const char  *digest,
               GError     **error)
{
  Waiter *w = data;

  if (w->result->fetch == NULL)
    return TRUE;
  if (!w->result->api->fetch_has (w->result->fetch, digest))
    {
      g_autofree char *step = g_strdup_printf ("waiting for blob %.19s…", digest);
      bg_progress_step (w->progress, step);
    }
  return w->result->api->fetch_wait (w->result->fetch, digest, w->progress, error);
}

BgOciPullResult *
bg_oci_pull (const BgOciPullOptions *o,
             BgProgress             *progress,
             GError                **error)
{
  g_autoptr(BgOciPullResult) result = bg_oci_pull_begin (o, progress, error);

  if (result == NULL)
    return NULL;
  if (result->up_to_date)
    return g_steal_pointer (&result);
  if (!bg_oci_image_import (&(BgOciImport) { result->name, bg_blob_cache_dirfd (result->cache), result->manifest,
                                             result->manifest_digest, result->source, o->kernel,
                                             wait_for_blob, &(Waiter) { result, progress } },
                            progress, error))
    return NULL;
  /* Every blob the image uses was waited for; the fetch is over. */
  if (result->fetch != NULL && !result->api->fetch_wait (result->fetch, NULL, progress, error))
    return NULL;
  /* The cache is still locked shared: no prune ran since the fetch. */
  if (!bg_blob_cache_set_root (result->cache, result->name,
                               &(BgBlobRoot) { result->source, result->manifest_digest, result->blobs }, error))
    return NULL;
  return g_steal_pointer (&result);
}
