/* A "VMM" that runs but never creates its API socket. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
main (int argc, char **argv)
{
  if (argc > 1 && strcmp (argv[1], "--version") == 0)
    {
      puts ("Firecracker v0.0.0 (silent test VMM)");
      return 0;
    }
  for (;;)
    pause ();
}
