/* Lists the file descriptors open in the guest and tries to open the root directory: only
 * the standard streams may be there, and no directory of the host. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

char *Z10500(const char *Z10500K1) {
    static char out[512];
    int used = snprintf(out, sizeof out, "open:");
    for (int fd = 0; fd < 64; fd++) {
        struct stat st;
        if (fstat(fd, &st) == 0) used += snprintf(out + used, sizeof out - used, " %d", fd);
    }
    DIR *root = opendir("/");
    snprintf(out + used, sizeof out - used, "; opendir: %s", root ? "opened" : strerror(errno));
    return out;
}
