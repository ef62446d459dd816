/* bg-bootcheck.c: whether an image can boot on Firecracker, checked
 * offline, and whether its VMs can be layered.
 *
 * Firecracker boots a kernel directly, with virtio-mmio devices (given
 * on the kernel command line, or in ACPI tables), a virtio block device
 * as root, virtio-net, an 8250 serial console, and the i8042 keyboard
 * controller its Ctrl-Alt-Del goes through; the guest wants KVM guest
 * support. The kernel's configuration says which of these it has: the
 * image's /boot/config-<version> (read off the ext4 by bg-rootfs.c, no
 * mount), else the configuration embedded in the kernel (IKCONFIG). What
 * must be there before the root is mounted may be a module in the initrd
 * instead: its module list is read from the initrd itself (cpio archives,
 * compressed or not, one after another). Layered VMs also need overlayfs
 * and banger-init in the image.
 */
#include "bg-bootcheck.h"
#include "bg-initrd.h"
#include "bg-kernel.h"
#include "bg-rootfs.h"

void
bg_boot_check_free (BgBootCheck *check)
{
  if (check == NULL)
    return;
  g_free (check->source);
  g_strfreev (check->missing);
  g_free (check);
}

typedef struct {
  const char *what;
  const char *option;       /* CONFIG_... */
  const char *alternative;  /* another option that also does, or NULL */
  const char *module;       /* built as a module, may it be in the initrd? */
  gboolean    module_late;  /* a module from the root filesystem will do */
} Need;

static const Need needs[] = {
  { "virtio-mmio devices", "CONFIG_VIRTIO_MMIO", NULL, "virtio_mmio", FALSE },
  { "virtio-mmio devices named on the command line or in ACPI", "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES",
    "CONFIG_ACPI", NULL, FALSE },
  { "virtio block devices", "CONFIG_VIRTIO_BLK", NULL, "virtio_blk", FALSE },
  { "virtio network devices", "CONFIG_VIRTIO_NET", NULL, "virtio_net", FALSE },
  { "the 8250 serial port", "CONFIG_SERIAL_8250", NULL, NULL, FALSE },
  { "the serial console", "CONFIG_SERIAL_8250_CONSOLE", NULL, NULL, FALSE },
  { "the i8042 keyboard controller (Ctrl-Alt-Del)", "CONFIG_SERIO_I8042", NULL, "i8042", TRUE },
  { "KVM guest support", "CONFIG_KVM_GUEST", NULL, NULL, FALSE },
};

static const Need overlay_need = { "overlayfs (layered VMs)", "CONFIG_OVERLAY_FS", NULL, "overlay", TRUE };

static gboolean
has (const Need *n,
     GHashTable *config,
     GHashTable *initrd)
{
  const char *v = g_hash_table_lookup (config, n->option);
  const char *alt = n->alternative ? g_hash_table_lookup (config, n->alternative) : NULL;

  if (g_strcmp0 (v, "y") == 0 || g_strcmp0 (alt, "y") == 0)
    return TRUE;
  if (g_strcmp0 (v, "m") == 0 && n->module != NULL)
    return n->module_late || (initrd != NULL && g_hash_table_contains (initrd, n->module));
  return FALSE;
}

static char *
describe (const Need *n)
{
  if (n->module != NULL && !n->module_late)
    return g_strdup_printf ("%s (%s, built in or a module in the initrd)", n->what, n->option);
  if (n->module != NULL)
    return g_strdup_printf ("%s (%s, built in or a module)", n->what, n->option);
  if (n->alternative != NULL)
    return g_strdup_printf ("%s (%s or %s, built in)", n->what, n->option, n->alternative);
  return g_strdup_printf ("%s (%s, built in)", n->what, n->option);
}

/* What a Firecracker guest needs that @config (with @initrd's modules,
 * NULL without an initrd) lacks; empty when nothing. */
char **
bg_boot_check_missing (GHashTable *config,
                       GHashTable *initrd)
{
  g_autoptr(GStrvBuilder) missing = g_strv_builder_new ();

  for (guint i = 0; i < G_N_ELEMENTS (needs); i++)
    if (!has (&needs[i], config, initrd))
      {
        g_autofree char *what = describe (&needs[i]);
        g_strv_builder_add (missing, what);
      }
  return g_strv_builder_end (missing);
}

gboolean
bg_boot_check_overlay (GHashTable *config)
{
  return has (&overlay_need, config, NULL);
}

/* The check of an image: its kernel @kernel_fd, its root filesystem
 * @rootfs (a path: read with debugfs), its initrd @initrd_fd (or -1). */
BgBootCheck *
bg_boot_check_run (int          kernel_fd,
                   const char  *rootfs,
                   int          initrd_fd,
                   GError     **error)
{
  g_autoptr(BgBootCheck) check = g_new0 (BgBootCheck, 1);
  g_autoptr(GMappedFile) kernel = NULL, initrd = NULL;
  g_autoptr(GHashTable) config = NULL, modules = NULL;
  g_autofree char *kpath = g_strdup_printf ("/proc/self/fd/%d", kernel_fd);
  g_autofree char *release = NULL, *text = NULL, *name = NULL;

  kernel = g_mapped_file_new (kpath, FALSE, error);
  if (kernel == NULL)
    return NULL;
  release = bg_kernel_release ((const guint8 *) g_mapped_file_get_contents (kernel),
                               g_mapped_file_get_length (kernel));
  check->layered = bg_rootfs_has_banger_init (rootfs);
  if ((text = bg_rootfs_kernel_config (rootfs, release, &name)) != NULL)
    check->source = g_strdup_printf ("%s in the root filesystem", name);
  else if ((text = bg_kernel_embedded_config ((const guint8 *) g_mapped_file_get_contents (kernel),
                                              g_mapped_file_get_length (kernel))) != NULL)
    check->source = g_strdup ("the configuration embedded in the kernel");
  else
    return g_steal_pointer (&check);   /* unknown */

  if (initrd_fd >= 0)
    {
      g_autofree char *ipath = g_strdup_printf ("/proc/self/fd/%d", initrd_fd);
      initrd = g_mapped_file_new (ipath, FALSE, error);
      if (initrd == NULL ||
          (modules = bg_initrd_modules ((const guint8 *) g_mapped_file_get_contents (initrd),
                                        g_mapped_file_get_length (initrd), error)) == NULL)
        return NULL;
    }
  config = bg_kernel_parse_config (text);
  check->known = TRUE;
  check->missing = bg_boot_check_missing (config, modules);
  check->overlay = bg_boot_check_overlay (config);
  return g_steal_pointer (&check);
}
