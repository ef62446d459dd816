/* oci-layout.c: see oci-layout.h. */
#include <glib/gstdio.h>

#include "layer-tar.h"
#include "oci-layout.h"

void
oci_layout_write_file (const char *path, const void *data, gsize len)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_assert_true (g_file_set_contents (path, data, len, NULL));
}

/* @data into @layout's blobs; its descriptor's digest. */
static char *
put_blob (const char *layout, const void *data, gsize len)
{
  char *digest = layer_sha256 (data, len);
  g_autofree char *path = g_build_filename (layout, "blobs", "sha256", digest + 7, NULL);
  oci_layout_write_file (path, data, len);
  return digest;
}

void
oci_layout_layer_clear (OciLayer *l)
{
  g_bytes_unref (l->blob);
  g_free (l->digest);
  g_free (l->diff);
}

/* Two layers: a small system, then one that whites out a file, makes a
 * directory opaque and adds a file; or a hostile second layer. */
void
oci_layout_layers (OciLayer layers[2], gboolean hostile)
{
  g_autoptr(LayerTar) a = layer_tar_new ();
  g_autoptr(LayerTar) b = layer_tar_new ();

  layer_tar_dir (a, "etc");
  layer_tar_file (a, "etc/os-release", "ID=test\n", 0644);
  layer_tar_add_full (a, '0', "etc/shadow", NULL, 0640, 0, 42, "root:*:1::::::\n", 15, 0, FALSE);
  layer_tar_dir (a, "usr");
  layer_tar_dir (a, "usr/bin");
  layer_tar_dir (a, "usr/lib");
  layer_tar_link (a, '2', "lib", "usr/lib");
  layer_tar_file (a, "usr/bin/hello", "#!/bin/sh\necho hello\n", 0755);
  layer_tar_add_full (a, '0', "usr/bin/su", NULL, 04755, 0, 0, "su\n", 3, 0, FALSE);
  layer_tar_dir (a, "var");
  layer_tar_dir (a, "var/cache");
  layer_tar_file (a, "var/cache/old", "stale\n", 0644);
  layer_tar_add_full (a, '3', "dev-null", NULL, 0666, 0, 0, NULL, 0, 0, FALSE);
  layers[0].blob = layer_tar_finish (a, BG_OCI_COMPRESSION_GZIP, &layers[0].digest, &layers[0].diff);
  layers[0].media_type = LAYER_GZ;

  if (hostile)
    {
      layer_tar_link (b, '2', "usr/bin/out", "../../..");
      layer_tar_file (b, "usr/bin/out/planted", "pwned\n", 0644);
    }
  else
    {
      layer_tar_file (b, "etc/.wh.os-release", "", 0644);
      layer_tar_dir (b, "var/cache");
      layer_tar_file (b, "var/cache/.wh..wh..opq", "", 0644);
      layer_tar_file (b, "var/cache/new", "fresh\n", 0644);
      layer_tar_dir (b, "srv");
      layer_tar_add_full (b, '0', "srv/app", NULL, 0640, 1000, 1000, "app\n", 4, 0, FALSE);
    }
  layers[1].blob = layer_tar_finish (b, BG_OCI_COMPRESSION_ZSTD, &layers[1].digest, &layers[1].diff);
  layers[1].media_type = LAYER_ZSTD;
}

static char *
config_json (OciLayer layers[2])
{
  return g_strdup_printf (
    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Entrypoint\":[\"/usr/bin/hello\"],"
    "\"Cmd\":[\"--loud\"],\"Env\":[\"PATH=/usr/bin:/bin\",\"GREETING=hi there\"],\"WorkingDir\":\"/srv\","
    "\"User\":\"1000:1000\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\",\"%s\"]}}",
    layers[0].diff, layers[1].diff);
}

/* An OCI image layout: index.json naming a multi-arch index, which
 * names an arm64 image (absent) and the amd64 one. */
char *
oci_layout_make (const char *parent, const char *name, gboolean hostile, gboolean corrupt, char **manifest_digest)
{
  char *layout = g_build_filename (parent, name, NULL);
  g_autofree char *config = NULL, *cdigest = NULL, *manifest = NULL, *mdigest = NULL, *index = NULL;
  g_autofree char *idigest = NULL, *top = NULL, *top_path = NULL, *marker = NULL;
  OciLayer layers[2] = { { 0 } };

  oci_layout_layers (layers, hostile);
  config = config_json (layers);
  cdigest = put_blob (layout, config, strlen (config));
  for (int i = 0; i < 2; i++)
    {
      g_autofree char *d = NULL;
      gsize len;
      const guint8 *data = g_bytes_get_data (layers[i].blob, &len);
      if (corrupt && i == 1)
        {
          /* Stored under its digest, but a byte changed. */
          g_autofree guint8 *copy = g_memdup2 (data, len);
          g_autofree char *path = g_build_filename (layout, "blobs", "sha256", layers[i].digest + 7, NULL);
          copy[len / 2] ^= 0x40;
          oci_layout_write_file (path, copy, len);
        }
      else
        {
          d = put_blob (layout, data, len);
          g_assert_cmpstr (d, ==, layers[i].digest);
        }
    }
  manifest = g_strdup_printf (
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
    "\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu},{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}]}",
    cdigest, strlen (config), layers[0].media_type, layers[0].digest, g_bytes_get_size (layers[0].blob),
    layers[1].media_type, layers[1].digest, g_bytes_get_size (layers[1].blob));
  mdigest = put_blob (layout, manifest, strlen (manifest));
  index = g_strdup_printf (
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:%064d\",\"size\":10,"
    "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%zu,"
    "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}", 1, mdigest, strlen (manifest));
  idigest = put_blob (layout, index, strlen (index));
  top = g_strdup_printf ("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
                         "\"digest\":\"%s\",\"size\":%zu,\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}]}",
                         idigest, strlen (index));
  top_path = g_build_filename (layout, "index.json", NULL);
  oci_layout_write_file (top_path, top, strlen (top));
  marker = g_build_filename (layout, "oci-layout", NULL);
  oci_layout_write_file (marker, "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
  for (int i = 0; i < 2; i++)
    oci_layout_layer_clear (&layers[i]);
  if (manifest_digest)
    *manifest_digest = g_steal_pointer (&mdigest);
  return layout;
}

