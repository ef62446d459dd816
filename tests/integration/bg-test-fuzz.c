/* bg-test-fuzz: sends random and mutated calls to banger-mechanism.
 *
 *   bg-test-fuzz [--user NAME] --count N --seed S
 *
 * Every method (and some that do not exist) gets calls with wrong
 * signatures, right signatures with hostile values (huge strings, odd
 * unicode, control characters, out-of-range numbers), unknown and
 * mistyped option keys, and fds of every wrong kind. Each call must be
 * answered: a reply or an error. A call that times out is a hang, and
 * the tool fails. Prints "calls N replies N errors N".
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <gio/gio.h>
#include <gio/gunixfdlist.h>

static const char * const methods[] = {
  "Ping", "HostInfo", "ListResources", "ReleaseResource", "EnsureNetwork", "NetworkInfo", "CreateTap",
  "DeleteTap", "TeardownNetwork", "LaunchVm", "KillVm", "AttachLoop", "DetachLoop", "NoSuchMethod", "",
};

static GRand *rng;

static char *
random_string (void)
{
  static const char * const samples[] = {
    "", "dev", "bg-000000000000", "banger0", "eth0", "../../etc/passwd", "/etc/shadow", "u0-dev",
    "loop0", "tap", "vm", "loop", "bridge", "a-b-c", "-rf", "--help", "x;rm -rf /", "$(reboot)",
    "\xc3\xa9\xe2\x82\xac\xf0\x9f\x92\xa9", "\xe2\x80\xae" "evil", "name\twith\ttabs", "line\nbreak",
    "UPPER", "dev.banger", "%s%s%n", "abcdefghijklmnopqrstuvwxyz0123456789",
  };
  guint kind = g_rand_int_range (rng, 0, 4);

  if (kind < 2)
    return g_strdup (samples[g_rand_int_range (rng, 0, G_N_ELEMENTS (samples))]);
  if (kind == 2)
    {
      /* Huge. */
      gsize len = g_rand_int_range (rng, 256, 128 * 1024);
      return g_strnfill (len, "aZ9-/."[g_rand_int_range (rng, 0, 6)]);
    }
  {
    /* Random valid UTF-8 from assorted planes, with controls. */
    GString *s = g_string_new (NULL);
    int n = g_rand_int_range (rng, 1, 40);
    for (int i = 0; i < n; i++)
      {
        gunichar c;
        do
          c = g_rand_int_range (rng, 0, 4) == 0 ? (gunichar) g_rand_int_range (rng, 1, 0x20)
                                                : (gunichar) g_rand_int_range (rng, 0x20, 0x2FFFF);
        while (!g_unichar_validate (c));
        g_string_append_unichar (s, c);
      }
    return g_string_free (s, FALSE);
  }
}

static GVariant *random_value (int depth, GUnixFDList *fds);

static GVariant *
random_dict (int depth, GUnixFDList *fds)
{
  static const char * const keys[] = { "all-users", "kind", "tap", "initrd", "console", "timeout-ms",
                                       "read-only", "config-drive", "force", "" };
  GVariantBuilder b;
  int n = g_rand_int_range (rng, 0, 4);

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
  for (int i = 0; i < n; i++)
    {
      g_autofree char *rk = random_string ();
      const char *key = g_rand_boolean (rng) ? keys[g_rand_int_range (rng, 0, G_N_ELEMENTS (keys))] : rk;
      g_variant_builder_add (&b, "{sv}", key, random_value (depth + 1, fds));
    }
  return g_variant_builder_end (&b);
}

static int
hostile_fd (void)
{
  int sv[2];

  switch (g_rand_int_range (rng, 0, 6))
    {
    case 0: return open ("/dev/null", O_RDWR | O_CLOEXEC);
    case 1: return open ("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    case 2:
      if (pipe2 (sv, O_CLOEXEC) < 0)
        return -1;
      close (sv[1]);
      return sv[0];
    case 3:
      if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
      close (sv[1]);
      return sv[0];
    case 4: return open ("/proc/self/status", O_RDONLY | O_CLOEXEC);
    default: return open ("/dev/zero", O_RDONLY | O_CLOEXEC);
    }
}

static GVariant *
random_value (int depth, GUnixFDList *fds)
{
  int pick = g_rand_int_range (rng, 0, depth > 1 ? 7 : 9);
  g_autofree char *s = NULL;

  switch (pick)
    {
    case 0: s = random_string (); return g_variant_new_string (s);
    case 1: return g_variant_new_uint32 (g_rand_int (rng));
    case 2: return g_variant_new_int32 ((gint32) g_rand_int (rng));
    case 3: return g_variant_new_boolean (g_rand_boolean (rng));
    case 4: return g_variant_new_uint64 (((guint64) g_rand_int (rng) << 32) | g_rand_int (rng));
    case 5:
      {
        /* A handle: into the list, or pointing past it. */
        int fd = hostile_fd ();
        gint32 idx = fd >= 0 && g_rand_boolean (rng) ? g_unix_fd_list_append (fds, fd, NULL)
                                                     : g_rand_int_range (rng, -3, 64);
        if (fd >= 0)
          close (fd);
        return g_variant_new_handle (idx);
      }
    case 6: return g_variant_new_double (g_rand_double (rng));
    case 7: return random_dict (depth, fds);
    default:
      {
        const char *strv[] = { "a", "b", NULL };
        return g_variant_new_strv (strv, -1);
      }
    }
}

/* Right signature, hostile values. */
static GVariant *
mutated_params (const char *method, GUnixFDList *fds)
{
  g_autofree char *a = random_string ();
  g_autofree char *b = random_string ();

  if (g_str_equal (method, "ListResources") || g_str_equal (method, "EnsureNetwork"))
    return g_variant_new ("(@a{sv})", random_dict (1, fds));
  if (g_str_equal (method, "ReleaseResource"))
    return g_variant_new ("(ss@a{sv})", a, b, random_dict (1, fds));
  if (g_str_equal (method, "CreateTap"))
    return g_variant_new ("(s@a{sv})", a, random_dict (1, fds));
  if (g_str_equal (method, "DeleteTap") || g_str_equal (method, "KillVm") || g_str_equal (method, "DetachLoop"))
    return g_variant_new ("(s)", a);
  if (g_str_equal (method, "LaunchVm"))
    {
      GVariant *k = random_value (9, fds), *r = random_value (9, fds);
      if (!g_variant_is_of_type (k, G_VARIANT_TYPE_HANDLE))
        {
          g_variant_unref (g_variant_ref_sink (k));
          k = g_variant_new_handle (0);
        }
      if (!g_variant_is_of_type (r, G_VARIANT_TYPE_HANDLE))
        {
          g_variant_unref (g_variant_ref_sink (r));
          r = g_variant_new_handle (1);
        }
      return g_variant_new ("(s@a{sv}@h@h)", a, random_dict (1, fds), k, r);
    }
  if (g_str_equal (method, "AttachLoop"))
    {
      int fd = hostile_fd ();
      gint32 idx = fd >= 0 ? g_unix_fd_list_append (fds, fd, NULL) : 5;
      if (fd >= 0)
        close (fd);
      return g_variant_new ("(hb)", idx, g_rand_boolean (rng));
    }
  return NULL;
}

static GVariant *
random_params (GUnixFDList *fds)
{
  GVariantBuilder b;
  int n = g_rand_int_range (rng, 0, 5);

  g_variant_builder_init (&b, G_VARIANT_TYPE_TUPLE);
  for (int i = 0; i < n; i++)
    g_variant_builder_add_value (&b, random_value (0, fds));
  return g_variant_builder_end (&b);
}

int
main (int argc, char **argv)
{
  g_autofree char *user = NULL;
  gint count = 1000, seed = 1;
  GOptionEntry entries[] = {
    { "user", 0, 0, G_OPTION_ARG_STRING, &user, "Call as this user", "NAME" },
    { "count", 0, 0, G_OPTION_ARG_INT, &count, "Number of calls", "N" },
    { "seed", 0, 0, G_OPTION_ARG_INT, &seed, "Random seed", "S" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) bus = NULL;
  guint replies = 0, errors = 0;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return 2;
  if (user != NULL)
    {
      struct passwd *pw = getpwnam (user);
      if (pw == NULL || initgroups (user, pw->pw_gid) < 0 || setresgid (pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
          setresuid (pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
        return 2;
    }
  rng = g_rand_new_with_seed (seed);
  bus = g_dbus_connection_new_for_address_sync (g_getenv ("DBUS_SYSTEM_BUS_ADDRESS"),
                                                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                NULL, NULL, &error);
  if (bus == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }

  for (int i = 0; i < count; i++)
    {
      g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
      const char *method = methods[g_rand_int_range (rng, 0, G_N_ELEMENTS (methods))];
      GVariant *params = g_rand_int_range (rng, 0, 3) ? mutated_params (method, fds) : NULL;
      g_autoptr(GVariant) reply = NULL;
      g_autoptr(GError) e = NULL;

      if (params == NULL)
        params = random_params (fds);
      if (*method == '\0')
        method = "Ping";
      reply = g_dbus_connection_call_with_unix_fd_list_sync (bus, "org.banger.Mechanism1", "/org/banger/Mechanism1",
                                                             "org.banger.Mechanism1", method, params, NULL,
                                                             G_DBUS_CALL_FLAGS_NONE, 20000,
                                                             fds, NULL, NULL, &e);
      if (reply != NULL)
        replies++;
      else if (g_error_matches (e, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ||
               g_error_matches (e, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY) ||
               g_error_matches (e, G_DBUS_ERROR, G_DBUS_ERROR_TIMEOUT))
        {
          g_print ("HANG on call %d (%s): %s\n", i, method, e->message);
          return 1;
        }
      else
        errors++;
    }
  g_print ("calls %d replies %u errors %u\n", count, replies, errors);
  return 0;
}
