/* banger-guest-setup, the guest side of the config drive: it must read
 * exactly what the CLI writes, refuse what it cannot apply, and apply it
 * to a system tree (and an interface in a fresh network namespace) the
 * way a booting guest would. */
#include <arpa/inet.h>
#include <elf.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "bg-error.h"
#include "bg-drive.h"
#include "bg-ready.h"
#include "bg-ssh.h"
#include "bg-sync.h"
#include "bg-seed.h"
#include "guest-sample.h"

#include "../bg-test.h"

typedef BgGuestFixture Fixture;

static char *
file_text (const char *dir,
           const char *rel)
{
  g_autofree char *path = g_build_filename (dir, rel, NULL);
  char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  return text;
}

static guint
file_mode (const char *dir,
           const char *rel,
           uid_t      *uid)
{
  g_autofree char *path = g_build_filename (dir, rel, NULL);
  struct stat st;

  g_assert_no_errno (lstat (path, &st));
  if (uid)
    *uid = st.st_uid;
  return st.st_mode & 07777;
}

/* A sample drive, built by nobody, its files copied out with mtools. */
static char *
make_seed (Fixture             *f,
           const BgGuestConfig *c,
           const char          *name)
{
  g_autofree char *drive = g_build_filename (f->tmp, "cidata.img", NULL);
  g_autofree char *gitconfig = g_build_filename (f->tmp, ".gitconfig", NULL);
  char *seed = g_build_filename (f->tmp, name, NULL);
  g_autoptr(GPtrArray) files = g_ptr_array_new ();
  BgSyncEntry entry = { .source = gitconfig, .home = f->tmp, .beneath = (char *) ".gitconfig",
                        .relative = (char *) ".gitconfig", .mode = 0640, .size = 19 };

  g_assert_true (g_file_set_contents (gitconfig, "[user]\n\tname = Dev\n", -1, NULL));
  g_assert_no_errno (chmod (gitconfig, 0644));
  g_ptr_array_add (files, &entry);
  bg_test_build_drive (f->tmp, c, files, drive);
  g_assert_no_errno (g_mkdir (seed, 0755));
  {
    const char *argv[] = { "mcopy", "-i", drive, "::/meta-data", "::/user-data", "::/network-config", seed, NULL };
    g_autofree char *out = bg_test_run_out (argv);
    g_assert_nonnull (out);
  }
  g_unlink (drive);
  return seed;
}

static void
test_reads_the_drive_the_cli_writes (Fixture *f, gconstpointer data)
{
  g_autoptr(BgGuestConfig) c = bg_test_sample_config ();
  g_autofree char *seed_dir = make_seed (f, c, "seed");
  g_autoptr(BgSeed) s = NULL;
  g_autoptr(GError) error = NULL;
  BgSeedFile *file;
  gsize len;

  s = bg_seed_load_dir (seed_dir, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (s->instance_id, ==, c->instance_id);
  g_assert_cmpstr (s->hostname, ==, "devbox");
  g_assert_cmpstr (s->fqdn, ==, "devbox.banger");
  g_assert_cmpstr (s->user, ==, "dev");
  g_assert_cmpstr (s->shell, ==, "/bin/bash");
  g_assert_cmpstr (s->sudo, ==, "ALL=(ALL) NOPASSWD:ALL");
  g_assert_cmpstrv (s->authorized_keys, c->authorized_keys);
  g_assert_cmpstr (s->host_key_private, ==, c->host_key_private);
  g_assert_cmpstr (s->host_key_public, ==, c->host_key_public);
  g_assert_cmpstr (s->mac, ==, c->mac);
  g_assert_cmpstr (s->set_name, ==, "eth0");
  g_assert_cmphex (s->address, ==, 0xac1e0007);
  g_assert_cmpuint (s->prefix, ==, 24);
  g_assert_cmphex (s->gateway, ==, 0xac1e0001);
  {
    char text[INET6_ADDRSTRLEN];
    g_assert_true (s->has_address6);
    g_assert_cmpstr (inet_ntop (AF_INET6, s->address6, text, sizeof text), ==, "fd12:3456:789a::7");
    g_assert_cmpuint (s->prefix6, ==, 64);
    g_assert_true (s->has_gateway6);
    g_assert_cmpstr (inet_ntop (AF_INET6, s->gateway6, text, sizeof text), ==, "fd12:3456:789a::1");
  }
  g_assert_cmpstrv (s->dns, c->dns);
  g_assert_cmpstr (s->search[0], ==, "banger");
  g_assert_null (s->search[1]);
  g_assert_cmpuint (s->files->len, ==, 1);
  file = s->files->pdata[0];
  g_assert_cmpstr (file->path, ==, "/home/dev/.gitconfig");
  g_assert_cmpuint (file->mode, ==, 0640);
  g_assert_cmpmem (g_bytes_get_data (file->content, &len), len, "[user]\n\tname = Dev\n", 19);
}

static gboolean
is_cidata (const char *path)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  gboolean yes;

  g_assert_no_errno (fd);
  yes = bg_seed_is_cidata (fd);
  close (fd);
  return yes;
}

static void
make_vfat (const char *path,
           const char *label,
           const char *fat,
           const char *kib)
{
  const char *argv[] = { "mkfs.vfat", "-F", fat, "-n", label, "-C", path, kib, NULL };
  g_autofree char *out = NULL;

  g_unlink (path);
  out = bg_test_run_out (argv);
  g_assert_nonnull (out);
}

static void
test_finds_the_drive_by_its_label (Fixture *f, gconstpointer data)
{
  g_autoptr(BgGuestConfig) c = bg_test_sample_config ();
  g_autofree char *drive = g_build_filename (f->tmp, "cidata.img", NULL);
  g_autofree char *other = g_build_filename (f->tmp, "other.img", NULL);
  g_autoptr(GPtrArray) files = g_ptr_array_new ();

  /* The drive the CLI makes, and the FAT flavours mkfs.vfat can make. */
  bg_test_build_drive (f->tmp, c, files, drive);
  g_assert_true (is_cidata (drive));
  make_vfat (other, "CIDATA", "16", "16384");
  g_assert_true (is_cidata (other));
  make_vfat (other, "cidata", "32", "40960");
  g_assert_true (is_cidata (other));
  make_vfat (other, "CIDATA2", "12", "2048");
  g_assert_false (is_cidata (other));
  make_vfat (other, "OTHER", "12", "2048");
  g_assert_false (is_cidata (other));
  {
    /* Not FAT at all: an ext4 labelled CIDATA. */
    const char *argv[] = { "mke2fs", "-q", "-F", "-t", "ext4", "-L", "CIDATA", other, "4M", NULL };
    g_autofree char *out = NULL;
    g_unlink (other);
    out = bg_test_run_out (argv);
    g_assert_nonnull (out);
    g_assert_false (is_cidata (other));
  }
}

typedef struct {
  const char *doc;      /* which document to break */
  const char *find;     /* text in it */
  const char *replace;  /* what it becomes */
  const char *message;  /* the error names this */
} Breakage;

static void
test_refuses_bad_documents (Fixture *f, gconstpointer data)
{
  static const Breakage table[] = {
    { "meta-data", "\"instance-id\"", "\"instance\"", "meta-data: instance-id: missing" },
    { "meta-data", "banger-devbox-1", "a/b", "meta-data: instance-id: has a '/'" },
    { "user-data", "\"hostname\" : \"devbox\"", "\"hostname\" : \"dev_box\"", "user-data: hostname: not a host name" },
    { "user-data", "\"name\" : \"dev\"", "\"name\" : \"root\"", "user-data: users[0].name:" },
    { "user-data", "\"name\" : \"dev\"", "\"name\" : \"Dev;rm\"", "user-data: users[0].name:" },
    { "user-data", "\"users\" : [", "\"users\" : [ { \"name\" : \"x\" },", "user-data: users: expected a list of exactly one" },
    { "user-data", "\"shell\" : \"/bin/bash\"", "\"shell\" : 7", "user-data: users[0].shell: expected a string" },
    { "user-data", "\"ed25519_public\" : \"ssh-ed25519", "\"ed25519_public\" : \"ssh-rsa", "user-data: ssh_keys.ed25519_public:" },
    { "user-data", "/home/dev/.gitconfig", "/home/dev/../../etc/shadow", "user-data: write_files[0].path: must be absolute" },
    { "user-data", "\"0640\"", "\"rw-r-----\"", "user-data: write_files[0].permissions: expected an octal mode" },
    { "user-data", "\"b64\"", "\"gzip\"", "user-data: write_files[0].encoding:" },
    { "user-data", "#cloud-config\n{", "#cloud-config\nusers: [", "user-data: not the JSON that banger writes" },
    { "network-config", "\"version\" : 2", "\"version\" : 1", "network-config: version: expected 2" },
    { "network-config", "\"macaddress\"", "\"driver\"", "network-config: ethernets.eth0.match.macaddress: missing" },
    { "network-config", "172.30.0.7/24", "172.30.0.7", "network-config: ethernets.eth0.addresses:" },
    { "network-config", "0.0.0.0/0", "10.0.0.0/8", "network-config: ethernets.eth0.routes[0]: only the default route" },
    { "network-config", "\"192.0.2.53\"", "\"dns.example\"", "network-config: ethernets.eth0.nameservers: addresses" },
    { "network-config", "\"set-name\" : \"eth0\"", "\"set-name\" : \"../eth0\"", "network-config: ethernets.eth0: set-name" },
    /* What jansson refuses that a lax parser would let through. */
    { "user-data", "\"hostname\" : \"devbox\"", "\"hostname\" : \"devbox\", \"hostname\" : \"other\"",
      "user-data: not the JSON that banger writes" },
    { "user-data", "\"name\" : \"dev\"", "\"name\" : \"dev\\u0000x\"", "user-data: not the JSON that banger writes" },
    { "network-config", "\"version\" : 2", "\"version\" : \"2\"", "network-config: version: expected 2" },
  };
  g_autoptr(BgGuestConfig) c = bg_test_sample_config ();
  g_autofree char *seed_dir = make_seed (f, c, "seed");
  const char *docs[] = { "meta-data", "user-data", "network-config" };

  for (guint i = 0; i < G_N_ELEMENTS (table); i++)
    {
      char *texts[3] = { NULL, };
      g_autoptr(GError) error = NULL;
      g_autoptr(BgSeed) s = NULL;

      for (guint d = 0; d < 3; d++)
        {
          g_autofree char *text = file_text (seed_dir, docs[d]);

          if (g_str_equal (docs[d], table[i].doc))
            {
              g_auto(GStrv) parts = g_strsplit (text, table[i].find, 2);
              if (parts[1] == NULL)
                g_error ("case %u: \"%s\" is not in %s:\n%s", i, table[i].find, docs[d], text);
              texts[d] = g_strjoinv (table[i].replace, parts);
            }
          else
            texts[d] = g_steal_pointer (&text);
        }
      s = bg_seed_parse (texts[0], texts[1], texts[2], &error);
      g_assert_null (s);
      g_assert_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT);
      if (strstr (error->message, table[i].message) == NULL)
        g_error ("case %u: expected \"%s\", got \"%s\"", i, table[i].message, error->message);
      for (guint d = 0; d < 3; d++)
        g_free (texts[d]);
    }
}

/* A document beyond the bound is refused before it is read. */
static void
test_refuses_a_huge_document (Fixture *f, gconstpointer data)
{
  g_autoptr(BgGuestConfig) c = bg_test_sample_config ();
  g_autofree char *seed = make_seed (f, c, "seed");
  g_autofree char *user_data = g_build_filename (seed, "user-data", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(BgSeed) s = NULL;

  g_assert_no_errno (truncate (user_data, (off_t) 65 << 20));
  s = bg_seed_load_dir (seed, &error);
  g_assert_null (s);
  g_assert_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "user-data: "));
  g_assert_nonnull (strstr (error->message, "at most 64 MiB"));
}

/* banger-guest-setup runs in any root, whatever its libc: no interpreter,
 * no shared libraries (ELF header read here, not `file`). */
static void
test_is_static (Fixture *f, gconstpointer data)
{
  const char *path = g_getenv ("BANGER_GUEST_SETUP");
  g_autofree char *bytes = NULL;
  const Elf64_Ehdr *eh;
  gsize len;

  g_assert_nonnull (path);
  g_assert_true (g_file_get_contents (path, &bytes, &len, NULL));
  g_assert_cmpuint (len, >=, sizeof *eh);
  eh = (const Elf64_Ehdr *) bytes;
  g_assert_cmpmem (eh->e_ident, SELFMAG, ELFMAG, SELFMAG);
  g_assert_cmpint (eh->e_ident[EI_CLASS], ==, ELFCLASS64);
  g_assert_cmpuint (eh->e_phoff + (guint64) eh->e_phnum * sizeof (Elf64_Phdr), <=, len);
  for (int i = 0; i < eh->e_phnum; i++)
    {
      const Elf64_Phdr *ph = (const Elf64_Phdr *) (bytes + eh->e_phoff) + i;

      g_assert_cmpuint (ph->p_type, !=, PT_INTERP);
      if (ph->p_type == PT_DYNAMIC)
        {
          g_assert_cmpuint (ph->p_offset + ph->p_filesz, <=, len);
          for (const Elf64_Dyn *d = (const Elf64_Dyn *) (bytes + ph->p_offset);
               (const char *) (d + 1) <= bytes + ph->p_offset + ph->p_filesz && d->d_tag != DT_NULL; d++)
            g_assert_cmpint (d->d_tag, !=, DT_NEEDED);
        }
    }
}

static void
enter_root (gpointer dir)
{
  if (chroot (dir) < 0 || chdir ("/") < 0)
    _exit (120);
}

/* In a root that has nothing but the program, the seed and a system tree
 * whose user exists only in that tree's /etc/passwd: no dynamic loader,
 * no libc.so, no NSS module, no GLib. The user is found by reading the
 * tree's files, and the home is written as that user. */
static void
test_runs_in_a_bare_root (Fixture *f, gconstpointer data)
{
  g_autoptr(BgGuestConfig) c = bg_test_sample_config ();
  g_autofree char *bare = g_build_filename (f->tmp, "bare", NULL);
  g_autofree char *program = g_build_filename (bare, "banger-guest-setup", NULL);
  g_autofree char *home = g_build_filename (bare, "target/home/dev", NULL);
  g_autofree char *target = g_build_filename (bare, "target", NULL);
  g_autofree char *bytes = NULL, *seed = NULL, *out = NULL, *err = NULL, *text = NULL;
  const char *argv[] = { "/banger-guest-setup", "--root", "/target", "--seed", "/seed", "--skip-network", NULL };
  const char *envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
  struct passwd *host;
  gsize len;
  uid_t owner;
  int status;
  static const struct { const char *path; const char *text; } files[] = {
    { "target/etc/passwd", "root:x:0:0:root:/root:/bin/sh\ndev:x:4242:4343:dev:/home/dev:/bin/sh\n" },
    { "target/etc/group", "root:x:0:\ndev:x:4343:\nwheel:x:10:dev\n" },
  };

  if (geteuid () != 0)
    {
      g_test_skip ("needs root: it chroots into the bare root and drops to the tree's user");
      return;
    }
  /* The proof is that the host cannot answer for this tree's user. */
  host = getpwnam ("dev");
  g_assert_true (host == NULL || host->pw_uid != 4242);

  g_assert_no_errno (g_mkdir_with_parents (home, 0755));
  g_assert_no_errno (chown (home, 4242, 4343));
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = g_build_filename (bare, files[i].path, NULL);
      g_autofree char *dir = g_path_get_dirname (path);

      g_assert_no_errno (g_mkdir_with_parents (dir, 0755));
      g_assert_true (g_file_set_contents (path, files[i].text, -1, NULL));
      g_assert_no_errno (chmod (path, 0644));
    }
  g_assert_true (g_file_get_contents (g_getenv ("BANGER_GUEST_SETUP"), &bytes, &len, NULL));
  g_assert_true (g_file_set_contents (program, bytes, len, NULL));
  g_assert_no_errno (chmod (program, 0755));
  seed = make_seed (f, c, "bare/seed");

  g_assert_true (g_spawn_sync (NULL, (char **) argv, (char **) envp, G_SPAWN_DEFAULT, enter_root, bare, &out, &err,
                               &status, NULL));
  if (bg_test_exit_code (status) != 0)
    g_error ("banger-guest-setup in a bare root: exit %d\n%s%s", bg_test_exit_code (status), out, err);
  g_assert_nonnull (strstr (out, "devbox configured in"));
  g_assert_null (strstr (out, "created"));   /* found, not made with useradd */

  g_assert_cmpuint (file_mode (target, "home/dev/.ssh", &owner), ==, 0700);
  g_assert_cmpuint (owner, ==, 4242);
  text = file_text (target, "home/dev/.ssh/authorized_keys");
  g_assert_cmpstr (text, ==, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2xMg banger\n");
  g_assert_cmpuint (file_mode (target, "home/dev/.ssh/authorized_keys", &owner), ==, 0600);
  g_assert_cmpuint (owner, ==, 4242);
  g_clear_pointer (&text, g_free);
  text = file_text (target, "etc/ssh/ssh_host_ed25519_key");
  g_assert_cmpstr (text, ==, c->host_key_private);
  g_clear_pointer (&text, g_free);
  text = file_text (target, "etc/sudoers.d/90-banger");
  g_assert_nonnull (strstr (text, "\ndev ALL=(ALL) NOPASSWD:ALL\n"));
}

/* A minimal system tree: what useradd --prefix needs, and the keys an
 * image's openssh-server package script would have left. */
static char *
make_root (Fixture *f)
{
  char *root = g_build_filename (f->tmp, "root", NULL);
  static const struct { const char *path; const char *text; int mode; } files[] = {
    { "etc/passwd", "root:x:0:0:root:/root:/bin/bash\n", 0644 },
    { "etc/group", "root:x:0:\nsudo:x:27:\n", 0644 },
    { "etc/shadow", "root:*:19000:0:99999:7:::\n", 0640 },
    { "etc/gshadow", "root:*::\nsudo:*::\n", 0640 },
    { "etc/ssh/ssh_host_rsa_key", "baked into the image\n", 0600 },
    { "etc/ssh/ssh_host_rsa_key.pub", "ssh-rsa AAAAbaked\n", 0644 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = g_build_filename (root, files[i].path, NULL);
      g_autofree char *dir = g_path_get_dirname (path);

      g_assert_no_errno (g_mkdir_with_parents (dir, 0755));
      g_assert_true (g_file_set_contents (path, files[i].text, -1, NULL));
      g_assert_no_errno (chmod (path, files[i].mode));
    }
  {
    g_autofree char *home = g_build_filename (root, "home", NULL);
    g_assert_no_errno (g_mkdir_with_parents (home, 0755));
  }
  return root;
}

static int
run_setup (char **out,
           char **err,
           ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  /* As its systemd unit runs it in a guest: with systemd's PATH, whatever
   * the PATH of the test (a login user's has no /usr/sbin). */
  g_auto(GStrv) envp = g_environ_setenv (g_get_environ (), "PATH",
                                         "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", TRUE);
  const char *arg;
  int status;
  va_list ap;

  g_ptr_array_add (argv, (char *) g_getenv ("BANGER_GUEST_SETUP"));
  va_start (ap, err);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL, out, err, &status,
                               NULL));
  return bg_test_exit_code (status);
}

static uid_t
uid_in (const char *root,
        const char *user)
{
  g_autofree char *passwd = file_text (root, "etc/passwd");
  g_auto(GStrv) lines = g_strsplit (passwd, "\n", -1);
  g_autofree char *prefix = g_strdup_printf ("%s:", user);

  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], prefix))
      {
        g_auto(GStrv) fields = g_strsplit (lines[i], ":", -1);
        return (uid_t) g_ascii_strtoull (fields[2], NULL, 10);
      }
  g_error ("%s is not in %s/etc/passwd", user, root);
}

static void
test_applies_to_a_system_tree (Fixture *f, gconstpointer data)
{
  g_autoptr(BgGuestConfig) c = bg_test_sample_config ();
  g_autofree char *seed = NULL, *root = NULL, *text = NULL, *out = NULL, *err = NULL;
  uid_t dev, owner;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root: it creates a user (useradd --prefix) and drops to it to write the home");
      return;
    }
  seed = make_seed (f, c, "seed");
  root = make_root (f);

  g_assert_cmpint (run_setup (&out, &err, "--root", root, "--seed", seed, "--skip-network", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "devbox configured in"));
  dev = uid_in (root, "dev");
  g_assert_cmpuint (dev, !=, 0);

  text = file_text (root, "etc/hostname");
  g_assert_cmpstr (text, ==, "devbox\n");
  g_clear_pointer (&text, g_free);
  text = file_text (root, "etc/hosts");
  g_assert_nonnull (strstr (text, "127.0.1.1\tdevbox.banger devbox\n"));
  g_clear_pointer (&text, g_free);
  text = file_text (root, "etc/resolv.conf");
  g_assert_nonnull (strstr (text, "nameserver 192.0.2.53\nsearch banger\n"));
  g_clear_pointer (&text, g_free);

  /* Only the pinned host key is left. */
  g_assert_null (file_text (root, "etc/ssh/ssh_host_rsa_key"));
  g_assert_null (file_text (root, "etc/ssh/ssh_host_rsa_key.pub"));
  text = file_text (root, "etc/ssh/ssh_host_ed25519_key");
  g_assert_cmpstr (text, ==, c->host_key_private);
  g_assert_cmpuint (file_mode (root, "etc/ssh/ssh_host_ed25519_key", &owner), ==, 0600);
  g_assert_cmpuint (owner, ==, 0);
  g_clear_pointer (&text, g_free);

  text = file_text (root, "etc/sudoers.d/90-banger");
  g_assert_nonnull (strstr (text, "\ndev ALL=(ALL) NOPASSWD:ALL\n"));
  g_assert_cmpuint (file_mode (root, "etc/sudoers.d/90-banger", NULL), ==, 0440);
  g_clear_pointer (&text, g_free);

  /* The user's files are the user's, with the asked modes. */
  g_assert_cmpuint (file_mode (root, "home/dev/.ssh", &owner), ==, 0700);
  g_assert_cmpuint (owner, ==, dev);
  text = file_text (root, "home/dev/.ssh/authorized_keys");
  g_assert_cmpstr (text, ==, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2xMg banger\n");
  g_assert_cmpuint (file_mode (root, "home/dev/.ssh/authorized_keys", &owner), ==, 0600);
  g_assert_cmpuint (owner, ==, dev);
  g_clear_pointer (&text, g_free);
  text = file_text (root, "home/dev/.gitconfig");
  g_assert_cmpstr (text, ==, "[user]\n\tname = Dev\n");
  g_assert_cmpuint (file_mode (root, "home/dev/.gitconfig", &owner), ==, 0640);
  g_assert_cmpuint (owner, ==, dev);
  g_clear_pointer (&text, g_free);
  text = file_text (root, "var/lib/banger-guest-setup/instance-id");
  g_assert_cmpstr (text, ==, "banger-devbox-1\n");
  g_clear_pointer (&text, g_free);

  /* The next boot of the same instance leaves the user's edits alone,
   * and rewrites what belongs to every boot. */
  {
    g_autofree char *gc = g_build_filename (root, "home/dev/.gitconfig", NULL);
    g_autofree char *hn = g_build_filename (root, "etc/hostname", NULL);
    g_autofree char *o2 = NULL, *e2 = NULL;

    g_assert_true (g_file_set_contents (gc, "edited in the guest\n", -1, NULL));
    g_assert_true (g_file_set_contents (hn, "changed\n", -1, NULL));
    g_assert_cmpint (run_setup (&o2, &e2, "--root", root, "--seed", seed, "--skip-network", NULL), ==, 0);
    g_assert_nonnull (strstr (o2, "already set up"));
    text = file_text (root, "home/dev/.gitconfig");
    g_assert_cmpstr (text, ==, "edited in the guest\n");
    g_clear_pointer (&text, g_free);
    text = file_text (root, "etc/hostname");
    g_assert_cmpstr (text, ==, "devbox\n");
    g_clear_pointer (&text, g_free);
    g_assert_cmpuint (uid_in (root, "dev"), ==, dev);
  }
}

/* The user's home is written as the user: a symlink planted in it
 * cannot make root write elsewhere. */
static void
test_home_is_written_as_the_user (Fixture *f, gconstpointer data)
{
  g_autoptr(BgGuestConfig) c = bg_test_sample_config ();
  g_autofree char *seed = NULL, *root = NULL, *out = NULL, *err = NULL, *ssh = NULL, *etc = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root: it creates a user and drops to it");
      return;
    }
  seed = make_seed (f, c, "seed");
  root = make_root (f);
  g_assert_cmpint (run_setup (&out, &err, "--root", root, "--seed", seed, "--skip-network", NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* A new instance of the same disk, after the user replaced ~/.ssh. */
  {
    g_autofree char *marker = g_build_filename (root, "var/lib/banger-guest-setup/instance-id", NULL);
    g_assert_true (g_file_set_contents (marker, "an-older-instance\n", -1, NULL));
  }
  ssh = g_build_filename (root, "home/dev/.ssh", NULL);
  etc = g_build_filename (root, "etc", NULL);
  {
    const char *rm[] = { "rm", "-rf", "--", ssh, NULL };
    g_autofree char *o = bg_test_run_out (rm);
  }
  g_assert_no_errno (symlink (etc, ssh));
  g_assert_cmpint (run_setup (&out, &err, "--root", root, "--seed", seed, "--skip-network", NULL), ==, 1);
  g_assert_nonnull (strstr (err, "authorized_keys"));
  g_assert_null (file_text (root, "etc/authorized_keys"));
}

static char *
ip_json (const char * const *argv)
{
  char *out = bg_test_run_out (argv);
  g_assert_nonnull (out);
  return out;
}

static void
test_configures_the_interface (Fixture *f, gconstpointer data)
{
  g_autoptr(BgGuestConfig) c = bg_test_sample_config ();
  g_autofree char *seed = NULL, *root = NULL, *out = NULL, *err = NULL, *addr = NULL, *route = NULL;
  pid_t pid;
  int status;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root: it configures an interface in a new network namespace");
      return;
    }
  seed = make_seed (f, c, "seed");
  root = make_root (f);

  /* In a child, so only it lives in the new namespace. */
  pid = fork ();
  if (pid == 0)
    {
      const char *tap[] = { "ip", "tuntap", "add", "dev", "bgtest0", "mode", "tap", NULL };
      const char *mac[] = { "ip", "link", "set", "dev", "bgtest0", "address", "02:aa:bb:cc:dd:ee", NULL };
      const char *ip_addr[] = { "ip", "-j", "address", "show", "dev", "eth0", NULL };
      const char *ip_route[] = { "ip", "-j", "route", "show", "default", NULL };
      const char *ip6_addr[] = { "ip", "-j", "-6", "address", "show", "dev", "eth0", "scope", "global", NULL };
      const char *ip6_route[] = { "ip", "-j", "-6", "route", "show", "default", NULL };
      g_autofree char *o5 = NULL, *o6 = NULL;
      g_autofree char *o1 = NULL, *o2 = NULL, *o3 = NULL, *o4 = NULL, *e1 = NULL, *e2 = NULL;

      if (unshare (CLONE_NEWNET) < 0)
        _exit (3);
      g_free (ip_json (tap));
      g_free (ip_json (mac));
      /* The MAC picks the interface; set-name renames it eth0. */
      g_assert_cmpint (run_setup (&o1, &e1, "--root", root, "--seed", seed, NULL), ==, 0);
      g_assert_nonnull (strstr (o1, "network: eth0 172.30.0.7/24 via 172.30.0.1"));
      /* Every boot applies it again: still fine. */
      g_assert_cmpint (run_setup (&o2, &e2, "--root", root, "--seed", seed, NULL), ==, 0);
      o3 = ip_json (ip_addr);
      o4 = ip_json (ip_route);
      g_assert_nonnull (strstr (o3, "\"local\":\"172.30.0.7\",\"prefixlen\":24"));
      g_assert_nonnull (strstr (o3, "\"flags\":[\"NO-CARRIER\",\"BROADCAST\",\"MULTICAST\",\"UP\"]"));
      g_assert_nonnull (strstr (o4, "\"dst\":\"default\",\"gateway\":\"172.30.0.1\",\"dev\":\"eth0\""));
      /* And the IPv6 address (usable at once: no DAD) and route. */
      g_assert_nonnull (strstr (o1, "network: eth0 fd12:3456:789a::7/64 via fd12:3456:789a::1"));
      o5 = ip_json (ip6_addr);
      o6 = ip_json (ip6_route);
      g_assert_nonnull (strstr (o5, "\"local\":\"fd12:3456:789a::7\",\"prefixlen\":64"));
      g_assert_null (strstr (o5, "tentative"));
      g_assert_nonnull (strstr (o6, "\"dst\":\"default\",\"gateway\":\"fd12:3456:789a::1\",\"dev\":\"eth0\""));
      _exit (0);
    }
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  bg_assert_exited (status, 0);

  /* A VM whose interface is not the one the drive was made for. */
  pid = fork ();
  if (pid == 0)
    {
      g_autofree char *o = NULL, *e = NULL;
      if (unshare (CLONE_NEWNET) < 0)
        _exit (3);
      g_assert_cmpint (run_setup (&o, &e, "--root", root, "--seed", seed, NULL), ==, 1);
      g_assert_nonnull (strstr (e, "no interface has the MAC address 02:aa:bb:cc:dd:ee"));
      _exit (0);
    }
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  bg_assert_exited (status, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, bg_guest_fixture_setup, fn, bg_guest_fixture_teardown)
  ADD ("/guest-setup/reads-the-drive-the-cli-writes", test_reads_the_drive_the_cli_writes);
  ADD ("/guest-setup/finds-the-drive-by-its-label", test_finds_the_drive_by_its_label);
  ADD ("/guest-setup/refuses-bad-documents", test_refuses_bad_documents);
  ADD ("/guest-setup/refuses-a-huge-document", test_refuses_a_huge_document);
  ADD ("/guest-setup/is-static", test_is_static);
  ADD ("/guest-setup/runs-in-a-bare-root", test_runs_in_a_bare_root);
  ADD ("/guest-setup/applies-to-a-system-tree", test_applies_to_a_system_tree);
  ADD ("/guest-setup/home-is-written-as-the-user", test_home_is_written_as_the_user);
  ADD ("/guest-setup/configures-the-interface", test_configures_the_interface);
  return g_test_run ();
}
