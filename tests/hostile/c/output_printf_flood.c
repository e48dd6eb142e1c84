/* Prints without end: the output limit (or the deadline) must stop it. */
#include <stdio.h>

char *Z10500(const char *Z10500K1) {
    for (;;) printf("flood flood flood flood flood flood flood flood flood flood\n");
    return (char *) Z10500K1;
}
