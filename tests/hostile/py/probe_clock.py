import time
def Z10500(Z10500K1):
    now = time.time()
    return 'plausible' if 1704067200 < now < 4102444800 else 'odd %r' % now
