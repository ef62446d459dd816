/* bg-forward.h: vm forward — a VM's ports on the host's addresses,
 * relayed by the CLI as the user (no privilege involved). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* [HOSTADDR:]HOSTPORT[:GUESTPORT][/tcp|/udp] */
typedef struct {
  char     *host_address;   /* NULL: loopback, 127.0.0.1 and ::1 */
  guint16   host_port;
  guint16   guest_port;
  gboolean  udp;
  char     *text;           /* the canonical form, e.g. "127.0.0.1:8080:80/tcp" */
  gboolean  exposed;        /* host_address is 0.0.0.0 or :: (every interface) */
} BgForwardSpec;

BgForwardSpec *bg_forward_spec_parse (const char     *text,
                                      GError        **error);
void           bg_forward_spec_free  (BgForwardSpec  *spec);
void           bg_forward_spec_warn_exposed (const char * const *texts,
                                             const char         *vm_name);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgForwardSpec, bg_forward_spec_free)

/* The relay: listeners for every spec, bound at creation (so a busy or
 * privileged port fails here, naming it), relaying to @guest_address. */
typedef struct _BgForward BgForward;

BgForward *bg_forward_new        (const char     *vm_name,
                                  const char     *guest_address,
                                  GPtrArray      *specs,
                                  guint           udp_idle_s,
                                  GError        **error);
/* The addresses listened on, "127.0.0.1:8080/tcp" etc. */
GPtrArray *bg_forward_listening  (BgForward      *forward);
/* Stops accepting; @done runs once every open connection has ended. */
void       bg_forward_drain      (BgForward      *forward,
                                  GSourceFunc     done,
                                  gpointer        data);
guint      bg_forward_n_open     (BgForward      *forward);
void       bg_forward_free       (BgForward      *forward);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgForward, bg_forward_free)

/* Background forwards: one process each, recorded in the VM's state
 * directory (forwards/PID.json) with its start time, so a reused pid is
 * never taken for it. */
typedef struct {
  gint64     pid;
  guint64    start_time;
  char     **specs;
  gboolean   persistent;    /* started from the VM's recorded --forward */
} BgForwardProcess;

void       bg_forward_process_free (BgForwardProcess *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgForwardProcess, bg_forward_process_free)

gboolean   bg_forward_record_self  (const char     *vm_name,
                                    char          **specs,
                                    gboolean        persistent,
                                    GError        **error);
void       bg_forward_unrecord_self (const char    *vm_name);
/* The live ones; records of processes that are gone are removed. */
GPtrArray *bg_forward_list_processes (const char   *vm_name);
/* Ends the VM's background forwards (those that carry @spec, when not
 * NULL) and waits for them to exit. Returns how many were ended. */
guint      bg_forward_stop_processes (const char   *vm_name,
                                      const char   *spec,
                                      GError      **error);
/* Starts `banger vm forward NAME SPEC… ` in the background and waits
 * until it listens (or says why it cannot); @ipv6: to the VM's IPv6
 * address. */
gboolean   bg_forward_spawn_background (const char  *vm_name,
                                        char       **specs,
                                        gboolean     persistent,
                                        gboolean     ipv6,
                                        GPid        *pid,
                                        GError     **error);

G_END_DECLS
