/* main.c: banger's entry point and command dispatch.
 *
 * banger GROUP COMMAND [OPTION…] [ARG…], one GOptionContext per level, as
 * flatpak does. Usage errors (unknown commands or options, wrong argument
 * counts, invalid values) exit 2 with one line naming the problem and
 * where to look; failures of the work itself exit 1.
 */
#include <locale.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bg-cli.h"
#include "bg-error.h"

static const BgCommandGroup groups[] = {
  { "vm", "Create, run and manage VMs", bg_vm_commands },
  { "image", "Manage the images VMs are made from", bg_image_commands },
  { "system", "Inspect and repair banger's host setup", bg_system_commands },
  { NULL }
};

static char *
groups_description (void)
{
  GString *s = g_string_new ("Commands:\n");

  for (const BgCommandGroup *g = groups; g->name != NULL; g++)
    g_string_append_printf (s, "  %-8s %s\n", g->name, g->summary);
  g_string_append (s,
                   "\nRun 'banger COMMAND --help' for the commands of each group.\n"
                   "\nExit status: 0 on success, 1 when the work failed, 2 on a usage error.");
  return g_string_free (s, FALSE);
}

static char *
commands_description (const BgCommandGroup *group)
{
  GString *s = g_string_new (group->commands[0].func != NULL ? "Commands:\n" : "");

  for (const BgCommand *c = group->commands; c->name != NULL; c++)
    if (c->func == NULL)
      g_string_append_printf (s, "%s%s:\n", c == group->commands ? "" : "\n", c->name);
    else
      g_string_append_printf (s, "  %-12s %s\n", c->name, c->summary);
  g_string_append_printf (s, "\nRun 'banger %s COMMAND --help' for a command's options.",
                          group->name);
  return g_string_free (s, FALSE);
}

static void
usage_error (const char *message)
{
  g_printerr ("banger: %s\n", message);
}

static int
exit_code_for (const GError *error)
{
  if (error->domain == G_OPTION_ERROR)
    return BG_EXIT_USAGE;
  if (g_error_matches (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT))
    return BG_EXIT_USAGE;
  return BG_EXIT_FAILURE;
}

/* Options parsed before the group are global; "banger --json vm ls" and
 * "banger vm ls --json" mean the same. */
static gboolean opt_version;

static int
run_group (BgCli                 *cli,
           const BgCommandGroup  *group,
           int                    argc,
           char                 **argv)
{
  g_autofree char *group_path = g_strdup_printf ("banger %s", group->name);
  g_autofree char *command_path = NULL;
  g_autoptr(GError) error = NULL;
  const BgCommand *command = NULL;

  if (argc < 2 || g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h") ||
      g_str_equal (argv[1], "help"))
    {
      g_autoptr(GOptionContext) context = g_option_context_new ("COMMAND [OPTION…]");
      g_autofree char *help = NULL;
      g_autofree char *desc = commands_description (group);

      g_set_prgname (group_path);
      g_option_context_set_summary (context, group->summary);
      g_option_context_set_description (context, desc);
      help = g_option_context_get_help (context, TRUE, NULL);
      if (argc < 2)
        {
          g_printerr ("%s", help);
          return BG_EXIT_USAGE;
        }
      g_print ("%s", help);
      return BG_EXIT_OK;
    }

  for (const BgCommand *c = group->commands; c->name != NULL; c++)
    if (c->func != NULL && g_str_equal (c->name, argv[1]))
      command = c;

  if (command == NULL)
    {
      g_autofree char *msg = NULL;

      if (argv[1][0] == '-')
        msg = g_strdup_printf ("'%s' needs a command before options like '%s'; see '%s --help'",
                               group_path, argv[1], group_path);
      else
        msg = g_strdup_printf ("unknown command '%s %s'; see '%s --help'",
                               group_path, argv[1], group_path);
      usage_error (msg);
      return BG_EXIT_USAGE;
    }

  command_path = g_strdup_printf ("%s %s", group_path, command->name);
  argv[1] = command_path;
  if (!command->func (cli, argc - 1, argv + 1, &error))
    {
      int code = exit_code_for (error);

      if (error->domain == G_OPTION_ERROR && !strstr (error->message, "--help"))
        g_printerr ("banger: %s; see '%s --help'\n", error->message, command_path);
      else
        g_printerr ("banger: %s\n", error->message);
      return code;
    }
  return BG_EXIT_OK;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *desc = NULL;
  BgCli cli = { 0 };
  GOptionEntry entries[] = {
    { "version", 0, 0, G_OPTION_ARG_NONE, &opt_version, "Print the version and exit", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &cli.json, "Print machine-readable JSON instead of text", NULL },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &cli.verbose, "Say more about what is happening", NULL },
    { NULL }
  };

  /* Everything banger creates (sockets, state, keys) is private to the
   * user; set it once so no file is ever born wider than 0600. */
  umask (077);
  setlocale (LC_ALL, "");
  g_set_prgname ("banger");
  cli.is_tty = isatty (STDOUT_FILENO);

  context = g_option_context_new ("COMMAND [OPTION…]");
  g_option_context_set_summary (context,
                                "Disposable Linux dev sandboxes as Firecracker microVMs.");
  desc = groups_description ();
  g_option_context_set_description (context, desc);
  g_option_context_add_main_entries (context, entries, NULL);
  /* Stop at the group name; the rest belongs to the group's parser. */
  g_option_context_set_strict_posix (context, TRUE);

  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("banger: %s; see 'banger --help'\n", error->message);
      return BG_EXIT_USAGE;
    }

  if (opt_version)
    {
      g_print ("banger %s\n", PACKAGE_VERSION);
      return BG_EXIT_OK;
    }

  if (argc < 2)
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);
      g_printerr ("%s", help);
      return BG_EXIT_USAGE;
    }

  for (const BgCommandGroup *g = groups; g->name != NULL; g++)
    if (g_str_equal (g->name, argv[1]))
      return run_group (&cli, g, argc - 1, argv + 1);

  {
    g_autofree char *shown = g_strescape (argv[1], NULL);
    g_autofree char *msg = g_strdup_printf ("unknown command '%s'; see 'banger --help'", shown);
    usage_error (msg);
  }
  return BG_EXIT_USAGE;
}
