#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

char     *bg_paths_config_file         (void);
char     *bg_paths_data_dir            (void);
char     *bg_paths_state_dir           (void);
char     *bg_paths_cache_dir           (void);
char     *bg_paths_images_dir          (void);
char     *bg_paths_vms_dir             (void);
char     *bg_paths_vm_dir              (const char  *name);

char     *bg_paths_ensure_runtime_dir  (GError     **error);
char     *bg_paths_resolve_runtime_dir (const char  *xdg_runtime_dir,
                                        const char  *fallback_base,
                                        uid_t        uid,
                                        GError     **error);
char     *bg_paths_ensure_private_subdir (const char  *parent,
                                          const char  *name,
                                          GError     **error);
gboolean  bg_paths_mkdir_private       (const char  *path,
                                        GError     **error);

G_END_DECLS
