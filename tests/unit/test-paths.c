#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include "bg-error.h"
#include "bg-paths.h"

typedef struct {
  char *tmp;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->tmp = g_dir_make_tmp ("banger-paths-XXXXXX", NULL);
  g_assert_nonnull (f->tmp);
  g_assert_no_errno (chmod (f->tmp, 0755));
}

static void
rm_rf (const char *path)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GFileEnumerator) e = g_file_enumerate_children (file, G_FILE_ATTRIBUTE_STANDARD_NAME,
                                                            G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS,
                                                            NULL, NULL);
  GFileInfo *info;

  while (e != NULL && (info = g_file_enumerator_next_file (e, NULL, NULL)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, g_file_info_get_name (info), NULL);
      if (g_file_info_get_file_type (info) == G_FILE_TYPE_DIRECTORY)
        rm_rf (child);
      else
        g_unlink (child);
      g_object_unref (info);
    }
  g_rmdir (path);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  rm_rf (f->tmp);
  g_free (f->tmp);
}

static void
test_xdg_dirs_follow_environment (Fixture *f, gconstpointer data)
{
  g_autofree char *cfg = NULL, *state = NULL, *dat = NULL, *vms = NULL, *cache = NULL, *cache_home = NULL;

  g_setenv ("XDG_CONFIG_HOME", "/x/config", TRUE);
  g_setenv ("XDG_STATE_HOME", "/x/state", TRUE);
  g_setenv ("XDG_DATA_HOME", "relative/is/ignored", TRUE);
  g_setenv ("HOME", "/home/someone", TRUE);
  cfg = bg_paths_config_file ();
  state = bg_paths_state_dir ();
  dat = bg_paths_data_dir ();
  vms = bg_paths_vms_dir ();
  g_assert_cmpstr (cfg, ==, "/x/config/banger/banger.conf");
  g_assert_cmpstr (state, ==, "/x/state/banger");
  g_assert_cmpstr (vms, ==, "/x/state/banger/vms");
  g_assert_cmpstr (dat, ==, "/home/someone/.local/share/banger");
  g_setenv ("XDG_CACHE_HOME", "/x/cache", TRUE);
  cache = bg_paths_cache_dir ();
  g_assert_cmpstr (cache, ==, "/x/cache/banger");
  g_setenv ("XDG_CACHE_HOME", "relative/is/ignored", TRUE);
  cache_home = bg_paths_cache_dir ();
  g_assert_cmpstr (cache_home, ==, "/home/someone/.cache/banger");
}

static void
assert_mode (const char *path, mode_t mode)
{
  struct stat st;
  g_assert_no_errno (lstat (path, &st));
  g_assert_true (S_ISDIR (st.st_mode));
  g_assert_cmpuint (st.st_mode & 07777, ==, mode);
}

static void
test_runtime_dir_xdg_is_created_private (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = bg_paths_resolve_runtime_dir (f->tmp, "/nonexistent", geteuid (), &error);
  g_autofree char *expected = g_build_filename (f->tmp, "banger", NULL);

  g_assert_no_error (error);
  g_assert_cmpstr (dir, ==, expected);
  assert_mode (dir, 0700);
}

static void
test_runtime_dir_xdg_is_rechmodded (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *expected = g_build_filename (f->tmp, "banger", NULL);
  g_autofree char *dir = NULL;

  g_assert_no_errno (mkdir (expected, 0700));
  g_assert_no_errno (chmod (expected, 0755));
  dir = bg_paths_resolve_runtime_dir (f->tmp, "/nonexistent", geteuid (), &error);
  g_assert_no_error (error);
  assert_mode (dir, 0700);
}

static void
test_runtime_dir_xdg_refuses_symlink (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *link = g_build_filename (f->tmp, "banger", NULL);
  g_autofree char *target = g_build_filename (f->tmp, "elsewhere", NULL);
  g_autofree char *dir = NULL;

  g_assert_no_errno (mkdir (target, 0700));
  g_assert_no_errno (chmod (target, 0755));
  g_assert_no_errno (symlink (target, link));
  dir = bg_paths_resolve_runtime_dir (f->tmp, "/nonexistent", geteuid (), &error);
  g_assert_null (dir);
  g_assert_error (error, BG_ERROR, BG_ERROR_UNSAFE);
  g_assert_nonnull (strstr (error->message, "symbolic link"));
  /* The target was not chmod'ed through the link. */
  assert_mode (target, 0755);
}

static void
test_runtime_dir_xdg_missing_is_an_error (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *missing = g_build_filename (f->tmp, "gone", NULL);
  g_autofree char *dir = bg_paths_resolve_runtime_dir (missing, "/nonexistent", geteuid (), &error);

  g_assert_null (dir);
  g_assert_error (error, BG_ERROR, BG_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "XDG_RUNTIME_DIR"));
}

static char *
fallback_path (Fixture *f)
{
  g_autofree char *leaf = g_strdup_printf ("banger-runtime-%u", (guint) geteuid ());
  return g_build_filename (f->tmp, leaf, NULL);
}

static void
test_runtime_dir_fallback_is_created_private (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *expected = fallback_path (f);
  g_autofree char *dir = bg_paths_resolve_runtime_dir (NULL, f->tmp, geteuid (), &error);

  g_assert_no_error (error);
  g_assert_cmpstr (dir, ==, expected);
  assert_mode (dir, 0700);

  /* And accepted as it is on the next run. */
  g_clear_pointer (&dir, g_free);
  dir = bg_paths_resolve_runtime_dir ("", f->tmp, geteuid (), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (dir, ==, expected);
}

static void
test_runtime_dir_fallback_refuses_symlink (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = fallback_path (f);
  g_autofree char *target = g_build_filename (f->tmp, "planted", NULL);
  g_autofree char *dir = NULL;

  g_assert_no_errno (mkdir (target, 0700));
  g_assert_no_errno (symlink (target, path));
  dir = bg_paths_resolve_runtime_dir (NULL, f->tmp, geteuid (), &error);
  g_assert_null (dir);
  g_assert_error (error, BG_ERROR, BG_ERROR_UNSAFE);
  g_assert_nonnull (strstr (error->message, "symbolic link"));
}

static void
test_runtime_dir_fallback_refuses_0755 (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = fallback_path (f);
  g_autofree char *dir = NULL;

  g_assert_no_errno (mkdir (path, 0700));
  g_assert_no_errno (chmod (path, 0755));
  dir = bg_paths_resolve_runtime_dir (NULL, f->tmp, geteuid (), &error);
  g_assert_null (dir);
  g_assert_error (error, BG_ERROR, BG_ERROR_UNSAFE);
  g_assert_nonnull (strstr (error->message, "0755"));
  /* Never repaired behind the user's back. */
  assert_mode (path, 0755);
}

static void
test_runtime_dir_fallback_refuses_file (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = fallback_path (f);
  g_autofree char *dir = NULL;

  g_assert_true (g_file_set_contents (path, "", 0, NULL));
  dir = bg_paths_resolve_runtime_dir (NULL, f->tmp, geteuid (), &error);
  g_assert_null (dir);
  g_assert_error (error, BG_ERROR, BG_ERROR_UNSAFE);
  g_assert_nonnull (strstr (error->message, "not a directory"));
}

static void
test_runtime_dir_fallback_refuses_foreign_owner (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *dir = NULL;
  uid_t me = geteuid ();

  if (me == 0)
    {
      /* As root, plant a real directory owned by nobody. */
      path = fallback_path (f);
      g_assert_no_errno (mkdir (path, 0700));
      g_assert_no_errno (chown (path, 65534, 65534));
    }
  else
    {
      /* Unprivileged, we cannot give a directory away; instead resolve
       * for another uid, for which our own directory is foreign. */
      path = g_strdup_printf ("%s/banger-runtime-%u", f->tmp, (guint) me + 1);
      g_assert_no_errno (mkdir (path, 0700));
      me = me + 1;
    }
  dir = bg_paths_resolve_runtime_dir (NULL, f->tmp, me, &error);
  g_assert_null (dir);
  g_assert_error (error, BG_ERROR, BG_ERROR_UNSAFE);
  g_assert_nonnull (strstr (error->message, "not by you"));
}

static void
test_runtime_dir_fallback_missing_parent (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *base = g_build_filename (f->tmp, "no-such-dir", NULL);
  g_autofree char *dir = bg_paths_resolve_runtime_dir (NULL, base, geteuid (), &error);

  g_assert_null (dir);
  g_assert_error (error, BG_ERROR, BG_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "does not exist"));
}

static void
test_private_subdir_is_0700 (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *parent = bg_paths_resolve_runtime_dir (f->tmp, "/nonexistent", geteuid (), &error);
  g_autofree char *sub = bg_paths_ensure_private_subdir (parent, "sockets", &error);
  g_autofree char *link = g_build_filename (parent, "evil", NULL);
  g_autofree char *bad = NULL;

  g_assert_no_error (error);
  assert_mode (sub, 0700);

  g_assert_no_errno (symlink (f->tmp, link));
  bad = bg_paths_ensure_private_subdir (parent, "evil", &error);
  g_assert_null (bad);
  g_assert_error (error, BG_ERROR, BG_ERROR_UNSAFE);
}

int
main (int argc, char **argv)
{
  umask (077);
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/paths/xdg-dirs-follow-environment", test_xdg_dirs_follow_environment);
  ADD ("/paths/runtime-dir/xdg-created-private", test_runtime_dir_xdg_is_created_private);
  ADD ("/paths/runtime-dir/xdg-rechmodded", test_runtime_dir_xdg_is_rechmodded);
  ADD ("/paths/runtime-dir/xdg-refuses-symlink", test_runtime_dir_xdg_refuses_symlink);
  ADD ("/paths/runtime-dir/xdg-missing-is-an-error", test_runtime_dir_xdg_missing_is_an_error);
  ADD ("/paths/runtime-dir/fallback-created-private", test_runtime_dir_fallback_is_created_private);
  ADD ("/paths/runtime-dir/fallback-refuses-symlink", test_runtime_dir_fallback_refuses_symlink);
  ADD ("/paths/runtime-dir/fallback-refuses-0755", test_runtime_dir_fallback_refuses_0755);
  ADD ("/paths/runtime-dir/fallback-refuses-file", test_runtime_dir_fallback_refuses_file);
  ADD ("/paths/runtime-dir/fallback-refuses-foreign-owner", test_runtime_dir_fallback_refuses_foreign_owner);
  ADD ("/paths/runtime-dir/fallback-missing-parent", test_runtime_dir_fallback_missing_parent);
  ADD ("/paths/private-subdir", test_private_subdir_is_0700);
  return g_test_run ();
}
