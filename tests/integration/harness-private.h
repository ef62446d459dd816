/* harness-private.h: what the harness's own files share. */
#pragma once

#include "harness.h"

G_BEGIN_DECLS

void   bg_harness_rm_rf         (const char *path);
void   bg_harness_write_file    (const char *dir,
                                 const char *name,
                                 const char *text,
                                 int         mode);
char  *bg_harness_make_dir      (const char *parent,
                                 const char *name,
                                 int         mode);
void   bg_harness_reset_network (void);

G_END_DECLS
