/* bg-disk-vm.c: a VM's own disk from its image, by the strategies of
 * bg-disk.c (reflink, layered, copy). Kept apart from bg-disk.c because
 * it needs the image store (BgImage), which itself copies disks with
 * bg-disk.c: so each depends only on what is below it. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "bg-disk-upper.h"
#include "bg-disk-vm.h"
#include "bg-error.h"
#include "bg-fd.h"

/* A layered VM's own disk: an empty sparse file of @size, no data. */
static gboolean
create_layered (const char  *dest,
                guint64      size,
                GError     **error)
{
  g_auto(BgFd) fd = open (dest, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

  if (fd < 0 || ftruncate (fd, size) < 0)
    {
      int errsv = errno;
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "making the VM's disk %s: %s", dest, g_strerror (errsv));
      if (fd >= 0)
        g_unlink (dest);
      return FALSE;
    }
  return TRUE;
}

/* The VM's disk in @dir, of @size: "disk.ext4" (reflink, copy) or
 * "upper.img" (layered), as @want allows and this filesystem and image
 * can. What was made in @used, and why in @reason. */
gboolean
bg_disk_vm_make (BgImage      *image,
                 const char   *dir,
                 BgDiskMode    want,
                 guint64       size,
                 BgDiskMode   *used,
                 char        **reason,
                 GCancellable *cancellable,
                 GError      **error)
{
  return bg_disk_vm_make_full (image, dir, want, size, BG_FILE_NONE, used, reason, cancellable, error);
}

gboolean
bg_disk_vm_make_full (BgImage      *image,
                      const char   *dir,
                      BgDiskMode    want,
                      guint64       size,
                      BgFileFlags   flags,
                      BgDiskMode   *used,
                      char        **reason,
                      GCancellable *cancellable,
                      GError      **error)
{
  g_autofree char *disk = g_build_filename (dir, "disk.ext4", NULL);
  g_autofree char *upper = g_build_filename (dir, "upper.img", NULL);
  g_autoptr(GError) local = NULL;

  if (want == BG_DISK_MODE_LAYERED || (want == BG_DISK_MODE_AUTO && image->layered))
    {
      if (!image->layered)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                       "disk-mode layered: image %s has no banger-init (build images with 'banger image build', "
                       "or choose another disk-mode)", image->name);
          return FALSE;
        }
      /* Reflink first, where it works: a clone is a whole disk of the
       * VM's own, and costs nothing either. */
      if (want == BG_DISK_MODE_AUTO && bg_disk_create (image->rootfs, disk, BG_DISK_MODE_REFLINK, size, used,
                                                       cancellable, &local))
        {
          *reason = g_strdup ("reflink: this filesystem shares the image's extents with the VM's disk");
          return TRUE;
        }
      *used = BG_DISK_MODE_LAYERED;
      *reason = g_strdup (want == BG_DISK_MODE_LAYERED
                          ? "layered: as banger.conf asks"
                          : "layered: this filesystem cannot reflink, and the image has banger-init, so VMs share "
                            "it read-only and write to disks of their own");
      /* banger-init formats a blank disk with the image's mke2fs; an
       * image without one (an OCI image) gets a copy of a formatted
       * template. */
      if (image->format_upper)
        return bg_disk_upper_make (upper, size, flags, cancellable, error);
      return create_layered (upper, size, error);
    }
  if (!bg_disk_create (image->rootfs, disk, want, size, used, cancellable, error))
    return FALSE;
  if (*used == BG_DISK_MODE_REFLINK)
    *reason = g_strdup ("reflink: this filesystem shares the image's extents with the VM's disk");
  else if (want == BG_DISK_MODE_COPY)
    *reason = g_strdup ("copy: as banger.conf asks");
  else
    *reason = g_strdup ("copy: this filesystem cannot reflink, and the image has no banger-init to share it");
  return TRUE;
}
