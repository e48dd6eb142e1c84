def Z10500(Z10500K1):
    v = 'leaf'
    for _ in range(100000):
        v = {'Z1K1': 'Z1', 'K1': v}
    return v
