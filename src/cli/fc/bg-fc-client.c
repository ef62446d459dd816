/* bg-fc-client.c: Firecracker's HTTP API over its unix socket, libsoup-3.
 *
 * The session's "remote-connectable" is the socket, so every request goes
 * there whatever the URL's host. Bodies are JSON built with json-glib;
 * a 4xx/5xx answer becomes an error carrying Firecracker's fault_message.
 * Paths inside bodies are the jail-relative ones the mechanism returned.
 */
#include <libsoup/soup.h>

#include "bg-error.h"
#include "bg-fc-client.h"

/* A VMM answers in milliseconds; one that takes this long is stuck. */
#define REQUEST_TIMEOUT_S 10

struct _BgFcClient {
  SoupSession *session;
  char        *socket;
};

BgFcClient *
bg_fc_client_new (const char *api_socket)
{
  BgFcClient *client = g_new0 (BgFcClient, 1);
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (api_socket);

  client->socket = g_strdup (api_socket);
  client->session = soup_session_new_with_options ("remote-connectable", address,
                                                   "timeout", REQUEST_TIMEOUT_S,
                                                   "max-conns-per-host", 1,
                                                   NULL);
  return client;
}

void
bg_fc_client_free (BgFcClient *client)
{
  if (client == NULL)
    return;
  g_clear_object (&client->session);
  g_free (client->socket);
  g_free (client);
}

static char *
fault_message (GBytes *bytes)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonNode *root;
  gsize len = 0;
  const char *data = bytes ? g_bytes_get_data (bytes, &len) : NULL;

  if (data && json_parser_load_from_data (parser, data, len, NULL) &&
      (root = json_parser_get_root (parser)) != NULL && JSON_NODE_HOLDS_OBJECT (root) &&
      json_object_has_member (json_node_get_object (root), "fault_message"))
    return g_strdup (json_object_get_string_member (json_node_get_object (root), "fault_message"));
  return data && len ? g_strndup (data, MIN (len, 512)) : g_strdup ("(no message)");
}

/* Returns the parsed answer, or a JSON null for an empty (204) one. */
JsonNode *
bg_fc_client_request (BgFcClient  *client,
                      const char  *method,
                      const char  *path,
                      JsonNode    *body,
                      GError     **error)
{
  g_autofree char *url = g_strdup_printf ("http://localhost%s", path);
  g_autoptr(SoupMessage) msg = soup_message_new (method, url);
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) local = NULL;
  guint status;

  if (msg == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "bad API path %s", path);
      return NULL;
    }
  if (body != NULL)
    {
      char *text = json_to_string (body, FALSE);
      g_autoptr(GBytes) bytes = g_bytes_new_take (text, strlen (text));
      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
    }
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Accept", "application/json");

  /* The socket file exists from bind(); a VMM that has not reached
   * listen() yet refuses the connection for a moment. */
  for (int attempt = 0; ; attempt++)
    {
      reply = soup_session_send_and_read (client->session, msg, NULL, &local);
      if (reply != NULL || attempt >= 100 ||
          !g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
        break;
      g_clear_error (&local);
      g_usleep (2000);
    }
  if (reply == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot reach the VMM at %s: %s",
                   client->socket, local->message);
      return NULL;
    }
  status = soup_message_get_status (msg);
  if (status >= 400)
    {
      g_autofree char *fault = fault_message (reply);
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "Firecracker refused %s %s (%u): %s",
                   method, path, status, fault);
      return NULL;
    }
  if (g_bytes_get_size (reply) == 0)
    return json_node_new (JSON_NODE_NULL);
  {
    g_autoptr(JsonParser) parser = json_parser_new ();
    gsize len;
    const char *data = g_bytes_get_data (reply, &len);

    if (!json_parser_load_from_data (parser, data, len, &local))
      {
        g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the VMM answered %s %s with invalid JSON: %s",
                     method, path, local->message);
        return NULL;
      }
    return json_node_copy (json_parser_get_root (parser));
  }
}

/* Sends @body, an a{sv} (a floating one is taken), as the JSON object
 * it maps to: every request body of the API is one. */
static gboolean
send_body (BgFcClient  *client,
           const char  *method,
           const char  *path,
           GVariant    *body,
           GError     **error)
{
  g_autoptr(GVariant) owned = g_variant_ref_sink (body);
  g_autoptr(JsonNode) node = json_gvariant_serialize (owned);
  g_autoptr(JsonNode) reply = bg_fc_client_request (client, method, path, node, error);

  return reply != NULL;
}

static gboolean
add_drive (BgFcClient       *client,
           const BgFcDrive  *drive,
           GError          **error)
{
  g_autofree char *url = g_strdup_printf ("/drives/%s", drive->id);

  return send_body (client, "PUT", url,
                    g_variant_new_parsed ("{'drive_id': <%s>, 'path_on_host': <%s>, "
                                          "'is_root_device': <%b>, 'is_read_only': <%b>}",
                                          drive->id, drive->path, drive->is_root, drive->read_only),
                    error);
}

gboolean
bg_fc_configure (BgFcClient         *client,
                 const BgFcMachine  *m,
                 GError            **error)
{
  g_auto(GVariantDict) boot = G_VARIANT_DICT_INIT (NULL);
  g_auto(GVariantDict) net = G_VARIANT_DICT_INIT (NULL);

  g_variant_dict_insert (&boot, "kernel_image_path", "s", m->kernel);
  if (m->boot_args)
    g_variant_dict_insert (&boot, "boot_args", "s", m->boot_args);
  if (m->initrd)
    g_variant_dict_insert (&boot, "initrd_path", "s", m->initrd);
  g_variant_dict_insert (&net, "iface_id", "s", "eth0");
  g_variant_dict_insert (&net, "host_dev_name", "s", m->tap);
  if (m->guest_mac)
    g_variant_dict_insert (&net, "guest_mac", "s", m->guest_mac);

  if (!send_body (client, "PUT", "/machine-config",
                  g_variant_new_parsed ("{'vcpu_count': <%u>, 'mem_size_mib': <%u>}", m->vcpus, m->mem_mib),
                  error) ||
      !send_body (client, "PUT", "/boot-source", g_variant_dict_end (&boot), error))
    return FALSE;
  for (const BgFcDrive *d = m->drives; d != NULL && d->id != NULL; d++)
    if (!add_drive (client, d, error))
      return FALSE;
  return send_body (client, "PUT", "/network-interfaces/eth0", g_variant_dict_end (&net), error) &&
         send_body (client, "PUT", "/vsock",
                    g_variant_new_parsed ("{'guest_cid': <%u>, 'uds_path': <%s>}", m->vsock_cid, m->vsock_path),
                    error);
}

gboolean
bg_fc_action (BgFcClient  *client,
              const char  *action_type,
              GError     **error)
{
  return send_body (client, "PUT", "/actions",
                    g_variant_new_parsed ("{'action_type': <%s>}", action_type), error);
}

/* "Paused" or "Resumed". */
gboolean
bg_fc_set_state (BgFcClient  *client,
                 const char  *state,
                 GError     **error)
{
  return send_body (client, "PATCH", "/vm", g_variant_new_parsed ("{'state': <%s>}", state), error);
}

/* "Not started", "Running" or "Paused", from GET /. */
char *
bg_fc_get_state (BgFcClient  *client,
                 GError     **error)
{
  g_autoptr(JsonNode) info = bg_fc_client_request (client, "GET", "/", NULL, error);
  JsonObject *o;

  if (info == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (info) ||
      !json_object_has_member ((o = json_node_get_object (info)), "state"))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the VMM's instance info lacks its state");
      return NULL;
    }
  return g_strdup (json_object_get_string_member (o, "state"));
}
