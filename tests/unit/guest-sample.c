#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest-sample.h"

#include "../bg-test.h"

void
bg_guest_fixture_setup (BgGuestFixture *f,
                        gconstpointer   data)
{
  f->tmp = g_dir_make_tmp ("banger-guest-XXXXXX", NULL);
  g_assert_no_errno (chmod (f->tmp, 0755));
}

void
bg_guest_fixture_teardown (BgGuestFixture *f,
                           gconstpointer   data)
{
  const char *argv[] = { "rm", "-rf", "--", f->tmp, NULL };
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  g_free (f->tmp);
}

char *
bg_test_run_out (const char * const *argv)
{
  g_auto(GStrv) envp = g_environ_setenv (g_get_environ (), "MTOOLS_SKIP_CHECK", "1", TRUE);
  char *out = NULL;
  int status;

  g_autoptr(GError) error = NULL;

  if (!bg_test_spawn_sync (NULL, argv, envp, G_SPAWN_STDERR_TO_DEV_NULL, &out, NULL, &status, &error))
    g_error ("%s", error->message);
  if (!g_spawn_check_wait_status (status, NULL))
    g_clear_pointer (&out, g_free);
  return out;
}

BgGuestConfig *
bg_test_sample_config (void)
{
  BgGuestConfig *c = g_new0 (BgGuestConfig, 1);
  const char *dns[] = { "192.0.2.53", NULL };
  const char *keys[] = { "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2xMg banger", NULL };

  c->name = g_strdup ("devbox");
  c->domain = g_strdup ("banger");
  c->user = g_strdup ("dev");
  c->address = g_strdup ("172.30.0.7");
  c->prefix = 24;
  c->gateway = g_strdup ("172.30.0.1");
  c->address6 = g_strdup ("fd12:3456:789a::7");
  c->gateway6 = g_strdup ("fd12:3456:789a::1");
  c->mac = g_strdup ("02:aa:bb:cc:dd:ee");
  c->dns = g_strdupv ((char **) dns);
  c->authorized_keys = g_strdupv ((char **) keys);
  c->host_key_private = g_strdup ("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\"quote\n-----END OPENSSH PRIVATE KEY-----\n");
  c->host_key_public = g_strdup ("ssh-ed25519 AAAAhost banger-host");
  c->instance_id = g_strdup ("banger-devbox-1");
  return c;
}

/* Built by an unprivileged process, as the CLI does: no mount, no root. */
void
bg_test_build_drive (const char          *dir,
                     const BgGuestConfig *c,
                     GPtrArray           *files,
                     const char          *drive)
{
  pid_t pid = fork ();
  int status;

  if (pid == 0)
    {
      g_autoptr(GError) error = NULL;
      if (geteuid () == 0 && (chown (dir, 65534, 65534) < 0 || setresgid (65534, 65534, 65534) < 0 ||
                              setresuid (65534, 65534, 65534) < 0))
        _exit (3);
      if (!bg_config_drive_build (c, files, drive, BG_FILE_NONE, &error))
        {
          g_printerr ("%s\n", error->message);
          _exit (1);
        }
      _exit (0);
    }
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  bg_assert_exited (status, 0);
  if (geteuid () == 0)
    g_assert_no_errno (chown (dir, 0, 0));
}
