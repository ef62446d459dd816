/* bg-guest.c: what the guest needs to be reachable, and how to reach it.
 *
 * - A NoCloud config drive (vfat labelled CIDATA with meta-data,
 *   user-data, network-config), written in-process by the user (bg-fat.c),
 *   so stock cloud images configure themselves. The documents are written
 *   as JSON, which YAML parsers accept, so every string is escaped by
 *   json-glib rather than by hand.
 * - banger's own SSH key pair, and a host key per VM generated before its
 *   first boot: the private half goes to the guest on the config drive,
 *   the public half into banger's known_hosts. No trust on first use.
 * - File sync that only ever reads below the owner's home, after
 *   resolving symlinks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "bg-error.h"
#include "bg-fat.h"
#include "bg-file.h"
#include "bg-guest.h"
#include "bg-paths.h"
#include "bg-spawn.h"

void
bg_guest_config_free (BgGuestConfig *c)
{
  if (c == NULL)
    return;
  g_free (c->name);
  g_free (c->domain);
  g_free (c->user);
  g_free (c->address);
  g_free (c->gateway);
  g_free (c->mac);
  g_strfreev (c->dns);
  g_strfreev (c->authorized_keys);
  g_free (c->host_key_private);
  g_free (c->host_key_public);
  g_free (c->instance_id);
  g_free (c);
}

void
bg_sync_entry_free (BgSyncEntry *e)
{
  g_free (e->source);
  g_free (e->relative);
  g_free (e);
}

static char *
node_to_string (JsonBuilder *b)
{
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  g_autoptr(JsonGenerator) gen = json_generator_new ();

  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  return json_generator_to_data (gen, NULL);
}

#define MEMBER(b, k) json_builder_set_member_name (b, k)

static char *
user_data (const BgGuestConfig *c,
           GPtrArray           *files)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *fqdn = g_strdup_printf ("%s.%s", c->name, c->domain);
  g_autofree char *owner = g_strdup_printf ("%s:%s", c->user, c->user);
  g_autofree char *body = NULL;

  json_builder_begin_object (b);
  MEMBER (b, "hostname"); json_builder_add_string_value (b, c->name);
  MEMBER (b, "fqdn"); json_builder_add_string_value (b, fqdn);
  MEMBER (b, "manage_etc_hosts"); json_builder_add_boolean_value (b, TRUE);
  MEMBER (b, "ssh_pwauth"); json_builder_add_boolean_value (b, FALSE);
  MEMBER (b, "disable_root"); json_builder_add_boolean_value (b, TRUE);
  MEMBER (b, "users");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  MEMBER (b, "name"); json_builder_add_string_value (b, c->user);
  MEMBER (b, "shell"); json_builder_add_string_value (b, "/bin/bash");
  MEMBER (b, "sudo"); json_builder_add_string_value (b, "ALL=(ALL) NOPASSWD:ALL");
  MEMBER (b, "lock_passwd"); json_builder_add_boolean_value (b, TRUE);
  MEMBER (b, "ssh_authorized_keys");
  json_builder_begin_array (b);
  for (guint i = 0; c->authorized_keys && c->authorized_keys[i]; i++)
    json_builder_add_string_value (b, c->authorized_keys[i]);
  json_builder_end_array (b);
  json_builder_end_object (b);
  json_builder_end_array (b);

  /* The pinned host key, instead of keys the guest would invent. */
  MEMBER (b, "ssh_deletekeys"); json_builder_add_boolean_value (b, TRUE);
  MEMBER (b, "ssh_genkeytypes"); json_builder_begin_array (b); json_builder_end_array (b);
  MEMBER (b, "ssh_keys");
  json_builder_begin_object (b);
  MEMBER (b, "ed25519_private"); json_builder_add_string_value (b, c->host_key_private);
  MEMBER (b, "ed25519_public"); json_builder_add_string_value (b, c->host_key_public);
  json_builder_end_object (b);

  MEMBER (b, "write_files");
  json_builder_begin_array (b);
  for (guint i = 0; files && i < files->len; i++)
    {
      BgSyncEntry *e = files->pdata[i];
      g_autofree char *data = NULL, *b64 = NULL, *path = NULL, *mode = NULL;
      gsize len;

      if (e->is_dir || !g_file_get_contents (e->source, &data, &len, NULL))
        continue;
      b64 = g_base64_encode ((guint8 *) data, len);
      path = g_strdup_printf ("/home/%s/%s", c->user, e->relative);
      mode = g_strdup_printf ("%04o", e->mode & 07777);
      json_builder_begin_object (b);
      MEMBER (b, "path"); json_builder_add_string_value (b, path);
      MEMBER (b, "content"); json_builder_add_string_value (b, b64);
      MEMBER (b, "encoding"); json_builder_add_string_value (b, "b64");
      MEMBER (b, "permissions"); json_builder_add_string_value (b, mode);
      MEMBER (b, "owner"); json_builder_add_string_value (b, owner);
      MEMBER (b, "defer"); json_builder_add_boolean_value (b, TRUE);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);

  body = node_to_string (b);
  return g_strdup_printf ("#cloud-config\n%s\n", body);
}

static char *
meta_data (const BgGuestConfig *c)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  MEMBER (b, "instance-id"); json_builder_add_string_value (b, c->instance_id);
  MEMBER (b, "local-hostname"); json_builder_add_string_value (b, c->name);
  json_builder_end_object (b);
  return node_to_string (b);
}

static char *
network_config (const BgGuestConfig *c)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *cidr = g_strdup_printf ("%s/%u", c->address, c->prefix);

  json_builder_begin_object (b);
  MEMBER (b, "version"); json_builder_add_int_value (b, 2);
  MEMBER (b, "ethernets");
  json_builder_begin_object (b);
  MEMBER (b, "eth0");
  json_builder_begin_object (b);
  MEMBER (b, "match");
  json_builder_begin_object (b);
  MEMBER (b, "macaddress"); json_builder_add_string_value (b, c->mac);
  json_builder_end_object (b);
  MEMBER (b, "set-name"); json_builder_add_string_value (b, "eth0");
  MEMBER (b, "addresses");
  json_builder_begin_array (b);
  json_builder_add_string_value (b, cidr);
  json_builder_end_array (b);
  MEMBER (b, "routes");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  /* Not "default": cloud-init 22.4 (Debian 12) rejects it. */
  MEMBER (b, "to"); json_builder_add_string_value (b, "0.0.0.0/0");
  MEMBER (b, "via"); json_builder_add_string_value (b, c->gateway);
  json_builder_end_object (b);
  json_builder_end_array (b);
  MEMBER (b, "nameservers");
  json_builder_begin_object (b);
  MEMBER (b, "addresses");
  json_builder_begin_array (b);
  for (guint i = 0; c->dns && c->dns[i]; i++)
    json_builder_add_string_value (b, c->dns[i]);
  json_builder_end_array (b);
  MEMBER (b, "search");
  json_builder_begin_array (b);
  json_builder_add_string_value (b, c->domain);
  json_builder_end_array (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
  return node_to_string (b);
}

/* Writes @path as a vfat image labelled CIDATA holding the NoCloud files:
 * in-process (bg-fat.c), as the user, atomically. */
gboolean
bg_config_drive_build (const BgGuestConfig  *config,
                       GPtrArray            *files,
                       const char           *path,
                       GError              **error)
{
  char *md = meta_data (config);
  char *ud = user_data (config, files);
  char *nc = network_config (config);
  BgFatFile fat[] = {
    { "meta-data", g_bytes_new_take (md, strlen (md)) },
    { "user-data", g_bytes_new_take (ud, strlen (ud)) },
    { "network-config", g_bytes_new_take (nc, strlen (nc)) },
  };
  gboolean ok = bg_fat_write_image (path, "CIDATA", fat, G_N_ELEMENTS (fat), error);

  for (guint i = 0; i < G_N_ELEMENTS (fat); i++)
    g_bytes_unref (fat[i].content);
  return ok;
}

/* ---- keys ---- */

gboolean
bg_ssh_ensure_client_key (const char  *key_path,
                          GError     **error)
{
  g_autofree char *dir = g_path_get_dirname (key_path);
  g_autofree char *lock_path = g_strdup_printf ("%s.lock", key_path);
  const char *argv[] = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "banger", "-f", key_path, NULL };
  gboolean ok;
  int lock;

  if (g_file_test (key_path, G_FILE_TEST_EXISTS))
    return TRUE;
  if (g_mkdir_with_parents (dir, 0700) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot create %s: %s", dir, g_strerror (errno));
      return FALSE;
    }
  /* Several first runs at once must make one key, not race ssh-keygen. */
  lock = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock >= 0)
    while (flock (lock, LOCK_EX) < 0 && errno == EINTR)
      ;
  ok = g_file_test (key_path, G_FILE_TEST_EXISTS) || bg_spawn_run (argv, NULL, error);
  if (lock >= 0)
    close (lock);
  return ok;
}

char *
bg_ssh_read_public_key (const char  *key_path,
                        GError     **error)
{
  g_autofree char *pub = g_strdup_printf ("%s.pub", key_path);
  char *text = NULL;

  if (!g_file_get_contents (pub, &text, NULL, error))
    return NULL;
  return g_strstrip (text);
}

gboolean
bg_ssh_generate_host_key (const char  *dir,
                          char       **private_key,
                          char       **public_key,
                          GError     **error)
{
  g_autofree char *path = g_build_filename (dir, "ssh_host_ed25519_key", NULL);
  g_autofree char *pub = g_strdup_printf ("%s.pub", path);
  const char *argv[] = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "banger-host", "-f", path, NULL };

  if (!g_file_test (path, G_FILE_TEST_EXISTS) && !bg_spawn_run (argv, NULL, error))
    return FALSE;
  if (!g_file_get_contents (path, private_key, NULL, error) ||
      !g_file_get_contents (pub, public_key, NULL, error))
    return FALSE;
  g_strstrip (*public_key);
  return TRUE;
}

char *
bg_known_hosts_path (void)
{
  g_autofree char *state = bg_paths_state_dir ();
  return g_build_filename (state, "known_hosts", NULL);
}

/* Lines naming @alias or @address are dropped; returns what remains. */
static GString *
known_hosts_without (const char *path,
                     const char *alias,
                     const char *address)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  GString *out = g_string_new (NULL);

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return out;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      g_auto(GStrv) fields = g_strsplit (lines[i], " ", 2);
      g_auto(GStrv) hosts = NULL;
      gboolean match = FALSE;

      if (*lines[i] == '\0')
        continue;
      hosts = g_strsplit (fields[0], ",", -1);
      for (guint j = 0; hosts[j]; j++)
        match |= g_strcmp0 (hosts[j], alias) == 0 || (address && g_strcmp0 (hosts[j], address) == 0);
      if (!match)
        g_string_append_printf (out, "%s\n", lines[i]);
    }
  return out;
}

/* Parallel `vm up`s edit the same file: serialize on a lock beside it. */
static int
known_hosts_lock (const char *path)
{
  g_autofree char *lock = g_strdup_printf ("%s.lock", path);
  g_autofree char *dir = g_path_get_dirname (path);
  int fd;

  g_mkdir_with_parents (dir, 0700);
  fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0)
    while (flock (fd, LOCK_EX) < 0 && errno == EINTR)
      ;
  return fd;
}

static void
known_hosts_unlock (int fd)
{
  if (fd >= 0)
    close (fd);
}

gboolean
bg_known_hosts_add (const char  *path,
                    const char  *alias,
                    const char  *address,
                    const char  *public_key,
                    GError     **error)
{
  g_auto(GStrv) key = g_strsplit (public_key, " ", 3);
  g_autoptr(GString) text = NULL;
  int lock;
  gboolean ok;

  if (g_strv_length (key) < 2)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "not an SSH public key: %.40s", public_key);
      return FALSE;
    }
  lock = known_hosts_lock (path);
  text = known_hosts_without (path, alias, address);
  g_string_append_printf (text, "%s%s%s %s %s\n", alias, address ? "," : "", address ? address : "",
                          key[0], key[1]);
  ok = bg_file_replace (path, text->str, text->len, 0600, error);
  known_hosts_unlock (lock);
  return ok;
}

gboolean
bg_known_hosts_remove (const char  *path,
                       const char  *alias,
                       const char  *address,
                       GError     **error)
{
  g_autoptr(GString) text = NULL;
  int lock;
  gboolean ok;

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;
  lock = known_hosts_lock (path);
  text = known_hosts_without (path, alias, address);
  ok = bg_file_replace (path, text->str, text->len, 0600, error);
  known_hosts_unlock (lock);
  return ok;
}

/* The exact ssh command line: banger's key only, banger's known_hosts
 * only, the pinned key required. @command elements stay separate argv
 * elements; ssh joins them for the remote shell, as it always does. */
char **
bg_ssh_build_argv (const char         *key,
                   const char         *known_hosts,
                   const char         *alias,
                   const char         *user,
                   const char         *address,
                   const char * const *command,
                   gboolean            batch)
{
  GPtrArray *argv = g_ptr_array_new ();

  {
    char *ssh = bg_program_find ("ssh");
    g_ptr_array_add (argv, ssh ? ssh : g_strdup ("ssh"));
  }
  g_ptr_array_add (argv, g_strdup ("-i"));
  g_ptr_array_add (argv, g_strdup (key));
  g_ptr_array_add (argv, g_strdup ("-o"));
  g_ptr_array_add (argv, g_strdup ("IdentitiesOnly=yes"));
  g_ptr_array_add (argv, g_strdup ("-o"));
  g_ptr_array_add (argv, g_strdup_printf ("UserKnownHostsFile=%s", known_hosts));
  g_ptr_array_add (argv, g_strdup ("-o"));
  g_ptr_array_add (argv, g_strdup ("GlobalKnownHostsFile=/dev/null"));
  g_ptr_array_add (argv, g_strdup ("-o"));
  g_ptr_array_add (argv, g_strdup ("StrictHostKeyChecking=yes"));
  g_ptr_array_add (argv, g_strdup ("-o"));
  g_ptr_array_add (argv, g_strdup_printf ("HostKeyAlias=%s", alias));
  if (batch)
    {
      g_ptr_array_add (argv, g_strdup ("-o"));
      g_ptr_array_add (argv, g_strdup ("BatchMode=yes"));
      g_ptr_array_add (argv, g_strdup ("-o"));
      g_ptr_array_add (argv, g_strdup ("ConnectTimeout=5"));
    }
  g_ptr_array_add (argv, g_strdup ("-l"));
  g_ptr_array_add (argv, g_strdup (user));
  g_ptr_array_add (argv, g_strdup (address));
  for (guint i = 0; command && command[i]; i++)
    g_ptr_array_add (argv, g_strdup (command[i]));
  g_ptr_array_add (argv, NULL);
  return (char **) g_ptr_array_free (argv, FALSE);
}

char *
bg_ssh_config_block (const char *name,
                     const char *alias,
                     const char *address,
                     const char *user,
                     const char *key,
                     const char *known_hosts)
{
  return g_strdup_printf ("Host %s %s\n"
                          "    HostName %s\n"
                          "    User %s\n"
                          "    IdentityFile %s\n"
                          "    IdentitiesOnly yes\n"
                          "    UserKnownHostsFile %s\n"
                          "    StrictHostKeyChecking yes\n"
                          "    HostKeyAlias %s\n",
                          name, alias, address, user, key, known_hosts, alias);
}

/* ---- file sync ---- */

static gboolean
below (const char *path,
       const char *dir)
{
  gsize n = strlen (dir);
  return strncmp (path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0') && path[n] != '\0';
}

typedef struct {
  const char *home;
  guint64     limit;
  guint64     total;
  GPtrArray  *entries;
  GPtrArray  *skipped;
} SyncWalk;

static gboolean
add_file (SyncWalk     *w,
          const char   *shown,
          const char   *source,
          const char   *relative,
          struct stat  *st,
          GError      **error)
{
  BgSyncEntry *e;

  w->total += st->st_size;
  if (w->total > w->limit)
    {
      g_autofree char *lim = g_format_size_full (w->limit, G_FORMAT_SIZE_IEC_UNITS);
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "sync: %s takes the files to sync over the %s limit ([sync] max-size)", shown, lim);
      return FALSE;
    }
  e = g_new0 (BgSyncEntry, 1);
  e->source = g_strdup (source);
  e->relative = g_strdup (relative);
  e->mode = st->st_mode & 07777;
  g_ptr_array_add (w->entries, e);
  return TRUE;
}

static gboolean
walk_dir (SyncWalk    *w,
          const char  *dir,
          const char  *relative,
          GError     **error)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, error);
  const char *name;

  if (d == NULL)
    return FALSE;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *rel = g_build_filename (relative, name, NULL);
      struct stat st;

      if (lstat (path, &st) < 0)
        continue;
      if (S_ISLNK (st.st_mode))
        {
          g_autofree char *target = realpath (path, NULL);
          /* Never followed: a link inside a synced directory could lead
           * anywhere, now or later. */
          g_ptr_array_add (w->skipped, g_strdup_printf ("%s (a symlink to %s%s)", path,
                                                        target ? target : "nothing",
                                                        target && !below (target, w->home) ? ", outside your home" : ""));
        }
      else if (S_ISDIR (st.st_mode))
        {
          if (!walk_dir (w, path, rel, error))
            return FALSE;
        }
      else if (S_ISREG (st.st_mode))
        {
          if (!add_file (w, path, path, rel, &st, error))
            return FALSE;
        }
      else
        g_ptr_array_add (w->skipped, g_strdup_printf ("%s (not a regular file)", path));
    }
  return TRUE;
}

/* Resolves the configured sync paths. Each must end, after following
 * symlinks, below the real home, and be a regular file or directory;
 * the total must stay under @limit. Errors name the path. */
GPtrArray *
bg_sync_resolve (const char  *home,
                 char       **paths,
                 guint64      limit,
                 GPtrArray  **skipped,
                 GError     **error)
{
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_sync_entry_free);
  g_autoptr(GPtrArray) skip = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *real_home = NULL;
  SyncWalk w;
  struct stat st;

  if (lstat (home, &st) < 0 || S_ISLNK (st.st_mode) || !S_ISDIR (st.st_mode))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                   "sync: your home %s is %s; refusing to sync from it", home,
                   S_ISLNK (st.st_mode) ? "a symlink" : "not a directory");
      return NULL;
    }
  real_home = realpath (home, NULL);
  w = (SyncWalk) { real_home, limit, 0, entries, skip };

  for (guint i = 0; paths && paths[i]; i++)
    {
      g_autofree char *lexical = g_canonicalize_filename (paths[i], home);
      g_autofree char *real = realpath (lexical, NULL);
      g_autofree char *relative = NULL;

      if (real == NULL)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "sync: %s: %s", paths[i], g_strerror (errno));
          return NULL;
        }
      if (!below (real, real_home))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                       "sync: %s resolves to %s, outside your home; refusing to sync it", paths[i], real);
          return NULL;
        }
      if (stat (real, &st) < 0 || (!S_ISREG (st.st_mode) && !S_ISDIR (st.st_mode)))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                       "sync: %s is not a regular file or directory; refusing to sync it", paths[i]);
          return NULL;
        }
      /* Named in the guest as it is named in the home. */
      relative = g_strdup (below (lexical, home) ? lexical + strlen (home) + 1 : real + strlen (real_home) + 1);
      if (S_ISREG (st.st_mode) ? !add_file (&w, paths[i], real, relative, &st, error)
                               : !walk_dir (&w, real, relative, error))
        return NULL;
    }
  if (skipped)
    *skipped = g_steal_pointer (&skip);
  return g_steal_pointer (&entries);
}

/* ---- readiness ---- */

static gboolean
tcp_answers (const char *address,
             guint16     port)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port) };
  struct pollfd p;
  int fd, err = 0;
  socklen_t len = sizeof err;
  gboolean ok;

  if (inet_pton (AF_INET, address, &sa.sin_addr) != 1)
    return FALSE;
  fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return FALSE;
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0 && errno != EINPROGRESS)
    {
      close (fd);
      return FALSE;
    }
  p = (struct pollfd) { fd, POLLOUT, 0 };
  ok = poll (&p, 1, 1000) == 1 && getsockopt (fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
  close (fd);
  return ok;
}

static char *
log_tail (const char *path,
          guint       lines)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) all = NULL;
  guint n, from;

  if (path == NULL || !g_file_get_contents (path, &text, NULL, NULL) || *text == '\0')
    return g_strdup ("  (the console printed nothing)");
  all = g_strsplit (g_strchomp (text), "\n", -1);
  n = g_strv_length (all);
  from = n > lines ? n - lines : 0;
  {
    g_autofree char *joined = g_strjoinv ("\n  ", all + from);
    return g_strdup_printf ("  %s", joined);
  }
}

/* Ready means sshd answers with the pinned host key: TCP first (cheap),
 * then `ssh -o BatchMode=yes … true` with StrictHostKeyChecking. */
gboolean
bg_guest_wait_ready (const char         *address,
                     guint16             port,
                     const char * const *ssh_argv,
                     guint               timeout_ms,
                     const char         *console_log,
                     GError            **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  g_autofree char *last = NULL;

  while (g_get_monotonic_time () < deadline)
    {
      if (tcp_answers (address, port))
        {
          g_autofree char *err = NULL;
          int status;

          if (g_spawn_sync (NULL, (char **) ssh_argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                            NULL, NULL, NULL, &err, &status, NULL) &&
              g_spawn_check_wait_status (status, NULL))
            return TRUE;
          g_free (last);
          last = g_strdup (err ? g_strstrip (err) : NULL);
        }
      g_usleep (200 * 1000);
    }

  {
    g_autofree char *tail = log_tail (console_log, 10);
    g_set_error (error, BG_ERROR, BG_ERROR_TIMEOUT,
                 "the VM at %s did not answer SSH with its pinned host key within %u s%s%s.\n"
                 "Last lines of its console (%s):\n%s\n"
                 "Try 'banger vm logs NAME' for the whole console, or 'banger vm up --no-wait' and "
                 "'banger vm ssh NAME' later.",
                 address, timeout_ms / 1000, last ? "; ssh said: " : "", last ? last : "",
                 console_log ? console_log : "none", tail);
  }
  return FALSE;
}
