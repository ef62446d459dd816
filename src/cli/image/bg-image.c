/* bg-image.c: images under $XDG_DATA_HOME/banger/images/NAME/.
 *
 * An image is a kernel Firecracker can boot (an x86-64 ELF vmlinux; a
 * bzImage is decompressed into one, since released Firecracker does not
 * boot bzImages), an ext4 root filesystem, an optional initrd, and
 * image.json. Imports are built in a hidden temporary directory and
 * renamed into place, so an interrupted import leaves nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "bg-cli.h"
#include "bg-bootcheck.h"
#include "bg-disk.h"
#include "bg-error.h"
#include "bg-fd.h"
#include "bg-file.h"
#include "bg-guest-insert.h"
#include "bg-image.h"
#include "bg-kernel.h"
#include "bg-names.h"
#include "bg-rootfs.h"
#include "bg-sha256.h"
#include "bg-spawn.h"

void
bg_image_free (BgImage *image)
{
  if (image == NULL)
    return;
  g_free (image->name);
  g_free (image->dir);
  g_free (image->kernel);
  g_free (image->rootfs);
  g_free (image->initrd);
  g_free (image->cmdline);
  g_free (image->kernel_sha256);
  g_free (image->rootfs_sha256);
  g_free (image->source);
  g_free (image->boot_source);
  g_strfreev (image->boot_missing);
  g_free (image->manifest_digest);
  g_strfreev (image->layers);
  g_free (image->copy_reason);
  g_free (image->guest_setup);
  g_free (image);
}

JsonNode *
bg_image_to_json (const BgImage *image)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

#define S(k, v) if (v) { json_builder_set_member_name (b, k); json_builder_add_string_value (b, v); }
#define I(k, v) json_builder_set_member_name (b, k); json_builder_add_int_value (b, v)
  json_builder_begin_object (b);
  I ("version", 1);
  S ("name", image->name);
  S ("cmdline", image->cmdline);
  I ("kernel_bytes", image->kernel_bytes);
  I ("rootfs_bytes", image->rootfs_bytes);
  S ("kernel_sha256", image->kernel_sha256);
  S ("rootfs_sha256", image->rootfs_sha256);
  json_builder_set_member_name (b, "initrd");
  json_builder_add_boolean_value (b, image->initrd != NULL);
  I ("created_at", image->created_at);
  S ("source", image->source);
  json_builder_set_member_name (b, "layered");
  json_builder_add_boolean_value (b, image->layered);
  S ("copy_reason", image->copy_reason);
  json_builder_set_member_name (b, "format_upper");
  json_builder_add_boolean_value (b, image->format_upper);
  if (image->sshd_known)
    {
      json_builder_set_member_name (b, "sshd");
      json_builder_add_boolean_value (b, image->has_sshd);
    }
  S ("guest_setup", image->guest_setup);
  if (image->manifest_digest)
    {
      json_builder_set_member_name (b, "oci");
      json_builder_begin_object (b);
      S ("manifest_digest", image->manifest_digest);
      json_builder_set_member_name (b, "layers");
      json_builder_begin_array (b);
      for (guint i = 0; image->layers && image->layers[i]; i++)
        json_builder_add_string_value (b, image->layers[i]);
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_set_member_name (b, "boot_check");
  if (image->boot_source == NULL)
    json_builder_add_null_value (b);
  else
    {
      json_builder_begin_object (b);
      S ("source", image->boot_source);
      json_builder_set_member_name (b, "missing");
      json_builder_begin_array (b);
      for (guint i = 0; image->boot_missing && image->boot_missing[i]; i++)
        json_builder_add_string_value (b, image->boot_missing[i]);
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_object (b);
#undef S
#undef I
  return json_builder_get_root (b);
}

/* Where image @name is kept: the one place a name becomes a path below
 * @images_dir, checked here (@field names it in the error). */
static char *
image_dir (const char  *images_dir,
           const char  *field,
           const char  *name,
           GError     **error)
{
  if (!bg_name_validate (field, name, error))
    return NULL;
  return g_build_filename (images_dir, name, NULL);
}

/* The same for an image about to be made: one of that name is refused. */
char *
bg_image_new_dir (const char  *images_dir,
                  const char  *name,
                  GError     **error)
{
  g_autofree char *dir = image_dir (images_dir, "NAME", name, error);

  if (dir != NULL && g_file_test (dir, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_EXISTS,
                   "an image named \"%s\" exists; remove it first with 'banger image rm %s'", name, name);
      return NULL;
    }
  return g_steal_pointer (&dir);
}

BgImage *
bg_image_load (const char  *images_dir,
               const char  *name,
               GError     **error)
{
  g_autoptr(BgImage) image = g_new0 (BgImage, 1);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local = NULL;
  g_autofree char *path = NULL;
  JsonObject *o;
  JsonNode *root;

  if ((image->dir = image_dir (images_dir, "image", name, error)) == NULL)
    return NULL;
  image->name = g_strdup (name);
  path = g_build_filename (image->dir, "image.json", NULL);
  if (!json_parser_load_from_mapped_file (parser, path, &local))
    {
      if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND,
                     "No image named \"%s\"; see 'banger image ls', or make one with "
                     "'banger image import %s --kernel FILE --rootfs FILE'", name, name);
      else
        g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "%s: %s", path, local->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "%s: not a JSON object", path);
      return NULL;
    }
  o = json_node_get_object (root);
  image->cmdline = g_strdup (json_object_get_string_member_with_default (o, "cmdline", NULL));
  image->kernel_bytes = json_object_get_int_member_with_default (o, "kernel_bytes", 0);
  image->rootfs_bytes = json_object_get_int_member_with_default (o, "rootfs_bytes", 0);
  image->kernel_sha256 = g_strdup (json_object_get_string_member_with_default (o, "kernel_sha256", NULL));
  image->rootfs_sha256 = g_strdup (json_object_get_string_member_with_default (o, "rootfs_sha256", NULL));
  image->created_at = json_object_get_int_member_with_default (o, "created_at", 0);
  image->source = g_strdup (json_object_get_string_member_with_default (o, "source", NULL));
  image->layered = json_object_get_boolean_member_with_default (o, "layered", FALSE);
  image->copy_reason = g_strdup (json_object_get_string_member_with_default (o, "copy_reason", NULL));
  image->format_upper = json_object_get_boolean_member_with_default (o, "format_upper", FALSE);
  image->sshd_known = json_object_has_member (o, "sshd");
  image->has_sshd = json_object_get_boolean_member_with_default (o, "sshd", FALSE);
  image->guest_setup = g_strdup (json_object_get_string_member_with_default (o, "guest_setup", NULL));
  if (json_object_has_member (o, "boot_check") && JSON_NODE_HOLDS_OBJECT (json_object_get_member (o, "boot_check")))
    {
      JsonObject *bc = json_object_get_object_member (o, "boot_check");
      JsonArray *missing = json_object_get_array_member (bc, "missing");
      g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

      image->boot_source = g_strdup (json_object_get_string_member_with_default (bc, "source", "?"));
      for (guint i = 0; missing && i < json_array_get_length (missing); i++)
        g_strv_builder_add (b, json_array_get_string_element (missing, i));
      image->boot_missing = g_strv_builder_end (b);
    }
  if (json_object_has_member (o, "oci") && JSON_NODE_HOLDS_OBJECT (json_object_get_member (o, "oci")))
    {
      JsonObject *oci = json_object_get_object_member (o, "oci");
      JsonNode *layers = json_object_get_member (oci, "layers");
      g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

      image->manifest_digest = g_strdup (json_object_get_string_member_with_default (oci, "manifest_digest", "?"));
      for (guint i = 0; layers && JSON_NODE_HOLDS_ARRAY (layers) && i < json_array_get_length (json_node_get_array (layers)); i++)
        {
          const char *l = json_array_get_string_element (json_node_get_array (layers), i);
          if (l)
            g_strv_builder_add (b, l);
        }
      image->layers = g_strv_builder_end (b);
    }
  image->kernel = g_build_filename (image->dir, "vmlinux", NULL);
  image->rootfs = g_build_filename (image->dir, "rootfs.ext4", NULL);
  if (json_object_get_boolean_member_with_default (o, "initrd", FALSE))
    image->initrd = g_build_filename (image->dir, "initrd.img", NULL);
  return g_steal_pointer (&image);
}

static char *
sha256_of_fd (int          fd,
              BgProgress  *progress,
              GError     **error)
{
  g_autoptr(BgSha256) sum = bg_sha256_new (error);
  g_autofree guint8 *buf = NULL;
  struct stat st;
  guint64 done = 0;
  ssize_t n;

  if (sum == NULL)
    return NULL;
  buf = g_malloc (1 << 20);
  fstat (fd, &st);
  while ((n = pread (fd, buf, 1 << 20, done)) > 0)
    {
      if (bg_interrupted)
        {
          g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED, "interrupted");
          return NULL;
        }
      bg_sha256_update (sum, buf, n);
      done += n;
      bg_progress_bytes (progress, done, st.st_size);
    }
  if (n < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot read: %s", g_strerror (errno));
      return NULL;
    }
  return g_strdup (bg_sha256_get_string (sum));
}

static int
open_input (const char  *field,
            const char  *path,
            GError     **error)
{
  struct stat st;
  g_auto(BgFd) fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: cannot open %s: %s",
                   field, path, g_strerror (errno));
      return -1;
    }
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: %s is not a regular file", field, path);
      return -1;
    }
  return g_steal_fd (&fd);
}

/* Whether the image can boot on Firecracker, and be layered: read off
 * its kernel's configuration and initrd (bg-bootcheck.c). */
static gboolean
check_boot (BgImage  *image,
            GError  **error)
{
  g_autoptr(BgBootCheck) check = NULL;
  g_auto(BgFd) kfd = open (image->kernel, O_RDONLY | O_CLOEXEC);
  g_auto(BgFd) ifd = image->initrd ? open (image->initrd, O_RDONLY | O_CLOEXEC) : -1;

  check = kfd >= 0 ? bg_boot_check_run (kfd, image->rootfs, ifd, error) : NULL;
  if (check == NULL)
    return FALSE;
  /* Layered needs banger-init in the image, and overlayfs unless the
   * kernel's configuration is not known. */
  image->layered = check->layered && (!check->known || check->overlay);
  if (!image->layered && image->copy_reason == NULL)
    image->copy_reason = g_strdup (!check->layered
                                   ? "the root filesystem has no banger-init"
                                   : "its kernel has no overlayfs (CONFIG_OVERLAY_FS), which layered VMs are made of");
  else if (image->layered)
    g_clear_pointer (&image->copy_reason, g_free);
  image->format_upper = image->layered && !bg_rootfs_has_mke2fs (image->rootfs);
  /* So that `vm ssh` can say at once that a VM of it has no way in by
   * SSH, even where no guest agent answers. */
  image->sshd_known = TRUE;
  image->has_sshd = bg_rootfs_has_sshd (image->rootfs);
  g_free (image->guest_setup);
  image->guest_setup = g_strdup (bg_rootfs_guest_setup (image->rootfs));
  if (check->known)
    {
      image->boot_source = g_steal_pointer (&check->source);
      image->boot_missing = g_steal_pointer (&check->missing);
    }
  return TRUE;
}

/* A new file of the image, @mode whatever the umask: kernel and initrd
 * are readable by all (0644), as the jailed VMM reads them as its own
 * user; the root filesystem stays private. */
static int
create_output (const char  *path,
               int          mode,
               GError     **error)
{
  g_auto(BgFd) fd = open (path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);

  if (fd < 0 || fchmod (fd, mode) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot write %s: %s", path, g_strerror (errno));
      return -1;
    }
  return g_steal_fd (&fd);
}

/* vmlinux, as it is or extracted from a bzImage, and its checksum. */
static gboolean
import_kernel (BgImage         *image,
               int              kfd,
               BgKernelFormat   format,
               GError         **error)
{
  g_auto(BgFd) out = create_output (image->kernel, 0644, error);
  struct stat st;

  if (out < 0 ||
      (format == BG_KERNEL_BZIMAGE ? !bg_kernel_extract_vmlinux (kfd, out, error)
                                   : !bg_disk_copy_sparse (kfd, out, NULL, NULL, NULL, error)))
    return FALSE;
  fstat (out, &st);
  image->kernel_bytes = st.st_size;
  image->kernel_sha256 = sha256_of_fd (out, NULL, error);
  return image->kernel_sha256 != NULL;
}

/* The root filesystem: shared extents when the filesystem can, else the
 * data extents only; checksummed (the user's file), and checked once
 * here (read-only), so every VM disk made from it can be grown without
 * an fsck of its own. */
static gboolean
import_rootfs (BgImage             *image,
               const BgImageFiles  *files,
               int                  rfd,
               BgProgress          *progress,
               GError             **error)
{
  g_auto(BgFd) out = -1;
  const char *fsck[] = { "e2fsck", "-f", "-n", image->rootfs, NULL };
  g_autoptr(GError) local = NULL;
  struct stat st;
  /* A file banger just made beside the image (an OCI image's ext4) is
   * moved: a copy of it cost a pull as much as its fetch three times
   * over. Nor is it checksummed: the checksum says which file the user
   * gave, and this one banger made from the image the manifest digest
   * names (mke2fs's UUID and times make each one's sum its own, so it
   * would identify nothing), and reading it whole cost a pull 2.3 s.
   * Another filesystem (EXDEV) is copied as any input is. */
  gboolean moved = files->rootfs_is_ours && rename (files->rootfs, image->rootfs) == 0;

  if (moved)
    {
      bg_progress_step (progress, "moving the root filesystem into place");
      if (fchmod (rfd, 0600) < 0 || (out = dup (rfd)) < 0)
        return bg_error_errno (error, errno, "cannot take over", image->rootfs);
    }
  else if ((out = create_output (image->rootfs, 0600, error)) < 0)
    return FALSE;
  else if (bg_disk_reflink (rfd, out, NULL))
    {
      bg_progress_step (progress, "checksumming the root filesystem (its extents are shared, by reflink)");
      image->rootfs_sha256 = sha256_of_fd (rfd, progress, error);
    }
  else
    {
      g_autoptr(BgSha256) sum = bg_sha256_new (error);

      bg_progress_step (progress, "copying and checksumming the root filesystem");
      if (sum != NULL && bg_disk_copy_sparse (rfd, out, sum, progress, NULL, error))
        image->rootfs_sha256 = g_strdup (bg_sha256_get_string (sum));
    }
  if (image->rootfs_sha256 == NULL && !moved)
    return FALSE;
  fstat (out, &st);
  image->rootfs_bytes = st.st_size;

  bg_progress_step (progress, "checking the root filesystem");
  if (!bg_spawn_run (fsck, NULL, &local))
    {
      if (g_error_matches (local, BG_ERROR, BG_ERROR_FAILED))
        g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                     "rootfs: the filesystem has errors (e2fsck -fn); repair it with e2fsck first");
      else
        g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  /* Into banger's copy only (the user's file was only read), once it is
   * known to be sound: with banger-init in it, its VMs can be layered. */
  bg_progress_step (progress, "adding banger's guest programs to banger's copy, so its VMs can be layered");
  return bg_guest_insert_programs (image->rootfs, &image->copy_reason, error);
}

static gboolean
import_initrd (BgImage     *image,
               const char  *initrd,
               GError     **error)
{
  g_auto(BgFd) in = open_input ("initrd", initrd, error);
  g_auto(BgFd) out = -1;

  image->initrd = g_build_filename (image->dir, "initrd.img", NULL);
  return in >= 0 && (out = create_output (image->initrd, 0644, error)) >= 0 &&
         bg_disk_copy_sparse (in, out, NULL, NULL, NULL, error);
}

/* @files into the image's directory (its temporary one, while it is
 * made), the inputs checked before anything is written. */
static gboolean
import_files (BgImage             *image,
              const BgImageFiles  *files,
              BgProgress          *progress,
              GError             **error)
{
  g_auto(BgFd) kfd = open_input ("kernel", files->kernel, error);
  g_auto(BgFd) rfd = -1;
  BgKernelFormat format;

  if (kfd < 0 ||
      (format = bg_kernel_detect (kfd, error)) == BG_KERNEL_UNKNOWN ||
      (rfd = open_input ("rootfs", files->rootfs, error)) < 0 ||
      !bg_rootfs_check_ext4 (rfd, error))
    return FALSE;

  image->kernel = g_build_filename (image->dir, "vmlinux", NULL);
  image->rootfs = g_build_filename (image->dir, "rootfs.ext4", NULL);
  bg_progress_step (progress, format == BG_KERNEL_BZIMAGE ? "extracting vmlinux from the bzImage"
                                                          : "copying the kernel");
  if (!import_kernel (image, kfd, format, error) ||
      !import_rootfs (image, files, rfd, progress, error) ||
      (files->initrd != NULL && !import_initrd (image, files->initrd, error)))
    return FALSE;
  bg_progress_step (progress, "checking the kernel against what Firecracker needs");
  return check_boot (image, error);
}

BgImage *
bg_image_import (const char          *images_dir,
                 const char          *name,
                 const BgImageFiles  *files,
                 BgProgress          *progress,
                 GError             **error)
{
  g_autoptr(BgImage) image = g_new0 (BgImage, 1);
  g_autofree char *final = NULL, *json = NULL, *json_path = NULL;
  g_autoptr(JsonNode) node = NULL;

  if ((final = bg_image_new_dir (images_dir, name, error)) == NULL)
    return NULL;
  if (g_mkdir_with_parents (images_dir, 0700) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot create %s: %s", images_dir, g_strerror (errno));
      return NULL;
    }
  image->dir = g_strdup_printf ("%s/.import-%s-XXXXXX", images_dir, name);
  if (g_mkdtemp_full (image->dir, 0700) == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot create %s: %s", image->dir, g_strerror (errno));
      return NULL;
    }

  image->name = g_strdup (name);
  image->cmdline = g_strdup (files->cmdline);
  image->created_at = g_get_real_time () / G_USEC_PER_SEC;
  image->source = files->source ? g_strdup (files->source)
                                : g_strdup_printf ("import: kernel %s, rootfs %s", files->kernel, files->rootfs);
  image->manifest_digest = g_strdup (files->manifest_digest);
  image->layers = g_strdupv ((char **) files->layers);
  if (!import_files (image, files, progress, error))
    goto fail;

  node = bg_image_to_json (image);
  json = json_to_string (node, TRUE);
  json_path = g_build_filename (image->dir, "image.json", NULL);
  if (!bg_file_replace (json_path, json, -1, 0600, error))
    goto fail;
  /* The one step that makes the image exist. */
  if (rename (image->dir, final) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot move the image into place: %s", g_strerror (errno));
      goto fail;
    }
  return bg_image_load (images_dir, name, error);

fail:
  bg_file_remove_tree (image->dir, NULL);
  return NULL;
}

gboolean
bg_image_remove (const char  *images_dir,
                 const char  *name,
                 GError     **error)
{
  g_autofree char *dir = image_dir (images_dir, "NAME", name, error);
  g_autofree char *trash = NULL;

  if (dir == NULL)
    return FALSE;
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND, "No image named \"%s\"; see 'banger image ls'", name);
      return FALSE;
    }
  /* Renamed away first, so a half-removed image never looks whole. */
  trash = g_strdup_printf ("%s/.removing-%s-%" G_GINT64_FORMAT, images_dir, name, g_get_real_time ());
  if (rename (dir, trash) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot remove %s: %s", dir, g_strerror (errno));
      return FALSE;
    }
  return bg_file_remove_tree (trash, error);
}
