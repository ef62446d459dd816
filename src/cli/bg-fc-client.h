#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef struct _BgFcClient BgFcClient;

BgFcClient *bg_fc_client_new          (const char  *api_socket);
void        bg_fc_client_free         (BgFcClient  *client);

JsonNode   *bg_fc_client_request      (BgFcClient  *client,
                                       const char  *method,
                                       const char  *path,
                                       JsonNode    *body,
                                       GError     **error);

gboolean    bg_fc_configure_machine   (BgFcClient  *client,
                                       guint        vcpus,
                                       guint        mem_mib,
                                       GError     **error);
gboolean    bg_fc_set_boot_source     (BgFcClient  *client,
                                       const char  *kernel,
                                       const char  *boot_args,
                                       const char  *initrd,
                                       GError     **error);
gboolean    bg_fc_add_drive           (BgFcClient  *client,
                                       const char  *drive_id,
                                       const char  *path,
                                       gboolean     is_root,
                                       gboolean     read_only,
                                       GError     **error);
gboolean    bg_fc_add_network         (BgFcClient  *client,
                                       const char  *iface_id,
                                       const char  *tap,
                                       const char  *guest_mac,
                                       GError     **error);
gboolean    bg_fc_set_vsock           (BgFcClient  *client,
                                       guint32      guest_cid,
                                       const char  *uds_path,
                                       GError     **error);
gboolean    bg_fc_action              (BgFcClient  *client,
                                       const char  *action_type,
                                       GError     **error);
gboolean    bg_fc_set_state           (BgFcClient  *client,
                                       const char  *state,
                                       GError     **error);
char       *bg_fc_get_state           (BgFcClient  *client,
                                       GError     **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgFcClient, bg_fc_client_free)

G_END_DECLS
