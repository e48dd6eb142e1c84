import sys
def Z10500(Z10500K1):
    sys.setrecursionlimit(10 ** 7)
    def down(n):
        return down(n + 1) + 1
    return str(down(0))
