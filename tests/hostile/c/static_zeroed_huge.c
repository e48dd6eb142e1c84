/* A 256 MiB zeroed static: nothing to store in the artifact, but the module's memory would
 * have to start at 256 MiB, past the call's memory limit. */
static volatile char big[256 << 20];

char *Z10500(const char *Z10500K1) {
    big[(unsigned char) Z10500K1[0]] = 2;
    return big[(unsigned char) Z10500K1[0]] == 2 ? (char *) Z10500K1 : "never";
}
