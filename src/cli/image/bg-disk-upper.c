/* bg-disk-upper.c: a layered VM's own disk, formatted on the host, for
 * an image with no mke2fs of its own (every OCI image).
 *
 * Running mke2fs for every VM costs an exec, ~10 ms of CPU and four
 * fsyncs, while the mechanism sets up the network on the same cores.
 * Every such disk of one size is the same bytes but for nothing the
 * guest reads (see below), so mke2fs runs once per size into a template
 * in the user's cache, and each VM's disk is a sparse copy of it: only
 * its data extents (a few hundred KiB of 8 GiB), one fdatasync.
 *
 * The copies share the template's ext4 UUID. Nothing depends on it
 * being unique: banger-init mounts the disk by its device (banger.upper=,
 * /dev/vdc), not by UUID or label; a VM has one such disk, beside an
 * image root whose UUID is its own; the host never mounts these disks
 * (ext4 would not mind a shared UUID if it did, unlike XFS or btrfs).
 * A fresh UUID per copy would mean rewriting every metadata checksum
 * (metadata_csum seeds them with it), which is what tune2fs -U does at
 * the cost this file avoids.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "bg-disk.h"
#include "bg-disk-upper.h"
#include "bg-error.h"
#include "bg-fd.h"
#include "bg-paths.h"
#include "bg-sha256.h"
#include "bg-spawn.h"

/* Lazy init and no reserved GDT blocks (resize_inode: online growth
 * only) keep what is written to ~200 KiB of an 8 GiB disk. */
static const char * const format[] = {
  "-q", "-F", "-t", "ext4", "-O", "^resize_inode", "-L", "banger-upper",
  "-E", "lazy_itable_init=1,lazy_journal_init=1", NULL
};

/* The ENOSPC advice of a layered disk, added to @error's message when
 * it is about a full filesystem (mke2fs says so in its errno's words). */
static void
hint_enospc (GError **error)
{
  if (error && *error && strstr ((*error)->message, g_strerror (ENOSPC)) != NULL)
    {
      g_autofree char *message = g_strdup_printf ("%s (free some space there: a layered VM's disk "
                                                  "takes a few hundred KiB at first)",
                                                  (*error)->message);
      g_free ((*error)->message);
      (*error)->message = g_steal_pointer (&message);
    }
}

/* What the template's bytes depend on besides its size: mke2fs's
 * arguments, which mke2fs (its file: a new e2fsprogs is a new file) and
 * its configuration (the defaults it formats with). The program's
 * identity is read with stat rather than asking `mke2fs -V`, which would
 * be an exec per VM again. */
static char *
template_digest (const char  *mke2fs,
                 GError     **error)
{
  g_autoptr(BgSha256) sum = bg_sha256_new (error);
  const char *conf_path = g_getenv ("MKE2FS_CONFIG");
  g_autofree char *conf = NULL, *identity = NULL;
  gsize conf_len = 0;
  struct stat st = { 0 };

  if (sum == NULL)
    return NULL;
  for (guint i = 0; format[i]; i++)
    bg_sha256_update (sum, format[i], strlen (format[i]) + 1);
  if (stat (mke2fs, &st) < 0)
    memset (&st, 0, sizeof st);
  identity = g_strdup_printf ("%s\n%ju:%ju:%jd:%jd.%09ld\n", mke2fs, (uintmax_t) st.st_dev, (uintmax_t) st.st_ino,
                              (intmax_t) st.st_size, (intmax_t) st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  bg_sha256_update (sum, identity, strlen (identity));
  if (!g_file_get_contents (conf_path && *conf_path ? conf_path : "/etc/mke2fs.conf", &conf, &conf_len, NULL))
    conf_len = 0;
  bg_sha256_update (sum, conf ? conf : "", conf_len);
  return g_strndup (bg_sha256_get_string (sum), 16);
}

/* Makes @template (of @size) with mke2fs under a temporary name in its
 * directory, synced, then renamed into place: a `vm up` running beside
 * this one sees either no template or a whole one, and the one that
 * renames last wins (both are good). A leftover temporary file (a crash
 * mid-way) has a name no lookup matches. */
static gboolean
make_template (const char  *template,
               guint64      size,
               GError     **error)
{
  g_autofree char *dir = g_path_get_dirname (template);
  g_autofree char *tmp = g_strconcat (template, ".tmp-XXXXXX", NULL);
  g_autofree const char **argv = g_new0 (const char *, G_N_ELEMENTS (format) + 2);
  g_auto(BgFd) fd = -1;
  g_auto(BgFd) dfd = -1;
  guint n = 0;

  if (!bg_paths_mkdir_private (dir, error))
    return FALSE;
  fd = g_mkstemp_full (tmp, O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    return bg_error_errno (error, errno, "Cannot create", tmp);
  if (ftruncate (fd, size) < 0)
    {
      int errsv = errno;
      g_unlink (tmp);
      return bg_error_errno (error, errsv, "Cannot size", tmp);
    }
  argv[n++] = "mke2fs";
  for (guint i = 0; format[i]; i++)
    argv[n++] = format[i];
  argv[n++] = tmp;
  if (!bg_spawn_run (argv, NULL, error))
    {
      g_unlink (tmp);
      return FALSE;
    }
  /* Every VM's disk is copied from it from now on: it is on the disk
   * before its name says it is whole. */
  if (fsync (fd) < 0 || rename (tmp, template) < 0)
    {
      int errsv = errno;
      g_unlink (tmp);
      return bg_error_errno (error, errsv, "Cannot keep", template);
    }
  dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0)
    fsync (dfd);
  return TRUE;
}

/* Opens the template for @size, making it first if there is none (or
 * what has its name is not a whole one of @size). */
static int
open_template (guint64   size,
               GError  **error)
{
  g_autofree char *mke2fs = bg_program_find ("mke2fs");
  g_autofree char *digest = NULL, *cache = NULL, *name = NULL, *template = NULL;
  int fd;
  struct stat st;

  if (mke2fs == NULL)
    {
      bg_programs_require ((const char * const[]) { "mke2fs", NULL }, "banger", error);
      return -1;
    }
  if ((digest = template_digest (mke2fs, error)) == NULL)
    return -1;
  cache = bg_paths_cache_dir ();
  name = g_strdup_printf ("%" G_GUINT64_FORMAT "-%s.ext4", size, digest);
  template = g_build_filename (cache, "upper", name, NULL);
  fd = open (template, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0 && fstat (fd, &st) == 0 && S_ISREG (st.st_mode) && (guint64) st.st_size == size)
    return fd;
  if (fd >= 0)
    close (fd);
  if (!make_template (template, size, error))
    {
      g_prefix_error (error, "making the template of layered VMs' disks %s: ", template);
      hint_enospc (error);
      return -1;
    }
  fd = open (template, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    bg_error_errno (error, errno, "Cannot open", template);
  return fd;
}

/* @dest, a new file of @size: an ext4 labelled banger-upper, copied
 * from the template, and synced unless @flags has BG_FILE_NO_SYNC (the
 * caller syncs it later, before it records the VM). Nothing is left at
 * @dest on failure. */
gboolean
bg_disk_upper_make (const char    *dest,
                    guint64        size,
                    BgFileFlags    flags,
                    GCancellable  *cancellable,
                    GError       **error)
{
  g_auto(BgFd) src = open_template (size, error);
  g_auto(BgFd) dst = -1;
  g_autoptr(GError) local = NULL;

  if (src < 0)
    return FALSE;
  dst = open (dest, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (dst < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "making the VM's disk %s: %s", dest, g_strerror (errno));
      return FALSE;
    }
  /* As when mke2fs made it here: the filesystem is on the disk before
   * the VM that needs it is recorded (a blank disk would not boot). */
  if (bg_disk_copy_sparse (src, dst, NULL, NULL, cancellable, &local) &&
      ((flags & BG_FILE_NO_SYNC) || fdatasync (dst) == 0))
    return TRUE;
  if (local == NULL)
    g_set_error (&local, BG_ERROR, BG_ERROR_FAILED, "cannot copy the disk: %s", g_strerror (errno));
  g_unlink (dest);
  /* A copy's advice is to ask for a smaller disk; this one's few
   * hundred KiB are the same at any size. */
  if (strstr (local->message, g_strerror (ENOSPC)) != NULL)
    {
      g_clear_error (&local);
      g_set_error (&local, BG_ERROR, BG_ERROR_FAILED, "cannot copy the disk: %s", g_strerror (ENOSPC));
      hint_enospc (&local);
    }
  g_propagate_prefixed_error (error, g_steal_pointer (&local), "making the VM's disk %s: ", dest);
  return FALSE;
}
