/* cmd-vm.c: banger vm … — the user's VMs. */
#include "bg-cli.h"
#include "bg-config.h"
#include "bg-error.h"
#include "bg-names.h"
#include "bg-state.h"

static char *
format_memory (guint mib)
{
  if (mib >= 1024 && mib % 1024 == 0)
    return g_strdup_printf ("%uG", mib / 1024);
  return g_strdup_printf ("%uM", mib);
}

static gboolean
cmd_ls (BgCli    *cli,
        int       argc,
        char    **argv,
        GError  **error)
{
  g_autoptr(BgStateStore) store = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GPtrArray) problems = NULL;

  if (!bg_cli_parse (cli, argv[0], NULL, "List your VMs.", NULL, &argc, &argv, error) ||
      !bg_cli_expect_args (argv[0], argc, 0, 0, error))
    return FALSE;

  store = bg_state_store_new_default ();
  records = bg_state_store_list (store, &problems, error);
  if (records == NULL)
    return FALSE;
  for (guint i = 0; i < problems->len; i++)
    bg_cli_warn ("%s", (char *) problems->pdata[i]);

  if (cli->json)
    {
      g_autoptr(JsonArray) array = json_array_new ();
      g_autoptr(JsonNode) root = json_node_new (JSON_NODE_ARRAY);

      for (guint i = 0; i < records->len; i++)
        json_array_add_element (array, bg_vm_record_to_json (records->pdata[i]));
      json_node_set_array (root, array);
      bg_cli_print_json (root);
      return TRUE;
    }

  if (records->len == 0)
    {
      if (cli->is_tty)
        g_print ("No VMs yet. Create one with 'banger vm up'.\n");
      return TRUE;
    }

  {
    g_autoptr(BgTable) table = bg_table_new ("NAME", "STATE", "ADDRESS", "IMAGE", "CPUS",
                                             "MEMORY", "UPTIME", NULL);
    for (guint i = 0; i < records->len; i++)
      {
        BgVmRecord *r = records->pdata[i];
        g_autofree char *cpus = g_strdup_printf ("%u", r->cpus);
        g_autofree char *mem = format_memory (r->memory_mib);
        g_autofree char *up = bg_cli_format_age (g_strcmp0 (r->state, "running") == 0 ? r->started_at : 0);

        bg_table_add_row (table, r->name, r->state, r->address ? r->address : "-",
                          r->image ? r->image : "-", cpus, mem, up, NULL);
      }
    bg_table_print (table);
  }
  return TRUE;
}

static gboolean
cmd_show (BgCli    *cli,
          int       argc,
          char    **argv,
          GError  **error)
{
  g_autoptr(BgStateStore) store = NULL;
  g_autoptr(BgVmRecord) r = NULL;

  if (!bg_cli_parse (cli, argv[0], "NAME", "Show everything banger knows about a VM.",
                     NULL, &argc, &argv, error) ||
      !bg_cli_expect_args (argv[0], argc, 1, 1, error) ||
      !bg_name_validate ("NAME", argv[1], error))
    return FALSE;

  store = bg_state_store_new_default ();
  r = bg_state_store_load (store, argv[1], error);
  if (r == NULL)
    return FALSE;

  if (cli->json)
    {
      g_autoptr(JsonNode) node = bg_vm_record_to_json (r);
      bg_cli_print_json (node);
      return TRUE;
    }

  {
    g_autofree char *mem = format_memory (r->memory_mib);
    g_autofree char *disk = bg_format_size (r->disk_bytes);
    g_autofree char *created = NULL;
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local (r->created_at);

    created = dt ? g_date_time_format (dt, "%Y-%m-%d %H:%M:%S") : g_strdup ("-");
    g_print ("Name:      %s\n", r->name);
    g_print ("State:     %s\n", r->state);
    g_print ("Image:     %s\n", r->image ? r->image : "-");
    g_print ("CPUs:      %u\n", r->cpus);
    g_print ("Memory:    %s\n", mem);
    g_print ("Disk:      %s%s%s%s\n", disk, r->disk_mode ? " (" : "",
             r->disk_mode ? r->disk_mode : "", r->disk_mode ? ")" : "");
    g_print ("Address:   %s\n", r->address ? r->address : "-");
    g_print ("MAC:       %s\n", r->mac ? r->mac : "-");
    g_print ("Tap:       %s\n", r->tap ? r->tap : "-");
    g_print ("Created:   %s\n", created);
  }
  return TRUE;
}

const BgCommand bg_vm_commands[] = {
  { "ls", NULL, "List your VMs", cmd_ls },
  { "show", "NAME", "Show a VM's details", cmd_show },
  { NULL }
};
