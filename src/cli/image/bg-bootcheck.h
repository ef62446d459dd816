/* bg-bootcheck.h: whether an image can boot on Firecracker, and be
 * layered, checked offline. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  gboolean  known;      /* a kernel configuration was found */
  char     *source;     /* where it was found, for people */
  char    **missing;    /* what a Firecracker guest needs and it lacks */
  gboolean  overlay;    /* overlayfs, built in or a module */
  gboolean  layered;    /* the root filesystem has banger-init */
} BgBootCheck;

BgBootCheck *bg_boot_check_run         (int            kernel_fd,
                                        const char    *rootfs,
                                        int            initrd_fd,
                                        GError       **error);
void         bg_boot_check_free        (BgBootCheck   *check);

/* The pure parts, for tests. */
char       **bg_boot_check_missing     (GHashTable    *config,
                                        GHashTable    *initrd_modules);
gboolean     bg_boot_check_overlay     (GHashTable    *config);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgBootCheck, bg_boot_check_free)

G_END_DECLS
