/* bg-rootfs.h: what an image's root filesystem is (an ext4) and holds,
 * read offline. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean     bg_rootfs_check_ext4      (int            fd,
                                        GError       **error);
char        *bg_rootfs_kernel_config   (const char    *rootfs,
                                        const char    *release,
                                        char         **name);
gboolean     bg_rootfs_has_banger_init (const char    *rootfs);
gboolean     bg_rootfs_has_mke2fs      (const char    *rootfs);
gboolean     bg_rootfs_has_sshd        (const char    *rootfs);
const char  *bg_rootfs_guest_setup     (const char    *rootfs);

G_END_DECLS
