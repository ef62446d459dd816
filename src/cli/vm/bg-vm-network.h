/* bg-vm-network.h: the network a new VM will get, guessed before the
 * mechanism is asked, so that LaunchVm alone can make its tap. */
#pragma once

#include "bg-state.h"

G_BEGIN_DECLS

gboolean bg_vm_network_guess    (BgStateStore  *store,
                                 BgVmRecord    *record);
void     bg_vm_network_remember (BgVmRecord    *record);

G_END_DECLS
