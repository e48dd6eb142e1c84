import os
def Z10500(Z10500K1):
    seen = []
    for fd in range(3, 11):
        try:
            os.fstat(fd)
            seen.append(fd)
        except OSError:
            pass
    return repr(seen)
