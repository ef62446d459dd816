/* bg-layer.c: the layer applier (see bg-layer.h).
 *
 * The tar is read from a decompressing stream that counts and hashes
 * both sides: the compressed bytes against the blob's digest and
 * declared size, the tar bytes against the diff_id and the expansion
 * bound. A header's size is checked against what the layer may still
 * expand to before any of its data is written, so a 10 GiB header or a
 * gzip bomb is refused, not written.
 *
 * Paths never go through string joins onto the host: an entry's name is
 * cleaned (absolute names and ".." are refused outright), its parent
 * directory is opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
 * from the tree's fd, and the entry itself is made with *at() calls on
 * that fd and its last component, never following a symlink there. A
 * hard link's target is resolved the same way. Whatever an earlier entry
 * or layer planted, the kernel refuses the walk out (EXDEV).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "bg-layer.h"
#include "bg-sha256.h"

#define BLOCK        512
#define IN_CHUNK     (128u << 10)
#define PAX_MAX      (1u << 20)      /* one extended header */
#define LONGNAME_MAX 4096            /* PATH_MAX: a GNU long name or link */

typedef struct {
  int                 fd;
  const BgLayerSpec  *spec;
  BgOciCompression    compression;
  z_stream            z;
  gboolean            z_init;
  ZSTD_DStream       *zstd;
  guint8             *in;
  gsize               in_len, in_pos;
  gboolean            in_eof;
  gboolean            out_end;       /* the compressed stream ended */
  guint64             compressed;
  guint64             expanded;
  guint64             limit;
  BgSha256           *blob_sum;
  BgSha256           *diff_sum;
} Stream;

typedef struct {
  int           tree;
  const char   *digest;
  BgLayerStats *stats;
  GHashTable   *made;        /* paths this layer made: whiteouts spare them */
} Apply;

guint64
bg_layer_expand_limit (const BgLayerSpec *layer)
{
  guint64 limit;

  if (layer->compression == BG_OCI_COMPRESSION_NONE)
    return layer->size;
  limit = layer->size > BG_LAYER_EXPAND_MAX / BG_LAYER_EXPAND_RATIO ? BG_LAYER_EXPAND_MAX
                                                                      : layer->size * BG_LAYER_EXPAND_RATIO;
  return CLAMP (limit, BG_LAYER_EXPAND_FLOOR, BG_LAYER_EXPAND_MAX);
}

static gboolean
fail (GError     **error,
      gint         code,
      const char  *digest,
      const char  *entry,
      const char  *format,
      ...) G_GNUC_PRINTF (5, 6);

/* Every refusal names the layer, and the entry when there is one. */
static gboolean
fail (GError     **error,
      gint         code,
      const char  *digest,
      const char  *entry,
      const char  *format,
      ...)
{
  g_autofree char *msg = NULL;
  va_list ap;

  va_start (ap, format);
  msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  if (entry != NULL)
    g_set_error (error, BG_ERROR, code, "layer %s, entry \"%.300s\": %s", digest, entry, msg);
  else
    g_set_error (error, BG_ERROR, code, "layer %s: %s", digest, msg);
  return FALSE;
}

/* -- the stream ---------------------------------------------------------- */

static gboolean
stream_fill (Stream  *s,
             GError **error)
{
  ssize_t n;

  if (s->in_pos < s->in_len || s->in_eof)
    return TRUE;
  do
    n = read (s->fd, s->in, IN_CHUNK);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return fail (error, BG_ERROR_FAILED, s->spec->digest, NULL, "cannot read the blob: %s", g_strerror (errno));
  s->in_len = n;
  s->in_pos = 0;
  if (n == 0)
    s->in_eof = TRUE;
  s->compressed += n;
  if (s->compressed > s->spec->size)
    return fail (error, BG_ERROR_INVALID_ARGUMENT, s->spec->digest, NULL,
                 "the blob is larger than the %" G_GUINT64_FORMAT " bytes its manifest declares", s->spec->size);
  bg_sha256_update (s->blob_sum, s->in, n);
  return TRUE;
}

/* Up to @len tar bytes into @buf; 0 at the end of the stream. */
static gssize
stream_read (Stream  *s,
             guint8  *buf,
             gsize    len,
             GError **error)
{
  gsize got = 0;

  while (got == 0 && !s->out_end)
    {
      if (!stream_fill (s, error))
        return -1;
      if (s->compression == BG_OCI_COMPRESSION_NONE)
        {
          got = MIN (len, s->in_len - s->in_pos);
          memcpy (buf, s->in + s->in_pos, got);
          s->in_pos += got;
          if (s->in_eof)
            s->out_end = TRUE;
        }
      else if (s->compression == BG_OCI_COMPRESSION_GZIP)
        {
          int rc;

          if (s->in_eof && s->in_pos == s->in_len)
            {
              /* Between gzip members the stream may end; inside one it must not. */
              if (s->z.total_in != 0)
                return (fail (error, BG_ERROR_INVALID_ARGUMENT, s->spec->digest, NULL, "truncated gzip stream"), -1);
              s->out_end = TRUE;
              break;
            }
          s->z.next_in = s->in + s->in_pos;
          s->z.avail_in = s->in_len - s->in_pos;
          s->z.next_out = buf;
          s->z.avail_out = len;
          rc = inflate (&s->z, Z_NO_FLUSH);
          s->in_pos = s->in_len - s->z.avail_in;
          got = len - s->z.avail_out;
          if (rc == Z_STREAM_END)
            inflateReset (&s->z);   /* total_in back to 0: a member ended cleanly */
          else if (rc != Z_OK && !(rc == Z_BUF_ERROR && got > 0))
            return (fail (error, BG_ERROR_INVALID_ARGUMENT, s->spec->digest, NULL, "corrupt gzip stream (%s)",
                         s->z.msg ? s->z.msg : "inflate failed"), -1);
        }
      else
        {
          ZSTD_inBuffer in = { s->in + s->in_pos, s->in_len - s->in_pos, 0 };
          ZSTD_outBuffer out = { buf, len, 0 };
          size_t rc;

          if (s->in_eof && s->in_pos == s->in_len)
            {
              s->out_end = TRUE;
              break;
            }
          rc = ZSTD_decompressStream (s->zstd, &out, &in);
          if (ZSTD_isError (rc))
            return (fail (error, BG_ERROR_INVALID_ARGUMENT, s->spec->digest, NULL, "corrupt zstd stream (%s)",
                         ZSTD_getErrorName (rc)), -1);
          s->in_pos += in.pos;
          got = out.pos;
          if (s->in_eof && s->in_pos == s->in_len && got == 0 && rc != 0)
            return (fail (error, BG_ERROR_INVALID_ARGUMENT, s->spec->digest, NULL, "truncated zstd stream"), -1);
        }
    }
  s->expanded += got;
  if (s->expanded > s->limit)
    return (fail (error, BG_ERROR_INVALID_ARGUMENT, s->spec->digest, NULL,
                 "expands to more than %" G_GUINT64_FORMAT " MiB (%" G_GUINT64_FORMAT
                 " MiB compressed): refused as a decompression bomb",
                 s->limit >> 20, s->spec->size >> 20), -1);
  bg_sha256_update (s->diff_sum, buf, got);
  return got;
}

static gboolean
stream_read_exact (Stream      *s,
                   guint8      *buf,
                   gsize        len,
                   const char  *entry,
                   GError     **error)
{
  gsize done = 0;

  while (done < len)
    {
      gssize n = stream_read (s, buf + done, len - done, error);
      if (n < 0)
        return FALSE;
      if (n == 0)
        return fail (error, BG_ERROR_INVALID_ARGUMENT, s->spec->digest, entry, "the layer ends inside this entry");
      done += n;
    }
  return TRUE;
}

static gboolean
stream_skip (Stream      *s,
             guint64      len,
             const char  *entry,
             GError     **error)
{
  guint8 buf[16384];

  while (len > 0)
    {
      gsize chunk = MIN (len, sizeof buf);
      if (!stream_read_exact (s, buf, chunk, entry, error))
        return FALSE;
      len -= chunk;
    }
  return TRUE;
}

/* The padding after an entry's data, to the next 512-byte block. A
 * stream that ends exactly where the last entry's data ends (no padding,
 * no end blocks) is accepted, as tar, Go's archive/tar and containerd
 * accept it: Go's tar writer leaves both out unless closed, and `umoci
 * insert` writes layers so. Its digests are still checked. */
static gboolean
stream_skip_padding (Stream      *s,
                     guint64      len,
                     GError     **error)
{
  guint8 buf[BLOCK];

  while (len > 0)
    {
      gssize n = stream_read (s, buf, len, error);
      if (n < 0)
        return FALSE;
      if (n == 0)
        return TRUE;
      len -= n;
    }
  return TRUE;
}

/* -- tar headers --------------------------------------------------------- */

typedef struct {
  char     *path;
  char     *link;
  guint64   size;
  guint64   uid, gid;
  gint64    mtime;
  guint32   mode;
  char      type;
  gboolean  pax_size, pax_uid, pax_gid, pax_mtime;   /* pax overrides the ustar field */
  GPtrArray *xattr_names;    /* pax SCHILY.xattr.NAME, in order; NULL: none */
  GPtrArray *xattr_values;   /* GBytes, the value as the record has it (binary) */
} Entry;

/* XATTR_SIZE_MAX and a bound on how many one entry may carry. */
#define MAX_XATTR_VALUE (64 * 1024)
#define MAX_XATTRS      64

static void
entry_clear (Entry *e)
{
  g_clear_pointer (&e->path, g_free);
  g_clear_pointer (&e->link, g_free);
  g_clear_pointer (&e->xattr_names, g_ptr_array_unref);
  g_clear_pointer (&e->xattr_values, g_ptr_array_unref);
}

/* Records "LEN key=value\n" of a pax extended header into @e. */
static gboolean
parse_pax (Stream      *s,
           const char  *data,
           gsize        len,
           Entry       *e,
           GError     **error)
{
  gsize pos = 0;

  while (pos < len)
    {
      const char *rec = data + pos, *eq, *sp;
      guint64 rlen = 0;
      g_autofree char *key = NULL, *value = NULL;

      for (sp = rec; sp < data + len && g_ascii_isdigit (*sp); sp++)
        rlen = rlen * 10 + (*sp - '0');
      if (sp == rec || sp >= data + len || *sp != ' ' || rlen > len - pos || rlen < 5 ||
          rec[rlen - 1] != '\n' || (eq = memchr (sp, '=', rec + rlen - sp)) == NULL)
        return fail (error, BG_ERROR_INVALID_ARGUMENT, s->spec->digest, e->path, "malformed pax header");
      key = g_strndup (sp + 1, eq - sp - 1);
      value = g_strndup (eq + 1, rec + rlen - 1 - eq - 1);
      pos += rlen;
      if (g_str_has_prefix (key, "SCHILY.xattr."))
        {
          /* The value is binary (security.capability is a struct):
           * its length is the record's, not up to a NUL. */
          gsize vlen = rec + rlen - 1 - (eq + 1);

          if (key[strlen ("SCHILY.xattr.")] == '\0' || strlen (key) - strlen ("SCHILY.xattr.") > 255 ||
              vlen > MAX_XATTR_VALUE || (e->xattr_names && e->xattr_names->len >= MAX_XATTRS))
            return fail (error, BG_ERROR_INVALID_ARGUMENT, s->spec->digest, e->path,
                         "pax %.40s: an extended attribute beyond the bounds (255-byte name, 64 KiB value, "
                         "%d per entry)", key, MAX_XATTRS);
          if (e->xattr_names == NULL)
            {
              e->xattr_names = g_ptr_array_new_with_free_func (g_free);
              e->xattr_values = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
            }
          g_ptr_array_add (e->xattr_names, g_strdup (key + strlen ("SCHILY.xattr.")));
          g_ptr_array_add (e->xattr_values, g_bytes_new (eq + 1, vlen));
        }
      else if (g_str_equal (key, "path"))
        g_free (e->path), e->path = g_steal_pointer (&value);
      else if (g_str_equal (key, "linkpath"))
        g_free (e->link), e->link = g_steal_pointer (&value);
      else if (g_str_equal (key, "size") || g_str_equal (key, "uid") || g_str_equal (key, "gid") ||
               g_str_equal (key, "mtime"))
        {
          guint64 v;
          char *end;
          /* mtime may carry a fraction; the others are whole numbers. */
          if (!g_ascii_isdigit (value[0]))
            return fail (error, BG_ERROR_INVALID_ARGUMENT, s->spec->digest, e->path, "pax %s: not a number", key);
          errno = 0;
          v = g_ascii_strtoull (value, &end, 10);
          if (errno == ERANGE || (*end != '\0' && !(g_str_equal (key, "mtime") && *end == '.')))
            return fail (error, BG_ERROR_INVALID_ARGUMENT, s->spec->digest, e->path, "pax %s: not a number", key);
          if (key[0] == 's')
            e->size = v, e->pax_size = TRUE;
          else if (key[0] == 'u')
            e->uid = v, e->pax_uid = TRUE;
          else if (key[0] == 'g')
            e->gid = v, e->pax_gid = TRUE;
          else
            e->mtime = (gint64) MIN (v, (guint64) G_MAXINT64), e->pax_mtime = TRUE;
        }
      else if (g_str_has_prefix (key, "GNU.sparse."))
        return fail (error, BG_ERROR_NOT_SUPPORTED, s->spec->digest, e->path,
                     "sparse files are not supported in layers");
      /* Others (atime, ctime, uname, gname, LIBARCHIVE.xattr.*) are not applied. */
    }
  return TRUE;
}

/* The body of a pax/GNU meta entry, bounded before it is read. */
static char *
read_meta (Stream   *s,
           guint64   size,
           guint64   max,
           GError  **error)
{
  g_autofree char *buf = NULL;

  if (size > max)
    {
      fail (error, BG_ERROR_INVALID_ARGUMENT, s->spec->digest, NULL,
            "an extended header of %" G_GUINT64_FORMAT " bytes (at most %" G_GUINT64_FORMAT ")", size, max);
      return NULL;
    }
  buf = g_malloc0 (size + 1);
  if (!stream_read_exact (s, (guint8 *) buf, size, NULL, error) ||
      !stream_skip (s, (BLOCK - size % BLOCK) % BLOCK, NULL, error))
    return NULL;
  return g_steal_pointer (&buf);
}

typedef enum { NEXT_ENTRY, NEXT_END, NEXT_ERROR } Next;

/* The next real entry, pax and GNU long-name records folded into it. */
static Next
next_entry (Stream  *s,
            Entry   *e,
            GError **error)
{
  guint8 h[BLOCK];
  guint64 v;

  entry_clear (e);
  memset (e, 0, sizeof *e);
  for (;;)
    {
      gssize n = stream_read (s, h, 1, error);
      guint64 size;
      char type;

      if (n < 0)
        return NEXT_ERROR;
      if (n == 0)
        return NEXT_END;      /* no end blocks: accepted, as tar does */
      if (!stream_read_exact (s, h + 1, BLOCK - 1, NULL, error))
        return NEXT_ERROR;
      {
        static const guint8 zero[BLOCK];
        if (memcmp (h, zero, BLOCK) == 0)
          return NEXT_END;
      }
      if (!bg_layer_check_header (h))
        {
          fail (error, BG_ERROR_INVALID_ARGUMENT, s->spec->digest, NULL,
                "a tar header with a bad checksum (not a tar, or corrupt)");
          return NEXT_ERROR;
        }
      type = h[156];
      if (!bg_layer_parse_number (h + 124, 12, &size))
        goto bad_field;
      if (type == 'x' || type == 'g' || type == 'L' || type == 'K')
        {
          g_autofree char *body = read_meta (s, size, (type == 'L' || type == 'K') ? LONGNAME_MAX : PAX_MAX,
                                             error);
          if (body == NULL)
            return NEXT_ERROR;
          if (type == 'x' && !parse_pax (s, body, size, e, error))
            return NEXT_ERROR;
          else if (type == 'L')
            g_free (e->path), e->path = g_strndup (body, size);
          else if (type == 'K')
            g_free (e->link), e->link = g_strndup (body, size);
          continue;
        }
      e->type = type == '\0' ? '0' : type;
      if (!e->pax_size)
        e->size = size;
      if (e->path == NULL)
        {
          g_autofree char *name = g_strndup ((const char *) h, 100);
          if (memcmp (h + 257, "ustar\0", 6) == 0 && h[345] != '\0')
            {
              g_autofree char *prefix = g_strndup ((const char *) h + 345, 155);
              e->path = g_strconcat (prefix, "/", name, NULL);
            }
          else
            e->path = g_steal_pointer (&name);
        }
      if (e->link == NULL)
        e->link = g_strndup ((const char *) h + 157, 100);
      if (!bg_layer_parse_number (h + 100, 8, &v))
        goto bad_field;
      e->mode = v & 07777;
      if (!e->pax_uid && !bg_layer_parse_number (h + 108, 8, &e->uid))
        goto bad_field;
      if (!e->pax_gid && !bg_layer_parse_number (h + 116, 8, &e->gid))
        goto bad_field;
      if (!e->pax_mtime && bg_layer_parse_number (h + 136, 12, &v))
        e->mtime = (gint64) MIN (v, (guint64) G_MAXINT64);
      return NEXT_ENTRY;

bad_field:
      fail (error, BG_ERROR_INVALID_ARGUMENT, s->spec->digest, e->path ? e->path : "?",
            "a numeric field of the tar header is malformed");
      return NEXT_ERROR;
    }
}

/* -- the tree ------------------------------------------------------------ */

/* "./usr//bin/" → "usr/bin"; "" for the root itself ("./", or "/",
 * which umoci's insert writes, as containerd resolves it); NULL for any
 * other absolute name or one with "..". */
static char *
clean_name (const char *name)
{
  g_auto(GStrv) parts = NULL;
  g_autoptr(GString) out = g_string_new (NULL);

  if (strlen (name) > LONGNAME_MAX)
    return NULL;
  parts = g_strsplit (name, "/", -1);
  for (guint i = 0; parts[i]; i++)
    {
      if (parts[i][0] == '\0' || g_str_equal (parts[i], "."))
        continue;
      if (g_str_equal (parts[i], "..") || strlen (parts[i]) > 255)
        return NULL;
      g_string_append_printf (out, "%s%s", out->len ? "/" : "", parts[i]);
    }
  if (name[0] == '/' && out->len > 0)
    return NULL;
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static int
open_beneath (int          tree,
              const char  *path,
              int          flags)
{
  struct open_how how = {
    .flags = flags | O_CLOEXEC,
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
  };
  int fd;

  do
    fd = syscall (SYS_openat2, tree, path[0] ? path : ".", &how, sizeof how);
  while (fd < 0 && errno == EAGAIN);
  return fd;
}

/* The directory @dir of the tree, made (0755, root's) where missing. */
static int
open_parent (Apply       *a,
             const char  *dir,
             const char  *entry,
             GError     **error)
{
  int fd = open_beneath (a->tree, dir, O_RDONLY | O_DIRECTORY);

  if (fd < 0 && errno == ENOENT)
    {
      g_auto(GStrv) parts = g_strsplit (dir, "/", -1);
      g_autoptr(GString) sofar = g_string_new (NULL);

      for (guint i = 0; parts[i]; i++)
        {
          g_auto(BgFd) up = open_beneath (a->tree, sofar->str, O_RDONLY | O_DIRECTORY);

          if (up < 0)
            break;
          if (mkdirat (up, parts[i], 0755) == 0)
            g_hash_table_add (a->made, g_strdup_printf ("%s%s%s", sofar->str, sofar->len ? "/" : "", parts[i]));
          else if (errno != EEXIST)
            break;
          g_string_append_printf (sofar, "%s%s", sofar->len ? "/" : "", parts[i]);
        }
      fd = open_beneath (a->tree, dir, O_RDONLY | O_DIRECTORY);
    }
  if (fd < 0)
    {
      if (errno == EXDEV || errno == ELOOP)
        fail (error, BG_ERROR_UNSAFE, a->digest, entry,
              "its directory \"%s\" resolves outside the tree (a symlink or hard link planted by an earlier "
              "entry or layer): refused", dir);
      else
        fail (error, BG_ERROR_INVALID_ARGUMENT, a->digest, entry, "cannot open its directory \"%s\": %s",
              dir, g_strerror (errno));
    }
  return fd;
}

/* Removes @name from @at, recursively, never following a symlink. */
static gboolean
remove_at (int          at,
           const char  *name,
           int         *errsv)
{
  struct stat st;

  if (fstatat (at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? TRUE : (*errsv = errno, FALSE);
  if (S_ISDIR (st.st_mode))
    {
      g_auto(BgFd) fd = openat (at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
      struct dirent *de;

      if (d == NULL)
        {
          *errsv = errno;
          return FALSE;
        }
      /* Owned by d from here. */
      g_steal_fd (&fd);
      while ((de = readdir (d)) != NULL)
        if (!g_str_equal (de->d_name, ".") && !g_str_equal (de->d_name, "..") &&
            !remove_at (dirfd (d), de->d_name, errsv))
          {
            closedir (d);
            return FALSE;
          }
      closedir (d);
      if (unlinkat (at, name, AT_REMOVEDIR) < 0)
        return *errsv = errno, FALSE;
      return TRUE;
    }
  if (unlinkat (at, name, 0) < 0)
    return *errsv = errno, FALSE;
  return TRUE;
}

/* .wh..wh..opq: what lower layers put in @dir goes; this layer's stays. */
static gboolean
apply_opaque (Apply       *a,
              const char  *dir,
              const char  *entry,
              GError     **error)
{
  g_auto(BgFd) fd = open_parent (a, dir, entry, error);
  DIR *d;
  struct dirent *de;
  g_autoptr(GPtrArray) doomed = g_ptr_array_new_with_free_func (g_free);
  int errsv = 0;

  if (fd < 0)
    return FALSE;
  if ((d = fdopendir (dup (fd))) == NULL)
    return fail (error, BG_ERROR_FAILED, a->digest, entry, "cannot read %s: %s", dir, g_strerror (errno));
  while ((de = readdir (d)) != NULL)
    {
      g_autofree char *path = NULL;

      if (g_str_equal (de->d_name, ".") || g_str_equal (de->d_name, ".."))
        continue;
      path = g_strdup_printf ("%s%s%s", dir, dir[0] ? "/" : "", de->d_name);
      if (!g_hash_table_contains (a->made, path))
        g_ptr_array_add (doomed, g_strdup (de->d_name));
    }
  closedir (d);
  for (guint i = 0; i < doomed->len; i++)
    if (!remove_at (fd, doomed->pdata[i], &errsv))
      return fail (error, BG_ERROR_FAILED, a->digest, entry, "cannot remove %s/%s: %s", dir,
                   (char *) doomed->pdata[i], g_strerror (errsv));
  return TRUE;
}

/* Whether an image may carry the attribute @name into banger's tree:
 * user.* (anyone's), and security.capability (file capabilities, as
 * ping has them: written as root of the user namespace, the kernel
 * stores them as v3, for that namespace's root, and reads them back as
 * plain ones there, which is what mke2fs -d copies into the ext4).
 * trusted.* needs the host's root, security.selinux and the like are
 * the host's policy, system.* are ACLs of host ids: skipped, counted. */
static gboolean
xattr_allowed (const char *name)
{
  return g_str_has_prefix (name, "user.") || g_str_equal (name, "security.capability");
}

/* After chown, which drops security.capability. Never on a symlink or
 * a fifo (user.* is refused there); a filesystem without extended
 * attributes skips them. Counted either way. */
static gboolean
apply_xattrs (Apply        *a,
              int           parent,
              const char   *leaf,
              const Entry  *e,
              GError      **error)
{
  g_auto(BgFd) fd = -1;

  if (e->type != '2' && e->type != '6')
    fd = openat (parent, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | (e->type == '5' ? O_DIRECTORY : 0));
  for (guint i = 0; i < e->xattr_names->len; i++)
    {
      const char *name = e->xattr_names->pdata[i];
      gsize len;
      const void *value = g_bytes_get_data (e->xattr_values->pdata[i], &len);

      if (fd < 0 || !xattr_allowed (name))
        {
          a->stats->xattrs_skipped++;
          continue;
        }
      if (fsetxattr (fd, name, value, len, 0) < 0)
        {
          if (errno == ENOTSUP || errno == EOPNOTSUPP)
            {
              a->stats->xattrs_skipped++;
              continue;
            }
          return fail (error, BG_ERROR_INVALID_ARGUMENT, a->digest, e->path, "cannot set its attribute %s: %s",
                       name, g_strerror (errno));
        }
      a->stats->xattrs++;
    }
  return TRUE;
}

static gboolean
set_owner_mode (Apply        *a,
                int           parent,
                const char   *leaf,
                const Entry  *e,
                GError      **error)
{
  struct timespec times[2] = { { 0, UTIME_OMIT }, { e->mtime, 0 } };

  if (e->uid > G_MAXINT32 || e->gid > G_MAXINT32 ||
      fchownat (parent, leaf, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0)
    return fail (error, BG_ERROR_INVALID_ARGUMENT, a->digest, e->path,
                 "cannot give it owner %" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT
                 " (outside the subordinate id range?): %s",
                 e->uid, e->gid, g_strerror (errno));
  /* After chown, which clears setuid and setgid; never on a symlink
   * (the kernel would follow it). */
  if (e->type != '2' && fchmodat (parent, leaf, e->mode, 0) < 0)
    return fail (error, BG_ERROR_FAILED, a->digest, e->path, "cannot set its mode: %s", g_strerror (errno));
  if (e->type != '5')
    utimensat (parent, leaf, times, AT_SYMLINK_NOFOLLOW);
  return e->xattr_names == NULL || apply_xattrs (a, parent, leaf, e, error);
}

/* The file's data, holes left where the layer has runs of zeros. */
static gboolean
write_data (Apply        *a,
            Stream       *s,
            int           fd,
            const Entry  *e,
            GError      **error)
{
  static const guint8 zero[65536];
  g_autofree guint8 *buf = g_malloc (sizeof zero);
  guint64 left = e->size;

  while (left > 0)
    {
      gsize chunk = MIN (left, sizeof zero);

      if (!stream_read_exact (s, buf, chunk, e->path, error))
        return FALSE;
      if (chunk == sizeof zero && memcmp (buf, zero, chunk) == 0)
        {
          if (lseek (fd, chunk, SEEK_CUR) < 0)
            return fail (error, BG_ERROR_FAILED, a->digest, e->path, "cannot seek: %s", g_strerror (errno));
        }
      else
        {
          gsize off = 0;
          while (off < chunk)
            {
              ssize_t n = write (fd, buf + off, chunk - off);
              if (n < 0 && errno == EINTR)
                continue;
              if (n <= 0)
                return fail (error, BG_ERROR_FAILED, a->digest, e->path, "cannot write: %s", g_strerror (errno));
              off += n;
            }
        }
      left -= chunk;
    }
  if (ftruncate (fd, e->size) < 0)
    return fail (error, BG_ERROR_FAILED, a->digest, e->path, "cannot write: %s", g_strerror (errno));
  return TRUE;
}

static gboolean
apply_hardlink (Apply        *a,
                int           parent,
                const char   *leaf,
                const Entry  *e,
                GError      **error)
{
  g_autofree char *target = clean_name (e->link);
  g_autofree char *tdir = NULL;
  g_auto(BgFd) tparent = -1;
  const char *tleaf;
  struct stat st;

  if (target == NULL || target[0] == '\0')
    return fail (error, BG_ERROR_UNSAFE, a->digest, e->path,
                 "a hard link to \"%.300s\", outside the tree: refused", e->link);
  tleaf = strrchr (target, '/') ? strrchr (target, '/') + 1 : target;
  tdir = g_strndup (target, tleaf - target - (tleaf != target));
  if ((tparent = open_parent (a, tdir, e->path, error)) < 0)
    return FALSE;
  if (fstatat (tparent, tleaf, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR (st.st_mode))
    return fail (error, BG_ERROR_INVALID_ARGUMENT, a->digest, e->path,
                 "a hard link to \"%.300s\", which is %s", e->link,
                 errno == ENOENT ? "not in the tree" : "a directory or unreadable");
  /* Flags 0: a symlink target is linked itself, never followed. */
  if (linkat (tparent, tleaf, parent, leaf, 0) < 0)
    return fail (error, BG_ERROR_FAILED, a->digest, e->path, "cannot link: %s", g_strerror (errno));
  return TRUE;
}

static gboolean
apply_entry (Apply   *a,
             Stream  *s,
             Entry   *e,
             GError **error)
{
  g_autofree char *path = clean_name (e->path);
  g_autofree char *dir = NULL;
  g_auto(BgFd) parent = -1;
  const char *leaf;
  struct stat st;
  gboolean exists;
  int errsv = 0;

  if (path == NULL)
    return fail (error, BG_ERROR_UNSAFE, a->digest, e->path,
                 "an absolute name or one with \"..\" would land outside the tree: refused");
  if (e->size > s->limit - s->expanded)
    return fail (error, BG_ERROR_INVALID_ARGUMENT, a->digest, e->path,
                 "claims %" G_GUINT64_FORMAT " bytes, more than the layer may expand to: refused",
                 e->size);
  if (e->type == 'S')
    return fail (error, BG_ERROR_NOT_SUPPORTED, a->digest, e->path, "GNU sparse files are not supported in layers");
  if (path[0] == '\0')
    return stream_skip (s, e->size + (BLOCK - e->size % BLOCK) % BLOCK, e->path, error);
  a->stats->entries++;

  leaf = strrchr (path, '/') ? strrchr (path, '/') + 1 : path;
  dir = g_strndup (path, leaf - path - (leaf != path));

  if (g_str_has_prefix (leaf, ".wh."))
    {
      if (!stream_skip (s, e->size + (BLOCK - e->size % BLOCK) % BLOCK, e->path, error))
        return FALSE;
      if (g_str_equal (leaf, ".wh..wh..opq"))
        return apply_opaque (a, dir, e->path, error);
      if (g_str_has_prefix (leaf, ".wh..wh."))
        return TRUE;   /* aufs bookkeeping (.wh..wh.plnk), nothing to apply */
      {
        g_autofree char *victim = g_strdup_printf ("%s%s%s", dir, dir[0] ? "/" : "", leaf + 4);
        g_auto(BgFd) vparent = -1;

        if (g_str_equal (leaf + 4, "") || g_str_equal (leaf + 4, ".") || g_str_equal (leaf + 4, ".."))
          return fail (error, BG_ERROR_UNSAFE, a->digest, e->path, "a whiteout of no name: refused");
        if (g_hash_table_contains (a->made, victim))
          return TRUE;
        vparent = open_beneath (a->tree, dir, O_RDONLY | O_DIRECTORY);
        if (vparent < 0 && errno == ENOENT)
          return TRUE;     /* a whiteout of what never was */
        if (vparent < 0)
          {
            /* Refused as any entry through that directory would be. */
            g_auto(BgFd) again = open_parent (a, dir, e->path, error);
            return again >= 0;
          }
        if (!remove_at (vparent, leaf + 4, &errsv))
          return fail (error, BG_ERROR_FAILED, a->digest, e->path, "cannot remove %s: %s", victim,
                       g_strerror (errsv));
        return TRUE;
      }
    }

  if (e->type == '3' || e->type == '4')
    {
      a->stats->devices_skipped++;
      return stream_skip (s, e->size + (BLOCK - e->size % BLOCK) % BLOCK, e->path, error);
    }
  if (strchr ("0125 67", e->type) == NULL)
    return fail (error, BG_ERROR_NOT_SUPPORTED, a->digest, e->path, "tar entry type '%c' is not supported",
                 g_ascii_isprint (e->type) ? e->type : '?');

  if ((parent = open_parent (a, dir, e->path, error)) < 0)
    return FALSE;
  exists = fstatat (parent, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0;
  /* What is there goes, unless a directory stays a directory; a file is
   * never written through (it may be a hard link planted earlier). */
  if (exists && !(e->type == '5' && S_ISDIR (st.st_mode)) && !remove_at (parent, leaf, &errsv))
    return fail (error, BG_ERROR_FAILED, a->digest, e->path, "cannot replace it: %s", g_strerror (errsv));
  g_hash_table_add (a->made, g_strdup (path));

  switch (e->type)
    {
    case '5':
      if (!(exists && S_ISDIR (st.st_mode)) && mkdirat (parent, leaf, 0700) < 0)
        return fail (error, BG_ERROR_FAILED, a->digest, e->path, "cannot make it: %s", g_strerror (errno));
      break;
    case '2':
      if (e->link[0] == '\0' || symlinkat (e->link, parent, leaf) < 0)
        return fail (error, BG_ERROR_FAILED, a->digest, e->path, "cannot make the symlink: %s",
                     e->link[0] ? g_strerror (errno) : "no target");
      break;
    case '1':
      if (!apply_hardlink (a, parent, leaf, e, error))
        return FALSE;
      /* A hard link has the target's owner and mode: nothing to set. */
      return stream_skip (s, e->size + (BLOCK - e->size % BLOCK) % BLOCK, e->path, error);
    case '6':
      if (mknodat (parent, leaf, S_IFIFO | 0600, 0) < 0)
        return fail (error, BG_ERROR_FAILED, a->digest, e->path, "cannot make the fifo: %s", g_strerror (errno));
      break;
    default:
      {
        g_auto(BgFd) fd = openat (parent, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

        if (fd < 0)
          return fail (error, BG_ERROR_FAILED, a->digest, e->path, "cannot create it: %s", g_strerror (errno));
        if (!write_data (a, s, fd, e, error) ||
            !stream_skip_padding (s, (BLOCK - e->size % BLOCK) % BLOCK, error))
          return FALSE;
        return set_owner_mode (a, parent, leaf, e, error);
      }
    }
  if (!stream_skip (s, e->size + (BLOCK - e->size % BLOCK) % BLOCK, e->path, error))
    return FALSE;
  return set_owner_mode (a, parent, leaf, e, error);
}

static void
stream_clear (Stream *s)
{
  if (s->z_init)
    inflateEnd (&s->z);
  if (s->zstd)
    ZSTD_freeDStream (s->zstd);
  g_free (s->in);
  if (s->blob_sum)
    bg_sha256_free (s->blob_sum);
  if (s->diff_sum)
    bg_sha256_free (s->diff_sum);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Stream, stream_clear)

static gboolean
check_digest (BgSha256    *sum,
              const char  *want,
              const char  *what,
              const char  *digest,
              GError     **error)
{
  if (want == NULL || g_str_equal (want + 7, bg_sha256_get_string (sum)))
    return TRUE;
  return fail (error, BG_ERROR_INVALID_ARGUMENT, digest, NULL,
               "%s is sha256:%s, not %s as the image says: refused (corrupt or tampered)",
               what, bg_sha256_get_string (sum), want);
}

gboolean
bg_layer_apply (int                 tree_dirfd,
                int                 blob_fd,
                const BgLayerSpec  *layer,
                BgLayerStats       *stats,
                GError            **error)
{
  g_auto(Stream) s = { 0 };
  g_autoptr(GHashTable) made = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  Apply a = { tree_dirfd, layer->digest, stats, made };
  Entry e = { 0 };
  guint8 drain[16384];
  gboolean ok = FALSE;
  Next next;

  if (!bg_oci_digest_validate ("layer", layer->digest, error) ||
      (layer->diff_id && !bg_oci_digest_validate ("layer diff_id", layer->diff_id, error)))
    return FALSE;
  s.fd = blob_fd;
  s.spec = layer;
  s.compression = layer->compression;
  s.limit = bg_layer_expand_limit (layer);
  s.in = g_malloc (IN_CHUNK);
  if ((s.blob_sum = bg_sha256_new (error)) == NULL || (s.diff_sum = bg_sha256_new (error)) == NULL)
    return FALSE;
  if (s.compression == BG_OCI_COMPRESSION_GZIP)
    {
      if (inflateInit2 (&s.z, 15 + 16) != Z_OK)
        return fail (error, BG_ERROR_FAILED, layer->digest, NULL, "cannot start zlib");
      s.z_init = TRUE;
    }
  else if (s.compression == BG_OCI_COMPRESSION_ZSTD)
    {
      if ((s.zstd = ZSTD_createDStream ()) == NULL)
        return fail (error, BG_ERROR_FAILED, layer->digest, NULL, "cannot start zstd");
      /* A window as large as the frame asks is memory the layer picks:
       * zstd's default limit (128 MiB, what the CLI accepts) applies. */
      ZSTD_DCtx_setParameter (s.zstd, ZSTD_d_windowLogMax, 27);
    }

  while ((next = next_entry (&s, &e, error)) == NEXT_ENTRY)
    if (!apply_entry (&a, &s, &e, error))
      goto out;
  if (next == NEXT_ERROR)
    goto out;
  /* The rest of the stream (end blocks, padding) still counts: it is
   * part of both digests, and of the expansion bound. */
  for (;;)
    {
      gssize n = stream_read (&s, drain, sizeof drain, error);
      if (n < 0)
        goto out;
      if (n == 0)
        break;
    }
  if (s.compressed != layer->size)
    {
      fail (error, BG_ERROR_INVALID_ARGUMENT, layer->digest, NULL,
            "the blob has %" G_GUINT64_FORMAT " bytes, not the %" G_GUINT64_FORMAT " its manifest declares",
            s.compressed, layer->size);
      goto out;
    }
  if (!check_digest (s.blob_sum, layer->digest, "the blob's digest", layer->digest, error) ||
      !check_digest (s.diff_sum, layer->diff_id, "the uncompressed layer's digest (diff_id)", layer->digest,
                     error))
    goto out;
  stats->bytes += s.expanded;
  ok = TRUE;
out:
  entry_clear (&e);
  return ok;
}
