/* bg-table.c: text tables for people: columns padded to their widest
 * cell (scripts get --json instead). */
#include <stdarg.h>

#include "bg-table.h"

struct _BgTable {
  guint      n_columns;
  GPtrArray *rows;   /* of GStrv */
};

static char **
collect_cells (const char *first,
               va_list     args)
{
  GPtrArray *cells = g_ptr_array_new ();

  for (const char *c = first; c != NULL; c = va_arg (args, const char *))
    g_ptr_array_add (cells, g_strdup (c));
  g_ptr_array_add (cells, NULL);
  return (char **) g_ptr_array_free (cells, FALSE);
}

BgTable *
bg_table_new (const char *first_header,
              ...)
{
  BgTable *table = g_new0 (BgTable, 1);
  va_list args;
  char **header;

  va_start (args, first_header);
  header = collect_cells (first_header, args);
  va_end (args);
  table->n_columns = g_strv_length (header);
  table->rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  g_ptr_array_add (table->rows, header);
  return table;
}

void
bg_table_add_row (BgTable    *table,
                  const char *first_cell,
                  ...)
{
  va_list args;
  char **row;

  va_start (args, first_cell);
  row = collect_cells (first_cell, args);
  va_end (args);
  g_return_if_fail (g_strv_length (row) == table->n_columns);
  g_ptr_array_add (table->rows, row);
}

void
bg_table_print (BgTable *table)
{
  g_autofree gsize *widths = g_new0 (gsize, table->n_columns);

  for (guint r = 0; r < table->rows->len; r++)
    {
      char **row = table->rows->pdata[r];
      for (guint c = 0; c < table->n_columns; c++)
        widths[c] = MAX (widths[c], (gsize) g_utf8_strlen (row[c], -1));
    }

  for (guint r = 0; r < table->rows->len; r++)
    {
      char **row = table->rows->pdata[r];
      g_autoptr(GString) line = g_string_new (NULL);

      for (guint c = 0; c < table->n_columns; c++)
        {
          g_string_append (line, row[c]);
          if (c + 1 < table->n_columns)
            for (gsize pad = (gsize) g_utf8_strlen (row[c], -1); pad < widths[c] + 2; pad++)
              g_string_append_c (line, ' ');
        }
      g_print ("%s\n", line->str);
    }
}

void
bg_table_free (BgTable *table)
{
  if (table == NULL)
    return;
  g_ptr_array_unref (table->rows);
  g_free (table);
}
