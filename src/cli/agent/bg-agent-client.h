/* bg-agent-client.h: the host's end of the guest agent's protocol
 * (doc/agent-protocol.md), over a VM's Firecracker vsock socket. */
#pragma once

#include <gio/gio.h>

#include "bg-agent-proto.h"

G_BEGIN_DECLS

typedef struct _BgAgentClient BgAgentClient;

/* Connects to @vsock_path (the VM's hybrid-vsock socket, which the
 * mechanism handed to its owner), asks for @port with CONNECT, and says
 * HELLO with the newest version (and once more with version 1 when an
 * older agent refuses it). Fails with BG_ERROR_NOT_FOUND when no agent listens (the
 * connection was closed without an OK), BG_ERROR_BUSY when the socket is
 * not there (the VM is not running). */
BgAgentClient *bg_agent_client_connect (const char     *vsock_path,
                                        guint           port,
                                        guint           timeout_ms,
                                        GError        **error);
void           bg_agent_client_free    (BgAgentClient  *client);
/* The protocol version the agent agreed to (BG_AGENT_VERSION_FILES and
 * up can transfer files). */
guint32        bg_agent_client_get_version (BgAgentClient *client);
int            bg_agent_client_get_fd  (BgAgentClient  *client);

/* Asks what the guest has up, waiting until @want is up or @timeout_ms
 * passed (in the guest); *@up gets the BG_AGENT_UP_* bits. */
gboolean       bg_agent_client_ready   (BgAgentClient  *client,
                                        guint32         want,
                                        guint           timeout_ms,
                                        guint32        *up,
                                        GError        **error);

/* The frame being built; send it with bg_agent_client_queue(). */
BgAgentBuf    *bg_agent_client_out     (BgAgentClient  *client);
/* Ends the frame begun on bg_agent_client_out(); FALSE when it was not
 * valid (a bug or an over-long argument), with @error naming why. */
gboolean       bg_agent_client_queue   (BgAgentClient  *client,
                                        GError        **error);
/* Writes what is queued, without blocking (or blocking, with @wait). */
gboolean       bg_agent_client_flush   (BgAgentClient  *client,
                                        gboolean        wait,
                                        GError        **error);
gboolean       bg_agent_client_has_output (BgAgentClient *client);
/* Reads what the socket has (or blocks for it, with @wait) into the
 * input buffer; FALSE with @error when the agent closed or sent a frame
 * longer than the protocol allows. */
gboolean       bg_agent_client_fill    (BgAgentClient  *client,
                                        gboolean        wait,
                                        GError        **error);
/* The next whole message from the input buffer: 1 with @msg (clear it
 * with bg_agent_msg_clear), 0 when none is complete, -1 with @error
 * when the agent sent a malformed frame. */
int            bg_agent_client_next    (BgAgentClient  *client,
                                        BgAgentMsg     *msg,
                                        GError        **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgAgentClient, bg_agent_client_free)

G_END_DECLS
