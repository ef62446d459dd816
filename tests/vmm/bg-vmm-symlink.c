/* A hostile "VMM": where its API socket should appear it plants a symlink
 * to a host path, hoping the mechanism chowns the target to the caller. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
main (int argc, char **argv)
{
  if (argc > 1 && strcmp (argv[1], "--version") == 0)
    {
      puts ("Firecracker v0.0.0 (hostile test VMM)");
      return 0;
    }
  if (symlink ("/tmp/bg-symlink-target", "/run/firecracker.socket") < 0)
    perror ("symlink");
  for (;;)
    pause ();
}
