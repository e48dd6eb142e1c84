import time
def Z10500(Z10500K1):
    time.sleep(60)
    return 'woke'
