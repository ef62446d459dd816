/* bg-config.c: the user's banger.conf.
 *
 * A GKeyFile with documented defaults (see data/banger.conf.example).
 * Unknown keys are warnings, not errors, so an older banger can read a
 * newer file; a bad value is an error naming the file, line and key,
 * because silently using a default would hide the user's intent.
 */
#include <errno.h>
#include <gio/gio.h>

#include "bg-config.h"
#include "bg-error.h"
#include "bg-names.h"
#include "bg-paths.h"
#include "bg-size.h"

static const char * const disk_modes[] = {
  [BG_DISK_MODE_AUTO] = "auto",
  [BG_DISK_MODE_REFLINK] = "reflink",
  [BG_DISK_MODE_LAYERED] = "layered",
  [BG_DISK_MODE_COPY] = "copy",
};

const char *
bg_config_disk_mode_to_string (BgDiskMode mode)
{
  g_return_val_if_fail (mode < G_N_ELEMENTS (disk_modes), "auto");
  return disk_modes[mode];
}

static gboolean
disk_mode_from_string (const char *str,
                       BgDiskMode *out)
{
  for (guint i = 0; i < G_N_ELEMENTS (disk_modes); i++)
    if (g_strcmp0 (str, disk_modes[i]) == 0)
      {
        *out = i;
        return TRUE;
      }
  return FALSE;
}

/* FALSE, with "@field: " (when there is a field) before the message. */
static gboolean G_GNUC_PRINTF (3, 4)
refuse (GError     **error,
        const char  *field,
        const char  *format,
        ...)
{
  va_list args;

  va_start (args, format);
  g_propagate_error (error, g_error_new_valist (BG_ERROR, BG_ERROR_INVALID_ARGUMENT, format, args));
  va_end (args);
  if (field != NULL)
    g_prefix_error (error, "%s: ", field);
  return FALSE;
}

/* Firecracker takes 1..32 vCPUs, "either 1 or an even number". */
gboolean
bg_config_validate_cpus (const char  *field,
                         gint64       cpus,
                         GError     **error)
{
  if (cpus == 1 || (cpus >= 2 && cpus <= BG_MAX_CPUS && cpus % 2 == 0))
    return TRUE;
  return refuse (error, field, "%" G_GINT64_FORMAT " vCPUs is not allowed; use 1 or an even number up to %d",
                 cpus, BG_MAX_CPUS);
}

gboolean
bg_config_validate_memory (const char  *field,
                           gint64       mib,
                           GError     **error)
{
  if (mib >= BG_MIN_MEMORY_MIB && mib <= BG_MAX_MEMORY_MIB)
    return TRUE;
  return refuse (error, field, "%" G_GINT64_FORMAT " MiB is out of range; use %d to %d MiB",
                 mib, BG_MIN_MEMORY_MIB, BG_MAX_MEMORY_MIB);
}

gboolean
bg_config_validate_disk_size (const char  *field,
                              guint64      bytes,
                              GError     **error)
{
  if (bytes >= BG_MIN_DISK_BYTES && bytes <= BG_MAX_DISK_BYTES)
    return TRUE;
  return refuse (error, field, "size is out of range; use 256M to 16T");
}

BgConfig *
bg_config_new_defaults (void)
{
  BgConfig *config = g_new0 (BgConfig, 1);
  g_autofree char *data_dir = bg_paths_data_dir ();

  config->cpus = BG_DEFAULT_CPUS;
  config->memory_mib = BG_DEFAULT_MEMORY_MIB;
  config->disk_bytes = BG_DEFAULT_DISK_BYTES;
  config->image = g_strdup (BG_DEFAULT_IMAGE);
  config->disk_mode = BG_DISK_MODE_AUTO;
  config->guest_user = g_strdup (BG_DEFAULT_GUEST_USER);
  config->ssh_key = g_build_filename (data_dir, "ssh", "id_ed25519", NULL);
  config->authorized_keys = g_new0 (char *, 1);
  config->sync_paths = g_new0 (char *, 1);
  config->insecure_registries = g_new0 (char *, 1);
  config->sync_limit = BG_DEFAULT_SYNC_LIMIT;
  config->warnings = g_ptr_array_new_with_free_func (g_free);
  return config;
}

void
bg_config_free (BgConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->path);
  g_free (config->image);
  g_free (config->guest_user);
  g_free (config->ssh_key);
  g_strfreev (config->authorized_keys);
  g_strfreev (config->sync_paths);
  g_strfreev (config->insecure_registries);
  g_ptr_array_unref (config->warnings);
  g_free (config);
}

/* GKeyFile does not keep line numbers, so find the key's line in the text
 * ourselves: the last "key =" inside the last "[group]" wins, as in
 * GKeyFile. Returns 0 when not found. */
static guint
find_line (const char *text,
           const char *group,
           const char *key)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  gboolean in_group = FALSE;
  guint found = 0;
  gsize key_len = key ? strlen (key) : 0;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *l = lines[i];

      while (*l == ' ' || *l == '\t')
        l++;
      if (*l == '[')
        {
          const char *close = strchr (l, ']');

          in_group = close != NULL && (gsize) (close - l - 1) == strlen (group) &&
                     strncmp (l + 1, group, close - l - 1) == 0;
          if (in_group && key == NULL)
            found = i + 1;
          continue;
        }
      if (in_group && key != NULL && strncmp (l, key, key_len) == 0)
        {
          const char *rest = l + key_len;

          while (*rest == ' ' || *rest == '\t')
            rest++;
          if (*rest == '=')
            found = i + 1;
        }
    }
  return found;
}

static char *
expand_home (const char *value)
{
  if (g_str_has_prefix (value, "~/"))
    return g_build_filename (g_get_home_dir (), value + 2, NULL);
  return g_strdup (value);
}

static gboolean
check_path (const char  *path,
            GError     **error)
{
  if (g_str_has_prefix (path, "~/") || g_path_is_absolute (path))
    return TRUE;
  return refuse (error, NULL, "\"%s\" must be an absolute path or start with ~/", path);
}

/* The keys banger.conf knows, each with the parser that reads its value
 * into its field of BgConfig, as systemd's configuration tables do. A
 * parser returns FALSE with the reason; the caller adds file, line, key. */
typedef struct _ConfigKey ConfigKey;
struct _ConfigKey {
  const char *group;
  const char *key;
  gboolean  (*parse) (GKeyFile *kf, const ConfigKey *k, gpointer field, GError **error);
  gsize       offset;
};

/* A number-like value, stripped. */
static char *
raw_value (GKeyFile        *kf,
           const ConfigKey *k)
{
  return g_strstrip (g_key_file_get_value (kf, k->group, k->key, NULL));
}

static gboolean
parse_int (GKeyFile         *kf,
           const ConfigKey  *k,
           gint64           *out,
           GError          **error)
{
  g_autofree char *raw = raw_value (kf, k);

  if (g_ascii_string_to_signed (raw, 10, G_MININT64, G_MAXINT64, out, NULL))
    return TRUE;
  return refuse (error, NULL, "\"%s\" is not a whole number", raw);
}

/* A whole number into a guint field, within what @check allows. */
static gboolean
parse_count (GKeyFile         *kf,
             const ConfigKey  *k,
             guint            *field,
             gboolean        (*check) (const char *, gint64, GError **),
             GError          **error)
{
  gint64 v;

  if (!parse_int (kf, k, &v, error) || !check (NULL, v, error))
    return FALSE;
  *field = v;
  return TRUE;
}

static gboolean
parse_cpus (GKeyFile *kf, const ConfigKey *k, gpointer field, GError **error)
{
  return parse_count (kf, k, field, bg_config_validate_cpus, error);
}

static gboolean
parse_memory (GKeyFile *kf, const ConfigKey *k, gpointer field, GError **error)
{
  return parse_count (kf, k, field, bg_config_validate_memory, error);
}

static gboolean
parse_size (GKeyFile *kf, const ConfigKey *k, gpointer field, GError **error)
{
  g_autofree char *raw = raw_value (kf, k);

  return bg_parse_size (raw, field, error);
}

static gboolean
parse_disk_size (GKeyFile *kf, const ConfigKey *k, gpointer field, GError **error)
{
  return parse_size (kf, k, field, error) && bg_config_validate_disk_size (NULL, *(guint64 *) field, error);
}

/* A string, replacing the default in @field. */
static gboolean
parse_string (GKeyFile *kf, const ConfigKey *k, gpointer field, GError **error)
{
  char *value = g_key_file_get_string (kf, k->group, k->key, error);

  if (value == NULL)
    return FALSE;
  g_free (*(char **) field);
  *(char **) field = value;
  return TRUE;
}

/* An image or user name: it reaches file names (and useradd, in the guest). */
static gboolean
parse_name (GKeyFile *kf, const ConfigKey *k, gpointer field, GError **error)
{
  return parse_string (kf, k, field, error) && bg_name_validate (k->key, *(char **) field, error);
}

static gboolean
parse_disk_mode (GKeyFile *kf, const ConfigKey *k, gpointer field, GError **error)
{
  g_autofree char *mode = g_key_file_get_string (kf, k->group, k->key, error);

  if (mode == NULL)
    return FALSE;
  if (disk_mode_from_string (g_strstrip (mode), field))
    return TRUE;
  return refuse (error, NULL, "\"%s\" is not one of auto, reflink, layered, copy", mode);
}

static gboolean
parse_path (GKeyFile *kf, const ConfigKey *k, gpointer field, GError **error)
{
  g_autofree char *path = g_key_file_get_string (kf, k->group, k->key, error);

  if (path == NULL || !check_path (path, error))
    return FALSE;
  g_free (*(char **) field);
  *(char **) field = expand_home (path);
  return TRUE;
}

/* A list of paths, "a; b": blanks around them and empty ones ignored. */
static gboolean
parse_paths (GKeyFile *kf, const ConfigKey *k, gpointer field, GError **error)
{
  g_auto(GStrv) values = g_key_file_get_string_list (kf, k->group, k->key, NULL, error);
  g_autoptr(GStrvBuilder) expanded = g_strv_builder_new ();

  if (values == NULL)
    return FALSE;
  for (guint i = 0; values[i] != NULL; i++)
    {
      g_autofree char *v = g_strstrip (g_strdup (values[i]));
      g_autofree char *full = NULL;

      if (*v == '\0')
        continue;
      if (!check_path (v, error))
        return FALSE;
      full = expand_home (v);
      g_strv_builder_add (expanded, full);
    }
  g_strfreev (*(char ***) field);
  *(char ***) field = g_strv_builder_end (expanded);
  return TRUE;
}

/* Registries reached over plain HTTP: "host" or "host:port", as the
 * reference names them (podman's registries.conf insecure = true). */
static gboolean
parse_registries (GKeyFile *kf, const ConfigKey *k, gpointer field, GError **error)
{
  g_auto(GStrv) values = g_key_file_get_string_list (kf, k->group, k->key, NULL, error);
  g_autoptr(GStrvBuilder) list = g_strv_builder_new ();

  if (values == NULL)
    return FALSE;
  for (guint i = 0; values[i] != NULL; i++)
    {
      g_autofree char *v = g_ascii_strdown (g_strstrip (values[i]), -1);
      const char *colon = strrchr (v, ':');
      guint64 port;

      if (*v == '\0')
        continue;
      for (const char *c = v; *c && c != colon; c++)
        if (!(g_ascii_isalnum (*c) || *c == '.' || *c == '-'))
          return refuse (error, NULL, "\"%s\" is not a registry; write host or host:port", v);
      if (v[0] == ':' || (colon && !g_ascii_string_to_unsigned (colon + 1, 10, 1, 65535, &port, NULL)))
        return refuse (error, NULL, "\"%s\" is not a registry; write host or host:port", v);
      g_strv_builder_add (list, v);
    }
  g_strfreev (*(char ***) field);
  *(char ***) field = g_strv_builder_end (list);
  return TRUE;
}

static const ConfigKey config_keys[] = {
  { "vm", "cpus", parse_cpus, G_STRUCT_OFFSET (BgConfig, cpus) },
  { "vm", "memory", parse_memory, G_STRUCT_OFFSET (BgConfig, memory_mib) },
  { "vm", "disk-size", parse_disk_size, G_STRUCT_OFFSET (BgConfig, disk_bytes) },
  { "vm", "image", parse_name, G_STRUCT_OFFSET (BgConfig, image) },
  { "vm", "disk-mode", parse_disk_mode, G_STRUCT_OFFSET (BgConfig, disk_mode) },
  { "guest", "user", parse_name, G_STRUCT_OFFSET (BgConfig, guest_user) },
  { "ssh", "key", parse_path, G_STRUCT_OFFSET (BgConfig, ssh_key) },
  { "ssh", "authorized-keys", parse_paths, G_STRUCT_OFFSET (BgConfig, authorized_keys) },
  { "sync", "paths", parse_paths, G_STRUCT_OFFSET (BgConfig, sync_paths) },
  { "sync", "max-size", parse_size, G_STRUCT_OFFSET (BgConfig, sync_limit) },
  { "registry", "insecure", parse_registries, G_STRUCT_OFFSET (BgConfig, insecure_registries) },
};

static gboolean
is_known_key (const char *group,
              const char *key)
{
  for (guint i = 0; i < G_N_ELEMENTS (config_keys); i++)
    if (g_str_equal (config_keys[i].group, group) &&
        (key == NULL || g_str_equal (config_keys[i].key, key)))
      return TRUE;
  return FALSE;
}

static void
collect_unknown (const char *path,
                 const char *text,
                 GKeyFile   *kf,
                 GPtrArray  *warnings)
{
  g_auto(GStrv) groups = g_key_file_get_groups (kf, NULL);

  for (guint i = 0; groups[i] != NULL; i++)
    {
      g_auto(GStrv) keys = NULL;

      if (!is_known_key (groups[i], NULL))
        {
          g_ptr_array_add (warnings, g_strdup_printf ("%s:%u: unknown group [%s] ignored", path,
                                                      find_line (text, groups[i], NULL), groups[i]));
          continue;
        }
      keys = g_key_file_get_keys (kf, groups[i], NULL, NULL);
      for (guint j = 0; keys && keys[j] != NULL; j++)
        if (!is_known_key (groups[i], keys[j]))
          g_ptr_array_add (warnings, g_strdup_printf ("%s:%u: unknown key '%s' in [%s] ignored", path,
                                                      find_line (text, groups[i], keys[j]),
                                                      keys[j], groups[i]));
    }
}

BgConfig *
bg_config_load (const char  *path,
                GError     **error)
{
  g_autoptr(BgConfig) config = bg_config_new_defaults ();
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autofree char *text = NULL;
  g_autoptr(GError) local = NULL;

  config->path = g_strdup (path);
  if (!g_file_get_contents (path, &text, NULL, &local))
    {
      if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return g_steal_pointer (&config);
      g_propagate_prefixed_error (error, g_steal_pointer (&local), "Cannot read config: ");
      return NULL;
    }
  if (!g_key_file_load_from_data (kf, text, -1, G_KEY_FILE_NONE, &local))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "%s: %s", path, local->message);
      return NULL;
    }

  collect_unknown (path, text, kf, config->warnings);
  for (guint i = 0; i < G_N_ELEMENTS (config_keys); i++)
    {
      const ConfigKey *k = &config_keys[i];

      if (g_key_file_has_key (kf, k->group, k->key, NULL) &&
          !k->parse (kf, k, G_STRUCT_MEMBER_P (config, k->offset), &local))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s:%u: [%s] %s: %s", path,
                       find_line (text, k->group, k->key), k->group, k->key, local->message);
          return NULL;
        }
    }
  return g_steal_pointer (&config);
}

BgConfig *
bg_config_load_default (GError **error)
{
  g_autofree char *path = bg_paths_config_file ();

  return bg_config_load (path, error);
}
