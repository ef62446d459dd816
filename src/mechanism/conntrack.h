/* conntrack.h: the kernel's connection tracking entries of an address,
 * through ctnetlink (libnl-nf-3). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean  bg_conntrack_forget  (const char * const  *addresses,
                                guint                n,
                                GError             **error);
gboolean  bg_conntrack_forget_prefixes (const char * const  *prefixes,
                                        const char * const  *keep,
                                        GError             **error);

G_END_DECLS
