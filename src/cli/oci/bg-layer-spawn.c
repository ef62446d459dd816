/* bg-layer-spawn.c: the layer applier, and the programs that finish the
 * tree (mke2fs -d, rm), run as root of the user's own namespace: a
 * layer's owners (root, daemon, a service user) must land in the user's
 * subordinate id range, never be refused or flattened to the user.
 * banger itself is never privileged: `unshare --map-auto --map-root-user`
 * maps the user's subuid range (as `image build` does). Run by root,
 * there is nothing to map: ids are root's to give already. */
#include <stdio.h>
#include <unistd.h>

#include "bg-cli.h"
#include "bg-error.h"
#include "bg-fd.h"
#include "bg-layer.h"
#include "bg-spawn.h"

/* The applier banger runs: the installed one, or (for an uninstalled
 * build) the one $BANGER_LAYER_APPLY names. */
static char *
helper_path (void)
{
  const char *env = g_getenv ("BANGER_LAYER_APPLY");

  return g_strdup (env && *env ? env : BG_LIBEXECDIR "/banger/banger-layer-apply");
}

/* @argv as root inside the user's own subuid mapping, its program found
 * the way every program is (bg_program_find), or as it is for root. */
char **
bg_layer_mapped_argv (const char * const *argv)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_autofree char *program = argv[0][0] == '/' ? g_strdup (argv[0]) : bg_program_find (argv[0]);

  if (getuid () != 0)
    {
      g_autofree char *unshare = bg_program_find ("unshare");
      g_strv_builder_add_many (b, unshare ? unshare : "unshare", "--map-auto", "--map-root-user", "--", NULL);
    }
  g_strv_builder_add (b, program ? program : argv[0]);
  g_strv_builder_addv (b, (const char **) argv + 1);
  return g_strv_builder_end (b);
}

static const char *
compression_name (BgOciCompression c)
{
  return c == BG_OCI_COMPRESSION_GZIP ? "gzip" : c == BG_OCI_COMPRESSION_ZSTD ? "zstd" : "none";
}

gboolean
bg_layer_apply_mapped (int                 tree_dirfd,
                       int                 blob_fd,
                       const BgLayerSpec  *layer,
                       BgLayerStats       *stats,
                       GError            **error)
{
  g_autofree char *helper = helper_path ();
  g_autofree char *size = g_strdup_printf ("%" G_GUINT64_FORMAT, layer->size);
  const char *argv[] = { helper, layer->digest, layer->diff_id ? layer->diff_id : "-", size,
                         compression_name (layer->compression), NULL };
  g_auto(GStrv) full = bg_layer_mapped_argv (argv);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autofree char *out = NULL, *err = NULL;
  guint64 entries, bytes, devices, xattrs, xattrs_skipped;
  g_auto(BgFd) in = -1;
  g_auto(BgFd) tree = -1;

  if (!g_file_test (helper, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                   "banger's layer applier %s is missing: reinstall banger, or set BANGER_LAYER_APPLY to a "
                   "built banger-layer-apply", helper);
      return FALSE;
    }
  if ((in = dup (blob_fd)) < 0 || (tree = dup (tree_dirfd)) < 0)
    return bg_error_errno (error, errno, "cannot pass the layer to", helper);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_take_stdin_fd (launcher, g_steal_fd (&in));
  g_subprocess_launcher_take_fd (launcher, g_steal_fd (&tree), 3);
  proc = g_subprocess_launcher_spawnv (launcher, (const char * const *) full, error);
  if (proc == NULL || !g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, &err, error))
    return FALSE;
  if (bg_interrupted)
    {
      g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED, "interrupted");
      return FALSE;
    }
  if (!g_subprocess_get_successful (proc))
    {
      /* The applier's message names the layer and the entry. */
      g_set_error (error, BG_ERROR, g_subprocess_get_if_exited (proc) && g_subprocess_get_exit_status (proc) == 1
                                      ? BG_ERROR_INVALID_ARGUMENT : BG_ERROR_FAILED,
                   "%s", err && *err ? g_strstrip (err) : "the layer applier failed");
      return FALSE;
    }
  if (out == NULL || sscanf (out, "entries=%" G_GUINT64_FORMAT " bytes=%" G_GUINT64_FORMAT
                                  " devices=%" G_GUINT64_FORMAT " xattrs=%" G_GUINT64_FORMAT
                                  " xattrs_skipped=%" G_GUINT64_FORMAT,
                             &entries, &bytes, &devices, &xattrs, &xattrs_skipped) != 5)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the layer applier said nothing of layer %s", layer->digest);
      return FALSE;
    }
  stats->entries += entries;
  stats->bytes += bytes;
  stats->devices_skipped += devices;
  stats->xattrs += xattrs;
  stats->xattrs_skipped += xattrs_skipped;
  return TRUE;
}
