#pragma once

#include <gio/gio.h>
#include <sys/types.h>

#include "kind.h"
#include "types.h"

G_BEGIN_DECLS

typedef enum {
  BG_RESOURCE_CREATING,   /* recorded before the resource is made */
  BG_RESOURCE_READY,
  BG_RESOURCE_DELETING,   /* recorded before the resource is undone */
} BgResourceState;

struct _BgResource {
  BgKind           kind;
  char            *name;
  uid_t            owner;
  gint64           created;  /* unix seconds */
  BgResourceState  state;
  GVariant        *details;  /* a{sv}, kind-specific */
};

BgRegistry *bg_registry_open        (const char    *dir,
                                     GError       **error);
void        bg_registry_free        (BgRegistry    *registry);
guint       bg_registry_heal        (BgRegistry    *registry);
BgResource *bg_registry_lookup      (BgRegistry    *registry,
                                     BgKind         kind,
                                     const char    *name);
BgResource *bg_registry_add         (BgRegistry    *registry,
                                     BgKind         kind,
                                     const char    *name,
                                     uid_t          owner,
                                     GVariant      *details,
                                     GError       **error);
gboolean    bg_registry_set_state   (BgRegistry    *registry,
                                     BgResource    *resource,
                                     BgResourceState state,
                                     GError       **error);
gboolean    bg_registry_set_details (BgRegistry    *registry,
                                     BgResource    *resource,
                                     GVariant      *details,
                                     GError       **error);
gboolean    bg_registry_remove      (BgRegistry    *registry,
                                     BgResource    *resource,
                                     GError       **error);
GPtrArray  *bg_registry_list        (BgRegistry    *registry,
                                     BgKind         kind);
GPtrArray  *bg_registry_list_all    (BgRegistry    *registry);
guint       bg_registry_count       (BgRegistry    *registry,
                                     BgKind         kind);
const char *bg_resource_state_to_string (BgResourceState state);
GVariant   *bg_resource_to_variant  (BgResource    *resource);
const char *bg_resource_get_string  (BgResource    *resource,
                                     const char    *key);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgRegistry, bg_registry_free)

G_END_DECLS
