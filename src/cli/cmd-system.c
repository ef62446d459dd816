/* cmd-system.c: banger system … — the host side of banger. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "bg-cli.h"
#include "bg-client.h"
#include "bg-config.h"
#include "bg-error.h"
#include "bg-paths.h"

typedef struct {
  const char *name;
  gboolean    ok;
  char       *detail;
  char       *hint;
} Check;

static void
check_clear (Check *c)
{
  g_free (c->detail);
  g_free (c->hint);
}

static void
check_mechanism (Check *c)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  const char *version;
  guint32 uid;

  c->name = "mechanism";
  reply = bg_client_call ("Ping", NULL, G_VARIANT_TYPE ("(su)"), NULL, NULL, &error);
  if (reply == NULL)
    {
      c->detail = g_strdup (error->message);
      if (strstr (error->message, "system D-Bus"))
        c->hint = g_strdup ("start the system bus (systemctl start dbus) or log in to a normal session");
      else
        c->hint = g_strdup ("install banger with tools/bootstrap so D-Bus can start banger-mechanism");
      return;
    }
  g_variant_get (reply, "(&su)", &version, &uid);
  c->ok = TRUE;
  c->detail = g_strdup_printf ("banger-mechanism %s answers (it sees you as uid %u)", version, uid);
}

static void
check_polkit (Check *c)
{
  static const char * const actions[] = {
    "org.banger.network", "org.banger.storage", "org.banger.vm", "org.banger.admin",
  };
  g_autofree char *path = g_build_filename (BG_POLKIT_ACTIONS_DIR, "org.banger.policy", NULL);
  g_autofree char *text = NULL;
  g_autoptr(GString) missing = g_string_new (NULL);

  c->name = "polkit actions";
  if (!g_file_get_contents (path, &text, NULL, NULL))
    {
      c->detail = g_strdup_printf ("%s is not installed", path);
      c->hint = g_strdup ("install banger with tools/bootstrap; polkitd reads actions only from "
                          BG_POLKIT_ACTIONS_DIR);
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (actions); i++)
    {
      g_autofree char *needle = g_strdup_printf ("id=\"%s\"", actions[i]);
      if (strstr (text, needle) == NULL)
        g_string_append_printf (missing, "%s%s", missing->len ? ", " : "", actions[i]);
    }
  if (missing->len > 0)
    {
      c->detail = g_strdup_printf ("%s lacks %s", path, missing->str);
      c->hint = g_strdup ("reinstall banger: the installed policy is from another version");
      return;
    }
  c->ok = TRUE;
  c->detail = g_strdup_printf ("%s defines all %u actions", path, (guint) G_N_ELEMENTS (actions));
}

static void
check_kvm (Check *c)
{
  int fd, version;

  c->name = "kvm";
  fd = open ("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    {
      int errsv = errno;
      c->detail = g_strdup_printf ("cannot open /dev/kvm: %s", g_strerror (errsv));
      if (errsv == ENOENT)
        c->hint = g_strdup ("enable virtualization in the firmware and load kvm_intel or kvm_amd");
      else if (errsv == EACCES || errsv == EPERM)
        c->hint = g_strdup ("add yourself to the group that owns /dev/kvm (usually 'kvm') and log in again");
      else
        c->hint = g_strdup ("check that KVM works on this host");
      return;
    }
  version = ioctl (fd, KVM_GET_API_VERSION, 0);
  close (fd);
  if (version != KVM_API_VERSION)
    {
      c->detail = g_strdup_printf ("/dev/kvm reports API version %d, expected %d", version, KVM_API_VERSION);
      c->hint = g_strdup ("this kernel's KVM is not usable by Firecracker");
      return;
    }
  c->ok = TRUE;
  c->detail = g_strdup_printf ("/dev/kvm is usable (API version %d)", version);
}

/* The mechanism resolves the VMM from its own root-owned config; show the
 * same choice here. */
static char *
resolve_firecracker (const char **source)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autofree char *conf = g_build_filename (BG_SYSCONFDIR, "mechanism.conf", NULL);
  char *path;

  if (g_key_file_load_from_file (kf, conf, G_KEY_FILE_NONE, NULL) &&
      (path = g_key_file_get_string (kf, "vmm", "firecracker", NULL)) != NULL)
    {
      *source = "from " BG_SYSCONFDIR "/mechanism.conf";
      return path;
    }
  if (g_file_test (BG_DEFAULT_FIRECRACKER, G_FILE_TEST_IS_EXECUTABLE))
    {
      *source = "compiled-in default";
      return g_strdup (BG_DEFAULT_FIRECRACKER);
    }
  *source = "from PATH";
  return g_find_program_in_path ("firecracker");
}

static void
check_firecracker (Check *c)
{
  g_autofree char *path = NULL;
  g_autofree char *out = NULL;
  g_autoptr(GError) error = NULL;
  const char *source = NULL;
  int status = 0;

  c->name = "firecracker";
  path = resolve_firecracker (&source);
  if (path == NULL)
    {
      c->detail = g_strdup ("no firecracker binary in " BG_SYSCONFDIR "/mechanism.conf, at "
                            BG_DEFAULT_FIRECRACKER " or on PATH");
      c->hint = g_strdup ("download a release from github.com/firecracker-microvm/firecracker/releases "
                          "and install it as " BG_DEFAULT_FIRECRACKER);
      return;
    }

  {
    const char *argv[] = { path, "--version", NULL };
    if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                       &out, NULL, &status, &error) ||
        !g_spawn_check_wait_status (status, &error))
      {
        c->detail = g_strdup_printf ("%s (%s) does not run: %s", path, source, error->message);
        c->hint = g_strdup ("install a working Firecracker binary for this architecture");
        return;
      }
  }
  c->ok = TRUE;
  g_strstrip (out);
  if (strchr (out, '\n'))
    *strchr (out, '\n') = '\0';
  c->detail = g_strdup_printf ("%s (%s): %s", path, source, out);
}

static void
check_runtime_dir (Check *c)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;

  c->name = "runtime dir";
  dir = bg_paths_ensure_runtime_dir (&error);
  if (dir == NULL)
    {
      c->detail = g_strdup (error->message);
      c->hint = g_strdup ("set XDG_RUNTIME_DIR to a private directory, or remove the one named");
      return;
    }
  c->ok = TRUE;
  c->detail = g_strdup_printf ("%s (private, 0700)", dir);
}

static void
check_config (Check *c)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BgConfig) config = NULL;

  c->name = "config";
  config = bg_config_load_default (&error);
  if (config == NULL)
    {
      c->detail = g_strdup (error->message);
      c->hint = g_strdup ("fix the value named, or move the file away to use the defaults");
      return;
    }
  c->ok = TRUE;
  if (!g_file_test (config->path, G_FILE_TEST_EXISTS))
    c->detail = g_strdup_printf ("%s absent, using defaults", config->path);
  else if (config->warnings->len > 0)
    c->detail = g_strdup_printf ("%s (%u warning%s: %s)", config->path, config->warnings->len,
                                 config->warnings->len == 1 ? "" : "s",
                                 (char *) config->warnings->pdata[0]);
  else
    c->detail = g_strdup_printf ("%s", config->path);
}

static gboolean
cmd_status (BgCli    *cli,
            int       argc,
            char    **argv,
            GError  **error)
{
  Check checks[6] = { { 0 } };
  void (*run[]) (Check *) = {
    check_mechanism, check_polkit, check_kvm, check_firecracker, check_runtime_dir, check_config,
  };
  gboolean all_ok = TRUE;

  if (!bg_cli_parse (cli, argv[0], NULL,
                     "Check that this host can run banger VMs.\n\n"
                     "Exits 0 when every check passes and 1 otherwise.",
                     NULL, &argc, &argv, error) ||
      !bg_cli_expect_args (argv[0], argc, 0, 0, error))
    return FALSE;

  for (guint i = 0; i < G_N_ELEMENTS (run); i++)
    {
      run[i] (&checks[i]);
      all_ok &= checks[i].ok;
    }

  if (cli->json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "ok");
      json_builder_add_boolean_value (b, all_ok);
      json_builder_set_member_name (b, "checks");
      json_builder_begin_array (b);
      for (guint i = 0; i < G_N_ELEMENTS (checks); i++)
        {
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "name");
          json_builder_add_string_value (b, checks[i].name);
          json_builder_set_member_name (b, "status");
          json_builder_add_string_value (b, checks[i].ok ? "ok" : "missing");
          json_builder_set_member_name (b, "detail");
          json_builder_add_string_value (b, checks[i].detail);
          json_builder_set_member_name (b, "hint");
          if (checks[i].hint)
            json_builder_add_string_value (b, checks[i].hint);
          else
            json_builder_add_null_value (b);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      bg_cli_print_json (root);
    }
  else
    {
      for (guint i = 0; i < G_N_ELEMENTS (checks); i++)
        {
          g_print ("%-15s %-8s %s\n", checks[i].name, checks[i].ok ? "ok" : "missing",
                   checks[i].detail);
          if (checks[i].hint)
            g_print ("%-15s %-8s hint: %s\n", "", "", checks[i].hint);
        }
    }

  for (guint i = 0; i < G_N_ELEMENTS (checks); i++)
    check_clear (&checks[i]);
  bg_client_shutdown ();

  if (!all_ok)
    {
      /* The report is the output; the exit code tells scripts. */
      g_set_error_literal (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                           "this host is not ready to run banger VMs (see above)");
      return FALSE;
    }
  return TRUE;
}

const BgCommand bg_system_commands[] = {
  { "status", NULL, "Check that this host can run banger VMs", cmd_status },
  { NULL }
};
