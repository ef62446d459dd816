/* bench-mechanism: how long the privileged steps take through the bus,
 * polkit included, on the integration harness (private bus, real polkitd,
 * fresh network namespace; needs root). Not a test: it prints figures.
 *
 *   ensure-network (warm)          EnsureNetwork when all is in place
 *   create+delete tap              CreateTap then DeleteTap
 *   launch-vm                      LaunchVm: spawn -> socket owned -> reply
 *   launch+configure+start         LaunchVm, the API calls, InstanceStart
 */
#include <fcntl.h>
#include <unistd.h>
#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>

#include "bench-common.h"
#include "bg-fc-client.h"
#include "harness.h"

#define RUNS 25

static int
compare_doubles (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static void
report (const char *what, GArray *ms)
{
  g_array_sort (ms, compare_doubles);
  g_print ("%-28s median %7.2f ms   p90 %7.2f ms   min %7.2f ms   (n=%u)\n", what,
           g_array_index (ms, double, ms->len / 2), g_array_index (ms, double, ms->len * 9 / 10),
           g_array_index (ms, double, 0), ms->len);
}

static GVariant *
call (BgHarness *h, const char *method, GVariant *args, GUnixFDList *fds, GError **error)
{
  return g_dbus_connection_call_with_unix_fd_list_sync (h->bus, "org.banger.Mechanism1", "/org/banger/Mechanism1",
                                                        "org.banger.Mechanism1", method, args, NULL,
                                                        G_DBUS_CALL_FLAGS_NONE, 30000, fds, NULL, NULL, error);
}

typedef struct {
  GMainLoop *loop;
  gboolean   exited;
} Exit;

static void
on_exit_signal (GDBusConnection *c, const char *s, const char *p, const char *i, const char *n,
                GVariant *params, gpointer data)
{
  Exit *e = data;
  e->exited = TRUE;
  g_main_loop_quit (e->loop);
}

static void
kill_and_wait (BgHarness *h, const char *vm, Exit *e)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;

  e->exited = FALSE;
  r = call (h, "KillVm", g_variant_new ("(s)", vm), NULL, &error);
  g_assert_no_error (error);
  while (!e->exited)
    g_main_loop_run (e->loop);
}

static GVariant *
launch (BgHarness *h, const char *files, const char *vm, const char *tap, GError **error)
{
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autofree char *kernel = g_build_filename (files, "vmlinux", NULL);
  g_autofree char *rootfs = g_build_filename (files, "rootfs", NULL);
  int k = open (kernel, O_RDONLY | O_CLOEXEC), r = open (rootfs, O_RDWR | O_CLOEXEC);
  GVariantDict opts;

  g_unix_fd_list_append (fds, k, NULL);
  g_unix_fd_list_append (fds, r, NULL);
  close (k);
  close (r);
  g_variant_dict_init (&opts, NULL);
  if (tap)
    g_variant_dict_insert (&opts, "tap", "s", tap);
  return call (h, "LaunchVm", g_variant_new ("(s@a{sv}hh)", vm, g_variant_dict_end (&opts), 0, 1), fds, error);
}

static void
bench (void)
{
  BgHarness *h = bg_harness_start (600);
  g_autoptr(GArray) ensure = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) tap = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) launch_ms = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) full = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GError) error = NULL;
  g_autofree char *files = g_build_filename (h->tmp, "files", NULL);
  g_autofree char *tap_name = NULL, *mac = NULL;
  Exit e = { g_main_loop_new (NULL, FALSE), FALSE };
  guint sub;
  double t0;

  g_mkdir (files, 0700);
  {
    g_autofree char *k = g_build_filename (files, "vmlinux", NULL);
    g_autofree char *r = g_build_filename (files, "rootfs", NULL);
    g_autofree char *zeros = g_malloc0 (1 << 20);
    g_file_set_contents (k, zeros, 1 << 20, NULL);   /* a kernel-sized copy */
    g_file_set_contents (r, zeros, 1 << 20, NULL);
  }
  bg_harness_use_vmm (h, g_getenv ("BANGER_TEST_VMM"));
  sub = g_dbus_connection_signal_subscribe (h->bus, NULL, "org.banger.Mechanism1", "VmExited", NULL, NULL,
                                            G_DBUS_SIGNAL_FLAGS_NONE, on_exit_signal, &e, NULL);

  g_variant_unref (call (h, "Subscribe", NULL, NULL, &error));
  g_assert_no_error (error);
  /* Warm up: activation, first network setup. */
  g_variant_unref (call (h, "EnsureNetwork", g_variant_new_parsed ("(@a{sv} {},)"), NULL, &error));
  g_assert_no_error (error);

  for (int i = 0; i < RUNS; i++)
    {
      GVariant *r;
      t0 = bg_bench_now_ms ();
      r = call (h, "EnsureNetwork", g_variant_new_parsed ("(@a{sv} {},)"), NULL, &error);
      g_assert_no_error (error);
      g_variant_unref (r);
      g_array_append_vals (ensure, &(double) { bg_bench_now_ms () - t0 }, 1);
    }
  for (int i = 0; i < RUNS; i++)
    {
      GVariant *r;
      g_autoptr(GVariant) info = NULL;
      const char *name;
      t0 = bg_bench_now_ms ();
      r = call (h, "CreateTap", g_variant_new_parsed ("('bench', @a{sv} {})"), NULL, &error);
      g_assert_no_error (error);
      info = g_variant_get_child_value (r, 0);
      g_assert_true (g_variant_lookup (info, "tap", "&s", &name));
      g_variant_unref (call (h, "DeleteTap", g_variant_new ("(s)", name), NULL, &error));
      g_assert_no_error (error);
      g_variant_unref (r);
      g_array_append_vals (tap, &(double) { bg_bench_now_ms () - t0 }, 1);
    }
  for (int i = 0; i < RUNS; i++)
    {
      GVariant *r;
      t0 = bg_bench_now_ms ();
      r = launch (h, files, "bench", NULL, &error);
      g_assert_no_error (error);
      g_array_append_vals (launch_ms, &(double) { bg_bench_now_ms () - t0 }, 1);
      g_variant_unref (r);
      kill_and_wait (h, "bench", &e);
    }

  {
    g_autoptr(GVariant) t = call (h, "CreateTap", g_variant_new_parsed ("('benchnet', @a{sv} {})"), NULL, &error);
    g_assert_no_error (error);
    g_autoptr(GVariant) info = g_variant_get_child_value (t, 0);
    g_assert_true (g_variant_lookup (info, "tap", "s", &tap_name));
    g_assert_true (g_variant_lookup (info, "mac", "s", &mac));
  }
  for (int i = 0; i < RUNS; i++)
    {
      g_autoptr(GVariant) r = NULL;
      g_autoptr(BgFcClient) fc = NULL;
      const char *api;

      t0 = bg_bench_now_ms ();
      r = launch (h, files, "benchnet", tap_name, &error);
      g_assert_no_error (error);
      g_variant_get (r, "(&sst@a{sv})", &api, NULL, NULL, NULL);
      fc = bg_fc_client_new (api);
      if (!bg_fc_configure (fc, &(BgFcMachine) { 2, 256, "/vmlinux", NULL, "console=ttyS0",
                                                 (BgFcDrive[]) { { "rootfs", "/rootfs", TRUE, FALSE }, { NULL } },
                                                 tap_name, mac, 3, "/run/vsock.sock" }, &error) ||
          !bg_fc_action (fc, "InstanceStart", &error))
        g_error ("%s", error->message);
      g_array_append_vals (full, &(double) { bg_bench_now_ms () - t0 }, 1);
      kill_and_wait (h, "benchnet", &e);
    }

  g_print ("\nbanger-mechanism through the bus, polkit included (test VMM, %d runs each)\n", RUNS);
  report ("ensure-network (warm)", ensure);
  report ("create+delete tap", tap);
  report ("launch-vm", launch_ms);
  report ("launch+configure+start", full);
  g_dbus_connection_signal_unsubscribe (h->bus, sub);
  g_main_loop_unref (e.loop);
  bg_harness_stop (h);
}

static void
add (void)
{
  g_test_add_func ("/bench/mechanism", bench);
}

int
main (int argc, char **argv)
{
  return bg_harness_main (&argc, &argv, add);
}
