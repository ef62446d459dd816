/* bench-guest-setup: what the guest side of the config drive costs.
 *
 * - the CLI building a VM's config drive (in-process FAT writer), as in
 *   `vm up`;
 * - banger-guest-setup applying it to a fresh system tree (first boot of
 *   an instance: host name, resolver, host key, useradd, the user's files),
 *   and again to the same tree (every later boot);
 * - the same first boot with the interface configured over netlink, in a
 *   fresh network namespace with a tap carrying the drive's MAC.
 * Medians of 21 runs, on the host (a guest on KVM runs the same code). */
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "bg-drive.h"
#include "bg-ready.h"
#include "bg-ssh.h"
#include "bg-sync.h"
#include "guest-sample.h"

#define RUNS 21

static char *tmp;

static double
now_ms (void)
{
  return g_get_monotonic_time () / 1000.0;
}

static int
cmp_double (gconstpointer a,
            gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static double
median (double *v)
{
  qsort (v, RUNS, sizeof *v, cmp_double);
  return v[RUNS / 2];
}

static void
run (const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) envp = g_environ_setenv (g_get_environ (), "MTOOLS_SKIP_CHECK", "1", TRUE);
  int status;

  if (!g_spawn_sync (NULL, (char **) argv, envp, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                     NULL, NULL, &status, &error) || !g_spawn_check_wait_status (status, &error))
    g_error ("%s: %s", argv[0], error->message);
}

/* The tests' sample guest, with a real host key instead of a fake one. */
static BgGuestConfig *
config (void)
{
  BgGuestConfig *c = bg_test_sample_config ();
  g_autofree char *keydir = g_build_filename (tmp, "hostkey", NULL);
  g_autoptr(GError) error = NULL;

  g_clear_pointer (&c->host_key_private, g_free);
  g_clear_pointer (&c->host_key_public, g_free);
  g_mkdir (keydir, 0700);
  if (!bg_ssh_generate_host_key (keydir, BG_FILE_NONE, &c->host_key_private, &c->host_key_public, &error))
    g_error ("%s", error->message);
  return c;
}

static void
make_root (const char *root)
{
  static const struct { const char *path; const char *text; } files[] = {
    { "etc/passwd", "root:x:0:0:root:/root:/bin/bash\n" },
    { "etc/group", "root:x:0:\nsudo:x:27:\n" },
    { "etc/shadow", "root:*:19000:0:99999:7:::\n" },
    { "etc/gshadow", "root:*::\nsudo:*::\n" },
  };
  const char *rm[] = { "rm", "-rf", "--", root, NULL };

  run (rm);
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = g_build_filename (root, files[i].path, NULL);
      g_autofree char *dir = g_path_get_dirname (path);
      g_mkdir_with_parents (dir, 0755);
      g_file_set_contents (path, files[i].text, -1, NULL);
    }
  {
    g_autofree char *home = g_build_filename (root, "home", NULL);
    g_mkdir_with_parents (home, 0755);
  }
  g_chmod (root, 0755);
}

static double
time_setup (const char *root,
            const char *seed,
            gboolean    network)
{
  const char *argv[] = { g_getenv ("BANGER_GUEST_SETUP"), "--root", root, "--seed", seed,
                         network ? NULL : "--skip-network", NULL };
  double t0 = now_ms ();

  run (argv);
  return now_ms () - t0;
}

int
main (int argc, char **argv)
{
  g_autoptr(BgGuestConfig) c = NULL;
  g_autoptr(GPtrArray) files = g_ptr_array_new ();
  g_autofree char *drive = NULL, *seed = NULL, *root = NULL, *gitconfig = NULL;
  BgSyncEntry entry = { .beneath = (char *) "gitconfig", .relative = (char *) ".gitconfig", .mode = 0644,
                        .size = 21 };
  double drive_ms[RUNS], first_ms[RUNS], later_ms[RUNS], net_ms[RUNS];

  if (geteuid () != 0 || g_getenv ("BANGER_GUEST_SETUP") == NULL)
    {
      g_print ("bench-guest-setup: needs root (useradd, becoming the user, a network namespace) and "
               "BANGER_GUEST_SETUP; skipped\n");
      return 0;
    }
  tmp = g_dir_make_tmp ("banger-bench-guest-XXXXXX", NULL);
  g_chmod (tmp, 0755);
  c = config ();
  drive = g_build_filename (tmp, "cidata.img", NULL);
  seed = g_build_filename (tmp, "seed", NULL);
  root = g_build_filename (tmp, "root", NULL);
  gitconfig = g_build_filename (tmp, "gitconfig", NULL);
  g_file_set_contents (gitconfig, "[user]\n\tname = Bench\n", -1, NULL);
  entry.source = gitconfig;
  entry.home = tmp;
  g_ptr_array_add (files, &entry);

  for (int i = 0; i < RUNS; i++)
    {
      g_autoptr(GError) error = NULL;
      double t0 = now_ms ();
      if (!bg_config_drive_build (c, files, drive, BG_FILE_NONE, &error))
        g_error ("%s", error->message);
      drive_ms[i] = now_ms () - t0;
    }
  g_mkdir (seed, 0755);
  {
    const char *argv_mcopy[] = { "mcopy", "-o", "-i", drive, "::/meta-data", "::/user-data", "::/network-config",
                                 seed, NULL };
    run (argv_mcopy);
  }

  for (int i = 0; i < RUNS; i++)
    {
      make_root (root);
      first_ms[i] = time_setup (root, seed, FALSE);
      later_ms[i] = time_setup (root, seed, FALSE);
    }

  /* The interface too: a child in its own network namespace. */
  {
    int p[2];
    pid_t pid;

    if (pipe (p) < 0)
      g_error ("pipe");
    pid = fork ();
    if (pid == 0)
      {
        const char *tap[] = { "ip", "tuntap", "add", "dev", "bench0", "mode", "tap", NULL };
        const char *mac[] = { "ip", "link", "set", "dev", "bench0", "address", "02:aa:bb:cc:dd:ee", NULL };

        if (unshare (CLONE_NEWNET) < 0)
          _exit (1);
        for (int i = 0; i < RUNS; i++)
          {
            const char *del[] = { "ip", "link", "del", "eth0", NULL };
            if (i > 0)
              run (del);
            run (tap);
            run (mac);
            make_root (root);
            net_ms[i] = time_setup (root, seed, TRUE);
          }
        if (write (p[1], net_ms, sizeof net_ms) != sizeof net_ms)
          _exit (1);
        _exit (0);
      }
    close (p[1]);
    if (read (p[0], net_ms, sizeof net_ms) != sizeof net_ms)
      g_error ("the network namespace child failed");
    close (p[0]);
    waitpid (pid, NULL, 0);
  }

  g_print ("bench-guest-setup (median of %d runs)\n", RUNS);
  g_print ("  config drive built by the CLI (in-process FAT):     %.1f ms\n", median (drive_ms));
  g_print ("  banger-guest-setup, first boot of an instance:      %.1f ms\n", median (first_ms));
  g_print ("  banger-guest-setup, later boots:                    %.1f ms\n", median (later_ms));
  g_print ("  banger-guest-setup, first boot with the interface:  %.1f ms\n", median (net_ms));

  {
    const char *rm[] = { "rm", "-rf", "--", tmp, NULL };
    run (rm);
  }
  return 0;
}
