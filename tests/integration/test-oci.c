/* `banger image import --oci` as a user, for real: the layers applied by
 * banger-layer-apply as root of the user's own namespace (unshare
 * --map-auto --map-root-user over the test user's subordinate range),
 * so the image's owners (root, gid 42, uid 1000) land in the ext4 as the
 * image has them, and setuid bits survive; a hostile layer is refused
 * and the user's image store keeps nothing. */
#include <pwd.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "harness.h"
#include "oci-layout.h"

typedef struct {
  BgHarness *h;
  char      *home;
} Fixture;

static void
run_ok (const char * const *argv, char **out)
{
  int status;

  bg_harness_run_argv (argv, out, &status);
  g_assert_cmpint (status, ==, 0);
}

static void
setup (Fixture *f, gconstpointer data)
{
  f->h = bg_harness_start (60);
  bg_harness_import_test_image (f->h, BG_TEST_USER_A);
  f->home = g_strdup_printf ("%s/home-%s", f->h->tmp, BG_TEST_USER_A);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  bg_harness_stop (f->h);
  g_free (f->home);
}

/* A layout in the user's home, the user's own. */
static char *
user_layout (Fixture *f, gboolean hostile)
{
  g_autofree char *owner = g_strdup_printf ("%u:%u", bg_harness_uid (BG_TEST_USER_A),
                                            getpwnam (BG_TEST_USER_A)->pw_gid);
  char *layout = oci_layout_make (f->home, hostile ? "evil-layout" : "layout", hostile, FALSE, NULL);
  const char *chown[] = { "chown", "-R", owner, layout, NULL };

  run_ok (chown, NULL);
  return layout;
}

static char *
debugfs (Fixture *f, const char *request)
{
  g_autofree char *rootfs = g_build_filename (f->home, ".local/share/banger/images/app/rootfs.ext4", NULL);
  const char *argv[] = { "debugfs", "-R", request, rootfs, NULL };
  char *out = NULL;

  run_ok (argv, &out);
  return out;
}

static void
assert_store_clean (Fixture *f)
{
  g_autofree char *images = g_build_filename (f->home, ".local/share/banger/images", NULL);
  g_autoptr(GDir) d = g_dir_open (images, 0, NULL);
  const char *n;

  while (d && (n = g_dir_read_name (d)))
    if (n[0] == '.' || g_str_equal (n, "evil"))
      g_error ("left behind in the image store: %s", n);
}

static void
test_rootless_import (Fixture *f, gconstpointer data)
{
  g_autofree char *layout = user_layout (f, FALSE);
  g_autofree char *out = NULL, *err = NULL;

  if (bg_harness_run_cli (f->h, BG_TEST_USER_A, &out, &err, "image", "import", "--oci", layout, "--name", "app",
                          NULL) != 0)
    g_error ("image import --oci: %s", err);
  {
    g_autofree char *shadow = debugfs (f, "stat /etc/shadow");
    g_autofree char *su = debugfs (f, "stat /usr/bin/su");
    g_autofree char *app = debugfs (f, "stat /srv/app");
    g_autofree char *etc = debugfs (f, "ls /etc");
    g_autofree char *init = debugfs (f, "stat /usr/libexec/banger/banger-init");

    g_assert_nonnull (strstr (shadow, "User:     0"));
    g_assert_nonnull (strstr (shadow, "Group:    42"));
    g_assert_nonnull (strstr (shadow, "Mode:  0640"));
    g_assert_nonnull (strstr (su, "Mode:  04755"));
    g_assert_nonnull (strstr (app, "User:  1000"));
    g_assert_nonnull (strstr (app, "Group:  1000"));
    g_assert_null (strstr (etc, "os-release"));
    g_assert_nonnull (strstr (init, "User:     0"));
  }
  assert_store_clean (f);
}

static void
test_rootless_hostile_refused (Fixture *f, gconstpointer data)
{
  g_autofree char *layout = user_layout (f, TRUE);
  g_autofree char *out = NULL, *err = NULL;

  g_assert_cmpint (bg_harness_run_cli (f->h, BG_TEST_USER_A, &out, &err, "image", "import", "--oci", layout,
                                       "--name", "evil", NULL), !=, 0);
  g_test_message ("%s", err);
  g_assert_nonnull (strstr (err, "\"usr/bin/out/planted\""));
  g_assert_nonnull (strstr (err, "layer sha256:"));
  g_assert_false (g_file_test ("/planted", G_FILE_TEST_EXISTS));
  assert_store_clean (f);
}

static void
add_tests (void)
{
#define ADD(path, fn) g_test_add (path, Fixture, NULL, setup, fn, teardown)
  ADD ("/oci/rootless-import", test_rootless_import);
  ADD ("/oci/rootless-hostile-refused", test_rootless_hostile_refused);
}

int
main (int argc, char **argv)
{
  return bg_harness_main (&argc, &argv, add_tests);
}
