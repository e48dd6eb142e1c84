import sys
def Z10500(Z10500K1):
    return repr(sys.argv[1:])
