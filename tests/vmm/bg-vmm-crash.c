/* A "VMM" that fails at once, as Firecracker does on a bad start. */
#include <stdio.h>
#include <string.h>

int
main (int argc, char **argv)
{
  if (argc > 1 && strcmp (argv[1], "--version") == 0)
    {
      puts ("Firecracker v0.0.0 (crashing test VMM)");
      return 0;
    }
  fputs ("Error: RunWithApi(FailedToBindSocket(\"simulated failure for the tests\"))\n", stderr);
  return 1;
}
