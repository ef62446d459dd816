/* bg-fd.h: file descriptors that close themselves.
 *
 * The GLib this project pins (2.74) predates g_autofd, so this is the
 * same idea (flatpak's glnx_autofd, systemd's _cleanup_close_):
 *
 *   g_auto(BgFd) fd = open (...);
 *   ...
 *   return g_steal_fd (&fd);    hand it on instead of closing it
 */
#pragma once

#include <errno.h>
#include <unistd.h>
#include <glib.h>

G_BEGIN_DECLS

typedef int BgFd;

static inline void
bg_fd_clear (BgFd *fd)
{
  if (*fd >= 0)
    {
      int errsv = errno;
      close (*fd);
      errno = errsv;
    }
  *fd = -1;
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (BgFd, bg_fd_clear)

G_END_DECLS
