/* banger-init: the early init of banger-built images, for layered VMs.
 *
 * The kernel (or the initramfs) mounts the image's shared root
 * filesystem read-only as / and runs this as PID 1, when the command
 * line says init=/usr/libexec/banger/banger-init. It:
 *   1. finds the VM's own disk (banger.upper=, default /dev/vdc) and, on
 *      the first boot (the disk is blank), formats it ext4;
 *   2. mounts it, and builds the real root at a scratch place: an
 *      overlayfs with the shared image as its lower layer and the VM's
 *      disk as its upper, container data dirs bound from the disk
 *      (bg-init-steps.c);
 *   3. moves /dev there, pivot_root()s into it, starts banger-agent (the
 *      guest's end of `banger vm exec`) there when the image has it, and
 *      execs /sbin/init with the arguments it was given.
 * Every write of the VM goes to its own disk; the image is never written.
 * If a step fails it says so on the console and powers the VM off: a VM
 * booted without its disk would lose what it writes. Plain C and libc,
 * every child an argv.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bg-init.h"
#include "bg-init-oci.h"

#define SCRATCH "/run/banger-init"
#define UPPER   SCRATCH "/upper"
#define NEWROOT SCRATCH "/root"
#define AGENT   "/usr/libexec/banger/banger-agent"

static void __attribute__ ((noreturn, format (printf, 1, 2)))
die (const char *format, ...)
{
  va_list ap;

  fprintf (stderr, "banger-init: ");
  va_start (ap, format);
  vfprintf (stderr, format, ap);
  va_end (ap);
  fprintf (stderr, "; powering off (the VM's own disk is needed to boot it)\n");
  fflush (stderr);
  sync ();
  reboot (RB_POWER_OFF);
  _exit (1);
}

static int
run (const char * const *argv)
{
  int status;
  pid_t pid = fork ();

  if (pid < 0)
    return -1;
  if (pid == 0)
    {
      execv (argv[0], (char * const *) argv);
      _exit (127);
    }
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

/* An initramfs moved these into the root already; the kernel alone did
 * not. @probe exists once @type is mounted at @target. */
static void
mount_api (const char   *type,
           const char   *target,
           const char   *probe,
           unsigned long flags)
{
  if (access (probe, F_OK) == 0)
    return;
  if (mount (type, target, type, flags, NULL) < 0)
    die ("cannot mount %s at %s: %s", type, target, strerror (errno));
}

/* The guest agent, in the final root, in a session of its own, so that
 * it is up before /sbin/init starts anything (`vm up` waits on it). It
 * outlives this exec: /sbin/init inherits it as a child. Images built
 * before the agent have none, and boot as before. */
static void
start_agent (void)
{
  pid_t pid;

  if (access (AGENT, X_OK) < 0)
    return;
  pid = fork ();
  if (pid < 0)
    {
      fprintf (stderr, "banger-init: cannot start %s: %s\n", AGENT, strerror (errno));
      return;
    }
  if (pid == 0)
    {
      const char *argv[] = { AGENT, NULL };
      int null = open ("/dev/null", O_RDONLY | O_CLOEXEC);

      if (null >= 0)
        dup2 (null, 0);
      setsid ();
      execv (AGENT, (char * const *) argv);
      _exit (127);
    }
}

static int
have_overlay (void)
{
  char line[256];
  FILE *f = fopen ("/proc/filesystems", "re");
  int found = 0;

  while (f && fgets (line, sizeof line, f))
    found |= strstr (line, "\toverlay\n") != NULL;
  if (f)
    fclose (f);
  return found;
}

int
main (int    argc,
      char **argv)
{
  char cmdline[4096] = "", upper_dev[256] = "/dev/vdc", why[8192];
  int fd, present;

  if (getpid () != 1)
    {
      fprintf (stderr, "banger-init: only the kernel runs me, as PID 1 (init=%s)\n", argv[0]);
      return 2;
    }
  mount_api ("proc", "/proc", "/proc/self", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  mount_api ("sysfs", "/sys", "/sys/kernel", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  mount_api ("devtmpfs", "/dev", "/dev/null", MS_NOSUID);
  /* The console, now that /dev exists (the kernel may have had none). */
  if ((fd = open ("/dev/console", O_RDWR | O_CLOEXEC)) >= 0)
    {
      dup2 (fd, 1);
      dup2 (fd, 2);
      close (fd);
    }
  if ((fd = open ("/proc/cmdline", O_RDONLY | O_CLOEXEC)) >= 0)
    {
      ssize_t n = read (fd, cmdline, sizeof cmdline - 1);
      cmdline[n > 0 ? n : 0] = '\0';
      close (fd);
    }
  bg_init_cmdline_value (cmdline, "banger.upper", upper_dev, sizeof upper_dev);

  /* The disk appears as soon as its driver probed it; a module loaded by
   * the initramfs has, a slow probe may need a moment. */
  for (int i = 0; (present = bg_init_has_filesystem (upper_dev)) < 0 && i < 100; i++)
    {
      struct timespec t = { 0, 100 * 1000 * 1000 };
      nanosleep (&t, NULL);
    }
  if (present < 0)
    die ("the VM's disk %s did not appear (%s)", upper_dev, strerror (errno));
  if (present == 0 && access ("/sbin/mke2fs", X_OK) != 0)
    die ("the VM's disk %s is blank and the image has no /sbin/mke2fs (banger formats the disk on the host "
         "for such images: make the VM anew)", upper_dev);
  if (present == 0)
    {
      const char *mkfs[] = { "/sbin/mke2fs", "-q", "-F", "-t", "ext4", "-L", "banger-upper", upper_dev, NULL };
      fprintf (stderr, "banger-init: first boot: making the filesystem on %s\n", upper_dev);
      if (run (mkfs) != 0)
        die ("cannot make a filesystem on %s", upper_dev);
    }
  if (!have_overlay ())
    bg_init_ensure_module ("overlay", "overlay");

  /* A scratch place on the read-only root: /run is a mount point there
   * (an initramfs's /run, if any, is left below it, and goes with the
   * old root). */
  if (mount ("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0 ||
      mkdir (SCRATCH, 0700) < 0 || mkdir (UPPER, 0755) < 0)
    die ("cannot make a scratch place in /run: %s", strerror (errno));
  if (mount (upper_dev, UPPER, "ext4", MS_NOATIME, NULL) < 0)
    die ("cannot mount the VM's disk %s: %s", upper_dev, strerror (errno));
  if (bg_init_assemble ("/", UPPER, NEWROOT, why, sizeof why) < 0)
    die ("%s", why);

  /* systemd mounts /proc, /sys and /run itself; /dev goes along. */
  if (mount ("/dev", NEWROOT "/dev", NULL, MS_MOVE, NULL) < 0)
    die ("cannot move /dev: %s", strerror (errno));
  umount2 ("/proc", MNT_DETACH);
  umount2 ("/sys", MNT_DETACH);
  if (chdir (NEWROOT) < 0 || syscall (SYS_pivot_root, ".", ".") < 0 || umount2 (".", MNT_DETACH) < 0 ||
      chdir ("/") < 0)
    die ("cannot switch to the assembled root: %s", strerror (errno));
  start_agent ();

  /* An image with no init of its own (an OCI image): banger-init stays
   * PID 1 and runs the image's workload (bg-init-oci.c). */
  if (access ("/sbin/init", X_OK) != 0 && access (BG_INIT_WORKLOAD, R_OK) == 0)
    bg_init_oci_run ();
  argv[0] = (char *) "/sbin/init";
  execv ("/sbin/init", argv);
  die ("cannot run /sbin/init: %s", strerror (errno));
}
