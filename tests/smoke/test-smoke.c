/* The real thing: build the default image, vm up with the real
 * Firecracker on KVM, ssh in, stop, rm — as an unprivileged user. It runs
 * on hosts that have KVM that boots stock kernels and a Firecracker
 * binary; elsewhere it skips, naming what is missing. */
#include <fcntl.h>
#include <unistd.h>
#include <gio/gio.h>

int
main (int argc, char **argv)
{
  g_autofree char *firecracker = NULL;
  int kvm;

  g_test_init (&argc, &argv, NULL);
  kvm = open ("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0)
    {
      g_print ("1..0 # SKIP no usable /dev/kvm on this host\n");
      return 0;
    }
  close (kvm);
  firecracker = g_find_program_in_path ("firecracker");
  if (firecracker == NULL && !g_file_test ("/usr/local/bin/firecracker", G_FILE_TEST_IS_EXECUTABLE))
    {
      g_print ("1..0 # SKIP no Firecracker binary (install one as /usr/local/bin/firecracker)\n");
      return 0;
    }
  /* Both present: this host can run the real smoke test, which is not
   * written yet. Say so rather than pass. */
  g_print ("1..1\nnot ok 1 /smoke/real-firecracker # TODO KVM and Firecracker are present but the smoke test "
           "(build, vm up, vm ssh -- uname -a, stop, rm) is not written yet\n");
  return 0;
}
