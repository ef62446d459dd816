#pragma once

#include <glib.h>

GBytes *bg_test_compress (GBytes     *in,
                          const char *method);
GBytes *bg_test_bzimage  (GBytes     *payload);
