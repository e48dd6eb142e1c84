def Z10500(Z10500K1):
    v = []
    for _ in range(10 ** 5):
        v = [v]
    return str(len(repr(v)))
