/* Tries to read a host file at run time: it must not be there. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

char *Z10500(const char *Z10500K1) {
    static char out[256];
    FILE *file = fopen("/etc/passwd", "r");
    if (file == NULL) {
        snprintf(out, sizeof out, "fopen failed: %s", strerror(errno));
        return out;
    }
    size_t n = fread(out, 1, sizeof out - 1, file);
    out[n] = '\0';
    return out;
}
