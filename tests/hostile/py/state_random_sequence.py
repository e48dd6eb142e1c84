import random
def Z10500(Z10500K1):
    return repr(random.random())
