/* qemu-vm.h: banger-made VMs booted by QEMU for the slow suite. */
#pragma once

#include <json-glib/json-glib.h>

#include "harness.h"

/* A VM as banger made it, and how to boot it as banger asked. */
typedef struct {
  char   *name;
  char   *tap;
  char   *mac;
  char   *address;
  char   *boot_args;
  char   *kernel;
  char   *initrd;
  GPtrArray *drives;    /* "file,readonly" host paths, in order */
  char   *console;
  GPid    qemu;
  /* The guest agent's virtio-serial port (set by agent_port()): QEMU's
   * chardev socket, and where the test VMM's hybrid vsock relays
   * `CONNECT 52` to (see tests/vmm). */
  char   *agent_socket;
  char   *agent_link;
  char   *agent_dir;
  /* The test VMM, left running by up_with_agent() to serve the vsock;
   * 0 when make_vm() killed it. */
  gint64  vmm_pid;
} Vm;

JsonObject *json_object (const char *text);
/* banger as test user A: the harness's own, under the slow tests' name. */
#define cli bg_harness_cli
void        vm_free     (Vm         *vm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Vm, vm_free)
Vm         *make_vm     (BgHarness  *h,
                         const char *name,
                         const char *image);
/* A VM from its record (`vm show --json`) and the VMM's configuration,
 * the VMM left running. */
Vm         *vm_from_record (BgHarness  *h,
                            const char *name,
                            JsonObject *rec);
/* Gives the guest the agent's virtio-serial port at the next boot(),
 * relayed from the VM's vsock socket @vsock once agent_plug() ran. */
void        agent_port  (Vm         *vm,
                         const char *vsock);
/* The guest's agent opened the port (its console says so): the test
 * VMM (running as @vmm_pid) may now reach it, as Firecracker reaches a
 * guest's listener only once it listens. */
void        agent_plug  (Vm         *vm,
                         gint64      vmm_pid);
/* `banger vm up NAME --image IMAGE` (waiting for the guest) while QEMU
 * boots the VM it configured, with the agent's port: SSH to the guest
 * is refused until `vm up` returned, so its ready came from the agent.
 * The VM, its VMM left running; `vm up`'s stdout in @up_out. */
Vm         *up_with_agent (BgHarness  *h,
                           const char *name,
                           const char *image,
                           char      **up_out);
void        boot        (Vm         *vm);
void        power_off   (Vm         *vm);
char       *wait_ssh    (BgHarness  *h,
                         Vm         *vm,
                         const char *done,
                         const char *done_too);
char       *in_guest    (BgHarness  *h,
                         Vm         *vm,
                         const char *script);
void        import_image (BgHarness  *h,
                         const char *prep_home,
                         const char *image);
void        import_image_as (BgHarness  *h,
                         const char *prep_home,
                         const char *image,
                         const char *name);
char       *sha256_of   (const char *path);
char       *wait_console (Vm        *vm,
                         const char *done);
/* banger as user A, not waited for, with the given stdio (-1: the
 * test's own); and a child's status (128+N for signal N). */
GPid        cli_async   (BgHarness  *h,
                         int         in,
                         int         out,
                         int         err,
                         const char * const *args);
int         wait_status (GPid        pid);
/* `banger vm exec VM -- ARGV...`: its status; its stdout in @out. */
int         vm_exec     (BgHarness  *h,
                         const char *vm,
                         char      **out,
                         const char *first,
                         ...) G_GNUC_NULL_TERMINATED;
/* `ssh -F FILE [-6] VM hostname` as user A, FILE being `vm ssh-config`'s
 * block with its "HostName ADDRESS" line made @host_lines: must succeed;
 * what it printed, stripped. */
char       *ssh_with_config (BgHarness  *h,
                             Vm         *vm,
                             const char *host_lines,
                             gboolean    ipv6);
