def Z10500(Z10500K1):
    return str(len('x' * 10 ** 10))
