/* bg-forward-proc.c: background forwards. Each is a `banger vm forward`
 * process of the user's, recorded as forwards/PID.json in the VM's state
 * directory with its start time; a record whose process is gone (or
 * whose pid now names another process) is dropped, never signalled. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>

#include "bg-cli.h"
#include "bg-error.h"
#include "bg-fd.h"
#include "bg-file.h"
#include "bg-forward.h"
#include "bg-paths.h"
#include "bg-proc.h"

#define STOP_WAIT_MS 5000

void
bg_forward_process_free (BgForwardProcess *p)
{
  if (p == NULL)
    return;
  g_strfreev (p->specs);
  g_free (p);
}

static char *
forwards_dir (const char *vm_name)
{
  g_autofree char *dir = bg_paths_vm_dir (vm_name);
  return g_build_filename (dir, "forwards", NULL);
}

gboolean
bg_forward_record_self (const char  *vm_name,
                        char       **specs,
                        gboolean     persistent,
                        GError     **error)
{
  g_autofree char *dir = forwards_dir (vm_name);
  g_autofree char *path = g_strdup_printf ("%s/%d.json", dir, (int) getpid ());
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "pid");
  json_builder_add_int_value (b, getpid ());
  json_builder_set_member_name (b, "start_time");
  json_builder_add_int_value (b, (gint64) bg_proc_get_start_time (getpid ()));
  json_builder_set_member_name (b, "persistent");
  json_builder_add_boolean_value (b, persistent);
  json_builder_set_member_name (b, "specs");
  json_builder_begin_array (b);
  for (guint i = 0; specs[i]; i++)
    json_builder_add_string_value (b, specs[i]);
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, NULL);
  if (g_mkdir_with_parents (dir, 0700) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot create %s: %s", dir, g_strerror (errno));
      return FALSE;
    }
  return bg_file_replace (path, text, strlen (text), 0600, error);
}

void
bg_forward_unrecord_self (const char *vm_name)
{
  g_autofree char *dir = forwards_dir (vm_name);
  g_autofree char *path = g_strdup_printf ("%s/%d.json", dir, (int) getpid ());
  unlink (path);
}

static BgForwardProcess *
read_record (const char *path)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(BgForwardProcess) p = g_new0 (BgForwardProcess, 1);
  g_autoptr(GPtrArray) specs = g_ptr_array_new ();
  JsonObject *o;
  JsonArray *a;

  if (!json_parser_load_from_file (parser, path, NULL) || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return NULL;
  o = json_node_get_object (json_parser_get_root (parser));
  if (!json_object_has_member (o, "pid") || !json_object_has_member (o, "start_time") ||
      (a = json_object_get_array_member (o, "specs")) == NULL)
    return NULL;
  p->pid = json_object_get_int_member (o, "pid");
  p->start_time = json_object_get_int_member (o, "start_time");
  p->persistent = json_object_get_boolean_member_with_default (o, "persistent", FALSE);
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      const char *s = json_array_get_string_element (a, i);
      if (s != NULL)
        g_ptr_array_add (specs, g_strdup (s));
    }
  g_ptr_array_add (specs, NULL);
  p->specs = (char **) g_ptr_array_steal (specs, NULL);
  return g_steal_pointer (&p);
}

GPtrArray *
bg_forward_list_processes (const char *vm_name)
{
  g_autofree char *dir = forwards_dir (vm_name);
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_forward_process_free);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      BgForwardProcess *p;

      if (!g_str_has_suffix (name, ".json"))
        continue;
      p = read_record (path);
      if (p == NULL || p->start_time == 0 || bg_proc_get_start_time ((pid_t) p->pid) != p->start_time)
        {
          /* Its process is gone: the record is only a record. */
          bg_forward_process_free (p);
          unlink (path);
          continue;
        }
      g_ptr_array_add (list, p);
    }
  return list;
}

/* Signals @p's process through a pidfd taken while its start time still
 * matched, so the signal cannot reach a process that reused the pid, and
 * waits for it to exit (SIGKILL after STOP_WAIT_MS). TRUE if it is gone
 * (or was already). */
static gboolean
end_process (BgForwardProcess  *p,
             GError           **error)
{
  g_auto(BgFd) pidfd = bg_proc_open_if_same ((pid_t) p->pid, p->start_time);

  if (pidfd < 0 && errno == ESRCH)
    return TRUE;
  if (pidfd < 0 || (bg_proc_signal_pidfd (pidfd, SIGTERM) < 0 && errno != ESRCH))
    {
      int errsv = errno;
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot stop forward process %" G_GINT64_FORMAT ": %s",
                   p->pid, g_strerror (errsv));
      return FALSE;
    }
  if (!bg_proc_wait_pidfd (pidfd, STOP_WAIT_MS))
    bg_proc_signal_pidfd (pidfd, SIGKILL);
  return TRUE;
}

guint
bg_forward_stop_processes (const char  *vm_name,
                           const char  *spec,
                           GError     **error)
{
  g_autoptr(GPtrArray) list = bg_forward_list_processes (vm_name);
  g_autofree char *dir = forwards_dir (vm_name);
  guint ended = 0;

  for (guint i = 0; i < list->len; i++)
    {
      BgForwardProcess *p = list->pdata[i];
      g_autofree char *path = g_strdup_printf ("%s/%" G_GINT64_FORMAT ".json", dir, p->pid);

      if (spec != NULL && !g_strv_contains ((const char * const *) p->specs, spec))
        continue;
      if (!end_process (p, error))
        return ended;
      unlink (path);
      ended++;
    }
  return ended;
}

static void
detach (gpointer data)
{
  setsid ();
}

gboolean
bg_forward_spawn_background (const char  *vm_name,
                             char       **specs,
                             gboolean     persistent,
                             gboolean     ipv6,
                             GPid        *pid,
                             GError     **error)
{
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", error);
  g_autofree char *dir = forwards_dir (vm_name);
  g_autofree char *log = g_build_filename (dir, "forward.log", NULL);
  g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GSubprocess) child = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GString) said = g_string_new (NULL);
  g_auto(BgFd) ready_read = -1;
  int ready[2], log_fd, null_fd;
  char buf[512];
  ssize_t n;

  if (exe == NULL)
    return FALSE;
  if (g_mkdir_with_parents (dir, 0700) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot create %s: %s", dir, g_strerror (errno));
      return FALSE;
    }
  g_ptr_array_add (argv, exe);
  g_ptr_array_add (argv, "vm");
  g_ptr_array_add (argv, "forward");
  g_ptr_array_add (argv, "--serve-background=3");
  if (persistent)
    g_ptr_array_add (argv, "--persistent");
  if (ipv6)
    g_ptr_array_add (argv, "--ipv6");
  g_ptr_array_add (argv, (char *) vm_name);
  g_ptr_array_add (argv, "--");
  for (guint i = 0; specs[i]; i++)
    g_ptr_array_add (argv, specs[i]);
  g_ptr_array_add (argv, NULL);

  if (!g_unix_open_pipe (ready, FD_CLOEXEC, error))
    return FALSE;
  ready_read = ready[0];
  log_fd = open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (log_fd >= 0)
    g_subprocess_launcher_take_stderr_fd (l, log_fd);
  if (null_fd >= 0)
    {
      g_subprocess_launcher_take_stdin_fd (l, null_fd);
      g_subprocess_launcher_take_stdout_fd (l, dup (null_fd));
    }
  g_subprocess_launcher_take_fd (l, ready[1], 3);
  g_subprocess_launcher_set_child_setup (l, detach, NULL, NULL);
  child = g_subprocess_launcher_spawnv (l, (const char * const *) argv->pdata, error);
  /* The launcher holds the write end until it is freed. */
  g_clear_object (&l);
  if (child == NULL)
    return FALSE;
  while ((n = read (ready_read, buf, sizeof buf)) != 0)
    {
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        break;
      g_string_append_len (said, buf, n);
    }
  if (!g_str_equal (said->str, "ok\n"))
    {
      g_strchomp (said->str);
      if (said->len == 0)
        g_string_printf (said, "it exited before it listened; see %s", log);
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "%s", said->str);
      return FALSE;
    }
  if (pid != NULL)
    *pid = atoi (g_subprocess_get_identifier (child));
  return TRUE;
}
