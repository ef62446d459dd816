/* bg-group-rule.c: banger's optional polkit rule lets the members of one
 * group run VMs without a password prompt. Whether such a rule is
 * installed, and which group it names, can only be read by root (polkit's
 * rules directories are polkitd's, mode 0700), so the mechanism finds it
 * and the CLI asks the mechanism. The hint built from the answer names a
 * group only where the rule for it is installed and the group exists:
 * telling a user to join a group that does not exist sends them and their
 * administrator to a command that fails. */
#include <string.h>

#include "bg-group-rule.h"

/* Rules files are small; anything bigger is not banger's. */
#define RULES_FILE_MAX (64 * 1024)
#define GROUP_NAME_MAX 64

static gboolean
group_name_valid (const char *name,
                  gsize       len)
{
  if (len == 0 || len > GROUP_NAME_MAX)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (name[i]) && name[i] != '_' && name[i] != '-' && name[i] != '.')
      return FALSE;
  return name[0] != '-';
}

/* The group a rules file grants banger's actions to: the rule banger
 * installs (data/polkit/50-banger.rules.in) names org.banger actions and
 * grants them on subject.isInGroup("GROUP"). */
static char *
group_in_rules (const char *text)
{
  const char *at;

  if (strstr (text, "org.banger.") == NULL || (at = strstr (text, "isInGroup(\"")) == NULL)
    return NULL;
  at += strlen ("isInGroup(\"");
  for (const char *end = at; *end; end++)
    if (*end == '"')
      return group_name_valid (at, end - at) ? g_strndup (at, end - at) : NULL;
  return NULL;
}

typedef struct {
  char  *base;
  guint  dir;
  char  *path;
} RulesFile;

static void
rules_file_free (gpointer data)
{
  RulesFile *f = data;

  g_free (f->base);
  g_free (f->path);
  g_free (f);
}

/* polkitd reads rules files ordered by file name across its directories,
 * /etc's first on a tie. */
static gint
rules_file_compare (gconstpointer a,
                    gconstpointer b)
{
  const RulesFile *fa = *(RulesFile * const *) a, *fb = *(RulesFile * const *) b;
  int c = strcmp (fa->base, fb->base);

  return c != 0 ? c : (gint) fa->dir - (gint) fb->dir;
}

/* The group named by the first rules file, in polkitd's order, that
 * grants banger's actions to a group; NULL when none does. */
char *
bg_group_rule_find (const char * const *rules_dirs)
{
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func (rules_file_free);

  for (guint i = 0; rules_dirs[i]; i++)
    {
      g_autoptr(GDir) dir = g_dir_open (rules_dirs[i], 0, NULL);
      const char *entry;

      while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
        if (g_str_has_suffix (entry, ".rules"))
          {
            RulesFile *f = g_new0 (RulesFile, 1);

            f->base = g_strdup (entry);
            f->dir = i;
            f->path = g_build_filename (rules_dirs[i], entry, NULL);
            g_ptr_array_add (files, f);
          }
    }
  g_ptr_array_sort (files, rules_file_compare);
  for (guint i = 0; i < files->len; i++)
    {
      RulesFile *f = files->pdata[i];
      g_autofree char *text = NULL;
      gsize len;
      char *group;

      if (!g_file_get_contents (f->path, &text, &len, NULL) || len > RULES_FILE_MAX)
        continue;
      if ((group = group_in_rules (text)) != NULL)
        return group;
    }
  return NULL;
}

/* What a user refused by polkit can do about it, given what is
 * installed: @group is the group the installed rule names (NULL: no
 * rule), @group_exists whether the system knows that group. */
char *
bg_group_rule_hint (const char *group,
                    gboolean    group_exists,
                    const char *user)
{
  if (group != NULL && group_exists)
    return g_strdup_printf ("ask an administrator to add you to the %s group "
                            "(usermod -aG %s %s, then log in again)", group, group, user);
  if (group != NULL)
    return g_strdup_printf ("banger's polkit rule for the %s group is installed but that group does not "
                            "exist: an administrator creates it (groupadd --system %s) and adds you to it "
                            "(usermod -aG %s %s, then log in again)", group, group, group, user);
  return g_strdup ("no polkit rule grants a group banger's actions on this host: an administrator "
                   "installs one (the banger package does; from source: POLKIT_GROUP=banger "
                   "tools/bootstrap) and adds you to that group");
}
