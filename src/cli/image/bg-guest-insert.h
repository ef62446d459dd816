/* bg-guest-insert.h: banger's guest programs written into banger's own
 * copy of an imported root filesystem, so that its VMs can be layered. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* What `debugfs -R "stat PATH"` says of one inode. */
typedef struct {
  char    type[16];   /* "regular", "directory", "symlink", ... */
  guint    mode;      /* permission bits, as printed (octal) */
  guint32  uid;
  guint32  gid;
  guint64  size;
} BgDebugfsStat;

gboolean bg_debugfs_parse_stat      (const char          *text,
                                     BgDebugfsStat       *out);
char    *bg_guest_insert_script     (const char * const  *names);
gboolean bg_guest_insert_programs   (const char          *rootfs,
                                     char               **copy_reason,
                                     GError             **error);

G_END_DECLS
