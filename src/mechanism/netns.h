/* netns.h: a network namespace of a VMM's own, holding its tap. */
#pragma once

#include <sys/types.h>
#include <glib.h>

G_BEGIN_DECLS

/* The name of the veth's end inside the VMM's namespace, and of the
 * bridge there that ties it to the tap. */
#define BG_NETNS_PEER   "host0"
#define BG_NETNS_BRIDGE "br0"

int       bg_netns_new_with_tap    (const char   *tap,
                                    const char   *bridge,
                                    uid_t         jail_uid,
                                    GError      **error);
gboolean  bg_netns_restore_tap     (const char   *tap,
                                    const char   *bridge,
                                    uid_t         owner,
                                    gboolean      recorded,
                                    GError      **error);

G_END_DECLS
