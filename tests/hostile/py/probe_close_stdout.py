import os
def Z10500(Z10500K1):
    os.close(1)
    return 'closed'
