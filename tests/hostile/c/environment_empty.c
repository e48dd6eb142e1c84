/* Counts the environment variables the guest sees and looks for a few well-known ones. */
#include <stdio.h>
#include <stdlib.h>

extern char **environ;

char *Z10500(const char *Z10500K1) {
    static char out[128];
    int count = 0;
    for (char **e = environ; e != NULL && *e != NULL; e++) count++;
    snprintf(out, sizeof out, "%d variables; PATH %s; HOME %s", count,
             getenv("PATH") ? "set" : "unset", getenv("HOME") ? "set" : "unset");
    return out;
}
