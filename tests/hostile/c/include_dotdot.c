#include "../../../../../../etc/passwd"

char *Z10500(const char *Z10500K1) { return (char *) Z10500K1; }
