/* bg-seed.c: reading banger's NoCloud drive inside the guest.
 *
 * The CLI writes the three documents as JSON (valid YAML, so cloud-init
 * reads them too); this side parses exactly that JSON with jansson and
 * checks every field it will act on before anything is changed, so a bad
 * drive fails whole rather than half-applied. jansson, not json-glib (the
 * CLI's), because this program is linked static to run in any root and
 * Debian ships jansson's static archive, not json-glib's; jansson is
 * fuzzed continuously by OSS-Fuzz. Duplicate keys and NUL characters in
 * strings are refused by the parser.
 *
 * The drive is found by its FAT volume label (CIDATA) in the boot sector,
 * which needs neither udev's by-label links nor blkid, and is mounted
 * read-only, noexec, only while the documents are read.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <jansson.h>

#include "bg-error.h"
#include "bg-seed.h"

static void
seed_file_free (BgSeedFile *f)
{
  g_free (f->path);
  g_bytes_unref (f->content);
  g_free (f);
}

void
bg_seed_free (BgSeed *s)
{
  if (s == NULL)
    return;
  g_free (s->instance_id);
  g_free (s->hostname);
  g_free (s->fqdn);
  g_free (s->user);
  g_free (s->shell);
  g_free (s->sudo);
  g_strfreev (s->authorized_keys);
  g_free (s->host_key_private);
  g_free (s->host_key_public);
  g_clear_pointer (&s->files, g_ptr_array_unref);
  g_free (s->mac);
  g_free (s->set_name);
  g_strfreev (s->dns);
  g_strfreev (s->search);
  g_free (s);
}

static gboolean
invalid (GError    **error,
         const char *doc,
         const char *field,
         const char *what)
{
  g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: %s: %s", doc, field, what);
  return FALSE;
}

/* The three documents are small (banger writes a few KiB; synced files
 * ride in user-data): anything beyond this is not banger's drive. */
#define MAX_DOCUMENT (64 * 1024 * 1024)

typedef json_t BgJson;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgJson, json_decref)

/* Returns the document's top object (owned by the caller), or NULL. */
static json_t *
parse_object (const char  *doc,
              const char  *text,
              GError     **error)
{
  json_error_t jerr;
  json_t *root;

  /* user-data starts with "#cloud-config"; JSON has no comments. */
  while (text && *text == '#')
    {
      const char *nl = strchr (text, '\n');
      text = nl ? nl + 1 : "";
    }
  root = json_loads (text ? text : "", JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "%s: not the JSON that banger writes (line %d: %s); is this a banger config drive?", doc,
                   jerr.line, jerr.text);
      return NULL;
    }
  if (!json_is_object (root))
    {
      json_decref (root);
      invalid (error, doc, "(document)", "expected an object");
      return NULL;
    }
  return root;
}

/* A string member; NULL with an error if @required and absent, or if
 * present with another type, or holding a line break (every value here
 * ends up in a one-line file or an argv). */
static gboolean
get_string (json_t      *o,
            const char  *doc,
            const char  *where,
            const char  *key,
            gboolean     required,
            gboolean     multiline,
            char       **out,
            GError     **error)
{
  g_autofree char *field = where ? g_strdup_printf ("%s.%s", where, key) : g_strdup (key);
  json_t *n = o ? json_object_get (o, key) : NULL;
  const char *s;

  *out = NULL;
  if (n == NULL || json_is_null (n))
    return required ? invalid (error, doc, field, "missing") : TRUE;
  if (!json_is_string (n))
    return invalid (error, doc, field, "expected a string");
  s = json_string_value (n);
  if (*s == '\0' && required)
    return invalid (error, doc, field, "empty");
  if (!multiline && strpbrk (s, "\n\r") != NULL)
    return invalid (error, doc, field, "has a line break");
  *out = g_strdup (s);
  return TRUE;
}

static gboolean
get_strv (json_t      *o,
          const char  *doc,
          const char  *where,
          const char  *key,
          char      ***out,
          GError     **error)
{
  g_autofree char *field = where ? g_strdup_printf ("%s.%s", where, key) : g_strdup (key);
  json_t *n = o ? json_object_get (o, key) : NULL;
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

  *out = NULL;
  if (n != NULL && !json_is_null (n))
    {
      if (!json_is_array (n))
        return invalid (error, doc, field, "expected a list");
      for (guint i = 0; i < json_array_size (n); i++)
        {
          json_t *e = json_array_get (n, i);
          const char *s;

          if (!json_is_string (e))
            {
              g_autofree char *f = g_strdup_printf ("%s[%u]", field, i);
              return invalid (error, doc, f, "expected a string");
            }
          s = json_string_value (e);
          if (*s == '\0' || strpbrk (s, "\n\r") != NULL)
            {
              g_autofree char *f = g_strdup_printf ("%s[%u]", field, i);
              return invalid (error, doc, f, "empty or has a line break");
            }
          g_strv_builder_add (b, s);
        }
    }
  *out = g_strv_builder_end (b);
  return TRUE;
}

static json_t *
get_object (json_t      *o,
            const char  *key)
{
  json_t *n = o ? json_object_get (o, key) : NULL;
  return json_is_object (n) ? n : NULL;
}

/* RFC 1123 labels, as the CLI's VM names already are. */
static gboolean
valid_hostname (const char *s,
                gboolean    dots)
{
  gsize label = 0;

  if (*s == '\0' || strlen (s) > 253)
    return FALSE;
  for (const char *c = s; *c; c++)
    {
      if (*c == '.' && dots && label > 0 && c[-1] != '-')
        label = 0;
      else if (g_ascii_isalnum (*c) || (*c == '-' && label > 0))
        {
          if (++label > 63)
            return FALSE;
        }
      else
        return FALSE;
    }
  return label > 0 && s[strlen (s) - 1] != '-';
}

/* What useradd accepts by default on Debian, minus the odd corners. */
static gboolean
valid_user (const char *s)
{
  if (!(g_ascii_islower (*s) || *s == '_') || strlen (s) > 32)
    return FALSE;
  for (const char *c = s + 1; *c; c++)
    if (!(g_ascii_islower (*c) || g_ascii_isdigit (*c) || *c == '_' || *c == '-'))
      return FALSE;
  return TRUE;
}

/* Absolute, no empty, "." or ".." components. */
static gboolean
valid_file_path (const char *path)
{
  g_auto(GStrv) parts = NULL;

  if (path[0] != '/' || path[1] == '\0')
    return FALSE;
  parts = g_strsplit (path + 1, "/", -1);
  for (guint i = 0; parts[i]; i++)
    if (*parts[i] == '\0' || g_str_equal (parts[i], ".") || g_str_equal (parts[i], ".."))
      return FALSE;
  return TRUE;
}

static gboolean
parse_ipv4 (const char *s,
            guint32    *out)
{
  struct in_addr a;

  if (inet_pton (AF_INET, s, &a) != 1)
    return FALSE;
  *out = ntohl (a.s_addr);
  return TRUE;
}

static gboolean
parse_cidr (const char *s,
            guint32    *address,
            guint      *prefix)
{
  g_auto(GStrv) parts = g_strsplit (s, "/", 2);
  guint64 p;

  if (parts[1] == NULL || !parse_ipv4 (parts[0], address) ||
      !g_ascii_string_to_unsigned (parts[1], 10, 0, 32, &p, NULL))
    return FALSE;
  *prefix = p;
  return TRUE;
}

static gboolean
parse_cidr6 (const char *s,
             guint8      address[16],
             guint      *prefix)
{
  g_auto(GStrv) parts = g_strsplit (s, "/", 2);
  guint64 p;

  if (parts[1] == NULL || inet_pton (AF_INET6, parts[0], address) != 1 ||
      !g_ascii_string_to_unsigned (parts[1], 10, 1, 128, &p, NULL))
    return FALSE;
  *prefix = p;
  return TRUE;
}

/* One IPv4 address, and at most one IPv6 address, each with its prefix. */
static gboolean
parse_addresses (BgSeed      *s,
                 char       **addresses)
{
  gboolean v4 = FALSE;

  for (guint i = 0; addresses[i]; i++)
    {
      if (!v4 && parse_cidr (addresses[i], &s->address, &s->prefix))
        v4 = TRUE;
      else if (!s->has_address6 && parse_cidr6 (addresses[i], s->address6, &s->prefix6))
        s->has_address6 = TRUE;
      else
        return FALSE;
    }
  return v4;
}

static gboolean
parse_meta_data (BgSeed      *s,
                 const char  *text,
                 GError     **error)
{
  g_autoptr(BgJson) o = parse_object ("meta-data", text, error);

  if (o == NULL || !get_string (o, "meta-data", NULL, "instance-id", TRUE, FALSE, &s->instance_id, error))
    return FALSE;
  if (strchr (s->instance_id, '/') != NULL)
    return invalid (error, "meta-data", "instance-id", "has a '/'");
  return TRUE;
}

static gboolean
parse_files (BgSeed      *s,
             json_t      *ud,
             GError     **error)
{
  json_t *n = json_object_get (ud, "write_files");

  s->files = g_ptr_array_new_with_free_func ((GDestroyNotify) seed_file_free);
  if (n == NULL || json_is_null (n))
    return TRUE;
  if (!json_is_array (n))
    return invalid (error, "user-data", "write_files", "expected a list");
  for (guint i = 0; i < json_array_size (n); i++)
    {
      g_autofree char *where = g_strdup_printf ("write_files[%u]", i);
      g_autofree char *path = NULL, *content = NULL, *encoding = NULL, *perms = NULL;
      json_t *f = json_is_object (json_array_get (n, i)) ? json_array_get (n, i) : NULL;
      BgSeedFile *file;
      guint64 mode = 0644;

      if (f == NULL)
        return invalid (error, "user-data", where, "expected an object");
      if (!get_string (f, "user-data", where, "path", TRUE, FALSE, &path, error) ||
          !get_string (f, "user-data", where, "content", FALSE, TRUE, &content, error) ||
          !get_string (f, "user-data", where, "encoding", FALSE, FALSE, &encoding, error) ||
          !get_string (f, "user-data", where, "permissions", FALSE, FALSE, &perms, error))
        return FALSE;
      if (!valid_file_path (path))
        {
          g_autofree char *field = g_strdup_printf ("%s.path", where);
          return invalid (error, "user-data", field, "must be absolute, without '.' or '..' components");
        }
      if (perms && !g_ascii_string_to_unsigned (perms, 8, 0, 07777, &mode, NULL))
        {
          g_autofree char *field = g_strdup_printf ("%s.permissions", where);
          return invalid (error, "user-data", field, "expected an octal mode such as \"0644\"");
        }
      file = g_new0 (BgSeedFile, 1);
      file->path = g_steal_pointer (&path);
      file->mode = mode;
      g_ptr_array_add (s->files, file);
      if (encoding == NULL || g_str_equal (encoding, "text/plain"))
        file->content = g_bytes_new (content ? content : "", content ? strlen (content) : 0);
      else if (g_str_equal (encoding, "b64") || g_str_equal (encoding, "base64"))
        {
          gsize len = 0;
          guchar *data = content ? g_base64_decode (content, &len) : g_malloc0 (1);
          file->content = g_bytes_new_take (data, len);
        }
      else
        {
          g_autofree char *field = g_strdup_printf ("%s.encoding", where);
          return invalid (error, "user-data", field, "only \"b64\" and plain text are supported");
        }
    }
  return TRUE;
}

static gboolean
parse_user_data (BgSeed      *s,
                 const char  *text,
                 GError     **error)
{
  g_autoptr(BgJson) o = parse_object ("user-data", text, error);
  json_t *keys, *user, *users;

  if (o == NULL ||
      !get_string (o, "user-data", NULL, "hostname", TRUE, FALSE, &s->hostname, error) ||
      !get_string (o, "user-data", NULL, "fqdn", FALSE, FALSE, &s->fqdn, error))
    return FALSE;
  if (!valid_hostname (s->hostname, FALSE))
    return invalid (error, "user-data", "hostname", "not a host name (letters, digits and '-')");
  if (s->fqdn && !valid_hostname (s->fqdn, TRUE))
    return invalid (error, "user-data", "fqdn", "not a domain name");

  users = json_object_get (o, "users");
  if (!json_is_array (users) || json_array_size (users) != 1)
    return invalid (error, "user-data", "users", "expected a list of exactly one user (the one banger made)");
  user = json_is_object (json_array_get (users, 0)) ? json_array_get (users, 0) : NULL;
  if (user == NULL)
    return invalid (error, "user-data", "users[0]", "expected an object");
  if (!get_string (user, "user-data", "users[0]", "name", TRUE, FALSE, &s->user, error) ||
      !get_string (user, "user-data", "users[0]", "shell", FALSE, FALSE, &s->shell, error) ||
      !get_string (user, "user-data", "users[0]", "sudo", FALSE, FALSE, &s->sudo, error) ||
      !get_strv (user, "user-data", "users[0]", "ssh_authorized_keys", &s->authorized_keys, error))
    return FALSE;
  if (!valid_user (s->user) || g_str_equal (s->user, "root"))
    return invalid (error, "user-data", "users[0].name", "not a user name useradd accepts (and not root)");
  if (s->shell == NULL)
    s->shell = g_strdup ("/bin/bash");
  else if (!valid_file_path (s->shell))
    return invalid (error, "user-data", "users[0].shell", "expected an absolute path");

  keys = get_object (o, "ssh_keys");
  if (!get_string (keys, "user-data", "ssh_keys", "ed25519_private", TRUE, TRUE, &s->host_key_private, error) ||
      !get_string (keys, "user-data", "ssh_keys", "ed25519_public", TRUE, FALSE, &s->host_key_public, error))
    return FALSE;
  if (!g_str_has_prefix (s->host_key_public, "ssh-ed25519 "))
    return invalid (error, "user-data", "ssh_keys.ed25519_public", "not an ssh-ed25519 public key");
  if (!g_str_has_prefix (s->host_key_private, "-----BEGIN OPENSSH PRIVATE KEY-----"))
    return invalid (error, "user-data", "ssh_keys.ed25519_private", "not an OpenSSH private key");

  return parse_files (s, o, error);
}

static gboolean
parse_network (BgSeed      *s,
               const char  *text,
               GError     **error)
{
  g_autoptr(BgJson) o = parse_object ("network-config", text, error);
  json_t *eths, *eth, *match, *ns, *routes;
  g_auto(GStrv) addresses = NULL;
  g_autofree char *where = NULL, *gw4 = NULL;
  const char *name;

  if (o == NULL)
    return FALSE;
  if (!json_is_integer (json_object_get (o, "version")) || json_integer_value (json_object_get (o, "version")) != 2)
    return invalid (error, "network-config", "version", "expected 2");
  eths = get_object (o, "ethernets");
  if (eths == NULL || json_object_size (eths) != 1)
    return invalid (error, "network-config", "ethernets", "expected exactly one interface (the one banger made)");
  name = json_object_iter_key (json_object_iter (eths));
  where = g_strdup_printf ("ethernets.%s", name);
  eth = get_object (eths, name);
  if (eth == NULL)
    return invalid (error, "network-config", where, "expected an object");

  {
    g_autofree char *mwhere = g_strdup_printf ("%s.match", where);
    match = get_object (eth, "match");
    if (!get_string (match, "network-config", mwhere, "macaddress", TRUE, FALSE, &s->mac, error))
      return FALSE;
    if (strlen (s->mac) != 17)
      return invalid (error, "network-config", mwhere, "macaddress is not a MAC address");
  }
  if (!get_string (eth, "network-config", where, "set-name", FALSE, FALSE, &s->set_name, error))
    return FALSE;
  if (s->set_name && (strlen (s->set_name) > 15 || strpbrk (s->set_name, "/: \t") || g_str_equal (s->set_name, ".") ||
                      g_str_equal (s->set_name, "..")))
    return invalid (error, "network-config", where, "set-name is not an interface name");

  if (!get_strv (eth, "network-config", where, "addresses", &addresses, error))
    return FALSE;
  if (!parse_addresses (s, addresses))
    {
      g_autofree char *field = g_strdup_printf ("%s.addresses", where);
      return invalid (error, "network-config", field,
                      "expected one IPv4 address with its prefix (a.b.c.d/n) and at most one IPv6 address "
                      "with its prefix");
    }

  /* The default route, as "routes" (what banger writes) or "gateway4". */
  if (!get_string (eth, "network-config", where, "gateway4", FALSE, FALSE, &gw4, error))
    return FALSE;
  if (gw4 && !parse_ipv4 (gw4, &s->gateway))
    return invalid (error, "network-config", where, "gateway4 is not an IPv4 address");
  routes = json_object_get (eth, "routes");
  if (json_is_array (routes))
    {
      for (guint i = 0; i < json_array_size (routes); i++)
        {
          g_autofree char *rwhere = g_strdup_printf ("%s.routes[%u]", where, i);
          g_autofree char *to = NULL, *via = NULL;
          json_t *r = json_is_object (json_array_get (routes, i)) ? json_array_get (routes, i) : NULL;

          if (!get_string (r, "network-config", rwhere, "to", TRUE, FALSE, &to, error) ||
              !get_string (r, "network-config", rwhere, "via", TRUE, FALSE, &via, error))
            return FALSE;
          if (g_str_equal (to, "::/0"))
            {
              if (inet_pton (AF_INET6, via, s->gateway6) != 1)
                return invalid (error, "network-config", rwhere, "via is not an IPv6 address");
              s->has_gateway6 = TRUE;
              continue;
            }
          if (!g_str_equal (to, "0.0.0.0/0") && !g_str_equal (to, "default"))
            return invalid (error, "network-config", rwhere, "only the default routes (0.0.0.0/0, ::/0) are supported");
          if (!parse_ipv4 (via, &s->gateway))
            return invalid (error, "network-config", rwhere, "via is not an IPv4 address");
        }
    }
  else if (routes && !json_is_null (routes))
    {
      g_autofree char *field = g_strdup_printf ("%s.routes", where);
      return invalid (error, "network-config", field, "expected a list");
    }

  {
    g_autofree char *nwhere = g_strdup_printf ("%s.nameservers", where);
    ns = get_object (eth, "nameservers");
    if (!get_strv (ns, "network-config", nwhere, "addresses", &s->dns, error) ||
        !get_strv (ns, "network-config", nwhere, "search", &s->search, error))
      return FALSE;
    for (guint i = 0; s->dns[i]; i++)
      {
        guint32 unused;
        if (!parse_ipv4 (s->dns[i], &unused))
          return invalid (error, "network-config", nwhere, "addresses: not IPv4 addresses");
      }
    for (guint i = 0; s->search[i]; i++)
      if (!valid_hostname (s->search[i], TRUE))
        return invalid (error, "network-config", nwhere, "search: not domain names");
  }
  return TRUE;
}

BgSeed *
bg_seed_parse (const char  *meta_data,
               const char  *user_data,
               const char  *network_config,
               GError     **error)
{
  g_autoptr(BgSeed) s = g_new0 (BgSeed, 1);

  if (!parse_meta_data (s, meta_data, error) ||
      !parse_user_data (s, user_data, error) ||
      !parse_network (s, network_config, error))
    return NULL;
  return g_steal_pointer (&s);
}

/* The whole file, NUL-terminated, if it is a regular file of at most
 * MAX_DOCUMENT bytes. */
static char *
read_document (const char  *path,
               GError     **error)
{
  g_autofree char *text = NULL;
  struct stat st;
  gsize done = 0;
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

  if (fd < 0 || fstat (fd, &st) < 0)
    {
      int errsv = errno;
      if (fd >= 0)
        close (fd);
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot read %s: %s", path, g_strerror (errsv));
      return NULL;
    }
  if (!S_ISREG (st.st_mode) || st.st_size > MAX_DOCUMENT)
    {
      close (fd);
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: not a regular file of at most %d MiB", path,
                   MAX_DOCUMENT >> 20);
      return NULL;
    }
  text = g_malloc (st.st_size + 1);
  while (done < (gsize) st.st_size)
    {
      ssize_t n = read (fd, text + done, st.st_size - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      done += n;
    }
  close (fd);
  text[done] = '\0';
  return g_steal_pointer (&text);
}

BgSeed *
bg_seed_load_dir (const char  *dir,
                  GError     **error)
{
  const char *names[] = { "meta-data", "user-data", "network-config" };
  char *texts[G_N_ELEMENTS (names)] = { NULL, };
  BgSeed *seed = NULL;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *path = g_build_filename (dir, names[i], NULL);
      g_autoptr(GError) local = NULL;

      if ((texts[i] = read_document (path, &local)) == NULL)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: %s", names[i], local->message);
          goto out;
        }
    }
  seed = bg_seed_parse (texts[0], texts[1], texts[2], error);
out:
  for (i = 0; i < G_N_ELEMENTS (names); i++)
    g_free (texts[i]);
  return seed;
}

/* The FAT boot sector carries the volume label (banger's writer and
 * mkfs.vfat -n both put it there): at byte 43 for FAT12/16, 71 for FAT32,
 * each after a 0x29 extended boot signature. */
gboolean
bg_seed_is_cidata (int fd)
{
  guint8 bs[512];
  gsize at;

  if (pread (fd, bs, sizeof bs, 0) != (ssize_t) sizeof bs || bs[510] != 0x55 || bs[511] != 0xAA)
    return FALSE;
  if (bs[22] == 0 && bs[23] == 0)       /* BPB_FATSz16 == 0: FAT32 */
    at = bs[66] == 0x29 ? 71 : 0;
  else
    at = bs[38] == 0x29 ? 43 : 0;
  return at != 0 && g_ascii_strncasecmp ((const char *) bs + at, "CIDATA     ", 11) == 0;
}

static char *
scan_block_devices (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/sys/class/block", 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *dev = g_build_filename ("/dev", name, NULL);
      int fd = open (dev, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
      gboolean found;

      if (fd < 0)
        continue;
      found = bg_seed_is_cidata (fd);
      close (fd);
      if (found)
        return g_steal_pointer (&dev);
    }
  return NULL;
}

/* The drive is probed by the kernel with the root disk, but a slow
 * (emulated) machine may still be settling: look again for a while. */
char *
bg_seed_find_device (guint    timeout_ms,
                     GError **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  for (;;)
    {
      char *dev = scan_block_devices ();
      if (dev != NULL)
        return dev;
      if (g_get_monotonic_time () >= deadline)
        break;
      g_usleep (100 * 1000);
    }
  g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND,
               "no drive labelled CIDATA after %u ms: was this VM started by banger?", timeout_ms);
  return NULL;
}

BgSeed *
bg_seed_load_device (const char  *device,
                     GError     **error)
{
  g_autofree char *mnt = g_strdup ("/run/banger-guest-setup-XXXXXX");
  BgSeed *seed;

  if (g_mkdtemp_full (mnt, 0700) == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot create %s: %s", mnt, g_strerror (errno));
      return NULL;
    }
  if (mount (device, mnt, "vfat", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "") < 0)
    {
      int saved = errno;
      g_rmdir (mnt);
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot mount %s (vfat, read-only): %s", device,
                   g_strerror (saved));
      return NULL;
    }
  seed = bg_seed_load_dir (mnt, error);
  umount2 (mnt, MNT_DETACH);
  g_rmdir (mnt);
  return seed;
}
