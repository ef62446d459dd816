/* cmd-image.c: banger image … — the images VMs are made from. */
#include "bg-cli.h"
#include "bg-config.h"
#include "bg-error.h"
#include "bg-names.h"
#include "bg-paths.h"

/* Reads images/<name>/image.json; a file that cannot be parsed is an
 * error naming it, never a crash. */
static JsonNode *
load_image (const char  *name,
            GError     **error)
{
  g_autofree char *dir = bg_paths_images_dir ();
  g_autofree char *path = g_build_filename (dir, name, "image.json", NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local = NULL;
  JsonNode *root;

  if (!json_parser_load_from_mapped_file (parser, path, &local))
    {
      if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND,
                     "No image named \"%s\"; see 'banger image ls'", name);
      else
        g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "%s: %s", path, local->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "%s: not a JSON object", path);
      return NULL;
    }
  return json_node_copy (root);
}

static gint
compare_names (gconstpointer a,
               gconstpointer b)
{
  return g_strcmp0 (*(char **) a, *(char **) b);
}

static gboolean
cmd_ls (BgCli    *cli,
        int       argc,
        char    **argv,
        GError  **error)
{
  g_autofree char *dir_path = bg_paths_images_dir ();
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(JsonArray) array = json_array_new ();
  g_autoptr(BgTable) table = bg_table_new ("NAME", "ROOTFS", "CREATED", NULL);
  const char *entry;

  if (!bg_cli_parse (cli, argv[0], NULL, "List your images.", NULL, &argc, &argv, error) ||
      !bg_cli_expect_args (argv[0], argc, 0, 0, error))
    return FALSE;

  dir = g_dir_open (dir_path, 0, NULL);
  while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
    if (bg_name_is_valid (entry))
      g_ptr_array_add (names, g_strdup (entry));
  g_ptr_array_sort (names, compare_names);

  for (guint i = 0; i < names->len; i++)
    {
      g_autoptr(GError) e = NULL;
      g_autoptr(JsonNode) node = load_image (names->pdata[i], &e);
      JsonObject *o;

      if (node == NULL)
        {
          if (!g_error_matches (e, BG_ERROR, BG_ERROR_NOT_FOUND))
            bg_cli_warn ("%s", e->message);
          continue;
        }
      o = json_node_get_object (node);
      if (cli->json)
        json_array_add_element (array, json_node_copy (node));
      else
        {
          g_autofree char *size = bg_format_size (json_object_get_int_member_with_default (o, "rootfs_bytes", 0));
          g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local (
              json_object_get_int_member_with_default (o, "created_at", 0));
          g_autofree char *created = dt ? g_date_time_format (dt, "%Y-%m-%d %H:%M") : g_strdup ("-");

          bg_table_add_row (table, (char *) names->pdata[i], size, created, NULL);
        }
    }

  if (cli->json)
    {
      g_autoptr(JsonNode) root = json_node_new (JSON_NODE_ARRAY);
      json_node_set_array (root, array);
      bg_cli_print_json (root);
    }
  else if (names->len > 0)
    bg_table_print (table);
  else if (cli->is_tty)
    g_print ("No images yet. 'banger image import' or 'banger image build' makes one.\n");
  return TRUE;
}

static gboolean
cmd_show (BgCli    *cli,
          int       argc,
          char    **argv,
          GError  **error)
{
  g_autoptr(JsonNode) node = NULL;
  JsonObject *o;
  g_autoptr(GList) members = NULL;

  if (!bg_cli_parse (cli, argv[0], "NAME", "Show an image's details.", NULL, &argc, &argv, error) ||
      !bg_cli_expect_args (argv[0], argc, 1, 1, error) ||
      !bg_name_validate ("NAME", argv[1], error))
    return FALSE;

  node = load_image (argv[1], error);
  if (node == NULL)
    return FALSE;
  if (cli->json)
    {
      bg_cli_print_json (node);
      return TRUE;
    }
  o = json_node_get_object (node);
  members = json_object_get_members (o);
  for (GList *l = members; l != NULL; l = l->next)
    {
      JsonNode *v = json_object_get_member (o, l->data);
      g_autofree char *text = json_to_string (v, FALSE);
      g_print ("%-16s %s\n", (char *) l->data, text);
    }
  return TRUE;
}

const BgCommand bg_image_commands[] = {
  { "ls", NULL, "List your images", cmd_ls },
  { "show", "NAME", "Show an image's details", cmd_show },
  { NULL }
};
