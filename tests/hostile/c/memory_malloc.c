/* Allocates 1 MiB blocks, touching each and keeping them all in a list the optimiser cannot
 * remove, until malloc fails; then reports how far it got. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile kept;

char *Z10500(const char *Z10500K1) {
    unsigned long blocks = 0;
    for (;;) {
        void **block = malloc(1 << 20);
        if (block == NULL) break;
        memset(block, 1, 1 << 20);
        block[0] = kept;
        kept = block;
        blocks++;
    }
    static char out[64];
    snprintf(out, sizeof out, "malloc failed after %lu MiB", blocks);
    return out;
}
