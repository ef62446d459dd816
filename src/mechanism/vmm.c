/* vmm.c: one jailed VMM while it runs.
 *
 * The socket watch is an inotify watch on the jail's run/ dir, armed on
 * the main loop *before* the spawn. As each socket appears (the API
 * socket, then the vsock socket once the CLI configured it) it is opened
 * O_PATH | O_NOFOLLOW, checked to be a socket with one link owned by the
 * jail uid, and chowned to the caller through that very fd, then made
 * 0600: the VMM cannot swap in a symlink or a hard link between check and
 * chown. Readiness is announced only once the API socket is the
 * caller's, so the caller never probes a socket it cannot open.
 *
 * The process is watched through a pidfd; its output (the serial
 * console) is pumped to the caller's console log, and its last lines are
 * kept for error messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib-unix.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "daemon.h"
#include "jail.h"
#include "proc.h"
#include "vmm.h"

#define TAIL_MAX 4096

typedef struct {
  BgVmm           pub;
  BgVmmExitFunc   on_exit;
  gpointer        exit_data;
  BgVmmReadyFunc  ready;
  gpointer        ready_data;
  int             pidfd;
  guint           pidfd_source;
  int             output_fd;
  guint           output_source;
  int             console_fd;
  guint64         console_size;
  GString        *tail;
  int             inotify_fd;
  guint           inotify_source;
  guint           timeout_source;
  gboolean        api_ready;
  gboolean        vsock_ready;
} Vmm;

BgVmm *
bg_vmm_new (const char    *id,
            const char    *vm_name,
            uid_t          owner,
            uid_t          uid,
            BgVmmExitFunc  on_exit,
            gpointer       user_data)
{
  Vmm *v = g_new0 (Vmm, 1);

  v->pub.id = g_strdup (id);
  v->pub.vm_name = g_strdup (vm_name);
  v->pub.owner = owner;
  v->pub.uid = uid;
  v->pub.loop_fd = v->pub.config_loop_fd = -1;
  v->on_exit = on_exit;
  v->exit_data = user_data;
  v->pidfd = v->output_fd = v->console_fd = v->inotify_fd = -1;
  v->tail = g_string_new (NULL);
  return &v->pub;
}

static gpointer
close_in_thread (gpointer data)
{
  close (GPOINTER_TO_INT (data));
  return NULL;
}

/* Closing an inotify descriptor waits for an SRCU grace period
 * (fsnotify_destroy_group: 7-15 ms here). On the main loop that would
 * hold up every call behind it after each launch (the next VM's
 * LaunchVm, a `vm rm`): a thread of its own closes it. */
static void
inotify_clear (int *fd)
{
  GThread *thread;

  if (*fd < 0)
    return;
  thread = g_thread_try_new ("banger-close", close_in_thread, GINT_TO_POINTER (*fd), NULL);
  if (thread != NULL)
    g_thread_unref (thread);
  else
    close (*fd);
  *fd = -1;
}

void
bg_vmm_free (BgVmm *vmm)
{
  Vmm *v = (Vmm *) vmm;

  if (vmm == NULL)
    return;
  g_clear_handle_id (&v->pidfd_source, g_source_remove);
  g_clear_handle_id (&v->output_source, g_source_remove);
  g_clear_handle_id (&v->inotify_source, g_source_remove);
  g_clear_handle_id (&v->timeout_source, g_source_remove);
  bg_fd_clear (&v->pidfd);
  bg_fd_clear (&v->output_fd);
  bg_fd_clear (&v->console_fd);
  inotify_clear (&v->inotify_fd);
  bg_fd_clear (&vmm->loop_fd);
  bg_fd_clear (&vmm->config_loop_fd);
  g_string_free (v->tail, TRUE);
  bg_jail_free (vmm->jail);
  g_free (vmm->id);
  g_free (vmm->vm_name);
  g_free (vmm->tap);
  g_free (v);
}

/* The VMM's last lines of output, for error messages. */
char *
bg_vmm_tail (BgVmm *vmm)
{
  Vmm *v = (Vmm *) vmm;
  g_auto(GStrv) lines = g_strsplit (g_strstrip (v->tail->str), "\n", -1);
  guint n = g_strv_length (lines);

  if (n == 0 || *v->tail->str == '\0')
    return g_strdup ("(the VMM printed nothing)");
  return g_strjoinv ("\n", lines + (n > 8 ? n - 8 : 0));
}

/* Answers whoever waits for readiness, once; takes @error. */
void
bg_vmm_fail_ready (BgVmm  *vmm,
                   GError *error)
{
  Vmm *v = (Vmm *) vmm;
  BgVmmReadyFunc ready = v->ready;

  v->ready = NULL;
  g_clear_handle_id (&v->timeout_source, g_source_remove);
  if (ready != NULL)
    ready (vmm, error, v->ready_data);
  else
    g_error_free (error);
}

/* ---- output ---- */

static void
take_output (Vmm        *v,
             const char *buf,
             gsize       n)
{
  g_string_append_len (v->tail, buf, n);
  if (v->tail->len > TAIL_MAX)
    g_string_erase (v->tail, 0, v->tail->len - TAIL_MAX);
  /* The caller's console log, bounded: past its size limit it starts
   * again, saying so (the fd is O_APPEND). Written with the caller's
   * filesystem uid, so a full filesystem stops it at the caller's limit:
   * ext4 lets uid 0 into the root reserve whatever its capabilities. If
   * it stops taking output, the VMM keeps running without it. */
  if (v->console_fd >= 0 && v->pub.owner != 0)
    setfsuid (v->pub.owner);
  if (v->console_fd >= 0 && v->pub.console_max > 0 && v->console_size + n > v->pub.console_max)
    {
      static const char mark[] = "[banger: the console log reached its size limit (console-size in "
                                 "mechanism.conf); earlier output was dropped]\n";
      if (ftruncate (v->console_fd, 0) < 0 || lseek (v->console_fd, 0, SEEK_SET) < 0 ||
          write (v->console_fd, mark, sizeof mark - 1) < 0)
        bg_fd_clear (&v->console_fd);
      v->console_size = sizeof mark - 1;
      if (n > v->pub.console_max)
        {
          buf += n - v->pub.console_max / 2;
          n = v->pub.console_max / 2;
        }
    }
  if (v->console_fd >= 0 && write (v->console_fd, buf, n) < 0)
    bg_fd_clear (&v->console_fd);
  else
    v->console_size += n;
  setfsuid (0);
}

static gboolean
on_output (int          fd,
           GIOCondition condition,
           gpointer     data)
{
  Vmm *v = data;
  char buf[4096];
  ssize_t n = read (fd, buf, sizeof buf);

  if (n < 0 && errno == EAGAIN)
    return G_SOURCE_CONTINUE;
  if (n <= 0)
    {
      v->output_source = 0;
      return G_SOURCE_REMOVE;
    }
  take_output (v, buf, n);
  return G_SOURCE_CONTINUE;
}

/* ---- process ---- */

static gboolean
on_pidfd (int          fd,
          GIOCondition condition,
          gpointer     data)
{
  Vmm *v = data;
  int status = -1;

  v->pidfd_source = 0;
  /* Drain the output first, so an error message is not lost. */
  if (v->output_fd >= 0)
    {
      char buf[4096];
      ssize_t n;
      while ((n = read (v->output_fd, buf, sizeof buf)) > 0)
        take_output (v, buf, n);
    }
  if (v->pub.is_child)
    {
      int raw;
      if (waitpid (v->pub.pid, &raw, 0) == v->pub.pid)
        status = WIFEXITED (raw) ? WEXITSTATUS (raw) : 128 + WTERMSIG (raw);
    }
  v->pub.pid = 0;
  v->on_exit (&v->pub, status, v->exit_data);
  return G_SOURCE_REMOVE;
}

/* Watches @vmm->pid through a pidfd and pumps @output_fd (taken) to
 * @console_fd (taken, may be -1). */
gboolean
bg_vmm_watch_process (BgVmm   *vmm,
                      int      output_fd,
                      int      console_fd,
                      GError **error)
{
  Vmm *v = (Vmm *) vmm;

  v->output_fd = output_fd;
  v->console_fd = console_fd;
  {
    struct stat st;
    v->console_size = console_fd >= 0 && fstat (console_fd, &st) == 0 ? (guint64) st.st_size : 0;
  }
  if (output_fd >= 0)
    v->output_source = g_unix_fd_add (output_fd, G_IO_IN | G_IO_HUP, on_output, v);
  v->pidfd = bg_proc_open_pidfd (vmm->pid);
  if (v->pidfd < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot watch the VMM: %s", g_strerror (errno));
      return FALSE;
    }
  v->pidfd_source = g_unix_fd_add (v->pidfd, G_IO_IN, on_pidfd, v);
  /* A VMM adopted after a restart already handed its sockets over. */
  if (vmm->jail == NULL)
    v->api_ready = v->vsock_ready = TRUE;
  return TRUE;
}

/* SIGKILL through the pidfd; its exit then tears the rest down. */
gboolean
bg_vmm_kill (BgVmm   *vmm,
             GError **error)
{
  Vmm *v = (Vmm *) vmm;

  if (v->pidfd >= 0 && bg_pidfd_kill (v->pidfd, vmm->uid) < 0 && errno != ESRCH)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot kill the VMM: %s", g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

/* Kills and reaps now, without waiting for the main loop: for teardown
 * paths that must not leave the process behind. */
void
bg_vmm_reap (BgVmm *vmm)
{
  Vmm *v = (Vmm *) vmm;

  g_clear_handle_id (&v->pidfd_source, g_source_remove);
  if (vmm->pid > 0)
    {
      g_auto(BgFd) own = v->pidfd < 0 ? bg_proc_open_pidfd (vmm->pid) : -1;
      int fd = v->pidfd >= 0 ? v->pidfd : own;
      gboolean gone = fd >= 0 ? bg_pidfd_kill (fd, vmm->uid) == 0 || errno == ESRCH : errno == ESRCH;

      if (vmm->is_child && gone)
        waitpid (vmm->pid, NULL, 0);
    }
  vmm->pid = 0;
}

/* ---- sockets ---- */

/* Gives the socket @name in the jail's run dir to the caller, through an
 * O_PATH fd so the object checked is the object chowned. Made root's
 * first, so the mode is set by its owner (no CAP_FOWNER), then the
 * caller's: the VMM cannot change it in between. */
static gboolean
hand_over (BgVmm       *vmm,
           const char  *name,
           GError     **error)
{
  g_auto(BgFd) dir = open (vmm->jail->run, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  g_auto(BgFd) fd = -1;
  g_autofree char *proc = NULL;
  struct stat st;

  if (dir < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot open the jail's run dir: %s", g_strerror (errno));
      return FALSE;
    }
  fd = openat (dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot open %s: %s", name, g_strerror (errno));
      return FALSE;
    }
  if (fstat (fd, &st) < 0 || !S_ISSOCK (st.st_mode) || st.st_nlink != 1 || st.st_uid != vmm->jail->uid)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                   "%s in the jail is not a socket the VMM made; refusing to hand it over", name);
      return FALSE;
    }
  proc = g_strdup_printf ("/proc/self/fd/%d", fd);
  if (fchownat (fd, "", 0, -1, AT_EMPTY_PATH) < 0 || chmod (proc, 0600) < 0 ||
      fchownat (fd, "", vmm->owner, -1, AT_EMPTY_PATH) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot hand %s over: %s", name, g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

static void
socket_appeared (Vmm        *v,
                 const char *name)
{
  g_autoptr(GError) error = NULL;

  if (g_str_equal (name, BG_JAIL_API_SOCKET) && !v->api_ready)
    {
      if (!hand_over (&v->pub, name, &error))
        {
          bg_vmm_fail_ready (&v->pub, g_steal_pointer (&error));
          bg_vmm_kill (&v->pub, NULL);
          return;
        }
      BgVmmReadyFunc ready = v->ready;

      v->api_ready = TRUE;
      v->ready = NULL;
      g_clear_handle_id (&v->timeout_source, g_source_remove);
      if (ready != NULL)
        ready (&v->pub, NULL, v->ready_data);
    }
  else if (g_str_equal (name, BG_JAIL_VSOCK_SOCKET) && !v->vsock_ready)
    {
      /* A test holds the hand-over here: the CLI must wait it out. */
      if (v->pub.daemon != NULL)
        bg_daemon_test_pause (v->pub.daemon, "hand-over-vsock");
      if (!hand_over (&v->pub, name, &error))
        g_warning ("VM %s: %s", v->pub.id, error->message);
      v->vsock_ready = TRUE;
    }

  /* Both handed over: nothing left to watch. */
  if (v->api_ready && v->vsock_ready)
    {
      g_clear_handle_id (&v->inotify_source, g_source_remove);
      inotify_clear (&v->inotify_fd);
    }
}

static gboolean
on_inotify (int          fd,
            GIOCondition condition,
            gpointer     data)
{
  Vmm *v = data;
  char buf[4096] __attribute__ ((aligned (__alignof__ (struct inotify_event))));
  ssize_t n = read (fd, buf, sizeof buf);

  for (char *p = buf; n > 0 && p < buf + n;)
    {
      struct inotify_event *ev = (struct inotify_event *) p;

      if (ev->len > 0)
        socket_appeared (v, ev->name);
      p += sizeof *ev + ev->len;
      if (v->inotify_fd < 0)
        {
          v->inotify_source = 0;
          return G_SOURCE_REMOVE;
        }
    }
  return G_SOURCE_CONTINUE;
}

/* Armed before the spawn: the socket cannot appear unseen. */
gboolean
bg_vmm_watch_sockets (BgVmm   *vmm,
                      GError **error)
{
  Vmm *v = (Vmm *) vmm;

  v->inotify_fd = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC);
  if (v->inotify_fd < 0 || inotify_add_watch (v->inotify_fd, vmm->jail->run, IN_CREATE | IN_MOVED_TO) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot watch the jail: %s", g_strerror (errno));
      return FALSE;
    }
  v->inotify_source = g_unix_fd_add (v->inotify_fd, G_IO_IN, on_inotify, v);
  return TRUE;
}

static gboolean
on_ready_timeout (gpointer data)
{
  Vmm *v = data;
  g_autofree char *tail = bg_vmm_tail (&v->pub);

  v->timeout_source = 0;
  bg_vmm_fail_ready (&v->pub, g_error_new (BG_ERROR, BG_ERROR_TIMEOUT,
                                           "the VMM did not create its API socket in time; its last output:\n%s",
                                           tail));
  /* Its exit (pidfd) tears the rest down. */
  bg_vmm_kill (&v->pub, NULL);
  return G_SOURCE_REMOVE;
}

/* @func runs once: when the API socket is the caller's, or with an error
 * (the VMM failed or exited first, or @timeout_ms passed). */
void
bg_vmm_wait_ready (BgVmm          *vmm,
                   guint           timeout_ms,
                   BgVmmReadyFunc  func,
                   gpointer        user_data)
{
  Vmm *v = (Vmm *) vmm;

  v->ready = func;
  v->ready_data = user_data;
  v->timeout_source = g_timeout_add (timeout_ms, on_ready_timeout, v);
}
