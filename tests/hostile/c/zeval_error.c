#include "zeval.h"

char *Z10500(const char *Z10500K1) {
    zeval_error("hostile corpus says no");
}
