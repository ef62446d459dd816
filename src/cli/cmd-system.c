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

static void
add_variant_member (JsonBuilder *b,
                    const char  *key,
                    GVariant    *value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_value (b, json_gvariant_serialize (value));
}

static gboolean
cmd_network (BgCli *cli, int argc, char **argv, GError **error)
{
  g_autoptr(GVariant) info_reply = NULL;
  g_autoptr(GVariant) list_reply = NULL;
  g_autoptr(GVariant) info = NULL;
  g_autoptr(GVariant) taps = NULL;
  GVariantDict options;

  if (!bg_cli_parse (cli, &(BgUsage) { NULL, 0, 0,
                     "Show the VM network: bridge, subnet, NAT, DNS and your taps.",
                     NULL }, &argc, &argv, error))
    return FALSE;

  info_reply = bg_client_call ("NetworkInfo", NULL, NULL, error);
  if (info_reply == NULL)
    return FALSE;
  g_variant_dict_init (&options, NULL);
  g_variant_dict_insert (&options, "kind", "s", "tap");
  list_reply = bg_client_call ("ListResources", g_variant_new ("(@a{sv})", g_variant_dict_end (&options)),
                               NULL, error);
  bg_client_shutdown ();
  if (list_reply == NULL)
    return FALSE;
  info = g_variant_get_child_value (info_reply, 0);
  taps = g_variant_get_child_value (list_reply, 0);

  if (cli->json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      GVariantIter iter;
      const char *key;
      GVariant *value;

      json_builder_begin_object (b);
      g_variant_iter_init (&iter, info);
      while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
        {
          add_variant_member (b, key, value);
          g_variant_unref (value);
        }
      json_builder_set_member_name (b, "taps");
      json_builder_begin_array (b);
      for (gsize i = 0; i < g_variant_n_children (taps); i++)
        {
          g_autoptr(GVariant) t = g_variant_get_child_value (taps, i);
          g_autoptr(GVariant) details = g_variant_get_child_value (t, 5);
          const char *name, *state;

          g_variant_get_child (t, 1, "&s", &name);
          g_variant_get_child (t, 4, "&s", &state);
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "tap");
          json_builder_add_string_value (b, name);
          json_builder_set_member_name (b, "state");
          json_builder_add_string_value (b, state);
          g_variant_iter_init (&iter, details);
          while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
            {
              add_variant_member (b, key, value);
              g_variant_unref (value);
            }
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
      return bg_cli_print_built (b);
    }

  {
    const char *bridge = "", *subnet = "", *gateway = "", *uplink = "", *domain = "";
    g_autofree const char **dns = NULL;
    gboolean nat = FALSE;
    g_autofree char *dns_text = NULL;

    g_variant_lookup (info, "bridge", "&s", &bridge);
    g_variant_lookup (info, "subnet", "&s", &subnet);
    g_variant_lookup (info, "gateway", "&s", &gateway);
    g_variant_lookup (info, "uplink", "&s", &uplink);
    g_variant_lookup (info, "domain", "&s", &domain);
    g_variant_lookup (info, "nat", "b", &nat);
    g_variant_lookup (info, "dns", "^a&s", &dns);
    dns_text = dns && dns[0] ? g_strjoinv (", ", (char **) dns) : g_strdup ("none found (guests get no DNS)");

    g_print ("Bridge:   %s\n", bridge);
    g_print ("Subnet:   %s\n", *subnet ? subnet : "not set up yet ('banger vm up' sets it up)");
    g_print ("Gateway:  %s\n", *gateway ? gateway : "-");
    g_print ("Uplink:   %s\n", *uplink ? uplink : "-");
    g_print ("NAT:      %s\n", nat ? "on (nftables table ip banger)" : "off");
    g_print ("Names:    NAME.%s\n", domain);
    g_print ("DNS:      %s\n", dns_text);
    if (g_variant_n_children (taps) > 0)
      {
        g_autoptr(BgTable) table = bg_table_new ("TAP", "VM", "ADDRESS", "MAC", "STATE", NULL);

        g_print ("\n");
        for (gsize i = 0; i < g_variant_n_children (taps); i++)
          {
            g_autoptr(GVariant) t = g_variant_get_child_value (taps, i);
            g_autoptr(GVariant) details = g_variant_get_child_value (t, 5);
            const char *name, *state, *vm = "-", *address = "-", *mac = "-";

            g_variant_get_child (t, 1, "&s", &name);
            g_variant_get_child (t, 4, "&s", &state);
            g_variant_lookup (details, "vm", "&s", &vm);
            g_variant_lookup (details, "address", "&s", &address);
            g_variant_lookup (details, "mac", "&s", &mac);
            bg_table_add_row (table, name, vm, address, mac, state, NULL);
          }
        bg_table_print (table);
      }
  }
  return TRUE;
}

static gboolean
cmd_cleanup (BgCli *cli, int argc, char **argv, GError **error)
{
  gboolean dry_run = FALSE, all_users = FALSE;
  GOptionEntry entries[] = {
    { "dry-run", 'n', 0, G_OPTION_ARG_NONE, &dry_run, "Only say what would be removed", NULL },
    { "all-users", 0, 0, G_OPTION_ARG_NONE, &all_users, "Also other users' leftovers (needs an administrator)", NULL },
    { NULL }
  };
  g_autoptr(JsonArray) done = json_array_new ();
  guint failed = 0, removed = 0;

  if (!bg_cli_parse (cli, &(BgUsage) { NULL, 0, 0,
                     "Find and remove what a crash, a kill or a reboot left behind: half-made VMs,\n"
                     "VM directories without a record, pinned keys of VMs that are gone, and taps,\n"
                     "VMMs and loop devices no VM of yours explains. Says what it removed.",
                     entries }, &argc, &argv, error))
    return FALSE;

  /* Twice: half-made VMs first, whose own removal takes their taps and
   * VMMs with them; then whatever the mechanism still holds. */
  for (guint round = 0; round < 2; round++)
    {
      g_autoptr(GPtrArray) leftovers = bg_cleanup_find (all_users, error);

      if (leftovers == NULL)
        return FALSE;
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
              json_array_add_object_element (done, o);
            }
          else
            g_print ("%s %s %s of uid %u (%s)\n", dry_run ? "would remove" : "removed", l->kind, l->name,
                     l->owner, l->why);
        }
      if (dry_run)
        break;
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
