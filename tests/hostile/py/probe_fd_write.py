import os
def Z10500(Z10500K1):
    wrote = []
    for fd in range(3, 11):
        try:
            os.write(fd, b'hostile')
            wrote.append(fd)
        except OSError:
            pass
    return repr(wrote)
