/* `banger vm cp` through the guest agent, end to end: the real CLI as an
 * unprivileged user, the real mechanism, the test VMM's hybrid vsock,
 * and banger-agent as the stand-in guest (as in test-exec), run by the
 * test as root: the "guest's" files are the host's, in a directory of
 * the test's. The VM user is set to user B, so ownership shows. And a
 * hostile stand-in agent that sends a name climbing out of the target,
 * or an oversized frame: refused, nothing written outside the target;
 * and one of version 1, which makes vm cp fall back to scp. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "bg-agent-proto.h"
#include "harness.h"

typedef struct {
  BgHarness *h;
  char      *home;       /* user A's: the host side of every copy */
  char      *vsock;
  char      *guest;      /* where the stand-in agent listens */
  char      *groot;      /* the "guest's" directory for the copies */
  guint32    vmm_uid;
  GPid       agent;
} Fixture;

static guint32
uid_of_process (gint64 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/status", pid);
  g_autofree char *text = NULL;
  const char *line;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  line = strstr (text, "\nUid:");
  g_assert_nonnull (line);
  return (guint32) g_ascii_strtoull (line + 5, NULL, 10);
}

/* A file of user A's, with @mode. */
static char *
user_file (Fixture *f, const char *name, const void *data, gsize len, mode_t mode)
{
  char *path = g_build_filename (f->home, name, NULL);

  g_assert_true (g_file_set_contents (path, data, (gssize) len, NULL));
  g_assert_no_errno (chmod (path, mode));
  g_assert_no_errno (chown (path, bg_harness_uid (BG_TEST_USER_A), (gid_t) -1));
  return path;
}

static void
setup (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL, *conf_dir = NULL, *conf = NULL;
  g_autoptr(JsonParser) p = json_parser_new ();
  JsonObject *o;

  f->h = bg_harness_start (60);
  bg_harness_set_group_rule (f->h, TRUE);
  bg_harness_use_vmm (f->h, g_getenv ("BANGER_TEST_VMM"));
  bg_harness_import_test_image (f->h, BG_TEST_USER_A);
  f->home = g_strdup_printf ("%s/home-%s", f->h->tmp, BG_TEST_USER_A);
  /* The VM's user is B: what is copied in is B's. */
  conf_dir = g_build_filename (f->home, ".config", "banger", NULL);
  g_assert_no_errno (g_mkdir_with_parents (conf_dir, 0700));
  conf = g_build_filename (conf_dir, "banger.conf", NULL);
  {
    g_autofree char *text = g_strdup_printf ("[guest]\nuser = %s\n", BG_TEST_USER_B);
    g_assert_true (g_file_set_contents (conf, text, -1, NULL));
  }
  {
    g_autofree char *dot = g_build_filename (f->home, ".config", NULL);
    guint32 a = bg_harness_uid (BG_TEST_USER_A);

    g_assert_no_errno (chown (dot, a, (gid_t) -1));
    g_assert_no_errno (chown (conf_dir, a, (gid_t) -1));
    g_assert_no_errno (chown (conf, a, (gid_t) -1));
  }
  if (bg_harness_cli (f->h, &out, &err, "vm", "up", "dev", "--no-wait", "--json", NULL) != 0)
    g_error ("vm up failed: %s", err);
  g_assert_true (json_parser_load_from_data (p, out, -1, NULL));
  o = json_node_get_object (json_parser_get_root (p));
  f->vsock = g_strdup (json_object_get_string_member (o, "vsock_socket"));
  f->vmm_uid = uid_of_process (json_object_get_int_member (o, "pid"));
  f->guest = g_strdup_printf ("%s.guest_52", f->vsock);
  f->groot = g_build_filename (f->h->tmp, "guest-files", NULL);
  g_assert_no_errno (g_mkdir (f->groot, 0755));
  {
    const char *argv[] = { g_getenv ("BANGER_AGENT"), "--listen-unix", f->guest, NULL };
    g_autoptr(GError) error = NULL;
    gint64 deadline = bg_test_deadline (10);

    if (!g_spawn_async (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &f->agent, &error))
      g_error ("%s", error->message);
    while (!g_file_test (f->guest, G_FILE_TEST_EXISTS) && g_get_monotonic_time () < deadline)
      g_usleep (10000);
  }
  g_assert_true (g_file_test (f->guest, G_FILE_TEST_EXISTS));
  g_assert_no_errno (chown (f->guest, f->vmm_uid, 0));
}

static void
stop_agent (Fixture *f)
{
  if (f->agent == 0)
    return;
  kill (f->agent, SIGTERM);
  waitpid (f->agent, NULL, 0);
  g_spawn_close_pid (f->agent);
  f->agent = 0;
  g_unlink (f->guest);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL;

  stop_agent (f);
  bg_harness_cli (f->h, &out, &err, "vm", "rm", "dev", "--force", NULL);
  bg_harness_stop (f->h);
  g_free (f->home);
  g_free (f->vsock);
  g_free (f->guest);
  g_free (f->groot);
}

static char *
sha256_of (const char *path)
{
  g_autofree char *data = NULL;
  gsize len;

  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, len);
}

static void
assert_file (const char *path, const char *content, mode_t mode, guint32 uid)
{
  g_autofree char *got = NULL;
  struct stat st;

  g_assert_no_errno (lstat (path, &st));
  g_assert_true (S_ISREG (st.st_mode));
  g_assert_cmpint (st.st_mode & 07777, ==, mode);
  g_assert_cmpuint (st.st_uid, ==, uid);
  g_assert_true (g_file_get_contents (path, &got, NULL, NULL));
  g_assert_cmpstr (got, ==, content);
}

/* A file in and back out, its mode kept both ways: in the guest it is
 * the VM user's, out of it the caller's. Into a guest directory it
 * takes its own name; to a new path, that path. */
static void
test_file_both_ways_with_mode (Fixture *f, gconstpointer data)
{
  g_autofree char *src = user_file (f, "script.sh", "#!/bin/sh\necho hi\n", 18, 0750);
  g_autofree char *in_dir = g_build_filename (f->groot, "script.sh", NULL);
  g_autofree char *renamed = g_build_filename (f->groot, "renamed", NULL);
  g_autofree char *to_dir = g_strdup_printf ("dev:%s", f->groot);
  g_autofree char *to_new = g_strdup_printf ("dev:%s", renamed);
  g_autofree char *back = g_build_filename (f->home, "back.sh", NULL);
  g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL, *o3 = NULL, *e3 = NULL;
  guint32 b = bg_harness_uid (BG_TEST_USER_B), a = bg_harness_uid (BG_TEST_USER_A);

  if (bg_harness_cli (f->h, &o1, &e1, "vm", "cp", src, to_dir, NULL) != 0)
    g_error ("vm cp in failed: %s", e1);
  assert_file (in_dir, "#!/bin/sh\necho hi\n", 0750, b);
  if (bg_harness_cli (f->h, &o2, &e2, "vm", "cp", src, to_new, NULL) != 0)
    g_error ("vm cp in (new name) failed: %s", e2);
  assert_file (renamed, "#!/bin/sh\necho hi\n", 0750, b);
  /* Out: a mode that is not the default, and the caller owns it. */
  g_assert_no_errno (chmod (renamed, 0604));
  if (bg_harness_cli (f->h, &o3, &e3, "vm", "cp", to_new, back, NULL) != 0)
    g_error ("vm cp out failed: %s", e3);
  assert_file (back, "#!/bin/sh\necho hi\n", 0604, a);
  /* No temporary names stay behind on either side. */
  {
    g_autoptr(GDir) d = g_dir_open (f->groot, 0, NULL);
    const char *n;

    while ((n = g_dir_read_name (d)) != NULL)
      g_assert_false (g_str_has_prefix (n, ".banger-cp"));
  }
}

/* A tree with -r, in and back out: names, contents, modes. */
static void
test_tree_both_ways (Fixture *f, gconstpointer data)
{
  g_autofree char *tree = g_build_filename (f->home, "tree", NULL);
  g_autofree char *sub = g_build_filename (tree, "sub", NULL);
  g_autofree char *to = g_strdup_printf ("dev:%s", f->groot);
  g_autofree char *from = g_strdup_printf ("dev:%s/tree", f->groot);
  g_autofree char *outdir = g_build_filename (f->home, "out", NULL);
  g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL, *o3 = NULL, *e3 = NULL;
  g_autofree char *g_top = NULL, *g_deep = NULL, *h_top = NULL, *h_deep = NULL, *g_sub = NULL, *h_sub = NULL;
  guint32 a = bg_harness_uid (BG_TEST_USER_A), b = bg_harness_uid (BG_TEST_USER_B);
  struct stat st;

  g_assert_no_errno (g_mkdir (tree, 0755));
  g_assert_no_errno (g_mkdir (sub, 0710));
  g_assert_no_errno (chown (tree, a, (gid_t) -1));
  g_assert_no_errno (chown (sub, a, (gid_t) -1));
  g_free (user_file (f, "tree/top.txt", "top\n", 4, 0644));
  g_free (user_file (f, "tree/sub/deep.txt", "deep\n", 5, 0600));

  /* Without -r a directory is refused, naming the option. */
  g_assert_cmpint (bg_harness_cli (f->h, &o1, &e1, "vm", "cp", tree, to, NULL), ==, 2);
  g_assert_nonnull (strstr (e1, "copy it with -r"));

  if (bg_harness_cli (f->h, &o2, &e2, "vm", "cp", "-r", tree, to, NULL) != 0)
    g_error ("vm cp -r in failed: %s", e2);
  g_top = g_build_filename (f->groot, "tree", "top.txt", NULL);
  g_deep = g_build_filename (f->groot, "tree", "sub", "deep.txt", NULL);
  g_sub = g_build_filename (f->groot, "tree", "sub", NULL);
  assert_file (g_top, "top\n", 0644, b);
  assert_file (g_deep, "deep\n", 0600, b);
  g_assert_no_errno (stat (g_sub, &st));
  g_assert_cmpint (st.st_mode & 07777, ==, 0710);
  g_assert_cmpuint (st.st_uid, ==, b);

  g_assert_no_errno (g_mkdir (outdir, 0700));
  g_assert_no_errno (chown (outdir, a, (gid_t) -1));
  if (bg_harness_cli (f->h, &o3, &e3, "vm", "cp", "-r", from, outdir, NULL) != 0)
    g_error ("vm cp -r out failed: %s", e3);
  h_top = g_build_filename (outdir, "tree", "top.txt", NULL);
  h_deep = g_build_filename (outdir, "tree", "sub", "deep.txt", NULL);
  h_sub = g_build_filename (outdir, "tree", "sub", NULL);
  assert_file (h_top, "top\n", 0644, a);
  assert_file (h_deep, "deep\n", 0600, a);
  g_assert_no_errno (stat (h_sub, &st));
  g_assert_cmpint (st.st_mode & 07777, ==, 0710);
}

/* 20 MiB, many windows' worth, arrives whole both ways. */
static void
test_20_mib_checksum_both_ways (Fixture *f, gconstpointer data)
{
  const gsize size = 20u * 1024 * 1024;
  g_autofree guint8 *bytes = g_malloc (size);
  g_autoptr(GRand) rand = g_rand_new_with_seed (24);
  g_autofree char *src = NULL, *want = NULL, *in_guest = NULL, *back = NULL, *h1 = NULL, *h2 = NULL;
  g_autofree char *to = g_strdup_printf ("dev:%s/big", f->groot);
  g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL;

  for (gsize i = 0; i < size; i += 4)
    {
      guint32 v = g_rand_int (rand);
      memcpy (bytes + i, &v, 4);
    }
  src = user_file (f, "big", bytes, size, 0644);
  want = g_compute_checksum_for_data (G_CHECKSUM_SHA256, bytes, size);
  if (bg_harness_cli (f->h, &o1, &e1, "vm", "cp", src, to, NULL) != 0)
    g_error ("vm cp in failed: %s", e1);
  in_guest = g_build_filename (f->groot, "big", NULL);
  h1 = sha256_of (in_guest);
  g_assert_cmpstr (h1, ==, want);
  back = g_build_filename (f->home, "big-back", NULL);
  if (bg_harness_cli (f->h, &o2, &e2, "vm", "cp", to, back, NULL) != 0)
    g_error ("vm cp out failed: %s", e2);
  h2 = sha256_of (back);
  g_assert_cmpstr (h2, ==, want);
}

/* A guest path that is not there: the guest's reason, with the path,
 * and nothing made here. Into a missing guest directory: named too. */
static void
test_missing_guest_path (Fixture *f, gconstpointer data)
{
  g_autofree char *src = user_file (f, "small", "x", 1, 0644);
  g_autofree char *dst = g_build_filename (f->home, "never", NULL);
  g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL, *o3 = NULL, *e3 = NULL;
  g_autofree char *gdir = g_strdup_printf ("dev:%s", f->groot);

  g_assert_cmpint (bg_harness_cli (f->h, &o1, &e1, "vm", "cp", "dev:/no/such/file", dst, NULL), ==, 1);
  g_assert_nonnull (strstr (e1, "/no/such/file: No such file or directory"));
  g_assert_false (g_file_test (dst, G_FILE_TEST_EXISTS));
  {
    g_autoptr(GDir) d = g_dir_open (f->home, 0, NULL);
    const char *n;

    while ((n = g_dir_read_name (d)) != NULL)
      g_assert_false (g_str_has_prefix (n, ".banger-cp"));
  }
  g_assert_cmpint (bg_harness_cli (f->h, &o2, &e2, "vm", "cp", src, "dev:/no/such/dir/file", NULL), ==, 1);
  g_assert_nonnull (strstr (e2, "/no/such/dir: No such file or directory"));
  /* A guest directory without -r names the option. */
  g_assert_cmpint (bg_harness_cli (f->h, &o3, &e3, "vm", "cp", gdir, dst, NULL), ==, 1);
  g_assert_nonnull (strstr (e3, "is a directory (copy it with -r)"));
}

/* ---- a hostile guest ---- */

typedef enum { CLIMB, OVERSIZE, VERSION1, STALL } Hostility;

typedef struct {
  int       listener;
  Hostility how;
} Hostile;

static gboolean
read_exact (int fd, guint8 *buf, gsize len)
{
  while (len > 0)
    {
      ssize_t n = read (fd, buf, len);

      if (n <= 0)
        return FALSE;
      buf += n;
      len -= (gsize) n;
    }
  return TRUE;
}

/* One frame's header; its payload is read and dropped (a HELLO's
 * version is kept in *@version). */
static gboolean
read_frame_version (int fd, guint16 *type, guint32 *session, guint32 *version)
{
  guint8 h[12];
  guint32 len;
  g_autofree guint8 *payload = NULL;

  if (!read_exact (fd, h, 12))
    return FALSE;
  len = (guint32) h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3];
  g_assert_cmpuint (len, <=, BG_AGENT_MAX_PAYLOAD);
  *type = (guint16) (h[4] << 8 | h[5]);
  *session = (guint32) h[8] << 24 | h[9] << 16 | h[10] << 8 | h[11];
  payload = g_malloc (len + 1);
  if (!read_exact (fd, payload, len))
    return FALSE;
  if (version && *type == BG_AGENT_HELLO && len == 10)
    *version = (guint32) payload[6] << 24 | payload[7] << 16 | payload[8] << 8 | payload[9];
  return TRUE;
}

static gboolean
read_frame (int fd, guint16 *type, guint32 *session)
{
  return read_frame_version (fd, type, session, NULL);
}

/* Frames built by hand: the codec's encoder would refuse these. */
static void
put_header (GByteArray *b, guint32 len, guint16 type, guint32 session)
{
  guint8 h[12] = { len >> 24, len >> 16, len >> 8, len, type >> 8, type, 0, 0,
                   session >> 24, session >> 16, session >> 8, session };
  g_byte_array_append (b, h, 12);
}

static void
put_field (GByteArray *b, guint16 tag, const void *v, guint32 n)
{
  guint8 f[6] = { tag >> 8, tag, n >> 24, n >> 16, n >> 8, n };
  g_byte_array_append (b, f, 6);
  g_byte_array_append (b, v, n);
}

static void
put_u32 (GByteArray *b, guint16 tag, guint32 v)
{
  guint8 x[4] = { v >> 24, v >> 16, v >> 8, v };
  put_field (b, tag, x, 4);
}

static void
end_frame (GByteArray *b, gsize start)
{
  guint32 len = b->len - start - 12;

  b->data[start] = len >> 24;
  b->data[start + 1] = len >> 16;
  b->data[start + 2] = len >> 8;
  b->data[start + 3] = len;
}

static gpointer
hostile_serve (gpointer data)
{
  Hostile *hs = data;
  int fd;

  while ((fd = accept4 (hs->listener, NULL, NULL, SOCK_CLOEXEC)) >= 0)
    {
      g_autoptr(GByteArray) b = g_byte_array_new ();
      guint16 type;
      guint32 session;
      gsize start;

      guint32 version = 0;

      /* An agent of version 1 refuses 2 and closes; it serves 1. */
      if (g_atomic_int_get ((gint *) &hs->how) == VERSION1)
        {
          if (read_frame_version (fd, &type, &session, &version) && type == BG_AGENT_HELLO && version == 1)
            {
              start = b->len;
              put_header (b, 0, BG_AGENT_HELLO, 0);
              put_u32 (b, BG_AGENT_F_VERSION, 1);
              end_frame (b, start);
            }
          else
            {
              start = b->len;
              put_header (b, 0, BG_AGENT_ERROR, 0);
              put_field (b, BG_AGENT_F_MESSAGE, "version 2 is not supported", 26);
              end_frame (b, start);
            }
          g_assert_cmpint (write (fd, b->data, b->len), ==, (gssize) b->len);
          if (version == 1)
            {
              guint8 sink[4096];
              while (read (fd, sink, sizeof sink) > 0)
                ;
            }
          close (fd);
          continue;
        }
      /* HELLO: answered with version 2, as a real agent would. */
      if (read_frame (fd, &type, &session) && type == BG_AGENT_HELLO)
        {
          start = b->len;
          put_header (b, 0, BG_AGENT_HELLO, 0);
          put_u32 (b, BG_AGENT_F_VERSION, 2);
          end_frame (b, start);
          g_assert_cmpint (write (fd, b->data, b->len), ==, (gssize) b->len);
          g_byte_array_set_size (b, 0);
        }
      if (read_frame (fd, &type, &session) && type == BG_AGENT_GET)
        {
          if (hs->how == CLIMB)
            {
              /* A directory, then a file named ../x inside it. */
              start = b->len;
              put_header (b, 0, BG_AGENT_ENTRY, session);
              put_u32 (b, BG_AGENT_F_KIND, BG_AGENT_KIND_DIR);
              put_u32 (b, BG_AGENT_F_MODE, 0755);
              end_frame (b, start);
              start = b->len;
              put_header (b, 0, BG_AGENT_ENTRY, session);
              put_u32 (b, BG_AGENT_F_KIND, BG_AGENT_KIND_FILE);
              put_field (b, BG_AGENT_F_NAME, "../x", 4);
              put_u32 (b, BG_AGENT_F_MODE, 0644);
              end_frame (b, start);
              start = b->len;
              put_header (b, 0, BG_AGENT_DATA, session);
              put_u32 (b, BG_AGENT_F_STREAM, BG_AGENT_STDOUT);
              put_field (b, BG_AGENT_F_BYTES, "pwned", 5);
              end_frame (b, start);
              start = b->len;
              put_header (b, 0, BG_AGENT_EOF, session);
              put_u32 (b, BG_AGENT_F_STREAM, BG_AGENT_STDOUT);
              end_frame (b, start);
            }
          else if (g_atomic_int_get ((gint *) &hs->how) == STALL)
            {
              /* A file's first bytes, then nothing more, ever. */
              start = b->len;
              put_header (b, 0, BG_AGENT_ENTRY, session);
              put_u32 (b, BG_AGENT_F_KIND, BG_AGENT_KIND_FILE);
              put_u32 (b, BG_AGENT_F_MODE, 0644);
              end_frame (b, start);
              start = b->len;
              put_header (b, 0, BG_AGENT_DATA, session);
              put_u32 (b, BG_AGENT_F_STREAM, BG_AGENT_STDOUT);
              put_field (b, BG_AGENT_F_BYTES, "partial", 7);
              end_frame (b, start);
            }
          else
            {
              /* A file, then a DATA frame claiming 1 GiB. */
              start = b->len;
              put_header (b, 0, BG_AGENT_ENTRY, session);
              put_u32 (b, BG_AGENT_F_KIND, BG_AGENT_KIND_FILE);
              put_u32 (b, BG_AGENT_F_MODE, 0644);
              end_frame (b, start);
              put_header (b, 1u << 30, BG_AGENT_DATA, session);
              put_u32 (b, BG_AGENT_F_STREAM, BG_AGENT_STDOUT);
            }
          if (write (fd, b->data, b->len) < 0)
            g_test_message ("hostile agent: %s", g_strerror (errno));
        }
      /* Until the host hangs up. */
      {
        guint8 sink[4096];
        while (read (fd, sink, sizeof sink) > 0)
          ;
      }
      close (fd);
    }
  return NULL;
}

/* The stand-in agent replaced by a hostile one on the same socket. */
static GThread *
hostile_start (Fixture *f, Hostile *hs)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };

  stop_agent (f);
  g_assert_cmpuint (strlen (f->guest), <, sizeof sa.sun_path);
  strcpy (sa.sun_path, f->guest);
  hs->listener = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_no_errno (bind (hs->listener, (struct sockaddr *) &sa, sizeof sa));
  g_assert_no_errno (listen (hs->listener, 4));
  g_assert_no_errno (chown (f->guest, f->vmm_uid, 0));
  return g_thread_new ("hostile-agent", hostile_serve, hs);
}

static void
hostile_stop (Fixture *f, Hostile *hs, GThread *thread)
{
  shutdown (hs->listener, SHUT_RDWR);
  close (hs->listener);
  g_thread_join (thread);
  g_unlink (f->guest);
}

static void
test_hostile_agent (Fixture *f, gconstpointer data)
{
  Hostile hs = { -1, CLIMB };
  g_autofree char *outdir = g_build_filename (f->home, "target", NULL);
  g_autofree char *climbed = g_build_filename (f->home, "x", NULL);
  g_autofree char *climbed2 = g_build_filename (outdir, "x", NULL);
  g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL, *o3 = NULL, *e3 = NULL;
  g_autoptr(GThread) thread = NULL;

  g_assert_no_errno (g_mkdir (outdir, 0700));
  g_assert_no_errno (chown (outdir, bg_harness_uid (BG_TEST_USER_A), (gid_t) -1));
  thread = hostile_start (f, &hs);

  /* ../x: refused by the codec as an unsafe NAME; nothing outside. */
  g_assert_cmpint (bg_harness_cli (f->h, &o1, &e1, "vm", "cp", "-r", "dev:/srv/tree", outdir, NULL), ==, 1);
  g_assert_nonnull (strstr (e1, "malformed frame"));
  g_assert_false (g_file_test (climbed, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (climbed2, G_FILE_TEST_EXISTS));

  /* A frame longer than the protocol allows: refused from its header. */
  g_atomic_int_set ((gint *) &hs.how, OVERSIZE);
  g_assert_cmpint (bg_harness_cli (f->h, &o2, &e2, "vm", "cp", "dev:/srv/big", outdir, NULL), ==, 1);
  g_assert_nonnull (strstr (e2, "frame longer than the protocol allows"));
  /* The root of the first copy (its name the user's) may be there;
   * nothing else is, and no half-written file. */
  {
    g_autoptr(GDir) d = g_dir_open (outdir, 0, NULL);
    const char *n;

    while ((n = g_dir_read_name (d)) != NULL)
      if (!g_str_equal (n, "tree"))
        g_error ("%s appeared in the target", n);
  }
  {
    g_autofree char *tree = g_build_filename (outdir, "tree", NULL);
    g_autoptr(GDir) d = g_dir_open (tree, 0, NULL);

    if (d != NULL)
      g_assert_null (g_dir_read_name (d));
  }

  /* An agent of version 1 cannot transfer files: vm cp falls back to
   * scp (which finds no sshd in this stand-in guest). */
  g_atomic_int_set ((gint *) &hs.how, VERSION1);
  g_assert_cmpint (bg_harness_cli (f->h, &o3, &e3, "vm", "cp", "dev:/srv/big", outdir, NULL), ==, 1);
  g_assert_nonnull (strstr (e3, "scp"));

  hostile_stop (f, &hs, g_steal_pointer (&thread));
}

/* Ctrl-C in the middle of a copy out: no half-written file stays. */
static void
test_interrupted_copy_leaves_nothing (Fixture *f, gconstpointer data)
{
  Hostile hs = { -1, STALL };
  g_autofree char *outdir = g_build_filename (f->home, "target", NULL);
  g_autofree char *dst = g_build_filename (outdir, "big", NULL);
  const char *args[] = { "vm", "cp", "dev:/srv/big", dst, NULL };
  g_auto(GStrv) argv = bg_harness_cli_argv (BG_TEST_USER_A, args);
  g_auto(GStrv) envp = NULL;
  g_autofree char *runtime = g_strdup_printf ("%s/runtime-%s", f->h->tmp, BG_TEST_USER_A);
  g_autoptr(GError) error = NULL;
  GThread *thread;
  gint64 deadline;
  gboolean partial = FALSE;
  int status;
  GPid pid;

  g_assert_no_errno (g_mkdir (outdir, 0700));
  g_assert_no_errno (chown (outdir, bg_harness_uid (BG_TEST_USER_A), (gid_t) -1));
  thread = hostile_start (f, &hs);
  envp = bg_harness_cli_envp (f->h, f->home, runtime);
  if (!g_spawn_async (f->home, argv, envp, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
                      &error))
    g_error ("%s", error->message);
  /* The partial file is there (under its temporary name) once the
   * first bytes were written: then the copy is interrupted. */
  deadline = bg_test_deadline (60);
  while (!partial && g_get_monotonic_time () < deadline)
    {
      g_autoptr(GDir) d = g_dir_open (outdir, 0, NULL);
      const char *n;

      while ((n = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *path = g_build_filename (outdir, n, NULL);
          struct stat st;

          partial |= g_str_has_prefix (n, ".banger-cp") && stat (path, &st) == 0 && st.st_size == 7;
        }
      if (!partial)
        g_usleep (10000);
    }
  g_assert_true (partial);
  /* setpriv execs banger: the pid is banger's. */
  g_assert_no_errno (kill (pid, SIGINT));
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_spawn_close_pid (pid);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 1);
  {
    g_autoptr(GDir) d = g_dir_open (outdir, 0, NULL);
    g_assert_null (g_dir_read_name (d));
  }
  hostile_stop (f, &hs, thread);
}

static void
add_tests (void)
{
#define ADD(path, fn) g_test_add (path, Fixture, NULL, setup, fn, teardown)
  ADD ("/cp/file-both-ways-with-mode", test_file_both_ways_with_mode);
  ADD ("/cp/tree-both-ways", test_tree_both_ways);
  ADD ("/cp/20-mib-checksum-both-ways", test_20_mib_checksum_both_ways);
  ADD ("/cp/missing-guest-path", test_missing_guest_path);
  ADD ("/cp/hostile-agent", test_hostile_agent);
  ADD ("/cp/interrupted-copy-leaves-nothing", test_interrupted_copy_leaves_nothing);
}

int
main (int argc, char **argv)
{
  return bg_harness_main (&argc, &argv, add_tests);
}
