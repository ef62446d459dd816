/* kind.c: the table of resource kinds. The names are the registry's
 * on-disk format and part of the D-Bus interface: they never change. */
#include "kind.h"

static const BgKindInfo kinds[BG_KIND_COUNT] = {
  [BG_KIND_VM] = { "vm", "vms", "running VM", "running VMs", TRUE, FALSE },
  [BG_KIND_TAP] = { "tap", "taps", "tap", "taps", TRUE, FALSE },
  [BG_KIND_BRIDGE] = { "bridge", "bridges", "bridge", "bridges", FALSE, FALSE },
  [BG_KIND_LOOP] = { "loop", "loops", "loop device", "loop devices", TRUE, TRUE },
  /* Held by the mechanism and by every VMM using it, so it outlives a
   * restart while a VM still runs; start-up drops the users gone. */
  [BG_KIND_BASE] = { "base", "bases", "shared base", "shared bases", FALSE, FALSE },
};

const BgKindInfo *
bg_kind_get_info (BgKind kind)
{
  g_return_val_if_fail ((guint) kind < BG_KIND_COUNT, NULL);
  return &kinds[kind];
}

const char *
bg_kind_to_string (BgKind kind)
{
  g_return_val_if_fail ((guint) kind < BG_KIND_COUNT, NULL);
  return kinds[kind].name;
}

/* FALSE for a name that is no kind (a caller's string, a forged or
 * future registry record); @out_kind is then left alone. */
gboolean
bg_kind_from_string (const char *name,
                     BgKind     *out_kind)
{
  for (guint i = 0; name != NULL && i < BG_KIND_COUNT; i++)
    if (g_str_equal (name, kinds[i].name))
      {
        *out_kind = i;
        return TRUE;
      }
  return FALSE;
}

/* "vm, tap, bridge, loop, base": for errors that say what is valid. */
char *
bg_kind_list_names (void)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < BG_KIND_COUNT; i++)
    g_string_append_printf (s, "%s%s", i ? ", " : "", kinds[i].name);
  return g_string_free (s, FALSE);
}
