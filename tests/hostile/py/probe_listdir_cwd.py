import os
def Z10500(Z10500K1):
    return repr(os.listdir('.'))
