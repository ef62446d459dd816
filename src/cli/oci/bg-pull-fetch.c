/* bg-pull-fetch.c: the network half of `image pull`: a reference
 * resolved and every blob of its image fetched into the cache, on
 * threads that go on while the caller applies the layers already in. An unchanged
 * reference pulled again costs one manifest request: the manifest it
 * resolves to is compared with the one the image was made from, and the
 * platform manifest, config and layers are read from the cache when they
 * are there. */
#include "bg-pull.h"

#include <string.h>

#include "bg-blob-cache.h"
#include "bg-config.h"
#include "bg-error.h"
#include "bg-image-ref.h"
#include "bg-names.h"
#include "bg-oci-manifest.h"
#include "bg-paths.h"
#include "bg-registry-module.h"

void
bg_oci_pull_result_free (BgOciPullResult *result)
{
  if (result == NULL)
    return;
  g_free (result->name);
  g_free (result->source);
  g_free (result->manifest_digest);
  /* The workers stopped first: they write into the cache through the
   * registry's connections. */
  if (result->fetch != NULL)
    result->api->fetch_free (result->fetch);
  if (result->registry != NULL)
    result->api->free (result->registry);
  g_clear_pointer (&result->manifest, g_bytes_unref);
  g_strfreev (result->blobs);
  bg_blob_cache_free (result->cache);
  g_free (result);
}

/* A manifest named by digest: from the cache, else from the registry
 * (its digest checked there) and then kept in the cache. */
static GBytes *
manifest_by_digest (const BgRegistryModule *api,
                    BgRegistry             *registry,
                    BgBlobCache            *cache,
                    const BgOciDescriptor  *d,
                    GError                **error)
{
  g_autofree char *digest = NULL;
  GBytes *bytes;

  if (d->size > BG_OCI_MANIFEST_MAX)
    return g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the manifest %s is larger than %u bytes; refused",
                        d->digest, BG_OCI_MANIFEST_MAX), NULL;
  if (bg_blob_cache_has (cache, d->digest, d->size))
    return bg_blob_cache_read (cache, d->digest, BG_OCI_MANIFEST_MAX, error);
  bytes = api->get_manifest (registry, d->digest, &digest, error);
  if (bytes == NULL)
    return NULL;
  if (g_bytes_get_size (bytes) != d->size)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the manifest %s is not the %" G_GUINT64_FORMAT " bytes its index gives; refused",
                   d->digest, d->size);
      g_bytes_unref (bytes);
      return NULL;
    }
  if (!bg_blob_cache_put (cache, digest, bytes, error))
    {
      g_bytes_unref (bytes);
      return NULL;
    }
  return bytes;
}

/* Resolves the reference and starts fetching what the cache lacks:
 * result->fetch runs on; bg_registry_fetch_wait() says when a blob, or
 * every blob, is in. */
BgOciPullResult *
bg_oci_pull_begin (const BgOciPullOptions *o,
                   BgProgress             *progress,
                   GError                **error)
{
  g_autoptr(BgOciPullResult) result = g_new0 (BgOciPullResult, 1);
  g_autoptr(BgImageRef) ref = NULL;
  g_autoptr(BgBlobCache) cache = NULL;
  g_autoptr(BgBlobRoot) old = NULL;
  g_autoptr(GBytes) top = NULL;
  g_autoptr(GBytes) manifest_bytes = NULL;
  g_autoptr(BgOciManifest) manifest = NULL;
  g_autoptr(GArray) wanted = g_array_new (FALSE, FALSE, sizeof (BgRegistryBlob));
  g_autoptr(GStrvBuilder) used = g_strv_builder_new ();
  g_autofree char *images_dir = bg_paths_images_dir ();
  g_autofree char *image_dir = NULL;
  g_autofree char *top_digest = NULL;
  g_autofree char *step = NULL;
  BgOciDocKind kind;

  ref = bg_image_ref_parse (o->ref, error);
  if (ref == NULL)
    return NULL;
  result->source = bg_image_ref_to_string (ref);
  result->name = o->name ? g_strdup (o->name) : bg_image_ref_default_name (ref);
  if (!bg_name_validate (o->name ? "--name" : "the image name made from REF (choose one with --name)",
                         result->name, error))
    return NULL;
  image_dir = g_build_filename (images_dir, result->name, NULL);

  cache = bg_blob_cache_open (FALSE, error);
  if (cache == NULL)
    return NULL;
  /* An image of this name that is not this reference is the user's:
   * refuse before any request. */
  old = bg_blob_cache_get_root (cache, result->name);
  if (g_file_test (image_dir, G_FILE_TEST_EXISTS) && (old == NULL || !g_str_equal (old->source, result->source)))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_EXISTS,
                   "an image named %s exists and was not pulled from %s; choose another name with --name",
                   result->name, result->source);
      return NULL;
    }

  /* The registry client is a module (bg-registry-module.h); the result
   * owns its registry from here, so that every way out frees it. */
  if ((result->api = bg_registry_module_load (error)) == NULL ||
      (result->registry = result->api->new (ref, o->insecure, error)) == NULL)
    return NULL;
  result->insecure = result->api->is_insecure (result->registry);
  bg_progress_step (progress, "resolving the manifest");
  top = result->api->get_manifest (result->registry, bg_image_ref_reference (ref), &top_digest, error);
  if (top == NULL)
    return NULL;
  kind = bg_oci_doc_detect (top, error);
  if (kind == BG_OCI_DOC_UNKNOWN)
    return NULL;
  if (kind == BG_OCI_DOC_INDEX)
    {
      g_autoptr(BgOciDescriptor) chosen = bg_oci_index_select (top, error);

      if (chosen == NULL)
        return NULL;
      manifest_bytes = manifest_by_digest (result->api, result->registry, cache, chosen, error);
      if (manifest_bytes == NULL)
        return NULL;
      result->manifest_digest = g_strdup (chosen->digest);
      g_strv_builder_add (used, top_digest);
      if (!bg_blob_cache_put (cache, top_digest, top, error))
        return NULL;
    }
  else
    {
      manifest_bytes = g_bytes_ref (top);
      result->manifest_digest = g_strdup (top_digest);
      if (!bg_blob_cache_put (cache, top_digest, top, error))
        return NULL;
    }
  g_strv_builder_add (used, result->manifest_digest);
  manifest = bg_oci_manifest_parse (manifest_bytes, error);
  if (manifest == NULL)
    return NULL;
  result->layers = manifest->layers->len;
  for (guint i = 0; i < manifest->layers->len; i++)
    result->size += ((BgOciDescriptor *) manifest->layers->pdata[i])->size;

  if (g_file_test (image_dir, G_FILE_TEST_EXISTS))
    {
      if (g_str_equal (old->manifest_digest, result->manifest_digest))
        {
          result->up_to_date = TRUE;
          result->blobs = g_strv_builder_end (used);
          result->manifest = g_steal_pointer (&manifest_bytes);
          result->cache = g_steal_pointer (&cache);
          return g_steal_pointer (&result);
        }
      g_set_error (error, BG_ERROR, BG_ERROR_EXISTS,
                   "image %s is %s as it was (%s); the registry now has %s: remove the image first "
                   "(banger image rm %s) or pull the new one with --name",
                   result->name, result->source, old->manifest_digest, result->manifest_digest, result->name);
      return NULL;
    }

  /* The config and the layers, fetched only when not in the cache. */
  for (guint i = 0; i <= manifest->layers->len; i++)
    {
      const BgOciDescriptor *d = i == 0 ? manifest->config : manifest->layers->pdata[i - 1];
      BgRegistryBlob b = { d->digest, d->size };

      g_strv_builder_add (used, d->digest);
      if (bg_blob_cache_has (cache, d->digest, d->size))
        continue;
      g_array_append_val (wanted, b);
      result->fetched++;
      result->fetched_bytes += d->size;
    }
  if (wanted->len > 0)
    {
      g_autofree char *size = bg_format_size_human (result->fetched_bytes);

      step = g_strdup_printf ("fetching %u of %u blobs (%s)", wanted->len, manifest->layers->len + 1, size);
      bg_progress_step (progress, step);
      result->fetch = result->api->fetch_start (result->registry, cache, (const BgRegistryBlob *) wanted->data, wanted->len);
    }

  result->blobs = g_strv_builder_end (used);
  result->manifest = g_steal_pointer (&manifest_bytes);
  result->cache = g_steal_pointer (&cache);
  return g_steal_pointer (&result);
}

/* bg_oci_pull_begin(), and every blob in the cache. */
BgOciPullResult *
bg_oci_pull_fetch (const BgOciPullOptions *o,
                   BgProgress             *progress,
                   GError                **error)
{
  g_autoptr(BgOciPullResult) result = bg_oci_pull_begin (o, progress, error);

  if (result == NULL || (result->fetch != NULL && !result->api->fetch_wait (result->fetch, NULL, progress, error)))
    return NULL;
  return g_steal_pointer (&result);
}
