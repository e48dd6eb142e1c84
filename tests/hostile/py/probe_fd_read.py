import os
def Z10500(Z10500K1):
    seen = []
    for fd in range(3, 11):
        try:
            seen.append((fd, os.read(fd, 100)))
        except OSError as e:
            pass
    return repr(seen)
