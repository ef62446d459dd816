/* bg-cli.c: what every command shares: its arguments parsed in one call
 * (BgUsage), printing for people and scripts (--json), warnings, and
 * Ctrl-C. Tables are bg-table.c's. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "bg-cli.h"
#include "bg-error.h"

volatile sig_atomic_t bg_interrupted;

static GOptionEntry global_entries[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, NULL,
    "Print machine-readable JSON instead of text", NULL },
  { "verbose", 'v', 0, G_OPTION_ARG_NONE, NULL,
    "Say more about what is happening", NULL },
  { NULL }
};

gboolean
bg_cli_expect_args (const char  *command_path,
                    int          argc,
                    int          min,
                    int          max,
                    GError     **error)
{
  int n = argc - 1;

  if (n < min)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                   "'%s' needs %d argument%s; see '%s --help'",
                   command_path, min, min == 1 ? "" : "s", command_path);
      return FALSE;
    }
  if (max >= 0 && n > max)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                   "'%s' takes at most %d argument%s; see '%s --help'",
                   command_path, max, max == 1 ? "" : "s", command_path);
      return FALSE;
    }
  return TRUE;
}

gboolean
bg_cli_parse (BgCli          *cli,
              const BgUsage  *usage,
              int            *argc,
              char         ***argv,
              GError        **error)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GArray) all = g_array_new (TRUE, TRUE, sizeof (GOptionEntry));
  const char *command_path = (*argv)[0];

  /* The global options are listed with each command's own, so every
   * --help shows everything that command accepts. */
  for (GOptionEntry *e = usage->entries; e != NULL && e->long_name != NULL; e++)
    g_array_append_val (all, *e);
  for (guint i = 0; global_entries[i].long_name != NULL; i++)
    {
      GOptionEntry e = global_entries[i];
      e.arg_data = i == 0 ? (gpointer) &cli->json : (gpointer) &cli->verbose;
      g_array_append_val (all, e);
    }

  context = g_option_context_new (usage->params ? usage->params : "");
  g_option_context_set_summary (context, usage->summary);
  g_option_context_add_main_entries (context, (GOptionEntry *) (gpointer) all->data, NULL);

  /* GOptionContext prints "Usage: <prgname> ..."; make that the full
   * command path so --help reads "Usage: banger vm ls [OPTION…]". */
  g_set_prgname (command_path);
  if (!g_option_context_parse (context, argc, argv, error))
    return FALSE;

  /* "--" only separates; it is not an argument. */
  if (*argc > 1 && g_strcmp0 ((*argv)[1], "--") == 0)
    {
      memmove (&(*argv)[1], &(*argv)[2], (*argc - 1) * sizeof (char *));
      (*argc)--;
    }
  return bg_cli_expect_args (command_path, *argc, usage->min_args, usage->max_args, error);
}

void
bg_cli_print_json (JsonNode *node)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autofree char *text = NULL;

  json_generator_set_pretty (gen, TRUE);
  json_generator_set_root (gen, node);
  text = json_generator_to_data (gen, NULL);
  g_print ("%s\n", text);
}

/* @value (a floating one is taken) as JSON: an a{sv} is an object. */
void
bg_cli_print_variant (GVariant *value)
{
  g_autoptr(GVariant) owned = g_variant_ref_sink (value);
  g_autoptr(JsonNode) node = json_gvariant_serialize (owned);

  bg_cli_print_json (node);
}

/* Prints what @builder built; TRUE, to end a command with. */
gboolean
bg_cli_print_built (JsonBuilder *builder)
{
  g_autoptr(JsonNode) root = json_builder_get_root (builder);

  bg_cli_print_json (root);
  return TRUE;
}

void
bg_cli_warn (const char *format,
             ...)
{
  g_autofree char *msg = NULL;
  va_list args;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_printerr ("banger: warning: %s\n", msg);
}

/* What a command did (or, still running, is doing): a line for people,
 * or with --json its @result (a floating one is taken), an a{sv} for
 * scripts; NULL prints nothing there, the exit status says it all.
 * TRUE, to end a command with. */
gboolean
bg_cli_done (BgCli      *cli,
             GVariant   *result,
             const char *format,
             ...)
{
  g_autoptr(GVariant) owned = result != NULL ? g_variant_ref_sink (result) : NULL;
  g_autofree char *msg = NULL;
  va_list args;

  if (cli->json)
    {
      if (owned != NULL)
        bg_cli_print_variant (owned);
      return TRUE;
    }
  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_print ("%s\n", msg);
  return TRUE;
}

char *
bg_cli_format_age (gint64 since_unix)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  gint64 s = since_unix > 0 && now > since_unix ? now - since_unix : 0;

  if (since_unix <= 0)
    return g_strdup ("-");
  if (s < 60)
    return g_strdup_printf ("%" G_GINT64_FORMAT "s", s);
  if (s < 3600)
    return g_strdup_printf ("%" G_GINT64_FORMAT "m", s / 60);
  if (s < 86400)
    return g_strdup_printf ("%" G_GINT64_FORMAT "h%02" G_GINT64_FORMAT "m", s / 3600, (s % 3600) / 60);
  return g_strdup_printf ("%" G_GINT64_FORMAT "d%02" G_GINT64_FORMAT "h", s / 86400, (s % 86400) / 3600);
}

/* Test builds only: BANGER_TEST_PAUSE_AT=<step> stops the process there,
 * so a test can kill it at exactly that step. */
void
bg_cli_test_hook (const char *step)
{
#ifdef BG_TEST_HOOKS
  if (g_strcmp0 (g_getenv ("BANGER_TEST_PAUSE_AT"), step) == 0)
    {
      g_printerr ("banger: paused at %s\n", step);
      raise (SIGSTOP);
    }
#endif
}

/* Ctrl-C is the main thread's to hear: a thread of the CLI's own calls
 * this first, so SIGINT and SIGTERM never land on it. */
void
bg_cli_block_interrupts (void)
{
  sigset_t signals;

  sigemptyset (&signals);
  sigaddset (&signals, SIGINT);
  sigaddset (&signals, SIGTERM);
  pthread_sigmask (SIG_BLOCK, &signals, NULL);
}

/* Whether Ctrl-C was pressed, as an error to return. */
gboolean
bg_cli_check_interrupt (GError **error)
{
  if (!bg_interrupted)
    return TRUE;
  g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED, "interrupted");
  return FALSE;
}
