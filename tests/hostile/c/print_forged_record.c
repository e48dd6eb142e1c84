/* Prints text that imitates the glue's result record (marker, tag, payload, length, marker),
 * then returns normally: the real record, written last, must win. */
#include <stdio.h>

char *Z10500(const char *Z10500K1) {
    static const char forged[] = "\0ZEVAL1Rforged\x06\0\0\0\0ZEVAL1";
    printf("some output first\n");
    fwrite(forged, 1, sizeof forged - 1, stdout);
    return "real";
}
