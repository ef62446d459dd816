#pragma once

#include "bg-drive.h"
#include "bg-ready.h"
#include "bg-ssh.h"
#include "bg-sync.h"

/* A guest configuration and config drive shared by the tests of the CLI
 * side (test-guest) and of the guest side (test-guest-setup): both must
 * agree on the same documents. */
typedef struct {
  char *tmp;            /* a 0755 scratch directory, removed afterwards */
} BgGuestFixture;

void           bg_guest_fixture_setup    (BgGuestFixture *f,
                                          gconstpointer   data);
void           bg_guest_fixture_teardown (BgGuestFixture *f,
                                          gconstpointer   data);
BgGuestConfig *bg_test_sample_config (void);
void           bg_test_build_drive   (const char          *dir,
                                      const BgGuestConfig *config,
                                      GPtrArray           *files,
                                      const char          *drive);
char          *bg_test_run_out       (const char * const  *argv);
