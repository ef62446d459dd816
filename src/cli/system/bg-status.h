/* bg-status.h: the checks of 'banger system status'. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  const char *name;
  gboolean    ok;
  gboolean    optional;  /* missing, but VMs run without it */
  char       *detail;
  char       *hint;
  char       *value;     /* a word for scripts (--json "value"), or NULL */
} BgCheck;

GArray *bg_status_run  (void);
void    bg_check_clear (BgCheck *check);

G_END_DECLS
