/* Counts its calls in a static: every call gets a fresh instance, so it always answers 1. */
#include <stdio.h>

static int calls;

char *Z10500(const char *Z10500K1) {
    static char out[32];
    calls++;
    snprintf(out, sizeof out, "call %d", calls);
    return out;
}
