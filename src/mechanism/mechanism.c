/* mechanism.c: the assembly. It builds the hub (daemon.c), then each
 * subsystem over it, connects their methods, and only then undoes what a
 * crash left, since that needs every kind registered. Kept apart from
 * the hub so that the subsystems depend on the hub and nothing in the
 * hub depends on them. */
#include "auth.h"
#include "mechanism.h"
#include "network.h"
#include "storage.h"
#include "vm.h"

struct _BgMechanism {
  BgDaemon  *daemon;
  BgNetwork *network;
  BgStorage *storage;
  BgVms     *vms;
};

BgMechanism *
bg_mechanism_new (const BgDaemonOptions  *options,
                  GError                **error)
{
  BgMechanism *m = g_new0 (BgMechanism, 1);

  m->daemon = bg_daemon_new (options, error);
  if (m->daemon == NULL)
    {
      g_free (m);
      return NULL;
    }
  m->network = bg_network_new (m->daemon);
  m->storage = bg_storage_new (m->daemon);
  m->vms = bg_vms_new (m->daemon, m->network, m->storage);
  bg_call_connect_methods (m->daemon, bg_system_methods, m->daemon);
  bg_call_connect_methods (m->daemon, bg_network_methods, m->network);
  bg_call_connect_methods (m->daemon, bg_storage_methods, m->storage);
  bg_call_connect_methods (m->daemon, bg_vm_methods, m->vms);

  bg_daemon_reconcile (m->daemon);
  bg_vms_recover (m->vms);
  bg_network_reconcile (m->network);
  return m;
}

int
bg_mechanism_run (BgMechanism *m)
{
  return bg_daemon_run (m->daemon);
}

void
bg_mechanism_free (BgMechanism *m)
{
  if (m == NULL)
    return;
  /* The subsystems before the hub they registered with. */
  g_clear_pointer (&m->vms, bg_vms_free);
  g_clear_pointer (&m->storage, bg_storage_free);
  g_clear_pointer (&m->network, bg_network_free);
  g_clear_pointer (&m->daemon, bg_daemon_free);
  g_free (m);
}
