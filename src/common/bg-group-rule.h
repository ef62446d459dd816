/* bg-group-rule.h: which group banger's optional polkit rule grants, and
 * the hint a refused user gets, told truthfully from what is installed. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Where polkitd reads rules from; the mechanism (root) reads them there. */
#define BG_POLKIT_RULES_DIRS { "/etc/polkit-1/rules.d", "/usr/share/polkit-1/rules.d", NULL }

char *bg_group_rule_find (const char * const *rules_dirs);
char *bg_group_rule_hint (const char       *group,
                          gboolean          group_exists,
                          const char       *user);

G_END_DECLS
