/* auth.h: one method call in flight, and the one place that decides who
 * may make it. */
#pragma once

#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <polkit/polkit.h>
#include <sys/types.h>

#include "kind.h"
#include "types.h"

G_BEGIN_DECLS

/* What runs once a call is authorized; @self is the subsystem that
 * connected the handler. It must answer the call (exactly once). */
typedef void     (*BgCallFunc)     (BgCall      *call,
                                    gpointer     self);
/* Acts on a resource the caller may touch; FALSE with @error to refuse. */
typedef gboolean (*BgResourceFunc) (gpointer     self,
                                    BgCall      *call,
                                    BgResource  *resource,
                                    GError     **error);

struct _BgCall {
  BgDaemon              *daemon;
  GDBusMethodInvocation *invocation;
  uid_t                  caller_uid;   /* from the bus, never an argument */
  gpointer               self;
};

void         bg_call_start          (BgDaemon               *daemon,
                                     GDBusMethodInvocation  *invocation,
                                     const char             *action,
                                     PolkitDetails          *details,
                                     BgCallFunc              func,
                                     gpointer                self);
/* A subsystem's methods on the bus, as a table (sd-bus's vtables are the
 * model): the skeleton's "handle-…" signal, and either the handler that
 * checks the arguments and calls bg_call_start(), or, for a method
 * without arguments, the polkit action (NULL: none) and what runs once it
 * is allowed. Handlers get the subsystem as their user data. */
typedef struct {
  const char *signal;
  GCallback   handler;
  const char *action;
  BgCallFunc  authorized;
} BgMethod;

void         bg_call_connect_methods (BgDaemon              *daemon,
                                      const BgMethod        *methods,
                                      gpointer               self);
GVariant    *bg_call_get_parameters (BgCall                 *call);
GUnixFDList *bg_call_get_fd_list    (BgCall                 *call);
void         bg_call_act_on_owned   (BgCall                 *call,
                                     const char             *field,
                                     BgKind                  kind,
                                     const char             *name,
                                     BgResourceFunc          func);
void         bg_call_return_value   (BgCall                 *call,
                                     GVariant               *value);
void         bg_call_take_error     (BgCall                 *call,
                                     GError                 *error);

/* For a handler refusing bad arguments before any call starts: answers
 * with @error (taken) and returns G_DBUS_METHOD_INVOCATION_HANDLED. */
gboolean     bg_invocation_take_error (GDBusMethodInvocation *invocation,
                                       GError                *error);

PolkitDetails *bg_details_new       (const char             *key,
                                     const char             *value);

/* The methods each part serves, connected by bg_mechanism_new: system-dbus.c
 * (Ping, Subscribe, HostInfo, ListResources, ReleaseResource, with the
 * daemon as user data), network-dbus.c, storage-dbus.c and vm-dbus.c
 * (with their subsystem). */
extern const BgMethod bg_system_methods[];
extern const BgMethod bg_network_methods[];
extern const BgMethod bg_storage_methods[];
extern const BgMethod bg_vm_methods[];

G_END_DECLS
