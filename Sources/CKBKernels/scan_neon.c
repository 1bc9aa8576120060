// The index scan's AArch64 paths (see scan.c): not written yet; every NEON batch runs the
// generic path.
#include "scan_impl.h"

int kb_scan_prepare_neon(kb_query_batch *b) {
    (void)b;
    return 1;
}
