def Z10500(Z10500K1):
    keep = []
    while True:
        keep.append([0] * 100000)
