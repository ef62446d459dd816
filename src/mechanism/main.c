/* banger-mechanism: the privileged half of banger. Started by D-Bus
 * activation; see data/dbus and data/systemd. */
#include <locale.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gio/gio.h>

#include "bg-size.h"
#include "daemon.h"
#include "mechanism.h"
#include "confine.h"

#define DEFAULT_IDLE_TIMEOUT 30

/* [limits]: per-user limits. A value that is not a positive number is
 * reported and the default kept. */
static void
load_limits (GKeyFile   *conf,
             const char *path,
             BgLimits   *limits)
{
  static const struct { const char *key; gsize offset; } counts[] = {
    { "pending-calls", G_STRUCT_OFFSET (BgLimits, pending_calls) },
    { "auth-timeout", G_STRUCT_OFFSET (BgLimits, auth_timeout_s) },
    { "vms", G_STRUCT_OFFSET (BgLimits, vms) },
    { "taps", G_STRUCT_OFFSET (BgLimits, taps) },
    { "loops", G_STRUCT_OFFSET (BgLimits, loops) },
  };
  g_autofree char *size = g_key_file_get_value (conf, "limits", "boot-file-size", NULL);
  g_autofree char *console = g_key_file_get_value (conf, "limits", "console-size", NULL);

  *limits = (BgLimits) BG_LIMITS_DEFAULT;
  for (guint i = 0; i < G_N_ELEMENTS (counts); i++)
    {
      g_autofree char *text = g_key_file_get_value (conf, "limits", counts[i].key, NULL);
      guint64 n;

      if (text == NULL)
        continue;
      if (g_ascii_string_to_unsigned (g_strstrip (text), 10, 1, G_MAXUINT, &n, NULL))
        G_STRUCT_MEMBER (guint, limits, counts[i].offset) = (guint) n;
      else
        g_warning ("%s: [limits] %s=%s is not a positive number; using %u", path, counts[i].key, text,
                   G_STRUCT_MEMBER (guint, limits, counts[i].offset));
    }
  if (size != NULL && !bg_parse_size (g_strstrip (size), &limits->boot_file_bytes, NULL))
    g_warning ("%s: [limits] boot-file-size=%s is not a size (e.g. 512M); using the default", path, size);
  if (console != NULL && !bg_parse_size (g_strstrip (console), &limits->console_bytes, NULL))
    g_warning ("%s: [limits] console-size=%s is not a size (e.g. 8M); using the default", path, console);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GKeyFile) conf = g_key_file_new ();
  g_autofree char *conf_path = NULL;
  g_autofree char *run_dir = NULL;
  g_autofree char *config_dir = NULL;
  g_autofree char *state_dir = NULL;
  gint idle_timeout = -1;
  gboolean no_idle = FALSE, replace = FALSE, verbose = FALSE, version = FALSE;
  BgDaemonOptions options = { 0 };
  BgMechanism *mechanism;
  int rc;
  GOptionEntry entries[] = {
    { "idle-timeout", 0, 0, G_OPTION_ARG_INT, &idle_timeout,
      "Exit after SECONDS without calls or pending work (default 30)", "SECONDS" },
    { "no-idle", 0, 0, G_OPTION_ARG_NONE, &no_idle, "Never exit when idle (debugging)", NULL },
    { "replace", 'r', 0, G_OPTION_ARG_NONE, &replace, "Replace a running instance (debugging)", NULL },
    { "run-dir", 0, 0, G_OPTION_ARG_FILENAME, &run_dir,
      "Registry directory (default " BG_RUNDIR ")", "DIR" },
    { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
      "Directory for jails (default " BG_STATEDIR ")", "DIR" },
    { "config-dir", 0, 0, G_OPTION_ARG_FILENAME, &config_dir,
      "Configuration directory (default " BG_SYSCONFDIR ")", "DIR" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debug messages", NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { NULL }
  };

  /* Whatever the mechanism creates is private unless it says otherwise;
   * sockets in particular are born 0600. */
  umask (077);
  setlocale (LC_ALL, "");
  /* Every caller's descriptors pass through here: use all the room the
   * hard limit gives (no capability needed to raise the soft one). */
  {
    struct rlimit nofile;
    if (getrlimit (RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max)
      {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit (RLIMIT_NOFILE, &nofile);
      }
  }
  signal (SIGPIPE, SIG_IGN);

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context,
                                "banger's privileged mechanism. It is started by D-Bus on demand;\n"
                                "you do not run it yourself.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("banger-mechanism: %s\n", error->message);
      return 2;
    }
  if (version)
    {
      g_print ("banger-mechanism %s\n", PACKAGE_VERSION);
      return 0;
    }
  if (geteuid () != 0)
    {
      g_printerr ("banger-mechanism: must run as root (it is started by D-Bus)\n");
      return 1;
    }
  if (verbose)
    g_setenv ("G_MESSAGES_DEBUG", "all", TRUE);

  options.run_dir = run_dir ? run_dir : BG_RUNDIR;
  options.config_dir = config_dir ? config_dir : BG_SYSCONFDIR;
  options.state_dir = state_dir ? state_dir : BG_STATEDIR;
  conf_path = g_build_filename (options.config_dir, "mechanism.conf", NULL);
  if (!g_key_file_load_from_file (conf, conf_path, G_KEY_FILE_NONE, &error) &&
      !g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
    g_warning ("Ignoring %s: %s", conf_path, error->message);
  g_clear_error (&error);
  if (idle_timeout < 0)
    {
      idle_timeout = DEFAULT_IDLE_TIMEOUT;
      if (g_key_file_has_key (conf, "mechanism", "idle-timeout", NULL))
        idle_timeout = g_key_file_get_integer (conf, "mechanism", "idle-timeout", NULL);
    }
  options.idle_timeout = no_idle ? 0 : (guint) MAX (idle_timeout, 1);
  load_limits (conf, conf_path, &options.limits);
  options.replace = replace;

  mechanism = bg_mechanism_new (&options, &error);
  if (mechanism == NULL)
    {
      g_printerr ("banger-mechanism: %s\n", error->message);
      return 1;
    }
  if (bg_confine_landlock_abi () < 6)
    g_message ("Landlock ABI %d has no scopes (Linux 6.12): each jailed VMM gets a network namespace "
               "of its own, which keeps it from the host's abstract unix sockets", bg_confine_landlock_abi ());
  rc = bg_mechanism_run (mechanism);
  bg_mechanism_free (mechanism);
  return rc;
}
