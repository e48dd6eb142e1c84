/* Recursion that checks, at every level, a canary among the static data. An overflow of the
 * stack must trap; if the stack sits above the static data without a guard, the frames run
 * over the canary first, and the program notices and says so. */
#define CANARY_WORDS 4096

static volatile int canary[CANARY_WORDS] = {[0 ... CANARY_WORDS - 1] = 12345};

static int intact(void) {
    for (int i = 0; i < CANARY_WORDS; i++) {
        if (canary[i] != 12345) return 0;
    }
    return 1;
}

static int down(unsigned depth) {
    volatile char frame[512];
    for (int i = 0; i < 512; i++) frame[i] = (char) depth;
    if (!intact()) return 1;
    return down(depth + 1) + frame[0] * 0;
}

char *Z10500(const char *Z10500K1) {
    return down(0) ? "canary overwritten" : "never";
}
