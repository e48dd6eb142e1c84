def Z10500(Z10500K1):
    return str(len(bytearray(2 ** 31)))
