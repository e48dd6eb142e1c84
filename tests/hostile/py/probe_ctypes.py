import ctypes
def Z10500(Z10500K1):
    return str(ctypes.CDLL(None))
