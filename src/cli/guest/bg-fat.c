/* bg-fat.c: a FAT12 image holding a few files in its root directory.
 *
 * The config drive is written in-process instead of by mkfs.vfat + mcopy:
 * two process spawns were most of its cost in `vm up`. The layout is the
 * plainest one the FAT specification allows (Microsoft's "FAT: General
 * Overview of On-Disk Format"): 512-byte sectors, one reserved sector, two
 * FATs, a 512-entry root directory, files in contiguous cluster runs, long
 * names as VFAT entries before each 8.3 entry. FAT12 is chosen by the
 * cluster count (< 4085), which is how every reader tells the type, and
 * the cluster size grows with the content up to 32 KiB (127 MiB).
 *
 * Written to a temporary file beside @path and renamed over it, so a
 * failure or a kill leaves no half-written drive.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "bg-error.h"
#include "bg-fat.h"
#include "bg-fd.h"

#define SECTOR          512
#define ROOT_ENTRIES    512
#define ROOT_SECTORS    (ROOT_ENTRIES * 32 / SECTOR)
#define MAX_CLUSTERS    4084            /* FAT12's limit */
#define MIN_CLUSTERS    64
#define MAX_SPC         64              /* 32 KiB clusters */
/* A fixed timestamp (2000-01-01 00:00): the same config, the same drive. */
#define FAT_DATE        (((2000 - 1980) << 9) | (1 << 5) | 1)

typedef struct {
  guint    spc;            /* sectors per cluster */
  guint    clusters;
  guint    fat_sectors;
  guint32  total_sectors;
} Layout;

static void
put16 (guint8 *p, guint16 v)
{
  p[0] = v & 0xff;
  p[1] = v >> 8;
}

static void
put32 (guint8 *p, guint32 v)
{
  put16 (p, v & 0xffff);
  put16 (p + 2, v >> 16);
}

static void
fat12_set (guint8 *fat, guint n, guint v)
{
  guint off = n + n / 2;

  if (n % 2 == 0)
    {
      fat[off] = v & 0xff;
      fat[off + 1] = (fat[off + 1] & 0xf0) | ((v >> 8) & 0x0f);
    }
  else
    {
      fat[off] = (fat[off] & 0x0f) | ((v << 4) & 0xf0);
      fat[off + 1] = (v >> 4) & 0xff;
    }
}

static gboolean
plan (const BgFatFile *files,
      guint            n_files,
      Layout          *l,
      GError         **error)
{
  guint64 bytes = 0;

  for (guint i = 0; i < n_files; i++)
    bytes += g_bytes_get_size (files[i].content);
  for (guint spc = 1; spc <= MAX_SPC; spc *= 2)
    {
      guint64 used = 0;

      for (guint i = 0; i < n_files; i++)
        used += (g_bytes_get_size (files[i].content) + spc * SECTOR - 1) / (spc * SECTOR);
      if (used + 8 > MAX_CLUSTERS)
        continue;
      l->spc = spc;
      l->clusters = MAX ((guint) used + 8, MIN_CLUSTERS);
      l->fat_sectors = ((l->clusters + 2) * 3 / 2 + SECTOR - 1) / SECTOR;
      l->total_sectors = 1 + 2 * l->fat_sectors + ROOT_SECTORS + l->clusters * spc;
      return TRUE;
    }
  g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
               "the config drive would hold %" G_GUINT64_FORMAT " bytes, more than a FAT12 drive can "
               "(127 MiB); sync less ([sync] max-size)", bytes);
  return FALSE;
}

static void
boot_sector (guint8        *bs,
             const Layout  *l,
             const char    *label,
             guint32        serial)
{
  static const guint8 jump[] = { 0xeb, 0x3c, 0x90 };
  char lab[12];

  memcpy (bs, jump, sizeof jump);
  memcpy (bs + 3, "BANGER  ", 8);
  put16 (bs + 11, SECTOR);
  bs[13] = l->spc;
  put16 (bs + 14, 1);                     /* reserved sectors */
  bs[16] = 2;                             /* FATs */
  put16 (bs + 17, ROOT_ENTRIES);
  if (l->total_sectors < 65536)
    put16 (bs + 19, l->total_sectors);
  else
    put32 (bs + 32, l->total_sectors);
  bs[21] = 0xf8;                          /* media: fixed disk */
  put16 (bs + 22, l->fat_sectors);
  put16 (bs + 24, 32);                    /* sectors per track */
  put16 (bs + 26, 64);                    /* heads */
  bs[36] = 0x80;                          /* drive number */
  bs[38] = 0x29;                          /* extended boot signature */
  put32 (bs + 39, serial);
  g_snprintf (lab, sizeof lab, "%-11s", label);
  memcpy (bs + 43, lab, 11);
  memcpy (bs + 54, "FAT12   ", 8);
  bs[510] = 0x55;
  bs[511] = 0xaa;
}

/* "meta-data" -> "META-D~1": the 8.3 alias every long name needs. */
static void
short_name (const char *name,
            guint       n,
            char        out[11])
{
  static const char allowed[] = "!#$%&'()-@^_`{}~";
  g_autofree char *tail = g_strdup_printf ("~%u", n);
  const char *dot = strrchr (name, '.');
  gsize base_max = 8 - strlen (tail), k = 0;

  memset (out, ' ', 11);
  for (const char *c = name; *c && c != dot && k < base_max; c++)
    if (g_ascii_isalnum (*c) || strchr (allowed, *c))
      out[k++] = g_ascii_toupper (*c);
  if (k == 0)
    out[k++] = '_';
  memcpy (out + k, tail, strlen (tail));
  k = 8;
  for (const char *c = dot ? dot + 1 : ""; *c && k < 11; c++)
    if (g_ascii_isalnum (*c) || strchr (allowed, *c))
      out[k++] = g_ascii_toupper (*c);
}

static guint8
short_name_checksum (const char name[11])
{
  guint8 sum = 0;

  for (guint i = 0; i < 11; i++)
    sum = ((sum & 1) << 7) + (sum >> 1) + (guint8) name[i];
  return sum;
}

/* One VFAT long-name entry: 13 UCS-2 characters at fixed offsets. */
static void
lfn_entry (guint8     *e,
           guint       ord,
           gboolean    last,
           const char *name,
           guint8      checksum)
{
  static const guint8 slots[13] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
  gsize len = strlen (name), start = (ord - 1) * 13;

  e[0] = ord | (last ? 0x40 : 0);
  e[11] = 0x0f;                           /* attributes: long name */
  e[13] = checksum;
  for (guint i = 0; i < 13; i++)
    {
      gsize at = start + i;
      guint16 ch = at < len ? (guint8) name[at] : at == len ? 0x0000 : 0xffff;
      put16 (e + slots[i], ch);
    }
}

static gboolean
valid_name (const char *name)
{
  gsize len = strlen (name);

  if (len == 0 || len > 255 || g_str_equal (name, ".") || g_str_equal (name, ".."))
    return FALSE;
  for (const char *c = name; *c; c++)
    if (*c < 0x20 || *c > 0x7e || strchr ("/\\:*?\"<>|", *c))
      return FALSE;
  return TRUE;
}

gboolean
bg_fat_write_image (const char       *path,
                    const char       *label,
                    const BgFatFile  *files,
                    guint             n_files,
                    BgFileFlags       flags,
                    GError          **error)
{
  g_autofree char *tmp = g_strdup_printf ("%s.XXXXXX", path);
  g_autofree guint8 *head = NULL;
  g_autoptr(GPtrArray) shorts = g_ptr_array_new_with_free_func (g_free);
  guint8 *fat, *root;
  gsize head_len, entry = 0;
  guint cluster = 2;
  guint32 serial = 0x42414e47;            /* "BANG", mixed with the content below */
  Layout l;
  g_auto(BgFd) fd = -1;
  int errsv;

  if (strlen (label) > 11)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "FAT label \"%s\": at most 11 characters", label);
      return FALSE;
    }
  for (guint i = 0; i < n_files; i++)
    if (!valid_name (files[i].name))
      {
        g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "\"%s\" cannot be a FAT file name", files[i].name);
        return FALSE;
      }
  if (!plan (files, n_files, &l, error))
    return FALSE;

  /* Everything before the data area, built in memory. */
  head_len = (gsize) (1 + 2 * l.fat_sectors + ROOT_SECTORS) * SECTOR;
  head = g_malloc0 (head_len);
  fat = head + SECTOR;
  root = fat + 2 * l.fat_sectors * SECTOR;
  fat12_set (fat, 0, 0xff8);
  fat12_set (fat, 1, 0xfff);

  /* The volume label, also in the root directory. */
  {
    char lab[12];
    g_snprintf (lab, sizeof lab, "%-11s", label);
    memcpy (root, lab, 11);
    root[11] = 0x08;
    put16 (root + 24, FAT_DATE);
    entry = 1;
  }

  for (guint i = 0; i < n_files; i++)
    {
      gsize len = g_bytes_get_size (files[i].content);
      guint need = (len + l.spc * SECTOR - 1) / (l.spc * SECTOR);
      guint n_lfn = (strlen (files[i].name) + 12) / 13;
      char sn[11];
      guint8 *e;

      for (guint n = 1;; n++)
        {
          gboolean taken = FALSE;
          short_name (files[i].name, n, sn);
          for (guint j = 0; j < shorts->len; j++)
            taken |= memcmp (shorts->pdata[j], sn, 11) == 0;
          if (!taken)
            break;
        }
      g_ptr_array_add (shorts, g_memdup2 (sn, 11));
      if (entry + n_lfn + 1 > ROOT_ENTRIES)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "too many files for a FAT root directory");
          return FALSE;
        }
      for (guint ord = n_lfn; ord >= 1; ord--)
        lfn_entry (root + 32 * entry++, ord, ord == n_lfn, files[i].name, short_name_checksum (sn));
      e = root + 32 * entry++;
      memcpy (e, sn, 11);
      e[11] = 0x20;                       /* archive */
      put16 (e + 16, FAT_DATE);           /* created */
      put16 (e + 18, FAT_DATE);           /* accessed */
      put16 (e + 24, FAT_DATE);           /* written */
      put16 (e + 26, need ? cluster : 0);
      put32 (e + 28, len);
      for (guint c = 0; c < need; c++)
        fat12_set (fat, cluster + c, c + 1 < need ? cluster + c + 1 : 0xfff);
      cluster += need;
      serial = serial * 31 + len + g_str_hash (files[i].name);
    }
  memcpy (fat + l.fat_sectors * SECTOR, fat, l.fat_sectors * SECTOR);
  boot_sector (head, &l, label, serial);

  fd = g_mkstemp_full (tmp, O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      errsv = errno;
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot create %s: %s", tmp, g_strerror (errsv));
      return FALSE;
    }
  if (ftruncate (fd, (off_t) l.total_sectors * SECTOR) < 0 || pwrite (fd, head, head_len, 0) != (ssize_t) head_len)
    goto io_fail;
  {
    off_t at = head_len;
    for (guint i = 0; i < n_files; i++)
      {
        gsize len;
        const guint8 *data = g_bytes_get_data (files[i].content, &len);
        gsize done = 0;

        while (done < len)
          {
            ssize_t w = pwrite (fd, data + done, len - done, at + done);
            if (w < 0 && errno == EINTR)
              continue;
            if (w <= 0)
              goto io_fail;
            done += w;
          }
        at += (off_t) ((len + l.spc * SECTOR - 1) / (l.spc * SECTOR)) * l.spc * SECTOR;
      }
  }
  if (!(flags & BG_FILE_NO_SYNC) && fsync (fd) < 0)
    goto io_fail;
  bg_fd_clear (&fd);
  if (g_rename (tmp, path) < 0)
    {
      errsv = errno;
      g_unlink (tmp);
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot rename %s: %s", tmp, g_strerror (errsv));
      return FALSE;
    }
  return TRUE;

io_fail:
  errsv = errno;
  g_unlink (tmp);
  g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot write %s: %s", tmp, g_strerror (errsv));
  return FALSE;
}
