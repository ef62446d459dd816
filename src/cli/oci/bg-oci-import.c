/* bg-oci-import.c: an OCI image (a manifest and its blobs) made into a
 * banger image.
 *
 * 1. The manifest and the config are parsed and checked (bg-oci-manifest.c),
 *    the config read by digest from the blobs directory.
 * 2. Each layer is applied onto an empty tree by banger-layer-apply, as
 *    root of the user's own namespace (bg-layer-spawn.c): owners land in
 *    the subordinate range, and no entry writes outside the tree.
 * 3. What an OCI image lacks to boot is added the same way, as one more
 *    (banger-made) layer: banger's guest programs in /usr/libexec/banger,
 *    the default image's kernel modules, and the image's workload
 *    (Entrypoint, Cmd, Env, WorkingDir, User) for banger-init. An image
 *    whose /sbin/init is systemd also gets banger-guest-setup's unit,
 *    enabled: banger-init execs that init, and the unit then applies the
 *    config drive (network, host name, user, keys, the pinned host key)
 *    as in images banger builds.
 * 4. mke2fs -d makes the ext4 in the same namespace, and the image is
 *    stored with the default image's kernel (or --kernel) like any other
 *    import, its source, manifest digest and layers recorded.
 * Everything is made in a hidden directory of the image store, removed
 * on failure or interruption.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "bg-build.h"
#include "bg-cli.h"
#include "bg-config.h"
#include "bg-error.h"
#include "bg-fd.h"
#include "bg-file.h"
#include "bg-guest-programs.h"
#include "bg-image.h"
#include "bg-layer.h"
#include "bg-oci-archive.h"
#include "bg-oci-blob.h"
#include "bg-oci-import.h"
#include "bg-oci-manifest.h"
#include "bg-paths.h"
#include "bg-spawn.h"

#define GUEST_DIR "usr/libexec/banger"

typedef struct {
  char *work;
  char *kernel;
  char *initrd;
  char *modules_from;   /* the default image's rootfs, read with debugfs */
} Work;

static gboolean
run_mapped (const char * const  *argv,
            const char          *stage,
            GError             **error)
{
  g_auto(GStrv) full = bg_layer_mapped_argv (argv);

  if (!bg_spawn_run ((const char * const *) full, NULL, error))
    {
      g_prefix_error (error, "%s: ", stage);
      return FALSE;
    }
  return TRUE;
}

/* The tree belongs to the subordinate range: only the mapping may
 * delete it. */
static void
remove_work (const char *work)
{
  const char *rm[] = { "rm", "-rf", "--", work, NULL };

  if (work && g_file_test (work, G_FILE_TEST_EXISTS))
    run_mapped (rm, "cleanup", NULL);
}

/* The kernel, initrd and modules a booting OCI image borrows: --kernel
 * (alone), or the default image's. */
static gboolean
find_kernel (const char  *images_dir,
             const char  *kernel,
             Work        *w,
             GError     **error)
{
  g_autoptr(BgConfig) config = NULL;
  g_autoptr(BgImage) image = NULL;
  g_autoptr(GError) local = NULL;

  if (kernel != NULL)
    {
      w->kernel = g_strdup (kernel);
      return TRUE;
    }
  if ((config = bg_config_load_default (error)) == NULL)
    return FALSE;
  image = bg_image_load (images_dir, config->image ? config->image : BG_DEFAULT_IMAGE, &local);
  if (image == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND,
                   "an OCI image has no kernel, and banger borrows the default image's: %s (make it with "
                   "'banger image build %s', or name a kernel with --kernel)",
                   local->message, config->image ? config->image : BG_DEFAULT_IMAGE);
      return FALSE;
    }
  w->kernel = g_strdup (image->kernel);
  w->initrd = g_strdup (image->initrd);
  w->modules_from = g_strdup (image->rootfs);
  return TRUE;
}

static void
add_record (GString     *out,
            const char  *key,
            const char  *value)
{
  g_string_append_printf (out, "%s=%s", key, value);
  g_string_append_c (out, '\0');
}

/* The workload record banger-init reads (BG_OCI_WORKLOAD_IN_IMAGE). */
static GString *
workload_record (const BgOciConfig *c)
{
  GString *out = g_string_new (NULL);

  for (guint i = 0; c->entrypoint && c->entrypoint[i]; i++)
    add_record (out, "argv", c->entrypoint[i]);
  for (guint i = 0; c->cmd && c->cmd[i]; i++)
    add_record (out, "argv", c->cmd[i]);
  for (guint i = 0; c->env && c->env[i]; i++)
    add_record (out, "env", c->env[i]);
  if (c->working_dir)
    add_record (out, "cwd", c->working_dir);
  if (c->user)
    add_record (out, "user", c->user);
  return out;
}

static gboolean
stage_file (const char  *staging,
            const char  *rel,
            const char  *src,
            const char  *data,
            gsize        len,
            GError     **error)
{
  g_autofree char *dest = g_build_filename (staging, rel, NULL);
  g_autofree char *dir = g_path_get_dirname (dest);
  g_autofree char *contents = NULL;

  if (src != NULL)
    {
      if (!g_file_get_contents (src, &contents, &len, error))
        return FALSE;
      data = contents;
    }
  if (g_mkdir_with_parents (dir, 0755) < 0)
    return bg_error_errno (error, errno, "cannot create", dir);
  return bg_file_replace (dest, data, len, src ? 0755 : 0644, error);
}

/* @path of the tree, resolved as the image would resolve it (its
 * absolute symlinks mean its own root), stat()ed; FALSE if it is not
 * there or leaves the tree's filesystem. */
static gboolean
tree_stat (int          tree,
           const char  *path,
           struct stat *st)
{
  struct open_how how = {
    .flags = O_PATH | O_CLOEXEC,
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
  };
  g_auto(BgFd) fd = -1;

  do
    fd = syscall (SYS_openat2, tree, path, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN);
  return fd >= 0 && fstat (fd, st) == 0;
}

/* Whether the image's /sbin/init is systemd: the very file of
 * /usr/lib/systemd/systemd (or /lib/..., before the merged /usr). Only
 * then does a unit of banger's ever run. */
static gboolean
tree_boots_systemd (int tree)
{
  const char *systemd[] = { "usr/lib/systemd/systemd", "lib/systemd/systemd" };
  struct stat init, st;

  if (!tree_stat (tree, "sbin/init", &init) || !S_ISREG (init.st_mode))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (systemd); i++)
    if (tree_stat (tree, systemd[i], &st) && st.st_dev == init.st_dev && st.st_ino == init.st_ino)
      return TRUE;
  return FALSE;
}

/* banger's additions, as a plain tar of root-owned files: applied by
 * the same applier as the image's own layers, so they too land beneath
 * the tree whatever the image's /usr or /lib are (symlinks included). */
static gboolean
make_additions (Work               *w,
                const BgOciConfig  *config,
                gboolean            systemd,
                char              **tar_out,
                GError            **error)
{
  g_autofree char *staging = g_build_filename (w->work, "additions", NULL);
  g_autofree char *tar = g_build_filename (w->work, "additions.tar", NULL);
  g_autofree char *init = bg_guest_programs_init_path ();
  g_autofree char *setup = bg_guest_programs_setup_path ();
  g_autofree char *agent = g_strdup (g_getenv ("BANGER_AGENT") ? g_getenv ("BANGER_AGENT")
                                                                : BG_LIBEXECDIR "/banger/banger-agent");
  g_autoptr(GString) workload = workload_record (config);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();

  if (!g_file_test (init, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                   "banger's early init %s is missing: reinstall banger, or set BANGER_INIT to a built banger-init",
                   init);
      return FALSE;
    }
  if (!stage_file (staging, GUEST_DIR "/banger-init", init, NULL, 0, error) ||
      (g_file_test (setup, G_FILE_TEST_IS_EXECUTABLE) &&
       !stage_file (staging, GUEST_DIR "/banger-guest-setup", setup, NULL, 0, error)) ||
      (g_file_test (agent, G_FILE_TEST_IS_EXECUTABLE) &&
       !stage_file (staging, GUEST_DIR "/banger-agent", agent, NULL, 0, error)) ||
      (workload->len > 0 &&
       !stage_file (staging, BG_OCI_WORKLOAD_IN_IMAGE + 1, NULL, workload->str, workload->len, error)))
    return FALSE;
  /* Without the program there is nothing for the unit to start. */
  systemd = systemd && g_file_test (setup, G_FILE_TEST_IS_EXECUTABLE);
  if (systemd)
    {
      g_autofree char *wants = g_build_filename (staging, BG_GUEST_SETUP_WANTS, NULL);
      g_autofree char *dir = g_path_get_dirname (wants);

      if (!stage_file (staging, BG_GUEST_SETUP_UNIT + 1, NULL, bg_guest_programs_setup_unit,
                       strlen (bg_guest_programs_setup_unit), error))
        return FALSE;
      if (g_mkdir_with_parents (dir, 0755) < 0)
        return bg_error_errno (error, errno, "cannot create", dir);
      if (symlink (BG_GUEST_SETUP_UNIT, wants) < 0)
        return bg_error_errno (error, errno, "cannot create", wants);
    }

  g_ptr_array_add (argv, "tar");
  g_ptr_array_add (argv, "--numeric-owner");
  g_ptr_array_add (argv, "--owner=0");
  g_ptr_array_add (argv, "--group=0");
  g_ptr_array_add (argv, "-C");
  g_ptr_array_add (argv, staging);
  g_ptr_array_add (argv, "-cf");
  g_ptr_array_add (argv, tar);
  g_ptr_array_add (argv, GUEST_DIR);
  /* The files alone: the image's own directories keep their owners and
   * modes (the applier makes missing parents root's, 0755). */
  if (systemd)
    {
      g_ptr_array_add (argv, BG_GUEST_SETUP_UNIT + 1);
      g_ptr_array_add (argv, BG_GUEST_SETUP_WANTS + 1);
    }
  if (w->modules_from)
    {
      /* The kernel's modules, read off the default image without
       * mounting it (merged /usr first, as Debian has it). */
      g_autofree char *lib = g_build_filename (staging, "lib", NULL);
      g_autofree char *modules = g_build_filename (lib, "modules", NULL);
      const char *sources[] = { "/usr/lib/modules", "/lib/modules" };

      g_mkdir_with_parents (lib, 0755);
      for (guint i = 0; i < G_N_ELEMENTS (sources) && !g_file_test (modules, G_FILE_TEST_IS_DIR); i++)
        {
          g_autofree char *request = g_strdup_printf ("rdump %s %s", sources[i], lib);
          const char *rdump[] = { "debugfs", "-R", request, w->modules_from, NULL };
          bg_spawn_run (rdump, NULL, NULL);
        }
      if (g_file_test (modules, G_FILE_TEST_IS_DIR))
        g_ptr_array_add (argv, "lib/modules");
    }
  g_ptr_array_add (argv, NULL);
  if (!bg_spawn_run ((const char * const *) argv->pdata, NULL, error))
    {
      g_prefix_error (error, "banger's additions: ");
      return FALSE;
    }
  *tar_out = g_steal_pointer (&tar);
  return TRUE;
}

static gboolean
apply_additions (int          tree,
                 const char  *tar,
                 BgLayerStats *stats,
                 GError     **error)
{
  g_autofree char *contents = NULL, *digest = NULL, *hex = NULL;
  gsize len;
  g_auto(BgFd) fd = -1;
  BgLayerSpec spec = { 0 };

  /* banger's own tar: its digest is whatever it is, but it goes through
   * the same checks as any layer. */
  if (!g_file_get_contents (tar, &contents, &len, error))
    return FALSE;
  hex = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (guint8 *) contents, len);
  digest = g_strconcat ("sha256:", hex, NULL);
  g_clear_pointer (&contents, g_free);
  spec = (BgLayerSpec) { digest, NULL, len, BG_OCI_COMPRESSION_NONE };
  if ((fd = open (tar, O_RDONLY | O_CLOEXEC)) < 0)
    return bg_error_errno (error, errno, "cannot open", tar);
  return bg_layer_apply_mapped (tree, fd, &spec, stats, error);
}

static gboolean
wait_blob (const BgOciImport  *import,
           const char         *digest,
           GError            **error)
{
  return import->wait_blob == NULL || import->wait_blob (import->wait_data, digest, error);
}

/* In order, each as soon as its blob is in (wait_blob): layer i is
 * applied while the blobs after it still arrive, and only once layer
 * i - 1 is, as a later layer's whiteouts and replacements need. A blob
 * is in once it is whole and verified (the cache names nothing else),
 * so the applier never reads a byte that a failed fetch could retract. */
static gboolean
apply_layers (const BgOciImport    *import,
              int                   tree,
              const BgOciManifest  *m,
              const BgOciConfig    *c,
              BgLayerStats         *stats,
              BgProgress           *progress,
              GError              **error)
{
  for (guint i = 0; i < m->layers->len; i++)
    {
      const BgOciDescriptor *d = m->layers->pdata[i];
      BgLayerSpec spec = { d->digest, c->diff_ids[i], d->size, d->compression };
      g_autofree char *size = bg_format_size_human (d->size);
      g_autofree char *step = g_strdup_printf ("applying layer %u of %u (%.19s…, %s)", i + 1, m->layers->len,
                                               d->digest, size);
      g_auto(BgFd) fd = -1;

      if (!wait_blob (import, d->digest, error))
        return FALSE;
      bg_progress_step (progress, step);
      if ((fd = bg_oci_blob_open (import->blobs_dirfd, d->digest, d->size, error)) < 0 ||
          !bg_layer_apply_mapped (tree, fd, &spec, stats, error))
        return FALSE;
    }
  return TRUE;
}

/* Room for what the tree holds, its inodes, and ext4's own metadata. */
static gboolean
make_ext4 (const char          *tree,
           const char          *rootfs,
           const BgLayerStats  *stats,
           GError             **error)
{
  guint64 bytes = stats->bytes + stats->bytes / 4 + stats->entries * 4096 + (G_GUINT64_CONSTANT (128) << 20);
  g_autofree char *size = g_strdup_printf ("%" G_GUINT64_FORMAT "k", (bytes >> 20) << 10);
  g_autofree char *inodes = g_strdup_printf ("%" G_GUINT64_FORMAT, stats->entries + stats->entries / 4 + 16384);
  const char *argv[] = { "mke2fs", "-q", "-t", "ext4", "-L", "rootfs", "-N", inodes, "-d", tree, rootfs, size,
                         NULL };

  return run_mapped (argv, "filesystem", error);
}

gboolean
bg_oci_image_import (const BgOciImport  *import,
                     BgProgress         *progress,
                     GError            **error)
{
  static const char * const programs[] = { "mke2fs", "e2fsck", "debugfs", "tar", "rm", NULL };
  g_autofree char *images_dir = bg_paths_images_dir ();
  g_autofree char *final = NULL, *tree = NULL, *rootfs = NULL, *additions = NULL;
  g_autoptr(BgOciManifest) m = NULL;
  g_autoptr(BgOciConfig) c = NULL;
  g_autoptr(GBytes) config = NULL;
  g_autoptr(GPtrArray) layers = g_ptr_array_new ();
  g_autoptr(BgImage) image = NULL;
  g_auto(BgFd) tree_fd = -1;
  BgLayerStats stats = { 0 };
  Work w = { 0 };
  gboolean ok = FALSE;

  g_return_val_if_fail (import != NULL && import->name != NULL && import->manifest != NULL, FALSE);

  if ((final = bg_image_new_dir (images_dir, import->name, error)) == NULL ||
      !bg_oci_digest_validate ("manifest digest", import->manifest_digest, error) ||
      !bg_programs_require (programs, "importing an OCI image", error) ||
      (getuid () != 0 && !bg_programs_require ((const char * const[]) { "unshare", "newuidmap", "newgidmap", NULL },
                                               "applying image layers without root", error)))
    return FALSE;

  bg_progress_step (progress, "reading the image's manifest and config");
  if ((m = bg_oci_manifest_parse (import->manifest, error)) == NULL ||
      !wait_blob (import, m->config->digest, error) ||
      (config = bg_oci_blob_read (import->blobs_dirfd, m->config->digest, m->config->size, BG_OCI_CONFIG_MAX,
                                  error)) == NULL ||
      (c = bg_oci_config_parse (config, error)) == NULL)
    return FALSE;
  if (g_strv_length (c->diff_ids) != m->layers->len)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "config.rootfs.diff_ids: %u for the manifest's %u layers", g_strv_length (c->diff_ids),
                   m->layers->len);
      return FALSE;
    }
  if (!find_kernel (images_dir, import->kernel, &w, error))
    goto out;

  if (g_mkdir_with_parents (images_dir, 0700) < 0)
    {
      bg_error_errno (error, errno, "cannot create", images_dir);
      goto out;
    }
  w.work = g_strdup_printf ("%s/.oci-%s-XXXXXX", images_dir, import->name);
  if (g_mkdtemp_full (w.work, 0700) == NULL)
    {
      bg_error_errno (error, errno, "cannot create", w.work);
      g_clear_pointer (&w.work, g_free);
      goto out;
    }
  tree = g_build_filename (w.work, "tree", NULL);
  rootfs = g_build_filename (w.work, "rootfs.ext4", NULL);
  if (g_mkdir (tree, 0755) < 0 || (tree_fd = open (tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    {
      bg_error_errno (error, errno, "cannot create", tree);
      goto out;
    }

  if (!apply_layers (import, tree_fd, m, c, &stats, progress, error))
    goto out;
  if (stats.xattrs_skipped > 0)
    {
      g_autofree char *step = g_strdup_printf ("%" G_GUINT64_FORMAT " extended attribute(s) not applied "
                                               "(trusted.*, security.* but capability, system.*, or on links), "
                                               "%" G_GUINT64_FORMAT " applied", stats.xattrs_skipped,
                                               stats.xattrs);
      bg_progress_step (progress, step);
    }
  bg_progress_step (progress, "adding banger's guest programs and the kernel's modules");
  if (!make_additions (&w, c, tree_boots_systemd (tree_fd), &additions, error) ||
      !apply_additions (tree_fd, additions, &stats, error))
    goto out;
  bg_progress_step (progress, "making the ext4 root filesystem");
  if (!make_ext4 (tree, rootfs, &stats, error))
    goto out;
  bg_fd_clear (&tree_fd);
  remove_work (tree);

  for (guint i = 0; i < m->layers->len; i++)
    g_ptr_array_add (layers, ((BgOciDescriptor *) m->layers->pdata[i])->digest);
  g_ptr_array_add (layers, NULL);
  {
    g_autofree char *source = g_strdup (import->source ? import->source : "oci");
    BgImageFiles files = { w.kernel, rootfs, w.initrd, NULL, source, import->manifest_digest,
                           (const char * const *) layers->pdata, TRUE };

    image = bg_image_import (images_dir, import->name, &files, progress, error);
  }
  ok = image != NULL;

out:
  remove_work (w.work);
  g_free (w.work);
  g_free (w.kernel);
  g_free (w.initrd);
  g_free (w.modules_from);
  return ok;
}

/* An image index (index.json, or one it names) down to the linux/amd64
 * image manifest; nested indexes followed a few levels, no more. */
static GBytes *
resolve_index (GBytes      *index,
               int          blobs_dirfd,
               char       **digest_out,
               GError     **error)
{
  g_autoptr(GBytes) doc = g_bytes_ref (index);

  for (guint depth = 0; depth < 4; depth++)
    {
      g_autoptr(BgOciDescriptor) d = bg_oci_index_select (doc, error);
      GBytes *next;

      if (d == NULL ||
          (next = bg_oci_blob_read (blobs_dirfd, d->digest, d->size, BG_OCI_MANIFEST_MAX, error)) == NULL)
        return NULL;
      g_bytes_unref (doc);
      doc = next;
      if (bg_oci_doc_kind (d->media_type) == BG_OCI_DOC_MANIFEST)
        {
          *digest_out = g_strdup (d->digest);
          return g_steal_pointer (&doc);
        }
    }
  g_set_error_literal (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "index: indexes nested more than 4 deep");
  return NULL;
}

static GBytes *
read_small (int          dirfd,
            const char  *name,
            const char  *path,
            GError     **error)
{
  g_auto(BgFd) fd = openat (dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  g_autofree char *buf = NULL;
  struct stat st;
  gssize n;

  if (fd < 0 || fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "--oci: %s is not an OCI image layout (no %s), nor a docker/podman save archive", path, name);
      return NULL;
    }
  if ((guint64) st.st_size > BG_OCI_MANIFEST_MAX)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "--oci: %s/%s is larger than banger reads", path, name);
      return NULL;
    }
  buf = g_malloc (st.st_size + 1);
  if ((n = pread (fd, buf, st.st_size, 0)) != st.st_size)
    {
      bg_error_errno (error, n < 0 ? errno : EIO, "cannot read", name);
      return NULL;
    }
  return g_bytes_new_take (g_steal_pointer (&buf), st.st_size);
}

gboolean
bg_oci_import_path (const char  *name,
                    const char  *path,
                    const char  *kernel,
                    BgProgress  *progress,
                    GError     **error)
{
  g_autofree char *abs = g_canonicalize_filename (path, NULL);
  g_autofree char *images_dir = bg_paths_images_dir ();
  g_autofree char *final = NULL, *tmp = NULL, *source = NULL, *digest = NULL;
  g_autoptr(GBytes) manifest = NULL, index = NULL, layout = NULL;
  g_autoptr(BgOciArchive) archive = NULL;
  g_auto(BgFd) fd = -1;
  g_auto(BgFd) blobs = -1;
  struct stat st;
  gboolean ok = FALSE;

  /* Checked before unpacking gigabytes, not after. */
  if ((final = bg_image_new_dir (images_dir, name, error)) == NULL)
    return FALSE;
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &st) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "--oci: cannot open %s: %s", path, g_strerror (errno));
      return FALSE;
    }

  if (S_ISDIR (st.st_mode))
    {
      bg_progress_step (progress, "reading the OCI image layout");
      if ((layout = read_small (fd, "oci-layout", path, error)) == NULL ||
          (index = read_small (fd, "index.json", path, error)) == NULL)
        return FALSE;
      if ((blobs = openat (fd, "blobs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "--oci: %s has no blobs directory", path);
          return FALSE;
        }
      if ((manifest = resolve_index (index, blobs, &digest, error)) == NULL)
        return FALSE;
      source = g_strdup_printf ("oci-layout:%s", abs);
    }
  else if (S_ISREG (st.st_mode))
    {
      if (g_mkdir_with_parents (images_dir, 0700) < 0)
        return bg_error_errno (error, errno, "cannot create", images_dir);
      tmp = g_strdup_printf ("%s/.oci-archive-%s-XXXXXX", images_dir, name);
      if (g_mkdtemp_full (tmp, 0700) == NULL)
        {
          bg_error_errno (error, errno, "cannot create", tmp);
          g_clear_pointer (&tmp, g_free);
          return FALSE;
        }
      bg_progress_step (progress, "reading the image archive");
      if ((blobs = open (tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
          (archive = bg_oci_archive_unpack (fd, blobs, error)) == NULL)
        goto out;
      if (archive->index != NULL)
        {
          if ((manifest = resolve_index (archive->index, blobs, &digest, error)) == NULL)
            goto out;
          source = g_strdup_printf ("oci-archive:%s", abs);
        }
      else
        {
          g_autofree char *hex = NULL;

          if ((manifest = bg_oci_archive_docker_manifest (archive, blobs, error)) == NULL)
            goto out;
          hex = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, manifest);
          digest = g_strconcat ("sha256:", hex, NULL);
          source = g_strdup_printf ("docker-archive:%s", abs);
        }
    }
  else
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "--oci: %s is neither an OCI image layout directory nor an image archive", path);
      return FALSE;
    }

  ok = bg_oci_image_import (&(BgOciImport) { name, blobs, manifest, digest, source, kernel }, progress, error);
out:
  if (tmp)
    bg_file_remove_tree (tmp, NULL);
  return ok;
}
