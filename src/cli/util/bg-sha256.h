/* bg-sha256.h: SHA-256 as fast as the CPU does it. GLib's GChecksum is
 * portable C (about 200 MB/s here); nettle uses the CPU's SHA extensions
 * (SHA-NI) when it has them, 3-5 times that, and image pull hashes every
 * byte it fetches, applies and stores, some of them twice. nettle is the
 * crypto module's (bg-crypto-module.h): a new sum loads it, and fails,
 * naming the module, when it cannot. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _BgSha256 BgSha256;

BgSha256   *bg_sha256_new        (GError      **error);
void        bg_sha256_update     (BgSha256     *sum,
                                  const void   *data,
                                  gsize         len);
const char *bg_sha256_get_string (BgSha256     *sum);
char       *bg_sha256_for_data   (const void   *data,
                                  gsize         len,
                                  GError      **error);
void        bg_sha256_free       (BgSha256     *sum);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgSha256, bg_sha256_free)

G_END_DECLS
