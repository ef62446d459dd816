/* bg-seed.c: reading banger's NoCloud drive inside the guest.
 *
 * The CLI writes the three documents as JSON (valid YAML, so cloud-init
 * reads them too); this side parses exactly that JSON with json-glib and
 * checks every field it will act on before anything is changed, so a bad
 * drive fails whole rather than half-applied.
 *
 * The drive is found by its FAT volume label (CIDATA) in the boot sector,
 * which needs neither udev's by-label links nor blkid, and is mounted
 * read-only, noexec, only while the documents are read.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

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

static JsonObject *
parse_object (const char  *doc,
              const char  *text,
              JsonParser  *parser,
              GError     **error)
{
  g_autoptr(GError) local = NULL;
  JsonNode *root;

  /* user-data starts with "#cloud-config"; JSON has no comments. */
  while (text && *text == '#')
    {
      const char *nl = strchr (text, '\n');
      text = nl ? nl + 1 : "";
    }
  if (!json_parser_load_from_data (parser, text ? text : "", -1, &local))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "%s: not the JSON that banger writes (%s); is this a banger config drive?", doc, local->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      invalid (error, doc, "(document)", "expected an object");
      return NULL;
    }
  return json_node_get_object (root);
}

/* A string member; NULL with an error if @required and absent, or if
 * present with another type, or holding a line break (every value here
 * ends up in a one-line file or an argv). */
static gboolean
get_string (JsonObject  *o,
            const char  *doc,
            const char  *where,
            const char  *key,
            gboolean     required,
            gboolean     multiline,
            char       **out,
            GError     **error)
{
  g_autofree char *field = where ? g_strdup_printf ("%s.%s", where, key) : g_strdup (key);
  JsonNode *n = o ? json_object_get_member (o, key) : NULL;
  const char *s;

  *out = NULL;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return required ? invalid (error, doc, field, "missing") : TRUE;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return invalid (error, doc, field, "expected a string");
  s = json_node_get_string (n);
  if (*s == '\0' && required)
    return invalid (error, doc, field, "empty");
  if (!multiline && strpbrk (s, "\n\r") != NULL)
    return invalid (error, doc, field, "has a line break");
  *out = g_strdup (s);
  return TRUE;
}

static gboolean
get_strv (JsonObject  *o,
          const char  *doc,
          const char  *where,
          const char  *key,
          char      ***out,
          GError     **error)
{
  g_autofree char *field = where ? g_strdup_printf ("%s.%s", where, key) : g_strdup (key);
  JsonNode *n = o ? json_object_get_member (o, key) : NULL;
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  JsonArray *a;

  *out = NULL;
  if (n != NULL && !JSON_NODE_HOLDS_NULL (n))
    {
      if (!JSON_NODE_HOLDS_ARRAY (n))
        return invalid (error, doc, field, "expected a list");
      a = json_node_get_array (n);
      for (guint i = 0; i < json_array_get_length (a); i++)
        {
          JsonNode *e = json_array_get_element (a, i);
          const char *s;

          if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING)
            {
              g_autofree char *f = g_strdup_printf ("%s[%u]", field, i);
              return invalid (error, doc, f, "expected a string");
            }
          s = json_node_get_string (e);
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

static JsonObject *
get_object (JsonObject  *o,
            const char  *key)
{
  JsonNode *n = o ? json_object_get_member (o, key) : NULL;
  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
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
  g_autoptr(JsonParser) p = json_parser_new ();
  JsonObject *o = parse_object ("meta-data", text, p, error);

  if (o == NULL || !get_string (o, "meta-data", NULL, "instance-id", TRUE, FALSE, &s->instance_id, error))
    return FALSE;
  if (strchr (s->instance_id, '/') != NULL)
    return invalid (error, "meta-data", "instance-id", "has a '/'");
  return TRUE;
}

static gboolean
parse_files (BgSeed      *s,
             JsonObject  *ud,
             GError     **error)
{
  JsonNode *n = json_object_get_member (ud, "write_files");
  JsonArray *a;

  s->files = g_ptr_array_new_with_free_func ((GDestroyNotify) seed_file_free);
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (n))
    return invalid (error, "user-data", "write_files", "expected a list");
  a = json_node_get_array (n);
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      g_autofree char *where = g_strdup_printf ("write_files[%u]", i);
      g_autofree char *path = NULL, *content = NULL, *encoding = NULL, *perms = NULL;
      JsonNode *e = json_array_get_element (a, i);
      JsonObject *f = JSON_NODE_HOLDS_OBJECT (e) ? json_node_get_object (e) : NULL;
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
  g_autoptr(JsonParser) p = json_parser_new ();
  JsonObject *o = parse_object ("user-data", text, p, error);
  JsonObject *keys, *user;
  JsonNode *users;

  if (o == NULL ||
      !get_string (o, "user-data", NULL, "hostname", TRUE, FALSE, &s->hostname, error) ||
      !get_string (o, "user-data", NULL, "fqdn", FALSE, FALSE, &s->fqdn, error))
    return FALSE;
  if (!valid_hostname (s->hostname, FALSE))
    return invalid (error, "user-data", "hostname", "not a host name (letters, digits and '-')");
  if (s->fqdn && !valid_hostname (s->fqdn, TRUE))
    return invalid (error, "user-data", "fqdn", "not a domain name");

  users = json_object_get_member (o, "users");
  if (users == NULL || !JSON_NODE_HOLDS_ARRAY (users) || json_array_get_length (json_node_get_array (users)) != 1)
    return invalid (error, "user-data", "users", "expected a list of exactly one user (the one banger made)");
  user = JSON_NODE_HOLDS_OBJECT (json_array_get_element (json_node_get_array (users), 0))
         ? json_array_get_object_element (json_node_get_array (users), 0) : NULL;
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
  g_autoptr(JsonParser) p = json_parser_new ();
  JsonObject *o = parse_object ("network-config", text, p, error);
  JsonObject *eths, *eth, *match, *ns;
  g_autoptr(GList) names = NULL;
  g_auto(GStrv) addresses = NULL;
  g_autofree char *where = NULL, *gw4 = NULL;
  JsonNode *routes;

  if (o == NULL)
    return FALSE;
  if (json_object_get_int_member_with_default (o, "version", 0) != 2)
    return invalid (error, "network-config", "version", "expected 2");
  eths = get_object (o, "ethernets");
  names = eths ? json_object_get_members (eths) : NULL;
  if (names == NULL || names->next != NULL)
    return invalid (error, "network-config", "ethernets", "expected exactly one interface (the one banger made)");
  where = g_strdup_printf ("ethernets.%s", (char *) names->data);
  eth = get_object (eths, names->data);
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
  routes = json_object_get_member (eth, "routes");
  if (routes && JSON_NODE_HOLDS_ARRAY (routes))
    {
      JsonArray *a = json_node_get_array (routes);
      for (guint i = 0; i < json_array_get_length (a); i++)
        {
          g_autofree char *rwhere = g_strdup_printf ("%s.routes[%u]", where, i);
          g_autofree char *to = NULL, *via = NULL;
          JsonObject *r = JSON_NODE_HOLDS_OBJECT (json_array_get_element (a, i))
                          ? json_array_get_object_element (a, i) : NULL;

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
  else if (routes && !JSON_NODE_HOLDS_NULL (routes))
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

      if (!g_file_get_contents (path, &texts[i], NULL, &local))
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
