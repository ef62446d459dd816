/* bg-dbus-keys.h: what the CLI and the mechanism say to each other
 * beyond where the mechanism lives (bg-dbus.h): the keys of LaunchVm's
 * options and reply, and where a VM's files are inside its jail. Written
 * once, for both sides (fwupd's fwupd-common.h idiom);
 * data/dbus/org.banger.Mechanism1.xml documents each key. */
#pragma once

/* Inside a VMM's jail: files at its root (what Firecracker is told to
 * open), sockets in its /run. */
#define BG_JAIL_KERNEL          "vmlinux"
#define BG_JAIL_INITRD          "initrd"
#define BG_JAIL_ROOTFS          "rootfs"
#define BG_JAIL_UPPER           "upper"
#define BG_JAIL_CONFIG_DRIVE    "cidata"
#define BG_JAIL_RUN             "/run"
#define BG_JAIL_API_SOCKET      "firecracker.socket"
#define BG_JAIL_VSOCK_SOCKET    "vsock.sock"

/* LaunchVm's options (a{sv}). */
#define BG_LAUNCH_TAP           "tap"           /* s */
#define BG_LAUNCH_ADDRESS       "address"       /* s */
#define BG_LAUNCH_INITRD        "initrd"        /* h */
#define BG_LAUNCH_CONSOLE       "console"       /* h */
#define BG_LAUNCH_TIMEOUT_MS    "timeout-ms"    /* u */
#define BG_LAUNCH_READ_ONLY     "read-only"     /* b */
#define BG_LAUNCH_CONFIG_DRIVE  "config-drive"  /* h */
#define BG_LAUNCH_BASE          "base"          /* h */

/* LaunchVm's reply, its "paths" (a{sv}): jail paths by what they are
 * (s), and three more. */
#define BG_LAUNCHED_KERNEL       "kernel"
#define BG_LAUNCHED_INITRD       "initrd"
#define BG_LAUNCHED_ROOTFS       "rootfs"
#define BG_LAUNCHED_UPPER        "upper"
#define BG_LAUNCHED_CONFIG_DRIVE "config-drive"
#define BG_LAUNCHED_VSOCK        "vsock"
#define BG_LAUNCHED_UID          "uid"          /* u: the jail uid */
#define BG_LAUNCHED_JAIL         "jail"         /* s: the jail's root on the host */
#define BG_LAUNCHED_NETWORK      "network"      /* a{sv}: as CreateTap answers */
