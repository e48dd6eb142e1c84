import os
def Z10500(Z10500K1):
    return str(len(set(os.urandom(16) for _ in range(10))))
