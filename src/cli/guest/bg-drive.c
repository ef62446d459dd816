/* bg-drive.c: the guest's configuration, as a NoCloud config drive.
 *
 * A vfat image labelled CIDATA with meta-data, user-data and
 * network-config, written in-process by the user (bg-fat.c), so stock
 * cloud images configure themselves and banger-guest-setup reads the
 * same documents. They are written as JSON, which YAML parsers accept,
 * so every string is escaped by json-glib rather than by hand. The VM's
 * host key goes to the guest here: its private half on the drive, its
 * public half in banger's known_hosts (bg-ssh.c). No trust on first use.
 */
#include <json-glib/json-glib.h>

#include "bg-cli.h"
#include "bg-drive.h"
#include "bg-error.h"
#include "bg-fat.h"
#include "bg-sync.h"

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
  g_free (c->address6);
  g_free (c->gateway6);
  g_free (c->mac);
  g_strfreev (c->dns);
  g_strfreev (c->authorized_keys);
  g_free (c->host_key_private);
  g_free (c->host_key_public);
  g_free (c->instance_id);
  g_free (c);
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
      g_autofree char *b64 = NULL, *path = NULL, *mode = NULL;
      g_autoptr(GBytes) data = NULL;
      g_autoptr(GError) error = NULL;

      if (e->is_dir)
        continue;
      /* Read as it was checked: below the home, no symlink on the way. */
      if ((data = bg_sync_entry_read (e, &error)) == NULL)
        {
          bg_cli_warn ("%s", error->message);
          continue;
        }
      b64 = g_base64_encode (g_bytes_get_data (data, NULL), g_bytes_get_size (data));
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
  if (c->address6 != NULL)
    {
      g_autofree char *cidr6 = g_strdup_printf ("%s/64", c->address6);
      json_builder_add_string_value (b, cidr6);
    }
  json_builder_end_array (b);
  MEMBER (b, "routes");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  /* Not "default": cloud-init 22.4 (Debian 12) rejects it. */
  MEMBER (b, "to"); json_builder_add_string_value (b, "0.0.0.0/0");
  MEMBER (b, "via"); json_builder_add_string_value (b, c->gateway);
  json_builder_end_object (b);
  if (c->address6 != NULL && c->gateway6 != NULL)
    {
      json_builder_begin_object (b);
      MEMBER (b, "to"); json_builder_add_string_value (b, "::/0");
      MEMBER (b, "via"); json_builder_add_string_value (b, c->gateway6);
      json_builder_end_object (b);
    }
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
                       BgFileFlags           flags,
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
  gboolean ok = bg_fat_write_image (path, "CIDATA", fat, G_N_ELEMENTS (fat), flags, error);

  for (guint i = 0; i < G_N_ELEMENTS (fat); i++)
    g_bytes_unref (fat[i].content);
  return ok;
}
