#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* What a VM is. Records hold the first four; the last three are what a
 * probe of the VMM finds (bg_vm_probe_state). */
typedef enum {
  BG_VM_CREATING,   /* a 'vm up' is making it (or was killed doing so) */
  BG_VM_CREATED,
  BG_VM_STOPPED,
  BG_VM_RUNNING,
  BG_VM_PAUSED,
  BG_VM_STARTING,   /* its VMM answers, the guest is not started */
  BG_VM_CRASHED,    /* recorded running, and nothing answers */
} BgVmState;

const char *bg_vm_state_to_string   (BgVmState    state);

/* One VM as the CLI remembers it. The record is what banger last wrote;
 * commands that show state check it against reality before trusting it. */
typedef struct {
  char    *name;
  char    *image;
  BgVmState state;
  guint    cpus;
  guint    memory_mib;
  guint64  disk_bytes;
  char    *disk_mode;      /* strategy that made the disk */
  char    *disk_reason;    /* why that one */
  gint64   created_at;     /* unix seconds */
  gint64   updated_at;
  gint64   started_at;     /* 0 when not running */
  char    *tap;
  char    *address;
  char    *gateway;
  char    *address6;       /* NULL: the network had no IPv6 (a /64) */
  char    *gateway6;
  guint    prefix;
  char    *mac;
  guint    cid;
  gint64   pid;
  char    *api_socket;
  char    *vsock_socket;
  char    *domain;         /* DNS domain the VM's name lives in */
  char   **dns;            /* name servers its config drive gives it */
  char    *guest_user;
  char   **forwards;       /* vm up --forward: started with the VM */
  gint64   generation;     /* bumped by every bg_state_store_update () */
} BgVmRecord;

BgVmRecord *bg_vm_record_new        (const char  *name);
BgVmRecord *bg_vm_record_copy       (const BgVmRecord *record);
void        bg_vm_record_free       (BgVmRecord  *record);
JsonNode   *bg_vm_record_to_json    (const BgVmRecord *record);

typedef struct _BgStateStore BgStateStore;

/* Called with the store locked; @record is the current record, or NULL
 * when there is none. Return the record to save (it may be @record,
 * changed in place, or a new one), or NULL with @error set to abort. */
typedef BgVmRecord *(*BgStateUpdateFunc) (BgVmRecord  *record,
                                          gpointer     user_data,
                                          GError     **error);

BgStateStore *bg_state_store_new      (const char    *vms_dir);
BgStateStore *bg_state_store_new_default (void);
void          bg_state_store_free     (BgStateStore  *store);
const char   *bg_state_store_get_dir  (BgStateStore  *store);
BgVmRecord   *bg_state_store_load     (BgStateStore  *store,
                                       const char    *name,
                                       GError       **error);
gboolean      bg_state_store_save     (BgStateStore  *store,
                                       const BgVmRecord *record,
                                       GError       **error);
gboolean      bg_state_store_update   (BgStateStore  *store,
                                       const char    *name,
                                       BgStateUpdateFunc func,
                                       gpointer       user_data,
                                       GError       **error);
/* How a record is written. DURABLE: on disk with its directory entry
 * when the call returns (fsync of both). CONSISTENT: after a power loss
 * the old record or the new one, never half of one (the new file is
 * synced before it replaces the old), but possibly the old: for a record
 * whose previous version says as much for what a reboot leaves.
 * UNSYNCED: only a VM's first record, and never over one (it fails if
 * one exists): readers see it whole or not at all, but a power loss may
 * leave it missing, empty or NUL bytes, which
 * bg_state_store_never_written() tells and 'system cleanup' removes.
 * A VM is never said to exist before a DURABLE record of it. */
typedef enum {
  BG_STATE_WRITE_DURABLE,
  BG_STATE_WRITE_CONSISTENT,
  BG_STATE_WRITE_UNSYNCED,
} BgStateWrite;
gboolean      bg_state_store_update_full (BgStateStore *store,
                                       const char    *name,
                                       BgStateUpdateFunc func,
                                       gpointer       user_data,
                                       BgStateWrite   how,
                                       GError       **error);
/* Whether @name's record file is a regular file that holds nothing or
 * only NUL bytes, written before this boot: a first record a power loss
 * cut short. */
gboolean      bg_state_store_never_written (BgStateStore *store,
                                       const char    *name);
gboolean      bg_state_store_remove_leftover (BgStateStore *store,
                                       const char    *name,
                                       GError       **error);
gboolean      bg_state_store_delete   (BgStateStore  *store,
                                       const char    *name,
                                       GError       **error);
GPtrArray    *bg_state_store_list     (BgStateStore  *store,
                                       GPtrArray    **problems,
                                       GError       **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgVmRecord, bg_vm_record_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgStateStore, bg_state_store_free)

G_END_DECLS
