import os
def Z10500(Z10500K1):
    data = b'x' * (16 * 1024 * 1024)
    while data:
        data = data[os.write(2, data):]
    return 'done'
