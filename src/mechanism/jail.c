/* jail.c: a private root and namespaces per VM, after Firecracker's
 * jailer, with nothing copied and nothing left behind by a reboot.
 *
 * On the host, under the run dir (a tmpfs a reboot clears):
 *   <run>/jail/<id>/        root 0700 + ACL u:<caller>:--x, so only the
 *                           caller (and root) can reach the sockets
 *   <run>/jail/<id>/root/   empty: where the VMM's own root is mounted,
 *                           in its mount namespace only
 *   <run>/jail/<id>/run/    its sockets appear here (jail uid, 0711)
 *
 * The VMM's root is a small tmpfs that exists only in its own mount
 * namespace, and holds only what the jail lists:
 *   /firecracker            the VMM binary: the very file the mechanism
 *                           opened and checked, attached read-only (a
 *                           clone of its mount, made in the mechanism's
 *                           namespace, where the kernel allows it)
 *   /vmlinux, /initrd       symlinks to /proc/self/fd/3 and 4: the caller's
 *                           descriptors, which the VMM inherits. Nothing is
 *                           copied, and the file may live on any filesystem
 *                           of any mount namespace (a bind mount could do
 *                           neither: the kernel refuses to bind a mount of
 *                           another namespace, such as the caller's)
 *   /proc                   a procfs of the VMM's own PID namespace with
 *                           nothing but its own process (subset=pid)
 *   /rootfs, /cidata, ...   symlinks to /proc/self/fd/N: the VM's own loop
 *                           devices, opened by the child before it drops
 *                           root and inherited by the VMM. Their nodes are
 *                           made in a tmpfs of the child's own over
 *                           <run>/jail/<id>/disks, which leaves its sight
 *                           with the host's tree at pivot_root: no block
 *                           device node exists in the jail, the VMM can
 *                           name no loop device but the ones it holds, and
 *                           while it holds them (even across a restart of
 *                           the mechanism) autoclear cannot free their
 *                           numbers for another file. A writable disk's
 *                           node is the jail uid's (0600); a read-only
 *                           one's is root's, group the jail's (0440), so
 *                           it cannot be reopened for writing
 *   /dev/kvm, /dev/net/tun, /dev/urandom   nodes (jail uid, 0600)
 *   /run                    the host's <id>/run, bound
 *   /usr, /lib*             read-only binds, only for dynamic VMMs
 * and is made read-only before the VMM starts.
 *
 * The VMM is started with clone() in new mount, PID and IPC namespaces
 * (and a network namespace of its own where Landlock cannot keep it from
 * the host's abstract unix sockets: netns.c),
 * builds that root, pivot_root()s into it, closes every other fd, gets
 * resource limits, drops to the jail uid/gid with no supplementary
 * groups, sets no_new_privs and execs with an empty environment: the
 * guarantees of Firecracker's jailer. No shell, no argv string: a vector.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <linux/mount.h>
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
#include "bg-fd.h"
#include "bg-file.h"
#include "confine.h"
#include "jail.h"

/* What the VMM's root is built from, in order, by the child. */
typedef enum {
  STEP_DIR,       /* mkdir path, mode */
  STEP_NODE,      /* mknod path (char or block device), 0600, jail uid's */
  STEP_BIND,      /* bind the host dir src onto path (made first), then
                     remount it with @flags (read-only etc.) */
  STEP_ATTACH,    /* attach the detached mount @fd onto path (an empty
                     file made first) */
  STEP_SYMLINK,   /* symlink src at path */
  STEP_PROC,      /* a procfs of the VMM's PID namespace, its own pid only */
  STEP_BLOCK,     /* block device @dev made at @node and opened (@flags) for
                     the VMM to inherit in slot @fd; path is a symlink src
                     to it */
} StepKind;

typedef struct {
  StepKind      kind;
  char         *path;     /* absolute, below the root mount point */
  char         *src;
  mode_t        mode;
  dev_t         dev;
  unsigned long flags;
  int           fd;
  char         *node;     /* STEP_BLOCK: the node, outside the root */
  char         *what;     /* for the error message */
} Step;

static void
step_clear (Step *s)
{
  g_free (s->path);
  g_free (s->src);
  g_free (s->node);
  g_free (s->what);
}

void
bg_jail_free (BgJail *jail)
{
  if (jail == NULL)
    return;
  g_free (jail->id);
  g_free (jail->dir);
  g_free (jail->root);
  g_free (jail->run);
  g_free (jail->disks);
  bg_fd_clear (&jail->vmm_tree);
  bg_fd_clear (&jail->netns_fd);
  for (guint i = 0; jail->fds && i < jail->fds->len; i++)
    if (g_array_index (jail->fds, int, i) >= 0)
      close (g_array_index (jail->fds, int, i));
  g_clear_pointer (&jail->fds, g_array_unref);
  g_clear_pointer (&jail->steps, g_array_unref);
  g_free (jail);
}


typedef struct {
  uid_t   uid;
  guint16 perm;   /* rwx bits */
} AclUser;

static int
compare_acl_users (gconstpointer a, gconstpointer b)
{
  const AclUser *x = a, *y = b;
  return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* A POSIX access ACL (the kernel's xattr format) on a root-owned
 * directory: root rwx, each of @users what it lists, nobody else
 * anything. Root's own access never needs CAP_DAC_OVERRIDE. */
static gboolean
set_acl (const char  *path,
         AclUser     *users,
         guint        n_users,
         GError     **error)
{
  struct { guint16 tag, perm; guint32 id; } __attribute__ ((packed)) entries[8];
  guint8 buf[4 + sizeof entries];
  guint32 version = GUINT32_TO_LE (2);
  guint n = 0;
  guint16 mask = 0;

  g_assert (n_users <= 4);
  /* Entries in the kernel's order: by tag, users by uid. */
  qsort (users, n_users, sizeof *users, compare_acl_users);
  entries[n++] = (typeof (entries[0])) { 0x01, 07, G_MAXUINT32 };   /* ACL_USER_OBJ */
  for (guint i = 0; i < n_users; i++)
    {
      entries[n++] = (typeof (entries[0])) { 0x02, users[i].perm, users[i].uid };   /* ACL_USER */
      mask |= users[i].perm;
    }
  entries[n++] = (typeof (entries[0])) { 0x04, 00, G_MAXUINT32 };   /* ACL_GROUP_OBJ */
  entries[n++] = (typeof (entries[0])) { 0x10, mask, G_MAXUINT32 }; /* ACL_MASK */
  entries[n++] = (typeof (entries[0])) { 0x20, 00, G_MAXUINT32 };   /* ACL_OTHER */
  for (guint i = 0; i < n; i++)
    {
      entries[i].tag = GUINT16_TO_LE (entries[i].tag);
      entries[i].perm = GUINT16_TO_LE (entries[i].perm);
      entries[i].id = GUINT32_TO_LE (entries[i].id);
    }
  memcpy (buf, &version, 4);
  memcpy (buf + 4, entries, n * sizeof entries[0]);
  if (setxattr (path, "system.posix_acl_access", buf, 4 + n * sizeof entries[0], 0) < 0)
    return bg_error_errno (error, errno, "cannot set an ACL on (does the filesystem support ACLs?)", path);
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
    return bg_error_errno (error, errno, "cannot create", path);
  if (chown (path, uid, gid) < 0 || chmod (path, mode) < 0)
    return bg_error_errno (error, errno, "cannot set up", path);
  return TRUE;
}

static Step *
add_step (BgJail     *jail,
          StepKind    kind,
          const char *name,
          const char *src)
{
  Step s = { kind, g_build_filename (jail->root, name, NULL), g_strdup (src), 0, 0, 0, -1, NULL,
             g_strdup_printf ("/%s", name) };

  g_array_append_val (jail->steps, s);
  return &g_array_index (jail->steps, Step, jail->steps->len - 1);
}

static void
add_dir (BgJail     *jail,
         const char *name)
{
  add_step (jail, STEP_DIR, name, NULL)->mode = 0711;
}

static void
add_node (BgJail     *jail,
          const char *name,
          mode_t      type,
          dev_t       dev)
{
  Step *s = add_step (jail, STEP_NODE, name, NULL);
  s->mode = type;
  s->dev = dev;
}

static void
add_bind (BgJail        *jail,
          const char    *name,
          const char    *host_dir,
          unsigned long  flags)
{
  add_step (jail, STEP_BIND, name, host_dir)->flags = flags;
}

static const char * const lib_dirs[] = { "lib", "lib64", "lib32", "libx32", NULL };

#define RO_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV)

/* The jail of VM @id, for @caller, run as @jail_uid: its directory on
 * the host, and the plan of its root. Takes @vmm_fd. A leftover of this
 * id (a crash) is removed first: no VMM runs for it, the caller checked. */
BgJail *
bg_jail_new (const char  *run_dir,
             const char  *id,
             uid_t        caller,
             uid_t        jail_uid,
             int          vmm_fd,
             gboolean     dynamic,
             GError     **error)
{
  g_autoptr(BgJail) jail = g_new0 (BgJail, 1);
  g_autofree char *top = g_build_filename (run_dir, "jail", NULL);
  g_auto(BgFd) vmm = vmm_fd;
  struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };

  jail->vmm_tree = -1;
  jail->netns_fd = -1;
  jail->landlock_scopes = TRUE;
  jail->fds = g_array_new (FALSE, FALSE, sizeof (int));
  jail->steps = g_array_new (FALSE, FALSE, sizeof (Step));
  g_array_set_clear_func (jail->steps, (GDestroyNotify) step_clear);
  jail->id = g_strdup (id);
  jail->uid = jail_uid;
  jail->gid = jail_uid;
  jail->dynamic = dynamic;
  /* A read-only clone of the VMM binary's own mount, made here in the
   * mechanism's namespace, for the child to attach in its. */
  jail->vmm_tree = syscall (SYS_open_tree, vmm, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
  if (jail->vmm_tree < 0 ||
      syscall (SYS_mount_setattr, jail->vmm_tree, "", AT_EMPTY_PATH, &ro, sizeof ro) < 0)
    return bg_error_errno (error, errno, "cannot prepare", "the VMM binary for the jail"), NULL;
  jail->dir = g_build_filename (top, id, NULL);
  jail->root = g_build_filename (jail->dir, "root", NULL);
  jail->run = g_build_filename (jail->dir, "run", NULL);
  jail->disks = g_build_filename (jail->dir, "disks", NULL);

  /* Traversable (not listable) by all; each jail below admits only its
   * caller. Explicit chmod: the umask is 077. */
  if (g_mkdir_with_parents (top, 0711) < 0 || chmod (top, 0711) < 0)
    return bg_error_errno (error, errno, "cannot create", top), NULL;
  /* All root's, so the mechanism needs no CAP_DAC_OVERRIDE to remove
   * them: the jail dir admits only the caller (to reach the sockets);
   * run/ is where the VMM makes them (jail uid rwx), and the caller
   * passes through it. */
  {
    AclUser dir_users[] = { { caller, 01 } };
    AclUser run_users[] = { { jail_uid, 07 }, { caller, 01 } };

    if (!bg_jail_destroy (run_dir, id, error) ||
        !make_dir (jail->dir, 0, 0, 0700, error) ||
        !set_acl (jail->dir, dir_users, caller == 0 ? 0 : 1, error) ||
        !make_dir (jail->root, 0, 0, 0755, error) ||
        !make_dir (jail->run, 0, 0, 0700, error) ||
        !make_dir (jail->disks, 0, 0, 0700, error) ||
        !set_acl (jail->run, run_users, caller == 0 ? 1 : 2, error))
      return NULL;
  }

  add_dir (jail, "dev");
  add_dir (jail, "dev/net");
  add_node (jail, "dev/kvm", S_IFCHR, makedev (10, 232));
  add_node (jail, "dev/net/tun", S_IFCHR, makedev (10, 200));
  add_node (jail, "dev/urandom", S_IFCHR, makedev (1, 9));
  add_step (jail, STEP_ATTACH, BG_JAIL_EXEC_NAME, NULL)->fd = jail->vmm_tree;
  add_bind (jail, "run", jail->run, MS_NOSUID | MS_NODEV | MS_NOEXEC);
  add_step (jail, STEP_PROC, "proc", NULL);

  if (dynamic)
    {
      add_bind (jail, "usr", "/usr", RO_FLAGS);
      /* Mirror /lib* as the host has them: symlinks into usr/ on merged
       * systems, read-only binds otherwise. */
      for (guint i = 0; lib_dirs[i]; i++)
        {
          g_autofree char *host = g_strdup_printf ("/%s", lib_dirs[i]);
          g_autofree char *target = NULL;
          struct stat st;

          if (lstat (host, &st) < 0)
            continue;
          if (S_ISLNK (st.st_mode) && (target = g_file_read_link (host, NULL)) != NULL)
            add_step (jail, STEP_SYMLINK, lib_dirs[i], target);
          else if (S_ISDIR (st.st_mode))
            add_bind (jail, lib_dirs[i], host, RO_FLAGS);
        }
    }
  return g_steal_pointer (&jail);
}

/* The file behind @fd appears as /@name, for the jail uid to read: the
 * VMM inherits the descriptor, and /@name is a symlink to it under
 * /proc/self/fd. The same inode, not a copy. Opening it there checks the
 * file's permissions again, so it must be readable by others: the VMM
 * reads it as its own user. */
gboolean
bg_jail_add_file (BgJail      *jail,
                  const char  *field,
                  const char  *name,
                  int          fd,
                  GError     **error)
{
  g_autofree char *src = NULL;
  struct stat st;
  int copy;

  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: must be a regular file", field);
      return FALSE;
    }
  if (!(st.st_mode & S_IROTH))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "%s: must be readable by others (mode %04o; chmod o+r): the jailed VMM reads it as its own user",
                   field, (guint) (st.st_mode & 07777));
      return FALSE;
    }
  copy = fcntl (fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0)
    return bg_error_errno (error, errno, "cannot hold", field);
  g_array_append_val (jail->fds, copy);
  /* Inherited as 3, 4, ... in the order added. */
  src = g_strdup_printf ("/proc/self/fd/%u", 2 + jail->fds->len);
  add_step (jail, STEP_SYMLINK, name, src);
  return TRUE;
}

/* The block device @dev appears as /@name, a symlink to the descriptor
 * the VMM inherits for it, opened read-only or read-write (@read_only):
 * the child makes a node in its own tmpfs over <jail>/disks (outside the
 * root, gone from sight at pivot_root), opens it as root and gives the
 * node to the jail uid, so the VMM may open it again through
 * /proc/self/fd and by no other name. */
void
bg_jail_add_block (BgJail     *jail,
                   const char *name,
                   dev_t       dev,
                   gboolean    read_only)
{
  int none = -1;
  Step *s;

  g_array_append_val (jail->fds, none);
  s = add_step (jail, STEP_BLOCK, name, NULL);
  s->src = g_strdup_printf ("/proc/self/fd/%u", 2 + jail->fds->len);
  s->mode = S_IFBLK;
  s->dev = dev;
  s->flags = read_only ? O_RDONLY : O_RDWR;
  s->fd = (int) jail->fds->len - 1;
  s->node = g_build_filename (jail->disks, name, NULL);
}

char **
bg_jail_build_argv (const char *id)
{
  char **argv = g_new0 (char *, 6);

  argv[0] = g_strdup ("/" BG_JAIL_EXEC_NAME);
  argv[1] = g_strdup ("--api-sock");
  argv[2] = g_strdup (BG_JAIL_RUN "/" BG_JAIL_API_SOCKET);
  argv[3] = g_strdup ("--id");
  argv[4] = g_strdup (id);
  return argv;
}

/* The most descriptors a VMM is given (kernel, disks, config drive,
 * initrd, console). */
#define MAX_KEEP 8

/* Everything the child needs, computed before clone(): after it, the
 * child may only make system calls. It shares the parent's memory
 * (CLONE_VM, as posix_spawn does: no copy of the mechanism's page
 * tables, no copy-on-write faults on either side), so it works on its
 * own copy of this, on its own stack, and writes nothing else. */
typedef struct {
  const char         *root;
  const char         *disks;
  const Step         *steps;
  guint               n_steps;
  int                *keep;        /* inherited as 3, 4, ...; the child's
                                      copy gets the block devices it opens */
  guint               n_keep;
  const char * const *argv;
  int                 output_fd;
  int                 null_fd;
  uid_t               uid;
  gid_t               gid;
  int                 status_fd;   /* write end; errno on failure, CLOEXEC */
  int                 netns_fd;    /* to join first, or -1 */
  gboolean            landlock_scopes;
  sigset_t            mask;        /* the parent thread's, for the VMM */
} ChildArgs;

/* Failure codes the parent turns into words: the step index, or one of
 * these below 0. */
enum {
  FAIL_PRIVATE = -1, FAIL_ROOT = -2, FAIL_SEAL = -3, FAIL_PIVOT = -4, FAIL_STDIO = -5,
  FAIL_CLOSE = -6, FAIL_LIMITS = -7, FAIL_DROP = -8, FAIL_NNP = -9, FAIL_EXEC = -10, FAIL_CONFINE = -11,
  FAIL_DISKS = -12, FAIL_NETNS = -13,
};

__attribute__ ((no_sanitize_address)) static int G_GNUC_NORETURN
child_fail (ChildArgs *a,
            int        step)
{
  int code[2] = { step, errno };
  if (write (a->status_fd, code, sizeof code) < 0)
    _exit (126);
  _exit (127);
}

__attribute__ ((no_sanitize_address)) static gboolean
child_step (ChildArgs  *a,
            const Step *s)
{
  int fd;

  switch (s->kind)
    {
    case STEP_DIR:
      return mkdir (s->path, s->mode) == 0;
    case STEP_NODE:
      return mknod (s->path, s->mode | 0600, s->dev) == 0 && chown (s->path, a->uid, a->gid) == 0;
    case STEP_SYMLINK:
      return symlink (s->src, s->path) == 0;
    case STEP_BIND:
      return mkdir (s->path, 0755) == 0 &&
             mount (s->src, s->path, NULL, MS_BIND | MS_REC, NULL) == 0 &&
             mount (NULL, s->path, NULL, MS_BIND | MS_REMOUNT | s->flags, NULL) == 0;
    case STEP_ATTACH:
      if ((fd = open (s->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444)) < 0)
        return FALSE;
      close (fd);
      return syscall (SYS_move_mount, s->fd, "", AT_FDCWD, s->path, MOVE_MOUNT_F_EMPTY_PATH) == 0;
    case STEP_BLOCK:
      /* Root's node (root needs no CAP_DAC_OVERRIDE to open its own),
       * then the VMM's, then gone. The VMM opens it again through
       * /proc/self/fd, and such a reopen checks the node's permissions,
       * not the descriptor's mode: a read-only disk's node stays root's,
       * readable by the jail's own group only (0440), so the VMM cannot
       * reopen a shared base for writing (where the kernel does not
       * refuse, a discard through that fd would punch holes into the
       * image file under every VM that shares it). */
      if (mknod (s->node, s->mode | 0600, s->dev) < 0 || (fd = open (s->node, (int) s->flags | O_CLOEXEC)) < 0)
        return FALSE;
      a->keep[s->fd] = fd;
      if (s->flags == O_RDONLY ? fchown (fd, 0, a->gid) < 0 || fchmod (fd, 0440) < 0
                               : fchown (fd, a->uid, a->gid) < 0)
        return FALSE;
      return symlink (s->src, s->path) == 0;
    case STEP_PROC:
      return mkdir (s->path, 0555) == 0 &&
             mount ("proc", s->path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    "hidepid=invisible,subset=pid") == 0;
    default:
      return FALSE;
    }
}

/* Not instrumented: it runs on memory it shares with the parent and
 * never returns (exec), so frames the sanitizer marks would stay marked
 * in the parent's heap. */
__attribute__ ((no_sanitize_address)) static int
jail_child (void *data)
{
  ChildArgs copy = *(const ChildArgs *) data;
  ChildArgs *a = &copy;
  int keep[MAX_KEEP];
  static char * const empty_env[] = { NULL };
  struct rlimit nofile = { 2048, 2048 }, core = { 0, 0 };

  /* The descriptors this child opens go into its own list, not the
   * parent's (which the parent closes when the jail goes). */
  memcpy (keep, a->keep, a->n_keep * sizeof (int));
  a->keep = keep;
  /* The parent's handlers are the mechanism's: a signal before exec runs
   * the default action here, in the child, not a handler writing into
   * the memory it shares with the parent. Its table of handlers is its
   * own (no CLONE_SIGHAND); the parent blocked every signal it may. */
  for (int sig = 1; sig < NSIG; sig++)
    {
      struct sigaction sa;

      /* glibc's own signals it refuses (EINVAL): none of the mechanism's. */
      if (sigaction (sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN)
        {
          sa.sa_handler = SIG_DFL;
          sigaction (sig, &sa, NULL);
        }
    }
  sigprocmask (SIG_SETMASK, &a->mask, NULL);

  /* The VMM's own network namespace, with its tap: joined while still
   * root, before anything else (netns.c). */
  if (a->netns_fd >= 0 && setns (a->netns_fd, CLONE_NEWNET) < 0)
    child_fail (a, FAIL_NETNS);
  if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    child_fail (a, FAIL_PRIVATE);
  /* Device nodes live here, so no MS_NODEV; it is sealed read-only once
   * built. */
  if (mount ("tmpfs", a->root, "tmpfs", MS_NOSUID, "mode=0755,size=64k,nr_inodes=256") < 0)
    child_fail (a, FAIL_ROOT);
  /* Where the disks' nodes are made: not below the root, and detached
   * with the host's tree after pivot_root (the open nodes keep it). */
  if (mount ("tmpfs", a->disks, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0700,size=4k,nr_inodes=16") < 0)
    child_fail (a, FAIL_DISKS);
  umask (0);
  for (guint i = 0; i < a->n_steps; i++)
    if (!child_step (a, &a->steps[i]))
      child_fail (a, (int) i);
  if (mount (NULL, a->root, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID, NULL) < 0)
    child_fail (a, FAIL_SEAL);
  if (chdir (a->root) < 0 || syscall (SYS_pivot_root, ".", ".") < 0 ||
      umount2 (".", MNT_DETACH) < 0 || chdir ("/") < 0)
    child_fail (a, FAIL_PIVOT);

  /* stdio; then the descriptors the VMM keeps as 3, 4, ... (moved out of
   * the way first, so none is overwritten before it is placed); then
   * the status pipe just above them. */
  if (dup2 (a->null_fd, 0) < 0 || dup2 (a->output_fd, 1) < 0 || dup2 (a->output_fd, 2) < 0)
    child_fail (a, FAIL_STDIO);
  {
    int high[MAX_KEEP];
    int status = fcntl (a->status_fd, F_DUPFD_CLOEXEC, 1000);

    if (status < 0 || a->n_keep > G_N_ELEMENTS (high))
      child_fail (a, FAIL_STDIO);
    a->status_fd = status;
    for (guint i = 0; i < a->n_keep; i++)
      if ((high[i] = fcntl (a->keep[i], F_DUPFD, 1001 + i)) < 0)
        child_fail (a, FAIL_STDIO);
    for (guint i = 0; i < a->n_keep; i++)
      if (dup2 (high[i], 3 + i) < 0)
        child_fail (a, FAIL_STDIO);
    if (dup2 (status, 3 + a->n_keep) < 0 || fcntl (3 + a->n_keep, F_SETFD, FD_CLOEXEC) < 0)
      child_fail (a, FAIL_STDIO);
    a->status_fd = 3 + a->n_keep;
  }
  /* Every other descriptor the mechanism holds stays out of the jail. */
  if (syscall (SYS_close_range, 4 + a->n_keep, ~0U, 0) < 0)
    child_fail (a, FAIL_CLOSE);

  if (setrlimit (RLIMIT_NOFILE, &nofile) < 0 || setrlimit (RLIMIT_CORE, &core) < 0)
    child_fail (a, FAIL_LIMITS);
  /* Raw system calls: glibc's wrappers would signal the mechanism's
   * other threads, which this clone()d child does not have. */
  if (syscall (SYS_setgroups, 0, NULL) < 0 || syscall (SYS_setresgid, a->gid, a->gid, a->gid) < 0 ||
      syscall (SYS_setresuid, a->uid, a->uid, a->uid) < 0)
    child_fail (a, FAIL_DROP);
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl (PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
    child_fail (a, FAIL_NNP);
  if ((errno = bg_confine_vmm (a->landlock_scopes)) != 0)
    child_fail (a, FAIL_CONFINE);
  umask (077);
  execve (a->argv[0], (char * const *) a->argv, empty_env);
  child_fail (a, FAIL_EXEC);
}

static char *
describe_failure (BgJail *jail,
                  int     code)
{
  static const char * const words[] = {
    NULL, "make mounts private", "mount its root", "seal its root read-only", "pivot_root", "set up stdio",
    "close descriptors", "set resource limits", "drop privileges", "set no_new_privs", "exec the VMM",
    "confine the VMM (seccomp, Landlock)", "mount the tmpfs for its disk nodes",
    "join its network namespace",
  };
  const Step *s;

  if (code < 0)
    return g_strdup (-code < (int) G_N_ELEMENTS (words) ? words[-code] : "start");
  if ((guint) code >= jail->steps->len)
    return g_strdup ("start");
  s = &g_array_index (jail->steps, Step, code);
  switch (s->kind)
    {
    case STEP_BIND:
    case STEP_ATTACH:
      return g_strdup_printf ("bind %s", s->what);
    case STEP_PROC:
      return g_strdup_printf ("mount %s", s->what);
    case STEP_NODE:
    case STEP_BLOCK:
      return g_strdup_printf ("make the device node %s", s->what);
    default:
      return g_strdup_printf ("make %s", s->what);
    }
}

GPid
bg_jail_spawn (BgJail             *jail,
               const char * const *argv,
               int                 output_fd,
               GError            **error)
{
  ChildArgs a = { 0 };
  const gsize stack_size = 256 * 1024;
  g_autofree char *stack = g_malloc (stack_size);
  g_auto(BgFd) null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
  g_auto(BgFd) status_read = -1;
  int status_pipe[2];
  int code[2];
  sigset_t all;
  ssize_t n;
  pid_t pid;
  int errsv, dumpable;

  a.root = jail->root;
  a.disks = jail->disks;
  a.steps = (const Step *) jail->steps->data;
  a.n_steps = jail->steps->len;
  a.keep = (int *) jail->fds->data;
  a.n_keep = jail->fds->len;
  a.argv = argv;
  a.output_fd = output_fd;
  a.null_fd = null_fd;
  a.uid = jail->uid;
  a.gid = jail->gid;
  a.netns_fd = jail->netns_fd;
  a.landlock_scopes = jail->landlock_scopes;
  if (a.n_keep > MAX_KEEP)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "a VMM is given at most %d files, not %u", MAX_KEEP, a.n_keep);
      return 0;
    }
  if (null_fd < 0 || pipe2 (status_pipe, O_CLOEXEC) < 0)
    {
      bg_error_errno (error, errno, "cannot prepare", "the VMM's stdio");
      return 0;
    }
  status_read = status_pipe[0];
  a.status_fd = status_pipe[1];

  /* Every signal a program may block is blocked from before the clone
   * until the child has reset its handlers (it restores this thread's
   * mask for the VMM); glibc's two internal ones stay open, and their
   * handlers act only on signals from their own process, which the
   * child, alone in a new PID namespace, never sends. CLONE_VFORK: this
   * thread waits until the child has exec'd or exited, so its stack and
   * the copy of @a are not freed under it.
   * Whether a process may be dumped (and ptraced by its own uid) belongs
   * to its memory, which the child shares until its exec: its drop to
   * the jail uid and its PR_SET_DUMPABLE 0 (which keep the jail uid off
   * root's memory until then) would stay on the mechanism. */
  dumpable = prctl (PR_GET_DUMPABLE, 0, 0, 0, 0);
  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &a.mask);
  pid = clone (jail_child, stack + stack_size,
               CLONE_VM | CLONE_VFORK | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | SIGCHLD |
               (jail->own_netns && jail->netns_fd < 0 ? CLONE_NEWNET : 0), &a);
  errsv = errno;
  pthread_sigmask (SIG_SETMASK, &a.mask, NULL);
  if (dumpable >= 0)
    prctl (PR_SET_DUMPABLE, dumpable, 0, 0, 0);
  errno = errsv;
  close (status_pipe[1]);
  /* Only the VMM holds its network namespace now: it goes with it. */
  bg_fd_clear (&jail->netns_fd);
  if (pid < 0)
    {
      bg_error_errno (error, errno, "cannot start", "the jailed VMM");
      return 0;
    }

  /* EOF (CLOEXEC at exec) means the exec happened; data means a step
   * failed and which. */
  do
    n = read (status_read, code, sizeof code);
  while (n < 0 && errno == EINTR);
  if (n == sizeof code)
    {
      g_autofree char *what = describe_failure (jail, code[0]);

      waitpid (pid, NULL, 0);
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot jail the VMM: %s failed: %s", what,
                   g_strerror (code[1]));
      return 0;
    }
  return pid;
}

/* Removes <dir>/jail/<id>, whatever is in it, without following links.
 * Already gone is success. */
gboolean
bg_jail_destroy (const char  *dir,
                 const char  *id,
                 GError     **error)
{
  g_autofree char *top = g_build_filename (dir, "jail", NULL);
  g_auto(BgFd) fd = open (top, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

  if (fd < 0)
    return errno == ENOENT ? TRUE : bg_error_errno (error, errno, "cannot open", top);
  if (!bg_file_remove_tree_at (fd, id))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot remove the jail %s/%s", top, id);
      return FALSE;
    }
  return TRUE;
}

/* The ids of every jail directory under @dir, for reconciliation. */
GPtrArray *
bg_jail_list (const char *dir)
{
  g_autofree char *top = g_build_filename (dir, "jail", NULL);
  g_autoptr(GDir) listing = g_dir_open (top, 0, NULL);
  GPtrArray *ids = g_ptr_array_new_with_free_func (g_free);
  const char *e;

  while (listing != NULL && (e = g_dir_read_name (listing)) != NULL)
    g_ptr_array_add (ids, g_strdup (e));
  return ids;
}
