/* registry.c: what the mechanism created, and for whom.
 *
 * One JSON file per resource under <rundir>/registry/<kind>/<name>.json,
 * written atomically (temp + fsync + rename), so the registry survives a
 * restart or a crash of the mechanism and a half-written entry never
 * exists. The entry is written *before* the resource is made (state
 * "creating") and marked "deleting" before it is undone; on start, the
 * daemon reconciles entries left in either state, so a crash between the
 * two steps cannot leave an unrecorded device behind.
 *
 * Kinds are the enum of kind.h, written as their names, so the files keep
 * the format they always had; a record of a kind this mechanism does not
 * know is refused at load. Names come from the mechanism's own code or
 * were validated against the kind's rule before lookup; a caller's string
 * never becomes a path here unvalidated.
 */
#include <errno.h>
#include <json-glib/json-glib.h>
#include <glib/gstdio.h>

#include "bg-error.h"
#include "registry.h"

struct _BgRegistry {
  char       *dir;
  GHashTable *entries;   /* "kind/name" -> BgResource */
};

static gboolean write_entry (BgRegistry  *registry,
                             BgResource  *r,
                             GError     **error);

static const char * const state_names[] = {
  [BG_RESOURCE_CREATING] = "creating",
  [BG_RESOURCE_READY] = "ready",
  [BG_RESOURCE_DELETING] = "deleting",
};

const char *
bg_resource_state_to_string (BgResourceState state)
{
  return state_names[state];
}

static void
resource_free (BgResource *r)
{
  g_free (r->name);
  g_clear_pointer (&r->details, g_variant_unref);
  g_free (r);
}

static char *
entry_key (BgKind      kind,
           const char *name)
{
  return g_strdup_printf ("%s/%s", bg_kind_to_string (kind), name);
}

static char *
entry_path (BgRegistry *registry,
            BgKind      kind,
            const char *name)
{
  g_autofree char *leaf = g_strdup_printf ("%s.json", name);
  return g_build_filename (registry->dir, bg_kind_to_string (kind), leaf, NULL);
}

static gboolean
write_entry (BgRegistry  *registry,
             BgResource  *r,
             GError     **error)
{
  /* Details keep their exact GVariant types (a JSON number would come
   * back as int64 whatever it was), so they are stored as typed text. */
  g_autofree char *details = g_variant_print (r->details, TRUE);
  g_autoptr(GVariant) entry = g_variant_ref_sink (
    g_variant_new_parsed ("{'kind': <%s>, 'name': <%s>, 'owner': <%u>, 'created': <%x>, 'state': <%s>, "
                          "'details': <%s>}", bg_kind_to_string (r->kind), r->name, (guint32) r->owner, (gint64) r->created,
                          state_names[r->state], details));
  g_autoptr(JsonNode) root = json_gvariant_serialize (entry);
  g_autofree char *text = json_to_string (root, TRUE);
  g_autofree char *dir = g_build_filename (registry->dir, bg_kind_to_string (r->kind), NULL);
  g_autofree char *path = entry_path (registry, r->kind, r->name);

  if (g_mkdir_with_parents (dir, 0700) < 0)
    {
      int errsv = errno;
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                   "cannot create registry directory %s: %s", dir, g_strerror (errsv));
      return FALSE;
    }
  return g_file_set_contents_full (path, text, -1,
                                   G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                   0600, error);
}

static BgResource *
read_entry (const char  *path,
            GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local = NULL;
  g_autoptr(GVariant) details = NULL;
  JsonObject *o;
  JsonNode *root;
  const char *state, *kind, *name;
  BgKind k;
  BgResource *r;

  if (!json_parser_load_from_mapped_file (parser, path, error))
    return NULL;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    goto corrupt;
  o = json_node_get_object (root);
  if (!json_object_has_member (o, "kind") || !json_object_has_member (o, "name") ||
      !json_object_has_member (o, "owner") || !json_object_has_member (o, "state") ||
      !json_object_has_member (o, "details"))
    goto corrupt;
  details = g_variant_parse (G_VARIANT_TYPE ("a{sv}"),
                             json_object_get_string_member_with_default (o, "details", ""),
                             NULL, NULL, &local);
  if (details == NULL)
    goto corrupt;

  kind = json_object_get_string_member (o, "kind");
  name = json_object_get_string_member (o, "name");
  if (kind == NULL || name == NULL)
    goto corrupt;
  if (!bg_kind_from_string (kind, &k))
    {
      g_autofree char *shown = g_strescape (kind, NULL);
      g_autofree char *known = bg_kind_list_names ();
      g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "%s: unknown resource kind \"%.32s\" (known: %s)",
                   path, shown, known);
      return NULL;
    }
  state = json_object_get_string_member (o, "state");
  r = g_new0 (BgResource, 1);
  r->kind = k;
  r->name = g_strdup (name);
  r->owner = json_object_get_int_member (o, "owner");
  r->created = json_object_get_int_member_with_default (o, "created", 0);
  r->state = BG_RESOURCE_READY;
  for (guint i = 0; i < G_N_ELEMENTS (state_names); i++)
    if (g_strcmp0 (state, state_names[i]) == 0)
      r->state = i;
  r->details = g_variant_ref_sink (g_steal_pointer (&details));
  return r;

corrupt:
  g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "%s: not a registry entry", path);
  return NULL;
}

BgRegistry *
bg_registry_open (const char  *dir,
                  GError     **error)
{
  g_autoptr(BgRegistry) registry = g_new0 (BgRegistry, 1);
  g_autoptr(GDir) top = NULL;
  const char *kind;

  registry->dir = g_strdup (dir);
  registry->entries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                             (GDestroyNotify) resource_free);
  if (g_mkdir_with_parents (dir, 0700) < 0 || g_chmod (dir, 0700) < 0)
    {
      int errsv = errno;
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                   "cannot create registry %s: %s", dir, g_strerror (errsv));
      return NULL;
    }

  top = g_dir_open (dir, 0, error);
  if (top == NULL)
    return NULL;
  while ((kind = g_dir_read_name (top)) != NULL)
    {
      g_autofree char *kind_dir = g_build_filename (dir, kind, NULL);
      g_autoptr(GDir) sub = g_dir_open (kind_dir, 0, NULL);
      const char *file;

      while (sub != NULL && (file = g_dir_read_name (sub)) != NULL)
        {
          g_autofree char *path = g_build_filename (kind_dir, file, NULL);
          g_autoptr(GError) local = NULL;
          BgResource *r;

          if (!g_str_has_suffix (file, ".json"))
            {
              /* A temp file from a write interrupted by a crash. */
              g_unlink (path);
              continue;
            }
          r = read_entry (path, &local);
          if (r == NULL)
            {
              g_warning ("Ignoring registry entry: %s", local->message);
              continue;
            }
          g_hash_table_replace (registry->entries, entry_key (r->kind, r->name), r);
        }
    }

  return g_steal_pointer (&registry);
}

/* The registry is a record, and files can be deleted under it (someone
 * wiping /run/banger/registry): every entry whose file is gone is
 * written again from memory. Returns how many were. */
guint
bg_registry_heal (BgRegistry *registry)
{
  GHashTableIter iter;
  gpointer value;
  guint healed = 0;

  g_hash_table_iter_init (&iter, registry->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      BgResource *r = value;
      g_autofree char *path = entry_path (registry, r->kind, r->name);
      g_autoptr(GError) error = NULL;

      if (g_file_test (path, G_FILE_TEST_EXISTS))
        continue;
      if (g_mkdir_with_parents (registry->dir, 0700) < 0 || !write_entry (registry, r, &error))
        g_warning ("Cannot write the registry entry %s again: %s", path, error ? error->message : g_strerror (errno));
      else
        healed++;
    }
  return healed;
}

void
bg_registry_free (BgRegistry *registry)
{
  if (registry == NULL)
    return;
  g_free (registry->dir);
  g_clear_pointer (&registry->entries, g_hash_table_unref);
  g_free (registry);
}

BgResource *
bg_registry_lookup (BgRegistry *registry,
                    BgKind      kind,
                    const char *name)
{
  g_autofree char *key = entry_key (kind, name);
  return g_hash_table_lookup (registry->entries, key);
}

/* Records a resource in state "creating" before it is made. */
BgResource *
bg_registry_add (BgRegistry  *registry,
                 BgKind       kind,
                 const char  *name,
                 uid_t        owner,
                 GVariant    *details,
                 GError     **error)
{
  BgResource *r;

  if (bg_registry_lookup (registry, kind, name) != NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_EXISTS, "%s %s already exists", bg_kind_to_string (kind), name);
      if (details)
        g_variant_unref (g_variant_ref_sink (details));
      return NULL;
    }

  r = g_new0 (BgResource, 1);
  r->kind = kind;
  r->name = g_strdup (name);
  r->owner = owner;
  r->created = g_get_real_time () / G_USEC_PER_SEC;
  r->state = BG_RESOURCE_CREATING;
  r->details = details ? g_variant_ref_sink (details)
                       : g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0));
  if (!write_entry (registry, r, error))
    {
      resource_free (r);
      return NULL;
    }
  g_hash_table_replace (registry->entries, entry_key (kind, name), r);
  return r;
}

gboolean
bg_registry_set_state (BgRegistry       *registry,
                       BgResource       *resource,
                       BgResourceState   state,
                       GError          **error)
{
  BgResourceState old = resource->state;

  resource->state = state;
  if (!write_entry (registry, resource, error))
    {
      resource->state = old;
      return FALSE;
    }
  return TRUE;
}

gboolean
bg_registry_set_details (BgRegistry  *registry,
                         BgResource  *resource,
                         GVariant    *details,
                         GError     **error)
{
  GVariant *old = resource->details;

  resource->details = g_variant_ref_sink (details);
  if (!write_entry (registry, resource, error))
    {
      g_variant_unref (resource->details);
      resource->details = old;
      return FALSE;
    }
  g_variant_unref (old);
  return TRUE;
}

/* Forgets @resource (freed on return) once it has been undone. */
gboolean
bg_registry_remove (BgRegistry  *registry,
                    BgResource  *resource,
                    GError     **error)
{
  g_autofree char *path = entry_path (registry, resource->kind, resource->name);
  g_autofree char *key = entry_key (resource->kind, resource->name);

  if (g_unlink (path) < 0 && errno != ENOENT)
    {
      int errsv = errno;
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                   "cannot remove registry entry %s: %s", path, g_strerror (errsv));
      return FALSE;
    }
  g_hash_table_remove (registry->entries, key);
  return TRUE;
}

static gint
compare_resources (gconstpointer a,
                   gconstpointer b)
{
  const BgResource *ra = *(BgResource **) a;
  const BgResource *rb = *(BgResource **) b;
  /* By the kind's name, the order ListResources has always had. */
  int c = g_strcmp0 (bg_kind_to_string (ra->kind), bg_kind_to_string (rb->kind));

  return c != 0 ? c : g_strcmp0 (ra->name, rb->name);
}

static GPtrArray *
list_kinds (BgRegistry *registry,
            gboolean    all,
            BgKind      kind)
{
  GPtrArray *out = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, registry->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      BgResource *r = value;
      if (all || r->kind == kind)
        g_ptr_array_add (out, r);
    }
  g_ptr_array_sort (out, compare_resources);
  return out;
}

/* Borrowed pointers, sorted by name. */
GPtrArray *
bg_registry_list (BgRegistry *registry,
                  BgKind      kind)
{
  return list_kinds (registry, FALSE, kind);
}

/* Borrowed pointers to every record, sorted by kind then name. */
GPtrArray *
bg_registry_list_all (BgRegistry *registry)
{
  return list_kinds (registry, TRUE, 0);
}

guint
bg_registry_count (BgRegistry *registry,
                   BgKind      kind)
{
  g_autoptr(GPtrArray) list = bg_registry_list (registry, kind);
  return list->len;
}

GVariant *
bg_resource_to_variant (BgResource *r)
{
  return g_variant_new ("(ssuts@a{sv})", bg_kind_to_string (r->kind), r->name, (guint32) r->owner,
                        (guint64) r->created, state_names[r->state], r->details);
}

const char *
bg_resource_get_string (BgResource *r,
                        const char *key)
{
  const char *value = NULL;

  if (!g_variant_lookup (r->details, key, "&s", &value))
    return NULL;
  return value;
}
