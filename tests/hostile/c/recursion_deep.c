/* Unbounded recursion with a frame the optimiser cannot fold away. */
#include <string.h>

static unsigned long down(volatile char *previous, unsigned long depth) {
    volatile char frame[256];
    frame[0] = previous[0];
    frame[255] = (char) depth;
    return down(frame, depth + 1) + frame[255];
}

char *Z10500(const char *Z10500K1) {
    volatile char start[1] = {0};
    return down(start, 0) ? (char *) Z10500K1 : "never";
}
