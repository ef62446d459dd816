/* bg-state.c: per-VM records under $XDG_STATE_HOME/banger/vms/<name>/vm.json.
 *
 * Every write is write-temp + fsync + rename (g_file_set_contents_full with
 * DURABLE, or CONSISTENT where the caller says an older record would do
 * after a power loss), so a reader sees the old or the new record, never
 * half of one.
 * Read-modify-write cycles hold an flock() on vms/.lock, so two banger
 * processes updating the same VM never lose one of the updates.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "bg-file.h"
#include "bg-names.h"
#include "bg-paths.h"
#include "bg-state.h"

struct _BgStateStore {
  char *dir;
};

static BgVmRecord *record_from_json (JsonNode    *node,
                                     const char  *source,
                                     GError     **error);

static const char * const state_names[] = {
  [BG_VM_CREATING] = "creating",
  [BG_VM_CREATED] = "created",
  [BG_VM_STOPPED] = "stopped",
  [BG_VM_RUNNING] = "running",
  [BG_VM_PAUSED] = "paused",
  [BG_VM_STARTING] = "starting",
  [BG_VM_CRASHED] = "crashed",
};

const char *
bg_vm_state_to_string (BgVmState state)
{
  return state < G_N_ELEMENTS (state_names) ? state_names[state] : "unknown";
}

static gboolean
vm_state_from_string (const char *text,
                      BgVmState  *state)
{
  for (guint i = 0; i < G_N_ELEMENTS (state_names); i++)
    if (g_strcmp0 (text, state_names[i]) == 0)
      {
        *state = i;
        return TRUE;
      }
  return FALSE;
}

BgVmRecord *
bg_vm_record_new (const char *name)
{
  BgVmRecord *record = g_new0 (BgVmRecord, 1);

  record->name = g_strdup (name);
  record->state = BG_VM_CREATED;
  record->created_at = g_get_real_time () / G_USEC_PER_SEC;
  record->updated_at = record->created_at;
  return record;
}

BgVmRecord *
bg_vm_record_copy (const BgVmRecord *record)
{
  g_autoptr(JsonNode) node = bg_vm_record_to_json (record);
  BgVmRecord *copy = record_from_json (node, "copy", NULL);

  g_assert (copy != NULL);
  /* What JSON does not carry (states only probes find). */
  copy->state = record->state;
  return copy;
}

void
bg_vm_record_free (BgVmRecord *record)
{
  if (record == NULL)
    return;
  g_free (record->name);
  g_free (record->image);
  g_free (record->disk_mode);
  g_free (record->disk_reason);
  g_free (record->tap);
  g_free (record->address);
  g_free (record->gateway);
  g_free (record->address6);
  g_free (record->gateway6);
  g_free (record->mac);
  g_free (record->api_socket);
  g_free (record->vsock_socket);
  g_free (record->domain);
  g_strfreev (record->dns);
  g_strfreev (record->forwards);
  g_free (record->guest_user);
  g_free (record);
}

static void
add_string (JsonBuilder *b,
            const char  *key,
            const char  *value)
{
  if (value == NULL)
    return;
  json_builder_set_member_name (b, key);
  json_builder_add_string_value (b, value);
}

static void
add_int (JsonBuilder *b,
         const char  *key,
         gint64       value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_int_value (b, value);
}

JsonNode *
bg_vm_record_to_json (const BgVmRecord *r)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  add_int (b, "version", 1);
  add_string (b, "name", r->name);
  add_string (b, "image", r->image);
  add_string (b, "state", bg_vm_state_to_string (r->state));
  add_int (b, "cpus", r->cpus);
  add_int (b, "memory_mib", r->memory_mib);
  add_int (b, "disk_bytes", (gint64) r->disk_bytes);
  add_string (b, "disk_mode", r->disk_mode);
  add_string (b, "disk_reason", r->disk_reason);
  add_int (b, "created_at", r->created_at);
  add_int (b, "updated_at", r->updated_at);
  add_int (b, "started_at", r->started_at);
  add_string (b, "tap", r->tap);
  add_string (b, "address", r->address);
  add_string (b, "gateway", r->gateway);
  add_string (b, "address6", r->address6);
  add_string (b, "gateway6", r->gateway6);
  add_int (b, "prefix", r->prefix);
  add_string (b, "mac", r->mac);
  add_int (b, "cid", r->cid);
  add_int (b, "pid", r->pid);
  add_string (b, "api_socket", r->api_socket);
  add_string (b, "vsock_socket", r->vsock_socket);
  add_string (b, "domain", r->domain);
  if (r->dns != NULL)
    {
      json_builder_set_member_name (b, "dns");
      json_builder_begin_array (b);
      for (guint i = 0; r->dns[i]; i++)
        json_builder_add_string_value (b, r->dns[i]);
      json_builder_end_array (b);
    }
  add_string (b, "guest_user", r->guest_user);
  if (r->forwards != NULL && r->forwards[0] != NULL)
    {
      json_builder_set_member_name (b, "forwards");
      json_builder_begin_array (b);
      for (guint i = 0; r->forwards[i]; i++)
        json_builder_add_string_value (b, r->forwards[i]);
      json_builder_end_array (b);
    }
  add_int (b, "generation", r->generation);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

/* Typed getters that refuse a member of the wrong type instead of letting
 * json-glib coerce it or warn. */
static gboolean
holds (JsonNode *n,
       GType     type)
{
  return JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == type;
}

static gboolean
member_error (const char  *source,
              const char  *key,
              const char  *what,
              GError     **error)
{
  g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "%s: member \"%s\" %s", source, key, what);
  return FALSE;
}

static gboolean
get_member_string (JsonObject  *o,
                   const char  *key,
                   gboolean     required,
                   char       **out,
                   const char  *source,
                   GError     **error)
{
  JsonNode *n = json_object_get_member (o, key);

  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return !required || member_error (source, key, "is missing", error);
  if (!holds (n, G_TYPE_STRING))
    return member_error (source, key, "must be a string", error);
  *out = g_strdup (json_node_get_string (n));
  return TRUE;
}

static gboolean
get_member_int (JsonObject  *o,
                const char  *key,
                gint64       min,
                gint64       max,
                gint64      *out,
                const char  *source,
                GError     **error)
{
  JsonNode *n = json_object_get_member (o, key);
  gint64 v;

  if (n == NULL)
    return TRUE;
  if (!holds (n, G_TYPE_INT64))
    return member_error (source, key, "must be an integer", error);
  v = json_node_get_int (n);
  if (v < min || v > max)
    return member_error (source, key, "is out of range", error);
  *out = v;
  return TRUE;
}

static gboolean
get_member_strv (JsonObject  *o,
                 const char  *key,
                 char      ***out,
                 const char  *source,
                 GError     **error)
{
  JsonNode *n = json_object_get_member (o, key);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  JsonArray *a;

  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (n))
    return member_error (source, key, "must be a list of strings", error);
  a = json_node_get_array (n);
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonNode *e = json_array_get_element (a, i);
      if (!holds (e, G_TYPE_STRING))
        return member_error (source, key, "must be a list of strings", error);
      g_strv_builder_add (b, json_node_get_string (e));
    }
  *out = g_strv_builder_end (b);
  return TRUE;
}

static BgVmRecord *
record_from_json (JsonNode    *node,
                  const char  *source,
                  GError     **error)
{
  g_autoptr(BgVmRecord) r = g_new0 (BgVmRecord, 1);
  g_autofree char *state = NULL;
  JsonObject *o;
  gint64 v;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT,
                   "%s: %s, not a JSON object", source,
                   node == NULL ? "empty" : "an array or value");
      return NULL;
    }
  o = json_node_get_object (node);

#define STR(key, req, field) \
  if (!get_member_string (o, key, req, &r->field, source, error)) return NULL
#define INT(key, min, max, field) \
  v = r->field; \
  if (!get_member_int (o, key, min, max, &v, source, error)) return NULL; \
  r->field = v

  STR ("name", TRUE, name);
  STR ("image", FALSE, image);
  if (!get_member_string (o, "state", TRUE, &state, source, error))
    return NULL;
  if (!vm_state_from_string (state, &r->state) || r->state > BG_VM_PAUSED)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "%s: member \"state\" is not a VM state", source);
      return NULL;
    }
  INT ("cpus", 0, 1024, cpus);
  INT ("memory_mib", 0, G_MAXUINT32, memory_mib);
  INT ("disk_bytes", 0, G_MAXINT64, disk_bytes);
  STR ("disk_mode", FALSE, disk_mode);
  STR ("disk_reason", FALSE, disk_reason);
  INT ("created_at", 0, G_MAXINT64, created_at);
  INT ("updated_at", 0, G_MAXINT64, updated_at);
  INT ("started_at", 0, G_MAXINT64, started_at);
  STR ("tap", FALSE, tap);
  STR ("address", FALSE, address);
  STR ("gateway", FALSE, gateway);
  STR ("address6", FALSE, address6);
  STR ("gateway6", FALSE, gateway6);
  INT ("prefix", 0, 32, prefix);
  STR ("mac", FALSE, mac);
  INT ("cid", 0, G_MAXUINT32, cid);
  INT ("pid", 0, G_MAXINT32, pid);
  STR ("api_socket", FALSE, api_socket);
  STR ("vsock_socket", FALSE, vsock_socket);
  STR ("domain", FALSE, domain);
  if (!get_member_strv (o, "dns", &r->dns, source, error))
    return NULL;
  STR ("guest_user", FALSE, guest_user);
  if (!get_member_strv (o, "forwards", &r->forwards, source, error))
    return NULL;
  INT ("generation", 0, G_MAXINT64, generation);
#undef STR
#undef INT

  if (!bg_name_is_valid (r->name))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT,
                   "%s: member \"name\" is not a valid VM name", source);
      return NULL;
    }

  return g_steal_pointer (&r);
}

BgStateStore *
bg_state_store_new (const char *vms_dir)
{
  BgStateStore *store = g_new0 (BgStateStore, 1);

  store->dir = g_strdup (vms_dir);
  return store;
}

BgStateStore *
bg_state_store_new_default (void)
{
  g_autofree char *dir = bg_paths_vms_dir ();

  return bg_state_store_new (dir);
}

void
bg_state_store_free (BgStateStore *store)
{
  if (store == NULL)
    return;
  g_free (store->dir);
  g_free (store);
}

const char *
bg_state_store_get_dir (BgStateStore *store)
{
  return store->dir;
}

/* Where VM @name's record is: the one place a name becomes a path below
 * the store, checked here so nothing reaches outside it. */
static char *
record_path (BgStateStore  *store,
             const char    *name,
             GError       **error)
{
  if (!bg_name_validate ("name", name, error))
    return NULL;
  return g_build_filename (store->dir, name, "vm.json", NULL);
}

/* The store's lock: an flock on its .lock file, held until the
 * descriptor returned is closed; -1 with @error set. */
static int
store_lock (BgStateStore  *store,
            GError       **error)
{
  g_autofree char *path = g_build_filename (store->dir, ".lock", NULL);
  g_auto(BgFd) fd = -1;

  if (!bg_paths_mkdir_private (store->dir, error))
    return -1;

  fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return bg_error_errno (error, errno, "Cannot open lock file", path), -1;
  while (flock (fd, LOCK_EX) < 0)
    {
      int errsv = errno;
      if (errsv == EINTR)
        continue;
      return bg_error_errno (error, errsv, "Cannot lock", path), -1;
    }
  return g_steal_fd (&fd);
}

/* What a user does about a record that cannot be read. */
static void
append_hint (GError    **error,
             const char *name)
{
  char *message;

  if (error == NULL || *error == NULL || (*error)->domain != BG_ERROR || (*error)->code != BG_ERROR_CORRUPT)
    return;
  message = g_strdup_printf ("%s; repair or move away the file, or remove the VM with 'banger vm rm %s' "
                             "(it removes what it can find of it)", (*error)->message, name);
  g_free ((*error)->message);
  (*error)->message = message;
}

/* A record is small; anything larger is not one. */
#define RECORD_MAX (1 << 20)

/* @path's bytes, if it is a regular file of at most RECORD_MAX bytes:
 * not through a symbolic link, and without waiting on a FIFO or
 * reading a device without end (what `vm ls` would otherwise hang on).
 * FALSE with errno set (ENOENT: none; ELOOP: a link; EINVAL: not a
 * regular file; EFBIG: too large); @mtime, if not NULL, its mtime. */
static gboolean
read_record (const char  *path,
             char       **text,
             gsize       *len,
             gint64      *mtime)
{
  g_auto(BgFd) fd = open (path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  g_autofree char *buf = NULL;
  struct stat st;
  gsize done = 0;

  if (fd < 0 || fstat (fd, &st) < 0)
    return FALSE;
  if (!S_ISREG (st.st_mode))
    return errno = EINVAL, FALSE;
  if (st.st_size > RECORD_MAX)
    return errno = EFBIG, FALSE;
  buf = g_malloc (st.st_size + 1);
  while (done < (gsize) st.st_size)
    {
      gssize n = read (fd, buf + done, st.st_size - done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return FALSE;
      if (n == 0)
        break;
      done += n;
    }
  buf[done] = '\0';
  *text = g_steal_pointer (&buf);
  *len = done;
  if (mtime != NULL)
    *mtime = st.st_mtim.tv_sec;
  return TRUE;
}

/* Nothing, or nothing but NUL bytes: what a power loss can leave of a
 * VM's first record, which 'vm up' writes without a sync (a new VM's
 * "creating" record, BG_STATE_WRITE_UNSYNCED). Every later record is
 * synced before it replaces one, so no record that was ever whole reads
 * like this again. */
static gboolean
never_written (const char *text,
               gsize       len)
{
  for (gsize i = 0; i < len; i++)
    if (text[i] != '\0')
      return FALSE;
  return TRUE;
}

/* When this boot began, in unix seconds. */
static gint64
boot_time (void)
{
  struct timespec boot;

  if (clock_gettime (CLOCK_BOOTTIME, &boot) < 0)
    return 0;
  return g_get_real_time () / G_USEC_PER_SEC - boot.tv_sec;
}

gboolean
bg_state_store_never_written (BgStateStore *store,
                              const char   *name)
{
  g_autofree char *path = record_path (store, name, NULL);
  g_autofree char *text = NULL;
  gsize len;
  gint64 mtime;

  /* Only a power loss leaves one: written before this boot. An empty
   * record of this boot is someone's doing, and not a leftover. */
  return path != NULL && read_record (path, &text, &len, &mtime) && never_written (text, len) &&
         mtime < boot_time ();
}

BgVmRecord *
bg_state_store_load (BgStateStore  *store,
                     const char    *name,
                     GError       **error)
{
  g_autofree char *path = NULL;
  g_autofree char *text = NULL;
  gsize len;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local = NULL;
  BgVmRecord *record = NULL;

  if ((path = record_path (store, name, error)) == NULL)
    return NULL;
  if (!read_record (path, &text, &len, NULL))
    {
      int errsv = errno;

      if (errsv == ENOENT)
        g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND,
                     "No VM named \"%s\"; see 'banger vm ls'", name);
      else if (errsv == ELOOP || errsv == EINVAL || errsv == EFBIG)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "%s is %s, not a VM record", path,
                       errsv == ELOOP ? "a symbolic link" : errsv == EINVAL ? "not a regular file" : "larger than 1 MiB");
          append_hint (error, name);
        }
      else
        bg_error_errno (error, errsv, "Cannot read", path);
      return NULL;
    }

  if (never_written (text, len))
    g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT,
                 "%s never reached the disk whole (a 'vm up' cut short by a crash or a power loss); "
                 "'banger system cleanup' removes what it left", path);
  else if (!json_parser_load_from_data (parser, text, len, &local))
    g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "%s is not valid JSON (%s)", path, local->message);
  else if ((record = record_from_json (json_parser_get_root (parser), path, error)) != NULL &&
           g_strcmp0 (record->name, name) != 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "%s records VM \"%s\", not \"%s\"", path, record->name, name);
      g_clear_pointer (&record, bg_vm_record_free);
    }
  if (record == NULL)
    append_hint (error, name);
  return record;
}

/* Callers that read-modify-write must hold the store lock; a plain save of
 * a record the caller owns outright (a new VM) is atomic on its own. */
static gboolean
save_record (BgStateStore      *store,
             const BgVmRecord  *record,
             BgStateWrite       how,
             GError           **error)
{
  g_autofree char *path = record_path (store, record->name, error);
  g_autofree char *dir = NULL;
  g_autofree char *text = NULL;
  g_autoptr(JsonNode) node = NULL;

  if (path == NULL)
    return FALSE;
  dir = g_path_get_dirname (path);
  if (!bg_paths_mkdir_private (dir, error))
    return FALSE;

  node = bg_vm_record_to_json (record);
  text = json_to_string (node, TRUE);

  /* GLib syncs the new file and the directory even with CONSISTENT
   * alone (~0.9 ms): UNSYNCED writes it as bg_file_replace does,
   * without, and never over a record (one that was whole must not be
   * replaced by one a power loss can empty). */
  if (how == BG_STATE_WRITE_UNSYNCED)
    return bg_file_replace_full (path, text, -1, 0600, BG_FILE_NO_SYNC | BG_FILE_NO_REPLACE, error);
  /* DURABLE also syncs the directory. */
  return g_file_set_contents_full (path, text, -1,
                                   G_FILE_SET_CONTENTS_CONSISTENT |
                                   (how == BG_STATE_WRITE_DURABLE ? G_FILE_SET_CONTENTS_DURABLE : 0),
                                   0600, error);
}

gboolean
bg_state_store_save (BgStateStore      *store,
                     const BgVmRecord  *record,
                     GError           **error)
{
  return save_record (store, record, BG_STATE_WRITE_DURABLE, error);
}

gboolean
bg_state_store_update (BgStateStore       *store,
                       const char         *name,
                       BgStateUpdateFunc   func,
                       gpointer            user_data,
                       GError            **error)
{
  return bg_state_store_update_full (store, name, func, user_data, BG_STATE_WRITE_DURABLE, error);
}

gboolean
bg_state_store_update_full (BgStateStore       *store,
                            const char         *name,
                            BgStateUpdateFunc   func,
                            gpointer            user_data,
                            BgStateWrite        how,
                            GError            **error)
{
  g_auto(BgFd) lock = -1;   /* closing it drops the flock */
  g_autoptr(BgVmRecord) current = NULL;
  g_autoptr(GError) local = NULL;
  BgVmRecord *updated;
  gboolean ok;

  /* The name is checked by the load, under the lock. */
  lock = store_lock (store, error);
  if (lock < 0)
    return FALSE;

  current = bg_state_store_load (store, name, &local);
  if (current == NULL && !g_error_matches (local, BG_ERROR, BG_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }

  updated = func (current, user_data, error);
  if (updated == NULL)
    return FALSE;
  if (updated != current)
    g_clear_pointer (&current, bg_vm_record_free);
  else
    current = NULL;

  updated->updated_at = g_get_real_time () / G_USEC_PER_SEC;
  /* Under the lock, so concurrent updates each count once. */
  updated->generation++;
  ok = save_record (store, updated, how, error);
  bg_vm_record_free (updated);
  return ok;
}

/* @name's directory, if it still has no record or one a power loss cut
 * short (bg_state_store_never_written): checked and removed under the
 * store's lock, so a `vm up` that has just made it is not taken. */
gboolean
bg_state_store_remove_leftover (BgStateStore  *store,
                                const char    *name,
                                GError       **error)
{
  g_autofree char *dir = g_build_filename (store->dir, name, NULL);
  g_autofree char *json = g_build_filename (dir, "vm.json", NULL);
  g_auto(BgFd) lock = store_lock (store, error);
  struct stat st;

  if (lock < 0)
    return FALSE;
  if (strchr (name, '/') != NULL || g_str_equal (name, ".") || g_str_equal (name, ".."))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s is not a directory of the store", name);
      return FALSE;
    }
  if (lstat (json, &st) == 0 && !bg_state_store_never_written (store, name))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_EXISTS, "%s has a record now; left as it is", dir);
      return FALSE;
    }
  return bg_file_remove_tree (dir, error);
}

gboolean
bg_state_store_delete (BgStateStore  *store,
                       const char    *name,
                       GError       **error)
{
  g_autofree char *path = record_path (store, name, error);
  g_autofree char *dir = NULL;

  if (path == NULL)
    return FALSE;
  if (g_unlink (path) < 0 && errno != ENOENT)
    return bg_error_errno (error, errno, "Cannot remove", path);
  dir = g_path_get_dirname (path);
  if (g_rmdir (dir) < 0 && errno != ENOENT)
    {
      int errsv = errno;
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                   "Cannot remove %s: %s (it still holds files)", dir, g_strerror (errsv));
      return FALSE;
    }
  return TRUE;
}

static gint
compare_records (gconstpointer a,
                 gconstpointer b)
{
  const BgVmRecord *ra = *(BgVmRecord **) a;
  const BgVmRecord *rb = *(BgVmRecord **) b;

  return g_strcmp0 (ra->name, rb->name);
}

/* All records, sorted by name. A record that cannot be read does not hide
 * the others: it is described in @problems (if given) and skipped. */
GPtrArray *
bg_state_store_list (BgStateStore  *store,
                     GPtrArray    **problems,
                     GError       **error)
{
  g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_vm_record_free);
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GError) local = NULL;
  const char *entry;

  if (problems != NULL)
    *problems = g_ptr_array_new_with_free_func (g_free);

  dir = g_dir_open (store->dir, 0, &local);
  if (dir == NULL)
    {
      if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return g_steal_pointer (&records);
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }

  while ((entry = g_dir_read_name (dir)) != NULL)
    {
      g_autoptr(GError) e = NULL;
      BgVmRecord *record;

      if (!bg_name_is_valid (entry))
        continue;
      record = bg_state_store_load (store, entry, &e);
      if (record != NULL)
        g_ptr_array_add (records, record);
      else if (problems != NULL && !g_error_matches (e, BG_ERROR, BG_ERROR_NOT_FOUND))
        g_ptr_array_add (*problems, g_strdup (e->message));
    }

  g_ptr_array_sort (records, compare_records);
  return g_steal_pointer (&records);
}
