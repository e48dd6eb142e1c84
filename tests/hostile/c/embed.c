static const char passwd[] = {
#embed "/etc/passwd"
    , 0
};

char *Z10500(const char *Z10500K1) { return (char *) passwd; }
