import time
def Z10500(Z10500K1):
    a = time.monotonic()
    b = time.monotonic()
    return 'monotonic' if b >= a else 'backwards'
