/* kind.h: the kinds of resource the mechanism records, as an enum with
 * one table of their properties (systemd machined's MachineClass idiom),
 * so no part compares a kind's name as a string. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  BG_KIND_VM,       /* a running VMM in its jail */
  BG_KIND_TAP,      /* a VM's tap on the bridge */
  BG_KIND_BRIDGE,   /* the host's bridge, its addresses and rules */
  BG_KIND_LOOP,     /* a loop device a caller attached (AttachLoop) */
  BG_KIND_BASE,     /* a shared read-only loop device of layered VMs */
  BG_KIND_COUNT,
} BgKind;

typedef struct {
  /* The registry's word: the records' "kind", their directory's name,
   * ListResources' and ReleaseResource's "kind", polkit's banger.kind. */
  const char *name;
  /* The plural word: a user's usage key and the [limits] setting of
   * mechanism.conf, for the kinds counted per user. */
  const char *plural;
  const char *noun;          /* for people: "running VM" */
  const char *nouns;         /* "running VMs" */
  /* Counted against a per-user limit ([limits] <plural>). */
  gboolean    per_user;
  /* It lives only while the mechanism holds it open (a loop device with
   * autoclear): after the mechanism restarts, a recorded one is gone
   * whatever its state. Everything else outlives the mechanism (a
   * running VMM, a tap) and ends only at reboot, which empties the
   * registry too (it lives in /run). */
  gboolean    held_by_mechanism;
} BgKindInfo;

const BgKindInfo *bg_kind_get_info    (BgKind       kind);
const char       *bg_kind_to_string   (BgKind       kind);
gboolean          bg_kind_from_string (const char  *name,
                                       BgKind      *out_kind);
char             *bg_kind_list_names  (void);

G_END_DECLS
