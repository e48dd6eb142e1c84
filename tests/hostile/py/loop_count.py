import itertools
def Z10500(Z10500K1):
    total = 0
    for i in itertools.count():
        total += i
    return str(total)
