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

/* A whole machine, PUT in the order Firecracker wants before
 * InstanceStart: its --config-file, over the API. Drives end with a NULL
 * id and appear in the guest as /dev/vda, vdb, … in their order. */
typedef struct {
  const char *id;
  const char *path;
  gboolean    is_root;
  gboolean    read_only;
} BgFcDrive;

typedef struct {
  guint            vcpus;
  guint            mem_mib;
  const char      *kernel;
  const char      *initrd;      /* or NULL */
  const char      *boot_args;
  const BgFcDrive *drives;
  const char      *tap;         /* as eth0 */
  const char      *guest_mac;   /* or NULL */
  guint32          vsock_cid;
  const char      *vsock_path;
} BgFcMachine;

gboolean    bg_fc_configure           (BgFcClient         *client,
                                       const BgFcMachine  *machine,
                                       GError            **error);
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
