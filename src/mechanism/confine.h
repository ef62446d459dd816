/* confine.h: what the jailed VMM is (its binary, checked), and what it
 * may do (seccomp, Landlock). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

int        bg_confine_open_vmm      (const char   *path,
                                     gboolean     *dynamic,
                                     GError      **error);
gboolean   bg_confine_check_vmm     (const char   *path,
                                     gboolean     *dynamic,
                                     GError      **error);
int        bg_confine_vmm           (gboolean      landlock_scopes);
int        bg_confine_landlock_abi  (void);

G_END_DECLS
