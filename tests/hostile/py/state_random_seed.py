import random
def Z10500(Z10500K1):
    first = random.random()
    random.seed(42)
    return 'seed 42 leaked' if first == random.Random(42).random() else 'fresh'
