/* bg-kernel.h: what a kernel file is (vmlinux or bzImage) and says
 * about itself (its release, its embedded configuration), and what a
 * kernel configuration's text sets. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  BG_KERNEL_UNKNOWN,
  BG_KERNEL_VMLINUX,   /* an x86-64 ELF, as Firecracker boots */
  BG_KERNEL_BZIMAGE,   /* a compressed kernel with a Linux boot header */
} BgKernelFormat;

BgKernelFormat bg_kernel_detect          (int            fd,
                                          GError       **error);
gboolean       bg_kernel_extract_vmlinux (int            bzimage_fd,
                                          int            out_fd,
                                          GError       **error);
char          *bg_kernel_release         (const guint8  *data,
                                          gsize          len);
char          *bg_kernel_embedded_config (const guint8  *data,
                                          gsize          len);
GHashTable    *bg_kernel_parse_config    (const char    *text);

G_END_DECLS
