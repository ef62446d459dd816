/* bg-rootfs.c: what an image's root filesystem is and holds.
 *
 * An image's root is an ext4 file, read here with debugfs, never
 * mounted (the CLI runs as the user: no root, no loop device): what the
 * boot check (bg-bootcheck.c) needs from it (its /boot/config-<release>,
 * banger-init) and what `image show` says of it (mke2fs, sshd, what
 * applies the config drive).
 */
#include <unistd.h>

#include "bg-error.h"
#include "bg-rootfs.h"
#include "bg-spawn.h"

#define BANGER_INIT_IN_IMAGE "/usr/libexec/banger/banger-init"

gboolean
bg_rootfs_check_ext4 (int      fd,
                      GError **error)
{
  guint8 magic[2];

  /* The superblock is at 1024; s_magic 0xEF53 at offset 0x38 in it. */
  if (pread (fd, magic, 2, 1024 + 0x38) != 2 || magic[0] != 0x53 || magic[1] != 0xEF)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "rootfs: not an ext2/3/4 filesystem image (no ext superblock)");
      return FALSE;
    }
  return TRUE;
}

/* debugfs -R @request @rootfs: reads the ext4 without mounting it. */
static char *
debugfs (const char  *rootfs,
         const char  *request,
         GError     **error)
{
  const char *argv[] = { "debugfs", "-R", request, rootfs, NULL };
  char *out = NULL;

  if (!bg_spawn_run (argv, &out, error))
    return NULL;
  return out;
}

/* The /boot/config-* of the root filesystem that goes with @release (or
 * the only one), and its name. */
char *
bg_rootfs_kernel_config (const char  *rootfs,
                         const char  *release,
                         char       **name)
{
  g_autofree char *listing = debugfs (rootfs, "ls -p /boot", NULL);
  g_auto(GStrv) lines = NULL;
  g_autofree char *found = NULL;
  guint candidates = 0;

  if (listing == NULL)
    return NULL;
  lines = g_strsplit (listing, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      /* /inode/mode/uid/gid/name/size/ */
      g_auto(GStrv) f = g_strsplit (lines[i], "/", -1);

      if (g_strv_length (f) < 6 || !g_str_has_prefix (f[5], "config-"))
        continue;
      candidates++;
      if (found == NULL || (release != NULL && g_str_equal (f[5] + strlen ("config-"), release)))
        {
          g_free (found);
          found = g_strdup (f[5]);
        }
    }
  if (found == NULL || (candidates > 1 && release == NULL))
    return NULL;
  *name = g_strdup_printf ("/boot/%s", found);
  {
    g_autofree char *request = g_strdup_printf ("cat %s", *name);
    return debugfs (rootfs, request, NULL);
  }
}

/* Whether banger-init is in the image, so its VMs can be layered. */
gboolean
bg_rootfs_has_banger_init (const char *rootfs)
{
  g_autofree char *out = debugfs (rootfs, "stat " BANGER_INIT_IN_IMAGE, NULL);
  return out != NULL && strstr (out, "Type: regular") != NULL;
}

/* Whether banger-init can make a new VM's disk itself: it runs the
 * image's /sbin/mke2fs (an OCI image usually has none). */
gboolean
bg_rootfs_has_mke2fs (const char *rootfs)
{
  g_autofree char *out = debugfs (rootfs, "stat /sbin/mke2fs", NULL);
  return out != NULL && strstr (out, "Type: regular") != NULL;
}

/* Whether the image has an SSH server for `vm ssh` (OCI images and
 * minimal roots usually have none). */
gboolean
bg_rootfs_has_sshd (const char *rootfs)
{
  const char *paths[] = { "stat /usr/sbin/sshd", "stat /sbin/sshd" };

  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autofree char *out = debugfs (rootfs, paths[i], NULL);
      if (out != NULL && strstr (out, "Type: regular") != NULL)
        return TRUE;
    }
  return FALSE;
}

static gboolean
has_type (const char *rootfs,
          const char *path,
          const char *type)
{
  g_autofree char *request = g_strconcat ("stat ", path, NULL);
  g_autofree char *out = debugfs (rootfs, request, NULL);
  g_autofree char *want = g_strdup_printf ("Type: %s", type);

  return out != NULL && strstr (out, want) != NULL;
}

/* What applies a VM's config drive (network, host name, user, keys) in
 * this image, for `image show`: banger-guest-setup where its unit is
 * enabled, cloud-init where the image has it, banger-init as PID 1 where
 * the image has no init of its own, else nothing. */
const char *
bg_rootfs_guest_setup (const char *rootfs)
{
  if (has_type (rootfs, "/etc/systemd/system/sysinit.target.wants/banger-guest-setup.service", "symlink") &&
      has_type (rootfs, "/usr/libexec/banger/banger-guest-setup", "regular"))
    return "banger-guest-setup";
  if (has_type (rootfs, "/usr/bin/cloud-init", "regular"))
    return "cloud-init";
  /* An OCI image without an init: banger-init stays PID 1 and runs its
   * workload. debugfs's stat finds /sbin/init whatever it is (a link,
   * most often). */
  if (bg_rootfs_has_banger_init (rootfs) && has_type (rootfs, "/usr/libexec/banger/workload", "regular") &&
      !has_type (rootfs, "/sbin/init", ""))
    return "banger-init";
  return "none";
}
