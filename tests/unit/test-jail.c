#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "bg-error.h"
#include "confine.h"
#include "jail.h"

static void
test_argv_is_a_vector_of_fields (void)
{
  /* Whatever an id holds, it is one argv element; nothing is joined into
   * a string or seen by a shell. */
  const char *hostile = "u1000-x; rm -rf / #";
  g_auto(GStrv) argv = bg_jail_build_argv (hostile);

  g_assert_cmpuint (g_strv_length (argv), ==, 5);
  g_assert_cmpstr (argv[0], ==, "/firecracker");
  g_assert_cmpstr (argv[1], ==, "--api-sock");
  g_assert_cmpstr (argv[2], ==, "/run/firecracker.socket");
  g_assert_cmpstr (argv[3], ==, "--id");
  g_assert_cmpstr (argv[4], ==, hostile);
}

static char *
make_exec (const char *dir, const char *name, int mode)
{
  g_autofree char *src = g_find_program_in_path ("true");
  g_autofree char *data = NULL;
  gsize len;
  char *path = g_build_filename (dir, name, NULL);

  g_assert_true (g_file_get_contents (src, &data, &len, NULL));
  g_assert_true (g_file_set_contents (path, data, len, NULL));
  g_assert_no_errno (chmod (path, mode));
  return path;
}

static void
test_vmm_must_be_roots_alone (void)
{
  g_autofree char *tmp = g_dir_make_tmp ("banger-jail-XXXXXX", NULL);
  g_autofree char *good = NULL, *writable = NULL, *open_dir = NULL, *in_open = NULL, *not_exec = NULL;
  g_autoptr(GError) error = NULL;
  gboolean dynamic;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root: the rule is about root-owned files");
      return;
    }
  g_assert_no_errno (chmod (tmp, 0755));
  good = make_exec (tmp, "good", 0755);
  writable = make_exec (tmp, "writable", 0777);
  not_exec = make_exec (tmp, "data", 0644);
  open_dir = g_build_filename (tmp, "open", NULL);
  g_assert_no_errno (g_mkdir (open_dir, 0777));
  g_assert_no_errno (chmod (open_dir, 0777));
  in_open = make_exec (open_dir, "vmm", 0755);

  g_assert_true (bg_confine_check_vmm (good, &dynamic, &error));
  g_assert_no_error (error);
  g_assert_true (dynamic);   /* coreutils' true is dynamically linked */

  g_assert_false (bg_confine_check_vmm (writable, &dynamic, &error));
  g_assert_error (error, BG_ERROR, BG_ERROR_UNSAFE);
  g_assert_nonnull (strstr (error->message, "writable by group or others"));
  g_clear_error (&error);

  g_assert_false (bg_confine_check_vmm (in_open, &dynamic, &error));
  g_assert_error (error, BG_ERROR, BG_ERROR_UNSAFE);
  g_assert_nonnull (strstr (error->message, "/open is writable"));
  g_clear_error (&error);

  g_assert_false (bg_confine_check_vmm (not_exec, &dynamic, &error));
  g_assert_error (error, BG_ERROR, BG_ERROR_UNSAFE);
  g_clear_error (&error);

  g_assert_no_errno (chown (good, 65534, 65534));
  g_assert_false (bg_confine_check_vmm (good, &dynamic, &error));
  g_assert_error (error, BG_ERROR, BG_ERROR_UNSAFE);
  g_assert_nonnull (strstr (error->message, "owned by uid 65534"));
  g_clear_error (&error);

  g_assert_false (bg_confine_check_vmm ("relative/firecracker", &dynamic, &error));
  g_assert_error (error, BG_ERROR, BG_ERROR_UNSAFE);
  g_clear_error (&error);

  {
    const char *argv[] = { "rm", "-rf", tmp, NULL };
    g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  }
}

static void
test_static_vmm_needs_no_libraries (void)
{
  g_autoptr(GError) error = NULL;
  gboolean dynamic = TRUE;

  /* Debian's ldconfig is statically linked, as release Firecracker is. */
  if (geteuid () != 0 || !g_file_test ("/sbin/ldconfig", G_FILE_TEST_EXISTS))
    {
      g_test_skip ("needs root and a static /sbin/ldconfig");
      return;
    }
  g_assert_true (bg_confine_check_vmm ("/sbin/ldconfig", &dynamic, &error));
  g_assert_no_error (error);
  g_assert_false (dynamic);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/jail/argv-is-a-vector-of-fields", test_argv_is_a_vector_of_fields);
  g_test_add_func ("/jail/vmm-must-be-roots-alone", test_vmm_must_be_roots_alone);
  g_test_add_func ("/jail/static-vmm-needs-no-libraries", test_static_vmm_needs_no_libraries);
  return g_test_run ();
}
