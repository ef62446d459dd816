/* bg-keypair.c: new ed25519 SSH key pairs, made in-process (a seed from
 * getrandom, the public key from hogweed, through banger's crypto
 * module: bg-crypto-module.h) and written exactly as ssh-keygen writes
 * them: the private key in OpenSSH's unencrypted "openssh-key-v1"
 * format (PROTOCOL.key, and sshkey_private_to_blob2 in OpenSSH's
 * sshkey.c), the public key as one "ssh-ed25519 BASE64 COMMENT" line.
 *
 * Every new VM gets a host key pair. Spawning ssh-keygen for it cost
 * ~18 ms of CPU (the exec, libcrypto's start) on 2 cores shared with the
 * critical path of `vm up` (the mechanism, dbus-daemon, polkitd); made
 * here it costs about 30 us of CPU and no process.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <glib/gstdio.h>

#include "bg-crypto-module.h"
#include "bg-error.h"
#include "bg-file.h"
#include "bg-keypair.h"

#define KEY_TYPE    "ssh-ed25519"
#define AUTH_MAGIC  "openssh-key-v1"
#define MARK_BEGIN  "-----BEGIN OPENSSH PRIVATE KEY-----\n"
#define MARK_END    "-----END OPENSSH PRIVATE KEY-----\n"
/* OpenSSH wraps the private key's base64 at 70 columns (sshbuf_dtob64). */
#define WRAP        70
/* The private section is padded to the cipher's block size; "none"'s is 8. */
#define BLOCK       8
/* Bounds the buffers below, so they never grow: a reallocation would
 * leave a copy of the private key behind, unwiped. */
#define COMMENT_MAX 255
#define BLOB_MAX    1024

static void
put_u32 (GByteArray *b,
         guint32     v)
{
  guint8 be[4] = { v >> 24, v >> 16, v >> 8, v };

  g_byte_array_append (b, be, sizeof be);
}

static void
put_string (GByteArray *b,
            const void *data,
            gsize       len)
{
  put_u32 (b, len);
  g_byte_array_append (b, data, len);
}

static void
put_cstring (GByteArray *b,
             const char *s)
{
  put_string (b, s, strlen (s));
}

/* Key material is wiped before its memory is given back. */
typedef GByteArray WipedBytes;
typedef char WipedString;

static void
wipe_bytes (WipedBytes *b)
{
  explicit_bzero (b->data, b->len);
  g_byte_array_unref (b);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (WipedBytes, wipe_bytes)

static void
wipe_string (WipedString *s)
{
  explicit_bzero (s, strlen (s));
  g_free (s);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (WipedString, wipe_string)

static gboolean
fill_random (guint8  *buf,
             gsize    len,
             GError **error)
{
  gsize done = 0;

  while (done < len)
    {
      ssize_t n = getrandom (buf + done, len - done, 0);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot get random bytes for an SSH key: %s",
                       g_strerror (errno));
          return FALSE;
        }
      done += n;
    }
  return TRUE;
}

/* The public key blob, as the .pub line and the private file both
 * carry it: string "ssh-ed25519", string the 32-byte key. */
static GByteArray *
public_blob (const guint8 *pk)
{
  GByteArray *b = g_byte_array_sized_new (4 + strlen (KEY_TYPE) + 4 + BG_CRYPTO_ED25519_KEY_SIZE);

  put_cstring (b, KEY_TYPE);
  put_string (b, pk, BG_CRYPTO_ED25519_KEY_SIZE);
  return b;
}

/* A new ed25519 key pair: @private_key the text of the private key file
 * (unencrypted, 0600 material), @public_key the .pub line, newline
 * included; @comment goes into both, as ssh-keygen -C puts it. */
gboolean
bg_keypair_generate (const char  *comment,
                     char       **private_key,
                     char       **public_key,
                     GError     **error)
{
  /* OpenSSH's ed25519 private key: the seed, then the public key. */
  guint8 sk[2 * BG_CRYPTO_ED25519_KEY_SIZE];
  guint8 *pk = sk + BG_CRYPTO_ED25519_KEY_SIZE;
  guint8 check[4];
  g_autoptr(GByteArray) pub = NULL;
  g_autoptr(WipedBytes) section = NULL, blob = NULL;
  g_autoptr(WipedString) b64 = NULL;
  g_autofree char *pub64 = NULL;
  const BgCryptoModule *crypto;
  GString *text;
  gsize len;

  g_return_val_if_fail (comment != NULL && strlen (comment) <= COMMENT_MAX, FALSE);
  g_return_val_if_fail (strchr (comment, '\n') == NULL, FALSE);

  if ((crypto = bg_crypto_module_load (error)) == NULL ||
      !fill_random (check, sizeof check, error) || !fill_random (sk, BG_CRYPTO_ED25519_KEY_SIZE, error))
    return FALSE;
  crypto->ed25519_public_key (pk, sk);
  pub = public_blob (pk);

  /* The private section: two equal check ints (a decryption check;
   * random, as OpenSSH makes them), the key as ssh-agent encodes it,
   * the comment, then padding 1, 2, 3, ... to the block size. */
  section = g_byte_array_sized_new (BLOB_MAX);
  g_byte_array_append (section, check, sizeof check);
  g_byte_array_append (section, check, sizeof check);
  put_cstring (section, KEY_TYPE);
  put_string (section, pk, BG_CRYPTO_ED25519_KEY_SIZE);
  put_string (section, sk, sizeof sk);
  put_cstring (section, comment);
  for (guint8 i = 1; section->len % BLOCK != 0; i++)
    g_byte_array_append (section, &i, 1);
  explicit_bzero (sk, sizeof sk);

  blob = g_byte_array_sized_new (BLOB_MAX);
  g_byte_array_append (blob, (const guint8 *) AUTH_MAGIC, sizeof AUTH_MAGIC);   /* with its NUL */
  put_cstring (blob, "none");           /* cipher */
  put_cstring (blob, "none");           /* kdf */
  put_string (blob, "", 0);             /* kdf options */
  put_u32 (blob, 1);                    /* number of keys */
  put_string (blob, pub->data, pub->len);
  put_string (blob, section->data, section->len);
  g_assert (blob->len <= BLOB_MAX);

  b64 = g_base64_encode (blob->data, blob->len);
  len = strlen (b64);
  text = g_string_sized_new (strlen (MARK_BEGIN) + len + len / WRAP + 1 + strlen (MARK_END) + 1);
  g_string_append (text, MARK_BEGIN);
  for (gsize i = 0; i < len; i += WRAP)
    {
      g_string_append_len (text, b64 + i, MIN (WRAP, len - i));
      g_string_append_c (text, '\n');
    }
  g_string_append (text, MARK_END);
  *private_key = g_string_free (text, FALSE);

  pub64 = g_base64_encode (pub->data, pub->len);
  *public_key = g_strdup_printf ("%s %s %s\n", KEY_TYPE, pub64, comment);
  return TRUE;
}

/* A new pair written to @path (0600) and @path.pub (0644), each file
 * whole (a temporary file renamed into place) and the public half first:
 * a private key in place is what says the pair is there. On failure
 * neither file is left. @private_key and @public_key, when not NULL,
 * get the files' texts. */
gboolean
bg_keypair_write (const char  *path,
                  const char  *comment,
                  BgFileFlags  flags,
                  char       **private_key,
                  char       **public_key,
                  GError     **error)
{
  g_autofree char *pub_path = g_strdup_printf ("%s.pub", path);
  g_autoptr(WipedString) priv = NULL;
  g_autofree char *pub = NULL;

  if (!bg_keypair_generate (comment, &priv, &pub, error))
    return FALSE;
  if (!bg_file_replace_full (pub_path, pub, -1, 0644, flags, error) ||
      !bg_file_replace_full (path, priv, -1, 0600, flags, error))
    {
      g_unlink (pub_path);
      g_prefix_error (error, "cannot write the SSH key %s: ", path);
      return FALSE;
    }
  if (private_key != NULL)
    *private_key = g_steal_pointer (&priv);
  if (public_key != NULL)
    *public_key = g_steal_pointer (&pub);
  return TRUE;
}
