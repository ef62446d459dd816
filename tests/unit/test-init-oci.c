/* banger-init's pieces for images with no init (bg-init-oci.c), each
 * against what banger really writes: the workload record of
 * `image import --oci`, the config drive the CLI builds (read back from
 * the FAT image), a modules.dep, a scratch root for PATH lookups, and the
 * PID 1 loop in a subreaper of the test's own. */
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "bg-init-oci.h"
#include "guest-sample.h"

static void
test_workload_record (void)
{
  char good[] = "argv=/usr/bin/hello\0argv=--loud\0env=PATH=/opt/bin\0env=A=b=c\0cwd=/srv\0user=app:staff";
  char no_nul[] = { 'a', 'r', 'g', 'v', '=', 'x' };
  char odd[] = "argv=x\0shell=/bin/sh";
  char none[] = "env=A=1";
  char why[256];
  char storage[1024];
  BgInitWorkload w;

  g_assert_cmpint (bg_init_workload_parse (good, sizeof good, &w, why, sizeof why), ==, 0);
  g_assert_cmpuint (w.nargv, ==, 2);
  g_assert_cmpstr (w.argv[1], ==, "--loud");
  g_assert_cmpuint (w.nenv, ==, 2);
  g_assert_cmpstr (w.env[1], ==, "A=b=c");
  g_assert_cmpstr (w.cwd, ==, "/srv");
  g_assert_cmpstr (w.user, ==, "app:staff");
  bg_init_workload_defaults (&w, "/home/app", "devbox", storage, sizeof storage);
  /* PATH the image's own; HOME, HOSTNAME and TERM added. */
  g_assert_cmpuint (w.nenv, ==, 5);
  g_assert_cmpstr (w.env[0], ==, "PATH=/opt/bin");
  g_assert_cmpstr (w.env[2], ==, "HOME=/home/app");
  g_assert_cmpstr (w.env[3], ==, "HOSTNAME=devbox");
  g_assert_cmpstr (w.env[4], ==, "TERM=linux");
  g_assert_null (w.env[5]);
  g_assert_null (w.argv[2]);

  g_assert_cmpint (bg_init_workload_parse (no_nul, sizeof no_nul, &w, why, sizeof why), ==, -1);
  g_assert_nonnull (strstr (why, "NUL"));
  g_assert_cmpint (bg_init_workload_parse (odd, sizeof odd, &w, why, sizeof why), ==, -1);
  g_assert_nonnull (strstr (why, "shell="));
  g_assert_cmpint (bg_init_workload_parse (none, sizeof none, &w, why, sizeof why), ==, -1);
  g_assert_nonnull (strstr (why, "Entrypoint"));
}

static void
test_default_path (void)
{
  char rec[] = "argv=sh";
  char why[64], storage[512];
  BgInitWorkload w;

  g_assert_cmpint (bg_init_workload_parse (rec, sizeof rec, &w, why, sizeof why), ==, 0);
  bg_init_workload_defaults (&w, "/", NULL, storage, sizeof storage);
  g_assert_true (g_str_has_prefix (w.env[0], "PATH=/usr/local/sbin:"));
  g_assert_cmpstr (w.env[1], ==, "HOME=/");
  g_assert_cmpstr (w.env[2], ==, "TERM=linux");
}

static void
test_find_program (void)
{
  g_autofree char *root = g_dir_make_tmp ("banger-init-oci-XXXXXX", NULL);
  g_autofree char *bin = g_build_filename (root, "usr/local/bin", NULL);
  g_autofree char *tool = g_build_filename (bin, "tool", NULL);
  g_autofree char *plain = g_build_filename (bin, "plain", NULL);
  char out[4096];
  const char *argv[] = { "rm", "-rf", root, NULL };

  g_assert_no_errno (g_mkdir_with_parents (bin, 0755));
  g_assert_true (g_file_set_contents (tool, "#!/bin/sh\n", -1, NULL));
  g_assert_no_errno (chmod (tool, 0755));
  g_assert_true (g_file_set_contents (plain, "not executable\n", -1, NULL));
  g_assert_cmpint (bg_init_find_program (root, "/usr/bin:/usr/local/bin", "tool", out, sizeof out), ==, 0);
  g_assert_cmpstr (out, ==, "/usr/local/bin/tool");
  g_assert_cmpint (bg_init_find_program (root, "/usr/local/bin", "plain", out, sizeof out), ==, -1);
  g_assert_cmpint (bg_init_find_program (root, "/usr/local/bin", "missing", out, sizeof out), ==, -1);
  g_assert_cmpint (bg_init_find_program (root, "", "/abs/prog", out, sizeof out), ==, 0);
  g_assert_cmpstr (out, ==, "/abs/prog");
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
}

/* The drive the CLI writes (bg_config_drive_build), found by its label
 * and read back here as banger-init reads it: without GLib. */
static void
test_reads_the_drive_the_cli_writes (BgGuestFixture *f, gconstpointer data)
{
  g_autoptr(BgGuestConfig) c = bg_test_sample_config ();
  g_autofree char *drive = g_build_filename (f->tmp, "cidata.img", NULL);
  g_autofree char *meta = NULL, *net = NULL, *mpath = g_build_filename (f->tmp, "meta-data", NULL);
  g_autofree char *npath = g_build_filename (f->tmp, "network-config", NULL);
  g_autofree char *cidr = NULL;
  char why[256];
  BgInitSeed seed;
  int fd;

  bg_test_build_drive (f->tmp, c, NULL, drive);
  fd = open (drive, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (bg_init_is_cidata (fd), ==, 1);
  close (fd);
  {
    const char *argv[] = { "mcopy", "-i", drive, "::/meta-data", "::/network-config", f->tmp, NULL };
    g_autofree char *out = bg_test_run_out (argv);
    g_assert_nonnull (out);
  }
  g_assert_true (g_file_get_contents (mpath, &meta, NULL, NULL));
  g_assert_true (g_file_get_contents (npath, &net, NULL, NULL));
  g_assert_cmpint (bg_init_seed_parse (meta, net, &seed, why, sizeof why), ==, 0);
  g_assert_cmpstr (seed.hostname, ==, c->name);
  g_assert_cmpstr (seed.mac, ==, c->mac);
  g_assert_cmpstr (seed.address, ==, c->address);
  g_assert_cmpuint (seed.prefix, ==, c->prefix);
  g_assert_cmpstr (seed.gateway, ==, c->gateway);
  g_assert_cmpuint (seed.ndns, ==, g_strv_length (c->dns));
  g_assert_cmpstr (seed.dns[0], ==, c->dns[0]);
  g_assert_cmpstr (seed.search, ==, c->domain);

  /* A file that is not a CIDATA drive. */
  fd = open (mpath, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (bg_init_is_cidata (fd), ==, 0);
  close (fd);
}

static void
test_broken_documents_refused (void)
{
  static const struct { const char *meta, *net, *says; } cases[] = {
    { "{\"local-hostname\":\"dev\"", "{}", "meta-data: not JSON" },
    { "{\"local-hostname\":\"bad name\"}", "{}", "local-hostname" },
    { "{\"local-hostname\":\"dev\"}", "{\"ethernets\":{\"eth0\":{\"addresses\":[\"10.0.0.300/24\"]}}}",
      "addresses[0]" },
    { "{\"local-hostname\":\"dev\"}",
      "{\"ethernets\":{\"eth0\":{\"addresses\":[\"10.0.0.3/24\"],\"routes\":[{\"via\":\"x\"}]}}}", "routes[0].via" },
    { "{\"local-hostname\":\"dev\"}", "{\"ethernets\":{\"eth0\":{\"addresses\":[\"10.0.0.3/24\"]}}}",
      "macaddress" },
    { "{\"local-hostname\":\"dev\"}", "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]", "network-config: not JSON" },
  };
  char why[256];
  BgInitSeed seed;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_assert_cmpint (bg_init_seed_parse (cases[i].meta, cases[i].net, &seed, why, sizeof why), ==, -1);
      if (strstr (why, cases[i].says) == NULL)
        g_error ("case %u: \"%s\" does not say \"%s\"", i, why, cases[i].says);
    }
}

static void
test_module_paths (void)
{
  g_autofree char *dir = g_dir_make_tmp ("banger-modules-XXXXXX", NULL);
  g_autofree char *dep = g_build_filename (dir, "modules.dep", NULL);
  g_autofree char *want0 = g_build_filename (dir, "kernel/net/core/failover.ko", NULL);
  g_autofree char *want2 = g_build_filename (dir, "kernel/drivers/net/virtio_net.ko.xz", NULL);
  char paths[8][512];
  const char *argv[] = { "rm", "-rf", dir, NULL };

  g_assert_true (g_file_set_contents (dep,
    "kernel/fs/overlayfs/overlay.ko:\n"
    "kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n"
    "kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n"
    "kernel/net/core/failover.ko:\n"
    "kernel/fs/nls/nls_iso8859-1.ko:\n", -1, NULL));
  g_assert_cmpint (bg_init_module_paths (dir, "overlay", paths, 8), ==, 1);
  g_assert_true (g_str_has_suffix (paths[0], "/kernel/fs/overlayfs/overlay.ko"));
  /* What it needs first, farthest first; "-" and "_" alike. */
  g_assert_cmpint (bg_init_module_paths (dir, "virtio-net", paths, 8), ==, 3);
  g_assert_cmpstr (paths[0], ==, want0);
  g_assert_true (g_str_has_suffix (paths[1], "net_failover.ko"));
  g_assert_cmpstr (paths[2], ==, want2);
  g_assert_cmpint (bg_init_module_paths (dir, "vfat", paths, 8), ==, -1);
  /* The character set a vfat mount loads, by the name it has in
   * modules.dep (bg_init_ensure_vfat asks for it so). */
  g_assert_cmpint (bg_init_module_paths (dir, "nls_iso8859-1", paths, 8), ==, 1);
  g_assert_true (g_str_has_suffix (paths[0], "/kernel/fs/nls/nls_iso8859-1.ko"));
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
}

/* A virtio device of a type, as sysfs lists them (driver bound or not). */
static void
test_virtio_present (void)
{
  g_autofree char *dir = g_dir_make_tmp ("banger-virtio-XXXXXX", NULL);
  const char *argv[] = { "rm", "-rf", dir, NULL };
  const struct { const char *name, *id; } devices[] = { { "virtio0", "0x0002\n" }, { "virtio1", "0x0001\n" },
                                                         { "virtio2", "0x0013\n" } };

  g_assert_false (bg_init_virtio_present (dir, 3));
  for (guint i = 0; i < G_N_ELEMENTS (devices); i++)
    {
      g_autofree char *sub = g_build_filename (dir, devices[i].name, NULL);
      g_autofree char *file = g_build_filename (sub, "device", NULL);

      g_assert_no_errno (g_mkdir (sub, 0755));
      g_assert_true (g_file_set_contents (file, devices[i].id, -1, NULL));
    }
  g_assert_true (bg_init_virtio_present (dir, 19));   /* vsock */
  g_assert_true (bg_init_virtio_present (dir, 2));    /* block */
  g_assert_false (bg_init_virtio_present (dir, 3));   /* no console */
  g_assert_false (bg_init_virtio_present ("/nonexistent/virtio", 2));
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
}

/* The PID 1 loop, in a child made a subreaper (orphans come to it, as
 * to PID 1): it reaps the orphan and returns the workload's status; a
 * SIGINT (Ctrl-Alt-Del) ends it early. */
static int
supervise_child (const char *script, gboolean interrupt)
{
  pid_t pid = fork ();
  int status;

  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      sigset_t set;
      pid_t w;
      int st;

      prctl (PR_SET_CHILD_SUBREAPER, 1);
      sigemptyset (&set);
      sigaddset (&set, SIGCHLD);
      sigaddset (&set, SIGINT);
      sigaddset (&set, SIGTERM);
      sigaddset (&set, SIGPWR);
      sigprocmask (SIG_BLOCK, &set, NULL);
      if ((w = fork ()) == 0)
        {
          sigprocmask (SIG_UNBLOCK, &set, NULL);
          execl ("/bin/sh", "sh", "-c", script, (char *) NULL);
          _exit (127);
        }
      if (interrupt)
        kill (getpid (), SIGINT);
      st = bg_init_supervise (w);
      if (st < 0)
        kill (w, SIGKILL);    /* what power_off () does to every process */
      /* Every orphan reaped: no zombie is left to this "PID 1". */
      while (waitpid (-1, NULL, 0) > 0)
        ;
      _exit (st < 0 ? 200 : WIFEXITED (st) ? WEXITSTATUS (st) : 201);
    }
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFEXITED (status));
  return WEXITSTATUS (status);
}

static void
test_supervise (void)
{
  /* An orphan (its parent exits at once) outlives the workload's start. */
  g_assert_cmpint (supervise_child ("(sleep 0.2 &) ; exit 7", FALSE), ==, 7);
  g_assert_cmpint (supervise_child ("sleep 30", TRUE), ==, 200);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/init-oci/workload-record", test_workload_record);
  g_test_add_func ("/init-oci/default-path", test_default_path);
  g_test_add_func ("/init-oci/find-program", test_find_program);
  g_test_add ("/init-oci/reads-the-drive-the-cli-writes", BgGuestFixture, NULL, bg_guest_fixture_setup,
              test_reads_the_drive_the_cli_writes, bg_guest_fixture_teardown);
  g_test_add_func ("/init-oci/broken-documents-refused", test_broken_documents_refused);
  g_test_add_func ("/init-oci/module-paths", test_module_paths);
  g_test_add_func ("/init-oci/virtio-present", test_virtio_present);
  g_test_add_func ("/init-oci/supervise", test_supervise);
  return g_test_run ();
}
