/* jail.c: a chroot and namespaces per VM, after Firecracker's jailer.
 *
 * <state>/jail/<id>/           root 0700 + ACL u:<caller>:--x, so only the
 *                              caller (and root) can reach the sockets
 * <state>/jail/<id>/root/      the VMM's /, owned by the jail uid, 0711
 *   firecracker                copy of the VMM binary (root, 0755)
 *   dev/kvm, dev/net/tun, dev/urandom   nodes owned by the jail uid, 0600
 *   vmlinux, initrd, rootfs    the VM's kernel copy and disk node
 *   run/                       sockets appear here (jail uid, 0711)
 *   usr, lib*                  read-only binds, only for dynamic VMMs
 *
 * The VMM is started with clone() in new mount, PID and IPC namespaces,
 * pivot_root()s into root/, closes every other fd, gets resource limits,
 * drops to the jail uid/gid with no supplementary groups, sets
 * no_new_privs and execs with an empty environment: the guarantees of
 * Firecracker's jailer. No shell, no argv string: a vector.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "bg-error.h"
#include "bg-file.h"
#include "jail.h"

void
bg_jail_free (BgJail *jail)
{
  if (jail == NULL)
    return;
  g_free (jail->id);
  g_free (jail->dir);
  g_free (jail->root);
  g_free (jail->run);
  g_free (jail);
}

static gboolean
fail_errno (GError    **error,
            int         errsv,
            const char *what,
            const char *path)
{
  g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "%s %s: %s", what, path, g_strerror (errsv));
  return FALSE;
}

/* The VMM runs with root's trust in what it is: it must be root's and
 * nobody else's to change, and so must every directory above it. A
 * sticky world-writable directory (/tmp) is fine above a root-owned
 * entry, since others can neither rename nor remove that entry. */
gboolean
bg_jail_check_vmm (const char  *path,
                   gboolean    *dynamic,
                   GError     **error)
{
  g_autofree char *real = NULL;
  g_auto(GStrv) parts = NULL;
  g_autoptr(GString) prefix = g_string_new ("");
  struct stat st;
  int fd;
  Elf64_Ehdr eh;

  if (path == NULL || !g_path_is_absolute (path))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                   "the VMM path \"%s\" in mechanism.conf must be absolute", path ? path : "");
      return FALSE;
    }
  real = realpath (path, NULL);
  if (real == NULL)
    return fail_errno (error, errno, "cannot find the VMM", path);

  parts = g_strsplit (real, "/", -1);
  for (guint i = 0; parts[i]; i++)
    {
      gboolean last = parts[i + 1] == NULL;

      if (i > 0 && *parts[i] == '\0')
        continue;
      if (i > 0)
        g_string_append_printf (prefix, "/%s", parts[i]);
      if (lstat (i == 0 ? "/" : prefix->str, &st) < 0)
        return fail_errno (error, errno, "cannot check", prefix->str);
      if (st.st_uid != 0)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                       "refusing the VMM %s: %s is owned by uid %u, not root",
                       real, i == 0 ? "/" : prefix->str, (guint) st.st_uid);
          return FALSE;
        }
      if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(S_ISDIR (st.st_mode) && (st.st_mode & S_ISVTX)))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                       "refusing the VMM %s: %s is writable by group or others (mode %04o)",
                       real, i == 0 ? "/" : prefix->str, (guint) (st.st_mode & 07777));
          return FALSE;
        }
      if (last && (!S_ISREG (st.st_mode) || !(st.st_mode & S_IXUSR)))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                       "refusing the VMM %s: not an executable file", real);
          return FALSE;
        }
    }

  /* Dynamically linked (a PT_INTERP program header) binaries need the
   * host's libraries inside the jail, read-only. */
  *dynamic = FALSE;
  fd = open (real, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail_errno (error, errno, "cannot read", real);
  if (pread (fd, &eh, sizeof eh, 0) == sizeof eh && memcmp (eh.e_ident, ELFMAG, SELFMAG) == 0 &&
      eh.e_ident[EI_CLASS] == ELFCLASS64)
    {
      for (int i = 0; i < eh.e_phnum; i++)
        {
          Elf64_Phdr ph;
          if (pread (fd, &ph, sizeof ph, eh.e_phoff + (off_t) i * eh.e_phentsize) != sizeof ph)
            break;
          if (ph.p_type == PT_INTERP)
            *dynamic = TRUE;
        }
    }
  else
    {
      close (fd);
      g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE, "refusing the VMM %s: not a 64-bit ELF program", real);
      return FALSE;
    }
  close (fd);
  return TRUE;
}

/* A POSIX access ACL (the kernel's xattr format) letting @caller traverse
 * a root-owned 0700 directory, and nobody else. */
static gboolean
grant_traverse (const char  *path,
                uid_t        caller,
                GError     **error)
{
  struct { guint16 tag, perm; guint32 id; } __attribute__ ((packed)) entries[] = {
    { 0x01, 07, G_MAXUINT32 },   /* ACL_USER_OBJ rwx */
    { 0x02, 01, caller },        /* ACL_USER caller --x */
    { 0x04, 00, G_MAXUINT32 },   /* ACL_GROUP_OBJ --- */
    { 0x10, 01, G_MAXUINT32 },   /* ACL_MASK --x */
    { 0x20, 00, G_MAXUINT32 },   /* ACL_OTHER --- */
  };
  guint8 buf[4 + sizeof entries];
  guint32 version = GUINT32_TO_LE (2);

  for (guint i = 0; i < G_N_ELEMENTS (entries); i++)
    {
      entries[i].tag = GUINT16_TO_LE (entries[i].tag);
      entries[i].perm = GUINT16_TO_LE (entries[i].perm);
      entries[i].id = GUINT32_TO_LE (entries[i].id);
    }
  memcpy (buf, &version, 4);
  memcpy (buf + 4, entries, sizeof entries);
  if (setxattr (path, "system.posix_acl_access", buf, sizeof buf, 0) < 0)
    return fail_errno (error, errno, "cannot set an ACL on (does the filesystem support ACLs?)", path);
  return TRUE;
}

static gboolean
make_dir (const char  *path,
          uid_t        uid,
          gid_t        gid,
          mode_t       mode,
          GError     **error)
{
  if (mkdir (path, mode) < 0)
    return fail_errno (error, errno, "cannot create", path);
  if (chown (path, uid, gid) < 0 || chmod (path, mode) < 0)
    return fail_errno (error, errno, "cannot set up", path);
  return TRUE;
}

static gboolean
make_node (const char  *path,
           mode_t       type,
           dev_t        dev,
           uid_t        uid,
           gid_t        gid,
           GError     **error)
{
  if (mknod (path, type | 0600, dev) < 0)
    return fail_errno (error, errno, "cannot create device node", path);
  if (chown (path, uid, gid) < 0)
    return fail_errno (error, errno, "cannot chown", path);
  return TRUE;
}

static gboolean
copy_fd_to (int          in,
            const char  *path,
            mode_t       mode,
            uid_t        uid,
            gid_t        gid,
            GError     **error)
{
  int out = open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  struct stat st;
  off_t offset = 0;

  if (out < 0)
    return fail_errno (error, errno, "cannot create", path);
  if (fstat (in, &st) < 0)
    goto fail;
  while (offset < st.st_size)
    {
      ssize_t n = copy_file_range (in, &offset, out, NULL, st.st_size - offset, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        goto fail;
    }
  if (fchown (out, uid, gid) < 0 || fchmod (out, mode) < 0)
    goto fail;
  close (out);
  return TRUE;

fail:
  {
    int errsv = errno;
    close (out);
    return fail_errno (error, errsv, "cannot copy into", path);
  }
}

static const char * const lib_dirs[] = { "lib", "lib64", "lib32", "libx32", NULL };

BgJail *
bg_jail_create (const char  *state_dir,
                const char  *id,
                uid_t        caller,
                uid_t        jail_uid,
                const char  *vmm_path,
                gboolean     dynamic,
                GError     **error)
{
  g_autoptr(BgJail) jail = g_new0 (BgJail, 1);
  g_autofree char *top = g_build_filename (state_dir, "jail", NULL);
  g_autofree char *dev = NULL, *devnet = NULL, *path = NULL;
  int in;

  jail->id = g_strdup (id);
  jail->uid = jail_uid;
  jail->gid = jail_uid;
  jail->dynamic = dynamic;
  jail->dir = g_build_filename (top, id, NULL);
  jail->root = g_build_filename (jail->dir, "root", NULL);
  jail->run = g_build_filename (jail->root, "run", NULL);

  /* Traversable (not listable) by all; each jail below admits only its
   * caller. Explicit chmod: the umask is 077. */
  if (g_mkdir_with_parents (top, 0711) < 0 || chmod (state_dir, 0711) < 0 || chmod (top, 0711) < 0)
    return fail_errno (error, errno, "cannot create", top), NULL;
  /* A leftover of this id would hold another VM's files: refuse. */
  if (!make_dir (jail->dir, 0, 0, 0700, error) ||
      !grant_traverse (jail->dir, caller, error) ||
      !make_dir (jail->root, jail_uid, jail_uid, 0711, error) ||
      !make_dir (jail->run, jail_uid, jail_uid, 0711, error))
    return NULL;

  dev = g_build_filename (jail->root, "dev", NULL);
  devnet = g_build_filename (dev, "net", NULL);
  if (!make_dir (dev, jail_uid, jail_uid, 0700, error) ||
      !make_dir (devnet, jail_uid, jail_uid, 0700, error))
    return NULL;
  g_free (path);
  path = g_build_filename (dev, "kvm", NULL);
  if (!make_node (path, S_IFCHR, makedev (10, 232), jail_uid, jail_uid, error))
    return NULL;
  g_free (path);
  path = g_build_filename (devnet, "tun", NULL);
  if (!make_node (path, S_IFCHR, makedev (10, 200), jail_uid, jail_uid, error))
    return NULL;
  g_free (path);
  path = g_build_filename (dev, "urandom", NULL);
  if (!make_node (path, S_IFCHR, makedev (1, 9), jail_uid, jail_uid, error))
    return NULL;

  g_free (path);
  path = g_build_filename (jail->root, BG_JAIL_EXEC_NAME, NULL);
  in = open (vmm_path, O_RDONLY | O_CLOEXEC);
  if (in < 0)
    return fail_errno (error, errno, "cannot read", vmm_path), NULL;
  if (!copy_fd_to (in, path, 0755, 0, 0, error))
    {
      close (in);
      return NULL;
    }
  close (in);

  if (dynamic)
    {
      g_free (path);
      path = g_build_filename (jail->root, "usr", NULL);
      if (!make_dir (path, 0, 0, 0755, error))
        return NULL;
      /* Mirror /lib* as the host has them: symlinks into usr/ on merged
       * systems, directories to bind otherwise. */
      for (guint i = 0; lib_dirs[i]; i++)
        {
          g_autofree char *host = g_strdup_printf ("/%s", lib_dirs[i]);
          g_autofree char *target = NULL;
          struct stat st;

          g_free (path);
          path = g_build_filename (jail->root, lib_dirs[i], NULL);
          if (lstat (host, &st) < 0)
            continue;
          if (S_ISLNK (st.st_mode) && (target = g_file_read_link (host, NULL)) != NULL)
            {
              if (symlink (target, path) < 0)
                return fail_errno (error, errno, "cannot create", path), NULL;
            }
          else if (S_ISDIR (st.st_mode) && !make_dir (path, 0, 0, 0755, error))
            return NULL;
        }
    }

  return g_steal_pointer (&jail);
}

/* Copies what the caller handed over as @fd into the jail, for the jail
 * uid to read: the VMM must open it itself. */
gboolean
bg_jail_add_file (BgJail      *jail,
                  const char  *name,
                  int          fd,
                  GError     **error)
{
  g_autofree char *path = g_build_filename (jail->root, name, NULL);

  return copy_fd_to (fd, path, 0400, jail->uid, jail->gid, error);
}

gboolean
bg_jail_add_block (BgJail      *jail,
                   const char  *name,
                   dev_t        dev,
                   GError     **error)
{
  g_autofree char *path = g_build_filename (jail->root, name, NULL);

  return make_node (path, S_IFBLK, dev, jail->uid, jail->gid, error);
}

char **
bg_jail_build_argv (const char *id)
{
  char **argv = g_new0 (char *, 6);

  argv[0] = g_strdup ("/" BG_JAIL_EXEC_NAME);
  argv[1] = g_strdup ("--api-sock");
  argv[2] = g_strdup ("/run/" BG_JAIL_API_SOCKET);
  argv[3] = g_strdup ("--id");
  argv[4] = g_strdup (id);
  return argv;
}

/* Everything the child needs, computed before clone(): after it, the
 * child may only make system calls (the parent has other threads). */
typedef struct {
  const char         *root;
  char               *bind_src[8];
  char               *bind_dst[8];
  int                 n_binds;
  const char * const *argv;
  int                 output_fd;
  int                 null_fd;
  uid_t               uid;
  gid_t               gid;
  int                 status_fd;   /* write end; errno on failure, CLOEXEC */
} ChildArgs;

static int G_GNUC_NORETURN
child_fail (ChildArgs *a,
            int        step)
{
  int code[2] = { step, errno };
  if (write (a->status_fd, code, sizeof code) < 0)
    _exit (126);
  _exit (127);
}

static int
jail_child (void *data)
{
  ChildArgs *a = data;
  static char * const empty_env[] = { NULL };
  struct rlimit nofile = { 2048, 2048 }, core = { 0, 0 };

  if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    child_fail (a, 1);
  if (mount (a->root, a->root, NULL, MS_BIND | MS_REC, NULL) < 0)
    child_fail (a, 2);
  for (int i = 0; i < a->n_binds; i++)
    if (mount (a->bind_src[i], a->bind_dst[i], NULL, MS_BIND | MS_REC, NULL) < 0 ||
        mount (NULL, a->bind_dst[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
      child_fail (a, 3);
  if (chdir (a->root) < 0 || syscall (SYS_pivot_root, ".", ".") < 0 ||
      umount2 (".", MNT_DETACH) < 0 || chdir ("/") < 0)
    child_fail (a, 4);

  if (dup2 (a->null_fd, 0) < 0 || dup2 (a->output_fd, 1) < 0 || dup2 (a->output_fd, 2) < 0)
    child_fail (a, 5);
  if (a->status_fd != 3 && (dup2 (a->status_fd, 3) < 0 || fcntl (3, F_SETFD, FD_CLOEXEC) < 0))
    child_fail (a, 5);
  a->status_fd = 3;
  /* Every other descriptor the mechanism holds stays out of the jail. */
  if (syscall (SYS_close_range, 4, ~0U, 0) < 0)
    child_fail (a, 6);

  if (setrlimit (RLIMIT_NOFILE, &nofile) < 0 || setrlimit (RLIMIT_CORE, &core) < 0)
    child_fail (a, 7);
  if (setgroups (0, NULL) < 0 || setresgid (a->gid, a->gid, a->gid) < 0 ||
      setresuid (a->uid, a->uid, a->uid) < 0)
    child_fail (a, 8);
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl (PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
    child_fail (a, 9);
  umask (077);
  execve (a->argv[0], (char * const *) a->argv, empty_env);
  child_fail (a, 10);
}

GPid
bg_jail_spawn (BgJail             *jail,
               const char * const *argv,
               int                 output_fd,
               GError            **error)
{
  static const char * const steps[] = {
    "", "make mounts private", "bind the jail root", "bind the host libraries", "pivot_root",
    "set up stdio", "close descriptors", "set resource limits", "drop privileges",
    "set no_new_privs", "exec the VMM",
  };
  ChildArgs a = { 0 };
  const gsize stack_size = 256 * 1024;
  g_autofree char *stack = g_malloc (stack_size);
  int status_pipe[2];
  int code[2];
  ssize_t n;
  pid_t pid;

  a.root = jail->root;
  a.argv = argv;
  a.output_fd = output_fd;
  a.uid = jail->uid;
  a.gid = jail->gid;
  if (jail->dynamic)
    {
      a.bind_src[a.n_binds] = g_strdup ("/usr");
      a.bind_dst[a.n_binds++] = g_build_filename (jail->root, "usr", NULL);
      for (guint i = 0; lib_dirs[i]; i++)
        {
          g_autofree char *dst = g_build_filename (jail->root, lib_dirs[i], NULL);
          struct stat st;

          if (lstat (dst, &st) == 0 && S_ISDIR (st.st_mode))
            {
              a.bind_src[a.n_binds] = g_strdup_printf ("/%s", lib_dirs[i]);
              a.bind_dst[a.n_binds++] = g_steal_pointer (&dst);
            }
        }
    }
  a.null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (a.null_fd < 0 || pipe2 (status_pipe, O_CLOEXEC) < 0)
    {
      fail_errno (error, errno, "cannot prepare", "the VMM's stdio");
      pid = 0;
      goto out;
    }
  a.status_fd = status_pipe[1];

  pid = clone (jail_child, stack + stack_size, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | SIGCHLD, &a);
  close (status_pipe[1]);
  if (pid < 0)
    {
      fail_errno (error, errno, "cannot start", "the jailed VMM");
      close (status_pipe[0]);
      pid = 0;
      goto out;
    }

  /* EOF (CLOEXEC at exec) means the exec happened; data means a step
   * failed and which. */
  do
    n = read (status_pipe[0], code, sizeof code);
  while (n < 0 && errno == EINTR);
  close (status_pipe[0]);
  if (n == sizeof code)
    {
      waitpid (pid, NULL, 0);
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot jail the VMM: %s failed: %s",
                   steps[CLAMP (code[0], 0, (int) G_N_ELEMENTS (steps) - 1)], g_strerror (code[1]));
      pid = 0;
    }

out:
  if (a.null_fd >= 0)
    close (a.null_fd);
  for (int i = 0; i < a.n_binds; i++)
    {
      g_free (a.bind_src[i]);
      g_free (a.bind_dst[i]);
    }
  return pid;
}

gboolean
bg_jail_destroy (const char  *state_dir,
                 const char  *id,
                 GError     **error)
{
  g_autofree char *top = g_build_filename (state_dir, "jail", NULL);
  int fd = open (top, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  gboolean ok;

  if (fd < 0)
    return errno == ENOENT ? TRUE : fail_errno (error, errno, "cannot open", top);
  ok = bg_file_remove_tree_at (fd, id);
  close (fd);
  if (!ok)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot remove the jail %s/%s", top, id);
      return FALSE;
    }
  return TRUE;
}
