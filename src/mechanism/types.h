/* types.h: every type of the mechanism, declared once (udisks'
 * udisksdaemontypes.h idiom), so headers never repeat a typedef or need
 * each other in a circle. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

struct _BgDaemon;
typedef struct _BgDaemon BgDaemon;

struct _BgCall;
typedef struct _BgCall BgCall;

struct _BgRegistry;
typedef struct _BgRegistry BgRegistry;

struct _BgResource;
typedef struct _BgResource BgResource;

struct _BgKindOps;
typedef struct _BgKindOps BgKindOps;


struct _BgNetState;
typedef struct _BgNetState BgNetState;

struct _BgNetwork;
typedef struct _BgNetwork BgNetwork;

struct _BgNft;
typedef struct _BgNft BgNft;

struct _BgStorage;
typedef struct _BgStorage BgStorage;

struct _BgJail;
typedef struct _BgJail BgJail;

struct _BgVmm;
typedef struct _BgVmm BgVmm;

struct _BgVms;
typedef struct _BgVms BgVms;

G_END_DECLS
