/* bg-guest-insert.c: banger's guest programs (banger-init, banger-agent)
 * written into banger's own copy of an imported root filesystem, so that
 * VMs of a plain ext4 are layered, each costing a sparse disk of its own
 * instead of a copy of the image. The file the user gave is never
 * opened for writing: this runs on the image store's copy.
 *
 * A root that boots systemd and has no cloud-init to read the config
 * drive also gets banger-guest-setup and its unit, enabled, as images
 * banger builds have them: otherwise nothing in it would set up the
 * network, the user and the keys `vm ssh` needs. One with cloud-init is
 * left to cloud-init (two writers of the same files would fight).
 *
 * debugfs -w writes them, the filesystem never mounted (no root, no
 * loop device). debugfs parses its commands (quotes, spaces), so nothing
 * a user or an environment chose ever goes into one: the host programs
 * are opened here and inherited by debugfs as descriptors 3, 4, ...,
 * which the commands name as /proc/self/fd/N; the guest names are
 * banger's own, checked to be plain words; the commands come on stdin
 * (-f -), and the image's path is an argv element, never a command.
 * debugfs reports a failed command and goes on, exiting 0, so every
 * result is read back and checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bg-cli.h"
#include "bg-error.h"
#include "bg-fd.h"
#include "bg-guest-insert.h"
#include "bg-guest-programs.h"
#include "bg-spawn.h"

#define GUEST_DIR "/usr/libexec/banger"
#define FIRST_FD  3

/* Reads the fields of one `stat` of debugfs:
 *   Inode: 16   Type: regular    Mode:  0755   Flags: 0x80000
 *   User:     0   Group:     0   Project:     0   Size: 35664
 * FALSE when the text is not that (debugfs prints nothing on stdout for
 * a path that does not exist). */
gboolean
bg_debugfs_parse_stat (const char    *text,
                       BgDebugfsStat *out)
{
  g_auto(GStrv) lines = g_strsplit (text ? text : "", "\n", 0);
  gboolean have_inode = FALSE, have_user = FALSE;

  memset (out, 0, sizeof *out);
  for (guint i = 0; lines[i] && !(have_inode && have_user); i++)
    {
      const char *l = lines[i];

      if (!have_inode && g_str_has_prefix (l, "Inode: "))
        have_inode = sscanf (l, "Inode: %*u Type: %15s Mode: %o", out->type, &out->mode) == 2;
      else if (!have_user && g_str_has_prefix (l, "User: "))
        {
          unsigned long long size;

          /* Project is absent on filesystems without the feature. */
          have_user = (sscanf (l, "User: %" SCNu32 " Group: %" SCNu32 " Project: %*u Size: %llu",
                               &out->uid, &out->gid, &size) == 3 ||
                        sscanf (l, "User: %" SCNu32 " Group: %" SCNu32 " Size: %llu",
                                &out->uid, &out->gid, &size) == 3);
          out->size = size;
        }
    }
  return have_inode && have_user && out->mode <= 07777;
}

/* A name debugfs reads as one plain word: its parser acts on quotes,
 * spaces and '#', and a '/' would make a directory entry with a slash. */
static gboolean
plain_name (const char *name)
{
  if (name[0] == '\0' || name[0] == '.' || name[0] == '-' || strlen (name) > 64)
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      return FALSE;
  return TRUE;
}

/* The commands that write @names (the programs inherited as descriptors
 * 3, 4, ... in that order) into GUEST_DIR, root-owned, mode 0755. NULL
 * when a name is not a plain word. */
char *
bg_guest_insert_script (const char * const *names)
{
  g_autoptr(GString) s = g_string_new ("cd " GUEST_DIR "\n");

  for (guint i = 0; names[i]; i++)
    {
      if (!plain_name (names[i]))
        return NULL;
      g_string_append_printf (s, "write /proc/self/fd/%u %s\n", FIRST_FD + i, names[i]);
      g_string_append_printf (s, "sif %s mode 0100755\nsif %s uid 0\nsif %s gid 0\n", names[i], names[i],
                              names[i]);
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

/* debugfs -w -f - @rootfs with @script on its stdin and @fds (taken,
 * whatever happens) as its descriptors 3, 4, ...; what it said on
 * stderr (where it reports failed commands) in @said. */
static gboolean
run_debugfs (const char  *rootfs,
             const char  *script,
             int         *fds,
             guint        n_fds,
             char       **said,
             GError     **error)
{
  g_autofree char *program = bg_program_find ("debugfs");
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                               G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr(GSubprocess) proc = NULL;
  g_autofree char *err = NULL;

  for (guint i = 0; i < n_fds; i++)
    {
      g_subprocess_launcher_take_fd (launcher, fds[i], FIRST_FD + i);
      fds[i] = -1;
    }
  if (program == NULL)
    return bg_programs_require ((const char * const[]) { "debugfs", NULL }, "image import", error);
  proc = g_subprocess_launcher_spawn (launcher, error, program, "-w", "-f", "-", rootfs, NULL);
  if (proc == NULL || !g_subprocess_communicate_utf8 (proc, script, NULL, NULL, &err, error))
    return FALSE;
  if (bg_interrupted)
    {
      g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED, "interrupted");
      return FALSE;
    }
  if (!g_subprocess_get_successful (proc))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "debugfs failed: %.300s", g_strstrip (err ? err : ""));
      return FALSE;
    }
  *said = g_steal_pointer (&err);
  return TRUE;
}

/* What debugfs said, for a reason people read: its version banner and
 * the "already exists" of directories it was asked to make dropped. */
static char *
summary (const char *said)
{
  g_auto(GStrv) lines = g_strsplit (said ? said : "", "\n", 0);
  g_autoptr(GString) s = g_string_new (NULL);

  for (guint i = 0; lines[i]; i++)
    if (lines[i][0] != '\0' && !g_str_has_prefix (lines[i], "debugfs ") && strstr (lines[i], "already exists") == NULL)
      g_string_append_printf (s, "%s%s", s->len ? "; " : "", g_strstrip (lines[i]));
  if (s->len > 300)
    g_string_truncate (s, 300);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static gboolean
stat_in_image (const char    *rootfs,
               const char    *path,
               BgDebugfsStat *st)
{
  g_autofree char *request = g_strconcat ("stat ", path, NULL);
  const char *argv[] = { "debugfs", "-R", request, rootfs, NULL };
  g_autofree char *out = NULL;

  return bg_spawn_run (argv, &out, NULL) && bg_debugfs_parse_stat (out, st);
}

/* The sha256 of what debugfs reads back from @path in @rootfs (its cat
 * writes the file's bytes to stdout); NULL when it cannot. A failed
 * write leaves an inode of the full size without its data, so only the
 * bytes prove it. */
static char *
sha256_in_image (const char *rootfs,
                 const char *path)
{
  g_autofree char *program = bg_program_find ("debugfs");
  g_autofree char *request = g_strconcat ("cat ", path, NULL);
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GBytes) out = NULL;

  if (program == NULL ||
      (proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, NULL, program,
                                "-R", request, rootfs, NULL)) == NULL ||
      !g_subprocess_communicate (proc, NULL, NULL, &out, NULL, NULL) || !g_subprocess_get_successful (proc))
    return NULL;
  return g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, out);
}

/* One guest program: the host's file, opened for debugfs to read. */
typedef struct {
  const char *name;      /* in GUEST_DIR */
  int         fd;
  guint64     size;
  char       *sha256;
} Program;

/* The host's program @path into @p; FALSE when it is not there to add. */
static gboolean
open_program (const char *path,
              const char *name,
              Program    *p)
{
  g_auto(BgFd) fd = open (path, O_RDONLY | O_CLOEXEC);
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 buf[65536];
  struct stat st;
  off_t off = 0;
  ssize_t n;

  /* Guest programs are a few MiB; anything far larger is not one. */
  if (fd < 0 || fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) || (st.st_mode & 0111) == 0 ||
      st.st_size > (256 << 20))
    return FALSE;
  while ((n = pread (fd, buf, sizeof buf, off)) > 0)
    {
      g_checksum_update (sum, buf, n);
      off += n;
    }
  if (n < 0 || off != st.st_size)
    return FALSE;
  p->name = name;
  p->size = st.st_size;
  p->sha256 = g_strdup (g_checksum_get_string (sum));
  p->fd = g_steal_fd (&fd);
  return TRUE;
}

/* Whether @p is in @rootfs as it must be: root's, 0755, its bytes. */
static gboolean
program_in_image (const char    *rootfs,
                  const Program *p)
{
  g_autofree char *path = g_strconcat (GUEST_DIR "/", p->name, NULL);
  g_autofree char *sum = NULL;
  BgDebugfsStat st;

  if (!stat_in_image (rootfs, path, &st) || !g_str_equal (st.type, "regular") || st.mode != 0755 || st.uid != 0 ||
      st.gid != 0 || st.size != p->size)
    return FALSE;
  sum = sha256_in_image (rootfs, path);
  return g_strcmp0 (sum, p->sha256) == 0;
}

/* @programs (their fds taken) into GUEST_DIR of @rootfs. */
static gboolean
insert (const char  *rootfs,
        Program     *programs,
        guint        n,
        char       **copy_reason,
        GError     **error)
{
  const char *names[4] = { NULL };
  int fds[3] = { -1, -1, -1 };
  g_autofree char *said = NULL, *script = NULL;
  BgDebugfsStat st;
  gboolean ok = TRUE;

  g_assert (n <= G_N_ELEMENTS (fds));
  for (guint i = 0; i < n; i++)
    {
      names[i] = programs[i].name;
      fds[i] = g_steal_fd (&programs[i].fd);
    }
  script = bg_guest_insert_script (names);
  g_assert (script != NULL);

  /* Its directory first, and checked, so that the writes cannot land
   * anywhere else (debugfs's cd fails quietly). */
  if (!run_debugfs (rootfs, "mkdir /usr\nmkdir /usr/libexec\nmkdir " GUEST_DIR "\n", NULL, 0, &said, error))
    goto fail;
  if (!stat_in_image (rootfs, GUEST_DIR, &st) || !g_str_equal (st.type, "directory"))
    {
      g_autofree char *why = summary (said);

      *copy_reason = g_strdup_printf ("%s could not be made in the root filesystem (%s)", GUEST_DIR,
                                      *why ? why : "it is not a directory");
      for (guint i = 0; i < n; i++)
        bg_fd_clear (&fds[i]);
      return TRUE;
    }

  g_clear_pointer (&said, g_free);
  if (!run_debugfs (rootfs, script, fds, n, &said, error))
    return FALSE;
  for (guint i = 0; i < n && ok; i++)
    ok = program_in_image (rootfs, &programs[i]);
  if (!ok)
    {
      /* Whatever was written goes (no room, most often: debugfs then
       * leaves an inode of the full size without its data). */
      g_autoptr(GString) rm = g_string_new ("cd " GUEST_DIR "\n");
      g_autofree char *why = summary (said), *ignored = NULL;

      for (guint i = 0; i < n; i++)
        g_string_append_printf (rm, "rm %s\n", names[i]);
      if (!run_debugfs (rootfs, rm->str, NULL, 0, &ignored, error))
        return FALSE;
      *copy_reason = g_strdup_printf ("banger's guest programs could not be written into banger's copy of the "
                                      "root filesystem (%s)", *why ? why : "debugfs did not say why");
    }
  return TRUE;

fail:
  for (guint i = 0; i < n; i++)
    bg_fd_clear (&fds[i]);
  return FALSE;
}

/* Whether @rootfs boots systemd: its /sbin/init is the link systemd-sysv
 * (or the distribution's equivalent) makes to .../systemd/systemd, and
 * that program is there. debugfs resolves the links of the directories
 * on the way (/sbin -> usr/sbin), not the last one, which is read here. */
static gboolean
boots_systemd (const char *rootfs)
{
  const char *argv[] = { "debugfs", "-R", "stat /sbin/init", rootfs, NULL };
  const char *programs[] = { "/usr/lib/systemd/systemd", "/lib/systemd/systemd" };
  g_autofree char *out = NULL;
  const char *dest;
  BgDebugfsStat st;

  if (!bg_spawn_run (argv, &out, NULL) || !bg_debugfs_parse_stat (out, &st) || !g_str_equal (st.type, "symlink") ||
      (dest = strstr (out, "Fast link dest: \"")) == NULL)
    return FALSE;
  dest += strlen ("Fast link dest: \"");
  if (!(g_str_has_prefix (dest, "/lib/systemd/systemd\"") || g_str_has_prefix (dest, "/usr/lib/systemd/systemd\"") ||
        g_str_has_prefix (dest, "../lib/systemd/systemd\"")))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (programs); i++)
    if (stat_in_image (rootfs, programs[i], &st) && g_str_equal (st.type, "regular"))
      return TRUE;
  return FALSE;
}

static gboolean
has_cloud_init (const char *rootfs)
{
  BgDebugfsStat st;

  return stat_in_image (rootfs, "/usr/bin/cloud-init", &st) && g_str_equal (st.type, "regular");
}

/* banger-guest-setup's unit into @rootfs, enabled (the link in
 * sysinit.target.wants), both checked afterwards. */
static gboolean
insert_unit (const char  *rootfs,
             GError     **error)
{
  static const char dirs[] =
    "mkdir /usr\nmkdir /usr/lib\nmkdir /usr/lib/systemd\nmkdir /usr/lib/systemd/system\n"
    "mkdir /etc\nmkdir /etc/systemd\nmkdir /etc/systemd/system\nmkdir /etc/systemd/system/sysinit.target.wants\n";
  static const char script[] =
    "cd /usr/lib/systemd/system\n"
    "rm banger-guest-setup.service\n"
    "write /proc/self/fd/3 banger-guest-setup.service\n"
    "sif banger-guest-setup.service mode 0100644\n"
    "sif banger-guest-setup.service uid 0\n"
    "sif banger-guest-setup.service gid 0\n"
    "cd /etc/systemd/system/sysinit.target.wants\n"
    "rm banger-guest-setup.service\n"
    "symlink banger-guest-setup.service " BG_GUEST_SETUP_UNIT "\n";
  gsize len = strlen (bg_guest_programs_setup_unit);
  g_autofree char *said = NULL, *why = NULL;
  BgDebugfsStat st;
  g_auto(BgFd) fd = -1;

  if (!run_debugfs (rootfs, dirs, NULL, 0, &said, error))
    return FALSE;
  /* debugfs's cd fails quietly: the directories must be there first. */
  if (!stat_in_image (rootfs, "/usr/lib/systemd/system", &st) || !g_str_equal (st.type, "directory") ||
      !stat_in_image (rootfs, "/etc/systemd/system/sysinit.target.wants", &st) || !g_str_equal (st.type, "directory"))
    goto failed;
  g_clear_pointer (&said, g_free);
  if ((fd = memfd_create ("banger-guest-setup.service", MFD_CLOEXEC)) < 0)
    return bg_error_errno (error, errno, "cannot hold", "banger-guest-setup.service");
  if (write (fd, bg_guest_programs_setup_unit, len) != (ssize_t) len)
    return bg_error_errno (error, errno, "cannot hold", "banger-guest-setup.service");
  if (!run_debugfs (rootfs, script, &fd, 1, &said, error))
    return FALSE;
  if (stat_in_image (rootfs, BG_GUEST_SETUP_UNIT, &st) && g_str_equal (st.type, "regular") && st.mode == 0644 &&
      st.uid == 0 && st.size == len &&
      stat_in_image (rootfs, BG_GUEST_SETUP_WANTS, &st) && g_str_equal (st.type, "symlink"))
    return TRUE;

failed:
  why = summary (said);
  g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
               "banger-guest-setup's unit could not be written into banger's copy of the root filesystem (%s)",
               *why ? why : "a directory on the way is not a directory");
  return FALSE;
}

/* banger-init, and banger-agent where banger has one, into @rootfs
 * (banger's own copy), unless the image has banger-init already (an
 * image banger built); banger-guest-setup and its enabled unit too where
 * the root boots systemd and has no cloud-init. TRUE with *copy_reason
 * NULL when the image now has them; TRUE with *copy_reason saying why
 * when they could not be added (the image's VMs are then copies); FALSE
 * when interrupted, when debugfs cannot be run, or when the unit cannot
 * be written (the image would boot unreachable). */
gboolean
bg_guest_insert_programs (const char  *rootfs,
                          char       **copy_reason,
                          GError     **error)
{
  g_autofree char *init = bg_guest_programs_init_path ();
  g_autofree char *agent = bg_guest_programs_agent_path ();
  g_autofree char *setup = bg_guest_programs_setup_path ();
  Program programs[3] = { { NULL, -1, 0, NULL }, { NULL, -1, 0, NULL }, { NULL, -1, 0, NULL } };
  gboolean with_setup = FALSE;
  BgDebugfsStat st;
  guint n = 0;
  gboolean ok;

  *copy_reason = NULL;
  if (stat_in_image (rootfs, GUEST_DIR "/banger-init", &st) && g_str_equal (st.type, "regular"))
    return TRUE;
  if (!open_program (init, "banger-init", &programs[n]))
    {
      *copy_reason = g_strdup_printf ("banger-init (%s) is not installed, so it could not be added", init);
      return TRUE;
    }
  n++;
  /* The agent where banger has one, as image build and import --oci do. */
  if (open_program (agent, "banger-agent", &programs[n]))
    n++;
  if (boots_systemd (rootfs) && !has_cloud_init (rootfs) && open_program (setup, "banger-guest-setup", &programs[n]))
    {
      n++;
      with_setup = TRUE;
    }
  ok = insert (rootfs, programs, n, copy_reason, error) &&
       (!with_setup || *copy_reason != NULL || insert_unit (rootfs, error));
  for (guint i = 0; i < n; i++)
    g_free (programs[i].sha256);
  return ok;
}
