/* bg-kernel.c: what a kernel file is and says, read off its bytes.
 *
 * Firecracker boots an x86-64 ELF vmlinux; a bzImage (what distributions
 * ship) carries one compressed, which is decompressed for it. The boot
 * check (bg-bootcheck.c) looks for the kernel's configuration under the
 * release it names (/boot/config-<release> in the image), and falls
 * back to the one the kernel carries itself (IKCONFIG); either text is
 * a kernel configuration, read here into its options.
 */
#include <elf.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "bg-kernel.h"
#include "bg-unpack.h"

BgKernelFormat
bg_kernel_detect (int      fd,
                  GError **error)
{
  guint8 head[0x250] = { 0 };
  ssize_t n = pread (fd, head, sizeof head, 0);
  Elf64_Ehdr *eh = (Elf64_Ehdr *) head;

  if (n >= (ssize_t) sizeof (Elf64_Ehdr) && memcmp (eh->e_ident, ELFMAG, SELFMAG) == 0)
    {
      if (eh->e_ident[EI_CLASS] == ELFCLASS64 && eh->e_machine == EM_X86_64 && eh->e_type == ET_EXEC)
        return BG_KERNEL_VMLINUX;
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "kernel: an ELF file, but not an x86-64 kernel image (vmlinux)");
      return BG_KERNEL_UNKNOWN;
    }
  if (n >= 0x250 && memcmp (head + 0x202, "HdrS", 4) == 0)
    return BG_KERNEL_BZIMAGE;
  g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
               "kernel: not a Linux kernel (neither an ELF vmlinux nor a bzImage)");
  return BG_KERNEL_UNKNOWN;
}

/* The compressed payload of a bzImage (boot protocol >= 2.08 says where)
 * decompressed to the ELF vmlinux inside it. */
gboolean
bg_kernel_extract_vmlinux (int      bzimage_fd,
                           int      out_fd,
                           GError **error)
{
  g_autoptr(GMappedFile) map = NULL;
  g_autofree char *path = g_strdup_printf ("/proc/self/fd/%d", bzimage_fd);
  const guint8 *data;
  gsize len, start;
  guint setup_sects;
  guint32 offset, plen;
  guint16 version;
  const guint8 *payload;
  gboolean ok;

  map = g_mapped_file_new (path, FALSE, error);
  if (map == NULL)
    return FALSE;
  data = (const guint8 *) g_mapped_file_get_contents (map);
  len = g_mapped_file_get_length (map);
  if (len < 0x250)
    goto bad;
  version = data[0x206] | data[0x207] << 8;
  if (version < 0x208)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                   "kernel: bzImage boot protocol %x.%02x is too old to find its payload",
                   version >> 8, version & 0xff);
      return FALSE;
    }
  setup_sects = data[0x1f1] ? data[0x1f1] : 4;
  memcpy (&offset, data + 0x248, 4);
  memcpy (&plen, data + 0x24c, 4);
  offset = GUINT32_FROM_LE (offset);
  plen = GUINT32_FROM_LE (plen);
  start = (setup_sects + 1) * 512 + offset;
  if (start >= len || plen > len - start)
    goto bad;
  payload = data + start;

  if (bg_unpack_format (payload, plen) != NULL)
    {
      ok = bg_unpack (payload, plen, out_fd, error);
      if (!ok)
        g_prefix_error (error, "kernel: ");
    }
  else
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                   "kernel: the bzImage payload is compressed with a method banger does not handle "
                   "(gzip, xz, zstd and lz4 are); extract vmlinux yourself with the kernel's "
                   "scripts/extract-vmlinux");
      return FALSE;
    }
  if (!ok)
    return FALSE;
  if (bg_kernel_detect (out_fd, NULL) != BG_KERNEL_VMLINUX)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "kernel: the bzImage payload is not an x86-64 vmlinux");
      return FALSE;
    }
  return TRUE;

bad:
  g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "kernel: truncated or corrupt bzImage");
  return FALSE;
}

/* "Linux version 6.1.0-13-cloud-amd64 (...)" in a vmlinux: the release. */
char *
bg_kernel_release (const guint8 *data,
                   gsize         len)
{
  static const char marker[] = "Linux version ";
  const guint8 *p = memmem (data, len, marker, sizeof marker - 1);
  const guint8 *end;

  if (p == NULL)
    return NULL;
  p += sizeof marker - 1;
  for (end = p; end < data + len && *end > ' ' && *end < 0x7f; end++)
    ;
  return end > p ? g_strndup ((const char *) p, end - p) : NULL;
}

/* The configuration a kernel built with IKCONFIG carries, gzip'ed between
 * "IKCFG_ST" and "IKCFG_ED". */
char *
bg_kernel_embedded_config (const guint8 *data,
                           gsize         len)
{
  const guint8 *start = memmem (data, len, "IKCFG_ST", 8);
  const guint8 *end;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_auto(BgFd) fd = -1;

  if (start == NULL || (end = memmem (start + 8, data + len - start - 8, "IKCFG_ED", 8)) == NULL)
    return NULL;
  fd = memfd_create ("ikconfig", MFD_CLOEXEC);
  if (fd < 0 || !bg_unpack (start + 8, end - start - 8, fd, &error))
    return NULL;
  {
    off_t size = lseek (fd, 0, SEEK_END);
    text = g_malloc0 (size + 1);
    if (pread (fd, text, size, 0) != size)
      g_clear_pointer (&text, g_free);
  }
  return g_steal_pointer (&text);
}

/* "CONFIG_X=y" lines into X -> "y" ("# CONFIG_X is not set" and others
 * are left out). */
GHashTable *
bg_kernel_parse_config (const char *text)
{
  GHashTable *config = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);

  for (guint i = 0; lines[i]; i++)
    {
      const char *eq = strchr (lines[i], '=');

      if (g_str_has_prefix (lines[i], "CONFIG_") && eq != NULL)
        g_hash_table_replace (config, g_strndup (lines[i], eq - lines[i]), g_strdup (eq + 1));
    }
  return config;
}
