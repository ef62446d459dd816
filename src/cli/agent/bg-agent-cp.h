/* bg-agent-cp.h: `banger vm cp` through the guest agent (protocol
 * version 2: PUT, GET, ENTRY; doc/agent-protocol.md). */
#pragma once

#include "bg-agent-client.h"
#include "bg-progress.h"

G_BEGIN_DECLS

typedef struct {
  const char *vm;          /* for messages */
  const char *owner;       /* guest user: owns what PUT makes; a relative guest path is in its home */
  gboolean    recursive;   /* directories and what they hold */
  BgProgress *progress;    /* NULL: none */
} BgAgentCpOptions;

/* Copies @local (a file, or a directory with recursive) to @guest_path:
 * into it, under @local's name, when it is a directory in the guest,
 * else to it. Modes (without set-id bits) and times are kept; what is
 * made is owned by @options->owner. A file is written under a temporary
 * name and renamed, so a reader never sees half of it. */
gboolean bg_agent_cp_put (BgAgentClient          *client,
                          const char             *local,
                          const char             *guest_path,
                          const BgAgentCpOptions *options,
                          GError                **error);

/* Copies @guest_path out of the guest to @name in the directory @dir_fd
 * (both from the user's command line, never from the guest). With
 * recursive, a directory's entries are created beneath @dir_fd only:
 * every name the guest sends must be one component, and is opened with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS); every length it sends
 * is bounded before anything is allocated. */
gboolean bg_agent_cp_get (BgAgentClient          *client,
                          const char             *guest_path,
                          int                     dir_fd,
                          const char             *name,
                          const BgAgentCpOptions *options,
                          GError                **error);

G_END_DECLS
