/* bg-table.h: text tables for people. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A text table: columns padded to their widest cell. */
typedef struct _BgTable BgTable;
BgTable *bg_table_new       (const char  *first_header,
                             ...) G_GNUC_NULL_TERMINATED;
void     bg_table_add_row   (BgTable     *table,
                             const char  *first_cell,
                             ...) G_GNUC_NULL_TERMINATED;
void     bg_table_print     (BgTable     *table);
void     bg_table_free      (BgTable     *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgTable, bg_table_free)

G_END_DECLS
