/* bg-cleanup.c: finding and removing what crashes, kills and reboots
 * left behind, on both sides.
 *
 * The user's side: records a killed 'vm up' left "creating" (with their
 * files, tap and pinned key), VM directories without a record, and
 * pinned keys of VMs that no longer exist. The mechanism's side, from
 * its registry (which it checks against the kernel when it starts):
 * VMMs no running VM of the user's explains, taps no VM of theirs uses
 * (or the kernel had and the registry had lost), loop devices nothing
 * holds, anything left half-made. With all_users (an administrator),
 * every user's.
 */
#include <errno.h>
#include <glib/gstdio.h>

#include "bg-cleanup.h"
#include "bg-client.h"
#include "bg-error.h"
#include "bg-file.h"
#include "bg-paths.h"
#include "bg-known-hosts.h"
#include "bg-ssh.h"
#include "bg-state.h"
#include "bg-vm-control.h"

static void
leftover_free (BgLeftover *l)
{
  g_free (l->kind);
  g_free (l->name);
  g_free (l->why);
  g_free (l);
}

static void
add (GPtrArray  *out,
     const char *kind,
     const char *name,
     guint32     owner,
     const char *why)
{
  BgLeftover *l = g_new0 (BgLeftover, 1);

  /* The user's side: what is not a registry kind. */
  l->user_side = strchr (kind, ' ') != NULL || g_str_equal (kind, "directory");
  l->kind = g_strdup (kind);
  l->name = g_strdup (name);
  l->owner = owner;
  l->why = g_strdup (why);
  g_ptr_array_add (out, l);
}

/* Directories under vms/ with no record file at all (what a crash of
 * 'vm rm' leaves, or a power loss in 'vm up' before its first record
 * reached the disk), or with one that never was written whole (empty or
 * NUL bytes: the same power loss, the file there but not its bytes). */
static void
find_stray_dirs (BgStateStore *store,
                 GPtrArray    *out)
{
  g_autoptr(GDir) dir = g_dir_open (bg_state_store_get_dir (store), 0, NULL);
  const char *e;

  while (dir != NULL && (e = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *json = g_build_filename (bg_state_store_get_dir (store), e, "vm.json", NULL);
      g_autofree char *path = g_build_filename (bg_state_store_get_dir (store), e, NULL);

      if (!g_file_test (path, G_FILE_TEST_IS_DIR))
        continue;
      if (!g_file_test (json, G_FILE_TEST_EXISTS))
        add (out, "directory", e, getuid (), "a VM directory without its record");
      else if (bg_state_store_never_written (store, e))
        add (out, "directory", e, getuid (),
             "a VM directory whose record never reached the disk (a 'vm up' cut short by a power loss)");
    }
}

/* Keys pinned for a VM name that has no record any more. */
static void
find_stray_keys (GHashTable *names,
                 GPtrArray  *out)
{
  g_autofree char *kh = bg_known_hosts_path ();
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;

  if (!g_file_get_contents (kh, &text, NULL, NULL))
    return;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      g_auto(GStrv) hosts = g_strsplit_set (lines[i], ", ", 3);
      g_autofree char *vm = NULL;
      const char *dot;

      if (hosts[0] == NULL || (dot = strchr (hosts[0], '.')) == NULL)
        continue;
      vm = g_strndup (hosts[0], dot - hosts[0]);
      if (!g_hash_table_contains (names, vm))
        add (out, "pinned key", hosts[0], getuid (), "a pinned host key of a VM that no longer exists");
    }
}

GPtrArray *
bg_cleanup_find (gboolean    all_users,
                 GError    **error)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(GPtrArray) records = bg_state_store_list (store, NULL, error);
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) leftover_free);
  g_autoptr(GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) taps = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) running = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GVariant) reply = NULL, list = NULL;
  GVariantDict opts;
  guint32 me = getuid ();

  if (records == NULL)
    return NULL;
  for (guint i = 0; i < records->len; i++)
    {
      BgVmRecord *r = records->pdata[i];
      BgVmState state = bg_vm_probe_state (r);

      g_hash_table_add (names, r->name);
      if (r->state == BG_VM_CREATING)
        {
          add (out, "half-made vm", r->name, me, "left by an interrupted 'vm up'");
          continue;
        }
      if (r->tap)
        g_hash_table_add (taps, r->tap);
      if (state == BG_VM_RUNNING || state == BG_VM_PAUSED || state == BG_VM_STARTING)
        g_hash_table_add (running, r->name);
    }
  find_stray_dirs (store, out);
  find_stray_keys (names, out);

  g_variant_dict_init (&opts, NULL);
  if (all_users)
    g_variant_dict_insert (&opts, "all-users", "b", TRUE);
  reply = bg_client_call ("ListResources", g_variant_new ("(@a{sv})", g_variant_dict_end (&opts)), NULL, error);
  if (reply == NULL)
    return NULL;
  list = g_variant_get_child_value (reply, 0);
  for (gsize i = 0; i < g_variant_n_children (list); i++)
    {
      g_autoptr(GVariant) details = NULL;
      const char *kind, *name, *state, *vm = NULL;
      guint32 owner;
      guint64 created;
      gboolean orphan = FALSE;
      const char *why = NULL;

      g_variant_get_child (list, i, "(&s&sut&s@a{sv})", &kind, &name, &owner, &created, &state, &details);
      g_variant_lookup (details, "vm", "&s", &vm);
      g_variant_lookup (details, "orphan", "b", &orphan);
      if (orphan)
        why = "a tap the kernel had and the registry had lost";
      else if (owner != me)
        {
          /* Other users' VMs and taps are theirs to judge; loops and
           * half-made entries are leftovers for anyone. */
          if (g_str_equal (kind, "loop") || !g_str_equal (state, "ready"))
            why = "left half-made or unheld";
        }
      else if (g_str_equal (kind, "vm") && !(vm && g_hash_table_contains (running, vm)))
        why = "a VMM no running VM of yours explains";
      else if (g_str_equal (kind, "tap") && !g_hash_table_contains (taps, name))
        why = "a tap no VM of yours uses";
      else if (g_str_equal (kind, "loop"))
        why = "a loop device nothing holds";
      else if (!g_str_equal (state, "ready"))
        why = "left half-made";
      if (why != NULL)
        add (out, kind, name, owner, why);
    }
  return g_steal_pointer (&out);
}

/* A half-made VM: its own removal first; if its record is unusable,
 * what can be found of it by hand. */
static gboolean
remove_half_made (BgCli       *cli,
                  const char  *name,
                  GError     **error)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(BgVmRecord) r = NULL;
  g_autofree char *dir = bg_paths_vm_dir (name);
  g_autofree char *kh = bg_known_hosts_path ();

  if (bg_vm_remove (cli, name, TRUE, NULL))
    return TRUE;
  r = bg_state_store_load (store, name, NULL);
  if (r != NULL && r->domain != NULL)
    {
      g_autofree char *alias = g_strdup_printf ("%s.%s", name, r->domain);
      bg_known_hosts_remove (kh, alias, r->address, NULL);
    }
  return bg_file_remove_tree (dir, error) && bg_state_store_delete (store, name, error);
}

gboolean
bg_cleanup_remove (BgCli       *cli,
                   BgLeftover  *l,
                   GError     **error)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) local = NULL;

  if (g_str_equal (l->kind, "half-made vm"))
    return remove_half_made (cli, l->name, error);
  if (g_str_equal (l->kind, "directory"))
    return bg_state_store_remove_leftover (store, l->name, error);
  if (g_str_equal (l->kind, "pinned key"))
    {
      g_autofree char *kh = bg_known_hosts_path ();
      return bg_known_hosts_remove (kh, l->name, NULL, error);
    }
  reply = bg_client_call ("ReleaseResource",
                          g_variant_new ("(ss@a{sv})", l->kind, l->name,
                                         g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0)),
                          NULL, &local);
  if (reply == NULL && !g_error_matches (local, BG_ERROR, BG_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  return TRUE;
}
