/* cmd-system.c: banger system … — the host side of banger. */
#include <unistd.h>

#include "bg-cleanup.h"
#include "bg-cli.h"
#include "bg-client.h"
#include "bg-error.h"
#include "bg-status.h"

static const char *
check_status (const BgCheck *c)
{
  return c->ok ? "ok" : c->optional ? "warning" : "missing";
}

static gboolean
cmd_status (BgCli *cli, int argc, char **argv, GError **error)
{
  g_autoptr(GArray) checks = NULL;
  gboolean all_ok = TRUE;

  if (!bg_cli_parse (cli, &(BgUsage) { NULL, 0, 0,
                     "Check that this host can run banger VMs, and say what to do where it cannot.\n\n"
                     "Devices and the VMM are tried by banger-mechanism, which is what uses them.\n"
                     "Exits 0 when every check passes (warnings aside) and 1 otherwise.",
                     NULL }, &argc, &argv, error))
    return FALSE;

  checks = bg_status_run ();
  bg_client_shutdown ();
  for (guint i = 0; i < checks->len; i++)
    {
      BgCheck *c = &g_array_index (checks, BgCheck, i);
      all_ok &= c->ok || c->optional;
    }

  if (cli->json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "ok");
      json_builder_add_boolean_value (b, all_ok);
      json_builder_set_member_name (b, "checks");
      json_builder_begin_array (b);
      for (guint i = 0; i < checks->len; i++)
        {
          BgCheck *c = &g_array_index (checks, BgCheck, i);

          json_builder_begin_object (b);
          json_builder_set_member_name (b, "name");
          json_builder_add_string_value (b, c->name);
          json_builder_set_member_name (b, "status");
          json_builder_add_string_value (b, check_status (c));
          json_builder_set_member_name (b, "detail");
          json_builder_add_string_value (b, c->detail);
          json_builder_set_member_name (b, "hint");
          if (c->hint)
            json_builder_add_string_value (b, c->hint);
          else
            json_builder_add_null_value (b);
          if (c->value)
            {
              json_builder_set_member_name (b, "value");
              json_builder_add_string_value (b, c->value);
            }
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
      bg_cli_print_built (b);
    }
  else
    for (guint i = 0; i < checks->len; i++)
      {
        BgCheck *c = &g_array_index (checks, BgCheck, i);

        g_print ("%-15s %-8s %s\n", c->name, check_status (c), c->detail);
        if (c->hint && !c->ok)
          g_print ("%-15s %-8s hint: %s\n", "", "", c->hint);
      }

  if (!all_ok)
    {
      /* The report is the output; the exit code tells scripts. */
      g_set_error_literal (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                           "this host is not ready to run banger VMs (see above)");
      return FALSE;
    }
  return TRUE;
}

/* NetworkInfo's a{sv}, and ListResources' rows for your taps. */
static gboolean
fetch_network (GVariant **info,
               GVariant **taps,
               GError   **error)
{
  g_autoptr(GVariant) info_reply = bg_client_call ("NetworkInfo", NULL, NULL, error);
  g_autoptr(GVariant) list_reply = NULL;

  if (info_reply != NULL)
    list_reply = bg_client_call ("ListResources", g_variant_new_parsed ("({'kind': <'tap'>},)"), NULL, error);
  bg_client_shutdown ();
  if (list_reply == NULL)
    return FALSE;
  g_variant_get (info_reply, "(@a{sv})", info);
  g_variant_get (list_reply, "(@a(ssutsa{sv}))", taps);
  return TRUE;
}

/* Appends @dict's entries to @b, an a{sv} being built, in their order. */
static void
add_entries (GVariantBuilder *b,
             GVariant        *dict)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  g_variant_iter_init (&iter, dict);
  while (g_variant_iter_loop (&iter, "{&sv}", &key, &value))
    g_variant_builder_add (b, "{sv}", key, value);
}

/* The network's members, then "taps": each tap's name, state and details. */
static void
print_network_json (GVariant *info,
                    GVariant *taps)
{
  GVariantBuilder out = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  GVariantBuilder rows = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));
  GVariantIter iter;
  const char *name, *state;
  GVariant *details;

  add_entries (&out, info);
  g_variant_iter_init (&iter, taps);
  while (g_variant_iter_loop (&iter, "(&s&sut&s@a{sv})", NULL, &name, NULL, NULL, &state, &details))
    {
      g_variant_builder_open (&rows, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&rows, "{sv}", "tap", g_variant_new_string (name));
      g_variant_builder_add (&rows, "{sv}", "state", g_variant_new_string (state));
      add_entries (&rows, details);
      g_variant_builder_close (&rows);
    }
  g_variant_builder_add (&out, "{sv}", "taps", g_variant_builder_end (&rows));
  bg_cli_print_variant (g_variant_builder_end (&out));
}

static void
print_network_text (GVariant *info,
                    GVariant *taps)
{
  const char *bridge = "", *subnet = "", *gateway = "", *uplink = "", *domain = "";
  const char *subnet6 = NULL, *gateway6 = "-", *ipv6_off = NULL;
  g_autofree const char **dns = NULL;
  gboolean nat = FALSE;
  g_autofree char *dns_text = NULL;
  g_autoptr(BgTable) table = NULL;
  GVariantIter iter;
  const char *name, *state;
  GVariant *details;

  g_variant_lookup (info, "bridge", "&s", &bridge);
  g_variant_lookup (info, "subnet", "&s", &subnet);
  g_variant_lookup (info, "gateway", "&s", &gateway);
  g_variant_lookup (info, "uplink", "&s", &uplink);
  g_variant_lookup (info, "domain", "&s", &domain);
  g_variant_lookup (info, "nat", "b", &nat);
  g_variant_lookup (info, "subnet6", "&s", &subnet6);
  g_variant_lookup (info, "gateway6", "&s", &gateway6);
  g_variant_lookup (info, "ipv6-off", "&s", &ipv6_off);
  g_variant_lookup (info, "dns", "^a&s", &dns);
  dns_text = dns && dns[0] ? g_strjoinv (", ", (char **) dns) : g_strdup ("none found (guests get no DNS)");

  g_print ("Bridge:   %s\n", bridge);
  g_print ("Subnet:   %s\n", *subnet ? subnet : "not set up yet ('banger vm up' sets it up)");
  g_print ("Gateway:  %s\n", *gateway ? gateway : "-");
  if (subnet6 != NULL)
    g_print ("IPv6:     %s, gateway %s, NAT66 (nftables table ip6 banger)\n", subnet6, gateway6);
  else
    g_print ("IPv6:     off%s%s\n", ipv6_off ? ": " : "", ipv6_off ? ipv6_off : "");
  g_print ("Uplink:   %s\n", *uplink ? uplink : "-");
  g_print ("NAT:      %s\n", nat ? "on (nftables table ip banger)" : "off");
  g_print ("Names:    NAME.%s\n", domain);
  g_print ("DNS:      %s\n", dns_text);
  if (g_variant_n_children (taps) == 0)
    return;

  table = bg_table_new ("TAP", "VM", "ADDRESS", "IPV6", "MAC", "STATE", NULL);
  g_variant_iter_init (&iter, taps);
  while (g_variant_iter_loop (&iter, "(&s&sut&s@a{sv})", NULL, &name, NULL, NULL, &state, &details))
    {
      const char *vm = "-", *address = "-", *address6 = "-", *mac = "-";

      g_variant_lookup (details, "vm", "&s", &vm);
      g_variant_lookup (details, "address", "&s", &address);
      g_variant_lookup (details, "address6", "&s", &address6);
      g_variant_lookup (details, "mac", "&s", &mac);
      bg_table_add_row (table, name, vm, address, address6, mac, state, NULL);
    }
  g_print ("\n");
  bg_table_print (table);
}

static gboolean
cmd_network (BgCli *cli, int argc, char **argv, GError **error)
{
  g_autoptr(GVariant) info = NULL;
  g_autoptr(GVariant) taps = NULL;

  if (!bg_cli_parse (cli, &(BgUsage) { NULL, 0, 0,
                     "Show the VM network: bridge, subnet, NAT, DNS and your taps.",
                     NULL }, &argc, &argv, error) ||
      !fetch_network (&info, &taps, error))
    return FALSE;
  if (cli->json)
    print_network_json (info, taps);
  else
    print_network_text (info, taps);
  return TRUE;
}

static gboolean
cmd_cleanup (BgCli *cli, int argc, char **argv, GError **error)
{
  gboolean dry_run = FALSE, all_users = FALSE;
  GOptionEntry entries[] = {
    { "dry-run", 'n', 0, G_OPTION_ARG_NONE, &dry_run, "Only say what would be removed", NULL },
    { "all-users", 0, 0, G_OPTION_ARG_NONE, &all_users,
      "Also other users' loop devices and half-made devices (needs an administrator)", NULL },
    { NULL }
  };
  g_autoptr(JsonArray) done = json_array_new ();
  g_autoptr(GPtrArray) leftovers = NULL;
  guint failed = 0, removed = 0;

  if (!bg_cli_parse (cli, &(BgUsage) { NULL, 0, 0,
                     "Find and remove what a crash, a kill or a reboot left behind: half-made VMs,\n"
                     "VM directories without a record, pinned keys of VMs that are gone, and taps,\n"
                     "VMMs and loop devices no VM of yours explains. Says what it removed.",
                     entries }, &argc, &argv, error))
    return FALSE;

  /* Twice: half-made VMs first, whose own removal takes their taps and
   * VMMs with them; then whatever the mechanism still holds. A dry run
   * changes nothing, so one look serves both rounds and lists all of it. */
  for (guint round = 0; round < 2; round++)
    {
      if (leftovers == NULL || !dry_run)
        {
          g_clear_pointer (&leftovers, g_ptr_array_unref);
          if ((leftovers = bg_cleanup_find (all_users, error)) == NULL)
            return FALSE;
        }
      for (guint i = 0; i < leftovers->len; i++)
        {
          BgLeftover *l = leftovers->pdata[i];
          g_autoptr(GError) e = NULL;
          if (round == 0 && !l->user_side)
            continue;
          if (round == 1 && l->user_side)
            continue;
          if (!dry_run && !bg_cleanup_remove (cli, l, &e))
            {
              bg_cli_warn ("could not remove %s %s: %s", l->kind, l->name, e->message);
              failed++;
              continue;
            }
          removed++;
          if (cli->json)
            {
              JsonObject *o = json_object_new ();
              json_object_set_string_member (o, "kind", l->kind);
              json_object_set_string_member (o, "name", l->name);
              json_object_set_int_member (o, "owner", l->owner);
              json_object_set_string_member (o, "why", l->why);
              json_object_set_boolean_member (o, "removed", !dry_run);
              json_array_add_object_element (done, o);
            }
          else
            g_print ("%s %s %s of uid %u (%s)\n", dry_run ? "would remove" : "removed", l->kind, l->name,
                     l->owner, l->why);
        }
    }
  bg_client_shutdown ();
  if (cli->json)
    {
      g_autoptr(JsonNode) root = json_node_new (JSON_NODE_ARRAY);
      json_node_set_array (root, done);
      bg_cli_print_json (root);
    }
  else if (removed == 0 && failed == 0)
    g_print ("Nothing to clean up.\n");
  if (failed > 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "%u leftover%s could not be removed (see above)",
                   failed, failed == 1 ? "" : "s");
      return FALSE;
    }
  return TRUE;
}

const BgCommand bg_system_commands[] = {
  { "cleanup", "Remove what a crash left behind", cmd_cleanup },
  { "status", "Check that this host can run banger VMs", cmd_status },
  { "network", "Show the VM network and your taps", cmd_network },
  { NULL }
};
