/* Runs the built banger binary and checks exit codes and messages. */
#include <gio/gio.h>
#include <glib/gstdio.h>

#include "bg-client.h"
#include "bg-state.h"

typedef struct {
  char  *tmp;
  char **envp;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autofree char *cfg = NULL, *state = NULL, *dat = NULL, *run = NULL;

  f->tmp = g_dir_make_tmp ("banger-cli-XXXXXX", NULL);
  cfg = g_build_filename (f->tmp, "config", NULL);
  state = g_build_filename (f->tmp, "state", NULL);
  dat = g_build_filename (f->tmp, "data", NULL);
  run = g_build_filename (f->tmp, "run", NULL);
  g_mkdir (run, 0700);
  f->envp = g_get_environ ();
  f->envp = g_environ_setenv (f->envp, "XDG_CONFIG_HOME", cfg, TRUE);
  f->envp = g_environ_setenv (f->envp, "XDG_STATE_HOME", state, TRUE);
  f->envp = g_environ_setenv (f->envp, "XDG_DATA_HOME", dat, TRUE);
  f->envp = g_environ_setenv (f->envp, "XDG_RUNTIME_DIR", run, TRUE);
  /* Never talk to a real bus from a unit test. */
  f->envp = g_environ_setenv (f->envp, "DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus", TRUE);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  const char *argv[] = { "rm", "-rf", "--", f->tmp, NULL };
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  g_strfreev (f->envp);
  g_free (f->tmp);
}

static int
run (Fixture *f, char **out, char **err, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  const char *arg;
  int status;
  va_list args;

  g_ptr_array_add (argv, (char *) g_getenv ("BANGER_CLI"));
  va_start (args, err);
  while ((arg = va_arg (args, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);

  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, f->envp, G_SPAWN_DEFAULT, NULL, NULL,
                               out, err, &status, &error));
  g_assert_no_error (error);
  g_assert_true (WIFEXITED (status));
  return WEXITSTATUS (status);
}

static guint
count_lines (const char *s)
{
  guint n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

static void
test_cli_unknown_command_exits_2_with_hint (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL;

  g_assert_cmpint (run (f, &out, &err, "frobnicate", NULL), ==, 2);
  g_assert_cmpstr (out, ==, "");
  g_assert_cmpuint (count_lines (err), ==, 1);
  g_assert_nonnull (strstr (err, "unknown command 'frobnicate'"));
  g_assert_nonnull (strstr (err, "banger --help"));
}

static void
test_cli_unknown_subcommand_exits_2 (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL;

  g_assert_cmpint (run (f, &out, &err, "vm", "frobnicate", NULL), ==, 2);
  g_assert_cmpuint (count_lines (err), ==, 1);
  g_assert_nonnull (strstr (err, "unknown command 'banger vm frobnicate'"));
  g_assert_nonnull (strstr (err, "banger vm --help"));
}

static void
test_cli_bad_option_exits_2 (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *out2 = NULL, *err2 = NULL;

  g_assert_cmpint (run (f, &out, &err, "vm", "ls", "--bogus", NULL), ==, 2);
  g_assert_cmpuint (count_lines (err), ==, 1);
  g_assert_nonnull (strstr (err, "--bogus"));
  g_assert_nonnull (strstr (err, "banger vm ls --help"));

  g_assert_cmpint (run (f, &out2, &err2, "--bogus", NULL), ==, 2);
  g_assert_cmpuint (count_lines (err2), ==, 1);
}

static void
test_cli_wrong_arg_count_exits_2 (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *out2 = NULL, *err2 = NULL;

  g_assert_cmpint (run (f, &out, &err, "vm", "show", NULL), ==, 2);
  g_assert_nonnull (strstr (err, "needs 1 argument"));
  g_assert_cmpint (run (f, &out2, &err2, "vm", "ls", "extra", NULL), ==, 2);
  g_assert_nonnull (strstr (err2, "at most 0 arguments"));
}

static void
test_cli_invalid_name_exits_2_naming_rule (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL;

  g_assert_cmpint (run (f, &out, &err, "vm", "show", "../etc", NULL), ==, 2);
  g_assert_nonnull (strstr (err, "NAME: invalid name"));
  g_assert_nonnull (strstr (err, "a-z, 0-9"));
}

static void
test_cli_help_at_every_level (Fixture *f, gconstpointer data)
{
  const char *levels[][3] = {
    { "--help", NULL, NULL },
    { "vm", "--help", NULL },
    { "image", "--help", NULL },
    { "system", "--help", NULL },
    { "vm", "ls", "--help" },
    { "vm", "show", "--help" },
    { "image", "ls", "--help" },
    { "system", "status", "--help" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (levels); i++)
    {
      g_autofree char *out = NULL, *err = NULL;

      g_assert_cmpint (run (f, &out, &err, levels[i][0], levels[i][1], levels[i][2], NULL), ==, 0);
      g_assert_true (g_str_has_prefix (out, "Usage:\n  banger"));
      g_assert_nonnull (strstr (out, "--help"));
    }
}

static void
test_cli_version (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL;

  g_assert_cmpint (run (f, &out, &err, "--version", NULL), ==, 0);
  g_assert_cmpstr (out, ==, "banger " PACKAGE_VERSION "\n");
}

static void
test_cli_no_command_shows_usage_and_exits_2 (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL;

  g_assert_cmpint (run (f, &out, &err, NULL), ==, 2);
  g_assert_nonnull (strstr (err, "Usage:"));
}

static JsonNode *
parse_json (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  return json_node_copy (json_parser_get_root (parser));
}

static void
test_cli_vm_ls_json_and_show (Fixture *f, gconstpointer data)
{
  g_autofree char *vms = g_build_filename (f->tmp, "state", "banger", "vms", NULL);
  g_autoptr(BgStateStore) store = bg_state_store_new (vms);
  g_autoptr(BgVmRecord) r = bg_vm_record_new ("box");
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_autofree char *out3 = NULL, *err3 = NULL;
  g_autoptr(JsonNode) node = NULL;
  JsonArray *array;

  r->cpus = 2;
  r->memory_mib = 2048;
  r->address = g_strdup ("172.30.0.9");
  g_assert_true (bg_state_store_save (store, r, NULL));

  g_assert_cmpint (run (f, &out, &err, "vm", "ls", "--json", NULL), ==, 0);
  node = parse_json (out);
  array = json_node_get_array (node);
  g_assert_cmpuint (json_array_get_length (array), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (array, 0), "address"),
                   ==, "172.30.0.9");

  g_assert_cmpint (run (f, &out2, &err2, "vm", "ls", NULL), ==, 0);
  g_assert_nonnull (strstr (out2, "NAME"));
  g_assert_nonnull (strstr (out2, "box"));
  g_assert_nonnull (strstr (out2, "2G"));

  g_assert_cmpint (run (f, &out3, &err3, "vm", "show", "missing", NULL), ==, 1);
  g_assert_nonnull (strstr (err3, "No VM named \"missing\""));
}

static void
test_cli_system_status_reports_each_check (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_autoptr(JsonNode) node = NULL;
  JsonArray *checks;
  const char *expected[] = { "mechanism", "polkit actions", "authorization", "kvm", "devices", "firecracker",
                             "programs", "image build", "names", "runtime dir", "config", "vms" };
  int rc;

  /* A login user's PATH: no /usr/sbin, where e2fsprogs lives. */
  f->envp = g_environ_setenv (f->envp, "PATH", "/usr/local/bin:/usr/bin:/bin:/usr/games", TRUE);
  rc = run (f, &out, &err, "system", "status", "--json", NULL);
  node = parse_json (out);
  checks = json_object_get_array_member (json_node_get_object (node), "checks");
  g_assert_cmpuint (json_array_get_length (checks), ==, G_N_ELEMENTS (expected));
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      JsonObject *c = json_array_get_object_element (checks, i);
      const char *status = json_object_get_string_member (c, "status");

      g_assert_cmpstr (json_object_get_string_member (c, "name"), ==, expected[i]);
      g_assert_true (g_str_equal (status, "ok") || g_str_equal (status, "missing") ||
                     (g_str_equal (status, "warning") && (i == 7 || i == 8)));
      /* Whatever is missing comes with a hint. */
      if (!g_str_equal (status, "ok") && i != 4 && i != 5)
        g_assert_nonnull (json_object_get_string_member (c, "hint"));
    }
  /* The bus address is bogus here, so the mechanism is missing. */
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (checks, 0), "status"),
                   ==, "missing");
  g_assert_cmpint (rc, ==, 1);
  /* Without the mechanism, the devices are not known either, and the
   * kvm line says why, not "join the kvm group". */
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (checks, 3), "status"),
                   ==, "missing");
  g_assert_nonnull (strstr (json_object_get_string_member (json_array_get_object_element (checks, 3), "detail"),
                            "cannot ask the mechanism"));
  g_assert_null (strstr (out, "kvm group"));
  /* The programs a VM needs are there, found beyond a login PATH. */
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (checks, 6), "status"),
                   ==, "ok");
  /* The runtime dir is the private one we provided. */
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (checks, 9), "status"),
                   ==, "ok");
  {
    g_autofree char *o = NULL, *e = NULL;
    g_autoptr(JsonNode) n = NULL;
    JsonObject *c;

    f->envp = g_environ_setenv (f->envp, "BANGER_GUEST_SETUP", "/nonexistent/banger-guest-setup", TRUE);
    run (f, &o, &e, "system", "status", "--json", NULL);
    n = parse_json (o);
    c = json_array_get_object_element (json_object_get_array_member (json_node_get_object (n), "checks"), 7);
    g_assert_cmpstr (json_object_get_string_member (c, "status"), ==, "warning");
    g_assert_nonnull (strstr (json_object_get_string_member (c, "detail"), "/nonexistent/banger-guest-setup"));
    g_assert_nonnull (strstr (json_object_get_string_member (c, "detail"), "--cloud-init"));
  }

  g_assert_cmpint (run (f, &out2, &err2, "system", "status", NULL), ==, 1);
  g_assert_nonnull (strstr (out2, "mechanism"));
  g_assert_nonnull (strstr (out2, "hint:"));
}

/* In a graphical session the desktop's polkit agent asks: banger starts
 * no pkttyagent of its own there (issue 29). */
static void
test_cli_graphical_session_starts_no_tty_agent (void)
{
  static const struct {
    const char *env[4];
    gboolean    graphical;
  } cases[] = {
    { { NULL }, FALSE },
    { { "XDG_SESSION_TYPE=tty", NULL }, FALSE },
    { { "XDG_SESSION_TYPE=wayland", NULL }, TRUE },
    { { "XDG_SESSION_TYPE=x11", NULL }, TRUE },
    { { "DISPLAY=:0", NULL }, TRUE },
    { { "XDG_SESSION_TYPE=tty", "DISPLAY=:1", NULL }, TRUE },     /* an X server started from a console */
    { { "WAYLAND_DISPLAY=wayland-0", NULL }, TRUE },
    { { "DISPLAY=localhost:10.0", "SSH_CONNECTION=10.0.0.1 5 10.0.0.2 22", NULL }, FALSE },   /* ssh -X */
    { { "XDG_SESSION_TYPE=wayland", "BANGER_POLKIT_AGENT=tty", NULL }, FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    g_assert_cmpint (bg_client_graphical_session (cases[i].env), ==, cases[i].graphical);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_assert_nonnull (g_getenv ("BANGER_CLI"));
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/cli/unknown-command-exits-2-with-hint", test_cli_unknown_command_exits_2_with_hint);
  ADD ("/cli/unknown-subcommand-exits-2", test_cli_unknown_subcommand_exits_2);
  ADD ("/cli/bad-option-exits-2", test_cli_bad_option_exits_2);
  ADD ("/cli/wrong-arg-count-exits-2", test_cli_wrong_arg_count_exits_2);
  ADD ("/cli/invalid-name-exits-2-naming-rule", test_cli_invalid_name_exits_2_naming_rule);
  ADD ("/cli/help-at-every-level", test_cli_help_at_every_level);
  ADD ("/cli/version", test_cli_version);
  ADD ("/cli/no-command-shows-usage", test_cli_no_command_shows_usage_and_exits_2);
  ADD ("/cli/vm-ls-json-and-show", test_cli_vm_ls_json_and_show);
  ADD ("/cli/system-status-reports-each-check", test_cli_system_status_reports_each_check);
  g_test_add_func ("/cli/graphical-session-starts-no-tty-agent", test_cli_graphical_session_starts_no_tty_agent);
  return g_test_run ();
}
