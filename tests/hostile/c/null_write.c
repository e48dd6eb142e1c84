/* Writes through a null pointer. Address 0 is ordinary linear memory in wasm, so this does
 * not trap: it must not leave anything behind for the next call, whose instance is fresh. */
char *Z10500(const char *Z10500K1) {
    volatile char *null = (volatile char *) 0;
    char before = null[0];
    null[0] = 'x';
    return before == 'x' ? "null already written" : "null was clean";
}
