/* A D-Bus input fuzzer against the real mechanism: thousands of random or
 * mutated calls as root and as an unprivileged user. No crash (the
 * mechanism keeps its PID), no hang (every call is answered), no leak
 * (its descriptor count comes back once what the fuzz created is gone). */
#include <unistd.h>

#include "harness.h"

static guint
count_fds (GPid pid)
{
  g_autofree char *dir = g_strdup_printf ("/proc/%d/fd", (int) pid);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;

  while (d && g_dir_read_name (d))
    n++;
  return n;
}

static void
release_everything (BgHarness *h)
{
  g_autoptr(BgCallResult) list = bg_harness_call (h, NULL, "ListResources", "({'all-users': <true>},)", NULL);
  g_autoptr(GVariant) v = NULL;
  GVariantIter iter;
  const char *kind, *name;

  bg_assert_call_ok (list);
  v = g_variant_parse (G_VARIANT_TYPE ("(a(ssutsa{sv}))"), list->reply, NULL, NULL, NULL);
  g_variant_iter_init (&iter, g_variant_get_child_value (v, 0));
  while (g_variant_iter_next (&iter, "(&s&sut&s@a{sv})", &kind, &name, NULL, NULL, NULL, NULL))
    {
      g_autofree char *args = g_strdup_printf ("('%s', '%s', @a{sv} {})", kind, name);
      g_autoptr(BgCallResult) r = NULL;
      if (g_str_equal (kind, "bridge"))
        continue;
      r = bg_harness_call (h, NULL, "ReleaseResource", args, NULL);
      bg_assert_call_ok (r);
    }
}

static void
fuzz_as (const char *user, int count, int seed, GPid expect_pid, BgHarness *h)
{
  g_autofree char *c = g_strdup_printf ("--count=%d", count);
  g_autofree char *s = g_strdup_printf ("--seed=%d", seed);
  g_autofree char *u = g_strdup_printf ("--user=%s", user ? user : "root");
  const char *argv[] = { g_getenv ("BANGER_TEST_FUZZ"), c, s, user ? u : NULL, NULL };
  g_autofree char *out = NULL;
  g_auto(GStrv) envp = g_environ_setenv (g_get_environ (), "DBUS_SYSTEM_BUS_ADDRESS", h->bus_address, TRUE);
  g_autoptr(GError) error = NULL;
  int status;

  g_assert_true (g_spawn_sync (NULL, (char **) argv, envp, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, &status, &error));
  g_assert_no_error (error);
  g_test_message ("fuzz as %s: %s", user ? user : "root", out);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("fuzzer failed: %s", out);
  /* Still the same process: it did not crash and get re-activated. */
  g_assert_cmpint (bg_harness_mechanism_pid (h), ==, expect_pid);
}

static void
test_fuzz (void)
{
  BgHarness *h = bg_harness_start (600);
  g_autoptr(BgCallResult) ping = NULL;
  g_autoptr(BgCallResult) ping2 = NULL;
  GPid pid;
  guint fds_before, fds_after;

  bg_harness_set_group_rule (h, TRUE);
  bg_harness_use_vmm (h, g_getenv ("BANGER_TEST_VMM"));
  ping = bg_harness_call (h, NULL, "Ping", NULL, NULL);
  bg_assert_call_ok (ping);
  pid = bg_harness_mechanism_pid (h);
  fds_before = count_fds (pid);

  fuzz_as (NULL, 3000, 1, pid, h);
  fuzz_as (BG_TEST_USER_A, 2500, 2, pid, h);

  release_everything (h);
  ping2 = bg_harness_call (h, BG_TEST_USER_B, "Ping", NULL, NULL);
  bg_assert_call_ok (ping2);
  /* A jail's inotify descriptor is closed by a thread of its own (its
   * close waits for an SRCU grace period): given a moment to end. */
  for (int i = 0; i < 200 && (fds_after = count_fds (pid)) > fds_before + 2; i++)
    g_usleep (10 * 1000);
  g_test_message ("mechanism fds: %u before, %u after", fds_before, fds_after);
  g_assert_cmpuint (fds_after, <=, fds_before + 2);
  bg_harness_stop (h);
}

static void
add_tests (void)
{
  g_test_add_func ("/fuzz/every-method-survives-random-calls", test_fuzz);
}

int
main (int argc, char **argv)
{
  return bg_harness_main (&argc, &argv, add_tests);
}
