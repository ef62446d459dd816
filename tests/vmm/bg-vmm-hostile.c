/* A hostile "VMM": it makes its API socket (so the launch succeeds), then
 * floods its console with BG_CHATTY_MIB MiB of output and tries to leave
 * the jail's confinement, reporting each attempt on the console:
 *
 *   unshare: ...       unshare(CLONE_NEWUSER)
 *   tcp: ...           a TCP connect to 127.0.0.1:47391
 *   udp: ...           a UDP socket
 *   abstract: ...      a connect to the abstract unix socket "bg-test-abstract"
 *   block nodes: N     block device nodes anywhere in its root but /proc
 *   open rootfs: ...   /rootfs opened read-only (its own disk)
 *   loop status: ...   LOOP_GET_STATUS64 on it
 *   loop change: ...   LOOP_CHANGE_FD on it, to the kernel's file (fd 3)
 *   rootfs rw: ...     /rootfs opened again for writing (launched layered,
 *                      it is the shared base, read-only)
 *   discard: ...       BLKDISCARD, BLKSECDISCARD and BLKZEROOUT of its
 *   secure discard: ...  first 4 KiB, on /upper opened read-write (its
 *   zeroout: ...         own writable disk, when launched layered)
 *   done
 *
 * (/run/flooded appears once the flood is written)
 * then waits to be killed. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CHATTY_MIB 16

static void
report (const char *what, int rc)
{
  printf ("%s: %s\n", what, rc == 0 ? "allowed" : strerror (errno));
  fflush (stdout);
}

/* Block device nodes below @dir (symlinks not followed). */
static int
count_block_nodes (const char *dir)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  int n = 0;

  while (d && (e = readdir (d)) != NULL)
    {
      char path[4096];
      struct stat st;

      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0 || strcmp (e->d_name, "proc") == 0)
        continue;
      snprintf (path, sizeof path, "%s/%s", strcmp (dir, "/") == 0 ? "" : dir, e->d_name);
      if (lstat (path, &st) < 0)
        continue;
      if (S_ISBLK (st.st_mode))
        n++;
      else if (S_ISDIR (st.st_mode))
        n += count_block_nodes (path);
    }
  if (d)
    closedir (d);
  return n;
}

int
main (int argc, char **argv)
{
  struct sockaddr_un api = { AF_UNIX };
  struct sockaddr_un abstract = { AF_UNIX };
  struct sockaddr_in local = { AF_INET, htons (47391), { htonl (INADDR_LOOPBACK) } };
  static char noise[64 * 1024];
  int s;

  if (argc > 1 && strcmp (argv[1], "--version") == 0)
    {
      puts ("Firecracker v0.0.0 (hostile test VMM)");
      return 0;
    }
  if (argc < 3)
    return 2;
  strncpy (api.sun_path, argv[2], sizeof api.sun_path - 1);
  s = socket (AF_UNIX, SOCK_STREAM, 0);
  if (s < 0 || bind (s, (struct sockaddr *) &api, sizeof api) < 0 || listen (s, 1) < 0)
    perror ("api socket");

  memset (noise, 'x', sizeof noise);
  for (int i = 0; i < CHATTY_MIB * 16; i++)
    {
      noise[sizeof noise - 1] = '\n';
      if (write (STDOUT_FILENO, noise, sizeof noise) < 0)
        break;
    }
  /* Seen on the host in the jail's run dir: all but a pipe's worth of
   * the flood has been read by the mechanism. */
  close (open ("/run/flooded", O_WRONLY | O_CREAT | O_CLOEXEC, 0600));

  report ("unshare", unshare (CLONE_NEWUSER));
  s = socket (AF_INET, SOCK_STREAM, 0);
  report ("tcp", s < 0 ? -1 : connect (s, (struct sockaddr *) &local, sizeof local));
  s = socket (AF_INET, SOCK_DGRAM, 0);
  report ("udp", s < 0 ? -1 : 0);
  s = socket (AF_UNIX, SOCK_STREAM, 0);
  memcpy (abstract.sun_path + 1, "bg-test-abstract", 16);
  report ("abstract", s < 0 ? -1 : connect (s, (struct sockaddr *) &abstract,
                                            offsetof (struct sockaddr_un, sun_path) + 17));

  printf ("block nodes: %d\n", count_block_nodes ("/"));
  {
    struct loop_info64 info;
    int disk = open ("/rootfs", O_RDONLY | O_CLOEXEC);

    report ("open rootfs", disk < 0 ? -1 : 0);
    report ("loop status", ioctl (disk, LOOP_GET_STATUS64, &info));
    report ("loop change", ioctl (disk, LOOP_CHANGE_FD, 3));
  }
  {
    unsigned long long range[2] = { 0, 4096 };
    int rw = open ("/rootfs", O_RDWR | O_CLOEXEC);
    int upper = open ("/upper", O_RDWR | O_CLOEXEC);

    report ("rootfs rw", rw < 0 ? -1 : 0);
    report ("discard", ioctl (upper, BLKDISCARD, range));
    report ("secure discard", ioctl (upper, BLKSECDISCARD, range));
    report ("zeroout", ioctl (upper, BLKZEROOUT, range));
  }
  puts ("done");
  fflush (stdout);
  for (;;)
    pause ();
}
