/* hosts.c: <run-dir>/hosts, "ADDRESS NAME.DOMAIN OWNER-UID" for every
 * ready tap (a second line, same owner, for its IPv6 address), rewritten
 * whole (atomically) from the registry whenever a tap comes or goes. Only
 * the mechanism writes it; libnss_banger reads it, and answers a name
 * (either family) only to its owner (and root). */
#include <glib/gstdio.h>

#include "bg-file.h"
#include "hosts.h"
#include "registry.h"

gboolean
bg_hosts_write (const char  *run_dir,
                BgRegistry  *registry,
                GError     **error)
{
  g_autoptr(GPtrArray) taps = bg_registry_list (registry, BG_KIND_TAP);
  g_autoptr(GString) text = g_string_new ("# Written by banger-mechanism; read by libnss_banger.\n");
  g_autofree char *path = g_build_filename (run_dir, "hosts", NULL);

  for (guint i = 0; i < taps->len; i++)
    {
      BgResource *r = taps->pdata[i];
      const char *ip = bg_resource_get_string (r, "address");
      const char *vm = bg_resource_get_string (r, "vm");
      const char *domain = bg_resource_get_string (r, "domain");

      const char *ip6 = bg_resource_get_string (r, "address6");

      if (r->state != BG_RESOURCE_READY || ip == NULL || vm == NULL || domain == NULL)
        continue;
      g_string_append_printf (text, "%s %s.%s %u\n", ip, vm, domain, (guint) r->owner);
      if (ip6 != NULL)
        g_string_append_printf (text, "%s %s.%s %u\n", ip6, vm, domain, (guint) r->owner);
    }
  /* World-readable: every process's resolver reads it. */
  return bg_file_replace (path, text->str, text->len, 0644, error);
}

void
bg_hosts_remove (const char *run_dir)
{
  g_autofree char *path = g_build_filename (run_dir, "hosts", NULL);
  g_unlink (path);
}
