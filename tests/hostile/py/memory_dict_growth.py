def Z10500(Z10500K1):
    d = {}
    i = 0
    while True:
        d[i] = str(i) * 1000
        i += 1
