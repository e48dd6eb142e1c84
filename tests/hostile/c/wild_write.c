/* Writes far beyond linear memory. */
char *Z10500(const char *Z10500K1) {
    volatile char *wild = (volatile char *) 0xfffffff0u;
    wild[0] = 'x';
    return "wrote";
}
