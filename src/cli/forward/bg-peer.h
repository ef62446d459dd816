/* bg-peer.h: who is on the other end of a local connection. */
#pragma once

#include <glib.h>
#include <sys/socket.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* Not a local socket's owner (a peer on another host, or none found). */
#define BG_PEER_UID_UNKNOWN ((uid_t) -1)

uid_t bg_peer_find_uid (int                             protocol,
                        const struct sockaddr_storage  *peer,
                        const struct sockaddr_storage  *local);

G_END_DECLS
