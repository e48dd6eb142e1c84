/* Returns a 10 MB string: over the output limit. */
#include <stdlib.h>
#include <string.h>

char *Z10500(const char *Z10500K1) {
    size_t n = 10 * 1000 * 1000;
    char *out = malloc(n + 1);
    memset(out, 'a', n);
    out[n] = '\0';
    return out;
}
