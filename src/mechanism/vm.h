#pragma once

#include "daemon.h"

G_BEGIN_DECLS

typedef struct _BgVms BgVms;

extern const BgResourceKind bg_vm_kind;

BgVms   *bg_vms_new      (BgDaemon     *daemon);
void     bg_vms_free     (BgVms        *vms);
void     bg_vms_connect  (BgVms        *vms,
                          BgMechanism1 *skeleton);
void     bg_vms_recover  (BgVms        *vms);

G_END_DECLS
