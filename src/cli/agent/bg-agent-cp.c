/* bg-agent-cp.c: `banger vm cp` through the guest agent.
 *
 * One session per SRC, on the connection `vm cp` opened. Both ways a
 * tree travels as ENTRY frames (the root without a name, the rest each
 * inside the directory opened last), a file's bytes as DATA under the
 * receiver's credit, so neither end holds more than a window.
 *
 * Out of the guest, nothing the guest sends is trusted: the root's name
 * comes from the user's command line; every other name must be a single
 * component and is created with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS) beneath the directory being filled; every length
 * was bounded by the codec before it was read; data beyond the window
 * granted is refused. A file is written under a temporary name and
 * renamed once complete, and a failed one is removed. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "bg-agent-cp.h"
#include "bg-cli.h"
#include "bg-error.h"
#include "bg-fd.h"

#define OUT_HIGH (1024u * 1024u)

typedef struct {
  BgAgentClient          *client;
  const BgAgentCpOptions *options;
  guint32                 session;
  gboolean                started, exited;
  guint64                 credit;      /* PUT: what we may still send */
  guint32                 window;      /* GET: what the agent may still send */
  char                   *shown;       /* the file in the progress line */
  guint64                 done, total;
  /* GET */
  int                     dirs[BG_AGENT_MAX_DEPTH + 1];
  guint32                 dir_mode[BG_AGENT_MAX_DEPTH + 1];
  guint64                 dir_mtime[BG_AGENT_MAX_DEPTH + 1];
  guint                   depth;
  gboolean                root_done;
  int                     file_fd;
  char                   *file_tmp;
  char                   *file_name;
  guint32                 file_mode;
  guint64                 file_mtime;
  /* Ctrl-C and the like, read as data: a copy stops cleanly. */
  int                     sigfd;
  sigset_t                old_mask;
} Cp;

static void
signals_catch (Cp *cp)
{
  sigset_t mask;

  sigemptyset (&mask);
  sigaddset (&mask, SIGINT);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGHUP);
  sigprocmask (SIG_BLOCK, &mask, &cp->old_mask);
  cp->sigfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

static void
signals_release (Cp *cp)
{
  bg_fd_clear (&cp->sigfd);
  sigprocmask (SIG_SETMASK, &cp->old_mask, NULL);
}

static guint32 next_session = 1;

static void
progress_file (Cp *cp, const char *name, guint64 size)
{
  char *old = cp->shown;

  if (cp->options->progress == NULL)
    return;
  cp->shown = g_strdup_printf ("copying %s", name);
  cp->done = 0;
  cp->total = size;
  bg_progress_step (cp->options->progress, cp->shown);
  g_free (old);
}

static void
progress_bytes (Cp *cp, guint64 n)
{
  cp->done += n;
  bg_progress_bytes (cp->options->progress, cp->done, cp->total);
}

/* Writes what is queued and takes in what came (waiting for one of the
 * two with @block), then handles every whole message that is ours. */
typedef gboolean (*Handler) (Cp *cp, BgAgentMsg *msg, GError **error);

static gboolean
pump (Cp *cp, gboolean block, Handler handle, GError **error)
{
  int fd = bg_agent_client_get_fd (cp->client);
  gboolean more = TRUE;

  if (!bg_agent_client_flush (cp->client, FALSE, error))
    return FALSE;
  if (block)
    {
      struct pollfd p[2] = { { fd, POLLIN | (bg_agent_client_has_output (cp->client) ? POLLOUT : 0), 0 },
                             { cp->sigfd, POLLIN, 0 } };

      while (poll (p, cp->sigfd >= 0 ? 2 : 1, -1) < 0)
        if (errno != EINTR)
          return bg_error_errno (error, errno, "poll", "the guest agent's socket");
      if (p[1].revents & POLLIN)
        {
          struct signalfd_siginfo si;

          /* Taken, so it is not delivered when the mask is restored; the
           * caller removes what was half written. */
          while (read (cp->sigfd, &si, sizeof si) > 0)
            ;
          g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED, "interrupted");
          return FALSE;
        }
      if ((p[0].revents & POLLOUT) && !bg_agent_client_flush (cp->client, FALSE, error))
        return FALSE;
      if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
        return TRUE;
    }
  if (!bg_agent_client_fill (cp->client, FALSE, error))
    return FALSE;
  while (more)
    {
      BgAgentMsg msg;
      int r = bg_agent_client_next (cp->client, &msg, error);
      gboolean ok = TRUE;

      if (r < 0)
        return FALSE;
      if (r == 0)
        break;
      if (msg.type == BG_AGENT_ERROR)
        {
          if (msg.session == 0 || msg.session == cp->session)
            g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "in VM %s: %s", cp->options->vm, msg.message);
          ok = msg.session != 0 && msg.session != cp->session;
        }
      else if (msg.session != cp->session)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "the guest agent sent a frame for session %u, which "
                       "is not open", msg.session);
          ok = FALSE;
        }
      else if (msg.type == BG_AGENT_EXIT)
        {
          if (!BG_AGENT_HAS (&msg, BG_AGENT_F_CODE) || msg.code != 0)
            {
              g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "the guest agent ended the copy without success");
              ok = FALSE;
            }
          cp->exited = TRUE;
          more = FALSE;
        }
      else
        ok = handle (cp, &msg, error);
      bg_agent_msg_clear (&msg);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* ---- into the guest ---- */

static gboolean
put_handle (Cp *cp, BgAgentMsg *msg, GError **error)
{
  if (msg->type == BG_AGENT_STARTED && !cp->started)
    {
      cp->started = TRUE;
      return TRUE;
    }
  if (msg->type == BG_AGENT_CREDIT && msg->stream == BG_AGENT_STDIN &&
      cp->credit + msg->credit <= 64u * BG_AGENT_WINDOW)
    {
      cp->credit += msg->credit;
      return TRUE;
    }
  g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "the guest agent sent frame type %u where a copy into the "
               "guest expects none", msg->type);
  return FALSE;
}

static gboolean
queue_entry (Cp *cp, BgAgentKind kind, const char *name, const struct stat *st, GError **error)
{
  BgAgentBuf *out = bg_agent_client_out (cp->client);

  bg_agent_buf_begin (out, BG_AGENT_ENTRY, cp->session);
  bg_agent_put_u32 (out, BG_AGENT_F_KIND, kind);
  if (name)
    bg_agent_put_str (out, BG_AGENT_F_NAME, name);
  if (st)
    {
      bg_agent_put_u32 (out, BG_AGENT_F_MODE, st->st_mode & 07777);
      bg_agent_put_u64 (out, BG_AGENT_F_MTIME, st->st_mtime > 0 ? (guint64) st->st_mtime : 0);
      if (kind == BG_AGENT_KIND_FILE)
        bg_agent_put_u64 (out, BG_AGENT_F_SIZE, (guint64) st->st_size);
    }
  return bg_agent_client_queue (cp->client, error);
}

static gboolean
put_file (Cp *cp, int fd, const char *shown, const struct stat *st, GError **error)
{
  guint8 buf[BG_AGENT_MAX_DATA];

  progress_file (cp, shown, (guint64) st->st_size);
  for (;;)
    {
      ssize_t n;

      while (cp->credit == 0 || bg_agent_client_out (cp->client)->len > OUT_HIGH)
        if (!pump (cp, TRUE, put_handle, error))
          return FALSE;
      n = read (fd, buf, MIN (cp->credit, sizeof buf));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return bg_error_errno (error, errno, "read", shown);
      if (n == 0)
        break;
      cp->credit -= (guint64) n;
      bg_agent_buf_begin (bg_agent_client_out (cp->client), BG_AGENT_DATA, cp->session);
      bg_agent_put_u32 (bg_agent_client_out (cp->client), BG_AGENT_F_STREAM, BG_AGENT_STDIN);
      bg_agent_put_bytes (bg_agent_client_out (cp->client), BG_AGENT_F_BYTES, buf, (gsize) n);
      if (!bg_agent_client_queue (cp->client, error) || !pump (cp, FALSE, put_handle, error))
        return FALSE;
      progress_bytes (cp, (guint64) n);
    }
  bg_agent_buf_begin (bg_agent_client_out (cp->client), BG_AGENT_EOF, cp->session);
  bg_agent_put_u32 (bg_agent_client_out (cp->client), BG_AGENT_F_STREAM, BG_AGENT_STDIN);
  return bg_agent_client_queue (cp->client, error);
}

/* One local entry: @name in @at (the root: the user's path, following
 * its symlinks as cp does). Inside a tree a symlink to a file is sent as
 * the file, anything else that is not a file or directory is skipped. */
static gboolean
put_tree (Cp *cp, int at, const char *name, const char *shown, guint depth, GError **error)
{
  gboolean root = depth == 0;
  g_auto(BgFd) fd = -1;
  struct stat st;

  if (fstatat (at, name, &st, root ? 0 : AT_SYMLINK_NOFOLLOW) < 0)
    return bg_error_errno (error, errno, "stat", shown);
  if (S_ISLNK (st.st_mode))
    {
      struct stat target;

      if (fstatat (at, name, &target, 0) == 0 && S_ISREG (target.st_mode))
        st = target;
    }
  if (S_ISREG (st.st_mode))
    {
      if ((fd = openat (at, name, O_RDONLY | O_NOCTTY | O_CLOEXEC)) < 0)
        return bg_error_errno (error, errno, "open", shown);
      return queue_entry (cp, BG_AGENT_KIND_FILE, root ? NULL : name, &st, error) &&
             put_file (cp, fd, shown, &st, error);
    }
  if (!S_ISDIR (st.st_mode) || (S_ISDIR (st.st_mode) && !cp->options->recursive))
    {
      if (root)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s is %s", shown,
                       S_ISDIR (st.st_mode) ? "a directory; copy it with -r" : "not a regular file or a directory");
          return FALSE;
        }
      bg_cli_warn ("skipping %s: not a regular file or a directory", shown);
      return TRUE;
    }
  if (depth >= BG_AGENT_MAX_DEPTH)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: directories nested deeper than %u levels",
                   shown, BG_AGENT_MAX_DEPTH);
      return FALSE;
    }
  if ((fd = openat (at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (root ? 0 : O_NOFOLLOW))) < 0)
    return bg_error_errno (error, errno, "open", shown);
  if (!queue_entry (cp, BG_AGENT_KIND_DIR, root ? NULL : name, &st, error))
    return FALSE;
  {
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
    DIR *d = fdopendir (dup (fd));
    struct dirent *e;

    if (d == NULL)
      return bg_error_errno (error, errno, "opendir", shown);
    while ((e = readdir (d)) != NULL)
      if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0)
        g_ptr_array_add (names, g_strdup (e->d_name));
    closedir (d);
    /* Sorted: the same tree is sent the same way. */
    g_ptr_array_sort (names, (GCompareFunc) g_strcmp0);
    for (guint i = 0; i < names->len; i++)
      {
        const char *child = *(const char **) &names->pdata[i];
        g_autofree char *child_shown = g_build_filename (shown, child, NULL);

        if (!put_tree (cp, fd, child, child_shown, depth + 1, error))
          return FALSE;
      }
  }
  return queue_entry (cp, BG_AGENT_KIND_END, NULL, NULL, error);
}

gboolean
bg_agent_cp_put (BgAgentClient          *client,
                 const char             *local,
                 const char             *guest_path,
                 const BgAgentCpOptions *options,
                 GError                **error)
{
  g_autofree char *absolute = g_canonicalize_filename (local, NULL);
  g_autofree char *base = g_path_get_basename (absolute);
  Cp cp = { client, options, next_session++, FALSE, FALSE, BG_AGENT_WINDOW, 0 };
  BgAgentBuf *out = bg_agent_client_out (client);
  gboolean ok;

  signals_catch (&cp);
  bg_agent_buf_begin (out, BG_AGENT_PUT, cp.session);
  bg_agent_put_str (out, BG_AGENT_F_PATH, guest_path);
  /* The root's name, used where the guest path is a directory. */
  if (bg_agent_name_is_safe (base) && strlen (base) < BG_AGENT_MAX_NAME)
    bg_agent_put_str (out, BG_AGENT_F_NAME, base);
  if (options->owner)
    bg_agent_put_str (out, BG_AGENT_F_USER, options->owner);
  /* The guest checks where it goes before anything is read here. An
   * interrupted copy closes the connection: the agent then removes its
   * half-written file. */
  ok = bg_agent_client_queue (client, error);
  while (ok && !cp.started)
    ok = pump (&cp, TRUE, put_handle, error);
  ok = ok && put_tree (&cp, AT_FDCWD, local, local, 0, error);
  while (ok && !cp.exited)
    ok = pump (&cp, TRUE, put_handle, error);
  signals_release (&cp);
  g_free (cp.shown);
  return ok;
}

/* ---- out of the guest ---- */

static int
open_beneath (int dir, const char *name, guint64 flags, guint64 mode)
{
  struct open_how how = {
    .flags = flags | O_CLOEXEC | O_NOFOLLOW,
    .mode = mode,
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };

  return (int) syscall (SYS_openat2, dir, name, &how, sizeof how);
}

static void
set_times (int fd, guint64 mtime)
{
  struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = (time_t) MIN (mtime, (guint64) G_MAXINT64) } };

  futimens (fd, ts);
}

static gboolean
get_entry (Cp *cp, BgAgentMsg *msg, GError **error)
{
  int at = cp->dirs[cp->depth];
  const char *name;

  if (cp->file_fd >= 0 || cp->root_done || (cp->started && cp->depth == 0) ||
      (!cp->started && (msg->kind == BG_AGENT_KIND_END || msg->kind == BG_AGENT_KIND_OTHER)))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "the guest agent sent an entry out of place");
      return FALSE;
    }
  if (msg->kind == BG_AGENT_KIND_END)
    {
      /* The mode last, so that a read-only directory could be filled. */
      if (fchmod (at, cp->dir_mode[cp->depth] & 0777) < 0)
        return bg_error_errno (error, errno, "chmod", "a directory copied out of the guest");
      set_times (at, cp->dir_mtime[cp->depth]);
      bg_fd_clear (&cp->dirs[cp->depth]);
      cp->depth--;
      cp->root_done = cp->depth == 0;
      return TRUE;
    }
  if (cp->started && (msg->name == NULL || !bg_agent_name_is_safe (msg->name)))
    {
      /* The codec refused such a name already; this keeps it so. */
      g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE, "the guest agent sent an unsafe name");
      return FALSE;
    }
  if (msg->kind == BG_AGENT_KIND_OTHER)
    {
      bg_cli_warn ("skipping %s in VM %s: not a regular file or a directory", msg->name, cp->options->vm);
      return TRUE;
    }
  /* The root's name is the user's; the guest's names are for inside. */
  name = cp->started ? msg->name : cp->file_name;
  cp->started = TRUE;
  if (msg->kind == BG_AGENT_KIND_FILE)
    {
      static guint counter;

      g_free (cp->file_tmp);
      cp->file_tmp = g_strdup_printf (".banger-cp.%d.%u", (int) getpid (), ++counter);
      if ((cp->file_fd = open_beneath (at, cp->file_tmp, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0)
        {
          g_clear_pointer (&cp->file_tmp, g_free);
          return bg_error_errno (error, errno, "create", name);
        }
      if (name != cp->file_name)
        {
          g_free (cp->file_name);
          cp->file_name = g_strdup (name);
        }
      cp->file_mode = msg->mode;
      cp->file_mtime = msg->mtime;
      progress_file (cp, cp->file_name, msg->size);
      return TRUE;
    }
  /* A directory: made, or one already there, never through a symlink. */
  {
    g_auto(BgFd) fd = -1;

    if (mkdirat (at, name, 0700) < 0 && errno != EEXIST)
      return bg_error_errno (error, errno, "mkdir", name);
    if ((fd = open_beneath (at, name, O_RDONLY | O_DIRECTORY, 0)) < 0)
      {
        if (errno == ELOOP || errno == EXDEV)
          {
            g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE, "%s is a symlink here; not copying through it", name);
            return FALSE;
          }
        return bg_error_errno (error, errno, "open", name);
      }
    if (cp->depth >= BG_AGENT_MAX_DEPTH)
      {
        g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE, "the guest sent directories nested deeper than %u levels",
                     BG_AGENT_MAX_DEPTH);
        return FALSE;
      }
    cp->dirs[++cp->depth] = g_steal_fd (&fd);
    cp->dir_mode[cp->depth] = msg->mode;
    cp->dir_mtime[cp->depth] = msg->mtime;
  }
  return TRUE;
}

static gboolean
get_handle (Cp *cp, BgAgentMsg *msg, GError **error)
{
  int at = cp->dirs[cp->depth];

  switch (msg->type)
    {
    case BG_AGENT_ENTRY:
      return get_entry (cp, msg, error);
    case BG_AGENT_DATA:
      if (cp->file_fd < 0 || msg->stream != BG_AGENT_STDOUT || msg->nbytes > cp->window)
        break;
      cp->window -= msg->nbytes;
      for (guint32 off = 0; off < msg->nbytes;)
        {
          ssize_t n = write (cp->file_fd, msg->bytes + off, msg->nbytes - off);

          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0)
            return bg_error_errno (error, errno, "write", cp->file_name);
          off += (guint32) n;
        }
      /* Written: the agent may send as much again. */
      cp->window += msg->nbytes;
      bg_agent_buf_begin (bg_agent_client_out (cp->client), BG_AGENT_CREDIT, cp->session);
      bg_agent_put_u32 (bg_agent_client_out (cp->client), BG_AGENT_F_STREAM, BG_AGENT_STDOUT);
      bg_agent_put_u32 (bg_agent_client_out (cp->client), BG_AGENT_F_CREDIT, msg->nbytes);
      progress_bytes (cp, msg->nbytes);
      return bg_agent_client_queue (cp->client, error);
    case BG_AGENT_EOF:
      if (cp->file_fd < 0 || msg->stream != BG_AGENT_STDOUT)
        break;
      if (fchmod (cp->file_fd, cp->file_mode & 0777) < 0)
        return bg_error_errno (error, errno, "chmod", cp->file_name);
      set_times (cp->file_fd, cp->file_mtime);
      /* Closed by hand, its error checked: a written file's last bytes
       * can fail here (NFS, quota), and then it is not complete. */
      if (close (g_steal_fd (&cp->file_fd)) < 0)
        return bg_error_errno (error, errno, "write", cp->file_name);
      /* rename replaces a symlink at the name, never what it points to. */
      if (renameat (at, cp->file_tmp, at, cp->file_name) < 0)
        return bg_error_errno (error, errno, "rename", cp->file_name);
      g_clear_pointer (&cp->file_tmp, g_free);
      cp->root_done = cp->depth == 0;
      return TRUE;
    default:
      break;
    }
  g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "the guest agent sent frame type %u out of place (or beyond "
               "the window it was given)", msg->type);
  return FALSE;
}

gboolean
bg_agent_cp_get (BgAgentClient          *client,
                 const char             *guest_path,
                 int                     dir_fd,
                 const char             *name,
                 const BgAgentCpOptions *options,
                 GError                **error)
{
  Cp cp = { client, options, next_session++, FALSE, FALSE, 0, BG_AGENT_WINDOW };
  BgAgentBuf *out = bg_agent_client_out (client);
  gboolean ok;

  g_return_val_if_fail (bg_agent_name_is_safe (name), FALSE);
  cp.file_fd = -1;
  cp.dirs[0] = dir_fd;
  signals_catch (&cp);
  cp.file_name = g_strdup (name);
  bg_agent_buf_begin (out, BG_AGENT_GET, cp.session);
  bg_agent_put_str (out, BG_AGENT_F_PATH, guest_path);
  if (options->owner)
    bg_agent_put_str (out, BG_AGENT_F_USER, options->owner);
  bg_agent_put_u32 (out, BG_AGENT_F_RECURSIVE, options->recursive ? 1 : 0);
  ok = bg_agent_client_queue (client, error);
  while (ok && !cp.exited)
    ok = pump (&cp, TRUE, get_handle, error);
  if (ok && !cp.root_done)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "the guest agent ended the copy of %s before it was "
                   "complete", guest_path);
      ok = FALSE;
    }
  /* A failure leaves no half-written file behind. */
  bg_fd_clear (&cp.file_fd);
  if (cp.file_tmp)
    unlinkat (cp.dirs[cp.depth], cp.file_tmp, 0);
  for (guint i = 1; i <= cp.depth; i++)
    bg_fd_clear (&cp.dirs[i]);
  signals_release (&cp);
  g_free (cp.file_tmp);
  g_free (cp.file_name);
  g_free (cp.shown);
  return ok;
}
