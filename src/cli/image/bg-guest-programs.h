#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Where banger-guest-setup is in an image; the unit that runs it early
 * at every boot, where it is installed, and the link that enables it
 * (sysinit.target wants it). `image build`, `image import --oci` /
 * `image pull` and `image import` of a plain ext4 put the same ones into
 * images that boot systemd. */
#define BG_GUEST_SETUP_IN_IMAGE "/usr/libexec/banger/banger-guest-setup"
#define BG_GUEST_SETUP_UNIT "/usr/lib/systemd/system/banger-guest-setup.service"
#define BG_GUEST_SETUP_WANTS "/etc/systemd/system/sysinit.target.wants/banger-guest-setup.service"
extern const char bg_guest_programs_setup_unit[];

char *bg_guest_programs_setup_path (void);
char *bg_guest_programs_init_path  (void);
char *bg_guest_programs_agent_path (void);

G_END_DECLS
