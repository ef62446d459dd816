#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "bg-error.h"
#include "bg-keypair.h"
#include "bg-drive.h"
#include "bg-ready.h"
#include "bg-known-hosts.h"
#include "bg-ssh.h"
#include "bg-sync.h"
#include "bg-spawn.h"
#include "guest-sample.h"

#include "../bg-test.h"

typedef BgGuestFixture Fixture;

static JsonObject *
parse_object (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

static void
test_config_drive_is_nocloud (Fixture *f, gconstpointer data)
{
  g_autoptr(BgGuestConfig) c = bg_test_sample_config ();
  g_autofree char *drive = g_build_filename (f->tmp, "cidata.img", NULL);
  g_autofree char *gitconfig = g_build_filename (f->tmp, ".gitconfig", NULL);
  g_autoptr(GPtrArray) files = g_ptr_array_new ();
  g_autofree char *label = NULL, *meta = NULL, *user = NULL, *net = NULL;
  g_autoptr(JsonObject) m = NULL, u = NULL, n = NULL;
  BgSyncEntry entry = { .source = gitconfig, .home = f->tmp, .beneath = (char *) ".gitconfig",
                        .relative = (char *) ".gitconfig", .mode = 0640, .size = 19 };

  g_assert_true (g_file_set_contents (gitconfig, "[user]\n\tname = Dev\n", -1, NULL));
  g_assert_no_errno (chmod (gitconfig, 0644));
  g_ptr_array_add (files, &entry);

  bg_test_build_drive (f->tmp, c, files, drive);

  {
    const char *argv[] = { "fatlabel", drive, NULL };
    label = bg_test_run_out (argv);
    g_assert_cmpstr (g_strstrip (label), ==, "CIDATA");
  }
  {
    const char *a1[] = { "mtype", "-i", drive, "::/meta-data", NULL };
    const char *a2[] = { "mtype", "-i", drive, "::/user-data", NULL };
    const char *a3[] = { "mtype", "-i", drive, "::/network-config", NULL };
    meta = bg_test_run_out (a1);
    user = bg_test_run_out (a2);
    net = bg_test_run_out (a3);
  }
  g_assert_nonnull (meta);
  g_assert_nonnull (user);
  g_assert_nonnull (net);

  m = parse_object (meta);
  g_assert_cmpstr (json_object_get_string_member (m, "local-hostname"), ==, "devbox");
  g_assert_cmpstr (json_object_get_string_member (m, "instance-id"), ==, "banger-devbox-1");

  /* network-config: JSON is valid YAML; cloud-init's version 2. */
  n = parse_object (net);
  g_assert_cmpint (json_object_get_int_member (n, "version"), ==, 2);
  {
    JsonObject *eth0 = json_object_get_object_member (json_object_get_object_member (n, "ethernets"), "eth0");
    JsonObject *route = json_array_get_object_element (json_object_get_array_member (eth0, "routes"), 0);
    JsonObject *ns = json_object_get_object_member (eth0, "nameservers");

    g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (eth0, "match"), "macaddress"),
                     ==, "02:aa:bb:cc:dd:ee");
    g_assert_cmpstr (json_array_get_string_element (json_object_get_array_member (eth0, "addresses"), 1),
                     ==, "fd12:3456:789a::7/64");
    g_assert_cmpstr (json_object_get_string_member (
                       json_array_get_object_element (json_object_get_array_member (eth0, "routes"), 1), "to"),
                     ==, "::/0");
    g_assert_cmpstr (json_array_get_string_element (json_object_get_array_member (eth0, "addresses"), 0),
                     ==, "172.30.0.7/24");
    g_assert_cmpstr (json_object_get_string_member (route, "via"), ==, "172.30.0.1");
    g_assert_cmpstr (json_object_get_string_member (route, "to"), ==, "0.0.0.0/0");
    g_assert_cmpstr (json_array_get_string_element (json_object_get_array_member (ns, "addresses"), 0),
                     ==, "192.0.2.53");
  }

  g_assert_true (g_str_has_prefix (user, "#cloud-config\n"));
  u = parse_object (user + strlen ("#cloud-config\n"));
  {
    JsonObject *dev = json_array_get_object_element (json_object_get_array_member (u, "users"), 0);
    JsonObject *keys = json_object_get_object_member (u, "ssh_keys");
    JsonObject *wf = json_array_get_object_element (json_object_get_array_member (u, "write_files"), 0);
    g_autofree guchar *content = NULL;
    gsize len;

    g_assert_cmpstr (json_object_get_string_member (dev, "name"), ==, "dev");
    g_assert_cmpstr (json_array_get_string_element (json_object_get_array_member (dev, "ssh_authorized_keys"), 0),
                     ==, c->authorized_keys[0]);
    g_assert_cmpstr (json_object_get_string_member (keys, "ed25519_private"), ==, c->host_key_private);
    g_assert_cmpstr (json_object_get_string_member (keys, "ed25519_public"), ==, c->host_key_public);
    g_assert_cmpstr (json_object_get_string_member (wf, "path"), ==, "/home/dev/.gitconfig");
    g_assert_cmpstr (json_object_get_string_member (wf, "permissions"), ==, "0640");
    content = g_base64_decode (json_object_get_string_member (wf, "content"), &len);
    g_assert_cmpmem (content, len, "[user]\n\tname = Dev\n", 19);
  }
}

static gboolean
kh_finds (const char *kh, const char *host)
{
  const char *argv[] = { "ssh-keygen", "-F", host, "-f", kh, NULL };
  g_autofree char *out = bg_test_run_out (argv);
  return out != NULL && *out != '\0';
}

static void
test_known_hosts_pin_and_forget (Fixture *f, gconstpointer data)
{
  g_autofree char *kh = g_build_filename (f->tmp, "state", "known_hosts", NULL);
  g_autofree char *priv1 = NULL, *pub1 = NULL, *priv2 = NULL, *pub2 = NULL;
  g_autofree char *d1 = g_build_filename (f->tmp, "vm1", NULL);
  g_autofree char *d2 = g_build_filename (f->tmp, "vm2", NULL);
  g_autoptr(GError) error = NULL;
  struct stat st;

  g_mkdir (d1, 0700);
  g_mkdir (d2, 0700);
  g_assert_true (bg_ssh_generate_host_key (d1, BG_FILE_NONE, &priv1, &pub1, &error));
  g_assert_true (bg_ssh_generate_host_key (d2, BG_FILE_NONE, &priv2, &pub2, &error));
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (pub1, "ssh-ed25519 "));
  g_assert_nonnull (strstr (priv1, "OPENSSH PRIVATE KEY"));

  g_assert_true (bg_known_hosts_add (kh, "one.banger", "172.30.0.2", pub1, &error));
  g_assert_true (bg_known_hosts_add (kh, "two.banger", "172.30.0.3", pub2, &error));
  g_assert_no_errno (stat (kh, &st));
  g_assert_cmpuint (st.st_mode & 0777, ==, 0600);
  /* ssh's own lookup finds them by alias and by address. */
  g_assert_true (kh_finds (kh, "one.banger"));
  g_assert_true (kh_finds (kh, "172.30.0.2"));
  g_assert_true (kh_finds (kh, "two.banger"));

  /* Re-pinning replaces, never duplicates. */
  g_assert_true (bg_known_hosts_add (kh, "one.banger", "172.30.0.2", pub1, &error));
  {
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    g_assert_true (g_file_get_contents (kh, &text, NULL, NULL));
    lines = g_strsplit (text, "\n", -1);
    g_assert_cmpuint (g_strv_length (lines), ==, 3);
  }

  g_assert_true (bg_known_hosts_remove (kh, "one.banger", "172.30.0.2", &error));
  g_assert_false (kh_finds (kh, "one.banger"));
  g_assert_false (kh_finds (kh, "172.30.0.2"));
  g_assert_true (kh_finds (kh, "two.banger"));
}

static char *
read_text (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  char *text = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return text;
}

static void
assert_mode (const char *dir, const char *name, guint mode)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  struct stat st;

  g_assert_no_errno (lstat (path, &st));
  g_assert_true (S_ISREG (st.st_mode));
  g_assert_cmpuint (st.st_mode & 07777, ==, mode);
}

/* "TYPE BASE64" of a public key line, without the comment. */
static char *
key_of (const char *line)
{
  g_auto(GStrv) fields = g_strsplit (line, " ", 3);

  g_assert_cmpuint (g_strv_length (fields), >=, 2);
  return g_strdup_printf ("%s %s", fields[0], fields[1]);
}

/* ssh-keygen reads the private key @key and finds exactly the key of
 * @public_line in it. */
static void
assert_reads_back (const char *key, const char *public_line)
{
  const char *argv[] = { "ssh-keygen", "-y", "-f", key, NULL };
  g_autofree char *derived = bg_test_run_out (argv);
  g_autofree char *derived_key = NULL, *want = key_of (public_line);

  g_assert_nonnull (derived);
  derived_key = key_of (g_strstrip (derived));
  g_assert_cmpstr (derived_key, ==, want);
}

/* The lengths of a PEM-style file's lines: an ed25519 key with the same
 * comment has the same shape whoever wrote it. */
static char *
line_lengths (const char *text)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  GString *out = g_string_new (NULL);

  for (guint i = 0; lines[i]; i++)
    g_string_append_printf (out, "%zu,", strlen (lines[i]));
  return g_string_free (out, FALSE);
}

/* Signs a file with @key and checks the signature against @public_line:
 * the private key really is the public key's (ssh-keygen -y only reads
 * back the public half stored beside the seed). */
static void
assert_signs_for (const char *tmp, const char *key, const char *public_line)
{
  g_autofree char *data = g_build_filename (tmp, "signed", NULL);
  g_autofree char *sig = g_build_filename (tmp, "signed.sig", NULL);
  g_autofree char *signers = g_build_filename (tmp, "allowed_signers", NULL);
  g_autofree char *pub = key_of (public_line);
  g_autofree char *allowed = g_strdup_printf ("banger-host %s\n", pub);
  const char *sign[] = { "ssh-keygen", "-q", "-Y", "sign", "-f", key, "-n", "banger-test", data, NULL };
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_autoptr(GSubprocess) verify = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *signed_out = NULL;

  g_unlink (sig);
  g_assert_true (g_file_set_contents (data, "banger host key test\n", -1, NULL));
  g_assert_true (g_file_set_contents (signers, allowed, -1, NULL));
  signed_out = bg_test_run_out (sign);
  g_assert_nonnull (signed_out);
  g_assert_true (g_file_test (sig, G_FILE_TEST_IS_REGULAR));
  g_subprocess_launcher_set_stdin_file_path (launcher, data);
  verify = g_subprocess_launcher_spawn (launcher, &error, "ssh-keygen", "-Y", "verify", "-f", signers, "-I",
                                        "banger-host", "-n", "banger-test", "-s", sig, NULL);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_wait_check (verify, NULL, &error));
  g_assert_no_error (error);
}

/* A VM's host key pair, made in-process: what ssh-keygen makes, read by
 * ssh-keygen, a new one each time, 0600 and 0644; kept once made. A
 * spare pair an older banger left in the state directory is not used
 * nor touched. */
static void
test_host_key_is_openssh (Fixture *f, gconstpointer data)
{
  g_autofree char *state = g_build_filename (f->tmp, "state", NULL);
  g_autofree char *spare = g_build_filename (state, "banger", "host-key-spare", NULL);
  g_autofree char *spare_pub = g_build_filename (spare, "ssh_host_ed25519_key.pub", NULL);
  g_autofree char *d1 = g_build_filename (f->tmp, "vm1", NULL);
  g_autofree char *d2 = g_build_filename (f->tmp, "vm2", NULL);
  g_autofree char *key1 = g_build_filename (d1, "ssh_host_ed25519_key", NULL);
  g_autofree char *pub1_path = g_build_filename (d1, "ssh_host_ed25519_key.pub", NULL);
  g_autofree char *ref = g_build_filename (f->tmp, "ref", NULL);
  g_autofree char *priv1 = NULL, *pub1 = NULL, *priv2 = NULL, *pub2 = NULL, *again_priv = NULL, *again_pub = NULL;
  g_autofree char *finger = NULL, *file_pub = NULL, *ref_priv = NULL, *ref_shape = NULL, *shape = NULL;
  g_autoptr(GError) error = NULL;

  g_setenv ("XDG_STATE_HOME", state, TRUE);
  g_assert_no_errno (g_mkdir_with_parents (spare, 0700));
  g_assert_true (g_file_set_contents (spare_pub, "ssh-ed25519 AAAAold banger-host\n", -1, NULL));
  g_assert_no_errno (g_mkdir (d1, 0700));
  g_assert_no_errno (g_mkdir (d2, 0700));

  g_assert_true (bg_ssh_generate_host_key (d1, BG_FILE_NONE, &priv1, &pub1, &error));
  g_assert_no_error (error);
  g_assert_true (bg_ssh_generate_host_key (d2, BG_FILE_NONE, &priv2, &pub2, &error));
  g_assert_no_error (error);
  assert_mode (d1, "ssh_host_ed25519_key", 0600);
  assert_mode (d1, "ssh_host_ed25519_key.pub", 0644);
  file_pub = read_text (d1, "ssh_host_ed25519_key.pub");
  g_assert_true (g_str_has_suffix (file_pub, " banger-host\n"));
  g_assert_cmpstr (g_strstrip (file_pub), ==, pub1);
  g_assert_true (g_str_has_prefix (pub1, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"));
  g_assert_true (g_str_has_suffix (pub1, " banger-host"));
  g_assert_cmpstr (priv1, !=, priv2);
  g_assert_cmpstr (pub1, !=, pub2);

  assert_reads_back (key1, pub1);
  {
    const char *argv[] = { "ssh-keygen", "-l", "-f", pub1_path, NULL };
    finger = bg_test_run_out (argv);
    g_assert_nonnull (finger);
    g_assert_true (g_str_has_prefix (finger, "256 SHA256:"));
    g_assert_nonnull (strstr (finger, "banger-host (ED25519)"));
  }
  assert_signs_for (f->tmp, key1, pub1);
  /* The same shape as ssh-keygen's own: markers, 70 columns, length. */
  {
    const char *argv[] = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "banger-host", "-f", ref, NULL };
    g_autofree char *out = bg_test_run_out (argv);

    g_assert_nonnull (out);
    ref_priv = read_text (f->tmp, "ref");
    ref_shape = line_lengths (ref_priv);
    shape = line_lengths (priv1);
    g_assert_cmpstr (shape, ==, ref_shape);
    g_assert_true (g_str_has_prefix (priv1, "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB"));
    g_assert_true (g_str_has_suffix (priv1, "\n-----END OPENSSH PRIVATE KEY-----\n"));
  }

  /* Made once, then kept: it stays pinned. */
  g_assert_true (bg_ssh_generate_host_key (d1, BG_FILE_NONE, &again_priv, &again_pub, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (again_priv, ==, priv1);
  g_assert_cmpstr (again_pub, ==, pub1);

  /* The old spare: still there, as it was, and no VM's key. */
  {
    g_autofree char *old = read_text (spare, "ssh_host_ed25519_key.pub");
    g_assert_cmpstr (old, ==, "ssh-ed25519 AAAAold banger-host\n");
  }
  g_unsetenv ("XDG_STATE_HOME");
}

/* The user's own key, when missing, is made the same way (comment
 * "banger"), once. */
static void
test_client_key_made_once (Fixture *f, gconstpointer data)
{
  g_autofree char *dir = g_build_filename (f->tmp, "config", "banger", NULL);
  g_autofree char *key = g_build_filename (dir, "id_ed25519", NULL);
  g_autofree char *pub = NULL, *again = NULL;
  g_autoptr(GError) error = NULL;
  struct stat st;

  g_assert_true (bg_ssh_ensure_client_key (key, &error));
  g_assert_no_error (error);
  g_assert_no_errno (stat (dir, &st));
  g_assert_cmpuint (st.st_mode & 0777, ==, 0700);
  assert_mode (dir, "id_ed25519", 0600);
  assert_mode (dir, "id_ed25519.pub", 0644);
  pub = bg_ssh_read_public_key (key, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_suffix (pub, " banger"));
  assert_reads_back (key, pub);
  g_assert_true (bg_ssh_ensure_client_key (key, &error));
  again = bg_ssh_read_public_key (key, &error);
  g_assert_cmpstr (again, ==, pub);
}

static void
drop_to_nobody (gpointer data)
{
  if (geteuid () == 0 && (setgroups (0, NULL) < 0 || setresgid (65534, 65534, 65534) < 0 ||
                          setresuid (65534, 65534, 65534) < 0))
    _exit (3);
}

/* A key pair that cannot be written is an error naming the key, and
 * leaves nothing: not in a directory the user cannot write (root runs
 * the writer as nobody), nor when the private half fails after the
 * public half was written. */
static void
test_host_key_unwritable_leaves_nothing (Fixture *f, gconstpointer data)
{
  g_autofree char *ro = g_build_filename (f->tmp, "ro", NULL);
  g_autofree char *key = g_build_filename (ro, "ssh_host_ed25519_key", NULL);
  g_autofree char *taken = g_build_filename (f->tmp, "taken", NULL);
  g_autofree char *taken_key = g_build_filename (taken, "ssh_host_ed25519_key", NULL);
  g_autoptr(GError) error = NULL;
  pid_t pid;
  int status;

  g_assert_no_errno (g_mkdir (ro, 0755));
  if (geteuid () != 0)
    g_assert_no_errno (chmod (ro, 0555));
  pid = fork ();
  if (pid == 0)
    {
      g_autofree char *priv = NULL, *pub = NULL;

      drop_to_nobody (NULL);
      if (bg_keypair_write (key, "banger-host", BG_FILE_NONE, &priv, &pub, &error))
        _exit (1);
      g_printerr ("%s\n", error->message);
      _exit (g_str_has_prefix (error->message, "cannot write the SSH key ") && strstr (error->message, key) &&
             strstr (error->message, g_strerror (EACCES)) && priv == NULL && pub == NULL ? 0 : 2);
    }
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  bg_assert_exited (status, 0);
  chmod (ro, 0755);
  {
    g_autoptr(GDir) d = g_dir_open (ro, 0, NULL);
    g_assert_null (g_dir_read_name (d));
  }

  /* The private key's name is a directory: its rename fails after the
   * public half is in place, which goes again. */
  g_assert_no_errno (g_mkdir_with_parents (taken_key, 0700));
  g_assert_false (bg_keypair_write (taken_key, "banger-host", BG_FILE_NONE, NULL, NULL, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, taken_key));
  {
    g_autoptr(GDir) d = g_dir_open (taken, 0, NULL);
    const char *name;

    while ((name = g_dir_read_name (d)) != NULL)
      g_assert_cmpstr (name, ==, "ssh_host_ed25519_key");
  }
  g_assert_true (g_file_test (taken_key, G_FILE_TEST_IS_DIR));
}

static void
test_ssh_argv_is_exact (Fixture *f, gconstpointer data)
{
  const char *cmd[] = { "cat", "/etc/hostname; echo pwned", NULL };
  BgSshTarget target = { "/k/id", "/s/known_hosts", "dev.banger", "dev", "172.30.0.9" };
  g_auto(GStrv) argv = bg_ssh_build_argv (&target, cmd, FALSE);
  /* ssh as found for every user: PATH, then the system directories. */
  g_autofree char *ssh = bg_program_find ("ssh");
  const char *want[] = { ssh, "-i", "/k/id", "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=/s/known_hosts",
                         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                         "-o", "HostKeyAlias=dev.banger", "-l", "dev", "172.30.0.9", "cat",
                         "/etc/hostname; echo pwned", NULL };

  g_assert_cmpstrv (argv, want);
}

static void
test_ssh_config_block (Fixture *f, gconstpointer data)
{
  BgSshTarget target = { "/k/id", "/s/kh", "dev.banger", "dev", "172.30.0.9" };
  g_autofree char *block = bg_ssh_config_block ("dev", &target);

  g_assert_true (g_str_has_prefix (block, "Host dev dev.banger\n"));
  g_assert_nonnull (strstr (block, "    StrictHostKeyChecking yes\n"));
  g_assert_nonnull (strstr (block, "    HostKeyAlias dev.banger\n"));
  g_assert_nonnull (strstr (block, "    UserKnownHostsFile /s/kh\n"));
}

/* A VM's target: its record's user, else banger.conf's; the alias under
 * its domain; banger's own key and known_hosts. */
static void
test_ssh_target_of_a_vm (Fixture *f, gconstpointer data)
{
  g_autoptr(BgVmRecord) r = bg_vm_record_new ("dev");
  g_autoptr(BgConfig) config = bg_config_new_defaults ();
  g_autofree char *kh = bg_known_hosts_path ();
  g_autoptr(BgSshTarget) t1 = NULL, t2 = NULL;

  r->address = g_strdup ("172.30.0.9");
  t1 = bg_ssh_target_new (r, config);
  g_assert_cmpstr (t1->user, ==, BG_DEFAULT_GUEST_USER);
  g_assert_cmpstr (t1->alias, ==, "dev.banger");
  g_assert_cmpstr (t1->key, ==, config->ssh_key);
  g_assert_cmpstr (t1->known_hosts, ==, kh);
  g_assert_cmpstr (t1->address, ==, "172.30.0.9");

  r->guest_user = g_strdup ("alice");
  r->domain = g_strdup ("lab");
  t2 = bg_ssh_target_new (r, config);
  g_assert_cmpstr (t2->user, ==, "alice");
  g_assert_cmpstr (t2->alias, ==, "dev.lab");
}

static char *
home_file (const char *home, const char *rel, const char *text, int mode)
{
  char *path = g_build_filename (home, rel, NULL);
  g_autofree char *dir = g_path_get_dirname (path);

  g_mkdir_with_parents (dir, 0755);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  g_assert_no_errno (chmod (path, mode));
  return path;
}

static void
test_sync_refuses_escapes (Fixture *f, gconstpointer data)
{
  g_autofree char *home = g_build_filename (f->tmp, "home", NULL);
  g_autofree char *p_git = NULL, *p_init = NULL, *p_big = NULL;
  g_autofree char *homelink = g_build_filename (f->tmp, "homelink", NULL);
  struct {
    const char *path;       /* relative to home, or absolute */
    const char *expect;
  } bad[] = {
    { "passwd-link", "resolves to /etc/passwd, outside your home" },
    { "../../../../../etc/passwd", "outside your home" },
    { "etc-dir", "resolves to /etc, outside your home" },
    { "fifo", "is not a regular file or directory" },
    { "big.bin", "over the" },
    { "missing", "No such file" },
  };
  g_autoptr(GPtrArray) skipped = NULL;
  g_autoptr(GPtrArray) good = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *big = g_strnfill (2048, 'x');
  g_autofree char *fifo = g_build_filename (home, "fifo", NULL);

  g_mkdir (home, 0755);
  p_git = home_file (home, ".gitconfig", "[user]\n", 0640);
  p_init = home_file (home, ".config/nvim/init.lua", "-- lua\n", 0600);
  p_big = home_file (home, "big.bin", big, 0644);
  {
    g_autofree char *l1 = g_build_filename (home, "passwd-link", NULL);
    g_autofree char *l2 = g_build_filename (home, "etc-dir", NULL);
    g_autofree char *l3 = g_build_filename (home, ".config/nvim/escape", NULL);
    g_assert_no_errno (symlink ("/etc/passwd", l1));
    g_assert_no_errno (symlink ("/etc", l2));
    g_assert_no_errno (symlink ("/etc/hostname", l3));
  }
  g_assert_no_errno (mkfifo (fifo, 0600));
  g_assert_no_errno (symlink (home, homelink));

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *p = g_path_is_absolute (bad[i].path) ? g_strdup (bad[i].path)
                                                           : g_build_filename (home, bad[i].path, NULL);
      char *paths[] = { p, NULL };
      g_autoptr(GPtrArray) r = bg_sync_resolve (home, paths, 1024, NULL, &error);

      g_assert_null (r);
      if (strstr (error->message, bad[i].expect) == NULL || strstr (error->message, bad[i].path) == NULL)
        g_error ("%s: \"%s\" lacks \"%s\" or the path", bad[i].path, error->message, bad[i].expect);
      g_clear_error (&error);
    }

  /* A home that is itself a symlink is refused outright. */
  {
    char *paths[] = { p_git, NULL };
    g_assert_null (bg_sync_resolve (homelink, paths, 1 << 20, NULL, &error));
    g_assert_nonnull (strstr (error->message, "is a symlink"));
    g_assert_nonnull (strstr (error->message, homelink));
    g_clear_error (&error);
  }

  /* The good ones land with their modes; the link inside the directory
   * is skipped and reported, never followed. */
  {
    g_autofree char *nvim = g_build_filename (home, ".config/nvim", NULL);
    char *paths[] = { p_git, nvim, NULL };
    good = bg_sync_resolve (home, paths, 1 << 20, &skipped, &error);
  }
  g_assert_no_error (error);
  g_assert_cmpuint (good->len, ==, 2);
  g_assert_cmpstr (((BgSyncEntry *) good->pdata[0])->relative, ==, ".gitconfig");
  g_assert_cmpuint (((BgSyncEntry *) good->pdata[0])->mode, ==, 0640);
  g_assert_cmpstr (((BgSyncEntry *) good->pdata[1])->relative, ==, ".config/nvim/init.lua");
  g_assert_cmpuint (((BgSyncEntry *) good->pdata[1])->mode, ==, 0600);
  g_assert_cmpuint (skipped->len, ==, 1);
  g_assert_nonnull (strstr (skipped->pdata[0], "escape (a symlink to /etc/hostname, outside your home)"));
}

/* What vm sync sends: a tar stream GNU tar extracts to the same bytes
 * and modes, long names included; and a directory swapped for a symlink
 * after the check is not followed when the file is read. */
static void
test_sync_reads_what_it_checked (Fixture *f, gconstpointer data)
{
  g_autofree char *home = g_build_filename (f->tmp, "home", NULL);
  g_autofree char *out = g_build_filename (f->tmp, "out", NULL);
  g_autofree char *tarball = g_build_filename (f->tmp, "sync.tar", NULL);
  g_autofree char *dname = g_strnfill (60, 'd'), *fname = g_strnfill (70, 'f');
  g_autofree char *deep = g_strdup_printf ("%s/%s", dname, fname);
  g_autofree char *p1 = NULL, *p2 = NULL, *dir = NULL, *moved = NULL;
  g_autoptr(GPtrArray) files = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GFile) file = g_file_new_for_path (tarball);
  g_autoptr(GFileOutputStream) stream = NULL;
  int status;

  g_mkdir (home, 0755);
  p1 = home_file (home, ".gitconfig", "[user]\n", 0640);
  p2 = home_file (home, deep, "deep\n", 0600);
  dir = g_build_filename (home, dname, NULL);
  {
    char *paths[] = { p1, dir, NULL };
    files = bg_sync_resolve (home, paths, 1 << 20, NULL, &error);
  }
  g_assert_no_error (error);
  g_assert_cmpuint (files->len, ==, 2);

  stream = g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE, NULL, &error);
  g_assert_true (bg_sync_write_tar (files, G_OUTPUT_STREAM (stream), &error));
  g_assert_no_error (error);
  g_assert_true (g_output_stream_close (G_OUTPUT_STREAM (stream), NULL, NULL));
  g_mkdir (out, 0755);
  {
    const char *argv[] = { "tar", "-x", "-f", tarball, "-C", out, NULL };
    g_autoptr(GError) spawn_error = NULL;
    bg_test_spawn_sync (NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &status, &spawn_error);
    g_assert_no_error (spawn_error);
    bg_assert_exited (status, 0);
  }
  {
    g_autofree char *a = g_build_filename (out, ".gitconfig", NULL);
    g_autofree char *b = g_build_filename (out, deep, NULL);
    g_autofree char *ta = NULL, *tb = NULL;
    struct stat st;

    g_assert_true (g_file_get_contents (a, &ta, NULL, NULL));
    g_assert_cmpstr (ta, ==, "[user]\n");
    g_assert_no_errno (stat (a, &st));
    g_assert_cmpuint (st.st_mode & 07777, ==, 0640);
    g_assert_true (g_file_get_contents (b, &tb, NULL, NULL));
    g_assert_cmpstr (tb, ==, "deep\n");
    g_assert_no_errno (stat (b, &st));
    g_assert_cmpuint (st.st_mode & 07777, ==, 0600);
  }

  /* Checked, then the directory becomes a link to /etc with the same
   * name inside: the read refuses it, and so does the stream. */
  moved = g_strdup_printf ("%s.moved", dir);
  g_assert_no_errno (rename (dir, moved));
  g_assert_no_errno (symlink (moved, dir));
  {
    BgSyncEntry *e = files->pdata[1];
    g_autoptr(GBytes) bytes = bg_sync_entry_read (e, &error);

    g_assert_null (bytes);
    g_assert_error (error, BG_ERROR, BG_ERROR_UNSAFE);
    g_assert_nonnull (strstr (error->message, "changed since it was checked (a symlink is now on its way)"));
    g_clear_error (&error);
  }
  g_clear_object (&stream);
  stream = g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE, NULL, NULL);
  g_assert_false (bg_sync_write_tar (files, G_OUTPUT_STREAM (stream), &error));
  g_assert_error (error, BG_ERROR, BG_ERROR_UNSAFE);
}

static void
test_readiness_times_out_with_console_tail (Fixture *f, gconstpointer data)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof sa;
  g_autofree char *log = g_build_filename (f->tmp, "console.log", NULL);
  g_autofree char *port = NULL;
  g_autoptr(GError) error = NULL;
  guint32 agent_up = 0;
  const char *ssh[] = { "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=1", "-o", "StrictHostKeyChecking=yes",
                        "-o", "UserKnownHostsFile=/dev/null", "-p", NULL, "127.0.0.1", "true", NULL };
  int s = socket (AF_INET, SOCK_STREAM, 0);

  /* Listens, never accepts, never speaks SSH. */
  g_assert_no_errno (bind (s, (struct sockaddr *) &sa, sizeof sa));
  g_assert_no_errno (listen (s, 16));
  getsockname (s, (struct sockaddr *) &sa, &len);
  port = g_strdup_printf ("%u", ntohs (sa.sin_port));
  ssh[10] = port;
  g_assert_true (g_file_set_contents (log, "[    0.1] Booting\n[    1.2] Reached target Multi-User\n", -1, NULL));

  g_assert_false (bg_guest_wait_ready ("127.0.0.1", ntohs (sa.sin_port), ssh, NULL, 1500, log, &agent_up, &error));
  g_assert_error (error, BG_ERROR, BG_ERROR_TIMEOUT);
  g_assert_nonnull (strstr (error->message, "nor SSH with its pinned host key answered"));
  g_assert_nonnull (strstr (error->message, "Reached target Multi-User"));
  g_assert_nonnull (strstr (error->message, "banger vm logs"));
  close (s);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, bg_guest_fixture_setup, fn, bg_guest_fixture_teardown)
  ADD ("/guest/config-drive-is-nocloud", test_config_drive_is_nocloud);
  ADD ("/guest/known-hosts-pin-and-forget", test_known_hosts_pin_and_forget);
  ADD ("/guest/host-key-is-openssh", test_host_key_is_openssh);
  ADD ("/guest/host-key-unwritable-leaves-nothing", test_host_key_unwritable_leaves_nothing);
  ADD ("/guest/client-key-made-once", test_client_key_made_once);
  ADD ("/guest/ssh-argv-is-exact", test_ssh_argv_is_exact);
  ADD ("/guest/ssh-config-block", test_ssh_config_block);
  ADD ("/guest/ssh-target-of-a-vm", test_ssh_target_of_a_vm);
  ADD ("/guest/sync-refuses-escapes", test_sync_refuses_escapes);
  ADD ("/guest/sync-reads-what-it-checked", test_sync_reads_what_it_checked);
  ADD ("/guest/readiness-times-out-with-console-tail", test_readiness_times_out_with_console_tail);
  return g_test_run ();
}
