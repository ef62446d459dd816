/* bg-spawn.c: external programs, found and run the same way for every
 * user.
 *
 * A login shell on Debian gives ordinary users a PATH without /usr/sbin,
 * where mke2fs, e2fsck and resize2fs live; root's PATH has it. So a
 * program is looked up on PATH and then in the system directories, and a
 * command checks everything it will need before it does any work, naming
 * each missing program and the package that provides it. Children get
 * an argv (never a shell); their stderr becomes the error's text.
 */
#include <sys/wait.h>

#include "bg-cli.h"
#include "bg-error.h"
#include "bg-spawn.h"

static const char * const system_dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin", NULL };

/* Where each program comes from, for the message that says what to
 * install. */
static const struct {
  const char *name;
  const char *debian;
  const char *fedora;
} packages[] = {
  { "mke2fs", "e2fsprogs", "e2fsprogs" },
  { "e2fsck", "e2fsprogs", "e2fsprogs" },
  { "resize2fs", "e2fsprogs", "e2fsprogs" },
  { "debugfs", "e2fsprogs", "e2fsprogs" },
  { "mmdebstrap", "mmdebstrap", "mmdebstrap" },
  { "unshare", "util-linux", "util-linux-core" },
  { "newuidmap", "uidmap", "shadow-utils" },
  { "newgidmap", "uidmap", "shadow-utils" },
  { "ssh", "openssh-client", "openssh-clients" },
  { "scp", "openssh-client", "openssh-clients" },
  { "tar", "tar", "tar" },
  { "cp", "coreutils", "coreutils" },
  { "ls", "coreutils", "coreutils" },
  { "cat", "coreutils", "coreutils" },
  { "rm", "coreutils", "coreutils" },
  { "pkttyagent", "polkitd", "polkit" },
};

/* An absolute path to @name: PATH first, then the system directories.
 * NULL when there is none (or @name is a path that is not executable). */
char *
bg_program_find (const char *name)
{
  char *path;

  if (strchr (name, '/') != NULL)
    return g_file_test (name, G_FILE_TEST_IS_EXECUTABLE) ? g_strdup (name) : NULL;
  if ((path = g_find_program_in_path (name)) != NULL)
    return path;
  for (guint i = 0; system_dirs[i]; i++)
    {
      g_autofree char *candidate = g_build_filename (system_dirs[i], name, NULL);

      if (g_file_test (candidate, G_FILE_TEST_IS_EXECUTABLE) && !g_file_test (candidate, G_FILE_TEST_IS_DIR))
        return g_steal_pointer (&candidate);
    }
  return NULL;
}

/* Fails naming every program of @names that cannot be found, with its
 * package, and what it is needed for. */
gboolean
bg_programs_require (const char * const  *names,
                     const char          *purpose,
                     GError             **error)
{
  g_autoptr(GString) missing = g_string_new (NULL);
  guint n = 0;

  for (guint i = 0; names[i]; i++)
    {
      g_autofree char *path = bg_program_find (names[i]);
      const char *debian = NULL, *fedora = NULL;

      if (path != NULL)
        continue;
      for (guint p = 0; p < G_N_ELEMENTS (packages); p++)
        if (g_str_equal (packages[p].name, names[i]))
          debian = packages[p].debian, fedora = packages[p].fedora;
      g_string_append_printf (missing, "%s%s", n++ ? "; " : "", names[i]);
      if (debian != NULL)
        g_string_append_printf (missing, " (Debian/Ubuntu package %s, Fedora %s)", debian, fedora);
    }
  if (n == 0)
    return TRUE;
  g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED, "%s needs %s, which %s not installed: %s",
               purpose, n == 1 ? "a program" : "programs", n == 1 ? "is" : "are", missing->str);
  return FALSE;
}

/* Runs @argv (argv[0] found with bg_program_find) to completion; its
 * stdout goes to @out (or nowhere), a failure's stderr into @error.
 * Ctrl-C (bg_interrupted) turns into "interrupted". */
gboolean
bg_spawn_run (const char * const  *argv,
              char               **out,
              GError             **error)
{
  g_autofree char *program = bg_program_find (argv[0]);
  g_autofree const char **resolved = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GBytes) out_bytes = NULL, err_bytes = NULL;
  GSubprocessFlags flags = G_SUBPROCESS_FLAGS_STDERR_PIPE |
                           (out ? G_SUBPROCESS_FLAGS_STDOUT_PIPE : G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  guint n = g_strv_length ((char **) argv);

  if (program == NULL)
    return bg_programs_require ((const char * const[]) { argv[0], NULL }, "banger", error);
  resolved = g_new0 (const char *, n + 1);
  memcpy (resolved, argv, n * sizeof (char *));
  resolved[0] = program;
  proc = g_subprocess_newv (resolved, flags, error);
  if (proc == NULL || !g_subprocess_communicate (proc, NULL, NULL, &out_bytes, &err_bytes, error))
    return FALSE;
  if (bg_interrupted)
    {
      g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED, "interrupted");
      return FALSE;
    }
  if (!g_subprocess_get_successful (proc))
    {
      gsize len;
      const char *text = g_bytes_get_data (err_bytes, &len);
      g_autofree char *tail = g_strndup (len > 1500 ? text + len - 1500 : text, MIN (len, 1500));

      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "%s failed: %s", argv[0], g_strstrip (tail));
      return FALSE;
    }
  if (out)
    *out = g_strndup (g_bytes_get_data (out_bytes, NULL), g_bytes_get_size (out_bytes));
  return TRUE;
}
