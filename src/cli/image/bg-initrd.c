/* bg-initrd.c: what an initrd holds, read off its bytes.
 *
 * What must be there before the root is mounted may be a module in the
 * initrd instead of built into the kernel; the boot check
 * (bg-bootcheck.c) asks which modules it has. An initrd is newc cpio
 * archives one after another, compressed or not (bg-unpack.c
 * decompresses them into a memfd); nothing in it is unpacked to disk.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "bg-fd.h"
#include "bg-initrd.h"
#include "bg-unpack.h"

static guint32
hex8 (const guint8 *p)
{
  char buf[9];

  memcpy (buf, p, 8);
  buf[8] = '\0';
  return (guint32) g_ascii_strtoull (buf, NULL, 16);
}

/* Adds the modules (.ko, compressed or not, by name: virtio_blk) of the
 * newc cpio archives at @data; returns how far they went. */
static gsize
cpio_modules (const guint8 *data,
              gsize         len,
              GHashTable   *modules)
{
  gsize pos = 0;

  for (;;)
    {
      guint32 namesize, filesize;
      g_autofree char *name = NULL;
      const char *base, *dot;

      /* Archives are padded with zeros to a block; more may follow. */
      while (pos < len && data[pos] == 0)
        pos++;
      if (pos + 110 > len || (memcmp (data + pos, "070701", 6) != 0 && memcmp (data + pos, "070702", 6) != 0))
        return pos;
      namesize = hex8 (data + pos + 94);
      filesize = hex8 (data + pos + 54);
      if (namesize == 0 || pos + 110 + namesize > len)
        return len;
      name = g_strndup ((const char *) data + pos + 110, namesize);
      pos = (pos + 110 + namesize + 3) & ~(gsize) 3;
      pos = (pos + filesize + 3) & ~(gsize) 3;
      base = strrchr (name, '/') ? strrchr (name, '/') + 1 : name;
      if ((dot = strstr (base, ".ko")) != NULL && (dot[3] == '\0' || dot[3] == '.'))
        {
          g_autofree char *module = g_strndup (base, dot - base);
          g_strdelimit (module, "-", '_');
          g_hash_table_add (modules, g_steal_pointer (&module));
        }
    }
}

/* The kernel modules an initrd holds, by name. An initrd is cpio
 * archives one after another: plain ones first (microcode), then a
 * compressed one. */
GHashTable *
bg_initrd_modules (const guint8  *data,
                   gsize          len,
                   GError       **error)
{
  GHashTable *modules = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  gsize pos = cpio_modules (data, len, modules);

  if (pos < len && bg_unpack_format (data + pos, len - pos) != NULL)
    {
      g_auto(BgFd) fd = memfd_create ("initrd", MFD_CLOEXEC);
      gsize size;
      guint8 *map;

      if (fd < 0 || !bg_unpack (data + pos, len - pos, fd, error))
        {
          g_prefix_error (error, "initrd: ");
          g_hash_table_unref (modules);
          return NULL;
        }
      size = lseek (fd, 0, SEEK_END);
      map = size > 0 ? mmap (NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
      if (map != MAP_FAILED)
        {
          cpio_modules (map, size, modules);
          munmap (map, size);
        }
    }
  return modules;
}
