/* Which group banger's polkit rule grants, read as polkitd orders its
 * rules files, and the hint built from it (issue 29). */
#include <glib/gstdio.h>

#include "bg-group-rule.h"

static char *
make_dir (const char *parent,
          const char *name)
{
  char *path = g_build_filename (parent, name, NULL);

  g_assert_cmpint (g_mkdir (path, 0755), ==, 0);
  return path;
}

static void
write_rule (const char *dir,
            const char *name,
            const char *text)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);

  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

#define RULE(group) \
  "polkit.addRule(function(action, subject) {\n" \
  "    if ((action.id == \"org.banger.network\" || action.id == \"org.banger.vm\") &&\n" \
  "        subject.isInGroup(\"" group "\")) {\n" \
  "        return polkit.Result.YES;\n" \
  "    }\n});\n"

static void
test_find_follows_polkits_order (void)
{
  g_autofree char *tmp = g_dir_make_tmp ("bg-rules-XXXXXX", NULL);
  g_autofree char *etc = make_dir (tmp, "etc"), *usr = make_dir (tmp, "usr");
  const char * const dirs[] = { etc, usr, NULL };
  g_autofree char *none = NULL, *usr_only = NULL, *earlier = NULL, *tie = NULL;

  /* Nothing, or rules that are not banger's or grant no group. */
  write_rule (usr, "10-other.rules", "polkit.addRule(function(a, s) { if (s.isInGroup(\"wheel\")) return 1; });");
  write_rule (usr, "20-banger-admin.rules", "// org.banger.admin for root only\n");
  write_rule (usr, "30-banger.txt", RULE ("notarule"));
  none = bg_group_rule_find (dirs);
  g_assert_null (none);

  write_rule (usr, "50-banger.rules", RULE ("banger"));
  usr_only = bg_group_rule_find (dirs);
  g_assert_cmpstr (usr_only, ==, "banger");

  /* An earlier file name wins, whichever directory holds it. */
  write_rule (etc, "49-site.rules", RULE ("devs"));
  earlier = bg_group_rule_find (dirs);
  g_assert_cmpstr (earlier, ==, "devs");

  /* The same name in /etc and /usr: /etc's. */
  {
    g_autofree char *site = g_build_filename (etc, "49-site.rules", NULL);
    g_assert_cmpint (g_unlink (site), ==, 0);
  }
  write_rule (etc, "50-banger.rules", RULE ("staff"));
  tie = bg_group_rule_find (dirs);
  g_assert_cmpstr (tie, ==, "staff");

  /* A group name that is no group name is not believed. */
  write_rule (etc, "50-banger.rules", RULE ("a b\\\"; x"));
  write_rule (usr, "50-banger.rules", RULE ("-bad"));
  g_assert_null (bg_group_rule_find (dirs));

  {
    const char *argv[] = { "rm", "-rf", tmp, NULL };
    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL));
  }
}

static void
test_hint_names_only_a_real_group (void)
{
  g_autofree char *ok = bg_group_rule_hint ("banger", TRUE, "ann");
  g_autofree char *no_group = bg_group_rule_hint ("banger", FALSE, "ann");
  g_autofree char *no_rule = bg_group_rule_hint (NULL, FALSE, "ann");

  g_assert_cmpstr (ok, ==, "ask an administrator to add you to the banger group "
                           "(usermod -aG banger ann, then log in again)");
  g_assert_true (g_str_has_prefix (no_group, "banger's polkit rule for the banger group is installed but "
                                             "that group does not exist: an administrator creates it "
                                             "(groupadd --system banger)"));
  g_assert_true (g_str_has_prefix (no_rule, "no polkit rule grants a group banger's actions on this host"));
  g_assert_nonnull (strstr (no_rule, "POLKIT_GROUP=banger tools/bootstrap"));
  g_assert_null (strstr (no_rule, "usermod"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/group-rule/find-follows-polkits-order", test_find_follows_polkits_order);
  g_test_add_func ("/group-rule/hint-names-only-a-real-group", test_hint_names_only_a_real_group);
  return g_test_run ();
}
