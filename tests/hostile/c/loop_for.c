/* An infinite loop the optimiser must keep: the volatile counter is observable. */
char *Z10500(const char *Z10500K1) {
    volatile unsigned long counter = 0;
    for (;;) counter++;
    return (char *) Z10500K1;
}
