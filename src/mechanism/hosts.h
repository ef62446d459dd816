/* hosts.h: the names file libnss_banger reads. */
#pragma once

#include "types.h"

G_BEGIN_DECLS

gboolean bg_hosts_write (const char  *run_dir,
                         BgRegistry  *registry,
                         GError     **error);
void     bg_hosts_remove (const char *run_dir);

G_END_DECLS
