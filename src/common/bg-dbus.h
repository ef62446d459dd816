/* bg-dbus.h: where the mechanism lives on the system bus, defined once
 * for the mechanism, the CLI and the tests (fwupd's FWUPD_DBUS_* idiom). */
#pragma once

#define BG_DBUS_NAME      "org.banger.Mechanism1"
#define BG_DBUS_PATH      "/org/banger/Mechanism1"
#define BG_DBUS_INTERFACE "org.banger.Mechanism1"
