/* confine.c: what the jailed VMM is, and what it may do.
 *
 * The binary: root's, and nobody else's to change, down from /.
 *
 * Its reach, beyond the jail's namespaces and root: a seccomp filter and
 * a Landlock domain of the jail's own, set in the child right before it
 * execs the VMM (after no_new_privs), stacked under whatever the VMM
 * adds itself (Firecracker installs its own filters). The VMM keeps the
 * host's network namespace where Landlock scopes confine it (it opens
 * its tap by name there), and gets one of its own elsewhere (netns.c);
 * either way:
 *   - sockets of any family but AF_UNIX are refused (EAFNOSUPPORT): no
 *     TCP or UDP to the host's loopback listeners, no netlink;
 *   - abstract unix sockets made outside the jail cannot be reached, and
 *     processes outside it cannot be signalled (Landlock scopes, kernel
 *     6.12+; older kernels lack them, and there the VMM's own network
 *     namespace keeps it from the host's abstract sockets, and its PID
 *     namespace and jail uid from signalling anything but its own);
 *   - no user namespaces (unshare/clone with CLONE_NEWUSER: EPERM;
 *     clone3, whose flags a filter cannot read: ENOSYS, and C libraries
 *     fall back to clone), no setns, no io_uring (it could open sockets
 *     behind the filter's back; Firecracker's default Sync engine does
 *     not need it);
 *   - no ioctl on a loop device (LOOP_*, 0x4C00-0x4CFF: a VMM could
 *     otherwise swap the file behind a read-only device it was given,
 *     LOOP_CHANGE_FD needs no privilege, or detach or move it) and no
 *     re-reading or changing of a disk's partitions or read-only flag
 *     (BLKRRPART, BLKPG, BLKROSET); Firecracker issues none of them;
 *   - no discard or zeroing of a disk (BLKDISCARD, BLKSECDISCARD,
 *     BLKZEROOUT): on a loop device they punch holes into the backing
 *     file, and not every kernel refuses them on a read-only device
 *     (6.18 does; Debian 12's 6.1 does not). Each needs a writable
 *     descriptor, which a read-only disk's node does not give (jail.c):
 *     this is the second wall. Firecracker issues them only for a drive
 *     configured with discard (an opt-in newer than the API version
 *     banger speaks, and one banger does not set), so the filter, which
 *     cannot tell one descriptor from another, refuses them on every
 *     disk; turning discard on for writable drives would mean allowing
 *     them again, with the node's mode as the wall for read-only ones;
 *   - other architectures' system call numbers (x32) are refused.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/blkpg.h>
#include <linux/fs.h>
#include <linux/seccomp.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "confine.h"


/* The VMM runs with root's trust in what it is: it must be root's and
 * nobody else's to change, and so must every directory above it. A
 * sticky world-writable directory (/tmp) is fine above a root-owned
 * entry, since others can neither rename nor remove that entry. Returns
 * a descriptor on the very file checked, which is what the jail binds. */
int
bg_confine_open_vmm (const char  *path,
                     gboolean    *dynamic,
                     GError     **error)
{
  g_autofree char *real = NULL;
  g_auto(GStrv) parts = NULL;
  g_autoptr(GString) prefix = g_string_new ("");
  g_auto(BgFd) fd = -1;
  struct stat st, opened;
  Elf64_Ehdr eh;

  if (path == NULL || !g_path_is_absolute (path))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                   "the VMM path \"%s\" in mechanism.conf must be absolute", path ? path : "");
      return -1;
    }
  real = realpath (path, NULL);
  if (real == NULL)
    return bg_error_errno (error, errno, "cannot find the VMM", path), -1;

  parts = g_strsplit (real, "/", -1);
  for (guint i = 0; parts[i]; i++)
    {
      gboolean last = parts[i + 1] == NULL;
      const char *shown;

      if (i > 0 && *parts[i] == '\0')
        continue;
      if (i > 0)
        g_string_append_printf (prefix, "/%s", parts[i]);
      shown = i == 0 ? "/" : prefix->str;
      if (lstat (shown, &st) < 0)
        return bg_error_errno (error, errno, "cannot check", shown), -1;
      if (st.st_uid != 0)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE, "refusing the VMM %s: %s is owned by uid %u, not root",
                       real, shown, (guint) st.st_uid);
          return -1;
        }
      if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(S_ISDIR (st.st_mode) && (st.st_mode & S_ISVTX)))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                       "refusing the VMM %s: %s is writable by group or others (mode %04o)",
                       real, shown, (guint) (st.st_mode & 07777));
          return -1;
        }
      if (last && (!S_ISREG (st.st_mode) || !(st.st_mode & S_IXUSR)))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE, "refusing the VMM %s: not an executable file", real);
          return -1;
        }
    }

  fd = open (real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return bg_error_errno (error, errno, "cannot read", real), -1;
  /* The file opened is the file checked. */
  if (fstat (fd, &opened) < 0 || opened.st_dev != st.st_dev || opened.st_ino != st.st_ino)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE, "refusing the VMM %s: it changed while being checked", real);
      return -1;
    }

  /* Dynamically linked (a PT_INTERP program header) binaries need the
   * host's libraries inside the jail, read-only. */
  *dynamic = FALSE;
  if (pread (fd, &eh, sizeof eh, 0) != sizeof eh || memcmp (eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE, "refusing the VMM %s: not a 64-bit ELF program", real);
      return -1;
    }
  for (int i = 0; i < eh.e_phnum; i++)
    {
      Elf64_Phdr ph;
      if (pread (fd, &ph, sizeof ph, eh.e_phoff + (off_t) i * eh.e_phentsize) != sizeof ph)
        break;
      if (ph.p_type == PT_INTERP)
        *dynamic = TRUE;
    }
  return g_steal_fd (&fd);
}

gboolean
bg_confine_check_vmm (const char  *path,
                      gboolean    *dynamic,
                      GError     **error)
{
  g_auto(BgFd) fd = bg_confine_open_vmm (path, dynamic, error);
  return fd >= 0;
}

/* Landlock, from the kernel's UAPI; the build host's headers may be
 * older than the kernel it runs on. */
#define BG_LANDLOCK_CREATE_RULESET_VERSION  (1U << 0)
#define BG_LANDLOCK_SCOPE_ABSTRACT_UNIX     (1ULL << 0)
#define BG_LANDLOCK_SCOPE_SIGNAL            (1ULL << 1)

struct bg_landlock_ruleset_attr {
  guint64 handled_access_fs;
  guint64 handled_access_net;
  guint64 scoped;
};

/* The Landlock ABI this kernel speaks (0: none), for the mechanism to
 * say when the jail is weaker. */
int
bg_confine_landlock_abi (void)
{
  long abi = syscall (SYS_landlock_create_ruleset, NULL, 0, BG_LANDLOCK_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : (int) abi;
}

#if defined(__x86_64__)
# define BG_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
# define BG_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
# error "banger confines VMMs on x86-64 and aarch64 only"
#endif

#define LD_NR      BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr))
#define LD_ARG0    BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[0]))
/* The low 32 bits of arg1: an ioctl's request is an unsigned int. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
# define LD_ARG1_LO BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[1]))
#else
# define LD_ARG1_LO BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[1]) + 4)
#endif
#define RET(v)     BPF_STMT (BPF_RET | BPF_K, (v))
#define ERRNO(e)   RET (SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))
/* if nr == @nr: return @e, else go on (2 instructions) */
#define DENY(nr, e) BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), ERRNO (e)
/* if nr == @nr: return EPERM when arg0 has any of @mask, else allow; else
 * go on (5 instructions; the accumulator is reloaded for the next) */
#define DENY_FLAGS(nr, mask) \
  BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 4), LD_ARG0, \
  BPF_JUMP (BPF_JMP | BPF_JSET | BPF_K, (mask), 0, 1), ERRNO (EPERM), RET (SECCOMP_RET_ALLOW)

/* In the jail's child, after no_new_privs and right before execve:
 * async-signal-safe, no allocation. Returns 0 or an errno. */
int
bg_confine_vmm (gboolean landlock_scopes)
{
  struct sock_filter filter[] = {
    BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, arch)),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, BG_AUDIT_ARCH, 1, 0),
    RET (SECCOMP_RET_KILL_PROCESS),
    LD_NR,
#if defined(__x86_64__)
    BPF_JUMP (BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, 0, 1),
    ERRNO (EPERM),
#endif
    /* ioctl(fd, request): no loop device request, no partition table
     * re-read or change, no read-only flag change, no discard or
     * zeroing; anything else. */
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 11),
    LD_ARG1_LO,
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, BLKRRPART, 8, 0),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, BLKPG, 7, 0),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, BLKROSET, 6, 0),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, BLKDISCARD, 5, 0),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, BLKSECDISCARD, 4, 0),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, BLKZEROOUT, 3, 0),
    BPF_STMT (BPF_ALU | BPF_AND | BPF_K, 0xFFFFFF00),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, 0x4C00, 1, 0),
    RET (SECCOMP_RET_ALLOW),
    ERRNO (EPERM),
    /* socket(domain, ...): AF_UNIX only. */
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 4),
    LD_ARG0,
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 1),
    RET (SECCOMP_RET_ALLOW),
    ERRNO (EAFNOSUPPORT),
    DENY_FLAGS (__NR_unshare, CLONE_NEWUSER),
    /* The accumulator is nr again only on the paths that fell through. */
    DENY_FLAGS (__NR_clone, CLONE_NEWUSER),
    DENY (__NR_clone3, ENOSYS),
    DENY (__NR_setns, EPERM),
    DENY (__NR_io_uring_setup, EPERM),
    RET (SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = { G_N_ELEMENTS (filter), filter };
  int abi = bg_confine_landlock_abi ();

  if (abi >= 6 && landlock_scopes)
    {
      struct bg_landlock_ruleset_attr attr = { 0, 0, BG_LANDLOCK_SCOPE_ABSTRACT_UNIX | BG_LANDLOCK_SCOPE_SIGNAL };
      int ruleset = syscall (SYS_landlock_create_ruleset, &attr, sizeof attr, 0);

      if (ruleset < 0)
        return errno;
      if (syscall (SYS_landlock_restrict_self, ruleset, 0) < 0)
        {
          int errsv = errno;
          close (ruleset);
          return errsv;
        }
      close (ruleset);
    }
  if (prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
    return errno;
  return 0;
}
