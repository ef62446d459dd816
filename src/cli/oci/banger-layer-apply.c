/* banger-layer-apply: applies one image layer onto a tree, as root of
 * the user namespace `unshare --map-auto --map-root-user` makes (or as
 * root), so the layer's owners land in the user's subordinate range.
 *
 *   banger-layer-apply DIGEST DIFF_ID|- SIZE none|gzip|zstd
 *     stdin: the blob; fd 3: the tree's directory
 *     stdout: "entries=N bytes=N devices=N" once the layer applied
 *
 * A program of its own, spawned with an argv by banger (bg-oci-import.c):
 * the user namespace is a process boundary, and the applier has no
 * business with anything of banger's but the two fds it is given. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "bg-error.h"
#include "bg-layer.h"

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  BgLayerStats stats = { 0 };
  BgLayerSpec spec = { 0 };
  struct stat st;
  char *end;

  if (argc != 5)
    {
      fprintf (stderr, "usage: %s DIGEST DIFF_ID|- SIZE none|gzip|zstd (stdin: the blob, fd 3: the tree)\n",
               argv[0]);
      return 2;
    }
  spec.digest = argv[1];
  spec.diff_id = g_str_equal (argv[2], "-") ? NULL : argv[2];
  spec.size = g_ascii_strtoull (argv[3], &end, 10);
  if (*end != '\0' || !g_ascii_isdigit (argv[3][0]))
    {
      fprintf (stderr, "banger-layer-apply: SIZE: \"%s\" is not a number\n", argv[3]);
      return 2;
    }
  if (g_str_equal (argv[4], "none"))
    spec.compression = BG_OCI_COMPRESSION_NONE;
  else if (g_str_equal (argv[4], "gzip"))
    spec.compression = BG_OCI_COMPRESSION_GZIP;
  else if (g_str_equal (argv[4], "zstd"))
    spec.compression = BG_OCI_COMPRESSION_ZSTD;
  else
    {
      fprintf (stderr, "banger-layer-apply: COMPRESSION: \"%s\" is not none, gzip or zstd\n", argv[4]);
      return 2;
    }
  if (fstat (3, &st) < 0 || !S_ISDIR (st.st_mode))
    {
      fprintf (stderr, "banger-layer-apply: fd 3 is not the tree's directory\n");
      return 2;
    }
  /* Files are made with the layer's modes, not ours. */
  umask (0);
  if (!bg_layer_apply (3, 0, &spec, &stats, &error))
    {
      fprintf (stderr, "%s\n", error->message);
      return 1;
    }
  printf ("entries=%" G_GUINT64_FORMAT " bytes=%" G_GUINT64_FORMAT " devices=%" G_GUINT64_FORMAT
          " xattrs=%" G_GUINT64_FORMAT " xattrs_skipped=%" G_GUINT64_FORMAT "\n",
          stats.entries, stats.bytes, stats.devices_skipped, stats.xattrs, stats.xattrs_skipped);
  return 0;
}
