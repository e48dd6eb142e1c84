/* Leaves through exit() instead of returning. */
#include <stdlib.h>

char *Z10500(const char *Z10500K1) {
    exit(3);
}
