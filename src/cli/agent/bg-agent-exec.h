/* bg-agent-exec.h: running a command in a guest through its agent, with
 * this process's stdin, stdout and stderr (banger vm exec). */
#pragma once

#include "bg-agent-client.h"

G_BEGIN_DECLS

typedef struct {
  const char * const *argv;
  const char * const *env;          /* NAME=VALUE; NULL: none */
  const char         *user;         /* NULL: root */
  const char         *cwd;          /* NULL: the user's home */
  gboolean            tty;          /* a PTY in the guest; raw mode here */
  gboolean            interactive;  /* forward stdin (until its EOF) */
} BgAgentExecOptions;

/* Runs @options->argv in the guest and relays its streams until it ends:
 * *@exit_status gets its exit code, or 128+N when signal N ended it.
 * SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to this process are forwarded
 * to it, window size changes to its PTY. The terminal is back in the
 * mode it was in on every return. When the guest could not start the
 * command, returns FALSE with @error saying why and *@exit_status 127
 * (as a shell would); on other failures *@exit_status is 0. */
gboolean bg_agent_exec_run (BgAgentClient            *client,
                            const BgAgentExecOptions *options,
                            int                      *exit_status,
                            GError                  **error);

G_END_DECLS
