/* bg-vm-control.c: VMs that exist: what they really are (the VMM's own
 * answer), stopping them (Ctrl-Alt-Del, then KillVm), removing them
 * (everything, or what remains of an unreadable record), pausing. */
#include <unistd.h>

#include "bg-client.h"
#include "bg-dbus.h"
#include "bg-error.h"
#include "bg-paths.h"
#include "bg-fc-client.h"
#include "bg-file.h"
#include "bg-known-hosts.h"
#include "bg-ssh.h"
#include "bg-vm-control.h"
#include "bg-forward.h"

#define STOP_TIMEOUT_S 30

/* ---- reality ---- */

/* What the VM really is: the VMM's own answer when its API socket
 * answers; crashed when the record says it runs but nothing answers. */
BgVmState
bg_vm_probe_state (BgVmRecord *r)
{
  g_autoptr(BgFcClient) fc = NULL;
  g_autofree char *state = NULL;

  if (r->state != BG_VM_RUNNING && r->state != BG_VM_PAUSED)
    return r->state;
  if (r->api_socket == NULL)
    return BG_VM_CRASHED;
  fc = bg_fc_client_new (r->api_socket);
  state = bg_fc_get_state (fc, NULL);
  if (state == NULL)
    return BG_VM_CRASHED;
  if (g_str_equal (state, "Paused"))
    return BG_VM_PAUSED;
  if (g_str_equal (state, "Running"))
    return BG_VM_RUNNING;
  return BG_VM_STARTING;
}

gboolean
bg_vm_state_is_live (BgVmState state)
{
  return state == BG_VM_RUNNING || state == BG_VM_PAUSED || state == BG_VM_STARTING;
}

/* Stopped (or never started) VMs are refused with what to do. A VM
 * recorded running whose VMM does not answer (crashed) is tried all the
 * same, as vm ssh does: its guest answers or the connection says why. */
gboolean
bg_vm_may_answer (BgVmRecord *record,
                  BgVmState   state)
{
  return record->address != NULL && state != BG_VM_STOPPED && state != BG_VM_CREATED && state != BG_VM_CREATING;
}

static BgVmRecord *
set_stopped (BgVmRecord  *current,
             gpointer     data,
             GError     **error)
{
  if (current == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND, "VM %s was removed meanwhile", (char *) data);
      return NULL;
    }
  current->state = BG_VM_STOPPED;
  current->started_at = 0;
  current->pid = 0;
  g_clear_pointer (&current->api_socket, g_free);
  g_clear_pointer (&current->vsock_socket, g_free);
  return current;
}

gboolean
bg_vm_mark_stopped (BgStateStore  *store,
              const char    *name,
              GError       **error)
{
  return bg_state_store_update (store, name, set_stopped, (gpointer) name, error);
}

/* ---- stop, rm, pause ---- */

typedef struct {
  GMainLoop *loop;
  char      *name;
  gboolean   exited;
  int        status;
} ExitWait;

static void
on_vm_exited (GDBusConnection *c, const char *sender, const char *path, const char *iface,
              const char *signal, GVariant *params, gpointer data)
{
  ExitWait *w = data;
  const char *name;
  guint32 owner;
  gint32 status;

  g_variant_get (params, "(&sui)", &name, &owner, &status);
  if (owner == getuid () && g_str_equal (name, w->name))
    {
      w->exited = TRUE;
      w->status = status;
      g_main_loop_quit (w->loop);
    }
}

static gboolean
quit_loop (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

static gboolean
wait_exit (ExitWait *w,
           guint     timeout_s)
{
  guint id = g_timeout_add_seconds (timeout_s, quit_loop, w->loop);

  if (!w->exited)
    g_main_loop_run (w->loop);
  if (w->exited)
    g_source_remove (id);
  return w->exited;
}

/* Ctrl-Alt-Del (the VM's own API, no privilege) and a wait; else, or
 * with @force, KillVm. */
static gboolean
stop_vmm (BgCli       *cli,
          BgVmRecord  *r,
          gboolean     force,
          guint        timeout_s,
          GError     **error)
{
  GDBusConnection *bus = bg_client_get_connection (error);
  ExitWait w = { 0 };
  gboolean graceful = FALSE, ok = TRUE;
  guint sub;

  if (bus == NULL)
    return FALSE;
  w.loop = g_main_loop_new (NULL, FALSE);
  w.name = r->name;
  sub = g_dbus_connection_signal_subscribe (bus, BG_DBUS_NAME, BG_DBUS_INTERFACE, "VmExited", BG_DBUS_PATH,
                                            NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_vm_exited, &w, NULL);
  /* VmExited reaches only those who ask for it. */
  {
    g_autoptr(GVariant) subscribed = bg_client_call ("Subscribe", NULL, NULL, error);
    if (subscribed == NULL)
      {
        g_dbus_connection_signal_unsubscribe (bus, sub);
        g_main_loop_unref (w.loop);
        return FALSE;
      }
  }
  if (!force)
    {
      g_autoptr(BgFcClient) fc = bg_fc_client_new (r->api_socket);
      g_autoptr(GError) local = NULL;

      if (bg_fc_action (fc, "SendCtrlAltDel", &local))
        graceful = wait_exit (&w, timeout_s);
      else if (cli->verbose)
        bg_cli_warn ("Ctrl-Alt-Del failed (%s); killing the VM", local->message);
    }
  if (!w.exited)
    {
      g_autoptr(GError) local = NULL;
      g_autoptr(GVariant) k = bg_client_call ("KillVm", g_variant_new ("(s)", r->name), NULL, &local);

      if (k != NULL)
        wait_exit (&w, 10);
      else if (!g_error_matches (local, BG_ERROR, BG_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          ok = FALSE;
        }
    }
  g_dbus_connection_signal_unsubscribe (bus, sub);
  g_main_loop_unref (w.loop);
  if (ok && cli->verbose)
    g_printerr ("%s %s\n", r->name, graceful ? "shut down" : "killed");
  return ok;
}

gboolean
bg_vm_stop (BgCli       *cli,
            const char  *name,
            gboolean     force,
            guint        timeout_s,
            GError     **error)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(BgVmRecord) r = bg_state_store_load (store, name, error);
  BgVmState state;

  if (r == NULL)
    return FALSE;
  /* Its forwards end with it (and with a VM that crashed). */
  bg_forward_stop_processes (name, NULL, NULL);
  state = bg_vm_probe_state (r);
  if (state == BG_VM_STOPPED || state == BG_VM_CREATED || state == BG_VM_CREATING)
    return TRUE;
  if (state == BG_VM_CRASHED)
    {
      /* Its VMM is gone; make sure the mechanism agrees, then record it. */
      g_autoptr(GVariant) k = bg_client_call ("KillVm", g_variant_new ("(s)", name), NULL, NULL);
    }
  else if (!stop_vmm (cli, r, force, timeout_s, error))
    return FALSE;
  return bg_vm_mark_stopped (store, name, error);
}

/* A VM whose record cannot be read: what the mechanism holds for it (its
 * VMM, its tap, found by the VM's name), its pinned keys and its files. */
static gboolean
remove_remains (const char  *name,
                GError     **error)
{
  g_autoptr(GVariant) kill = NULL, list = NULL, taps = NULL;
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autofree char *dir = bg_paths_vm_dir (name);
  g_autofree char *kh = bg_known_hosts_path ();

  bg_forward_stop_processes (name, NULL, NULL);
  kill = bg_client_call ("KillVm", g_variant_new ("(s)", name), NULL, NULL);
  list = bg_client_call ("ListResources", g_variant_new_parsed ("({'kind': <'tap'>},)"), NULL, error);
  if (list == NULL)
    return FALSE;
  taps = g_variant_get_child_value (list, 0);
  for (gsize i = 0; i < g_variant_n_children (taps); i++)
    {
      g_autoptr(GVariant) details = NULL, del = NULL;
      const char *tap, *vm = NULL;

      g_variant_get_child (taps, i, "(&s&sut&s@a{sv})", NULL, &tap, NULL, NULL, NULL, &details);
      if (g_variant_lookup (details, "vm", "&s", &vm) && g_str_equal (vm, name))
        del = bg_client_call ("DeleteTap", g_variant_new ("(s)", tap), NULL, NULL);
    }
  bg_client_shutdown ();
  return bg_known_hosts_remove_vm (kh, name, error) && bg_file_remove_tree (dir, error) &&
         bg_state_store_delete (store, name, error);
}

gboolean
bg_vm_remove (BgCli       *cli,
              const char  *name,
              gboolean     force,
              GError     **error)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(GError) local = NULL;
  g_autoptr(BgVmRecord) r = bg_state_store_load (store, name, &local);
  g_autofree char *dir = bg_paths_vm_dir (name);
  g_autofree char *kh = bg_known_hosts_path ();

  if (r == NULL && g_error_matches (local, BG_ERROR, BG_ERROR_CORRUPT))
    {
      bg_cli_warn ("%s", local->message);
      return remove_remains (name, error);
    }
  if (r == NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (!bg_vm_stop (cli, name, force, STOP_TIMEOUT_S, error))
    return FALSE;
  if (r->tap != NULL)
    {
      g_autoptr(GVariant) t = bg_client_call ("DeleteTap", g_variant_new ("(s)", r->tap), NULL, &local);
      if (t == NULL && !g_error_matches (local, BG_ERROR, BG_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
    }
  if (r->address != NULL)
    {
      g_autofree char *alias = bg_ssh_alias (r);
      if (!bg_known_hosts_remove (kh, alias, r->address, error))
        return FALSE;
    }
  /* No address on record (a VM killed while being made, whose network
   * was guessed): its pin, if made, is found by its name alone, never by
   * an address another VM may hold. */
  else if (!bg_known_hosts_remove_vm (kh, r->name, error))
    return FALSE;
  bg_client_shutdown ();
  return bg_file_remove_tree (dir, error) && bg_state_store_delete (store, name, error);
}

typedef struct {
  gboolean  paused;
  BgVmState found;
} Pause;

static BgVmRecord *
set_paused (BgVmRecord  *current,
            gpointer     data,
            GError     **error)
{
  Pause *p = data;

  if (current == NULL)
    {
      g_set_error_literal (error, BG_ERROR, BG_ERROR_NOT_FOUND, "the VM was removed meanwhile");
      return NULL;
    }
  current->state = p->paused ? BG_VM_PAUSED : BG_VM_RUNNING;
  return current;
}

gboolean
bg_vm_set_paused (const char  *name,
                  gboolean     paused,
                  GError     **error)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(BgVmRecord) r = bg_state_store_load (store, name, error);
  g_autoptr(BgFcClient) fc = NULL;
  Pause p = { paused, 0 };

  if (r == NULL)
    return FALSE;
  p.found = bg_vm_probe_state (r);
  if (p.found != BG_VM_RUNNING && p.found != BG_VM_PAUSED)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_BUSY, "VM %s is %s; start it with 'banger vm start %s'",
                   name, bg_vm_state_to_string (p.found), name);
      return FALSE;
    }
  fc = bg_fc_client_new (r->api_socket);
  return bg_fc_set_state (fc, paused ? "Paused" : "Resumed", error) &&
         bg_state_store_update (store, name, set_paused, &p, error);
}
