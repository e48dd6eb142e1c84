import sys
def Z10500(Z10500K1):
    sys.exit(3)
