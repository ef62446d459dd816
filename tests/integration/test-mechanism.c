/* The mechanism on a private system bus with the real polkitd and policy,
 * called as root and as unprivileged test users. */
#include <signal.h>
#include <sys/wait.h>
#include <gio/gunixinputstream.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "harness.h"

#define E_NOT_AUTHORIZED "org.banger.Mechanism1.Error.NotAuthorized"
#define E_INVALID        "org.banger.Mechanism1.Error.InvalidArgument"
#define E_NOT_OWNER      "org.banger.Mechanism1.Error.NotOwner"
#define E_NOT_FOUND      "org.banger.Mechanism1.Error.NotFound"
#define E_LIMIT          "org.banger.Mechanism1.Error.LimitExceeded"

typedef struct {
  BgHarness *h;
} Fixture;

static void
setup (Fixture *f, gconstpointer data)
{
  f->h = bg_harness_start (GPOINTER_TO_UINT (data) ? GPOINTER_TO_UINT (data) : 60);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  bg_harness_stop (f->h);
}

static void
test_ping_reports_caller_uid_from_the_bus (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) root = bg_harness_call (f->h, NULL, "Ping", NULL, NULL);
  g_autoptr(BgCallResult) user = bg_harness_call (f->h, BG_TEST_USER_A, "Ping", NULL, NULL);
  g_autofree char *expect_root = g_strdup_printf ("('%s', uint32 0)", PACKAGE_VERSION);
  g_autofree char *expect_user = g_strdup_printf ("('%s', uint32 %u)", PACKAGE_VERSION,
                                                  bg_harness_uid (BG_TEST_USER_A));

  bg_assert_call_ok (root);
  g_assert_cmpstr (root->reply, ==, expect_root);
  /* Ping needs no authorization, and the uid is the bus's word. */
  bg_assert_call_ok (user);
  g_assert_cmpstr (user->reply, ==, expect_user);
}

static void
test_unprivileged_refused_without_rule (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) list = bg_harness_call (f->h, BG_TEST_USER_A, "ListResources", "(@a{sv} {},)", NULL);
  g_autoptr(BgCallResult) ensure = bg_harness_call (f->h, BG_TEST_USER_A, "EnsureNetwork", "(@a{sv} {},)", NULL);
  g_autoptr(BgCallResult) tap = bg_harness_call (f->h, BG_TEST_USER_A, "CreateTap", "(\'dev\', @a{sv} {})", NULL);

  bg_assert_call_error (list, E_NOT_AUTHORIZED, "org.banger.network");
  bg_assert_call_error (ensure, E_NOT_AUTHORIZED, "org.banger.network");
  bg_assert_call_error (tap, E_NOT_AUTHORIZED, "org.banger.network");
}

static void
test_unprivileged_allowed_with_rule (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) before = NULL;
  g_autoptr(BgCallResult) after = NULL;
  g_autoptr(BgCallResult) admin = NULL;
  g_autoptr(BgCallResult) removed = NULL;

  before = bg_harness_call (f->h, BG_TEST_USER_A, "ListResources", "(@a{sv} {},)", NULL);
  bg_assert_call_error (before, E_NOT_AUTHORIZED, NULL);

  bg_harness_set_group_rule (f->h, TRUE);
  after = bg_harness_call (f->h, BG_TEST_USER_A, "ListResources", "(@a{sv} {},)", NULL);
  bg_assert_call_ok (after);
  g_assert_cmpstr (after->reply, ==, "(@a(ssutsa{sv}) [],)");
  /* The group rule never grants acting on other users' resources. */
  admin = bg_harness_call (f->h, BG_TEST_USER_A, "ListResources", "({'all-users': <true>},)", NULL);
  bg_assert_call_error (admin, E_NOT_AUTHORIZED, "org.banger.admin");

  bg_harness_set_group_rule (f->h, FALSE);
  removed = bg_harness_call (f->h, BG_TEST_USER_A, "ListResources", "(@a{sv} {},)", NULL);
  bg_assert_call_error (removed, E_NOT_AUTHORIZED, NULL);
}

static void
test_root_is_allowed (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) list = bg_harness_call (f->h, NULL, "ListResources", "({'all-users': <true>},)", NULL);
  bg_assert_call_ok (list);
}

static void
test_invalid_input_names_the_field (Fixture *f, gconstpointer data)
{
  static const struct { const char *method; const char *args; const char *field; } cases[] = {
    { "ListResources", "({'bogus': <true>},)", "options: unknown key \"bogus\"" },
    { "ListResources", "({'all-users': <'yes'>},)", "options: key \"all-users\" must have type 'b'" },
    { "ListResources", "({'kind': <'frob'>},)", "options: key \"kind\"" },
    { "ReleaseResource", "('frob', 'x', @a{sv} {})", "kind: unknown resource kind" },
    { "ReleaseResource", "('tap', '../x', @a{sv} {})", "name:" },
    { "ReleaseResource", "('tap', 'bg-0123456789ab', {'x': <1>})", "options: unknown key" },
    { "EnsureNetwork", "({'force': <true>},)", "options: unknown key \"force\"" },
    { "CreateTap", "(\'Bad Name\', @a{sv} {})", "vm_name: invalid name" },
    { "CreateTap", "(\'\', @a{sv} {})", "vm_name: must not be empty" },
    { "CreateTap", "(\'../../etc\', @a{sv} {})", "vm_name: invalid name" },
    { "CreateTap", "(\'abcdefghijklmnopqrstuvwxyz0123456789\', @a{sv} {})", "vm_name: invalid name" },
    { "DeleteTap", "('eth0',)", "tap: \"eth0\" is not a banger tap name" },
    { "DeleteTap", "('banger0',)", "tap: " },
    { "DeleteTap", "('../x',)", "tap: " },
    { "DeleteTap", "('bg-0123456789abcdef',)", "tap: " },
  };

  bg_harness_set_group_rule (f->h, TRUE);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      /* As root (authorized for everything) and as an allowed user. */
      g_autoptr(BgCallResult) root = bg_harness_call (f->h, NULL, cases[i].method, cases[i].args, NULL);
      g_autoptr(BgCallResult) user = bg_harness_call (f->h, BG_TEST_USER_A, cases[i].method, cases[i].args, NULL);

      bg_assert_call_error (root, E_INVALID, cases[i].field);
      bg_assert_call_error (user, E_INVALID, cases[i].field);
    }
}

static void
test_wrong_types_are_refused (Fixture *f, gconstpointer data)
{
  static const struct { const char *method; const char *args; } cases[] = {
    { "Ping", "('extra',)" },
    { "CreateTap", "(42,)" },
    { "CreateTap", "('a', 'b')" },
    { "CreateTap", "('a',)" },
    { "ListResources", "('not a dict',)" },
    { "DeleteTap", "(@as [],)" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(BgCallResult) r = bg_harness_call (f->h, NULL, cases[i].method, cases[i].args, NULL);
      bg_assert_call_error (r, "org.freedesktop.DBus.Error.InvalidArgs", "does not match expected type");
    }
}

static void
test_other_user_gets_not_owner (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) create = NULL;
  g_autoptr(BgCallResult) del_b = NULL;
  g_autoptr(BgCallResult) rel_b = NULL;
  g_autoptr(BgCallResult) list_b = NULL;
  g_autoptr(BgCallResult) list_a = NULL;
  g_autoptr(BgCallResult) missing = NULL;
  g_autoptr(BgCallResult) del_root = NULL;
  g_autofree char *tap = NULL;
  g_autofree char *args = NULL;

  bg_harness_set_group_rule (f->h, TRUE);
  create = bg_harness_call (f->h, BG_TEST_USER_A, "CreateTap", "(\'alpha\', @a{sv} {})", NULL);
  bg_assert_call_ok (create);
  tap = bg_call_result_lookup (create, "tap");
  args = g_strdup_printf ("('%s',)", tap);

  del_b = bg_harness_call (f->h, BG_TEST_USER_B, "DeleteTap", args, NULL);
  bg_assert_call_error (del_b, E_NOT_OWNER, "another user");
  {
    g_autofree char *rel_args = g_strdup_printf ("('tap', '%s', @a{sv} {})", tap);
    rel_b = bg_harness_call (f->h, BG_TEST_USER_B, "ReleaseResource", rel_args, NULL);
    bg_assert_call_error (rel_b, E_NOT_OWNER, NULL);
  }
  /* B does not even see A's tap; A does. */
  list_b = bg_harness_call (f->h, BG_TEST_USER_B, "ListResources", "(@a{sv} {},)", NULL);
  bg_assert_call_ok (list_b);
  g_assert_null (strstr (list_b->reply, tap));
  list_a = bg_harness_call (f->h, BG_TEST_USER_A, "ListResources", "(@a{sv} {},)", NULL);
  bg_assert_call_ok (list_a);
  g_assert_nonnull (strstr (list_a->reply, tap));

  missing = bg_harness_call (f->h, BG_TEST_USER_A, "DeleteTap", "('bg-000000000000',)", NULL);
  bg_assert_call_error (missing, E_NOT_FOUND, "no tap named bg-000000000000");

  /* An administrator (root) may act on anyone's resource. */
  del_root = bg_harness_call (f->h, NULL, "DeleteTap", args, NULL);
  bg_assert_call_ok (del_root);
}

static void
test_idle_exit_and_reactivation (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) first = bg_harness_call (f->h, NULL, "Ping", NULL, NULL);
  g_autoptr(BgCallResult) second = NULL;
  GPid pid1, pid2;

  bg_assert_call_ok (first);
  pid1 = bg_harness_mechanism_pid (f->h);
  g_assert_cmpint (pid1, >, 0);

  /* Started with --idle-timeout 2: it must give its name up by itself. */
  g_assert_true (bg_harness_wait_name_gone (f->h, 30));
  g_assert_cmpint (bg_harness_mechanism_pid (f->h), ==, 0);

  /* The next call activates a fresh instance. */
  second = bg_harness_call (f->h, NULL, "Ping", NULL, NULL);
  bg_assert_call_ok (second);
  pid2 = bg_harness_mechanism_pid (f->h);
  g_assert_cmpint (pid2, >, 0);
  g_assert_cmpint (pid2, !=, pid1);
}

typedef struct {
  gboolean  done;
  GVariant *reply;
  GError   *error;
} Pending;

static void
on_queued_reply (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Pending *p = user_data;

  p->reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &p->error);
  p->done = TRUE;
}

static gboolean
process_runs (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *text = NULL;
  const char *end;

  if (!g_file_get_contents (path, &text, NULL, NULL) || (end = strrchr (text, ')')) == NULL)
    return FALSE;
  return end[1] == ' ' && end[2] != 'Z' && end[2] != 'X';
}

/* A call that reaches the mechanism while it decides to exit for idling
 * is answered, not dropped with NoReply. The test hook holds the
 * mechanism at that decision; the call is sent then, and a Peer.Ping
 * (answered by GDBus's own thread, behind the call on the same
 * connection) proves it has been received before the exit goes on. */
static void
test_idle_exit_answers_queued_call (Fixture *f, gconstpointer data)
{
  g_autofree char *pause_at = g_build_filename (f->h->run_dir, "pause-at", NULL);
  g_autofree char *paused_at = g_build_filename (f->h->run_dir, "paused-at", NULL);
  g_autoptr(BgCallResult) first = NULL;
  g_autoptr(GVariant) owner = NULL, peer = NULL;
  g_autoptr(GError) error = NULL;
  Pending queued = { 0 };
  const char *unique;
  GPid pid;

  g_assert_true (g_file_set_contents (pause_at, "idle-exit", -1, NULL));
  first = bg_harness_call (f->h, NULL, "Ping", NULL, NULL);
  bg_assert_call_ok (first);
  pid = bg_harness_mechanism_pid (f->h);
  owner = g_dbus_connection_call_sync (f->h->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "GetNameOwner",
                                       g_variant_new ("(s)", "org.banger.Mechanism1"), G_VARIANT_TYPE ("(s)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (owner, "(&s)", &unique);

  /* Idle after 2 s: it stops at its decision to exit. */
  for (guint i = 0; i < 3000 && !g_file_test (paused_at, G_FILE_TEST_EXISTS); i++)
    g_usleep (10 * 1000);
  g_assert_true (g_file_test (paused_at, G_FILE_TEST_EXISTS));

  g_dbus_connection_call (f->h->bus, "org.banger.Mechanism1", "/org/banger/Mechanism1", "org.banger.Mechanism1",
                          "Ping", NULL, G_VARIANT_TYPE ("(su)"), G_DBUS_CALL_FLAGS_NONE, 60000, NULL,
                          on_queued_reply, &queued);
  peer = g_dbus_connection_call_sync (f->h->bus, unique, "/", "org.freedesktop.DBus.Peer", "Ping", NULL, NULL,
                                      G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_unlink (pause_at), ==, 0);

  while (!queued.done)
    g_main_context_iteration (NULL, TRUE);
  if (queued.reply == NULL)
    g_error ("the call queued at idle exit was dropped: %s", queued.error->message);
  g_clear_pointer (&queued.reply, g_variant_unref);

  /* And then it does exit (dbus-daemon, its parent, may leave it a
   * zombie for a while). */
  g_assert_true (bg_harness_wait_name_gone (f->h, 30));
  for (guint i = 0; i < 3000 && process_runs (pid); i++)
    g_usleep (10 * 1000);
  g_assert_false (process_runs (pid));
}

static void
test_registry_survives_restart (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) create = NULL;
  g_autoptr(BgCallResult) list = NULL;
  GPid pid;

  create = bg_harness_call (f->h, NULL, "CreateTap", "(\'keeper\', @a{sv} {})", NULL);
  bg_assert_call_ok (create);
  pid = bg_harness_mechanism_pid (f->h);
  kill (pid, SIGKILL);
  g_assert_true (bg_harness_wait_name_gone (f->h, 20));

  list = bg_harness_call (f->h, NULL, "ListResources", "(@a{sv} {},)", NULL);
  bg_assert_call_ok (list);
  g_assert_nonnull (strstr (list->reply, "'keeper'"));
  g_assert_nonnull (strstr (list->reply, "'ready'"));
}

static void
test_introspection_is_documented (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) r = bg_harness_call (f->h, NULL, "org.freedesktop.DBus.Introspectable.Introspect",
                                                NULL, NULL);
  g_autoptr(BgCallResult) version = bg_harness_call (f->h, BG_TEST_USER_B, "org.freedesktop.DBus.Properties.Get",
                                                      "('org.banger.Mechanism1', 'Version')", NULL);
  const char *methods[] = { "Ping", "GroupRule", "ListResources", "ReleaseResource", "EnsureNetwork",
                            "NetworkInfo", "CreateTap", "DeleteTap", "TeardownNetwork" };

  bg_assert_call_ok (r);
  for (guint i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      g_autofree char *m = g_strdup_printf ("<method name=\"%s\">", methods[i]);
      g_autofree char *doc = NULL;
      const char *at = strstr (r->reply, m);

      g_assert_nonnull (at);
      /* Each method carries its description. */
      doc = g_strndup (at, strstr (at, "</method>") - at);
      g_assert_nonnull (strstr (doc, "org.freedesktop.DBus.Description"));
    }
  bg_assert_call_ok (version);
  g_assert_nonnull (strstr (version->reply, PACKAGE_VERSION));
}

static void
test_cli_status_sees_the_mechanism (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_autofree char *expect = g_strdup_printf ("banger-mechanism %s answers (it sees you as uid %u)",
                                             PACKAGE_VERSION, bg_harness_uid (BG_TEST_USER_A));

  bg_harness_run_cli (f->h, BG_TEST_USER_A, &out, &err, "system", "status", "--json", NULL);
  g_assert_nonnull (strstr (out, expect));

  /* Without authorization the CLI says so in one clear line, with what
   * to do about it. */
  g_assert_cmpint (bg_harness_run_cli (f->h, BG_TEST_USER_A, &out2, &err2, "system", "network", NULL), ==, 1);
  g_assert_true (g_str_has_prefix (err2, "banger: not authorized: polkit refused org.banger.network. "));
  /* No group rule is installed here: the hint says so, and names no
   * group that an administrator could not add the user to. */
  g_assert_nonnull (strstr (err2, "no polkit rule grants a group banger's actions on this host"));
  g_assert_null (strstr (err2, "usermod"));
  g_assert_nonnull (strchr (err2, '\n'));
  g_assert_cmpstr (strchr (err2, '\n'), ==, "\n");
}

/* The harness runs the mechanism as its systemd unit does (setpriv with
 * the unit's bounding set and no_new_privs), and every other test then
 * proves that set is enough. Here: it is exactly the unit's, effective. */
static void
test_runs_with_the_units_capabilities (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) ping = bg_harness_call (f->h, NULL, "Ping", NULL, NULL);
  g_autofree char *unit = NULL, *status = NULL, *path = NULL;
  g_auto(GStrv) lines = NULL;
  static const struct { const char *name; int bit; } known[] = {
    { "CAP_CHOWN", 0 }, { "CAP_DAC_OVERRIDE", 1 }, { "CAP_DAC_READ_SEARCH", 2 }, { "CAP_FOWNER", 3 },
    { "CAP_KILL", 5 }, { "CAP_SETGID", 6 }, { "CAP_SETUID", 7 }, { "CAP_NET_ADMIN", 12 },
    { "CAP_SYS_CHROOT", 18 }, { "CAP_SYS_ADMIN", 21 }, { "CAP_SYS_RESOURCE", 24 }, { "CAP_MKNOD", 27 },
  };
  guint64 want = 0;
  GPid pid;

  bg_assert_call_ok (ping);
  g_assert_true (g_file_get_contents (g_getenv ("BANGER_UNIT"), &unit, NULL, NULL));
  lines = g_strsplit (unit, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], "CapabilityBoundingSet="))
      {
        g_auto(GStrv) caps = g_strsplit (lines[i] + strlen ("CapabilityBoundingSet="), " ", -1);
        for (guint j = 0; caps[j]; j++)
          {
            gboolean found = FALSE;
            for (guint k = 0; k < G_N_ELEMENTS (known); k++)
              if (g_str_equal (caps[j], known[k].name))
                {
                  want |= G_GUINT64_CONSTANT (1) << known[k].bit;
                  found = TRUE;
                }
            if (!found)
              g_error ("the unit grants %s, unknown to this test", caps[j]);
          }
      }
  g_assert_cmpuint (want, !=, 0);
  /* Nothing the tests would need to be told about. */
  g_assert_cmpuint (want & ((1 << 1) | (1 << 2) | (1 << 18) | (1 << 24)), ==, 0);

  pid = bg_harness_mechanism_pid (f->h);
  g_assert_cmpint (pid, >, 0);
  path = g_strdup_printf ("/proc/%d/status", (int) pid);
  g_assert_true (g_file_get_contents (path, &status, NULL, NULL));
  {
    g_autofree char *bnd = g_strdup_printf ("CapBnd:\t%016" G_GINT64_MODIFIER "x\n", want);
    g_autofree char *eff = g_strdup_printf ("CapEff:\t%016" G_GINT64_MODIFIER "x\n", want);
    g_assert_nonnull (strstr (status, bnd));
    g_assert_nonnull (strstr (status, eff));
    g_assert_nonnull (strstr (status, "NoNewPrivs:\t1\n"));
  }
}

/* A user whose polkit agent never answers (polkit told to ask her for a
 * password) fills her own quota of waiting calls and no more: the rest
 * of hers are refused at once, naming the setting; another user's calls
 * go through meanwhile; the waiting ones are refused when the agent's
 * time is up. */
static void
test_unanswered_prompts_hold_nothing_of_others (Fixture *f, gconstpointer data)
{
  g_autofree char *rules = g_build_filename (f->h->rules_dir, "40-stall.rules", NULL);
  const char *argv[] = { g_getenv ("BANGER_TEST_AGENT"), "--user", BG_TEST_USER_B, "--calls", "6", NULL };
  g_auto(GStrv) envp = g_environ_setenv (g_get_environ (), "DBUS_SYSTEM_BUS_ADDRESS", f->h->bus_address, TRUE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDataInputStream) lines = NULL;
  guint limited = 0, timed_out = 0, a_calls = 0;
  /* Her refusals come at once, the timeouts only after the agent's time:
   * long enough (and scaled) that A's calls are made while hers wait. */
  guint auth_timeout = bg_test_timeout (10);
  g_autofree char *conf = g_strdup_printf ("[limits]\npending-calls=2\nauth-timeout=%u\n", auth_timeout);
  g_autofree char *within = g_strdup_printf ("no answer from your polkit agent within %u s", auth_timeout);
  GPid pid;
  int out;

  bg_harness_write_config (f->h, "mechanism.conf", conf);
  g_assert_true (g_file_set_contents (rules,
                                      "polkit.addRule(function(action, subject) {\n"
                                      "  if (action.id.indexOf('org.banger.') == 0 && subject.user == '"
                                      BG_TEST_USER_B "')\n"
                                      "    return polkit.Result.AUTH_ADMIN;\n"
                                      "});\n", -1, NULL));
  g_assert_no_errno (chmod (rules, 0644));
  bg_harness_set_group_rule (f->h, TRUE);

  g_assert_true (g_spawn_async_with_pipes (NULL, (char **) argv, envp, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                           &pid, NULL, &out, NULL, &error));
  lines = g_data_input_stream_new (g_unix_input_stream_new (out, TRUE));
  for (guint i = 0; i < 6; i++)
    {
      g_autofree char *line = g_data_input_stream_read_line (lines, NULL, NULL, &error);

      g_assert_nonnull (line);
      if (g_str_has_prefix (line, "ERROR " E_LIMIT))
        {
          g_assert_nonnull (strstr (line, "pending-calls=2"));
          limited++;
        }
      else if (g_str_has_prefix (line, "ERROR " E_NOT_AUTHORIZED))
        {
          g_assert_nonnull (strstr (line, within));
          timed_out++;
        }
      else
        g_error ("unexpected reply: %s", line);

      /* B's extra calls are refused at once; with two of hers waiting
       * on her agent, A's calls are answered as usual. */
      if (limited == 4 && timed_out == 0)
        for (guint j = 0; j < 3; j++)
          {
            g_autoptr(BgCallResult) a = bg_harness_call (f->h, BG_TEST_USER_A, "CreateTap",
                                                         "('mine', @a{sv} {})", NULL);
            bg_assert_call_ok (a);
            a_calls++;
          }
    }
  g_assert_cmpuint (limited, ==, 4);
  g_assert_cmpuint (timed_out, ==, 2);
  /* A's calls were made, and went through, while two of B's waited. */
  g_assert_cmpuint (a_calls, ==, 3);
  waitpid (pid, NULL, 0);
  unlink (rules);
}

/* The CLI asks polkit about itself (no mechanism, no prompt) where it
 * must know ahead: `system status`, and `vm up` before it would spend
 * minutes building the default image. */
static void
test_cli_asks_polkit_ahead (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL, *out3 = NULL, *err3 = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonArray *checks;
  const char *status = NULL, *detail = NULL;

  bg_harness_run_cli (f->h, BG_TEST_USER_A, &out, &err, "system", "status", "--json", NULL);
  g_assert_true (json_parser_load_from_data (parser, out, -1, NULL));
  checks = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "checks");
  for (guint i = 0; i < json_array_get_length (checks); i++)
    {
      JsonObject *c = json_array_get_object_element (checks, i);
      if (g_str_equal (json_object_get_string_member (c, "name"), "authorization"))
        {
          status = json_object_get_string_member (c, "status");
          detail = json_object_get_string_member (c, "detail");
        }
    }
  g_assert_cmpstr (status, ==, "missing");
  g_assert_nonnull (strstr (detail, "polkit refuses you the banger actions"));

  /* Refused before building: the error says so, and no image was begun. */
  g_assert_cmpint (bg_harness_run_cli (f->h, BG_TEST_USER_A, &out2, &err2, "vm", "up", "pre", "--no-wait", NULL), ==, 1);
  g_test_message ("vm up: %s", err2);
  g_assert_nonnull (strstr (err2, "banger did not build it: not authorized: polkit refuses org.banger.network to you"));

  bg_harness_set_group_rule (f->h, TRUE);
  bg_harness_run_cli (f->h, BG_TEST_USER_A, &out3, &err3, "system", "status", NULL);
  g_assert_nonnull (strstr (out3, "you may run VMs without a password"));
  bg_harness_set_group_rule (f->h, FALSE);
}

/* The refusal's hint names a group only where the rule for it is
 * installed and the group exists (issue 29): the three cases, from the
 * mechanism's GroupRule and from the CLI's words. */
static void
test_refusal_hint_tells_the_truth_about_the_group (Fixture *f, gconstpointer data)
{
  static const struct {
    const char *group;        /* the rule's group; NULL: no rule */
    const char *reply;        /* GroupRule's answer */
    const char *hint;         /* in `system status` and the refused call */
  } cases[] = {
    { NULL, "({'group': <''>, 'group-exists': <false>},)",
      "no polkit rule grants a group banger's actions on this host" },
    { "bg-no-such-group", "({'group': <'bg-no-such-group'>, 'group-exists': <false>},)",
      "banger's polkit rule for the bg-no-such-group group is installed but that group does not exist: "
      "an administrator creates it (groupadd --system bg-no-such-group)" },
    /* A group that exists, which the test user is not in. */
    { "nogroup", "({'group': <'nogroup'>, 'group-exists': <true>},)",
      "ask an administrator to add you to the nogroup group (usermod -aG nogroup " BG_TEST_USER_A
      ", then log in again)" },
  };
  g_autofree char *path = g_build_filename (f->h->rules_dir, "50-banger.rules", NULL);
  g_autofree char *template = NULL;

  g_assert_true (g_file_get_contents (g_getenv ("BANGER_RULES_TEMPLATE"), &template, NULL, NULL));
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(BgCallResult) rule = NULL;
      g_autofree char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;

      if (cases[i].group != NULL)
        {
          g_autoptr(GString) text = g_string_new (template);
          g_string_replace (text, "@GROUP@", cases[i].group, 0);
          g_assert_true (g_file_set_contents (path, text->str, -1, NULL));
        }
      else
        g_unlink (path);

      /* Anyone may ask, without authorization. */
      rule = bg_harness_call (f->h, BG_TEST_USER_A, "GroupRule", NULL, NULL);
      bg_assert_call_ok (rule);
      g_assert_cmpstr (rule->reply, ==, cases[i].reply);

      bg_harness_run_cli (f->h, BG_TEST_USER_A, &out, &err, "system", "status", NULL);
      g_test_message ("status: %s", out);
      g_assert_nonnull (strstr (out, cases[i].hint));
      g_assert_cmpint (bg_harness_run_cli (f->h, BG_TEST_USER_A, &out2, &err2, "system", "network", NULL), ==, 1);
      g_test_message ("refused: %s", err2);
      g_assert_nonnull (strstr (err2, cases[i].hint));
      if (cases[i].group == NULL || g_str_equal (cases[i].group, "bg-no-such-group"))
        g_assert_null (strstr (err2, "usermod -aG banger"));
    }
  g_unlink (path);
}

static void
add_tests (void)
{
#define ADD(path, fn, idle) g_test_add (path, Fixture, GUINT_TO_POINTER (idle), setup, fn, teardown)
  ADD ("/mechanism/ping-reports-caller-uid-from-the-bus", test_ping_reports_caller_uid_from_the_bus, 0);
  ADD ("/mechanism/runs-with-the-units-capabilities", test_runs_with_the_units_capabilities, 0);
  ADD ("/mechanism/unanswered-prompts-hold-nothing-of-others", test_unanswered_prompts_hold_nothing_of_others, 0);
  ADD ("/mechanism/unprivileged-refused-without-rule", test_unprivileged_refused_without_rule, 0);
  ADD ("/mechanism/unprivileged-allowed-with-rule", test_unprivileged_allowed_with_rule, 0);
  ADD ("/mechanism/root-is-allowed", test_root_is_allowed, 0);
  ADD ("/mechanism/invalid-input-names-the-field", test_invalid_input_names_the_field, 0);
  ADD ("/mechanism/wrong-types-are-refused", test_wrong_types_are_refused, 0);
  ADD ("/mechanism/other-user-gets-not-owner", test_other_user_gets_not_owner, 0);
  ADD ("/mechanism/idle-exit-and-reactivation", test_idle_exit_and_reactivation, 2);
  ADD ("/mechanism/idle-exit-answers-queued-call", test_idle_exit_answers_queued_call, 2);
  ADD ("/mechanism/registry-survives-restart", test_registry_survives_restart, 0);
  ADD ("/mechanism/introspection-is-documented", test_introspection_is_documented, 0);
  ADD ("/mechanism/cli-status-sees-the-mechanism", test_cli_status_sees_the_mechanism, 0);
  ADD ("/mechanism/cli-asks-polkit-ahead", test_cli_asks_polkit_ahead, 0);
  ADD ("/mechanism/refusal-hint-tells-the-truth-about-the-group",
       test_refusal_hint_tells_the_truth_about_the_group, 0);
}

int
main (int argc, char **argv)
{
  return bg_harness_main (&argc, &argv, add_tests);
}
