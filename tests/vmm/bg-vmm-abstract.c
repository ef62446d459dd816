/* A hostile "VMM" that reaches for the host's abstract unix sockets: it
 * makes its API socket (so the launch succeeds), connects to the
 * abstract socket "bg-test-abstract" a test bound on the host, writes
 * "hello" through it if that worked, and reports on its console:
 *
 *   abstract: allowed | <why not>
 *
 * then waits to be killed. On a kernel with Landlock scopes the jail
 * refuses the connect (EPERM); in a network namespace of its own the
 * name is not there (ECONNREFUSED); with neither it reaches the host's. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
main (int argc, char **argv)
{
  struct sockaddr_un api = { AF_UNIX };
  struct sockaddr_un abstract = { AF_UNIX };
  int s, rc;

  if (argc > 1 && strcmp (argv[1], "--version") == 0)
    {
      puts ("Firecracker v0.0.0 (abstract-socket test VMM)");
      return 0;
    }
  if (argc < 3)
    return 2;
  strncpy (api.sun_path, argv[2], sizeof api.sun_path - 1);
  s = socket (AF_UNIX, SOCK_STREAM, 0);
  if (s < 0 || bind (s, (struct sockaddr *) &api, sizeof api) < 0 || listen (s, 1) < 0)
    perror ("api socket");

  s = socket (AF_UNIX, SOCK_STREAM, 0);
  memcpy (abstract.sun_path + 1, "bg-test-abstract", 16);
  rc = s < 0 ? -1 : connect (s, (struct sockaddr *) &abstract, offsetof (struct sockaddr_un, sun_path) + 17);
  printf ("abstract: %s\n", rc == 0 ? "allowed" : strerror (errno));
  if (rc == 0 && write (s, "hello", 5) != 5)
    perror ("write");
  fflush (stdout);
  for (;;)
    pause ();
}
