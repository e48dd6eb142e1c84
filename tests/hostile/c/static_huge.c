/* A 1 GiB initialised static array: the object file would be 1 GiB. */
static char big[1 << 30] = {1};

char *Z10500(const char *Z10500K1) {
    big[(unsigned char) Z10500K1[0]] = 2;
    return big[1] ? (char *) Z10500K1 : "never";
}
