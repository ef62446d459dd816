/* harness-cli.c: running the banger CLI as a test user.
 * See harness.h. */
#include <elf.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "harness-private.h"

/* "setpriv ... -- $BANGER_CLI ARGS": banger run as @user (as root when
 * @user is NULL), for g_spawn_*(). */
char **
bg_harness_cli_argv (const char         *user,
                     const char * const *args)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  struct passwd *pw = user ? getpwnam (user) : NULL;

  if (user != NULL && pw == NULL)
    g_error ("no user %s", user);
  if (pw != NULL)
    {
      g_autofree char *uid = g_strdup_printf ("--reuid=%u", pw->pw_uid);
      g_autofree char *gid = g_strdup_printf ("--regid=%u", pw->pw_gid);
      const char *prefix[] = { "setpriv", uid, gid, "--init-groups", "--", NULL };
      g_strv_builder_addv (b, prefix);
    }
  g_strv_builder_add (b, g_getenv ("BANGER_CLI"));
  g_strv_builder_addv (b, (const char **) args);
  return g_strv_builder_end (b);
}

/* The environment banger gets in tests: its own home and runtime dir, no
 * XDG overrides from the runner, no polkit agent, and the test bus when
 * there is a harness. */
char **
bg_harness_cli_envp (BgHarness  *h,
                     const char *home,
                     const char *runtime)
{
  char **envp = g_get_environ ();

  if (h != NULL)
    envp = g_environ_setenv (envp, "DBUS_SYSTEM_BUS_ADDRESS", h->bus_address, TRUE);
  envp = g_environ_setenv (envp, "HOME", home, TRUE);
  envp = g_environ_setenv (envp, "XDG_RUNTIME_DIR", runtime, TRUE);
  envp = g_environ_unsetenv (envp, "XDG_CONFIG_HOME");
  envp = g_environ_unsetenv (envp, "XDG_DATA_HOME");
  envp = g_environ_unsetenv (envp, "XDG_STATE_HOME");
  envp = g_environ_setenv (envp, "BANGER_NO_AGENT", "1", TRUE);
  return envp;
}

/* Runs the real banger CLI as @user (root when NULL) against the test bus,
 * with a home and runtime dir of its own below the harness's tmp dir. */
int
bg_harness_run_cli (BgHarness   *h,
                    const char  *user,
                    char       **out,
                    char       **err,
                    const char  *first_arg,
                    ...)
{
  g_autoptr(GStrvBuilder) args = g_strv_builder_new ();
  g_autofree char *home = g_strdup_printf ("%s/home-%s", h->tmp, user ? user : "root");
  g_autofree char *runtime = g_strdup_printf ("%s/runtime-%s", h->tmp, user ? user : "root");
  g_auto(GStrv) argv = NULL, envp = NULL, arg_list = NULL;
  g_autoptr(GError) error = NULL;
  struct passwd *pw = user ? getpwnam (user) : NULL;
  const char *a;
  int status;
  va_list ap;

  if (!g_file_test (home, G_FILE_TEST_IS_DIR))
    {
      g_assert_no_errno (g_mkdir (home, 0700));
      g_assert_no_errno (g_mkdir (runtime, 0700));
      if (pw != NULL)
        {
          g_assert_no_errno (chown (home, pw->pw_uid, pw->pw_gid));
          g_assert_no_errno (chown (runtime, pw->pw_uid, pw->pw_gid));
        }
    }
  envp = bg_harness_cli_envp (h, home, runtime);
  if (h->cli_path_prefix != NULL)
    {
      g_autofree char *path = g_strdup_printf ("%s:%s", h->cli_path_prefix, g_environ_getenv (envp, "PATH"));
      envp = g_environ_setenv (envp, "PATH", path, TRUE);
    }
  va_start (ap, first_arg);
  for (a = first_arg; a != NULL; a = va_arg (ap, const char *))
    g_strv_builder_add (args, a);
  va_end (ap);
  arg_list = g_strv_builder_end (args);
  argv = bg_harness_cli_argv (user, (const char * const *) arg_list);

  /* Output nobody asked for must not land in the TAP stream. */
  if (!g_spawn_sync (home, argv, envp, G_SPAWN_SEARCH_PATH | (out ? 0 : G_SPAWN_STDOUT_TO_DEV_NULL), NULL, NULL,
                     out, err, &status, &error))
    g_error ("%s", error->message);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

/* Whether the Debian mirror answers, for tests that build images. */
gboolean
bg_harness_mirror_reachable (void)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) c = NULL;

  g_socket_client_set_timeout (client, bg_test_timeout (10));
  c = g_socket_client_connect_to_host (client, "deb.debian.org", 80, NULL, NULL);
  return c != NULL;
}

/* Builds image @name with `banger image build` as test user A (with
 * --cloud-init if asked), in @home, or in a new home when @home is NULL;
 * returns the home (the caller removes it). For a prepare step: it needs
 * the Debian mirror, so it runs before the harness leaves the network. */
char *
bg_harness_build_image (const char *home,
                        const char *name,
                        gboolean    cloud_init)
{
  return bg_harness_build_image_full (home, name, cloud_init, NULL);
}

/* As bg_harness_build_image, with more Debian packages (comma-separated,
 * or NULL) in the image. */
char *
bg_harness_build_image_full (const char *home,
                             const char *name,
                             gboolean    cloud_init,
                             const char *packages)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  char *dir = home ? g_strdup (home) : g_dir_make_tmp ("banger-it-image-XXXXXX", NULL);
  g_autofree char *with = packages ? g_strdup_printf ("--packages=%s", packages) : NULL;
  g_autoptr(GStrvBuilder) args = g_strv_builder_new ();
  g_auto(GStrv) list = NULL, argv = NULL;
  g_auto(GStrv) envp = bg_harness_cli_envp (NULL, dir, dir);
  g_autofree char *err = NULL;
  int status;

  g_strv_builder_addv (args, (const char *[]) { "image", "build", name, NULL });
  if (cloud_init)
    g_strv_builder_add (args, "--cloud-init");
  if (with != NULL)
    g_strv_builder_add (args, with);
  list = g_strv_builder_end (args);
  argv = bg_harness_cli_argv (BG_TEST_USER_A, (const char * const *) list);
  g_chmod (dir, 0755);
  g_assert_no_errno (chown (dir, pw->pw_uid, pw->pw_gid));
  if (!g_spawn_sync (dir, argv, envp, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                     NULL, &err, &status, NULL) || !g_spawn_check_wait_status (status, NULL))
    g_error ("image build %s failed: %s", name, err);
  return dir;
}

/* A 4 KiB x86-64 ELF executable at @path, owned by @user: a "kernel"
 * banger accepts, for VMMs that boot nothing. */
void
bg_harness_write_tiny_kernel (const char *path,
                              const char *user)
{
  guint8 elf[4096] = { 0 };
  Elf64_Ehdr *eh = (Elf64_Ehdr *) elf;
  struct passwd *pw = getpwnam (user);

  memcpy (eh->e_ident, ELFMAG, SELFMAG);
  eh->e_ident[EI_CLASS] = ELFCLASS64;
  eh->e_type = ET_EXEC;
  eh->e_machine = EM_X86_64;
  g_assert_true (g_file_set_contents (path, (const char *) elf, sizeof elf, NULL));
  g_assert_no_errno (chown (path, pw->pw_uid, pw->pw_gid));
}

/* A tiny image for @user, named "default": an x86-64 ELF kernel and a
 * real 64 MiB ext4 root filesystem, imported with the CLI. Enough for the
 * test VMM, which boots nothing. Its root has an (empty) /usr/sbin/sshd,
 * as the images banger builds do, so that `vm ssh` tries ssh. */
void
bg_harness_import_test_image (BgHarness  *h,
                              const char *user)
{
  g_autofree char *home = g_strdup_printf ("%s/home-%s", h->tmp, user);
  g_autofree char *kernel = g_build_filename (home, "vmlinux", NULL);
  g_autofree char *rootfs = g_build_filename (home, "rootfs.ext4", NULL);
  g_autofree char *tree = g_build_filename (home, "default-root", NULL);
  g_autofree char *sbin = g_build_filename (tree, "usr/sbin", NULL);
  g_autofree char *sshd = g_build_filename (sbin, "sshd", NULL);
  g_autofree char *out = NULL, *err = NULL;
  struct passwd *pw = getpwnam (user);
  const char *mkfs[] = { "mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, rootfs, "64M", NULL };
  const char *rm[] = { "rm", "-rf", "--", tree, NULL };
  int status;

  /* The first CLI run makes the user's home. */
  bg_harness_run_cli (h, user, NULL, NULL, "--version", NULL);
  g_assert_no_errno (g_mkdir_with_parents (sbin, 0755));
  g_assert_true (g_file_set_contents_full (sshd, "", 0, G_FILE_SET_CONTENTS_NONE, 0755, NULL));
  bg_harness_write_tiny_kernel (kernel, user);
  bg_harness_run_argv (mkfs, NULL, &status);
  g_assert_cmpint (status, ==, 0);
  bg_harness_run_argv (rm, NULL, &status);
  g_assert_no_errno (chown (rootfs, pw->pw_uid, pw->pw_gid));
  if (bg_harness_run_cli (h, user, &out, &err, "image", "import", "default", "--kernel", "vmlinux", "--rootfs",
                          "rootfs.ext4", NULL) != 0)
    g_error ("image import: %s", err);
}
